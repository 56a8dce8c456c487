"""``POST /exchange`` (and WebSocket ``post`` actions): signed actions on the simulator.

The signer is recovered from the EIP-712 phantom-agent signature under both sources (mainnet
"a", testnet "b"); the action acts for the candidate that already has an account, else for the
configured default source's candidate. Then the venue's checks in its order: expiry, the
signer's nonce, the account (funded by the faucet on first sight, or "does not exist"), the
address rate limit; then the action itself, answered in the venue's response shapes.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from mm.venues.hyperliquid.signing import SignatureError, recover_l1_signer
from mm.venues.sim.engine import OrderRequest, PlaceResult, Reject, Rejected
from mm.venues.sim.hyperliquid import wire
from mm.venues.sim.hyperliquid.info import DESERIALIZE_ERROR

if TYPE_CHECKING:
    from mm.venues.sim.venue import SimVenue

CLOID = re.compile(r"^0x[0-9a-fA-F]{32}$")
DEFAULT_OK: dict[str, Any] = {"status": "ok", "response": {"type": "default"}}


class ExchangeError(Exception):
    """A body the venue would not deserialize (HTTP 422)."""


def err(text: str) -> dict[str, Any]:
    return {"status": "err", "response": text}


def _ok(kind: str, statuses: list[Any]) -> dict[str, Any]:
    return {"status": "ok", "response": {"type": kind, "data": {"statuses": statuses}}}


def _require(condition: bool) -> None:
    if not condition:
        raise ExchangeError(DESERIALIZE_ERROR)


def _list(value: Any) -> list[Any]:
    if not isinstance(value, Sequence) or isinstance(value, str):
        raise ExchangeError(DESERIALIZE_ERROR)
    return list(value)


def _cloid(value: Any) -> str | None:
    if value is None:
        return None
    _require(isinstance(value, str) and CLOID.match(value) is not None)
    return str(value).lower()


def parse_order(wire_order: Any) -> OrderRequest:
    """An order in the venue's wire form (``a b p s r t c``) as an engine request."""
    _require(isinstance(wire_order, Mapping))
    asset, is_buy = wire_order.get("a"), wire_order.get("b")
    px, sz = wire_order.get("p"), wire_order.get("s")
    order_type = wire_order.get("t")
    _require(type(asset) is int and type(is_buy) is bool)
    _require(isinstance(px, str) and isinstance(sz, str))
    _require(isinstance(order_type, Mapping) and len(order_type) == 1)
    limit = order_type.get("limit")
    if limit is None:
        _require("trigger" in order_type)
        tif = "Trigger"
    else:
        _require(isinstance(limit, Mapping) and isinstance(limit.get("tif"), str))
        tif = limit["tif"]
    return OrderRequest(
        asset=asset,
        is_buy=is_buy,
        px=px,
        sz=sz,
        reduce_only=bool(wire_order.get("r", False)),
        tif=tif,
        cloid=_cloid(wire_order.get("c")),
    )


def _target(value: Any) -> int | str:
    if type(value) is int:
        return value
    cloid = _cloid(value)
    assert cloid is not None
    return cloid


class ExchangeHandler:
    def __init__(self, venue: SimVenue) -> None:
        self.venue = venue

    def handle(self, body: Any) -> dict[str, Any]:
        _require(isinstance(body, Mapping))
        action, nonce, signature = body.get("action"), body.get("nonce"), body.get("signature")
        _require(isinstance(action, Mapping) and isinstance(action.get("type"), str))
        _require(type(nonce) is int and isinstance(signature, Mapping))
        vault = body.get("vaultAddress")
        expires_after = body.get("expiresAfter")
        _require(vault is None or isinstance(vault, str))
        _require(expires_after is None or type(expires_after) is int)
        venue = self.venue
        now = venue.now_ms()
        if expires_after is not None and expires_after < now:
            return err(f"Action expired at {expires_after}, now {now}.")
        try:
            user = self._signer(action, nonce, signature, vault, expires_after)
        except SignatureError as error:
            return err(f"Invalid signature: {error}")
        if vault is not None:
            return err("Vault trading is not supported by the simulator.")
        nonce_error = venue.nonces.check_and_use(user, nonce, now)
        if nonce_error is not None:
            return err(nonce_error)
        if venue.engine.account(user) is None:
            if venue.config.faucet_usdc <= 0:
                return err(f"User or API Wallet {user} does not exist.")
            venue.engine.fund(user, venue.config.faucet_usdc)
        limit_error = venue.address_limits.charge_action(user, action, now / 1000)
        if limit_error is not None:
            return err(limit_error)
        try:
            return self._dispatch(user, action, now)
        finally:
            venue.publish_events()

    def _signer(
        self,
        action: Mapping[str, Any],
        nonce: int,
        signature: Mapping[str, Any],
        vault: str | None,
        expires_after: int | None,
    ) -> str:
        candidates = [
            recover_l1_signer(
                action,
                nonce,
                signature,
                vault_address=vault,
                expires_after=expires_after,
                mainnet=mainnet,
            ).lower()
            for mainnet in (True, False)
        ]
        for candidate in candidates:
            if self.venue.engine.account(candidate) is not None:
                return candidate
        return candidates[0] if self.venue.config.default_source == "mainnet" else candidates[1]

    def _dispatch(self, user: str, action: Mapping[str, Any], now: int) -> dict[str, Any]:
        kind = action["type"]
        engine = self.venue.engine
        specs = self.venue.specs
        if kind == "order":
            requests = [parse_order(order) for order in _list(action.get("orders"))]
            results = [self._place(user, request, now) for request in requests]
            return _ok("order", [wire.place_status(r, specs) for r in results])
        if kind in ("cancel", "cancelByCloid"):
            statuses: list[Any] = []
            for cancel in _list(action.get("cancels")):
                _require(isinstance(cancel, Mapping))
                if kind == "cancel":
                    asset, oid = cancel.get("a"), cancel.get("o")
                    _require(type(asset) is int and type(oid) is int)
                    rejected = engine.cancel(user, asset, oid, now)
                else:
                    asset, cloid = cancel.get("asset"), _cloid(cancel.get("cloid"))
                    _require(type(asset) is int and cloid is not None)
                    assert cloid is not None
                    rejected = engine.cancel_by_cloid(user, asset, cloid, now)
                statuses.append(
                    "success" if rejected is None else {"error": wire.error_text(rejected)}
                )
            return _ok("cancel", statuses)
        if kind == "modify":
            result = engine.modify(
                user, _target(action.get("oid")), parse_order(action.get("order")), now
            )
            if isinstance(result, Rejected):
                return err(wire.error_text(result))
            return DEFAULT_OK
        if kind == "batchModify":
            results = []
            for modify in _list(action.get("modifies")):
                _require(isinstance(modify, Mapping))
                request = parse_order(modify.get("order"))
                results.append(engine.modify(user, _target(modify.get("oid")), request, now))
            return _ok("order", [wire.place_status(r, specs) for r in results])
        if kind == "scheduleCancel":
            time = action.get("time")
            _require(time is None or type(time) is int)
            problem = engine.schedule_cancel(user, time, now)
            return DEFAULT_OK if problem is None else err(problem)
        if kind == "noop":
            return DEFAULT_OK
        raise ExchangeError(DESERIALIZE_ERROR)

    def _place(self, user: str, request: OrderRequest, now: int) -> PlaceResult:
        engine = self.venue.engine
        if self.venue.faults.config.refuse_fills and 0 <= request.asset < len(engine.specs):
            px = engine.specs[request.asset].parse_px(request.px)
            book = engine.books[request.asset]
            if px is not None and book.would_cross(request.is_buy, px):
                # The fault: an order that would take liquidity finds nothing to match.
                return Rejected(Reject.IOC_CANCEL, request.asset)
        return engine.place(user, request, now)
