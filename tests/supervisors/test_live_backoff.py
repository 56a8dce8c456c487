"""Backoff as the running supervisor applies it: crash-to-restart gaps in virtual time.

Each gap is measured between the instant a child raised and the instant its next invocation
began, on the autojump clock; the supervisor draws it from ``Backoff.delay(attempt, rng)``.
"""

from __future__ import annotations

import random

import pytest
import trio
import trio.testing

from supervisors import Backoff, Intensity, Supervisor
from tests.supervisors.helpers import CRASH, Act, MaxRng, MinRng, ScriptedChild, supervise_for

BACKOFF = Backoff(initial=0.1, multiplier=2.0, cap=1.0)
LENIENT = Intensity(max_restarts=100, period=1000.0)
CRASHES = 7


def gaps(child: ScriptedChild) -> list[float]:
    """Virtual seconds between each crash and the restart that followed it."""
    restarts = child.began[1:]
    return [began - crashed for crashed, began in zip(child.crashed_at, restarts, strict=True)]


async def crash_repeatedly(rng: random.Random, *, stable_after: float = 1000.0) -> ScriptedChild:
    child = ScriptedChild("flaky", *[CRASH] * CRASHES)
    supervisor = Supervisor(
        "root",
        [child.spec(backoff=BACKOFF, stable_after=stable_after)],
        intensity=LENIENT,
        rng=rng,
    )
    await supervise_for(supervisor, 100.0)
    assert child.invocations == CRASHES + 1
    assert len(child.crashed_at) == CRASHES
    return child


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
async def test_restart_gaps_stay_within_each_attempts_jitter_bounds(
    autojump_clock: trio.testing.MockClock, seed: int
) -> None:
    child = await crash_repeatedly(random.Random(seed))
    measured = gaps(child)
    assert len(measured) == CRASHES
    for attempt, gap in enumerate(measured):
        assert 0.0 <= gap <= BACKOFF.ceiling(attempt) + 1e-9, (attempt, gap)
    # full jitter: the seeded draws do not all sit on the ceiling
    assert any(gap < 0.99 * BACKOFF.ceiling(n) for n, gap in enumerate(measured))


async def test_restart_gaps_grow_geometrically_to_the_cap(
    autojump_clock: trio.testing.MockClock,
) -> None:
    child = await crash_repeatedly(MaxRng())
    assert gaps(child) == pytest.approx([0.1, 0.2, 0.4, 0.8, 1.0, 1.0, 1.0])


async def test_zero_jitter_draw_restarts_at_once(autojump_clock: trio.testing.MockClock) -> None:
    child = await crash_repeatedly(MinRng())
    assert gaps(child) == [0.0] * CRASHES


@pytest.mark.parametrize(
    ("ran_for", "ceiling_after"),
    [
        (5.0, 0.1),  # ran stable_after or longer: attempt resets to 0
        (4.0, 0.1),  # exactly stable_after counts as stable
        (3.9, 0.8),  # not stable: the attempts keep growing
    ],
)
async def test_backoff_resets_after_the_child_was_stable(
    autojump_clock: trio.testing.MockClock, ran_for: float, ceiling_after: float
) -> None:
    long_run = Act(runs_for=ran_for)
    child = ScriptedChild("flaky", CRASH, CRASH, CRASH, long_run, CRASH)
    supervisor = Supervisor(
        "root",
        [child.spec(backoff=BACKOFF, stable_after=4.0)],
        intensity=LENIENT,
        rng=MaxRng(),
    )
    await supervise_for(supervisor, 100.0)

    assert child.ready_at[3] + ran_for == pytest.approx(child.crashed_at[3])
    next_ceiling = 0.2 if ceiling_after == 0.1 else 1.0
    assert gaps(child) == pytest.approx([0.1, 0.2, 0.4, ceiling_after, next_ceiling])
