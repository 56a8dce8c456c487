"""``POST /info`` (and WebSocket ``post`` info requests): read-only queries on the simulator.

Each handler reads the engine and answers in the venue's shape. A request the venue would not
deserialize gets ``InfoError`` (HTTP 422, or a WebSocket post's error response) with the
venue's text and, after a colon, the reason, as the venue's HTTP framework words it
(``"Failed to deserialize the JSON body into the target type: type: expected a string, got
array"``; the venue itself sends the first part only). Every field is checked for its type
before it is used, so no JSON value, however shaped, raises anything else.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from itertools import islice
from typing import TYPE_CHECKING, Any

from mm.venues.sim import aggregate
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
FILLS_PAGE = 2000  # the most fills a userFills or userFillsByTime answer lists


class InfoError(Exception):
    """The request cannot be answered; the message is the venue's reply text."""


def deserialize_error(reason: str) -> str:
    """The venue's 422 text for a body it cannot deserialize, with the reason."""
    return f"{DESERIALIZE_ERROR}: {reason}"


def json_type(value: Any) -> str:
    """A JSON value's type as JSON names it, for error texts (never the value itself)."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    return "array" if isinstance(value, list | tuple) else "object"


def _refuse(reason: str) -> InfoError:
    return InfoError(deserialize_error(reason))


def _user(request: Mapping[str, Any]) -> str:
    user = request.get("user")
    if not isinstance(user, str) or not user.startswith("0x") or len(user) != 42:
        raise _refuse("user: expected an address, 0x and 40 hex digits")
    return user.lower()


def _coin(venue: SimVenue, request: Mapping[str, Any]) -> int:
    coin = request.get("coin")
    if not isinstance(coin, str):
        raise _refuse(f"coin: expected a string, got {json_type(coin)}")
    spec = venue.engine.by_name.get(coin)
    if spec is None:
        raise _refuse("coin: unknown coin")
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
    """The book, aggregated when ``nSigFigs`` (and ``mantissa``) ask for it."""
    asset = _coin(venue, request)
    n_sig_figs, mantissa = request.get("nSigFigs"), request.get("mantissa")
    problem = aggregate.check(n_sig_figs, mantissa)
    if problem is not None:
        raise _refuse(problem)
    return venue.l2_snapshot(asset, n_sig_figs, mantissa)


def open_orders(venue: SimVenue, request: Mapping[str, Any]) -> Any:
    specs = venue.specs
    return [wire.open_order(o, specs[o.asset]) for o in venue.engine.open_orders(_user(request))]


def frontend_open_orders(venue: SimVenue, request: Mapping[str, Any]) -> Any:
    specs = venue.specs
    orders = venue.engine.open_orders(_user(request))
    return [wire.frontend_order(o, specs[o.asset]) for o in orders]


def clearinghouse_state(venue: SimVenue, request: Mapping[str, Any]) -> Any:
    return venue.clearinghouse_state(_user(request))


def user_fills(venue: SimVenue, request: Mapping[str, Any]) -> Any:
    """The newest fills first, up to a page (only those are put in the wire's shape)."""
    fills = venue.engine.fills.get(_user(request), ())
    specs = venue.specs
    return [wire.user_fill(f, specs[f.asset]) for f in islice(reversed(fills), FILLS_PAGE)]


def user_fills_by_time(venue: SimVenue, request: Mapping[str, Any]) -> Any:
    start = request.get("startTime")
    end = request.get("endTime")
    if type(start) is not int or (end is not None and type(end) is not int):
        raise _refuse("startTime and endTime: expected integers (milliseconds)")
    # The oldest first, and only those in the window put in the wire's shape: a user's whole
    # history (up to FILLS_PER_USER) was formatted for each request, a twentieth of a long run.
    specs = venue.specs
    window: list[dict[str, Any]] = []
    for fill in venue.engine.fills.get(_user(request), ()):
        if fill.time >= start and (end is None or fill.time <= end):
            window.append(wire.user_fill(fill, specs[fill.asset]))
            if len(window) == FILLS_PAGE:
                break
    return window


def order_status(venue: SimVenue, request: Mapping[str, Any]) -> Any:
    target = request.get("oid")
    if isinstance(target, str) and not target.startswith("0x"):
        target = int(target) if target.isascii() and target.isdigit() else target
    if type(target) is not int and not isinstance(target, str):
        raise _refuse(f"oid: expected an order id or a cloid, got {json_type(target)}")
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


def user_role(venue: SimVenue, request: Mapping[str, Any]) -> Any:
    """What an address is: ``user``, ``agent`` (with its ``user``), ``subAccount`` (with its
    ``master``), ``vault`` or ``missing``."""
    user = _user(request)
    has_account = venue.engine.account(user) is not None
    return venue.identities.role(user, has_account=has_account, now_ms=venue.now_ms())


def extra_agents(venue: SimVenue, request: Mapping[str, Any]) -> Any:
    """A master's named API wallets: ``name``, ``address``, ``validUntil``."""
    agents = venue.identities.named_agents(_user(request), venue.now_ms())
    return [
        {"name": agent.name, "address": agent.address, "validUntil": agent.valid_until}
        for agent in agents
    ]


def sub_accounts(venue: SimVenue, request: Mapping[str, Any]) -> Any:
    """A master's sub-accounts with their clearinghouse states; null when it has none."""
    subs = venue.identities.subs_of(_user(request))
    if not subs:
        return None
    return [
        {
            "name": sub.name,
            "subAccountUser": sub.address,
            "master": sub.master,
            "clearinghouseState": venue.clearinghouse_state(sub.address),
            "spotState": {"balances": []},
        }
        for sub in subs
    ]


def vault_details(venue: SimVenue, request: Mapping[str, Any]) -> Any:
    """A vault's details (its leader, its equity as the one follower); null for no vault."""
    address = request.get("vaultAddress")
    if not isinstance(address, str) or not address.startswith("0x") or len(address) != 42:
        raise _refuse("vaultAddress: expected an address, 0x and 40 hex digits")
    vault = venue.identities.vaults.get(address.lower())
    if vault is None:
        return None
    account = venue.engine.account(vault.address)
    equity = account.account_value(venue.specs, venue.engine.marks()) if account else 0.0
    days = (venue.now_ms() - vault.created_ms) // 86_400_000
    leader = {
        "user": vault.leader,
        "vaultEquity": wire.usd(equity),
        "pnl": "0.0",
        "allTimePnl": "0.0",
        "daysFollowing": days,
        "vaultEntryTime": vault.created_ms,
        "lockupUntil": vault.created_ms,
    }
    return {
        "name": vault.name,
        "vaultAddress": vault.address,
        "leader": vault.leader,
        "description": vault.description,
        "portfolio": [],
        "apr": 0.0,
        "followerState": None,
        "leaderFraction": 1.0,
        "leaderCommission": 0.0,
        "followers": [leader],
        "maxDistributable": 0.0,
        "maxWithdrawable": round(venue.withdrawable(vault.address), 6),
        "isClosed": False,
        "relationship": {"type": "normal"},
        "allowDeposits": True,
        "alwaysCloseOnWithdraw": False,
    }


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
    "userRole": user_role,
    "extraAgents": extra_agents,
    "subAccounts": sub_accounts,
    "vaultDetails": vault_details,
}


def handle_info(venue: SimVenue, request: Any) -> Any:
    """The answer to an info request; ``InfoError`` when the venue would not deserialize it."""
    if not isinstance(request, Mapping):
        raise _refuse(f"expected an object, got {json_type(request)}")
    kind = request.get("type")
    if not isinstance(kind, str):
        raise _refuse(f"type: expected a string, got {json_type(kind)}")
    handler = HANDLERS.get(kind)
    if handler is None:
        raise _refuse(f"type: unknown info type {kind[:40]!r}")
    return handler(venue, request)
