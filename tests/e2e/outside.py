"""A simulator that outlives the services it serves, and what tests read and do on it.

``outside_venue`` runs the shipped config's simulator in the test's own nursery (as ``mm sim``
would run beside ``mm start``), so that a service can stop and start again (point it at the
venue with the ``venue.url`` override) while the venue's accounts, fills and market go on. The
readers take the venue's state in-process: a test's reads do not spend the venue's IP rate
limit, which the services share on loopback. The actions trade on the service's account
behind its back, as another client of the account (or the venue's own flow) would.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import trio

from mm.app import Service
from mm.config import load_config, resolve_secrets
from mm.journal import DATABASE_NAME, read_events
from mm.model import OrderId, TradeId, journaled_order_id, journaled_trade_id
from mm.venues.hyperliquid.signing import address_from_private_key
from mm.venues.sim.config import CascadeConfig
from mm.venues.sim.engine import OrderRequest
from mm.venues.sim.venue import SimVenue
from tests.e2e.virtual import SHIPPED_CONFIG, shipped_env, wait_for
from tests.ids import hl_oid, hl_tid

Key = tuple[TradeId, OrderId]  # (tid, oid), as mm knows a fill


@asynccontextmanager
async def outside_venue(tmp_path: Path) -> AsyncIterator[SimVenue]:
    """The shipped config's simulator, run by the test: it outlives the services it serves."""
    env = shipped_env(tmp_path / "venue")
    config = load_config(SHIPPED_CONFIG, env)
    # The faucet funds the shipped account (the development key's), as the embedded venue does.
    key = resolve_secrets(config, env).venue_key
    assert key is not None
    venue = SimVenue(config.sim, fund_at_start=(address_from_private_key(key),))
    async with trio.open_nursery() as nursery:
        await nursery.start(venue.run)
        try:
            yield venue
        finally:
            nursery.cancel_scope.cancel()


# --- reading ------------------------------------------------------------------------------------


def venue_positions(venue: SimVenue, user: str) -> dict[str, float]:
    """Per listed coin, the account's signed position at the venue (0.0 when flat)."""
    account = venue.engine.account(user)
    return {
        spec.name: (account.position(spec.index).szi / 10**spec.sz_decimals if account else 0.0)
        for spec in venue.specs
    }


def venue_fill_keys(venue: SimVenue, user: str) -> set[Key]:
    """The account's fills at the venue, by trade id (the engine's numbers, as mm reads them)."""
    return {(hl_tid(fill.tid), hl_oid(fill.oid)) for fill in venue.engine.fills.get(user, ())}


def journaled_keys(service: Service) -> list[Key]:
    """The service's journaled fills, by trade id, in write order (duplicates kept)."""
    entries = read_events(service.config.run_dir / DATABASE_NAME, "fill")
    return [
        (journaled_trade_id(entry.data["tid"]), journaled_order_id(entry.data["oid"]))
        for entry in entries
    ]


def local_positions(service: Service) -> dict[str, float]:
    positions = service.trading.positions
    return {coin: positions.position(coin) for coin in service.config.strategy.symbols}


def agrees(service: Service, venue: SimVenue) -> bool:
    """Every configured coin's position is the venue's (zero where the venue has none)."""
    at_venue = venue_positions(venue, service.adapter.account)
    local = local_positions(service)
    return all(abs(size - at_venue.get(coin, 0.0)) <= 1e-9 for coin, size in local.items())


async def in_sync(service: Service) -> None:
    """Started (the startup sequence read the account) and the user stream in sync."""

    def ready() -> bool:
        adapter = service.adapter
        stream = adapter.user_stream
        return adapter.startup is not None and stream is not None and stream.synced.is_set()

    await wait_for(ready, within=30)


# --- acting behind the service's back ----------------------------------------------------------


def take(
    venue: SimVenue, user: str, coin: str, is_buy: bool, size: float, *, reduce: bool = False
) -> None:
    """One IOC order of ``user``'s that takes liquidity (up to 5% through the mark)."""
    spec = venue.engine.by_name[coin]
    mark = venue.engine.mark(spec.index)
    assert mark is not None
    px = f"{int(mark * (1.05 if is_buy else 0.95))}"
    sz = f"{size:.{spec.sz_decimals}f}"
    request = OrderRequest(spec.index, is_buy, px, sz, reduce_only=reduce, tif="Ioc")
    venue.engine.place(user, request, venue.now_ms())
    venue.publish_events()


def flatten(venue: SimVenue, user: str, coin: str) -> None:
    """Another client of the account closes ``coin``'s position with one IOC order."""
    spec = venue.engine.by_name[coin]
    account = venue.engine.account(user)
    assert account is not None
    lots = account.position(spec.index).szi
    assert lots, f"no {coin} position to flatten"
    take(venue, user, coin, lots < 0, abs(lots) / 10**spec.sz_decimals, reduce=True)
    assert account.position(spec.index).szi == 0


async def lose(venue: SimVenue, user: str, usd: float) -> None:
    """Lose more than ``usd`` on BTC: buy, let the mid fall 4%, sell what was bought."""
    spec = venue.engine.by_name["BTC"]
    mark = venue.engine.mark(spec.index)
    assert mark is not None
    size = round(usd / 0.03 / mark, 3)
    start = venue_positions(venue, user)["BTC"]
    take(venue, user, "BTC", True, size)
    assert venue_positions(venue, user)["BTC"] > start
    fall = CascadeConfig(
        coin="BTC", move=-0.04, duration_s=5.0, intensity=1.0, one_sided=0.0, thinning=0.0
    )
    venue.start_cascade(fall)
    await trio.sleep(fall.duration_s + 1.0)
    for _ in range(50):  # the bids refill between takes
        left = venue_positions(venue, user)["BTC"] - start
        if left < 10**-spec.sz_decimals / 2:
            return
        take(venue, user, "BTC", False, left)
        await trio.sleep(0.2)
    raise AssertionError(f"could not sell {left} BTC back")
