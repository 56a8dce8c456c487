"""The KuCoin face's level-2 data: a sequence per symbol, the increments of ``/market/level2``
and the sequenced snapshots of ``/api/v3/market/orderbook/level2``. Pure.

The venue numbers every change to a symbol's aggregated book: each price level that changes
takes the next sequence number, and a ``trade.l2update`` message carries the changes of one
step of the matching (an order placed and what it traded, a cancel), each ``[price, size,
sequence]`` (size ``"0"``: the level is gone), the message spanning ``sequenceStart`` to
``sequenceEnd``. A snapshot carries the sequence of the last change it holds, so that a client
can drop what it already has and apply what follows (``mm.venues.kucoin.level2`` is that
client's procedure, and the property tests run the two against each other).

``DepthFeed.step(symbol, now_ms)`` compares the symbol's book with what it last published and
answers the increment for what changed (None when nothing did); call it after every change to
the book. Prices and sizes are printed from the book's integer ticks and lots on the symbol's
increments, as the venue prints them (no exponent, no trailing zeros).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from mm.venues.sim.book import OrderBook
from mm.venues.sim.kucoin.spot import SpotSymbol

__all__ = ["DepthFeed"]

ALL_LEVELS = 1 << 30  # the whole side (``OrderBook.levels`` reads at most this many)


def _text(value: Any) -> str:
    return f"{value.normalize():f}"


class DepthFeed:
    """Every symbol's published levels and sequence."""

    def __init__(self, symbols: Iterable[SpotSymbol], first_sequence: int = 1) -> None:
        self.symbols = {symbol.name: symbol for symbol in symbols}
        self.sequence = {name: first_sequence - 1 for name in self.symbols}
        # (bids, asks): ticks -> lots, as last published.
        self._levels: dict[str, tuple[dict[int, int], dict[int, int]]] = {
            name: ({}, {}) for name in self.symbols
        }

    def step(self, symbol: str, book: OrderBook, now_ms: int) -> dict[str, Any] | None:
        """The ``trade.l2update`` data of what changed since the last step, or None."""
        spec = self.symbols[symbol]
        published = self._levels[symbol]
        start = self.sequence[symbol] + 1
        changes: tuple[list[list[str]], list[list[str]]] = ([], [])
        for side, is_buy in ((0, True), (1, False)):
            now = {px: size for px, size, _ in book.levels(is_buy, ALL_LEVELS)}
            before = published[side]
            for px in sorted(set(now) | set(before), reverse=is_buy):
                size = now.get(px, 0)
                if before.get(px, 0) == size:
                    continue
                self.sequence[symbol] += 1
                changes[side].append(
                    [
                        _text(spec.price(px)),
                        _text(spec.size(size)),
                        str(self.sequence[symbol]),
                    ]
                )
                if size:
                    before[px] = size
                else:
                    del before[px]
        if not changes[0] and not changes[1]:
            return None
        return {
            "changes": {"asks": changes[1], "bids": changes[0]},
            "sequenceEnd": self.sequence[symbol],
            "sequenceStart": start,
            "symbol": symbol,
            "time": now_ms,
        }

    def snapshot(self, symbol: str, now_ms: int, depth: int | None = None) -> dict[str, Any]:
        """The REST book's ``data`` as published so far, best levels first (``depth`` of each
        side: the ``level2_20``/``level2_100`` books; None: the full one)."""
        spec = self.symbols[symbol]
        bids, asks = self._levels[symbol]
        limit = ALL_LEVELS if depth is None else depth
        return {
            "time": now_ms,
            "sequence": str(self.sequence[symbol]),
            "bids": [
                [_text(spec.price(px)), _text(spec.size(bids[px]))]
                for px in sorted(bids, reverse=True)[:limit]
            ],
            "asks": [
                [_text(spec.price(px)), _text(spec.size(asks[px]))] for px in sorted(asks)[:limit]
            ],
        }
