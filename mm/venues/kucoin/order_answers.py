"""KuCoin's order requests and their answers, pure: mm's orders as the HF API's bodies, and
what ``/hf/orders/sync``, ``/hf/orders/multi/sync``, ``/hf/orders/alter`` and the order reads
(``/hf/orders/{orderId}``, ``/client-order/{clientOid}``, ``/active``) answer, as the port's
values.

Bodies (``order_body``): a limit order, its price on the symbol's ``priceIncrement`` (a buy's
rounded down, a sell's up: never dearer than meant) and its size on ``baseIncrement`` (down),
as decimal strings built with ``numbers``. Times in force: ``GTC`` and ``IOC`` are the venue's
own; mm's post-only (``ALO``) is ``GTC`` with ``postOnly`` (which the venue disables for IOC and
FOK). A market buy sized in the quote (``market_funds_body``) carries ``funds`` on
``quoteIncrement``.

Answers of the synchronous place (``SyncAnswer``): ``status`` ``open`` is a resting order;
``done`` with a ``dealSize`` is filled (an IOC that filled short is done as well: its rest was
canceled); ``done`` without a deal is an order the matching engine canceled at once, which mm
reads as refused (a post-only order that would have taken, an IOC that found nothing to take).
``/multi/sync`` answers one item per order, in order, ``success`` false with the venue's
``failMsg`` for a refused one.

Order reads (``parse_order``): ``active`` is ``OPEN``; a done order with a ``cancelledSize`` is
``CANCELED`` (the venue does not say who cancelled), else ``FILLED``. The report's ``sz`` is what
was not filled (``size - dealSize``, 0 for a filled order); the read's ``average_px`` is
``dealFunds / dealSize`` divided as decimals (``numbers.quotient``): a fill at one price
averages to exactly that price.

Fails: ``CodecError`` naming what is wrong; ``ValueError`` for an order that cannot be put on
the symbol's grid (a size that rounds to nothing).
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any, Final

import attrs

from mm.model import OpenOrder, OrderReport, OrderStatus, PlaceOrder, Side, Tif
from mm.venues.kucoin import numbers
from mm.venues.kucoin.codec import CodecError
from mm.venues.kucoin.ids import order_id
from mm.venues.kucoin.instruments import SymbolSpec

__all__ = [
    "AlterAnswer",
    "OrderRead",
    "SyncAnswer",
    "market_funds_body",
    "order_body",
    "parse_alter",
    "parse_multi_sync",
    "parse_order",
    "parse_orders",
    "parse_sync",
]

_SIDES: Final = {"buy": Side.BUY, "sell": Side.SELL}
_TIF: Final = {Tif.GTC: "GTC", Tif.IOC: "IOC", Tif.ALO: "GTC"}


def order_body(order: PlaceOrder, spec: SymbolSpec) -> dict[str, Any]:
    """The venue's body of a limit order (see the module)."""
    instrument = spec.instrument
    if instrument.symbol != order.coin:
        raise ValueError(f"{order.coin} is not {instrument.symbol}")
    px = numbers.on_grid(
        order.px, instrument.price_increment, "down" if order.side is Side.BUY else "up"
    )
    sz = numbers.on_grid(order.sz, instrument.size_increment, "down")
    if px <= 0 or sz <= 0:
        raise ValueError(f"{order.cloid}: {order.px} x {order.sz} is nothing on the grid")
    body: dict[str, Any] = {
        "clientOid": order.cloid,
        "symbol": order.coin,
        "side": order.side.value,
        "type": "limit",
        "price": numbers.wire(px),
        "size": numbers.wire(sz),
        "timeInForce": _TIF[order.tif],
    }
    if order.tif is Tif.ALO:
        body["postOnly"] = True
    return body


def market_funds_body(
    symbol: str, side: Side, funds: float | Decimal, cloid: str, spec: SymbolSpec
) -> dict[str, Any]:
    """The venue's body of a market order sized in the quote currency (``funds``)."""
    amount = numbers.on_grid(funds, spec.quote_increment, "down")
    if amount <= 0:
        raise ValueError(f"{cloid}: funds {funds} are nothing on the grid")
    return {
        "clientOid": cloid,
        "symbol": symbol,
        "side": side.value,
        "type": "market",
        "funds": numbers.wire(amount),
    }


@attrs.frozen
class SyncAnswer:
    """The venue's synchronous answer to one order: ``refused`` (its ``failMsg``) or what
    the order became (``status`` ``open`` or ``done``, sizes in the base currency)."""

    oid: str | None
    cloid: str | None
    status: str | None
    origin_size: float
    deal_size: float
    refused: str | None = None


def _number(entry: dict[str, Any], key: str) -> float:
    return float(numbers.parse(entry[key]))


def _optional_text(entry: dict[str, Any], key: str) -> str | None:
    value = entry.get(key)
    if value is not None and type(value) is not str:
        raise ValueError(f"{key}: expected a string, got {value!r}")
    return value or None


def _sync(entry: Any) -> SyncAnswer:
    if type(entry) is not dict:
        raise TypeError(f"expected an object, got {type(entry).__name__}")
    success = entry.get("success", True)
    if type(success) is not bool:
        raise ValueError(f"success: expected true or false, got {success!r}")
    if not success:
        reason = entry.get("failMsg")
        return SyncAnswer(
            None,
            _optional_text(entry, "clientOid"),
            None,
            0.0,
            0.0,
            reason if type(reason) is str and reason else "refused (no reason given)",
        )
    oid = entry["orderId"]
    order_id(oid)  # (an id of the venue's form, or ValueError)
    status = entry["status"]
    if status not in ("open", "done"):
        raise ValueError(f"unknown status {status!r}")
    return SyncAnswer(
        oid,
        _optional_text(entry, "clientOid"),
        status,
        _number(entry, "originSize"),
        _number(entry, "dealSize"),
    )


def parse_sync(data: Any) -> SyncAnswer:
    """The ``data`` of ``POST /api/v1/hf/orders/sync``."""
    try:
        return _sync(data)
    except (KeyError, TypeError, ValueError) as error:
        raise CodecError(f"malformed order answer: {type(error).__name__}: {error}") from None


def parse_multi_sync(data: Any, count: int) -> list[SyncAnswer]:
    """The ``data`` of ``POST /api/v1/hf/orders/multi/sync`` for ``count`` orders: one answer
    each, in request order (another number of answers maps onto no order: ``CodecError``)."""
    try:
        if type(data) is not list:
            raise TypeError(f"expected a list, got {type(data).__name__}")
        if len(data) != count:
            raise ValueError(f"{len(data)} answers for {count} orders")
        return [_sync(entry) for entry in data]
    except (KeyError, TypeError, ValueError) as error:
        raise CodecError(f"malformed batch answer: {type(error).__name__}: {error}") from None


@attrs.frozen
class AlterAnswer:
    """``/hf/orders/alter``'s answer: the new order's id, and the client id it carries."""

    new_oid: str
    cloid: str | None


def parse_alter(data: Any) -> AlterAnswer:
    """The ``data`` of ``POST /api/v1/hf/orders/alter``."""
    try:
        if type(data) is not dict:
            raise TypeError(f"expected an object, got {type(data).__name__}")
        new_oid = data["newOrderId"]
        order_id(new_oid)
        return AlterAnswer(new_oid, _optional_text(data, "clientOid"))
    except (KeyError, TypeError, ValueError) as error:
        raise CodecError(f"malformed modify answer: {type(error).__name__}: {error}") from None


@attrs.frozen
class OrderRead:
    """One order as the venue's order reads list it."""

    report: OrderReport
    open_order: OpenOrder
    deal_size: float
    deal_funds: float  # the quote currency spent or received
    # deal_funds / deal_size, worked out in decimals (None before anything traded).
    average_px: float | None = None


def _millis(entry: dict[str, Any], key: str) -> int:
    value = entry[key]
    if type(value) is not int or value < 0:
        raise ValueError(f"{key}: not a time: {value!r}")
    return value


def _order(entry: Any) -> OrderRead:
    if type(entry) is not dict:
        raise TypeError(f"expected an object, got {type(entry).__name__}")
    side = _SIDES.get(entry["side"])
    if side is None:
        raise ValueError(f"unknown side {entry['side']!r}")
    active = entry["active"]
    if type(active) is not bool:
        raise ValueError(f"active: expected true or false, got {active!r}")
    size, deal = _number(entry, "size"), _number(entry, "dealSize")
    cancelled = _number(entry, "cancelledSize")
    if active:
        status, word = OrderStatus.OPEN, "open"
    elif cancelled > 0:
        status, word = OrderStatus.CANCELED, "canceled"
    else:
        status, word = OrderStatus.FILLED, "filled"
    remaining = 0.0 if status is OrderStatus.FILLED else max(size - deal, 0.0)
    oid = order_id(entry["id"])
    cloid = _optional_text(entry, "clientOid")
    created = _millis(entry, "createdAt")
    px = _number(entry, "price")
    symbol = entry["symbol"]
    if type(symbol) is not str or not symbol:
        raise ValueError(f"symbol: expected a string, got {symbol!r}")
    post_only = entry.get("postOnly") is True
    tif = {"GTC": Tif.GTC, "IOC": Tif.IOC}.get(entry.get("timeInForce") or "")
    report = OrderReport(
        coin=symbol,
        side=side,
        px=px,
        sz=remaining,
        orig_sz=size,
        oid=oid,
        cloid=cloid,
        time_ms=created,
        status=status,
        status_time_ms=_millis(entry, "lastUpdatedAt"),
        venue_status=word,
    )
    open_order = OpenOrder(
        coin=symbol,
        side=side,
        px=px,
        sz=remaining,
        orig_sz=size,
        oid=oid,
        cloid=cloid,
        time_ms=created,
        tif=Tif.ALO if post_only else tif,
    )
    funds = numbers.parse(entry["dealFunds"])
    dealt = numbers.parse(entry["dealSize"])
    average = numbers.quotient(funds, dealt) if dealt else None
    return OrderRead(report, open_order, deal, float(funds), average)


def parse_order(data: Any) -> OrderRead:
    """The ``data`` of ``GET /api/v1/hf/orders/{orderId}`` (or ``/client-order/{clientOid}``)."""
    try:
        return _order(data)
    except (KeyError, TypeError, ValueError) as error:
        raise CodecError(f"malformed order: {type(error).__name__}: {error}") from None


def parse_orders(data: Any) -> list[OrderRead]:
    """The ``data`` of ``GET /api/v1/hf/orders/active``."""
    try:
        if type(data) is not list:
            raise TypeError(f"expected a list, got {type(data).__name__}")
        return [_order(entry) for entry in data]
    except (KeyError, TypeError, ValueError) as error:
        raise CodecError(f"malformed orders: {type(error).__name__}: {error}") from None
