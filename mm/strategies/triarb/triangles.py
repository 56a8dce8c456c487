"""Triangles among a venue's instruments, and what one would yield on the books now. Pure.

Discovery (``discover``): every 3-cycle of currencies through three instruments that starts and
ends in a configured primary quote currency; each direction of a cycle, and each primary on it,
is its own ``Triangle``. ``index`` maps each symbol to the triangles that trade it, and
``affected`` gives the triangles a changed book touches: only those are evaluated again.
Everything comes out in a deterministic order (primaries as configured, then symbols sorted).

Evaluation (``evaluate``) of a triangle on its three books (``BookView``: a book's levels, its
time and whether its sequence is continuous) first passes the gates: every book present, none
marked discontinuous (a gap not yet resynced), the oldest no older than ``max_book_age_ms``.
Then it walks the legs as execution will, in ``Decimal`` (a float price or size is read as its
shortest decimal form):

- a buy leg spends funds in the quote: the funds are floored to the funds increment, divided by
  ``1 + fee`` (the fee is held on top of what the asks cost), walked through the asks; the base
  bought is floored to the size increment, and what that size costs on the asks plus its fee is
  what the leg spends;
- a sell leg floors the base it holds to the size increment, walks the bids for it, and
  receives the proceeds less the fee.

Each leg's size must reach ``min_size`` and its notional ``min_notional``. The volume evaluated
is the configured start volume, or the largest start volume the visible depth carries when it
is less (``achievable_volume``: the depth of the last leg taken back through the others),
floored to the first leg's increment. When a forward walk of the start volume, exact and only
as deep as it goes, shows that the depth carries it, the depth is not walked in full
(``_carries``); a book's levels are read as ``Decimal`` only as far as a walk reaches. The
result is an ``Evaluation`` (the volume, the final amount of the primary, profit in bps, each
leg's amounts and worst price reached) or a ``Refusal`` saying which gate or leg refused and
why.

Bound (``upper_bound_bps``): a float upper bound on the profit in bps that ``evaluate`` can
yield for a triangle, from the top of its three books: the product of the legs' best rates
(a buy at the lowest ask, ``1 / ((1 + fee) * ask)``; a sell at the highest bid,
``bid * (1 - fee)``), less one, in bps. It costs a few float operations against the walk's tens
of microseconds, so the evaluator skips the exact walk for every triangle whose bound is below
the minimum profit. Why it is a bound, leg by leg, for any amount ``a`` of the leg's source:

- a buy floors ``a`` to the funds increment (no more than ``a``), divides it by ``1 + fee``, and
  walks the asks for the base it buys: every level's price is at least the lowest ask, so the
  base is at most ``a / ((1 + fee) * ask)``; flooring it to the lot only lowers it, and the leg
  receives that base. (The fee is held on top: ``1 / (1 + fee)``, not ``1 - fee``, which is
  smaller and would not bound it.)
- a sell floors ``a`` to the lot and walks the bids: every price is at most the highest bid, so
  the notional is at most ``a * bid``, and the leg receives it less ``fee`` times it.

Each leg's output is increasing in its input, so the final amount is at most the volume times
the three rates' product ``R``, and the profit ``(final - volume) / volume`` at most ``R - 1``
whatever the volume the depth allows. The walk's ``Decimal`` context rounds down, except the
fee it subtracts, low by at most one unit in the 40th digit. The floats are off by a few
units in the 16th digit (a price's shortest decimal form against the float, the fee's float,
three products and a quotient), so the bound is raised by a safety margin
(``BOUND_MARGIN_RELATIVE``, ``BOUND_MARGIN_BPS``: a relative 1e-9 of the rate, and 1e-6 bps),
six orders of magnitude above those errors and far below any minimum profit anyone configures.
A book with an empty side has no bound
(``math.inf``): the exact evaluation says why it is refused.

The port's ``Instrument`` has no funds increment (KuCoin's ``quoteIncrement``, which a market
buy's funds must be a multiple of): ``Terms.funds_increments`` gives it per symbol, and funds
are not floored for a symbol it lacks.

Fails: ``KeyError`` for a triangle's symbol missing from the instruments; otherwise never
raises on market data: an empty, thin or stale book is a ``Refusal``.
"""

from __future__ import annotations

import decimal
import enum
import functools
import math
from collections.abc import Iterable, Iterator, Mapping, Sequence
from decimal import Decimal

import attrs

from mm.book import Book
from mm.model import Instrument, PriceLevel, Side
from mm.strategies.triarb.legs import Leg, Triangle

__all__ = [
    "BOUND_MARGIN_BPS",
    "BOUND_MARGIN_RELATIVE",
    "BookView",
    "Evaluation",
    "LegResult",
    "Reason",
    "Refusal",
    "Terms",
    "achievable_volume",
    "affected",
    "bound_bps",
    "discover",
    "evaluate",
    "fee_factor",
    "gate",
    "index",
    "leg_rate",
    "upper_bound_bps",
    "walk",
]

_ZERO = Decimal(0)
_ONE = Decimal(1)
_BPS = Decimal(10_000)
# Room for a price times a size without rounding; a quotient that does round rounds down, so
# that a size floored to its lot never lands a lot above what the funds buy.
_CONTEXT = decimal.Context(prec=40, rounding=decimal.ROUND_FLOOR)
# What a walk may fall short of the depth by and still fit (the inverse walks divide).
_SLACK = Decimal("1e-30")


# --- discovery ---------------------------------------------------------------------------------


def discover(instruments: Iterable[Instrument], primaries: Sequence[str]) -> tuple[Triangle, ...]:
    """Every triangle from a primary back to it through three of ``instruments`` (see the
    module); an instrument met twice on a currency pair counts once (the first by symbol)."""
    by_currency: dict[str, list[Instrument]] = {}
    for instrument in _distinct_pairs(instruments):
        by_currency.setdefault(instrument.base, []).append(instrument)
        by_currency.setdefault(instrument.quote, []).append(instrument)
    found: list[Triangle] = []
    for primary in dict.fromkeys(primaries):
        found.extend(_cycles_from(primary, by_currency))
    return tuple(found)


def _distinct_pairs(instruments: Iterable[Instrument]) -> list[Instrument]:
    seen: set[frozenset[str]] = set()
    kept = []
    for instrument in sorted(instruments, key=lambda i: i.symbol):
        pair = frozenset((instrument.base, instrument.quote))
        if pair not in seen and len(pair) == 2:
            seen.add(pair)
            kept.append(instrument)
    return kept


def _cycles_from(primary: str, by_currency: Mapping[str, list[Instrument]]) -> Iterator[Triangle]:
    for first in by_currency.get(primary, ()):
        held = _other(first, primary)
        for second in by_currency.get(held, ()):
            then = _other(second, held)
            if second is first or then == primary:
                continue
            for third in by_currency.get(then, ()):
                if _other(third, then) == primary:
                    legs = (_leg(first, primary), _leg(second, held), _leg(third, then))
                    yield Triangle(primary, legs)


def _other(instrument: Instrument, currency: str) -> str:
    return instrument.quote if instrument.base == currency else instrument.base


def _leg(instrument: Instrument, source: str) -> Leg:
    """The trade on ``instrument`` that spends ``source``: a buy spends the quote."""
    side = Side.BUY if instrument.quote == source else Side.SELL
    return Leg(instrument.symbol, side, source, _other(instrument, source))


def index(triangles: Iterable[Triangle]) -> dict[str, tuple[Triangle, ...]]:
    """Each symbol to the triangles that trade it, in the order given."""
    by_symbol: dict[str, list[Triangle]] = {}
    for triangle in triangles:
        for symbol in triangle.symbols:
            by_symbol.setdefault(symbol, []).append(triangle)
    return {symbol: tuple(found) for symbol, found in by_symbol.items()}


def affected(symbol: str, by_symbol: Mapping[str, tuple[Triangle, ...]]) -> tuple[Triangle, ...]:
    """The triangles to evaluate again when ``symbol``'s book changed (none for a symbol in no
    triangle)."""
    return by_symbol.get(symbol, ())


# --- inputs and results ------------------------------------------------------------------------


class _Reader:
    """One side of a book's levels read as ``Decimal`` (``_decimal``'s shortest decimal forms,
    empty levels left out) as far as a walk goes: the levels read are kept, so the triangles
    that walk the same book read each level once, and a walk that stops at the second level
    never reads the other eighteen. A walk asks for the ``n``-th level (``level``) from 0 up
    until it has had enough or there is none: an index and a call, not a generator made and
    closed at every walk of a side (six to nine a triangle: three to check the depth carries the
    volume, one per sell leg and two per buy leg)."""

    __slots__ = ("_all", "_levels", "_next", "read")

    def __init__(self, levels: tuple[PriceLevel, ...]) -> None:
        self._levels = levels
        self._next = 0  # the first of ``_levels`` not read yet
        self.read: list[tuple[Decimal, Decimal]] = []
        self._all: tuple[tuple[Decimal, Decimal], ...] | None = None  # ``all``'s, once asked

    def level(self, n: int) -> tuple[Decimal, Decimal] | None:
        """The ``n``-th level (from 0), read if it is the first not read yet (None: no more);
        a walk asks for them in order, so ``n`` is at most one past those read."""
        read = self.read
        if n < len(read):
            return read[n]
        return self._more()

    def _more(self) -> tuple[Decimal, Decimal] | None:
        """The next level read and kept (None: no more)."""
        levels = self._levels
        for i in range(self._next, len(levels)):
            px, sz, _ = levels[i]
            if sz > 0 and px > 0:
                self._next = i + 1
                level = (_decimal(px), _decimal(sz))
                self.read.append(level)
                return level
        self._next = len(levels)
        return None

    def all(self) -> tuple[tuple[Decimal, Decimal], ...]:
        """Every level, read (and kept: the same tuple at every call)."""
        levels = self._all
        if levels is None:
            while self._more() is not None:
                pass
            levels = self._all = tuple(self.read)
        return levels


@attrs.frozen(slots=True)
class BookView:
    """What evaluation reads of one symbol's book: its levels best first (``(px, sz, n)``), its
    time (ms, the venue's) and whether its sequence is continuous (False after a gap, until a
    snapshot resyncs it).

    The levels as ``Decimal`` are read as a walk reaches them (``_Reader``) and kept with the
    view: a busy pair's book is walked by every triangle it is in (hundreds on one update), and
    reading its levels was most of an evaluation's time; ``decimal_bids`` and ``decimal_asks``
    read them all (the readers keep those too)."""

    bids: tuple[PriceLevel, ...]
    asks: tuple[PriceLevel, ...]
    time_ms: int
    continuous: bool = True
    _bid_reader: _Reader | None = attrs.field(init=False, default=None, eq=False, repr=False)
    _ask_reader: _Reader | None = attrs.field(init=False, default=None, eq=False, repr=False)

    @classmethod
    def of(cls, book: Book, *, continuous: bool = True) -> BookView:
        return cls(book.bids, book.asks, book.time_ms, continuous)

    @property
    def bid_levels(self) -> _Reader:
        """The bids as ``Decimal``, read as far as iterated (see the class)."""
        reader = self._bid_reader
        if reader is None:
            reader = _Reader(self.bids)
            object.__setattr__(self, "_bid_reader", reader)
        return reader

    @property
    def ask_levels(self) -> _Reader:
        """The asks as ``Decimal``, read as far as iterated (see the class)."""
        reader = self._ask_reader
        if reader is None:
            reader = _Reader(self.asks)
            object.__setattr__(self, "_ask_reader", reader)
        return reader

    @property
    def decimal_bids(self) -> tuple[tuple[Decimal, Decimal], ...]:
        """Every bid's price and size as ``_levels`` reads them (see the class)."""
        return self.bid_levels.all()

    @property
    def top(self) -> tuple[float, float]:
        """The highest bid and the lowest ask among the levels ``_levels`` reads (0.0 for no
        bid, ``math.inf`` for no ask): what the bound reads (see the module). Every level is
        looked at (not only the first: the levels need not be sorted), in one loop a side: it
        runs on every book."""
        bid = 0.0
        for px, sz, _ in self.bids:
            if px > bid and sz > 0:  # a price above 0.0 only
                bid = px
        ask = math.inf
        for px, sz, _ in self.asks:
            if px < ask and px > 0 and sz > 0:
                ask = px
        return bid, ask

    @property
    def decimal_asks(self) -> tuple[tuple[Decimal, Decimal], ...]:
        """Every ask's price and size as ``_levels`` reads them (see the class)."""
        return self.ask_levels.all()


@attrs.frozen(slots=True)
class Terms:
    """What evaluation is configured with: the start volume in the primary, the oldest book
    allowed, each symbol's taker fee rate (0.001 for 0.1 %; 0 for a symbol not given) and
    funds increment (see the module). ``ValueError`` for a volume or an increment not
    positive, or a fee rate outside [0, 1)."""

    start_volume: Decimal
    max_book_age_ms: int
    fees: Mapping[str, Decimal] = attrs.field(factory=dict)
    funds_increments: Mapping[str, Decimal] = attrs.field(factory=dict)

    def __attrs_post_init__(self) -> None:
        if not self.start_volume > 0:
            raise ValueError(f"start volume must be positive: {self.start_volume}")
        for symbol, rate in self.fees.items():
            if not 0 <= rate < 1:
                raise ValueError(f"{symbol}: a fee rate lies in [0, 1): {rate}")
        for symbol, increment in self.funds_increments.items():
            if not increment > 0:
                raise ValueError(f"{symbol}: funds increment must be positive: {increment}")


class Reason(enum.Enum):
    """Why a triangle is not executable now."""

    NO_BOOK = "no book"
    NOT_CONTINUOUS = "book not continuous"
    STALE = "book too old"
    DEPTH = "no depth"
    DUST = "amount floors to nothing"
    MIN_SIZE = "below minimum size"
    MIN_NOTIONAL = "below minimum notional"


@attrs.frozen(slots=True)
class Refusal:
    """A triangle refused: the ``reason``, the ``symbol`` whose book or leg refused it, and
    the figures that did (for people)."""

    triangle: Triangle
    reason: Reason
    symbol: str
    detail: str = ""


@attrs.frozen(slots=True)
class LegResult:
    """One leg as evaluated: ``spent`` of its source (fee included), ``size`` in the base on
    the lot grid, ``notional`` in the quote (before the fee), ``fee`` in the quote,
    ``received`` of its target, and the worst price its walk reached."""

    leg: Leg
    spent: Decimal
    size: Decimal
    notional: Decimal
    fee: Decimal
    received: Decimal
    worst_px: Decimal


@attrs.frozen(slots=True)
class Evaluation:
    """A triangle executable now: starting with ``volume`` of the primary (``depth_limited``
    when the depth carries less than the start volume) it ends with ``final``, ``profit_bps``
    of the volume; the books' oldest time is ``oldest_ms``."""

    triangle: Triangle
    volume: Decimal
    final: Decimal
    profit_bps: float
    legs: tuple[LegResult, LegResult, LegResult]
    depth_limited: bool
    oldest_ms: int


# --- evaluation --------------------------------------------------------------------------------


def evaluate(
    triangle: Triangle,
    books: Mapping[str, BookView],
    instruments: Mapping[str, Instrument],
    terms: Terms,
    now_ms: int,
) -> Evaluation | Refusal:
    """``triangle`` on ``books`` now (see the module)."""
    refusal = gate(triangle, books, now_ms, terms.max_book_age_ms)
    if refusal is not None:
        return refusal
    views = tuple(books[symbol] for symbol in triangle.symbols)
    return walk(triangle, views, instruments, terms)


def walk(
    triangle: Triangle,
    views: Sequence[BookView],
    instruments: Mapping[str, Instrument],
    terms: Terms,
) -> Evaluation | Refusal:
    """``evaluate`` once the gates have passed: ``triangle`` walked on its legs' ``views``."""
    # ``_CONTEXT`` itself is the walk's context, set and put back (``localcontext`` would copy
    # it at every walk); no operation changes its precision, rounding or traps, only its flags,
    # which nothing reads.
    previous = decimal.getcontext()
    decimal.setcontext(_CONTEXT)
    try:
        return _walk(triangle, views, instruments, terms)
    finally:
        decimal.setcontext(previous)


def gate(
    triangle: Triangle, books: Mapping[str, BookView], now_ms: int, max_book_age_ms: int
) -> Refusal | None:
    """The gates on the three books: present, continuous, the oldest young enough."""
    for symbol in triangle.symbols:
        view = books.get(symbol)
        if view is None:
            return Refusal(triangle, Reason.NO_BOOK, symbol)
        if not view.continuous:
            return Refusal(triangle, Reason.NOT_CONTINUOUS, symbol)
    oldest = min(triangle.symbols, key=lambda symbol: books[symbol].time_ms)
    age = now_ms - books[oldest].time_ms
    if age > max_book_age_ms:
        return Refusal(triangle, Reason.STALE, oldest, f"{age} ms > {max_book_age_ms} ms")
    return None


def _walk(
    triangle: Triangle,
    views: Sequence[BookView],
    instruments: Mapping[str, Instrument],
    terms: Terms,
) -> Evaluation | Refusal:
    if len(views) != 3:
        raise ValueError(f"a triangle walks three books, got {len(views)}")
    start = terms.start_volume
    capacity = start if _carries(triangle, views, terms) else _achievable(triangle, views, terms)
    first_leg = triangle.legs[0]
    volume = _floor_input(first_leg, instruments[first_leg.symbol], terms, capacity)
    if volume <= 0:
        return Refusal(triangle, Reason.DEPTH, first_leg.symbol, f"carries {capacity}")
    amount = volume
    results: list[LegResult] = []
    for leg, view in zip(triangle.legs, views, strict=True):
        result = _leg_result(leg, view, instruments[leg.symbol], terms, amount)
        if isinstance(result, tuple):
            reason, detail = result
            return Refusal(triangle, reason, leg.symbol, detail)
        results.append(result)
        amount = result.received
    final = results[-1].received
    first, second, third = results
    return Evaluation(
        triangle,
        volume,
        final,
        float((final - volume) / volume * _BPS),
        (first, second, third),
        capacity < start,
        min(views[0].time_ms, views[1].time_ms, views[2].time_ms),
    )


def _floor_input(leg: Leg, instrument: Instrument, terms: Terms, amount: Decimal) -> Decimal:
    """``amount`` of ``leg``'s source as the leg can spend it: funds floored to the funds
    increment (a buy), a size to the lot (a sell)."""
    if leg.side is Side.SELL:
        return _floor(amount, instrument.size_increment)
    increment = terms.funds_increments.get(leg.symbol)
    return amount if increment is None else _floor(amount, increment)


def _floor(amount: Decimal, increment: Decimal) -> Decimal:
    """``amount`` rounded down to a whole number of ``increment`` (never below 0)."""
    if amount <= 0:
        return _ZERO
    return (amount // increment) * increment


def _leg_result(
    leg: Leg, view: BookView, instrument: Instrument, terms: Terms, amount: Decimal
) -> LegResult | tuple[Reason, str]:
    """One leg spending ``amount`` of its source, or why it cannot."""
    fee_rate = terms.fees.get(leg.symbol, _ZERO)
    funds = _floor_input(leg, instrument, terms, amount)
    if leg.side is Side.BUY:
        levels = view.ask_levels
        size = _floor(_base_for_funds(levels, funds / (_ONE + fee_rate)), instrument.size_increment)
    else:
        levels = view.bid_levels
        size = funds
    if size <= 0:
        return Reason.DUST, f"{amount} {leg.source}"
    walked = _cost_of_size(levels, size)
    if walked is None:
        return Reason.DEPTH, f"{size} {instrument.base}"
    notional, worst_px = walked
    refused = _minimums(instrument, size, notional)
    if refused is not None:
        return refused
    fee = notional * fee_rate
    if leg.side is Side.BUY:
        return LegResult(leg, notional + fee, size, notional, fee, size, worst_px)
    return LegResult(leg, size, size, notional, fee, notional - fee, worst_px)


def _minimums(
    instrument: Instrument, size: Decimal, notional: Decimal
) -> tuple[Reason, str] | None:
    """Why ``size`` at ``notional`` is too small an order on ``instrument``, if it is."""
    if size < instrument.min_size:
        return Reason.MIN_SIZE, f"{size} < {instrument.min_size}"
    min_notional = _decimal(instrument.min_notional)
    if notional < min_notional:
        return Reason.MIN_NOTIONAL, f"{notional} < {min_notional}"
    return None


_Levels = tuple[tuple[Decimal, Decimal], ...]


@functools.lru_cache(maxsize=1 << 16, typed=True)
def _decimal(value: float) -> Decimal:
    """A float as its shortest decimal form reads, ``Decimal(repr(value))``: remembered, as a
    book's next update repeats most of its prices and sizes (a pure function of the value:
    equal floats have one ``repr``, but for 0.0 and -0.0, whose ``Decimal``s are equal)."""
    return Decimal(repr(value))


def _levels(levels: tuple[PriceLevel, ...]) -> _Levels:
    """The levels' prices and sizes as their shortest decimal forms read (empty ones left)."""
    read = _decimal
    return tuple((read(px), read(sz)) for px, sz, _ in levels if sz > 0 and px > 0)


def _base_for_funds(asks: _Reader, funds: Decimal) -> Decimal:
    """The base that ``funds`` buys walking ``asks`` (all of the asks when they cost less)."""
    base = _ZERO
    n = 0
    while (level := asks.level(n)) is not None:
        px, sz = level
        n += 1
        cost = px * sz
        if cost >= funds:
            return base + funds / px
        base += sz
        funds -= cost
    return base


def _cost_of_size(levels: _Reader, size: Decimal) -> tuple[Decimal, Decimal] | None:
    """What ``size`` of the base comes to walking ``levels`` (its notional, and the worst price
    reached), or None when the levels hold less."""
    notional = _ZERO
    n = 0
    while (level := levels.level(n)) is not None:
        px, sz = level
        n += 1
        taken = size if size < sz else sz  # min(sz, size), without the call
        notional += px * taken
        size -= taken
        if size <= 0:
            return notional, px
    return None


# --- the bound --------------------------------------------------------------------------------

# What the bound is raised by (see the module): a relative part of the rates' product, and bps.
BOUND_MARGIN_RELATIVE = 1e-9
BOUND_MARGIN_BPS = 1e-6


def fee_factor(side: Side, fee_rate: Decimal) -> float:
    """What a leg's fee leaves of its rate: ``1 / (1 + fee)`` for a buy (the fee is held on top
    of the funds), ``1 - fee`` for a sell."""
    fee = float(fee_rate)
    return 1.0 / (1.0 + fee) if side is Side.BUY else 1.0 - fee


def leg_rate(side: Side, top: tuple[float, float], factor: float) -> float:
    """The most a leg on a book whose ``top`` is ``BookView.top`` yields of its target per unit
    of its source: a buy ``factor / ask`` at the lowest ask, a sell ``bid * factor`` at the
    highest bid, where ``factor`` is ``fee_factor``'s; ``math.inf`` (no bound) when that side
    is empty."""
    bid, ask = top
    if side is Side.BUY:
        return math.inf if ask == math.inf else factor / ask
    return math.inf if bid == 0.0 else bid * factor


def bound_bps(rate: float) -> float:
    """The bound in bps of a triangle whose legs' rates multiply to ``rate``, the margin added
    (``math.inf`` for an infinite rate or a NaN: no bound)."""
    if math.isnan(rate):
        return math.inf
    return (rate * (1.0 + BOUND_MARGIN_RELATIVE) - 1.0) * 10_000.0 + BOUND_MARGIN_BPS


def upper_bound_bps(triangle: Triangle, views: Sequence[BookView], terms: Terms) -> float:
    """At least the ``profit_bps`` of any ``Evaluation`` of ``triangle`` on ``views`` (its legs'
    books, in order) under ``terms``, from the top of the books (see the module); ``math.inf``
    when a side of a book the triangle trades on is empty."""
    first, second, third = (
        leg_rate(leg.side, view.top, fee_factor(leg.side, terms.fees.get(leg.symbol, _ZERO)))
        for leg, view in zip(triangle.legs, views, strict=True)
    )
    return bound_bps(first * second * third)


# --- the depth's capacity ----------------------------------------------------------------------


def achievable_volume(
    triangle: Triangle,
    views: Sequence[BookView],
    instruments: Mapping[str, Instrument],
    terms: Terms,
) -> Decimal:
    """The start volume evaluated: ``terms.start_volume``, or less when the visible depth
    carries less (the last leg's depth taken back through the legs before it: the most each
    leg may spend and still yield no more than the next leg's books take)."""
    if len(views) != 3:
        raise ValueError(f"a triangle walks three books, got {len(views)}")
    with decimal.localcontext(_CONTEXT):
        return _achievable(triangle, views, terms)


def _achievable(triangle: Triangle, views: Sequence[BookView], terms: Terms) -> Decimal:
    """``achievable_volume`` in the context it sets (``walk`` is in it already)."""
    most: Decimal | None = None  # what the next leg can spend: no bound after the last
    legs = triangle.legs
    fees = terms.fees
    for n in (2, 1, 0):
        leg, view = legs[n], views[n]
        fee_rate = fees.get(leg.symbol, _ZERO)
        if leg.side is Side.BUY:
            most = _funds_for_base(view.decimal_asks, most) * (_ONE + fee_rate)
        else:
            proceeds = None if most is None else most / (_ONE - fee_rate)
            most = _base_for_proceeds(view.decimal_bids, proceeds)
    carried = _ZERO if most is None else most
    return min(terms.start_volume, carried * (_ONE - _SLACK))


def _funds_for_base(asks: _Levels, base: Decimal | None) -> Decimal:
    """What ``base`` costs on ``asks`` (all of them when they hold less, or base is None)."""
    funds = _ZERO
    for px, sz in asks:
        if base is not None and sz >= base:
            return funds + px * base
        funds += px * sz
        if base is not None:
            base -= sz
    return funds


def _base_for_proceeds(bids: _Levels, proceeds: Decimal | None) -> Decimal:
    """The base whose sale on ``bids`` brings ``proceeds`` (all of them when they bring less,
    or proceeds is None)."""
    base = _ZERO
    for px, sz in bids:
        if proceeds is not None and px * sz >= proceeds:
            return base + proceeds / px
        base += sz
        if proceeds is not None:
            proceeds -= px * sz
    return base


# What the depth must carry beyond the start volume for ``_carries`` to say it does: far above
# the rounding of ``_achievable``'s 40 digits, far below ``_SLACK`` (see ``_carries``).
_CARRY_MARGIN = Decimal("1e-25")
_START_CARRIED = Decimal(1) + _CARRY_MARGIN
# Exact: products and sums of venue numbers (no division), a few hundred digits at most; an
# amount that would need more is not decided here (``_carries`` says no).
_EXACT = decimal.Context(
    prec=1_000,
    traps=[decimal.Inexact, decimal.InvalidOperation, decimal.DivisionByZero, decimal.Overflow],
)


def _carries(triangle: Triangle, views: Sequence[BookView], terms: Terms) -> bool:
    """True when ``_achievable`` is sure to give ``terms.start_volume`` itself: the visible
    depth carries ``start_volume * (1 + _CARRY_MARGIN)`` through the three legs, walked forward
    exactly (each leg's amount a fraction ``n / d`` of exact ``Decimal``s, no division) only as
    far into the books as it goes; False when it does not, or cannot be sure.

    Why: ``_achievable``'s capacity is the largest start volume whose legs each stay within
    their side's depth (the forward walk's condition, leg by leg); it computes it in 40 digits
    rounded down, low by far less than a relative 1e-35 (products and sums of venue numbers are
    exact in 40 digits; each quotient is low by a unit in the 40th, the errors do not compound
    beyond the amounts' own size), then takes ``1 - _SLACK`` (1e-30) of it. A capacity of at
    least ``(1 + 1e-25)`` times the start volume so stays above it, and the ``min`` is the start
    volume. The full ``_achievable`` reads every level of the last leg's side; this reads only
    what the volume takes."""
    ctx = _EXACT
    multiply, add, subtract = ctx.multiply, ctx.add, ctx.subtract
    fees = terms.fees
    num = multiply(terms.start_volume, _START_CARRIED)
    den = _ONE
    try:
        for leg, view in zip(triangle.legs, views, strict=True):
            fee_rate = fees.get(leg.symbol, _ZERO)
            if leg.side is Side.BUY:  # buys num / (den * (1 + fee)) of funds' worth of base
                den = multiply(den, add(_ONE, fee_rate))
                base = _ZERO
                asks, n = view.ask_levels, 0
                while (level := asks.level(n)) is not None:
                    px, sz = level
                    n += 1
                    cost = multiply(multiply(px, sz), den)
                    if cost >= num:  # base + num / (den * px)
                        num = add(multiply(multiply(base, den), px), num)
                        den = multiply(den, px)
                        break
                    base = add(base, sz)
                    num = subtract(num, cost)
                else:
                    return False
            else:  # sells num / den of base, receives the proceeds less the fee
                proceeds = _ZERO
                bids, n = view.bid_levels, 0
                while (level := bids.level(n)) is not None:
                    px, sz = level
                    n += 1
                    held = multiply(sz, den)
                    if held >= num:  # proceeds + px * num / den
                        num = add(multiply(proceeds, den), multiply(px, num))
                        break
                    proceeds = add(proceeds, multiply(px, sz))
                    num = subtract(num, held)
                else:
                    return False
                num = multiply(num, subtract(_ONE, fee_rate))
    except decimal.DecimalException:
        return False
    return True
