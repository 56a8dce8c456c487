"""The autonomy monitor's judgement: each trigger at, just below and just above its threshold,
the order of the triggers and the values they carry; the reconnect window and drift tracking."""

from __future__ import annotations

from typing import Any

import pytest

from mm.ops.autonomy import AutonomyConfig, Mode, Reason, Value
from mm.ops.health import (
    MIB,
    SAME_DISCONNECT_S,
    DriftTracker,
    EventWindow,
    Readings,
    VenueDisconnects,
    assess,
)

CONFIG = AutonomyConfig()

Row = tuple[str, dict[str, Any], tuple[Reason, Mode, dict[str, Value]] | None]

# (id, Readings fields, expected trigger or None) with the default thresholds.
ROWS: list[Row] = [
    ("quiet", {}, None),
    # journal lag: more than 60 s
    ("journal_below", {"journal_lag_s": 59.999}, None),
    ("journal_at", {"journal_lag_s": 60.0}, None),
    (
        "journal_above",
        {"journal_lag_s": 60.0004},
        (Reason.JOURNAL_STALE, Mode.REDUCE_ONLY, {"lag_s": 60.0}),
    ),
    (
        "journal_far_above",
        {"journal_lag_s": 125.25},
        (Reason.JOURNAL_STALE, Mode.REDUCE_ONLY, {"lag_s": 125.25}),
    ),
    # feed gaps: a book older than 10 s (or none yet) is a gap; more than half must gap
    ("books_fresh", {"book_ages_s": {"BTC": 1.0, "ETH": 2.0}}, None),
    ("book_age_at_gap", {"book_ages_s": {"BTC": 10.0, "ETH": 10.0}}, None),
    (
        "book_age_above_gap",
        {"book_ages_s": {"BTC": 10.001, "ETH": 10.5}},
        (
            Reason.FEED_GAP_MAJORITY,
            Mode.REDUCE_ONLY,
            {"symbols_with_gap": "BTC,ETH", "symbols": 2},
        ),
    ),
    ("gap_exactly_half", {"book_ages_s": {"BTC": 99.0, "ETH": 1.0}}, None),
    ("gap_half_of_four", {"book_ages_s": {"A": None, "B": 50.0, "C": 0.1, "D": 0.2}}, None),
    (
        "gap_majority",
        {"book_ages_s": {"SOL": 0.5, "ETH": 11.0, "BTC": 30.0}},
        (
            Reason.FEED_GAP_MAJORITY,
            Mode.REDUCE_ONLY,
            {"symbols_with_gap": "BTC,ETH", "symbols": 3},
        ),
    ),
    (
        "no_book_is_a_gap",
        {"book_ages_s": {"BTC": None, "ETH": None, "SOL": 0.1}},
        (
            Reason.FEED_GAP_MAJORITY,
            Mode.REDUCE_ONLY,
            {"symbols_with_gap": "BTC,ETH", "symbols": 3},
        ),
    ),
    (
        "single_symbol_without_book",
        {"book_ages_s": {"BTC": None}},
        (Reason.FEED_GAP_MAJORITY, Mode.REDUCE_ONLY, {"symbols_with_gap": "BTC", "symbols": 1}),
    ),
    ("no_symbols", {"book_ages_s": {}}, None),
    # reconnect flapping: 5 reconnects within the window
    ("reconnects_below", {"reconnects": 4}, None),
    (
        "reconnects_at",
        {"reconnects": 5},
        (Reason.FEED_RECONNECT_FLAPPING, Mode.REDUCE_ONLY, {"reconnects": 5, "window_s": 300.0}),
    ),
    (
        "reconnects_above",
        {"reconnects": 6},
        (Reason.FEED_RECONNECT_FLAPPING, Mode.REDUCE_ONLY, {"reconnects": 6, "window_s": 300.0}),
    ),
    # queue depth: fuller than 0.9
    ("queue_below", {"queue_fill": {"journal": 0.8999}}, None),
    ("queue_at", {"queue_fill": {"journal": 0.9}}, None),
    (
        "queue_above",
        {"queue_fill": {"journal": 0.9001, "fills": 0.1}},
        (Reason.QUEUE_DEPTH_EXCEEDED, Mode.REDUCE_ONLY, {"queue": "journal", "fill": 0.9001}),
    ),
    (
        "queue_fullest_named",
        {"queue_fill": {"a": 0.95, "b": 1.0, "c": 0.91}},
        (Reason.QUEUE_DEPTH_EXCEEDED, Mode.REDUCE_ONLY, {"queue": "b", "fill": 1.0}),
    ),
    # resident memory: more than 2048 MiB (mebibytes, not megabytes)
    ("rss_below", {"rss_bytes": 2048 * MIB - 1}, None),
    ("rss_at", {"rss_bytes": 2048 * MIB}, None),
    ("rss_in_megabytes_is_below", {"rss_bytes": 2_140_000_000}, None),
    (
        "rss_above",
        {"rss_bytes": 2048 * MIB + 1},
        (Reason.MEMORY_PRESSURE, Mode.REDUCE_ONLY, {"rss_mib": 2048.0}),
    ),
    (
        "rss_far_above",
        {"rss_bytes": 3000 * MIB + MIB // 2},
        (Reason.MEMORY_PRESSURE, Mode.REDUCE_ONLY, {"rss_mib": 3000.5}),
    ),
    # drift: counts once it has lasted drift_grace_s (10 s)
    ("drift_below_grace", {"drift": {"BTC": (1.0, 0.5, 9.999)}}, None),
    (
        "drift_at_grace",
        {"drift": {"BTC": (1.0, 0.5, 10.0)}},
        (
            Reason.RECONCILIATION_DRIFT,
            Mode.REDUCE_ONLY,
            {"symbol": "BTC", "local": 1.0, "venue": 0.5, "lasted_s": 10.0},
        ),
    ),
    (
        "drift_above_grace",
        {"drift": {"BTC": (0.25, 0.0, 3.5), "ETH": (-2.0, 1.0, 42.1234)}},
        (
            Reason.RECONCILIATION_DRIFT,
            Mode.REDUCE_ONLY,
            {"symbol": "ETH", "local": -2.0, "venue": 1.0, "lasted_s": 42.123},
        ),
    ),
    # margin usage: a warning above 0.5 quarantines, above 0.8 reduce only
    ("margin_unknown", {"margin_usage": None}, None),
    ("margin_below_warning", {"margin_usage": 0.4999}, None),
    ("margin_at_warning", {"margin_usage": 0.5}, None),
    (
        "margin_above_warning",
        {"margin_usage": 0.5001},
        (Reason.MARGIN_WARNING, Mode.QUARANTINED, {"usage": 0.5001}),
    ),
    (
        "margin_at_reduce_only",
        {"margin_usage": 0.8},
        (Reason.MARGIN_WARNING, Mode.QUARANTINED, {"usage": 0.8}),
    ),
    (
        "margin_above_reduce_only",
        {"margin_usage": 0.80001},
        (Reason.MARGIN_USAGE, Mode.REDUCE_ONLY, {"usage": 0.8}),
    ),
    (
        "margin_far_above",
        {"margin_usage": 1.25},
        (Reason.MARGIN_USAGE, Mode.REDUCE_ONLY, {"usage": 1.25}),
    ),
    # drawdown from the peak: more than 1 % of the account value halts; unknown never does
    ("drawdown_unknown", {"drawdown": None}, None),
    ("drawdown_below", {"drawdown": 0.0099}, None),
    ("drawdown_at", {"drawdown": 0.01}, None),
    (
        "drawdown_above",
        {"drawdown": 0.0100004},
        (Reason.PNL_PEAK_DRAWDOWN, Mode.HALT, {"drawdown": 0.01, "limit": 0.01}),
    ),
    (
        "drawdown_far_above",
        {"drawdown": 0.25},
        (Reason.PNL_PEAK_DRAWDOWN, Mode.HALT, {"drawdown": 0.25, "limit": 0.01}),
    ),
]


@pytest.mark.parametrize(
    ("fields", "expected"), [row[1:] for row in ROWS], ids=[r[0] for r in ROWS]
)
def test_assess(
    fields: dict[str, Any], expected: tuple[Reason, Mode, dict[str, Value]] | None
) -> None:
    triggers = assess(Readings(**fields), CONFIG)
    if expected is None:
        assert triggers == []
        return
    assert len(triggers) == 1
    reason, mode, values = expected
    trigger = triggers[0]
    assert trigger.reason is reason
    assert trigger.mode is mode
    assert dict(trigger.values) == pytest.approx(values)
    assert set(trigger.values) == set(values)


# Each threshold comes from the config, not a constant: (config fields, readings, reason).
CUSTOM: list[tuple[dict[str, Any], dict[str, Any], Reason]] = [
    ({"journal_stale_s": 5.0}, {"journal_lag_s": 5.5}, Reason.JOURNAL_STALE),
    ({"feed_gap_s": 1.0}, {"book_ages_s": {"BTC": 1.5}}, Reason.FEED_GAP_MAJORITY),
    (
        {"feed_gap_fraction": 0.25},
        {"book_ages_s": {"A": None, "B": 0.0, "C": 0.0}},
        Reason.FEED_GAP_MAJORITY,
    ),
    ({"flapping_reconnects": 2}, {"reconnects": 2}, Reason.FEED_RECONNECT_FLAPPING),
    ({"queue_depth_fraction": 0.5}, {"queue_fill": {"q": 0.6}}, Reason.QUEUE_DEPTH_EXCEEDED),
    ({"max_rss_mib": 100.0}, {"rss_bytes": 101 * MIB}, Reason.MEMORY_PRESSURE),
    ({"drift_grace_s": 0.0}, {"drift": {"BTC": (1.0, 0.0, 0.0)}}, Reason.RECONCILIATION_DRIFT),
    ({"margin_warning": 0.1}, {"margin_usage": 0.2}, Reason.MARGIN_WARNING),
    ({"margin_reduce_only": 0.3}, {"margin_usage": 0.35}, Reason.MARGIN_USAGE),
    ({"max_drawdown": 0.001}, {"drawdown": 0.002}, Reason.PNL_PEAK_DRAWDOWN),
]


@pytest.mark.parametrize(("config", "fields", "reason"), CUSTOM, ids=[c[2].value for c in CUSTOM])
def test_thresholds_come_from_the_config(
    config: dict[str, Any], fields: dict[str, Any], reason: Reason
) -> None:
    assert assess(Readings(**fields), CONFIG) == []
    assert [t.reason for t in assess(Readings(**fields), AutonomyConfig(**config))] == [reason]


def test_custom_limit_is_reported() -> None:
    config = AutonomyConfig(max_drawdown=0.001, flapping_window_s=60.0)
    triggers = assess(Readings(drawdown=0.0012, reconnects=9), config)
    assert triggers[0].values == {"drawdown": 0.0012, "limit": 0.001}
    assert triggers[1].values == {"reconnects": 9, "window_s": 60.0}


def test_everything_at_once_strictest_first() -> None:
    readings = Readings(
        journal_lag_s=61.0,
        book_ages_s={"BTC": None},
        reconnects=5,
        queue_fill={"q": 0.95},
        rss_bytes=4096 * MIB,
        drift={"BTC": (1.0, 0.0, 11.0)},
        margin_usage=0.6,  # a warning: QUARANTINED, the mildest
        drawdown=0.03,  # HALT, the strictest, found last
    )
    triggers = assess(readings, CONFIG)
    assert [t.reason for t in triggers] == [
        Reason.PNL_PEAK_DRAWDOWN,
        Reason.JOURNAL_STALE,
        Reason.FEED_GAP_MAJORITY,
        Reason.FEED_RECONNECT_FLAPPING,
        Reason.QUEUE_DEPTH_EXCEEDED,
        Reason.MEMORY_PRESSURE,
        Reason.RECONCILIATION_DRIFT,
        Reason.MARGIN_WARNING,
    ]
    modes = [t.mode for t in triggers]
    assert modes == sorted(modes, reverse=True)
    assert modes[0] is Mode.HALT
    assert modes[-1] is Mode.QUARANTINED


def test_margin_gives_one_trigger_not_both() -> None:
    triggers = assess(Readings(margin_usage=0.95, drawdown=0.05), CONFIG)
    assert [(t.reason, t.mode) for t in triggers] == [
        (Reason.PNL_PEAK_DRAWDOWN, Mode.HALT),
        (Reason.MARGIN_USAGE, Mode.REDUCE_ONLY),
    ]


def test_only_one_drift_trigger() -> None:
    drift = {"BTC": (1.0, 0.0, 20.0), "ETH": (2.0, 0.0, 30.0)}
    triggers = assess(Readings(drift=drift), CONFIG)
    assert len(triggers) == 1
    assert triggers[0].values["symbol"] == "BTC"


# --- EventWindow -----------------------------------------------------------------------------


def test_event_window_counts_within_the_window() -> None:
    window = EventWindow(300.0)
    assert window.count(0.0) == 0
    for at in (0.0, 100.0, 100.0, 200.0):
        window.record(at)
    assert window.count(200.0) == 4
    assert window.count(299.999) == 4
    assert window.count(300.0) == 3  # the event exactly window_s old is out
    assert window.count(399.999) == 3
    assert window.count(400.0) == 1
    assert window.count(500.0) == 0
    window.record(600.0)
    assert window.count(600.0) == 1


def test_event_window_feeds_flapping() -> None:
    config = AutonomyConfig(flapping_reconnects=3, flapping_window_s=60.0)
    window = EventWindow(config.flapping_window_s)
    for at in (0.0, 20.0, 40.0):
        window.record(at)
    assert [t.reason for t in assess(Readings(reconnects=window.count(59.0)), config)] == [
        Reason.FEED_RECONNECT_FLAPPING
    ]
    assert assess(Readings(reconnects=window.count(60.0)), config) == []


# --- VenueDisconnects ------------------------------------------------------------------------


def test_both_feeds_dropping_together_are_one_disconnect() -> None:
    disconnects = VenueDisconnects(300.0)
    for at in (0.0, 60.0, 120.0):  # three venue drops, each taking both feeds down
        disconnects.record("market", at)
        disconnects.record("user", at + 0.01)
    assert disconnects.count(120.0) == 3  # six feed reconnects used to count as six
    assert assess(Readings(reconnects=disconnects.count(120.0)), CONFIG) == []


def test_a_feed_noticing_late_joins_the_same_disconnect_within_the_window() -> None:
    disconnects = VenueDisconnects(300.0)
    disconnects.record("market", 0.0)
    disconnects.record("user", SAME_DISCONNECT_S - 0.001)  # its pong timeout ran out later
    assert disconnects.count(SAME_DISCONNECT_S) == 1
    disconnects.record("market", 100.0)
    disconnects.record("user", 100.0 + SAME_DISCONNECT_S)  # too late: a drop of its own
    assert disconnects.count(200.0) == 3


def test_one_feed_flapping_alone_counts_every_time() -> None:
    disconnects = VenueDisconnects(300.0)
    for at in (0.0, 1.0, 2.0, 3.0, 4.0):
        disconnects.record("market", at)
    assert disconnects.count(4.0) == 5
    [trigger] = assess(Readings(reconnects=disconnects.count(4.0)), CONFIG)
    assert trigger.reason is Reason.FEED_RECONNECT_FLAPPING


def test_disconnects_leave_the_window() -> None:
    disconnects = VenueDisconnects(60.0)
    disconnects.record("market", 0.0)
    disconnects.record("user", 0.5)
    disconnects.record("market", 30.0)
    assert disconnects.count(59.9) == 2
    assert disconnects.count(60.0) == 1
    assert disconnects.count(90.0) == 0


# --- DriftTracker ----------------------------------------------------------------------------


def test_drift_tracker_times_each_disagreement() -> None:
    tracker = DriftTracker(tolerance=0.0)
    assert tracker.update({"BTC": 1.0}, {"BTC": 1.0}, 0.0) == {}
    assert tracker.update({"BTC": 1.0}, {"BTC": 0.5}, 10.0) == {"BTC": (1.0, 0.5, 0.0)}
    assert tracker.update({"BTC": 1.0}, {"BTC": 0.5}, 14.0) == {"BTC": (1.0, 0.5, 4.0)}
    # The venue's number changes but still disagrees: the clock keeps running.
    assert tracker.update({"BTC": 1.0}, {"BTC": 0.75}, 15.0) == {"BTC": (1.0, 0.75, 5.0)}
    assert tracker.update({"BTC": 1.0}, {"BTC": 1.0}, 16.0) == {}  # agree again: reset
    assert tracker.update({"BTC": 1.0}, {"BTC": 0.0}, 30.0) == {"BTC": (1.0, 0.0, 0.0)}


def test_drift_tracker_symbols_are_independent_and_missing_is_zero() -> None:
    tracker = DriftTracker(tolerance=0.0)
    assert tracker.update({"BTC": 1.0}, {"ETH": -2.0}, 5.0) == {
        "BTC": (1.0, 0.0, 0.0),
        "ETH": (0.0, -2.0, 0.0),
    }
    both = {"BTC": 1.0, "ETH": -2.0}
    assert tracker.update(both, {"ETH": -2.0}, 8.0) == {"BTC": (1.0, 0.0, 3.0)}
    assert tracker.update({}, {"ETH": -2.0}, 9.0) == {"ETH": (0.0, -2.0, 0.0)}
    assert tracker.update({"SOL": 0.0}, {}, 10.0) == {}


def test_drift_tracker_tolerance() -> None:
    tracker = DriftTracker(tolerance=0.5)
    assert tracker.update({"BTC": 1.5}, {"BTC": 1.0}, 0.0) == {}  # exactly the tolerance
    assert tracker.update({"BTC": 1.5}, {"BTC": 0.75}, 1.0) == {"BTC": (1.5, 0.75, 0.0)}
    assert tracker.update({"BTC": 1.25}, {"BTC": 0.75}, 2.0) == {}  # within: reset
    assert tracker.update({"BTC": 1.5}, {"BTC": 0.75}, 3.0) == {"BTC": (1.5, 0.75, 0.0)}


def test_drift_counts_only_after_the_grace() -> None:
    config = AutonomyConfig(drift_grace_s=10.0)
    tracker = DriftTracker(config.drift_tolerance)
    tracker.update({"BTC": 1.0}, {"BTC": 0.0}, 100.0)
    assert assess(Readings(drift=tracker.update({"BTC": 1.0}, {}, 109.0)), config) == []
    triggers = assess(Readings(drift=tracker.update({"BTC": 1.0}, {}, 111.0)), config)
    assert [t.reason for t in triggers] == [Reason.RECONCILIATION_DRIFT]
    assert triggers[0].values["lasted_s"] == 11.0
    tracker.update({"BTC": 1.0}, {"BTC": 1.0}, 112.0)  # the fill arrived
    assert assess(Readings(drift=tracker.update({"BTC": 1.0}, {}, 113.0)), config) == []


def test_drift_tracker_relative_tolerance_for_balances() -> None:
    # A balance of 100,000 off by 1e-5 is float rounding (within 1e-9 of it); off by 0.01, a
    # fill is missing. A small balance keeps the absolute tolerance.
    tracker = DriftTracker(tolerance=1e-9, relative=1e-9)
    assert tracker.update({"USDT": 100_000.00001}, {"USDT": 100_000.0}, 0.0) == {}
    assert tracker.update({"USDT": 99_999.99}, {"USDT": 100_000.0}, 1.0) == {
        "USDT": (99_999.99, 100_000.0, 0.0)
    }
    assert tracker.update({"BTC": 1e-8}, {"BTC": 0.0}, 2.0) == {"BTC": (1e-8, 0.0, 0.0)}
