"""Autonomy modes: escalation only to stricter modes, recovery rules, rearm, frozen reasons and
the checkpoint that lets REDUCE_ONLY and HALT survive a restart."""

from __future__ import annotations

import enum
import itertools
from typing import Any

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from mm.ops.autonomy import (
    REASONS,
    Autonomy,
    AutonomyConfig,
    Mode,
    Reason,
    Transition,
    Trigger,
    UnknownReason,
)

# The documented reason codes (the module docstring and the [autonomy] section), written out
# here independently of the enumeration: adding, renaming or dropping one must fail this test.
DOCUMENTED_REASONS = {
    "journal_stale",
    "feed_gap_majority",
    "feed_reconnect_flapping",
    "queue_depth_exceeded",
    "memory_pressure",
    "reconciliation_drift",
    "margin_warning",
    "margin_usage",
    "pnl_peak_drawdown",
    "flatten_deadline_missed",
    "operator_flatten",
}

# A plausible reason for entering each mode (escalate does not tie reasons to modes).
REASON_FOR = {
    Mode.QUARANTINED: Reason.MARGIN_WARNING,
    Mode.REDUCE_ONLY: Reason.JOURNAL_STALE,
    Mode.HALT: Reason.PNL_PEAK_DRAWDOWN,
}
NON_NORMAL = (Mode.QUARANTINED, Mode.REDUCE_ONLY, Mode.HALT)


def in_mode(mode: Mode, config: AutonomyConfig | None = None, *, at: float = 100.0) -> Autonomy:
    """An Autonomy brought to ``mode`` the ordinary way (one escalation from NORMAL)."""
    autonomy = Autonomy(config or AutonomyConfig())
    if mode is not Mode.NORMAL:
        transition = autonomy.escalate(Trigger(REASON_FOR[mode], mode, {"x": 1}), at)
        assert transition is not None
    assert autonomy.mode is mode
    return autonomy


# --- escalation ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("current", "wanted"),
    list(itertools.product(Mode, NON_NORMAL)),
    ids=lambda mode: mode.label,
)
def test_escalate_only_to_a_stricter_mode(current: Mode, wanted: Mode) -> None:
    autonomy = in_mode(current)
    before = list(autonomy.transitions)
    reason_before, since_before = autonomy.reason, autonomy.since
    trigger = Trigger(Reason.QUEUE_DEPTH_EXCEEDED, wanted, {"fill": 0.95})

    transition = autonomy.escalate(trigger, 200.0)

    if wanted > current:
        assert transition == Transition(
            previous=current,
            mode=wanted,
            reason=Reason.QUEUE_DEPTH_EXCEEDED,
            at=200.0,
            automatic=True,
            values={"fill": 0.95},
        )
        assert autonomy.mode is wanted
        assert autonomy.reason is Reason.QUEUE_DEPTH_EXCEEDED
        assert autonomy.since == 200.0
        assert autonomy.values == {"fill": 0.95}
        assert autonomy.transitions == [*before, transition]
    else:  # the same or a milder mode: nothing changes, not even the reason or the time
        assert transition is None
        assert autonomy.mode is current
        assert autonomy.reason is reason_before
        assert autonomy.since == since_before
        assert autonomy.transitions == before


def test_a_normal_trigger_never_moves() -> None:
    autonomy = Autonomy(AutonomyConfig())
    assert autonomy.escalate(Trigger(Reason.JOURNAL_STALE, Mode.NORMAL), 1.0) is None
    assert autonomy.mode is Mode.NORMAL
    assert autonomy.transitions == []


def test_escalation_copies_the_values() -> None:
    values: dict[str, Any] = {"lag_s": 61.0}
    autonomy = Autonomy(AutonomyConfig())
    transition = autonomy.escalate(Trigger(Reason.JOURNAL_STALE, Mode.REDUCE_ONLY, values), 1.0)
    assert transition is not None
    values["lag_s"] = 0.0
    assert transition.values == {"lag_s": 61.0}
    assert autonomy.values == {"lag_s": 61.0}


def test_escalation_walks_up_the_ladder() -> None:
    autonomy = Autonomy(AutonomyConfig())
    for at, mode in enumerate(NON_NORMAL, start=1):
        assert autonomy.escalate(Trigger(REASON_FOR[mode], mode), float(at)) is not None
    assert [(t.previous, t.mode) for t in autonomy.transitions] == [
        (Mode.NORMAL, Mode.QUARANTINED),
        (Mode.QUARANTINED, Mode.REDUCE_ONLY),
        (Mode.REDUCE_ONLY, Mode.HALT),
    ]


# --- recovery --------------------------------------------------------------------------------


def test_quarantine_recovers_only_after_the_quiet_period() -> None:
    config = AutonomyConfig(quarantine_recover_after_s=30.0)
    autonomy = in_mode(Mode.QUARANTINED, config)
    assert autonomy.recover(None, 1_000.0) is None  # still triggering: no quiet_since
    assert autonomy.recover(500.0, 529.999) is None
    assert autonomy.transitions[-1].mode is Mode.QUARANTINED  # still the escalation

    transition = autonomy.recover(500.0, 530.0)

    assert transition is not None
    assert (transition.previous, transition.mode) == (Mode.QUARANTINED, Mode.NORMAL)
    assert transition.reason is None
    assert transition.automatic is True
    assert transition.at == 530.0
    assert transition.values == {"quiet_s": 30.0}
    assert autonomy.mode is Mode.NORMAL
    assert autonomy.reason is None


def test_quarantine_recovery_follows_the_configured_period() -> None:
    autonomy = in_mode(Mode.QUARANTINED, AutonomyConfig(quarantine_recover_after_s=5.0))
    assert autonomy.recover(100.0, 104.9) is None
    assert autonomy.recover(100.0, 105.0) is not None


def test_recover_in_normal_does_nothing() -> None:
    autonomy = Autonomy(AutonomyConfig())
    assert autonomy.recover(0.0, 10_000.0) is None
    assert autonomy.transitions == []


def test_reduce_only_needs_a_rearm_by_default() -> None:
    assert AutonomyConfig().reduce_only_needs_rearm is True
    autonomy = in_mode(Mode.REDUCE_ONLY)
    assert autonomy.recover(0.0, 1e9) is None
    assert autonomy.mode is Mode.REDUCE_ONLY


def test_reduce_only_recovers_when_configured() -> None:
    config = AutonomyConfig(reduce_only_needs_rearm=False, quarantine_recover_after_s=30.0)
    autonomy = in_mode(Mode.REDUCE_ONLY, config)
    assert autonomy.recover(100.0, 129.0) is None
    transition = autonomy.recover(100.0, 130.0)
    assert transition is not None
    assert (transition.previous, transition.mode) == (Mode.REDUCE_ONLY, Mode.NORMAL)
    assert autonomy.mode is Mode.NORMAL


def test_operator_flatten_never_recovers_by_itself() -> None:
    autonomy = Autonomy(AutonomyConfig(reduce_only_needs_rearm=False))
    trigger = Trigger(Reason.OPERATOR_FLATTEN, Mode.REDUCE_ONLY, {"who": "alice"})
    assert autonomy.escalate(trigger, 1.0) is not None
    assert autonomy.recover(0.0, 1e9) is None
    assert autonomy.mode is Mode.REDUCE_ONLY


def test_operator_flatten_is_kept_when_already_reduce_only() -> None:
    """``mm flatten`` during an automatic REDUCE_ONLY must not recover by itself either.

    The operator's flatten calls for REDUCE_ONLY while the mode already is REDUCE_ONLY (here for
    a stale journal): escalate ignores it as "not stricter", the reason stays journal_stale and
    recover() returns to NORMAL, letting the strategy rebuild the position the operator asked
    to flatten.
    """
    autonomy = Autonomy(AutonomyConfig(reduce_only_needs_rearm=False))
    autonomy.escalate(Trigger(Reason.JOURNAL_STALE, Mode.REDUCE_ONLY, {"lag_s": 61.0}), 1.0)
    autonomy.escalate(Trigger(Reason.OPERATOR_FLATTEN, Mode.REDUCE_ONLY, {"who": "alice"}), 2.0)
    assert autonomy.recover(10.0, 1e9) is None
    assert autonomy.mode is Mode.REDUCE_ONLY


@pytest.mark.parametrize("needs_rearm", [True, False])
def test_halt_never_recovers_by_itself(needs_rearm: bool) -> None:
    autonomy = in_mode(Mode.HALT, AutonomyConfig(reduce_only_needs_rearm=needs_rearm))
    assert autonomy.recover(0.0, 1e12) is None
    assert autonomy.mode is Mode.HALT


# --- rearm -----------------------------------------------------------------------------------


@pytest.mark.parametrize("mode", NON_NORMAL, ids=lambda mode: mode.label)
def test_rearm_from_any_mode_goes_to_normal(mode: Mode) -> None:
    autonomy = in_mode(mode)
    transition = autonomy.rearm("alice", "checked the venue", 300.0)
    assert transition == Transition(
        previous=mode,
        mode=Mode.NORMAL,
        reason=None,
        at=300.0,
        automatic=False,
        values={},
        who="alice",
        why="checked the venue",
    )
    assert autonomy.mode is Mode.NORMAL
    assert autonomy.reason is None
    assert autonomy.since == 300.0
    assert autonomy.transitions[-1] == transition


def test_rearm_in_normal_returns_none() -> None:
    autonomy = Autonomy(AutonomyConfig())
    assert autonomy.rearm("alice", "just in case", 1.0) is None
    assert autonomy.transitions == []


def test_after_a_rearm_the_same_trigger_escalates_again() -> None:
    autonomy = in_mode(Mode.HALT)
    autonomy.rearm("alice", "ok", 2.0)
    assert autonomy.escalate(Trigger(Reason.PNL_PEAK_DRAWDOWN, Mode.HALT), 3.0) is not None
    assert autonomy.mode is Mode.HALT


def test_transition_to_json() -> None:
    autonomy = in_mode(Mode.HALT, at=7.5)
    assert autonomy.transitions[-1].to_json() == {
        "previous": "normal",
        "mode": "halt",
        "reason": "pnl_peak_drawdown",
        "at": 7.5,
        "automatic": True,
        "values": {"x": 1},
        "who": "",
        "why": "",
    }
    rearm = autonomy.rearm("bob", "fixed", 8.0)
    assert rearm is not None
    assert rearm.to_json()["reason"] is None
    assert (rearm.to_json()["who"], rearm.to_json()["why"]) == ("bob", "fixed")


def test_status() -> None:
    autonomy = Autonomy(AutonomyConfig())
    assert autonomy.status()["last"] is None
    assert autonomy.status()["transitions"] == 0
    autonomy.escalate(Trigger(Reason.MEMORY_PRESSURE, Mode.REDUCE_ONLY, {"rss_mib": 3000.0}), 5.0)
    status = autonomy.status()
    assert status["mode"] == "reduce_only"
    assert status["reason"] == "memory_pressure"
    assert status["transitions"] == 1
    assert status["last"]["mode"] == "reduce_only"


# --- frozen reasons --------------------------------------------------------------------------


class OtherReason(enum.StrEnum):
    JOURNAL_STALE = "journal_stale"


@pytest.mark.parametrize(
    "reason",
    ["journal_stale", "JOURNAL_STALE", "made_up", OtherReason.JOURNAL_STALE, Mode.HALT, None, 0],
    ids=repr,
)
def test_a_reason_outside_the_enumeration_cannot_be_built(reason: Any) -> None:
    with pytest.raises(UnknownReason):
        Trigger(reason, Mode.REDUCE_ONLY)


def test_unknown_reason_is_a_value_error() -> None:
    assert issubclass(UnknownReason, ValueError)


def test_the_reasons_are_exactly_the_documented_ones() -> None:
    assert {reason.value for reason in REASONS} == DOCUMENTED_REASONS
    assert len(REASONS) == len(DOCUMENTED_REASONS)
    assert set(Reason) == REASONS
    assert isinstance(REASONS, frozenset)


def test_every_reason_builds_a_trigger() -> None:
    for reason in Reason:
        assert Trigger(reason, Mode.REDUCE_ONLY).reason is reason


def test_reason_cannot_be_extended() -> None:
    with pytest.raises(TypeError):

        class MoreReasons(Reason):  # type: ignore[misc]
            BROKER_UNAVAILABLE = "broker_unavailable"

    with pytest.raises(AttributeError):
        Reason.JOURNAL_STALE = "something_else"  # type: ignore[misc]
    with pytest.raises(ValueError, match="broker_unavailable"):
        Reason("broker_unavailable")
    assert len(Reason) == len(DOCUMENTED_REASONS)


def test_a_trigger_is_frozen() -> None:
    trigger = Trigger(Reason.JOURNAL_STALE, Mode.REDUCE_ONLY)
    with pytest.raises(AttributeError):
        trigger.reason = "made_up"  # type: ignore[misc,assignment]


# --- checkpoint and restore ------------------------------------------------------------------


@pytest.mark.parametrize("mode", [Mode.REDUCE_ONLY, Mode.HALT], ids=lambda mode: mode.label)
def test_checkpoint_round_trip_keeps_the_strict_modes(mode: Mode) -> None:
    config = AutonomyConfig()
    autonomy = Autonomy(config)
    autonomy.escalate(Trigger(REASON_FOR[mode], mode, {"lag_s": 61.5, "coin": "BTC"}), 1234.5)
    # Through JSON, as the journal stores it.
    checkpoint = orjson.loads(orjson.dumps(autonomy.checkpoint()))

    restored = Autonomy.restore(config, checkpoint)

    assert restored.mode is mode
    assert restored.reason is REASON_FOR[mode]
    assert restored.since == 1234.5
    assert restored.values == {"lag_s": 61.5, "coin": "BTC"}
    assert restored.checkpoint() == autonomy.checkpoint()
    assert restored.config is config
    assert restored.transitions == []
    assert restored.recover(0.0, 1e12) is None  # still needs its rearm
    assert restored.rearm("alice", "after restart", 2000.0) is not None
    assert restored.mode is Mode.NORMAL


def test_checkpoint_drops_quarantine() -> None:
    autonomy = in_mode(Mode.QUARANTINED)
    restored = Autonomy.restore(AutonomyConfig(), autonomy.checkpoint())
    assert restored.mode is Mode.NORMAL
    assert restored.reason is None
    assert restored.since is None


def test_checkpoint_of_normal_restores_normal() -> None:
    restored = Autonomy.restore(AutonomyConfig(), Autonomy(AutonomyConfig()).checkpoint())
    assert restored.mode is Mode.NORMAL


@pytest.mark.parametrize(
    "data",
    [
        None,
        {},
        {"reason": "journal_stale"},
        {"mode": None, "reason": "journal_stale"},
        {"mode": "bogus", "reason": "journal_stale"},
        {"mode": 3, "reason": "pnl_peak_drawdown"},
        {"mode": "halt", "reason": "broker_unavailable"},
        {"mode": "reduce_only", "reason": 7},
    ],
    ids=repr,
)
def test_restore_ignores_garbage(data: dict[str, Any] | None) -> None:
    restored = Autonomy.restore(AutonomyConfig(), data)
    assert restored.mode is Mode.NORMAL
    assert restored.reason is None


def test_restore_accepts_any_case_of_the_mode() -> None:
    restored = Autonomy.restore(AutonomyConfig(), {"mode": "HALT", "reason": "pnl_peak_drawdown"})
    assert restored.mode is Mode.HALT
    assert restored.reason is Reason.PNL_PEAK_DRAWDOWN
    assert restored.values == {}


# --- properties ------------------------------------------------------------------------------

triggers = st.lists(
    st.tuples(st.sampled_from(list(Mode)), st.sampled_from(list(Reason))), max_size=30
)


@given(triggers)
def test_without_rearm_the_mode_never_decreases(sequence: list[tuple[Mode, Reason]]) -> None:
    autonomy = Autonomy(AutonomyConfig())
    highest = Mode.NORMAL
    for now, (mode, reason) in enumerate(sequence):
        before, before_reason = autonomy.mode, autonomy.reason
        transition = autonomy.escalate(Trigger(reason, mode), float(now))
        assert autonomy.mode >= before
        # An operator's flatten in the current (non-normal) mode takes over the reason.
        pinned = (
            reason is Reason.OPERATOR_FLATTEN
            and mode == before != Mode.NORMAL
            and before_reason is not Reason.OPERATOR_FLATTEN
        )
        assert (transition is not None) == (mode > before or pinned)
        highest = max(highest, mode)
        assert autonomy.mode is highest
    assert all(
        (t.mode > t.previous or t.reason is Reason.OPERATOR_FLATTEN) and t.automatic
        for t in autonomy.transitions
    )


@given(
    st.lists(
        st.one_of(
            st.tuples(st.sampled_from(list(Mode)), st.sampled_from(list(Reason))),
            st.floats(min_value=0, max_value=1e6),  # a recover() with this much quiet
        ),
        max_size=30,
    )
)
def test_strict_modes_stay_without_rearm(steps: list[tuple[Mode, Reason] | float]) -> None:
    """With the default config only QUARANTINED ever leaves by itself."""
    autonomy = Autonomy(AutonomyConfig())
    now = 0.0
    for step in steps:
        now += 1.0
        before = autonomy.mode
        if isinstance(step, tuple):
            autonomy.escalate(Trigger(step[1], step[0]), now)
        else:
            autonomy.recover(now - step, now)
        if before >= Mode.REDUCE_ONLY:
            assert autonomy.mode >= before
        if autonomy.mode < before:
            assert (before, autonomy.mode) == (Mode.QUARANTINED, Mode.NORMAL)
