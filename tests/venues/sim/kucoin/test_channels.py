"""The KuCoin face's balance, ticker and match channels over loopback, on the virtual clock:
what each pushes, in the venue's shapes, when the account or the book changes."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import trio

from mm import clock
from mm.venues.sim.kucoin.server import STARTING_BALANCES
from tests.venues.sim.kucoin.wsclient import (
    data,
    next_message,
    running,
    signed,
    subscribe,
    websocket,
)

D = Decimal
BALANCE_FIELDS = {
    "accountId",
    "available",
    "availableChange",
    "currency",
    "hold",
    "holdChange",
    "relationContext",
    "relationEvent",
    "relationEventId",
    "time",
    "total",
}


async def test_every_hold_release_and_trade_is_a_balance_change_that_replays_to_the_accounts(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async with running() as (_, client), websocket(client, private=True) as ws:
        await subscribe(ws, "/account/balance", private=True)
        resting = {
            "symbol": "ETH-USDT",
            "side": "buy",
            "type": "limit",
            "price": "100",
            "size": "0.5",
        }
        placed = data(await signed(client, "POST", "/api/v1/hf/orders", body=resting))
        held = await next_message(ws, "/account/balance")
        assert (held["subject"], held["channelType"]) == ("account.balance", "private")
        change = held["data"]
        assert set(change) == BALANCE_FIELDS
        assert (change["currency"], change["relationEvent"]) == ("USDT", "trade.hold")
        assert change["relationContext"] == {"symbol": "ETH-USDT", "orderId": placed["orderId"]}
        assert (change["hold"], change["holdChange"], change["availableChange"]) == (
            "50.05",
            "50.05",
            "-50.05",
        )
        assert change["total"] == "100000"
        assert abs(int(change["time"]) - clock.wall_ms()) < 1_000
        path = f"/api/v1/hf/orders/{placed['orderId']}"
        data(await signed(client, "DELETE", path, {"symbol": "ETH-USDT"}))
        released = (await next_message(ws, "/account/balance"))["data"]
        assert (released["holdChange"], released["hold"]) == ("-50.05", "0")
        # A market buy takes the book: its hold, the trade's settlement of both currencies,
        # and the dust released.
        taking = {"symbol": "BTC-USDT", "side": "buy", "type": "market", "funds": "1000"}
        taken = data(await signed(client, "POST", "/api/v1/hf/orders", body=taking))
        changes = [held["data"], released]
        with trio.fail_after(60):
            while True:  # until the order holds nothing: after its trades, and its dust freed
                changes.append((await next_message(ws, "/account/balance"))["data"])
                if changes[-1]["currency"] == "USDT" and changes[-1]["hold"] == "0":
                    break
        settled = [c for c in changes if c["relationEvent"] == "trade.setted"]
        assert {c["currency"] for c in settled} == {"USDT", "BTC"}
        assert all(c["relationContext"]["orderId"] == taken["orderId"] for c in settled)
        assert all(c["relationContext"]["tradeId"] for c in settled)
        assert len({c["relationEventId"] for c in changes}) == len(changes)
        accounts = {a["currency"]: a for a in data(await signed(client, "GET", "/api/v1/accounts"))}
    replayed = {currency: (amount, D(0)) for currency, amount in STARTING_BALANCES.items()}
    for c in changes:
        total, hold = replayed[c["currency"]]
        total += D(c["availableChange"]) + D(c["holdChange"])
        hold += D(c["holdChange"])
        assert (total, hold) == (D(c["total"]), D(c["hold"]))  # each says what it left
        replayed[c["currency"]] = (total, hold)
    for currency, (total, hold) in replayed.items():
        assert (D(accounts[currency]["balance"]), D(accounts[currency]["holds"])) == (total, hold)


async def test_a_trade_is_a_match_and_a_ticker_and_the_top_of_book_a_ticker(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async with running() as (_, client), websocket(client) as ws:
        await subscribe(ws, "/market/ticker:BTC-USDT,ETH-USDT")
        await subscribe(ws, "/market/match:BTC-USDT")
        quiet = await next_message(ws, "/market/ticker:")  # the book's top moves every step
        assert quiet["subject"] == "trade.ticker"
        top = quiet["data"]
        assert set(top) == {
            "sequence",
            "price",
            "size",
            "bestAsk",
            "bestAskSize",
            "bestBid",
            "bestBidSize",
            "time",
        }
        assert D(top["bestBid"]) < D(top["bestAsk"])
        assert type(top["time"]) is int
        assert type(top["sequence"]) is str
        taking = {"symbol": "BTC-USDT", "side": "buy", "type": "market", "funds": "1000"}
        taken = data(await signed(client, "POST", "/api/v1/hf/orders", body=taking))
        match = await next_message(ws, "/market/match:BTC-USDT")
        trade: dict[str, Any] = match["data"]
        assert (match["subject"], match["topic"]) == ("trade.l3match", "/market/match:BTC-USDT")
        assert (trade["takerOrderId"], trade["side"], trade["type"]) == (
            taken["orderId"],
            "buy",
            "match",
        )
        assert trade["symbol"] == "BTC-USDT"
        assert trade["makerOrderId"] not in ("", taken["orderId"])
        assert trade["sequence"] == trade["tradeId"]
        assert abs(int(trade["time"]) // 1_000_000 - clock.wall_ms()) < 1_000  # nanoseconds
        # The order's other matches, then the ticker of its last trade.
        message = await next_message(ws, "/market/")
        while message["subject"] == "trade.l3match":
            trade = message["data"]
            message = await next_message(ws, "/market/")
        ticker = message["data"]
        assert message["topic"] == "/market/ticker:BTC-USDT"
        assert (ticker["price"], ticker["size"]) == (trade["price"], trade["size"])
        assert ticker["time"] == int(trade["time"]) // 1_000_000
