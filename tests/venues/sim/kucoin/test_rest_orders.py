"""The KuCoin face's HF order endpoints beyond placing and cancelling one order: synchronous
place and cancel, batches, modify, cancel-all, the done orders and the trade history with their
paging, and the dead-man's switch, called as a client would (signed), through the pure
handler."""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mm.model import OrderStatus
from mm.venues.kucoin.answers import KucoinError
from mm.venues.kucoin.order_answers import parse_order
from mm.venues.kucoin.signing import sign_request
from mm.venues.sim.kucoin.ledger import SpotLedger
from mm.venues.sim.kucoin.rest import KucoinRest
from mm.venues.sim.kucoin.spot import SpotExchange
from mm.venues.sim.kucoin.triangle import SYMBOLS
from tests.venues.sim.kucoin.test_rest import KEY, NOW_MS, NOW_NS, OTHER, call, data, face
from tests.venues.sim.kucoin.test_spot import MAKER, TAKER

D = Decimal
SYMBOL = {"symbol": "BTC-USDT"}


def order(side: str, price: str, size: str, **extra: Any) -> dict[str, Any]:
    return {"symbol": "BTC-USDT", "side": side, "type": "limit", "price": price, "size": size} | (
        extra
    )


def refused(response: Any, status: int, code: str) -> str:
    body = response.json()
    assert (response.status, body["code"]) == (status, code), body
    return str(body["msg"])


def test_a_sync_order_answers_its_state_after_matching() -> None:
    rest = face()
    data(
        call(
            rest, "POST", "/api/v1/hf/orders", body=order("sell", "60000", "0.1"), credentials=OTHER
        )
    )
    state = data(
        call(
            rest,
            "POST",
            "/api/v1/hf/orders/sync",
            body=order("buy", "60000", "0.3", clientOid="s1"),
        )
    )
    assert state == {
        "orderId": state["orderId"],
        "clientOid": "s1",
        "orderTime": NOW_MS,
        "originSize": "0.3",
        "dealSize": "0.1",
        "remainSize": "0.2",
        "canceledSize": "0",
        "status": "open",
        "matchTime": NOW_MS,
    }
    assert [c.type for c in rest.changes if c.oid == state["orderId"]] == [
        "received",
        "match",
        "open",
    ]
    ioc = order("buy", "60000", "0.3", timeInForce="IOC")
    done = data(call(rest, "POST", "/api/v1/hf/orders/sync", body=ioc))
    assert (done["status"], done["dealSize"], done["canceledSize"], done["remainSize"]) == (
        "done",
        "0",
        "0.3",
        "0",
    )
    too_much = order("buy", "60000", "2")
    refused(call(rest, "POST", "/api/v1/hf/orders/sync", body=too_much), 200, "200004")


def test_a_batch_answers_each_order_in_turn_and_a_refused_one_stops_none() -> None:
    rest = face()
    batch = [
        order("buy", "50000", "0.1", clientOid="b1"),
        order("buy", "50000.05", "0.1", clientOid="b2"),  # off the price grid
        order("buy", "50000", "0.1", clientOid="b1"),  # b1 is active: duplicated
        {"symbol": "BTC-USDT", "side": "buy", "type": "market", "funds": "10"},
        order("sell", "70000", "0.1", clientOid="b5"),
    ]
    answers = data(call(rest, "POST", "/api/v1/hf/orders/multi", body={"orderList": batch}))
    assert [a["success"] for a in answers] == [True, False, False, False, True]
    assert [a.get("clientOid") for a in answers] == ["b1", None, None, None, "b5"]
    assert answers[1]["failMsg"] == "Price increment invalid."
    assert answers[2]["failMsg"] == "clientOid duplicated"
    assert "limit" in answers[3]["failMsg"]
    assert sorted(rest.exchange.live) == sorted([answers[0]["orderId"], answers[4]["orderId"]])
    synced = data(
        call(
            rest,
            "POST",
            "/api/v1/hf/orders/multi/sync",
            body={"orderList": [order("buy", "40000", "0.1", clientOid="b6")]},
        )
    )
    assert synced == [
        {
            "orderId": synced[0]["orderId"],
            "clientOid": "b6",
            "orderTime": NOW_MS,
            "originSize": "0.1",
            "dealSize": "0",
            "remainSize": "0.1",
            "canceledSize": "0",
            "status": "open",
            "matchTime": NOW_MS,
            "success": True,
        }
    ]


@pytest.mark.parametrize(
    "body",
    [
        {"orderList": [order("buy", "100", "0.1")] * 6},
        {"orderList": []},
        {"orderList": "no"},
        {},
        {"orderList": [order("buy", "100", "0.1"), order("buy", "100", "0.1", symbol="ETH-USDT")]},
        {
            "orderList": [
                order("buy", "100", "0.1", symbol=["BTC-USDT"]),
                order("buy", "100", "0.1"),
            ]
        },
    ],
)
def test_a_batch_out_of_bounds_is_refused_whole(body: dict[str, Any]) -> None:
    rest = face()
    refused(call(rest, "POST", "/api/v1/hf/orders/multi", body=body), 400, "400100")
    assert not rest.exchange.live


def test_modify_cancels_and_replaces_by_order_id_or_client_oid() -> None:
    rest = face()
    placed = data(
        call(rest, "POST", "/api/v1/hf/orders", body=order("buy", "50000", "0.1", clientOid="m1"))
    )
    rest.changes.clear()
    alter = {"symbol": "BTC-USDT", "orderId": placed["orderId"], "newPrice": "49000"}
    answer = data(call(rest, "POST", "/api/v1/hf/orders/alter", body=alter))
    assert answer["clientOid"] == "m1"
    assert answer["newOrderId"] != placed["orderId"]
    assert [(c.oid, c.type) for c in rest.changes] == [
        (placed["orderId"], "canceled"),
        (answer["newOrderId"], "received"),
        (answer["newOrderId"], "open"),
    ]
    by_client = {"symbol": "BTC-USDT", "clientOid": "m1", "newSize": "0.2"}
    again = data(call(rest, "POST", "/api/v1/hf/orders/alter", body=by_client))
    active = data(call(rest, "GET", f"/api/v1/hf/orders/{again['newOrderId']}", SYMBOL))
    assert (active["price"], active["size"], active["clientOid"]) == ("49000", "0.2", "m1")
    # The replaced orders are done: altering one is refused.
    done = {"symbol": "BTC-USDT", "orderId": placed["orderId"], "newPrice": "48000"}
    assert refused(call(rest, "POST", "/api/v1/hf/orders/alter", body=done), 400, "400100") == (
        "order not exist."
    )
    for bad in (
        {"symbol": "BTC-USDT", "clientOid": "m1"},  # neither new price nor new size
        {"symbol": "BTC-USDT", "newPrice": "1"},  # no order named
        {"symbol": "ETH-USDT", "clientOid": "m1", "newPrice": "1"},  # another symbol's
        {"symbol": "BTC-USDT", "clientOid": "m1", "newPrice": 1},
    ):
        refused(call(rest, "POST", "/api/v1/hf/orders/alter", body=bad), 400, "400100")
    assert list(rest.exchange.live) == [again["newOrderId"]]


def test_sync_cancels_answer_the_order_after_the_cancel() -> None:
    rest = face()
    first = data(call(rest, "POST", "/api/v1/hf/orders", body=order("buy", "50000", "0.1")))
    data(call(rest, "POST", "/api/v1/hf/orders", body=order("buy", "50000", "0.2", clientOid="c2")))
    by_id = data(call(rest, "DELETE", f"/api/v1/hf/orders/sync/{first['orderId']}", SYMBOL))
    assert by_id == {
        "orderId": first["orderId"],
        "originSize": "0.1",
        "dealSize": "0",
        "remainSize": "0",
        "canceledSize": "0.1",
        "status": "done",
    }
    by_client = data(call(rest, "DELETE", "/api/v1/hf/orders/sync/client-order/c2", SYMBOL))
    assert (by_client["clientOid"], by_client["canceledSize"]) == ("c2", "0.2")
    again = call(rest, "DELETE", "/api/v1/hf/orders/sync/client-order/c2", SYMBOL)
    refused(again, 400, "400100")


@settings(max_examples=25, deadline=None)
@given(micros=st.integers(100_000, 10_000_000_000))
def test_a_market_buy_by_funds_answers_no_size_and_its_unspent_funds(micros: int) -> None:
    """A market buy by funds has no size: its sizes are 0, never the negative 0 - dealSize
    it once answered for the dust cancel; what it did not spend (the dust) is
    ``cancelledFunds``, and the funds are its trades, their fees and that dust."""
    funds = D(micros).scaleb(-6)
    rest = face()
    maker = order("sell", "60000", "0.5")
    data(call(rest, "POST", "/api/v1/hf/orders", body=maker, credentials=OTHER))
    buy = {"symbol": "BTC-USDT", "side": "buy", "type": "market", "funds": str(funds)}
    placed = data(call(rest, "POST", "/api/v1/hf/orders/sync", body=buy))
    assert placed["status"] == "done"
    assert (placed["originSize"], placed["remainSize"], placed["canceledSize"]) == ("0", "0", "0")
    assert D(placed["dealSize"]) > 0
    read = data(call(rest, "GET", f"/api/v1/hf/orders/{placed['orderId']}", SYMBOL))
    assert (read["size"], read["remainSize"], read["cancelledSize"]) == ("0", "0", "0")
    assert (D(read["funds"]), read["remainFunds"], read["active"]) == (funds, "0", False)
    dust = D(read["cancelledFunds"])
    assert dust >= 0
    assert D(read["dealFunds"]) + D(read["fee"]) + dust == funds
    assert read["cancelExist"] is (dust > 0)
    # The adapter reads it: a filled order whose average is its deal funds over its size.
    answer = parse_order(read)
    assert answer.report.status is OrderStatus.FILLED
    assert answer.deal_funds / answer.deal_size == pytest.approx(60_000)


def test_a_dust_cancel_is_cancelled_funds() -> None:
    """100 USDT buys 0.001665 BTC at 60,000 (99.9, and 0.0999 in fees): 0.0001 is freed."""
    rest = face()
    data(
        call(
            rest, "POST", "/api/v1/hf/orders", body=order("sell", "60000", "0.5"), credentials=OTHER
        )
    )
    buy = {"symbol": "BTC-USDT", "side": "buy", "type": "market", "funds": "100"}
    oid = data(call(rest, "POST", "/api/v1/hf/orders", body=buy))["orderId"]
    read = data(call(rest, "GET", f"/api/v1/hf/orders/{oid}", SYMBOL))
    assert (read["dealSize"], read["dealFunds"], read["fee"]) == ("0.001665", "99.9", "0.0999")
    assert (read["cancelledSize"], read["cancelledFunds"], read["cancelExist"]) == (
        "0",
        "0.0001",
        True,
    )
    # A limit order by size: what was cancelled is a size, and it has no funds to speak of.
    placed = data(call(rest, "POST", "/api/v1/hf/orders", body=order("buy", "50000", "0.1")))
    data(call(rest, "DELETE", f"/api/v1/hf/orders/{placed['orderId']}", SYMBOL))
    limit = data(call(rest, "GET", f"/api/v1/hf/orders/{placed['orderId']}", SYMBOL))
    assert (limit["cancelledSize"], limit["cancelledFunds"], limit["remainFunds"]) == (
        "0.1",
        "0",
        "0",
    )
    assert limit["cancelExist"] is True


def test_cancel_all_cancels_every_symbol_of_the_account_only() -> None:
    rest = face()
    data(call(rest, "POST", "/api/v1/hf/orders", body=order("buy", "50000", "0.1")))
    theirs = data(
        call(
            rest, "POST", "/api/v1/hf/orders", body=order("buy", "50000", "0.1"), credentials=OTHER
        )
    )
    answer = data(call(rest, "DELETE", "/api/v1/hf/orders/cancelAll"))
    assert answer == {"succeedSymbols": ["BTC-USDT"], "failedSymbols": []}
    assert list(rest.exchange.live) == [theirs["orderId"]]
    assert data(call(rest, "DELETE", "/api/v1/hf/orders/cancelAll")) == {
        "succeedSymbols": [],
        "failedSymbols": [],
    }


def trade(rest: KucoinRest, n: int, side: str = "buy") -> None:
    """``n`` trades of 0.01 BTC at 60,000 + i, the account ("trader") taking ``side``."""
    maker_side = "sell" if side == "buy" else "buy"
    for i in range(n):
        price = str(60_000 + i)
        maker = order(maker_side, price, "0.01")
        data(call(rest, "POST", "/api/v1/hf/orders", body=maker, credentials=OTHER))
        data(call(rest, "POST", "/api/v1/hf/orders", body=order(side, price, "0.01")))


def test_the_trade_history_shows_each_fill_newest_first() -> None:
    rest = face()
    trade(rest, 2)
    answer = data(call(rest, "GET", "/api/v1/hf/fills", SYMBOL))
    latest, first = answer["items"]
    assert answer["lastId"] == first["id"]
    assert latest["id"] > first["id"]
    assert latest == {
        "id": latest["id"],
        "symbol": "BTC-USDT",
        "tradeId": latest["tradeId"],
        "orderId": latest["orderId"],
        "counterOrderId": latest["counterOrderId"],
        "side": "buy",
        "liquidity": "taker",
        "forceTaker": False,
        "price": "60001",
        "size": "0.01",
        "funds": "600.01",
        "fee": "0.60001",
        "feeRate": "0.001",
        "feeCurrency": "USDT",
        "stop": "",
        "tradeType": "TRADE",
        "taxRate": "0",
        "tax": "0",
        "type": "limit",
        "createdAt": NOW_MS,
    }
    theirs = data(call(rest, "GET", "/api/v1/hf/fills", SYMBOL, credentials=OTHER))["items"]
    assert [(f["orderId"], f["liquidity"], f["fee"]) for f in theirs[:1]] == [
        (latest["counterOrderId"], "maker", "0.480008")  # the maker's rate, 0.0008
    ]
    one = data(
        call(
            rest, "GET", "/api/v1/hf/fills", SYMBOL | {"orderId": first["orderId"], "side": "sell"}
        )
    )
    assert one["items"] == [first]  # the order alone decides
    assert data(call(rest, "GET", "/api/v1/hf/fills", SYMBOL | {"side": "sell"}))["items"] == []
    assert (
        data(call(rest, "GET", "/api/v1/hf/fills", SYMBOL | {"startAt": str(NOW_MS + 1)}))["items"]
        == []
    )
    for bad in ({"limit": "101"}, {"limit": "0"}, {"lastId": "x"}, {"side": "up"}, {}):
        query = ({} if bad == {} else SYMBOL) | bad
        refused(call(rest, "GET", "/api/v1/hf/fills", query), 400, "400100")


@settings(max_examples=25, deadline=None)
@given(trades=st.integers(0, 12), limit=st.integers(1, 5))
def test_paging_by_last_id_walks_every_fill_once_newest_first(trades: int, limit: int) -> None:
    rest = face()
    trade(rest, trades)
    seen: list[int] = []
    query = SYMBOL | {"limit": str(limit)}
    while True:
        page = data(call(rest, "GET", "/api/v1/hf/fills", query))
        if not page["items"]:
            break
        assert len(page["items"]) <= limit
        seen += [item["id"] for item in page["items"]]
        query = query | {"lastId": str(page["lastId"])}
    assert seen == sorted((f.id for f in rest.exchange.fills.get("trader", ())), reverse=True)
    assert len(seen) == trades


def test_done_orders_latest_first_with_paging() -> None:
    rest = face()
    oids = [
        data(call(rest, "POST", "/api/v1/hf/orders", body=order("buy", str(50_000 + i), "0.1")))[
            "orderId"
        ]
        for i in range(3)
    ]
    data(call(rest, "DELETE", "/api/v1/hf/orders", SYMBOL))
    page = data(call(rest, "GET", "/api/v1/hf/orders/done", SYMBOL | {"limit": "2"}))
    assert [item["id"] for item in page["items"]] == [oids[2], oids[1]]
    assert page["items"][0]["active"] is False
    rest_of = data(
        call(rest, "GET", "/api/v1/hf/orders/done", SYMBOL | {"lastId": str(page["lastId"])})
    )
    assert [item["id"] for item in rest_of["items"]] == [oids[0]]
    market = SYMBOL | {"type": "market"}
    assert data(call(rest, "GET", "/api/v1/hf/orders/done", market))["items"] == []


def test_the_dead_mans_switch_cancels_when_not_set_again_in_time() -> None:
    rest = face()
    assert data(call(rest, "GET", "/api/v1/hf/orders/dead-cancel-all/query")) == {}
    btc = data(call(rest, "POST", "/api/v1/hf/orders", body=order("buy", "50000", "0.1")))
    ask = data(call(rest, "POST", "/api/v1/hf/orders", body=order("sell", "70000", "0.1")))
    arm = {"timeout": 5, "symbols": "BTC-USDT"}
    now_s = NOW_NS // 10**9
    armed = data(call(rest, "POST", "/api/v1/hf/orders/dead-cancel-all", body=arm))
    assert armed == {"currentTime": now_s, "triggerTime": now_s + 5}
    assert data(call(rest, "GET", "/api/v1/hf/orders/dead-cancel-all/query")) == {
        "timeout": 5,
        "symbols": "BTC-USDT",
        "currentTime": now_s,
        "triggerTime": now_s + 5,
    }
    rest.expire(NOW_NS + 5 * 10**9 - 1)  # a nanosecond early: nothing
    assert len(rest.exchange.live) == 2
    rest.changes.clear()
    rest.expire(NOW_NS + 5 * 10**9)
    assert not rest.exchange.live
    assert sorted(c.oid for c in rest.changes) == sorted([btc["orderId"], ask["orderId"]])
    assert {c.type for c in rest.changes} == {"canceled"}
    assert rest.dead_men == {}  # fired: disarmed
    assert data(call(rest, "GET", "/api/v1/hf/orders/dead-cancel-all/query")) == {}


def three_symbols() -> KucoinRest:
    ledger = SpotLedger()
    for currency in ("USDT", "BTC", "ETH"):
        ledger.fund("trader", currency, D(100_000))
    exchange = SpotExchange(SYMBOLS, ledger, lambda user, symbol: (MAKER, TAKER))
    return KucoinRest(exchange, {"mm-sim-key": KEY}, {"mm-sim-key": "trader"})


def test_the_dead_mans_switch_of_some_symbols_set_again_and_disarmed() -> None:
    rest = three_symbols()
    btc = data(call(rest, "POST", "/api/v1/hf/orders", body=order("buy", "50000", "0.1")))
    eth = order("buy", "1000", "0.1", symbol="ETH-USDT")
    data(call(rest, "POST", "/api/v1/hf/orders", body=eth))
    data(call(rest, "POST", "/api/v1/hf/orders", body=eth | {"symbol": "ETH-BTC", "price": "0.05"}))
    arm = {"timeout": 5, "symbols": "ETH-USDT,ETH-BTC"}
    data(call(rest, "POST", "/api/v1/hf/orders/dead-cancel-all", body=arm))
    # Set again 4 s later (the request as the venue sees it then): the trigger moves on.
    later = rest.handle(
        "POST",
        "/api/v1/hf/orders/dead-cancel-all",
        "",
        sign_request(
            KEY, NOW_MS + 4_000, "POST", "/api/v1/hf/orders/dead-cancel-all", json.dumps(arm)
        ),
        json.dumps(arm).encode(),
        NOW_NS + 4 * 10**9,
    )
    assert data(later)["triggerTime"] == NOW_NS // 10**9 + 9
    rest.expire(NOW_NS + 8 * 10**9)
    assert len(rest.exchange.live) == 3
    rest.expire(NOW_NS + 9 * 10**9)
    assert list(rest.exchange.live) == [btc["orderId"]]  # the symbols it named, alone
    data(call(rest, "POST", "/api/v1/hf/orders/dead-cancel-all", body={"timeout": 10}))
    assert data(call(rest, "POST", "/api/v1/hf/orders/dead-cancel-all", body={"timeout": -1})) == {}
    rest.expire(NOW_NS + 3600 * 10**9)
    assert list(rest.exchange.live) == [btc["orderId"]]
    bads: list[dict[str, Any]] = [
        {"timeout": 5, "symbols": "DOGE-USDT"},
        {"timeout": 5, "symbols": 5},
        *({"timeout": timeout} for timeout in (4, 86_401, 0, -2, "5", True, None)),
    ]
    for bad in bads:
        refused(call(rest, "POST", "/api/v1/hf/orders/dead-cancel-all", body=bad), 400, "400100")


def test_a_duplicated_client_oid_is_refused() -> None:
    rest = face()
    body = order("buy", "50000", "0.1", clientOid="dup")
    data(call(rest, "POST", "/api/v1/hf/orders", body=body))
    with pytest.raises(KucoinError, match="400100: clientOid duplicated"):
        data(call(rest, "POST", "/api/v1/hf/orders", body=body))
    accounts = {
        a["currency"]: a for a in data(call(rest, "GET", "/api/v1/accounts", {"currency": "USDT"}))
    }
    assert list(accounts) == ["USDT"]
    assert accounts["USDT"]["holds"] == "5005"  # the first order's alone
