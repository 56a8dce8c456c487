"""Every amount is valued in one dollar currency, or none is (``mm.portfolio.value_problem``).

The limits are in USD. The portfolio values a currency through the pairs traded down to the
one currency that is only ever a quote, worth 1. That currency must exist, be unique and be a
dollar: pairs that leave two (ETH-USDT and ETH-BTC without BTC-USDT) or leave only BTC (ETH-BTC,
SOL-BTC, SOL-ETH) are refused at load (triarb, whose symbols name their pairs) and when the
strategy starts (any venue: the instruments say), and the portfolio values nothing then, rather
than BTC at 1 dollar.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mm.config import ConfigError, load_config
from mm.portfolio import DOLLARS, Portfolio, value_problem
from tests.e2e.virtual import SHIPPED_TRIARB_CONFIG, shipped_env
from tests.strategies.triarb.spot import instrument


def pairs_of(*symbols: str) -> dict[str, tuple[str, str]]:
    return {symbol: (symbol.split("-")[0], symbol.split("-")[1]) for symbol in symbols}


def portfolio_of(*symbols: str) -> Portfolio:
    listed = {symbol: instrument(symbol) for symbol in symbols}
    return Portfolio(symbols, listed.__getitem__)


def test_one_dollar_quote_values_everything() -> None:
    assert value_problem(pairs_of("BTC-USDT", "ETH-USDT", "ETH-BTC")) is None
    assert value_problem(pairs_of("ETH-BTC", "BTC-USDC")) is None
    assert value_problem({"BTC": ("BTC", "USDC")}) is None  # a perpetual against USDC
    assert value_problem({}) is None  # nothing to value


def test_two_quotes_that_nothing_joins_are_refused() -> None:
    assert value_problem(pairs_of("ETH-USDT", "ETH-BTC")) == (
        "the pairs traded have 2 currencies that are only ever a quote (BTC, USDT), so none "
        "is valued in another: trade pairs that join them"
    )
    # Two dollars are two currencies too: USDC is not known in USDT without a pair.
    assert "(USDC, USDT)" in str(value_problem(pairs_of("BTC-USDT", "ETH-USDC")))


def test_a_quote_that_is_not_a_dollar_is_refused() -> None:
    assert value_problem(pairs_of("ETH-BTC", "SOL-BTC", "SOL-ETH")) == (
        "the pairs traded value every currency in BTC, which is not a dollar (USD, USDC, USDT):"
        " trade a pair of BTC against one, so that the limits in USD can be applied"
    )
    assert "every currency the pairs trade is a base" in str(
        value_problem(pairs_of("ETH-BTC", "BTC-ETH"))
    )


def test_the_portfolio_values_nothing_when_there_is_no_dollar() -> None:
    marks = {"ETH-BTC": 0.05, "ETH-USDT": 3_000.0}
    alone = portfolio_of("ETH-BTC")
    assert alone.value_problem() is not None
    assert [alone.currency_mark(c, marks) for c in ("BTC", "ETH")] == [None, None]
    assert alone.is_value_unit("BTC") is False
    apart = portfolio_of("ETH-USDT", "ETH-BTC")
    assert apart.value_problem() is not None
    # Before: BTC (only ever a quote) was worth 1, and ETH 0.05 of a dollar through ETH-BTC.
    assert apart.currency_mark("BTC", marks) is None
    assert apart.currency_mark("USDT", marks) is None
    joined = portfolio_of("ETH-USDT", "ETH-BTC", "BTC-USDT")
    assert joined.value_problem() is None
    assert joined.currency_mark("BTC", marks | {"BTC-USDT": 60_000.0}) == 60_000.0
    assert joined.currency_mark("USDT", marks) == 1.0


def test_nothing_is_valued_while_a_pair_is_not_read() -> None:
    listed = {"ETH-BTC": instrument("ETH-BTC")}  # BTC-USDT not read yet: BTC looks alone
    portfolio = Portfolio(("ETH-BTC", "BTC-USDT"), listed.__getitem__)
    assert portfolio.value_problem() is None  # not known yet: asked again later
    assert portfolio.currency_mark("BTC", {"ETH-BTC": 0.05}) is None  # never a guess
    listed["BTC-USDT"] = instrument("BTC-USDT")
    assert portfolio.currency_mark("BTC", {"BTC-USDT": 60_000.0}) == 60_000.0


CURRENCIES = ("USDT", "USDC", "BTC", "ETH", "SOL")


@given(
    st.sets(
        st.tuples(st.sampled_from(CURRENCIES), st.sampled_from(CURRENCIES)).filter(
            lambda pair: pair[0] != pair[1]
        ),
        min_size=1,
        max_size=8,
    ),
    st.floats(min_value=1e-6, max_value=1e6),
)
def test_a_currency_is_worth_one_only_as_the_single_dollar_quote(
    pairs: set[tuple[str, str]], mark: float
) -> None:
    symbols = [f"{base}-{quote}" for base, quote in sorted(pairs)]
    portfolio = portfolio_of(*symbols)
    marks = dict.fromkeys(symbols, mark)
    problem = portfolio.value_problem()
    assert problem == value_problem(pairs_of(*symbols))
    bases = {base for base, _ in pairs}
    only = {quote for _, quote in pairs} - bases
    assert (problem is None) == (len(only) == 1 and only <= DOLLARS)
    for currency in CURRENCIES:
        value = portfolio.currency_mark(currency, marks)
        if problem is not None:
            assert value is None  # nothing is valued without a dollar
        elif value == 1.0 and currency not in bases:
            assert {currency} == only  # worth 1 as the one dollar quote, never as a guess
        if value is not None and currency in bases:
            assert value > 0.0


def test_a_triarb_config_that_cannot_be_valued_fails_at_load(tmp_path: Path) -> None:
    env = shipped_env(
        tmp_path / "run",
        {
            "strategy.symbols": ["ETH-BTC", "SOL-BTC", "SOL-ETH"],
            "feeds.coins": ["ETH-BTC", "SOL-BTC", "SOL-ETH"],
            "triarb.primaries": ["BTC"],
        },
    )
    with pytest.raises(ConfigError) as caught:
        load_config(SHIPPED_TRIARB_CONFIG, env)
    assert any(
        error.startswith("strategy.symbols")
        and "the pairs traded value every currency in BTC, which is not a dollar" in error
        for error in caught.value.errors
    ), caught.value.errors
