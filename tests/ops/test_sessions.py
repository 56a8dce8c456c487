"""The session child on Trio's autojump clock: phase changes are journaled and notified, FORCE_FLAT
hands the track's symbols to the flattener under its deadline, a missed deadline halts, HALT
stops flattening, and ``mm flatten`` moves to REDUCE_ONLY and flattens everything.

The wall clock is pinned: ``mm.ops.governor``'s ``time.time`` reads a fixed start plus the
elapsed Trio time, so the schedule is the same on every run, whatever the real time of day.
"""

from __future__ import annotations

import types
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, cast

import attrs
import pytest
import trio
import trio.testing
from prometheus_client import CollectorRegistry

import mm.ops.governor
from mm.execution.flatten import Flattener, FlattenResult
from mm.execution.permissions import PermissionBoard, Source
from mm.journal import DATABASE_NAME, Entry, Journal, JournalConfig, read_events
from mm.ops.autonomy import AutonomyConfig, Mode, Reason, Trigger
from mm.ops.coordinator import ModeCoordinator
from mm.ops.notify import Notification, Severity
from mm.ops.session import Phase, SessionConfig
from mm.ops.sessions import SessionRunner
from mm.settings import structure_section

# A Wednesday; the track opened at 09:30 and is OPEN at the start of every test.
START = datetime(2024, 1, 3, 10, 0, tzinfo=UTC).timestamp()
FORCE_FLAT_AFTER = 60.0  # 10:01
CLOSED_AFTER = 180.0  # 10:03
TRACK: dict[str, Any] = {
    "name": "day",
    "symbols": ["BTC", "ETH", "DOGE"],
    "timezone": "UTC",
    "schedule": [
        {"phase": "pre_open", "at": "09:00"},
        {"phase": "open", "at": "09:30"},
        {"phase": "force_flat", "at": "10:01"},
        {"phase": "closed", "at": "10:03"},
    ],
}
SYMBOLS = ("ETH", "BTC", "SOL")  # what the service trades: DOGE is not among them
DRAWDOWN = Trigger(Reason.PNL_PEAK_DRAWDOWN, Mode.HALT, {"drawdown_usd": 300.0})


@attrs.frozen
class Call:
    symbols: list[str]
    deadline: float  # Trio time
    at: float  # Trio time of the call


class FakeFlattener:
    """Records each flatten; ``done`` ones take ``takes_s``, the others run to the deadline."""

    def __init__(self) -> None:
        self.active: set[str] = set()
        self.calls: list[Call] = []
        self.done = True
        self.takes_s = 2.0

    async def flatten(self, symbols: Sequence[str], deadline: float) -> FlattenResult:
        started = trio.current_time()
        self.calls.append(Call(list(symbols), deadline, started))
        self.active.update(symbols)
        try:
            if self.done:
                await trio.sleep(self.takes_s)
                return FlattenResult(True, {}, len(symbols), trio.current_time() - started)
            await trio.sleep_until(deadline)
            remaining = {symbol: 0.5 for symbol in symbols}
            return FlattenResult(False, remaining, 7, trio.current_time() - started)
        finally:
            self.active.difference_update(symbols)

    def status(self) -> dict[str, object]:
        return {"active": sorted(self.active), "last": None}


class Harness:
    def __init__(self, path: Path, flatten_deadline_s: float) -> None:
        data = {"flatten_deadline_s": flatten_deadline_s, "tracks": [TRACK]}
        self.config = structure_section(data, SessionConfig, "session")
        assert self.config.problems() == []
        self.registry = CollectorRegistry()
        self.journal = Journal(path / DATABASE_NAME, JournalConfig(), self.registry)
        self.notes: list[Notification] = []
        self.cancels = 0
        self.board = PermissionBoard()
        self.coordinator = ModeCoordinator(
            AutonomyConfig(),
            self.journal,
            self.notes.append,
            self.registry,
            self.cancel_all,
            self.board.slot(Source.AUTONOMY),
            rearmed=lambda: self.rearmed(),
        )
        self.rearmed: Callable[[], None] = lambda: None
        self.flattener = FakeFlattener()
        self.runner = SessionRunner(
            self.config,
            SYMBOLS,
            cast(Flattener, self.flattener),
            self.coordinator,
            self.journal,
            self.notes.append,
            self.registry,
            self.board,
            self.board.slot(Source.SESSION),
        )
        self.t0 = 0.0

    async def cancel_all(self) -> None:
        await trio.lowlevel.checkpoint()
        self.cancels += 1

    async def sleep_until(self, elapsed: float) -> None:
        """Until ``elapsed`` seconds after the start."""
        await trio.sleep_until(self.t0 + elapsed)

    def mode(self) -> Mode:
        return self.coordinator.mode

    def events(self, kind: str) -> list[Entry]:
        return read_events(self.journal.path, kind)

    def notes_of(self, kind: str) -> list[Notification]:
        return [note for note in self.notes if note.kind == kind]


@pytest.fixture
def pinned_wall_clock(monkeypatch: pytest.MonkeyPatch) -> None:
    """The governor's wall clock reads START plus the Trio time since the first read."""
    origin: list[float] = []

    def wall_time() -> float:
        now = trio.current_time()
        if not origin:
            origin.append(now)
        return START + (now - origin[0])

    monkeypatch.setattr(mm.ops.governor, "clock", types.SimpleNamespace(wall=wall_time))


@asynccontextmanager
async def running(
    path: Path, *, flatten_deadline_s: float = 90.0, before: Mode = Mode.NORMAL
) -> AsyncIterator[Harness]:
    harness = Harness(path, flatten_deadline_s)
    async with trio.open_nursery() as nursery:
        await nursery.start(harness.journal.run)
        await nursery.start(harness.coordinator.run)
        if before is Mode.HALT:
            await harness.coordinator.escalate(DRAWDOWN)
        harness.t0 = trio.current_time()
        await nursery.start(harness.runner.run)
        yield harness
        nursery.cancel_scope.cancel()


pytestmark = pytest.mark.usefixtures("pinned_wall_clock")


async def test_start_reports_the_current_phase(
    tmp_path: Path, autojump_clock: trio.testing.MockClock
) -> None:
    async with running(tmp_path) as h:
        assert h.runner.gate.track_phase("day") is Phase.OPEN
        status = h.runner.status()
        assert status["tracks"]["day"]["phase"] == "open"
        assert status["tracks"]["day"]["next_change"] == "2024-01-03T10:01:00+00:00"
        assert status["flatten"] == {"active": [], "last": None}
    [entry] = h.events("phase")
    assert entry.data == {
        "track": "day",
        "symbols": ["BTC", "ETH", "DOGE"],
        "previous": "init",
        "phase": "open",
        "at": START,
    }
    assert [(n.kind, n.severity) for n in h.notes] == [("phase", Severity.INFO)]
    assert h.flattener.calls == []


async def test_force_flat_flattens_the_tracks_symbols(
    tmp_path: Path, autojump_clock: trio.testing.MockClock
) -> None:
    async with running(tmp_path, flatten_deadline_s=90.0) as h:
        await h.sleep_until(FORCE_FLAT_AFTER + 1.0)
        assert h.runner.gate.track_phase("day") is Phase.FORCE_FLAT
        assert h.flattener.active == {"BTC", "ETH"}
        await h.sleep_until(CLOSED_AFTER + 1.0)

    # The track's symbols that are traded, in the track's order; 90 s from the change (the
    # next phase is 120 s away).
    assert h.flattener.calls == [
        Call(["BTC", "ETH"], h.t0 + FORCE_FLAT_AFTER + 90.0, h.t0 + FORCE_FLAT_AFTER)
    ]
    assert h.mode() is Mode.NORMAL
    assert h.cancels == 0
    flattened = h.notes_of("flatten")
    assert [(n.severity, n.title) for n in flattened] == [(Severity.INFO, "flattened")]
    assert "BTC, ETH" in flattened[0].text
    assert flattened[0].at == START + FORCE_FLAT_AFTER + h.flattener.takes_s
    phases = h.events("phase")
    assert [(e.data["previous"], e.data["phase"]) for e in phases] == [
        ("init", "open"),
        ("open", "force_flat"),
        ("force_flat", "closed"),
    ]
    assert [e.data["at"] for e in phases] == [
        START,
        START + FORCE_FLAT_AFTER,
        START + CLOSED_AFTER,
    ]
    assert [n.severity for n in h.notes_of("phase")] == [
        Severity.INFO,
        Severity.WARNING,  # force_flat
        Severity.INFO,
    ]
    [started] = h.events("flatten_started")
    assert started.data == {"symbols": ["BTC", "ETH"], "why": "track day force_flat"}
    [done] = h.events("flatten_done")
    assert done.data["done"] is True
    assert done.data["why"] == "track day force_flat"
    assert h.events("autonomy") == []


async def test_the_deadline_is_the_next_phase_when_sooner(
    tmp_path: Path, autojump_clock: trio.testing.MockClock
) -> None:
    async with running(tmp_path, flatten_deadline_s=300.0) as h:
        await h.sleep_until(FORCE_FLAT_AFTER + 1.0)
    assert [call.deadline for call in h.flattener.calls] == [h.t0 + CLOSED_AFTER]


async def test_a_missed_deadline_halts(
    tmp_path: Path, autojump_clock: trio.testing.MockClock
) -> None:
    async with running(tmp_path, flatten_deadline_s=90.0) as h:
        h.flattener.done = False
        await h.sleep_until(FORCE_FLAT_AFTER + 89.0)
        assert h.mode() is Mode.NORMAL
        await h.sleep_until(FORCE_FLAT_AFTER + 91.0)
        assert h.mode() is Mode.HALT
        assert h.coordinator.autonomy.reason is Reason.FLATTEN_DEADLINE_MISSED

    assert len(h.flattener.calls) == 1
    assert h.cancels == 1
    [missed] = h.notes_of("flatten")
    assert missed.severity is Severity.CRITICAL
    assert missed.title == "flatten missed its deadline"
    assert "BTC" in missed.text
    assert "ETH" in missed.text
    assert missed.fields == {"orders": 7}
    [halt] = h.notes_of("halt")
    assert halt.severity is Severity.CRITICAL
    assert "flatten_deadline_missed" in halt.title
    [entry] = h.events("autonomy")
    transition = entry.data["transition"]
    assert (transition["mode"], transition["reason"]) == ("halt", "flatten_deadline_missed")
    assert transition["values"] == {
        "remaining_BTC": 0.5,
        "remaining_ETH": 0.5,
        "seconds": 90.0,
    }
    assert entry.data["checkpoint"]["mode"] == "halt"
    [done] = h.events("flatten_done")
    assert done.data["done"] is False
    assert done.data["remaining"] == {"BTC": 0.5, "ETH": 0.5}


async def test_no_flatten_while_halted(
    tmp_path: Path, autojump_clock: trio.testing.MockClock
) -> None:
    async with running(tmp_path, before=Mode.HALT) as h:
        await h.sleep_until(FORCE_FLAT_AFTER + 5.0)
        assert h.runner.gate.track_phase("day") is Phase.FORCE_FLAT
        h.runner.request_flatten("alice", "please")
        await h.sleep_until(FORCE_FLAT_AFTER + 10.0)
        assert h.mode() is Mode.HALT
    assert h.flattener.calls == []
    assert h.events("flatten_started") == []
    assert h.notes_of("flatten") == []
    # The phase change itself is still journaled and notified.
    assert [e.data["phase"] for e in h.events("phase")] == ["open", "force_flat"]
    assert [n.severity for n in h.notes_of("phase")] == [Severity.INFO, Severity.WARNING]


async def test_request_flatten_reduces_then_flattens_everything(
    tmp_path: Path, autojump_clock: trio.testing.MockClock
) -> None:
    async with running(tmp_path, flatten_deadline_s=90.0) as h:
        await h.sleep_until(5.0)
        h.runner.request_flatten("alice", "going home")
        await h.sleep_until(6.0)
        assert h.mode() is Mode.REDUCE_ONLY
        assert h.board.permission("BTC").reduce_only
        assert h.coordinator.autonomy.reason is Reason.OPERATOR_FLATTEN
        await h.sleep_until(20.0)

    # Every traded symbol (not only a track's), under the session deadline from the request.
    assert h.flattener.calls == [Call(list(SYMBOLS), h.t0 + 5.0 + 90.0, h.t0 + 5.0)]
    assert h.mode() is Mode.REDUCE_ONLY  # stays: the operator rearms
    assert h.cancels == 0
    [entry] = h.events("autonomy")
    transition = entry.data["transition"]
    assert (transition["mode"], transition["reason"]) == ("reduce_only", "operator_flatten")
    assert transition["values"] == {"who": "alice"}
    [started] = h.events("flatten_started")
    assert started.data == {"symbols": list(SYMBOLS), "why": "alice: going home"}
    [flattened] = h.notes_of("flatten")
    assert flattened.severity is Severity.INFO
    [mode] = h.notes_of("mode")
    assert mode.severity is Severity.WARNING


async def test_a_missed_operator_flatten_halts(
    tmp_path: Path, autojump_clock: trio.testing.MockClock
) -> None:
    async with running(tmp_path, flatten_deadline_s=30.0) as h:
        h.flattener.done = False
        await h.sleep_until(1.0)
        h.runner.request_flatten("alice", "test")
        await h.sleep_until(1.0 + 31.0)
        assert h.mode() is Mode.HALT
    assert [e.data["transition"]["mode"] for e in h.events("autonomy")] == [
        "reduce_only",
        "halt",
    ]
    assert [n.severity for n in h.notes_of("flatten")] == [Severity.CRITICAL]


async def test_after_a_rearm_force_flat_is_resumed(
    tmp_path: Path, autojump_clock: trio.testing.MockClock
) -> None:
    async with running(tmp_path, flatten_deadline_s=90.0) as h:
        h.rearmed = h.runner.resume
        h.flattener.done = False
        await h.sleep_until(FORCE_FLAT_AFTER + 95.0)
        assert h.mode() is Mode.HALT
        h.flattener.done = True
        await h.coordinator.rearm("alice", "flatten again")
        await h.sleep_until(FORCE_FLAT_AFTER + 100.0)
        assert h.mode() is Mode.NORMAL

    first, second = h.flattener.calls
    assert first.deadline == h.t0 + FORCE_FLAT_AFTER + 90.0
    # Resumed at +155 s: the track closes at +180 s, sooner than 90 s away.
    assert second.symbols == ["BTC", "ETH"]
    assert second.at == h.t0 + FORCE_FLAT_AFTER + 95.0
    assert second.deadline == pytest.approx(h.t0 + CLOSED_AFTER)


async def test_resume_outside_force_flat_does_nothing(
    tmp_path: Path, autojump_clock: trio.testing.MockClock
) -> None:
    async with running(tmp_path) as h:
        h.runner.resume()
        await h.sleep_until(10.0)
    assert h.flattener.calls == []


async def test_starting_inside_force_flat_flattens_at_once(
    tmp_path: Path, autojump_clock: trio.testing.MockClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    late = START + 90.0  # 10:01:30: half a minute into FORCE_FLAT

    origin: list[float] = []

    def wall_time() -> float:
        now = trio.current_time()
        if not origin:
            origin.append(now)
        return late + (now - origin[0])

    monkeypatch.setattr(mm.ops.governor, "clock", types.SimpleNamespace(wall=wall_time))
    async with running(tmp_path, flatten_deadline_s=120.0) as h:
        await h.sleep_until(5.0)
    [call] = h.flattener.calls
    assert call.symbols == ["BTC", "ETH"]
    assert call.at == h.t0
    assert call.deadline == pytest.approx(h.t0 + 90.0)  # closed at 10:03
    assert [(e.data["previous"], e.data["phase"]) for e in h.events("phase")] == [
        ("init", "force_flat")
    ]


async def test_halt_stops_a_running_flatten(
    tmp_path: Path, autojump_clock: trio.testing.MockClock
) -> None:
    """HALT means no orders at all ("the flattener never runs while the mode is HALT").

    A flatten already running when the mode moves to HALT (here a drawdown 10 s into
    FORCE_FLAT) is left to run: it keeps sending orders until its own deadline, 80 s later.
    """
    async with running(tmp_path, flatten_deadline_s=90.0) as h:
        h.flattener.done = False
        await h.sleep_until(FORCE_FLAT_AFTER + 10.0)
        assert h.flattener.active == {"BTC", "ETH"}
        await h.coordinator.escalate(DRAWDOWN)
        await h.sleep_until(FORCE_FLAT_AFTER + 11.0)
        assert h.mode() is Mode.HALT
        assert h.flattener.active == set()


async def test_a_restart_during_force_flat_flattens_once(
    tmp_path: Path, autojump_clock: trio.testing.MockClock
) -> None:
    """The session child restarted inside FORCE_FLAT starts one flatten, not two.

    On a restart the governor reports the current phase again (force_flat -> force_flat), which
    starts a flatten in ``_on_change``, and ``run`` then calls ``resume()``, which starts a
    second one for the same track at the same time.
    """
    h = Harness(tmp_path, flatten_deadline_s=90.0)
    h.flattener.done = False
    async with trio.open_nursery() as nursery:
        await nursery.start(h.journal.run)
        await nursery.start(h.coordinator.run)
        h.t0 = trio.current_time()
        async with trio.open_nursery() as child:
            await child.start(h.runner.run)
            await h.sleep_until(FORCE_FLAT_AFTER + 5.0)
            child.cancel_scope.cancel()  # the child crashes, its flatten is cut short
        async with trio.open_nursery() as child:
            await child.start(h.runner.run)  # the supervisor restarts it
            await h.sleep_until(FORCE_FLAT_AFTER + 10.0)
            child.cancel_scope.cancel()
        nursery.cancel_scope.cancel()
    assert [call.at - h.t0 for call in h.flattener.calls] == [
        FORCE_FLAT_AFTER,
        FORCE_FLAT_AFTER + 5.0,
    ]


async def test_a_restart_while_the_operators_flatten_holds_flattens_again_until_a_rearm(
    tmp_path: Path, autojump_clock: trio.testing.MockClock
) -> None:
    """``mm flatten``'s REDUCE_ONLY holds until ``mm rearm``: the session child restarted in
    it (or the process, whose mode the journal restores) flattens again under a new deadline,
    finishing the flatten the restart cut off; once rearmed, a restart flattens nothing."""
    h = Harness(tmp_path, flatten_deadline_s=90.0)
    h.flattener.done = False  # (runs to its deadline: cut off by the restart)
    async with trio.open_nursery() as nursery:
        await nursery.start(h.journal.run)
        await nursery.start(h.coordinator.run)
        h.t0 = trio.current_time()
        for run_for in (10.0, 20.0, 30.0):
            async with trio.open_nursery() as child:
                await child.start(h.runner.run)
                if run_for == 10.0:
                    await h.sleep_until(5.0)
                    assert h.runner.request_flatten("alice", "going home") is None
                await h.sleep_until(run_for)
                child.cancel_scope.cancel()  # the child crashes, its flatten is cut short
            if run_for == 20.0:
                await h.coordinator.rearm("alice", "back")
        nursery.cancel_scope.cancel()
    assert [(call.at - h.t0, call.deadline - h.t0) for call in h.flattener.calls] == [
        (5.0, 95.0),
        (10.0, 100.0),  # again, as the child restarts in REDUCE_ONLY
    ]
    whys = [entry.data["why"] for entry in h.events("flatten_started")]
    assert whys == ["alice: going home", "the operator's flatten, again after a restart"]
    assert h.coordinator.reason is None  # rearmed: the third start flattened nothing
    # the process's restart: the journal's mode, restored, holds the flatten too
    (tmp_path / "held").mkdir()
    held = Harness(tmp_path / "held", flatten_deadline_s=90.0)
    checkpoint = {"mode": "reduce_only", "reason": "operator_flatten", "since": START}
    held.coordinator.restore(checkpoint)
    async with trio.open_nursery() as nursery:
        await nursery.start(held.journal.run)
        await nursery.start(held.coordinator.run)
        await nursery.start(held.runner.run)
        await trio.sleep(1.0)
        nursery.cancel_scope.cancel()
    assert [call.symbols for call in held.flattener.calls] == [list(SYMBOLS)]
