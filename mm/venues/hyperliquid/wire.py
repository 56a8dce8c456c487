"""Adapter-side request building: prices, sizes, order wires and L1 actions in the venue's form.

Everything here is pure except :func:`new_cloid` (randomness) and :class:`NonceSource` (a
clock). Actions are plain dicts whose key order is the official SDK's: the L1 signature hashes
their msgpack bytes, so a reordered key is a different action and a signature the venue
rejects (or worse, attributes to another signer).

Prices and sizes go out in the wire style of :mod:`mm.venues.hyperliquid.numbers` (``"30135"``,
``"0.001"``), which is what the SDK's ``float_to_wire`` sends for the same valid values.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from typing import Any, Final, Literal

from mm import clock, randomness
from mm.model import ModifyOrder, PlaceOrder, Side, Tif
from mm.venues.hyperliquid import numbers
from mm.venues.hyperliquid.ids import venue_oid
from mm.venues.hyperliquid.signing import APPROVE_AGENT, PrivateKeyLike, sign_user_action

__all__ = [
    "CLOID_PREFIX",
    "Grouping",
    "NonceSource",
    "approve_agent_request",
    "batch_modify_action",
    "cancel_action",
    "cancel_by_cloid_action",
    "cancel_by_cloid_wire",
    "cancel_wire",
    "format_px",
    "format_sz",
    "is_own_cloid",
    "modify_action",
    "modify_wire",
    "new_cloid",
    "order_action",
    "order_wire",
    "schedule_cancel_action",
]

Grouping = Literal["na", "normalTpsl", "positionTpsl"]

_CLOID: Final = re.compile(r"0x[0-9a-fA-F]{32}")
_INF: Final = float("inf")
TIF_WIRE: Final = {Tif.GTC: "Gtc", Tif.IOC: "Ioc", Tif.ALO: "Alo"}
"""The venue's words for mm's times in force."""


def _check_cloid(cloid: str) -> str:
    if _CLOID.fullmatch(cloid) is None:
        raise ValueError(f"a cloid is 0x and 32 hex digits, got {cloid!r}")
    return cloid


# --- numbers -------------------------------------------------------------------------------------


def format_px(px: float, sz_decimals: int, side: Side) -> str:
    """A quote price as the nearest valid wire price on the passive side of ``px``.

    A buy rounds down and a sell rounds up, so the order is never more aggressive than asked;
    a price that is already valid goes out unchanged. Raises ``ValueError`` for a price that is
    not a positive finite number, or a buy below the smallest tick (no valid price is passive).
    """
    if not 0.0 < px < _INF:
        raise ValueError(f"price must be a positive finite number, got {px!r}")
    decimals = numbers.px_decimals(sz_decimals)
    ticks = numbers.float_ticks(px, decimals, up=side is Side.SELL)
    if ticks <= 0:
        raise ValueError(f"no valid buy price at or below {px!r} (szDecimals {sz_decimals})")
    return numbers.wire_str(ticks, decimals)


def format_sz(sz: float, sz_decimals: int) -> str:
    """An order size rounded to szDecimals (nearest, ties to even), as a wire string.

    Raises ``ValueError`` for a size that is not a positive finite number or that rounds to
    zero: a positive size never silently becomes an empty order.
    """
    if not 0.0 < sz < _INF:
        raise ValueError(f"size must be a positive finite number, got {sz!r}")
    if sz_decimals < 0:
        raise ValueError(f"szDecimals out of range: {sz_decimals}")
    lots = numbers.float_lots(sz, sz_decimals)
    if lots == 0:
        raise ValueError(f"size {sz!r} rounds to zero at {sz_decimals} decimals")
    return numbers.wire_str(lots, sz_decimals)


# --- wires ---------------------------------------------------------------------------------------


def order_wire(order: PlaceOrder, asset: int, sz_decimals: int) -> dict[str, Any]:
    """An order in the venue's wire form, keys in the SDK's order (``a b p s r t c``).

    The price is rounded passively (:func:`format_px`) and the size to szDecimals
    (:func:`format_sz`). Raises ``ValueError`` for an unusable price, size or cloid.
    """
    return {
        "a": asset,
        "b": order.side is Side.BUY,
        "p": format_px(order.px, sz_decimals, order.side),
        "s": format_sz(order.sz, sz_decimals),
        "r": order.reduce_only,
        "t": {"limit": {"tif": TIF_WIRE[order.tif]}},
        "c": _check_cloid(order.cloid),
    }


def cancel_wire(asset: int, oid: int) -> dict[str, Any]:
    """One entry of a ``cancel`` action."""
    return {"a": asset, "o": oid}


def cancel_by_cloid_wire(asset: int, cloid: str) -> dict[str, Any]:
    """One entry of a ``cancelByCloid`` action."""
    return {"asset": asset, "cloid": _check_cloid(cloid)}


def modify_wire(modify: ModifyOrder, asset: int, sz_decimals: int) -> dict[str, Any]:
    """One entry of a ``batchModify`` action: the target (the venue's oid when the modify names
    one, else the order's cloid) and its new order."""
    target = venue_oid(modify.oid) if modify.oid is not None else _check_cloid(modify.order.cloid)
    return {"oid": target, "order": order_wire(modify.order, asset, sz_decimals)}


# --- actions -------------------------------------------------------------------------------------


def order_action(orders: Sequence[dict[str, Any]], grouping: Grouping = "na") -> dict[str, Any]:
    """An ``order`` action for order wires (:func:`order_wire`)."""
    return {"type": "order", "orders": list(orders), "grouping": grouping}


def cancel_action(cancels: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """A ``cancel`` action for cancel wires (:func:`cancel_wire`)."""
    return {"type": "cancel", "cancels": list(cancels)}


def cancel_by_cloid_action(cancels: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """A ``cancelByCloid`` action for wires of :func:`cancel_by_cloid_wire`."""
    return {"type": "cancelByCloid", "cancels": list(cancels)}


def batch_modify_action(modifies: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """A ``batchModify`` action for modify wires (:func:`modify_wire`); statuses come back
    like an order action's."""
    return {"type": "batchModify", "modifies": list(modifies)}


def modify_action(modify: dict[str, Any]) -> dict[str, Any]:
    """A single ``modify`` action (answered with a default response, not statuses)."""
    return {"type": "modify", "oid": modify["oid"], "order": modify["order"]}


def schedule_cancel_action(time_ms: int | None) -> dict[str, Any]:
    """Arm the dead-man's switch at ``time_ms``, or with None disarm it."""
    action: dict[str, Any] = {"type": "scheduleCancel"}
    if time_ms is not None:
        action["time"] = time_ms
    return action


def noop_action() -> dict[str, Any]:
    """A ``noop``: acts on nothing; the venue checks its signature and spends its nonce."""
    return {"type": "noop"}


def approve_agent_request(
    master_key: PrivateKeyLike,
    agent_address: str,
    *,
    nonce: int,
    mainnet: bool,
    name: str | None = None,
) -> dict[str, Any]:
    """The ``/exchange`` body of an ``approveAgent`` signed by the master account's own key,
    exactly as the SDK's ``approve_agent`` sends it: a user-signed action (``nonce`` inside the
    action too); an unnamed agent is signed with ``agentName`` "" and sent without the key.
    With ``agent_address`` the zero address, the agent of that name is removed."""
    action = {
        "type": "approveAgent",
        "agentAddress": agent_address,
        "agentName": name or "",
        "nonce": nonce,
    }
    sent, signature = sign_user_action(master_key, action, APPROVE_AGENT, mainnet=mainnet)
    if name is None:
        del sent["agentName"]
    return {
        "action": sent,
        "nonce": nonce,
        "signature": signature,
        "vaultAddress": None,
        "expiresAfter": None,
    }


# --- identifiers and nonces ----------------------------------------------------------------------


CLOID_PREFIX: Final = "0x6d6d0001"
"""How mm's client order ids begin: ``6d6d`` ("mm") and a format version, 4 of the cloid's 16
bytes. The other 12 are random (96 bits), so cloids stay unique, and an order carrying the
prefix is mm's (a random cloid of another client has it once in 2**32): how the startup
cancel-all and the order audit tell mm's orders from other clients' of the same account."""


def new_cloid() -> str:
    """A fresh client order id: ``0x``, mm's prefix and 24 hex digits from 12 random bytes."""
    return CLOID_PREFIX + randomness.hex_id(96)


def is_own_cloid(cloid: str | None) -> bool:
    """Whether an order's cloid is one mm gave it (``CLOID_PREFIX``); None (an order placed
    without one, e.g. from the venue's web page) is not."""
    return cloid is not None and cloid.lower().startswith(CLOID_PREFIX)


def _now_ms() -> int:
    return clock.wall_ms()


class NonceSource:
    """Nonces for one signer: the clock in milliseconds, strictly increasing.

    The venue keeps each signer's highest nonces and rejects reuse; ``max(now_ms, last + 1)``
    keeps nonces unique when several actions share a millisecond or the clock steps back.
    Use one instance per signer.
    """

    __slots__ = ("_clock", "_last")

    def __init__(self, clock: Callable[[], int] = _now_ms, *, last: int = 0) -> None:
        self._clock = clock
        self._last = last

    @property
    def last(self) -> int:
        """The most recent nonce handed out (0 before the first)."""
        return self._last

    def next(self) -> int:
        """The next nonce."""
        nonce = max(self._clock(), self._last + 1)
        self._last = nonce
        return nonce

    __call__ = next
