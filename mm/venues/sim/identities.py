"""Who acts for whom on the simulator: API wallets, sub-accounts and vaults, as the venue has them.

Pure. An action's signer is recovered from its signature; this decides whose account it acts
on, and refuses it in the venue's words otherwise:

- a signer that is an approved API (agent) wallet, not expired, acts for its master; a signer
  with an account of its own acts for itself; anyone else gets "User or API Wallet 0x… does
  not exist." (the venue's text, address lowercase: a signature for the wrong network recovers
  to an unrelated address and meets the same text);
- with ``vaultAddress`` the action acts for that sub-account or vault when the signer's account
  is its master or leader; any other address gets "Vault not registered: 0x…" (the venue's text
  for an address that is no vault of the signer's account; the venue's wording for a vault led
  by someone else was not found, and is taken to be the same);
- a user-signed action (``approveAgent``) is the account's own: an API wallet cannot send one,
  and a signer without an account gets "Must deposit before performing actions. User: 0x…".

``approveAgent`` keeps the venue's rules: one unnamed agent per master (a new one replaces
it), one agent per name (the same name replaces it), the zero address removes the agent of
that name, and an agent stops acting when its ``validUntil`` passes (a name ending in
``" valid_until <ms>"`` sets it, as the venue's front end names agents; otherwise 180 days, the
front end's longest). Addresses of sub-accounts and vaults are derived from their master or
leader and a counter, so a seeded run names the same ones every time.
"""

from __future__ import annotations

import re
from typing import Any, Final

import attrs
from Crypto.Hash import keccak

ZERO_ADDRESS: Final = "0x" + "0" * 40
AGENT_VALIDITY_MS: Final = 180 * 24 * 3600 * 1000
_VALID_UNTIL: Final = re.compile(r"^(.*) valid_until (\d{1,19})$")

DOES_NOT_EXIST: Final = "User or API Wallet {address} does not exist."
VAULT_NOT_REGISTERED: Final = "Vault not registered: {address}"
MUST_DEPOSIT: Final = "Must deposit before performing actions. User: {address}"
VAULT_MAY_NOT: Final = "Vault may not perform this action."


@attrs.frozen
class Refused:
    """An action refused as a whole, with the venue's text."""

    text: str


@attrs.frozen
class Agent:
    address: str
    master: str
    name: str  # "" for the master's unnamed agent
    valid_until: int  # ms


@attrs.frozen
class SubAccount:
    address: str
    master: str
    name: str


@attrs.frozen
class Vault:
    address: str
    leader: str
    name: str
    description: str
    created_ms: int


def _derived(kind: bytes, owner: str, index: int) -> str:
    data = kind + bytes.fromhex(owner[2:]) + index.to_bytes(8, "big")
    return "0x" + keccak.new(data=data, digest_bits=256).hexdigest()[-40:]


def sub_account_address(master: str, index: int) -> str:
    """The address of ``master``'s ``index``-th sub-account (0 for its first)."""
    return _derived(b"subAccount", master.lower(), index)


def vault_address(leader: str, index: int) -> str:
    """The address of the ``index``-th vault ``leader`` creates (0 for its first)."""
    return _derived(b"vault", leader.lower(), index)


def agent_validity(name: str, now_ms: int) -> tuple[str, int]:
    """An agent name as listed and its ``validUntil``: from a ``" valid_until <ms>"`` suffix,
    else ``AGENT_VALIDITY_MS`` from now."""
    match = _VALID_UNTIL.match(name)
    if match is not None:
        return match.group(1), int(match.group(2))
    return name, now_ms + AGENT_VALIDITY_MS


class Identities:
    """The venue's registry of API wallets, sub-accounts and vaults (addresses lowercase).

    Whether an address has an account (funds, positions) is the engine's to say: every method
    that needs it takes it as ``has_account``.
    """

    def __init__(self) -> None:
        self.agents: dict[str, Agent] = {}
        self.sub_accounts: dict[str, SubAccount] = {}
        self.vaults: dict[str, Vault] = {}
        self._created: dict[tuple[str, str], int] = {}  # (kind, owner) -> how many

    # --- queries ---------------------------------------------------------------------------

    def agent(self, address: str, now_ms: int) -> Agent | None:
        """The approved, unexpired API wallet at ``address``."""
        agent = self.agents.get(address)
        return agent if agent is not None and agent.valid_until > now_ms else None

    def role(self, address: str, *, has_account: bool, now_ms: int) -> dict[str, Any]:
        """The venue's ``userRole`` answer for ``address``."""
        agent = self.agent(address, now_ms)
        if agent is not None:
            return {"role": "agent", "data": {"user": agent.master}}
        sub = self.sub_accounts.get(address)
        if sub is not None:
            return {"role": "subAccount", "data": {"master": sub.master}}
        if address in self.vaults:
            return {"role": "vault"}
        return {"role": "user" if has_account else "missing"}

    def named_agents(self, master: str, now_ms: int) -> list[Agent]:
        """A master's named, unexpired API wallets (``extraAgents``), oldest first."""
        return [
            agent
            for agent in self.agents.values()
            if agent.master == master and agent.name and agent.valid_until > now_ms
        ]

    def subs_of(self, master: str) -> list[SubAccount]:
        return [sub for sub in self.sub_accounts.values() if sub.master == master]

    def controlled(self, address: str) -> bool:
        """A sub-account or vault: it has no key and acts only through its master or leader."""
        return address in self.sub_accounts or address in self.vaults

    # --- who acts ---------------------------------------------------------------------------

    def principal(self, signer: str, *, has_account: bool, now_ms: int) -> str | Refused:
        """The account an L1 action signed by ``signer`` acts for, before any vaultAddress."""
        agent = self.agent(signer, now_ms)
        if agent is not None:
            return agent.master
        if has_account and not self.controlled(signer):
            return signer
        return Refused(DOES_NOT_EXIST.format(address=signer))

    def acting_for(self, principal: str, vault: str | None) -> str | Refused:
        """The account an action acts on: ``vault`` when ``principal`` is its master or leader,
        the principal itself without one."""
        if vault is None:
            return principal
        sub = self.sub_accounts.get(vault)
        if sub is not None and sub.master == principal:
            return vault
        led = self.vaults.get(vault)
        if led is not None and led.leader == principal:
            return vault
        return Refused(VAULT_NOT_REGISTERED.format(address=vault))

    # --- changes ----------------------------------------------------------------------------

    def approve_agent(self, master: str, agent_address: str, name: str, now_ms: int) -> None:
        """``approveAgent`` by ``master`` (already known to have an account): registers the
        agent, deregistering the one it replaces (same name, or the unnamed one)."""
        listed, valid_until = agent_validity(name, now_ms)
        replaced = [
            address
            for address, agent in self.agents.items()
            if agent.master == master and agent.name == listed
        ]
        for address in replaced:
            del self.agents[address]
        if agent_address != ZERO_ADDRESS:
            self.agents[agent_address] = Agent(agent_address, master, listed, valid_until)

    def _next_index(self, kind: str, owner: str) -> int:
        index = self._created.get((kind, owner), 0)
        self._created[(kind, owner)] = index + 1
        return index

    def create_sub_account(self, master: str, name: str) -> SubAccount:
        address = sub_account_address(master, self._next_index("subAccount", master))
        sub = self.sub_accounts[address] = SubAccount(address, master, name)
        return sub

    def create_vault(self, leader: str, name: str, description: str, now_ms: int) -> Vault:
        address = vault_address(leader, self._next_index("vault", leader))
        vault = self.vaults[address] = Vault(address, leader, name, description, now_ms)
        return vault
