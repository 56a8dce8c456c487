"""KuCoin's number rules, pure: prices, sizes and funds as the venue reads and writes them.

The venue sends and takes every number as a decimal string (``"50000"``, ``"0.00001"``) and
refuses one that is not a whole multiple of the symbol's increment (``priceIncrement``,
``baseIncrement`` for sizes, ``quoteIncrement`` for funds, from ``/api/v2/symbols``): a float
printed as it is (``0.6930000000000001``) is refused with "Order size increment invalid".
So every number put on the wire is built here with ``Decimal`` on the increment's grid:

* :func:`on_grid` rounds a value (a float as its shortest decimal form reads, ``repr``, never
  its binary expansion; a ``Decimal`` or a venue string as it is) to a whole number of
  increments, in the direction asked (down for a buy's price and every size, so that nothing is
  bought dearer or more than meant; up for a sell's price);
* :func:`wire` prints it as the venue's documents do: no exponent, no trailing zeros, no
  trailing point (``"0.693"``, ``"50000"``);
* :func:`parse` reads the venue's decimal strings: ASCII digits with an optional fraction and,
  where a value may be negative, a leading ``-``; everything else ``Decimal`` would take
  (exponents, ``+``, spaces, underscores, NaN, infinities, non-ASCII digits) is refused with
  ``ValueError`` (``TypeError`` for a non-string);
* :func:`is_on_grid` is the venue's check of a number it is sent (the simulator's);
* :func:`quotient` divides two of the venue's numbers as decimals (an average price: funds
  over size), so that an average on the price grid reads as that price, not an ulp off as the
  division of their floats may.

Fails: ``ValueError`` for an increment that is not a positive venue number, a value that is not
finite, or a text out of the grammar above; never rounds silently in a direction not asked.
"""

from __future__ import annotations

import re
from decimal import ROUND_CEILING, ROUND_FLOOR, Context, Decimal, InvalidOperation, localcontext
from typing import Final, Literal

__all__ = ["Direction", "is_on_grid", "on_grid", "parse", "quotient", "wire"]

Direction = Literal["down", "up"]
_ROUNDING: Final = {"down": ROUND_FLOOR, "up": ROUND_CEILING}
_GRAMMAR: Final = re.compile(r"-?[0-9]+(?:\.[0-9]+)?", re.ASCII)
MAX_TEXT: Final = 64  # far longer than any price, size or funds the venue lists
_PRECISION: Final = 2 * MAX_TEXT + 40  # digits: every quotient of two such numbers, exactly
_EXACT: Final = Context(prec=_PRECISION, traps=[InvalidOperation])
# Each power of ten by its value ("0.010" finds 1E-2), written with one digit: the exponent a
# quantize to that grid takes.
_POWERS_OF_TEN: Final = {Decimal(1).scaleb(e): Decimal(1).scaleb(e) for e in range(-40, 41)}


def parse(text: str, *, signed: bool = False) -> Decimal:
    """A venue decimal string as a ``Decimal`` (see the module for the grammar)."""
    if type(text) is not str:
        raise TypeError(f"expected a decimal string, got {type(text).__name__}")
    if len(text) > MAX_TEXT or _GRAMMAR.fullmatch(text) is None:
        raise ValueError(f"not a KuCoin decimal string: {text!r}")
    if text.startswith("-") and not signed:
        raise ValueError(f"expected an unsigned decimal string, got {text!r}")
    return Decimal(text)


def _increment(increment: str | Decimal) -> Decimal:
    step = parse(increment) if isinstance(increment, str) else increment
    if not step.is_finite() or step <= 0:
        raise ValueError(f"an increment must be positive, got {increment!r}")
    return step


def _exact(value: float | Decimal | str) -> Decimal:
    if isinstance(value, str):
        return parse(value, signed=True)
    exact = Decimal(repr(value)) if isinstance(value, float) else value
    if not exact.is_finite():
        raise ValueError(f"not a finite number: {value!r}")
    return exact


def on_grid(
    value: float | Decimal | str, increment: str | Decimal, direction: Direction
) -> Decimal:
    """``value`` as a whole number of ``increment``s, rounded ``direction`` (see the module).

    An increment that is a power of ten (the venue's usual ``"0.01"``) is a quantize to its
    exponent, which an order's price and size pay on every send; any other divides (both exact,
    the same number: ``tests/venues/kucoin/test_numbers.py`` holds them to each other)."""
    step = _increment(increment)
    exact = _exact(value)
    rounding = _ROUNDING[direction]
    power = _POWERS_OF_TEN.get(step)
    if power is not None:
        try:
            return exact.quantize(power, rounding=rounding, context=_EXACT)
        except InvalidOperation:  # more digits than the context holds: the division says
            pass
    return _divided(exact, step, rounding)


def _divided(exact: Decimal, step: Decimal, rounding: str) -> Decimal:
    with localcontext(prec=_PRECISION):  # exact: a float's repr has at most 17 digits
        return (exact / step).to_integral_value(rounding=rounding) * step


def wire(value: Decimal) -> str:
    """The venue's print of a number: no exponent, no trailing zeros, no trailing point."""
    if not value.is_finite():
        raise ValueError(f"not a finite number: {value!r}")
    text = f"{value:f}"
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return "0" if text in ("-0", "") else text


def is_on_grid(text: str, increment: str | Decimal) -> bool:
    """Whether a number the venue is sent is a whole multiple of ``increment`` (False for a
    text out of the grammar)."""
    try:
        value = parse(text)
    except (TypeError, ValueError):
        return False
    return value % _increment(increment) == 0


def quotient(numerator: Decimal, denominator: Decimal) -> float:
    """``numerator / denominator`` worked out in decimals, as the nearest float (see the
    module). Fails: ``ZeroDivisionError`` for a zero denominator."""
    if not denominator:
        raise ZeroDivisionError(f"{numerator} / 0")
    with localcontext(prec=_PRECISION):  # every quotient of two venue numbers, to spare
        return float(numerator / denominator)
