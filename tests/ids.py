"""Hyperliquid-qualified order and trade ids for tests: ``hl_oid(11)`` is what the venue's codec
makes of its oid 11 (``mm.venues.hyperliquid.ids``), so tests build ids the way the adapter does
instead of spelling the qualified form out."""

from __future__ import annotations

from mm.model import OrderId, TradeId
from mm.venues.hyperliquid.ids import order_id, trade_id, venue_oid


def hl_oid(n: int) -> OrderId:
    """The id of Hyperliquid's order ``n``."""
    return order_id(n)


def hl_tid(n: int) -> TradeId:
    """The id of Hyperliquid's trade ``n``."""
    return trade_id(n)


def hl_number(order: OrderId) -> int:
    """Hyperliquid's own number of the order ``order`` (for tests that count oids up)."""
    return venue_oid(order)
