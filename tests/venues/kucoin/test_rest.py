"""The adapter's signed, budgeted REST to KuCoin: over loopback against the simulator's KuCoin
face, and on an in-memory transport for the budget's waits (on virtual time)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx
import pytest
import trio

from mm import clock
from mm.secrets import Secret
from mm.venues.base import RateLimited, VenueError
from mm.venues.kucoin.answers import KucoinError
from mm.venues.kucoin.instruments import parse_symbols
from mm.venues.kucoin.limits import WINDOW_S
from mm.venues.kucoin.rate_budget import RateBudget
from mm.venues.kucoin.rest import KucoinRestTransport
from mm.venues.kucoin.signing import Credentials
from mm.venues.sim.kucoin.server import DEV_KEY, KucoinSimVenue
from tests.venues.kucoin.test_lane import NowVenue, writes_now_connect

WITHIN = 10.0  # a hang guard for one loopback exchange on a loaded machine


@asynccontextmanager
async def face_transport(
    credentials: Credentials = DEV_KEY,
) -> AsyncIterator[KucoinRestTransport]:
    venue = KucoinSimVenue(seed=3)
    async with trio.open_nursery() as nursery:
        url = await nursery.start(venue.run)
        async with KucoinRestTransport(
            url, credentials, budget=RateBudget(), now_ms=clock.wall_ms, deadline_s=WITHIN
        ) as rest:
            yield rest
        nursery.cancel_scope.cancel()


async def test_public_and_private_requests_against_the_face() -> None:
    async with face_transport() as rest:
        assert (
            abs(await rest.request("GET", "/api/v1/timestamp", signed=False) - clock.wall_ms())
            < 5_000
        )
        specs = parse_symbols(await rest.request("GET", "/api/v2/symbols", signed=False))
        assert "ETH-BTC" in {spec.instrument.symbol for spec in specs}
        order = {
            "clientOid": "rest-1",
            "side": "buy",
            "symbol": "ETH-USDT",
            "type": "limit",
            "price": "100",
            "size": "0.5",
        }
        placed = await rest.request("POST", "/api/v1/hf/orders", body=order)
        oid = placed["orderId"]
        query = {"symbol": "ETH-USDT"}
        found = await rest.request("GET", f"/api/v1/hf/orders/{oid}", query=query)
        assert (found["price"], found["active"]) == ("100", True)
        assert await rest.request("DELETE", f"/api/v1/hf/orders/{oid}", query=query) == {
            "orderId": oid
        }
        fees = await rest.request(
            "GET", "/api/v1/trade-fees", query={"symbols": "BTC-USDT,ETH-BTC"}
        )
        assert [fee["symbol"] for fee in fees] == ["BTC-USDT", "ETH-BTC"]  # a comma, encoded
        with pytest.raises(KucoinError, match="200004") as refused:
            await rest.request("POST", "/api/v1/hf/orders", body=order | {"size": "5000"})
        assert refused.value.code == "200004"


async def test_a_wrong_secret_is_refused_and_never_shown() -> None:
    wrong = Credentials(DEV_KEY.key, Secret("not-the-secret"), DEV_KEY.passphrase)
    async with face_transport(wrong) as rest:
        with pytest.raises(KucoinError) as refused:
            await rest.request("GET", "/api/v1/accounts")
    assert refused.value.code in ("400004", "400005")
    assert "not-the-secret" not in str(refused.value)


def answering(
    status: int, body: bytes, headers: dict[str, str] | None = None
) -> httpx.MockTransport:
    def handle(request: httpx.Request) -> httpx.Response:
        return httpx.Response(status, content=body, headers=headers or {})

    return httpx.MockTransport(handle)


async def test_requests_wait_for_the_budget_on_the_runs_clock(
    autojump_clock: trio.abc.Clock,
) -> None:
    ok = answering(200, b'{"code":"200000","data":{"orderId":"x"}}')
    budget = RateBudget({"Spot": 3, "Public": 2_000})
    async with KucoinRestTransport(
        "http://venue", DEV_KEY, budget=budget, now_ms=clock.wall_ms, transport=ok
    ) as rest:
        started = trio.current_time()
        for _ in range(3):
            await rest.request("POST", "/api/v1/hf/orders", body={"symbol": "BTC-USDT"})
        assert trio.current_time() == started  # within the pool's quota: no wait
        await rest.request("POST", "/api/v1/hf/orders", body={"symbol": "BTC-USDT"})
        assert trio.current_time() - started >= WINDOW_S  # the fourth waited for the window
        assert rest.waits == 1


async def test_a_429_empties_the_pool_until_its_reset(autojump_clock: trio.abc.Clock) -> None:
    headers = {
        "gw-ratelimit-limit": "4000",
        "gw-ratelimit-remaining": "0",
        "gw-ratelimit-reset": "7000",
    }
    limited = answering(429, b'{"code":"429000","msg":"Too Many Requests"}', headers)
    budget = RateBudget()
    async with KucoinRestTransport(
        "http://venue", DEV_KEY, budget=budget, now_ms=clock.wall_ms, transport=limited
    ) as rest:
        with pytest.raises(RateLimited):
            await rest.request("GET", "/api/v1/hf/orders/active", query={"symbol": "BTC-USDT"})
        assert budget.refusals == 1
        started = trio.current_time()
        with pytest.raises(RateLimited):
            await rest.request("GET", "/api/v1/hf/orders/active", query={"symbol": "BTC-USDT"})
        assert 7.0 <= trio.current_time() - started < 8.0  # waited out the venue's reset


async def test_a_private_request_without_credentials_is_a_bug_said_plainly() -> None:
    async with KucoinRestTransport(
        "http://venue",
        None,
        budget=RateBudget(),
        now_ms=clock.wall_ms,
        transport=answering(200, b"{}"),
    ) as rest:
        with pytest.raises(ValueError, match="is private, and no credentials were given"):
            await rest.request("GET", "/api/v1/accounts")


# --- send_now: a lane request written at once, its answer awaited later ------------------------

SYNC = "/api/v1/hf/orders/sync"
ORDER = {
    "clientOid": "now-1",
    "side": "buy",
    "symbol": "ETH-USDT",
    "type": "limit",
    "price": "100",
    "size": "0.5",
}


async def test_send_now_is_none_and_spends_nothing_off_the_lane() -> None:
    """Not entered (its lane never opened), or made with an httpx transport (no lane): None,
    and the budget untouched."""
    for transport in (None, answering(200, b'{"code":"200000","data":{}}')):
        rest = KucoinRestTransport(
            "http://venue", DEV_KEY, budget=RateBudget(), now_ms=clock.wall_ms, transport=transport
        )
        assert not rest.ready_now("POST", SYNC)
        assert rest.send_now("POST", SYNC, ORDER) is None
        assert rest.budget.pools == {} or rest.budget.pool("Spot").resets_at is None
        await rest.aclose()


async def test_send_now_writes_and_answers_the_data_request_would() -> None:
    async with face_transport() as rest:
        assert rest.lane is not None
        with trio.fail_after(WITHIN):
            await rest.lane.wait_idle(2)
        # What it cannot carry: a read, a path not sent as it reads: None, nothing spent.
        pool = rest.budget.pool("Spot")
        before = pool.remaining
        assert rest.send_now("GET", "/api/v1/hf/orders/active", None) is None
        assert rest.send_now("DELETE", "/api/v1/hf/orders/client-order/a b", None) is None
        assert pool.remaining == before
        assert rest.ready_now("POST", SYNC)
        call = rest.send_now("POST", SYNC, ORDER)
        assert call is not None
        assert pool.remaining == before - 1  # its weight, spent when written
        with trio.fail_after(WITHIN):
            sent = await call.answer()
        twin = await rest.request("POST", SYNC, body=ORDER | {"clientOid": "now-2"})
        differ = {"orderId", "clientOid", "orderTime", "matchTime", "lastUpdatedAt", "createdAt"}
        assert sent.keys() == twin.keys()
        assert {k: v for k, v in sent.items() if k not in differ} == {
            k: v for k, v in twin.items() if k not in differ
        }
        assert (sent["clientOid"], sent["status"]) == ("now-1", "open")
        query = {"symbol": "ETH-USDT"}
        found = await rest.request("GET", f"/api/v1/hf/orders/{sent['orderId']}", query=query)
        assert (found["clientOid"], found["active"]) == ("now-1", True)
        # Refused by the venue (the balance): the same error request raises.
        too_big = ORDER | {"size": "5000"}
        call = rest.send_now("POST", SYNC, too_big | {"clientOid": "now-3"})
        assert call is not None
        with pytest.raises(KucoinError) as by_send_now:
            await call.answer()
        with pytest.raises(KucoinError) as by_request:
            await rest.request("POST", SYNC, body=too_big | {"clientOid": "now-4"})
        assert by_send_now.value.code == by_request.value.code == "200004"
        assert str(by_send_now.value) == str(by_request.value)


async def test_send_now_is_none_and_spends_nothing_when_the_budget_says_wait() -> None:
    async with face_transport() as rest:
        assert rest.lane is not None
        with trio.fail_after(WITHIN):
            await rest.lane.wait_idle(2)
        pool = rest.budget.pool("Spot")
        assert pool.take(pool.remaining, trio.current_time()) == 0  # the pool drained
        assert pool.remaining == 0
        assert not rest.ready_now("POST", SYNC)
        assert rest.send_now("POST", SYNC, ORDER) is None
        assert pool.remaining == 0  # nothing spent ...
        assert rest.lane.idle == 2  # ... and no connection taken
        pool.remaining = pool.quota  # (as a new window would)
        assert rest.ready_now("POST", SYNC)
        with pytest.raises(KucoinError):  # ... and nothing written: the venue never saw it
            await rest.request(
                "GET", "/api/v1/hf/orders/client-order/now-1", query={"symbol": "ETH-USDT"}
            )


CANNED = {
    "data": (200, {"code": "200000", "data": {"orderId": "o1", "status": "open"}}),
    "refused": (200, {"code": "400100", "msg": "Parameter error"}),
    "limited": (429, {"code": "429000", "msg": "Too Many Requests"}),
    "down": (503, {"code": "500000", "msg": "down"}),
    "cut": None,  # the connection closed mid-answer
}


async def by_lane(kind: str, *, now: bool) -> tuple[bytes, object, tuple[int, int]]:
    """One order on a lane of one in-memory connection that can be written at once, by
    ``send_now`` (``now``) or by ``request``; the venue's side answers ``CANNED[kind]``. What
    the venue read, the outcome (the data, or the error's type and text), and the budget's
    pool and refusals after."""
    send, receive = trio.open_memory_channel[trio.abc.Stream](10)
    venue = NowVenue(receive)
    async with KucoinRestTransport(
        "https://api.kucoin.com",
        DEV_KEY,
        budget=RateBudget(),
        now_ms=lambda: 1_764_762_000_123,
        lane_connections=1,
        connect=writes_now_connect(venue, send),
    ) as rest:
        assert rest.lane is not None
        server = await venue.next()
        await rest.lane.wait_idle()
        seen: list[bytes] = []

        async def serve() -> None:
            head, body = await server.request()
            seen.append(head + b"\r\n\r\n" + body)
            canned = CANNED[kind]
            if canned is None:
                await server.stream.send_all(b"HTTP/1.1 200 OK\r\nContent-Length: 99\r\n\r\n{")
                await server.stream.aclose()
            else:
                await server.answer(canned[1], canned[0])

        outcome: object
        async with trio.open_nursery() as nursery:
            nursery.start_soon(serve)
            try:
                if now:
                    call = rest.send_now("POST", SYNC, ORDER)
                    assert call is not None
                    outcome = await call.answer()
                else:
                    outcome = await rest.request("POST", SYNC, body=ORDER)
            except VenueError as error:
                outcome = (type(error), str(error))
        pool = rest.budget.pool("Spot")
        return seen[0], outcome, (pool.remaining, rest.budget.refusals)


@pytest.mark.parametrize("kind", sorted(CANNED))
async def test_send_now_writes_the_bytes_request_does_and_maps_the_answer_alike(
    kind: str, autojump_clock: trio.abc.Clock
) -> None:
    by_request = await by_lane(kind, now=False)
    by_send_now = await by_lane(kind, now=True)
    assert by_send_now == by_request
    written, outcome, _ = by_send_now
    assert written.startswith(b"POST /api/v1/hf/orders/sync HTTP/1.1\r\n")
    if kind == "data":
        assert outcome == {"orderId": "o1", "status": "open"}
    else:
        assert isinstance(outcome, tuple)
