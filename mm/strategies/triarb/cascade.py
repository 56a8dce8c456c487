"""A triangle's cascade, pure: each leg's order from what the previous leg actually yielded,
what a leg yielded from its fills, and a leg's fills simulated from the book as evaluated
(paper mode), so that paper and live differ only at the venue call.

Before each leg (:func:`next_leg`), from ``held`` (what the previous leg yielded, in the leg's
source currency; the starting volume for the first leg):

* the IOC limit price: the evaluated worst price moved against us by ``max_slippage_bps``, then
  rounded back onto the tick grid towards the book (a buy's down, a sell's up), so it never
  gives away more than the slippage;
* fee-hold reduction: a buy's order may cost at most ``held``, fees included, so its size is
  ``held / (price * (1 + fee))`` (a market buy's funds ``held / (1 + fee)``); a sell spends
  its size of base and pays its fee out of what it receives;
* increment floor: the size floored to the size increment (a market buy's funds to the funds
  increment, KuCoin's ``quoteIncrement``, which ``Instrument`` does not carry: the caller gives
  it);
* minimum checks: nothing left after the floor, below ``min_size`` or below ``min_notional``
  (at the order's limit price) gives a :class:`Refusal` that says which, instead of an order.

A leg yields (:func:`leg_output`) the currency it receives from its fills (a buy the base
filled, a sell the quote received) less the fees charged in that currency.

Arithmetic is exact: floats (book prices, fills) are read as their shortest decimal form, and
every product, floor and comparison runs on ``Decimal`` in a context that traps any inexact
result, so a floor never lands above the true quotient.

Fails: ``ValueError`` for a negative amount or fee rate, a worst price that is not positive, a
leg not on the instrument, a market buy without its funds increment, fills of another pair or
side than the leg's, paper fees in a third currency. ``decimal.Inexact`` never escapes: every
operation here is exact at the context's precision, far beyond any venue number's digits.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Sequence
from decimal import Context, Decimal, DivisionByZero, Inexact, InvalidOperation, Overflow
from typing import Final

import attrs

from mm.model import Fill, Instrument, OrderId, PriceLevel, Side, TradeId
from mm.strategies.triarb.legs import Leg

__all__ = [
    "LegOrder",
    "Refusal",
    "Shortfall",
    "leg_output",
    "leg_spent",
    "limit_price",
    "next_leg",
    "paper_fills",
]

_EXACT: Final = Context(prec=400, traps=[Inexact, InvalidOperation, DivisionByZero, Overflow])
_BPS: Final = Decimal(10_000)
_ZERO: Final = Decimal(0)
_ONE: Final = Decimal(1)


class Shortfall(enum.Enum):
    """Which minimum a leg's order would miss."""

    NOTHING = "nothing"  # less than one increment (or no valid price) after rounding
    MIN_SIZE = "min_size"
    MIN_NOTIONAL = "min_notional"


@attrs.frozen(slots=True)
class Refusal:
    """A leg not sent: ``shortfall`` says which minimum it misses, ``detail`` by how much."""

    symbol: str
    shortfall: Shortfall
    detail: str


@attrs.frozen(slots=True)
class LegOrder:
    """The order for a leg: an IOC limit (``px`` and ``size``), or a market order (``market``:
    a buy by ``funds``, a sell by ``size``) with ``px`` the limit it was checked against.

    ``cost`` is the most it can spend of the leg's source currency, fees included (never more
    than what was held)."""

    symbol: str
    side: Side
    px: Decimal
    size: Decimal | None  # base; None for a market buy by funds
    funds: Decimal | None  # quote; a market buy's, else None
    cost: Decimal
    market: bool = False


def _exact(value: float | Decimal | int) -> Decimal:
    if type(value) is Decimal:
        return value  # immutable: the value itself, not a copy of it
    return Decimal(repr(value)) if isinstance(value, float) else Decimal(value)


# The price factors of a slippage (``1 + bps / 10,000`` for a buy, ``1 - bps / 10,000`` for a
# sell: against us), by the slippage: a run has one or two, every leg of a triangle needs one.
_SLIPPAGE_FACTORS: dict[Decimal, tuple[Decimal, Decimal]] = {}
_SLIPPAGES_KEPT: Final = 64


def _slippage_factors(max_slippage_bps: Decimal) -> tuple[Decimal, Decimal]:
    """``(buy, sell)``: what the worst price is multiplied by, exactly."""
    factors = _SLIPPAGE_FACTORS.get(max_slippage_bps)
    if factors is None:
        fraction = _EXACT.divide(max_slippage_bps, _BPS)
        factors = (_EXACT.add(_ONE, fraction), _EXACT.subtract(_ONE, fraction))
        if len(_SLIPPAGE_FACTORS) >= _SLIPPAGES_KEPT:
            _SLIPPAGE_FACTORS.clear()
        _SLIPPAGE_FACTORS[max_slippage_bps] = factors
    return factors


def _floor_multiple(numerator: Decimal, denominator: Decimal, step: Decimal) -> Decimal:
    """``numerator / denominator`` floored to a whole number of ``step`` (all positive)."""
    units = _EXACT.divide_int(numerator, _EXACT.multiply(denominator, step))
    return _EXACT.multiply(units, step)


def limit_price(
    side: Side, instrument: Instrument, worst_px: Decimal, max_slippage_bps: Decimal
) -> Decimal:
    """The IOC limit price: ``worst_px`` moved against us by the slippage, back on the grid
    towards the book (a buy's down, a sell's up); 0 when no valid price remains."""
    up = side is Side.SELL
    slipped = _EXACT.multiply(worst_px, _slippage_factors(max_slippage_bps)[up])
    whole, rest = _EXACT.divmod(slipped, instrument.price_increment)
    ticks = instrument.round_ticks(int(whole) + (1 if up and rest else 0), up=up)
    return _EXACT.multiply(Decimal(ticks), instrument.price_increment)


def next_leg(
    leg: Leg,
    instrument: Instrument,
    held: Decimal,
    fee_rate: Decimal,
    worst_px: float | Decimal,
    max_slippage_bps: Decimal | int,
    *,
    market_funds_increment: Decimal | None = None,
    market: bool = False,
) -> LegOrder | Refusal:
    """The order for ``leg`` (on ``instrument``) from ``held`` of its source currency (see the
    module). ``market`` sends a market order instead of an IOC limit: a buy by funds floored
    to ``market_funds_increment`` (KuCoin's ``quoteIncrement``), a sell by size."""
    if leg.symbol != instrument.symbol:
        raise ValueError(f"{leg}: not on {instrument.symbol}")
    leg_side = leg.side
    worst = _exact(worst_px)
    slippage = _exact(max_slippage_bps)
    if held < _ZERO or fee_rate < _ZERO or slippage < _ZERO or worst <= _ZERO:
        raise ValueError(f"{instrument.symbol}: held {held}, fee {fee_rate}, px {worst}")
    px = limit_price(leg_side, instrument, worst, slippage)
    if px <= 0:
        return Refusal(instrument.symbol, Shortfall.NOTHING, f"no valid price near {worst}")
    if leg_side is Side.SELL:
        size = _floor_multiple(held, _ONE, instrument.size_increment)
        order = LegOrder(instrument.symbol, leg_side, px, size, None, size, market)
        return _checked(order, instrument)
    hold = _EXACT.add(_ONE, fee_rate)
    if market:
        if market_funds_increment is None:
            raise ValueError(f"{instrument.symbol}: a market buy needs its funds increment")
        funds = _floor_multiple(held, hold, market_funds_increment)
        cost = _EXACT.multiply(funds, hold)
        order = LegOrder(instrument.symbol, leg_side, px, None, funds, cost, True)
        return _checked(order, instrument)
    size = _floor_multiple(held, _EXACT.multiply(px, hold), instrument.size_increment)
    cost = _EXACT.multiply(_EXACT.multiply(px, size), hold)
    return _checked(LegOrder(instrument.symbol, leg_side, px, size, None, cost), instrument)


def _checked(order: LegOrder, instrument: Instrument) -> LegOrder | Refusal:
    """``order``, or the refusal of the first minimum it misses (a market buy's size is
    estimated at its limit price: it buys at least that much)."""
    if order.funds is not None:
        notional = order.funds
        size = _floor_multiple(order.funds, order.px, instrument.size_increment)
    else:
        assert order.size is not None
        size = order.size
        notional = _EXACT.multiply(order.px, size)
    # The refusals' words are written only for a refusal: an order sent needs none of them.
    if notional <= 0:
        return Refusal(
            order.symbol, Shortfall.NOTHING, f"{_amount(order)}: less than one increment"
        )
    if size < instrument.min_size:
        detail = f"{_amount(order)}: size {size} below {instrument.min_size}"
        return Refusal(order.symbol, Shortfall.MIN_SIZE, detail)
    min_notional = _exact(instrument.min_notional)
    if notional < min_notional:
        detail = f"{_amount(order)}: notional {notional} below {min_notional}"
        return Refusal(order.symbol, Shortfall.MIN_NOTIONAL, detail)
    return order


def _amount(order: LegOrder) -> str:
    """What a refused order was, for the refusal's detail."""
    if order.funds is not None:
        return f"funds {order.funds}"
    return f"size {order.size} at {order.px}"


# --- what a leg yielded ----------------------------------------------------------------------


def _own(leg: Leg, fills: Iterable[Fill]) -> Sequence[Fill]:
    mine = tuple(fills)
    for fill in mine:
        if fill.coin != leg.symbol or fill.side is not leg.side:
            raise ValueError(f"{leg}: a fill of another leg: {fill.side.value} {fill.coin}")
    return mine


def leg_output(leg: Leg, fills: Iterable[Fill]) -> Decimal:
    """What ``leg`` yielded, in its target currency: a buy the base filled, a sell the quote
    received, less the fees charged in that currency (a fee in any other is not taken from
    it)."""
    mine = _own(leg, fills)
    if leg.side is Side.BUY:
        gross = _sum(_exact(fill.sz) for fill in mine)
    else:
        gross = _sum(_EXACT.multiply(_exact(f.px), _exact(f.sz)) for f in mine)
    return _EXACT.subtract(gross, _fees_in(leg.target, mine))


def leg_spent(leg: Leg, fills: Iterable[Fill]) -> Decimal:
    """What ``leg`` spent, in its source currency: a buy the quote paid, a sell the base sold,
    plus the fees charged in that currency."""
    mine = _own(leg, fills)
    if leg.side is Side.BUY:
        gross = _sum(_EXACT.multiply(_exact(f.px), _exact(f.sz)) for f in mine)
    else:
        gross = _sum(_exact(fill.sz) for fill in mine)
    return _EXACT.add(gross, _fees_in(leg.source, mine))


def _fees_in(currency: str, fills: Sequence[Fill]) -> Decimal:
    return _sum(_exact(f.fee) for f in fills if f.fee_token == currency)


def _sum(values: Iterable[Decimal]) -> Decimal:
    total = _ZERO
    for value in values:
        total = _EXACT.add(total, value)
    return total


# --- paper fills -----------------------------------------------------------------------------


def paper_fills(
    order: LegOrder,
    instrument: Instrument,
    levels: Sequence[PriceLevel],
    fee_rate: Decimal,
    *,
    oid: OrderId,
    cloid: str,
    time_ms: int,
    fee_token: str | None = None,
) -> tuple[Fill, ...]:
    """The fills ``order`` would get from ``levels`` (the side of the book it takes, best
    first, as evaluated): walking the depth within its limit (a market order: all of it), each
    take floored to the size increment (a market buy's to what its remaining funds buy), one
    fill per level at the level's price, with the taker fee ``fee_rate`` charged in
    ``fee_token`` (the quote unless told: KuCoin's trading fee unless paid in KCS). What is not
    filled is canceled, as an IOC's rest is. Fill ids are ``oid`` and ``<oid>/<n>``."""
    token = instrument.quote if fee_token is None else fee_token
    if token not in (instrument.base, instrument.quote):
        raise ValueError(f"{instrument.symbol}: paper fees are in its base or quote, not {token}")
    fills: list[Fill] = []
    for px, sz in _takes(order, instrument, levels):
        notional = _EXACT.multiply(px, sz)
        fee_base = notional if token == instrument.quote else sz
        fee = _EXACT.multiply(fee_base, fee_rate)
        fills.append(
            _fill(order, float(px), float(sz), float(fee), token, oid, cloid, time_ms, n=len(fills))
        )
    return tuple(fills)


def _takes(
    order: LegOrder, instrument: Instrument, levels: Sequence[PriceLevel]
) -> Iterable[tuple[Decimal, Decimal]]:
    """Each level's price and the size taken there, while the order lasts."""
    step = instrument.size_increment
    size_left = order.size
    funds_left = order.funds
    for level in levels:
        px, available = _exact(level[0]), _floor_multiple(_exact(level[1]), _ONE, step)
        if not order.market and (px > order.px if order.side is Side.BUY else px < order.px):
            return
        if funds_left is not None:
            take = min(available, _floor_multiple(funds_left, px, step))
            funds_left = _EXACT.subtract(funds_left, _EXACT.multiply(px, take))
        else:
            assert size_left is not None
            take = min(available, size_left)
            size_left = _EXACT.subtract(size_left, take)
        if take > 0:
            yield px, take
        if size_left == 0 or (funds_left is not None and take < available):
            return


def _fill(
    order: LegOrder,
    px: float,
    sz: float,
    fee: float,
    fee_token: str,
    oid: OrderId,
    cloid: str,
    time_ms: int,
    *,
    n: int,
) -> Fill:
    return Fill(
        coin=order.symbol,
        side=order.side,
        px=px,
        sz=sz,
        time_ms=time_ms,
        oid=oid,
        tid=TradeId(f"{oid}/{n}"),
        cloid=cloid,
        fee=fee,
        fee_token=fee_token,
        crossed=True,  # a taker, always
        start_position=0.0,  # spot: no position to start from
        direction="Buy" if order.side is Side.BUY else "Sell",
        closed_pnl=0.0,
        hash="",
    )
