"""The UTC day's PnL and its peak, as the loss and drawdown monitors judge them.

Pure: no I/O and no clock reads; times are passed in as epoch milliseconds.

``DailyPnl`` keeps one UTC day's realised PnL net of fees: the venue's ``closed_pnl`` less the
fee of each fill whose venue time falls on that day, each fill counted once by trade id
(``(tid, oid)``; the newest ``SEEN_CAPACITY`` of them remembered), as the daily report
(``mm.ops.report``) counts them. At start it is restored from the journal's fills of the day
(``restore``), so a restart does not wipe the day's loss
and ``risk.max_daily_loss`` cannot be bypassed by restarting; from then on every fill routed to
the risk aggregator is added (those the venue made while mm was down included: they reach the
journal, and the risk aggregator, once at the restart). The day's PnL is that realised figure
plus the open positions' unrealised PnL now (against their entry prices, as the positions
report it). Its peak is the highest the day's PnL has been: restored as the highest running
sum of the realised figure through the journaled fills (the unrealised part of the past is not
in the journal), then raised by every observation. At 00:00 UTC (``roll``, or a fill of a later
day) both start again from zero; a fill of an earlier day changes nothing.
"""

from __future__ import annotations

import datetime
from collections.abc import Iterable

from mm.bounded import BoundedSet
from mm.model import Fill
from mm.ops.report import day_bounds_ms

__all__ = ["SEEN_CAPACITY", "DailyPnl", "utc_day"]

# The day's newest fills remembered to count each once (a day of a busy market maker makes
# hundreds of thousands: a set of all of them grew with every fill until midnight). The service
# gives as many as the fill history remembers (feeds.user.dedup_capacity): a fill replayed from
# further back is dropped there, before it reaches risk. This is its default.
SEEN_CAPACITY = 10_000


def utc_day(time_ms: int) -> datetime.date:
    """The UTC calendar day of an epoch time in milliseconds."""
    return datetime.datetime.fromtimestamp(time_ms / 1000, datetime.UTC).date()


class DailyPnl:
    """One UTC day's realised PnL (net of fees) and the peak of its PnL (see the module)."""

    def __init__(self, day: datetime.date, capacity: int = SEEN_CAPACITY) -> None:
        self.day = day
        self.capacity = capacity
        self.realized = 0.0  # closed PnL less fees of the day's fills
        self.peak = 0.0
        self.fills = 0
        self._start_ms, self._end_ms = day_bounds_ms(day)
        self._seen = BoundedSet(capacity)

    @classmethod
    def restore(
        cls, day: datetime.date, fills: Iterable[Fill], capacity: int = SEEN_CAPACITY
    ) -> DailyPnl:
        """The day as its journaled fills tell it: the realised PnL, and as the peak the
        highest running sum of it (from zero) through the fills in venue time order."""
        daily = cls(day, capacity)
        for fill in sorted(fills, key=lambda fill: (fill.time_ms, fill.tid)):
            if daily.on_fill(fill):
                daily.peak = max(daily.peak, daily.realized)
        return daily

    def on_fill(self, fill: Fill, *, quote_usd: float = 1.0, fee_usd: float = 1.0) -> bool:
        """Count a fill of the day once (a fill of a later day starts that day first). True
        when it changed the day's figure. ``quote_usd`` and ``fee_usd``: the value of one unit
        of the fill's quote (its closed PnL's currency) and of its fee's currency in the
        account's value currency (1: that currency; a fill replayed from the journal at a
        restart is counted at 1, there being no marks then)."""
        if fill.time_ms >= self._end_ms:
            self._start(utc_day(fill.time_ms))
        if fill.time_ms < self._start_ms:
            return False
        if self._seen.seen((fill.tid, fill.oid)):
            return False
        self.realized += fill.closed_pnl * quote_usd - fill.fee * fee_usd
        self.fills += 1
        return True

    def roll(self, now_ms: int) -> bool:
        """Start a new day when ``now_ms`` is past this one's end. True when it rolled."""
        if now_ms < self._end_ms:
            return False
        self._start(utc_day(now_ms))
        return True

    def observe(self, unrealized: float) -> tuple[float, float]:
        """The day's PnL now (realised plus ``unrealized``) and its peak, raised by it."""
        pnl = self.realized + unrealized
        self.peak = max(self.peak, pnl)
        return pnl, self.peak

    def _start(self, day: datetime.date) -> None:
        self.day = day
        self.realized = 0.0
        self.peak = 0.0
        self.fills = 0
        self._start_ms, self._end_ms = day_bounds_ms(day)
        self._seen = BoundedSet(self.capacity)
