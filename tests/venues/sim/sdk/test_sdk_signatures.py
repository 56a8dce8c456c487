"""Who an action acts for: the simulator recovers the signer from the signature, as the venue does.

An action signed by a key acts for that key's address and no other; a payload changed after
signing recovers to some unrelated address, never the signer's; a nonce is good once; and with
the faucet off an address the venue has never seen does not exist.
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
    FAUCET_USDC,
    GTC,
    Sim,
    far_bid,
    now_ms,
    resting_oid,
    statuses,
)

DOES_NOT_EXIST = re.compile(r"User or API Wallet (0x[0-9a-fA-F]{40}) does not exist\.")


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

    answers = [post_exchange(sim, signed(key, order_action(px), nonce)) for key in keys]

    for key, answer in zip(keys, answers, strict=True):
        assert oids_of(info, address_from_private_key(key)) == [resting_oid(answer)]


def test_unknown_address_does_not_exist_without_faucet(sim_without_faucet: Sim) -> None:
    wallet = eth_account.Account.create()
    exchange = Exchange(wallet, sim_without_faucet.url)
    info = Info(sim_without_faucet.url, skip_ws=True)

    answer = exchange.order("BTC", True, 0.001, far_bid(info, "BTC"), GTC)

    assert set(answer) == {"status", "response"}
    assert answer["status"] == "err"
    match = DOES_NOT_EXIST.fullmatch(answer["response"])
    assert match is not None, answer
    assert match.group(1).lower() == wallet.address.lower()
    assert info.open_orders(wallet.address) == []
    assert info.user_state(wallet.address)["marginSummary"]["accountValue"] == "0.0"
    assert exchange.cancel("BTC", 1)["response"] == answer["response"]


def test_unknown_address_is_funded_by_the_faucet(
    sim: Sim, info: Any, exchange: Any, wallet: Any
) -> None:
    assert info.user_state(wallet.address)["marginSummary"]["accountValue"] == "0.0"

    resting_oid(exchange.order("BTC", True, 0.001, far_bid(info, "BTC"), GTC))

    value = float(info.user_state(wallet.address)["marginSummary"]["accountValue"])
    assert value == pytest.approx(FAUCET_USDC)
