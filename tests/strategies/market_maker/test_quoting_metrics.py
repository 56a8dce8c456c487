"""The market maker's quote gauges: a series set only when its value changes still reads, at
every moment, the value last given for it."""

from __future__ import annotations

import math

from hypothesis import given
from hypothesis import strategies as st
from prometheus_client import CollectorRegistry

from mm.execution.permissions import PermissionBoard
from mm.model import Instrument
from mm.portfolio import Portfolio
from mm.strategies.base import StrategyContext
from mm.strategies.market_maker.strategy import QuotingMetrics


def metrics() -> tuple[QuotingMetrics, CollectorRegistry]:
    def instrument(coin: str) -> Instrument:
        raise AssertionError("not read")

    registry = CollectorRegistry()
    context = StrategyContext(
        permissions=PermissionBoard(),
        portfolio=Portfolio((), instrument),
        instruments=instrument,
        live_orders=lambda coin: 0,
        registry=registry,
    )
    return QuotingMetrics(context), registry


@given(
    st.lists(
        st.tuples(
            st.sampled_from(["BTC", "ETH"]),
            st.sampled_from(["sigma", "a"]),
            st.one_of(st.sampled_from([0.0, 1.0, -1.0]), st.floats(allow_nan=True)),
        ),
        max_size=30,
    )
)
def test_a_gauge_reads_the_value_last_set_for_its_series(
    sets: list[tuple[str, str, float]],
) -> None:
    quoting, registry = metrics()
    last: dict[tuple[str, str], float] = {}
    for coin, name, value in sets:
        quoting.set(quoting.estimate, value, coin, name)
        last[(coin, name)] = value
        for (symbol, label), expected in last.items():
            read = registry.get_sample_value(
                "mm_strategy_estimate", {"symbol": symbol, "name": label}
            )
            assert read is not None
            assert read == expected or (math.isnan(read) and math.isnan(expected))


def test_a_spread_factor_is_labelled_by_its_name() -> None:
    quoting, registry = metrics()
    quoting.set(quoting.spread_factor, 1.5, "BTC", "toxicity")
    quoting.set(quoting.quoted_spread, 4.0, "BTC")
    labels = {"symbol": "BTC", "factor": "toxicity"}
    assert registry.get_sample_value("mm_spread_factor_ratio", labels) == 1.5
    assert registry.get_sample_value("mm_quoted_spread_bps", {"symbol": "BTC"}) == 4.0


@given(
    st.lists(
        st.tuples(
            st.booleans(),  # through the symbol's prepared gauges, else through set
            st.sampled_from(["BTC", "ETH"]),
            st.one_of(st.sampled_from([0.0, 1.0, -1.0]), st.floats(allow_nan=True)),
        ),
        max_size=30,
    )
)
def test_the_prepared_quote_gauges_are_the_series_set_sets(
    sets: list[tuple[bool, str, float]],
) -> None:
    """The quote sets its gauges through the symbol's prepared series; set through either, a
    series reads the value last given it, and one never set is not exported."""
    quoting, registry = metrics()
    quoting.quote_gauges("BTC")
    quoting.quote_gauges("ETH")
    assert registry.get_sample_value("mm_strategy_estimate", {"symbol": "BTC", "name": "a"}) is None
    assert registry.get_sample_value("mm_quoted_spread_bps", {"symbol": "ETH"}) is None
    last: dict[str, float] = {}
    for prepared, coin, value in sets:
        if prepared:
            quoting.quote_gauges(coin).sigma.set(value)
        else:
            quoting.set(quoting.estimate, value, coin, "sigma")
        last[coin] = value
        for symbol, expected in last.items():
            labels = {"symbol": symbol, "name": "sigma"}
            read = registry.get_sample_value("mm_strategy_estimate", labels)
            assert read is not None
            assert read == expected or (math.isnan(read) and math.isnan(expected))
