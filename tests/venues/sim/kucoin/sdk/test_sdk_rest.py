"""KuCoin's official SDK, unchanged, against the face's REST: market data, orders of each
kind, cancels, queries, balances, test orders, and the venue's error codes."""

from __future__ import annotations

from typing import Any

import pytest
from kucoin_universal_sdk.generate.account.account import GetSpotAccountListReqBuilder
from kucoin_universal_sdk.generate.account.fee import GetSpotActualFeeReqBuilder
from kucoin_universal_sdk.generate.spot.market import (
    GetAllSymbolsReqBuilder,
    GetPartOrderBookReqBuilder,
)
from kucoin_universal_sdk.generate.spot.order import (
    AddOrderReq,
    AddOrderReqBuilder,
    AddOrderTestReq,
    AddOrderTestReqBuilder,
    CancelOrderByClientOidReqBuilder,
    CancelOrderByOrderIdReqBuilder,
    GetOpenOrdersReqBuilder,
    GetOrderByClientOidReqBuilder,
    GetOrderByOrderIdReqBuilder,
)

from mm import clock
from mm.venues.sim.kucoin.server import KucoinSimVenue
from tests.venues.sim.kucoin.sdk.conftest import sdk_client

BUY, SELL = AddOrderReq.SideEnum.BUY, AddOrderReq.SideEnum.SELL
LIMIT, MARKET = AddOrderReq.TypeEnum.LIMIT, AddOrderReq.TypeEnum.MARKET


def market(client: Any) -> Any:
    return client.rest_service().get_spot_service().get_market_api()


def orders(client: Any) -> Any:
    return client.rest_service().get_spot_service().get_order_api()


def balances(client: Any) -> dict[str, Any]:
    api = client.rest_service().get_account_service().get_account_api()
    answer = api.get_spot_account_list(GetSpotAccountListReqBuilder().build())
    return {account.currency: account for account in answer.data}


def test_market_data(client: Any) -> None:
    assert abs(market(client).get_server_time().data - clock.wall_ms()) < 5_000
    symbols = market(client).get_all_symbols(GetAllSymbolsReqBuilder().build()).data
    assert [s.symbol for s in symbols] == ["BTC-USDT", "ETH-USDT", "ETH-BTC"]
    btc = symbols[0]
    assert (btc.base_increment, btc.price_increment, btc.fee_currency) == (
        "0.00000001",
        "0.1",
        "USDT",
    )
    book = market(client).get_part_order_book(
        GetPartOrderBookReqBuilder().set_symbol("BTC-USDT").set_size("20").build()
    )
    assert int(book.sequence) > 0
    assert float(book.bids[0][0]) < float(book.asks[0][0])


def test_a_limit_order_placed_queried_and_cancelled(client: Any) -> None:
    api = orders(client)
    request = (
        AddOrderReqBuilder()
        .set_client_oid("sdk-limit-1")
        .set_side(BUY)
        .set_symbol("ETH-USDT")
        .set_type(LIMIT)
        .set_price("100")
        .set_size("0.5")
        .build()
    )
    placed = api.add_order(request)
    by_id = api.get_order_by_order_id(
        GetOrderByOrderIdReqBuilder().set_symbol("ETH-USDT").set_order_id(placed.order_id).build()
    )
    assert (by_id.price, by_id.size, by_id.active, by_id.in_order_book) == (
        "100",
        "0.5",
        True,
        True,
    )
    by_client = api.get_order_by_client_oid(
        GetOrderByClientOidReqBuilder().set_symbol("ETH-USDT").set_client_oid("sdk-limit-1").build()
    )
    assert by_client.id == placed.order_id
    open_now = api.get_open_orders(GetOpenOrdersReqBuilder().set_symbol("ETH-USDT").build()).data
    assert placed.order_id in [order.id for order in open_now]
    cancelled = api.cancel_order_by_client_oid(
        CancelOrderByClientOidReqBuilder()
        .set_symbol("ETH-USDT")
        .set_client_oid("sdk-limit-1")
        .build()
    )
    assert cancelled.client_oid == "sdk-limit-1"
    with pytest.raises(Exception, match="400100"):
        api.cancel_order_by_order_id(
            CancelOrderByOrderIdReqBuilder()
            .set_symbol("ETH-USDT")
            .set_order_id(placed.order_id)
            .build()
        )


def test_a_market_buy_by_funds_trades_and_moves_the_balances(client: Any) -> None:
    before = balances(client)
    placed = orders(client).add_order(
        AddOrderReqBuilder()
        .set_client_oid("sdk-market-1")
        .set_side(BUY)
        .set_symbol("BTC-USDT")
        .set_type(MARKET)
        .set_funds("100")
        .build()
    )
    done = orders(client).get_order_by_order_id(
        GetOrderByOrderIdReqBuilder().set_symbol("BTC-USDT").set_order_id(placed.order_id).build()
    )
    assert done.active is False
    assert float(done.deal_size) > 0
    assert float(done.deal_funds) + float(done.fee) <= 100
    after = balances(client)
    assert float(after["BTC"].balance) == pytest.approx(
        float(before["BTC"].balance) + float(done.deal_size)
    )
    spent = float(done.deal_funds) + float(done.fee)
    assert float(after["USDT"].balance) == pytest.approx(float(before["USDT"].balance) - spent)


def test_test_orders_and_fees(client: Any) -> None:
    api = orders(client)
    ok = api.add_order_test(
        AddOrderTestReqBuilder()
        .set_client_oid("sdk-test-1")
        .set_side(AddOrderTestReq.SideEnum.BUY)
        .set_symbol("BTC-USDT")
        .set_type(AddOrderTestReq.TypeEnum.LIMIT)
        .set_price("100")
        .set_size("0.001")
        .build()
    )
    assert ok.order_id
    fee_api = client.rest_service().get_account_service().get_fee_api()
    fees = fee_api.get_spot_actual_fee(
        GetSpotActualFeeReqBuilder().set_symbols("BTC-USDT,ETH-BTC").build()
    )
    assert [(f.symbol, f.taker_fee_rate) for f in fees.data] == [
        ("BTC-USDT", "0.001"),
        ("ETH-BTC", "0.001"),
    ]


def test_the_venues_refusals_reach_the_sdk(face: KucoinSimVenue, client: Any) -> None:
    bad_size = (
        AddOrderReqBuilder()
        .set_client_oid("sdk-bad-1")
        .set_side(BUY)
        .set_symbol("BTC-USDT")
        .set_type(LIMIT)
        .set_price("10000")
        .set_size("0.6930000000000001")
        .build()
    )
    with pytest.raises(Exception, match="Order size increment invalid"):
        orders(client).add_order(bad_size)
    too_big = (
        AddOrderReqBuilder()
        .set_client_oid("sdk-bad-2")
        .set_side(SELL)
        .set_symbol("BTC-USDT")
        .set_type(LIMIT)
        .set_price("60000")
        .set_size("5")
        .build()
    )
    with pytest.raises(Exception, match="200004"):
        orders(client).add_order(too_big)
    wrong_secret = sdk_client(face.url, secret="not-the-secret")
    with pytest.raises(Exception, match=r"40000[45]"):  # its passphrase is signed wrong too
        balances(wrong_secret)
