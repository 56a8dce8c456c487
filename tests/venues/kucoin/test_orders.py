"""KuCoin's order changes (the recorded tradeOrdersV2 messages) as the port's events."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest

from mm.model import OrderStatus, Side
from mm.venues.kucoin.codec import CodecError
from mm.venues.kucoin.ids import order_id, trade_id, venue_oid, venue_tid
from mm.venues.kucoin.orders import fill, order_report, parse_order_change, to_millis
from tests.fixture_paths import KUCOIN

MESSAGES: dict[str, Any] = json.loads((KUCOIN / "messages.json").read_text(encoding="utf-8"))
LIFE = ("received", "open", "update", "canceled")


def change(name: str) -> Any:
    return parse_order_change(MESSAGES[f"tradeOrdersV2_{name}"])


def test_a_resting_order_s_life_reads_as_reports() -> None:
    reports = [order_report(change(name)) for name in LIFE]
    assert [r.status for r in reports] == [OrderStatus.OPEN] * 3 + [OrderStatus.CANCELED]
    assert [r.venue_status for r in reports] == list(LIFE)
    assert [r.sz for r in reports] == [0.1, 0.1, 0.06, 0.0]  # the update shrank it to 0.06
    first = reports[0]
    assert first.oid == order_id("5efab07953bdea00089965d2")
    assert (first.coin, first.side, first.px, first.orig_sz) == ("KCS-USDT", Side.BUY, 0.937, 0.1)
    assert first.cloid == "1593487481000906"
    # The recording's times are nanoseconds: read as milliseconds.
    assert first.time_ms == 1_593_487_481_683
    assert reports[-1].status_time_ms == 1_593_487_481_893


def test_a_taker_match_is_a_fill_charged_at_the_taker_rate() -> None:
    match = change("match_taker")
    assert (match.match_price, match.match_size, match.liquidity) == (0.96738, 0.1, "taker")
    made = fill(match, fee_rate=0.001, fee_currency="USDT")
    assert made.tid == trade_id("5efab07a4ee4c7000a82d6d9")
    assert made.oid == order_id("5efab07953bdea00089965fa")
    assert (made.coin, made.side, made.px, made.sz) == ("KCS-USDT", Side.SELL, 0.96738, 0.1)
    assert made.fee == pytest.approx(0.96738 * 0.1 * 0.001)
    assert made.fee_token == "USDT"
    assert made.crossed
    assert made.time_ms == 1_593_487_482_038
    assert order_report(match).status is OrderStatus.OPEN  # "filled" comes next
    done = order_report(change("filled"))
    assert (done.status, done.sz) == (OrderStatus.FILLED, 0.0)
    with pytest.raises(ValueError, match="made of a match"):
        fill(change("open"), 0.001, "USDT")


def test_the_current_specs_market_order_has_millisecond_order_time() -> None:
    received = parse_order_change(MESSAGES["new_spec_tradeOrdersV2_received"])
    assert received.order_time_ms == 1_730_206_271_588  # milliseconds, as sent
    assert received.ts_ms == 1_730_206_271_616  # nanoseconds, read as milliseconds
    assert (received.order_type, received.price, received.origin_size) == ("market", 0.0, 1e-05)
    assert order_report(received).status is OrderStatus.OPEN


def test_times_are_read_by_magnitude() -> None:
    assert to_millis(1_730_206_271_588) == 1_730_206_271_588
    assert to_millis(1_730_206_271_588_123) == 1_730_206_271_588
    assert to_millis(1_730_206_271_588_123_456) == 1_730_206_271_588
    with pytest.raises(ValueError, match="not a time"):
        to_millis("1730206271588")


def test_ids_are_qualified_and_read_back() -> None:
    assert venue_oid(order_id("5efab07953bdea00089965d2")) == "5efab07953bdea00089965d2"
    assert trade_id(11029373945659392) == trade_id("11029373945659392")  # /hf/fills: an int
    assert venue_tid(trade_id(11029373945659392)) == "11029373945659392"
    for bad in ("hyperliquid:123", "kucoin:", "kucoin:a-b", "123"):
        with pytest.raises(ValueError, match="not a kucoin order id"):
            venue_oid(bad)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="not a kucoin order id"):
        order_id("")
    with pytest.raises(ValueError, match="not a kucoin trade id"):
        trade_id(-1)


def mutated(name: str, key: str, value: Any) -> dict[str, Any]:
    message: dict[str, Any] = copy.deepcopy(MESSAGES[f"tradeOrdersV2_{name}"])
    if value is KeyError:
        del message["data"][key]
    else:
        message["data"][key] = value
    return message


@pytest.mark.parametrize(
    ("name", "key", "value"),
    [
        ("open", "type", "partial"),
        ("open", "side", "long"),
        ("open", "orderId", "5efab079-53bd"),
        ("open", "orderTime", "1593487481683297666"),
        ("open", "remainSize", "1e-1"),
        ("open", "price", 0.937),
        ("open", "symbol", None),
        ("match_taker", "liquidity", "both"),
        ("match_taker", "tradeId", KeyError),
        ("match_taker", "matchSize", "-0.1"),
    ],
)
def test_a_malformed_change_is_refused_naming_why(name: str, key: str, value: Any) -> None:
    with pytest.raises(CodecError, match="malformed order change"):
        parse_order_change(mutated(name, key, value))


def test_another_channels_message_is_refused() -> None:
    with pytest.raises(CodecError, match="not an order change"):
        parse_order_change(MESSAGES["new_spec_level2_increment"] | {"subject": "orderChange"})
    with pytest.raises(CodecError, match="malformed order change"):
        parse_order_change(MESSAGES["ws_welcome"])
