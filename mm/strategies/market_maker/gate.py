"""The quote gate: quote both sides, only the inventory-reducing side, or nothing, and why.

The gate runs before any spread is computed. Its inputs are plain values; its rule is that
nothing which can only change *by quoting* may hold it closed: fill counts, markout counts or a
learned model's readiness never block (a missing edge estimate falls through). Everything that
does block clears on its own with time or market data: a manual halt is lifted by an operator,
stale data refreshes, estimators warm from market data (``Warmup`` counts observations and
elapsed time, never fills), quota headroom refills, cascades and toxicity decay.

Checks run in order: manual, data_gate, warmup, quota_exhausted, cascade, toxic_flow,
no_edge_flat; the first that closes the gate wins. A one-sided decision names the side that
reduces inventory; when inventory is flat there is no such side, and the reason closes the gate
— except quota inventory-forcing, which quotes both sides when flat (the quota tier already
widens and thins the ladder), so a permanently low headroom never stops quoting for good.
"""

from __future__ import annotations

import enum
import math

import attrs

from mm.model import Side
from mm.settings import at_least, non_negative, setting


class NoQuoteReason(enum.Enum):
    WARMUP = "warmup"
    NO_EDGE_FLAT = "no_edge_flat"
    CASCADE = "cascade"
    MANUAL = "manual"
    QUOTA_EXHAUSTED = "quota_exhausted"
    TOXIC_FLOW = "toxic_flow"
    DATA_GATE = "data_gate"


class QuoteMode(enum.Enum):
    BOTH = "both"
    ONE = "one"
    NONE = "none"


@attrs.frozen
class GateConfig:
    cascade_one_sided: float = setting(0.5, non_negative)  # cascade severity (0 calm, unbounded)
    cascade_halt: float = setting(0.8, non_negative)
    toxicity_one_sided: float = setting(0.7, non_negative)  # score in [0, 1]
    toxicity_halt: float = setting(0.9, non_negative)
    quota_exhausted_below: float = setting(0.01, non_negative)
    quota_one_sided_below: float = setting(0.10, non_negative)
    flat_inventory: float = setting(0.0, non_negative)  # |inventory| at or below this is flat
    require_edge: bool = setting(False)
    min_edge_bps: float = setting(0.5, non_negative)


@attrs.frozen
class GateInputs:
    """What the gate looks at. ``fills_seen``/``markouts_seen`` are informational only."""

    estimators_warm: bool = True
    data_fresh: bool = True
    inventory: float = 0.0  # signed, coin units
    manual_halt: bool = False
    cascade_severity: float = 0.0
    quota_headroom: float = 1.0
    toxicity: float = 0.0
    edge_bps: float | None = None  # directional edge from market data; None = no estimate
    fills_seen: int = 0
    markouts_seen: int = 0


@attrs.frozen
class GateDecision:
    mode: QuoteMode
    side: Side | None = None  # the side quoted when mode is ONE
    reason: NoQuoteReason | None = None  # why NONE, or why only one side

    @property
    def quotes(self) -> bool:
        return self.mode is not QuoteMode.NONE

    def allows(self, side: Side) -> bool:
        if self.mode is QuoteMode.BOTH:
            return True
        return self.mode is QuoteMode.ONE and self.side is side


BOTH = GateDecision(QuoteMode.BOTH)
_DEFAULT = GateConfig()


def reducing_side(inventory: float, flat: float = 0.0) -> Side | None:
    """The side whose fills reduce ``inventory``; None when flat."""
    if inventory > flat:
        return Side.SELL
    if inventory < -flat:
        return Side.BUY
    return None


def _none(reason: NoQuoteReason) -> GateDecision:
    return GateDecision(QuoteMode.NONE, None, reason)


def _bad(value: float) -> bool:
    return not math.isfinite(value)


def decide(inputs: GateInputs, config: GateConfig | None = None) -> GateDecision:
    """The gate's decision for one quote cycle."""
    return decide_on(
        inputs.estimators_warm,
        inputs.data_fresh,
        inputs.inventory,
        inputs.quota_headroom,
        inputs.cascade_severity,
        inputs.toxicity,
        inputs.edge_bps,
        config or _DEFAULT,
        manual_halt=inputs.manual_halt,
    )


def decide_on(
    estimators_warm: bool,
    data_fresh: bool,
    inventory: float,
    quota_headroom: float,
    cascade_severity: float,
    toxicity: float,
    edge_bps: float | None,
    config: GateConfig,
    *,
    manual_halt: bool = False,
) -> GateDecision:
    """``decide`` on the ``GateInputs`` fields given one by one (the quote's hot path builds no
    inputs object)."""
    if manual_halt:
        return _none(NoQuoteReason.MANUAL)
    if not data_fresh:
        return _none(NoQuoteReason.DATA_GATE)
    if not estimators_warm:
        return _none(NoQuoteReason.WARMUP)
    headroom = 0.0 if _bad(quota_headroom) else quota_headroom
    if headroom < config.quota_exhausted_below:
        return _none(NoQuoteReason.QUOTA_EXHAUSTED)
    side = reducing_side(inventory, config.flat_inventory)
    cascade = 1.0 if _bad(cascade_severity) else cascade_severity
    if cascade >= config.cascade_halt:
        return _none(NoQuoteReason.CASCADE)
    toxic = 1.0 if _bad(toxicity) else toxicity
    if toxic >= config.toxicity_halt:
        return _none(NoQuoteReason.TOXIC_FLOW)
    if cascade >= config.cascade_one_sided:
        reason = NoQuoteReason.CASCADE
        return _none(reason) if side is None else GateDecision(QuoteMode.ONE, side, reason)
    if toxic >= config.toxicity_one_sided:
        reason = NoQuoteReason.TOXIC_FLOW
        return _none(reason) if side is None else GateDecision(QuoteMode.ONE, side, reason)
    if headroom < config.quota_one_sided_below and side is not None:
        return GateDecision(QuoteMode.ONE, side, NoQuoteReason.QUOTA_EXHAUSTED)
    if (
        config.require_edge
        and side is None
        and edge_bps is not None
        and abs(edge_bps) < config.min_edge_bps
    ):
        return _none(NoQuoteReason.NO_EDGE_FLAT)
    return BOTH


@attrs.frozen
class WarmupConfig:
    min_observations: int = setting(20, at_least(0))  # market data updates (book, trades)
    min_elapsed_s: float = setting(10.0, non_negative)


@attrs.define
class Warmup:
    """Estimator warm-up from market data and time only (never from our own fills)."""

    config: WarmupConfig = attrs.field(factory=WarmupConfig)
    started: float | None = None
    observations: int = 0

    def observe(self, now: float) -> None:
        """A market data update arrived at ``now``."""
        if self.started is None:
            self.started = now
        self.observations += 1

    def warm(self, now: float) -> bool:
        if self.started is None:
            return self.config.min_observations == 0 and self.config.min_elapsed_s == 0
        return (
            self.observations >= self.config.min_observations
            and now - self.started >= self.config.min_elapsed_s
        )
