"""Engine values in Hyperliquid's JSON shapes, and the venue's wording of rejections.

Pure formatting: field names, orders and number styles follow the venue's recorded responses
(``tests/fixtures/hyperliquid``). Hashes are derived from trade ids, so a seeded run
prints the same tape every time.
"""

from __future__ import annotations

import hashlib
from typing import Any

from mm.venues.sim.assets import AssetSpec
from mm.venues.sim.book import Order
from mm.venues.sim.engine import Filled, OrderRecord, PlaceResult, Reject, Rejected, Resting
from mm.venues.sim.events import FundingPayment, Trade, UserFill

ZERO_HASH = "0x" + "0" * 64

REJECT_TEXT = {
    Reject.TICK: "Price must be divisible by tick size.",
    Reject.INVALID_SIZE: "Order has invalid size.",
    Reject.ZERO_SIZE: "Order has zero size.",
    # The docs give the rule, not its words, and no recording or issue we could find quotes the
    # venue's rejection: this wording is ours, in the style of its other texts.
    Reject.OPEN_ORDER_LIMIT: "Too many open orders.",
    Reject.MIN_NOTIONAL: "Order must have minimum value of $10.",
    Reject.MARGIN: "Insufficient margin to place order.",
    Reject.REDUCE_ONLY: "Reduce only order would increase position.",
    Reject.BAD_ALO: "Post only order would have immediately matched, bbo was {detail}.",
    Reject.IOC_CANCEL: "Order could not immediately match against any resting orders.",
    Reject.DUPLICATE_CLOID: "Duplicate cloid among open orders.",
    Reject.BAD_ASSET: "Invalid asset.",
    Reject.BAD_TIF: "Invalid time in force {detail}.",
    Reject.MISSING_ORDER: "Order was never placed, already canceled, or filled.",
    Reject.CANNOT_MODIFY: "Cannot modify canceled or filled order",
}


def usd(value: float) -> str:
    """A USDC amount as the venue prints it: up to 6 decimals, no trailing zeros."""
    text = f"{value:.6f}".rstrip("0")
    if text.endswith("."):
        text += "0"
    return "0.0" if text in ("-0.0", "-0") else text


def error_text(rejected: Rejected) -> str:
    """The venue's message for an order-level rejection, with its ``asset=N`` suffix."""
    text = REJECT_TEXT[rejected.reason].format(detail=rejected.detail)
    return f"{text} asset={rejected.asset}"


def place_status(result: PlaceResult, specs: list[AssetSpec]) -> dict[str, Any]:
    if isinstance(result, Resting):
        resting: dict[str, Any] = {"oid": result.oid}
        if result.cloid is not None:
            resting["cloid"] = result.cloid
        return {"resting": resting}
    if isinstance(result, Filled):
        spec = specs[result.asset]
        filled: dict[str, Any] = {
            "totalSz": spec.sz_str(result.total_sz),
            "avgPx": _float_px(result.avg_px, spec),
            "oid": result.oid,
        }
        if result.cloid is not None:
            filled["cloid"] = result.cloid
        return {"filled": filled}
    return {"error": error_text(result)}


def _float_px(price: float, spec: AssetSpec) -> str:
    text = f"{price:.{spec.px_decimals + 2}f}".rstrip("0")
    return text + "0" if text.endswith(".") else text


def side(is_buy: bool) -> str:
    return "B" if is_buy else "A"


def open_order(order: Order, spec: AssetSpec) -> dict[str, Any]:
    """An entry of ``openOrders``."""
    entry: dict[str, Any] = {
        "coin": spec.name,
        "limitPx": spec.px_str(order.px),
        "oid": order.oid,
        "side": side(order.is_buy),
        "sz": spec.sz_str(order.sz),
        "timestamp": order.timestamp,
    }
    if order.cloid is not None:
        entry["cloid"] = order.cloid
    return entry


def frontend_order(order: Order, spec: AssetSpec) -> dict[str, Any]:
    """An entry of ``frontendOpenOrders`` and the ``order`` of status and history queries."""
    return {
        "coin": spec.name,
        "side": side(order.is_buy),
        "limitPx": spec.px_str(order.px),
        "sz": spec.sz_str(order.sz),
        "oid": order.oid,
        "timestamp": order.timestamp,
        "triggerCondition": "N/A",
        "isTrigger": False,
        "triggerPx": "0.0",
        "children": [],
        "isPositionTpsl": False,
        "reduceOnly": order.reduce_only,
        "orderType": "Limit",
        "origSz": spec.sz_str(order.orig_sz),
        "tif": order.tif,
        "cloid": order.cloid,
    }


def order_with_status(record: OrderRecord, spec: AssetSpec) -> dict[str, Any]:
    return {
        "order": frontend_order(record.order, spec),
        "status": record.status,
        "statusTimestamp": record.status_time,
    }


def order_update(order: Order, status: str, time: int, spec: AssetSpec) -> dict[str, Any]:
    """An entry of the ``orderUpdates`` channel."""
    core: dict[str, Any] = {
        "coin": spec.name,
        "side": side(order.is_buy),
        "limitPx": spec.px_str(order.px),
        "sz": spec.sz_str(order.sz),
        "oid": order.oid,
        "timestamp": order.timestamp,
        "origSz": spec.sz_str(order.orig_sz),
    }
    if order.cloid is not None:
        core["cloid"] = order.cloid
    return {"order": core, "status": status, "statusTimestamp": time}


def trade_hash(tid: int) -> str:
    return "0x" + hashlib.sha256(tid.to_bytes(8, "big")).hexdigest()


def user_fill(fill: UserFill, spec: AssetSpec) -> dict[str, Any]:
    entry: dict[str, Any] = {
        "coin": spec.name,
        "px": spec.px_str(fill.px),
        "sz": spec.sz_str(fill.sz),
        "side": side(fill.is_buy),
        "time": fill.time,
        "startPosition": spec.sz_str(fill.start_position),
        "dir": fill.direction,
        "closedPnl": usd(fill.closed_pnl),
        "hash": trade_hash(fill.tid),
        "oid": fill.oid,
        "crossed": fill.crossed,
        "fee": usd(fill.fee),
        "tid": fill.tid,
        "feeToken": "USDC",
        "twapId": None,  # the venue sends it on every fill; the simulator has no TWAPs
    }
    if fill.cloid is not None:
        entry["cloid"] = fill.cloid
    return entry


def rate(value: float) -> str:
    """A funding rate as the venue prints it: plain decimals, no exponent (``"0.0000125"``)."""
    text = f"{value:.12f}".rstrip("0")
    if text.endswith("."):
        text += "0"
    return "0.0" if text in ("-0.0", "-0") else text


def user_funding(payment: FundingPayment, spec: AssetSpec) -> dict[str, Any]:
    """A ``WsUserFunding``: the ``funding`` of a ``user`` (userEvents) frame."""
    return {
        "time": payment.time,
        "coin": spec.name,
        "usdc": usd(payment.usdc),
        "szi": spec.sz_str(payment.szi),
        "fundingRate": rate(payment.rate),
    }


def trade(event: Trade, spec: AssetSpec) -> dict[str, Any]:
    return {
        "coin": spec.name,
        "side": side(event.taker_is_buy),
        "px": spec.px_str(event.px),
        "sz": spec.sz_str(event.sz),
        "time": event.time,
        "hash": trade_hash(event.tid),
        "tid": event.tid,
        "users": [event.buyer, event.seller],
    }


def book_levels(levels: list[tuple[int, int, int]], spec: AssetSpec) -> list[dict[str, Any]]:
    return [{"px": spec.px_str(px), "sz": spec.sz_str(sz), "n": n} for px, sz, n in levels]
