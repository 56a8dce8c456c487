"""From book updates to perishable signals: the evaluator that feeds the executor slots.

A ``Signal`` is one triangle found executable: its correlation id, the triangle, the three
books as evaluated (their venue times and the times they arrived here), the evaluation's
predicted figures (start volume, final amount, profit in bps, each leg's amounts and worst
price) and when it was signalled. It is a frozen value: a slot reads the books it was evaluated
on (for paper fills and the report) without copying them.

The ``Evaluator`` holds the latest book of every symbol that is in a triangle. On each update
(``on_book``) it re-evaluates only the triangles that trade the updated symbol
(``triangles.affected``) on the books it holds, and for each one executable at or above the
minimum profit it sends a ``Signal`` down a bounded channel with ``send_nowait``. Signals are
perishable: when the channel is full (every slot busy, the queue full) the signal is dropped and
counted, never awaited, so the feed that calls ``on_book`` is never blocked.

After the gates and before the exact walk, a triangle's float bound
(``triangles.upper_bound_bps``: its books' top rates less the fees, at least what the walk can
yield) is compared with the minimum profit: a triangle whose bound is below it cannot be
signalled and is not walked (``prefiltered``; what its walk would have refused, for dust,
depth or a minimum, is then not counted as a refusal); a busy pair's update walks only the few
triangles that clear it. ``prefilter=False`` walks every triangle that passes the gates (the
same signals, slower: for comparison).

Counters: the evaluations run (triangles considered), refusals by reason, evaluations below the
minimum profit (``prefiltered`` among them: those whose bound was), signals sent and dropped.
Correlation ids are consecutive integers from 1 in the order signals are made, one per signal
sent or dropped (a gap in the ids the slots see is a dropped signal).

Nothing here reads a clock: ``now_ms`` is the caller's (the clock the books' times are on).

Fails: ``KeyError`` when made, for a triangle's symbol missing from the instruments;
``trio.BrokenResourceError`` from ``on_book`` when every receiving end of the channel is closed
(no slot will ever take a signal), ``trio.ClosedResourceError`` when its own send end was closed.
Market data never raises: an empty, thin, stale or discontinuous book is a counted refusal.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable, Mapping
from decimal import Decimal
from typing import Protocol

import attrs
import trio

from mm.model import Instrument, Side
from mm.strategies.triarb.legs import Triangle
from mm.strategies.triarb.triangles import (
    BOUND_MARGIN_BPS,
    BOUND_MARGIN_RELATIVE,
    BookView,
    Evaluation,
    Reason,
    Refusal,
    Terms,
    fee_factor,
    gate,
    index,
    leg_rate,
    walk,
)

__all__ = ["Evaluator", "Signal", "SignalSink"]

# A triangle, its legs' symbols' numbers and its legs' rates' places (see ``Evaluator``).
_Plan = tuple[Triangle, int, int, int, int, int, int]
_MARGIN = 1.0 + BOUND_MARGIN_RELATIVE  # as bound_bps computes it
_ZERO = Decimal(0)


@attrs.frozen(slots=True)
class Signal:
    """One executable triangle, as evaluated (see the module). ``books`` are in the order of
    the triangle's legs, and so are ``book_times_ms`` (the venue's times) and ``arrived_ms``
    (when each book reached the evaluator); ``signalled_ms`` is when it was evaluated."""

    corr: int
    triangle: Triangle
    books: tuple[BookView, BookView, BookView]
    book_times_ms: tuple[int, int, int]
    arrived_ms: tuple[int, int, int]
    signalled_ms: int
    evaluation: Evaluation

    @property
    def predicted_bps(self) -> float:
        return self.evaluation.profit_bps

    @property
    def volume(self) -> Decimal:
        """The start volume evaluated, in the primary."""
        return self.evaluation.volume

    @property
    def predicted_final(self) -> Decimal:
        """What the last leg is predicted to yield, in the primary."""
        return self.evaluation.final

    @property
    def predicted_profit(self) -> Decimal:
        """The predicted profit in the primary."""
        return self.evaluation.final - self.evaluation.volume


class SignalSink(Protocol):
    """Where signals go: a bounded channel's send end (``trio.WouldBlock`` when full: the
    signal is dropped and counted), or a list the strategy hands out from."""

    def send_nowait(self, value: Signal, /) -> None: ...


class Evaluator:
    """Re-evaluates the triangles a book update affects and sends perishable signals without
    ever waiting (see the module for its counters and how it fails)."""

    def __init__(
        self,
        triangles: Iterable[Triangle],
        instruments: Mapping[str, Instrument],
        terms: Terms,
        min_profit_bps: float,
        send: SignalSink,
        *,
        by_symbol: Mapping[str, tuple[Triangle, ...]] | None = None,
        prefilter: bool = True,
    ) -> None:
        by_symbol = index(triangles) if by_symbol is None else by_symbol
        # Every symbol in a triangle gets a number: its book's freshness is _fresh_ms[number],
        # its buy rate _rates[2 * number] and its sell rate _rates[2 * number + 1].
        numbers: dict[str, int] = {}
        plans: dict[Triangle, _Plan] = {}
        for found in by_symbol.values():
            for triangle in found:
                if triangle in plans:
                    continue
                for leg_symbol in triangle.symbols:
                    if leg_symbol not in instruments:  # now, not when first walked
                        raise KeyError(leg_symbol)
                    numbers.setdefault(leg_symbol, len(numbers))
                first, second, third = (numbers[leg.symbol] for leg in triangle.legs)
                buy, sell, last = (
                    2 * numbers[leg.symbol] + (leg.side is Side.SELL) for leg in triangle.legs
                )
                plans[triangle] = (triangle, first, second, third, buy, sell, last)
        self._plans = {
            symbol: tuple(plans[triangle] for triangle in found)
            for symbol, found in by_symbol.items()
        }
        self._numbers = numbers
        self._factors = {
            symbol: tuple(
                fee_factor(side, terms.fees.get(symbol, _ZERO)) for side in (Side.BUY, Side.SELL)
            )
            for symbol in numbers
        }
        # A book's venue time when it is held and continuous, -inf when not (a gate refuses).
        self._fresh_ms: list[float] = [-math.inf] * len(numbers)
        self._rates: list[float] = [math.inf] * (2 * len(numbers))
        self._instruments = instruments
        self._terms = terms
        self._min_profit_bps = min_profit_bps
        self._prefilter = prefilter
        self._send = send
        self._books: dict[str, BookView] = {}
        self._arrived: dict[str, int] = {}
        self._last_corr = 0
        self.evaluations = 0
        self.refusals: Counter[Reason] = Counter()
        self.below_min_profit = 0
        self.prefiltered = 0
        self.sent = 0
        self.dropped = 0

    def latest(self, symbol: str) -> BookView | None:
        """The book of ``symbol`` evaluated last (None: none yet, or in no triangle)."""
        return self._books.get(symbol)

    def is_latest(self, signal: Signal) -> bool:
        """Whether each book ``signal`` was made on is still its pair's latest (no newer one came
        since it was evaluated)."""
        books = self._books
        first, second, third = signal.triangle.symbols
        one, two, three = signal.books
        return books.get(first) is one and books.get(second) is two and books.get(third) is three

    def on_book(self, symbol: str, view: BookView, now_ms: int) -> None:
        """``symbol``'s book is now ``view`` (arrived at ``now_ms``): evaluate the triangles it
        is in and signal the executable ones at or above the minimum profit.

        The gates are one comparison per triangle here (each book's freshness, ``-inf`` when
        missing or not continuous, against the oldest time allowed), ``triangles.gate`` asked
        for the reason only when they refuse; the bound is the product of the legs' rates
        (``triangles.leg_rate``, worked out once per book) taken as ``triangles.bound_bps``
        does."""
        plans = self._plans.get(symbol)
        if not plans:
            return  # a symbol in no triangle: nothing to hold or evaluate
        books = self._books
        books[symbol] = view
        self._arrived[symbol] = now_ms
        number = self._numbers[symbol]
        buy_factor, sell_factor = self._factors[symbol]
        fresh_ms, rates = self._fresh_ms, self._rates
        fresh_ms[number] = view.time_ms if view.continuous else -math.inf
        top = view.top
        rates[2 * number] = leg_rate(Side.BUY, top, buy_factor)
        rates[2 * number + 1] = leg_rate(Side.SELL, top, sell_factor)
        terms = self._terms
        oldest_allowed = now_ms - terms.max_book_age_ms
        min_profit_bps = self._min_profit_bps
        prefilter = self._prefilter
        prefiltered = 0
        self.evaluations += len(plans)
        try:
            for triangle, one, two, three, first, second, third in plans:
                if (
                    fresh_ms[one] < oldest_allowed
                    or fresh_ms[two] < oldest_allowed
                    or fresh_ms[three] < oldest_allowed
                ):
                    refusal = gate(triangle, books, now_ms, terms.max_book_age_ms)
                    assert refusal is not None  # the same conditions, asked for the reason
                    self.refusals[refusal.reason] += 1
                    continue
                if prefilter and (
                    (rates[first] * rates[second] * rates[third] * _MARGIN - 1.0) * 10_000.0
                    + BOUND_MARGIN_BPS
                    < min_profit_bps
                ):  # bound_bps's arithmetic, inline: it runs for every triangle of an update
                    prefiltered += 1
                    continue
                self._walk(triangle, now_ms)
        finally:
            self.prefiltered += prefiltered
            self.below_min_profit += prefiltered

    def _walk(self, triangle: Triangle, now_ms: int) -> None:
        """The exact evaluation of ``triangle``, its gates passed, and its signal if it has one."""
        books = self._books
        first, second, third = triangle.symbols
        views = (books[first], books[second], books[third])
        result = walk(triangle, views, self._instruments, self._terms)
        if isinstance(result, Refusal):
            self.refusals[result.reason] += 1
        elif result.profit_bps < self._min_profit_bps:
            self.below_min_profit += 1
        else:
            self._signal(result, views, now_ms)

    def _signal(
        self, evaluation: Evaluation, books: tuple[BookView, BookView, BookView], now_ms: int
    ) -> None:
        """The signal of ``evaluation``, made on ``books`` (its legs' books, as walked)."""
        first, second, third = evaluation.triangle.symbols
        self._last_corr += 1
        signal = Signal(
            self._last_corr,
            evaluation.triangle,
            books,
            (books[0].time_ms, books[1].time_ms, books[2].time_ms),
            (self._arrived[first], self._arrived[second], self._arrived[third]),
            now_ms,
            evaluation,
        )
        try:
            self._send.send_nowait(signal)
        except trio.WouldBlock:
            self.dropped += 1
        else:
            self.sent += 1
