"""KuCoin's official SDK, unchanged, against the face's WebSocket: the token handshake, the
level-2 increments and depth-5 books, the ticker and trades, and the account's order and
balance changes (the REST answers' rate limits read by the SDK on the way)."""

from __future__ import annotations

import itertools
from collections.abc import Callable
from decimal import Decimal
from typing import Any

from kucoin_universal_sdk.generate.spot.order import (
    AddOrderReq,
    AddOrderReqBuilder,
    CancelOrderByOrderIdReqBuilder,
)

from tests.venues.sim.sdk.helpers import wait_for


def test_public_books_arrive_in_sequence(client: Any, stop_later: Callable[[Any], None]) -> None:
    public = client.ws_service().new_spot_public_ws()
    public.start()
    increments: list[Any] = []
    depth5: list[Any] = []
    try:
        public.orderbook_increment(
            ["BTC-USDT"], lambda topic, subject, data: increments.append(data)
        )
        public.orderbook_level5(["ETH-USDT"], lambda topic, subject, data: depth5.append(data))
        wait_for(lambda: len(increments) >= 5 and len(depth5) >= 2, "books over the SDK's socket")
    finally:
        stop_later(public)
    for before, after in itertools.pairwise(increments):
        assert after.sequence_start == before.sequence_end + 1  # none lost on loopback
    assert len(depth5[0].bids) == len(depth5[0].asks) == 5


def test_the_accounts_order_changes(client: Any, stop_later: Callable[[Any], None]) -> None:
    private = client.ws_service().new_spot_private_ws()
    private.start()
    changes: list[Any] = []
    try:
        private.order_v2(lambda topic, subject, data: changes.append(data))
        request = (
            AddOrderReqBuilder()
            .set_client_oid("sdk-ws-1")
            .set_side(AddOrderReq.SideEnum.BUY)
            .set_symbol("BTC-USDT")
            .set_type(AddOrderReq.TypeEnum.LIMIT)
            .set_price("10000")
            .set_size("0.001")
            .build()
        )
        placed = client.rest_service().get_spot_service().get_order_api().add_order(request)

        def mine() -> list[Any]:
            return [change for change in changes if change.order_id == placed.order_id]

        wait_for(lambda: len(mine()) >= 2, "the order's changes over the SDK's socket")
    finally:
        stop_later(private)
    assert [c.type.value for c in mine()][:2] == ["received", "open"]
    assert mine()[1].client_oid == "sdk-ws-1"


def test_the_accounts_balance_changes(client: Any, stop_later: Callable[[Any], None]) -> None:
    private = client.ws_service().new_spot_private_ws()
    private.start()
    balances: list[Any] = []
    api = client.rest_service().get_spot_service().get_order_api()
    try:
        private.account(lambda topic, subject, data: balances.append(data))
        request = (
            AddOrderReqBuilder()
            .set_client_oid("sdk-ws-balance-1")
            .set_side(AddOrderReq.SideEnum.BUY)
            .set_symbol("BTC-USDT")
            .set_type(AddOrderReq.TypeEnum.LIMIT)
            .set_price("10000")
            .set_size("0.001")
            .build()
        )
        placed = api.add_order(request)

        def mine() -> list[Any]:
            return [b for b in balances if b.relation_context.order_id == placed.order_id]

        wait_for(lambda: len(mine()) >= 1, "the order's hold over the SDK's socket")
        api.cancel_order_by_order_id(
            CancelOrderByOrderIdReqBuilder()
            .set_symbol("BTC-USDT")
            .set_order_id(placed.order_id)
            .build()
        )
        wait_for(lambda: len(mine()) >= 2, "the order's release over the SDK's socket")
    finally:
        stop_later(private)
    held, released = mine()[:2]
    assert (held.currency, held.relation_event, held.relation_context.symbol) == (
        "USDT",
        "trade.hold",
        "BTC-USDT",
    )
    assert Decimal(held.hold_change) == Decimal("10.01")  # 10 and the most it can pay in fees
    assert Decimal(held.available_change) == -Decimal("10.01")
    assert Decimal(held.total) == Decimal(held.available) + Decimal(held.hold)
    assert held.time.isdigit()
    assert held.common_response.subject == "account.balance"
    assert Decimal(released.hold_change) == -Decimal("10.01")
    limits = placed.common_response.rate_limit  # read by the SDK from the answer's headers
    assert limits.limit == 4000
    assert 0 <= limits.remaining < 4000
    assert 0 < limits.reset <= 30_000


def test_the_ticker_and_the_trades(client: Any, stop_later: Callable[[Any], None]) -> None:
    public = client.ws_service().new_spot_public_ws()
    public.start()
    tickers: list[Any] = []
    trades: list[Any] = []
    try:
        public.ticker(["BTC-USDT"], lambda topic, subject, data: tickers.append(data))
        public.trade(["BTC-USDT"], lambda topic, subject, data: trades.append(data))
        wait_for(lambda: len(tickers) >= 1, "a ticker over the SDK's socket")
        request = (
            AddOrderReqBuilder()
            .set_client_oid("sdk-ws-taker-1")
            .set_side(AddOrderReq.SideEnum.BUY)
            .set_symbol("BTC-USDT")
            .set_type(AddOrderReq.TypeEnum.MARKET)
            .set_funds("100")
            .build()
        )
        placed = client.rest_service().get_spot_service().get_order_api().add_order(request)

        def mine() -> list[Any]:
            return [trade for trade in trades if trade.taker_order_id == placed.order_id]

        wait_for(lambda: len(mine()) >= 1, "the order's trade over the SDK's socket")
    finally:
        stop_later(public)
    ticker = tickers[0]
    assert Decimal(ticker.best_bid) < Decimal(ticker.best_ask)
    assert Decimal(ticker.best_bid_size) > 0
    assert Decimal(ticker.best_ask_size) > 0
    assert isinstance(ticker.time, int)
    assert ticker.sequence.isdigit()
    trade = mine()[0]
    assert (trade.symbol, trade.side, trade.type) == ("BTC-USDT", "buy", "match")
    assert trade.maker_order_id not in (None, "", placed.order_id)
    assert trade.time.isdigit()
    assert Decimal(trade.price) > 0
    assert Decimal(trade.size) > 0
    assert trade.trade_id == trade.sequence
