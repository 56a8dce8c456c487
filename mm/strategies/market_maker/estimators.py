"""Online estimators of the GLFT inputs: volatility sigma and trade intensity (A, k).

Pure: observations arrive with their times (seconds, any epoch) and nothing reads a clock.
Both estimators work in price units:

- :class:`VolatilityEstimator` samples the mid every ``sample_interval_s`` and reports sigma, the
  standard deviation of consecutive sampled mid differences divided by
  ``sqrt(sample_interval_s)``: price units per square root of a second. To get sigma in bps per
  sqrt(second), divide by the mid and multiply by 1e4 (or feed it ``1e4 * log(mid)``, whose
  differences are log returns in bps). It keeps exact running sums, so a sample and an
  estimate cost O(1) whatever the window holds.
- :class:`IntensityEstimator` takes trades with the mid at the time of each trade. A trade's
  depth is ``δ = |price - mid|`` in price units; ``λ(δ)`` is the number of trades at depth
  ``≥ δ`` per second over the rolling window, evaluated on the grid ``δ_i = i * depth_step``;
  a least-squares fit of ``log λ = log A - k δ`` over the grid points with ``λ > 0`` gives
  A (per second, counted over whatever trades are fed: feed one side for a per-side A) and k
  (per price unit). With depths in bps of the mid, k comes out per bp instead.

Each estimator also says how far to trust it, ``confidence`` in [0, 1] (the spread chain's
model gating reads it, ``mm.strategies.market_maker.model_gating``):

- volatility: the sampled mid differences in the window against the window's capacity
  (``window_s / sample_interval_s``): a just-warm sigma from 10 samples is a rough one;
- intensity: the product of the last fit's trades against ``confident_trades``, its quality
  (the R² of the log-linear fit, clipped to [0, 1]) and its freshness (1 while the fit is
  younger than half the window, falling to 0 when a whole window has passed since it).

Both are 0 before any data and never NaN; non-finite times give 0.
"""

from __future__ import annotations

import bisect
import math
from collections import deque

import attrs

from mm.settings import at_least, positive, setting


@attrs.frozen
class VolatilityConfig:
    """sigma from the mid sampled every ``sample_interval_s`` over the last ``window_s``."""

    window_s: float = setting(300.0, positive)
    sample_interval_s: float = setting(1.0, positive)
    min_samples: int = setting(30, at_least(2))


@attrs.frozen
class IntensityConfig:
    """(A, k) from trade depths over the last ``window_s``, refit every ``recalibrate_s``."""

    window_s: float = setting(600.0, positive)
    depth_step: float = setting(1.0, positive)
    depth_points: int = setting(10, at_least(2))
    min_trades: int = setting(50, at_least(1))
    recalibrate_s: float = setting(30.0, positive)
    confident_trades: int = setting(200, at_least(1))


class VolatilityEstimator:
    """sigma of the mid, in price units per sqrt(second); see the module docstring.

    O(1) per sample and per estimate: the window's sum of squared mid differences is kept
    exactly, as an integer in units of ``2**-(2 * scale)`` (every float is an integer times a
    power of two; ``scale`` grows to the finest power a sample needed), added to as a sample
    comes and subtracted from as one leaves the window, so it never drifts; the sum of the
    differences telescopes to the last sample minus the first. The variance is then one exact
    integer ratio, rounded once to a float. A non-finite mid is ignored (the previous mid
    prevails), so the estimate is never NaN.
    """

    def __init__(self, config: VolatilityConfig) -> None:
        self.config = config
        self._samples: deque[tuple[float, float]] = deque()  # (time, mid), oldest first
        self._times: deque[float] = deque()  # their times, for a bisection without a key
        self._next_sample: float | None = None
        self._last_mid: float | None = None
        self._now: float | None = None
        self._scale = 0  # the samples are integers in units of 2**-scale
        self._sum_sq = 0  # the window's sum of squared differences, units of 2**-(2 * scale)
        self._sigma: float | None = None  # the estimate of the samples as they are, if known
        self._sigma_known = False  # cleared when a sample comes or goes

    def on_mid(self, now: float, mid: float) -> None:
        """The mid is ``mid`` from ``now`` on; sampling times passed since are recorded."""
        if not math.isfinite(mid):
            return
        interval = self.config.sample_interval_s
        if self._next_sample is None or self._last_mid is None:
            self._append(now, mid)
            self._next_sample = now + interval
        else:
            while self._next_sample <= now:
                # The mid prevailing at the sampling time: this one if it is exactly then.
                value = mid if self._next_sample == now else self._last_mid
                self._append(self._next_sample, value)
                self._next_sample += interval
        self._last_mid = mid
        self._now = now
        self._trim(now)

    def _units(self, value: float) -> int:
        """``value`` as an integer in units of ``2**-scale`` (the scale grows when needed)."""
        numerator, denominator = value.as_integer_ratio()
        shift = denominator.bit_length() - 1  # the denominator is 2**shift
        if shift > self._scale:
            self._sum_sq <<= 2 * (shift - self._scale)
            self._scale = shift
        return numerator << (self._scale - shift)

    def _difference(self, before: float, after: float) -> int:
        """``after - before`` exactly, in units of ``2**-scale``."""
        self._units(before)  # the scale fits both before either is scaled
        self._units(after)
        return self._units(after) - self._units(before)

    def _append(self, at: float, value: float) -> None:
        self._sigma_known = False
        if self._samples:
            step = self._difference(self._samples[-1][1], value)
            self._sum_sq += step * step
        self._samples.append((at, value))
        self._times.append(at)

    def _trim(self, now: float) -> None:
        horizon = now - self.config.window_s
        samples = self._samples
        while samples and samples[0][0] < horizon:
            _, gone = samples.popleft()
            self._times.popleft()
            self._sigma_known = False
            if samples:
                step = self._difference(gone, samples[0][1])
                self._sum_sq -= step * step

    @property
    def sample_count(self) -> int:
        """Mid differences available in the window."""
        return max(0, len(self._samples) - 1)

    @property
    def capacity(self) -> int:
        """Mid differences a full window holds."""
        return max(int(self.config.window_s / self.config.sample_interval_s), 1)

    def confidence(self, now: float | None = None) -> float:
        """Mid differences in the window (at ``now``, else at the last update) per capacity."""
        samples = self._samples
        if now is not None:
            if not math.isfinite(now):
                return 0.0
            horizon = now - self.config.window_s
            # Sample times only grow: those before the horizon are a prefix.
            gone = bisect.bisect_left(self._times, horizon)
            count = max(len(samples) - gone - 1, 0)
        else:
            count = self.sample_count
        return min(count / self.capacity, 1.0)

    def estimate(self) -> float | None:
        """sigma in price units per sqrt(second), or None during the warmup."""
        if not self._sigma_known:
            self._sigma = self._estimate()
            self._sigma_known = True
        return self._sigma

    def _estimate(self) -> float | None:
        count = self.sample_count
        if count < self.config.min_samples:
            return None
        total = self._difference(self._samples[0][1], self._samples[-1][1])  # telescoped
        # n * sum(d^2) - (sum d)^2 over n (n - 1): the sample variance, exactly (>= 0).
        spread = count * self._sum_sq - total * total
        variance = spread / ((count * (count - 1)) << (2 * self._scale))
        return math.sqrt(variance / self.config.sample_interval_s)

    def estimates(self) -> dict[str, float]:
        """Plain numbers for metrics: ``sigma`` (NaN while warming up) and ``samples``."""
        sigma = self.estimate()
        return {
            "sigma": math.nan if sigma is None else sigma,
            "samples": float(self.sample_count),
        }


@attrs.frozen
class IntensityFit:
    """A fit of ``λ(δ) = A exp(-k δ)``: A per second, k per price unit, at time ``at``."""

    a: float
    k: float
    at: float
    trades: int
    r2: float = 1.0  # the log-linear fit's coefficient of determination


def fit_intensity(
    depths: list[float], duration_s: float, step: float, points: int
) -> tuple[float, float] | None:
    """``(A, k)`` by least squares of ``log λ(δ_i)`` on ``δ_i = i * step``, i < ``points``.

    ``λ(δ)`` is the count of ``depths >= δ`` divided by ``duration_s``. None when fewer than
    two grid points have trades or the fitted k is not positive.
    """
    result = fit_intensity_r2(depths, duration_s, step, points)
    return None if result is None else (result[0], result[1])


def fit_intensity_r2(
    depths: list[float], duration_s: float, step: float, points: int
) -> tuple[float, float, float] | None:
    """``(A, k, R²)``: :func:`fit_intensity` and the R² of its log-linear fit."""
    if duration_s <= 0:
        return None
    xs: list[float] = []
    ys: list[float] = []
    ordered = sorted(depths)
    total = len(ordered)
    index = 0
    for i in range(points):
        depth = i * step
        while index < total and ordered[index] < depth:
            index += 1
        count = total - index
        if count <= 0:
            break
        xs.append(depth)
        ys.append(math.log(count / duration_s))
    if len(xs) < 2:
        return None
    x_mean = math.fsum(xs) / len(xs)
    y_mean = math.fsum(ys) / len(ys)
    sxx = math.fsum((x - x_mean) ** 2 for x in xs)
    sxy = math.fsum((x - x_mean) * (y - y_mean) for x, y in zip(xs, ys, strict=True))
    slope = sxy / sxx
    k = -slope
    if not k > 0:
        return None
    syy = math.fsum((y - y_mean) ** 2 for y in ys)
    r2 = sxy * sxy / (sxx * syy) if syy > 0 else 1.0
    return math.exp(y_mean - slope * x_mean), k, min(max(r2, 0.0), 1.0)


class IntensityEstimator:
    """(A, k) of the trade intensity at depth; see the module docstring for units."""

    def __init__(self, config: IntensityConfig) -> None:
        self.config = config
        self._trades: deque[tuple[float, float]] = deque()
        self._origin: float | None = None
        self._last_attempt: float | None = None
        self.fit: IntensityFit | None = None
        self.fits = 0

    def _seen(self, now: float) -> None:
        if self._origin is None:
            self._origin = now

    def on_trade(self, now: float, price: float, mid: float) -> None:
        """A trade at ``price`` while the mid was ``mid``; its depth is ``|price - mid|``."""
        self._seen(now)
        self._trades.append((now, abs(price - mid)))

    def _trim(self, now: float) -> None:
        horizon = now - self.config.window_s
        while self._trades and self._trades[0][0] < horizon:
            self._trades.popleft()

    def calibrate(self, now: float) -> IntensityFit | None:
        """Refit now; keeps (and returns) the last good fit when this one is not possible."""
        self._seen(now)
        self._last_attempt = now
        self._trim(now)
        if len(self._trades) < self.config.min_trades:
            return self.fit
        assert self._origin is not None
        duration = min(self.config.window_s, now - self._origin)
        config = self.config
        depths = [depth for _, depth in self._trades]
        result = fit_intensity_r2(depths, duration, config.depth_step, config.depth_points)
        if result is not None:
            self.fit = IntensityFit(result[0], result[1], now, len(depths), result[2])
            self.fits += 1
        return self.fit

    def maybe_recalibrate(self, now: float) -> IntensityFit | None:
        """Refit when ``recalibrate_s`` has passed since the last attempt; the current fit."""
        self._seen(now)
        if self._last_attempt is None or now - self._last_attempt >= self.config.recalibrate_s:
            return self.calibrate(now)
        return self.fit

    def confidence(self, now: float) -> float:
        """Trust in the last good fit at ``now``: trades x quality x freshness (docstring)."""
        fit = self.fit
        if fit is None or not math.isfinite(now):
            return 0.0
        config = self.config
        trades = min(fit.trades / config.confident_trades, 1.0)
        quality = min(max(fit.r2, 0.0), 1.0) if math.isfinite(fit.r2) else 0.0
        age = max(now - fit.at, 0.0)
        half = config.window_s / 2
        freshness = 1.0 if age <= half else max(1.0 - (age - half) / half, 0.0)
        return trades * quality * freshness

    def estimate(self) -> tuple[float, float] | None:
        """``(A, k)`` of the last good fit, or None before the first one."""
        return None if self.fit is None else (self.fit.a, self.fit.k)

    def estimates(self) -> dict[str, float]:
        """Plain numbers for metrics: ``a``, ``k`` (NaN before a fit), ``trades``, ``fits``."""
        fit = self.fit
        return {
            "a": math.nan if fit is None else fit.a,
            "k": math.nan if fit is None else fit.k,
            "fit_at": math.nan if fit is None else fit.at,
            "r2": math.nan if fit is None else fit.r2,
            "trades": float(len(self._trades)),
            "fits": float(self.fits),
        }
