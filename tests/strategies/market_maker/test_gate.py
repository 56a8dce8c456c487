"""Tests for the quote gate, above all that it never deadlocks on a cold start."""

from __future__ import annotations

import math

import attrs
import pytest
from hypothesis import given
from hypothesis import strategies as st

from mm.model import Side
from mm.strategies.market_maker.gate import (
    GateConfig,
    GateInputs,
    NoQuoteReason,
    QuoteMode,
    Warmup,
    WarmupConfig,
    decide,
    reducing_side,
)


def test_healthy_quotes_both() -> None:
    decision = decide(GateInputs())
    assert decision.mode is QuoteMode.BOTH
    assert decision.reason is None
    assert decision.allows(Side.BUY)
    assert decision.allows(Side.SELL)


@pytest.mark.parametrize(
    ("inputs", "reason"),
    [
        (GateInputs(manual_halt=True), NoQuoteReason.MANUAL),
        (GateInputs(data_fresh=False), NoQuoteReason.DATA_GATE),
        (GateInputs(estimators_warm=False), NoQuoteReason.WARMUP),
        (GateInputs(quota_headroom=0.005), NoQuoteReason.QUOTA_EXHAUSTED),
        (GateInputs(quota_headroom=math.nan), NoQuoteReason.QUOTA_EXHAUSTED),
        (GateInputs(cascade_severity=0.9), NoQuoteReason.CASCADE),
        (GateInputs(cascade_severity=0.6), NoQuoteReason.CASCADE),  # flat: nothing to reduce
        (GateInputs(toxicity=0.95), NoQuoteReason.TOXIC_FLOW),
        (GateInputs(toxicity=math.nan), NoQuoteReason.TOXIC_FLOW),
    ],
)
def test_none_reasons(inputs: GateInputs, reason: NoQuoteReason) -> None:
    decision = decide(inputs)
    assert decision.mode is QuoteMode.NONE
    assert decision.reason is reason
    assert not decision.quotes


def test_manual_wins_over_everything() -> None:
    inputs = GateInputs(manual_halt=True, data_fresh=False, estimators_warm=False)
    assert decide(inputs).reason is NoQuoteReason.MANUAL


@pytest.mark.parametrize(
    ("inputs", "reason"),
    [
        (GateInputs(cascade_severity=0.6, inventory=1.0), NoQuoteReason.CASCADE),
        (GateInputs(toxicity=0.8, inventory=1.0), NoQuoteReason.TOXIC_FLOW),
        (GateInputs(quota_headroom=0.07, inventory=1.0), NoQuoteReason.QUOTA_EXHAUSTED),
    ],
)
def test_one_sided_reduces_inventory(inputs: GateInputs, reason: NoQuoteReason) -> None:
    long = decide(inputs)
    assert long.mode is QuoteMode.ONE
    assert long.side is Side.SELL
    assert long.reason is reason
    assert long.allows(Side.SELL)
    assert not long.allows(Side.BUY)
    short = decide(attrs.evolve(inputs, inventory=-1.0))
    assert short.side is Side.BUY


def test_low_quota_flat_still_quotes_both() -> None:
    assert decide(GateInputs(quota_headroom=0.07)).mode is QuoteMode.BOTH


def test_no_edge_flat_only_when_required_and_known() -> None:
    config = GateConfig(require_edge=True, min_edge_bps=1.0)
    assert decide(GateInputs(edge_bps=0.2), config).reason is NoQuoteReason.NO_EDGE_FLAT
    assert decide(GateInputs(edge_bps=2.0), config).mode is QuoteMode.BOTH
    # no estimate yet falls through (no WaitToLearn deadlock), and inventory is never stuck
    assert decide(GateInputs(edge_bps=None), config).mode is QuoteMode.BOTH
    assert decide(GateInputs(edge_bps=0.2, inventory=1.0), config).mode is QuoteMode.BOTH
    assert decide(GateInputs(edge_bps=0.2)).mode is QuoteMode.BOTH  # off by default


def test_no_fills_and_no_markouts_never_block() -> None:
    cold = GateInputs(fills_seen=0, markouts_seen=0)
    assert decide(cold).mode is QuoteMode.BOTH
    assert decide(cold) == decide(attrs.evolve(cold, fills_seen=100, markouts_seen=100))


def test_reducing_side() -> None:
    assert reducing_side(1.0) is Side.SELL
    assert reducing_side(-1.0) is Side.BUY
    assert reducing_side(0.05, flat=0.1) is None


def test_warmup_counts_market_data_and_time_only() -> None:
    warmup = Warmup(WarmupConfig(min_observations=3, min_elapsed_s=2.0))
    assert not warmup.warm(0.0)
    for t in (0.0, 0.5, 1.0):
        warmup.observe(t)
    assert not warmup.warm(1.0)
    assert warmup.warm(2.0)
    assert Warmup(WarmupConfig(min_observations=0, min_elapsed_s=0.0)).warm(0.0)


_unrelated = st.fixed_dictionaries(
    {
        "inventory": st.floats(allow_nan=False, allow_infinity=False),
        "fills_seen": st.integers(min_value=0),
        "markouts_seen": st.integers(min_value=0),
        "edge_bps": st.none() | st.floats(allow_nan=True),
        "quota_headroom": st.floats(min_value=0.01, max_value=1.0),
        "cascade_severity": st.floats(min_value=0.0, max_value=0.49),
        "toxicity": st.floats(min_value=0.0, max_value=0.69),
    }
)


@given(values=_unrelated)
def test_fresh_warm_healthy_always_quotes(values: dict[str, object]) -> None:
    decision = decide(GateInputs(**values))  # type: ignore[arg-type]
    assert decision.quotes
    assert decision.reason in (None, NoQuoteReason.QUOTA_EXHAUSTED)


@given(
    gaps=st.lists(st.floats(min_value=0.01, max_value=5.0), min_size=1, max_size=200),
    min_observations=st.integers(min_value=0, max_value=50),
    min_elapsed=st.floats(min_value=0.0, max_value=60.0),
)
def test_gate_eventually_opens_from_fresh_state_without_fills(
    gaps: list[float], min_observations: int, min_elapsed: float
) -> None:
    """Market data alone (never a fill or markout) warms the gate open within bounded time."""
    warmup = Warmup(WarmupConfig(min_observations=min_observations, min_elapsed_s=min_elapsed))
    now = 0.0
    step = 0
    bound = min_observations + int(min_elapsed / min(gaps)) + 2
    while True:
        warmup.observe(now)
        decision = decide(GateInputs(estimators_warm=warmup.warm(now), data_fresh=True))
        if decision.quotes:
            break
        assert decision.reason is NoQuoteReason.WARMUP
        now += gaps[step % len(gaps)]
        step += 1
        assert step <= bound, "the gate stayed closed without any quoting-only condition"
    assert decision.mode is QuoteMode.BOTH
