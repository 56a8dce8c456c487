"""Who an action acts for: the simulator recovers the signer from the signature, as the venue does.

An action signed by a key acts for that key's address and no other; a payload changed after
signing recovers to some unrelated address, never the signer's; a nonce is good once; an
address nobody funded does not exist, and neither does the address a signature for the other
network recovers to; the faucet funds on request only (``POST /sim/fund``, ``mm sim --fund``).
An API wallet the master approved with the SDK's ``approve_agent`` trades for the master; a
sub-account (the SDK's ``create_sub_account``, ``sub_account_transfer``) and a vault trade
through ``vaultAddress`` for their master or leader, and for nobody else.
"""

from __future__ import annotations

import copy
import re
import secrets
from typing import Any

import eth_account
import httpx
import pytest
from hyperliquid.exchange import Exchange
from hyperliquid.info import Info
from hyperliquid.utils.signing import float_to_wire

from mm.venues.hyperliquid.signing import (
    address_from_private_key,
    recover_l1_signer,
    sign_l1_action,
)
from tests.venues.sim.sdk.helpers import (
    DEFAULT_OK,
    FAUCET_USDC,
    GTC,
    Sim,
    far_bid,
    fund,
    now_ms,
    resting_oid,
    run_sim,
    statuses,
)

DOES_NOT_EXIST = re.compile(r"User or API Wallet (0x[0-9a-f]{40}) does not exist\.")


def order_action(px: str, sz: str = "0.001") -> dict[str, Any]:
    """A BTC bid in the venue's wire form, as the SDK builds it."""
    order = {"a": 0, "b": True, "p": px, "s": sz, "r": False, "t": GTC}
    return {"type": "order", "orders": [order], "grouping": "na"}


def signed(key: str, action: dict[str, Any], nonce: int) -> dict[str, Any]:
    """The body of ``POST /exchange`` for ``action``, signed off mainnet as the SDK signs."""
    return {
        "action": action,
        "nonce": nonce,
        "signature": sign_l1_action(key, action, nonce, mainnet=False),
        "vaultAddress": None,
        "expiresAfter": None,
    }


def post_exchange(sim: Sim, body: dict[str, Any]) -> Any:
    response = httpx.post(f"{sim.url}/exchange", json=body, timeout=5.0)
    assert response.status_code == 200, response.text
    return response.json()


def oids_of(info: Any, address: str) -> list[int]:
    return [order["oid"] for order in info.open_orders(address)]


def test_an_action_acts_for_its_signer(sim: Sim, info: Any) -> None:
    wallet_a, wallet_b = eth_account.Account.create(), eth_account.Account.create()
    fund(sim, wallet_a.address)
    fund(sim, wallet_b.address)
    exchange_a, exchange_b = Exchange(wallet_a, sim.url), Exchange(wallet_b, sim.url)
    px = far_bid(info, "BTC")
    oid_a = resting_oid(exchange_a.order("BTC", True, 0.001, px, GTC))

    oid_b = resting_oid(exchange_b.order("BTC", True, 0.001, px, GTC))

    assert oids_of(info, wallet_b.address) == [oid_b]
    assert oids_of(info, wallet_a.address) == [oid_a]
    assert info.query_order_by_oid(wallet_a.address, oid_b) == {"status": "unknownOid"}
    assert info.query_order_by_oid(wallet_b.address, oid_b)["order"]["status"] == "open"
    # And B cannot touch A's order.
    assert statuses(exchange_b.cancel("BTC", oid_a), "cancel") != ["success"]
    assert oids_of(info, wallet_a.address) == [oid_a]


def test_raw_signed_action_acts_for_the_key(sim: Sim, info: Any) -> None:
    key = secrets.token_hex(32)
    signer = address_from_private_key(key)
    fund(sim, signer)

    answer = post_exchange(
        sim, signed(key, order_action(float_to_wire(far_bid(info, "BTC"))), now_ms())
    )

    oid = resting_oid(answer)
    assert oids_of(info, signer) == [oid]


@pytest.mark.parametrize("field", ["p", "s"], ids=["price", "size"])
def test_a_payload_altered_after_signing_does_not_act_for_the_signer(
    sim: Sim, info: Any, field: str
) -> None:
    key = secrets.token_hex(32)
    signer = address_from_private_key(key)
    fund(sim, signer)
    nonce = now_ms()
    body = signed(key, order_action(float_to_wire(far_bid(info, "BTC"))), nonce)
    tampered = copy.deepcopy(body)
    order = tampered["action"]["orders"][0]
    order[field] = float_to_wire(float(order["p"]) - 1.0) if field == "p" else "0.002"

    answer = post_exchange(sim, tampered)

    assert info.open_orders(signer) == []
    candidates = {
        recover_l1_signer(tampered["action"], nonce, body["signature"], mainnet=mainnet)
        for mainnet in (True, False)
    }
    assert signer not in candidates
    if answer["status"] == "ok":  # it acted, for whoever the signature recovers to
        oid = resting_oid(answer)
        assert info.query_order_by_oid(signer, oid) == {"status": "unknownOid"}
        owners = [address for address in candidates if oid in oids_of(info, address)]
        assert len(owners) == 1
        assert owners[0] != signer
    else:  # or it was refused, but not as the signer's
        assert signer.lower() not in str(answer["response"]).lower()
    # The untouched body, under a fresh nonce, still acts for the signer.
    genuine = signed(key, body["action"], now_ms() + 1)
    oid = resting_oid(post_exchange(sim, genuine))
    assert oids_of(info, signer) == [oid]


def test_a_reused_nonce_is_rejected(sim: Sim, info: Any) -> None:
    key = secrets.token_hex(32)
    signer = address_from_private_key(key)
    fund(sim, signer)
    px = float_to_wire(far_bid(info, "BTC"))
    nonce = now_ms()
    body = signed(key, order_action(px), nonce)
    oid = resting_oid(post_exchange(sim, body))

    replay = post_exchange(sim, body)
    other_action = post_exchange(sim, signed(key, order_action(px, "0.002"), nonce))

    for answer in (replay, other_action):
        assert set(answer) == {"status", "response"}
        assert answer["status"] == "err"
        assert isinstance(answer["response"], str)
        assert "nonce" in answer["response"].lower()
        assert str(nonce) in answer["response"]
    assert oids_of(info, signer) == [oid]
    fresh = post_exchange(sim, signed(key, order_action(px, "0.002"), nonce + 1))
    assert sorted(oids_of(info, signer)) == [oid, resting_oid(fresh)]


def test_nonces_are_per_signer(sim: Sim, info: Any) -> None:
    nonce = now_ms()
    px = float_to_wire(far_bid(info, "BTC"))
    keys = [secrets.token_hex(32) for _ in range(2)]
    for key in keys:
        fund(sim, address_from_private_key(key))

    answers = [post_exchange(sim, signed(key, order_action(px), nonce)) for key in keys]

    for key, answer in zip(keys, answers, strict=True):
        assert oids_of(info, address_from_private_key(key)) == [resting_oid(answer)]


def test_an_address_nobody_funded_does_not_exist(sim: Sim, info: Any) -> None:
    wallet = eth_account.Account.create()
    exchange = Exchange(wallet, sim.url)

    answer = exchange.order("BTC", True, 0.001, far_bid(info, "BTC"), GTC)

    assert set(answer) == {"status", "response"}
    assert answer["status"] == "err"
    match = DOES_NOT_EXIST.fullmatch(answer["response"])
    assert match is not None, answer
    assert match.group(1) == wallet.address.lower()
    assert info.open_orders(wallet.address) == []
    assert info.user_state(wallet.address)["marginSummary"]["accountValue"] == "0.0"
    assert info.user_role(wallet.address) == {"role": "missing"}
    assert exchange.cancel("BTC", 1)["response"] == answer["response"]


def test_a_signature_for_the_other_network_is_refused(sim: Sim, info: Any) -> None:
    key = secrets.token_hex(32)
    signer = address_from_private_key(key)
    fund(sim, signer)
    action = order_action(float_to_wire(far_bid(info, "BTC")))
    nonce = now_ms()
    body = {**signed(key, action, nonce), "signature": sign_l1_action(key, action, nonce)}

    answer = post_exchange(sim, body)  # signed for mainnet; the simulator plays testnet

    match = DOES_NOT_EXIST.fullmatch(answer["response"])
    assert answer["status"] == "err", answer
    assert match is not None, answer
    recovered = recover_l1_signer(action, nonce, body["signature"], mainnet=False)
    assert match.group(1) == recovered.lower() != signer.lower()
    assert info.open_orders(signer) == []
    # The same action signed for testnet acts.
    oid = resting_oid(post_exchange(sim, signed(key, action, nonce)))
    assert oids_of(info, signer) == [oid]


def test_the_faucet_funds_on_request(sim: Sim, info: Any) -> None:
    wallet = eth_account.Account.create()

    answer = fund(sim, wallet.address, usdc=2_500.0)
    again = fund(sim, wallet.address, usdc=None)  # sim.faucet_usdc

    assert answer == {"user": wallet.address.lower(), "accountValue": "2500.0"}
    assert float(again["accountValue"]) == pytest.approx(2_500.0 + FAUCET_USDC)
    value = info.user_state(wallet.address)["marginSummary"]["accountValue"]
    assert float(value) == pytest.approx(2_500.0 + FAUCET_USDC)
    assert info.user_role(wallet.address) == {"role": "user"}
    resting_oid(Exchange(wallet, sim.url).order("BTC", True, 0.001, far_bid(info, "BTC"), GTC))


@pytest.mark.parametrize(
    ("body", "problem"),
    [
        ({"user": "0x12"}, "user must be an address"),
        ({}, "user must be an address"),
        ({"user": "0x" + "ab" * 20, "usdc": "10"}, "usdc must be a number"),
        ({"user": "0x" + "ab" * 20, "usdc": 0}, "usdc must be a positive number"),
        ({"user": "0x" + "ab" * 20, "usdc": -5}, "usdc must be a positive number"),
        ({"user": "0x" + "ab" * 20, "amount": 5}, "unknown keys ['amount']"),
    ],
)
def test_a_bad_fund_request_is_refused_and_funds_nobody(
    sim: Sim, info: Any, body: dict[str, Any], problem: str
) -> None:
    response = httpx.post(f"{sim.url}/sim/fund", json=body, timeout=5.0)

    assert response.status_code == 400
    assert problem in response.json()["error"]
    assert info.user_role("0x" + "ab" * 20) == {"role": "missing"}


def test_mm_sim_fund_funds_those_addresses_at_start(
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    funded, stranger = eth_account.Account.create(), eth_account.Account.create()
    directory = tmp_path_factory.mktemp("sim-fund")
    with run_sim(directory, seed=12, funded=(funded.address,)) as running:
        info = Info(running.url, skip_ws=True)
        state = info.user_state(funded.address)
        assert float(state["marginSummary"]["accountValue"]) == pytest.approx(FAUCET_USDC)
        assert info.user_role(stranger.address) == {"role": "missing"}
        oid = resting_oid(
            Exchange(funded, running.url).order("BTC", True, 0.001, far_bid(info, "BTC"), GTC)
        )
        assert oids_of(info, funded.address) == [oid]


# --- API wallets, sub-accounts, vaults ---------------------------------------------------------


def funded_master(sim: Sim) -> tuple[Any, Any]:
    master = eth_account.Account.create()
    fund(sim, master.address)
    return master, Exchange(master, sim.url)


def test_an_approved_agent_trades_for_its_master(sim: Sim, info: Any) -> None:
    master, master_exchange = funded_master(sim)

    approved, agent_key = master_exchange.approve_agent("desk")

    assert approved == DEFAULT_OK
    agent = eth_account.Account.from_key(agent_key)
    agent_exchange = Exchange(agent, sim.url, account_address=master.address)
    oid = resting_oid(agent_exchange.order("BTC", True, 0.001, far_bid(info, "BTC"), GTC))
    assert oids_of(info, master.address) == [oid]
    assert info.open_orders(agent.address) == []
    assert info.user_state(agent.address)["marginSummary"]["accountValue"] == "0.0"
    assert info.user_role(agent.address) == {
        "role": "agent",
        "data": {"user": master.address.lower()},
    }
    assert info.user_role(master.address) == {"role": "user"}
    [listed] = info.extra_agents(master.address)
    assert listed["name"] == "desk"
    assert listed["address"] == agent.address.lower()
    assert listed["validUntil"] > now_ms()
    # The agent cancels the master's order too.
    assert statuses(agent_exchange.cancel("BTC", oid), "cancel") == ["success"]
    assert info.open_orders(master.address) == []


def test_a_new_unnamed_agent_replaces_the_old_one(sim: Sim, info: Any) -> None:
    master, master_exchange = funded_master(sim)
    _, first_key = master_exchange.approve_agent()
    _, second_key = master_exchange.approve_agent()
    first = Exchange(eth_account.Account.from_key(first_key), sim.url)
    second = Exchange(eth_account.Account.from_key(second_key), sim.url)
    px = far_bid(info, "BTC")

    refused = first.order("BTC", True, 0.001, px, GTC)
    oid = resting_oid(second.order("BTC", True, 0.001, px, GTC))

    match = DOES_NOT_EXIST.fullmatch(refused["response"])
    assert match is not None, refused
    assert match.group(1) == first.wallet.address.lower()
    assert oids_of(info, master.address) == [oid]
    assert info.extra_agents(master.address) == []  # unnamed agents are not listed


def test_an_agent_cannot_approve_agents_nor_can_a_stranger(sim: Sim) -> None:
    _, master_exchange = funded_master(sim)
    _, agent_key = master_exchange.approve_agent("desk")
    agent = eth_account.Account.from_key(agent_key)
    stranger = eth_account.Account.create()

    by_agent, _ = Exchange(agent, sim.url).approve_agent("more")
    by_stranger, _ = Exchange(stranger, sim.url).approve_agent()

    assert by_agent == {
        "status": "err",
        "response": f"Must deposit before performing actions. User: {agent.address.lower()}",
    }
    assert by_stranger == {
        "status": "err",
        "response": f"Must deposit before performing actions. User: {stranger.address.lower()}",
    }


def test_a_sub_account_trades_through_vault_address(sim: Sim, info: Any) -> None:
    master, master_exchange = funded_master(sim)

    created = master_exchange.create_sub_account("desk one")

    assert set(created) == {"status", "response"}
    assert created["status"] == "ok", created
    assert created["response"]["type"] == "createSubAccount"
    sub = created["response"]["data"]
    assert re.fullmatch(r"0x[0-9a-f]{40}", sub)
    assert master_exchange.sub_account_transfer(sub, True, 20_000_000_000) == DEFAULT_OK
    [listed] = info.query_sub_accounts(master.address)
    assert (listed["name"], listed["subAccountUser"], listed["master"]) == (
        "desk one",
        sub,
        master.address.lower(),
    )
    assert float(listed["clearinghouseState"]["marginSummary"]["accountValue"]) == 20_000.0
    assert info.user_role(sub) == {"role": "subAccount", "data": {"master": master.address.lower()}}
    px = far_bid(info, "BTC")

    # The master, and an API wallet of the master, act for the sub-account with vaultAddress.
    by_master = resting_oid(
        Exchange(master, sim.url, vault_address=sub).order("BTC", True, 0.001, px, GTC)
    )
    _, agent_key = master_exchange.approve_agent()
    agent = eth_account.Account.from_key(agent_key)
    by_agent = resting_oid(
        Exchange(agent, sim.url, vault_address=sub).order("BTC", True, 0.001, px, GTC)
    )

    assert sorted(oids_of(info, sub)) == sorted([by_master, by_agent])
    assert info.open_orders(master.address) == []
    # Someone else's key may not.
    _, other = funded_master(sim)
    refused = Exchange(other.wallet, sim.url, vault_address=sub).order("BTC", True, 0.001, px, GTC)
    assert refused == {"status": "err", "response": f"Vault not registered: {sub}"}
    # And the sub-account's money goes back to the master.
    assert master_exchange.sub_account_transfer(sub, False, 1_000_000_000) == DEFAULT_OK
    assert float(info.user_state(sub)["marginSummary"]["accountValue"]) == 19_000.0


def test_vault_address_on_an_account_of_ones_own_is_not_a_vault(sim: Sim, info: Any) -> None:
    master, _ = funded_master(sim)
    exchange = Exchange(master, sim.url, vault_address=master.address)

    refused = exchange.order("BTC", True, 0.001, far_bid(info, "BTC"), GTC)

    assert refused == {
        "status": "err",
        "response": f"Vault not registered: {master.address.lower()}",
    }


def test_a_vault_trades_for_its_leader(sim: Sim, info: Any) -> None:
    leader, _ = funded_master(sim)
    nonce = now_ms()
    action = {
        "type": "createVault",
        "name": "mm vault",
        "description": "market making",
        "initialUsd": 30_000_000_000,
        "nonce": nonce,
    }
    created = post_exchange(sim, {**signed(leader.key.hex(), action, nonce)})
    assert created["status"] == "ok", created
    assert created["response"]["type"] == "createVault"
    vault = created["response"]["data"]

    details = info.post("/info", {"type": "vaultDetails", "vaultAddress": vault})

    assert details["leader"] == leader.address.lower()
    assert details["vaultAddress"] == vault
    assert details["name"] == "mm vault"
    assert info.user_role(vault) == {"role": "vault"}
    assert float(info.user_state(vault)["marginSummary"]["accountValue"]) == 30_000.0
    assert float(info.user_state(leader.address)["marginSummary"]["accountValue"]) == (
        pytest.approx(FAUCET_USDC - 30_000.0)
    )
    px = far_bid(info, "BTC")
    oid = resting_oid(
        Exchange(leader, sim.url, vault_address=vault).order("BTC", True, 0.001, px, GTC)
    )
    assert oids_of(info, vault) == [oid]
    assert info.open_orders(leader.address) == []
    _, other = funded_master(sim)
    refused = Exchange(other.wallet, sim.url, vault_address=vault).order(
        "BTC", True, 0.001, px, GTC
    )
    assert refused == {"status": "err", "response": f"Vault not registered: {vault}"}
    assert info.post("/info", {"type": "vaultDetails", "vaultAddress": "0x" + "01" * 20}) is None
