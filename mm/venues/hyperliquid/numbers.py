"""Hyperliquid's number rules, as pure functions shared by the simulator and the adapter.

The venue's rules for a perpetual with ``szDecimals`` = d:

* a price is positive, has at most ``6 - d`` decimals (``8 - d`` on spot) and at most 5
  significant figures, unless it is an integer (integers are always allowed, whatever their
  figures);
* a size has at most d decimals (the venue rounds to them).

Prices are handled here as integer *ticks* of ``10**-px_decimals`` (the finest price the venue
accepts) and sizes as integer *lots* of ``10**-szDecimals``, so no rule is ever applied to a
float. Two printing styles exist:

* the **wire** style that requests carry, as the official SDK's ``float_to_wire`` sends it: no
  exponent, no trailing zeros, no trailing point (``"30135"``, ``"0.001"``, ``"1.5"``);
* the **display** style the venue uses in its responses: always a point, ``".0"`` for integers,
  no other trailing zeros (``"30135.0"``, ``"0.001"``, ``"1.5"``).

Parsing accepts plain decimal strings only (``"123"``, ``"0.5"``): no signs, exponents,
spaces, underscores, leading or trailing points, NaN or infinities.
"""

from __future__ import annotations

import re
from decimal import ROUND_CEILING, ROUND_FLOOR, ROUND_HALF_EVEN, Decimal, InvalidOperation
from typing import Final

__all__ = [
    "MAX_PERP_DECIMALS",
    "MAX_SIG_FIGS",
    "MAX_SPOT_DECIMALS",
    "display_str",
    "exact_units",
    "format_fixed",
    "is_valid_px",
    "is_valid_ticks",
    "parse_decimal",
    "px_decimals",
    "px_ticks",
    "round_lots",
    "round_ticks",
    "sz_lots",
    "to_display",
    "to_wire",
    "wire_str",
]

MAX_PERP_DECIMALS: Final = 6
MAX_SPOT_DECIMALS: Final = 8
MAX_SIG_FIGS: Final = 5

_NUMBER = re.compile(r"[0-9]+(?:\.[0-9]+)?")
_ONE = Decimal(1)


def px_decimals(sz_decimals: int, *, spot: bool = False) -> int:
    """The most decimals a price may have: ``6 - szDecimals`` (``8 - szDecimals`` on spot)."""
    decimals = (MAX_SPOT_DECIMALS if spot else MAX_PERP_DECIMALS) - sz_decimals
    if sz_decimals < 0 or decimals < 0:
        raise ValueError(f"szDecimals out of range: {sz_decimals}")
    return decimals


# --- parsing -------------------------------------------------------------------------------------


def parse_decimal(text: str) -> Decimal | None:
    """A plain decimal string as a Decimal; None for anything else (signs, exponents, ...)."""
    if not isinstance(text, str) or _NUMBER.fullmatch(text) is None:
        return None
    try:
        return Decimal(text)
    except (InvalidOperation, ValueError):  # pragma: no cover - the pattern admits digits only
        return None


def is_valid_ticks(ticks: int, px_decimals: int) -> bool:
    """Whether ``ticks * 10**-px_decimals`` is a price the venue accepts.

    The decimals limit holds by construction; an integer price (ticks a multiple of
    ``10**px_decimals``) is always valid; otherwise the price's significant figures are the
    tick count's digits without its trailing zeros.
    """
    if ticks <= 0:
        return False
    if ticks % 10**px_decimals == 0:
        return True
    return len(str(ticks).rstrip("0")) <= MAX_SIG_FIGS


def px_ticks(text: str, px_decimals: int) -> int | None:
    """A price string in ticks of ``10**-px_decimals``; None when it breaks the venue's rules."""
    value = parse_decimal(text)
    if value is None or value <= 0:
        return None
    scaled = value.scaleb(px_decimals)
    if scaled != scaled.to_integral_value():
        return None  # more decimals than the asset allows
    ticks = int(scaled)
    return ticks if is_valid_ticks(ticks, px_decimals) else None


def is_valid_px(text: str, sz_decimals: int, *, spot: bool = False) -> bool:
    """Whether the venue accepts ``text`` as a price for an asset with ``sz_decimals``."""
    return px_ticks(text, px_decimals(sz_decimals, spot=spot)) is not None


def round_lots(value: Decimal, sz_decimals: int) -> int:
    """``value`` in lots of ``10**-sz_decimals``, rounded to nearest (ties to even)."""
    return int(value.scaleb(sz_decimals).quantize(_ONE, rounding=ROUND_HALF_EVEN))


def sz_lots(text: str, sz_decimals: int) -> int | None:
    """A size string in lots, rounded to szDecimals; None when not a non-negative number."""
    value = parse_decimal(text)
    if value is None:
        return None
    return round_lots(value, sz_decimals)


# --- rounding ------------------------------------------------------------------------------------


def exact_units(value: float, decimals: int) -> Decimal:
    """A float in units of ``10**-decimals``, exactly as its shortest decimal form reads.

    ``price * 10**d`` in floats can land just past an integer (``0.07 * 100`` is
    ``7.000000000000001``) and move a valid price by a tick; the shortest repr does not.
    """
    return Decimal(repr(value)).scaleb(decimals)


def round_ticks(exact: Decimal, px_decimals: int, *, up: bool) -> int:
    """The nearest valid price, in ticks, at or beyond ``exact`` ticks in one direction.

    ``up`` rounds towards higher prices (a passive sell), otherwise towards lower prices (a
    passive buy). Rounding down below one tick gives 0, which is not a valid price: callers
    decide what to do with it.
    """
    candidate = int(exact.to_integral_value(rounding=ROUND_CEILING if up else ROUND_FLOOR))
    if candidate <= 0:
        return 0 if not up else 1
    # A price of k digits in ticks (k > 5) keeps its top 5 figures: it is a multiple of
    # 10**(k - 5) ticks, and never needs to be coarser than an integer (10**px_decimals ticks).
    step: int = 10 ** min(max(len(str(candidate)) - MAX_SIG_FIGS, 0), px_decimals)
    remainder = candidate % step
    if remainder == 0:
        return candidate
    # Down: the multiple below has as many digits, so it is valid. Up: the multiple above has
    # as many digits, or is the next power of ten, which is valid either way.
    return candidate - remainder + (step if up else 0)


# --- printing ------------------------------------------------------------------------------------


def _split(value: int, decimals: int) -> tuple[str, str, str]:
    sign = "-" if value < 0 else ""
    digits = str(abs(value))
    if decimals == 0:
        return sign, digits, ""
    digits = digits.rjust(decimals + 1, "0")
    return sign, digits[:-decimals], digits[-decimals:].rstrip("0")


def display_str(value: int, decimals: int) -> str:
    """A count of ``10**-decimals`` units in the venue's display style: "79146.0", "0.00022"."""
    sign, whole, fraction = _split(value, decimals)
    return f"{sign}{whole}.{fraction or '0'}"


format_fixed = display_str
"""The simulator's historical name for :func:`display_str`."""


def wire_str(value: int, decimals: int) -> str:
    """A count of ``10**-decimals`` units in the wire style: "79146", "0.00022", "1.5"."""
    sign, whole, fraction = _split(value, decimals)
    if not fraction:
        return "0" if whole == "0" else f"{sign}{whole}"
    return f"{sign}{whole}.{fraction}"


def _units(text: str) -> tuple[int, int]:
    value = parse_decimal(text.removeprefix("-"))
    if value is None:
        raise ValueError(f"not a plain decimal number: {text!r}")
    exponent = value.as_tuple().exponent
    assert isinstance(exponent, int)  # finite by construction
    decimals = max(-exponent, 0)
    units = int(value.scaleb(decimals))
    return (-units if text.startswith("-") else units), decimals


def to_wire(text: str) -> str:
    """Any plain decimal string (sign allowed) in the wire style: "30135.0" -> "30135"."""
    return wire_str(*_units(text))


def to_display(text: str) -> str:
    """Any plain decimal string (sign allowed) in the display style: "30135" -> "30135.0"."""
    return display_str(*_units(text))
