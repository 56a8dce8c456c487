"""The simulator's book loop on virtual time: a changed book is published on the next tick of
``book_interval_ms`` (as when the loop woke every interval), and no tick is spent while no
book has changed (a market stepped every 10 s used to wake the loop twenty times a step).
"""

from __future__ import annotations

import math

import trio
import trio.testing

from mm.venues.sim.config import MarketConfig, SimConfig
from mm.venues.sim.venue import SimVenue

EPOCH_MS = 1_800_000_000_000
INTERVAL_S = 0.5
STEP_S = 10.0
RUN_S = 60.0


async def test_books_are_published_on_the_next_tick_and_only_when_changed(
    autojump_clock: trio.testing.MockClock,
) -> None:
    config = SimConfig(
        book_interval_ms=int(INTERVAL_S * 1000),
        market=MarketConfig(step_ms=int(STEP_S * 1000), taker_a=0.0),
    )
    venue = SimVenue(config, epoch_ms=EPOCH_MS)
    calls: list[tuple[float, bool]] = []  # (time, whether a book had changed)
    publish = venue.publish_books

    def recorded() -> None:
        calls.append((trio.current_time(), bool(venue._dirty)))
        publish()

    venue.publish_books = recorded  # type: ignore[method-assign]
    async with trio.open_nursery() as nursery:
        await nursery.start(venue.run)
        start = trio.current_time()
        await trio.sleep(RUN_S)
        nursery.cancel_scope.cancel()
    published = [at - start for at, changed in calls if changed]
    # The market's first ladder (at the start) and its re-quote at every step: each goes out
    # once, on the first tick of the loop's grid at or after it (at most one interval late).
    steps = [STEP_S * k for k in range(int(RUN_S / STEP_S))]
    assert len(published) == len(steps), published
    for step, at in zip(steps, published, strict=True):
        assert step <= at <= step + INTERVAL_S, (step, at)
        assert math.isclose(at / INTERVAL_S, round(at / INTERVAL_S), abs_tol=1e-6), at
    # Between changes the loop sleeps: one call per change (and the first tick), not one per
    # interval (RUN_S / INTERVAL_S = 120).
    assert len(calls) <= len(steps) + 2, calls
