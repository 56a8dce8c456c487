"""``mm stop`` with lost WebSocket acks (issue 12, section 6): the stop confirms at the venue
that no order is left, or says which remain, in the log and the journal's ``service_stopping``.

Shipped config.toml on virtual time; the simulator loses 30% of the WebSocket post replies
from the start (``sim.faults.ws_drop_post_replies = 0.3``), or every one of them from just
before the stop (only REST answers then).
"""

from __future__ import annotations

from pathlib import Path

import pytest
import trio

from mm.journal import DATABASE_NAME, read_events
from tests.e2e.virtual import shipped_service, sim_client, venue, wait_for


@pytest.mark.parametrize(
    ("from_start", "at_stop"), [(0.3, None), (0.3, 1.0)], ids=["30%-lost", "all-lost-at-stop"]
)
async def test_stop_with_lost_acks_leaves_nothing_at_the_venue(
    tmp_path: Path, autojump_clock: trio.abc.Clock, from_start: float, at_stop: float | None
) -> None:
    run_dir = tmp_path / "run"
    faults = {"sim.faults.ws_drop_post_replies": from_start}
    async with shipped_service(run_dir, faults) as service, sim_client(service) as sim:
        assert service.venue is not None
        engine, account = service.venue.engine, service.adapter.account
        await wait_for(lambda: len(engine.open_orders(account)) >= 2, within=45.0)
        if at_stop is not None:
            reply = await sim.post("/sim/faults", json={"ws_drop_post_replies": at_stop})
            assert reply.status_code == 200
        stop_asked = trio.current_time()
    # shipped_service stopped it gracefully: the whole stop, as `mm stop` asks for it
    stopped_in = trio.current_time() - stop_asked
    assert engine.open_orders(account) == []
    [stopping] = read_events(run_dir / DATABASE_NAME, "service_stopping")
    report = stopping.data["cancel_all"]
    assert report["zero"] is True, report
    assert report["remaining"] == []
    assert report["canceled"] >= 2
    assert stopped_in < service.config.service.shutdown_timeout


async def test_a_graceful_stop_leaves_no_dead_mans_switch_armed(
    tmp_path: Path, autojump_clock: trio.abc.Clock
) -> None:
    # An armed switch left behind fires after the stop and spends one of the venue's ten
    # triggers of the day; it used to be disarmed only as the connection was closing (and fail).
    # The account has traded enough for the venue to arm one.
    traded = {"sim.initial_volume_usdc": 1_000_000.0}
    async with shipped_service(tmp_path / "run", traded) as service:
        engine = venue(service).engine
        await wait_for(
            lambda: engine.scheduled_time(service.adapter.account) is not None, within=60
        )
        service.request_stop("test")
        await wait_for(lambda: service.state != "running", within=10)
    assert engine.scheduled_time(service.adapter.account) is None
    assert service.adapter.deadman is not None
    assert service.adapter.deadman.errors == 0
