"""A triangle started for a waiting slot in the strategy's task (``ExecutorSlot.start``): the
claim and the limits there, the first leg written at once when the venue can, and the slot's
task going on from that leg's answer; the same orders and report as a slot that takes the
signal itself, a refusal that leaves no claim behind, and a cancel after the start that sends
no further leg (on the virtual clock)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from decimal import Decimal

import pytest
import trio
import trio.testing

from mm.strategies.triarb.cascade import LegOrder
from mm.strategies.triarb.claims import Claims
from mm.strategies.triarb.claims import Reason as ClaimReason
from mm.strategies.triarb.reports import Outcome
from mm.strategies.triarb.signals import Signal
from mm.strategies.triarb.slot import ExecutorSlot, LegAck, LegEvent, Started
from mm.strategies.triarb.triangles import BookView
from tests.strategies.triarb.test_slot import FULL, Reply, ScriptedVenue, harness, signal, sizes

THREE_LEGS = (
    Reply(fills=(("50000", "0.00199"),)),
    Reply(fills=(("0.05", "0.0397"),)),
    Reply(fills=(("2600", "0.0397"),)),
)


class Sent:
    """A leg the venue wrote at once: ``ack`` runs the scripted venue's answer to it."""

    def __init__(self, venue: SendingVenue, order: LegOrder, cloid: str, book: BookView):
        self._venue, self._order, self._cloid, self._book = venue, order, cloid, book
        self.abandoned = False

    async def ack(self) -> LegAck:
        self._venue.acked_in.append(trio.lowlevel.current_task().name)
        return await ScriptedVenue.place(self._venue, self._order, self._cloid, self._book)

    def abandon(self) -> None:
        self.abandoned = True


class SendingVenue(ScriptedVenue):
    """The scripted venue, able to write a leg at once (``SendsLegNow``) while ``ready``; what
    it wrote at once is in ``sent`` (the ``placed`` list has every order it answered)."""

    def __init__(
        self,
        replies: Sequence[Reply],
        fills: trio.MemorySendChannel[LegEvent],
        *,
        ready: bool = True,
        refuse: str = "",
        fail: bool = False,
    ) -> None:
        super().__init__(replies, fills)
        self.ready, self.refuse, self.fail = ready, refuse, fail
        self.sent: list[Sent] = []
        self.acked_in: list[str] = []

    def send(self, order: LegOrder, cloid: str, book: BookView) -> Sent | LegAck | None:
        if self.fail:
            raise RuntimeError("the order path failed")
        if not self.ready:
            return None
        if self.refuse:
            self.placed.append((order, cloid))
            return LegAck(None, self.refuse)
        sent = Sent(self, order, cloid, book)
        self.sent.append(sent)
        return sent


def sending(
    *replies: Reply,
    ready: bool = True,
    refuse: str = "",
    fail: bool = False,
    claims: Claims | None = None,
    slot: int = 0,
    signals: trio.MemoryReceiveChannel[Signal] | None = None,
    admit: Callable[[Signal], str | None] | None = None,
) -> tuple[ExecutorSlot, SendingVenue]:
    """A slot over a ``SendingVenue`` that answers with ``replies``, in order."""
    made: list[SendingVenue] = []

    def venue_of(fills: trio.MemorySendChannel[LegEvent]) -> SendingVenue:
        made.append(SendingVenue(replies, fills, ready=ready, refuse=refuse, fail=fail))
        return made[0]

    slot_, _ = harness(venue_of, claims=claims, slot=slot, signals=signals, admit=admit)
    return slot_, made[0]


async def test_a_started_triangle_runs_as_a_taken_one_from_its_first_legs_answer(
    autojump_clock: trio.testing.MockClock,
) -> None:
    started_slot, started_venue = sending(*THREE_LEGS)
    taken_slot, taken_venue = sending(*THREE_LEGS, ready=False)

    started = started_slot.start(signal())
    assert started is not None
    assert started.first is not None
    # Leg 1 was written in this very step: before any await, the venue has it, unanswered.
    assert [s._order for s in started_venue.sent] == [started.first.order]
    assert started_venue.placed == []
    assert started_slot._claims.busy() == {0: started.signal.triangle}
    report = await started_slot.run_started(started)
    taken = await taken_slot.take(signal())

    assert taken is not None
    assert sizes(started_venue) == sizes(taken_venue)
    assert [cloid for _, cloid in started_venue.placed] == ["tri0-1-L0", "tri0-1-L1", "tri0-1-L2"]
    assert (report.outcome, report.spent, report.returned, report.held) == (
        taken.outcome,
        taken.spent,
        taken.returned,
        taken.held,
    )
    assert report.outcome is Outcome.FILLED
    assert started_slot.taken == taken_slot.taken == 1
    assert started_slot._claims.busy() == {}


async def test_a_slots_run_goes_on_from_a_started_triangle_in_its_own_task(
    autojump_clock: trio.testing.MockClock,
) -> None:
    send, receive = trio.open_memory_channel[Started](1)
    slot, venue = sending(*THREE_LEGS, signals=receive)  # type: ignore[arg-type]
    started = slot.start(signal())
    assert started is not None
    send.send_nowait(started)
    send.close()
    async with trio.open_nursery() as nursery:
        nursery.start_soon(slot.run, name="the slot")
    assert slot.outcomes == {Outcome.FILLED: 1}
    assert venue.acked_in == ["the slot"]  # leg 1's answer awaited in the slot's task


async def test_a_venue_that_cannot_write_now_leaves_the_first_leg_to_the_slot(
    autojump_clock: trio.testing.MockClock,
) -> None:
    slot, venue = sending(*THREE_LEGS, ready=False)
    started = slot.start(signal())
    assert started is not None
    assert started.first is None
    assert venue.placed == []
    report = await slot.run_started(started)
    assert report.outcome is Outcome.FILLED
    assert len(venue.placed) == 3


async def test_a_refusal_at_once_fails_the_triangle_with_the_venues_words(
    autojump_clock: trio.testing.MockClock,
) -> None:
    slot, venue = sending(refuse="pre-trade check closed: HALT")
    started = slot.start(signal())
    assert started is not None
    report = await slot.run_started(started)
    assert report.outcome is Outcome.FAILED
    assert "rejected: pre-trade check closed: HALT" in report.detail
    assert len(venue.placed) == 1  # nothing further was sent
    assert slot._claims.busy() == {}


async def test_a_claim_refused_or_a_limit_starts_nothing_and_holds_no_claim() -> None:
    claims = Claims(2)
    first, _ = sending(FULL, claims=claims)
    assert first.start(signal()) is not None
    second, venue = sending(FULL, claims=claims, slot=1)
    assert second.start(signal(2)) is None
    assert second.dropped == {ClaimReason.SAME_TRIANGLE: 1}
    assert venue.sent == []

    limited, venue = sending(FULL, admit=lambda s: "daily loss")
    assert limited.start(signal()) is None
    assert limited.refused == {"daily loss": 1}
    assert limited._claims.busy() == {}
    assert venue.sent == []


async def test_an_order_path_that_fails_leaves_no_claim_behind() -> None:
    slot, _ = sending(FULL, fail=True)
    with pytest.raises(RuntimeError, match="the order path failed"):
        slot.start(signal())
    assert slot._claims.busy() == {}


async def test_a_started_triangle_its_slot_will_never_run_is_forsaken() -> None:
    slot, venue = sending(FULL)
    started = slot.start(signal())
    assert started is not None
    slot.forsake(started)
    assert [s.abandoned for s in venue.sent] == [True]
    assert slot._claims.busy() == {}


async def test_a_cancel_after_the_start_awaits_leg_one_and_sends_no_further_leg(
    autojump_clock: trio.testing.MockClock,
) -> None:
    gate = trio.Event()
    slot, venue = sending(Reply(fills=(("50000", "0.00199"),), gate=gate), *THREE_LEGS[1:])
    started = slot.start(signal())
    assert started is not None
    reports = []

    async def run(*, task_status: trio.TaskStatus[trio.CancelScope]) -> None:
        with trio.CancelScope() as scope:
            task_status.started(scope)
            reports.append(await slot.run_started(started))

    async with trio.open_nursery() as nursery:
        scope = await nursery.start(run)
        await trio.testing.wait_all_tasks_blocked()
        scope.cancel()  # the kill switch, while leg 1 awaits its answer
        await trio.testing.wait_all_tasks_blocked()
        gate.set()
    (report,) = reports
    assert report.outcome is Outcome.ABORTED
    assert "cancelled" in report.detail
    assert [label for label, _ in report.runs] == ["L0"]
    assert report.held == {"BTC": Decimal("0.00199")}
    assert len(venue.placed) == 1
