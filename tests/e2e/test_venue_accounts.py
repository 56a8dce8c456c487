"""API wallets, sub-accounts and vaults end to end (issue 14, item 5), on the shipped config.toml
and virtual time.

The venue's recommended setup is an API (agent) wallet signing for a master account; traders
also trade sub-accounts and vaults through ``vaultAddress``. mm used to send every action with a
null ``vaultAddress`` and the simulator credited every action to its signer, so none of this
could even be rehearsed. Now:

- an agent the master approved (``approveAgent``, user-signed) trades for the master: the
  orders and positions are the master's at the venue, and mm tracks them;
- a sub-account (traded by an API wallet of its master) and a vault (traded by its leader's own
  key) get every order and cancel with ``vaultAddress``: orders rest on the sub-account or the
  vault, none on the master, and the stop's cancel-all leaves nothing;
- an API wallet nobody approved, and a signature for the other network, are refused with the
  venue's text: mm sends nothing for the account, says why (``/readyz`` reasons, ``mm status``,
  ``mm check``) and, once the master approves the wallet, trades without a restart.

The master's own steps (funding, approving, creating a sub-account or a vault) are played
against the embedded venue in-process, signed with the master's key as the SDK signs them.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
import trio

from mm import clock
from mm.app import Service
from mm.config import load_config, resolve_secrets
from mm.model import OrderId
from mm.ops.checks import run_checks
from mm.venues.hyperliquid.signing import address_from_private_key, sign_l1_action
from mm.venues.hyperliquid.wire import NonceSource, approve_agent_request
from mm.venues.sim.hyperliquid.exchange import ExchangeHandler
from mm.venues.sim.identities import sub_account_address, vault_address
from mm.venues.sim.venue import SimVenue
from supervisors import walk
from tests.e2e.virtual import SHIPPED_CONFIG, positions_at_venue, shipped_env, sim_client, venue
from tests.hyperliquid_adapter import hyperliquid
from tests.ids import hl_oid

MASTER_KEY = "0x" + "4d" * 32
AGENT_KEY = "0x" + "a9" * 32
MASTER = address_from_private_key(MASTER_KEY).lower()
AGENT = address_from_private_key(AGENT_KEY).lower()
DOES_NOT_EXIST = f"User or API Wallet {AGENT} does not exist."
NONCES = NonceSource()  # the master's: wall-clock milliseconds, strictly increasing


# --- the master's own steps on the venue -----------------------------------------------------


def act(sim: SimVenue, body: dict[str, Any]) -> Any:
    """``POST /exchange`` answered in-process by the embedded venue."""
    return ExchangeHandler(sim).handle(body)


def as_master(sim: SimVenue, action: dict[str, Any]) -> Any:
    """An L1 action signed by the master's own key, as the SDK signs it (testnet)."""
    nonce = NONCES.next()
    signature = sign_l1_action(MASTER_KEY, action, nonce, mainnet=False)
    body = {"action": action, "nonce": nonce, "signature": signature, "vaultAddress": None}
    answer = act(sim, body)
    assert answer["status"] == "ok", answer
    return answer["response"]


def approve(sim: SimVenue, agent: str = AGENT) -> None:
    body = approve_agent_request(MASTER_KEY, agent, nonce=NONCES.next(), mainnet=False)
    assert act(sim, body) == {"status": "ok", "response": {"type": "default"}}


def fund_and_approve(sim: SimVenue) -> None:
    sim.fund(MASTER)
    approve(sim)


def sub_account_by_its_master(sim: SimVenue) -> None:
    sim.fund(MASTER)
    created = as_master(sim, {"type": "createSubAccount", "name": "mm desk"})
    assert created == {"type": "createSubAccount", "data": sub_account_address(MASTER, 0)}
    transfer = {
        "type": "subAccountTransfer",
        "subAccountUser": created["data"],
        "isDeposit": True,
        "usd": 60_000_000_000,
    }
    as_master(sim, transfer)
    approve(sim)  # the sub-account is traded by an API wallet of its master


def vault_led_by_the_master(sim: SimVenue) -> None:
    sim.fund(MASTER)
    action = {
        "type": "createVault",
        "name": "mm vault",
        "description": "market making",
        "initialUsd": 60_000_000_000,
        "nonce": clock.wall_ms(),  # the SDK's habit; the venue reads the request's
    }
    assert as_master(sim, action) == {"type": "createVault", "data": vault_address(MASTER, 0)}


# --- running the service ---------------------------------------------------------------------


def build(
    run_dir: Path, overrides: dict[str, Any], key: str | None
) -> tuple[Service, dict[str, str]]:
    env = shipped_env(run_dir, overrides) | ({"MM_HL_PRIVATE_KEY": key} if key else {})
    config = load_config(SHIPPED_CONFIG, env)
    return Service(config, resolve_secrets(config, env)), env


@asynccontextmanager
async def running(
    service: Service, prepare: Callable[[SimVenue], None] | None = None
) -> AsyncIterator[Service]:
    """The service started (``prepare`` plays the master's steps on its venue first); stopped
    gracefully, its cancel-all done, on exit."""
    if prepare is not None:
        prepare(venue(service))
    async with trio.open_nursery() as nursery:
        nursery.start_soon(service.run)
        try:
            yield service
        finally:
            service.request_stop("test finished")


async def until(condition: Callable[[], bool], what: str, real_s: float = 60.0) -> None:
    """Wait for ``condition`` while the service runs, bounded in real time: its start hands
    work to threads, and each time it does the virtual clock jumps (no virtual deadline)."""
    give_up = time.monotonic() + real_s
    while not condition():  # the state is kept by the service's tasks
        assert time.monotonic() < give_up, f"timed out waiting for {what}"
        await trio.sleep(0.1)


def quoting(service: Service) -> bool:
    """Both sides of every symbol rest at the venue on the account traded for."""
    sim = venue(service)
    sides: dict[str, set[bool]] = {}
    for order in sim.engine.open_orders(service.adapter.account):
        sides.setdefault(sim.specs[order.asset].name, set()).add(order.is_buy)
    return all(sides.get(coin) == {True, False} for coin in service.config.strategy.symbols)


def venue_oids(service: Service, user: str) -> set[OrderId]:
    return {hl_oid(order.oid) for order in venue(service).engine.open_orders(user)}


def tracked_oids(service: Service) -> set[OrderId]:
    live = service.adapter.dispatcher.registry.live()
    return {order.oid for order in live if order.oid is not None}


def agrees(service: Service) -> bool:
    at_venue = positions_at_venue(service)
    positions = service.trading.positions
    return all(
        abs(positions.position(coin) - at_venue.get(coin, 0.0)) <= 1e-9
        for coin in service.config.strategy.symbols
    )


def everyone_but(user: str) -> set[str]:
    """Every address but ``user`` (and the market's own) that has orders or fills."""
    return {MASTER, AGENT} - {user}


async def trades_for(service: Service, account: str) -> None:
    """mm quotes and fills on ``account`` at the venue, tracks those orders, and its positions
    are the venue's for ``account``; nothing rests or fills anywhere else of ours."""
    await until(lambda: quoting(service), "quotes resting on the account")
    assert service.adapter.account == account
    await until(
        lambda: (
            bool(venue_oids(service, account))
            and venue_oids(service, account) <= tracked_oids(service)
        ),
        "mm to track every order resting on the account",
    )
    sim = venue(service)
    await until(lambda: len(sim.engine.fills.get(account, ())) >= 2, "fills on the account", 120)
    await until(lambda: agrees(service), "mm's positions to be the account's")
    for other in everyone_but(account):
        assert venue_oids(service, other) == set()
        assert not sim.engine.fills.get(other)
    assert refused_reason(service) is None


# --- trading for someone else ----------------------------------------------------------------


async def test_an_agent_wallet_trades_for_its_master(
    tmp_path: Path, autojump_clock: trio.abc.Clock
) -> None:
    service, _ = build(tmp_path / "run", {"venue.account_address": MASTER}, AGENT_KEY)
    async with running(service, fund_and_approve):
        await trades_for(service, MASTER)
        access = service.status()["venue_access"]
        assert access["allowed"] is True
        assert access["signer"] == AGENT
        assert access["signs_for"] == MASTER
        assert access["vault_address"] is None
        assert access["summary"] == f"key {AGENT} signs for {MASTER}, as its API wallet"
    assert venue_oids(service, MASTER) == set()  # the stop canceled them, as the agent


@pytest.mark.parametrize(
    ("prepare", "account", "key", "how"),
    [
        pytest.param(
            sub_account_by_its_master,
            sub_account_address(MASTER, 0),
            AGENT_KEY,
            "its sub-account",
            id="sub-account-by-an-agent",
        ),
        pytest.param(
            vault_led_by_the_master,
            vault_address(MASTER, 0),
            MASTER_KEY,
            "vault",
            id="vault-by-its-leader",
        ),
    ],
)
async def test_a_sub_account_or_vault_trades_with_vault_address(
    tmp_path: Path,
    autojump_clock: trio.abc.Clock,
    prepare: Callable[[SimVenue], None],
    account: str,
    key: str,
    how: str,
) -> None:
    service, _ = build(tmp_path / "run", {"venue.account_address": account}, key)
    async with running(service, prepare):
        await trades_for(service, account)
        access = service.status()["venue_access"]
        assert access["vault_address"] == account
        assert access["signs_for"] == MASTER
        assert f"{how} {account}" in access["summary"]
        client = hyperliquid(service).client
        assert client is not None
        assert client.vault_address == account
    # Every cancel carried the vaultAddress: without it the master's (empty) book is searched.
    assert venue_oids(service, account) == set()
    assert venue_oids(service, MASTER) == set()


# --- refused: nothing is sent, mm says why, and trades once the venue allows it ---------------


def refused_reason(service: Service) -> str | None:
    reasons = [r for r in service.not_trading() if r.startswith("the venue refuses the key")]
    return reasons[0] if reasons else None


def nothing_sent(service: Service) -> None:
    sim = venue(service)
    for user in (MASTER, AGENT, service.adapter.account):
        assert sim.engine.open_orders(user) == []
        assert not sim.engine.history.get(user)  # no order ever reached the venue for it


async def test_an_unapproved_agent_is_refused_then_trades_once_approved(
    tmp_path: Path, autojump_clock: trio.abc.Clock
) -> None:
    # The embedded venue funds the configured account, the master; nobody approved the agent.
    run_dir = tmp_path / "run"
    service, env = build(run_dir, {"venue.account_address": MASTER}, AGENT_KEY)
    async with running(service):
        await until(lambda: refused_reason(service) is not None, "the refusal")
        reason = refused_reason(service)
        assert reason is not None
        assert f'the venue says "{DOES_NOT_EXIST}"' in reason
        assert "approveAgent" in reason
        assert service.status()["venue_access"]["problem"] in reason
        # Waited out, not crashed: refusals for longer than the restart period (60 s), no
        # restart, nothing sent.
        await trio.sleep(2 * service.config.supervision.restart_period)
        nothing_sent(service)
        assert [s.path for s in walk(service.root.status()) if s.restarts] == []
        checks = {
            result.name: result
            for result in await run_checks(
                service.config,
                resolve_secrets(service.config, env),
                post=False,
                admin_url=service.admin_url,
            )
        }
        assert checks["venue_access"].ok is False
        assert DOES_NOT_EXIST in checks["venue_access"].detail

        # The master approves the wallet, over the venue's HTTP face: mm trades, no restart.
        async with sim_client(service) as sim:
            body = approve_agent_request(MASTER_KEY, AGENT, nonce=NONCES.next(), mainnet=False)
            reply = await sim.post("/exchange", json=body)
            assert reply.json() == {"status": "ok", "response": {"type": "default"}}
        await until(lambda: quoting(service), "quotes once the agent is approved")
        assert refused_reason(service) is None
        assert service.status()["venue_access"]["allowed"] is True


async def test_a_signature_for_the_other_network_is_refused(
    tmp_path: Path, autojump_clock: trio.abc.Clock
) -> None:
    # mm signs for mainnet; the embedded venue (sim.network, shipped: testnet) recovers another
    # address from every signature. The key's own account exists (the faucet funded it).
    service, _ = build(tmp_path / "run", {"venue.network": "mainnet"}, None)
    async with running(service):
        await until(lambda: refused_reason(service) is not None, "the refusal")
        reason = refused_reason(service)
        assert reason is not None
        signer = hyperliquid(service).signer.address.lower()
        assert "User or API Wallet 0x" in reason
        assert f'does not exist." to a signature by {signer}' in reason
        assert "another network than mainnet (venue.network)" in reason
        await trio.sleep(2 * service.config.supervision.restart_period)
        assert venue(service).engine.open_orders(signer) == []
        assert not venue(service).engine.history.get(signer)


@pytest.mark.parametrize(
    ("overrides", "key", "expected", "ok"),
    [
        ({}, None, "signs for its own account", True),
        ({"venue.account_address": MASTER}, AGENT_KEY, DOES_NOT_EXIST, False),
        ({"venue.network": "mainnet"}, None, "another network than mainnet", False),
    ],
    ids=["own-key", "unapproved-agent", "wrong-network"],
)
async def test_mm_check_says_whether_the_key_may_trade_for_the_account(
    tmp_path: Path,
    autojump_clock: trio.abc.Clock,
    overrides: dict[str, Any],
    key: str | None,
    expected: str,
    ok: bool,
) -> None:
    """``mm check`` without a running mm: the embedded venue it starts for the checks funds the
    configured account as the service's would, and is asked."""
    service, env = build(tmp_path / "run", overrides, key)
    config = service.config
    results = await run_checks(config, resolve_secrets(config, env), post=False, admin_url=None)
    [check] = [result for result in results if result.name == "venue_access"]
    assert check.ok is ok, check.detail
    assert expected in check.detail
