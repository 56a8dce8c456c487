"""The per-symbol quote engine: market data, fills and quota headroom in, a quote plan out.

``SymbolQuoter`` composes the pure strategy pieces for one coin:

- :class:`~.estimators.VolatilityEstimator` samples the book mid (sigma in price
  units per sqrt(second));
- :class:`~.estimators.IntensityEstimator` takes each trade's depth from the current
  mid **in bps of the mid** (so one depth grid, ``intensity.depth_step`` bps, suits BTC and ETH
  alike); A comes out per second and k per bp;
- GLFT (:func:`~.glft.glft_quotes`) runs in normalised units: prices in bps of the
  mid and the asset in units of the order size (Δ = 1, ``q = inventory / order size``), so
  ``gamma``/``xi`` are per bp per order size and mean the same for every coin; its outputs are
  converted back to price units;
- the gate (:func:`~.gate.decide`) closes on stale or crossed books (data_gate),
  until both estimators are warm (warmup) and on quota exhaustion; the quota tier
  (:func:`~.quota.decide`) sets the ladder's level count, a spread multiplier, a
  shadow spread and inventory forcing; at ``|inventory| >= max_position_usd`` only the
  reducing side is quoted;
- the spread chain (:func:`~.spread.compose`: quota and defensive factors, the quota
  shadow spread) widens the GLFT half spread, and the ladder
  (:func:`~.ladder.build_ladder`) lays wire-valid, post-only levels from there.

The defensive factor jumps on an adverse fill: one the next book's mid has already moved
through (a buy with the mid below its price, a sell with the mid above it).

Pure: nothing reads a clock or does I/O; every ``now`` is seconds on the caller's monotonic
clock.
"""

from __future__ import annotations

import math

import attrs

from mm.book import Book
from mm.model import Fill, Instrument, Side, Trade
from mm.settings import at_least, non_negative, one_of, positive, setting
from mm.strategies.kinds import KINDS
from mm.strategies.market_maker import gate, quota
from mm.strategies.market_maker.accumulator import AccumulatorConfig, EventAccumulator
from mm.strategies.market_maker.cascade import CascadeConfig, CascadeDetector
from mm.strategies.market_maker.estimators import (
    IntensityConfig,
    IntensityEstimator,
    VolatilityConfig,
    VolatilityEstimator,
)
from mm.strategies.market_maker.flow import FlowImbalance
from mm.strategies.market_maker.gate import GateConfig, GateDecision
from mm.strategies.market_maker.glft import GlftParams, glft_coefficients, glft_quotes
from mm.strategies.market_maker.ladder import (
    DesiredOrder,
    LadderConfig,
    LimitTicks,
    build_ladder,
)
from mm.strategies.market_maker.lateness import Lateness
from mm.strategies.market_maker.model_gating import ModelGatingConfig, model_gating_factor
from mm.strategies.market_maker.quota import QuotaConfig, QuotaDecision
from mm.strategies.market_maker.spread import (
    DefensiveConfig,
    DefensiveFactor,
    SpreadComposition,
    SpreadConfig,
    SpreadFactor,
    compose,
)
from mm.strategies.market_maker.staleness import StalenessConfig, StalenessTracker
from mm.strategies.market_maker.toxicity import (
    ToxicityConfig,
    ToxicityTracker,
    toxicity_spread_factor,
)

__all__ = [
    "GlftValues",
    "QuotePlan",
    "StrategyConfig",
    "StrategyIntensityConfig",
    "StrategyLadderConfig",
    "StrategyQuotaConfig",
    "StrategyVolatilityConfig",
    "SymbolQuoter",
]

BPS = 1e4
_SIDES = (Side.BUY, Side.SELL)  # read once: an enum member read through its class is slow
QUOTING_MODELS = ("glft",)


def _symbols(value: tuple[str, ...]) -> str | None:
    if not value:
        return "must name at least one coin"
    blank = [coin for coin in value if not coin.strip()]
    return f"coins must not be empty, got {blank}" if blank else None


# The sub-sections' defaults tuned for the strategy (and the embedded simulator): subclasses
# rather than factories, so a partial table in the config file keeps the other tuned defaults.


@attrs.frozen
class StrategyLadderConfig(LadderConfig):
    """The ladder with the strategy's defaults: three levels, 2 bps apart."""

    levels: int = setting(3, at_least(1))
    spacing: float = setting(2.0, positive)


@attrs.frozen
class StrategyQuotaConfig(QuotaConfig):
    """Quota tiers with at most three levels (the ladder's depth)."""

    max_levels: int = setting(3, at_least(1))


@attrs.frozen
class StrategyVolatilityConfig(VolatilityConfig):
    """sigma warm after ten one-second samples."""

    window_s: float = setting(300.0, positive)
    sample_interval_s: float = setting(1.0, positive)
    min_samples: int = setting(10, at_least(2))


@attrs.frozen
class StrategyIntensityConfig(IntensityConfig):
    """(A, k) on a 1 bp depth grid (bps of the mid), first fit after 20 trades and 10 s."""

    window_s: float = setting(300.0, positive)
    depth_step: float = setting(1.0, positive)
    depth_points: int = setting(10, at_least(2))
    min_trades: int = setting(20, at_least(1))
    recalibrate_s: float = setting(10.0, positive)


@attrs.frozen
class StrategyConfig:
    """The ``[strategy]`` section: which strategy runs (``kind``), and the market maker's GLFT
    quoting per symbol and its sub-components."""

    # The strategy the service runs (mm.strategies.registry); this section holds the market
    # maker's settings.
    kind: str = setting("market_maker", one_of(*KINDS))
    # The market maker's quoting model (only GLFT so far).
    model: str = setting("glft", one_of(*QUOTING_MODELS))
    # The coins quoted, one SymbolQuoter each.
    symbols: tuple[str, ...] = setting(("BTC", "ETH"), _symbols)
    # GLFT risk aversion, per bp of the mid per order size (symbol-independent units).
    gamma: float = setting(0.05, positive)
    # GLFT xi (same units as gamma); 0 means xi = gamma.
    xi: float = setting(0.0, non_negative)
    # Order size as USD notional, converted to coin units at the current mid.
    order_size_usd: float = setting(50.0, positive)
    # Inventory limit as USD notional; at or beyond it only the reducing side is quoted.
    max_position_usd: float = setting(500.0, positive)
    # A book older than this (since it arrived) closes the gate (data_gate).
    max_book_age_s: float = setting(2.0, positive)
    # Levels per side, spacing (bps of the top price) and size schedule; base_size is replaced
    # by the order size in coin units at each quote.
    ladder: StrategyLadderConfig = attrs.field(factory=StrategyLadderConfig)
    # Cap on the widening factor chain and on additive adjustments (bps).
    spread: SpreadConfig = attrs.field(factory=SpreadConfig)
    # Widening after adverse fills and its decay.
    defensive: DefensiveConfig = attrs.field(factory=DefensiveConfig)
    # Gate thresholds (quota, cascade, toxicity, edge).
    gate: GateConfig = attrs.field(factory=GateConfig)
    # Quota tiers: levels, spread multiplier, shadow spread, forcing, veto.
    quota: StrategyQuotaConfig = attrs.field(factory=StrategyQuotaConfig)
    # When a requote is due: mid move threshold, max quote age, min interval.
    accumulator: AccumulatorConfig = attrs.field(factory=AccumulatorConfig)
    # sigma from the mid sampled every second; warm after min_samples differences.
    volatility: StrategyVolatilityConfig = attrs.field(factory=StrategyVolatilityConfig)
    # (A, k) from trade depths; depth_step is in bps of the mid (the engine converts).
    intensity: StrategyIntensityConfig = attrs.field(factory=StrategyIntensityConfig)
    # Liquidation-cascade severity from the tape and the book (the gate and the risk monitor).
    cascade: CascadeConfig = attrs.field(factory=CascadeConfig)
    # Flow toxicity (tape imbalance, our fills' markouts) and its spread factor.
    toxicity: ToxicityConfig = attrs.field(factory=ToxicityConfig)
    # Widening as the book or the tape grow stale (never before they warmed up).
    staleness: StalenessConfig = attrs.field(factory=StalenessConfig)
    # Widening while the estimators are unsure.
    model_gating: ModelGatingConfig = attrs.field(factory=ModelGatingConfig)
    # The directional edge (bps) the gate reads when gate.require_edge is on: the taker flow's
    # imbalance over edge_window_s times sigma over that window.
    edge_window_s: float = setting(30.0, positive)


@attrs.frozen
class GlftValues:
    """The GLFT model's inputs and outputs, in price units (``*_bps``: bps of the mid)."""

    mid: float
    sigma: float  # price units per sqrt(second)
    a: float  # trades per second reaching the touch
    k: float  # per price unit
    k_per_bp: float
    q: float  # inventory in order sizes
    half_spread: float
    skew: float  # reservation shift per unit of q
    reservation: float
    bid: float | None  # post-only GLFT prices, before the spread chain
    ask: float | None
    half_spread_bps: float


@attrs.frozen
class QuotePlan:
    """One quote cycle's result: the orders wanted and every ingredient, as plain data."""

    coin: str
    time: float
    mid: float | None
    inventory: float  # coin units
    orders: list[DesiredOrder]
    gate: GateDecision
    quota: QuotaDecision
    reduce_only: bool  # inventory at the limit: only the reducing side
    sides: tuple[Side, ...]  # the sides allowed this cycle
    glft: GlftValues | None = None
    spread: SpreadComposition | None = None
    bid: float | None = None  # top prices the ladder was built around
    ask: float | None = None

    @property
    def reason(self) -> str | None:
        """Why nothing or only one side is quoted (the gate's reason), if any."""
        return None if self.gate.reason is None else self.gate.reason.value

    def status(self) -> dict[str, float]:
        """Flat name -> number pairs for status pages and gauges."""
        out: dict[str, float] = {
            "inventory": self.inventory,
            "orders": float(len(self.orders)),
            "headroom": self.quota.headroom,
            "levels": float(self.quota.levels),
            "quoting": 1.0 if self.orders else 0.0,
        }
        if self.glft is not None:
            glft = self.glft
            out |= {
                "sigma": glft.sigma,
                "a": glft.a,
                "k": glft.k,
                "q": glft.q,
                "half_spread": glft.half_spread,
                "skew": glft.skew,
                "reservation": glft.reservation,
            }
        if self.spread is not None:
            out |= {f"spread_{name}": value for name, value in self.spread.status().items()}
        return out


@attrs.define
class _PendingFill:
    side: Side
    px: float


class SymbolQuoter:
    """Quotes for one coin; see the module docstring."""

    def __init__(self, instrument: Instrument, config: StrategyConfig) -> None:
        self.coin = instrument.symbol
        self.instrument = instrument
        self.config = config
        self.volatility = VolatilityEstimator(config.volatility)
        self.intensity = IntensityEstimator(config.intensity)
        self.accumulator = EventAccumulator(config.accumulator)
        self.defensive = DefensiveFactor(config.defensive)
        self.cascade = CascadeDetector(config.cascade)
        self.toxicity = ToxicityTracker(config.toxicity)
        self.staleness = StalenessTracker(config.staleness)
        self.flow = FlowImbalance(config.edge_window_s)
        self.risk_factor = 1.0
        self.book: Book | None = None
        self.book_seen: float | None = None  # when the book was as new as on its arrival
        self.lateness = Lateness()
        self.inventory = 0.0
        self.headroom = 1.0
        self.adverse_fills = 0
        self._pending_fills: list[_PendingFill] = []
        # From the config alone, which a quoter keeps: the GLFT parameters in normalised units
        # and the inventory limit in order sizes, worked out once, not at every quote.
        self._max_q = config.max_position_usd / config.order_size_usd
        self._glft_params = GlftParams(
            gamma=config.gamma, xi=config.xi or None, order_size=1.0, max_position=self._max_q
        )
        # The last quota tier and the headroom and inventory it was decided for: both change
        # far less often than the book (see _tier).
        self._tier_for: tuple[float, float, QuotaDecision] | None = None
        self._limit_ticks = LimitTicks(instrument)  # the ladder's caps, mostly the market's
        # The GLFT coefficients and the intensity fit they were worked out for (see
        # _coefficients).
        self._coefficients_for: tuple[float, float, tuple[float, float]] | None = None

    # --- inputs ---------------------------------------------------------------------------

    def on_book(self, book: Book, now: float) -> None:
        """A new book of this coin arrived at ``now``: seen as of then, less how late it came
        (``Lateness``: a frame held on its way is as old as its stamp says)."""
        self.book = book
        lag = book.received_ms - book.time_ms if book.received_ms and book.time_ms else None
        self.book_seen = now - self.lateness.late_s(lag, now)
        self.cascade.on_book(book, now)
        self.staleness.on_book(now)
        mid = book.mid
        if mid is None or book.is_crossed or not math.isfinite(mid) or mid <= 0:
            return
        self.volatility.on_mid(now, mid)
        self.accumulator.on_mid(mid, now)
        for fill in self._pending_fills:
            against = mid < fill.px if fill.side is Side.BUY else mid > fill.px
            if against:
                self.defensive.on_adverse_fill(now)
                self.adverse_fills += 1
        self._pending_fills.clear()

    def _mid(self) -> float | None:
        book = self.book
        if book is None or book.is_crossed:
            return None
        mid = book.mid
        return mid if mid is not None and math.isfinite(mid) and mid > 0 else None

    def on_trade(self, trade: Trade, now: float) -> None:
        """A market trade: its depth (bps of the current mid) feeds the intensity estimator."""
        self.cascade.on_trade(trade, now)
        self.toxicity.on_trade(trade, now)
        self.staleness.on_trade(now)
        self.flow.on_trade(trade, now)
        mid = self._mid()
        if mid is not None and trade.px > 0:
            self.intensity.on_trade(now, abs(trade.px - mid) / mid * BPS, 0.0)
        self.intensity.maybe_recalibrate(now)
        self.accumulator.on_trade(now)

    def on_fill(self, fill: Fill, now: float) -> None:
        """One of our fills: inventory moves, and the next book tells whether it was adverse."""
        if fill.coin != self.coin:
            return
        self.inventory += fill.sz if fill.side is Side.BUY else -fill.sz
        self._pending_fills.append(_PendingFill(fill.side, fill.px))
        self.accumulator.on_fill(now)

    def set_position(self, size: float) -> None:
        """The venue's signed position (coin units) replaces the inventory tracked from fills."""
        self.inventory = size

    def on_markout(self, horizon_ms: int, markout_bps: float, now: float) -> None:
        """One of our fills' markouts (bps, negative: adverse) at a horizon."""
        self.toxicity.on_markout(horizon_ms, markout_bps, now)

    def set_risk_factor(self, factor: float) -> None:
        """The risk aggregator's spread factor (its WIDEN decisions), the chain's ``risk``."""
        self.risk_factor = factor

    def edge_bps(self, now: float) -> float | None:
        """The directional edge: the taker flow's imbalance times sigma over the edge window
        (bps of the mid); None before the volatility estimate or any trade."""
        return self._edge(now, self.volatility.estimate())

    def _edge(self, now: float, sigma: float | None) -> float | None:
        mid = self._mid()
        imbalance = self.flow.imbalance(now)
        if sigma is None or mid is None or imbalance is None:
            return None
        return imbalance * sigma / mid * BPS * math.sqrt(self.config.edge_window_s)

    def cascade_severity(self, now: float) -> float:
        return self.cascade.severity(now)

    def signals(self, now: float) -> dict[str, float]:
        """The market signals behind the gate and the spread chain, for status and metrics."""
        edge = self.edge_bps(now)
        return {
            "cascade_severity": self.cascade.severity(now),
            "toxicity": self.toxicity.score(now),
            "edge_bps": edge if edge is not None else 0.0,
        }

    def set_headroom(self, headroom: float) -> None:
        """The adapter's API quota headroom in [0, 1]."""
        self.headroom = headroom

    def due(self, now: float) -> bool:
        """Whether a requote is due (the event accumulator's rule)."""
        return self.accumulator.due(now)

    # --- the quote cycle ------------------------------------------------------------------

    def warm(self) -> bool:
        return self.volatility.estimate() is not None and self.intensity.estimate() is not None

    def fresh(self, now: float) -> bool:
        """A usable book that arrived at most ``max_book_age_s`` ago (the data gate)."""
        return self._mid() is not None and now <= self.fresh_until()

    def fresh_until(self) -> float:
        """When the current book turns stale (-inf without a book)."""
        if self.book_seen is None:
            return -math.inf
        return self.book_seen + self.config.max_book_age_s

    def _tier(self, headroom: float, inventory: float) -> QuotaDecision:
        """``quota.decide`` for this headroom and inventory, the last decision again when they
        are equal to the last ones. Equal floats decide alike, but for the sign of a zero
        headroom, which the decision keeps (so a zero headroom is decided afresh); a NaN is
        equal to nothing, so it is decided afresh too."""
        last = self._tier_for
        if last is not None and headroom == last[0] and inventory == last[1] and headroom != 0.0:
            return last[2]
        tier = quota.decide(headroom, inventory, self.config.quota)
        self._tier_for = (headroom, inventory, tier)
        return tier

    def _coefficients(self, a: float, k_bp: float) -> tuple[float, float]:
        """``glft_coefficients`` for this fit, the last ones again for the same fit (it changes
        at each recalibration, every ``intensity.recalibrate_s``; a NaN is equal to nothing, so
        it is worked out afresh, and raises there as it would)."""
        last = self._coefficients_for
        if last is not None and last[0] == a and last[1] == k_bp:
            return last[2]
        coefficients = glft_coefficients(a, k_bp, self._glft_params)
        self._coefficients_for = (a, k_bp, coefficients)
        return coefficients

    def quote(self, now: float) -> QuotePlan:
        """The orders wanted at ``now``; marks the accumulator as quoted."""
        config = self.config
        self.intensity.maybe_recalibrate(now)
        mid = self._mid()
        inventory = self.inventory
        sigma = self.volatility.estimate()
        fit = self.intensity.estimate()
        toxicity = self.toxicity.score(now)  # once: the gate's input and the spread factor's
        decision = gate.decide_on(
            sigma is not None and fit is not None,
            self.fresh(now),
            inventory,
            self.headroom,
            self.cascade.severity(now),
            toxicity,
            self._edge(now, sigma),
            config.gate,
        )
        tier = self._tier(self.headroom, inventory)
        self.accumulator.quoted(mid, now)
        if not decision.quotes or mid is None or sigma is None or fit is None or tier.veto:
            return QuotePlan(self.coin, now, mid, inventory, [], decision, tier, False, ())
        book = self.book
        assert book is not None
        scale = mid / BPS  # price units per bp
        order_size = config.order_size_usd / mid  # coin units
        max_q = self._max_q
        q = inventory / order_size
        a, k_bp = fit
        params = self._glft_params  # xi 0: the same as gamma
        best_bid, best_ask = book.best_bid, book.best_ask
        raw = glft_quotes(
            BPS,
            None if best_bid is None else best_bid / scale,
            None if best_ask is None else best_ask / scale,
            sigma / scale,
            a,
            k_bp,
            q,
            params,
            coefficients=self._coefficients(a, k_bp),
        )
        glft = GlftValues(
            mid=mid,
            sigma=sigma,
            a=a,
            k=k_bp / scale,
            k_per_bp=k_bp,
            q=q,
            half_spread=raw.half_spread * scale,
            skew=raw.skew * scale,
            reservation=raw.reservation * scale,
            bid=None if raw.bid is None else raw.bid * scale,
            ask=None if raw.ask is None else raw.ask * scale,
            half_spread_bps=raw.half_spread,
        )
        spread = compose(
            raw.half_spread,
            (
                (
                    SpreadFactor.TOXICITY,
                    toxicity_spread_factor(
                        toxicity, config.toxicity.widen_from, config.toxicity.max_factor
                    ),
                ),
                (SpreadFactor.DEFENSIVE, self.defensive.value(now)),
                (SpreadFactor.STALENESS, self.staleness.factor(now)),
                (
                    SpreadFactor.MODEL_GATING,
                    model_gating_factor(
                        (self.volatility.confidence(now), self.intensity.confidence(now)),
                        config.model_gating,
                    ),
                ),
                (SpreadFactor.QUOTA, tier.spread_multiplier),
                (SpreadFactor.RISK, self.risk_factor),
            ),
            {"quota_shadow": tier.shadow_spread_bps},
            config.spread,
        )
        extra = max(spread.half_spread_bps - raw.half_spread, 0.0) * scale
        bid = None if glft.bid is None else glft.bid - extra
        ask = None if glft.ask is None else glft.ask + extra
        sides = [side for side in _SIDES if decision.allows(side)]
        if tier.side is not None:
            sides = [side for side in sides if side is tier.side]
        reduce_only = abs(q) >= max_q
        if reduce_only:
            keep = gate.reducing_side(inventory)
            sides = [side for side in sides if side is keep]
        orders = build_ladder(
            bid,
            ask,
            self.instrument,
            config.ladder,
            levels=min(tier.levels, config.ladder.levels),
            sides=sides,
            market_bid=best_bid,
            market_ask=best_ask,
            base_size=order_size,
            limit_ticks=self._limit_ticks,
        )
        return QuotePlan(
            self.coin,
            now,
            mid,
            inventory,
            orders,
            decision,
            tier,
            reduce_only,
            tuple(sides),
            glft=glft,
            spread=spread,
            bid=bid,
            ask=ask,
        )
