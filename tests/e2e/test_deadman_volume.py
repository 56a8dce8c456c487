"""The venue's dead-man's switch on an account that has not traded enough (issue 14, item 3).

The venue arms ``scheduleCancel`` only for an account that has traded $1,000,000; the
simulator refuses a new account in the venue's words. mm used to log the refusal, ask again
every 10 s (spending requests) and trade on without saying it had no switch, and its kill
switch stopped its cancel-all after 10 s as though the switch would cancel what was left.

With the shipped config.toml on virtual time (``tests/e2e/virtual.py``), counting the
requests at the simulator: a new account is refused once and asked no more until its volume
could suffice, while status, ``mm status`` and the metric say the switch is unavailable; fills
that take the account past the gate get the switch armed without waiting for the venue's
figure; a kill while the venue loses every cancel keeps cancelling until the venue shows no
order; an account that has traded enough arms the switch as before.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import httpx
import pytest
import trio

from mm.app import Service
from mm.cli import render_status
from mm.journal import DATABASE_NAME, read_events
from tests.e2e.virtual import shipped_service, venue, wait_for


@asynccontextmanager
async def admin(service: Service) -> AsyncIterator[httpx.AsyncClient]:
    """The admin server, waited on as long as a kill's outcome may take (virtual time)."""
    assert service.admin_url is not None
    async with httpx.AsyncClient(base_url=service.admin_url, timeout=120.0) as client:
        yield client


def requests(service: Service) -> int:
    """The service's ``scheduleCancel`` requests that reached the simulator."""
    return venue(service).schedule_cancels[service.adapter.account]


def open_orders(service: Service) -> int:
    return len(venue(service).engine.open_orders(service.adapter.account))


def armed_at_venue(service: Service) -> bool:
    return venue(service).engine.scheduled_time(service.adapter.account) is not None


def metric(service: Service, name: str) -> float | None:
    return service.registry.get_sample_value(name)


async def test_a_new_account_is_refused_once_and_the_switch_said_unavailable(
    tmp_path: Path, autojump_clock: trio.abc.Clock
) -> None:
    async with shipped_service(tmp_path / "run") as service:
        keeper = service.adapter.deadman
        await wait_for(lambda: keeper.refusals == 1, within=60.0)
        assert requests(service) == 1
        await trio.sleep(180.0)  # three minutes of quoting: eighteen refreshes of the keeper
        assert open_orders(service) >= 2
        assert requests(service) == 1  # never asked again: the volume is far from enough
        status = service.status()
        deadman = status["deadman"]
        assert deadman["state"] == "unavailable"
        assert deadman["available"] is False
        assert deadman["required_volume"] == 1_000_000
        # The refusal's $0 and the fills since: the venue's own count, give or take a fill.
        at_venue = venue(service).address_limits.cum_volume_usdc(service.adapter.account)
        assert 0 < deadman["traded_volume"] == pytest.approx(at_venue, abs=200.0)
        assert "traded $1,000,000" in deadman["detail"]
        assert metric(service, "mm_deadman_switch_available") == 0
        assert metric(service, "mm_deadman_switch_armed") == 0
        assert "dead-man's switch: UNAVAILABLE: the venue arms it only" in render_status(status)
        assert not armed_at_venue(service)

        # Traded elsewhere past the gate: seen at the next read of the venue's figure.
        venue(service).credit_volume(service.adapter.account, 1_000_000)
        await wait_for(lambda: armed_at_venue(service), within=service_volume_check(service))
        assert keeper.refusals == 1
        assert service.status()["deadman"]["state"] == "armed"
        assert metric(service, "mm_deadman_switch_available") == 1
        assert metric(service, "mm_deadman_switch_armed") == 1


def service_volume_check(service: Service) -> float:
    """How soon the keeper sees volume traded elsewhere: its read, then one refresh."""
    deadman = service.config.feeds.deadman
    return deadman.volume_check_s + deadman.refresh_s + 1.0


async def test_fills_past_the_gate_get_the_switch_armed(
    tmp_path: Path, autojump_clock: trio.abc.Clock
) -> None:
    # $10 short of the gate: the first fill takes the account past it.
    short = {"sim.initial_volume_usdc": 999_990.0}
    async with shipped_service(tmp_path / "run", short) as service:
        keeper = service.adapter.deadman
        await wait_for(lambda: keeper.refusals == 1, within=60.0)
        refused_at = trio.current_time()
        await wait_for(lambda: armed_at_venue(service), within=600.0)
        # Armed on mm's own count of its fills, before the venue's figure was read again.
        assert trio.current_time() - refused_at < service.config.feeds.deadman.volume_check_s
        assert keeper.refusals == 1
        positions = service.trading.positions
        fills = sum(
            positions.get(coin).fills_buy + positions.get(coin).fills_sell
            for coin in service.config.strategy.symbols
        )
        assert fills >= 1
        assert service.status()["deadman"]["state"] == "armed"


async def test_a_kill_while_the_venue_loses_cancels_ends_with_no_order_left(
    tmp_path: Path, autojump_clock: trio.abc.Clock
) -> None:
    run_dir = tmp_path / "run"
    async with shipped_service(run_dir) as service, admin(service) as client:
        keeper = service.adapter.deadman
        await wait_for(lambda: keeper.refusals == 1 and open_orders(service) >= 2, within=60.0)
        asked = requests(service)
        faults = venue(service).faults
        faults.update({"lose_cancels": 1.0})  # the venue loses every cancel from now
        reply = await client.post("/kill", json={"reason": "drill"})
        answer = reply.json()
        assert reply.status_code == 200
        assert answer["cancel_all"]["zero"] is False, answer
        assert open_orders(service) >= 1  # the fault held: nothing canceled
        assert answer["backstop"]["armed"] is False
        assert "unavailable" in answer["backstop"]["detail"]
        assert requests(service) == asked  # the backstop knew better than to ask
        await trio.sleep(20.0)  # long past the first cancel-all's 10 s
        engine = venue(service).engine
        left = [order.oid for order in engine.open_orders(service.adapter.account)]
        assert left  # the fault held (takers may fill some of the orders meanwhile)
        during = service.status()["killswitch"]

        faults.update({"lose_cancels": 0.0})  # the venue recovers
        await wait_for(lambda: open_orders(service) == 0, within=60.0)
        fates = [engine.records[oid].status for oid in left]
        assert "canceled" in fates, fates  # canceled by mm, not left to takers
        # It was still at it when the venue recovered, and says so.
        assert answer["cancel_retrying"] is True
        assert during["cancel_retrying"] is True
        assert during["cancel_rounds"] >= 2
        await wait_for(lambda: not service.killswitch.sweeping, within=10.0)
        killswitch = service.status()["killswitch"]
        assert killswitch["last_cancel"]["zero"] is True
        assert killswitch["tripped"] is True
        await trio.sleep(30.0)
        assert open_orders(service) == 0  # trading stays stopped
    [swept] = read_events(run_dir / DATABASE_NAME, "kill_switch_cancel")
    assert swept.data["cancel_all"]["zero"] is True
    assert swept.data["rounds"] >= 3


async def test_an_account_that_has_traded_enough_arms_the_switch(
    tmp_path: Path, autojump_clock: trio.abc.Clock
) -> None:
    traded = {"sim.initial_volume_usdc": 1_000_000.0}
    async with shipped_service(tmp_path / "run", traded) as service:
        await wait_for(lambda: armed_at_venue(service), within=60.0)
        await trio.sleep(60.0)
        assert service.adapter.deadman.refusals == 0
        assert requests(service) >= 6  # refreshed every 10 s
        deadman = service.status()["deadman"]
        assert deadman["state"] == "armed"
        assert deadman["available"] is True
        assert metric(service, "mm_deadman_switch_available") == 1
        assert metric(service, "mm_deadman_switch_armed") == 1
