"""The simulator's network face, in-process over real loopback sockets: HTTP, WebSocket, faults.

Each test runs its own ``SimVenue`` on a free port and talks to it with httpx and
trio-websocket. Real sockets mean the real clock: the markets here step every few tens of
milliseconds, and every test is bounded by ``trio.fail_after``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import AsyncExitStack, asynccontextmanager
from typing import Any

import attrs
import httpx
import orjson
import pytest
import trio
import trio.testing
from trio_websocket import (
    ConnectionClosed,
    HandshakeError,
    WebSocketConnection,
    open_websocket_url,
)

from mm.venues.sim.config import MarketConfig, SimConfig
from mm.venues.sim.engine import Filled, OrderRequest, Resting
from mm.venues.sim.faults import DATA_CHANNELS, FaultConfig
from mm.venues.sim.venue import SimVenue

Json = dict[str, Any]

EPOCH_MS = 1_800_000_000_000
GREETING = "Websocket connection established."
DESERIALIZE = "Failed to deserialize the JSON body into the target type"
TOO_MANY = "429 Too Many Requests"
TIMEOUT = 5.0
USER = "0x" + "ab" * 20

# A quiet market: no takers, so no trades; the ladder is requoted every step, so books change.
QUIET = MarketConfig(step_ms=20, taker_a=0.0)
# A busy market: takers arrive often and deep, so trades print every few steps.
BUSY = MarketConfig(step_ms=20, taker_a=40.0, taker_k=0.1)
L2_BOOK_BTC: Json = {"type": "l2Book", "coin": "BTC"}
TRADES_BTC: Json = {"type": "trades", "coin": "BTC"}


def as_json(config: FaultConfig) -> Any:
    """A fault config as the control endpoint shows it (JSON: tuples become lists)."""
    return orjson.loads(orjson.dumps(attrs.asdict(config)))


def sim_config(**changes: Any) -> SimConfig:
    return attrs.evolve(SimConfig(book_interval_ms=20, market=QUIET), **changes)


@asynccontextmanager
async def running(config: SimConfig | None = None) -> AsyncIterator[SimVenue]:
    """A venue serving on a free loopback port; stopped on exit."""
    venue = SimVenue(config or sim_config(), epoch_ms=EPOCH_MS)
    async with trio.open_nursery() as nursery:
        await nursery.start(venue.run)
        try:
            yield venue
        finally:
            nursery.cancel_scope.cancel()


@asynccontextmanager
async def http(venue: SimVenue) -> AsyncIterator[httpx.AsyncClient]:
    assert venue.url is not None
    async with httpx.AsyncClient(base_url=venue.url, timeout=TIMEOUT) as client:
        yield client


@asynccontextmanager
async def websocket(venue: SimVenue) -> AsyncIterator[WebSocketConnection]:
    """A WebSocket on ``/ws``, its greeting already read."""
    assert venue.url is not None
    url = venue.url.replace("http", "ws", 1) + "/ws"
    async with open_websocket_url(url, connect_timeout=TIMEOUT, disconnect_timeout=2) as ws:
        assert await ws.get_message() == GREETING
        yield ws


async def send(ws: WebSocketConnection, message: Json) -> None:
    await ws.send_message(orjson.dumps(message).decode())


async def subscribe(ws: WebSocketConnection, subscription: Json) -> None:
    await send(ws, {"method": "subscribe", "subscription": subscription})


async def receive(ws: WebSocketConnection) -> Json:
    frame = orjson.loads(await ws.get_message())
    assert isinstance(frame, dict)
    return frame


async def next_frame(ws: WebSocketConnection, channel: str, within: float = 2.0) -> Json:
    """The next frame of ``channel``, skipping others."""
    with trio.fail_after(within):
        while True:
            frame = await receive(ws)
            if frame["channel"] == channel:
                return frame


async def wait_until(condition: Callable[[], bool], within: float = TIMEOUT) -> None:
    """Poll state the venue keeps until ``condition`` holds."""
    with trio.fail_after(within):
        while not condition():  # noqa: ASYNC110 -- state kept by the venue's tasks
            await trio.sleep(0.01)


async def frames_for(ws: WebSocketConnection, seconds: float) -> list[Json]:
    """Every frame that arrives within ``seconds``."""
    frames: list[Json] = []
    with trio.move_on_after(seconds):
        while True:
            frames.append(await receive(ws))
    return frames


async def data_frames(ws: WebSocketConnection, count: int, within: float = 3.0) -> list[Json]:
    """The next ``count`` data frames, skipping acks, pongs and errors."""
    frames: list[Json] = []
    with trio.fail_after(within):
        while len(frames) < count:
            frame = await receive(ws)
            if frame["channel"] in DATA_CHANNELS:
                frames.append(frame)
    return frames


async def frames_until_closed(ws: WebSocketConnection) -> list[Json]:
    """Every frame until the server closes the connection."""
    frames: list[Json] = []
    try:
        while True:
            frames.append(await receive(ws))
    except ConnectionClosed:
        return frames


def channels(frames: list[Json]) -> list[str]:
    return [frame["channel"] for frame in frames]


def best_prices(book: Json) -> tuple[float, float]:
    bids, asks = book["levels"]
    return float(bids[0]["px"]), float(asks[0]["px"])


async def set_faults(client: httpx.AsyncClient, **changes: Any) -> Json:
    response = await client.post("/sim/faults", json=changes)
    assert response.status_code == 200, response.text
    config = response.json()
    assert isinstance(config, dict)
    return config


async def info(client: httpx.AsyncClient, request: Json) -> Any:
    response = await client.post("/info", json=request)
    assert response.status_code == 200, response.text
    return response.json()


# --- HTTP /info ------------------------------------------------------------------------------


async def test_info_meta() -> None:
    with trio.fail_after(TIMEOUT):
        async with running() as venue, http(venue) as client:
            assert await info(client, {"type": "meta"}) == {
                "universe": [
                    {"szDecimals": 5, "name": "BTC", "maxLeverage": 40},
                    {"szDecimals": 4, "name": "ETH", "maxLeverage": 25},
                ]
            }


async def test_info_all_mids() -> None:
    with trio.fail_after(TIMEOUT):
        async with running() as venue, http(venue) as client:
            mids = await info(client, {"type": "allMids"})
            assert set(mids) == {"BTC", "ETH"}
            assert all(isinstance(mid, str) for mid in mids.values())
            assert float(mids["BTC"]) == pytest.approx(95_000.0, rel=0.01)
            assert float(mids["ETH"]) == pytest.approx(3_500.0, rel=0.01)


async def test_info_l2_book() -> None:
    with trio.fail_after(TIMEOUT):
        async with running() as venue, http(venue) as client:
            book = await info(client, {"type": "l2Book", "coin": "ETH"})
            assert book["coin"] == "ETH"
            assert book["time"] >= EPOCH_MS
            bids, asks = book["levels"]
            assert len(bids) == len(asks) == QUIET.liquidity_levels
            for level in bids + asks:
                assert set(level) == {"px", "sz", "n"}
                assert isinstance(level["px"], str)
                assert float(level["sz"]) > 0
                assert level["n"] >= 1
            bid_px = [float(level["px"]) for level in bids]
            ask_px = [float(level["px"]) for level in asks]
            assert bid_px == sorted(bid_px, reverse=True)  # best first: descending
            assert ask_px == sorted(ask_px)  # best first: ascending
            assert len(set(bid_px)) == len(bid_px)
            assert bid_px[0] < ask_px[0]  # not crossed
            mid = float((await info(client, {"type": "allMids"}))["ETH"])
            assert bid_px[0] < mid < ask_px[0]


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        ({"type": "noSuchInfo"}, "type: unknown info type 'noSuchInfo'"),
        ({"type": "l2Book", "coin": "NOPE"}, "coin: unknown coin"),
        ({"type": "l2Book"}, "coin: expected a string, got null"),
        ({"type": "clearinghouseState", "user": "0x1234"}, "user: expected an address"),
        ({}, "type: expected a string, got null"),
        ([1, 2], "expected an object, got array"),
        ("meta", "expected an object, got string"),
    ],
)
async def test_info_the_venue_would_not_deserialize_is_422(body: Any, reason: str) -> None:
    with trio.fail_after(TIMEOUT):
        async with running() as venue, http(venue) as client:
            response = await client.post("/info", json=body)
            assert response.status_code == 422
            assert response.text.startswith(f"{DESERIALIZE}: {reason}"), response.text


async def test_wrong_method_or_path_is_404() -> None:
    with trio.fail_after(TIMEOUT):
        async with running() as venue, http(venue) as client:
            for response in (
                await client.get("/info"),
                await client.get("/exchange"),
                await client.post("/nowhere", json={"type": "meta"}),
                await client.post("/sim/nowhere", json={}),
                await client.get("/sim/cascade"),
            ):
                assert response.status_code == 404, response.request.url


async def test_invalid_json_is_422() -> None:
    with trio.fail_after(TIMEOUT):
        async with running() as venue, http(venue) as client:
            for path in ("/info", "/exchange"):
                response = await client.post(path, content=b"{not json")
                assert response.status_code == 422
                assert response.text.startswith(f"{DESERIALIZE}: not JSON: "), response.text


# 600 requests over a real socket: a hang guard, not a wait. It stays under the venue's
# 60-second weight window (past it the first requests would leave the window), and above what
# 600 requests take on 2 loaded cores (10 s was not: they timed out beside a CI run).
HANG_GUARD_S = 45


async def test_ip_weight_limit() -> None:
    with trio.fail_after(HANG_GUARD_S):
        async with running(sim_config(rate_limits=True)) as venue, http(venue) as client:
            request = {"type": "l2Book", "coin": "BTC"}  # weight 2 of 1200 a minute
            for _ in range(600):
                response = await client.post("/info", json=request)
                assert response.status_code == 200
            response = await client.post("/info", json=request)
            assert response.status_code == 429
            assert response.text == TOO_MANY
            response = await client.post("/info", json={"type": "meta"})
            assert response.status_code == 429
            # A post on the WebSocket from the same IP shares the budget.
            async with websocket(venue) as ws:
                post = {"type": "info", "payload": {"type": "allMids"}}
                await send(ws, {"method": "post", "id": 3, "request": post})
                frame = await next_frame(ws, "post")
                assert frame["data"] == {
                    "id": 3,
                    "response": {"type": "error", "payload": TOO_MANY},
                }
            assert venue.ip_limits.refused("127.0.0.1") == 3


async def test_no_weight_limit_when_rate_limits_are_off() -> None:
    with trio.fail_after(HANG_GUARD_S):
        async with running(sim_config(rate_limits=False)) as venue, http(venue) as client:
            statuses = set()
            for _ in range(601):
                response = await client.post("/info", json={"type": "l2Book", "coin": "BTC"})
                statuses.add(response.status_code)
            assert statuses == {200}


# --- WebSocket -------------------------------------------------------------------------------


async def test_greeting_and_ping() -> None:
    with trio.fail_after(TIMEOUT):
        async with running() as venue, websocket(venue) as ws:
            for _ in range(3):
                await send(ws, {"method": "ping"})
                assert await ws.get_message() == '{"channel":"pong"}'


async def test_subscribe_l2_book_acks_then_snapshots() -> None:
    with trio.fail_after(TIMEOUT):
        async with running() as venue, websocket(venue) as ws:
            await subscribe(ws, L2_BOOK_BTC)
            assert await receive(ws) == {
                "channel": "subscriptionResponse",
                "data": {
                    "method": "subscribe",
                    "subscription": {
                        "type": "l2Book",
                        "coin": "BTC",
                        "nSigFigs": None,
                        "mantissa": None,
                    },
                },
            }
            snapshot = await receive(ws)
            assert snapshot["channel"] == "l2Book"
            assert snapshot["data"]["coin"] == "BTC"
            bid, ask = best_prices(snapshot["data"])
            assert bid < ask
            # Then a frame every book interval, while the book changes.
            updates = await data_frames(ws, 3, within=2.0)
            assert channels(updates) == ["l2Book"] * 3
            times = [snapshot["data"]["time"]] + [frame["data"]["time"] for frame in updates]
            assert times == sorted(times)


async def test_subscribe_acks_in_the_venue_shapes() -> None:
    with trio.fail_after(TIMEOUT):
        async with running() as venue, websocket(venue) as ws:
            await subscribe(ws, TRADES_BTC)
            assert await receive(ws) == {
                "channel": "subscriptionResponse",
                "data": {"method": "subscribe", "subscription": {"type": "trades", "coin": "BTC"}},
            }
            await subscribe(ws, {"type": "userFills", "user": USER.upper().replace("0X", "0x")})
            assert await receive(ws) == {
                "channel": "subscriptionResponse",
                "data": {
                    "method": "subscribe",
                    "subscription": {"type": "userFills", "user": USER, "aggregateByTime": False},
                },
            }
            assert await receive(ws) == {
                "channel": "userFills",
                "data": {"isSnapshot": True, "user": USER, "fills": []},
            }
            await subscribe(ws, {"type": "allMids"})
            ack = await receive(ws)
            assert ack["data"]["subscription"] == {"type": "allMids"}
            mids = await receive(ws)
            assert mids["channel"] == "allMids"
            assert set(mids["data"]["mids"]) == {"BTC", "ETH"}


async def test_trades_arrive_when_the_market_trades() -> None:
    with trio.fail_after(TIMEOUT):
        async with running(sim_config(market=BUSY)) as venue, websocket(venue) as ws:
            await subscribe(ws, TRADES_BTC)
            assert (await receive(ws))["channel"] == "subscriptionResponse"
            frames = [await next_frame(ws, "trades") for _ in range(3)]
            trades = [trade for frame in frames for trade in frame["data"]]
            for trade in trades:
                assert set(trade) == {"coin", "side", "px", "sz", "time", "hash", "tid", "users"}
                assert trade["coin"] == "BTC"
                assert trade["side"] in ("A", "B")
                assert float(trade["px"]) == pytest.approx(95_000.0, rel=0.01)
                assert trade["hash"].startswith("0x")
                assert len(trade["users"]) == 2
            tids = [trade["tid"] for trade in trades]
            assert tids == sorted(tids)
            assert len(set(tids)) == len(tids)


async def test_no_trades_in_a_quiet_market() -> None:
    with trio.fail_after(TIMEOUT):
        async with running() as venue, websocket(venue) as ws:
            await subscribe(ws, TRADES_BTC)
            frames = await frames_for(ws, 0.3)
            assert channels(frames) == ["subscriptionResponse"]


async def test_unsubscribe() -> None:
    with trio.fail_after(TIMEOUT):
        async with running() as venue, websocket(venue) as ws:
            await subscribe(ws, L2_BOOK_BTC)
            await next_frame(ws, "l2Book")
            await send(ws, {"method": "unsubscribe", "subscription": L2_BOOK_BTC})
            ack = await next_frame(ws, "subscriptionResponse")
            assert ack["data"] == {
                "method": "unsubscribe",
                "subscription": {
                    "type": "l2Book",
                    "coin": "BTC",
                    "nSigFigs": None,
                    "mantissa": None,
                },
            }
            assert not venue.hub.has(("l2Book", "BTC"))
            assert channels(await frames_for(ws, 0.2)) == []  # no more books
            await send(ws, {"method": "unsubscribe", "subscription": L2_BOOK_BTC})
            assert await receive(ws) == {
                "channel": "error",
                "data": 'Already unsubscribed: {"type":"l2Book","coin":"BTC"}',
            }
            trades_eth = {"type": "trades", "coin": "ETH"}
            await send(ws, {"method": "unsubscribe", "subscription": trades_eth})
            assert await receive(ws) == {
                "channel": "error",
                "data": 'Already unsubscribed: {"type":"trades","coin":"ETH"}',
            }


async def test_already_subscribed() -> None:
    with trio.fail_after(TIMEOUT):
        async with running() as venue, websocket(venue) as ws:
            await subscribe(ws, TRADES_BTC)
            assert (await receive(ws))["channel"] == "subscriptionResponse"
            await subscribe(ws, TRADES_BTC)
            assert await receive(ws) == {
                "channel": "error",
                "data": 'Already subscribed: {"type":"trades","coin":"BTC"}',
            }


@pytest.mark.parametrize(
    "subscription",
    [
        {"type": "l2Book", "coin": "NOPE"},
        {"type": "candles", "coin": "BTC"},
        {"type": "userFills", "user": "0x1234"},
        {"coin": "BTC"},
        "l2Book",
        None,
    ],
)
async def test_invalid_subscription(subscription: Any) -> None:
    with trio.fail_after(TIMEOUT):
        async with running() as venue, websocket(venue) as ws:
            await subscribe(ws, subscription)
            assert await receive(ws) == {
                "channel": "error",
                "data": f"Invalid subscription {orjson.dumps(subscription).decode()}",
            }
            assert list(venue.hub.keys()) == []


@pytest.mark.parametrize("text", ["{not json", '{"method": "dance"}', "[1, 2]", '"ping"'])
async def test_invalid_request(text: str) -> None:
    with trio.fail_after(TIMEOUT):
        async with running() as venue, websocket(venue) as ws:
            await ws.send_message(text)
            assert await receive(ws) == {
                "channel": "error",
                "data": f"Error parsing JSON into valid websocket request: {text}",
            }
            await send(ws, {"method": "ping"})  # the connection stays usable
            assert await receive(ws) == {"channel": "pong"}


async def test_post_info() -> None:
    with trio.fail_after(TIMEOUT):
        async with running() as venue, websocket(venue) as ws:
            payload = {"type": "orderStatus", "user": USER, "oid": 12345}
            request = {"type": "info", "payload": payload}
            await send(ws, {"method": "post", "id": 7, "request": request})
            assert await receive(ws) == {
                "channel": "post",
                "data": {
                    "id": 7,
                    "response": {
                        "type": "info",
                        "payload": {"type": "orderStatus", "data": {"status": "unknownOid"}},
                    },
                },
            }
            request = {"type": "info", "payload": {"type": "meta"}}
            await send(ws, {"method": "post", "id": 8, "request": request})
            frame = await receive(ws)
            names = [
                asset["name"] for asset in frame["data"]["response"]["payload"]["data"]["universe"]
            ]
            assert names == ["BTC", "ETH"]


@pytest.mark.parametrize(
    ("request_", "payload"),
    [
        ({"type": "nonsense"}, "Invalid post request"),
        ("info", "Invalid post request"),
        (None, "Invalid post request"),
        (
            {"type": "info", "payload": {"type": "noSuchInfo"}},
            f"{DESERIALIZE}: type: unknown info type 'noSuchInfo'",
        ),
        ({"type": "info", "payload": [1]}, f"{DESERIALIZE}: expected an object, got array"),
    ],
)
async def test_bad_post_gets_an_error_response(request_: Any, payload: str) -> None:
    with trio.fail_after(TIMEOUT):
        async with running() as venue, websocket(venue) as ws:
            await send(ws, {"method": "post", "id": 99, "request": request_})
            assert await receive(ws) == {
                "channel": "post",
                "data": {"id": 99, "response": {"type": "error", "payload": payload}},
            }


async def test_a_silent_client_is_disconnected_when_idle() -> None:
    with trio.fail_after(TIMEOUT):
        async with running(sim_config(idle_timeout_s=0.5)) as venue, websocket(venue) as ws:
            started = trio.current_time()
            with pytest.raises(ConnectionClosed):
                await ws.get_message()
            assert 0.4 <= trio.current_time() - started < 3.0
        assert venue.ws_limits.connections("127.0.0.1") == 0


async def test_a_pinging_client_stays_connected() -> None:
    with trio.fail_after(TIMEOUT):
        async with running(sim_config(idle_timeout_s=0.5)) as venue, websocket(venue) as ws:
            started = trio.current_time()
            while trio.current_time() - started < 1.2:
                await trio.sleep(0.2)
                await send(ws, {"method": "ping"})
                assert await receive(ws) == {"channel": "pong"}
            assert not ws.closed
            assert venue.ws_limits.connections("127.0.0.1") == 1


async def test_an_ip_holds_10_connections_and_opens_30_a_minute() -> None:
    """The venue's WebSocket connection limits per IP: an eleventh open socket is refused, and
    so is a thirty-first opened within a minute even when few are open."""
    assert_refused = pytest.raises((ConnectionClosed, HandshakeError))
    with trio.fail_after(TIMEOUT * 4):
        async with running() as venue:
            async with AsyncExitStack() as stack:
                for _ in range(10):
                    await stack.enter_async_context(websocket(venue))
                assert venue.ws_limits.connections("127.0.0.1") == 10
                with assert_refused:
                    async with websocket(venue):
                        pass
            await wait_until(lambda: venue.ws_limits.connections("127.0.0.1") == 0)
            for _ in range(20):
                async with websocket(venue):
                    pass
            assert venue.ws_limits.opened("127.0.0.1", venue.now_ms() / 1000) == 30
            with assert_refused:
                async with websocket(venue):
                    pass
            assert venue.ws_limits.connections("127.0.0.1") == 0


# --- faults, switched at runtime -------------------------------------------------------------


async def test_fault_endpoint_reads_and_updates() -> None:
    with trio.fail_after(TIMEOUT):
        async with running() as venue, http(venue) as client:
            response = await client.get("/sim/faults")
            assert response.status_code == 200
            assert response.json() == as_json(FaultConfig())
            updated = await set_faults(client, ws_drop=0.25, http_latency_ms=10)
            assert updated["ws_drop"] == 0.25
            assert updated["http_latency_ms"] == 10.0
            assert updated["stall_books"] is False
            assert (await client.get("/sim/faults")).json() == updated
            assert venue.faults.config == FaultConfig(ws_drop=0.25, http_latency_ms=10.0)


@pytest.mark.parametrize(
    ("body", "error"),
    [
        (b'{"ws_drop": 2}', "faults.ws_drop: must be between 0 and 1, got 2.0"),
        (b'{"bogus": 1}', "faults.bogus: unknown key"),
        (b'{"stall_books": "yes"}', "faults.stall_books: expected true or false"),
        (b'{"ws_disconnect_after": -1}', "faults.ws_disconnect_after: must be >= 0"),
        (b"{not json", "body must be JSON"),
    ],
)
async def test_bad_fault_updates_are_400_and_change_nothing(body: bytes, error: str) -> None:
    with trio.fail_after(TIMEOUT):
        async with running() as venue, http(venue) as client:
            await set_faults(client, ws_duplicate=0.5)
            response = await client.post("/sim/faults", content=body)
            assert response.status_code == 400
            assert error in response.json()["error"]
            after = (await client.get("/sim/faults")).json()
            assert after == as_json(FaultConfig(ws_duplicate=0.5))


@pytest.mark.parametrize("body", [b"[1]", b'"ws_drop"'])
async def test_a_fault_update_that_is_not_an_object_is_400(body: bytes) -> None:
    with trio.fail_after(TIMEOUT):
        async with running() as venue, http(venue) as client:
            response = await client.post("/sim/faults", content=body)
            assert response.status_code == 400


async def test_ws_disconnect_at_a_time_closes_every_connection() -> None:
    config = sim_config(faults=FaultConfig(ws_disconnect_at_s=0.5))
    with trio.fail_after(TIMEOUT):
        async with running(config) as venue, websocket(venue) as first, websocket(venue) as second:
            started = trio.current_time()
            for ws in (first, second):
                await frames_until_closed(ws)
                assert ws.closed is not None
            assert trio.current_time() - started < 2.0
            assert venue.sessions == set()


async def test_post_sim_disconnect_closes_every_connection_now() -> None:
    with trio.fail_after(TIMEOUT):
        async with running() as venue, http(venue) as client, websocket(venue) as ws:
            await send(ws, {"method": "ping"})
            assert await receive(ws) == {"channel": "pong"}
            response = await client.post("/sim/disconnect")
            assert response.json() == {"closed": 1}
            await frames_until_closed(ws)
            assert ws.closed is not None


async def test_the_venue_runs_on_trios_clock(autojump_clock: trio.testing.MockClock) -> None:
    # Ten virtual minutes of market pass in moments: time, mids and the tape all advance.
    venue = SimVenue(sim_config(market=attrs.evolve(QUIET, step_ms=1000)), epoch_ms=EPOCH_MS)
    async with trio.open_nursery() as nursery:
        await nursery.start(venue.run)
        start_ms = venue.now_ms()
        start_mid = venue.mids()["BTC"]
        await trio.sleep(600)
        assert venue.now_ms() - start_ms == 600_000
        assert venue.mids()["BTC"] != start_mid
        nursery.cancel_scope.cancel()


async def test_ws_drop_drops_data_but_not_control_frames() -> None:
    with trio.fail_after(TIMEOUT):
        config = sim_config(market=BUSY)
        async with running(config) as venue, http(venue) as client, websocket(venue) as ws:
            await set_faults(client, ws_drop=1.0)
            await subscribe(ws, L2_BOOK_BTC)
            await subscribe(ws, TRADES_BTC)
            await send(ws, {"method": "ping"})
            await subscribe(ws, TRADES_BTC)
            frames = await frames_for(ws, 0.5)
            assert channels(frames) == ["subscriptionResponse"] * 2 + ["pong", "error"]
            await set_faults(client, ws_drop=0.0)  # the feeds were live all along
            assert set(channels(await data_frames(ws, 4))) <= {"l2Book", "trades"}


async def test_ws_duplicate_sends_every_data_frame_twice() -> None:
    with trio.fail_after(TIMEOUT):
        config = sim_config(faults=FaultConfig(ws_duplicate=1.0))
        async with running(config) as venue, websocket(venue) as ws:
            await subscribe(ws, L2_BOOK_BTC)
            assert (await receive(ws))["channel"] == "subscriptionResponse"
            await send(ws, {"method": "ping"})
            frames = await data_frames(ws, 10)
    assert channels(frames) == ["l2Book"] * 10
    for index in range(0, 10, 2):
        assert frames[index] == frames[index + 1]
        if index:
            assert frames[index] != frames[index - 1]


async def test_ws_reorder_holds_frames_behind_the_next() -> None:
    with trio.fail_after(TIMEOUT):
        config = sim_config(faults=FaultConfig(ws_reorder=1.0))
        async with running(config) as venue, websocket(venue) as ws:
            await subscribe(ws, L2_BOOK_BTC)
            frames = await data_frames(ws, 10)
    # Every frame is held behind the next: the feed arrives in swapped pairs.
    times = [frame["data"]["time"] for frame in frames[2:]]
    assert times != sorted(times)
    for index in range(0, len(times), 2):
        assert times[index] > times[index + 1]


async def test_ws_disconnect_after_closes_after_that_many_data_frames() -> None:
    config = sim_config(faults=FaultConfig(ws_disconnect_after=3))
    with trio.fail_after(TIMEOUT):
        async with running(config) as venue, websocket(venue) as ws:
            for _ in range(2):  # control frames do not count
                await send(ws, {"method": "ping"})
                assert await receive(ws) == {"channel": "pong"}
            await subscribe(ws, L2_BOOK_BTC)
            received = await frames_until_closed(ws)
            assert channels(received) == ["subscriptionResponse"] + ["l2Book"] * 3
            assert ws.closed is not None
            assert ws.closed.code == 1000


async def test_stall_books_stops_books_while_trades_flow() -> None:
    config = sim_config(market=BUSY)
    with trio.fail_after(TIMEOUT):
        async with running(config) as venue, http(venue) as client, websocket(venue) as ws:
            await subscribe(ws, L2_BOOK_BTC)
            await subscribe(ws, TRADES_BTC)
            await next_frame(ws, "l2Book")
            await next_frame(ws, "l2Book")  # an update, after the snapshot
            await set_faults(client, stall_books=True)
            await frames_for(ws, 0.1)  # what was already queued
            await send(ws, {"method": "ping"})
            stalled = channels(await frames_for(ws, 0.5))
            assert "l2Book" not in stalled
            assert "trades" in stalled
            assert "pong" in stalled
            await set_faults(client, stall_books=False)
            await next_frame(ws, "l2Book", within=1.0)


async def test_crossed_book_frames() -> None:
    with trio.fail_after(TIMEOUT):
        async with running() as venue, http(venue) as client, websocket(venue) as ws:
            await subscribe(ws, L2_BOOK_BTC)
            await next_frame(ws, "l2Book")  # the snapshot
            bid, ask = best_prices((await next_frame(ws, "l2Book"))["data"])
            assert bid < ask
            await set_faults(client, crossed_book=1.0)
            await frames_for(ws, 0.1)  # what was already queued
            for frame in await data_frames(ws, 3):
                bid, ask = best_prices(frame["data"])
                assert bid >= ask


async def test_ws_latency_delays_data_frames_only() -> None:
    config = sim_config(faults=FaultConfig(ws_latency_ms=300.0))
    with trio.fail_after(TIMEOUT):
        async with running(config) as venue, websocket(venue) as ws:
            started = trio.current_time()
            await send(ws, {"method": "ping"})
            assert await receive(ws) == {"channel": "pong"}
            assert trio.current_time() - started < 0.3
            # Timed from the request (the book is made once the server has it, the response
            # sent then too): the response's own arrival may come late on a loaded machine,
            # which would shorten the data frame's delay as seen from it.
            asked = trio.current_time()
            await subscribe(ws, L2_BOOK_BTC)
            assert (await receive(ws))["channel"] == "subscriptionResponse"
            assert (await receive(ws))["channel"] == "l2Book"
            assert trio.current_time() - asked >= 0.3


async def test_ws_latency_does_not_accumulate() -> None:
    config = sim_config(faults=FaultConfig(ws_latency_ms=100.0))
    with trio.fail_after(TIMEOUT):
        async with running(config) as venue, websocket(venue) as ws:
            await subscribe(ws, L2_BOOK_BTC)
            started = trio.current_time()
            lag = 0
            while trio.current_time() - started < 1.0:
                frame = await next_frame(ws, "l2Book")
                lag = venue.now_ms() - frame["data"]["time"]
            assert lag < 300


@pytest.mark.parametrize(
    ("fault", "status", "text"),
    [("http_429", 429, TOO_MANY), ("http_5xx", 500, "Internal Server Error")],
)
async def test_http_error_faults(fault: str, status: int, text: str) -> None:
    with trio.fail_after(TIMEOUT):
        async with running() as venue, http(venue) as client:
            await set_faults(client, **{fault: 1.0})
            for path, body in (("/info", {"type": "meta"}), ("/exchange", {"action": {}})):
                response = await client.post(path, json=body)
                assert response.status_code == status
                assert response.text == text
            await set_faults(client, **{fault: 0.0})  # the control endpoints stay up
            assert (await client.post("/info", json={"type": "meta"})).status_code == 200


async def test_http_latency() -> None:
    with trio.fail_after(TIMEOUT):
        async with running() as venue, http(venue) as client:
            started = trio.current_time()
            await info(client, {"type": "allMids"})
            assert trio.current_time() - started < 0.3
            await set_faults(client, http_latency_ms=300)
            started = trio.current_time()
            await info(client, {"type": "allMids"})
            assert trio.current_time() - started >= 0.3


# --- cascades and forced liquidations --------------------------------------------------------


async def test_cascade_moves_the_mid() -> None:
    market = MarketConfig(step_ms=50, taker_a=0.0, volatility_bps=0.5, jump_rate_per_hour=0.0)
    with trio.fail_after(TIMEOUT):
        async with running(sim_config(market=market)) as venue, http(venue) as client:
            before = await info(client, {"type": "allMids"})
            cascade = {"coin": "BTC", "move": -0.05, "duration_s": 1.0}
            response = await client.post("/sim/cascade", json=cascade)
            assert response.status_code == 200
            assert response.json() == {"ok": True}
            await trio.sleep(1.3)
            after = await info(client, {"type": "allMids"})
            # On the real clock the market steps a little late, so the move may fall short.
            assert 0.94 <= float(after["BTC"]) / float(before["BTC"]) <= 0.966
            assert float(after["ETH"]) / float(before["ETH"]) == pytest.approx(1.0, abs=0.003)


@pytest.mark.parametrize(
    "body",
    [
        {"coin": "NOPE", "move": -0.05, "duration_s": 1.0},
        {"coin": "BTC", "move": -0.05, "duration_s": 0},
        {"coin": "BTC", "move": "down", "duration_s": 1.0},
        {"coin": "BTC", "duration_s": 1.0},
    ],
)
async def test_bad_cascade_is_400(body: Json) -> None:
    with trio.fail_after(TIMEOUT):
        async with running() as venue, http(venue) as client:
            response = await client.post("/sim/cascade", json=body)
            assert response.status_code == 400
            assert "bad request" in response.json()["error"]
            assert venue.market.cascades == []


def buy_at_best_ask(venue: SimVenue, user: str, size: str) -> Filled:
    spec = venue.engine.by_name["BTC"]
    ask = venue.engine.books[spec.index].best_ask()
    assert ask is not None
    request = OrderRequest(spec.index, True, spec.px_str(ask), size, tif="Ioc")
    result = venue.engine.place(user, request, venue.now_ms())
    assert isinstance(result, Filled), result
    return result


def positions(state: Json) -> dict[str, float]:
    return {
        entry["position"]["coin"]: float(entry["position"]["szi"])
        for entry in state["assetPositions"]
    }


async def test_liquidate_changes_the_position_without_a_fill() -> None:
    with trio.fail_after(TIMEOUT):
        async with running() as venue, http(venue) as client, websocket(venue) as ws:
            venue.engine.fund(USER, 100_000.0)
            await subscribe(ws, {"type": "userFills", "user": USER})
            snapshot = await next_frame(ws, "userFills")
            assert snapshot["data"]["fills"] == []
            buy_at_best_ask(venue, USER, "0.01")
            update = await next_frame(ws, "userFills")  # a trade's fill is published
            assert [fill["sz"] for fill in update["data"]["fills"]] == ["0.01"]
            state = await info(client, {"type": "clearinghouseState", "user": USER})
            assert positions(state) == {"BTC": 0.01}
            fills = await info(client, {"type": "userFills", "user": USER})
            assert len(fills) == 1

            body = {"user": USER, "coin": "BTC", "szi": "-0.02"}
            response = await client.post("/sim/liquidate", json=body)
            assert response.status_code == 200
            assert response.json() == {"ok": True}
            state = await info(client, {"type": "clearinghouseState", "user": USER})
            assert positions(state) == {"BTC": -0.02}

            body = {"user": USER.upper().replace("0X", "0x"), "coin": "BTC"}  # szi "0"
            assert (await client.post("/sim/liquidate", json=body)).status_code == 200
            state = await info(client, {"type": "clearinghouseState", "user": USER})
            assert positions(state) == {}

            assert await info(client, {"type": "userFills", "user": USER}) == fills
            assert "userFills" not in channels(await frames_for(ws, 0.3))


@pytest.mark.parametrize(
    "body",
    [
        {"user": USER, "coin": "NOPE", "szi": "0"},
        {"user": USER, "coin": "BTC", "szi": "lots"},
        {"coin": "BTC", "szi": "0"},
        {"user": "0x" + "ee" * 20, "coin": "BTC", "szi": "1"},  # no such account
    ],
)
async def test_bad_liquidation_is_400(body: Json) -> None:
    with trio.fail_after(TIMEOUT):
        async with running() as venue, http(venue) as client:
            response = await client.post("/sim/liquidate", json=body)
            assert response.status_code == 400
            assert "bad request" in response.json()["error"]


async def test_volume_counts_as_traded_without_a_fill() -> None:
    # POST /sim/volume: an account past the venue's volume gates without trading here.
    with trio.fail_after(TIMEOUT):
        async with running() as venue, http(venue) as client:
            body = {"user": USER.upper().replace("0X", "0x"), "usdc": 999_999.5}
            response = await client.post("/sim/volume", json=body)
            assert response.status_code == 200
            assert response.json() == {"user": USER, "cumVlm": "999999.5"}
            assert (await client.post("/sim/volume", json={"user": USER, "usdc": 1})).json() == {
                "user": USER,
                "cumVlm": "1000000.5",
            }
            limits = await info(client, {"type": "userRateLimit", "user": USER})
            assert limits["cumVlm"] == "1000000.5"
            assert limits["nRequestsCap"] == 10_000 + 1_000_000
            assert await info(client, {"type": "userFills", "user": USER}) == []


@pytest.mark.parametrize(
    "body",
    [
        {"user": USER},
        {"usdc": 1},
        {"user": USER, "usdc": "1000000"},
        {"user": USER, "usdc": True},
        {"user": USER, "usdc": -1},
        {"user": 7, "usdc": 1},
    ],
)
async def test_bad_volume_is_400_and_changes_nothing(body: Json) -> None:
    with trio.fail_after(TIMEOUT):
        async with running() as venue, http(venue) as client:
            response = await client.post("/sim/volume", json=body)
            assert response.status_code == 400
            assert "bad request" in response.json()["error"]
            assert venue.address_limits.cum_volume_usdc(USER) == 0.0


async def test_every_address_starts_with_the_configured_volume() -> None:
    with trio.fail_after(TIMEOUT):
        async with running(sim_config(initial_volume_usdc=1_000_000)) as venue, http(venue) as c:
            limits = await info(c, {"type": "userRateLimit", "user": USER})
            assert limits["cumVlm"] == "1000000.0"
            now = venue.now_ms()
            assert venue.schedule_cancel(USER, now + 10_000, now) is None
            assert venue.engine.scheduled_time(USER) == now + 10_000


def trade(venue: SimVenue, user: str, count: int) -> None:
    """``count`` fills for ``user``, in-process: small IOCs taking the ladder's top, buying
    and selling in turn."""
    venue.engine.fund(user, 100_000)
    for i in range(count):
        buy = i % 2 == 0
        request = OrderRequest(0, buy, "96000" if buy else "94000", "0.0003", tif="Ioc")
        assert isinstance(venue.engine.place(user, request, venue.now_ms()), Filled)


async def test_listings_of_fills_weigh_one_more_per_20_items() -> None:
    # The docs: userFills and userFillsByTime (among others) weigh 20, plus 1 per 20 items
    # their answer lists; frontendOpenOrders is not among them. Over REST and the post alike.
    with trio.fail_after(TIMEOUT):
        async with running(sim_config(rate_limits=True)) as venue, http(venue) as client:
            trade(venue, USER, 45)
            for _ in range(25):
                request = OrderRequest(0, True, "90000", "0.0003")
                assert isinstance(venue.engine.place(USER, request, venue.now_ms()), Resting)
            ip = "127.0.0.1"

            async def charged(request: Json) -> tuple[int, int]:
                before = venue.ip_limits.used(ip, venue.now_ms() / 1000)
                response = await client.post("/info", json=request)
                assert response.status_code == 200
                after = venue.ip_limits.used(ip, venue.now_ms() / 1000)
                return len(response.json()), after - before

            assert await charged({"type": "userFills", "user": USER}) == (45, 22)
            by_time = {"type": "userFillsByTime", "user": USER, "startTime": 0}
            assert await charged(by_time) == (45, 22)
            assert await charged({"type": "frontendOpenOrders", "user": USER}) == (25, 20)
            async with websocket(venue) as ws:
                before = venue.ip_limits.used(ip, venue.now_ms() / 1000)
                post = {"type": "info", "payload": {"type": "userFills", "user": USER}}
                await send(ws, {"method": "post", "id": 1, "request": post})
                frame = await next_frame(ws, "post")
                assert len(frame["data"]["response"]["payload"]["data"]) == 45
                assert venue.ip_limits.used(ip, venue.now_ms() / 1000) - before == 22
            assert venue.ip_limits.refused(ip) == 0
