"""The KuCoin face, served: REST and WebSocket on one hypercorn (Trio) server, and the market
loop that moves the synthetic market and publishes what changed.

HTTP goes to ``KucoinRest`` (every endpoint it serves), plus the token handshake: ``POST
/api/v1/bullet-public`` (anyone) and ``/api/v1/bullet-private`` (signed: the token is the
account's) answer a token and this server's own WebSocket endpoint (``ws://host:port/endpoint``)
with its ping interval and timeout. A WebSocket client connects to ``/endpoint?token=…&
connectId=…`` with a token the server issued (a connection without one is closed with 1008),
is welcomed (``{"id": connectId, "type": "welcome"}``), and may then ping (answered ``pong``
with its id), subscribe and unsubscribe (``ack`` when it asks for ``response``), topics:

* ``/market/level2:SYM[,SYM…]``: the increments (``mm.venues.sim.kucoin.depth``);
* ``/spotMarket/level2Depth5:SYM[,SYM…]``: the best five levels a side, every market step;
* ``/spotMarket/tradeOrdersV2`` (private): the account's order changes.

Anything else is answered ``{"id", "type": "error", "code": 404, "data": "topic … not
found"}``; a message that is not JSON, ``{"type": "error", "code": 400}``. Each session has a
bounded outbox (``mm.venues.sim.hub``): a client that does not keep up is disconnected.

The market loop steps the triangle market every ``step_s``, re-quotes its liquidity and fires
the dead-man's switches due (``KucoinRest.expire``); after it, and after every REST request, the
changed levels and order changes are published.

How it fails: no request or message raises out of a handler; the server's own errors end
``run`` (the caller's nursery sees them).
"""

from __future__ import annotations

import random
import secrets
from collections.abc import Mapping
from decimal import Decimal
from functools import partial
from typing import Any, cast
from urllib.parse import parse_qs

import orjson
import trio
from hypercorn.trio import serve
from hypercorn.typing import ASGIFramework
from loguru import logger

from mm import clock
from mm.asgi import Receive, Scope, Send, hypercorn_config, read_body, run_lifespan
from mm.secrets import Secret
from mm.venues.kucoin.signing import Credentials
from mm.venues.sim.hub import Hub, Session
from mm.venues.sim.kucoin.depth import DepthFeed
from mm.venues.sim.kucoin.ledger import SpotLedger
from mm.venues.sim.kucoin.rest import KucoinRest, Response
from mm.venues.sim.kucoin.spot import OrderChange, SpotExchange
from mm.venues.sim.kucoin.triangle import SYMBOLS, TriangleConfig, TriangleMarket

__all__ = ["DEV_KEY", "KucoinSimVenue"]

DEV_KEY = Credentials(Secret("mm-sim-key"), Secret("mm-sim-secret"), Secret("mm-sim-passphrase"))
DEV_USER = "mm-sim-account"
STARTING_BALANCES = {"USDT": Decimal(100_000), "BTC": Decimal(1), "ETH": Decimal(10)}
MAKER_RATE, TAKER_RATE = Decimal("0.001"), Decimal("0.001")  # VIP0's spot rates
PING_INTERVAL_MS, PING_TIMEOUT_MS = 18_000, 10_000
OUTBOX = 10_000
MAX_BODY = 1 << 20


def _number(value: Decimal) -> str:
    return f"{value.normalize():f}"


class KucoinSimVenue:
    """The exchange, its REST face, the level-2 publisher, the market, and the sessions."""

    def __init__(
        self,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        seed: int = 0,
        step_s: float = 0.1,
        market: TriangleConfig | None = None,
    ) -> None:
        self.host, self.port, self.step_s = host, port, step_s
        ledger = SpotLedger()
        for currency, amount in STARTING_BALANCES.items():
            ledger.fund(DEV_USER, currency, amount)
        self.exchange = SpotExchange(SYMBOLS, ledger, lambda user, symbol: (MAKER_RATE, TAKER_RATE))
        keys = {DEV_KEY.key.reveal(): DEV_KEY}
        self.depth = DepthFeed(SYMBOLS)
        self.rest = KucoinRest(self.exchange, keys, {DEV_KEY.key.reveal(): DEV_USER}, self.depth)
        self.market = TriangleMarket(market or TriangleConfig(), random.Random(seed))
        self.market.fund_provider(self.exchange)
        self.hub = Hub()
        self.tokens: dict[str, str | None] = {}  # token -> the account (None: public)
        self.url = ""

    def now_ns(self) -> int:
        return int(clock.wall() * 1e9)

    # --- running ------------------------------------------------------------------------------

    async def run(self, *, task_status: trio.TaskStatus[str] = trio.TASK_STATUS_IGNORED) -> None:
        self.market.quote(self.exchange, self.now_ns())
        self.publish()
        config = hypercorn_config(self.host, self.port)
        async with trio.open_nursery() as nursery:
            app = cast(ASGIFramework, self._app)
            binds: list[str] = await nursery.start(partial(serve, app, config, mode="asgi"))
            self.url = binds[0]
            logger.info("KuCoin simulator listening on {}", self.url)
            nursery.start_soon(self._market_loop)
            task_status.started(self.url)

    async def _market_loop(self) -> None:
        last = trio.current_time()
        while True:
            await trio.sleep(self.step_s)
            now = trio.current_time()
            self.market.step(now - last)
            last = now
            for placed in self.market.quote(self.exchange, self.now_ns()):
                self.rest.changes.extend(placed.changes)
            self.rest.expire(self.now_ns())  # the accounts' dead-man's switches
            self.publish()
            self._publish_depth5()

    # --- publishing ---------------------------------------------------------------------------

    def publish(self) -> None:
        """The level-2 increments of every symbol and the order changes made since last time."""
        now_ms = self.now_ns() // 1_000_000
        for name in self.exchange.symbols:
            data = self.depth.step(name, self.exchange.books[name], now_ms)
            if data is not None:
                self._fan_out(
                    ("level2", name),
                    {
                        "topic": f"/market/level2:{name}",
                        "type": "message",
                        "subject": "trade.l2update",
                        "data": data,
                    },
                )
        changes, self.rest.changes = self.rest.changes, []
        for change in changes:
            self._fan_out(("orders", change.user), self._order_message(change))

    def _publish_depth5(self) -> None:
        now_ms = self.now_ns() // 1_000_000
        for name in self.exchange.symbols:
            book = self.depth.snapshot(name, now_ms, depth=5)
            self._fan_out(
                ("depth5", name),
                {
                    "topic": f"/spotMarket/level2Depth5:{name}",
                    "type": "message",
                    "subject": "level2",
                    "data": {"asks": book["asks"], "bids": book["bids"], "timestamp": now_ms},
                },
            )

    def _fan_out(self, key: tuple[str, str], message: dict[str, Any]) -> None:
        if self.hub.has(key):
            self.hub.push(key, key[0], orjson.dumps(message).decode())

    @staticmethod
    def _order_message(change: OrderChange) -> dict[str, Any]:
        data: dict[str, Any] = {
            "symbol": change.symbol,
            "orderType": change.order_type,
            "side": change.side,
            "orderId": change.oid,
            "type": change.type,
            "orderTime": change.ts_ns // 1_000_000,
            "status": {"received": "new", "open": "open", "match": "match"}.get(
                change.type, "done"
            ),
            "filledSize": _number(change.filled_size),
            "remainSize": _number(change.remain_size),
            "ts": change.ts_ns,
        }
        if change.client_oid is not None:
            data["clientOid"] = change.client_oid
        if change.price is not None:
            data["price"] = _number(change.price)
        if change.origin_size is not None:
            data["originSize"] = data["size"] = _number(change.origin_size)
        if change.origin_funds is not None:
            data["originFunds"] = _number(change.origin_funds)
        if change.type == "match":
            assert change.match_price is not None
            assert change.match_size is not None
            data |= {
                "matchPrice": _number(change.match_price),
                "matchSize": _number(change.match_size),
                "tradeId": change.trade_id,
                "liquidity": change.liquidity,
            }
        return {
            "type": "message",
            "topic": "/spotMarket/tradeOrdersV2",
            "subject": "orderChange",
            "channelType": "private",
            "data": data,
        }

    # --- ASGI ---------------------------------------------------------------------------------

    async def _app(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await run_lifespan(receive, send)
        elif scope["type"] == "http":
            await self._http(scope, receive, send)
        elif scope["type"] == "websocket":
            await _WsSession(self, scope, receive, send).run()

    async def _http(self, scope: Scope, receive: Receive, send: Send) -> None:
        body = await read_body(receive, MAX_BODY)
        method, path = scope["method"], scope["path"]
        query = scope.get("query_string", b"").decode(errors="replace")
        headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"]}
        if body is None:
            response = Response(413, orjson.dumps({"code": "400100", "msg": "body too large"}))
        elif method == "POST" and path in ("/api/v1/bullet-public", "/api/v1/bullet-private"):
            response = self._bullet(path, headers, body)
        else:
            response = self.rest.handle(method, path, query, headers, body, self.now_ns())
            self.publish()
        await send(
            {
                "type": "http.response.start",
                "status": response.status,
                "headers": [(b"content-type", b"application/json")],
            }
        )
        await send({"type": "http.response.body", "body": response.body})

    def _bullet(self, path: str, headers: Mapping[str, str], body: bytes) -> Response:
        user: str | None = None
        if path.endswith("private"):
            # Authenticated as any private request: through the REST face's check.
            answer = self.rest.authenticate("POST", path, "", headers, body, self.now_ns())
            if isinstance(answer, Response):
                return answer
            user = answer
        token = secrets.token_urlsafe(24)
        self.tokens[token] = user
        host = self.url.replace("http://", "ws://", 1)
        return Response(
            200,
            orjson.dumps(
                {
                    "code": "200000",
                    "data": {
                        "token": token,
                        "instanceServers": [
                            {
                                "endpoint": f"{host}/endpoint",
                                "encrypt": False,
                                "protocol": "websocket",
                                "pingInterval": PING_INTERVAL_MS,
                                "pingTimeout": PING_TIMEOUT_MS,
                            }
                        ],
                    },
                }
            ),
        )


class _WsSession:
    """One WebSocket client (see the module)."""

    def __init__(self, venue: KucoinSimVenue, scope: Scope, receive: Receive, send: Send) -> None:
        self.venue = venue
        self.scope = scope
        self._receive = receive
        self._send = send

    async def run(self) -> None:
        connect = await self._receive()
        if connect["type"] != "websocket.connect":
            return
        query = parse_qs(self.scope.get("query_string", b"").decode(errors="replace"))
        token = (query.get("token") or [""])[0]
        connect_id = (query.get("connectId") or [""])[0]
        if self.scope["path"] != "/endpoint" or token not in self.venue.tokens:
            await self._send({"type": "websocket.close", "code": 1008})
            return
        user = self.venue.tokens[token]
        session = Session(connect_id, OUTBOX)
        await self._send({"type": "websocket.accept"})
        session.push(orjson.dumps({"id": connect_id, "type": "welcome"}).decode())
        try:
            async with trio.open_nursery() as nursery:
                nursery.start_soon(self._writer, session)
                nursery.start_soon(self._reader, session, user)
                await session.closed.wait()
                nursery.cancel_scope.cancel()
        finally:
            self.venue.hub.drop(session)

    async def _writer(self, session: Session) -> None:
        async for _, text, _ in session.receive_channel:
            await self._send({"type": "websocket.send", "text": text})

    async def _reader(self, session: Session, user: str | None) -> None:
        while True:
            message = await self._receive()
            if message["type"] == "websocket.disconnect":
                session.close("client closed")
                return
            text = message.get("text") or (message.get("bytes") or b"").decode(errors="replace")
            self._answer(session, user, text)

    def _answer(self, session: Session, user: str | None, text: str) -> None:
        try:
            request = orjson.loads(text)
        except orjson.JSONDecodeError:
            request = None
        if type(request) is not dict:
            session.push(self._error(None, 400, "message is not a JSON object"))
            return
        request_id = request.get("id")
        kind = request.get("type")
        if kind == "ping":
            session.push(orjson.dumps({"id": request_id, "type": "pong"}).decode())
            return
        if kind not in ("subscribe", "unsubscribe"):
            session.push(self._error(request_id, 400, f"unknown type {kind!r:.40}"))
            return
        keys = self._keys(request.get("topic"), bool(request.get("privateChannel")), user)
        if keys is None:
            topic = request.get("topic")
            session.push(self._error(request_id, 404, f"topic {topic!r:.80} is not found"))
            return
        for key in keys:
            if kind == "subscribe":
                self.venue.hub.add(session, key)
            else:
                self.venue.hub.remove(session, key)
        if request.get("response") is True:
            session.push(orjson.dumps({"id": str(request_id), "type": "ack"}).decode())

    def _keys(self, topic: Any, private: bool, user: str | None) -> list[tuple[str, str]] | None:
        if type(topic) is not str:
            return None
        prefix, _, symbols = topic.partition(":")
        if prefix == "/spotMarket/tradeOrdersV2" and not symbols:
            return None if user is None else [("orders", user)]
        channel = {"/market/level2": "level2", "/spotMarket/level2Depth5": "depth5"}.get(prefix)
        names = symbols.split(",") if symbols else []
        if channel is None or not names or any(n not in self.venue.exchange.symbols for n in names):
            return None
        return [(channel, name) for name in names]

    @staticmethod
    def _error(request_id: Any, code: int, data: str) -> str:
        return orjson.dumps(
            {"id": request_id, "type": "error", "code": code, "data": data}
        ).decode()
