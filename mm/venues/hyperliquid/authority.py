"""May this key trade for this account? The venue's answers, judged (pure).

On Hyperliquid the key that signs and the account traded for are two things: an account (a
master) signs with its own key or through an API (agent) wallet it approved; a sub-account or a
vault has no key and is traded for by its master or leader (or an API wallet of theirs), with
its address as every action's ``vaultAddress``. Queries are always for the account, never for
the signer. ``judge`` takes what the venue said (``userRole`` of the signer and of the account,
the vault's leader from ``vaultDetails``, and the venue's answer to a ``noop`` signed by the key)
and returns an ``Access``: the account the key acts for, the ``vaultAddress`` its actions carry,
and, when it may not trade for the account, the problem in the venue's words.

The ``noop`` is the venue's own verdict on the signature: refused with "User or API Wallet 0x…
does not exist." it names the address the venue recovered; the key's own address means the key
is unknown to the venue (an API wallet not approved, an account never funded), another address
means the signature was made for the other network.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any, Final

import attrs

from mm.venues.hyperliquid.codec import CodecError

ROLES: Final = frozenset({"user", "agent", "vault", "subAccount", "missing"})
_ADDRESS: Final = re.compile(r"0x[0-9a-fA-F]{40}")
_DOES_NOT_EXIST: Final = re.compile(r"User or API Wallet (0x[0-9a-fA-F]{40}) does not exist")


@attrs.frozen
class Role:
    """An address's ``userRole``: ``owner`` is an agent's user or a sub-account's master."""

    role: str
    owner: str | None = None

    def words(self) -> str:
        """As the venue says it, for messages: ``userRole: agent of 0x…``."""
        owner = f" of {self.owner}" if self.owner else ""
        return f"userRole: {self.role}{owner}"


def parse_user_role(raw: Any) -> Role:
    """The venue's ``userRole`` answer; ``CodecError`` for anything else."""
    if not isinstance(raw, Mapping) or raw.get("role") not in ROLES:
        raise CodecError("userRole: expected an object with a known role")
    role = str(raw["role"])
    owner = None
    if role in ("agent", "subAccount"):
        data = raw.get("data")
        key = "user" if role == "agent" else "master"
        value = data.get(key) if isinstance(data, Mapping) else None
        if not isinstance(value, str) or _ADDRESS.fullmatch(value) is None:
            raise CodecError(f"userRole: a {role} without its {key}")
        owner = value.lower()
    return Role(role, owner)


def parse_vault_leader(raw: Any) -> str | None:
    """The leader in a ``vaultDetails`` answer (None: the venue knows no such vault)."""
    if raw is None:
        return None
    leader = raw.get("leader") if isinstance(raw, Mapping) else None
    if not isinstance(leader, str) or _ADDRESS.fullmatch(leader) is None:
        raise CodecError("vaultDetails: expected null or an object with its leader")
    return leader.lower()


@attrs.frozen
class Access:
    """What the venue says about this key and this account.

    ``problem`` is None when the key may trade for ``account``: then every action is signed by
    ``signer``, acts for ``account`` and carries ``vault_address`` (the account itself when it is
    a sub-account or a vault, else None). ``summary`` says what was found, in either case.
    """

    account: str
    signer: str
    principal: str | None  # the account the key signs for: its own, or its master's
    vault_address: str | None
    summary: str
    problem: str | None = None

    @property
    def allowed(self) -> bool:
        return self.problem is None


def _refused(account: str, signer: str, principal: str | None, problem: str) -> Access:
    return Access(account, signer, principal, None, problem, problem)


def judge(
    account: str,
    signer: str,
    *,
    signer_role: Role,
    account_role: Role,
    vault_leader: str | None,
    probe: str | None,
    network: str,
) -> Access:
    """Judge the venue's answers (addresses lowercase). ``probe`` is the venue's refusal text
    for a ``noop`` signed by the key (None: accepted); ``network`` is what mm signs for."""
    account, signer = account.lower(), signer.lower()
    if probe is not None:
        match = _DOES_NOT_EXIST.search(probe)
        if match is not None and match.group(1).lower() != signer:
            return _refused(
                account,
                signer,
                None,
                f'the venue says "{probe}" to a signature by {signer}: it recovers another '
                f"address, so it checks signatures for another network than {network} "
                "(venue.network)",
            )
        if match is not None:
            return _refused(
                account,
                signer,
                None,
                f'the venue says "{probe}": the key {signer} is neither an account nor an API '
                f"wallet approved by one ({signer_role.words()}); approve it from the "
                "account's master (approveAgent), or fund it",
            )
        return _refused(account, signer, None, f'the venue refuses the key: "{probe}"')
    if signer_role.role == "agent":
        principal = signer_role.owner
        how = f"{principal}, as its API wallet"
    elif signer_role.role == "user":
        principal, how = signer, "its own account"
    else:
        return _refused(
            account,
            signer,
            None,
            f"the key's address {signer} cannot sign ({signer_role.words()}): a sub-account or "
            "vault is traded with its master's or leader's key, or an API wallet of theirs",
        )
    assert principal is not None
    if account == principal:
        return Access(account, signer, principal, None, f"key {signer} signs for {how}")
    role = account_role.role
    if role == "subAccount" and account_role.owner == principal:
        return Access(
            account,
            signer,
            principal,
            account,
            f"key {signer} signs for {how}; it trades for its sub-account {account} (vaultAddress)",
        )
    if role == "vault" and vault_leader == principal:
        return Access(
            account,
            signer,
            principal,
            account,
            f"key {signer} signs for {how}; it trades for vault {account}, which it leads "
            "(vaultAddress)",
        )
    if role == "subAccount":
        problem = (
            f"{account} is a sub-account of {account_role.owner} ({account_role.words()}), not "
            f"of {principal}, whom the key {signer} signs for"
        )
    elif role == "vault":
        leader = vault_leader or "nobody the venue names (vaultDetails: null)"
        problem = (
            f"vault {account} is led by {leader}, not by {principal}, whom the key {signer} "
            "signs for"
        )
    elif role == "agent":
        problem = (
            f"venue.account_address {account} is an API wallet ({account_role.words()}): "
            "set the account it signs for"
        )
    elif role == "missing":
        problem = f"venue.account_address {account} does not exist on the venue (userRole: missing)"
    else:
        problem = (
            f"the key {signer} signs for {how}, not for {account} (userRole: "
            f"user): approve the key as an API wallet of {account} (approveAgent), or set "
            f"venue.account_address to {principal}"
        )
    return _refused(account, signer, principal, problem)
