"""The L2 book of one symbol, and the conflating bus that carries books to the strategy.

``Book`` is a value: the latest full snapshot of a symbol with the derived prices a strategy
reads (best bid and ask, mid, spread, microprice, depth). ``BookBus`` keeps only the latest
book per symbol (book updates are conflated: a slow reader skips stale books, it never queues
them); publishing never blocks, and a reader waits for a version newer than the one it saw.
"""

from __future__ import annotations

from collections.abc import Iterable

import attrs
import trio

from mm.model import BookSnapshot, Level


@attrs.frozen(slots=True)
class Book:
    coin: str
    time_ms: int
    bids: tuple[Level, ...]  # best (highest) first
    asks: tuple[Level, ...]  # best (lowest) first
    received_ms: int = 0  # our clock when it arrived

    @classmethod
    def from_snapshot(cls, snapshot: BookSnapshot, received_ms: int = 0) -> Book:
        return cls(snapshot.coin, snapshot.time_ms, snapshot.bids, snapshot.asks, received_ms)

    @property
    def best_bid(self) -> float | None:
        return self.bids[0].px if self.bids else None

    @property
    def best_ask(self) -> float | None:
        return self.asks[0].px if self.asks else None

    @property
    def mid(self) -> float | None:
        if not self.bids or not self.asks:
            return None
        return (self.bids[0].px + self.asks[0].px) / 2

    @property
    def spread(self) -> float | None:
        if not self.bids or not self.asks:
            return None
        return self.asks[0].px - self.bids[0].px

    @property
    def microprice(self) -> float | None:
        """The mid weighted by the opposite top-of-book sizes."""
        if not self.bids or not self.asks:
            return None
        bid, ask = self.bids[0], self.asks[0]
        total = bid.sz + ask.sz
        if total <= 0:
            return self.mid
        return (bid.px * ask.sz + ask.px * bid.sz) / total

    @property
    def is_crossed(self) -> bool:
        return bool(self.bids and self.asks and self.bids[0].px > self.asks[0].px)

    @property
    def is_locked(self) -> bool:
        return bool(self.bids and self.asks and self.bids[0].px == self.asks[0].px)

    def depth(self, is_bid: bool, within: float) -> float:
        """Total size on a side within ``within`` (absolute price distance) of the best."""
        levels = self.bids if is_bid else self.asks
        if not levels:
            return 0.0
        best = levels[0].px
        return sum(level.sz for level in levels if abs(level.px - best) <= within)

    def age_ms(self, now_ms: int) -> int:
        return now_ms - self.time_ms


class BookBus:
    """Latest book per symbol; readers wait for newer versions."""

    def __init__(self) -> None:
        self._books: dict[str, tuple[int, Book]] = {}
        self._version = 0
        self._changed = trio.Event()

    def publish(self, book: Book) -> None:
        """Replace the symbol's book; never blocks."""
        self._version += 1
        self._books[book.coin] = (self._version, book)
        self._changed.set()
        self._changed = trio.Event()

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
            await self._changed.wait()

    async def wait_any(self, seen: int) -> int:
        """Wait until any book is newer than the bus-wide version ``seen``; the new version."""
        while self._version <= seen:
            await self._changed.wait()
        return self._version
