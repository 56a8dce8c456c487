"""KuCoin's ticker and match messages: parsed against the spec's examples (tests/fixtures/kucoin/
ws_market.json), refused when malformed, and fuzzed: whatever comes, a value or CodecError."""

from __future__ import annotations

import copy
import json
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mm.model import Side, Trade
from mm.venues.kucoin.codec import CodecError, Ticker, parse_match, parse_ticker
from mm.venues.kucoin.ids import trade_id
from tests.fixture_paths import KUCOIN

SPEC: dict[str, Any] = json.loads((KUCOIN / "ws_market.json").read_text(encoding="utf-8"))


def ticker_of(message: dict[str, Any]) -> Ticker:
    return parse_ticker(message["topic"], message["subject"], message["data"])


def test_the_specs_per_symbol_ticker() -> None:
    ticker = ticker_of(SPEC["ticker"])  # its example spells the time "Time"
    assert ticker == Ticker(
        "BTC-USDT", 1545896668986, 1704873323416, 0.049, 0.036, 0.08, 0.18, 0.08, 0.011
    )
    assert ticker.mid == pytest.approx(0.0645)


def test_the_specs_all_tickers_names_its_symbol_in_the_subject() -> None:
    ticker = ticker_of(SPEC["all_tickers"])
    assert (ticker.symbol, ticker.time_ms, ticker.sequence) == (
        "BTC-USDT",
        1729757723612,
        14691455768,
    )
    assert (ticker.best_bid, ticker.best_ask) == (67218.6, 67218.7)
    assert ticker.mid == pytest.approx(67218.65)


def test_an_empty_side_has_no_mid() -> None:
    message = copy.deepcopy(SPEC["all_tickers"])
    message["data"]["bestBid"] = "0"
    ticker = ticker_of(message)
    assert ticker.best_bid is None
    assert ticker.mid is None


def test_the_specs_match_is_a_trade_with_the_takers_side() -> None:
    trade = parse_match(SPEC["match"]["data"])
    assert trade == Trade(
        "BTC-USDT", Side.BUY, 67523.0, 0.003, 1729843222921, trade_id("11067996711960577")
    )


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("bestBid", "1e3"),
        ("bestAsk", None),
        ("bestAskSize", "-1"),
        ("sequence", "x"),
        ("time", "1729757723612"),
        ("price", KeyError),
    ],
)
def test_a_malformed_ticker_is_refused(field: str, value: Any) -> None:
    message = copy.deepcopy(SPEC["all_tickers"])
    if value is KeyError:
        del message["data"][field]
    else:
        message["data"][field] = value
    with pytest.raises(CodecError, match="malformed ticker"):
        ticker_of(message)


@pytest.mark.parametrize(
    ("topic", "subject"),
    [
        ("/market/level2:BTC-USDT", "trade.ticker"),
        ("/market/ticker", "BTC-USDT"),
        ("/market/ticker:all", None),
        (None, "BTC-USDT"),
    ],
)
def test_a_ticker_must_name_its_symbol(topic: Any, subject: Any) -> None:
    with pytest.raises(CodecError, match="malformed ticker"):
        parse_ticker(topic, subject, SPEC["all_tickers"]["data"])


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("side", "Buy"),
        ("side", 1),
        ("type", "open"),
        ("price", "0"),
        ("size", "0"),
        ("time", "1.5e18"),
        ("time", -1),
        ("tradeId", 11067996711960577),
        ("tradeId", "12-3"),
        ("symbol", None),
        ("time", KeyError),
    ],
)
def test_a_malformed_match_is_refused(field: str, value: Any) -> None:
    data = copy.deepcopy(SPEC["match"]["data"])
    if value is KeyError:
        del data[field]
    else:
        data[field] = value
    with pytest.raises(CodecError, match="malformed match"):
        parse_match(data)


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner),
    max_leaves=20,
)


def _spec_shaped(example: dict[str, Any]) -> st.SearchStrategy[dict[str, Any]]:
    """The example's data with any of its fields replaced by any JSON value, or dropped."""
    keys = sorted(example)
    return st.fixed_dictionaries(
        {key: st.just(example[key]) | json_values for key in keys}
    ).flatmap(
        lambda data: st.sets(st.sampled_from(keys)).map(
            lambda dropped: {k: v for k, v in data.items() if k not in dropped}
        )
    )


@given(data=json_values | _spec_shaped(SPEC["all_tickers"]["data"]), subject=json_values)
def test_any_ticker_parses_or_is_refused(data: Any, subject: Any) -> None:
    for topic in ("/market/ticker:all", "/market/ticker:BTC-USDT"):
        try:
            ticker = parse_ticker(topic, subject, data)
        except CodecError:
            continue
        assert ticker.best_bid is None or ticker.best_bid > 0
        assert type(ticker.symbol) is str


@given(data=json_values | _spec_shaped(SPEC["match"]["data"]))
def test_any_match_parses_or_is_refused(data: Any) -> None:
    try:
        trade = parse_match(data)
    except CodecError:
        return
    assert trade.px > 0
    assert trade.sz > 0
    assert trade.side in (Side.BUY, Side.SELL)


prices = st.decimals(min_value=Decimal("0.00000001"), max_value=Decimal(10**9), places=8)


@given(bid=prices, ask=prices, nanos=st.integers(min_value=0, max_value=2**63 - 1))
def test_venue_numbers_are_read_exactly_as_printed(bid: Decimal, ask: Decimal, nanos: int) -> None:
    data = dict(SPEC["all_tickers"]["data"], bestBid=f"{bid:f}", bestAsk=f"{ask:f}")
    ticker = parse_ticker("/market/ticker:ETH-USDT", "trade.ticker", data)
    assert (ticker.symbol, ticker.best_bid, ticker.best_ask) == ("ETH-USDT", float(bid), float(ask))
    match = dict(SPEC["match"]["data"], price=f"{ask:f}", time=str(nanos))
    trade = parse_match(match)
    assert (trade.px, trade.time_ms) == (float(ask), nanos // 1_000_000)
