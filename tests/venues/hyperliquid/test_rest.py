"""The REST transport against the simulator over loopback: answers, deadlines, failure modes."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx
import pytest
import trio

from mm.venues.base import RequestTimeout
from mm.venues.hyperliquid.rest import (
    RestError,
    RestTransport,
    TooManyRequests,
    VenueUnavailable,
)
from mm.venues.hyperliquid.signing import address_from_private_key, sign_l1_action
from mm.venues.sim.config import MarketConfig, SimConfig
from mm.venues.sim.faults import FaultConfig
from mm.venues.sim.venue import SimVenue

EPOCH_MS = 1_800_000_000_000
KEY = "0x" + "42" * 32


@asynccontextmanager
async def simulator(faults: FaultConfig | None = None) -> AsyncIterator[SimVenue]:
    config = SimConfig(market=MarketConfig(taker_a=0.0), faults=faults or FaultConfig())
    venue = SimVenue(config, epoch_ms=EPOCH_MS, fund_at_start=(address_from_private_key(KEY),))
    async with trio.open_nursery() as nursery:
        await nursery.start(venue.run)
        try:
            yield venue
        finally:
            nursery.cancel_scope.cancel()


async def test_info_and_a_signed_action() -> None:
    seen: list[tuple[str, int]] = []
    with trio.fail_after(10):
        async with simulator() as venue:
            assert venue.url is not None
            rest = RestTransport(venue.url, observer=lambda e, s, st: seen.append((e, st)))
            async with rest:
                meta = await rest.info({"type": "meta"})
                assert [asset["name"] for asset in meta["universe"]] == ["BTC", "ETH"]
                action = {"type": "noop"}
                nonce = venue.now_ms()
                signature = sign_l1_action(KEY, action, nonce, mainnet=False)
                answer = await rest.exchange(
                    {"action": action, "nonce": nonce, "signature": signature}
                )
                assert answer == {"status": "ok", "response": {"type": "default"}}
    assert seen == [("/info", 200), ("/exchange", 200)]


@pytest.mark.parametrize(
    ("faults", "error"),
    [
        (FaultConfig(http_429=1.0), TooManyRequests),
        (FaultConfig(http_5xx=1.0), VenueUnavailable),
    ],
)
async def test_failure_statuses_become_exceptions(
    faults: FaultConfig, error: type[RestError]
) -> None:
    with trio.fail_after(10):
        async with simulator(faults) as venue:
            assert venue.url is not None
            async with RestTransport(venue.url) as rest:
                with pytest.raises(error) as caught:
                    await rest.info({"type": "meta"})
    assert caught.value.endpoint == "/info"


async def test_a_request_the_venue_cannot_read_is_a_rest_error() -> None:
    with trio.fail_after(10):
        async with simulator() as venue:
            assert venue.url is not None
            async with RestTransport(venue.url) as rest:
                with pytest.raises(RestError) as caught:
                    await rest.info({"type": "noSuchThing"})
    assert caught.value.status == 422
    assert "Failed to deserialize" in caught.value.text


async def test_a_slow_answer_past_the_deadline_is_a_timeout() -> None:
    with trio.fail_after(10):
        async with simulator(FaultConfig(http_latency_ms=1_000)) as venue:
            assert venue.url is not None
            async with RestTransport(venue.url, deadline_s=0.2) as rest:
                started = trio.current_time()
                with pytest.raises(RequestTimeout):
                    await rest.info({"type": "meta"})
                assert trio.current_time() - started < 0.9


async def test_an_unreachable_venue_is_unavailable() -> None:
    with trio.fail_after(10):
        listener = trio.socket.socket()
        await listener.bind(("127.0.0.1", 0))
        port = listener.getsockname()[1]
        listener.close()  # nothing listens there now
        async with RestTransport(f"http://127.0.0.1:{port}") as rest:
            with pytest.raises(VenueUnavailable):
                await rest.info({"type": "meta"})


async def test_a_non_json_answer_is_a_rest_error() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, content=b"<html>")

    transport = httpx.MockTransport(handler)
    async with RestTransport("http://venue", transport=transport) as rest:
        with pytest.raises(RestError, match="not JSON"):
            await rest.info({"type": "meta"})


async def test_a_read_on_a_connection_closed_under_it_is_asked_again_an_action_never() -> None:
    calls: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(request.url.path)
        if len(calls) % 2 == 1:  # the kept-alive connection closes as it is reused
            raise httpx.RemoteProtocolError("Server disconnected without sending a response.")
        return httpx.Response(200, json={"ok": True})

    with trio.fail_after(5):
        async with RestTransport("http://venue", transport=httpx.MockTransport(handler)) as rest:
            assert await rest.info({"type": "meta"}) == {"ok": True}
            assert calls == ["/info", "/info"]
            with pytest.raises(VenueUnavailable, match="transport error"):
                await rest.exchange({"action": {"type": "noop"}})
            assert calls == ["/info", "/info", "/exchange"]
