"""The KuCoin face's ``/spotMarket/tradeOrdersV2`` messages against KuCoin's documented ones
(``docs_examples.json``): a market buy by funds, on the documented book, makes the documented
messages (received, its matches, its dust cancelled); over loopback it makes the same sequence;
and a maker's match is what the specification says one is."""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

import trio

from mm.venues.kucoin.orders import fill, order_report, parse_order_change
from mm.venues.sim.kucoin.ledger import SpotLedger
from mm.venues.sim.kucoin.server import KucoinSimVenue
from mm.venues.sim.kucoin.spot import Placed, SpotExchange, SpotOrderRequest, SpotSymbol
from tests.fixture_paths import KUCOIN
from tests.venues.sim.kucoin.wsclient import (
    data,
    next_message,
    running,
    signed,
    subscribe,
    websocket,
)

D = Decimal
EXAMPLES: dict[str, Any] = json.loads((KUCOIN / "docs_examples.json").read_text(encoding="utf-8"))
DOCUMENTED: list[dict[str, Any]] = [m["data"] for m in EXAMPLES["market_buy_by_funds"]["messages"]]
# The HF docs' "Handling fees" book: the asks the documented market buy took, best first.
ASKS = (("4011.32", "0.24738383"), ("4015.60", "0.56849308"), ("4200.00", "0.18412309"))
BTC_USDT = SpotSymbol(
    "BTC-USDT", "BTC", "USDT", D("0.01"), D("0.00000001"), D("0.00001"), D("0.00001"),
    D("0.1"), D("0.1"),
)  # fmt: skip


def steps(messages: list[dict[str, Any]]) -> list[tuple[str, str]]:
    """The (type, status) sequence, a run of matches counted once."""
    seen: list[tuple[str, str]] = []
    for message in messages:
        step = (message["type"], message["status"])
        if not seen or step != seen[-1] or step[0] != "match":
            seen.append(step)
    return seen


def documented_book() -> SpotExchange:
    """The documented asks, resting (no fees: the docs' trades spend the funds on the asks)."""
    ledger = SpotLedger()
    ledger.fund("maker", "BTC", D(1))
    ledger.fund("buyer", "USDT", D(10_000))
    exchange = SpotExchange([BTC_USDT], ledger, lambda user, symbol: (D(0), D(0)))
    for price, size in ASKS:
        request = SpotOrderRequest("BTC-USDT", "sell", "limit", price=price, size=size)
        assert isinstance(exchange.place("maker", request, 1), Placed)
    return exchange


def test_a_market_buy_by_funds_on_the_documented_book_makes_the_documented_messages() -> None:
    exchange = documented_book()
    funds = DOCUMENTED[0]["originFunds"]
    placed = exchange.place("buyer", SpotOrderRequest("BTC-USDT", "buy", "market", funds=funds), 2)
    assert isinstance(placed, Placed)
    made = [
        KucoinSimVenue._order_message(change)["data"]
        for change in placed.changes
        if change.oid == placed.oid
    ]
    assert [(m["type"], m["status"]) for m in made] == [
        (m["type"], m["status"]) for m in DOCUMENTED
    ]
    for face, docs in zip(made, DOCUMENTED, strict=True):
        assert "price" not in face  # a market order has none
        assert "originSize" not in face  # by funds: no size of its own
        assert D(face["originFunds"]) == D(docs["originFunds"])
        assert ("matchPrice" in face) == ("matchPrice" in docs)
        for key in ("matchPrice", "matchSize", "filledSize"):
            if key in docs:  # (the face's received also says filledSize 0; the docs' does not)
                assert D(face[key]) == D(docs[key]), key
        assert face.get("liquidity") == docs.get("liquidity")


async def test_over_loopback_a_market_buy_by_funds_is_the_documented_sequence(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async with running() as (_, client), websocket(client, private=True) as ws:
        await subscribe(ws, "/spotMarket/tradeOrdersV2", private=True)
        taking = {"symbol": "BTC-USDT", "side": "buy", "type": "market", "funds": "1000"}
        oid = data(await signed(client, "POST", "/api/v1/hf/orders", body=taking))["orderId"]
        messages: list[dict[str, Any]] = []
        while not messages or messages[-1]["data"]["status"] != "done":
            message = await next_message(ws, "/spotMarket/tradeOrdersV2")
            if message["data"]["orderId"] == oid:
                messages.append(message)
    assert steps([m["data"] for m in messages]) == steps(DOCUMENTED)
    changes = [parse_order_change(message) for message in messages]
    assert order_report(changes[-1]).status.ended
    matches = [fill(c, 0.001, "USDT") for c in changes if c.type == "match"]
    assert len(matches) >= 1
    assert all(f.crossed for f in matches)
    total = D(messages[-1]["data"]["filledSize"])
    assert sum((D(m["data"]["matchSize"]) for m in messages[1:-1]), D(0)) == total


def test_a_maker_s_match_is_status_open_as_the_specification_says() -> None:
    documented = EXAMPLES["maker_match"]["message"]["data"]
    exchange = documented_book()
    taking = SpotOrderRequest("BTC-USDT", "buy", "limit", price="4011.32", size="0.1")
    placed = exchange.place("buyer", taking, 2)
    assert isinstance(placed, Placed)
    made = [KucoinSimVenue._order_message(change)["data"] for change in placed.changes]
    maker = next(m for m in made if m["type"] == "match" and m["orderId"] != placed.oid)
    taker = next(m for m in made if m["type"] == "match" and m["orderId"] == placed.oid)
    assert (maker["liquidity"], maker["status"]) == (documented["liquidity"], documented["status"])
    assert (taker["liquidity"], taker["status"]) == ("taker", "match")
    change = parse_order_change({**EXAMPLES["maker_match"]["message"], "data": maker})
    assert fill(change, 0.001, "USDT").crossed is False
