"""Tradable assets of the simulator and the venue's number rules, on exact integers.

Prices are held as integer ticks of ``10**-px_decimals`` (``px_decimals = 6 - szDecimals`` for
perpetuals: the finest price the venue accepts) and sizes as integer lots of
``10**-szDecimals``, so matching and accounting never accumulate float error. Parsing applies
the venue's rules: a price has at most 5 significant figures (integers always allowed) and at
most ``px_decimals`` decimals; a size is rounded to ``szDecimals``. The rules themselves live in
:mod:`mm.venues.hyperliquid.numbers`, shared with the adapter that must obey them.
"""

from __future__ import annotations

import math
from collections.abc import Iterable

import attrs

from mm.venues.hyperliquid import numbers
from mm.venues.hyperliquid.numbers import MAX_PERP_DECIMALS, MAX_SIG_FIGS, format_fixed

# round_px's float path: a price's units (ticks, as a float) at least this far from a whole tick,
# relative to their size, round as the exact decimal does (the float is a few ulps, 1e-16
# relative, from it); at most 2**52, where a float still has a fraction.
FLOAT_MARGIN = 1e-9
SAFE_FLOAT_UNITS = 2**52

__all__ = ["MAX_PERP_DECIMALS", "MAX_SIG_FIGS", "AssetSpec", "format_fixed"]


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
        return numbers.px_ticks(text, self.px_decimals)

    def valid_ticks(self, ticks: int) -> bool:
        """Whether the venue accepts a price of ``ticks`` (what parse_px checks of a string)."""
        return numbers.is_valid_ticks(ticks, self.px_decimals)

    def parse_sz(self, text: str) -> int | None:
        """Size lots; None when not a non-negative number or not a whole number of lots (more
        decimals than szDecimals allows): the venue refuses such a size, it never rounds it."""
        return numbers.sz_lots_exact(text, self.sz_decimals)

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
        """The nearest valid price ticks at or beyond ``price`` in the given direction.

        Never below one tick: a price that rounds down to nothing gives the smallest price.
        """
        px_decimals = MAX_PERP_DECIMALS - self.sz_decimals
        return round_px(price, px_decimals, 10.0**px_decimals, up=up)


def round_px(price: float, px_decimals: int, scale: float, *, up: bool) -> int:
    """:meth:`AssetSpec.round_px` for a spec of ``px_decimals`` (``scale`` is
    ``10.0**px_decimals``), for a caller that rounds many prices of one asset."""
    units = price * scale
    if 1.0 <= units < SAFE_FLOAT_UNITS:
        below = math.floor(units)
        if min(units - below, below + 1 - units) > FLOAT_MARGIN * units:
            # Far from a whole tick (the common case): the float's floor and ceiling are its
            # exact decimal form's (the two differ by a few ulps), in integers alone; at
            # least one tick, as ``below`` is.
            return numbers.snap_ticks(below + 1 if up else below, px_decimals, up=up)
    exact = numbers.exact_units(price, px_decimals)
    return max(numbers.round_ticks(exact, px_decimals, up=up), 1)


def round_pxs(prices: Iterable[float], px_decimals: int, *, up: bool) -> list[int]:
    """:func:`round_px` of each of ``prices`` (a ladder's, one side): the same ticks, with the
    steps of ``numbers.snap_ticks`` in line and its tick step kept while the candidates keep
    their count of digits (it changes only across a power of ten)."""
    scale = 10.0**px_decimals
    floor = math.floor
    ticks: list[int] = []
    low = high = step = 0  # candidates in [low, high) snap to multiples of step
    for price in prices:
        units = price * scale
        if 1.0 <= units < SAFE_FLOAT_UNITS:
            below = floor(units)
            if min(units - below, below + 1 - units) > FLOAT_MARGIN * units:
                candidate = below + 1 if up else below  # at least one tick
                if not low <= candidate < high:
                    digits = len(str(candidate))
                    low, high = 10 ** (digits - 1), 10**digits
                    step = 10 ** min(max(digits - MAX_SIG_FIGS, 0), px_decimals)
                remainder = candidate % step
                if remainder:
                    candidate += (step if up else 0) - remainder
                ticks.append(candidate)
                continue
        ticks.append(round_px(price, px_decimals, scale, up=up))
    return ticks
