"""The whole service in-process on virtual time, with the shipped ``config.toml`` (or the
shipped ``config.triarb.toml``).

``shipped_service`` runs the real tree (embedded simulator, feeds, strategy, slots, risk,
autonomy, session, journal, admin) exactly as ``mm start -c config.toml`` builds it: only the
run directory, the admin port (0: a free one) and the JSON log file differ, and any override a
test passes (for a fault on the simulator, say), which it must name. Run it from a test that
asks for pytest-trio's ``autojump_clock``: every timer, deadline and wall-clock read of the
service follows Trio's clock (``mm.clock``), so minutes of trading take seconds.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import trio

from mm.app import Service
from mm.config import load_config, resolve_secrets
from mm.strategies.market_maker.strategy import MarketMaker
from mm.venues.sim.venue import SimVenue

SHIPPED_CONFIG = Path(__file__).resolve().parents[2] / "config.toml"
# The second shipped config: triangular arbitrage on the embedded KuCoin face.
SHIPPED_TRIARB_CONFIG = SHIPPED_CONFIG.with_name("config.triarb.toml")


def shipped_env(run_dir: Path, overrides: Mapping[str, Any] | None = None) -> dict[str, str]:
    """Environment overrides for the shipped config: a private run_dir and a free admin port,
    plus ``overrides`` given as ``{"section.key": value}`` (TOML literals)."""
    env = {
        "MM_SERVICE__RUN_DIR": str(run_dir),
        "MM_ADMIN__PORT": "0",
        "MM_SERVICE__JSON_LOGS": "false",
    }
    for dotted, value in (overrides or {}).items():
        *sections, key = dotted.split(".")
        name = "MM_" + "__".join(part.upper() for part in [*sections, key])
        env[name] = _literal(value)
    return env


def _literal(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return '"' + value + '"'
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_literal(item) for item in value) + "]"
    return repr(value)


@asynccontextmanager
async def shipped_service(
    run_dir: Path,
    overrides: Mapping[str, Any] | None = None,
    secrets: Mapping[str, str] | None = None,
    *,
    config_file: Path = SHIPPED_CONFIG,
) -> AsyncIterator[Service]:
    """The service built from a shipped config (config.toml unless ``config_file`` names
    another, ``SHIPPED_TRIARB_CONFIG`` say), running; stopped gracefully on exit, the stop
    awaited. ``secrets`` are further environment variables (``MM_HL_PRIVATE_KEY``, say)."""
    env = shipped_env(run_dir, overrides) | dict(secrets or {})
    config = load_config(config_file, env)
    service = Service(config, resolve_secrets(config, env))
    async with trio.open_nursery() as nursery:
        await nursery.start(service.run)
        try:
            yield service
        finally:
            service.request_stop("test finished")


async def wait_for(condition: Callable[[], bool], *, within: float, poll: float = 0.1) -> None:
    """Poll ``condition`` on the (virtual) clock until it holds; fail after ``within`` s."""
    with trio.fail_after(within):
        while not condition():  # noqa: ASYNC110 - state kept by other tasks
            await trio.sleep(poll)


@asynccontextmanager
async def sim_client(service: Service) -> AsyncIterator[httpx.AsyncClient]:
    """An HTTP client on the embedded simulator (``/info``, ``/sim/faults``, ...)."""
    assert service.venue_url is not None
    async with httpx.AsyncClient(base_url=service.venue_url, timeout=10.0) as client:
        yield client


@asynccontextmanager
async def admin_client(service: Service) -> AsyncIterator[httpx.AsyncClient]:
    """An HTTP client on the service's admin server."""
    assert service.admin_url is not None
    async with httpx.AsyncClient(base_url=service.admin_url, timeout=10.0) as client:
        yield client


def market_maker(service: Service) -> MarketMaker:
    """The strategy the shipped config runs (strategy.kind = "market_maker"), for its plans."""
    strategy = service.trading.strategy
    assert isinstance(strategy, MarketMaker), f"the shipped strategy, got {strategy!r}"
    return strategy


def venue(service: Service) -> SimVenue:
    """The embedded simulator, read in-process: a test's reads must not spend the venue's IP
    rate limit, which the service shares on loopback."""
    assert service.venue is not None, "the shipped config runs the embedded simulator"
    return service.venue


def resting_sides(service: Service) -> dict[str, set[str]]:
    """Per coin, the sides ("B", "A") of the service's orders resting at the venue now."""
    sim = venue(service)
    sides: dict[str, set[str]] = {}
    for order in sim.engine.open_orders(service.adapter.account):
        coin = sim.specs[order.asset].name
        sides.setdefault(coin, set()).add("B" if order.is_buy else "A")
    return sides


def positions_at_venue(service: Service) -> dict[str, float]:
    """Per coin, the service's signed position at the venue now (coin units)."""
    sim = venue(service)
    account = sim.engine.account(service.adapter.account)
    if account is None:
        return {}
    positions = {}
    for spec in sim.specs:
        lots = account.position(spec.index).szi
        if lots:
            positions[spec.name] = lots / 10**spec.sz_decimals
    return positions


async def venue_open_orders(sim: httpx.AsyncClient, user: str) -> list[dict[str, Any]]:
    reply = await sim.post("/info", json={"type": "openOrders", "user": user})
    reply.raise_for_status()
    orders: list[dict[str, Any]] = reply.json()
    return orders


async def venue_positions(sim: httpx.AsyncClient, user: str) -> dict[str, float]:
    reply = await sim.post("/info", json={"type": "clearinghouseState", "user": user})
    reply.raise_for_status()
    return {
        item["position"]["coin"]: float(item["position"]["szi"])
        for item in reply.json()["assetPositions"]
    }
