"""Tests for the kill switch: reasons, latching, rearm audit, checkpoints and their expiry."""

from __future__ import annotations

import json
from typing import Any

import pytest

from mm.risk.killswitch import (
    CHECKPOINT_MAX_AGE_S,
    MAX_FURTHER_TRIPS,
    REASON_VALUES,
    TRANSIENT_REASONS,
    KillReason,
    KillSwitch,
    Trip,
    Value,
)

T0 = 1_800_000_000.0
DAY = 24 * 60 * 60.0

SAMPLE_VALUES: dict[KillReason, dict[str, Value]] = {
    KillReason.MAX_LOSS: {"loss": 512.5, "limit": 500.0},
    KillReason.MAX_DRAWDOWN: {"drawdown": 0.031, "limit": 0.02},
    KillReason.MAX_POSITION: {"value": 25_000.0, "limit": 20_000.0},
    KillReason.POSITION_RUNAWAY: {"contracts": 12.0, "limit": 10.0},
    KillReason.STALE_DATA: {"elapsed": 31.0, "threshold": 30.0},
    KillReason.RATE_LIMIT: {"count": 3, "limit": 2},
    KillReason.CASCADE: {"severity": 5.2},
    KillReason.PRICE_VELOCITY: {"velocity": 0.2, "limit": 0.15},
    KillReason.MANUAL: {"reason": "operator stop"},
    KillReason.LIQUIDATION_DETECTED: {"position_delta": 4.0, "max_position": 1.0},
    KillReason.ESCALATION: {"error": "mm/trading: mm/trading/slot-0 exceeded the intensity"},
}


def test_reason_names() -> None:
    assert {reason.value for reason in KillReason} == {
        "max_loss",
        "max_drawdown",
        "max_position",
        "position_runaway",
        "stale_data",
        "rate_limit",
        "cascade",
        "price_velocity",
        "manual",
        "liquidation_detected",
        "escalation",
    }
    assert set(REASON_VALUES) == set(KillReason) == set(SAMPLE_VALUES)
    for reason, keys in REASON_VALUES.items():
        assert set(SAMPLE_VALUES[reason]) == set(keys)


def test_new_switch_is_armed() -> None:
    switch = KillSwitch()
    assert not switch.tripped
    assert switch.reason is None
    assert switch.original is None
    assert switch.trips == ()


@pytest.mark.parametrize("reason", list(KillReason))
def test_every_reason_trips(reason: KillReason) -> None:
    switch = KillSwitch()
    values = SAMPLE_VALUES[reason]
    assert switch.trip(reason, values, T0) is True
    assert switch.tripped
    assert switch.reason is reason
    assert switch.original == Trip(reason, values, T0)
    assert switch.original is not None
    assert dict(switch.original.values) == values


def test_latches_count_trips_of_an_armed_switch_only() -> None:
    switch = KillSwitch()
    assert switch.latches == 0
    switch.trip(KillReason.MAX_DRAWDOWN, SAMPLE_VALUES[KillReason.MAX_DRAWDOWN], T0)
    for second in range(1, 6):  # the monitor still sees its condition, and an operator asks
        switch.trip(KillReason.MAX_DRAWDOWN, SAMPLE_VALUES[KillReason.MAX_DRAWDOWN], T0 + second)
    switch.trip(KillReason.MANUAL, {"reason": "again"}, T0 + 7)
    assert switch.latches == 1
    switch.rearm("alice", "checked", T0 + 10)
    switch.trip(KillReason.MANUAL, {"reason": "drill"}, T0 + 20)
    assert switch.latches == 2
    restored = KillSwitch.restore(switch.checkpoint(T0 + 30), T0 + 40)
    assert restored.latches == 1  # a restored trip is a trip of this process


def test_a_monitor_request_repeats_a_recorded_reason_an_operator_never_does() -> None:
    switch = KillSwitch()
    assert not switch.repeats(KillReason.MAX_DRAWDOWN)  # armed: a new trip
    switch.trip(KillReason.MAX_DRAWDOWN, SAMPLE_VALUES[KillReason.MAX_DRAWDOWN], T0)
    assert switch.repeats(KillReason.MAX_DRAWDOWN)
    assert not switch.repeats(KillReason.LIQUIDATION_DETECTED)  # new evidence: recorded
    assert not switch.repeats(KillReason.MANUAL)
    switch.trip(KillReason.MANUAL, {"reason": "x"}, T0 + 1)
    assert not switch.repeats(KillReason.MANUAL)
    switch.rearm("alice", "checked", T0 + 2)
    assert not switch.repeats(KillReason.MAX_DRAWDOWN)


def test_trip_copies_values() -> None:
    switch = KillSwitch()
    values: dict[str, Value] = {"loss": 1.0, "limit": 0.5}
    switch.trip(KillReason.MAX_LOSS, values, T0)
    values["loss"] = 99.0
    assert switch.original is not None
    assert switch.original.values["loss"] == 1.0


def test_latching_keeps_the_original_reason() -> None:
    switch = KillSwitch()
    switch.trip(KillReason.STALE_DATA, SAMPLE_VALUES[KillReason.STALE_DATA], T0)
    assert switch.trip(KillReason.MAX_LOSS, SAMPLE_VALUES[KillReason.MAX_LOSS], T0 + 1) is False
    assert switch.trip(KillReason.CASCADE, SAMPLE_VALUES[KillReason.CASCADE], T0 + 2) is False
    assert switch.reason is KillReason.STALE_DATA
    assert [t.reason for t in switch.trips] == [
        KillReason.STALE_DATA,
        KillReason.MAX_LOSS,
        KillReason.CASCADE,
    ]
    assert [t.at for t in switch.trips] == [T0, T0 + 1, T0 + 2]
    assert switch.reasons == {KillReason.STALE_DATA, KillReason.MAX_LOSS, KillReason.CASCADE}


def test_only_rearm_resets_and_time_does_not() -> None:
    switch = KillSwitch()
    switch.trip(KillReason.MANUAL, {"reason": "test"}, T0)
    # Nothing but a rearm clears it: not time, not a restore round trip.
    restored = KillSwitch.restore(switch.checkpoint(T0 + 10), T0 + 20)
    assert restored.tripped
    assert switch.tripped


def test_further_trips_are_bounded() -> None:
    switch = KillSwitch()
    switch.trip(KillReason.STALE_DATA, {"elapsed": 31.0, "threshold": 30.0}, T0)
    for i in range(MAX_FURTHER_TRIPS + 10):
        switch.trip(KillReason.STALE_DATA, {"elapsed": 32.0 + i, "threshold": 30.0}, T0 + i)
    assert len(switch.trips) == MAX_FURTHER_TRIPS + 1
    assert switch.dropped == 10
    assert switch.trips[0].at == T0  # the original is always kept
    assert switch.trips[-1].at == T0 + MAX_FURTHER_TRIPS + 9


def test_rearm_resets_and_returns_an_audit_record() -> None:
    switch = KillSwitch()
    switch.trip(KillReason.MAX_DRAWDOWN, SAMPLE_VALUES[KillReason.MAX_DRAWDOWN], T0)
    switch.trip(KillReason.RATE_LIMIT, SAMPLE_VALUES[KillReason.RATE_LIMIT], T0 + 5)
    record = switch.rearm("alice", "drawdown verified at 0.4%", T0 + 600)
    assert not switch.tripped
    assert switch.reason is None
    assert switch.trips == ()
    assert record.who == "alice"
    assert record.why == "drawdown verified at 0.4%"
    assert record.at == T0 + 600
    assert record.was_tripped
    assert [t.reason for t in record.reset] == [KillReason.MAX_DRAWDOWN, KillReason.RATE_LIMIT]
    data = json.loads(json.dumps(record.to_json()))
    assert data["who"] == "alice"
    assert data["reset"][0]["reason"] == "max_drawdown"
    # After a rearm the next trip latches anew.
    assert switch.trip(KillReason.CASCADE, {"severity": 6.0}, T0 + 700) is True
    assert switch.reason is KillReason.CASCADE


def test_rearm_when_armed_resets_nothing() -> None:
    record = KillSwitch().rearm("bob", "routine", T0)
    assert record.reset == ()
    assert not record.was_tripped


@pytest.mark.parametrize(("who", "why"), [("", "reason"), ("alice", "  ")])
def test_rearm_needs_who_and_why(who: str, why: str) -> None:
    switch = KillSwitch()
    switch.trip(KillReason.MANUAL, {"reason": "x"}, T0)
    with pytest.raises(ValueError, match="rearm needs"):
        switch.rearm(who, why, T0 + 1)
    assert switch.tripped


@pytest.mark.parametrize("reason", sorted(set(KillReason) - TRANSIENT_REASONS))
def test_checkpoint_round_trip(reason: KillReason) -> None:
    switch = KillSwitch()
    switch.trip(reason, SAMPLE_VALUES[reason], T0)
    switch.trip(KillReason.MANUAL, {"reason": "also"}, T0 + 1)
    data = json.loads(json.dumps(switch.checkpoint(T0 + 2)))  # plain JSON
    restored = KillSwitch.restore(data, T0 + 60)
    assert restored.tripped
    assert restored.reason is reason
    assert restored.trips == switch.trips


def test_armed_checkpoint_restores_armed() -> None:
    data = KillSwitch().checkpoint(T0)
    assert data["tripped"] is False
    assert not KillSwitch.restore(data, T0 + 1).tripped
    assert not KillSwitch.restore(KillSwitch().checkpoint(), T0 + 1).tripped
    assert not KillSwitch.restore(None, T0).tripped


def _tripped_checkpoint(saved_at: float) -> dict[str, Any]:
    switch = KillSwitch()
    switch.trip(KillReason.MAX_LOSS, SAMPLE_VALUES[KillReason.MAX_LOSS], saved_at - 100)
    return switch.checkpoint(saved_at)


def test_checkpoint_younger_than_24h_is_restored() -> None:
    assert CHECKPOINT_MAX_AGE_S == DAY
    restored = KillSwitch.restore(_tripped_checkpoint(T0), T0 + DAY - 1)  # 23:59:59
    assert restored.tripped
    assert restored.reason is KillReason.MAX_LOSS


def test_checkpoint_older_than_24h_is_ignored() -> None:
    assert not KillSwitch.restore(_tripped_checkpoint(T0), T0 + DAY + 1).tripped  # 24:00:01
    assert not KillSwitch.restore(_tripped_checkpoint(T0), T0 + DAY).tripped  # exactly 24 h


def test_checkpoint_without_now_is_aged_from_the_latest_trip() -> None:
    switch = KillSwitch()
    switch.trip(KillReason.MAX_LOSS, SAMPLE_VALUES[KillReason.MAX_LOSS], T0)
    switch.trip(KillReason.CASCADE, SAMPLE_VALUES[KillReason.CASCADE], T0 + 50)
    data = switch.checkpoint()
    assert data["saved_at"] == T0 + 50
    assert KillSwitch.restore(data, T0 + 50 + DAY - 1).tripped
    assert not KillSwitch.restore(data, T0 + 50 + DAY + 1).tripped


def test_transient_reason_is_not_restored() -> None:
    assert KillReason.POSITION_RUNAWAY in TRANSIENT_REASONS
    switch = KillSwitch()
    switch.trip(KillReason.POSITION_RUNAWAY, SAMPLE_VALUES[KillReason.POSITION_RUNAWAY], T0)
    restored = KillSwitch.restore(switch.checkpoint(T0 + 1), T0 + 60)
    assert not restored.tripped


def test_transient_original_with_lasting_further_trip_restores_the_lasting_one() -> None:
    switch = KillSwitch()
    switch.trip(KillReason.POSITION_RUNAWAY, SAMPLE_VALUES[KillReason.POSITION_RUNAWAY], T0)
    switch.trip(KillReason.MAX_LOSS, SAMPLE_VALUES[KillReason.MAX_LOSS], T0 + 1)
    restored = KillSwitch.restore(switch.checkpoint(T0 + 2), T0 + 60)
    assert restored.tripped
    assert restored.reason is KillReason.MAX_LOSS
    assert [t.reason for t in restored.trips] == [KillReason.MAX_LOSS]


@pytest.mark.parametrize(
    "bad",
    [
        {"version": 99, "trips": []},
        {"version": 1, "trips": "nope"},
        {"version": 1, "saved_at": T0, "trips": [{"reason": "bogus", "values": {}, "at": T0}]},
        {"version": 1, "saved_at": T0, "trips": [{"reason": "manual", "values": [], "at": T0}]},
        {"version": 1, "saved_at": T0, "trips": [{"reason": "manual", "at": "later"}]},
        {"version": 1, "saved_at": None, "trips": [{"reason": "manual", "at": T0}]},
    ],
)
def test_malformed_checkpoint_is_an_error(bad: dict[str, Any]) -> None:
    with pytest.raises(ValueError, match=r"."):
        KillSwitch.restore(bad, T0)
