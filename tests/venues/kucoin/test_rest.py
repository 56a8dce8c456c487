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
from mm.venues.base import RateLimited
from mm.venues.kucoin.answers import KucoinError
from mm.venues.kucoin.instruments import parse_symbols
from mm.venues.kucoin.limits import WINDOW_S
from mm.venues.kucoin.rate_budget import RateBudget
from mm.venues.kucoin.rest import KucoinRestTransport
from mm.venues.kucoin.signing import Credentials
from mm.venues.sim.kucoin.server import DEV_KEY, KucoinSimVenue

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
