"""Tests for the event accumulator."""

from __future__ import annotations

import itertools
import math

from hypothesis import given
from hypothesis import strategies as st

from mm.strategies.market_maker.accumulator import AccumulatorConfig, EventAccumulator, Trigger

CONFIG = AccumulatorConfig(mid_threshold_bps=2.0, max_age_s=5.0, min_interval_s=0.5)


def _quoted_at(now: float = 0.0, mid: float = 100.0) -> EventAccumulator:
    acc = EventAccumulator(CONFIG)
    acc.quoted(mid, now)
    return acc


def test_initially_due() -> None:
    acc = EventAccumulator(CONFIG)
    assert acc.due(0.0)
    assert Trigger.INITIAL in acc.triggers(0.0)
    assert acc.next_due(3.0) == 3.0


def test_quiet_until_max_age() -> None:
    acc = _quoted_at()
    assert not acc.due(1.0)
    acc.on_mid(100.01, 1.0)  # 1 bp: below threshold
    assert not acc.due(4.9)
    assert acc.next_due(1.0) == 5.0
    assert acc.due(5.0)
    assert acc.triggers(5.0) == {Trigger.MAX_AGE}


def test_mid_move_trade_fill_trigger() -> None:
    acc = _quoted_at()
    acc.on_mid(100.03, 1.0)
    assert acc.due(1.0)
    assert Trigger.MID in acc.triggers(1.0)
    acc = _quoted_at()
    acc.on_trade(1.0)
    assert acc.due(1.0)
    acc = _quoted_at()
    acc.on_fill(1.0)
    assert acc.triggers(1.0) == {Trigger.FILL}


def test_cooldown_merges_events() -> None:
    acc = _quoted_at()
    acc.on_trade(0.1)
    acc.on_fill(0.2)
    acc.on_mid(101.0, 0.3)
    assert not acc.due(0.3)
    assert acc.next_due(0.3) == 0.5
    assert acc.due(0.5)
    assert acc.triggers(0.5) == {Trigger.TRADE, Trigger.FILL, Trigger.MID}
    acc.quoted(101.0, 0.5)
    assert not acc.due(0.6)
    assert acc.next_due(0.6) == 5.5


def test_ignores_bad_mid() -> None:
    acc = _quoted_at()
    acc.on_mid(float("nan"), 1.0)
    acc.on_mid(-1.0, 1.0)
    assert not acc.due(1.0)
    assert acc.mid == 100.0


_event = st.tuples(
    st.floats(min_value=0.0, max_value=1.0),
    st.sampled_from(["mid", "trade", "fill", "tick"]),
    st.floats(min_value=90.0, max_value=110.0),
)


@given(
    events=st.lists(_event, max_size=100),
    min_interval=st.floats(min_value=0.0, max_value=2.0),
    max_age=st.floats(min_value=0.01, max_value=10.0),
)
def test_never_fires_twice_within_min_interval(
    events: list[tuple[float, str, float]], min_interval: float, max_age: float
) -> None:
    config = AccumulatorConfig(
        mid_threshold_bps=1.0, max_age_s=max_age, min_interval_s=min_interval
    )
    acc = EventAccumulator(config)
    now = 0.0
    fired: list[float] = []
    for gap, kind, mid in events:
        now += gap
        if kind == "mid":
            acc.on_mid(mid, now)
        elif kind == "trade":
            acc.on_trade(now)
        elif kind == "fill":
            acc.on_fill(now)
        if acc.due(now):
            assert acc.next_due(now) == now
            fired.append(now)
            acc.quoted(acc.mid, now)
        else:
            assert acc.next_due(now) > now
    assert all(b - a >= min_interval for a, b in itertools.pairwise(fired))


@given(
    events=st.lists(
        st.tuples(
            st.sampled_from(["mid", "trade", "fill", "quoted", "due"]),
            st.sampled_from([0.0, 0.05, 0.2, 1.0, 5.0, 6.0, -1.0, math.nan, math.inf]),
            st.floats(min_value=99.0, max_value=101.0),
        ),
        max_size=40,
    )
)
def test_due_is_not_cooling_and_a_trigger(events: list[tuple[str, float, float]]) -> None:
    """``due`` (no trigger set built) is ``not cooling and triggers``, the rule it stands for:
    through mids, trades, fills, quotes, repeated times, times going back, NaN and infinity."""
    accumulator = EventAccumulator()
    now = 0.0
    for kind, step, mid in events:
        now += step
        if kind == "mid":
            accumulator.on_mid(mid, now)
        elif kind == "trade":
            accumulator.on_trade(now)
        elif kind == "fill":
            accumulator.on_fill(now)
        elif kind == "quoted":
            accumulator.quoted(mid, now)
        expected = not accumulator.cooling(now) and bool(accumulator.triggers(now))
        assert accumulator.due(now) == expected
