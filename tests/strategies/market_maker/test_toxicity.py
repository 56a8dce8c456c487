"""Toxicity from the tape's imbalance over volume buckets and from our fills' markouts."""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mm.model import Side, Trade
from mm.strategies.market_maker.toxicity import (
    ToxicityConfig,
    ToxicityTracker,
    toxicity_spread_factor,
)
from tests.ids import hl_tid

PX = 100.0


def trade(side: Side, notional: float = 1_000.0) -> Trade:
    return Trade("ETH", side, PX, notional / PX, 0, hl_tid(1))


def tape(tracker: ToxicityTracker, start: float, seconds: float, sides: str) -> float:
    """One 1000 USD trade every 0.5 s, sides cycling through ``sides`` ('b'/'s'); end time."""
    now = start
    for index in range(int(seconds / 0.5)):
        now = start + index * 0.5
        side = Side.BUY if sides[index % len(sides)] == "b" else Side.SELL
        tracker.on_trade(trade(side), now)
    return now


# --- cold start ------------------------------------------------------------------------------


def test_no_data_is_not_toxic() -> None:
    tracker = ToxicityTracker()
    assert tracker.score(0.0) == 0.0
    assert tracker.spread_factor(1e6) == 1.0
    parts = tracker.components(10.0)
    assert parts["toxicity"] == parts["flow"] == parts["markout"] == 0.0


def test_buckets_start_only_once_the_rate_is_known() -> None:
    config = ToxicityConfig(min_baseline_s=60.0)
    tracker = ToxicityTracker(config)
    now = tape(tracker, 0.0, 59.0, "s")  # a minute of selling: the rate is not known yet
    assert tracker.flow(now) == 0.0
    now = tape(tracker, now + 0.5, 30.0, "s")
    assert tracker.flow(now) > 0.0


# --- flow ------------------------------------------------------------------------------------


def test_balanced_flow_is_not_toxic() -> None:
    tracker = ToxicityTracker()
    now = tape(tracker, 0.0, 600.0, "bs")
    assert tracker.components(now)["buckets"] == 20.0
    assert tracker.flow(now) < 0.1


def test_one_sided_flow_fills_the_score_bucket_by_bucket() -> None:
    config = ToxicityConfig(bucket_s=5.0, buckets=20, min_baseline_s=60.0)
    tracker = ToxicityTracker(config)
    now = tape(tracker, 0.0, 300.0, "bs")  # balanced: buckets of 5 s of flow, imbalance ~0
    calm = tracker.flow(now)
    # Now only selling at the same rate: each 5 s fills one bucket with imbalance 1.
    now = tape(tracker, now + 0.5, 50.0, "s")
    assert tracker.flow(now) == pytest.approx(calm * 10 / 20 + 10 / 20, abs=0.06)
    now = tape(tracker, now + 0.5, 60.0, "s")
    assert tracker.flow(now) == pytest.approx(1.0, abs=1e-6)
    assert tracker.score(now) == pytest.approx(1.0, abs=1e-6)


def test_the_flow_decays_when_the_tape_goes_quiet() -> None:
    config = ToxicityConfig(bucket_max_age_s=600.0)
    tracker = ToxicityTracker(config)
    now = tape(tracker, 0.0, 300.0, "s")
    assert tracker.flow(now) > 0.9
    assert tracker.flow(now + 300.0) > 0.9  # no new evidence yet
    assert tracker.flow(now + 601.0) == 0.0  # every bucket is older than its max age


def test_a_huge_trade_fills_at_most_every_bucket() -> None:
    tracker = ToxicityTracker()
    now = tape(tracker, 0.0, 120.0, "bs")
    tracker.on_trade(trade(Side.SELL, 1e12), now + 0.5)
    assert tracker.flow(now + 0.5) == pytest.approx(1.0)


def test_buckets_follow_the_coin_rate() -> None:
    # The same tape in notional 1000x larger gives the same score: buckets are sized by rate.
    small, large = ToxicityTracker(), ToxicityTracker()
    sides = "bsbbsbss"
    now = 0.0
    for index in range(1200):
        now = index * 0.5
        side = Side.BUY if sides[index % len(sides)] == "b" else Side.SELL
        small.on_trade(trade(side, 10.0), now)
        large.on_trade(trade(side, 10_000.0), now)
    assert small.flow(now) == pytest.approx(large.flow(now), abs=1e-9)


# --- markouts --------------------------------------------------------------------------------


def test_an_adverse_markout_is_shrunk_by_the_prior_and_decays() -> None:
    config = ToxicityConfig(markout_full_bps=10.0, markout_prior=3.0, markout_half_life_s=120.0)
    tracker = ToxicityTracker(config)
    tracker.on_markout(5_000, -20.0, 100.0)
    assert tracker.mean_markout_bps(100.0) == pytest.approx(-20.0 / (1 + 3))
    assert tracker.markout(100.0) == pytest.approx(0.5)
    # One half life later: the sum and the weight halve, the prior stays.
    assert tracker.mean_markout_bps(220.0) == pytest.approx(-10.0 / (0.5 + 3))
    assert tracker.markout(100.0 + 120.0 * 20) < 1e-5  # it clears with time, with no fill


def test_many_adverse_markouts_saturate() -> None:
    tracker = ToxicityTracker()
    for index in range(30):
        tracker.on_markout(5_000, -15.0, float(index))
    assert tracker.markout(30.0) == 1.0
    assert tracker.score(30.0) == 1.0
    assert tracker.spread_factor(30.0) == pytest.approx(ToxicityConfig().max_factor)


def test_good_markouts_and_other_horizons_do_not_count() -> None:
    tracker = ToxicityTracker()
    for index in range(10):
        tracker.on_markout(5_000, 8.0, float(index))
        tracker.on_markout(1_000, -50.0, float(index))  # not the configured horizon
    assert tracker.markout(10.0) == 0.0
    assert tracker.markouts == 10


def test_the_score_combines_flow_and_markouts() -> None:
    tracker = ToxicityTracker()
    now = tape(tracker, 0.0, 300.0, "ssb")  # selling two to one
    tracker.on_markout(5_000, -10.0, now)
    flow, markout = tracker.flow(now), tracker.markout(now)
    assert 0 < flow < 1
    assert 0 < markout < 1
    assert tracker.score(now) == pytest.approx(1 - (1 - flow) * (1 - markout))
    assert tracker.score(now) > max(flow, markout)


# --- the spread factor -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("score", "factor"),
    [
        (0.0, 1.0),
        (0.5, 1.0),
        (0.75, 1.5),
        (1.0, 2.0),
        (-3.0, 1.0),
        (7.0, 2.0),
        (math.nan, 2.0),  # a broken score widens
        (-math.inf, 2.0),
    ],
)
def test_spread_factor(score: float, factor: float) -> None:
    assert toxicity_spread_factor(score, 0.5, 2.0) == pytest.approx(factor)


# --- garbage and time ------------------------------------------------------------------------


def test_garbage_is_ignored_and_counted() -> None:
    tracker = ToxicityTracker()
    now = tape(tracker, 0.0, 200.0, "bs")
    before = tracker.components(now)
    for bad in (
        Trade("ETH", Side.SELL, math.nan, 1.0, 0, hl_tid(1)),
        Trade("ETH", Side.SELL, 100.0, -1.0, 0, hl_tid(1)),
        Trade("ETH", Side.SELL, math.inf, 1.0, 0, hl_tid(1)),
    ):
        tracker.on_trade(bad, now)
    tracker.on_trade(trade(Side.SELL, 1e9), math.nan)
    tracker.on_markout(5_000, math.nan, now)
    tracker.on_markout(5_000, -100.0, math.inf)
    assert tracker.ignored == 6
    assert tracker.components(now) == before
    assert math.isfinite(tracker.score(math.nan))


def test_absurd_values_neither_overflow_nor_hide() -> None:
    tracker = ToxicityTracker()
    tracker.on_trade(Trade("ETH", Side.SELL, 1e200, 1e200, 0, hl_tid(1)), 1.0)  # garbage: ignored
    assert tracker.ignored == 1
    for index in range(5):
        tracker.on_markout(5_000, -1e308, 2.0 + index)  # saturates, never overflows to NaN
    assert tracker.markout(10.0) == 1.0
    assert math.isfinite(tracker.mean_markout_bps(10.0))


def test_late_events_count_at_the_latest_time() -> None:
    tracker = ToxicityTracker()
    tracker.on_markout(5_000, -20.0, 100.0)
    tracker.on_markout(5_000, -20.0, 50.0)  # late: counted at 100
    assert tracker.mean_markout_bps(100.0) == pytest.approx(-40.0 / (2 + 3))


# --- properties ------------------------------------------------------------------------------

floats = st.floats(allow_nan=True, allow_infinity=True)
trades = st.builds(
    Trade, st.just("ETH"), st.sampled_from(Side), floats, floats, st.just(0), st.just(1)
)
markouts = st.tuples(st.sampled_from([1_000, 5_000]), floats)
times = st.one_of(st.floats(min_value=0, max_value=1e5), floats)


@settings(max_examples=150, deadline=None)
@given(st.lists(st.tuples(st.one_of(trades, markouts), times), max_size=80), times)
def test_outputs_are_bounded_and_finite_whatever_comes_in(
    history: list[tuple[Trade | tuple[int, float], float]], query: float
) -> None:
    config = ToxicityConfig(min_baseline_s=0.0, bucket_s=0.5)
    tracker = ToxicityTracker(config)
    for event, now in history:
        if isinstance(event, Trade):
            tracker.on_trade(event, now)
        else:
            tracker.on_markout(event[0], event[1], now)
    score = tracker.score(query)
    assert 0.0 <= score <= 1.0
    assert 1.0 <= tracker.spread_factor(query) <= config.max_factor
    parts = tracker.components(query)
    assert all(math.isfinite(value) for value in parts.values()), parts


@settings(max_examples=100, deadline=None)
@given(
    st.lists(st.floats(min_value=-100, max_value=100), max_size=20),
    st.floats(min_value=-100, max_value=100),
    st.floats(min_value=0, max_value=100),
)
def test_a_worse_markout_never_lowers_the_score(
    history: list[float], markout: float, worse_by: float
) -> None:
    def score(last: float) -> float:
        tracker = ToxicityTracker()
        for index, value in enumerate(history):
            tracker.on_markout(5_000, value, float(index))
        tracker.on_markout(5_000, last, float(len(history)))
        return tracker.score(float(len(history)))

    assert score(markout - worse_by) >= score(markout) - 1e-12


@settings(max_examples=100, deadline=None)
@given(
    st.lists(st.floats(min_value=-100, max_value=100), min_size=1, max_size=20),
    st.floats(min_value=0, max_value=1e4),
    st.floats(min_value=0, max_value=1e4),
)
def test_with_no_new_markouts_the_markout_score_only_decays(
    history: list[float], wait: float, more: float
) -> None:
    tracker = ToxicityTracker()
    for index, value in enumerate(history):
        tracker.on_markout(5_000, value, float(index))
    end = float(len(history))
    assert tracker.markout(end + wait + more) <= tracker.markout(end + wait) + 1e-12


@settings(max_examples=100, deadline=None)
@given(
    st.floats(allow_nan=False, allow_infinity=False),
    st.floats(allow_nan=False, allow_infinity=False),
)
def test_the_spread_factor_is_monotone_in_the_score(low: float, high: float) -> None:
    low, high = min(low, high), max(low, high)
    assert toxicity_spread_factor(low) <= toxicity_spread_factor(high)


@settings(max_examples=150)
@given(
    events=st.lists(
        st.tuples(
            st.sampled_from(["trade", "trade", "flow", "score", "markout"]),
            st.sampled_from([0.0, 0.5, 2.0, 7.0, 90.0, 400.0, -1.0, math.nan]),  # time step
            st.sampled_from(["b", "s"]),
            st.sampled_from([10.0, 1_000.0, 50_000.0]),  # notional
        ),
        max_size=80,
    )
)
def test_a_flow_reading_remembered_is_the_reading_made_again(
    events: list[tuple[str, float, str, float]],
) -> None:
    """The flow toxicity, remembered between bucket completions until its oldest counted bucket
    ages out, is what a tracker that sums the buckets at every reading gives: through buckets
    completing, buckets ageing out (short max age), repeated times, times going back and NaN.
    It fails when the memo ignores a completion or the ageing."""
    config = ToxicityConfig(
        bucket_s=1.0, buckets=4, baseline_s=20.0, min_baseline_s=1.0, bucket_max_age_s=30.0
    )
    remembering, forgetting = ToxicityTracker(config), ToxicityTracker(config)
    now = 0.0
    for kind, step, side, notional in events:
        now = now + step if math.isfinite(step) else now
        at = now if math.isfinite(step) else math.nan
        for tracker in (remembering, forgetting):
            if kind == "trade":
                tracker.on_trade(trade(Side.BUY if side == "b" else Side.SELL, notional), at)
            elif kind == "markout":
                tracker.on_markout(config.markout_horizon_ms, -notional / 1_000.0, at)
        forgetting._flow_memo = None
        if kind == "flow":
            assert remembering.flow(at) == forgetting.flow(at)
        elif kind == "score":
            assert remembering.score(at) == forgetting.score(at)
    forgetting._flow_memo = None
    assert remembering.flow(now + 1_000.0) == forgetting.flow(now + 1_000.0) == 0.0
