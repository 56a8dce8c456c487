"""Which of the account's fills are already accounted for, so that each is forwarded once.

Pure state, no I/O. One ``FillHistory`` lives as long as the process: the user stream (across
its restarts) and the fill audit share it, and both forward a fill only after ``claim`` says it
is new, so a fill the live stream, a resync and an audit all see goes on exactly once.

A fill is known when
- the journal holds it: ``restore`` loads the journal's fills by trade id (``(tid, oid)``) at
  start, so a fill journaled by an earlier run is never forwarded again, and one the venue made
  while mm was down (or that an earlier run missed) is;
- this process forwarded it (``claim``; ``release`` forgets a claim whose hand-off was
  cancelled, so a cancelled send loses nothing);
- it is no newer than where the account's history ended when mm first ran on this journal:
  the newest fill the venue listed when the user stream first started (``baseline``: the
  account's past is not ours to replay). The stream hands that on as a ``HistoryStart`` event,
  which the journal keeps (kind ``HISTORY_START``), so that a run that crashed before it
  journaled a single fill does not take the fills made since for history at its restart;
- with no ``HistoryStart`` journaled (a journal older than it), it is older than the oldest
  journaled fill.

At most ``capacity`` keys are remembered, the oldest by venue time forgotten first (not the
first claimed: a fill recovered late is old, and the venue stops listing it first). With at
least as many remembered as the venue can list again (mm.config refuses fewer), every fill a
listing names that was seen is still known: fewer than that many seen fills are newer.
``restore`` loads the newest journaled fills only up to that capacity (``JournaledFills``), and
when the journal held more, fills older than the oldest loaded are history too.

``mark_ms`` is the venue time up to which fills are known to have been seen (the newest
journaled fill at start, then advanced by the stream while in sync): the resync and the audit
fetch from there, less their lookback. ``recovered`` counts the fills forwarded that the live
stream had missed, by how they were found (``snapshot``, ``resync``, ``audit``).
"""

from __future__ import annotations

import heapq
from collections import Counter
from collections.abc import Iterable, Sequence

import attrs

from mm.model import Fill, OrderId, TradeId

__all__ = [
    "HISTORY_START",
    "FillHistory",
    "FillKey",
    "HistoryStart",
    "JournaledFills",
    "fill_key",
    "missed_fills",
]

FillKey = tuple[TradeId, OrderId]  # (tid, oid): the two sides of one trade stay two fills


def fill_key(fill: Fill) -> FillKey:
    return (fill.tid, fill.oid)


@attrs.frozen(slots=True)
class HistoryStart:
    """Where the account's fill history ended when mm first ran on this journal: the venue time
    of the newest fill it listed then (None: it listed none, so every fill is mm's to take)."""

    newest_ms: int | None


HISTORY_START = HistoryStart.__name__.lower()  # its journal kind: events are journaled by name


@attrs.frozen
class JournaledFills:
    """The journal's newest fills by trade id, the venue times they span, whether they are all
    the journal holds, and where the history started (``HistoryStart``, when journaled)."""

    keys: tuple[FillKey, ...] = ()  # oldest first
    oldest_ms: int | None = None
    newest_ms: int | None = None
    complete: bool = True  # every journaled fill is among the keys
    start: HistoryStart | None = None
    times: tuple[int, ...] = ()  # each key's venue time (ms), as ``keys``

    @classmethod
    def from_rows(
        cls,
        rows: Iterable[tuple[TradeId, OrderId, int]],
        *,
        limit: int | None = None,
        start: HistoryStart | None = None,
    ) -> JournaledFills:
        """From the journal's (tid, oid, time_ms) rows (``mm.journal.journaled_fills``, newest
        first, at most ``limit``: as many rows as that means there may be more); the keys are
        kept oldest first, the order they are forgotten in."""
        ordered = sorted(rows, key=lambda row: row[2])
        complete = limit is None or len(ordered) < limit
        if not ordered:
            return cls(start=start)
        keys = tuple((tid, oid) for tid, oid, _ in ordered)
        times = tuple(time_ms for _, _, time_ms in ordered)
        return cls(keys, ordered[0][2], ordered[-1][2], complete, start, times)


class FillHistory:
    """The fills already accounted for (see the module docstring)."""

    def __init__(self, capacity: int) -> None:
        if capacity < 1:
            raise ValueError(f"capacity must be at least 1, got {capacity}")
        self.capacity = capacity
        self._known: dict[FillKey, int] = {}  # each known fill's venue time (ms)
        # (time, order of remembering, key), oldest first: what to forget. Entries of keys
        # released since stay until they come up (compacted when they pile up).
        self._by_time: list[tuple[int, int, FillKey]] = []
        self._remembered = 0
        self.floor_ms: int | None = None  # fills older than this are history
        self.mark_ms: int | None = None  # fills up to this venue time have been seen
        self.baselined = False  # where the history ends is settled (journal or baseline)
        self.recovered: Counter[str] = Counter()

    def __len__(self) -> int:
        return len(self._known)

    # --- where history ends ------------------------------------------------------------------

    def restore(self, journaled: JournaledFills) -> None:
        """At start, before any stream runs: what the journal holds is history, and so is what
        came before its ``HistoryStart`` (without one: before the oldest journaled fill). A
        journal with neither settles nothing: the stream takes its ``baseline``."""
        start = journaled.start
        if start is None and not journaled.keys:
            return
        for key, time_ms in zip(journaled.keys, journaled.times, strict=True):
            self._remember(key, time_ms)
        if start is not None:
            self.floor_ms = None if start.newest_ms is None else start.newest_ms + 1
        else:
            self.floor_ms = journaled.oldest_ms
        if not journaled.complete and journaled.oldest_ms is not None:
            self.floor_ms = max(self.floor_ms or journaled.oldest_ms, journaled.oldest_ms)
        times = [journaled.newest_ms, start.newest_ms if start is not None else None]
        known = [time_ms for time_ms in times if time_ms is not None]
        self.mark_ms = max(known) if known else None
        self.baselined = True

    def baseline(self, fills: Iterable[Fill]) -> HistoryStart:
        """A first run (nothing journaled): the venue's recent fills are history and the newest
        of them is the floor. The result is for the journal (see the module)."""
        newest: int | None = None
        for fill in fills:
            self._remember(fill_key(fill), fill.time_ms)
            newest = fill.time_ms if newest is None else max(newest, fill.time_ms)
        if newest is not None:
            self.floor_ms = self.mark_ms = newest
        self.baselined = True
        return HistoryStart(newest)

    # --- questions ---------------------------------------------------------------------------

    def known(self, fill: Fill) -> bool:
        """Journaled, or forwarded by this process."""
        return fill_key(fill) in self._known

    def before_floor(self, fill: Fill) -> bool:
        """Older than where the history ends: not ours to forward."""
        return self.floor_ms is not None and fill.time_ms < self.floor_ms

    # --- forwarding --------------------------------------------------------------------------

    def claim(self, fill: Fill) -> bool:
        """True (and now known) when the fill is new; False when it is known already."""
        key = fill_key(fill)
        if key in self._known:
            return False
        self._remember(key, fill.time_ms)
        return True

    def release(self, fill: Fill) -> None:
        """Forget a claim whose hand-off did not happen (a cancelled send)."""
        self._known.pop(fill_key(fill), None)

    def remember(self, fill: Fill) -> None:
        """Known from now on without being forwarded (history met later)."""
        self._remember(fill_key(fill), fill.time_ms)

    def advance_mark(self, time_ms: int) -> None:
        if self.mark_ms is None or time_ms > self.mark_ms:
            self.mark_ms = time_ms

    def _remember(self, key: FillKey, time_ms: int) -> None:
        if key in self._known:
            return
        self._known[key] = time_ms
        self._remembered += 1
        heapq.heappush(self._by_time, (time_ms, self._remembered, key))
        while len(self._known) > self.capacity:
            oldest_ms, _, oldest = heapq.heappop(self._by_time)
            if self._known.get(oldest) == oldest_ms:
                del self._known[oldest]
        if len(self._by_time) > 2 * self.capacity:  # released keys' entries piling up
            self._by_time = [
                entry for entry in self._by_time if self._known.get(entry[2]) == entry[0]
            ]
            heapq.heapify(self._by_time)


def missed_fills(history: FillHistory, fills: Sequence[Fill], settled_ms: int) -> list[Fill]:
    """The fills of a venue listing that nobody has forwarded: not known, not below the floor,
    and no younger than ``settled_ms`` (a younger one may still be on its way on the live
    stream, and is left to it or to the next look). Oldest first, each once."""
    missed: dict[FillKey, Fill] = {}
    for fill in fills:
        if fill.time_ms > settled_ms or history.known(fill) or history.before_floor(fill):
            continue
        missed.setdefault(fill_key(fill), fill)
    return sorted(missed.values(), key=lambda fill: (fill.time_ms, fill.tid))
