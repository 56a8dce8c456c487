"""May this key trade for this account (mm.venues.hyperliquid.authority): the venue's answers
judged, each case in the venue's words, and a property over every combination of answers."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mm.venues.hyperliquid.authority import (
    Access,
    Role,
    judge,
    parse_user_role,
    parse_vault_leader,
)
from mm.venues.hyperliquid.codec import CodecError

SIGNER = "0x" + "51" * 20
MASTER = "0x" + "4d" * 20
OTHER = "0x" + "07" * 20
SUB = "0x" + "5b" * 20
VAULT = "0x" + "7a" * 20
USER = Role("user")
MISSING = Role("missing")


def judged(
    account: str,
    signer_role: Role,
    account_role: Role = USER,
    *,
    leader: str | None = None,
    probe: str | None = None,
) -> Access:
    return judge(
        account,
        SIGNER,
        signer_role=signer_role,
        account_role=account_role,
        vault_leader=leader,
        probe=probe,
        network="testnet",
    )


def test_the_keys_own_account() -> None:
    access = judged(SIGNER, USER)
    assert access.allowed
    assert (access.principal, access.vault_address) == (SIGNER, None)
    assert access.summary == f"key {SIGNER} signs for its own account"


def test_an_api_wallet_trades_for_its_master() -> None:
    access = judged(MASTER, Role("agent", MASTER))
    assert access.allowed
    assert (access.principal, access.vault_address) == (MASTER, None)


@pytest.mark.parametrize(
    ("signer_role", "account_role", "leader"),
    [
        (USER, Role("subAccount", SIGNER), None),
        (Role("agent", SIGNER), Role("subAccount", SIGNER), None),
        (USER, Role("vault"), SIGNER),
        (Role("agent", SIGNER), Role("vault"), SIGNER),
    ],
    ids=["sub-by-master", "sub-by-agent", "vault-by-leader", "vault-by-agent"],
)
def test_a_sub_account_or_vault_is_traded_with_vault_address(
    signer_role: Role, account_role: Role, leader: str | None
) -> None:
    # (an agent here is an API wallet of SIGNER's address, i.e. of the master)
    access = judge(
        SUB,
        SIGNER if signer_role.role == "user" else OTHER,
        signer_role=signer_role,
        account_role=account_role,
        vault_leader=leader,
        probe=None,
        network="testnet",
    )
    assert access.allowed, access.problem
    assert access.vault_address == SUB
    assert access.principal == SIGNER


def test_the_venues_refusal_of_the_signature_comes_first() -> None:
    text = f"User or API Wallet {SIGNER} does not exist."
    access = judged(MASTER, MISSING, probe=text)
    assert not access.allowed
    assert access.problem is not None
    assert access.problem.startswith(f'the venue says "{text}": the key {SIGNER} is neither')
    assert "approveAgent" in access.problem


def test_another_recovered_address_is_the_other_network() -> None:
    text = f"User or API Wallet {OTHER} does not exist."
    access = judged(SIGNER, USER, probe=text)
    assert access.problem == (
        f'the venue says "{text}" to a signature by {SIGNER}: it recovers another address, so '
        "it checks signatures for another network than testnet (venue.network)"
    )


def test_any_other_refusal_is_quoted() -> None:
    access = judged(SIGNER, USER, probe="Too many cumulative requests sent")
    assert access.problem == 'the venue refuses the key: "Too many cumulative requests sent"'


@pytest.mark.parametrize(
    ("account_role", "leader", "expected"),
    [
        (
            Role("subAccount", OTHER),
            None,
            f"{SUB} is a sub-account of {OTHER} (userRole: subAccount of {OTHER}), not of "
            f"{SIGNER}, whom the key {SIGNER} signs for",
        ),
        (
            Role("vault"),
            OTHER,
            f"vault {SUB} is led by {OTHER}, not by {SIGNER}, whom the key {SIGNER} signs for",
        ),
        (
            Role("agent", OTHER),
            None,
            f"venue.account_address {SUB} is an API wallet (userRole: agent of {OTHER}): set "
            "the account it signs for",
        ),
        (
            MISSING,
            None,
            f"venue.account_address {SUB} does not exist on the venue (userRole: missing)",
        ),
        (
            USER,
            None,
            f"the key {SIGNER} signs for its own account, not for {SUB} (userRole: user): "
            f"approve the key as an API wallet of {SUB} (approveAgent), or set "
            f"venue.account_address to {SIGNER}",
        ),
    ],
    ids=["someone-elses-sub", "someone-elses-vault", "an-agent", "missing", "another-user"],
)
def test_an_account_the_key_may_not_trade_for(
    account_role: Role, leader: str | None, expected: str
) -> None:
    access = judged(SUB, USER, account_role, leader=leader)
    assert not access.allowed
    assert access.problem == expected
    assert access.vault_address is None


@pytest.mark.parametrize("role", [Role("subAccount", MASTER), Role("vault")])
def test_a_key_whose_address_is_a_sub_account_or_vault_cannot_sign(role: Role) -> None:
    access = judged(SIGNER, role)
    assert access.problem is not None
    assert "cannot sign" in access.problem


def test_user_role_answers_are_parsed_and_anything_else_refused() -> None:
    assert parse_user_role({"role": "user"}) == USER
    mixed_case = "0x" + MASTER[2:].upper()
    assert parse_user_role({"role": "agent", "data": {"user": mixed_case}}) == Role("agent", MASTER)
    assert parse_user_role({"role": "subAccount", "data": {"master": MASTER}}) == Role(
        "subAccount", MASTER
    )
    assert parse_user_role({"role": "vault"}) == Role("vault")
    bad_answers: list[Any] = [
        None,
        [],
        {"role": "king"},
        {"role": "agent"},
        {"role": "agent", "data": 5},
    ]
    for bad in bad_answers:
        with pytest.raises(CodecError):
            parse_user_role(bad)
    assert parse_vault_leader(None) is None
    assert parse_vault_leader({"leader": MASTER, "name": "v"}) == MASTER
    with pytest.raises(CodecError):
        parse_vault_leader({"leader": 5})


addresses = st.sampled_from([SIGNER, MASTER, OTHER, SUB])
roles = st.one_of(
    st.sampled_from([USER, MISSING, Role("vault")]),
    st.builds(Role, st.sampled_from(["agent", "subAccount"]), addresses),
)


@given(
    account=addresses,
    signer_role=roles,
    account_role=roles,
    leader=st.none() | addresses,
    probe=st.none() | st.sampled_from([f"User or API Wallet {SIGNER} does not exist.", "x"]),
)
def test_allowed_only_as_the_venues_rules_say(
    account: str, signer_role: Role, account_role: Role, leader: str | None, probe: str | None
) -> None:
    access = judged(account, signer_role, account_role, leader=leader, probe=probe)
    if probe is not None or signer_role.role not in ("user", "agent"):
        assert not access.allowed
        return
    principal = SIGNER if signer_role.role == "user" else signer_role.owner
    assert access.principal == principal
    if account == principal:
        assert access.allowed
        assert access.vault_address is None
        return
    controls = (account_role.role == "subAccount" and account_role.owner == principal) or (
        account_role.role == "vault" and leader == principal
    )
    assert access.allowed is controls
    assert access.vault_address == (account if controls else None)
    assert (access.problem is None) is controls
    assert access.summary
