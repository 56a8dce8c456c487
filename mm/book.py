"""The L2 book of one symbol, and the conflating bus that carries books to the strategy.

``Book`` is a value: the latest full snapshot of a symbol with the derived prices a strategy
reads (best bid and ask, mid, spread, microprice, depth). Its levels are ``PriceLevel`` tuples
``(px, sz, n)``, best first, as deep as the feed asked the venue for (a feed's
``book_depth``). ``BookBuilder`` (pure) builds one symbol's book from what the venue sends:
snapshots, and sequenced deltas that continue from a snapshot's sequence; a delta that does not
follow leaves it without a book until the next snapshot. ``BookBus`` keeps only the latest book
per symbol (book updates are conflated: a slow reader skips stale books, it never queues them);
publishing never blocks, and a reader waits for a version newer than the one it saw. A reader
may instead ``listen``: its callback is called with every book as it is published, in the
publisher's task (no task switch); it must not block, and must not raise (an error of the
callback is the publisher's: the reader catches its own and raises them in its task).
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager

import attrs
import trio

from mm.model import BookDelta, BookSnapshot, PriceLevel


@attrs.frozen(slots=True)
class Book:
    coin: str
    time_ms: int
    bids: tuple[PriceLevel, ...]  # (px, sz, n), best (highest) first
    asks: tuple[PriceLevel, ...]  # (px, sz, n), best (lowest) first
    received_ms: int = 0  # our wall clock when it arrived (whole milliseconds)
    # When the frame it was built from arrived, on ``mm.clock.monotonic_ns`` (0: not stamped):
    # what latencies from "book frame in" are measured from.
    received_ns: int = 0

    @classmethod
    def from_snapshot(
        cls, snapshot: BookSnapshot, received_ms: int = 0, received_ns: int = 0
    ) -> Book:
        return cls(
            snapshot.coin, snapshot.time_ms, snapshot.bids, snapshot.asks, received_ms, received_ns
        )

    @property
    def best_bid(self) -> float | None:
        return self.bids[0][0] if self.bids else None

    @property
    def best_ask(self) -> float | None:
        return self.asks[0][0] if self.asks else None

    @property
    def mid(self) -> float | None:
        if not self.bids or not self.asks:
            return None
        return (self.bids[0][0] + self.asks[0][0]) / 2

    @property
    def spread(self) -> float | None:
        if not self.bids or not self.asks:
            return None
        return self.asks[0][0] - self.bids[0][0]

    @property
    def microprice(self) -> float | None:
        """The mid weighted by the opposite top-of-book sizes."""
        if not self.bids or not self.asks:
            return None
        (bid_px, bid_sz, _), (ask_px, ask_sz, _) = self.bids[0], self.asks[0]
        total = bid_sz + ask_sz
        if total <= 0:
            return self.mid
        return (bid_px * ask_sz + ask_px * bid_sz) / total

    @property
    def is_crossed(self) -> bool:
        return bool(self.bids and self.asks and self.bids[0][0] > self.asks[0][0])

    @property
    def is_locked(self) -> bool:
        return bool(self.bids and self.asks and self.bids[0][0] == self.asks[0][0])

    def depth(self, is_bid: bool, within: float) -> float:
        """Total size on a side within ``within`` (absolute price distance) of the best."""
        levels = self.bids if is_bid else self.asks
        if not levels:
            return 0.0
        best = levels[0][0]
        return sum(sz for px, sz, _ in levels if abs(px - best) <= within)

    def age_ms(self, now_ms: int) -> int:
        return now_ms - self.time_ms


class Applied(enum.Enum):
    """What became of a delta given to a ``BookBuilder``."""

    APPLIED = "applied"  # the book moved on to the delta's sequence
    STALE = "stale"  # the book is past it already (e.g. the snapshot included it): ignored
    GAP = "gap"  # it does not follow the book's sequence: no book until the next snapshot
    NO_BASE = "no_base"  # no book to apply it to (none yet, or lost since): ignored


class BookBuilder:
    """One symbol's book from snapshots and sequenced deltas (pure, no I/O).

    A snapshot replaces the book; a delta applies when it continues the book's sequence
    (``first_seq <= seq + 1 <= delta.seq``: the changes it repeats were in the book already and
    are replaced again in order, to the same sizes), is stale when the book is past it, and
    otherwise breaks the sequence: the book is lost until the next snapshot (``synced`` False),
    as after ``lose`` (events were dropped). A snapshot without a sequence takes no deltas.
    Levels are kept as the venue sent them until a delta comes, so a venue that sends
    snapshots only pays nothing for the deltas it never sends.
    """

    def __init__(self, coin: str) -> None:
        self.coin = coin
        self.seq: int | None = None
        self.time_ms = 0
        self.synced = False
        self._bids: tuple[PriceLevel, ...] = ()
        self._asks: tuple[PriceLevel, ...] = ()
        # Price to level, built on the first delta after a snapshot.
        self._bid_px: dict[float, PriceLevel] | None = None
        self._ask_px: dict[float, PriceLevel] | None = None

    def snapshot(self, snapshot: BookSnapshot) -> None:
        self.seq = snapshot.seq
        self.time_ms = snapshot.time_ms
        self._bids, self._asks = snapshot.bids, snapshot.asks
        self._bid_px = self._ask_px = None
        self.synced = True

    def lose(self) -> None:
        """Events were lost: no book until the next snapshot."""
        self.synced = False

    def delta(self, delta: BookDelta) -> Applied:
        seq = self.seq
        if not self.synced or seq is None:
            return Applied.NO_BASE
        if delta.seq <= seq:
            return Applied.STALE
        if delta.first_seq > seq + 1:
            self.synced = False
            return Applied.GAP
        if self._bid_px is None or self._ask_px is None:
            self._bid_px = {level[0]: level for level in self._bids}
            self._ask_px = {level[0]: level for level in self._asks}
        _change(self._bid_px, delta.bids)
        _change(self._ask_px, delta.asks)
        self._bids = tuple(sorted(self._bid_px.values(), key=lambda level: -level[0]))
        self._asks = tuple(sorted(self._ask_px.values(), key=lambda level: level[0]))
        self.seq = delta.seq
        self.time_ms = delta.time_ms
        return Applied.APPLIED

    def book(self, received_ms: int = 0, received_ns: int = 0) -> Book | None:
        """The book as it stands (None while it is not synced)."""
        if not self.synced:
            return None
        return Book(self.coin, self.time_ms, self._bids, self._asks, received_ms, received_ns)


def _change(levels: dict[float, PriceLevel], changes: Iterable[PriceLevel]) -> None:
    for level in changes:
        if level[1] > 0:
            levels[level[0]] = level
        else:
            levels.pop(level[0], None)


class BookBus:
    """Latest book per symbol; readers wait for newer versions."""

    def __init__(self) -> None:
        self._books: dict[str, tuple[int, Book]] = {}
        self._version = 0
        self._changed = trio.Event()
        self._waiting = 0  # readers waiting on ``_changed`` (counted here: no per-book asking)
        self._listeners: tuple[Callable[[Book], None], ...] = ()

    def publish(self, book: Book) -> None:
        """Replace the symbol's book; never blocks. Listeners are called with it, then readers
        waiting are woken (a new event for the next wait is made only then: most books are
        published with none waiting)."""
        self._version += 1
        self._books[book.coin] = (self._version, book)
        for listener in self._listeners:
            listener(book)
        if self._waiting:
            self._changed.set()
            self._changed = trio.Event()

    @contextmanager
    def listening(self, listener: Callable[[Book], None]) -> Iterator[None]:
        """Within the block, ``listener`` is called with every book published, as it is (see
        the module)."""
        self._listeners = (*self._listeners, listener)
        try:
            yield
        finally:
            self._listeners = tuple(other for other in self._listeners if other is not listener)

    def latest(self, coin: str) -> Book | None:
        entry = self._books.get(coin)
        return entry[1] if entry else None

    def version(self, coin: str) -> int:
        entry = self._books.get(coin)
        return entry[0] if entry else 0

    def coins(self) -> Iterable[str]:
        return list(self._books)

    async def wait_newer(self, coin: str, seen: int) -> tuple[int, Book]:
        """The symbol's book once its version is above ``seen`` (at once if it already is)."""
        while True:
            entry = self._books.get(coin)
            if entry is not None and entry[0] > seen:
                return entry
            await self._wait()

    async def wait_any(self, seen: int) -> int:
        """Wait until any book is newer than the bus-wide version ``seen``; the new version."""
        while self._version <= seen:
            await self._wait()
        return self._version

    async def _wait(self) -> None:
        """Until the next publish (counted as waiting meanwhile, woken or cancelled)."""
        self._waiting += 1
        try:
            await self._changed.wait()
        finally:
            self._waiting -= 1
