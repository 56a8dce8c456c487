"""Tradable assets of the simulator and the venue's number rules, on exact integers.

Prices are held as integer ticks of ``10**-px_decimals`` (``px_decimals = 6 - szDecimals`` for
perpetuals: the finest price the venue accepts) and sizes as integer lots of
``10**-szDecimals``, so matching and accounting never accumulate float error. Parsing applies
the venue's rules: a price has at most 5 significant figures (integers always allowed) and at
most ``px_decimals`` decimals; a size is rounded to ``szDecimals``.
"""

from __future__ import annotations

import re
from decimal import ROUND_CEILING, ROUND_FLOOR, ROUND_HALF_EVEN, Decimal, InvalidOperation

import attrs

MAX_PERP_DECIMALS = 6
MAX_SIG_FIGS = 5


def format_fixed(value: int, decimals: int) -> str:
    """An integer count of ``10**-decimals`` units as the venue prints it: "79146.0", "0.00022"."""
    sign = "-" if value < 0 else ""
    digits = str(abs(value))
    if decimals == 0:
        return f"{sign}{digits}.0"
    digits = digits.rjust(decimals + 1, "0")
    whole, fraction = digits[:-decimals], digits[-decimals:].rstrip("0")
    return f"{sign}{whole}.{fraction or '0'}"


NUMBER = re.compile(r"^[0-9]+(\.[0-9]+)?$")


def _decimal(text: str) -> Decimal | None:
    """A plain decimal string ("123", "0.5"); no signs, exponents, spaces or underscores."""
    if not isinstance(text, str) or NUMBER.match(text) is None:
        return None
    try:
        value = Decimal(text)
    except (InvalidOperation, TypeError, ValueError):
        return None
    return value if value.is_finite() else None


@attrs.frozen
class AssetSpec:
    """One perpetual: its index in ``meta``, name, size decimals and leverage cap."""

    index: int
    name: str
    sz_decimals: int
    max_leverage: int = 50

    @property
    def px_decimals(self) -> int:
        return MAX_PERP_DECIMALS - self.sz_decimals

    def parse_px(self, text: str) -> int | None:
        """Price ticks, or None when the price breaks the venue's tick rules."""
        value = _decimal(text)
        if value is None or value <= 0:
            return None
        is_integer = value == value.to_integral_value()
        if not is_integer:
            if value.normalize().as_tuple().exponent < -self.px_decimals:  # type: ignore[operator]
                return None
            if len(value.normalize().as_tuple().digits) > MAX_SIG_FIGS:
                return None
        return int(value.scaleb(self.px_decimals))

    def parse_sz(self, text: str) -> int | None:
        """Size lots, rounded to szDecimals; None when not a non-negative number."""
        value = _decimal(text)
        if value is None or value < 0:
            return None
        return int(value.scaleb(self.sz_decimals).quantize(Decimal(1), rounding=ROUND_HALF_EVEN))

    def px_str(self, ticks: int) -> str:
        return format_fixed(ticks, self.px_decimals)

    def sz_str(self, lots: int) -> str:
        return format_fixed(lots, self.sz_decimals)

    def px_float(self, ticks: int) -> float:
        return ticks / 10.0**self.px_decimals

    def sz_float(self, lots: int) -> float:
        return lots / 10.0**self.sz_decimals

    def notional(self, ticks: int, lots: int) -> float:
        """Price times size in USDC."""
        return ticks * lots / 10.0 ** (self.px_decimals + self.sz_decimals)

    def round_px(self, price: float, *, up: bool) -> int:
        """The nearest valid price ticks at or beyond ``price`` in the given direction."""
        # Scale the float's shortest decimal form exactly: ``price * 10**d`` in floats can land
        # just past an integer (0.07 * 100 = 7.000000000000001) and move a valid price a tick.
        ticks = Decimal(repr(price)).scaleb(self.px_decimals)
        rounding = ROUND_CEILING if up else ROUND_FLOOR
        candidate = max(int(ticks.to_integral_value(rounding=rounding)), 1)
        # Enforce 5 significant figures on the integer tick count's price; integer prices are
        # always valid, so the step never exceeds one whole unit (10**px_decimals ticks).
        while self.parse_px(self.px_str(candidate)) is None:
            magnitude = len(str(candidate)) - MAX_SIG_FIGS
            step = 10 ** min(max(magnitude, 0), self.px_decimals)
            # Drop digits below the fifth significant figure, then move one step if needed.
            floor = candidate - candidate % step
            candidate = floor + step if up and floor != candidate else floor
        return candidate
