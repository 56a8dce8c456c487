"""The autonomy monitor's judgement: platform health readings in, triggers out.

``assess(readings, config)`` turns one snapshot of the platform (journal lag, book ages, feed
reconnects, queue fill, memory, position drift, margin, drawdown) into the triggers it calls
for, each with the values that showed it. ``EventWindow`` counts events in a sliding window,
``VenueDisconnects`` counts venue disconnects from feed reconnects (the market and user feeds
dropping together are one disconnect, not two) and ``DriftTracker`` says how long local and
venue positions have disagreed, so that a fill still on its way is not mistaken for drift.

Pure: no I/O and no clock reads; ``now`` is passed in.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Mapping

import attrs

from mm.ops.autonomy import AutonomyConfig, Mode, Reason, Trigger, Value

MIB = 1024 * 1024


@attrs.frozen
class Readings:
    # Seconds the oldest unwritten journal entry has waited (0 when nothing waits).
    journal_lag_s: float = 0.0
    # Age of each symbol's latest book in seconds (None: no book yet).
    book_ages_s: Mapping[str, float | None] = attrs.field(factory=dict)
    # Venue disconnects within the flapping window (feed reconnects, those of one drop merged).
    reconnects: int = 0
    queue_fill: Mapping[str, float] = attrs.field(factory=dict)  # used / capacity per queue
    rss_bytes: int = 0
    # Per symbol: (local position, venue position, seconds they have disagreed).
    drift: Mapping[str, tuple[float, float, float]] = attrs.field(factory=dict)
    margin_usage: float | None = None  # margin used / account value
    # Total PnL below its peak, as a fraction of the account value (None: cannot be judged, the
    # account value is not known).
    drawdown: float | None = None


def assess(readings: Readings, config: AutonomyConfig) -> list[Trigger]:
    """Every trigger the readings call for, the strictest first."""
    found: list[Trigger] = []

    def add(reason: Reason, mode: Mode, **values: Value) -> None:
        found.append(Trigger(reason, mode, values))

    if readings.journal_lag_s > config.journal_stale_s:
        add(Reason.JOURNAL_STALE, Mode.REDUCE_ONLY, lag_s=round(readings.journal_lag_s, 3))
    ages = readings.book_ages_s
    if ages:
        gaps = sorted(c for c, age in ages.items() if age is None or age > config.feed_gap_s)
        if len(gaps) / len(ages) > config.feed_gap_fraction:
            add(
                Reason.FEED_GAP_MAJORITY,
                Mode.REDUCE_ONLY,
                symbols_with_gap=",".join(gaps),
                symbols=len(ages),
            )
    if readings.reconnects >= config.flapping_reconnects:
        add(
            Reason.FEED_RECONNECT_FLAPPING,
            Mode.REDUCE_ONLY,
            reconnects=readings.reconnects,
            window_s=config.flapping_window_s,
        )
    full = {
        name: fill
        for name, fill in readings.queue_fill.items()
        if fill > config.queue_depth_fraction
    }
    if full:
        name, fill = max(full.items(), key=lambda item: item[1])
        add(Reason.QUEUE_DEPTH_EXCEEDED, Mode.REDUCE_ONLY, queue=name, fill=round(fill, 4))
    if readings.rss_bytes > config.max_rss_mib * MIB:
        add(Reason.MEMORY_PRESSURE, Mode.REDUCE_ONLY, rss_mib=round(readings.rss_bytes / MIB, 1))
    for coin, (local, venue, lasted) in sorted(readings.drift.items()):
        if lasted >= config.drift_grace_s:
            add(
                Reason.RECONCILIATION_DRIFT,
                Mode.REDUCE_ONLY,
                symbol=coin,
                local=local,
                venue=venue,
                lasted_s=round(lasted, 3),
            )
            break
    usage = readings.margin_usage
    if usage is not None and usage > config.margin_reduce_only:
        add(Reason.MARGIN_USAGE, Mode.REDUCE_ONLY, usage=round(usage, 4))
    elif usage is not None and usage > config.margin_warning:
        add(Reason.MARGIN_WARNING, Mode.QUARANTINED, usage=round(usage, 4))
    if readings.drawdown is not None and readings.drawdown > config.max_drawdown:
        add(
            Reason.PNL_PEAK_DRAWDOWN,
            Mode.HALT,
            drawdown=round(readings.drawdown, 6),
            limit=config.max_drawdown,
        )
    return sorted(found, key=lambda trigger: trigger.mode, reverse=True)


class EventWindow:
    """How many events happened in the last ``window_s`` seconds."""

    def __init__(self, window_s: float) -> None:
        self.window_s = window_s
        self._times: deque[float] = deque()

    def record(self, now: float) -> None:
        self._times.append(now)

    def count(self, now: float) -> int:
        while self._times and self._times[0] <= now - self.window_s:
            self._times.popleft()
        return len(self._times)


SAME_DISCONNECT_S = 30.0
"""Feeds that begin reconnecting within this many seconds of the first one are one venue
disconnect. When the venue (or the network) drops, every feed loses its socket at once, but
each notices in its own time: at once on a closed socket, after its pong timeout or its stale
readings on a silent one. Too narrow a window counts one disconnect two or three times (what
this guards against); too wide only ever merges a second feed's separate drop into the first."""


class VenueDisconnects:
    """Venue disconnects in the last ``window_s`` seconds, counted from feed reconnects.

    A feed that starts reconnecting within ``same_within_s`` of the current disconnect's first
    reconnect, and is not yet part of it, joins it; anything else (a feed dropping again, or
    later) is a new disconnect. So one drop of the venue is one, however many feeds it has,
    and a feed flapping on its own still counts each time.
    """

    def __init__(self, window_s: float, same_within_s: float = SAME_DISCONNECT_S) -> None:
        self.same_within_s = same_within_s
        self._window = EventWindow(window_s)
        self._started: float | None = None
        self._feeds: set[str] = set()

    def record(self, feed: str, now: float) -> None:
        started = self._started
        if started is not None and now - started < self.same_within_s and feed not in self._feeds:
            self._feeds.add(feed)
            return
        self._started = now
        self._feeds = {feed}
        self._window.record(now)

    def count(self, now: float) -> int:
        return self._window.count(now)


# A spot balance that differs from the venue's by less than this share of it is the floats'
# rounding over many fills (the venue counts in exact decimals), not a fill lost or doubled:
# one part in a billion is 0.0001 USDT of 100,000, far below any fill's notional.
BALANCE_RELATIVE_TOLERANCE = 1e-9


class DriftTracker:
    """Since when each symbol's local and venue positions (or each currency's balances) have
    disagreed: by more than ``tolerance``, or than ``relative`` of the venue's figure."""

    def __init__(self, tolerance: float, relative: float = 0.0) -> None:
        self.tolerance = tolerance
        self.relative = relative
        self._since: dict[str, float] = {}

    def update(
        self, local: Mapping[str, float], venue: Mapping[str, float], now: float
    ) -> dict[str, tuple[float, float, float]]:
        """(local, venue, seconds disagreeing) for every symbol that disagrees now."""
        drifting: dict[str, tuple[float, float, float]] = {}
        for coin in sorted(set(local) | set(venue)):
            mine, theirs = local.get(coin, 0.0), venue.get(coin, 0.0)
            if abs(mine - theirs) <= max(self.tolerance, self.relative * abs(theirs)):
                self._since.pop(coin, None)
                continue
            since = self._since.setdefault(coin, now)
            drifting[coin] = (mine, theirs, now - since)
        return drifting
