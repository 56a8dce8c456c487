"""The simulator's registry of API wallets, sub-accounts and vaults (mm.venues.sim.identities).

Examples of each rule, and a hypothesis state machine over approvals, expiries, sub-accounts
and vaults: whatever the sequence, an action acts for exactly the account the venue's rules
name, and anything else is refused with the venue's text.
"""

from __future__ import annotations

from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule

from mm.venues.sim.identities import (
    AGENT_VALIDITY_MS,
    ZERO_ADDRESS,
    Identities,
    Refused,
    agent_validity,
    sub_account_address,
    vault_address,
)

MASTER = "0x" + "aa" * 20
OTHER = "0x" + "bb" * 20
AGENT = "0x" + "cc" * 20
AGENT_2 = "0x" + "dd" * 20
NOW = 1_800_000_000_000


def exists(address: str) -> Refused:
    return Refused(f"User or API Wallet {address} does not exist.")


def test_a_signer_with_an_account_acts_for_itself_and_a_stranger_does_not_exist() -> None:
    identities = Identities()
    assert identities.principal(MASTER, has_account=True, now_ms=NOW) == MASTER
    assert identities.principal(OTHER, has_account=False, now_ms=NOW) == exists(OTHER)
    assert identities.role(MASTER, has_account=True, now_ms=NOW) == {"role": "user"}
    assert identities.role(OTHER, has_account=False, now_ms=NOW) == {"role": "missing"}


def test_an_agent_acts_for_its_master_until_it_expires() -> None:
    identities = Identities()
    identities.approve_agent(MASTER, AGENT, f"bot valid_until {NOW + 1000}", NOW)

    assert identities.principal(AGENT, has_account=False, now_ms=NOW) == MASTER
    assert identities.role(AGENT, has_account=False, now_ms=NOW) == {
        "role": "agent",
        "data": {"user": MASTER},
    }
    [agent] = identities.named_agents(MASTER, NOW)
    assert (agent.name, agent.valid_until) == ("bot", NOW + 1000)
    assert identities.principal(AGENT, has_account=False, now_ms=NOW + 1000) == exists(AGENT)
    assert identities.named_agents(MASTER, NOW + 1000) == []


def test_an_agent_without_valid_until_is_valid_for_180_days() -> None:
    assert agent_validity("desk", NOW) == ("desk", NOW + AGENT_VALIDITY_MS)
    assert AGENT_VALIDITY_MS == 180 * 86_400_000
    assert agent_validity("a valid_until 12", NOW) == ("a", 12)


def test_one_unnamed_agent_and_one_per_name_and_zero_removes() -> None:
    identities = Identities()
    identities.approve_agent(MASTER, AGENT, "", NOW)
    identities.approve_agent(MASTER, AGENT_2, "", NOW)  # replaces the unnamed one
    assert identities.agent(AGENT, NOW) is None
    assert identities.principal(AGENT_2, has_account=False, now_ms=NOW) == MASTER
    identities.approve_agent(MASTER, AGENT, "desk", NOW)
    assert {a.address for a in identities.agents.values()} == {AGENT, AGENT_2}
    identities.approve_agent(MASTER, ZERO_ADDRESS, "desk", NOW)  # removes "desk"
    assert identities.agent(AGENT, NOW) is None
    assert identities.agent(AGENT_2, NOW) is not None


def test_vault_address_acts_for_a_sub_account_or_vault_of_the_principal_only() -> None:
    identities = Identities()
    sub = identities.create_sub_account(MASTER, "desk")
    vault = identities.create_vault(MASTER, "v", "", NOW)
    assert sub.address == sub_account_address(MASTER, 0)
    assert vault.address == vault_address(MASTER, 0)
    assert identities.create_sub_account(MASTER, "two").address == sub_account_address(MASTER, 1)

    assert identities.acting_for(MASTER, sub.address) == sub.address
    assert identities.acting_for(MASTER, vault.address) == vault.address
    assert identities.acting_for(MASTER, None) == MASTER
    for target in (sub.address, vault.address, MASTER, OTHER):
        if target in (sub.address, vault.address):
            refused = identities.acting_for(OTHER, target)
        else:
            refused = identities.acting_for(MASTER, target)
        assert refused == Refused(f"Vault not registered: {target}")
    assert identities.role(sub.address, has_account=True, now_ms=NOW) == {
        "role": "subAccount",
        "data": {"master": MASTER},
    }
    assert identities.role(vault.address, has_account=True, now_ms=NOW) == {"role": "vault"}
    # A sub-account or vault has no key: an action can never be its own.
    assert identities.principal(sub.address, has_account=True, now_ms=NOW) == exists(sub.address)


def test_derived_addresses_differ_by_owner_kind_and_index() -> None:
    addresses = {
        sub_account_address(MASTER, 0),
        sub_account_address(MASTER, 1),
        sub_account_address(OTHER, 0),
        vault_address(MASTER, 0),
    }
    assert len(addresses) == 4
    assert all(len(a) == 42 and a == a.lower() for a in addresses)


USERS = ["0x" + f"{i:02x}" * 20 for i in range(1, 4)]
KEYS = ["0x" + f"{i:02x}" * 20 for i in range(0x10, 0x16)]
NAMES = ["", "a", "b"]


class IdentityMachine(RuleBasedStateMachine):
    """Random approvals, removals, expiries, sub-accounts and vaults against a plain model."""

    def __init__(self) -> None:
        super().__init__()
        self.identities = Identities()
        self.now = NOW
        self.model: dict[tuple[str, str], tuple[str, int]] = {}  # (master, name) -> agent
        self.controlled: dict[str, str] = {}  # sub-account or vault -> master or leader

    @rule(
        master=st.sampled_from(USERS),
        key=st.sampled_from(KEYS),
        name=st.sampled_from(NAMES),
        life=st.none() | st.integers(1, 5_000),
    )
    def approve(self, master: str, key: str, name: str, life: int | None) -> None:
        signed = name if life is None else f"{name} valid_until {self.now + life}"
        self.identities.approve_agent(master, key, signed, self.now)
        until = self.now + (AGENT_VALIDITY_MS if life is None else life)
        # The key leaves whatever name it had; the name leaves whatever key it had.
        self.model = {k: v for k, v in self.model.items() if v[0] != key}
        self.model[(master, name)] = (key, until)

    @rule(master=st.sampled_from(USERS), name=st.sampled_from(NAMES))
    def remove(self, master: str, name: str) -> None:
        self.identities.approve_agent(master, ZERO_ADDRESS, name, self.now)
        self.model.pop((master, name), None)

    @rule(step=st.integers(1, 3_000))
    def advance(self, step: int) -> None:
        self.now += step

    @rule(master=st.sampled_from(USERS), vault=st.booleans())
    def create(self, master: str, vault: bool) -> None:
        if vault:
            created = self.identities.create_vault(master, "v", "", self.now).address
        else:
            created = self.identities.create_sub_account(master, "s").address
        assert created not in self.controlled
        self.controlled[created] = master

    @invariant()
    def each_key_acts_for_its_master_while_valid(self) -> None:
        live = {key: master for (master, _), (key, until) in self.model.items() if until > self.now}
        for key in KEYS:
            principal = self.identities.principal(key, has_account=False, now_ms=self.now)
            assert principal == live.get(key, exists(key))

    @invariant()
    def controlled_accounts_act_only_for_their_owner(self) -> None:
        for address, owner in self.controlled.items():
            for user in USERS:
                expected = address if user == owner else Refused(f"Vault not registered: {address}")
                assert self.identities.acting_for(user, address) == expected

    @invariant()
    def at_most_one_agent_per_master_and_name(self) -> None:
        seen = [(a.master, a.name) for a in self.identities.agents.values()]
        assert len(seen) == len(set(seen))


IdentityMachine.TestCase.settings = settings(max_examples=60, stateful_step_count=30, deadline=None)
test_identity_machine = IdentityMachine.TestCase
