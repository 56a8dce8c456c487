"""KuCoin's symbols, fee rates and answer envelope, on the recorded and specified answers."""

from __future__ import annotations

import copy
import json
from decimal import Decimal
from typing import Any

import pytest

from mm.venues.base import MalformedAnswer, RateLimited, VenueError
from mm.venues.kucoin.answers import KucoinError, unwrap
from mm.venues.kucoin.codec import CodecError
from mm.venues.kucoin.instruments import FeeRates, fee_rate, parse_symbols, parse_trade_fees
from tests.fixture_paths import KUCOIN

MESSAGES: dict[str, Any] = json.loads((KUCOIN / "messages.json").read_text(encoding="utf-8"))
FEES: dict[str, Any] = json.loads((KUCOIN / "rest_trade_fees.json").read_text(encoding="utf-8"))
BTC_USDT: dict[str, Any] = MESSAGES["rest_symbol_BTC-USDT"]


def test_the_recorded_symbol_reads_as_an_instrument_and_its_rules() -> None:
    (spec,) = parse_symbols([BTC_USDT])
    instrument = spec.instrument
    assert (instrument.venue, instrument.symbol, instrument.base, instrument.quote) == (
        "kucoin",
        "BTC-USDT",
        "BTC",
        "USDT",
    )
    assert instrument.price_increment == Decimal("0.1")
    assert instrument.size_increment == Decimal("0.00000001")
    assert instrument.min_size == Decimal("0.00001")
    assert instrument.min_notional == 0.1
    assert (spec.quote_increment, spec.quote_min_size) == (Decimal("0.000001"), Decimal("0.1"))
    assert (spec.fee_currency, spec.tradable) == ("USDT", True)
    # The instrument's grid is the venue's: a buy's price rounds down onto the 0.1 grid.
    assert instrument.round_price(50_000.04, up=False) == 50_000.0


def test_fee_rates_are_the_accounts_times_the_symbols_coefficient() -> None:
    rates = parse_trade_fees(unwrap(200, json.dumps(FEES["trade_fees_response"])))
    assert rates["ETH-USDT"] == FeeRates(Decimal("0.001"), Decimal("0.001"))
    (spec,) = parse_symbols([BTC_USDT])
    assert fee_rate(spec, rates["BTC-USDT"], taker=True) == 0.001
    free = parse_symbols([BTC_USDT | {"makerFeeCoefficient": "0"}])[0]
    assert fee_rate(free, rates["BTC-USDT"], taker=False) == 0.0
    assert fee_rate(free, rates["BTC-USDT"], taker=True) == 0.001
    with pytest.raises(CodecError, match="malformed trade fees"):
        parse_trade_fees([{"symbol": "BTC-USDT", "takerFeeRate": 0.001, "makerFeeRate": "0"}])


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("priceIncrement", "0"),
        ("baseIncrement", "1e-8"),
        ("baseMinSize", None),
        ("enableTrading", "true"),
        ("symbol", ""),
        ("feeCurrency", 7),
        ("minFunds", "-1"),
    ],
)
def test_a_malformed_symbol_is_refused_naming_it(key: str, value: Any) -> None:
    entry = copy.deepcopy(BTC_USDT)
    entry[key] = value
    with pytest.raises(CodecError, match="malformed symbol"):
        parse_symbols([entry])
    with pytest.raises(CodecError, match="expected a list"):
        parse_symbols(BTC_USDT)


def test_an_answer_is_its_data_or_the_error_it_is() -> None:
    assert unwrap(200, json.dumps(MESSAGES["rest_add_order_response"])) == {
        "orderId": "670fd33bf9406e0007ab3945",
        "clientOid": "5c52e11203aa677f33e493fb",
    }
    # Bodies the venue was seen answering (a wrong signature, a stale timestamp).
    with pytest.raises(KucoinError, match="400005: Invalid KC-API-SIGN") as refused:
        unwrap(401, b'{"code":"400005","msg":"Invalid KC-API-SIGN"}')
    assert (refused.value.code, refused.value.http_status) == ("400005", 401)
    assert isinstance(refused.value, VenueError)
    with pytest.raises(KucoinError, match="400002"):
        unwrap(400, '{"code":"400002","msg":"Invalid KC-API-TIMESTAMP"}')
    with pytest.raises(RateLimited):
        unwrap(429, b'{"code":"429000","msg":"Too Many Requests"}')
    with pytest.raises(RateLimited):
        unwrap(429, b"<html>too many</html>")
    with pytest.raises(RateLimited):
        unwrap(200, b'{"code":"429000","msg":"Too Many Requests"}')
    for body in (b"<html>502</html>", b'{"code":200000,"data":1}', b'{"code":"200000"}', b"[]"):
        with pytest.raises(MalformedAnswer, match="KuCoin"):
            unwrap(502, body)
    with pytest.raises(KucoinError, match=r"KuCoin 400100:  \(HTTP 400\)"):
        unwrap(400, b'{"code":"400100"}')  # a refusal without its message is still one
