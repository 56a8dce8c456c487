"""``POST /info`` (and WebSocket ``post`` info requests): read-only queries on the simulator.

Each handler reads the engine and answers in the venue's shape. A request the venue would not
deserialize gets ``InfoError`` (HTTP 422 with the venue's text).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from mm.venues.sim.hyperliquid import wire

if TYPE_CHECKING:
    from mm.venues.sim.venue import SimVenue

DESERIALIZE_ERROR = "Failed to deserialize the JSON body into the target type"
USDC_TOKEN = {
    "name": "USDC",
    "szDecimals": 8,
    "weiDecimals": 8,
    "index": 0,
    "tokenId": "0x6d1e7cde53ba9467b783cb7c530ce054",
    "isCanonical": True,
    "evmContract": None,
    "fullName": None,
}
L2_DEPTH = 20


class InfoError(Exception):
    """The request cannot be answered; the message is the venue's reply text."""


def _user(request: Mapping[str, Any]) -> str:
    user = request.get("user")
    if not isinstance(user, str) or not user.startswith("0x") or len(user) != 42:
        raise InfoError(DESERIALIZE_ERROR)
    return user.lower()


def _coin(venue: SimVenue, request: Mapping[str, Any]) -> int:
    spec = venue.engine.by_name.get(request.get("coin", ""))
    if spec is None:
        raise InfoError(DESERIALIZE_ERROR)
    return spec.index


def meta(venue: SimVenue, request: Mapping[str, Any]) -> Any:
    return {
        "universe": [
            {"szDecimals": s.sz_decimals, "name": s.name, "maxLeverage": s.max_leverage}
            for s in venue.specs
        ]
    }


def spot_meta(venue: SimVenue, request: Mapping[str, Any]) -> Any:
    return {"universe": [], "tokens": [USDC_TOKEN]}


def all_mids(venue: SimVenue, request: Mapping[str, Any]) -> Any:
    return venue.mids()


def l2_book(venue: SimVenue, request: Mapping[str, Any]) -> Any:
    return venue.l2_snapshot(_coin(venue, request))


def open_orders(venue: SimVenue, request: Mapping[str, Any]) -> Any:
    specs = venue.specs
    return [wire.open_order(o, specs[o.asset]) for o in venue.engine.open_orders(_user(request))]


def frontend_open_orders(venue: SimVenue, request: Mapping[str, Any]) -> Any:
    specs = venue.specs
    orders = venue.engine.open_orders(_user(request))
    return [wire.frontend_order(o, specs[o.asset]) for o in orders]


def clearinghouse_state(venue: SimVenue, request: Mapping[str, Any]) -> Any:
    return venue.clearinghouse_state(_user(request))


def _fills(venue: SimVenue, user: str) -> list[dict[str, Any]]:
    fills = venue.engine.fills.get(user, ())
    return [wire.user_fill(f, venue.specs[f.asset]) for f in reversed(fills)]


def user_fills(venue: SimVenue, request: Mapping[str, Any]) -> Any:
    return _fills(venue, _user(request))[:2000]


def user_fills_by_time(venue: SimVenue, request: Mapping[str, Any]) -> Any:
    start = request.get("startTime")
    end = request.get("endTime")
    if not isinstance(start, int) or (end is not None and not isinstance(end, int)):
        raise InfoError(DESERIALIZE_ERROR)
    fills = [
        fill
        for fill in _fills(venue, _user(request))
        if fill["time"] >= start and (end is None or fill["time"] <= end)
    ]
    return list(reversed(fills))[:2000]


def order_status(venue: SimVenue, request: Mapping[str, Any]) -> Any:
    target = request.get("oid")
    if isinstance(target, str) and not target.startswith("0x"):
        target = int(target) if target.isdigit() else target
    if not isinstance(target, int | str):
        raise InfoError(DESERIALIZE_ERROR)
    record = venue.engine.find_record(_user(request), target)
    if record is None:
        return {"status": "unknownOid"}
    spec = venue.specs[record.order.asset]
    return {"status": "order", "order": wire.order_with_status(record, spec)}


def historical_orders(venue: SimVenue, request: Mapping[str, Any]) -> Any:
    user = _user(request)
    engine = venue.engine
    records = [engine.records[oid] for oid in engine.history.get(user, ()) if oid in engine.records]
    return [wire.order_with_status(r, venue.specs[r.order.asset]) for r in reversed(records)]


def user_rate_limit(venue: SimVenue, request: Mapping[str, Any]) -> Any:
    return venue.address_limits.state(_user(request))


HANDLERS: dict[str, Callable[[SimVenue, Mapping[str, Any]], Any]] = {
    "meta": meta,
    "spotMeta": spot_meta,
    "allMids": all_mids,
    "l2Book": l2_book,
    "openOrders": open_orders,
    "frontendOpenOrders": frontend_open_orders,
    "clearinghouseState": clearinghouse_state,
    "userFills": user_fills,
    "userFillsByTime": user_fills_by_time,
    "orderStatus": order_status,
    "historicalOrders": historical_orders,
    "userRateLimit": user_rate_limit,
}


def handle_info(venue: SimVenue, request: Any) -> Any:
    if not isinstance(request, Mapping):
        raise InfoError(DESERIALIZE_ERROR)
    handler = HANDLERS.get(request.get("type", ""))
    if handler is None:
        raise InfoError(DESERIALIZE_ERROR)
    return handler(venue, request)
