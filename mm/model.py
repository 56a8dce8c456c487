"""Shared value types: what adapters report and what strategies and executors send.

Frozen, slotted attrs classes. Venue wire formats are parsed into these at the adapter's edge;
nothing past an adapter sees venue JSON. Prices and sizes are floats in the venue's units (the
adapters format them by the venue's rules when sending); times are milliseconds since the epoch.
"""

from __future__ import annotations

import enum
import math
from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal
from typing import Final, NamedTuple, NewType, TypeAlias

import attrs

# --- identities --------------------------------------------------------------------------------

OrderId = NewType("OrderId", str)
"""A venue's id of an order, qualified by the venue: ``<venue>:<the venue's own id>``, as in
``hyperliquid:123456789`` (Hyperliquid's integer oid) or ``kucoin:<24 hex digits>``. Opaque past
the venue's package: the rest of mm stores, compares, hashes, journals and hands it back, and
never reads its parts. Only the venue's package builds one and parses it back
(``mm.venues.hyperliquid.ids``), so ids of two venues never collide."""

TradeId = NewType("TradeId", str)
"""A venue's id of a trade (a fill's ``tid``, a market trade's), qualified the same way as an
``OrderId`` (``hyperliquid:<tid>``) and as opaque."""

LEGACY_VENUE = "hyperliquid"
"""Whose ids a journal written before ids were qualified holds: Hyperliquid's bare integers,
the only venue mm traded then (its package's form, ``mm.venues.hyperliquid.ids``)."""


def journaled_order_id(value: str | int) -> OrderId:
    """An order id as a journal holds it: qualified, or (written before ids were) one of
    ``LEGACY_VENUE``'s bare integers, qualified now. Raises ``ValueError`` for anything else."""
    return OrderId(_journaled_id(value, "order id"))


def journaled_trade_id(value: str | int) -> TradeId:
    """A trade id as a journal holds it (see ``journaled_order_id``)."""
    return TradeId(_journaled_id(value, "trade id"))


def _journaled_id(value: object, what: str) -> str:
    if isinstance(value, bool):
        raise ValueError(f"not an {what}: {value!r}")
    if isinstance(value, int):
        return f"{LEGACY_VENUE}:{value}"
    if isinstance(value, str) and ":" in value:
        return value
    raise ValueError(f"not an {what}: {value!r}")


class Side(enum.Enum):
    """An order's or a trade's side, in mm's words (each codec maps its venue's)."""

    BUY = "buy"
    SELL = "sell"

    @property
    def sign(self) -> int:
        return 1 if self is Side.BUY else -1

    @property
    def opposite(self) -> Side:
        return Side.SELL if self is Side.BUY else Side.BUY


class Tif(enum.Enum):
    """Time in force, in mm's words (each codec maps its venue's)."""

    GTC = "gtc"  # rests until canceled
    IOC = "ioc"  # immediate or cancel: never rests
    ALO = "post_only"  # rests, or is refused when it would take


class OrderStatus(enum.Enum):
    """An order's status as its venue reports it, in mm's terms (each adapter maps its venue's
    words to these, and keeps the word beside it for logs, the journal and reports)."""

    OPEN = "open"  # resting (a trigger order that went live included)
    FILLED = "filled"
    CANCELED = "canceled"  # at the account's request: a cancel, or a modify's replaced order
    # By the venue's own rules: margin, self-trade prevention, reduce-only, the dead-man's
    # switch, a delisting, a liquidation...
    CANCELED_BY_VENUE = "canceled_by_venue"
    REJECTED = "rejected"  # refused (for an order already live: it is gone)
    UNRECOGNIZED = "unrecognized"  # a word this build does not know: changes nothing, flagged

    @property
    def ended(self) -> bool:
        """The order is done at the venue: filled, canceled or rejected."""
        return self in (
            OrderStatus.FILLED,
            OrderStatus.CANCELED,
            OrderStatus.CANCELED_BY_VENUE,
            OrderStatus.REJECTED,
        )


# --- reference data ----------------------------------------------------------------------------

_POWERS: Final = tuple(10**decimals for decimals in range(12))
_EXACT_UNITS: Final = 2**52  # below this many units, float_units needs no Decimal
# Instrument.price_ticks' float path: below _FLOAT_TICKS ticks, ``px * ticks_per_unit`` is
# within 3.4e-16 of itself (so under 3.4e-7 ticks) of the exact quotient; a fraction of a tick
# farther than _FLOAT_GAP from a whole one leaves the floor and the ceiling unambiguous.
_FLOAT_TICKS: Final = 1e9
_FLOAT_GAP: Final = 1e-6


def float_units(value: float, decimals: int) -> tuple[int, bool]:
    """``value`` in units of ``10**-decimals`` as its shortest decimal form reads (``repr``:
    ``0.07`` is 0.07, not the binary 0.07000000000000000666...), rounded down, and whether that
    is exact (the form has at most ``decimals`` decimals). ``ValueError`` for NaN, an infinity
    or negative decimals.

    In integers, for the hot path (every quoted price and size): a float is exactly ``p / 2**k``,
    so ``p * 10**d // 2**k`` is the floor of its binary value in units, and the shortest form
    is a whole unit exactly when that unit (or the next), divided back, is the float itself, an
    integer division Python rounds correctly. Below ``2**52`` units two whole units lie further
    apart than the float's precision, so no other unit can be it, and otherwise the shortest form
    and the binary value lie between the same two whole units. Past that (no price or size comes
    near) it reads ``repr`` through a ``Decimal``. Result for result the same as
    ``Decimal(repr(value)).scaleb(decimals)`` rounded down.
    """
    if decimals < 0:
        raise ValueError(f"decimals out of range: {decimals}")
    scale = _POWERS[decimals] if decimals < len(_POWERS) else 10**decimals
    try:
        numerator, denominator = value.as_integer_ratio()
    except (OverflowError, ValueError):
        raise ValueError(f"not a finite number: {value}") from None
    below, remainder = divmod(numerator * scale, denominator)
    if -_EXACT_UNITS < below < _EXACT_UNITS - 1:
        if remainder == 0 or below / scale == value:
            return below, True
        if (below + 1) / scale == value:
            return below + 1, True
        return below, False
    units = Decimal(repr(value)).scaleb(decimals)
    whole = int(units.to_integral_value(rounding=ROUND_FLOOR))
    return whole, units == whole


def _increment(value: Decimal) -> tuple[int, int]:
    """A positive decimal increment as ``(unit, decimals)``: ``unit * 10**-decimals``."""
    _, digits, exponent = value.as_tuple()
    assert isinstance(exponent, int)  # finite: checked before
    unit = int("".join(map(str, digits)))
    if exponent >= 0:
        return unit * 10**exponent, 0
    return unit, -exponent


def _below_bound(minimum: Decimal) -> float:
    """The float ``b`` with ``x < b`` exactly when the float ``x`` is below ``minimum``."""
    nearest = float(minimum)
    return nearest if Decimal(nearest) >= minimum else math.nextafter(nearest, math.inf)


@attrs.frozen(slots=True)
class Instrument:
    """A tradable instrument of a venue and its order grid.

    ``symbol`` is the venue's name for it, ``base`` and ``quote`` the currencies (a size is in
    ``base``, a price and a notional in ``quote``). Prices lie on a grid of ``price_increment``
    (a *tick*) and sizes on one of ``size_increment`` (a *lot*); an order is at least
    ``min_size`` and ``min_notional``. Some venues coarsen the price grid further: with
    ``price_sig_figs``, a price that is not a whole number of ``quote`` has at most that many
    significant figures (``price_increment`` is then a power of ten).

    Rounding works on exact decimals (a float's shortest form, never its binary expansion) and
    on integer ticks and lots, so it never lands off the grid; ``up`` says which way: a passive
    buy rounds down, a passive sell up, and a rounded price is never on the other side of the
    price it came from. It runs in integers (:func:`float_units`, the increments as integer
    units of a power of ten), with the results the decimal arithmetic gives.
    """

    venue: str
    symbol: str
    base: str
    quote: str
    price_increment: Decimal
    size_increment: Decimal
    min_size: Decimal
    min_notional: float
    price_sig_figs: int | None = None
    # Ticks in one whole unit of quote (with price_sig_figs), and the most decimals of that
    # count: derived, for the rounding's hot path.
    _unit_ticks: int = attrs.field(init=False, default=0, eq=False, repr=False)
    _unit_digits: int = attrs.field(init=False, default=0, eq=False, repr=False)
    # The increments as (unit, decimals): unit * 10**-decimals; and min_size as a float bound.
    _px_unit: int = attrs.field(init=False, default=1, eq=False, repr=False)
    _px_decimals: int = attrs.field(init=False, default=0, eq=False, repr=False)
    _lot_unit: int = attrs.field(init=False, default=1, eq=False, repr=False)
    _lot_decimals: int = attrs.field(init=False, default=0, eq=False, repr=False)
    _px_scale: int = attrs.field(init=False, default=1, eq=False, repr=False)  # 10**decimals
    _lot_scale: int = attrs.field(init=False, default=1, eq=False, repr=False)
    _min_size_bound: float = attrs.field(init=False, default=0.0, eq=False, repr=False)
    # Tick counts from which the significant-figure rule coarsens the grid tenfold more: a
    # count of 10**(figures + j) ticks or more has a step of 10**(j + 1), up to a whole unit.
    _step_bounds: tuple[int, ...] = attrs.field(init=False, default=(), eq=False, repr=False)
    # Ticks per unit of quote as a float (10**decimals / unit): price_ticks' float path.
    _ticks_per_unit: float = attrs.field(init=False, default=1.0, eq=False, repr=False)

    def __attrs_post_init__(self) -> None:
        for name in ("price_increment", "size_increment"):
            value = getattr(self, name)
            if not (isinstance(value, Decimal) and value.is_finite() and value > 0):
                raise ValueError(f"{self.symbol}: {name} must be a positive decimal: {value!r}")
        if not (self.min_size >= 0 and self.min_notional >= 0):
            raise ValueError(f"{self.symbol}: minimums must not be negative")
        px_unit, px_decimals = _increment(self.price_increment)
        lot_unit, lot_decimals = _increment(self.size_increment)
        object.__setattr__(self, "_px_unit", px_unit)
        object.__setattr__(self, "_px_decimals", px_decimals)
        object.__setattr__(self, "_lot_unit", lot_unit)
        object.__setattr__(self, "_lot_decimals", lot_decimals)
        object.__setattr__(self, "_px_scale", 10**px_decimals)
        object.__setattr__(self, "_ticks_per_unit", 10**px_decimals / px_unit)
        object.__setattr__(self, "_lot_scale", 10**lot_decimals)
        object.__setattr__(self, "_min_size_bound", _below_bound(self.min_size))
        if self.price_sig_figs is not None:
            if self.price_sig_figs < 1:
                raise ValueError(f"{self.symbol}: price_sig_figs must be at least 1")
            digits = self.price_increment.normalize().as_tuple()
            if digits.digits != (1,) or not isinstance(digits.exponent, int):
                raise ValueError(
                    f"{self.symbol}: price_sig_figs needs a power of ten for price_increment, "
                    f"not {self.price_increment}"
                )
            decimals = max(-digits.exponent, 0)
            object.__setattr__(self, "_unit_ticks", 10**decimals)
            object.__setattr__(self, "_unit_digits", decimals)
            bounds = tuple(10 ** (self.price_sig_figs + j) for j in range(decimals))
            object.__setattr__(self, "_step_bounds", bounds)

    # --- prices, in integer ticks ----------------------------------------------------------

    def tick_step(self, ticks: int) -> int:
        """The spacing of valid prices around ``ticks``, in ticks: 1, or coarser where the
        significant-figure rule applies (never coarser than a whole unit of quote)."""
        step = 1
        for bound in self._step_bounds:  # 10**figures, ... (empty without price_sig_figs)
            if ticks < bound:
                break
            step *= 10  # one more digit than the figures allow: ten times coarser
        return step

    def is_valid_ticks(self, ticks: int) -> bool:
        """Whether ``ticks`` ticks is a price the venue takes."""
        if ticks <= 0:
            return False
        if self.price_sig_figs is None or ticks % self._unit_ticks == 0:
            return True
        return len(str(ticks).rstrip("0")) <= self.price_sig_figs

    def round_ticks(self, exact: Decimal | int, *, up: bool) -> int:
        """The nearest valid price, in ticks, at or beyond ``exact`` ticks: towards higher
        prices with ``up``, else lower. Down below one tick gives 0, which is no price: the
        caller decides what to do with it."""
        if type(exact) is int:
            candidate = exact
        else:
            candidate = int(Decimal(exact).to_integral_value(ROUND_CEILING if up else ROUND_FLOOR))
        if candidate <= 0:
            return 1 if up else 0
        step = self.tick_step(candidate)
        remainder = candidate % step
        if remainder == 0:
            return candidate
        # Down: the multiple below has as many digits, so it is valid. Up: the multiple above
        # has as many digits, or is the next power of ten, valid either way.
        return candidate - remainder + (step if up else 0)

    def price_ticks(self, px: float, *, up: bool) -> int:
        """``px`` rounded to the grid (``up``: at or above it, else at or below), in ticks.

        In floats first (every quoted price comes here): ``px`` times the ticks per unit of
        quote is within ``_FLOAT_SLACK`` times itself of the exact quotient of ``px``'s shortest
        form (its ``repr`` lies within half an ulp of it, the product and the ticks per unit
        round once each), so below ``_FLOAT_TICKS`` ticks a fraction farther than ``_FLOAT_GAP``
        from a whole tick puts the exact quotient strictly between the same two whole ticks:
        the floor is the one below, the ceiling the one above. Nearer a whole tick (or past the
        bound, or not a positive number) the integer path decides."""
        scaled = px * self._ticks_per_unit
        if 0.0 < scaled < _FLOAT_TICKS:
            below = int(scaled)
            fraction = scaled - below  # exact: ``below`` and ``scaled`` share their binade
            if _FLOAT_GAP < fraction < 1.0 - _FLOAT_GAP:
                return self.round_ticks(below + 1 if up else below, up=up)
        return self.round_ticks(_divide(px, self._px_unit, self._px_decimals, up=up), up=up)

    def ticks_price(self, ticks: int) -> float:
        """A price given in ticks (the float nearest to it)."""
        return ticks * self._px_unit / self._px_scale

    def round_price(self, px: float, *, up: bool) -> float:
        """``px`` on the grid: the nearest valid price at or above it (``up``) or at or below
        it; 0.0 when nothing valid lies below it."""
        return self.ticks_price(self.price_ticks(px, up=up))

    # --- sizes, in integer lots ------------------------------------------------------------

    def size_lots(self, sz: float, *, up: bool | None = None) -> int:
        """``sz`` in lots: to the nearest (ties to even) by default, up or down with ``up``."""
        unit, decimals = self._lot_unit, self._lot_decimals
        if up is not None:
            return _divide(sz, unit, decimals, up=up)
        # To the nearest: one more decimal tells which side of half a lot the size lies.
        tenths, exact = float_units(sz, decimals + 1)
        lots, rest = divmod(tenths, 10 * unit)
        half = 5 * unit
        if rest > half or (rest == half and (not exact or lots & 1)):
            return lots + 1  # past half a lot, or exactly half and odd
        return lots

    def lots_size(self, lots: int) -> float:
        """A size given in lots (the float nearest to it)."""
        return lots * self._lot_unit / self._lot_scale

    def size_below_minimum(self, sz: float) -> bool:
        """Whether the float ``sz`` is below ``min_size`` (exactly, without a Decimal)."""
        return sz < self._min_size_bound

    def round_size(self, sz: float, *, up: bool | None = None) -> float:
        """``sz`` on the lot grid (see ``size_lots``)."""
        return self.lots_size(self.size_lots(sz, up=up))


def _divide(value: float, unit: int, decimals: int, *, up: bool) -> int:
    """``value / (unit * 10**-decimals)`` as ``value``'s shortest form reads, rounded up or
    down to a whole number. Between two whole units (not exact) the quotient lies strictly
    between ``whole // unit`` and the next integer."""
    whole, exact = float_units(value, decimals)
    if unit == 1:
        return whole + 1 if up and not exact else whole
    quotient, rest = divmod(whole, unit)
    return quotient + 1 if up and (rest or not exact) else quotient


# --- market data -------------------------------------------------------------------------------


PriceLevel: TypeAlias = tuple[float, float, int]
"""One level of a book as books hold it: ``(px, sz, n)`` (price, size, the venue's order count),
read by position. A plain tuple, not a class: a venue's adapter builds tens of them per frame."""


class Level(NamedTuple):
    """A ``PriceLevel`` with names (a tuple too: equal to the plain tuple of its values), for
    code that builds a few levels (a best bid or offer, tests) and reads them by name."""

    px: float
    sz: float
    n: int = 1


@attrs.frozen(slots=True)
class BookSnapshot:
    """A full L2 snapshot, best levels first on each side (as deep as the venue sent, or as the
    subscriber asked for). ``seq``: the venue's sequence number of the book, where its books are
    sequenced (the deltas that follow continue from it)."""

    coin: str
    time_ms: int
    bids: tuple[PriceLevel, ...]
    asks: tuple[PriceLevel, ...]
    seq: int | None = None
    # When its frame arrived, on mm.clock.monotonic_ns, as the adapter stamped it (0: not
    # stamped; the feed stamps it as it takes it).
    received_ns: int = 0


@attrs.frozen(slots=True)
class BookDelta:
    """Changes to an L2 book, sequence numbers ``first_seq`` to ``seq`` of the venue's book: each
    level given replaces the size at its price, a size of 0 removes the price. It applies to a
    book at sequence ``first_seq - 1`` (or later, up to ``seq``: a venue's sequences may overlap
    a snapshot)."""

    coin: str
    time_ms: int
    first_seq: int
    seq: int
    bids: tuple[PriceLevel, ...] = ()
    asks: tuple[PriceLevel, ...] = ()
    received_ns: int = 0  # as BookSnapshot's


@attrs.frozen(slots=True)
class Bbo:
    coin: str
    time_ms: int
    bid: Level | None
    ask: Level | None


@attrs.frozen(slots=True)
class Trade:
    coin: str
    side: Side  # the taker's side
    px: float
    sz: float
    time_ms: int
    tid: TradeId


@attrs.frozen(slots=True)
class Mids:
    mids: dict[str, float]


# --- orders and fills --------------------------------------------------------------------------


@attrs.frozen(slots=True)
class OpenOrder:
    coin: str
    side: Side
    px: float
    sz: float  # remaining
    orig_sz: float
    oid: OrderId
    cloid: str | None
    time_ms: int
    reduce_only: bool = False
    tif: Tif | None = None


@attrs.frozen(slots=True)
class OrderReport:
    """A venue report of an order's status (orderUpdates, orderStatus, historicalOrders)."""

    coin: str
    side: Side
    px: float
    sz: float  # remaining
    orig_sz: float
    oid: OrderId
    cloid: str | None
    time_ms: int
    status: OrderStatus
    status_time_ms: int
    venue_status: str  # the venue's own word for it (open, badAloPxRejected, ...), for people


@attrs.frozen(slots=True)
class Fill:
    coin: str
    side: Side
    px: float
    sz: float
    time_ms: int
    oid: OrderId
    tid: TradeId
    cloid: str | None
    fee: float
    fee_token: str
    crossed: bool  # True when we were the taker
    start_position: float
    direction: str
    closed_pnl: float
    hash: str


@attrs.frozen(slots=True)
class FillsSnapshot:
    """The account's recent fills as a venue lists them when a user subscription starts (and
    starts again, after a reconnect): some seen already, some missed while away."""

    fills: tuple[Fill, ...]


@attrs.frozen(slots=True)
class NonUserCancel:
    coin: str
    oid: OrderId


@attrs.frozen(slots=True)
class Funding:
    """A funding payment on a perpetual position, settled on the hour.

    ``usdc`` is what the account received (negative: it paid); ``szi`` the signed position it
    was paid on and ``funding_rate`` the hour's rate (positive: longs pay shorts).
    """

    coin: str
    usdc: float
    szi: float
    funding_rate: float
    time_ms: int


@attrs.frozen(slots=True)
class Liquidation:
    lid: int
    liquidator: str
    liquidated_user: str
    liquidated_ntl_pos: float
    liquidated_account_value: float


# --- account -----------------------------------------------------------------------------------


@attrs.frozen(slots=True)
class Position:
    coin: str
    szi: float  # signed size
    entry_px: float
    unrealized_pnl: float
    liquidation_px: float | None
    margin_used: float
    leverage: int


@attrs.frozen(slots=True)
class Balance:
    """One currency of a spot account: ``total`` is ``available`` plus ``hold`` (what the
    account's open orders hold)."""

    currency: str
    total: float
    available: float
    hold: float


@attrs.frozen(slots=True)
class AccountState:
    """The account as the venue reads it: a perpetual venue's margin and positions, a spot
    venue's ``balances`` (one per currency it holds; empty on a venue of positions)."""

    time_ms: int
    account_value: float
    margin_used: float
    withdrawable: float
    positions: tuple[Position, ...]
    balances: tuple[Balance, ...] = ()

    @property
    def of_balances(self) -> bool:
        """A spot account: what it holds is its balances (it has no positions to reconcile,
        nor to be liquidated)."""
        return bool(self.balances) and not self.positions


@attrs.frozen(slots=True)
class RateLimitState:
    cum_volume: float
    requests_used: int
    requests_cap: int


# --- commands and their results ----------------------------------------------------------------


@attrs.frozen(slots=True)
class DesiredOrder:
    """One order the strategy wants resting: ``level`` is its ladder level (0 = top)."""

    side: Side
    px: float
    sz: float
    level: int = 0


@attrs.frozen(slots=True)
class PlaceOrder:
    coin: str
    side: Side
    px: float
    sz: float
    tif: Tif
    cloid: str
    reduce_only: bool = False


@attrs.frozen(slots=True)
class CancelOrder:
    """Cancel by venue order id or by our cloid (exactly one is set)."""

    coin: str
    oid: OrderId | None = None
    cloid: str | None = None

    def __attrs_post_init__(self) -> None:
        if (self.oid is None) == (self.cloid is None):
            raise ValueError("CancelOrder needs exactly one of oid and cloid")


@attrs.frozen(slots=True)
class ModifyOrder:
    """Replace a resting order with ``order``, which keeps the order's cloid: the order is found
    by ``oid`` when given, else by that cloid."""

    order: PlaceOrder
    oid: OrderId | None = None


@attrs.frozen(slots=True)
class Resting:
    oid: OrderId
    cloid: str | None


@attrs.frozen(slots=True)
class Filled:
    oid: OrderId
    cloid: str | None
    total_sz: float
    avg_px: float


@attrs.frozen(slots=True)
class Rejected:
    reason: str


PlaceResult = Resting | Filled | Rejected
CancelResult = None | Rejected  # None: canceled


MarketEvent = BookSnapshot | BookDelta | Bbo | Trade | Mids
UserEvent = OrderReport | Fill | NonUserCancel | Liquidation | Funding
