"""The simulator's network face: one hypercorn (Trio) server for HTTP and WebSocket.

``POST /info`` and ``POST /exchange`` over HTTP; ``/ws`` for subscriptions, pings and ``post``
requests, as the venue serves them. Every request is charged to its IP's weight budget first
(a request that does not fit is answered 429), and an ``/info`` answer listing fills or orders
adds its weight per 20 items once it is built, as the venue charges it.
Faults (``mm.venues.sim.faults``) act here, on frames and requests; the simulator-only control
endpoints ``GET/POST /sim/faults``, ``POST /sim/disconnect``, ``POST /sim/cascade`` (a body
of ``mm.venues.sim.config.CascadeConfig`` keys but ``start_s``: the cascade starts at once),
``POST /sim/liquidate`` and ``POST /sim/volume`` (``{"user": "0x…", "usdc": 1000000}``: volume
counted as traded without a fill, so that an account passes the venue's volume gates) let tests
switch them at runtime. ``POST /sim/fund`` is the faucet: ``{"user": "0x…", "usdc": 100000}``
credits that account (``usdc`` defaults to ``sim.faucet_usdc``) and answers its account value;
nobody is funded otherwise.

No request, however shaped, raises out of a handler: a body the venue would not deserialize
gets its 422 text with the reason over HTTP, the same text in a ``post``'s error response over
the WebSocket, a malformed WebSocket message the venue's error frame, and a bad control request
a 400 naming the problem. Values from a request are checked for their type before they are
used as keys, compared or printed; an echo of a request value that JSON cannot print (nested
too deep) is replaced by a note, and the connection stays open.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from functools import partial
from typing import TYPE_CHECKING, Any, cast

import attrs
import orjson
import outcome
import trio
from hypercorn.typing import ASGIFramework
from loguru import logger

from mm import world
from mm.asgi import Receive, Scope, Send, hypercorn_config, read_body, run_lifespan
from mm.settings import ConfigError, structure_section
from mm.venues.sim import aggregate
from mm.venues.sim.commits import Accepted
from mm.venues.sim.config import CascadeConfig
from mm.venues.sim.faults import DATA_CHANNELS, FaultUpdateError, FrameFate, HttpFate
from mm.venues.sim.hub import Key, Session
from mm.venues.sim.hyperliquid import wire
from mm.venues.sim.hyperliquid.exchange import ExchangeError, ExchangeHandler
from mm.venues.sim.hyperliquid.info import (
    InfoError,
    deserialize_error,
    handle_info,
    json_type,
)
from mm.venues.sim.ratelimit import (
    exchange_weight,
    extra_info_weight,
    format_volume,
    info_weight,
    items_returned,
)

if TYPE_CHECKING:
    from mm.venues.sim.venue import SimVenue


GREETING = "Websocket connection established."
TOO_MANY = "429 Too Many Requests"
OUTBOX_FRAMES = 10_000
MAX_BODY = 1 << 20


CASCADE_REQUIRED = ("coin", "move", "duration_s")
CONTROLS = ("/sim/faults", "/sim/cascade", "/sim/liquidate", "/sim/volume", "/sim/fund")
ADDRESS = re.compile(r"0x[0-9a-fA-F]{40}")


def fund_request(request: Mapping[str, Any]) -> tuple[str, float | None]:
    """The body of ``POST /sim/fund``: ``user`` (an address) and, optionally, ``usdc`` (a
    positive number). ValueError naming the field otherwise."""
    unknown = sorted(set(request) - {"user", "usdc"})
    if unknown:
        raise ValueError(f"unknown keys {unknown}; expected user and usdc")
    user = request.get("user")
    if not isinstance(user, str) or ADDRESS.fullmatch(user) is None:
        raise ValueError("user must be an address, 0x and 40 hex digits")
    usdc = request.get("usdc")
    if usdc is not None and (isinstance(usdc, bool) or not isinstance(usdc, int | float)):
        raise ValueError(f"usdc must be a number, got {json_type(usdc)}")
    return user, None if usdc is None else float(usdc)


def cascade_request(request: Mapping[str, Any]) -> CascadeConfig:
    """The body of ``POST /sim/cascade`` as a cascade starting now.

    ``coin``, ``move`` and ``duration_s`` are required; ``intensity``, ``one_sided`` and
    ``thinning`` default to a liquidation cascade's (``CascadeConfig``). Raises KeyError for a
    missing key and ConfigError for a wrong type, an unknown key or a value out of range.
    """
    for key in CASCADE_REQUIRED:
        if key not in request:
            raise KeyError(key)
    if "start_s" in request:
        raise ConfigError(["cascade.start_s: a runtime cascade starts at once"])
    return structure_section({**request, "start_s": 0.0}, CascadeConfig, "cascade")


class SimApp:
    """The ASGI application of the simulator's Hyperliquid face."""

    def __init__(self, venue: SimVenue) -> None:
        self.venue = venue
        self.exchange = ExchangeHandler(venue)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            await self._http(scope, receive, send)
        elif scope["type"] == "websocket":
            await WebSocketSession(self, scope, receive, send).run()
        elif scope["type"] == "lifespan":
            await run_lifespan(receive, send)

    async def _http(self, scope: Scope, receive: Receive, send: Send) -> None:
        body = await read_body(receive, MAX_BODY)
        if scope["path"].startswith("/sim/"):
            status, payload = self.control(scope, body)
        else:
            status, payload = await self._faulty_reply(scope, body)
        content_type = b"application/json" if not isinstance(payload, str) else b"text/plain"
        data = payload.encode() if isinstance(payload, str) else orjson.dumps(payload)
        await send(
            {
                "type": "http.response.start",
                "status": status,
                "headers": [(b"content-type", content_type)],
            }
        )
        await send({"type": "http.response.body", "body": data})

    async def _faulty_reply(self, scope: Scope, body: bytes | None) -> tuple[int, Any]:
        faults = self.venue.faults
        delay = faults.http_delay()
        if delay:
            await trio.sleep(delay)
        fate = faults.http_fate(scope["path"], _info_type(faults.config.http_info_types, body))
        if fate is HttpFate.TOO_MANY:
            return 429, TOO_MANY
        if fate is HttpFate.SERVER_ERROR:
            return 500, "Internal Server Error"
        reply = self.http_reply(scope, body)
        if isinstance(reply, Accepted):
            # Answered once its block is committed; a client that gives up first changes
            # nothing: the action takes effect all the same.
            return 200, await self.venue.commits.submit(reply.commit)
        return reply

    def control(self, scope: Scope, body: bytes | None) -> tuple[int, Any]:
        """The simulator-only control endpoints: faults, cascades, forced position changes."""
        venue = self.venue
        path, method = scope["path"], scope["method"]
        if path == "/sim/faults" and method == "GET":
            return 200, attrs.asdict(venue.faults.config)
        try:
            request = orjson.loads(body or b"{}")
        except orjson.JSONDecodeError:
            return 400, {"error": "body must be JSON"}
        if path == "/sim/disconnect" and method == "POST":
            return 200, {"closed": venue.disconnect_all("fault: disconnect requested")}
        if method != "POST" or path not in CONTROLS:
            return 404, {"error": f"no such endpoint: {method} {path}"}
        if not isinstance(request, Mapping):
            return 400, {"error": "body must be a JSON object"}
        try:
            if path == "/sim/faults":
                return 200, attrs.asdict(venue.faults.update(request))
            if path == "/sim/cascade":
                venue.start_cascade(cascade_request(request))
                return 200, {"ok": True}
            if path == "/sim/fund":
                user, usdc = fund_request(request)
                value = venue.fund(user, usdc)
                return 200, {"user": user.lower(), "accountValue": wire.usd(value)}
            if path == "/sim/liquidate":
                user, coin, szi = request["user"], request["coin"], request.get("szi", "0")
                for name, value in (("user", user), ("coin", coin), ("szi", szi)):
                    if not isinstance(value, str):
                        raise TypeError(f"{name} must be a string, got {json_type(value)}")
                venue.force_position(user, coin, szi)
                return 200, {"ok": True}
            if path == "/sim/volume":
                user, usdc = request["user"], request["usdc"]
                if not isinstance(user, str):
                    raise TypeError(f"user must be a string, got {json_type(user)}")
                if isinstance(usdc, bool) or not isinstance(usdc, int | float):
                    raise TypeError(f"usdc must be a number, got {json_type(usdc)}")
                volume = venue.credit_volume(user, float(usdc))
                return 200, {"user": user.lower(), "cumVlm": format_volume(volume)}
        except FaultUpdateError as error:
            return 400, {"error": str(error)}
        except ConfigError as error:
            return 400, {"error": f"bad request: {'; '.join(error.errors)}"}
        except (KeyError, ValueError, TypeError) as error:
            return 400, {"error": f"bad request: {type(error).__name__}: {error}"}
        return 404, {"error": f"no such endpoint: {method} {path}"}

    def http_reply(self, scope: Scope, body: bytes | None) -> tuple[int, Any] | Accepted:
        """(status, JSON value or text) for one HTTP request, or the action it carries, to
        commit (see `answer`)."""
        path = scope["path"]
        if scope["method"] != "POST" or path not in ("/info", "/exchange"):
            return 404, "Not Found"
        if body is None:
            return 413, "Payload Too Large"
        try:
            request = orjson.loads(body)
        except orjson.JSONDecodeError as error:
            return 422, deserialize_error(f"not JSON: {error}")
        if path == "/exchange" and self.venue.faults.lose_this_cancel(request):
            return 500, "Internal Server Error"  # the fault: a cancel lost, nothing acted
        return self.answer(_client_ip(scope), path.lstrip("/"), request)

    def answer(self, ip: str, kind: str, request: Any) -> tuple[int, Any] | Accepted:
        """Answer an info or exchange request (over HTTP or a WebSocket post) as the API server
        does on receipt: a query or a refusal at once, an action accepted for its block
        (``Accepted``, answered 200 with what its commit returns)."""
        venue = self.venue
        now = venue.now_ms() / 1000
        limits = venue.ip_limits.config
        try:
            if kind == "info":
                weight = info_weight(request) if isinstance(request, Mapping) else 1
                if not venue.ip_limits.charge(ip, weight, now):
                    return 429, TOO_MANY
                answer = handle_info(venue, request)
                # The weight per 20 items listed (fills, orders), known once answered.
                items = extra_info_weight(request["type"], items_returned(answer), limits)
                venue.ip_limits.record(ip, items, now)
                return 200, answer
            action = request.get("action") if isinstance(request, Mapping) else None
            weight = exchange_weight(action) if isinstance(action, Mapping) else 1
            if not venue.ip_limits.charge(ip, weight, now):
                return 429, TOO_MANY
            accepted = self.exchange.accept(request)
            return accepted if isinstance(accepted, Accepted) else (200, accepted)
        except (InfoError, ExchangeError) as error:
            return 422, str(error)


def echo(value: Any) -> str:
    """A request value as JSON, for the venue's error texts that quote it; a note instead
    when JSON cannot print it (orjson prints at most 255 levels of nesting)."""
    try:
        return orjson.dumps(value).decode()
    except orjson.JSONEncodeError:
        return "(a value nested too deep to quote)"


def _info_type(listed: tuple[str, ...], body: bytes | None) -> object:
    """The ``type`` of an ``/info`` body, read only when a fault names types (else None)."""
    if not listed or not body:
        return None
    try:
        request = orjson.loads(body)
    except orjson.JSONDecodeError:
        return None
    return request.get("type") if isinstance(request, Mapping) else None


def _client_ip(scope: Scope) -> str:
    client = scope.get("client")
    return str(client[0]) if client else "unknown"


SUBSCRIPTION_FIELDS: dict[str, tuple[str, dict[str, Any]]] = {
    # type: (keyed by, normalized extra fields)
    "allMids": ("", {}),
    "l2Book": ("coin", {"nSigFigs": None, "mantissa": None}),
    "trades": ("coin", {}),
    "bbo": ("coin", {}),
    "userFills": ("user", {"aggregateByTime": False}),
    "orderUpdates": ("user", {}),
    "userEvents": ("user", {}),
}
# The JSON types an extra field may take: nSigFigs and mantissa an integer or null,
# aggregateByTime a boolean.
EXTRA_TYPES: dict[str, tuple[type, ...]] = {
    "nSigFigs": (int, type(None)),
    "mantissa": (int, type(None)),
    "aggregateByTime": (bool,),
}


class WebSocketSession:
    """One client connection on ``/ws``."""

    def __init__(self, app: SimApp, scope: Scope, receive: Receive, send: Send) -> None:
        self.app = app
        self.venue = app.venue
        self.ip = _client_ip(scope)
        self._receive = receive
        self._send = send
        self.session: Session | None = None

    async def run(self) -> None:
        connect = await self._receive()
        if connect["type"] != "websocket.connect":
            return
        limits = self.venue.ws_limits
        now = self.venue.now_ms() / 1000
        if not limits.can_connect(self.ip, now):
            await self._send({"type": "websocket.close", "code": 1008})
            return
        conn_id = limits.connected(self.ip, now=now)
        session = self.session = Session(conn_id, OUTBOX_FRAMES)
        self.venue.sessions.add(session)
        await self._send({"type": "websocket.accept"})
        session.push(GREETING)
        try:
            async with trio.open_nursery() as nursery:
                nursery.start_soon(self._writer, session)
                nursery.start_soon(self._reader, session)
                await session.closed.wait()
                nursery.cancel_scope.cancel()
        finally:
            self.venue.sessions.discard(session)
            self.venue.hub.drop(session)
            limits.disconnected(conn_id)
        if session.close_reason != "client closed":
            with trio.move_on_after(1):
                await self._send({"type": "websocket.close", "code": 1000})

    async def _writer(self, session: Session) -> None:
        """Send queued frames, through the configured faults (delay, drop, dup, reorder, cut)."""
        faults = self.venue.faults
        held: str | None = None
        data_frames = 0
        async for channel, text, queued_at in session.receive_channel:
            fate = faults.frame_fate(channel)
            if fate is FrameFate.DROP:
                continue
            if channel in DATA_CHANNELS:
                delay = faults.ws_delay(channel)
                if delay:  # latency from when the frame was queued: it does not pile up
                    await trio.sleep_until(queued_at + delay)
            if fate is FrameFate.HOLD and held is None:
                held = text
                continue
            await self._send({"type": "websocket.send", "text": text})
            if fate is FrameFate.DUPLICATE:
                await self._send({"type": "websocket.send", "text": text})
            if held is not None:
                await self._send({"type": "websocket.send", "text": held})
                held = None
            if channel in DATA_CHANNELS:
                data_frames += 1
                limit = faults.config.ws_disconnect_after
                if limit and data_frames >= limit:
                    session.close(f"fault: disconnect after {limit} frames")
                    return

    async def _reader(self, session: Session) -> None:
        idle = self.venue.config.idle_timeout_s
        while not session.closed.is_set():
            with trio.move_on_after(idle) as timer:
                message = await self._receive()
            if timer.cancelled_caught:
                session.close("idle timeout")
                return
            if message["type"] == "websocket.disconnect":
                session.close("client closed")
                return
            text = message.get("text")
            if text is None and message.get("bytes") is not None:
                text = message["bytes"].decode(errors="replace")
            if text is not None:
                self.handle(session, text)

    def error(self, session: Session, text: str) -> None:
        session.push(orjson.dumps({"channel": "error", "data": text}).decode())

    def handle(self, session: Session, text: str) -> None:
        venue = self.venue
        if not venue.ws_limits.message_sent(session.conn_id, venue.now_ms() / 1000):
            self.error(session, venue.ws_limits.messages_error)
            return
        try:
            message = orjson.loads(text)
        except orjson.JSONDecodeError:
            self.error(session, f"Error parsing JSON into valid websocket request: {text}")
            return
        method = message.get("method") if isinstance(message, Mapping) else None
        if method == "ping":
            session.push('{"channel":"pong"}')
        elif method in ("subscribe", "unsubscribe"):
            self._subscription(session, method, message.get("subscription"), text)
        elif method == "post":
            self._post(session, message, text)
        else:
            self.error(session, f"Error parsing JSON into valid websocket request: {text}")
        if venue.faults.disconnect_now(trio.current_time()):
            session.close("fault: random disconnect")

    def _subscription(self, session: Session, method: str, subscription: Any, text: str) -> None:
        normalized = self._normalize(subscription)
        if normalized is None:
            self.error(session, f"Invalid subscription {echo(subscription)}")
            return
        key, canonical, user = normalized
        limits = self.venue.ws_limits
        hub = self.venue.hub
        canonical_text = orjson.dumps(canonical).decode()
        if method == "unsubscribe":
            if not hub.remove(session, key):
                self.error(session, f"Already unsubscribed: {echo(subscription)}")
                return
            limits.unsubscribe(session.conn_id, canonical_text)
        else:
            if key in session.keys:
                self.error(session, f"Already subscribed: {echo(subscription)}")
                return
            problem = limits.subscribe(session.conn_id, canonical_text, user)
            if problem is not None:
                self.error(session, problem)
                return
            hub.add(session, key)
        ack = {"method": method, "subscription": canonical}
        session.push(orjson.dumps({"channel": "subscriptionResponse", "data": ack}).decode())
        if method == "subscribe":
            self._snapshot(session, key)

    def _normalize(self, subscription: Any) -> tuple[Key, dict[str, Any], str | None] | None:
        if not isinstance(subscription, Mapping):
            return None
        kind = subscription.get("type")
        if not isinstance(kind, str) or kind not in SUBSCRIPTION_FIELDS:
            return None
        keyed_by, extras = SUBSCRIPTION_FIELDS[kind]
        canonical: dict[str, Any] = {"type": kind}
        value = ""
        user = None
        if keyed_by == "coin":
            value = subscription.get("coin", "")
            if not isinstance(value, str) or value not in self.venue.engine.by_name:
                return None
            canonical["coin"] = value
        elif keyed_by == "user":
            raw = subscription.get("user")
            if not isinstance(raw, str) or len(raw) != 42 or not raw.startswith("0x"):
                return None
            value = user = raw.lower()
            canonical["user"] = value
        for field, default in extras.items():
            extra = subscription.get(field, default)
            if type(extra) not in EXTRA_TYPES[field]:  # (a boolean is no integer here)
                return None
            canonical[field] = extra
        if kind == "l2Book":  # aggregated books are their own subscriptions
            n_sig_figs, mantissa = canonical["nSigFigs"], canonical["mantissa"]
            if aggregate.check(n_sig_figs, mantissa) is not None:
                return None
            value = aggregate.key(value, n_sig_figs, mantissa)
        return (kind, value), canonical, user

    def _snapshot(self, session: Session, key: Key) -> None:
        venue = self.venue
        kind, value = key
        data: Any
        if kind == "l2Book":
            coin, n_sig_figs, mantissa = aggregate.key_parts(value)
            data = venue.l2_snapshot(venue.engine.by_name[coin].index, n_sig_figs, mantissa)
        elif kind == "bbo":
            data = venue.bbo(venue.engine.by_name[value].index)
        elif kind == "allMids":
            data = {"mids": venue.mids()}
        elif kind == "userFills":
            fills = venue.engine.fills.get(value, ())
            data = {
                "isSnapshot": True,
                "user": value,
                "fills": [wire.user_fill(f, venue.specs[f.asset]) for f in fills],
            }
        else:
            return
        session.push(orjson.dumps({"channel": kind, "data": data}).decode(), kind)

    def _post(self, session: Session, message: Mapping[str, Any], text: str) -> None:
        post_id = message.get("id")
        if type(post_id) is not int or not 0 <= post_id < 1 << 64:
            self.error(session, f"Error parsing JSON into valid websocket request: {text}")
            return
        request = message.get("request")
        if (
            isinstance(request, Mapping)
            and request.get("type") == "action"
            and self.venue.faults.lose_this_cancel(request.get("payload"))
        ):
            return  # the fault: a cancel lost, nothing acted and no reply
        limits = self.venue.ws_limits
        conn_id = session.conn_id
        if not limits.post_started(conn_id):
            self.error(session, limits.post_error(post_id))
            return
        try:
            response = self._post_response(request)
        except BaseException:
            limits.post_finished(conn_id)
            raise
        if not isinstance(response, Accepted):
            limits.post_finished(conn_id)
            _reply(session, post_id, response)
            return

        def committed(result: outcome.Outcome[Any]) -> None:
            # The post is answered once its action has taken effect; on a socket closed
            # meanwhile the answer is lost (push does nothing), the action stands.
            limits.post_finished(conn_id)
            try:
                answer = result.unwrap()
            except Exception:
                logger.exception("simulator: an action failed to commit")
                _reply(session, post_id, {"type": "error", "payload": "Internal server error"})
                return
            _reply(session, post_id, {"type": "action", "payload": answer})

        self.venue.commits.accept(response.commit, committed, trio.current_time())

    def _post_response(self, request: Any) -> dict[str, Any] | Accepted:
        """A post's response at once, or the action it carries (answered at its commit)."""
        if not isinstance(request, Mapping) or request.get("type") not in ("info", "action"):
            return {"type": "error", "payload": "Invalid post request"}
        kind = request["type"]
        payload = request.get("payload")
        reply = self.app.answer(self.ip, "info" if kind == "info" else "exchange", payload)
        if isinstance(reply, Accepted):
            return reply
        status, answer = reply
        if status != 200:
            return {"type": "error", "payload": answer}
        if kind == "info":
            info_type = payload.get("type") if isinstance(payload, Mapping) else None
            return {"type": "info", "payload": {"type": info_type, "data": answer}}
        return {"type": "action", "payload": answer}


def _reply(session: Session, post_id: int, response: Any) -> None:
    data = {"id": post_id, "response": response}
    session.push(orjson.dumps({"channel": "post", "data": data}).decode(), "post")


async def serve_venue(
    venue: SimVenue, *, task_status: trio.TaskStatus[str] = trio.TASK_STATUS_IGNORED
) -> None:
    """Serve the face on ``sim.host:sim.port``; reports the base URL once listening."""
    config = hypercorn_config(venue.config.host, venue.config.port)
    config.websocket_max_message_size = MAX_BODY
    app = cast(ASGIFramework, SimApp(venue))
    async with trio.open_nursery() as nursery:
        binds: list[str] = await nursery.start(partial(world.serve_asgi, app, config))
        task_status.started(binds[0])
