"""The KuCoin face's rate limits and faults over loopback, on the virtual clock: the headers of
every answer, the 429 past the quota and its reset, and each fault seen from a client."""

from __future__ import annotations

import itertools
from typing import Any

import httpx
import pytest
import trio
from trio_websocket import ConnectionClosed

from mm import clock
from mm.venues.sim.kucoin.faults import KucoinFaultConfig
from mm.venues.sim.kucoin.quota import Quotas
from mm.venues.sim.kucoin.server import DEV_USER
from tests.venues.sim.kucoin.wsclient import (
    data,
    messages_for,
    next_message,
    running,
    signed,
    subscribe,
    websocket,
)

RESTING = {"symbol": "ETH-USDT", "side": "buy", "type": "limit", "price": "100", "size": "0.5"}


def limits(response: httpx.Response) -> tuple[int, int, int]:
    headers = response.headers
    return (
        int(headers["gw-ratelimit-limit"]),
        int(headers["gw-ratelimit-remaining"]),
        int(headers["gw-ratelimit-reset"]),
    )


async def set_faults(client: httpx.AsyncClient, **faults: Any) -> dict[str, Any]:
    response = await client.post("/sim/faults", json=faults)
    assert response.status_code == 200, response.text
    answer: dict[str, Any] = response.json()
    return answer


# --- rate limits ------------------------------------------------------------------------------


async def test_every_answer_carries_its_pools_limit_and_what_is_left(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async with running() as (_, client):
        first = limits(await client.get("/api/v1/timestamp"))  # Public, weight 3
        second = limits(await client.get("/api/v2/symbols"))  # Public, weight 4
        assert (first[:2], second[:2]) == ((2000, 1997), (2000, 1993))
        assert 0 < second[2] <= first[2] <= 30_000
        accounts = limits(await signed(client, "GET", "/api/v1/accounts"))  # Management, 5
        placed = limits(await signed(client, "POST", "/api/v1/hf/orders", body=RESTING))
        assert (accounts[:2], placed[:2]) == ((2000, 1995), (4000, 3999))  # Spot, 1
        # An answer that refuses the request carries them too.
        unknown = await client.get("/api/v1/nothing-here")
        assert unknown.status_code == 404
        assert limits(unknown)[:2] == (2000, 1992)  # an unlisted endpoint: Public, 1


async def test_past_the_quota_a_429_that_does_not_act_until_the_window_resets(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async with running() as (venue, client):
        # The Public pool at its VIP0 quota, per IP: 200 public handshakes of weight 10.
        for _ in range(200):
            assert (await client.post("/api/v1/bullet-public")).status_code == 200
        refused = await client.post("/api/v1/bullet-public")
        assert refused.status_code == 429
        assert refused.json() == {"code": "429000", "msg": "Too Many Requests"}
        assert limits(refused)[:2] == (2000, 0)
        tokens = len(venue.tokens)
        # A private pool, per account (a small quota here, to reach it in a few orders).
        venue.quotas = Quotas({"Spot": 3, "Public": 2000, "Management": 2000})
        remaining = []
        for _ in range(3):
            answer = await signed(client, "POST", "/api/v1/hf/orders", body=RESTING)
            data(answer)
            remaining.append(limits(answer)[1])
        assert remaining == [2, 1, 0]
        refused = await signed(client, "POST", "/api/v1/hf/orders", body=RESTING)
        assert (refused.status_code, refused.json()["code"]) == (429, "429000")
        assert len(venue.exchange.open_orders(DEV_USER, "ETH-USDT")) == 3  # it did not act
        assert len(venue.tokens) == tokens
        reset_ms = limits(refused)[2]
        assert 0 < reset_ms <= 30_000
        await trio.sleep(reset_ms / 1000)
        again = await signed(client, "POST", "/api/v1/hf/orders", body=RESTING)
        data(again)
        assert limits(again)[:2] == (3, 2)  # a new window
        assert len(venue.exchange.open_orders(DEV_USER, "ETH-USDT")) == 4


# --- HTTP faults ------------------------------------------------------------------------------


async def test_injected_429s_do_not_act_and_latency_delays_every_answer(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async with running(faults=KucoinFaultConfig(http_429=1.0)) as (venue, client):
        refused = await signed(client, "POST", "/api/v1/hf/orders", body=RESTING)
        assert (refused.status_code, refused.json()["code"]) == (429, "429000")
        assert venue.exchange.open_orders(DEV_USER, "ETH-USDT") == []
        assert venue.faults.too_many == 1
        settings = await set_faults(client, http_429=0.0, http_latency_ms=1500)
        assert settings["http_latency_ms"] == 1500
        started = trio.current_time()
        data(await signed(client, "POST", "/api/v1/hf/orders", body=RESTING))
        assert trio.current_time() - started == pytest.approx(1.5)
        assert len(venue.exchange.open_orders(DEV_USER, "ETH-USDT")) == 1


async def test_a_bad_fault_update_is_refused_naming_it(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async with running() as (_, client):
        for body in ({"drop_level2": 2}, {"no_such_fault": 1}):
            answer = await client.post("/sim/faults", json=body)
            assert answer.status_code == 400
            assert next(iter(body)) in answer.json()["error"]
        assert (await client.get("/sim/faults")).json()["drop_level2"] == 0.0


async def test_refused_orders_answer_the_venues_refusal_for_the_next_n_on_a_symbol(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async with running() as (venue, client):
        settings = await set_faults(client, refuse_orders=2, refuse_symbol="ETH-USDT")
        assert (settings["refuse_orders"], settings["refuse_code"]) == (2, "200004")
        other = RESTING | {"symbol": "ETH-BTC", "price": "0.05"}
        data(await signed(client, "POST", "/api/v1/hf/orders", body=other))  # another symbol
        test = await signed(client, "POST", "/api/v1/hf/orders/test", body=RESTING)
        data(test)  # a test order places nothing: never refused by the fault
        before = venue.exchange.ledger.balance(DEV_USER, "USDT")
        answers = [
            await signed(client, "POST", "/api/v1/hf/orders", body=RESTING),
            await signed(client, "POST", "/api/v1/hf/orders/multi", body={"orderList": [RESTING]}),
        ]
        assert (answers[0].status_code, answers[0].json()) == (
            200,
            {"code": "200004", "msg": "Balance insufficient!"},
        )
        assert data(answers[1]) == [{"success": False, "failMsg": "Balance insufficient!"}]
        assert venue.exchange.open_orders(DEV_USER, "ETH-USDT") == []  # nothing placed
        assert venue.exchange.ledger.balance(DEV_USER, "USDT") == before  # nothing held
        assert venue.faults.refused == {"ETH-USDT": 2}
        assert (await client.get("/sim/faults")).json()["refuse_orders"] == 0  # spent
        data(await signed(client, "POST", "/api/v1/hf/orders/sync", body=RESTING))
        await set_faults(client, refuse_orders=1, refuse_symbol="", refuse_code="400100")
        refused = await signed(client, "POST", "/api/v1/hf/orders/sync", body=other)
        assert (refused.status_code, refused.json()) == (
            400,
            {"code": "400100", "msg": "Order size increment invalid."},
        )
        assert venue.faults.refused == {"ETH-USDT": 2, "ETH-BTC": 1}
        assert venue.rest.test_orders == {"ETH-USDT": 1}
        for body in ({"refuse_symbol": "DOGE-USDT"}, {"refuse_code": "500000"}):
            answer = await client.post("/sim/faults", json=body)
            assert answer.status_code == 400
            assert next(iter(body)) in answer.json()["error"]


async def test_a_shock_moves_the_cross_rate_now(autojump_clock: trio.testing.MockClock) -> None:
    async with running() as (venue, client):
        before = venue.market.dislocation
        answer = await client.post("/sim/shock", json={"bps": -50})
        assert answer.status_code == 200
        assert answer.json()["dislocation_bps"] == pytest.approx(before / 1e-4 - 50)
        assert venue.market.forced_shocks == 1
        for body in ({}, {"bps": "50"}, {"bps": True}, [50]):
            assert (await client.post("/sim/shock", json=body)).status_code == 400
        assert venue.market.forced_shocks == 1


# --- WebSocket faults -------------------------------------------------------------------------


async def test_dropped_level2_increments_leave_gaps_while_the_sequence_advances(
    autojump_clock: trio.testing.MockClock,
) -> None:
    faults = KucoinFaultConfig(drop_level2=0.5)
    async with running(faults=faults) as (_, client), websocket(client) as ws:
        await subscribe(ws, "/market/level2:BTC-USDT")
        await subscribe(ws, "/spotMarket/level2Depth5:BTC-USDT")
        received = await messages_for(ws, 30)
        increments = [m["data"] for m in received if m.get("subject") == "trade.l2update"]
        depth5 = [m for m in received if m.get("subject") == "level2"]
        assert len(depth5) >= 29  # only level-2 increments are dropped
        assert len(increments) >= 5
        gaps = 0
        for before, after in itertools.pairwise(increments):
            assert after["sequenceStart"] > before["sequenceEnd"]  # it still advances
            gaps += after["sequenceStart"] != before["sequenceEnd"] + 1
        assert gaps > 0


async def test_dropped_and_duplicated_data_messages_but_never_an_answer(
    autojump_clock: trio.testing.MockClock,
) -> None:
    faults = KucoinFaultConfig(ws_drop=1.0)
    async with running(faults=faults) as (_, client), websocket(client) as ws:
        await subscribe(ws, "/market/level2:BTC-USDT")
        await ws.send_message('{"id": "p", "type": "ping"}')
        assert [m["type"] for m in await messages_for(ws, 10)] == ["pong"]
        await set_faults(client, ws_drop=0.0, ws_duplicate=1.0)
        first = await next_message(ws, "/market/level2:")
        second = await next_message(ws, "/market/level2:")
        assert first == second  # sent twice
        third = await next_message(ws, "/market/level2:")
        assert third["data"]["sequenceStart"] == first["data"]["sequenceEnd"] + 1


async def test_latency_delays_each_data_message_from_when_it_was_published(
    autojump_clock: trio.testing.MockClock,
) -> None:
    faults = KucoinFaultConfig(ws_latency_ms=700)
    async with running(faults=faults) as (_, client), websocket(client) as ws:
        await subscribe(ws, "/market/level2:BTC-USDT")
        for _ in range(5):
            message = await next_message(ws, "/market/level2:")
            assert clock.wall_ms() - message["data"]["time"] >= 700


async def test_a_stall_stops_market_data_but_not_the_accounts_channels(
    autojump_clock: trio.testing.MockClock,
) -> None:
    faults = KucoinFaultConfig(stall_market=True)
    async with running(faults=faults) as (venue, client), websocket(client, private=True) as ws:
        await subscribe(ws, "/market/level2:BTC-USDT")
        await subscribe(ws, "/spotMarket/tradeOrdersV2", private=True)
        assert await messages_for(ws, 10) == []
        data(await signed(client, "POST", "/api/v1/hf/orders", body=RESTING))
        received = await next_message(ws, "/spotMarket/tradeOrdersV2")
        assert received["data"]["type"] == "received"
        stalled_at = venue.depth.sequence["BTC-USDT"]
        assert stalled_at > 1  # the book moved all along
        await set_faults(client, stall_market=False)
        first = await next_message(ws, "/market/level2:")
        second = await next_message(ws, "/market/level2:")
        assert second["data"]["sequenceStart"] == first["data"]["sequenceEnd"] + 1
        assert first["data"]["sequenceStart"] > stalled_at  # what the stall held back is lost


async def test_disconnects_after_so_many_data_messages_and_on_demand(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async with running(faults=KucoinFaultConfig(ws_disconnect_after=3)) as (_, client):
        async with websocket(client) as ws:
            await subscribe(ws, "/market/level2:BTC-USDT")
            for _ in range(3):
                await next_message(ws, "/market/level2:")
            with pytest.raises(ConnectionClosed):
                await next_message(ws, "/market/level2:")
        await set_faults(client, ws_disconnect_after=0)
        async with websocket(client) as ws:
            await subscribe(ws, "/market/level2:BTC-USDT")
            for _ in range(5):
                await next_message(ws, "/market/level2:")
            assert (await client.post("/sim/disconnect")).status_code == 200
            with pytest.raises(ConnectionClosed):
                await next_message(ws, "/market/level2:")
