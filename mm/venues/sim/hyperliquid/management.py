"""Account-management actions on the simulator: API wallets, sub-accounts and vaults.

``approveAgent`` is user-signed (EIP-712 ``HyperliquidTransaction:ApproveAgent``, verified
under the venue's own network); ``createSubAccount``, ``subAccountTransfer`` and
``createVault`` are L1 actions of the master or leader itself, never sent for a vault (the
venue's "Vault may not perform this action."). Each is checked field by field before anything
acts (``ExchangeError`` with the venue's 422 text otherwise) and answered in the venue's shapes:
``{"type": "default"}``, or ``{"type": "createSubAccount"|"createVault", "data": "0x…"}``.

USD amounts travel as integers of micro-USDC (the SDK's ``float_to_usd_int``). A transfer larger
than what the source may withdraw is refused; the venue's wording for that was not found, so the
text is the simulator's own.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, Final

from mm.venues.sim.hyperliquid.info import deserialize_error, json_type
from mm.venues.sim.identities import VAULT_NOT_REGISTERED, ZERO_ADDRESS

if TYPE_CHECKING:
    from mm.venues.sim.venue import SimVenue

Answer = dict[str, Any]
Act = Callable[[str, int], Answer]
USER_SIGNED: Final = frozenset({"approveAgent"})
MANAGEMENT: Final = frozenset(
    {"approveAgent", "createSubAccount", "subAccountTransfer", "createVault"}
)
ADDRESS: Final = re.compile(r"0x[0-9a-fA-F]{40}")
MICRO: Final = 1_000_000
U64: Final = 1 << 64
INSUFFICIENT: Final = "Insufficient balance for transfer."
DEFAULT_OK: Final[Answer] = {"status": "ok", "response": {"type": "default"}}


class ManagementError(Exception):
    """A body the venue would not deserialize (HTTP 422): the venue's text and the reason."""


def _require(condition: bool, reason: str) -> None:
    if not condition:
        raise ManagementError(deserialize_error(reason))


def _string(action: Mapping[str, Any], name: str, *, default: str | None = None) -> str:
    value = action.get(name, default)
    _require(isinstance(value, str), f"{name}: expected a string, got {json_type(value)}")
    assert isinstance(value, str)
    return value


def _address(action: Mapping[str, Any], name: str) -> str:
    value = action.get(name)
    _require(
        isinstance(value, str) and ADDRESS.fullmatch(value) is not None,
        f"{name}: expected an address, 0x and 40 hex digits",
    )
    return str(value).lower()


def _usd(action: Mapping[str, Any], name: str) -> int:
    value = action.get(name)
    _require(
        type(value) is int and 0 <= value < U64,
        f"{name}: expected an unsigned integer (micro-USDC), got {json_type(value)}",
    )
    assert isinstance(value, int)
    return value


def _err(text: str) -> Answer:
    return {"status": "err", "response": text}


def _created(kind: str, address: str) -> Answer:
    return {"status": "ok", "response": {"type": kind, "data": address}}


def approve_agent_fields(action: Mapping[str, Any]) -> dict[str, Any]:
    """An ``approveAgent`` action as signed: every field checked, a missing ``agentName`` read
    as "" (the SDK signs an unnamed agent with "" and sends no name)."""
    chain = _string(action, "hyperliquidChain")
    _require(chain in ("Mainnet", "Testnet"), "hyperliquidChain: expected Mainnet or Testnet")
    signature_chain = _string(action, "signatureChainId")
    _require(
        re.fullmatch(r"0x[0-9a-fA-F]{1,64}", signature_chain) is not None,
        "signatureChainId: expected a 0x hex chain id",
    )
    nonce = action.get("nonce")
    _require(type(nonce) is int and 0 <= nonce < U64, "nonce: expected an unsigned integer")
    return {
        **action,
        "agentAddress": _address(action, "agentAddress"),
        "agentName": _string(action, "agentName", default=""),
    }


def prepare(venue: SimVenue, kind: str, action: Mapping[str, Any]) -> Act:
    """Check a management action whole and return what carries it out for its signer's
    account at a time (``ManagementError`` when it would not deserialize)."""
    identities = venue.identities
    engine = venue.engine
    if kind == "approveAgent":
        fields = approve_agent_fields(action)
        agent, name = fields["agentAddress"], fields["agentName"]
        _require(len(name) <= 200, "agentName: too long")

        def approve(master: str, now: int) -> Answer:
            identities.approve_agent(master, agent, name, now)
            return DEFAULT_OK

        return approve
    if kind == "createSubAccount":
        name = _string(action, "name")

        def create_sub(master: str, now: int) -> Answer:
            sub = identities.create_sub_account(master, name)
            engine.fund(sub.address, 0.0)  # an account of its own, empty
            return _created("createSubAccount", sub.address)

        return create_sub
    if kind == "subAccountTransfer":
        target = _address(action, "subAccountUser")
        deposit = action.get("isDeposit")
        _require(type(deposit) is bool, "isDeposit: expected a boolean")
        usd = _usd(action, "usd")

        def transfer(master: str, now: int) -> Answer:
            sub = identities.sub_accounts.get(target)
            if sub is None or sub.master != master:
                return _err(VAULT_NOT_REGISTERED.format(address=target))
            source, destination = (master, target) if deposit else (target, master)
            if venue.withdrawable(source) * MICRO < usd:
                return _err(INSUFFICIENT)
            engine.fund(source, -usd / MICRO)
            engine.fund(destination, usd / MICRO)
            return DEFAULT_OK

        return transfer
    if kind == "createVault":
        name = _string(action, "name")
        description = _string(action, "description", default="")
        initial = _usd(action, "initialUsd")

        def create_vault(leader: str, now: int) -> Answer:
            if venue.withdrawable(leader) * MICRO < initial:
                return _err(INSUFFICIENT)
            vault = identities.create_vault(leader, name, description, now)
            engine.fund(leader, -initial / MICRO)
            engine.fund(vault.address, initial / MICRO)
            return _created("createVault", vault.address)

        return create_vault
    raise ManagementError(deserialize_error(f"action.type: unknown action {kind[:40]!r}"))


__all__ = [
    "MANAGEMENT",
    "USER_SIGNED",
    "ZERO_ADDRESS",
    "ManagementError",
    "approve_agent_fields",
    "prepare",
]
