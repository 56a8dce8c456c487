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

Parsing accepts the venue's plain decimal strings only: ASCII digits with an optional
fraction (``"123"``, ``"0.5"``) and, where a value may be negative (a position, a PnL), a
leading ``-``. Everything else that Python's ``float`` or ``Decimal`` would take is refused:
``+``, exponents, spaces, underscores (``"1_000"``), non-ASCII digits (``"١٢"``), leading or
trailing points, NaN and infinities. Exponents are refused because the venue never prints one:
none of the 405 distinct numbers in the recorded responses and frames
(``tests/fixtures/hyperliquid``) has one, and the display style above cannot produce one.

* :func:`parse_float` (the adapter's codec, on every number of every message) turns such a
  string, signed, into a finite float; ``TypeError`` for a non-string, ``ValueError`` for any
  other string. Checking the grammar costs about three times ``float()`` itself; since book
  frames repeat most of their numbers, strings already checked are remembered (a bounded memo,
  emptied when full), which leaves the hot path no slower than a bare ``float()``.
* :func:`parse_decimal`, :func:`px_ticks`, :func:`sz_lots` and :func:`sz_lots_exact` (the
  simulator, on the prices and sizes of orders; the venue refuses a size finer than its lot,
  ``sz_lots_exact``) take unsigned strings of at most :data:`MAX_TEXT` characters, far longer
  than any price or size, and compute ticks and lots exactly, in integers: no 28-digit decimal
  context rounds a long number, and nothing raises for a well-typed input; None means refused.

A float is rounded as its shortest decimal form reads (``repr``: ``0.07`` is 0.07, not the
binary 0.0700000000000000066...), never by its binary expansion, which can move a valid price
by a tick. On the hot path (every price and size put on the wire) :func:`float_ticks` and
:func:`float_lots` do it in integers (:func:`float_units`, ``mm.model.float_units``), result for
result as :func:`round_ticks` and :func:`round_lots` do for :func:`exact_units`' Decimal (the
property tests hold them to it for every szDecimals, both directions).
"""

from __future__ import annotations

import re
from decimal import ROUND_CEILING, ROUND_FLOOR, ROUND_HALF_EVEN, Decimal
from typing import Any, Final

from mm.model import float_units

__all__ = [
    "MAX_PERP_DECIMALS",
    "MAX_SIG_FIGS",
    "MAX_SPOT_DECIMALS",
    "MAX_TEXT",
    "display_str",
    "exact_units",
    "float_lots",
    "float_ticks",
    "float_units",
    "format_fixed",
    "is_valid_px",
    "is_valid_ticks",
    "parse_decimal",
    "parse_float",
    "px_decimals",
    "px_ticks",
    "round_lots",
    "round_ticks",
    "sz_lots",
    "sz_lots_exact",
    "to_display",
    "to_wire",
    "wire_str",
]

MAX_PERP_DECIMALS: Final = 6
MAX_SPOT_DECIMALS: Final = 8
MAX_SIG_FIGS: Final = 5

MAX_TEXT: Final = 64
"""The longest unsigned decimal string :func:`parse_decimal` and friends accept."""

# The venue's numbers: ASCII digits (``[0-9]``, never ``\d``, which takes any script's digits),
# an optional fraction, and a leading minus where signed.
_SIGNED: Final = re.compile(r"-?[0-9]+(?:\.[0-9]+)?").fullmatch
_UNSIGNED: Final = re.compile(r"[0-9]+(?:\.[0-9]+)?").fullmatch
# parse_float's memo: strings already checked, and their floats. Bounded in entries and in the
# length of a string kept, so a stream of odd numbers costs a clear now and then, nothing more.
_MEMO: dict[str, float] = {}
_MEMO_ENTRIES: Final = 4096
_MEMO_TEXT: Final = 32


def px_decimals(sz_decimals: int, *, spot: bool = False) -> int:
    """The most decimals a price may have: ``6 - szDecimals`` (``8 - szDecimals`` on spot)."""
    decimals = (MAX_SPOT_DECIMALS if spot else MAX_PERP_DECIMALS) - sz_decimals
    if sz_decimals < 0 or decimals < 0:
        raise ValueError(f"szDecimals out of range: {sz_decimals}")
    return decimals


# --- parsing -------------------------------------------------------------------------------------


def parse_float(text: Any) -> float:
    """A decimal string of the venue, sign allowed, as a finite float.

    Raises ``TypeError`` when ``text`` is not a string and ``ValueError`` when it is not a plain
    decimal string (see the module docstring) or is too large for a float.
    """
    try:
        number = _MEMO.get(text)
    except TypeError:  # unhashable: not a string either
        number = None
    if number is not None:
        return number
    if type(text) is not str:
        raise TypeError(f"expected a decimal string, got {type(text).__name__}")
    if _SIGNED(text) is None:
        raise ValueError(f"not a plain decimal string: {_excerpt(text)}")
    number = float(text)
    if number - number != 0.0:  # infinite: more digits than a float holds
        raise ValueError(f"not a finite number: {_excerpt(text)}")
    if len(text) <= _MEMO_TEXT:
        if len(_MEMO) >= _MEMO_ENTRIES:
            _MEMO.clear()
        _MEMO[text] = number
    return number


def _excerpt(text: str) -> str:
    """``text`` quoted for an error message, cut short: input never makes a message long."""
    return repr(text) if len(text) <= 40 else repr(text[:40]) + f"... ({len(text)} characters)"


def _plain(text: object) -> tuple[str, str] | None:
    """An unsigned plain decimal string of at most MAX_TEXT characters as (whole, fraction)."""
    if type(text) is not str or len(text) > MAX_TEXT or _UNSIGNED(text) is None:
        return None
    whole, _, fraction = text.partition(".")
    return whole, fraction


def _scaled(text: object, decimals: int) -> tuple[int, str] | None:
    """``text`` in units of ``10**-decimals``, truncated, and the fraction digits cut off."""
    if decimals < 0:
        raise ValueError(f"decimals out of range: {decimals}")
    parts = _plain(text)
    if parts is None:
        return None
    whole, fraction = parts
    kept, cut = fraction[:decimals], fraction[decimals:]
    return int(whole + kept.ljust(decimals, "0")), cut


def parse_decimal(text: str) -> Decimal | None:
    """An unsigned plain decimal string (at most MAX_TEXT characters) as a Decimal; None for
    anything else (signs, exponents, spaces, ...)."""
    return None if _plain(text) is None else Decimal(text)


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
    scaled = _scaled(text, px_decimals)
    if scaled is None:
        return None
    ticks, cut = scaled
    if cut.strip("0"):
        return None  # more decimals than the asset allows
    return ticks if is_valid_ticks(ticks, px_decimals) else None


def is_valid_px(text: str, sz_decimals: int, *, spot: bool = False) -> bool:
    """Whether the venue accepts ``text`` as a price for an asset with ``sz_decimals``."""
    return px_ticks(text, px_decimals(sz_decimals, spot=spot)) is not None


def round_lots(value: Decimal, sz_decimals: int) -> int:
    """``value`` in lots of ``10**-sz_decimals``, rounded to nearest (ties to even).

    Exact for values of up to 28 significant digits (every float's shortest form, see
    :func:`exact_units`), however large or small; ``ValueError`` for NaN, an infinity or
    szDecimals out of range (0 to MAX_SPOT_DECIMALS).
    """
    if not value.is_finite():
        raise ValueError(f"not a finite number: {value}")
    if not 0 <= sz_decimals <= MAX_SPOT_DECIMALS:
        raise ValueError(f"szDecimals out of range: {sz_decimals}")
    return int(value.scaleb(sz_decimals).to_integral_value(rounding=ROUND_HALF_EVEN))


def sz_lots(text: str, sz_decimals: int) -> int | None:
    """A size string in lots, rounded to szDecimals (to nearest, ties to even); None when it is
    not an unsigned plain decimal string."""
    scaled = _scaled(text, sz_decimals)
    if scaled is None:
        return None
    lots, cut = scaled
    cut = cut.rstrip("0")
    if cut and (cut > "5" or (cut == "5" and lots % 2 == 1)):
        lots += 1  # above half a lot, or exactly half and odd
    return lots


def sz_lots_exact(text: str, sz_decimals: int) -> int | None:
    """A size string in lots when it is a whole number of lots (``10**-szDecimals``); None when
    it has a non-zero digit past ``sz_decimals`` (the venue's "Order has invalid size.") or is
    not an unsigned plain decimal string. Trailing zeros are fine (``"0.0010"``)."""
    scaled = _scaled(text, sz_decimals)
    if scaled is None:
        return None
    lots, cut = scaled
    return None if cut.strip("0") else lots


# --- rounding ------------------------------------------------------------------------------------


def exact_units(value: float, decimals: int) -> Decimal:
    """A float in units of ``10**-decimals``, exactly as its shortest decimal form reads.

    ``price * 10**d`` in floats can land just past an integer (``0.07 * 100`` is
    ``7.000000000000001``) and move a valid price by a tick; the shortest repr does not.
    """
    return Decimal(repr(value)).scaleb(decimals)


def float_ticks(value: float, px_decimals: int, *, up: bool) -> int:
    """:func:`round_ticks` of ``value`` (a float, as its shortest form reads), in integers."""
    whole, exact = float_units(value, px_decimals)
    return snap_ticks(whole if exact or not up else whole + 1, px_decimals, up=up)


def float_lots(value: float, sz_decimals: int) -> int:
    """:func:`round_lots` of ``value`` (a float, as its shortest form reads), in integers:
    to the nearest lot, ties to even. Same errors."""
    if not 0 <= sz_decimals <= MAX_SPOT_DECIMALS:
        raise ValueError(f"szDecimals out of range: {sz_decimals}")
    tenths, exact = float_units(value, sz_decimals + 1)
    lots, tenth = divmod(tenths, 10)
    if tenth > 5 or (tenth == 5 and (not exact or lots & 1)):
        return lots + 1  # past half a lot, or exactly half and odd
    return lots


def round_ticks(exact: Decimal, px_decimals: int, *, up: bool) -> int:
    """The nearest valid price, in ticks, at or beyond ``exact`` ticks in one direction.

    ``up`` rounds towards higher prices (a passive sell), otherwise towards lower prices (a
    passive buy). Rounding down below one tick gives 0, which is not a valid price: callers
    decide what to do with it.
    """
    candidate = int(exact.to_integral_value(rounding=ROUND_CEILING if up else ROUND_FLOOR))
    return snap_ticks(candidate, px_decimals, up=up)


def snap_ticks(candidate: int, px_decimals: int, *, up: bool) -> int:
    """The nearest valid price, in ticks, at or beyond a whole number of ticks in one direction
    (:func:`round_ticks` once its exact value is a whole number; 0 below one tick, going down)."""
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
    negative = isinstance(text, str) and text.startswith("-")
    parts = _plain(text[1:] if negative else text)
    if parts is None:
        shown = _excerpt(text) if isinstance(text, str) else type(text).__name__
        raise ValueError(f"not a plain decimal number: {shown}")
    whole, fraction = parts
    fraction = fraction.rstrip("0")
    units = int(whole + fraction)
    return (-units if negative else units), len(fraction)


def to_wire(text: str) -> str:
    """Any plain decimal string (sign allowed) in the wire style: "30135.0" -> "30135"."""
    return wire_str(*_units(text))


def to_display(text: str) -> str:
    """Any plain decimal string (sign allowed) in the display style: "30135" -> "30135.0"."""
    return display_str(*_units(text))
