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
* ``/market/ticker:SYM[,SYM…]``: the best bid and ask and the last trade (``trade.ticker``),
  whenever the top of the book changes or a trade happens; before the symbol's first trade its
  ``price`` is the best bid's and its ``size`` 0;
* ``/market/match:SYM[,SYM…]``: every trade (``trade.l3match``, the taker's side, the time in
  nanoseconds; its ``sequence`` is its trade id);
* ``/spotMarket/tradeOrdersV2`` (private): the account's order changes;
* ``/account/balance`` (private): every change of the account's balances
  (``account.balance``, from the ledger's ``BalanceChange`` records: each hold, release,
  trade and funding, with the order, symbol and trade it is for).

Anything else is answered ``{"id", "type": "error", "code": 404, "data": "topic … not
found"}``; a message that is not JSON, ``{"type": "error", "code": 400}``. Each session has a
bounded outbox (``mm.venues.sim.hub``): a client that does not keep up is disconnected.

The market loop steps the triangle market every ``step_s``, re-quotes its liquidity, lets its
outside takers trade (on ``/market/match`` and the ticker like any trade; they fill the
accounts' resting orders that are best) and fires the dead-man's switches due
(``KucoinRest.expire``); after it, and after every REST request, the changed levels and order
changes are published.

Rate limits (``mm.venues.sim.kucoin.quota``): every REST answer, the token handshake's too,
carries its pool's ``gw-ratelimit-*`` headers; the private pools are counted per account (the
``KC-API-KEY`` it names; an unknown key per IP), Public per client IP, on Trio's clock. Past
the quota: HTTP 429, ``429000``, and the request does not act. An injected 429 (the fault) is
charged like the request it refuses; the simulator's own ``/sim/`` endpoints are not charged.

Faults (``mm.venues.sim.kucoin.faults``, ``faults=`` and seeded by ``seed``) act on every
session's data messages and on REST requests; ``GET /sim/faults`` answers the settings, ``POST
/sim/faults`` updates them (a partial ``KucoinFaultConfig``; 400 naming a bad key or value, or
a ``refuse_symbol`` not listed here), and ``POST /sim/disconnect`` closes every WebSocket at
once (code 1000 after the fault). The order refusal fault acts through ``KucoinRest``'s
``refuse``: the orders it refuses are answered as the matching refuses them.

The market: ``POST /sim/shock`` with ``{"bps": x}`` shocks the cross rate now by ``x`` bps
(``TriangleMarket.shock``: signed, on top of the dislocation, closed by the pull as a drawn
shock is), answered with the dislocation after it (bps) and the mids; 400 for a body without a
finite number.

How it fails: no request or message raises out of a handler; the server's own errors end
``run`` (the caller's nursery sees them).
"""

from __future__ import annotations

import math
import random
from collections.abc import Awaitable, Callable, Mapping
from decimal import Decimal
from functools import partial
from typing import Any, cast
from urllib.parse import parse_qs

import attrs
import orjson
import trio
from hypercorn.typing import ASGIFramework
from loguru import logger

from mm import clock, randomness, world
from mm.asgi import Receive, Scope, Send, hypercorn_config, read_body, run_lifespan
from mm.secrets import Secret
from mm.venues.kucoin.signing import Credentials
from mm.venues.sim.faults import FaultUpdateError, FrameFate, HttpFate
from mm.venues.sim.hub import Hub, Session
from mm.venues.sim.kucoin.depth import DepthFeed
from mm.venues.sim.kucoin.faults import DATA_CHANNELS, KucoinFaultConfig, KucoinFaults
from mm.venues.sim.kucoin.ledger import FEES, BalanceChange, SpotLedger
from mm.venues.sim.kucoin.quota import PUBLIC, Charge, Quotas, weigh
from mm.venues.sim.kucoin.rest import KucoinRest, Response
from mm.venues.sim.kucoin.spot import OrderChange, Refusal, SpotExchange, SpotOrderRequest
from mm.venues.sim.kucoin.triangle import BPS, SYMBOLS, TriangleConfig, TriangleMarket

__all__ = ["DEV_KEY", "KucoinSimVenue"]

DEV_KEY = Credentials(Secret("mm-sim-key"), Secret("mm-sim-secret"), Secret("mm-sim-passphrase"))
DEV_USER = "mm-sim-account"
STARTING_BALANCES = {"USDT": Decimal(100_000), "BTC": Decimal(1), "ETH": Decimal(10)}
MAKER_RATE, TAKER_RATE = Decimal("0.001"), Decimal("0.001")  # VIP0's spot rates
PING_INTERVAL_MS, PING_TIMEOUT_MS = 18_000, 10_000
OUTBOX = 10_000
MAX_BODY = 1 << 20
TOO_MANY = orjson.dumps({"code": "429000", "msg": "Too Many Requests"})
CHANNELS = {
    "/market/level2": "level2",
    "/spotMarket/level2Depth5": "depth5",
    "/market/ticker": "ticker",
    "/market/match": "match",
}
PRIVATE_CHANNELS = {"/spotMarket/tradeOrdersV2": "orders", "/account/balance": "balance"}


def _number(value: Decimal) -> str:
    return f"{value.normalize():f}"


def _status(change: OrderChange) -> str:
    """An order change's ``status``: a maker's match is ``open`` (the specification's schema of
    ``tradeOrdersV2``: "When the status is open and the type is match, it is a maker match"),
    a taker's ``match``."""
    if change.type == "match":
        return "open" if change.liquidity == "maker" else "match"
    return {"received": "new", "open": "open"}.get(change.type, "done")


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
        faults: KucoinFaultConfig | None = None,
        on_bound: Callable[[str], Awaitable[None]] | None = None,
        first_id: int = 1,
    ) -> None:
        """``on_bound(url)`` hears the base URL once the server listens (each time ``run``
        starts: a restart may bind another port). ``first_id``: the first order, trade and
        fill number (see ``SpotExchange``)."""
        self.host, self.port, self.step_s = host, port, step_s
        self._on_bound = on_bound
        ledger = SpotLedger(record=True)
        for currency, amount in STARTING_BALANCES.items():
            ledger.fund(DEV_USER, currency, amount)
        self.exchange = SpotExchange(
            SYMBOLS,
            ledger,
            lambda user, symbol: (MAKER_RATE, TAKER_RATE),
            first_number=first_id,
        )
        keys = {DEV_KEY.key.reveal(): DEV_KEY}
        self.depth = DepthFeed(SYMBOLS)
        self.users = {DEV_KEY.key.reveal(): DEV_USER}
        self.faults = KucoinFaults(faults or KucoinFaultConfig(), seed)
        self.rest = KucoinRest(self.exchange, keys, self.users, self.depth, refuse=self._refuse)
        self.market = TriangleMarket(market or TriangleConfig(), random.Random(seed))
        self.market.fund_provider(self.exchange)
        self.hub = Hub()
        self.tokens: dict[str, str | None] = {}  # token -> the account (None: public)
        self.url = ""
        self.quotas = Quotas()
        self.sessions: set[Session] = set()
        # What each symbol's ticker last said of the top (bid, bid size, ask, ask size), and
        # its last trade (price, size, time in ms).
        self._tops: dict[str, tuple[str, str, str, str]] = {}
        self._last_trades: dict[str, tuple[str, str, int]] = {}
        self._balance_events = 0

    def now_ns(self) -> int:
        return int(clock.wall() * 1e9)

    def _refuse(self, request: SpotOrderRequest) -> Refusal | None:
        refusal = self.faults.refusal(request.symbol)
        return None if refusal is None else Refusal(*refusal)

    # --- running ------------------------------------------------------------------------------

    async def run(self, *, task_status: trio.TaskStatus[str] = trio.TASK_STATUS_IGNORED) -> None:
        self.market.quote(self.exchange, self.now_ns())
        self.publish()
        config = hypercorn_config(self.host, self.port)
        async with trio.open_nursery() as nursery:
            app = cast(ASGIFramework, self._app)
            binds: list[str] = await nursery.start(partial(world.serve_asgi, app, config))
            self.url = binds[0]
            logger.info("KuCoin simulator listening on {}", self.url)
            if self._on_bound is not None:
                await self._on_bound(self.url)
            nursery.start_soon(self._market_loop)
            task_status.started(self.url)

    async def _market_loop(self) -> None:
        last = trio.current_time()
        while True:
            await trio.sleep(self.step_s)
            now = trio.current_time()
            dt_s, last = now - last, now
            self.market.step(dt_s)
            now_ns = self.now_ns()
            for placed in self.market.quote(self.exchange, now_ns):
                self.rest.changes.extend(placed.changes)
            for placed in self.market.take(self.exchange, now_ns, dt_s):
                self.rest.changes.extend(placed.changes)
            self.rest.expire(self.now_ns())  # the accounts' dead-man's switches
            self.publish()
            self._publish_depth5()
            self.quotas.forget(now)

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
        trades = self._publish_matches(changes)
        self._publish_tickers(now_ms, {symbol for _, symbol in trades})
        for change in changes:
            self._fan_out(("orders", change.user), self._order_message(change))
        trade_ids = [trade_id for trade_id, _ in trades]
        self._publish_balances(self.exchange.ledger.drain(), trade_ids, now_ms)

    def _publish_matches(self, changes: list[OrderChange]) -> list[tuple[str, str]]:
        """Publish the trades among ``changes`` (a taker's match, then its maker's); their
        trade ids and symbols in the order they were made."""
        makers = {
            change.trade_id: change.oid
            for change in changes
            if change.type == "match" and change.liquidity == "maker"
        }
        trades = []
        for change in changes:
            if change.type != "match" or change.liquidity != "taker":
                continue
            assert change.trade_id is not None
            assert change.match_price is not None
            assert change.match_size is not None
            trades.append((change.trade_id, change.symbol))
            price, size = _number(change.match_price), _number(change.match_size)
            self._last_trades[change.symbol] = (price, size, change.ts_ns // 1_000_000)
            self._fan_out(
                ("match", change.symbol),
                {
                    "topic": f"/market/match:{change.symbol}",
                    "type": "message",
                    "subject": "trade.l3match",
                    "data": {
                        "makerOrderId": makers.get(change.trade_id, ""),
                        "price": price,
                        "sequence": change.trade_id,
                        "side": change.side,
                        "size": size,
                        "symbol": change.symbol,
                        "takerOrderId": change.oid,
                        "time": str(change.ts_ns),
                        "tradeId": change.trade_id,
                        "type": "match",
                    },
                },
            )
        return trades

    def _publish_tickers(self, now_ms: int, traded: set[str]) -> None:
        """A ticker for every symbol whose top of book changed or that ``traded``."""
        for name in self.exchange.symbols:
            book = self.depth.snapshot(name, now_ms, depth=1)
            bids, asks = book["bids"] or [["0", "0"]], book["asks"] or [["0", "0"]]
            top = (bids[0][0], bids[0][1], asks[0][0], asks[0][1])
            if top == self._tops.get(name) and name not in traded:
                continue
            self._tops[name] = top
            last = self._last_trades.get(name)
            price, size, time_ms = last if last is not None else (top[0], "0", now_ms)
            self._fan_out(
                ("ticker", name),
                {
                    "topic": f"/market/ticker:{name}",
                    "type": "message",
                    "subject": "trade.ticker",
                    "data": {
                        "sequence": book["sequence"],
                        "price": price,
                        "size": size,
                        "bestAsk": top[2],
                        "bestAskSize": top[3],
                        "bestBid": top[0],
                        "bestBidSize": top[1],
                        "time": time_ms,
                    },
                },
            )

    def _publish_balances(
        self, changes: list[BalanceChange], trades: list[str], now_ms: int
    ) -> None:
        """Publish the ledger's changes to their accounts; a trade's changes name its trade
        id (the ledger settles trades in the order the exchange made them, so the n-th
        settlement drained with a batch of order changes is that batch's n-th trade)."""
        settlements = list(dict.fromkeys(c.settlement for c in changes if c.settlement))
        trade_ids = dict(zip(settlements, trades, strict=False))
        for change in changes:
            self._balance_events += 1
            if change.user == FEES or not self.hub.has(("balance", change.user)):
                continue
            context: dict[str, str] = {}
            if change.order is not None:
                order = self.exchange.orders.get(str(change.order))
                if order is not None:
                    context["symbol"] = order.symbol.name
                context["orderId"] = str(change.order)
            trade_id = trade_ids.get(change.settlement or 0)
            if trade_id is not None:
                context["tradeId"] = trade_id
            event_id = str(self._balance_events)
            self._fan_out(
                ("balance", change.user),
                {
                    "topic": "/account/balance",
                    "type": "message",
                    "subject": "account.balance",
                    "id": event_id,
                    "userId": change.user,
                    "channelType": "private",
                    "data": {
                        "accountId": f"{change.user}-{change.currency}",
                        "available": _number(change.available),
                        "availableChange": _number(change.available_change),
                        "currency": change.currency,
                        "hold": _number(change.holds),
                        "holdChange": _number(change.hold_change),
                        "relationContext": context,
                        "relationEvent": change.event,
                        "relationEventId": event_id,
                        "time": str(now_ms),
                        "total": _number(change.balance),
                    },
                },
            )

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
            "status": _status(change),
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
        extra: list[tuple[bytes, bytes]] = []
        if body is None:
            response = Response(413, orjson.dumps({"code": "400100", "msg": "body too large"}))
        elif path.startswith("/sim/"):
            response = self._control(method, path, body)
        else:
            delay = self.faults.http_delay()
            if delay:
                await trio.sleep(delay)
            charge = self._charge(method, path, headers, _client_ip(scope))
            extra = charge.headers()
            if not charge.allowed or self.faults.http_fate() is HttpFate.TOO_MANY:
                response = Response(429, TOO_MANY)
            elif method == "POST" and path in ("/api/v1/bullet-public", "/api/v1/bullet-private"):
                response = self._bullet(path, headers, body)
            else:
                response = self.rest.handle(method, path, query, headers, body, self.now_ns())
                self.publish()
        await send(
            {
                "type": "http.response.start",
                "status": response.status,
                "headers": [(b"content-type", b"application/json"), *extra],
            }
        )
        await send({"type": "http.response.body", "body": response.body})

    def _charge(self, method: str, path: str, headers: Mapping[str, str], ip: str) -> Charge:
        """Charge the request to its pool: a private pool per account (the key it names),
        Public per IP."""
        pool, weight = weigh(method, path)
        owner = f"ip:{ip}"
        if pool != PUBLIC:
            key = {name.lower(): value for name, value in headers.items()}.get("kc-api-key")
            user = self.users.get(key or "")
            if user is not None:
                owner = f"user:{user}"
        return self.quotas.charge(pool, owner, weight, trio.current_time())

    def _control(self, method: str, path: str, body: bytes) -> Response:
        """The simulator's own endpoints: the faults, and closing every WebSocket."""
        if path == "/sim/faults" and method == "GET":
            return Response(200, orjson.dumps(attrs.asdict(self.faults.config)))
        if path == "/sim/faults" and method == "POST":
            try:
                changes = orjson.loads(body or b"{}")
            except orjson.JSONDecodeError:
                changes = None
            if type(changes) is not dict:
                return Response(400, orjson.dumps({"error": "the body is not a JSON object"}))
            symbol = changes.get("refuse_symbol", "")
            if type(symbol) is str and symbol and symbol not in self.exchange.symbols:
                error = f"faults.refuse_symbol: no symbol {symbol[:40]!r} here"
                return Response(400, orjson.dumps({"error": error}))
            try:
                config = self.faults.update(changes)
            except FaultUpdateError as error:
                return Response(400, orjson.dumps({"error": str(error)}))
            logger.info("KuCoin simulator: faults now {}", config)
            return Response(200, orjson.dumps(attrs.asdict(config)))
        if path == "/sim/shock" and method == "POST":
            try:
                shock = orjson.loads(body or b"{}")
            except orjson.JSONDecodeError:
                shock = None
            bps = shock.get("bps") if type(shock) is dict else None
            if not isinstance(bps, int | float) or type(bps) is bool or not math.isfinite(bps):
                return Response(400, orjson.dumps({"error": 'the body is {"bps": a number}'}))
            self.market.shock(float(bps))
            logger.info("KuCoin simulator: a shock of {} bps", bps)
            return Response(
                200,
                orjson.dumps(
                    {"dislocation_bps": self.market.dislocation / BPS, "mids": self.market.mids()}
                ),
            )
        if path == "/sim/disconnect" and method == "POST":
            for session in list(self.sessions):
                session.close("/sim/disconnect")
            return Response(200, orjson.dumps({"closed": True}))
        return Response(404, orjson.dumps({"error": f"no control {method} {path:.80}"}))

    def _bullet(self, path: str, headers: Mapping[str, str], body: bytes) -> Response:
        user: str | None = None
        if path.endswith("private"):
            # Authenticated as any private request: through the REST face's check.
            answer = self.rest.authenticate("POST", path, "", headers, body, self.now_ns())
            if isinstance(answer, Response):
                return answer
            user = answer
        token = randomness.hex_id(128)
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


def _client_ip(scope: Scope) -> str:
    client = scope.get("client")
    return str(client[0]) if client else "unknown"


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
        self.venue.sessions.add(session)
        try:
            async with trio.open_nursery() as nursery:
                nursery.start_soon(self._writer, session)
                nursery.start_soon(self._reader, session, user)
                await session.closed.wait()
                nursery.cancel_scope.cancel()
        finally:
            self.venue.sessions.discard(session)
            self.venue.hub.drop(session)
        if session.close_reason != "client closed":
            with trio.move_on_after(1):
                await self._send({"type": "websocket.close", "code": 1000})

    async def _writer(self, session: Session) -> None:
        """Send queued messages through the faults (delay, drop, duplicate, disconnect)."""
        faults = self.venue.faults
        data_messages = 0
        async for channel, text, queued_at in session.receive_channel:
            if channel not in DATA_CHANNELS:
                await self._send({"type": "websocket.send", "text": text})
                continue
            fate = faults.frame_fate(channel)
            if fate is FrameFate.DROP:
                continue
            delay = faults.ws_delay()
            if delay:  # latency from when the message was queued: it does not pile up
                await trio.sleep_until(queued_at + delay)
            await self._send({"type": "websocket.send", "text": text})
            if fate is FrameFate.DUPLICATE:
                await self._send({"type": "websocket.send", "text": text})
            data_messages += 1
            limit = faults.config.ws_disconnect_after
            if limit and data_messages >= limit:
                session.close(f"fault: disconnect after {limit} data messages")
                return

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
        if prefix in PRIVATE_CHANNELS and not symbols:
            return None if user is None else [(PRIVATE_CHANNELS[prefix], user)]
        channel = CHANNELS.get(prefix)
        names = symbols.split(",") if symbols else []
        if channel is None or not names or any(n not in self.venue.exchange.symbols for n in names):
            return None
        return [(channel, name) for name in names]

    @staticmethod
    def _error(request_id: Any, code: int, data: str) -> str:
        return orjson.dumps(
            {"id": request_id, "type": "error", "code": code, "data": data}
        ).decode()
