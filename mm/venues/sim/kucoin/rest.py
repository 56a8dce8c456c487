"""The KuCoin face's REST endpoints as one pure function of a request: what the venue answers.

``KucoinRest.handle(method, path, query, headers, body, now_ns)`` answers a ``Response`` (HTTP
status, JSON body) in the venue's envelope: ``{"code": "200000", "data": ...}``, or its error
``{"code", "msg"}``. The server (next to come) only moves bytes; everything the venue decides is
here, so it is tested without sockets.

Served so far (KuCoin's HF spot API, as its specification gives them):

* public: ``GET /api/v1/timestamp``, ``GET /api/v2/symbols``, the partial books ``GET
  /api/v1/market/orderbook/level2_20`` and ``_100`` (``?symbol=``);
* private, signed (``mm.venues.kucoin.signing``'s scheme: a missing header ``400001``, a
  timestamp more than 5 s off ``400002``, an unknown key ``400003``, a wrong passphrase
  ``400004``, a wrong signature ``400005``; HTTP 401): ``POST /api/v1/hf/orders`` (and
  ``/hf/orders/test``: validated, never matched), ``DELETE /api/v1/hf/orders/{orderId}`` and
  ``/hf/orders/client-order/{clientOid}`` (``?symbol=``), ``DELETE /api/v1/hf/orders``
  (``?symbol=``: every order of the symbol), ``GET /api/v1/hf/orders/active`` (``?symbol=``),
  ``GET /api/v1/hf/orders/{orderId}`` and ``/client-order/{clientOid}``, ``GET
  /api/v1/accounts``, ``GET /api/v1/trade-fees`` (``?symbols=``, at most 10) and the full
  book ``GET /api/v3/market/orderbook/level2`` (``?symbol=``; the books are those the level-2
  publisher, ``depth``, has published, with its sequence);
* the HF order endpoints beyond those: ``POST /api/v1/hf/orders/sync`` (the order's state once
  matched: ``orderId``, ``clientOid``, ``orderTime``, ``originSize``, ``dealSize``,
  ``remainSize``, ``canceledSize``, ``status`` open|done, ``matchTime``); ``POST
  /api/v1/hf/orders/multi`` and ``/multi/sync`` (``orderList``: 1 to 5 limit orders of one
  symbol, as the spec's description says (its example mixes two symbols; the description is
  taken as the rule); more, or none, or two symbols: ``400100``; each entry answered in request
  order, ``{"success": false, "failMsg"}`` for one refused, which does not stop the others);
  ``POST /api/v1/hf/orders/alter`` (``orderId`` or ``clientOid``, ``newPrice`` and/or
  ``newSize``: cancel and replace, answered ``{newOrderId, clientOid}``; an order not active,
  a done one included, is ``400100`` "order not exist.", the face's code for an order it
  cannot act on, as the spec names none); ``DELETE /api/v1/hf/orders/sync/{orderId}`` and
  ``/sync/client-order/{clientOid}`` (the order's sizes and status after the cancel); ``DELETE
  /api/v1/hf/orders/cancelAll`` (every symbol; ``succeedSymbols`` those that had orders);
  ``GET /api/v1/hf/orders/done`` and ``GET /api/v1/hf/fills`` (the account's latest done
  orders of a symbol and its trades, latest first: ``side``, ``type``, ``startAt``/``endAt``
  (ms), ``limit`` 1 to 100 (20), ``lastId`` the page's last ``id`` (fills) or done number
  (orders), the next page being what came before it; ``orderId`` for fills, when given, alone
  decides which); and the dead-man's switch, ``POST /api/v1/hf/orders/dead-cancel-all``
  (``timeout`` seconds, 5 to 86400, or -1 to disarm; ``symbols`` up to 50, comma-separated,
  empty for all) and ``GET /api/v1/hf/orders/dead-cancel-all/query``: an armed switch not set
  again before ``timeout`` seconds pass cancels the account's orders of those symbols, at the
  first ``expire(now_ns)`` after (the server calls it every market step), and is disarmed.

An order's sizes (``size``/``originSize``, ``remainSize``, ``cancelledSize``/``canceledSize``)
are in the base; a market buy by funds has none, so they are 0, and what it left unspent is in
its funds (``remainFunds``, ``cancelledFunds``: the dust its dust cancel frees; 0 for an order
by size); ``cancelExist`` says whether it was cancelled.

Anything else is ``404000`` "Url Not Found" (HTTP 404); a body that is not a JSON object, a
field missing or mistyped, an unknown symbol: ``400100`` (HTTP 400); an order the balance
cannot cover: ``200004`` with HTTP 200 (a business refusal in a well-formed answer). The
order changes an answered request made are kept in ``changes`` for the WebSocket face to push.
An order about to be placed (one, sync, a batch's entry) is first offered to ``refuse``, the
server's fault, whose refusal is answered as the matching's would be; ``test_orders`` counts
the test orders answered, by symbol.

Fails: never raises for a request, whatever its shape.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable, Mapping
from decimal import Decimal
from typing import Any, Final
from urllib.parse import parse_qsl, unquote_plus

import attrs
import orjson

from mm.venues.kucoin.signing import Credentials, check_request
from mm.venues.sim.kucoin.depth import DepthFeed
from mm.venues.sim.kucoin.spot import (
    Fill,
    OrderChange,
    Placed,
    Refusal,
    SpotExchange,
    SpotOrder,
    SpotOrderRequest,
)

__all__ = ["DeadMan", "KucoinRest", "Response"]

SUCCESS: Final = "200000"
MAX_FEE_SYMBOLS: Final = 10
_BY_ID: Final = re.compile(r"/api/v1/hf/orders/([0-9a-f]{24})")
_BY_CLIENT: Final = re.compile(r"/api/v1/hf/orders/client-order/([^/]{1,40})")
_SYNC_BY_ID: Final = re.compile(r"/api/v1/hf/orders/sync/([0-9a-f]{24})")
_SYNC_BY_CLIENT: Final = re.compile(r"/api/v1/hf/orders/sync/client-order/([^/]{1,40})")
MAX_BATCH: Final = 5
MAX_PAGE: Final = 100
DEFAULT_PAGE: Final = 20
DEAD_MAN_SECONDS: Final = (5, 86_400)
MAX_DEAD_MAN_SYMBOLS: Final = 50
_PART_BOOK: Final = re.compile(r"/api/v1/market/orderbook/level2_(20|100)")


@attrs.frozen
class Response:
    status: int
    body: bytes

    def json(self) -> Any:
        return orjson.loads(self.body)


def _ok(data: Any) -> Response:
    return Response(200, orjson.dumps({"code": SUCCESS, "data": data}))


def _error(status: int, code: str, msg: str) -> Response:
    return Response(status, orjson.dumps({"code": code, "msg": msg}))


def _number(value: Decimal | None) -> str | None:
    return None if value is None else f"{value.normalize():f}"


class _BadRequest(Exception):
    """A request's parameters are not what the endpoint takes: 400100 with this message."""


@attrs.frozen
class DeadMan:
    """An account's armed dead-man's switch: its orders of ``symbols`` (empty: all) are
    cancelled at ``trigger_ns`` unless it is set again before."""

    timeout_s: int
    symbols: tuple[str, ...]
    trigger_ns: int


def _refused(refusal: Refusal) -> Response:
    return _error(400 if refusal.code == "400100" else 200, refusal.code, refusal.msg)


class KucoinRest:
    """The REST endpoints over an exchange, for the accounts of ``keys`` (API key id to
    credentials; each key trades for the user ``users`` names)."""

    def __init__(
        self,
        exchange: SpotExchange,
        keys: Mapping[str, Credentials],
        users: Mapping[str, str],
        depth: DepthFeed | None = None,
        refuse: Callable[[SpotOrderRequest], Refusal | None] | None = None,
    ) -> None:
        """``refuse(request)``: a refusal to answer an order about to be placed with instead
        (the server's fault), or None to place it."""
        self.exchange = exchange
        self._refuse = refuse
        self.test_orders: Counter[str] = Counter()  # test orders answered, by symbol
        self.depth = depth if depth is not None else DepthFeed(exchange.symbols.values())
        self._keys = dict(keys)
        self._users = dict(users)
        self.changes: list[OrderChange] = []
        self.dead_men: dict[str, DeadMan] = {}  # the accounts' armed switches

    def handle(
        self,
        method: str,
        path: str,
        query: str,
        headers: Mapping[str, str],
        body: bytes,
        now_ns: int,
    ) -> Response:
        now_ms = now_ns // 1_000_000
        params = dict(parse_qsl(query, keep_blank_values=True))
        try:
            if path == "/api/v1/timestamp" and method == "GET":
                return _ok(now_ms)
            if path == "/api/v2/symbols" and method == "GET":
                return _ok([self._symbol(name) for name in self.exchange.symbols])
            part = _PART_BOOK.fullmatch(path)
            if part is not None and method == "GET":
                symbol = self._symbol_name(params.get("symbol"))
                return _ok(self.depth.snapshot(symbol, now_ms, depth=int(part.group(1))))
            route = self._private_route(method, path)
            if route is None:
                return _error(404, "404000", "Url Not Found")
            user = self.authenticate(method, path, query, headers, body, now_ns)
            if isinstance(user, Response):
                return user
            answer: Response = route(user, params, body, now_ns)
            return answer
        except _BadRequest as error:
            return _error(400, "400100", str(error))

    def authenticate(
        self,
        method: str,
        path: str,
        query: str,
        headers: Mapping[str, str],
        body: bytes,
        now_ns: int,
    ) -> str | Response:
        """The account a signed request is for, or the venue's refusal of it (HTTP 401). The
        signature covers the query as it reads, not as URL-encoded for the wire (a comma sent
        as ``%2C`` was signed as a comma): the query is decoded first."""
        decoded = unquote_plus(query)
        endpoint = f"{path}?{decoded}" if decoded else path
        text = body.decode(errors="replace")
        refusal = check_request(self._keys, headers, method, endpoint, text, now_ns // 1_000_000)
        if refusal is not None:
            return _error(401, refusal.code, refusal.msg)
        key = {name.lower(): value for name, value in headers.items()}["kc-api-key"]
        return self._users[key]

    def expire(self, now_ns: int) -> None:
        """Fire every dead-man's switch whose time has come: cancel its account's orders (of its
        symbols, or all), the changes kept for the WebSocket, and disarm it."""
        for user, switch in list(self.dead_men.items()):
            if switch.trigger_ns <= now_ns:
                del self.dead_men[user]
                symbols = switch.symbols or None
                self.changes.extend(self.exchange.cancel_all(user, symbols, now_ns))

    # --- routing ------------------------------------------------------------------------------

    def _private_route(self, method: str, path: str) -> Any:
        exact = {
            ("POST", "/api/v1/hf/orders"): self._place,
            ("POST", "/api/v1/hf/orders/test"): self._test_order,
            ("POST", "/api/v1/hf/orders/sync"): self._place_sync,
            ("POST", "/api/v1/hf/orders/multi"): self._place_batch,
            ("POST", "/api/v1/hf/orders/multi/sync"): self._place_batch_sync,
            ("POST", "/api/v1/hf/orders/alter"): self._alter,
            ("DELETE", "/api/v1/hf/orders"): self._cancel_all,
            ("DELETE", "/api/v1/hf/orders/cancelAll"): self._cancel_everything,
            ("GET", "/api/v1/hf/orders/active"): self._active,
            ("GET", "/api/v1/hf/orders/done"): self._done,
            ("GET", "/api/v1/hf/fills"): self._fills,
            ("POST", "/api/v1/hf/orders/dead-cancel-all"): self._set_dead_man,
            ("GET", "/api/v1/hf/orders/dead-cancel-all/query"): self._dead_man,
            ("GET", "/api/v1/accounts"): self._accounts,
            ("GET", "/api/v1/trade-fees"): self._trade_fees,
            ("GET", "/api/v3/market/orderbook/level2"): self._full_book,
        }.get((method, path))
        if exact is not None:
            return exact
        by_client = _BY_CLIENT.fullmatch(path)
        if by_client is not None and method in ("GET", "DELETE"):
            client_oid = by_client.group(1)
            return lambda user, params, body, now: self._by_client(
                method, user, client_oid, params, now
            )
        sync_by_client = _SYNC_BY_CLIENT.fullmatch(path)
        if sync_by_client is not None and method == "DELETE":
            client_oid = sync_by_client.group(1)
            return lambda user, params, body, now: self._cancel_sync(
                user, None, client_oid, params, now
            )
        sync_by_id = _SYNC_BY_ID.fullmatch(path)
        if sync_by_id is not None and method == "DELETE":
            oid = sync_by_id.group(1)
            return lambda user, params, body, now: self._cancel_sync(user, oid, None, params, now)
        by_id = _BY_ID.fullmatch(path)
        if by_id is not None and method in ("GET", "DELETE"):
            oid = by_id.group(1)
            return lambda user, params, body, now: self._by_id(method, user, oid, params, now)
        return None

    # --- orders -------------------------------------------------------------------------------

    @staticmethod
    def _body(body: bytes) -> dict[str, Any]:
        try:
            fields = orjson.loads(body)
        except orjson.JSONDecodeError:
            raise _BadRequest("the body is not JSON") from None
        if type(fields) is not dict:
            raise _BadRequest("the body is not a JSON object")
        return fields

    def _request(self, body: bytes) -> SpotOrderRequest:
        return self._order_request(self._body(body))

    def _order_request(self, fields: dict[str, Any]) -> SpotOrderRequest:
        symbol = self._symbol_name(fields.get("symbol"))
        texts = {}
        for name in ("side", "type", "price", "size", "funds", "timeInForce", "clientOid"):
            value = fields.get(name)
            if value is not None and type(value) is not str:
                raise _BadRequest(f"{name}: must be a string")
            texts[name] = value
        post_only = fields.get("postOnly", False)
        if type(post_only) is not bool:
            raise _BadRequest("postOnly: must be true or false")
        client_oid = texts["clientOid"]
        if client_oid is not None and not 0 < len(client_oid) <= 40:
            raise _BadRequest("clientOid: at most 40 characters")
        if texts["side"] is None:
            raise _BadRequest("side: required")
        return SpotOrderRequest(
            symbol,
            texts["side"],
            texts["type"] or "limit",
            texts["price"],
            texts["size"],
            texts["funds"],
            texts["timeInForce"] or "GTC",
            post_only,
            client_oid,
        )

    def _placed(self, user: str, request: SpotOrderRequest, now_ns: int) -> Placed | Refusal:
        """The order placed, or refused (by the matching's checks, or the fault first)."""
        refusal = self._refuse(request) if self._refuse is not None else None
        if refusal is not None:
            return refusal
        return self.exchange.place(user, request, now_ns)

    def _place(self, user: str, params: dict[str, str], body: bytes, now_ns: int) -> Response:
        request = self._request(body)
        result = self._placed(user, request, now_ns)
        if isinstance(result, Refusal):
            return _refused(result)
        self.changes.extend(result.changes)
        return _ok({"orderId": result.oid, "clientOid": request.client_oid})

    def _place_sync(self, user: str, params: dict[str, str], body: bytes, now_ns: int) -> Response:
        result = self._placed(user, self._request(body), now_ns)
        if isinstance(result, Refusal):
            return _refused(result)
        self.changes.extend(result.changes)
        return _ok(self._placed_state(self.exchange.orders[result.oid]))

    def _place_batch(self, user: str, params: dict[str, str], body: bytes, now_ns: int) -> Response:
        return _ok(
            [
                {"orderId": order.oid, "clientOid": order.request.client_oid, "success": True}
                if isinstance(order, SpotOrder)
                else order
                for order in self._batch(user, body, now_ns)
            ]
        )

    def _place_batch_sync(
        self, user: str, params: dict[str, str], body: bytes, now_ns: int
    ) -> Response:
        return _ok(
            [
                self._placed_state(order) | {"success": True}
                if isinstance(order, SpotOrder)
                else order
                for order in self._batch(user, body, now_ns)
            ]
        )

    def _batch(self, user: str, body: bytes, now_ns: int) -> list[SpotOrder | dict[str, Any]]:
        """Each order of ``orderList`` placed in turn: the order, or its failure entry."""
        entries = self._body(body).get("orderList")
        if type(entries) is not list or not 0 < len(entries) <= MAX_BATCH:
            raise _BadRequest(f"orderList: 1 to {MAX_BATCH} orders")
        symbols = [entry.get("symbol") for entry in entries if type(entry) is dict]
        if any(symbol != symbols[0] for symbol in symbols):  # (any JSON value, unhashable too)
            raise _BadRequest("orderList: the orders must be of one symbol")
        answers: list[SpotOrder | dict[str, Any]] = []
        for entry in entries:
            try:
                if type(entry) is not dict:
                    raise _BadRequest("an order is not a JSON object")
                request = self._order_request(entry)
                if request.type != "limit":
                    raise _BadRequest("type: a batch takes limit orders only")
            except _BadRequest as error:
                answers.append({"success": False, "failMsg": str(error)})
                continue
            result = self._placed(user, request, now_ns)
            if isinstance(result, Refusal):
                answers.append({"success": False, "failMsg": result.msg})
                continue
            self.changes.extend(result.changes)
            answers.append(self.exchange.orders[result.oid])
        return answers

    def _alter(self, user: str, params: dict[str, str], body: bytes, now_ns: int) -> Response:
        fields = self._body(body)
        symbol = self._symbol_name(fields.get("symbol"))
        texts = {}
        for name in ("orderId", "clientOid", "newPrice", "newSize"):
            value = fields.get(name)
            if value is not None and type(value) is not str:
                raise _BadRequest(f"{name}: must be a string")
            texts[name] = value
        oid, client_oid = texts["orderId"], texts["clientOid"]
        if (oid is None) == (client_oid is None):
            raise _BadRequest("orderId or clientOid: exactly one of them")
        order = (
            self.exchange.live.get(oid)
            if oid is not None
            else self.exchange.active_by_client_oid(user, client_oid or "")
        )
        if order is None or order.user != user or order.symbol.name != symbol:
            return _error(400, "400100", "order not exist.")
        result = self.exchange.alter(user, order.oid, texts["newPrice"], texts["newSize"], now_ns)
        if isinstance(result, Refusal):
            return _refused(result)
        self.changes.extend(result.cancelled)
        if result.refusal is not None:
            return _refused(result.refusal)
        if result.placed is not None:
            self.changes.extend(result.placed.changes)
        new_oid = result.placed.oid if result.placed is not None else None
        return _ok({"newOrderId": new_oid, "clientOid": order.request.client_oid})

    def _cancel_sync(
        self,
        user: str,
        oid: str | None,
        client_oid: str | None,
        params: dict[str, str],
        now_ns: int,
    ) -> Response:
        symbol = self._symbol_name(params.get("symbol"))
        order = (
            self.exchange.live.get(oid)
            if oid is not None
            else self.exchange.active_by_client_oid(user, client_oid or "")
        )
        if order is None or order.user != user or order.symbol.name != symbol:
            return _error(400, "400100", "order not exist.")
        refusal = self._cancel(user, order.oid, now_ns)
        if refusal is not None:
            return refusal
        state = self._state(order)
        named = {"orderId": order.oid} if oid is not None else {"clientOid": client_oid}
        return _ok(named | state)

    def _cancel_everything(
        self, user: str, params: dict[str, str], body: bytes, now_ns: int
    ) -> Response:
        changes = self.exchange.cancel_all(user, None, now_ns)
        self.changes.extend(changes)
        symbols = list(dict.fromkeys(change.symbol for change in changes))
        return _ok({"succeedSymbols": symbols, "failedSymbols": []})

    def _test_order(self, user: str, params: dict[str, str], body: bytes, now_ns: int) -> Response:
        """Validated as an order would be, never matched or held."""
        request = self._request(body)
        self.test_orders[request.symbol] += 1
        refusal = self.exchange.check(request)
        if refusal is not None:
            return _error(400, refusal.code, refusal.msg)
        return _ok({"orderId": "0" * 24, "clientOid": request.client_oid})

    def _cancel_all(self, user: str, params: dict[str, str], body: bytes, now_ns: int) -> Response:
        symbol = self._symbol_name(params.get("symbol"))
        self.changes.extend(self.exchange.cancel_all(user, [symbol], now_ns))
        return _ok("success")

    def _done(self, user: str, params: dict[str, str], body: bytes, now_ns: int) -> Response:
        symbol = self._symbol_name(params.get("symbol"))
        side, kind, start_ms, end_ms, last_id, limit = self._page(params)
        items = []
        for order in self.exchange.done_orders(user, symbol):
            if last_id is not None and order.done_number >= last_id:
                continue
            updated_ms = order.updated_ns // 1_000_000
            if (
                side not in (None, order.request.side)
                or kind not in (None, order.request.type)
                or (start_ms is not None and updated_ms < start_ms)
                or (end_ms is not None and updated_ms > end_ms)
            ):
                continue
            items.append(order)
            if len(items) == limit:
                break
        last = items[-1].done_number if items else (last_id or 0)
        return _ok({"lastId": last, "items": [self._order(order) for order in items]})

    def _fills(self, user: str, params: dict[str, str], body: bytes, now_ns: int) -> Response:
        symbol = self._symbol_name(params.get("symbol"))
        fills = reversed(self.exchange.fills.get(user, ()))
        oid = params.get("orderId")
        if oid is not None:  # "If orderId is specified, please ignore the other parameters"
            items = [f for f in fills if f.symbol == symbol and f.oid == oid]
            return _ok({"items": [_fill(f) for f in items], "lastId": items[-1].id if items else 0})
        side, kind, start_ms, end_ms, last_id, limit = self._page(params)
        items = []
        for fill in fills:
            created_ms = fill.ts_ns // 1_000_000
            if (
                fill.symbol != symbol
                or (last_id is not None and fill.id >= last_id)
                or side not in (None, fill.side)
                or kind not in (None, fill.order_type)
                or (start_ms is not None and created_ms < start_ms)
                or (end_ms is not None and created_ms > end_ms)
            ):
                continue
            items.append(fill)
            if len(items) == limit:
                break
        last = items[-1].id if items else (last_id or 0)
        return _ok({"items": [_fill(f) for f in items], "lastId": last})

    @staticmethod
    def _page(
        params: dict[str, str],
    ) -> tuple[str | None, str | None, int | None, int | None, int | None, int]:
        """A history query's filters: side, type, startAt, endAt, lastId, limit."""
        side, kind = params.get("side"), params.get("type")
        if side not in (None, "buy", "sell"):
            raise _BadRequest("side: must be buy or sell")
        if kind not in (None, "limit", "market"):
            raise _BadRequest("type: must be limit or market")
        start_ms, end_ms, last_id = (
            _integer(params, name, 1) for name in ("startAt", "endAt", "lastId")
        )
        limit = _integer(params, "limit", 1, MAX_PAGE)
        return side, kind, start_ms, end_ms, last_id, DEFAULT_PAGE if limit is None else limit

    # --- the dead-man's switch ----------------------------------------------------------------

    def _set_dead_man(
        self, user: str, params: dict[str, str], body: bytes, now_ns: int
    ) -> Response:
        fields = self._body(body)
        timeout, symbols = fields.get("timeout"), fields.get("symbols", "")
        low, high = DEAD_MAN_SECONDS
        if type(timeout) is not int or not (timeout == -1 or low <= timeout <= high):
            raise _BadRequest(f"timeout: -1, or {low} to {high} seconds")
        if symbols is None:
            symbols = ""
        if type(symbols) is not str:
            raise _BadRequest("symbols: a comma-separated string")
        names = tuple(self._symbol_name(name) for name in symbols.split(",") if name)
        if len(names) > MAX_DEAD_MAN_SYMBOLS:
            raise _BadRequest(f"symbols: at most {MAX_DEAD_MAN_SYMBOLS}")
        if timeout == -1:
            self.dead_men.pop(user, None)
            return _ok({})
        switch = DeadMan(timeout, names, now_ns + timeout * 1_000_000_000)
        self.dead_men[user] = switch
        return _ok(
            {"currentTime": now_ns // 1_000_000_000, "triggerTime": switch.trigger_ns // 10**9}
        )

    def _dead_man(self, user: str, params: dict[str, str], body: bytes, now_ns: int) -> Response:
        switch = self.dead_men.get(user)
        if switch is None:
            return _ok({})  # "If the data is empty, it means that DCP is not set."
        return _ok(
            {
                "timeout": switch.timeout_s,
                "symbols": ",".join(switch.symbols),
                "currentTime": now_ns // 1_000_000_000,
                "triggerTime": switch.trigger_ns // 1_000_000_000,
            }
        )

    def _active(self, user: str, params: dict[str, str], body: bytes, now_ns: int) -> Response:
        symbol = self._symbol_name(params.get("symbol"))
        return _ok(
            [
                self._order(self.exchange.live[oid])
                for oid in self.exchange.open_orders(user, symbol)
            ]
        )

    def _by_id(
        self, method: str, user: str, oid: str, params: dict[str, str], now_ns: int
    ) -> Response:
        symbol = self._symbol_name(params.get("symbol"))
        order = self.exchange.orders.get(oid)
        if order is None or order.user != user or order.symbol.name != symbol:
            return _error(400, "400100", "order not exist.")
        if method == "GET":
            return _ok(self._order(order))
        refusal = self._cancel(user, oid, now_ns)
        return refusal or _ok({"orderId": oid})

    def _by_client(
        self, method: str, user: str, client_oid: str, params: dict[str, str], now_ns: int
    ) -> Response:
        symbol = self._symbol_name(params.get("symbol"))
        matches = [
            order
            for order in self.exchange.orders.values()
            if order.user == user
            and order.symbol.name == symbol
            and order.request.client_oid == client_oid
        ]
        if not matches:
            return _error(400, "400100", "order not exist.")
        order = max(matches, key=lambda candidate: candidate.created_ns)  # the latest of them
        if method == "GET":
            return _ok(self._order(order))
        refusal = self._cancel(user, order.oid, now_ns)
        return refusal or _ok({"clientOid": client_oid})

    def _cancel(self, user: str, oid: str, now_ns: int) -> Response | None:
        result = self.exchange.cancel(user, oid, now_ns)
        if isinstance(result, Refusal):
            return _error(400, result.code, result.msg)
        self.changes.extend(result)
        return None

    def _full_book(self, user: str, params: dict[str, str], body: bytes, now_ns: int) -> Response:
        symbol = self._symbol_name(params.get("symbol"))
        return _ok(self.depth.snapshot(symbol, now_ns // 1_000_000))

    # --- accounts -----------------------------------------------------------------------------

    def _accounts(self, user: str, params: dict[str, str], body: bytes, now_ns: int) -> Response:
        ledger = self.exchange.ledger
        wanted_currency, wanted_type = params.get("currency"), params.get("type")
        accounts = []
        if wanted_type in (None, "trade"):
            for currency in ledger.currencies(user):
                if wanted_currency not in (None, currency):
                    continue
                balance = ledger.balance(user, currency)
                accounts.append(
                    {
                        "id": f"{user}-{currency}",
                        "currency": currency,
                        "type": "trade",
                        "balance": _number(balance.balance),
                        "available": _number(balance.available),
                        "holds": _number(balance.holds),
                    }
                )
        return _ok(accounts)

    def _trade_fees(self, user: str, params: dict[str, str], body: bytes, now_ns: int) -> Response:
        names = [name for name in params.get("symbols", "").split(",") if name]
        if not names or len(names) > MAX_FEE_SYMBOLS:
            raise _BadRequest(f"symbols: 1 to {MAX_FEE_SYMBOLS} symbols, comma-separated")
        fees = []
        for name in names:
            maker, taker = self.exchange.fee_rates(user, self._symbol_name(name))
            fees.append(
                {"symbol": name, "takerFeeRate": _number(taker), "makerFeeRate": _number(maker)}
            )
        return _ok(fees)

    # --- shapes -------------------------------------------------------------------------------

    def _symbol_name(self, value: object) -> str:
        if type(value) is not str or value not in self.exchange.symbols:
            raise _BadRequest(f"symbol: not a symbol of the venue: {value!r:.60}")
        return value

    def _symbol(self, name: str) -> dict[str, Any]:
        symbol = self.exchange.symbols[name]
        return {
            "symbol": name,
            "name": name,
            "baseCurrency": symbol.base,
            "quoteCurrency": symbol.quote,
            "feeCurrency": symbol.quote,
            "market": "USDS",
            "baseMinSize": _number(symbol.base_min_size),
            "quoteMinSize": _number(symbol.quote_min_size),
            "baseMaxSize": "10000000000",
            "quoteMaxSize": "99999999",
            "baseIncrement": _number(symbol.base_increment),
            "quoteIncrement": _number(symbol.quote_increment),
            "priceIncrement": _number(symbol.price_increment),
            "priceLimitRate": "0.1",
            "minFunds": _number(symbol.min_funds),
            "isMarginEnabled": False,
            "enableTrading": True,
            "feeCategory": 1,
            "makerFeeCoefficient": "1.00",
            "takerFeeCoefficient": "1.00",
            "st": False,
            "callauctionIsEnabled": False,
        }

    @staticmethod
    def _sizes(order: SpotOrder) -> tuple[Decimal, Decimal, Decimal]:
        """The order's size, what remains of it, and what was cancelled. A market buy by
        funds has no size: all three are 0 (what it did not spend is in funds, ``_funds``)."""
        if order.size is None:
            return Decimal(0), Decimal(0), Decimal(0)
        unfilled = order.size - order.filled
        remain = unfilled if order.end is None else Decimal(0)
        cancelled = unfilled if order.end == "canceled" else Decimal(0)
        return order.size, remain, cancelled

    @staticmethod
    def _funds(order: SpotOrder) -> tuple[Decimal, Decimal]:
        """What remains of an order by funds, and what was cancelled: the funds not spent on
        its trades and their fees (the ledger charges them in the quote), the "dust" a market
        buy frees when it ends. An order by size answers 0 for both."""
        if order.funds is None:
            return Decimal(0), Decimal(0)
        unspent = order.funds - order.deal_funds - order.fee
        remain = unspent if order.end is None else Decimal(0)
        cancelled = unspent if order.end == "canceled" else Decimal(0)
        return remain, cancelled

    def _state(self, order: SpotOrder) -> dict[str, Any]:
        """What a synchronous request answers of the order: its sizes and status."""
        size, remain, cancelled = self._sizes(order)
        return {
            "originSize": _number(size),
            "dealSize": _number(order.filled),
            "remainSize": _number(remain),
            "canceledSize": _number(cancelled),
            "status": "open" if order.end is None else "done",
        }

    def _placed_state(self, order: SpotOrder) -> dict[str, Any]:
        return {
            "orderId": order.oid,
            "clientOid": order.request.client_oid,
            "orderTime": order.created_ns // 1_000_000,
            **self._state(order),
            "matchTime": (order.updated_ns or order.created_ns) // 1_000_000,
        }

    def _order(self, order: SpotOrder) -> dict[str, Any]:
        request = order.request
        size, remain, cancelled = self._sizes(order)
        remain_funds, cancelled_funds = self._funds(order)
        active = order.end is None
        return {
            "id": order.oid,
            "clientOid": request.client_oid,
            "symbol": order.symbol.name,
            "opType": "DEAL",
            "type": request.type,
            "side": request.side,
            "price": _number(order.price) or "0",
            "size": _number(size),
            "funds": _number(order.funds) or "0",
            "dealSize": _number(order.filled),
            "dealFunds": _number(order.deal_funds),
            "remainSize": _number(remain),
            "remainFunds": _number(remain_funds),
            "cancelledSize": _number(cancelled),
            "cancelledFunds": _number(cancelled_funds),
            "fee": _number(order.fee),
            "feeCurrency": order.symbol.quote,
            "stp": None,
            "timeInForce": request.time_in_force,
            "postOnly": request.post_only,
            "hidden": False,
            "iceberg": False,
            "visibleSize": "0",
            "cancelAfter": 0,
            "channel": "API",
            "tradeType": "TRADE",
            "cancelExist": order.end == "canceled",
            "inOrderBook": order.in_book,
            "active": active,
            "tax": "0",
            "createdAt": order.created_ns // 1_000_000,
            "lastUpdatedAt": (order.updated_ns or order.created_ns) // 1_000_000,
        }


def _integer(params: Mapping[str, str], name: str, low: int, high: int | None = None) -> int | None:
    """An integer query parameter in ``low..high``, or None when absent."""
    text = params.get(name)
    if text is None:
        return None
    if not (text.isascii() and text.isdigit()) or len(text) > 19:
        raise _BadRequest(f"{name}: must be an integer")
    value = int(text)
    if value < low or (high is not None and value > high):
        raise _BadRequest(f"{name}: must be from {low}" + (f" to {high}" if high else ""))
    return value


def _fill(fill: Fill) -> dict[str, Any]:
    return {
        "id": fill.id,
        "symbol": fill.symbol,
        "tradeId": fill.trade_id,
        "orderId": fill.oid,
        "counterOrderId": fill.counter_oid,
        "side": fill.side,
        "liquidity": fill.liquidity,
        "forceTaker": False,
        "price": _number(fill.price),
        "size": _number(fill.size),
        "funds": _number(fill.funds),
        "fee": _number(fill.fee),
        "feeRate": _number(fill.fee_rate),
        "feeCurrency": fill.fee_currency,
        "stop": "",
        "tradeType": "TRADE",
        "taxRate": "0",
        "tax": "0",
        "type": fill.order_type,
        "createdAt": fill.ts_ns // 1_000_000,
    }
