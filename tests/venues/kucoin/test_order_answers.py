"""KuCoin's order bodies and answers, pure: the grid and times in force of a body, and the
specification's example answers of the sync place, batch, alter and order reads."""

from __future__ import annotations

import copy
import json
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mm.model import OrderStatus, PlaceOrder, Side, Tif
from mm.venues.kucoin import numbers
from mm.venues.kucoin.codec import CodecError
from mm.venues.kucoin.ids import order_id
from mm.venues.kucoin.instruments import SymbolSpec, parse_symbols
from mm.venues.kucoin.order_answers import (
    market_funds_body,
    order_body,
    parse_alter,
    parse_multi_sync,
    parse_order,
    parse_orders,
    parse_sync,
)
from tests.fixture_paths import KUCOIN

ANSWERS: dict[str, Any] = json.loads((KUCOIN / "rest_orders.json").read_text(encoding="utf-8"))
MESSAGES: dict[str, Any] = json.loads((KUCOIN / "messages.json").read_text(encoding="utf-8"))
(SPEC,) = parse_symbols([MESSAGES["rest_symbol_BTC-USDT"]])  # price 0.1, size 0.00000001


def place(px: float, sz: float, tif: Tif, side: Side = Side.BUY) -> PlaceOrder:
    return PlaceOrder("BTC-USDT", side, px, sz, tif, "mm-1")


@pytest.mark.parametrize(
    ("tif", "fields"),
    [
        (Tif.GTC, {"timeInForce": "GTC"}),
        (Tif.IOC, {"timeInForce": "IOC"}),
        (Tif.ALO, {"timeInForce": "GTC", "postOnly": True}),
    ],
)
def test_a_body_maps_the_time_in_force(tif: Tif, fields: dict[str, Any]) -> None:
    body = order_body(place(50_000.0, 0.001, tif), SPEC)
    assert (
        body
        == {
            "clientOid": "mm-1",
            "symbol": "BTC-USDT",
            "side": "buy",
            "type": "limit",
            "price": "50000",
            "size": "0.001",
        }
        | fields
    )


def test_a_body_is_on_the_grid_never_dearer_than_meant() -> None:
    buy = order_body(place(50_000.07, 0.6930000000000001, Tif.GTC), SPEC)
    sell = order_body(place(50_000.01, 0.6930000000000001, Tif.GTC, Side.SELL), SPEC)
    assert (buy["price"], buy["size"]) == ("50000", "0.693")
    assert (sell["price"], sell["size"]) == ("50000.1", "0.693")
    with pytest.raises(ValueError, match="nothing on the grid"):
        order_body(place(50_000.0, 0.000000001, Tif.GTC), SPEC)


@given(
    px=st.floats(min_value=0.1, max_value=1e7, allow_nan=False),
    sz=st.floats(min_value=1e-8, max_value=1e4, allow_nan=False),
    side=st.sampled_from(Side),
)
def test_every_body_number_is_a_venue_decimal_on_the_grid(px: float, sz: float, side: Side) -> None:
    try:
        body = order_body(place(px, sz, Tif.GTC, side), SPEC)
    except ValueError:
        return  # rounds to nothing: refused before sending
    assert numbers.is_on_grid(body["price"], SPEC.instrument.price_increment)
    assert numbers.is_on_grid(body["size"], SPEC.instrument.size_increment)
    price = Decimal(body["price"])
    assert price <= Decimal(repr(px)) if side is Side.BUY else price >= Decimal(repr(px))
    assert Decimal(body["size"]) <= Decimal(repr(sz))


def test_a_market_order_by_funds_is_on_the_quote_grid() -> None:
    body = market_funds_body("BTC-USDT", Side.BUY, 10.1234567, "mm-2", SPEC)
    assert body == {
        "clientOid": "mm-2",
        "symbol": "BTC-USDT",
        "side": "buy",
        "type": "market",
        "funds": "10.123456",
    }


def test_the_sync_answer_of_a_resting_order() -> None:
    answer = parse_sync(ANSWERS["add_order_sync"]["data"])
    assert (answer.oid, answer.cloid, answer.status) == (
        "67111a7cb7cbdf000703e1f6",
        "5c52e11203aa677f33e493f",
        "open",
    )
    assert (answer.origin_size, answer.deal_size, answer.refused) == (0.00001, 0.0, None)


def test_the_batch_answer_in_request_order_with_its_refusal() -> None:
    data = ANSWERS["batch_add_orders_sync"]["data"]
    placed, refused = parse_multi_sync(data, 2)
    assert (placed.oid, placed.status, placed.refused) == ("6711195e5584bc0007bd5aef", "open", None)
    assert refused.refused == "The order funds should more then 0.1 USDT."
    with pytest.raises(CodecError, match="2 answers for 3 orders"):
        parse_multi_sync(data, 3)


@pytest.mark.parametrize("change", [{"status": "new"}, {"orderId": "not-hex!"}, {"dealSize": 1}])
def test_a_malformed_sync_answer_is_refused(change: dict[str, Any]) -> None:
    with pytest.raises(CodecError, match="malformed order answer"):
        parse_sync(ANSWERS["add_order_sync"]["data"] | change)


def test_the_alter_answer_names_the_new_order() -> None:
    answer = parse_alter(ANSWERS["modify_order"]["data"])
    assert (answer.new_oid, answer.cloid) == ("67112258f9406e0007408827", "client order id 12")
    with pytest.raises(CodecError):
        parse_alter({"clientOid": "x"})


def test_a_filled_order_read() -> None:
    read = parse_order(ANSWERS["get_order_by_order_id"]["data"])
    report = read.report
    assert report.oid == order_id("6717422bd51c29000775ea03")
    assert (report.status, report.venue_status, report.sz, report.orig_sz) == (
        OrderStatus.FILLED,
        "filled",
        0.0,
        0.00001,
    )
    assert (read.deal_size, read.deal_funds) == (0.00001, 0.677176)
    assert read.deal_funds / read.deal_size == pytest.approx(67717.6)


def test_open_and_canceled_order_reads() -> None:
    (read,) = parse_orders(ANSWERS["get_open_orders"]["data"])
    order = read.open_order
    assert (order.coin, order.side, order.px, order.sz, order.orig_sz) == (
        "BTC-USDT",
        Side.BUY,
        50000.0,
        0.00001,
        0.00001,
    )
    assert (order.cloid, order.tif, read.report.status) == (
        "5c52e11203aa677f33e493fb",
        Tif.GTC,
        OrderStatus.OPEN,
    )
    canceled = copy.deepcopy(ANSWERS["get_open_orders"]["data"][0])
    canceled |= {"active": False, "cancelledSize": "0.00001", "remainSize": "0"}
    report = parse_order(canceled).report
    assert (report.status, report.sz, report.orig_sz) == (OrderStatus.CANCELED, 0.00001, 0.00001)


@pytest.mark.parametrize("change", [{"active": "yes"}, {"side": "up"}, {"createdAt": None}])
def test_a_malformed_order_read_is_refused(change: dict[str, Any]) -> None:
    with pytest.raises(CodecError, match="malformed order"):
        parse_order(ANSWERS["get_order_by_order_id"]["data"] | change)


def test_the_spec_is_the_symbol_the_order_names() -> None:
    other = SymbolSpec(
        SPEC.instrument.__class__(
            venue="kucoin",
            symbol="ETH-USDT",
            base="ETH",
            quote="USDT",
            price_increment=Decimal("0.01"),
            size_increment=Decimal("0.0001"),
            min_size=Decimal("0.0001"),
            min_notional=0.1,
        ),
        SPEC.quote_increment,
        SPEC.quote_min_size,
        "USDT",
        Decimal(1),
        Decimal(1),
        True,
    )
    with pytest.raises(ValueError, match="is not ETH-USDT"):
        order_body(place(50_000.0, 0.001, Tif.GTC), other)


def test_an_order_filled_at_one_price_averages_to_exactly_that_price() -> None:
    """Divided as floats, 0.059991 / 0.00002 is 2999.5499999999997: off the price grid."""
    entry = ANSWERS["get_order_by_order_id"]["data"] | {
        "price": "2999.55",
        "size": "0.00002",
        "dealSize": "0.00002",
        "dealFunds": "0.059991",
    }
    assert 0.059991 / 0.00002 != 2999.55
    assert parse_order(entry).average_px == 2999.55
    unfilled = parse_order(entry | {"dealSize": "0", "dealFunds": "0", "active": True})
    assert unfilled.average_px is None
