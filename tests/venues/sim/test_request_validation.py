"""The simulator answers every malformed request with a 4xx and the reason (issue 13, item 12).

It used to answer 500 over HTTP, or drop the WebSocket, on JSON values it used as keys without
checking them (``{"type": ["x"]}``: an unhashable list), on ``modify`` without ``oid`` (an
assertion), on request values it printed (a value nested deeper than ``orjson.dumps`` prints, a
``str()`` of a value nested 1,000 deep), and on a nonce or vault address the signature check
refused with ``ValueError``. Now a body the venue would not deserialize gets HTTP 422 with the
venue's text and the reason, the same text in a WebSocket ``post``'s error response, a
malformed WebSocket message the venue's error frame (the socket stays open), and a bad control
request a 400 naming the problem. The whole action is checked before anything acts: a batch
with one bad entry changes nothing and does not spend its nonce.

The first tests speak to a running simulator over loopback (REST and WebSocket); the fuzz at
the end drives the same handlers in-process, with arbitrary JSON, values nested up to 1,000
levels, and validly signed actions of every kind with fields deleted or replaced.
"""

from __future__ import annotations

import copy
import itertools
import math
from typing import Any

import attrs
import orjson
import pytest
import trio
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from trio_websocket import WebSocketConnection

from mm.venues.hyperliquid.signing import L1Signer
from mm.venues.sim.commits import Accepted
from mm.venues.sim.engine import OrderRequest
from mm.venues.sim.hub import Session
from mm.venues.sim.server import SimApp, WebSocketSession
from mm.venues.sim.venue import SimVenue
from tests.venues.hyperliquid.test_parsers_fuzz import (
    JSON,
    MARK,
    NESTED_TEXT,
    VALUES,
    frame_text,
    materialize,
    mutated,
    nested_text,
    service_recursion_limit,
)
from tests.venues.sim.test_server import (
    DESERIALIZE,
    TIMEOUT,
    http,
    receive,
    running,
    send,
    sim_config,
    subscribe,
    websocket,
)

SIGNER = L1Signer("0x" + "5b" * 32)
USER = SIGNER.address.lower()
CLOID = "0x" + "cd" * 16
ARRAYS_300 = nested_text(300, "arrays")  # deeper than orjson.dumps will print (255)
ARRAYS_1000 = nested_text(1000, "arrays")


def signed(action: dict[str, Any], nonce: int) -> dict[str, Any]:
    """An /exchange body: the action signed for the testnet (the simulator's default source)."""
    signature = SIGNER.sign(action, nonce, mainnet=False)
    return {"action": action, "nonce": nonce, "signature": signature}


def order_wire(px: str = "1000", sz: str = "0.01", **changes: Any) -> dict[str, Any]:
    wire = {"a": 0, "b": True, "p": px, "s": sz, "r": False, "t": {"limit": {"tif": "Gtc"}}}
    return {**wire, **changes}


def rest_on_the_book(venue: SimVenue) -> int:
    """A resting buy of USER's, far below the market; its oid."""
    venue.engine.fund(USER, 100_000.0)
    result = venue.engine.place(USER, OrderRequest(0, True, "1000", "0.02"), venue.now_ms())
    oid = getattr(result, "oid", None)
    assert isinstance(oid, int), result
    return oid


async def post(ws: WebSocketConnection, post_id: int, request: Any) -> Any:
    """A WebSocket post; the reply's response."""
    await send(ws, {"method": "post", "id": post_id, "request": request})
    frame = await receive(ws)
    assert frame["channel"] == "post", frame
    assert frame["data"]["id"] == post_id
    return frame["data"]["response"]


async def still_open(ws: WebSocketConnection) -> None:
    await send(ws, {"method": "ping"})
    assert await receive(ws) == {"channel": "pong"}


# --- over the wire -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("request_", "reason"),
    [
        ({"type": ["x"]}, "type: expected a string, got array"),
        ({"type": {"a": 1}}, "type: expected a string, got object"),
        ({"type": "l2Book", "coin": ["BTC"]}, "coin: expected a string, got array"),
        ({"type": "openOrders", "user": ["0x"]}, "user: expected an address"),
        ({"type": "orderStatus", "user": USER, "oid": [1]}, "oid: expected an order id"),
        ({"type": "orderStatus", "user": USER, "oid": True}, "oid: expected an order id"),
        ({"type": "userFillsByTime", "user": USER, "startTime": [0]}, "startTime and endTime"),
    ],
)
async def test_unhashable_or_mistyped_info_requests_are_422_with_the_reason(
    request_: Any, reason: str
) -> None:
    expected = f"{DESERIALIZE}: {reason}"
    with trio.fail_after(TIMEOUT):
        async with running() as venue, http(venue) as client, websocket(venue) as ws:
            response = await client.post("/info", json=request_)
            assert response.status_code == 422
            assert response.text.startswith(expected), response.text
            answer = await post(ws, 1, {"type": "info", "payload": request_})
            assert answer["type"] == "error"
            assert answer["payload"].startswith(expected), answer
            await still_open(ws)


async def test_modify_without_oid_is_422_and_spends_nothing() -> None:
    reason = f"{DESERIALIZE}: oid: expected an order id (integer) or a cloid"
    with trio.fail_after(TIMEOUT):
        async with running() as venue, http(venue) as client, websocket(venue) as ws:
            oid = rest_on_the_book(venue)
            nonce = venue.now_ms()
            action = {"type": "modify", "order": order_wire(px="1001")}
            response = await client.post("/exchange", json=signed(action, nonce))
            assert response.status_code == 422
            assert response.text.startswith(reason), response.text
            assert response.text.endswith("missing")
            answer = await post(ws, 2, {"type": "action", "payload": signed(action, nonce + 1)})
            assert answer["type"] == "error"
            assert answer["payload"].startswith(reason), answer
            await still_open(ws)
            # Refused before the signature's nonce was spent: the same nonce now works.
            fixed = {"type": "modify", "oid": oid, "order": order_wire(px="1001")}
            response = await client.post("/exchange", json=signed(fixed, nonce))
            assert response.status_code == 200
            assert response.json() == {"status": "ok", "response": {"type": "default"}}


@pytest.mark.parametrize(
    ("action", "reason"),
    [
        ({"type": ["x"]}, "action.type: expected a string, got array"),
        ({"type": "order", "orders": [order_wire(r="yes")]}, "orders[0].r: expected a boolean"),
        ({"type": "order", "orders": [order_wire(p=1000)]}, "orders[0].p: expected a decimal"),
        ({"type": "order", "orders": {"a": 0}}, "orders: expected an array, got object"),
        ({"type": "batchModify", "modifies": [{"order": order_wire()}]}, "modifies[0].oid"),
        ({"type": "cancel", "cancels": [{"a": 0, "o": [1]}]}, "cancels[0].o: expected an integer"),
        ({"type": "cancelByCloid", "cancels": [{"asset": 0}]}, "cancels[0].cloid: missing"),
        ({"type": "scheduleCancel", "time": "soon"}, "time: expected an integer"),
        ({"type": "dance"}, "action.type: unknown action 'dance'"),
    ],
)
async def test_malformed_actions_are_422_with_the_reason(
    action: dict[str, Any], reason: str
) -> None:
    with trio.fail_after(TIMEOUT):
        async with running() as venue, http(venue) as client:
            response = await client.post("/exchange", json=signed(action, venue.now_ms()))
            assert response.status_code == 422
            assert response.text.startswith(f"{DESERIALIZE}: {reason}"), response.text


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"nonce": -1}, "nonce: expected an unsigned integer"),
        ({"nonce": [1]}, "nonce: expected an unsigned integer"),
        ({"vaultAddress": "zz"}, "vaultAddress: expected an address"),
        ({"expiresAfter": -5}, "expiresAfter: expected an unsigned integer"),
        ({"signature": {"r": "0x1", "s": "0x1", "v": [27]}}, "signature: expected r and s"),
        ({"action": {"type": {"x": 1}}}, "action.type: expected a string, got object"),
    ],
)
async def test_malformed_envelopes_are_422_with_the_reason(
    change: dict[str, Any], reason: str
) -> None:
    """The signature check raised ValueError (500) on these, or printed a nested value."""
    with trio.fail_after(TIMEOUT):
        async with running() as venue, http(venue) as client:
            body = {**signed({"type": "noop"}, venue.now_ms()), **change}
            response = await client.post("/exchange", json=body)
            assert response.status_code == 422
            assert response.text.startswith(f"{DESERIALIZE}: {reason}"), response.text


async def test_a_batch_with_one_bad_entry_changes_nothing() -> None:
    """The first cancel used to act before the second entry was found malformed."""
    with trio.fail_after(TIMEOUT):
        async with running() as venue, http(venue) as client:
            oid = rest_on_the_book(venue)
            action = {"type": "cancel", "cancels": [{"a": 0, "o": oid}, {"a": 0}]}
            response = await client.post("/exchange", json=signed(action, venue.now_ms()))
            assert response.status_code == 422
            assert "cancels[1].o: expected an integer, missing" in response.text
            assert [order.oid for order in venue.engine.open_orders(USER)] == [oid]


@pytest.mark.parametrize(
    "subscription",
    [
        '{"type": ["x"]}',
        '{"type": {"a": 1}}',
        '{"type": "l2Book", "coin": ["BTC"]}',
        '{"type": "trades", "coin": {"x": 1}}',
        '{"type": "l2Book", "coin": "BTC", "nSigFigs": [5]}',
        '{"type": "l2Book", "coin": "BTC", "mantissa": true}',
        '{"type": "userFills", "user": "' + USER + '", "aggregateByTime": "yes"}',
        ARRAYS_300,
    ],
)
@pytest.mark.parametrize("method", ["subscribe", "unsubscribe"])
async def test_malformed_subscriptions_get_an_error_frame_and_the_socket_stays(
    method: str, subscription: str
) -> None:
    with trio.fail_after(TIMEOUT):
        async with running() as venue, websocket(venue) as ws:
            await ws.send_message(f'{{"method": "{method}", "subscription": {subscription}}}')
            frame = await receive(ws)
            assert frame["channel"] == "error", frame
            assert frame["data"].startswith("Invalid subscription "), frame
            assert len(frame["data"]) < 200
            await still_open(ws)


async def test_an_echo_of_a_subscription_nested_too_deep_to_print_is_a_note() -> None:
    known = '{"type": "trades", "coin": "BTC", "extra": ' + ARRAYS_300 + "}"
    with trio.fail_after(TIMEOUT):
        async with running() as venue, websocket(venue) as ws:
            await subscribe(ws, {"type": "trades", "coin": "BTC"})
            assert (await receive(ws))["channel"] == "subscriptionResponse"
            await ws.send_message('{"method": "subscribe", "subscription": ' + known + "}")
            assert await receive(ws) == {
                "channel": "error",
                "data": "Already subscribed: (a value nested too deep to quote)",
            }
            await still_open(ws)


@pytest.mark.parametrize("post_id", ["[1]", '{"a": 1}', "-1", "1.5", "true", "null", ARRAYS_300])
async def test_a_post_without_an_integer_id_gets_an_error_frame(post_id: str) -> None:
    request = '"request": {"type": "info", "payload": {"type": "meta"}}'
    with trio.fail_after(TIMEOUT):
        async with running() as venue, websocket(venue) as ws:
            await ws.send_message('{"method": "post", "id": ' + post_id + ", " + request + "}")
            frame = await receive(ws)
            assert frame["channel"] == "error", frame
            assert frame["data"].startswith("Error parsing JSON into valid websocket request")
            await still_open(ws)


@pytest.mark.parametrize(
    "body",
    [
        {"user": ARRAYS_1000, "coin": "BTC"},
        {"user": USER, "coin": "BTC", "szi": ARRAYS_1000},
        {"user": USER, "coin": ["BTC"], "szi": "1"},
    ],
)
async def test_a_liquidation_with_values_of_the_wrong_type_is_400(body: dict[str, Any]) -> None:
    with trio.fail_after(TIMEOUT):
        async with running() as venue, http(venue) as client:
            text = frame_text(
                {k: MARK if v == ARRAYS_1000 else v for k, v in body.items()}, ARRAYS_1000
            )
            response = await client.post("/sim/liquidate", content=text.encode())
            assert response.status_code == 400
            assert "must be a string" in response.json()["error"]


# --- the handlers, fuzzed in-process -------------------------------------------------------------

FUZZ = settings(
    max_examples=100,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
INFO_REQUESTS = [
    {"type": kind, "user": USER, "coin": "BTC", "oid": 1, "startTime": 0}
    for kind in (
        "meta", "spotMeta", "allMids", "l2Book", "openOrders", "frontendOpenOrders",
        "clearinghouseState", "userFills", "userFillsByTime", "orderStatus", "historicalOrders",
        "userRateLimit",
    )
]  # fmt: skip
ACTIONS = [
    {"type": "order", "orders": [order_wire(c=CLOID)], "grouping": "na"},
    {"type": "cancel", "cancels": [{"a": 0, "o": 1}]},
    {"type": "cancelByCloid", "cancels": [{"asset": 0, "cloid": CLOID}]},
    {"type": "modify", "oid": 1, "order": order_wire()},
    {"type": "batchModify", "modifies": [{"oid": CLOID, "order": order_wire()}]},
    {"type": "scheduleCancel", "time": 1},
    {"type": "noop"},
]
WS_MESSAGES = [
    {"method": "ping"},
    {"method": "subscribe", "subscription": {"type": "l2Book", "coin": "BTC", "nSigFigs": 5}},
    {"method": "unsubscribe", "subscription": {"type": "userFills", "user": USER}},
    {"method": "post", "id": 1, "request": {"type": "info", "payload": {"type": "meta"}}},
]
CONTROL = [
    ("/sim/faults", {"ws_drop": 0.0}),
    ("/sim/cascade", {"coin": "BTC", "move": 0.0, "duration_s": 1.0}),
    ("/sim/liquidate", {"user": USER, "coin": "BTC", "szi": "0"}),
]
# Strings a handler compares with or parses as its fields.
NUMBERS = st.sampled_from(["1" * 64, "1" * 65, "0." + "0" * 62 + "1", "-1", "1e3", " 1", "\u0661"])


class Harness:
    """The simulator's face without sockets: answers and frames, checked as they come."""

    def __init__(self) -> None:
        config = attrs.evolve(sim_config(), rate_limits=False)
        self.venue = venue = SimVenue(config, epoch_ms=1_800_000_000_000)
        venue.market.seed_liquidity(venue.now_ms())
        venue.engine.fund(USER, 100_000.0)
        self.app = SimApp(venue)
        self.nonces = itertools.count(venue.now_ms())

        async def never() -> Any:
            await trio.sleep_forever()

        async def ignore(message: Any) -> None:
            pass

        self.ws = WebSocketSession(self.app, {"client": ("10.0.0.1", 1)}, never, ignore)
        self.session = Session(venue.ws_limits.connected("10.0.0.1"), 1_000_000)

    def http(self, path: str, text: str) -> None:
        scope = {"path": path, "method": "POST", "client": ("10.0.0.1", 1)}
        with service_recursion_limit():
            if path.startswith("/sim/"):
                status, payload = self.app.control(scope, text.encode())
            else:
                reply = self.app.http_reply(scope, text.encode())
                # An action accepted for its block is committed here at once: no clock runs.
                status, payload = (200, reply.commit()) if isinstance(reply, Accepted) else reply
        assert status == 200 or 400 <= status < 500, (status, payload)
        if status == 422:
            assert payload.startswith(DESERIALIZE + ": "), payload
        orjson.dumps(payload)  # the server sends it: always printable

    def message(self, text: str) -> None:
        with service_recursion_limit():
            self.ws.handle(self.session, text)
            self.venue.commits.commit_due(math.inf)  # a posted action's block, at once
        while True:
            try:
                _channel, frame, _at = self.session.receive_channel.receive_nowait()
            except trio.WouldBlock:
                break
            assert isinstance(orjson.loads(frame), dict)
        assert not self.session.closed.is_set()

    def action(self, action: Any, nested: str) -> str:
        """A signed /exchange body for the action (MARKs replaced), as text."""
        nonce = next(self.nonces)
        signature = SIGNER.sign(materialize(action, nested), nonce, mainnet=False)
        return frame_text({"action": action, "nonce": nonce, "signature": signature}, nested)


async def test_no_request_makes_a_handler_raise() -> None:
    harness = Harness()

    @FUZZ
    @given(
        st.sampled_from(["info", "exchange", "action", "ws", "control"]),
        st.data(),
        NESTED_TEXT,
    )
    def requests(where: str, data: st.DataObject, nested: str) -> None:
        values = VALUES | NUMBERS
        if where == "info":
            request = data.draw(mutated(INFO_REQUESTS, values) | values)
            text = frame_text(request, nested)
            harness.http("/info", text)
            message = {"method": "post", "id": 1, "request": {"type": "info", "payload": request}}
            harness.message(frame_text(message, nested))
        elif where == "exchange":  # envelopes: mostly refused before the signature
            body = data.draw(mutated([harness_body(harness)], values) | values)
            harness.http("/exchange", frame_text(body, nested))
        elif where == "action":  # validly signed actions with fields deleted or replaced
            action = data.draw(mutated(ACTIONS, values))
            text = harness.action(action, nested)
            harness.http("/exchange", text)
            body = harness.action(action, nested)
            post = '{"method":"post","id":7,"request":{"type":"action","payload":' + body + "}}"
            harness.message(post)
        elif where == "ws":
            message = data.draw(st.one_of(mutated(WS_MESSAGES, values), values))
            harness.message(frame_text(message, nested))
        else:
            path, body = data.draw(st.sampled_from(CONTROL))
            harness.http(path, frame_text(data.draw(mutated([body], values) | JSON), nested))

    requests()


def harness_body(harness: Harness) -> dict[str, Any]:
    return copy.deepcopy(signed({"type": "noop"}, next(harness.nonces)))
