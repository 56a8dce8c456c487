"""KuCoin's official SDK, unchanged, against the face's REST: market data, orders of each
kind, cancels, queries, balances, test orders, the HF endpoints beyond one order (sync place,
batches, modify, sync cancels, cancel-all, the trade history, the dead-man's switch), and the
venue's error codes."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest
import requests
from kucoin_universal_sdk.generate.account.account import GetSpotAccountListReqBuilder
from kucoin_universal_sdk.generate.account.fee import GetSpotActualFeeReqBuilder
from kucoin_universal_sdk.generate.spot.market import (
    GetAllSymbolsReqBuilder,
    GetPartOrderBookReqBuilder,
)
from kucoin_universal_sdk.generate.spot.order import (
    AddOrderReq,
    AddOrderReqBuilder,
    AddOrderSyncReq,
    AddOrderSyncReqBuilder,
    AddOrderTestReq,
    AddOrderTestReqBuilder,
    BatchAddOrdersOrderList,
    BatchAddOrdersOrderListBuilder,
    BatchAddOrdersReqBuilder,
    CancelOrderByClientOidReqBuilder,
    CancelOrderByClientOidSyncReqBuilder,
    CancelOrderByOrderIdReqBuilder,
    GetOpenOrdersReqBuilder,
    GetOrderByClientOidReqBuilder,
    GetOrderByOrderIdReqBuilder,
    GetTradeHistoryReqBuilder,
    ModifyOrderReqBuilder,
    SetDcpReqBuilder,
)
from kucoin_universal_sdk.model.transport_option import Interceptor

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


def limit_order(client_oid: str, price: str, size: str, symbol: str = "ETH-USDT") -> Any:
    return (
        AddOrderReqBuilder()
        .set_client_oid(client_oid)
        .set_side(BUY)
        .set_symbol(symbol)
        .set_type(LIMIT)
        .set_price(price)
        .set_size(size)
        .build()
    )


def test_a_sync_market_order_and_its_fills(client: Any) -> None:
    api = orders(client)
    state = api.add_order_sync(
        AddOrderSyncReqBuilder()
        .set_client_oid("sdk-sync-1")
        .set_side(AddOrderSyncReq.SideEnum.BUY)
        .set_symbol("BTC-USDT")
        .set_type(AddOrderSyncReq.TypeEnum.MARKET)
        .set_funds("100")
        .build()
    )
    assert (state.client_oid, state.status.value) == ("sdk-sync-1", "done")
    assert Decimal(state.deal_size) > 0
    assert state.order_time <= state.match_time
    history = api.get_trade_history(
        GetTradeHistoryReqBuilder().set_symbol("BTC-USDT").set_order_id(state.order_id).build()
    )
    fills = history.items
    assert fills
    assert sum(Decimal(f.size) for f in fills) == Decimal(state.deal_size)
    for fill in fills:
        assert (fill.order_id, fill.symbol, fill.side.value, fill.liquidity.value) == (
            state.order_id,
            "BTC-USDT",
            "buy",
            "taker",
        )
        assert Decimal(fill.funds) == Decimal(fill.price) * Decimal(fill.size)
        assert Decimal(fill.fee) == Decimal(fill.funds) * Decimal("0.001")
        assert (fill.fee_rate, fill.fee_currency, fill.type.value) == ("0.001", "USDT", "market")
        assert isinstance(fill.id, int)
        assert isinstance(fill.trade_id, int)
    assert [f.id for f in fills] == sorted((f.id for f in fills), reverse=True)  # newest first
    done = api.get_order_by_order_id(
        GetOrderByOrderIdReqBuilder().set_symbol("BTC-USDT").set_order_id(state.order_id).build()
    )
    assert Decimal(done.fee) == sum(Decimal(f.fee) for f in fills)
    # The account's history pages by lastId: a page of one, then the one before it.
    page = api.get_trade_history(
        GetTradeHistoryReqBuilder().set_symbol("BTC-USDT").set_limit(1).build()
    )
    assert len(page.items) == 1
    assert page.last_id == page.items[0].id


def test_a_batch_with_a_refused_order(client: Any) -> None:
    api = orders(client)

    def entry(client_oid: str, price: str) -> Any:
        return (
            BatchAddOrdersOrderListBuilder()
            .set_client_oid(client_oid)
            .set_symbol("ETH-USDT")
            .set_type(BatchAddOrdersOrderList.TypeEnum.LIMIT)
            .set_side(BatchAddOrdersOrderList.SideEnum.BUY)
            .set_price(price)
            .set_size("0.1")
            .build()
        )

    answers = api.batch_add_orders(
        BatchAddOrdersReqBuilder()
        .set_order_list([entry("sdk-multi-1", "100"), entry("sdk-multi-2", "100.001")])
        .build()
    ).data
    assert [(a.success, a.client_oid) for a in answers] == [(True, "sdk-multi-1"), (False, None)]
    assert answers[1].fail_msg == "Price increment invalid."
    cancelled = api.cancel_order_by_client_oid_sync(
        CancelOrderByClientOidSyncReqBuilder()
        .set_symbol("ETH-USDT")
        .set_client_oid("sdk-multi-1")
        .build()
    )
    assert (cancelled.client_oid, cancelled.status.value, cancelled.canceled_size) == (
        "sdk-multi-1",
        "done",
        "0.1",
    )


def test_modify_replaces_the_order(client: Any) -> None:
    api = orders(client)
    placed = api.add_order(limit_order("sdk-alter-1", "100", "0.5"))
    altered = api.modify_order(
        ModifyOrderReqBuilder()
        .set_symbol("ETH-USDT")
        .set_order_id(placed.order_id)
        .set_new_price("99")
        .build()
    )
    assert altered.client_oid == "sdk-alter-1"
    assert altered.new_order_id != placed.order_id
    now = api.get_order_by_client_oid(
        GetOrderByClientOidReqBuilder().set_symbol("ETH-USDT").set_client_oid("sdk-alter-1").build()
    )
    assert (now.id, now.price, now.size, now.active) == (altered.new_order_id, "99", "0.5", True)
    with pytest.raises(Exception, match="400100"):  # the old order is done
        api.modify_order(
            ModifyOrderReqBuilder()
            .set_symbol("ETH-USDT")
            .set_order_id(placed.order_id)
            .set_new_price("98")
            .build()
        )
    api.cancel_order_by_client_oid(
        CancelOrderByClientOidReqBuilder()
        .set_symbol("ETH-USDT")
        .set_client_oid("sdk-alter-1")
        .build()
    )


def test_cancel_all_of_every_symbol(client: Any) -> None:
    api = orders(client)
    eth = api.add_order(limit_order("sdk-all-1", "100", "0.1"))
    btc = api.add_order(limit_order("sdk-all-2", "1000", "0.001", symbol="BTC-USDT"))
    answer = api.cancel_all_orders()
    assert sorted(answer.succeed_symbols) == ["BTC-USDT", "ETH-USDT"]
    assert answer.failed_symbols == []
    for symbol, placed in (("ETH-USDT", eth), ("BTC-USDT", btc)):
        done = api.get_order_by_order_id(
            GetOrderByOrderIdReqBuilder().set_symbol(symbol).set_order_id(placed.order_id).build()
        )
        assert done.active is False


def test_the_dead_mans_switch_armed_queried_and_disarmed(client: Any) -> None:
    api = orders(client)
    armed = api.set_dcp(SetDcpReqBuilder().set_timeout(86_400).set_symbols("ETH-BTC").build())
    try:
        assert armed.trigger_time - armed.current_time == 86_400
        assert abs(armed.current_time - clock.wall_ms() // 1000) <= 5
        query = api.get_dcp()
        assert (query.timeout, query.symbols, query.trigger_time) == (
            86_400,
            "ETH-BTC",
            armed.trigger_time,
        )
    finally:
        api.set_dcp(SetDcpReqBuilder().set_timeout(-1).build())
    unset = api.get_dcp()
    assert (unset.timeout, unset.symbols, unset.trigger_time) == (None, None, None)
    with pytest.raises(Exception, match="400100"):
        api.set_dcp(SetDcpReqBuilder().set_timeout(4).build())


class _Tamper(Interceptor):  # type: ignore[misc]  # (the SDK is untyped)
    """Changes a signed request on its way: its query (so the signature no longer covers
    what is sent), or its timestamp (set ``stale_ms`` back)."""

    def __init__(self, *, query: str | None = None, stale_ms: int = 0) -> None:
        self.query, self.stale_ms = query, stale_ms

    def before(self, req: requests.PreparedRequest) -> requests.PreparedRequest:
        if self.query is not None:
            req.url = f"{req.url}?{self.query}"
        if self.stale_ms:
            stamp = int(req.headers["KC-API-TIMESTAMP"])
            req.headers["KC-API-TIMESTAMP"] = str(stamp - self.stale_ms)
        return req

    def after(
        self,
        req: requests.PreparedRequest,
        resp: requests.Response | None,
        err: Exception | None,
    ) -> requests.Response | None:
        return resp


def test_a_wrong_signature_and_a_stale_timestamp_are_refused(face: KucoinSimVenue) -> None:
    tampered = sdk_client(face.url, interceptors=[_Tamper(query="currency=USDT")])
    with pytest.raises(Exception, match="400005"):
        balances(tampered)
    stale = sdk_client(face.url, interceptors=[_Tamper(stale_ms=10_000)])
    with pytest.raises(Exception, match="400002"):
        balances(stale)
    assert "USDT" in balances(sdk_client(face.url, interceptors=[_Tamper()]))  # untouched: fine


def test_post_only_ioc_fok_and_a_market_sell_by_size(client: Any) -> None:
    """Every time in force and the market sell, as the SDK sends them and reads the answers."""
    api = orders(client)
    book = market(client).get_part_order_book(
        GetPartOrderBookReqBuilder().set_symbol("ETH-USDT").set_size("20").build()
    )
    best_bid, best_ask = Decimal(book.bids[0][0]), Decimal(book.asks[0][0])

    def place(oid: str, side: Any, price: Decimal, size: str, **tif: Any) -> Any:
        builder = (
            AddOrderSyncReqBuilder()
            .set_client_oid(oid)
            .set_side(side)
            .set_symbol("ETH-USDT")
            .set_type(AddOrderSyncReq.TypeEnum.LIMIT)
            .set_price(f"{price:f}")
            .set_size(size)
        )
        if "post_only" in tif:
            builder = builder.set_post_only(True)
        if "time_in_force" in tif:
            builder = builder.set_time_in_force(tif["time_in_force"])
        return api.add_order_sync(builder.build())

    buy, sell = AddOrderSyncReq.SideEnum.BUY, AddOrderSyncReq.SideEnum.SELL
    # (The face's market moves meanwhile, a few bps at most: prices keep their distance.)
    through_asks = (best_ask * Decimal("1.002")).quantize(Decimal("0.01"))
    # A post-only buy through the asks would take: the venue cancels it, unfilled.
    taking = place("sdk-post-take", buy, through_asks, "0.01", post_only=True)
    assert (taking.status.value, Decimal(taking.deal_size)) == ("done", Decimal(0))
    # One 1% below the best bid rests.
    below = (best_bid * Decimal("0.99")).quantize(Decimal("0.01"))
    resting = place("sdk-post-rest", buy, below, "0.01", post_only=True)
    assert (resting.status.value, Decimal(resting.deal_size)) == ("open", Decimal(0))
    # An IOC buy of more than the asks hold up to its price: what is there fills, the rest
    # is cancelled.
    ioc = place(
        "sdk-ioc", buy, through_asks, "20", time_in_force=AddOrderSyncReq.TimeInForceEnum.IOC
    )
    assert ioc.status.value == "done"
    assert 0 < Decimal(ioc.deal_size) < 20
    assert Decimal(ioc.deal_size) + Decimal(ioc.canceled_size) == 20
    # A FOK sell of more than the bids hold down to its price fills nothing.
    under_bids = (best_bid * Decimal("0.998")).quantize(Decimal("0.01"))
    fok = place("sdk-fok", sell, under_bids, "5", time_in_force=AddOrderSyncReq.TimeInForceEnum.FOK)
    assert (fok.status.value, Decimal(fok.deal_size)) == ("done", Decimal(0))
    # A market sell by size trades it all.
    sold = api.add_order_sync(
        AddOrderSyncReqBuilder()
        .set_client_oid("sdk-market-sell")
        .set_side(sell)
        .set_symbol("ETH-USDT")
        .set_type(AddOrderSyncReq.TypeEnum.MARKET)
        .set_size("0.01")
        .build()
    )
    assert (sold.status.value, Decimal(sold.deal_size)) == ("done", Decimal("0.01"))
    api.cancel_order_by_client_oid(
        CancelOrderByClientOidReqBuilder()
        .set_symbol("ETH-USDT")
        .set_client_oid("sdk-post-rest")
        .build()
    )
