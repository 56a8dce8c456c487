"""The taker flow's imbalance: signed notional over a sliding window."""

from __future__ import annotations

import math

from hypothesis import given
from hypothesis import strategies as st

from mm.model import Side, Trade
from mm.strategies.market_maker.flow import FlowImbalance
from tests.ids import hl_tid


def trade(side: Side, px: float = 100.0, sz: float = 1.0) -> Trade:
    return Trade("BTC", side, px, sz, 0, hl_tid(0))


def test_no_trade_no_imbalance() -> None:
    assert FlowImbalance(30.0).imbalance(0.0) is None


def test_buyers_against_sellers_and_the_window() -> None:
    flow = FlowImbalance(30.0)
    flow.on_trade(trade(Side.BUY, sz=3.0), 0.0)
    flow.on_trade(trade(Side.SELL, sz=1.0), 10.0)
    assert flow.imbalance(10.0) == 0.5
    assert flow.imbalance(35.0) == -1.0  # the buy left the window
    assert flow.imbalance(41.0) is None


def test_garbage_is_ignored() -> None:
    flow = FlowImbalance(30.0)
    flow.on_trade(trade(Side.BUY, px=math.nan), 0.0)
    flow.on_trade(trade(Side.BUY, sz=-1.0), 0.0)
    flow.on_trade(trade(Side.SELL), math.inf)
    assert flow.imbalance(0.0) is None


@given(
    st.lists(
        st.tuples(
            st.sampled_from(list(Side)),
            st.floats(0.01, 1e6),
            st.floats(1e-6, 1e3),
            st.floats(0.0, 1e4),
        ),
        max_size=50,
    )
)
def test_imbalance_is_bounded(events: list[tuple[Side, float, float, float]]) -> None:
    flow = FlowImbalance(30.0)
    now = 0.0
    for side, px, sz, step in events:
        now += step
        flow.on_trade(trade(side, px, sz), now)
        value = flow.imbalance(now)
        assert value is not None
        assert -1.0 <= value <= 1.0


class ForgetfulFlow(FlowImbalance):
    """Sums the window afresh at every reading: what a remembered reading must equal."""

    def imbalance(self, now: float) -> float | None:
        self._read = False
        return super().imbalance(now)


times = st.one_of(st.floats(-10.0, 200.0), st.sampled_from([math.nan, math.inf, -math.inf]))


@given(
    st.lists(
        st.one_of(
            st.tuples(st.just("trade"), st.sampled_from(list(Side)), st.floats(0.5, 10.0), times),
            st.tuples(st.just("read"), st.none(), st.none(), times),
        ),
        max_size=40,
    )
)
def test_a_remembered_reading_is_the_window_summed_afresh(
    steps: list[tuple[str, Side | None, float | None, float]],
) -> None:
    """Readings between trades are remembered until a trade comes or leaves the window: through
    trades, repeated, backward and non-finite times, every reading equals a fresh sum."""
    remembering, forgetful = FlowImbalance(30.0), ForgetfulFlow(30.0)
    for op, side, sz, now in steps:
        if op == "trade":
            assert side is not None
            assert sz is not None
            remembering.on_trade(trade(side, sz=sz), now)
            forgetful.on_trade(trade(side, sz=sz), now)
        else:
            assert remembering.imbalance(now) == forgetful.imbalance(now)
