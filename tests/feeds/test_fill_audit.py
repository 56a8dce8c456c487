"""The fill audit: the venue's fills against those forwarded, periodically and on drift.

Against a fake venue listing (``userFillsByTime`` pages) on Trio's virtual clock, with the wall
time pinned: what nobody forwarded goes on once, in time order, through the channel the normal
fill path reads; what the journal holds or the stream forwarded does not; failures skip
nothing; a drift brings the audit forward. The schedule is pure and tested on its own.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import attrs
import pytest
import trio
from prometheus_client import CollectorRegistry

from mm import clock
from mm.feeds.fill_audit import QUICK_DRIFT_AUDITS, AuditSchedule, FillAudit
from mm.feeds.history import FillHistory, JournaledFills
from mm.feeds.user import UserStreamConfig, UserStreamEvent
from mm.model import Fill, TradeId
from mm.venues.base import VenueError
from tests.feeds.test_history import fill, row
from tests.ids import hl_tid

NOW_MS = 10_000  # the pinned wall time at the start of each test
PAGE = 2000  # the most fills the fake venue lists an answer (a Hyperliquid page)


@attrs.define
class FakeVenue:
    fills: list[Fill] = attrs.field(factory=list)
    starts: list[int] = attrs.field(factory=list)
    fail: bool = False
    fills_page: int = PAGE

    async def fills_since(self, time_ms: int) -> list[Fill]:
        await trio.lowlevel.checkpoint()
        self.starts.append(time_ms)
        if self.fail:
            raise VenueError("HTTP 500 Internal Server Error")
        listed = sorted((f for f in self.fills if f.time_ms >= time_ms), key=lambda f: f.time_ms)
        return listed[: self.fills_page]


@attrs.define
class Rig:
    audit: FillAudit
    venue: FakeVenue
    history: FillHistory
    receive: trio.MemoryReceiveChannel[UserStreamEvent]
    registry: CollectorRegistry

    def forwarded(self) -> list[TradeId]:
        tids: list[TradeId] = []
        while True:
            try:
                event = self.receive.receive_nowait()
            except trio.WouldBlock:
                return tids
            assert isinstance(event, Fill)
            tids.append(event.tid)

    def sample(self, name: str, **labels: str) -> float:
        return self.registry.get_sample_value(name, labels) or 0.0


def rig(
    journaled: Sequence[tuple[int, int, int]] = ((1, 7, 1_000), (3, 7, 3_000)),
    *,
    buffer: float = math.inf,
    venue_up: bool = True,
) -> Rig:
    clock.pin(NOW_MS / 1000)
    history = FillHistory(1_000)
    history.restore(JournaledFills.from_rows([row(*r) for r in journaled]))
    venue = FakeVenue()
    send, receive = trio.open_memory_channel[UserStreamEvent](buffer)
    registry = CollectorRegistry()
    config = UserStreamConfig()
    audit = FillAudit(config, history, lambda: venue if venue_up else None, send, registry)
    return Rig(audit, venue, history, receive, registry)


async def test_an_audit_forwards_what_nobody_forwarded_once(autojump_clock: trio.abc.Clock) -> None:
    r = rig()
    # 1 and 3 are journaled; 2 was lost by the live stream; 4 is younger than the settle time.
    r.venue.fills = [fill(1, 1_000), fill(2, 2_000), fill(3, 3_000), fill(4, 9_500)]
    assert await r.audit.audit("periodic") == 1
    assert r.forwarded() == [hl_tid(2)]
    assert r.venue.starts == [0]  # from the newest journaled fill less the lookback (5 s)
    assert r.audit.start_ms == NOW_MS - 5_000
    assert r.sample("mm_fills_recovered_total", source="audit") == 1
    assert r.sample("mm_fills_recovered_total", source="resync") == 0
    assert r.sample("mm_fill_audits_total", trigger="periodic", result="ok") == 1
    # A drift's audit takes the young fill too: the venue's position already shows it.
    assert await r.audit.audit("drift") == 1
    assert r.forwarded() == [hl_tid(4)]
    assert r.venue.starts[-1] == NOW_MS - 5_000
    # Whatever the stream forwards meanwhile is not forwarded again.
    r.venue.fills.append(fill(5, 9_800))
    assert r.history.claim(fill(5, 9_800))  # the live stream had it
    await trio.sleep(2)
    assert await r.audit.audit("periodic") == 0
    assert r.forwarded() == []
    assert r.sample("mm_fills_recovered_total", source="audit") == 2
    assert r.history.recovered == {"audit": 2}


async def test_a_failed_read_skips_nothing(autojump_clock: trio.abc.Clock) -> None:
    r = rig()
    r.venue.fills = [fill(2, 2_000)]
    r.venue.fail = True
    assert await r.audit.audit("periodic") == 0
    assert r.audit.start_ms is None  # the next read starts where this one did
    assert r.sample("mm_fill_audits_total", trigger="periodic", result="failed") == 1
    await trio.sleep(60)
    r.venue.fail = False
    assert await r.audit.audit("periodic") == 1
    assert r.forwarded() == [hl_tid(2)]
    assert r.venue.starts == [0, 0]


async def test_nothing_to_audit_against_yet(autojump_clock: trio.abc.Clock) -> None:
    no_history = rig(journaled=())  # the user stream has not settled where history ends
    no_history.venue.fills = [fill(2, 2_000)]
    assert await no_history.audit.audit() == 0
    assert no_history.venue.starts == []
    no_venue = rig(venue_up=False)  # the order client is not up
    assert await no_venue.audit.audit() == 0


async def test_a_cancelled_hand_off_gives_its_claim_back(autojump_clock: trio.abc.Clock) -> None:
    r = rig(buffer=0)  # nobody reads: the send waits
    r.venue.fills = [fill(2, 2_000)]
    with trio.move_on_after(1):
        await r.audit.audit("periodic")
    assert not r.history.known(fill(2, 2_000))
    assert r.sample("mm_fills_recovered_total", source="audit") == 0


async def test_the_child_audits_periodically_and_soon_after_a_drift(
    autojump_clock: trio.abc.Clock,
) -> None:
    r = rig()
    config = r.audit.config
    started = trio.current_time()
    async with trio.open_nursery() as nursery:
        await nursery.start(r.audit.run)
        await trio.sleep(config.audit_every_s - 0.5)
        assert r.venue.starts == []
        await trio.sleep(1)
        assert len(r.venue.starts) == 1  # the period
        # A fill lost now: the next comparison of positions sees the drift.
        r.venue.fills.append(fill(9, clock.wall_ms() - 100))
        r.audit.positions_compared(("BTC",))
        seen = trio.current_time()
        while not r.forwarded():  # noqa: ASYNC110 -- the audit runs in the nursery
            await trio.sleep(0.01)
        assert trio.current_time() - seen <= config.audit_drift_gap_s + 0.05
        assert len(r.venue.starts) == 2
        assert trio.current_time() - started < 2 * config.audit_every_s
        nursery.cancel_scope.cancel()


def test_the_schedule() -> None:
    every, gap = 30.0, 2.0
    schedule = AuditSchedule(every, gap, now=100.0)
    assert schedule.trigger(129.9) is None
    assert schedule.trigger(130.0) == "periodic"
    schedule.done(130.0, "periodic", 0)
    schedule.compared(False)  # positions agree: nothing due sooner
    assert schedule.due_at() == 160.0
    schedule.compared(True)
    assert schedule.due_at() == 132.0
    assert schedule.trigger(132.0) == "drift"
    # While the drift lasts and its audits find nothing, the first few keep the short gap, then
    # it doubles up to the period.
    gaps = []
    at = 132.0
    for _ in range(QUICK_DRIFT_AUDITS + 5):
        schedule.done(at, "drift", 0)
        schedule.compared(True)
        gaps.append(schedule.due_at() - at)
        at = schedule.due_at()
    assert gaps == [gap] * (QUICK_DRIFT_AUDITS - 1) + [4.0, 8.0, 16.0, 30.0, 30.0, 30.0]
    # Found a fill: back to the short gap; positions agreeing does the same.
    schedule.done(at, "drift", 1)
    schedule.compared(True)
    assert schedule.due_at() == at + gap
    for _ in range(QUICK_DRIFT_AUDITS + 2):
        schedule.done(at, "drift", 0)
        schedule.compared(True)
    assert schedule.gap_s > gap
    schedule.compared(False)
    assert schedule.gap_s == gap


@pytest.mark.parametrize("count", [PAGE + 10])
async def test_an_audit_reads_every_page(count: int, autojump_clock: trio.abc.Clock) -> None:
    r = rig(journaled=((0, 7, 0),))
    r.venue.fills = [fill(tid, 1 + tid) for tid in range(1, count + 1)]
    assert await r.audit.audit("drift") == count
    assert r.forwarded() == [hl_tid(t) for t in range(1, count + 1)]
    assert r.venue.starts == [0, 1 + PAGE]
