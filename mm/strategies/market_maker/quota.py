"""API-quota tiers: how quoting degrades as the venue's request headroom runs out.

From the adapter's headroom ``h`` in [0, 1] (defaults from the reference's rate-limit section):

* shadow spread ``lambda / max(h, 0.01)`` bps (0.5 bps lambda: 1 bps at 50%, 5 at 10%, 50 at 1%);
* ladder levels ``floor(sqrt(h / h_min) * max_levels)`` clamped to ``[1, max_levels]``;
* inventory-forcing below 10%: only the side that reduces inventory (both when flat);
* spread multiplier ``1 / sqrt(h)`` capped at 5x (and never below 1x);
* a hard veto below 1%.

Headroom is clamped to [0, 1]; NaN is treated as 0 (the safest reading).
"""

from __future__ import annotations

import enum
import math

import attrs

from mm.model import Side
from mm.settings import at_least, non_negative, positive, setting


class QuotaTier(enum.Enum):
    FULL = "full"  # >= 50%
    NORMAL = "normal"  # 20-50%
    MINIMAL = "minimal"  # 10-20%
    CONSERVATION = "conservation"  # 5-10%
    CRITICAL = "critical"  # 1-5%
    EXHAUSTED = "exhausted"  # < 1%


@attrs.frozen
class QuotaConfig:
    shadow_lambda_bps: float = setting(0.5, non_negative)
    shadow_floor: float = setting(0.01, positive)  # headroom floor in the shadow spread
    min_headroom: float = setting(0.5, positive)  # h_min: full ladder at or above this
    max_levels: int = setting(5, at_least(1))
    inventory_forcing_below: float = setting(0.10, non_negative)
    max_multiplier: float = setting(5.0, at_least(1.0))
    veto_below: float = setting(0.01, non_negative)
    full_at: float = setting(0.50, non_negative)
    normal_at: float = setting(0.20, non_negative)
    minimal_at: float = setting(0.10, non_negative)
    conservation_at: float = setting(0.05, non_negative)


@attrs.frozen
class QuotaDecision:
    headroom: float
    tier: QuotaTier
    shadow_spread_bps: float
    levels: int
    spread_multiplier: float
    inventory_forcing: bool
    side: Side | None  # the only side to quote when forcing with inventory; None = both
    veto: bool


def _tier(h: float, config: QuotaConfig) -> QuotaTier:
    if h < config.veto_below:
        return _EXHAUSTED
    if h >= config.full_at:
        return _FULL
    if h >= config.normal_at:
        return _NORMAL
    if h >= config.minimal_at:
        return _MINIMAL
    if h >= config.conservation_at:
        return _CONSERVATION
    return _CRITICAL


# The tiers read once: an enum member read through its class is a Python-level lookup.
_EXHAUSTED, _FULL, _NORMAL = QuotaTier.EXHAUSTED, QuotaTier.FULL, QuotaTier.NORMAL
_MINIMAL, _CONSERVATION, _CRITICAL = QuotaTier.MINIMAL, QuotaTier.CONSERVATION, QuotaTier.CRITICAL


def ladder_levels(h: float, config: QuotaConfig) -> int:
    raw = math.floor(math.sqrt(h / config.min_headroom) * config.max_levels)
    return min(max(raw, 1), config.max_levels)


def spread_multiplier(h: float, config: QuotaConfig) -> float:
    if h <= 0.0:
        return config.max_multiplier
    return min(max(1.0 / math.sqrt(h), 1.0), config.max_multiplier)


def decide(
    headroom: float, inventory: float = 0.0, config: QuotaConfig | None = None
) -> QuotaDecision:
    """The quota tier's effect on quoting for this headroom and signed inventory."""
    config = config or QuotaConfig()
    h = 0.0 if math.isnan(headroom) else min(max(headroom, 0.0), 1.0)
    forcing = h < config.inventory_forcing_below
    side: Side | None = None
    if forcing and inventory > 0:
        side = Side.SELL
    elif forcing and inventory < 0:
        side = Side.BUY
    return QuotaDecision(
        headroom=h,
        tier=_tier(h, config),
        shadow_spread_bps=config.shadow_lambda_bps / max(h, config.shadow_floor),
        levels=ladder_levels(h, config),
        spread_multiplier=spread_multiplier(h, config),
        inventory_forcing=forcing,
        side=side,
        veto=h < config.veto_below,
    )
