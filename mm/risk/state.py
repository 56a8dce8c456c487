"""The risk state snapshot the monitors read, and pure helpers that build its rates.

Nothing here reads a clock or does I/O: every time (``now``) is passed in, in seconds on
whatever monotonic clock the caller uses. ``RiskState`` is a frozen snapshot; the trackers
(``RateTracker``, ``PositionVelocity``, ``PriceVelocity``, ``ErrorWindow``) are small mutable
helpers that turn a stream of observations into the rates the snapshot carries.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Mapping

import attrs

# Connection states of a feed (``FeedHealth.connection``).
HEALTHY = "healthy"
STALE = "stale"
RECONNECTING = "reconnecting"
DISCONNECTED = "disconnected"
FAILED = "failed"


@attrs.frozen
class SymbolRisk:
    """One symbol's position and rates.

    ``position_velocity`` is the position's rate of change as a fraction of the maximum position
    per minute (1.0 = a full max position in a minute); ``price_velocity`` is the price's
    relative rate of change per second (0.05 = 5 %/s). Both are absolute values.
    """

    contracts: float = 0.0
    value_usd: float = 0.0
    position_velocity: float = 0.0
    price_velocity: float = 0.0


@attrs.frozen
class FeedHealth:
    """One feed's freshness: data age in seconds, connection state, reconnect attempts so far."""

    age_s: float = 0.0
    connection: str = HEALTHY
    reconnect_attempts: int = 0


@attrs.frozen
class RiskState:
    """Everything the monitors read, at one instant."""

    daily_pnl: float = 0.0
    peak_pnl: float = 0.0
    # The venue's account value (USD); None while it is not known (not read yet, or an account
    # not funded yet): what is measured against it cannot be judged then.
    account_value: float | None = None
    symbols: Mapping[str, SymbolRisk] = attrs.field(factory=dict)
    feeds: Mapping[str, FeedHealth] = attrs.field(factory=dict)
    cascade_severity: float = 0.0
    api_errors: int = 0

    @property
    def daily_loss(self) -> float:
        """The day's loss in USD (0 when the day is in profit)."""
        return max(0.0, -self.daily_pnl)

    @property
    def drawdown_usd(self) -> float:
        """Peak-to-current PnL in USD (never negative)."""
        return max(0.0, max(self.peak_pnl, self.daily_pnl) - self.daily_pnl)

    @property
    def drawdown(self) -> float | None:
        """Drawdown as a fraction of the account value: ``(peak - current) / account_value``.

        Not a ratio of the peak PnL (a $0.02 peak would make any dip look like hundreds of
        percent). None while the account value is unknown or not positive: a drawdown against
        no known account cannot be judged, and is never invented.
        """
        if self.account_value is None or self.account_value <= 0.0:
            return None
        return self.drawdown_usd / self.account_value


@attrs.define
class RateTracker:
    """Rate of change (units per second) over the last ``window_s`` seconds of observations."""

    window_s: float = 60.0
    _history: deque[tuple[float, float]] = attrs.field(factory=deque, init=False)

    def update(self, value: float, now: float) -> float:
        """Record ``value`` at ``now``; the signed rate from the oldest sample in the window."""
        self._history.append((now, value))
        while len(self._history) > 1 and now - self._history[0][0] > self.window_s:
            self._history.popleft()
        then, old = self._history[0]
        elapsed = now - then
        if elapsed <= 0.0:
            return 0.0
        return (value - old) / elapsed

    def oldest_time(self) -> float | None:
        return self._history[0][0] if self._history else None


@attrs.define
class PositionVelocity:
    """Position velocity: |rate| as a fraction of ``max_position`` per minute."""

    max_position: float
    window_s: float = 60.0
    _rate: RateTracker = attrs.field(init=False)

    def __attrs_post_init__(self) -> None:
        self._rate = RateTracker(self.window_s)

    def update(self, contracts: float, now: float) -> float:
        """The position's change over the last minute, as a fraction of the maximum position.

        A history shorter than the window is not extrapolated: two fills in two seconds are
        the change they made, not thirty times it per minute.
        """
        per_second = self._rate.update(contracts, now)
        oldest = self._rate.oldest_time()
        elapsed = now - oldest if oldest is not None else 0.0
        change = abs(per_second) * max(elapsed, 0.0)
        per_minute = change * (60.0 / self.window_s) if elapsed >= self.window_s else change
        if self.max_position <= 0.0:
            return math.inf if per_minute else 0.0
        return per_minute / self.max_position


@attrs.define
class PriceVelocity:
    """Price velocity: |relative change| per second over a short window (0.05 = 5 %/s).

    A history shorter than a second is not extrapolated to one: a move seen over 5 ms is that
    move within the second, not two hundred times it. Readings come on a timer and on every
    fill and feed change, so two can be milliseconds apart with a book update between them:
    the first readings after a start (risk takes the fills and feed changes queued during the
    startup sequence at once) and the first after a pause longer than the window (the older
    readings have left it). Extrapolated, an ordinary 0.07 % step of the mid read 5 ms later
    was 14 %/s and the kill switch tripped on "price velocity" as mm started. A real flash move
    still reads at once: 15 % within the second is 15 % a second.
    """

    window_s: float = 5.0
    _history: deque[tuple[float, float]] = attrs.field(factory=deque, init=False)

    def update(self, price: float, now: float) -> float:
        self._history.append((now, price))
        while len(self._history) > 1 and now - self._history[0][0] > self.window_s:
            self._history.popleft()
        then, old = self._history[0]
        elapsed = now - then
        if elapsed <= 0.0 or old <= 0.0:
            return 0.0
        return abs(price - old) / old / max(elapsed, 1.0)


@attrs.define
class ErrorWindow:
    """API errors counted over the last ``window_s`` seconds."""

    window_s: float = 60.0
    _times: deque[float] = attrs.field(factory=deque, init=False)

    def record(self, now: float) -> int:
        self._times.append(now)
        return self.count(now)

    def count(self, now: float) -> int:
        """Errors at times in ``(now - window_s, now]``; older ones are forgotten."""
        while self._times and now - self._times[0] >= self.window_s:
            self._times.popleft()
        return sum(1 for t in self._times if t <= now)
