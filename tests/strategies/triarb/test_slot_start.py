"""A triangle started for a waiting slot in the strategy's task (``ExecutorSlot.start``): the
claim and the limits there, and the slot's task going on from them; its start journaled,
committed, before its first leg is sent (with every client order id it may send under); a
start the journal does not commit in time sends nothing and counts no triangle; a cancel
while the commit is awaited still reports the journaled triangle; a refusal leaves no claim
behind (on the virtual clock)."""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal
from typing import Any

import trio
import trio.testing

from mm.strategies.triarb.claims import Claims
from mm.strategies.triarb.claims import Reason as ClaimReason
from mm.strategies.triarb.reports import Outcome, TriangleReport
from mm.strategies.triarb.signals import Signal
from mm.strategies.triarb.slot import NOT_JOURNALED, START_JOURNAL_S, ExecutorSlot, Started
from mm.strategies.triarb.started import LABELS, StartedTriangle
from tests.strategies.triarb.test_slot import FULL, Reply, ScriptedVenue, harness, signal, sizes

THREE_LEGS = (
    Reply(fills=(("50000", "0.00199"),)),
    Reply(fills=(("0.05", "0.0397"),)),
    Reply(fills=(("2600", "0.0397"),)),
)


class Journal:
    """The journal's committed write of a start: what was placed when each was asked for, and
    the commit held until ``commit`` is set (``None``: at once)."""

    def __init__(self, venue: list[ScriptedVenue], *, commit: trio.Event | None = None) -> None:
        self._venue = venue
        self.commit = commit
        self.rows: list[dict[str, Any]] = []
        self.placed_before: list[int] = []

    async def record(self, row: dict[str, Any]) -> None:
        self.rows.append(row)
        self.placed_before.append(len(self._venue[0].placed))
        if self.commit is not None:
            await self.commit.wait()
        await trio.lowlevel.checkpoint()


def journaled(
    *replies: Reply,
    commit: trio.Event | None = None,
    claims: Claims | None = None,
    slot: int = 0,
    signals: trio.MemoryReceiveChannel[Signal] | None = None,
    admit: Callable[[Signal], str | None] | None = None,
) -> tuple[ExecutorSlot, ScriptedVenue, Journal]:
    """A slot over a scripted venue that answers with ``replies``, journaling its starts."""
    made: list[ScriptedVenue] = []
    journal = Journal(made, commit=commit)
    slot_, venue = harness(
        lambda fills: ScriptedVenue(replies, fills),
        claims=claims,
        slot=slot,
        signals=signals,
        admit=admit,
        journal_start=journal.record,
    )
    made.append(venue)
    return slot_, venue, journal


async def test_a_started_triangle_runs_as_a_taken_one_its_start_journaled_first(
    autojump_clock: trio.testing.MockClock,
) -> None:
    started_slot, started_venue, journal = journaled(*THREE_LEGS)
    taken_slot, taken_venue, _ = journaled(*THREE_LEGS)

    started = started_slot.start(signal())
    assert started is not None
    assert started_venue.placed == []
    assert started_slot._claims.busy() == {0: started.signal.triangle}
    assert started_slot.taken == 0  # (a triangle counts once its start is journaled)
    report = await started_slot.run_started(started)
    taken = await taken_slot.take(signal())

    assert report is not None
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
    # Journaled before anything was placed, with every order's client id, under the
    # report's id: what a start after a crash reads back.
    (row,) = journal.rows
    assert journal.placed_before == [0]
    assert row["cloids"] == {label: f"tri0-1-{label}" for label in LABELS}
    assert row["id"] == report.id == "tri0-1"
    back = StartedTriangle.of(row)
    assert (back.evaluation, back.signal_ns, back.slot) == (report.evaluation, report.signal_ns, 0)


async def test_a_slots_run_goes_on_from_a_started_triangle_in_its_own_task(
    autojump_clock: trio.testing.MockClock,
) -> None:
    send, receive = trio.open_memory_channel[Started](1)
    slot, venue, journal = journaled(*THREE_LEGS, signals=receive)  # type: ignore[arg-type]
    started = slot.start(signal())
    assert started is not None
    send.send_nowait(started)
    send.close()
    async with trio.open_nursery() as nursery:
        nursery.start_soon(slot.run, name="the slot")
    assert slot.outcomes == {Outcome.FILLED: 1}
    assert len(venue.placed) == 3
    assert len(journal.rows) == 1


async def test_a_start_the_journal_does_not_commit_sends_nothing_and_counts_no_triangle(
    autojump_clock: trio.testing.MockClock,
) -> None:
    refused: list[str] = []
    slot, venue, journal = journaled(*THREE_LEGS, commit=trio.Event())
    slot._on_refused = refused.append
    started = slot.start(signal())
    assert started is not None
    before = trio.current_time()
    assert await slot.run_started(started) is None
    assert trio.current_time() - before == START_JOURNAL_S
    assert venue.placed == []
    assert slot.taken == 0
    assert slot.refused == {NOT_JOURNALED: 1}
    assert refused == [NOT_JOURNALED]
    assert slot._claims.busy() == {}
    assert len(journal.rows) == 1


async def test_a_cancel_while_the_start_is_committed_reports_it_and_sends_nothing(
    autojump_clock: trio.testing.MockClock,
) -> None:
    commit = trio.Event()
    slot, venue, journal = journaled(*THREE_LEGS, commit=commit)
    started = slot.start(signal())
    assert started is not None
    reports: list[TriangleReport | None] = []

    async def run(*, task_status: trio.TaskStatus[trio.CancelScope]) -> None:
        with trio.CancelScope() as scope:
            task_status.started(scope)
            reports.append(await slot.run_started(started))

    async with trio.open_nursery() as nursery:
        scope = await nursery.start(run)
        await trio.testing.wait_all_tasks_blocked()
        scope.cancel()  # the kill switch, while the journal commits the start
        await trio.testing.wait_all_tasks_blocked()
        commit.set()
    (report,) = reports
    assert report is not None
    assert report.outcome is Outcome.ABORTED
    assert report.detail == "cancelled before L0"
    assert venue.placed == []
    assert slot.taken == 1  # journaled, so counted and reported
    assert [row["id"] for row in journal.rows] == [report.id]


async def test_a_claim_refused_or_a_limit_starts_nothing_and_holds_no_claim() -> None:
    claims = Claims(2)
    first, _, _ = journaled(FULL, claims=claims)
    assert first.start(signal()) is not None
    second, _, journal = journaled(FULL, claims=claims, slot=1)
    assert second.start(signal(2)) is None
    assert second.dropped == {ClaimReason.SAME_TRIANGLE: 1}

    limited, _, journal = journaled(FULL, admit=lambda s: "daily loss")
    assert limited.start(signal()) is None
    assert limited.refused == {"daily loss": 1}
    assert limited._claims.busy() == {}
    assert journal.rows == []


async def test_a_started_triangle_its_slot_will_never_run_is_forsaken() -> None:
    slot, venue, journal = journaled(FULL)
    started = slot.start(signal())
    assert started is not None
    slot.forsake(started)
    assert slot._claims.busy() == {}
    assert (venue.placed, journal.rows) == ([], [])


async def test_a_cancel_after_the_start_awaits_leg_one_and_sends_no_further_leg(
    autojump_clock: trio.testing.MockClock,
) -> None:
    gate = trio.Event()
    slot, venue, _ = journaled(Reply(fills=(("50000", "0.00199"),), gate=gate), *THREE_LEGS[1:])
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
    assert report is not None
    assert report.outcome is Outcome.ABORTED
    assert "cancelled" in report.detail
    assert [label for label, _ in report.runs] == ["L0"]
    assert report.held == {"BTC": Decimal("0.00199")}
    assert len(venue.placed) == 1
