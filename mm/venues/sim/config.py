"""The ``[sim]`` config section: the embedded venue simulator."""

from __future__ import annotations

import attrs

from mm.settings import (
    at_least,
    check_section,
    non_empty,
    non_negative,
    one_of,
    port,
    positive,
    setting,
)
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
    if unknown:
        return f"unknown coins {unknown}"
    # The entries' own constraints: a tuple's items are not visited by check_section.
    problems = [
        problem
        for index, cascade in enumerate(value)
        for problem in check_section(cascade, f"[{index}]")
    ]
    return "; ".join(problems) or None


def _funding_rate(value: float) -> str | None:
    from mm.venues.sim.engine import MAX_FUNDING_RATE

    if abs(value) <= MAX_FUNDING_RATE:
        return None
    return f"must be within +-{MAX_FUNDING_RATE} (the venue's cap: 4% an hour), got {value!r}"


def _above_minus_one(value: float) -> str | None:
    return None if value > -1 else f"must be > -1 (a fall of 100% or more), got {value!r}"


def _fraction(value: float) -> str | None:
    return None if 0 <= value <= 1 else f"must be between 0 and 1, got {value!r}"


def _below_one(value: float) -> str | None:
    return None if 0 <= value < 1 else f"must be >= 0 and < 1, got {value!r}"


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
    """A cascade: the coin's mid moves by ``move`` (a fraction) over ``duration_s``.

    While it runs, the takers on the moving side (sellers in a fall, buyers in a rise) arrive
    at ``intensity`` times their rate, ``one_sided`` of the takers on the other side stay away
    (0: all come, 1: none), and ``thinning`` of the resting liquidity on the side being hit
    (bids in a fall, asks in a rise) is withdrawn. The defaults are a liquidation cascade; a
    slow informed trend is a small ``move`` over minutes with, say, ``intensity = 2``,
    ``one_sided = 1`` and ``thinning = 0``; ``intensity = 1``, ``one_sided = 0`` and
    ``thinning = 0`` move the mid alone. ``start_s`` counts from the venue's start for a
    scheduled cascade (``POST /sim/cascade`` starts one at once).
    """

    coin: str = setting("BTC", non_empty)
    start_s: float = setting(60.0, non_negative)
    move: float = setting(-0.05, _above_minus_one)
    duration_s: float = setting(30.0, positive)
    intensity: float = setting(8.0, non_negative)
    one_sided: float = setting(0.5, _fraction)
    thinning: float = setting(0.6, _below_one)


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
    funding_rate: float = setting(0.0000125, _funding_rate)
    rate_limits: bool = setting(True)
    address_initial_requests: int = setting(10_000, non_negative)
    # Traded volume (USDC) every address starts with, as if it had traded before: the venue's
    # address budget grows with it, and it sets a dead-man's switch (scheduleCancel) only for
    # an account that has traded $1,000,000. 0: a new account.
    initial_volume_usdc: float = setting(0.0, non_negative)
    network: str = setting("testnet", one_of("mainnet", "testnet"))
    # An action takes effect (and is answered) when its block is committed: a delay drawn
    # between these (milliseconds) after it arrived, in the order received.
    commit_delay_min_ms: float = setting(200.0, non_negative)
    commit_delay_max_ms: float = setting(500.0, non_negative)
    market: MarketConfig = MarketConfig()
    faults: FaultConfig = attrs.field(factory=FaultConfig)
    cascades: tuple[CascadeConfig, ...] = setting((), _listed_cascades)

    def problems(self, path: str) -> list[str]:
        """What the fields' own checks cannot see: the commit delay's range is in order."""
        if self.commit_delay_min_ms > self.commit_delay_max_ms:
            return [
                f"{path}.commit_delay_max_ms: must be at least commit_delay_min_ms "
                f"({self.commit_delay_min_ms:g}), got {self.commit_delay_max_ms:g}"
            ]
        return []
