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
  publisher, ``depth``, has published, with its sequence).

Anything else is ``404000`` "Url Not Found" (HTTP 404); a body that is not a JSON object, a
field missing or mistyped, an unknown symbol: ``400100`` (HTTP 400); an order the balance
cannot cover: ``200004`` with HTTP 200 (a business refusal in a well-formed answer). The
order changes an answered request made are kept in ``changes`` for the WebSocket face to push.

Fails: never raises for a request, whatever its shape.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from decimal import Decimal
from typing import Any, Final
from urllib.parse import parse_qsl, unquote_plus

import attrs
import orjson

from mm.venues.kucoin.signing import Credentials, check_request
from mm.venues.sim.kucoin.depth import DepthFeed
from mm.venues.sim.kucoin.spot import (
    OrderChange,
    Placed,
    Refusal,
    SpotExchange,
    SpotOrder,
    SpotOrderRequest,
)

__all__ = ["KucoinRest", "Response"]

SUCCESS: Final = "200000"
MAX_FEE_SYMBOLS: Final = 10
_BY_ID: Final = re.compile(r"/api/v1/hf/orders/([0-9a-f]{24})")
_BY_CLIENT: Final = re.compile(r"/api/v1/hf/orders/client-order/([^/]{1,40})")
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


class KucoinRest:
    """The REST endpoints over an exchange, for the accounts of ``keys`` (API key id to
    credentials; each key trades for the user ``users`` names)."""

    def __init__(
        self,
        exchange: SpotExchange,
        keys: Mapping[str, Credentials],
        users: Mapping[str, str],
        depth: DepthFeed | None = None,
    ) -> None:
        self.exchange = exchange
        self.depth = depth if depth is not None else DepthFeed(exchange.symbols.values())
        self._keys = dict(keys)
        self._users = dict(users)
        self.changes: list[OrderChange] = []

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

    # --- routing ------------------------------------------------------------------------------

    def _private_route(self, method: str, path: str) -> Any:
        exact = {
            ("POST", "/api/v1/hf/orders"): self._place,
            ("POST", "/api/v1/hf/orders/test"): self._test_order,
            ("DELETE", "/api/v1/hf/orders"): self._cancel_all,
            ("GET", "/api/v1/hf/orders/active"): self._active,
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
        by_id = _BY_ID.fullmatch(path)
        if by_id is not None and method in ("GET", "DELETE"):
            oid = by_id.group(1)
            return lambda user, params, body, now: self._by_id(method, user, oid, params, now)
        return None

    # --- orders -------------------------------------------------------------------------------

    def _request(self, body: bytes) -> SpotOrderRequest:
        try:
            fields = orjson.loads(body)
        except orjson.JSONDecodeError:
            raise _BadRequest("the body is not JSON") from None
        if type(fields) is not dict:
            raise _BadRequest("the body is not a JSON object")
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

    def _place(self, user: str, params: dict[str, str], body: bytes, now_ns: int) -> Response:
        request = self._request(body)
        result = self.exchange.place(user, request, now_ns)
        if isinstance(result, Refusal):
            return _error(400 if result.code == "400100" else 200, result.code, result.msg)
        assert isinstance(result, Placed)
        self.changes.extend(result.changes)
        return _ok({"orderId": result.oid, "clientOid": request.client_oid})

    def _test_order(self, user: str, params: dict[str, str], body: bytes, now_ns: int) -> Response:
        """Validated as an order would be, never matched or held."""
        request = self._request(body)
        refusal = self.exchange.check(request)
        if refusal is not None:
            return _error(400, refusal.code, refusal.msg)
        return _ok({"orderId": "0" * 24, "clientOid": request.client_oid})

    def _cancel_all(self, user: str, params: dict[str, str], body: bytes, now_ns: int) -> Response:
        symbol = self._symbol_name(params.get("symbol"))
        for oid in self.exchange.open_orders(user, symbol):
            self._cancel(user, oid, now_ns)
        return _ok("success")

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

    def _order(self, order: SpotOrder) -> dict[str, Any]:
        request = order.request
        size = order.size or Decimal(0)
        active = order.end is None
        remain = size - order.filled if active and order.size is not None else Decimal(0)
        cancelled = size - order.filled - remain if order.end == "canceled" else Decimal(0)
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
            "cancelledSize": _number(cancelled),
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
            "inOrderBook": order.in_book,
            "active": active,
            "tax": "0",
            "createdAt": order.created_ns // 1_000_000,
            "lastUpdatedAt": (order.updated_ns or order.created_ns) // 1_000_000,
        }
