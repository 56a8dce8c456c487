"""``CascadeDetector`` before the per-book cuts of the decision task (issue 16), verbatim but
for its name: the reference ``test_cascade.py`` holds the detector to (the same readings, to the
bit, after the same events)."""

from __future__ import annotations

import bisect
import itertools
import math
from collections import deque

from mm.book import Book
from mm.model import PriceLevel, Side, Trade
from mm.strategies.market_maker.cascade import BPS, MAX_NOTIONAL, CascadeConfig
from mm.strategies.market_maker.eventclock import EventClock


def _finite(value: float) -> bool:
    return isinstance(value, (int, float)) and math.isfinite(value)


def _clip01(value: float) -> float:
    if not math.isfinite(value):
        return 0.0
    return min(max(value, 0.0), 1.0)


_NUMBER = (float, int)

# The names of an instant reading's parts, in the order _reading keeps them.
_PARTS = (
    "velocity_bps_s",
    "velocity_ratio",
    "notional_per_s",
    "rate_ratio",
    "surge",
    "imbalance",
    "one_sided",
    "depletion",
    "depletion_bid",
    "depletion_ask",
    "confirmation",
    "instant",
)


def _good_levels(levels: tuple[PriceLevel, ...]) -> list[PriceLevel]:
    """The levels with a positive, finite price and size (numbers: ``0 < x < inf``) and a
    notional within MAX_NOTIONAL, in one pass."""
    return [
        level
        for level in levels
        if isinstance(level[0], _NUMBER)
        and isinstance(level[1], _NUMBER)
        and 0 < level[0] < math.inf
        and 0 < level[1] < math.inf
        and level[0] * level[1] <= MAX_NOTIONAL
    ]


def _bid_depth(levels: tuple[PriceLevel, ...], mid: float, reach: float) -> float:
    """The notional of the bids ``_good_levels`` keeps within ``reach`` below ``mid`` (in one
    pass: no list of the good levels)."""
    return math.fsum(
        px * sz
        for px, sz, _ in levels
        if isinstance(px, _NUMBER)
        and isinstance(sz, _NUMBER)
        and 0 < px < math.inf
        and 0 < sz < math.inf
        and px * sz <= MAX_NOTIONAL
        and mid - px <= reach
    )


def _ask_depth(levels: tuple[PriceLevel, ...], mid: float, reach: float) -> float:
    """The notional of the asks ``_good_levels`` keeps within ``reach`` above ``mid``."""
    return math.fsum(
        px * sz
        for px, sz, _ in levels
        if isinstance(px, _NUMBER)
        and isinstance(sz, _NUMBER)
        and 0 < px < math.inf
        and 0 < sz < math.inf
        and px * sz <= MAX_NOTIONAL
        and px - mid <= reach
    )


def _best(levels: tuple[PriceLevel, ...]) -> float | None:
    """The price of the first level ``_good_levels`` keeps, without building the list."""
    for level in levels:
        px, sz = level[0], level[1]
        if (
            isinstance(px, _NUMBER)
            and isinstance(sz, _NUMBER)
            and 0 < px < math.inf
            and 0 < sz < math.inf
            and px * sz <= MAX_NOTIONAL
        ):
            return px
    return None


class ReferenceCascadeDetector:
    """``CascadeDetector`` as it was before the per-book cuts (issue 16, the decision task)."""

    def __init__(self, config: CascadeConfig | None = None) -> None:
        self.config = config or CascadeConfig()
        self._clock = EventClock()
        self._started: float | None = None
        # Mids: (time, mid), oldest first, kept back to one sample before the velocity window.
        self._mids: deque[tuple[float, float]] = deque()
        self._mid_times: deque[float] = deque()  # their times, for a bisection without a key
        # Trades in the flow window (time, notional, signed notional: + for buying takers) and
        # in the baseline before it (time, notional), with running totals.
        self._recent: deque[tuple[float, float, float]] = deque()
        self._recent_total = 0.0
        self._recent_net = 0.0
        self._older: deque[tuple[float, float]] = deque()
        self._older_total = 0.0
        # Depth near the mid per book (time, bids, asks) over the flow window (at least the
        # latest), and its slow average per side.
        self._depths: deque[tuple[float, float, float]] = deque()
        self._depth_sums = [0.0, 0.0]  # of the samples in _depths, per side (O(1) reads)
        self._depth_baseline: list[float | None] = [None, None]
        self._depth_at: float | None = None
        self._half_spread = 0.0  # of the last two-sided book, to place the mid of a one-sided one
        self._peak = 0.0
        self._peak_at = 0.0
        # Inputs taken so far, and the last instant reading with the inputs and time it was
        # made at: a reading again at that time with no input since (the quote right after the
        # book) is the same, since moving the windows to a time twice moves them once.
        self._inputs = 0
        self._last_instant: tuple[float, int, float, tuple[float, ...]] | None = None
        self._confirm = sorted((self.config.confirm_min, self.config.confirm_max))
        self.trades = 0
        self.books = 0
        self.ignored = 0

    # --- time ---------------------------------------------------------------------------------

    def _event_time(self, now: float) -> float | None:
        """The event's time, or None to ignore it (non-finite)."""
        at = self._clock.event(now)
        if at is not None and self._started is None:
            self._started = at
        return at

    def _query_time(self, now: float) -> float:
        """A query's time: the latest seen when ``now`` is earlier or not finite."""
        return self._clock.query(now)

    # --- inputs -------------------------------------------------------------------------------

    def on_trade(self, trade: Trade, now: float) -> None:
        """A market trade at ``now``: its notional, signed by the taker's side."""
        self._inputs += 1
        px, sz = trade.px, trade.sz
        if not (_finite(px) and _finite(sz) and px > 0 and sz > 0):
            self.ignored += 1
            return
        at = self._event_time(now)
        if at is None:
            self.ignored += 1
            return
        notional = px * sz
        if not notional <= MAX_NOTIONAL:
            self.ignored += 1
            return
        signed = notional if trade.side is Side.BUY else -notional
        self._recent.append((at, notional, signed))
        self._recent_total += notional
        self._recent_net += signed
        self.trades += 1
        self._advance(at)

    def on_book(self, book: Book, now: float) -> None:
        """A book at ``now``: its mid for the velocity and its depth near the mid."""
        self._inputs += 1
        if book.is_crossed:
            self.ignored += 1
            return
        at = self._event_time(now)
        if at is None:
            self.ignored += 1
            return
        bids, asks = book.bids, book.asks
        best_bid = _best(bids)
        best_ask = _best(asks)
        mid = None
        if best_bid is not None and best_ask is not None:
            if best_bid >= best_ask:  # crossed once the bad levels are gone
                self.ignored += 1
                return
            mid = best_bid / 2 + best_ask / 2
            self._half_spread = best_ask / 2 - best_bid / 2
        elif best_ask is not None:  # the bids were swept: the mid is about half a spread below
            mid = max(best_ask - self._half_spread, best_ask / 2)
        elif best_bid is not None:
            mid = best_bid + min(self._half_spread, best_bid)
        if mid is not None and not (math.isfinite(mid) and mid > 0):
            mid = None
        if mid is not None:
            self._mids.append((at, mid))
            self._mid_times.append(at)
        reference = mid if mid is not None else self._last_mid()
        if reference is not None:
            self._update_depth(at, reference, bids, asks)
        self.books += 1
        self._advance(at)
        self._remember(at, self._remembered_instant(at)[0])

    def _last_mid(self) -> float | None:
        return self._mids[-1][1] if self._mids else None

    def _update_depth(
        self, now: float, mid: float, bids: tuple[PriceLevel, ...], asks: tuple[PriceLevel, ...]
    ) -> None:
        reach = mid * self.config.depth_bps / BPS
        depths = (_bid_depth(bids, mid, reach), _ask_depth(asks, mid, reach))
        if not all(math.isfinite(depth) for depth in depths):
            return
        self._depths.append((now, depths[0], depths[1]))
        self._depth_sums[0] += depths[0]
        self._depth_sums[1] += depths[1]
        elapsed = 0.0 if self._depth_at is None else max(now - self._depth_at, 0.0)
        weight = 1.0 - math.exp(-elapsed / self.config.baseline_s)
        for side, depth in enumerate(depths):
            baseline = self._depth_baseline[side]
            self._depth_baseline[side] = (
                depth if baseline is None else baseline + weight * (depth - baseline)
            )
        self._depth_at = now

    def _advance(self, now: float) -> None:
        """Age trades from the flow window into the baseline, and out; trim old mids."""
        config = self.config
        window_start = now - config.flow_window_s
        recent, older = self._recent, self._older
        while recent and recent[0][0] <= window_start:
            at, notional, signed = recent.popleft()
            self._recent_total -= notional
            self._recent_net -= signed
            older.append((at, notional))
            self._older_total += notional
        if not recent:
            self._recent_total = self._recent_net = 0.0
        horizon = window_start - config.baseline_s
        while older and older[0][0] <= horizon:
            self._older_total -= older.popleft()[1]
        if not older:
            self._older_total = 0.0
        depths = self._depths
        while len(depths) >= 2 and depths[0][0] <= window_start:
            _, bid_depth, ask_depth = depths.popleft()
            self._depth_sums[0] -= bid_depth
            self._depth_sums[1] -= ask_depth
        if len(depths) == 1:  # no drift of the running sums: one sample is its own sum
            self._depth_sums = [depths[0][1], depths[0][2]]
        mids = self._mids
        oldest_needed = now - config.velocity_window_s
        while len(mids) >= 2 and mids[1][0] <= oldest_needed:
            mids.popleft()
            self._mid_times.popleft()

    # --- outputs ------------------------------------------------------------------------------

    def _mid_at(self, when: float) -> float | None:
        """The mid prevailing at ``when``: the latest sample at or before it (the samples'
        times never go back: the event clock's)."""
        index = bisect.bisect_right(self._mid_times, when)
        return self._mids[index - 1][1] if index else None

    def velocity(self, now: float) -> float:
        """Persistent mid velocity in bps per second, signed (0 unless every leg agrees)."""
        now = self._query_time(now)
        config = self.config
        legs = config.velocity_legs
        leg_s = config.velocity_window_s / legs
        times, mids = self._mid_times, self._mids
        # The log of each mark, taken once (each inner mark ends one leg and starts the next).
        logs: list[float] = []
        for index in range(legs + 1):
            found = bisect.bisect_right(times, now - config.velocity_window_s + index * leg_s)
            if not found:
                return 0.0
            logs.append(math.log(mids[found - 1][1]))
        # Differences of logs: the ratio of two extreme prices could underflow to 0. The marks
        # are finite and positive, so no move is NaN: every move is positive exactly when the
        # smallest is.
        moves = [(end - start) * BPS / leg_s for start, end in itertools.pairwise(logs)]
        slowest_up, slowest_down = min(moves), max(moves)
        if slowest_up > 0:
            return slowest_up
        if slowest_down < 0:
            return slowest_down
        return 0.0

    def _baseline_rate(self, now: float) -> float | None:
        """Notional per second before the flow window; None with too little history."""
        config = self.config
        if self._started is None:
            return None
        covered = min(config.baseline_s, now - config.flow_window_s - self._started)
        if covered <= 0 or covered < config.min_baseline_s:
            return None
        return max(self._older_total, 0.0) / covered

    def _instant(self, now: float) -> tuple[float, dict[str, float]]:
        """The instant reading at ``now`` and its parts by name (the caller's to change)."""
        value, parts = self._remembered_instant(now)
        return value, dict(zip(_PARTS, parts, strict=True))

    def _remembered_instant(self, now: float) -> tuple[float, tuple[float, ...]]:
        """The instant reading at ``now`` and its parts in ``_PARTS`` order, remembered: for
        callers that only read the value (every book and every quote), no dict is built."""
        last = self._last_instant
        if last is not None and last[0] == now and last[1] == self._inputs:
            return last[2], last[3]
        value, parts = self._reading(now)
        self._last_instant = (now, self._inputs, value, parts)
        return value, parts

    def _reading(self, now: float) -> tuple[float, tuple[float, ...]]:
        config = self.config
        self._advance(now)
        velocity = self.velocity(now)
        baseline = self._baseline_rate(now)
        total = max(self._recent_total, 0.0)
        net = self._recent_net
        rate = total / config.flow_window_s
        if baseline is None:
            rate_ratio = 0.0
            surge = 0.0
            expected = 0.0
        elif baseline > 0:
            rate_ratio = rate / baseline
            surge = _clip01((rate_ratio - 1.0) / (config.surge_full - 1.0))
            expected = baseline * config.flow_window_s
        else:  # trades after a baseline with none
            rate_ratio = 0.0
            surge = 1.0 if total > 0 else 0.0
            expected = 0.0
        imbalance = net / max(total, expected) if max(total, expected) > 0 else 0.0
        imbalance = min(max(imbalance, -1.0), 1.0)
        # The direction of the move; with no move, the direction of the flow (for status).
        falling = velocity < 0 if velocity != 0 else imbalance < 0
        one_sided = _clip01(-imbalance if falling else imbalance)
        depletion_bid = self._depletion(0, now)
        depletion_ask = self._depletion(1, now)
        depletion = depletion_bid if falling else depletion_ask
        low, high = self._confirm
        confirmation = low + (high - low) * (surge + one_sided + depletion) / 3.0
        value = abs(velocity) / config.velocity_scale_bps_s * confirmation
        if not math.isfinite(value):
            value = 0.0
        parts = (  # in _PARTS order
            velocity,
            abs(velocity) / config.velocity_scale_bps_s,
            rate,
            rate_ratio,
            surge,
            imbalance,
            one_sided,
            depletion,
            depletion_bid,
            depletion_ask,
            confirmation,
            value,
        )
        return value, parts

    def _depletion(self, side: int, now: float) -> float:
        """1 - (mean depth over the flow window) / baseline, on one side (0 bids, 1 asks)."""
        baseline = self._depth_baseline[side]
        if not self._depths or baseline is None or baseline <= 0 or self._started is None:
            return 0.0
        if now - self._started < self.config.min_baseline_s:
            return 0.0
        depth = max(self._depth_sums[side], 0.0) / len(self._depths)
        return _clip01(1.0 - depth / baseline)

    def _remember(self, now: float, value: float) -> None:
        if value >= self._decayed_peak(now):
            self._peak, self._peak_at = value, now

    def _decayed_peak(self, now: float) -> float:
        if self._peak <= 0:
            return 0.0
        elapsed = max(now - self._peak_at, 0.0)
        decayed: float = self._peak * 0.5 ** (elapsed / self.config.decay_half_life_s)
        return decayed

    def severity(self, now: float) -> float:
        """The cascade severity at ``now``: 0 calm, 0.4 widen, 0.8 pull, 5.0 kill."""
        now = self._query_time(now)
        value = self._remembered_instant(now)[0]
        self._remember(now, value)
        return max(value, self._decayed_peak(now))

    def components(self, now: float) -> dict[str, float]:
        """The severity and its ingredients at ``now`` (plain, finite numbers)."""
        now = self._query_time(now)
        value, parts = self._instant(now)
        self._remember(now, value)
        parts["severity"] = max(value, self._decayed_peak(now))
        return parts
