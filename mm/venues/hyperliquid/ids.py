"""Hyperliquid's order and trade ids as mm's qualified ids (``mm.model.OrderId``, ``TradeId``).

The venue numbers orders (``oid``) and trades (``tid``) with integers; mm knows them as
``hyperliquid:<integer>``. This module is the only place that builds or reads that form: the
codec qualifies every id it parses, and the client and the wire take the integer back out to
cancel, modify or ask about an order. Parsing an id that is not Hyperliquid's raises
``ValueError``: an id of another venue handed to this venue is a bug, never a request.
"""

from __future__ import annotations

from mm.model import OrderId, TradeId
from mm.venues.hyperliquid.instruments import VENUE

_PREFIX = f"{VENUE}:"


def order_id(oid: int) -> OrderId:
    """mm's id of the venue's order ``oid``."""
    return OrderId(f"{_PREFIX}{int(oid)}")


def trade_id(tid: int) -> TradeId:
    """mm's id of the venue's trade ``tid``."""
    return TradeId(f"{_PREFIX}{int(tid)}")


def venue_oid(order: OrderId) -> int:
    """The venue's integer oid of mm's ``order`` id."""
    return _integer(order, "order id")


def venue_tid(trade: TradeId) -> int:
    """The venue's integer tid of mm's ``trade`` id."""
    return _integer(trade, "trade id")


def _integer(qualified: str, what: str) -> int:
    venue, sep, native = qualified.partition(":")
    if sep and venue == VENUE and native.isascii() and native.isdigit():
        return int(native)
    raise ValueError(f"not a {VENUE} {what}: {qualified!r}")
