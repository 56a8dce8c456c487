"""The mode coordinator with a real journal: a transition takes effect at once, is journaled with
its evidence and checkpoint, notified with the right severity, and HALT cancels every order."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
import trio
import trio.testing
from prometheus_client import CollectorRegistry, Counter, Histogram

from mm.execution.permissions import PermissionBoard, Source
from mm.journal import DATABASE_NAME, Entry, Journal, JournalConfig, read_events
from mm.ops.autonomy import REASONS, Autonomy, AutonomyConfig, Mode, Reason, Trigger
from mm.ops.coordinator import (
    JOURNAL_KIND,
    Escalate,
    ModeCoordinator,
    RearmMode,
    metrics_snapshot,
)
from mm.ops.notify import Notification, Severity
from tests.conftest import eventually

STALE = Trigger(Reason.JOURNAL_STALE, Mode.REDUCE_ONLY, {"lag_s": 61.0})
MARGIN = Trigger(Reason.MARGIN_WARNING, Mode.QUARANTINED, {"usage": 0.6})
DRAWDOWN = Trigger(Reason.PNL_PEAK_DRAWDOWN, Mode.HALT, {"drawdown_usd": 300.0, "limit_usd": 250.0})


class Harness:
    """A coordinator with a journal in tmp_path, the notifications sent and the cancels made."""

    def __init__(self, path: Path, config: AutonomyConfig | None = None, **journal: Any) -> None:
        self.registry = CollectorRegistry()
        self.journal = Journal(path / DATABASE_NAME, JournalConfig(**journal), self.registry)
        self.notes: list[Notification] = []
        self.cancels = 0
        self.mode_at_cancel: list[Mode] = []
        self.board = PermissionBoard()
        self.coordinator = ModeCoordinator(
            config or AutonomyConfig(),
            self.journal,
            self.notes.append,
            self.registry,
            self.cancel_all,
            self.board.slot(Source.AUTONOMY),
            rearmed=lambda: self.rearmed(),
        )
        self.rearmed: Callable[[], None] = lambda: None

    async def cancel_all(self) -> None:
        await trio.lowlevel.checkpoint()
        self.mode_at_cancel.append(self.coordinator.mode)
        self.cancels += 1

    def events(self, kind: str | None = JOURNAL_KIND) -> list[Entry]:
        """Read the journal (after the writer has stopped)."""
        return read_events(self.journal.path, kind)

    def sample(self, name: str, labels: dict[str, str] | None = None) -> float | None:
        return self.registry.get_sample_value(name, labels or {})


@asynccontextmanager
async def running(path: Path, config: AutonomyConfig | None = None) -> AsyncIterator[Harness]:
    """The journal writer and the coordinator's command loop run in a nursery; on exit both
    stop (the writer flushes) and the journal can be read."""
    harness = Harness(path, config)
    async with trio.open_nursery() as nursery:
        await nursery.start(harness.journal.run)
        await nursery.start(harness.coordinator.run)
        yield harness
        nursery.cancel_scope.cancel()


def flags(board: PermissionBoard) -> tuple[bool, bool, bool]:
    """What the board, written by the coordinator alone, says: pulled, reduce only, halted."""
    permission = board.permission("BTC")
    return permission.closed is not None, permission.reduce_only, board.halted() is not None


# --- what the rest of the service reads --------------------------------------------------------


@pytest.mark.parametrize(
    ("trigger", "expected"),
    [
        (MARGIN, (True, False, False)),
        (STALE, (False, True, False)),
        (DRAWDOWN, (True, False, True)),
    ],
    ids=["quarantined", "reduce_only", "halt"],
)
async def test_flags_follow_the_mode(
    tmp_path: Path, trigger: Trigger, expected: tuple[bool, bool, bool]
) -> None:
    async with running(tmp_path) as h:
        assert flags(h.board) == (False, False, False)
        assert h.coordinator.mode is Mode.NORMAL
        await h.coordinator.escalate(trigger)
        assert h.coordinator.mode is trigger.mode
        assert flags(h.board) == expected


async def test_the_mode_takes_effect_before_the_journal_write(tmp_path: Path) -> None:
    """The flags change the moment the mode moves, even while the journal cannot keep up."""
    h = Harness(tmp_path, queue_size=1)
    await h.journal.record("filler")  # the queue is now full and nobody writes it
    async with trio.open_nursery() as nursery:
        nursery.start_soon(h.coordinator.escalate, STALE)
        await trio.testing.wait_all_tasks_blocked()
        assert h.board.permission("BTC").reduce_only is True
        assert h.sample("mm_autonomy_mode") == 2.0
        assert h.notes == []  # notified only after journaling
        await nursery.start(h.journal.run)
        await eventually(lambda: len(h.notes) == 1)
        nursery.cancel_scope.cancel()
    assert [e.kind for e in h.events(None)] == ["filler", JOURNAL_KIND]


# --- journal and evidence --------------------------------------------------------------------


async def test_escalation_is_journaled_with_evidence(tmp_path: Path) -> None:
    before = time.time()
    async with running(tmp_path) as h:
        Histogram("mm_test_seconds", "A histogram.", registry=h.registry).observe(0.2)
        Counter("not_mm_things", "Not ours.", registry=h.registry).inc()
        h.coordinator.note("feed reconnected BTC")
        h.coordinator.observe([STALE])
        transition = await h.coordinator.escalate(STALE)
    after = time.time()

    assert transition is not None
    assert before <= transition.at <= after
    entries = h.events()
    assert len(entries) == 1
    data = entries[0].data
    assert data["transition"] == {
        "previous": "normal",
        "mode": "reduce_only",
        "reason": "journal_stale",
        "at": transition.at,
        "automatic": True,
        "values": {"lag_s": 61.0},
        "who": "",
        "why": "",
    }
    assert data["checkpoint"] == {
        "mode": "reduce_only",
        "reason": "journal_stale",
        "since": transition.at,
        "values": {"lag_s": 61.0},
    }
    evidence = data["evidence"]
    assert set(evidence) == {"triggers", "recent_events", "metrics"}
    assert evidence["triggers"] == {"journal_stale": {"lag_s": 61.0}}
    recent = evidence["recent_events"]
    assert recent[0].endswith(" feed reconnected BTC")
    assert recent[-1].endswith(" autonomy normal -> reduce_only (journal_stale)")
    metrics = evidence["metrics"]
    assert metrics
    assert all(name.startswith("mm_") for name in metrics)
    assert not any("_bucket" in name or "_created" in name for name in metrics)
    assert metrics["mm_autonomy_mode"] == 2.0
    assert metrics['mm_autonomy_transitions_total{mode="reduce_only",reason="journal_stale"}'] == 1
    assert metrics['mm_autonomy_trigger{reason="journal_stale"}'] == 1.0
    assert metrics["mm_test_seconds_count"] == 1.0
    assert metrics["mm_test_seconds_sum"] == pytest.approx(0.2)
    assert not any("not_mm" in name for name in metrics)
    # The journaled checkpoint brings the mode back after a restart.
    restored = Autonomy.restore(AutonomyConfig(), data["checkpoint"])
    assert (restored.mode, restored.reason) == (Mode.REDUCE_ONLY, Reason.JOURNAL_STALE)


def test_metrics_snapshot_skips_buckets_and_other_prefixes() -> None:
    registry = CollectorRegistry()
    Histogram("mm_h_seconds", "h", buckets=(1.0,), registry=registry).observe(0.5)
    Counter("mm_c", "c", ["side"], registry=registry).labels(side="b").inc(3)
    Counter("xmm_c", "c", registry=registry).inc()
    assert metrics_snapshot(registry) == {
        "mm_h_seconds_count": 1.0,
        "mm_h_seconds_sum": 0.5,
        'mm_c_total{side="b"}': 3.0,
    }


async def test_recent_events_are_bounded(tmp_path: Path) -> None:
    async with running(tmp_path) as h:
        for n in range(80):
            h.coordinator.note(f"event {n}")
        await h.coordinator.escalate(MARGIN)
    recent = h.events()[0].data["evidence"]["recent_events"]
    assert len(recent) == 50
    assert recent[0].endswith(" event 31")
    assert recent[-1].endswith("(margin_warning)")


async def test_each_transition_is_journaled(tmp_path: Path) -> None:
    async with running(tmp_path) as h:
        await h.coordinator.escalate(MARGIN)
        await h.coordinator.escalate(STALE)
        assert await h.coordinator.escalate(MARGIN) is None  # milder: nothing
        await h.coordinator.escalate(DRAWDOWN)
        await h.coordinator.rearm("alice", "venue checked")
    entries = h.events()
    assert [(e.data["transition"]["previous"], e.data["transition"]["mode"]) for e in entries] == [
        ("normal", "quarantined"),
        ("quarantined", "reduce_only"),
        ("reduce_only", "halt"),
        ("halt", "normal"),
    ]
    assert [e.data["checkpoint"]["mode"] for e in entries] == [
        "quarantined",
        "reduce_only",
        "halt",
        "normal",
    ]
    rearm = entries[-1].data["transition"]
    assert (rearm["who"], rearm["why"], rearm["automatic"]) == ("alice", "venue checked", False)


# --- HALT, notifications ---------------------------------------------------------------------


async def test_halt_cancels_everything_once_and_is_critical(tmp_path: Path) -> None:
    async with running(tmp_path) as h:
        await h.coordinator.escalate(STALE)
        assert h.cancels == 0
        transition = await h.coordinator.escalate(DRAWDOWN)
        assert transition is not None
        assert h.cancels == 1
        assert h.mode_at_cancel == [Mode.HALT]  # already halted while canceling
        assert await h.coordinator.escalate(DRAWDOWN) is None
        assert h.cancels == 1
    halt = h.notes[-1]
    assert halt.severity is Severity.CRITICAL
    assert halt.critical
    assert halt.kind == "halt"
    assert "HALT" in halt.title
    assert "pnl_peak_drawdown" in halt.title
    assert halt.at == transition.at
    assert dict(halt.fields) == {"drawdown_usd": 300.0, "limit_usd": 250.0}
    assert len(h.notes) == 2


@pytest.mark.parametrize("trigger", [MARGIN, STALE], ids=["quarantined", "reduce_only"])
async def test_escalation_short_of_halt_warns(tmp_path: Path, trigger: Trigger) -> None:
    async with running(tmp_path) as h:
        await h.coordinator.escalate(trigger)
    assert h.cancels == 0
    assert len(h.notes) == 1
    note = h.notes[0]
    assert (note.kind, note.severity) == ("mode", Severity.WARNING)
    assert trigger.mode.label.upper() in note.title
    assert trigger.reason.value in note.text
    assert dict(note.fields) == dict(trigger.values)


async def test_rearm_informs_and_calls_listeners(tmp_path: Path) -> None:
    seen: list[Mode] = []
    async with running(tmp_path) as h:
        h.rearmed = lambda: seen.append(h.coordinator.mode)
        assert await h.coordinator.rearm("alice", "nothing to do") is None  # in NORMAL
        assert seen == []
        assert h.notes == []
        await h.coordinator.escalate(DRAWDOWN)
        transition = await h.coordinator.rearm("alice", "drawdown understood")
        assert transition is not None
        assert transition.automatic is False
        assert flags(h.board) == (False, False, False)
        assert seen == [Mode.NORMAL]  # once, after the mode is back
        assert h.cancels == 1
    note = h.notes[-1]
    assert (note.kind, note.severity) == ("mode", Severity.INFO)
    assert note.fields["who"] == "alice"
    assert note.fields["why"] == "drawdown understood"
    assert "NORMAL" in note.title
    assert "rearm" in note.title


async def test_recover_from_quarantine(tmp_path: Path) -> None:
    async with running(tmp_path, AutonomyConfig(quarantine_recover_after_s=30.0)) as h:
        await h.coordinator.escalate(MARGIN)
        assert await h.coordinator.recover(None) is None
        assert await h.coordinator.recover(time.time()) is None
        transition = await h.coordinator.recover(time.time() - 31.0)
        assert transition is not None
        assert h.coordinator.mode is Mode.NORMAL
    assert [(n.kind, n.severity) for n in h.notes] == [
        ("mode", Severity.WARNING),
        ("mode", Severity.INFO),
    ]
    assert [e.data["transition"]["mode"] for e in h.events()] == ["quarantined", "normal"]
    assert h.sample("mm_autonomy_transitions_total", {"mode": "normal", "reason": "rearm"}) == 1


# --- commands --------------------------------------------------------------------------------


async def test_requests_are_served_by_run(tmp_path: Path) -> None:
    async with running(tmp_path) as h:
        h.coordinator.request(Escalate(DRAWDOWN))
        await eventually(lambda: h.coordinator.mode is Mode.HALT)
        await eventually(lambda: len(h.notes) == 1)
        assert h.cancels == 1
        h.coordinator.request(RearmMode("bob", "restarted the feed"))
        await eventually(lambda: h.coordinator.mode is Mode.NORMAL)
        await eventually(lambda: len(h.notes) == 2)
    assert h.notes[-1].fields["who"] == "bob"
    assert [e.data["transition"]["mode"] for e in h.events()] == ["halt", "normal"]


# --- metrics ---------------------------------------------------------------------------------


async def test_mode_gauge_and_transition_counter(tmp_path: Path) -> None:
    async with running(tmp_path) as h:
        assert h.sample("mm_autonomy_mode") == 0.0
        for reason in REASONS:
            assert h.sample("mm_autonomy_trigger", {"reason": reason.value}) == 0.0
        await h.coordinator.escalate(MARGIN)
        assert h.sample("mm_autonomy_mode") == 1.0
        await h.coordinator.escalate(STALE)
        assert h.sample("mm_autonomy_mode") == 2.0
        await h.coordinator.escalate(DRAWDOWN)
        assert h.sample("mm_autonomy_mode") == 3.0
        await h.coordinator.rearm("alice", "ok")
        assert h.sample("mm_autonomy_mode") == 0.0
        await h.coordinator.escalate(DRAWDOWN)
    counts = {
        ("quarantined", "margin_warning"): 1.0,
        ("reduce_only", "journal_stale"): 1.0,
        ("halt", "pnl_peak_drawdown"): 2.0,
        ("normal", "rearm"): 1.0,
    }
    for (mode_label, reason_label), count in counts.items():
        labels = {"mode": mode_label, "reason": reason_label}
        assert h.sample("mm_autonomy_transitions_total", labels) == count


async def test_observe_sets_the_trigger_gauge(tmp_path: Path) -> None:
    async with running(tmp_path) as h:
        h.coordinator.observe([STALE, MARGIN])
        assert h.sample("mm_autonomy_trigger", {"reason": "journal_stale"}) == 1.0
        assert h.sample("mm_autonomy_trigger", {"reason": "margin_warning"}) == 1.0
        assert h.coordinator.status()["triggers"] == {
            "journal_stale": {"lag_s": 61.0},
            "margin_warning": {"usage": 0.6},
        }
        h.coordinator.observe([MARGIN])
        assert h.sample("mm_autonomy_trigger", {"reason": "journal_stale"}) == 0.0
        assert h.sample("mm_autonomy_trigger", {"reason": "margin_warning"}) == 1.0
        h.coordinator.observe([])
        assert h.sample("mm_autonomy_trigger", {"reason": "margin_warning"}) == 0.0
        assert h.coordinator.status()["triggers"] == {}
        assert h.coordinator.mode is Mode.NORMAL  # observing never moves the mode
    assert h.events() == []


# --- restore ---------------------------------------------------------------------------------


async def test_restore_from_a_checkpoint(tmp_path: Path) -> None:
    async with running(tmp_path) as first:
        await first.coordinator.escalate(DRAWDOWN)
    checkpoint = first.events()[-1].data["checkpoint"]

    second = Harness(tmp_path / "second")
    second.coordinator.restore(checkpoint)
    assert second.coordinator.mode is Mode.HALT
    assert flags(second.board) == (True, False, True)
    assert second.coordinator.autonomy.reason is Reason.PNL_PEAK_DRAWDOWN
    assert second.sample("mm_autonomy_mode") == 3.0
    status = second.coordinator.status()
    assert (status["mode"], status["reason"]) == ("halt", "pnl_peak_drawdown")
    # Restoring is not a transition: nothing canceled, notified or counted.
    assert second.cancels == 0
    assert second.notes == []
    labels = {"mode": "halt", "reason": "pnl_peak_drawdown"}
    assert second.sample("mm_autonomy_transitions_total", labels) in (None, 0.0)
    # The restored HALT still needs its rearm, and the rearm works.
    assert await second.coordinator.recover(0.0) is None
    async with trio.open_nursery() as nursery:
        await nursery.start(second.journal.run)
        assert await second.coordinator.rearm("alice", "after restart") is not None
        nursery.cancel_scope.cancel()
    assert second.coordinator.mode.label == "normal"
    assert second.events()[-1].data["transition"]["previous"] == "halt"


@pytest.mark.parametrize(
    "checkpoint",
    [None, {"mode": "quarantined", "reason": "margin_warning"}, {"mode": "bogus"}],
    ids=["none", "quarantined", "garbage"],
)
def test_restore_to_normal(tmp_path: Path, checkpoint: dict[str, Any] | None) -> None:
    h = Harness(tmp_path)
    h.coordinator.restore(checkpoint)
    assert h.coordinator.mode is Mode.NORMAL
    assert h.sample("mm_autonomy_mode") == 0.0


def test_restore_reduce_only(tmp_path: Path) -> None:
    h = Harness(tmp_path)
    h.coordinator.restore({"mode": "reduce_only", "reason": "operator_flatten", "since": 5.0})
    assert flags(h.board) == (False, True, False)
    assert h.sample("mm_autonomy_mode") == 2.0
