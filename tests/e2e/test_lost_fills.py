"""Fills whose user-stream frames the venue dropped are recovered (issue 13, item 2).

With the shipped config.toml on virtual time and 30% of the simulator's WebSocket data frames
dropped (``sim.faults.ws_drop``): a fill sent on both userFills and userEvents is lost to the
stream about one time in eleven, and nothing on the socket says so. mm reconciles its fills
with the venue's (``userFillsByTime``), periodically and as soon as the autonomy monitor sees
its positions drift from the venue's, and forwards what was missed through the normal fill
path. Before, the journal never learnt of those fills and the drift latched REDUCE_ONLY.
"""

from __future__ import annotations

from pathlib import Path

import trio

from mm.app import Service
from mm.journal import DATABASE_NAME, read_events
from mm.model import OrderId, TradeId, journaled_order_id, journaled_trade_id
from tests.e2e.virtual import positions_at_venue, shipped_service, venue, wait_for
from tests.ids import hl_oid, hl_tid

Key = tuple[TradeId, OrderId]  # (tid, oid), as mm knows a fill


def venue_fill_keys(service: Service) -> set[Key]:
    fills = venue(service).engine.fills.get(service.adapter.account, ())
    return {(hl_tid(fill.tid), hl_oid(fill.oid)) for fill in fills}


def journaled_keys(service: Service) -> list[Key]:
    entries = read_events(service.config.run_dir / DATABASE_NAME, "fill")
    return [
        (journaled_trade_id(entry.data["tid"]), journaled_order_id(entry.data["oid"]))
        for entry in entries
    ]


def agrees(service: Service) -> bool:
    at_venue = positions_at_venue(service)
    positions = service.trading.positions
    return all(
        abs(positions.position(coin) - at_venue.get(coin, 0.0)) <= 1e-9
        for coin in service.config.strategy.symbols
    )


def recovered(service: Service, source: str) -> float:
    value = service.registry.get_sample_value("mm_fills_recovered_total", {"source": source})
    return value or 0.0


async def test_fills_in_dropped_frames_reach_the_journal_and_the_positions(
    tmp_path: Path, autojump_clock: trio.abc.Clock
) -> None:
    async with shipped_service(tmp_path / "run", {"sim.faults.ws_drop": 0.3}) as service:
        await wait_for(lambda: len(venue_fill_keys(service)) >= 150, within=1800)
        made = venue_fill_keys(service)
        audit = service.config.feeds.user
        # Every fill made so far reaches the journal within one audit period.
        await wait_for(lambda: made <= set(journaled_keys(service)), within=audit.audit_every_s + 5)
        await wait_for(lambda: agrees(service), within=5)
        assert recovered(service, "audit") >= 3  # some were lost, and found by the audit
        mode = service.coordinator.status()
        assert mode["mode"] == "normal", mode  # a lost fill never lasted as drift
        assert not service.killswitch.switch.tripped
    keys = journaled_keys(service)
    assert len(keys) == len(set(keys))  # nothing journaled twice
    assert set(keys) <= venue_fill_keys(service)
