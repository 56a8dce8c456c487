"""A process killed with SIGKILL in the middle of trading, and started again.

Against an external ``mm sim``: mm trades, is killed with SIGKILL (no cleanup at all), the
venue keeps filling its resting orders while it is down, and mm starts again. Afterwards the
journal holds exactly the fills the venue reports for the account (nothing lost, nothing
doubled), the positions mm reports equal the venue's, and the kill-switch state is the same.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from mm.journal import DATABASE_NAME, read_events
from mm.venues.config import DEV_PRIVATE_KEY
from mm.venues.hyperliquid.signing import address_from_private_key
from tests.conftest import ConfigWriter
from tests.e2e.fast import FAST
from tests.e2e.mmproc import MMProcess
from tests.venues.sim.sdk.helpers import Sim, run_sim

ACCOUNT = address_from_private_key(DEV_PRIVATE_KEY).lower()


@pytest.fixture
def sim(tmp_path: Path) -> Iterator[Sim]:
    directory = tmp_path / "venue"
    directory.mkdir()
    with run_sim(directory, seed=11, faucet_usdc=100_000.0) as running:
        yield running


def venue_info(sim: Sim, request: dict[str, Any]) -> Any:
    return httpx.post(f"{sim.url}/info", json=request, timeout=5.0).json()


def venue_fills(sim: Sim) -> set[tuple[int, int]]:
    fills = venue_info(sim, {"type": "userFills", "user": ACCOUNT})
    return {(int(fill["tid"]), int(fill["oid"])) for fill in fills}


def venue_positions(sim: Sim) -> dict[str, float]:
    state = venue_info(sim, {"type": "clearinghouseState", "user": ACCOUNT})
    return {p["position"]["coin"]: float(p["position"]["szi"]) for p in state["assetPositions"]}


def wait(condition: Any, within: float, what: str) -> None:
    deadline = time.monotonic() + within
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.1)


def status(info: Any) -> dict[str, Any]:
    result: dict[str, Any] = httpx.get(f"{info.admin_url}/status", timeout=5.0).json()
    return result


def test_sigkill_then_restart_loses_and_doubles_nothing(
    sim: Sim, write_config: ConfigWriter
) -> None:
    config = write_config(
        venue={"url": sim.url}, **{k: v for k, v in FAST.items() if k != "sim.market"}
    )
    first = MMProcess(config)
    first_info = first.wait_ready()
    wait(lambda: len(venue_fills(sim)) >= 4, 60, "fills before the crash")
    armed_before = status(first_info)["killswitch"]["tripped"]
    first.proc.kill()  # SIGKILL: no cleanup, orders stay resting at the venue
    first.proc.wait(timeout=10)
    fills_at_crash = len(venue_fills(sim))
    wait(lambda: len(venue_fills(sim)) > fills_at_crash, 30, "fills while mm is down")

    second = MMProcess(config)
    info = second.wait_ready()
    wait(lambda: status(info)["trading"]["in_sync"], 30, "the restarted user stream in sync")
    # Freeze trading (the kill switch cancels every order), then compare with the venue.
    httpx.post(f"{info.admin_url}/kill", json={"reason": "compare with the venue"}, timeout=5)
    wait(lambda: status(info)["killswitch"]["tripped"], 10, "the kill switch")

    def reported() -> dict[str, float]:
        return {
            coin: symbol["position"].get("position", 0.0)
            for coin, symbol in status(info)["trading"]["symbols"].items()
        }

    def agree() -> bool:
        venue = venue_positions(sim)
        return all(abs(size - venue.get(c, 0.0)) <= 1e-9 for c, size in reported().items())

    # A fill the venue made as the switch tripped may still be on its way down the user stream.
    try:
        wait(agree, 5, "mm's positions to equal the venue's")
    finally:
        venue = venue_positions(sim)
        for coin, size in reported().items():
            assert size == pytest.approx(venue.get(coin, 0.0), abs=1e-9), coin
    second.proc.terminate()
    assert second.wait(timeout=15) == 0

    journaled = read_events(second.run_dir / DATABASE_NAME, "fill")
    keys = [(int(f.data["tid"]), int(f.data["oid"])) for f in journaled]
    assert len(keys) == len(set(keys))  # nothing doubled
    assert set(keys) == venue_fills(sim)  # nothing lost, the fills made while down included
    assert armed_before is False
