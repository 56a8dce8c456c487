"""The KuCoin client where the venue does not answer as it should, on an in-memory transport
(``httpx.MockTransport``) with the specification's answers: lost and unreadable answers,
refusals whole and per order, and the fills read paging back."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import httpx
import orjson
import pytest
import trio

from mm import clock
from mm.model import CancelOrder, Filled, ModifyOrder, PlaceOrder, Rejected, Resting, Side, Tif
from mm.venues.base import OrderFateUnknown, RateLimited, RequestTimeout
from mm.venues.kucoin.client import KucoinClient
from mm.venues.kucoin.ids import order_id
from mm.venues.kucoin.rate_budget import RateBudget
from mm.venues.kucoin.rest import KucoinRestTransport
from mm.venues.sim.kucoin.server import DEV_KEY
from tests.fixture_paths import KUCOIN

MESSAGES: dict[str, Any] = json.loads((KUCOIN / "messages.json").read_text(encoding="utf-8"))
FEES: dict[str, Any] = json.loads((KUCOIN / "rest_trade_fees.json").read_text(encoding="utf-8"))
ANSWERS: dict[str, Any] = json.loads((KUCOIN / "rest_orders.json").read_text(encoding="utf-8"))
SYMBOL = "BTC-USDT"
OID = "67111a7cb7cbdf000703e1f6"
Route = Callable[[httpx.Request], httpx.Response]


def ok(data: Any) -> httpx.Response:
    return httpx.Response(200, content=orjson.dumps({"code": "200000", "data": data}))


def refused(status: int, code: str, msg: str) -> httpx.Response:
    return httpx.Response(status, content=orjson.dumps({"code": code, "msg": msg}))


def lost(request: httpx.Request) -> httpx.Response:
    raise httpx.ReadTimeout("no answer", request=request)


def reference(request: httpx.Request) -> httpx.Response | None:
    if request.url.path == "/api/v2/symbols":
        return ok([MESSAGES["rest_symbol_BTC-USDT"]])
    if request.url.path == "/api/v1/trade-fees":
        return ok(FEES["trade_fees_response"]["data"][:1])
    return None


@asynccontextmanager
async def mock_client(route: Route) -> AsyncIterator[tuple[KucoinClient, list[httpx.Request]]]:
    seen: list[httpx.Request] = []

    def handle(request: httpx.Request) -> httpx.Response:
        answer = reference(request)
        if answer is not None:
            return answer
        seen.append(request)
        return route(request)

    async with KucoinRestTransport(
        "http://venue",
        DEV_KEY,
        budget=RateBudget(),
        now_ms=clock.wall_ms,
        transport=httpx.MockTransport(handle),
    ) as rest:
        client = KucoinClient(rest, [SYMBOL])
        await client.instruments()
        yield client, seen


def order(cloid: str, px: float = 50_000.0, tif: Tif = Tif.GTC) -> PlaceOrder:
    return PlaceOrder(SYMBOL, Side.BUY, px, 0.001, tif, cloid)


def sync_state(cloid: str, status: str = "open", deal: str = "0") -> dict[str, Any]:
    answer: dict[str, Any] = ANSWERS["add_order_sync"]["data"]
    return answer | {
        "clientOid": cloid,
        "status": status,
        "dealSize": deal,
        "originSize": "0.001",
    }


async def test_a_lost_answer_leaves_the_order_unknown_until_it_can_no_longer_land(
    autojump_clock: trio.abc.Clock,
) -> None:
    async with mock_client(lost) as (client, _):
        before = clock.wall_ms()
        with pytest.raises(OrderFateUnknown) as unknown:
            await client.place([order("mm-a")])
    assert unknown.value.cloids == ("mm-a",)
    assert unknown.value.lands_by_ms is not None
    # The venue refuses a timestamp 5 s off its clock (ours may be 5 s off it), then the engine.
    assert unknown.value.lands_by_ms >= before + 10_000
    assert unknown.value.lands_by_ms - before <= client.landing_window_ms + 1_000


async def test_an_unreadable_answer_leaves_the_order_unknown_with_no_landing_left(
    autojump_clock: trio.abc.Clock,
) -> None:
    async with mock_client(lambda request: ok({"orderId": OID})) as (client, _):
        with pytest.raises(OrderFateUnknown) as unknown:
            await client.place([order("mm-a")])
    assert unknown.value.cloids == ("mm-a",)
    assert unknown.value.lands_by_ms is None


async def test_a_rate_limited_request_with_every_order_is_refused_whole(
    autojump_clock: trio.abc.Clock,
) -> None:
    async with mock_client(lambda request: refused(429, "429000", "Too Many Requests")) as (
        client,
        _,
    ):
        with pytest.raises(RateLimited):
            await client.place([order("mm-a")])
        with pytest.raises(RateLimited):
            await client.cancel([CancelOrder(SYMBOL, oid=order_id(OID))])
        assert client.rest.budget.refusals == 2


async def test_the_venues_refusal_of_an_order_is_its_rejection(
    autojump_clock: trio.abc.Clock,
) -> None:
    answer = refused(200, "200004", "Balance insufficient!")
    async with mock_client(lambda request: answer) as (client, _):
        (result,) = await client.place([order("mm-a")])
    assert isinstance(result, Rejected)
    assert "200004" in result.reason


async def test_a_lost_chunk_beside_an_answered_one(autojump_clock: trio.abc.Clock) -> None:
    orders = [order(f"mm-{i}", 50_000.0 - i) for i in range(6)]

    def route(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/api/v1/hf/orders/multi/sync":
            sent = orjson.loads(request.content)["orderList"]
            assert len(sent) == 5
            return ok([sync_state(entry["clientOid"]) | {"success": True} for entry in sent])
        return lost(request)

    async with mock_client(route) as (client, _):
        with pytest.raises(OrderFateUnknown) as unknown:
            await client.place(orders)
    assert unknown.value.cloids == ("mm-5",)
    assert set(unknown.value.known) == {f"mm-{i}" for i in range(5)}
    assert all(isinstance(r, Resting) for r in unknown.value.known.values())
    assert unknown.value.lands_by_ms is not None


async def test_a_rate_limited_chunk_beside_an_answered_one_rejects_its_orders_only(
    autojump_clock: trio.abc.Clock,
) -> None:
    orders = [order(f"mm-{i}", 50_000.0 - i) for i in range(6)]

    def route(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/api/v1/hf/orders/multi/sync":
            sent = orjson.loads(request.content)["orderList"]
            return ok([sync_state(entry["clientOid"]) | {"success": True} for entry in sent])
        return refused(429, "429000", "Too Many Requests")

    async with mock_client(route) as (client, _):
        results = await client.place(orders)
    assert [type(r) for r in results] == [Resting] * 5 + [Rejected]


async def test_a_fill_whose_average_cannot_be_read_reports_its_limit_price(
    autojump_clock: trio.abc.Clock,
) -> None:
    def route(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/api/v1/hf/orders/sync":
            return ok(sync_state("mm-a", status="done", deal="0.001"))
        return httpx.Response(502)

    async with mock_client(route) as (client, _):
        (result,) = await client.place([order("mm-a", tif=Tif.IOC)])
    assert result == Filled(order_id(OID), "mm-a", 0.001, 50_000.0)


async def test_a_fill_is_answered_at_once_with_its_limit_price_while_the_budget_says_wait(
    autojump_clock: trio.abc.Clock,
) -> None:
    """After a 429 the budget's pool is empty until its reset: the average's read would wait
    for it, holding the order's answer (a triangle's leg timed out on it, unacknowledged,
    though the venue had filled it). It is not read then."""

    def route(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/api/v1/hf/orders/sync":
            return ok(sync_state("mm-a", status="done", deal="0.001"))
        raise AssertionError(f"read while the budget said wait: {request.url.path}")

    async with mock_client(route) as (client, seen):
        pool = client.rest.budget.pool("Spot")  # room for the order (1), not the read (2)
        pool.take(pool.remaining - 1, trio.current_time())
        started = trio.current_time()
        (result,) = await client.place([order("mm-a", tif=Tif.IOC)])
        assert trio.current_time() - started < 1.0  # (virtual: no wait for the reset)
    assert result == Filled(order_id(OID), "mm-a", 0.001, 50_000.0)
    assert [request.url.path for request in seen] == ["/api/v1/hf/orders/sync"]


async def test_lost_cancels_and_modifies(autojump_clock: trio.abc.Clock) -> None:
    async with mock_client(lost) as (client, _):
        with pytest.raises(RequestTimeout):
            await client.cancel([CancelOrder(SYMBOL, cloid="mm-a")])
        with pytest.raises(OrderFateUnknown) as unknown:
            await client.modify([ModifyOrder(order("mm-a"), oid=order_id(OID))])
    assert unknown.value.cloids == ("mm-a",)
    assert unknown.value.lands_by_ms is not None


async def test_a_modify_answered_is_the_new_order(autojump_clock: trio.abc.Clock) -> None:
    async with mock_client(lambda request: ok(ANSWERS["modify_order"]["data"])) as (client, seen):
        (result,) = await client.modify([ModifyOrder(order("client order id 12"))])
    assert result == Resting(order_id("67112258f9406e0007408827"), "client order id 12")
    assert orjson.loads(seen[0].content) == {
        "symbol": SYMBOL,
        "newPrice": "50000",
        "newSize": "0.001",
        "clientOid": "client order id 12",
    }


async def test_fills_since_pages_back_to_the_first_fill_then_answers_the_oldest(
    autojump_clock: trio.abc.Clock,
) -> None:
    template = ANSWERS["hf_fills"]["data"]["items"][0]
    start_ms = 1_700_000_000_000
    fills = [  # ids and times rising, as the venue keeps them
        template | {"id": 1_000 + i, "tradeId": 5_000 + i, "createdAt": start_ms + i}
        for i in range(250)
    ]

    def route(request: httpx.Request) -> httpx.Response:
        params = request.url.params
        assert params["symbol"] == SYMBOL
        last_id = int(params.get("lastId", 10**9))
        since = int(params["startAt"])
        older = [f for f in reversed(fills) if f["id"] < last_id and f["createdAt"] >= since]
        page = older[: int(params["limit"])]
        return ok({"items": page, "lastId": page[-1]["id"] if page else 0})

    async with mock_client(route) as (client, seen):
        page = await client.fills_since(start_ms + 10)
        assert len(seen) == 3  # 100, 100, 40: back to the first fill at start_ms + 10
        assert len(page) == client.fills_page == 100
        assert [f.time_ms for f in page] == [start_ms + 10 + i for i in range(100)]
        rest = await client.fills_since(start_ms + 200)
    assert [f.time_ms for f in rest] == [start_ms + 200 + i for i in range(50)]
