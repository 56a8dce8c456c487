"""The detectors' shipped defaults, calibrated against the simulator's shipped market.

The simulator's pure core (engine and synthetic market, built from config.toml's ``[sim]``
section and seed) runs over virtual time; its trades and books go into the cascade detector,
the toxicity tracker, the staleness tracker and the strategy's estimators as the service feeds
them (books every ``book_interval_ms``, trade depths in bps of the mid for the intensity fit).

- a calm market for 30 minutes: cascade severity below the widen level (0.4), toxicity below
  the gate's one-sided level (0.7), staleness 1.0 throughout and model gating 1.0 once the
  estimators' windows are full;
- a liquidation cascade as the drills start it (``POST /sim/cascade`` defaults): 5% over 10 s
  pulls quotes (>= 0.8) within the first seconds without killing; 40% over 2 s kills (>= 5);
- a slow informed trend (1% over 120 s, takers one-sided): toxicity reaches the gate's halt
  level (0.9) while the cascade severity stays below the pull level.

Each test prints what it measured (``pytest -s``).
"""

from __future__ import annotations

import pytest

from mm.book import Book
from mm.model import Trade
from mm.strategies.market_maker.cascade import CascadeDetector
from mm.strategies.market_maker.engine import StrategyConfig
from mm.strategies.market_maker.estimators import IntensityEstimator, VolatilityEstimator
from mm.strategies.market_maker.gate import GateConfig
from mm.strategies.market_maker.model_gating import ModelGatingConfig, model_gating_factor
from mm.strategies.market_maker.staleness import StalenessTracker
from mm.strategies.market_maker.toxicity import ToxicityTracker
from mm.venues.sim.config import CascadeConfig
from tests.venues.sim.drive import MarketDrive, shipped_sim

BPS = 1e4
WIDEN, PULL, KILL = 0.4, 0.8, 5.0  # the risk monitor's cascade levels (mm.risk.monitors)
GATE = GateConfig()
TREND = CascadeConfig(
    coin="BTC", move=-0.01, duration_s=120.0, intensity=2.0, one_sided=1.0, thinning=0.0
)


class Watch:
    """Every detector of one coin, fed as the service feeds them."""

    def __init__(self) -> None:
        strategy = StrategyConfig()
        self.cascade = CascadeDetector()
        self.toxicity = ToxicityTracker()
        self.staleness = StalenessTracker()
        self.volatility = VolatilityEstimator(strategy.volatility)
        self.intensity = IntensityEstimator(strategy.intensity)
        self.mid: float | None = None

    def on_trade(self, trade: Trade, now: float) -> None:
        self.cascade.on_trade(trade, now)
        self.toxicity.on_trade(trade, now)
        self.staleness.on_trade(now)
        if self.mid is not None:
            self.intensity.on_trade(now, abs(trade.px - self.mid) / self.mid * BPS, 0.0)
        self.intensity.maybe_recalibrate(now)

    def on_book(self, book: Book, now: float) -> None:
        self.cascade.on_book(book, now)
        self.staleness.on_book(now)
        mid = book.mid
        if mid is not None and not book.is_crossed:
            self.mid = mid
            self.volatility.on_mid(now, mid)

    def model_gating(self, now: float) -> float:
        confidences = {
            "volatility": self.volatility.confidence(now),
            "intensity": self.intensity.confidence(now),
        }
        return model_gating_factor(confidences, ModelGatingConfig())


def run(drive: MarketDrive, watch: Watch, seconds: float) -> list[float]:
    return list(drive.feed(seconds, watch.on_trade, watch.on_book))


def test_a_calm_market_stays_calm_for_30_minutes() -> None:
    drive, watch = MarketDrive(), Watch()
    window = max(StrategyConfig().volatility.window_s, StrategyConfig().intensity.window_s)
    severity = toxicity = 0.0
    gating_at_start = None
    for now in drive.feed(1_800.0, watch.on_trade, watch.on_book):
        severity = max(severity, watch.cascade.severity(now))
        toxicity = max(toxicity, watch.toxicity.score(now))
        assert watch.staleness.factor(now) == 1.0, now
        gating = watch.model_gating(now)
        if gating_at_start is None and now >= 10.0:
            gating_at_start = gating
        if now >= window:
            assert gating == 1.0, (now, watch.volatility.confidence(now))
    print(
        f"calm 30 min: max cascade severity {severity:.3f}, max toxicity {toxicity:.3f}, "
        f"model gating at 10 s {gating_at_start:.2f}"
    )
    assert severity < WIDEN
    assert toxicity < GATE.toxicity_one_sided
    assert gating_at_start is not None
    assert gating_at_start > 1.0  # the cold start widens: the factor is live
    assert watch.intensity.fits > 100


def cascade_run(cascade: CascadeConfig, seconds: float) -> tuple[list[tuple[float, float]], float]:
    """Severity after each step of ``cascade`` (time since its start), and the calm maximum."""
    drive, watch = MarketDrive(), Watch()
    calm = max(watch.cascade.severity(now) for now in run(drive, watch, 120.0))
    drive.cascade("BTC", cascade)
    start = drive.now
    trace = [
        (now - start, watch.cascade.severity(now))
        for now in drive.feed(seconds, watch.on_trade, watch.on_book)
    ]
    return trace, calm


def test_a_five_percent_liquidation_cascade_pulls_within_seconds() -> None:
    cascade = CascadeConfig(coin="BTC", move=-0.05, duration_s=10.0)  # the drills' defaults
    trace, calm = cascade_run(cascade, 10.0)
    first_pull = next(elapsed for elapsed, value in trace if value >= PULL)
    during = [value for elapsed, value in trace if elapsed >= 3.0]
    peak = max(value for _, value in trace)
    print(
        f"5% over 10 s: calm before {calm:.3f}, pull (>= {PULL}) after {first_pull:.1f} s, "
        f"lowest from 3 s on {min(during):.2f}, peak {peak:.2f}"
    )
    assert calm < WIDEN
    assert first_pull <= 3.0
    assert min(during) >= PULL  # and it holds for the rest of the cascade
    assert peak < KILL  # a 5% cascade pulls quotes, it does not kill


def test_a_forty_percent_crash_kills() -> None:
    cascade = CascadeConfig(coin="BTC", move=-0.4, duration_s=2.0)
    trace, _ = cascade_run(cascade, 2.0)
    first_kill = next(elapsed for elapsed, value in trace if value >= KILL)
    peak = max(value for _, value in trace)
    print(f"40% over 2 s: kill (>= {KILL}) after {first_kill:.1f} s, peak {peak:.1f}")
    assert first_kill <= 2.0


def test_forced_flow_makes_the_same_move_more_severe() -> None:
    # The same 5% move with the flow left alone (the velocity alone): it widens, and the forced
    # selling and thin bids of a liquidation cascade are what make it pull.
    bare = CascadeConfig(
        coin="BTC", move=-0.05, duration_s=10.0, intensity=1.0, one_sided=0.0, thinning=0.0
    )
    forced = CascadeConfig(coin="BTC", move=-0.05, duration_s=10.0)
    bare_trace, _ = cascade_run(bare, 10.0)
    forced_trace, _ = cascade_run(forced, 10.0)

    def mean_after(trace: list[tuple[float, float]], start: float) -> float:
        values = [value for elapsed, value in trace if elapsed >= start]
        return sum(values) / len(values)

    bare_mean, forced_mean = mean_after(bare_trace, 3.0), mean_after(forced_trace, 3.0)
    bare_peak = max(value for _, value in bare_trace)
    print(
        f"5% over 10 s: mean severity from 3 s {forced_mean:.2f} with forced flow, "
        f"{bare_mean:.2f} without (peak {bare_peak:.2f})"
    )
    assert WIDEN <= bare_peak < PULL
    assert forced_mean >= 1.5 * bare_mean


def test_an_informed_trend_is_toxic_but_not_a_cascade() -> None:
    drive, watch = MarketDrive(), Watch()
    run(drive, watch, 120.0)
    calm = watch.toxicity.score(drive.now)
    drive.cascade("BTC", TREND)
    start = drive.now
    first_halt = None
    severity = 0.0
    for now in drive.feed(TREND.duration_s, watch.on_trade, watch.on_book):
        severity = max(severity, watch.cascade.severity(now))
        if first_halt is None and watch.toxicity.score(now) >= GATE.toxicity_halt:
            first_halt = now - start
    print(
        f"1% over 120 s, one-sided takers: toxicity {calm:.2f} before, >= "
        f"{GATE.toxicity_halt} after {first_halt} s, {watch.toxicity.score(drive.now):.2f} "
        f"at the end; max cascade severity {severity:.3f}"
    )
    assert first_halt is not None
    assert first_halt <= TREND.duration_s
    assert severity < PULL
    assert watch.toxicity.spread_factor(drive.now) == pytest.approx(
        watch.toxicity.config.max_factor, rel=0.05
    )


def test_the_calibration_uses_the_shipped_market() -> None:
    # Guards the fixture: the drive runs config.toml's [sim.market] and seed, not a tuned copy.
    drive = MarketDrive()
    assert drive.config == shipped_sim().market
    assert drive.book_interval_ms == shipped_sim().book_interval_ms
