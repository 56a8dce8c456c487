"""``POST /exchange`` (and WebSocket ``post`` actions): signed actions on the simulator.

The signer is recovered from the signature as the venue of one network recovers it
(``sim.network``: the phantom agent's source "a" or "b" for an L1 action, the EIP-712
``hyperliquidChain`` for a user-signed one): a signature for the other network recovers to an
unrelated address, which does not exist. That, and the body's checks, is the API server's part
on receipt (``ExchangeHandler.accept``); the action then waits for its block
(``mm.venues.sim.commits``), and when the block is committed the venue's checks run in its
order: expiry (``expiresAfter`` against the commit time), whose account the action acts on
(``mm.venues.sim.identities``: the signer's own, its master's when it is an approved API wallet,
a sub-account's or vault's with ``vaultAddress``; else the venue's refusal text), the signer's
nonce (an API wallet has its own nonces), the acting account's address rate limit; then the
batch's pre-validation (``prevalidate``: an invalid asset, the post-only period, answered with
one error status for the whole batch); then the action itself, answered in the venue's response
shapes. Nobody is funded here: an account exists once the faucet (``POST /sim/fund``, ``mm sim
--fund``) or a transfer credits it.

A body the venue would not deserialize (a field missing or of the wrong type, an unknown
action) raises ``ExchangeError`` with the venue's 422 text and the reason
(``mm.venues.sim.hyperliquid.info.deserialize_error``). Every field is checked for its type
before it is used, so no JSON value, however shaped, raises anything else.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from functools import partial
from typing import TYPE_CHECKING, Any, cast

from mm.venues.hyperliquid.signing import (
    APPROVE_AGENT,
    SignatureError,
    recover_l1_signer,
    recover_user_signer,
)
from mm.venues.sim.commits import Accepted
from mm.venues.sim.engine import OrderRequest, PlaceResult, Reject, Rejected
from mm.venues.sim.hyperliquid import management, prevalidate, wire
from mm.venues.sim.hyperliquid.info import deserialize_error, json_type
from mm.venues.sim.identities import MUST_DEPOSIT, VAULT_MAY_NOT, Refused

if TYPE_CHECKING:
    from mm.venues.sim.venue import SimVenue

CLOID = re.compile(r"^0x[0-9a-fA-F]{32}$")
ADDRESS = re.compile(r"0x[0-9a-fA-F]{40}")
U64 = 1 << 64
_MISSING: Any = object()
Answer = dict[str, Any]
DEFAULT_OK: Answer = {"status": "ok", "response": {"type": "default"}}


class ExchangeError(Exception):
    """A body the venue would not deserialize (HTTP 422)."""


def err(text: str) -> dict[str, Any]:
    return {"status": "err", "response": text}


def _ok(kind: str, statuses: list[Any]) -> dict[str, Any]:
    return {"status": "ok", "response": {"type": kind, "data": {"statuses": statuses}}}


def _refused(kind: str, text: str) -> dict[str, Any]:
    """A batch refused as a whole: one error status, whatever the number of requests."""
    return _ok(kind, [{"error": text}])


def _require(condition: bool, reason: str) -> None:
    if not condition:
        raise _invalid(reason)


def _invalid(reason: str) -> ExchangeError:
    """The 422 for ``reason``. A reason that names what was sent (``_got``) is built only once
    the check has failed: each order of a batch goes through several checks, and formatting
    every reason ahead of its check was a tenth of the simulator's time on an order."""
    return ExchangeError(deserialize_error(reason))


def _got(value: Any) -> str:
    """What was sent instead, for a reason: "missing" or the JSON type."""
    return "missing" if value is _MISSING else f"got {json_type(value)}"


def _object(value: Any, path: str) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise _invalid(f"{path}: expected an object, {_got(value)}")
    return cast(Mapping[str, Any], value)


def _list(value: Any, path: str) -> list[Any]:
    if not isinstance(value, list):
        raise _invalid(f"{path}: expected an array, {_got(value)}")
    return list(value)


def _cloid(value: Any, path: str) -> str | None:
    if value is None or value is _MISSING:
        return None
    if not isinstance(value, str) or CLOID.match(value) is None:
        raise _invalid(f"{path}: expected a cloid, 0x and 32 hex digits")
    return value.lower()


def parse_order(wire_order: Any, path: str = "order") -> OrderRequest:
    """An order in the venue's wire form (``a b p s r t c``) as an engine request."""
    order = _object(wire_order, path)
    asset, is_buy = order.get("a", _MISSING), order.get("b", _MISSING)
    px, sz = order.get("p", _MISSING), order.get("s", _MISSING)
    reduce_only = order.get("r", False)
    order_type = order.get("t", _MISSING)
    if type(asset) is not int:
        raise _invalid(f"{path}.a: expected an asset index (integer), {_got(asset)}")
    if type(is_buy) is not bool:
        raise _invalid(f"{path}.b: expected a boolean, {_got(is_buy)}")
    if not isinstance(px, str):
        raise _invalid(f"{path}.p: expected a decimal string, {_got(px)}")
    if not isinstance(sz, str):
        raise _invalid(f"{path}.s: expected a decimal string, {_got(sz)}")
    if type(reduce_only) is not bool:
        raise _invalid(f"{path}.r: expected a boolean, {_got(reduce_only)}")
    if not isinstance(order_type, Mapping) or len(order_type) != 1:
        raise _invalid(f"{path}.t: expected an object with one of limit or trigger")
    limit = order_type.get("limit")
    if limit is None:
        if "trigger" not in order_type:
            raise _invalid(f"{path}.t: expected one of limit or trigger")
        tif = "Trigger"
    else:
        if not isinstance(limit, Mapping) or not isinstance(limit.get("tif"), str):
            raise _invalid(f"{path}.t.limit.tif: expected a string")
        tif = limit["tif"]
    return OrderRequest(
        asset=asset,
        is_buy=is_buy,
        px=px,
        sz=sz,
        reduce_only=reduce_only,
        tif=tif,
        cloid=_cloid(order.get("c"), path + ".c"),
    )


def _cancels(action: Mapping[str, Any]) -> list[Any]:
    return _list(action.get("cancels", _MISSING), "cancels")


def _cancel(entry: Any, index: int) -> tuple[int, int]:
    """One entry of a ``cancel`` action: (asset, oid)."""
    path = f"cancels[{index}]"
    cancel = _object(entry, path)
    asset, oid = cancel.get("a", _MISSING), cancel.get("o", _MISSING)
    if type(asset) is not int:
        raise _invalid(f"{path}.a: expected an integer, {_got(asset)}")
    if type(oid) is not int:
        raise _invalid(f"{path}.o: expected an integer, {_got(oid)}")
    return asset, oid


def _cancel_by_cloid(entry: Any, index: int) -> tuple[int, str]:
    """One entry of a ``cancelByCloid`` action: (asset, cloid)."""
    path = f"cancels[{index}]"
    cancel = _object(entry, path)
    asset = cancel.get("asset", _MISSING)
    if type(asset) is not int:
        raise _invalid(f"{path}.asset: expected an integer, {_got(asset)}")
    cloid = _cloid(cancel.get("cloid", _MISSING), f"{path}.cloid")
    _require(cloid is not None, f"{path}.cloid: missing")
    assert cloid is not None
    return asset, cloid


def _cancel_statuses(results: list[Rejected | None]) -> Answer:
    statuses = ["success" if r is None else {"error": wire.error_text(r)} for r in results]
    return _ok("cancel", statuses)


def _target(value: Any, path: str) -> int | str:
    """The order a modify names: its oid or its cloid."""
    if type(value) is int:
        return value
    if not isinstance(value, str) or CLOID.match(value) is None:
        raise _invalid(
            f"{path}: expected an order id (integer) or a cloid (0x and 32 hex digits), "
            f"{_got(value)}"
        )
    return str(value).lower()


class ExchangeHandler:
    def __init__(self, venue: SimVenue) -> None:
        self.venue = venue

    def handle(self, body: Any) -> dict[str, Any]:
        """The answer to an ``/exchange`` body, carried out at once (no commit delay): for a
        caller that needs no block, a test of the request checks say. ``ExchangeError`` when
        the body would not deserialize."""
        accepted = self.accept(body)
        return accepted.commit() if isinstance(accepted, Accepted) else accepted

    def accept(self, body: Any) -> Accepted | Answer:
        """What the API server does with an ``/exchange`` body on receipt: check that it
        deserializes (``ExchangeError`` when not) and recover its signer, then hand back the
        action to commit (``Accepted``), or the venue's error when the signature is unusable.
        The checks the venue makes when it executes the action (expiry, nonce, account,
        address limit) are made at commit, by ``Accepted.commit``."""
        request = _object(body, "body")
        action = _object(request.get("action", _MISSING), "action")
        kind = action.get("type", _MISSING)
        if not isinstance(kind, str):
            raise _invalid(f"action.type: expected a string, {_got(kind)}")
        nonce = request.get("nonce", _MISSING)
        if type(nonce) is not int or not 0 <= nonce < U64:
            raise _invalid(f"nonce: expected an unsigned integer (milliseconds), {_got(nonce)}")
        signature = _object(request.get("signature", _MISSING), "signature")
        _require(
            isinstance(signature.get("r"), str)
            and isinstance(signature.get("s"), str)
            and type(signature.get("v")) is int,
            "signature: expected r and s (hex strings) and v (an integer)",
        )
        vault = request.get("vaultAddress")
        expires_after = request.get("expiresAfter")
        _require(
            vault is None or (isinstance(vault, str) and ADDRESS.fullmatch(vault) is not None),
            "vaultAddress: expected an address, 0x and 40 hex digits",
        )
        _require(
            expires_after is None or (type(expires_after) is int and 0 <= expires_after < U64),
            "expiresAfter: expected an unsigned integer (milliseconds)",
        )
        act = self._prepare(kind, action)
        try:
            signer = self._signer(kind, action, nonce, signature, vault, expires_after)
        except SignatureError as error:
            return err(f"Invalid signature: {error}")
        return Accepted(partial(self._commit, act, signer, action, nonce, vault, expires_after))

    def _commit(
        self,
        act: Callable[[str, int], Answer],
        signer: str,
        action: Mapping[str, Any],
        nonce: int,
        vault: str | None,
        expires_after: int | None,
    ) -> Answer:
        """The action executed in its block: the venue's checks in its order, then the act."""
        venue = self.venue
        now = venue.now_ms()
        if expires_after is not None and expires_after < now:
            return err(f"Action expired at {expires_after}, now {now}.")
        kind = str(action["type"])
        account = self._account(kind, signer, None if vault is None else vault.lower(), now)
        if isinstance(account, Refused):
            return err(account.text)
        nonce_error = venue.nonces.check_and_use(signer, nonce, now)
        if nonce_error is not None:
            return err(nonce_error)
        limit_error = venue.address_limits.charge_action(account, action, now / 1000)
        if limit_error is not None:
            return err(limit_error)
        try:
            return act(account, now)
        finally:
            venue.publish_events()

    def _signer(
        self,
        kind: str,
        action: Mapping[str, Any],
        nonce: int,
        signature: Mapping[str, Any],
        vault: str | None,
        expires_after: int | None,
    ) -> str:
        """Who signed, as this network's venue recovers it (lowercase)."""
        mainnet = self.venue.mainnet
        if kind in management.USER_SIGNED:
            fields = management.approve_agent_fields(action)
            try:
                return recover_user_signer(
                    fields, signature, APPROVE_AGENT, mainnet=mainnet
                ).lower()
            except ValueError as error:  # a field that does not fit its EIP-712 type
                raise ExchangeError(deserialize_error(str(error))) from None
        return recover_l1_signer(
            action,
            nonce,
            signature,
            vault_address=vault,
            expires_after=expires_after,
            mainnet=mainnet,
        ).lower()

    def _account(self, kind: str, signer: str, vault: str | None, now: int) -> str | Refused:
        """The account an action signed by ``signer`` acts on, or the venue's refusal."""
        venue = self.venue
        identities = venue.identities
        has_account = venue.engine.account(signer) is not None
        if kind in management.USER_SIGNED:
            # The account's own signature: never an API wallet's, never for a vault.
            if vault is not None:
                return Refused(VAULT_MAY_NOT)
            if not has_account or identities.agent(signer, now) or identities.controlled(signer):
                return Refused(MUST_DEPOSIT.format(address=signer))
            return signer
        principal = identities.principal(signer, has_account=has_account, now_ms=now)
        if isinstance(principal, Refused):
            return principal
        if kind in management.MANAGEMENT and vault is not None:
            return Refused(VAULT_MAY_NOT)
        return identities.acting_for(principal, vault)

    def _prepare(self, kind: str, action: Mapping[str, Any]) -> Callable[[str, int], Answer]:
        """Check the whole action (ExchangeError if it would not deserialize) and return what
        carries it out for a user at a time: nothing acts before every field is checked."""
        engine = self.venue.engine
        specs = self.venue.specs
        if kind == "order":
            orders = _list(action.get("orders", _MISSING), "orders")
            requests = [parse_order(order, f"orders[{i}]") for i, order in enumerate(orders)]

            def place(user: str, now: int) -> Answer:
                refused = self._refused_orders(requests)
                if refused is not None:
                    return _refused("order", refused)
                results = [self._place(user, request, now) for request in requests]
                return _ok("order", [wire.place_status(r, specs) for r in results])

            return place
        if kind == "cancel":
            by_oid = [_cancel(entry, i) for i, entry in enumerate(_cancels(action))]

            def cancel(user: str, now: int) -> Answer:
                refused = self._refused_assets(a for a, _ in by_oid)
                if refused is not None:
                    return _refused("cancel", refused)
                return _cancel_statuses([engine.cancel(user, a, o, now) for a, o in by_oid])

            return cancel
        if kind == "cancelByCloid":
            by_cloid = [_cancel_by_cloid(entry, i) for i, entry in enumerate(_cancels(action))]

            def cancel_by_cloid(user: str, now: int) -> Answer:
                refused = self._refused_assets(a for a, _ in by_cloid)
                if refused is not None:
                    return _refused("cancel", refused)
                return _cancel_statuses(
                    [engine.cancel_by_cloid(user, a, c, now) for a, c in by_cloid]
                )

            return cancel_by_cloid
        if kind == "modify":
            target = _target(action.get("oid", _MISSING), "oid")
            request = parse_order(action.get("order", _MISSING))

            def modify(user: str, now: int) -> Answer:
                refused = self._refused_orders([request])
                if refused is not None:
                    return err(refused)
                result = engine.modify(user, target, request, now)
                return err(wire.error_text(result)) if isinstance(result, Rejected) else DEFAULT_OK

            return modify
        if kind == "batchModify":
            modifies = [
                _object(entry, f"modifies[{i}]")
                for i, entry in enumerate(_list(action.get("modifies", _MISSING), "modifies"))
            ]
            checked = [
                (
                    _target(entry.get("oid", _MISSING), f"modifies[{i}].oid"),
                    parse_order(entry.get("order", _MISSING), f"modifies[{i}].order"),
                )
                for i, entry in enumerate(modifies)
            ]

            def batch_modify(user: str, now: int) -> Answer:
                refused = self._refused_orders([order for _, order in checked])
                if refused is not None:
                    return _refused("order", refused)
                results = [engine.modify(user, target, order, now) for target, order in checked]
                return _ok("order", [wire.place_status(r, specs) for r in results])

            return batch_modify
        if kind == "scheduleCancel":
            time = action.get("time")
            if time is not None and type(time) is not int:
                raise _invalid(f"time: expected an integer (milliseconds) or null, {_got(time)}")

            def schedule_cancel(user: str, now: int) -> Answer:
                problem = self.venue.schedule_cancel(user, time, now)
                return DEFAULT_OK if problem is None else err(problem)

            return schedule_cancel
        if kind == "noop":
            return lambda user, now: DEFAULT_OK
        if kind in management.MANAGEMENT:
            try:
                return management.prepare(self.venue, kind, action)
            except management.ManagementError as error:
                raise ExchangeError(str(error)) from None
        raise ExchangeError(deserialize_error(f"action.type: unknown action {kind[:40]!r}"))

    def _invalid_assets(self) -> frozenset[int]:
        """The listed assets the ``invalid_assets`` fault makes invalid."""
        listed = self.venue.engine.by_name
        names = self.venue.faults.config.invalid_assets
        return frozenset(listed[name].index for name in names if name in listed)

    def _refused_assets(self, assets: Iterable[int]) -> str | None:
        return prevalidate.invalid_asset(assets, len(self.venue.specs), self._invalid_assets())

    def _refused_orders(self, orders: Sequence[OrderRequest]) -> str | None:
        return prevalidate.order_batch(
            orders,
            len(self.venue.specs),
            self._invalid_assets(),
            self.venue.faults.config.post_only_period,
        )

    def _place(self, user: str, request: OrderRequest, now: int) -> PlaceResult:
        engine = self.venue.engine
        if self.venue.faults.config.refuse_fills and 0 <= request.asset < len(engine.specs):
            px = engine.specs[request.asset].parse_px(request.px)
            book = engine.books[request.asset]
            if px is not None and book.would_cross(request.is_buy, px):
                # The fault: an order that would take liquidity finds nothing to match.
                return Rejected(Reject.IOC_CANCEL, request.asset)
        return engine.place(user, request, now)
