"""The KuCoin face over loopback: REST and the token handshake over HTTP, the WebSocket's
welcome, pings, subscriptions, level-2 increments and private order changes, each read with
the adapter's own parsers; the dead-man's switch firing on the face's (Trio's) clock."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
import pytest
import trio
from trio_websocket import ConnectionRejected, WebSocketConnection, open_websocket_url

from mm import clock
from mm.venues.kucoin.answers import unwrap
from mm.venues.kucoin.codec import parse_level2_increment, parse_level2_snapshot
from mm.venues.kucoin.instruments import parse_symbols
from mm.venues.kucoin.level2 import Level2Book, Outcome
from mm.venues.kucoin.orders import order_report, parse_order_change
from mm.venues.kucoin.signing import endpoint, sign_request
from mm.venues.kucoin.ws_protocol import Kind, classify, connect_url, parse_bullet, ping, subscribe
from mm.venues.sim.kucoin.server import DEV_KEY, KucoinSimVenue

WITHIN = 10.0  # seconds any one step may take on a loaded machine (a hang guard, not a wait)


@asynccontextmanager
async def running() -> AsyncIterator[tuple[KucoinSimVenue, httpx.AsyncClient]]:
    venue = KucoinSimVenue(seed=5, step_s=0.05)
    async with trio.open_nursery() as nursery:
        url = await nursery.start(venue.run)
        async with httpx.AsyncClient(base_url=url, timeout=WITHIN) as client:
            yield venue, client
        nursery.cancel_scope.cancel()


async def signed(
    client: httpx.AsyncClient,
    method: str,
    path: str,
    query: dict[str, str] | None = None,
    body: dict[str, Any] | None = None,
) -> Any:
    text = json.dumps(body, separators=(",", ":")) if body is not None else ""
    headers = sign_request(DEV_KEY, clock.wall_ms(), method, endpoint(path, query), text)
    headers["Content-Type"] = "application/json"
    response = await client.request(method, path, params=query, content=text, headers=headers)
    return unwrap(response.status_code, response.content)


def opened(response: httpx.Response) -> Any:
    return unwrap(response.status_code, response.content)


async def next_message(ws: WebSocketConnection, topic_prefix: str) -> dict[str, Any]:
    with trio.fail_after(WITHIN):
        while True:
            received = classify(await ws.get_message())
            if received.kind is Kind.MESSAGE and (received.topic or "").startswith(topic_prefix):
                return received.message


async def test_public_rest_and_the_level2_feed_keep_the_adapters_book() -> None:
    async with running() as (_, client):
        specs = parse_symbols(opened(await client.get("/api/v2/symbols")))
        assert [spec.instrument.symbol for spec in specs] == ["BTC-USDT", "ETH-USDT", "ETH-BTC"]
        bullet = parse_bullet(opened(await client.post("/api/v1/bullet-public")))
        assert bullet.ping_interval_s == 18.0
        async with open_websocket_url(connect_url(bullet, "mm-test")) as ws:
            welcome = classify(await ws.get_message())
            assert (welcome.kind, welcome.id) == (Kind.WELCOME, "mm-test")
            await ws.send_message(ping("p1"))
            await ws.send_message(subscribe("s1", "/market/level2:BTC-USDT", private=False))
            kinds: set[tuple[Kind, str | None]] = set()
            with trio.fail_after(WITHIN):
                while len(kinds) < 2:
                    received = classify(await ws.get_message())
                    kinds.add((received.kind, received.id))
            assert kinds == {(Kind.PONG, "p1"), (Kind.ACK, "s1")}
            book = Level2Book("BTC-USDT")
            first = await next_message(ws, "/market/level2:")
            book.increment(parse_level2_increment(first["data"]))
            path, query = "/api/v1/market/orderbook/level2_100", {"symbol": "BTC-USDT"}
            base = parse_level2_snapshot(opened(await client.get(path, params=query)), "BTC-USDT")
            assert book.snapshot(base) is Outcome.SYNCED
            for _ in range(20):  # a second of the market, increment by increment
                message = await next_message(ws, "/market/level2:")
                assert book.increment(parse_level2_increment(message["data"])) is Outcome.APPLIED
            # A later snapshot: the increments reach exactly its sequence, and the adapter's
            # book then holds exactly its levels.
            later = parse_level2_snapshot(opened(await client.get(path, params=query)), "BTC-USDT")
            assert book.sequence is not None
            while book.sequence < later.sequence:
                message = await next_message(ws, "/market/level2:")
                assert book.increment(parse_level2_increment(message["data"])) is Outcome.APPLIED
            assert book.sequence == later.sequence
            bids, asks = book.top(100)
            assert bids == tuple((px, sz, 0) for px, sz in later.bids)
            assert asks == tuple((px, sz, 0) for px, sz in later.asks)


async def test_private_orders_over_rest_and_their_changes_over_the_websocket() -> None:
    async with running() as (_, client):
        bullet = parse_bullet(await signed(client, "POST", "/api/v1/bullet-private"))
        async with open_websocket_url(connect_url(bullet, "mm-private")) as ws:
            assert classify(await ws.get_message()).kind is Kind.WELCOME
            await ws.send_message(subscribe("o1", "/spotMarket/tradeOrdersV2", private=True))
            order = {
                "symbol": "ETH-USDT",
                "side": "buy",
                "type": "limit",
                "price": "100",
                "size": "0.5",
                "clientOid": "mm-private-1",
            }
            placed = await signed(client, "POST", "/api/v1/hf/orders", body=order)
            received = parse_order_change(await next_message(ws, "/spotMarket/tradeOrdersV2"))
            opened = parse_order_change(await next_message(ws, "/spotMarket/tradeOrdersV2"))
            assert (received.type, opened.type) == ("received", "open")
            report = order_report(opened)
            assert report.oid.endswith(placed["orderId"])
            assert (report.cloid, report.px, report.sz) == ("mm-private-1", 100.0, 0.5)
            accounts = {a["currency"]: a for a in await signed(client, "GET", "/api/v1/accounts")}
            assert accounts["USDT"]["holds"] == "50.05"  # 50 and the most it can pay in fees
            await signed(
                client, "DELETE", f"/api/v1/hf/orders/{placed['orderId']}", {"symbol": "ETH-USDT"}
            )
            cancelled = parse_order_change(await next_message(ws, "/spotMarket/tradeOrdersV2"))
            assert cancelled.type == "canceled"
            # A topic the venue does not have is answered with an error of that request.
            await ws.send_message(subscribe("bad", "/market/nothing:BTC-USDT", private=False))
            with trio.fail_after(WITHIN):
                while (error := classify(await ws.get_message())).kind is not Kind.ERROR:
                    pass
            assert error.id == "bad"


async def test_a_websocket_without_an_issued_token_is_refused() -> None:
    async with running() as (venue, _):
        url = venue.url.replace("http://", "ws://") + "/endpoint?token=forged&connectId=x"
        with pytest.raises(ConnectionRejected):
            async with open_websocket_url(url):
                pass


async def test_the_dead_mans_switch_fires_on_the_faces_clock(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """Armed for 5 s, set again before then, and left: the order is cancelled 5 s after the
    last setting, on the market loop's clock, not after the first."""
    async with running() as (venue, client):
        order = {"symbol": "ETH-USDT", "side": "buy", "price": "100", "size": "0.5"}
        oid = (await signed(client, "POST", "/api/v1/hf/orders", body=order))["orderId"]
        arm = {"timeout": 5, "symbols": "ETH-USDT"}
        first = trio.current_time()
        await signed(client, "POST", "/api/v1/hf/orders/dead-cancel-all", body=arm)
        await trio.sleep_until(first + 3)
        assert oid in venue.exchange.live
        again = trio.current_time()
        await signed(client, "POST", "/api/v1/hf/orders/dead-cancel-all", body=arm)
        armed_again = trio.current_time()
        assert armed_again < first + 5  # (set again before the first setting expired)
        query = await signed(client, "GET", "/api/v1/hf/orders/dead-cancel-all/query")
        assert query["timeout"] == 5
        assert query["symbols"] == "ETH-USDT"
        await trio.sleep_until(again + 4.9)  # past the first setting's time
        assert oid in venue.exchange.live
        await trio.sleep_until(armed_again + 5 + 2 * venue.step_s)
        assert oid not in venue.exchange.live
        assert venue.exchange.orders[oid].end == "canceled"
        assert await signed(client, "GET", "/api/v1/hf/orders/dead-cancel-all/query") == {}
