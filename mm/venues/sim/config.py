"""The ``[sim]`` config section: the embedded venue simulator."""

from __future__ import annotations

import attrs

from mm.settings import at_least, non_empty, non_negative, one_of, port, positive, setting
from mm.venues.sim.faults import FaultConfig


def _known_coins(value: tuple[str, ...]) -> str | None:
    from mm.venues.sim.universe import UNIVERSE

    unknown = [coin for coin in value if coin not in UNIVERSE]
    if not value:
        return "must name at least one coin"
    if unknown:
        return f"unknown coins {unknown}; known: {', '.join(UNIVERSE)}"
    return None


def _listed_cascades(value: tuple[CascadeConfig, ...]) -> str | None:
    from mm.venues.sim.universe import UNIVERSE

    unknown = [cascade.coin for cascade in value if cascade.coin not in UNIVERSE]
    return f"unknown coins {unknown}" if unknown else None


@attrs.frozen
class MarketConfig:
    """The synthetic market: mid-price process, resting liquidity and taker flow."""

    step_ms: int = setting(100, at_least(1))
    volatility_bps: float = setting(1.0, non_negative)
    jump_rate_per_hour: float = setting(2.0, non_negative)
    jump_size_bps: float = setting(30.0, non_negative)
    taker_a: float = setting(1.5, non_negative)
    taker_k: float = setting(0.3, positive)
    taker_size_usd: float = setting(20_000.0, positive)
    liquidity_levels: int = setting(10, at_least(1))
    liquidity_spread_bps: float = setting(4.0, positive)
    liquidity_step_bps: float = setting(1.5, positive)
    liquidity_size_usd: float = setting(3_000.0, positive)


@attrs.frozen
class CascadeConfig:
    """A scheduled cascade: the coin's mid moves by ``move`` (a fraction) over ``duration_s``."""

    coin: str = setting("BTC", non_empty)
    start_s: float = setting(60.0, non_negative)
    move: float = setting(-0.05)
    duration_s: float = setting(30.0, positive)


@attrs.frozen
class SimConfig:
    host: str = setting("127.0.0.1", non_empty)
    port: int = setting(0, port)
    seed: int = setting(7)
    coins: tuple[str, ...] = setting(("BTC", "ETH"), _known_coins)
    faucet_usdc: float = setting(100_000.0, non_negative)
    book_interval_ms: int = setting(500, at_least(1))
    idle_timeout_s: float = setting(60.0, positive)
    maker_fee: float = setting(0.00015)
    taker_fee: float = setting(0.00045)
    rate_limits: bool = setting(True)
    address_initial_requests: int = setting(10_000, non_negative)
    default_source: str = setting("testnet", one_of("mainnet", "testnet"))
    market: MarketConfig = MarketConfig()
    faults: FaultConfig = attrs.field(factory=FaultConfig)
    cascades: tuple[CascadeConfig, ...] = setting((), _listed_cascades)
