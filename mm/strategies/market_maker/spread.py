"""Spread composition: named multiplicative factors and capped additive adjustments.

The half spread quoted is ``base * min(product of factors, max_multiplier) + additive`` where
the additive part (bps) is clamped to ``[-max_additive_bps, max_additive_bps]``. Each factor is
floored at 1.0 (the chain only ever widens) and kept in the result for metrics and status. A
non-finite factor is treated as the cap, so a broken input widens rather than tightens.

``DefensiveFactor`` is the small state behind the "defensive" factor: it jumps after an adverse
fill and decays back to 1.0 with a half life. Times are seconds on any clock the caller uses.
"""

from __future__ import annotations

import enum
import math
from collections.abc import Iterable, Mapping

import attrs

from mm.settings import at_least, non_negative, positive, setting


class SpreadFactor(enum.Enum):
    # Hashed by identity, in C: the members are singletons compared by identity, and the chain
    # keys a dict by them at every quote (Enum's own __hash__ is Python code).
    __hash__ = object.__hash__

    TOXICITY = "toxicity"
    DEFENSIVE = "defensive"
    STALENESS = "staleness"
    MODEL_GATING = "model_gating"
    QUOTA = "quota"
    RISK = "risk"


@attrs.frozen
class SpreadConfig:
    max_multiplier: float = setting(10.0, at_least(1.0))
    max_additive_bps: float = setting(20.0, non_negative)


@attrs.frozen
class SpreadComposition:
    """A composed half spread with every ingredient kept for metrics and status."""

    base_bps: float
    factors: dict[SpreadFactor, float]  # each as applied (floored at 1.0, non-finite -> cap)
    raw_multiplier: float  # product before the cap
    multiplier: float  # product after the cap
    capped: bool
    additive: dict[str, float]
    additive_bps: float  # total after the clamp
    half_spread_bps: float

    def status(self) -> dict[str, float]:
        """Flat name -> value pairs for a status page or gauges."""
        out = {f"factor_{factor.value}": value for factor, value in self.factors.items()}
        out |= {f"additive_{name}": value for name, value in self.additive.items()}
        out |= {
            "base_bps": self.base_bps,
            "multiplier": self.multiplier,
            "raw_multiplier": self.raw_multiplier,
            "additive_bps": self.additive_bps,
            "half_spread_bps": self.half_spread_bps,
        }
        return out


def _clean_factor(value: float, cap: float) -> float:
    if not math.isfinite(value):
        return cap
    return max(value, 1.0)


def _pairs(
    factors: Mapping[SpreadFactor, float] | Iterable[tuple[SpreadFactor, float]],
) -> Iterable[tuple[SpreadFactor, float]]:
    return factors.items() if isinstance(factors, Mapping) else factors


def compose(
    base_bps: float,
    factors: Mapping[SpreadFactor, float] | Iterable[tuple[SpreadFactor, float]],
    additive: Mapping[str, float] | None = None,
    config: SpreadConfig | None = None,
) -> SpreadComposition:
    """Apply the factor chain and the additive adjustments to a base half spread (bps).

    ``factors`` as a mapping or as (factor, value) pairs (a later pair of the same factor
    replacing an earlier one, as in a dict): pairs spare the caller a dict of its own, whose
    every key (an enum member) is hashed by a Python-level ``__hash__``."""
    config = config or SpreadConfig()
    cap = config.max_multiplier
    pairs = factors if type(factors) is tuple else _pairs(factors)
    applied = {factor: _clean_factor(value, cap) for factor, value in pairs}
    raw = math.prod(applied.values())
    multiplier = min(raw, cap)
    adds = {
        name: (value if math.isfinite(value) else 0.0) for name, value in (additive or {}).items()
    }
    limit = config.max_additive_bps
    total = min(max(math.fsum(adds.values()), -limit), limit)
    base = base_bps if math.isfinite(base_bps) and base_bps > 0 else 0.0
    return SpreadComposition(
        base_bps=base,
        factors=applied,
        raw_multiplier=raw,
        multiplier=multiplier,
        capped=raw > cap,
        additive=adds,
        additive_bps=total,
        half_spread_bps=max(base * multiplier + total, 0.0),
    )


@attrs.frozen
class DefensiveConfig:
    bump: float = setting(0.5, non_negative)  # added to the factor per adverse fill
    max_factor: float = setting(3.0, at_least(1.0))
    half_life_s: float = setting(30.0, positive)


@attrs.define
class DefensiveFactor:
    """Widening after adverse fills, decaying back to 1.0 with a half life."""

    config: DefensiveConfig = attrs.field(factory=DefensiveConfig)
    _excess: float = 0.0  # factor - 1 at _since
    _since: float = 0.0

    def value(self, now: float) -> float:
        """The factor at ``now`` (1.0 when calm)."""
        if self._excess <= 0.0:
            return 1.0
        elapsed = max(now - self._since, 0.0)
        decay: float = 0.5 ** (elapsed / self.config.half_life_s)
        return 1.0 + self._excess * decay

    def on_adverse_fill(self, now: float) -> float:
        """Record an adverse fill; returns the new factor."""
        current = self.value(now) - 1.0
        self._excess = min(current + self.config.bump, self.config.max_factor - 1.0)
        self._since = max(now, self._since)
        return 1.0 + self._excess
