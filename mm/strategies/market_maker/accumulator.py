"""Event accumulator: when to requote, merging events and respecting a minimum interval.

A requote is due when the mid moved more than ``mid_threshold_bps`` from the mid last quoted
at, on a trade, on a fill, or when the last quote is older than ``max_age_s`` — but never sooner
than ``min_interval_s`` after the last quote. Events during that cool-down are latched and fire
once when it ends (``next_due`` gives that time). Before the first quote it is always due.
Times are seconds on whatever monotonic clock the caller uses; nothing here reads a clock.
"""

from __future__ import annotations

import enum
import math

import attrs

from mm.settings import non_negative, positive, setting


class Trigger(enum.Enum):
    MID = "mid"
    TRADE = "trade"
    FILL = "fill"
    MAX_AGE = "max_age"
    INITIAL = "initial"


@attrs.frozen
class AccumulatorConfig:
    mid_threshold_bps: float = setting(2.0, non_negative)
    max_age_s: float = setting(5.0, positive)
    min_interval_s: float = setting(0.2, non_negative)


@attrs.define
class EventAccumulator:
    config: AccumulatorConfig = attrs.field(factory=AccumulatorConfig)
    last_quote_time: float | None = None
    last_quote_mid: float | None = None
    mid: float | None = None
    pending: set[Trigger] = attrs.field(factory=set)

    def on_mid(self, mid: float, now: float) -> None:
        """A new mid; latches a trigger when it moved past the threshold since the last quote."""
        del now  # events are latched; the time only matters to due()
        if not math.isfinite(mid) or mid <= 0:
            return
        self.mid = mid
        ref = self.last_quote_mid
        if ref is not None and abs(mid - ref) / ref * 10_000.0 > self.config.mid_threshold_bps:
            self.pending.add(Trigger.MID)

    def on_trade(self, now: float) -> None:
        del now
        self.pending.add(Trigger.TRADE)

    def on_fill(self, now: float) -> None:
        del now
        self.pending.add(Trigger.FILL)

    def triggers(self, now: float) -> frozenset[Trigger]:
        """What would make a requote due at ``now``, ignoring the minimum interval."""
        if self.last_quote_time is None:
            return frozenset({Trigger.INITIAL, *self.pending})
        found = set(self.pending)
        if now - self.last_quote_time >= self.config.max_age_s:
            found.add(Trigger.MAX_AGE)
        return frozenset(found)

    def next_allowed(self) -> float | None:
        """The earliest time the minimum interval allows a requote (None before any quote)."""
        if self.last_quote_time is None:
            return None
        return self.last_quote_time + self.config.min_interval_s

    def cooling(self, now: float) -> bool:
        """Whether ``now`` is still inside the minimum interval after the last quote."""
        last = self.last_quote_time
        return last is not None and now - last < self.config.min_interval_s

    def due(self, now: float) -> bool:
        """Not cooling and some trigger (``triggers``), without building the trigger set: the
        strategy asks for every symbol with news."""
        last = self.last_quote_time
        if last is None:
            return True  # never cooling, and the initial trigger
        if now - last < self.config.min_interval_s:
            return False
        return bool(self.pending) or now - last >= self.config.max_age_s

    def next_due(self, now: float) -> float:
        """When a requote will next be due if no new event arrives (``now`` if already due)."""
        if self.last_quote_time is None:
            return now
        allowed = self.last_quote_time + self.config.min_interval_s
        at = allowed if self.pending else self.last_quote_time + self.config.max_age_s
        at = max(at, allowed, now)
        for _ in range(64):  # float rounding: step a few ulps to a time that is due
            if self.due(at) or not math.isfinite(at):
                break
            at = math.nextafter(at, math.inf)
        return at

    def quoted(self, mid: float | None, now: float) -> None:
        """A quote went out at ``now`` around ``mid``: reset the reference and the latches."""
        self.last_quote_time = now
        if mid is not None and math.isfinite(mid) and mid > 0:
            self.last_quote_mid = mid
            self.mid = mid
        self.pending.clear()
