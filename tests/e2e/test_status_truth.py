"""What an operator sees is true (issue 12, item 5), with the shipped config.toml on virtual time.

A feed stalled past the kill threshold trips the switch once: status says why nothing is quoted
(the kill switch), counts one trip however long the condition holds, shows no open orders at
the venue, and does not claim the user stream is out of sync while it is healthy.
"""

from __future__ import annotations

from pathlib import Path

import trio

from tests.e2e.virtual import resting_sides, shipped_service, sim_client, venue, wait_for


async def test_status_after_a_kill_tells_the_truth(
    tmp_path: Path, autojump_clock: trio.abc.Clock
) -> None:
    async with shipped_service(tmp_path / "run") as service, sim_client(service) as sim:
        await wait_for(lambda: bool(resting_sides(service)), within=90.0)
        sim_venue = venue(service)

        def orders_column_matches_the_venue() -> bool:
            resting = [
                sim_venue.specs[order.asset].name
                for order in sim_venue.engine.open_orders(service.adapter.account)
            ]
            symbols = service.status()["trading"]["symbols"]
            return all(symbol["orders"] == resting.count(coin) for coin, symbol in symbols.items())

        # ORDERS counts the orders at the venue (equal whenever no request is in flight), not
        # the six the planned ladder holds.
        await wait_for(orders_column_matches_the_venue, within=5.0, poll=0.01)

        assert (await sim.post("/sim/faults", json={"stall_books": True})).status_code == 200
        await wait_for(lambda: service.killswitch.switch.tripped, within=60.0)
        await trio.sleep(20.0)  # the stale data still holds: the monitor keeps asking for KILL
        status = service.status()
        killswitch = status["killswitch"]
        assert killswitch["reason"] == "stale_data"
        assert killswitch["trips"] == 1
        trading = status["trading"]
        assert trading["in_sync"] is True  # the user stream is healthy: no "NOT IN SYNC"
        for symbol in trading["symbols"].values():
            assert symbol["gate"] == "kill switch tripped (stale_data)"
            assert symbol["orders"] == 0
            assert symbol["bid"] is None
            assert symbol["ask"] is None
        assert not resting_sides(service)
