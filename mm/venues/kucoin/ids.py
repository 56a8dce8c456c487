"""KuCoin's order and trade ids as mm's qualified ids (``mm.model.OrderId``, ``TradeId``).

The venue names orders with 24 hexadecimal digits (``orderId``) and trades with digits
(``tradeId``: a string on the order channel, an integer in ``/hf/fills``); mm knows them as
``kucoin:<the venue's id>``. This module is the only place that builds or reads that form.
Parsing an id that is not KuCoin's raises ``ValueError``: an id of another venue handed to this
venue is a bug, never a request.
"""

from __future__ import annotations

from typing import Final

from mm.model import OrderId, TradeId

__all__ = ["VENUE", "order_id", "trade_id", "venue_oid", "venue_tid"]

VENUE: Final = "kucoin"
_PREFIX: Final = f"{VENUE}:"


def _native(value: object, what: str) -> str:
    text = str(value) if type(value) is int and value >= 0 else value
    if type(text) is not str or not text or not text.isascii() or not text.isalnum():
        raise ValueError(f"not a {VENUE} {what}: {value!r}")
    return text


def order_id(oid: str) -> OrderId:
    """mm's id of the venue's order ``oid``."""
    return OrderId(_PREFIX + _native(oid, "order id"))


def trade_id(tid: str | int) -> TradeId:
    """mm's id of the venue's trade ``tid`` (a string of digits, or the integer of /hf/fills:
    the same trade either way)."""
    return TradeId(_PREFIX + _native(tid, "trade id"))


def venue_oid(order: OrderId) -> str:
    """The venue's order id of mm's ``order`` id."""
    return _unqualified(order, "order id")


def venue_tid(trade: TradeId) -> str:
    """The venue's trade id of mm's ``trade`` id."""
    return _unqualified(trade, "trade id")


def _unqualified(qualified: str, what: str) -> str:
    venue, sep, native = qualified.partition(":")
    if sep and venue == VENUE and native and native.isascii() and native.isalnum():
        return native
    raise ValueError(f"not a {VENUE} {what}: {qualified!r}")
