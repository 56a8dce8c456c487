"""The triangle walk as it was before ``triangles._carries`` and the lazy ``_Reader``: every
level of a side read as ``Decimal`` up front and the depth's capacity always walked in full.
Kept as the oracle the walk is property-tested against (``test_walk_oracle``): the same amounts,
to the last digit and exponent, and the same refusals."""

from __future__ import annotations

import decimal
from collections.abc import Mapping, Sequence
from decimal import Decimal

from mm.model import Instrument, Side
from mm.strategies.triarb.legs import Leg, Triangle
from mm.strategies.triarb.triangles import (
    BookView,
    Evaluation,
    LegResult,
    Reason,
    Refusal,
    Terms,
)

_ZERO = Decimal(0)
_ONE = Decimal(1)
_BPS = Decimal(10_000)
_CONTEXT = decimal.Context(prec=40, rounding=decimal.ROUND_FLOOR)
_SLACK = Decimal("1e-30")
_Levels = tuple[tuple[Decimal, Decimal], ...]


def _levels(levels: Sequence[tuple[float, float, int]]) -> _Levels:
    return tuple(
        (Decimal(repr(px)), Decimal(repr(sz))) for px, sz, _ in levels if sz > 0 and px > 0
    )


def oracle_walk(
    triangle: Triangle,
    views: Sequence[BookView],
    instruments: Mapping[str, Instrument],
    terms: Terms,
) -> Evaluation | Refusal:
    """``triangles.walk`` as it was."""
    with decimal.localcontext(_CONTEXT):
        return _walk(triangle, views, instruments, terms)


def _walk(
    triangle: Triangle,
    views: Sequence[BookView],
    instruments: Mapping[str, Instrument],
    terms: Terms,
) -> Evaluation | Refusal:
    capacity = _achievable(triangle, views, terms)
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
        capacity < terms.start_volume,
        min(view.time_ms for view in views),
    )


def _floor_input(leg: Leg, instrument: Instrument, terms: Terms, amount: Decimal) -> Decimal:
    if leg.side is Side.SELL:
        return _floor(amount, instrument.size_increment)
    increment = terms.funds_increments.get(leg.symbol)
    return amount if increment is None else _floor(amount, increment)


def _floor(amount: Decimal, increment: Decimal) -> Decimal:
    if amount <= 0:
        return _ZERO
    return (amount // increment) * increment


def _leg_result(
    leg: Leg, view: BookView, instrument: Instrument, terms: Terms, amount: Decimal
) -> LegResult | tuple[Reason, str]:
    fee_rate = terms.fees.get(leg.symbol, _ZERO)
    funds = _floor_input(leg, instrument, terms, amount)
    if leg.side is Side.BUY:
        levels = _levels(view.asks)
        size = _floor(_base_for_funds(levels, funds / (_ONE + fee_rate)), instrument.size_increment)
    else:
        levels = _levels(view.bids)
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
    if size < instrument.min_size:
        return Reason.MIN_SIZE, f"{size} < {instrument.min_size}"
    min_notional = Decimal(repr(instrument.min_notional))
    if notional < min_notional:
        return Reason.MIN_NOTIONAL, f"{notional} < {min_notional}"
    return None


def _base_for_funds(asks: _Levels, funds: Decimal) -> Decimal:
    base = _ZERO
    for px, sz in asks:
        cost = px * sz
        if cost >= funds:
            return base + funds / px
        base += sz
        funds -= cost
    return base


def _cost_of_size(levels: _Levels, size: Decimal) -> tuple[Decimal, Decimal] | None:
    notional = _ZERO
    for px, sz in levels:
        taken = min(sz, size)
        notional += px * taken
        size -= taken
        if size <= 0:
            return notional, px
    return None


def oracle_capacity(triangle: Triangle, views: Sequence[BookView], terms: Terms) -> Decimal:
    """``triangles.achievable_volume`` as it was."""
    with decimal.localcontext(_CONTEXT):
        return _achievable(triangle, views, terms)


def _achievable(triangle: Triangle, views: Sequence[BookView], terms: Terms) -> Decimal:
    most: Decimal | None = None
    legs = triangle.legs
    fees = terms.fees
    for n in (2, 1, 0):
        leg, view = legs[n], views[n]
        fee_rate = fees.get(leg.symbol, _ZERO)
        if leg.side is Side.BUY:
            most = _funds_for_base(_levels(view.asks), most) * (_ONE + fee_rate)
        else:
            proceeds = None if most is None else most / (_ONE - fee_rate)
            most = _base_for_proceeds(_levels(view.bids), proceeds)
    carried = _ZERO if most is None else most
    return min(terms.start_volume, carried * (_ONE - _SLACK))


def _funds_for_base(asks: _Levels, base: Decimal | None) -> Decimal:
    funds = _ZERO
    for px, sz in asks:
        if base is not None and sz >= base:
            return funds + px * base
        funds += px * sz
        if base is not None:
            base -= sz
    return funds


def _base_for_proceeds(bids: _Levels, proceeds: Decimal | None) -> Decimal:
    base = _ZERO
    for px, sz in bids:
        if proceeds is not None and px * sz >= proceeds:
            return base + proceeds / px
        base += sz
        if proceeds is not None:
            proceeds -= px * sz
    return base
