"""The spread chain's ``staleness`` factor: widen as a symbol's inputs grow old, up to a cap.

Role: one :class:`StalenessTracker` per symbol watches its inputs (the book and the trade tape)
and gives the factor ``>= 1`` the spread chain multiplies in. Pure: no I/O, no clock; every
``now`` is seconds on the caller's monotonic clock.

Inputs: :meth:`StalenessTracker.on_book` and :meth:`StalenessTracker.on_trade` at the time each
arrived (only the time matters).

Outputs: :meth:`StalenessTracker.factor` in ``[1, max_factor]``: per signal, 1 while its age
is at most ``*_fresh_s``, rising linearly to ``max_factor`` at ``*_full_s`` and staying there;
the symbol's factor is the largest of its signals' (the worst input decides; the signals do not
compound). :meth:`StalenessTracker.components` gives the ages and factors for status.

The cold-start guard (incident-response reference, A.5d): a signal that never warmed up (fewer
than ``warm_observations`` updates ever) is not stale, it is absent, and does not widen; the
quote gate's warm-up and data gate deal with absent data. Once warm, a signal stays warm, so a
feed that stops afterwards does widen. Everything here clears with market data alone.

Failures: an update with a non-finite ``now`` is ignored; time never runs backwards (an
earlier update keeps the later one); a non-finite query time or age gives the cap for a warm
signal (a broken input widens rather than tightens); a ``*_full_s`` at or below ``*_fresh_s``
makes the ramp a step at ``*_fresh_s``. Nothing raises and no output is NaN.
"""

from __future__ import annotations

import math

import attrs

from mm.settings import at_least, non_negative, setting

__all__ = ["Freshness", "StalenessConfig", "StalenessTracker", "staleness_factor"]


@attrs.frozen
class StalenessConfig:
    """Ages at which each input starts to widen and reaches the cap; the cap; the warm-up."""

    # The book: pushed at least every half second by the venue while it changes.
    book_fresh_s: float = setting(1.0, non_negative)
    book_full_s: float = setting(3.0, non_negative)
    # The trade tape: quiet for minutes in a calm market, so its limits are looser.
    trades_fresh_s: float = setting(60.0, non_negative)
    trades_full_s: float = setting(300.0, non_negative)
    # The factor of a signal at or past its full age.
    max_factor: float = setting(2.0, at_least(1.0))
    # Updates a signal needs before it can be stale (the cold-start guard).
    warm_observations: int = setting(10, at_least(1))


def _finite(value: float) -> bool:
    return isinstance(value, (int, float)) and math.isfinite(value)


def staleness_factor(age_s: float, fresh_s: float, full_s: float, max_factor: float) -> float:
    """1 up to ``fresh_s``, linear to ``max_factor`` at ``full_s``, then ``max_factor``."""
    cap = max_factor if _finite(max_factor) and max_factor >= 1 else 1.0
    if not _finite(age_s):
        return cap  # a broken age widens
    if age_s <= fresh_s:
        return 1.0
    if full_s <= fresh_s or age_s >= full_s:
        return cap
    return 1.0 + (cap - 1.0) * (age_s - fresh_s) / (full_s - fresh_s)


@attrs.define
class Freshness:
    """One signal's update count and last update time."""

    observations: int = 0
    last: float | None = None

    def observe(self, now: float) -> None:
        if not _finite(now):
            return
        self.observations += 1
        self.last = now if self.last is None else max(self.last, now)

    def warm(self, warm_observations: int) -> bool:
        return self.observations >= warm_observations

    def age(self, now: float) -> float | None:
        """Seconds since the last update, or None before any (or with a non-finite now)."""
        if self.last is None or not _finite(now):
            return None
        age = max(now - self.last, 0.0)
        return age if math.isfinite(age) else None


class StalenessTracker:
    """The staleness factor of one symbol; see the module docstring."""

    def __init__(self, config: StalenessConfig | None = None) -> None:
        self.config = config or StalenessConfig()
        self.book = Freshness()
        self.trades = Freshness()

    def on_book(self, now: float) -> None:
        self.book.observe(now)

    def on_trade(self, now: float) -> None:
        self.trades.observe(now)

    def _factor(self, signal: Freshness, fresh_s: float, full_s: float, now: float) -> float:
        config = self.config
        if not signal.warm(config.warm_observations):
            return 1.0  # never warmed up: absent, not stale
        age = signal.age(now)
        if age is None:  # a broken clock reading: widen rather than tighten
            return staleness_factor(math.inf, fresh_s, full_s, config.max_factor)
        return staleness_factor(age, fresh_s, full_s, config.max_factor)

    def book_factor(self, now: float) -> float:
        config = self.config
        return self._factor(self.book, config.book_fresh_s, config.book_full_s, now)

    def trades_factor(self, now: float) -> float:
        config = self.config
        return self._factor(self.trades, config.trades_fresh_s, config.trades_full_s, now)

    def factor(self, now: float) -> float:
        """The staleness factor at ``now``: the worst warm signal's, in [1, max_factor]."""
        return max(self.book_factor(now), self.trades_factor(now))

    def components(self, now: float) -> dict[str, float]:
        """Ages (-1 before any update), warm flags (0/1) and factors, as plain numbers."""
        warm = self.config.warm_observations
        book_age, trades_age = self.book.age(now), self.trades.age(now)
        return {
            "book_age_s": -1.0 if book_age is None else book_age,
            "trades_age_s": -1.0 if trades_age is None else trades_age,
            "book_warm": 1.0 if self.book.warm(warm) else 0.0,
            "trades_warm": 1.0 if self.trades.warm(warm) else 0.0,
            "book_factor": self.book_factor(now),
            "trades_factor": self.trades_factor(now),
            "factor": self.factor(now),
        }
