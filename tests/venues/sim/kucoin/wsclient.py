"""A raw client of the KuCoin face for loopback tests on the virtual clock: the face running,
signed REST requests, and a WebSocket opened through the token handshake, read as plain JSON
(the face is checked against the venue's documents here, not against the adapter's parser)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
import trio
from trio_websocket import WebSocketConnection, open_websocket_url

from mm import clock
from mm.venues.kucoin.signing import endpoint, sign_request
from mm.venues.sim.kucoin.faults import KucoinFaultConfig
from mm.venues.sim.kucoin.server import DEV_KEY, KucoinSimVenue

GUARD_S = 600.0  # virtual seconds any one wait may take (a hang guard, never reached when green)


@asynccontextmanager
async def running(
    *, step_s: float = 1.0, faults: KucoinFaultConfig | None = None
) -> AsyncIterator[tuple[KucoinSimVenue, httpx.AsyncClient]]:
    """The face on loopback and an HTTP client of it (no client timeout: the virtual clock
    would jump to it while a request is on the wire)."""
    venue = KucoinSimVenue(seed=7, step_s=step_s, faults=faults)
    async with trio.open_nursery() as nursery:
        url = await nursery.start(venue.run)
        async with httpx.AsyncClient(base_url=url, timeout=None) as client:
            yield venue, client
        nursery.cancel_scope.cancel()


async def signed(
    client: httpx.AsyncClient,
    method: str,
    path: str,
    query: dict[str, str] | None = None,
    body: dict[str, Any] | None = None,
) -> httpx.Response:
    text = json.dumps(body, separators=(",", ":")) if body is not None else ""
    headers = sign_request(DEV_KEY, clock.wall_ms(), method, endpoint(path, query), text)
    headers["Content-Type"] = "application/json"
    return await client.request(method, path, params=query, content=text, headers=headers)


def data(response: httpx.Response) -> Any:
    assert response.status_code == 200, response.text
    answer = response.json()
    assert answer["code"] == "200000", answer
    return answer["data"]


@asynccontextmanager
async def websocket(
    client: httpx.AsyncClient, *, private: bool = False
) -> AsyncIterator[WebSocketConnection]:
    """A WebSocket of the face, welcomed (a private one for the development account)."""
    if private:
        bullet = data(await signed(client, "POST", "/api/v1/bullet-private"))
    else:
        bullet = data(await client.post("/api/v1/bullet-public"))
    server = bullet["instanceServers"][0]
    url = f"{server['endpoint']}?token={bullet['token']}&connectId=test"
    async with open_websocket_url(url) as ws:
        assert json.loads(await ws.get_message())["type"] == "welcome"
        yield ws


async def subscribe(ws: WebSocketConnection, topic: str, *, private: bool = False) -> None:
    """Subscribe and wait for the ack (data of other topics received meanwhile is dropped)."""
    request = {"id": topic, "type": "subscribe", "topic": topic, "response": True}
    await ws.send_message(json.dumps({**request, "privateChannel": private}))
    with trio.fail_after(GUARD_S):
        while True:
            message = json.loads(await ws.get_message())
            if message.get("type") == "ack" and message.get("id") == topic:
                return


async def next_message(ws: WebSocketConnection, topic_prefix: str) -> dict[str, Any]:
    """The next data message of a topic starting with ``topic_prefix``."""
    with trio.fail_after(GUARD_S):
        while True:
            message: dict[str, Any] = json.loads(await ws.get_message())
            if message.get("type") == "message" and message["topic"].startswith(topic_prefix):
                return message


async def messages_for(ws: WebSocketConnection, seconds: float) -> list[dict[str, Any]]:
    """Every message received in the next ``seconds`` of virtual time."""
    received: list[dict[str, Any]] = []
    with trio.move_on_after(seconds):
        while True:
            received.append(json.loads(await ws.get_message()))
    return received
