"""Fixtures for driving the official Hyperliquid Python SDK against ``mm sim`` subprocesses.

The SDK is synchronous (requests, websocket-client threads), so the simulator runs as a real
``python -m mm sim`` process (see ``helpers.run_sim``), one for the session. Every test trades
from fresh random keys, funded by the simulator's faucet (``POST /sim/fund``) as a trader
deposits before trading, so tests share one simulator without seeing each other's orders.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import eth_account
import pytest
from hyperliquid.exchange import Exchange
from hyperliquid.info import Info

from tests.venues.sim.sdk.helpers import Sim, fund, run_sim, wait_for


@pytest.fixture(scope="session")
def sim(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sim]:
    """The simulator the tests share."""
    with run_sim(tmp_path_factory.mktemp("sim"), seed=11) as running:
        yield running


@pytest.fixture
def wallet() -> Any:
    """A fresh random key (an eth_account ``LocalAccount``)."""
    return eth_account.Account.create()


@pytest.fixture
def info(sim: Sim) -> Any:
    """An SDK ``Info`` without WebSocket."""
    return Info(sim.url, skip_ws=True)


@pytest.fixture
def exchange(sim: Sim, wallet: Any) -> Any:
    """An SDK ``Exchange`` trading for ``wallet``, funded by the faucet."""
    fund(sim, wallet.address)
    return Exchange(wallet, sim.url)


@pytest.fixture
def ws_info(sim: Sim) -> Iterator[Any]:
    """An SDK ``Info`` with its WebSocket open; disconnected at the end of the test.

    Subscribing only once the socket is open avoids the SDK's race between queueing a
    subscription and replaying the queue on open.
    """
    client = Info(sim.url)
    try:
        wait_for(lambda: bool(client.ws_manager.ws_ready), "the SDK's WebSocket to open")
        yield client
    finally:
        client.disconnect_websocket()
