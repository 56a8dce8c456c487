"""Toxicity of one coin's flow in [0, 1], and the spread chain's ``toxicity`` factor.

Role: the quote gate's toxic-flow input (one-sided from 0.7, no quotes from 0.9 by default:
``mm.strategies.market_maker.gate``) and the ``toxicity`` factor of the spread chain. One
:class:`ToxicityTracker` per coin; pure: no I/O, no clock. Every ``now`` is seconds on the
caller's monotonic clock.

Inputs: :meth:`ToxicityTracker.on_trade` (an ``mm.model.Trade`` of the market tape; its side is
the taker's) and :meth:`ToxicityTracker.on_markout` (one of our fills' markouts in bps, positive
when the mid moved our way; ``mm.portfolio.Markouts`` produces them, and only the
``markout_horizon_ms`` horizon is used).

Outputs: :meth:`ToxicityTracker.score` in [0, 1], :meth:`ToxicityTracker.spread_factor`
``>= 1`` and :meth:`ToxicityTracker.components` for status.

How (``ToxicityConfig`` holds every constant):

- **flow** (VPIN-like): the tape is cut into volume buckets, each holding the notional the
  market trades in ``bucket_s`` seconds at its baseline rate (measured over ``baseline_s``, so
  one setting suits every coin); a bucket's imbalance is ``|buys - sells| / size``, and the
  flow toxicity is the sum of the last ``buckets`` completed imbalances divided by ``buckets``:
  buckets not yet filled count as balanced, and buckets completed more than
  ``bucket_max_age_s`` ago drop out, so a quiet market decays to 0 by itself.
- **markouts**: a time-weighted mean of our fills' markouts, each weight halving every
  ``markout_half_life_s``, shrunk toward 0 by ``markout_prior`` neutral pseudo-fills: few
  markouts say little, and as time passes without fills the mean returns to 0 (it never needs
  our fills to clear). A mean of ``-markout_full_bps`` (adverse) or worse gives 1.
- ``score = 1 - (1 - flow) * (1 - markouts)``: either alone can make the flow toxic.
- ``spread_factor`` is 1 up to ``widen_from`` and rises linearly to ``max_factor`` at 1.

Cold start: no trades or markouts gives 0, and buckets start only after ``min_baseline_s`` of
tape (their size needs the rate), so quoting is never blocked by having no data.

Failures: a trade with a non-finite or non-positive price or size (or a notional above
``MAX_NOTIONAL``), a non-finite markout and an event with a non-finite ``now`` are ignored (and
counted in ``ignored``); a markout beyond ``MAX_MARKOUT_BPS`` counts as that; time never runs
backwards (an earlier ``now`` counts as the latest seen). Nothing raises on data; no output
is NaN.
"""

from __future__ import annotations

import math
from collections import deque

import attrs

from mm.model import Side, Trade
from mm.settings import at_least, non_negative, positive, setting
from mm.strategies.market_maker.eventclock import EventClock

__all__ = ["ToxicityConfig", "ToxicityTracker", "toxicity_spread_factor"]


# A trade worth more than this (USD) is garbage: ignored, which keeps the sums finite. A markout
# beyond +-100% counts as +-100%.
MAX_NOTIONAL = 1e15
MAX_MARKOUT_BPS = 1e4


def _below_one(value: float) -> str | None:
    return None if 0 <= value < 1 else f"must be >= 0 and < 1, got {value!r}"


@attrs.frozen
class ToxicityConfig:
    """Buckets, baselines and scales of the toxicity score (module docstring)."""

    # A volume bucket holds the notional traded in this many seconds at the baseline rate.
    bucket_s: float = setting(5.0, positive)
    # The flow toxicity averages this many completed buckets (missing ones count as balanced).
    buckets: int = setting(20, at_least(1))
    # The baseline notional rate is measured over this long; buckets start once the tape has
    # min_baseline_s of history.
    baseline_s: float = setting(300.0, positive)
    min_baseline_s: float = setting(60.0, non_negative)
    # Completed buckets older than this drop out.
    bucket_max_age_s: float = setting(600.0, positive)
    # The markout horizon used (ms; others are ignored), the mean markout (adverse, bps) that
    # counts in full, the half life of a markout's weight, and the neutral pseudo-fills.
    markout_horizon_ms: int = setting(5_000, at_least(0))
    markout_full_bps: float = setting(10.0, positive)
    markout_half_life_s: float = setting(120.0, positive)
    markout_prior: float = setting(3.0, positive)
    # The spread factor: 1 up to widen_from, then linear up to max_factor at a score of 1.
    widen_from: float = setting(0.5, _below_one)
    max_factor: float = setting(2.0, at_least(1.0))


def _finite(value: float) -> bool:
    return isinstance(value, (int, float)) and math.isfinite(value)


def _clip01(value: float) -> float:
    if not math.isfinite(value):
        return 0.0
    return min(max(value, 0.0), 1.0)


def toxicity_spread_factor(score: float, widen_from: float = 0.5, max_factor: float = 2.0) -> float:
    """1 up to ``widen_from``, then linear up to ``max_factor`` at a score of 1.

    A non-finite score is taken as fully toxic (the cap): a broken input widens.
    """
    cap = max_factor if _finite(max_factor) and max_factor >= 1 else 1.0
    level = 1.0 if not _finite(score) else _clip01(score)
    start = _clip01(widen_from)
    if start >= 1 or level <= start:
        return 1.0
    return 1.0 + (cap - 1.0) * (level - start) / (1.0 - start)


@attrs.define
class _Bucket:
    size: float
    buys: float = 0.0
    sells: float = 0.0

    @property
    def filled(self) -> float:
        return self.buys + self.sells


class ToxicityTracker:
    """Toxicity of one coin's flow; see the module docstring."""

    def __init__(self, config: ToxicityConfig | None = None) -> None:
        self.config = config or ToxicityConfig()
        self._clock = EventClock()
        self._started: float | None = None
        self._tape: deque[tuple[float, float]] = deque()  # (time, notional) for the rate
        self._tape_total = 0.0
        self._bucket: _Bucket | None = None
        self._done: deque[tuple[float, float]] = deque(maxlen=self.config.buckets)
        # Buckets completed so far, and the last flow reading with the window it holds for:
        # (completed, oldest it was read at, earliest completion time it counted, value). The
        # quote asks at every book, and between two completions the reading only changes when
        # the oldest counted bucket ages out.
        self._completed = 0
        self._flow_memo: tuple[int, float, float, float] | None = None
        self._markout_sum = 0.0  # decayed to _markout_at
        self._markout_weight = 0.0
        self._markout_at = 0.0
        self.trades = 0
        self.markouts = 0
        self.ignored = 0

    # --- time ---------------------------------------------------------------------------------

    def _event_time(self, now: float) -> float | None:
        return self._clock.event(now)

    def _query_time(self, now: float) -> float:
        return self._clock.query(now)

    # --- flow ---------------------------------------------------------------------------------

    def on_trade(self, trade: Trade, now: float) -> None:
        """A market trade at ``now``."""
        px, sz = trade.px, trade.sz
        notional = px * sz if _finite(px) and _finite(sz) and px > 0 and sz > 0 else math.nan
        at = self._event_time(now) if notional <= MAX_NOTIONAL else None
        if at is None:
            self.ignored += 1
            return
        self.trades += 1
        if self._started is None:
            self._started = at
        config = self.config
        self._tape.append((at, notional))
        self._tape_total += notional
        horizon = at - config.baseline_s
        while self._tape and self._tape[0][0] < horizon:
            self._tape_total -= self._tape.popleft()[1]
        if len(self._tape) == 1:  # start the running sum afresh: no rounding carried over
            self._tape_total = notional
        if at - self._started < config.min_baseline_s:
            return
        self._fill(trade.side is Side.BUY, notional, at)

    def _rate(self, now: float) -> float:
        assert self._started is not None
        covered = max(min(self.config.baseline_s, now - self._started), self.config.bucket_s)
        return max(self._tape_total, 0.0) / covered

    def _fill(self, is_buy: bool, notional: float, now: float) -> None:
        remaining = notional
        # A trade larger than every bucket together would only push out buckets it filled.
        for _ in range(self.config.buckets + 1):
            if remaining <= 0:
                return
            bucket = self._bucket
            if bucket is None:
                size = self._rate(now) * self.config.bucket_s
                if not (math.isfinite(size) and size > 0):
                    return
                bucket = self._bucket = _Bucket(size)
            take = min(bucket.size - bucket.filled, remaining)
            if is_buy:
                bucket.buys += take
            else:
                bucket.sells += take
            remaining -= take
            if bucket.filled >= bucket.size * (1 - 1e-9):
                self._done.append((now, _clip01(abs(bucket.buys - bucket.sells) / bucket.size)))
                self._completed += 1
                self._bucket = None

    def flow(self, now: float) -> float:
        """The VPIN-like flow toxicity at ``now``, in [0, 1]."""
        now = self._query_time(now)
        oldest = now - self.config.bucket_max_age_s
        memo = self._flow_memo
        # The same buckets count as at the last reading: none completed since, and the oldest
        # bound lies between that reading's and the earliest completion it counted (a bucket
        # left out then is left out now, and every one counted then still is).
        if memo is not None and memo[0] == self._completed and memo[1] <= oldest <= memo[2]:
            return memo[3]
        recent = [imbalance for done_at, imbalance in self._done if done_at >= oldest]
        value = _clip01(math.fsum(recent) / self.config.buckets)
        earliest = min((at for at, _ in self._done if at >= oldest), default=math.inf)
        self._flow_memo = (self._completed, oldest, earliest, value)
        return value

    # --- markouts -----------------------------------------------------------------------------

    def _decay(self, now: float) -> float:
        elapsed = max(now - self._markout_at, 0.0)
        factor: float = 0.5 ** (elapsed / self.config.markout_half_life_s)
        return factor

    def on_markout(self, horizon_ms: int, markout_bps: float, now: float) -> None:
        """One of our fills' markout at ``horizon_ms`` (bps; negative is adverse)."""
        if horizon_ms != self.config.markout_horizon_ms:
            return
        at = self._event_time(now) if _finite(markout_bps) else None
        if at is None:
            self.ignored += 1
            return
        decay = self._decay(at)
        markout_bps = min(max(markout_bps, -MAX_MARKOUT_BPS), MAX_MARKOUT_BPS)
        self._markout_sum = self._markout_sum * decay + markout_bps
        self._markout_weight = self._markout_weight * decay + 1.0
        self._markout_at = at
        self.markouts += 1

    def mean_markout_bps(self, now: float) -> float:
        """The decayed, shrunk mean markout at ``now`` (0 with none)."""
        now = self._query_time(now)
        decay = self._decay(now)
        weight = self._markout_weight * decay + self.config.markout_prior
        mean = self._markout_sum * decay / weight if weight > 0 else 0.0
        return mean if math.isfinite(mean) else 0.0

    def markout(self, now: float) -> float:
        """The markout toxicity at ``now``, in [0, 1]."""
        return _clip01(-self.mean_markout_bps(now) / self.config.markout_full_bps)

    # --- outputs ------------------------------------------------------------------------------

    def score(self, now: float) -> float:
        """The toxicity at ``now``, in [0, 1]: 0 with no data."""
        flow, markout = self.flow(now), self.markout(now)
        return _clip01(1.0 - (1.0 - flow) * (1.0 - markout))

    def spread_factor(self, now: float) -> float:
        """The spread chain's toxicity factor at ``now`` (``>= 1``)."""
        config = self.config
        return toxicity_spread_factor(self.score(now), config.widen_from, config.max_factor)

    def components(self, now: float) -> dict[str, float]:
        """The score and its ingredients at ``now`` (plain, finite numbers)."""
        config = self.config
        flow, markout = self.flow(now), self.markout(now)
        score = _clip01(1.0 - (1.0 - flow) * (1.0 - markout))
        oldest = self._query_time(now) - config.bucket_max_age_s
        return {
            "toxicity": score,
            "flow": flow,
            "markout": markout,
            "mean_markout_bps": self.mean_markout_bps(now),
            "buckets": float(sum(1 for done_at, _ in self._done if done_at >= oldest)),
            "spread_factor": toxicity_spread_factor(score, config.widen_from, config.max_factor),
        }
