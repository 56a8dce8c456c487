"""Hyperliquid's instruments, from its metadata (``meta``): the port's ``Instrument`` per asset.

A perpetual of ``szDecimals`` = d trades in lots of ``10**-d`` of its coin against USDC, at
prices of at most ``6 - d`` decimals (``mm.venues.hyperliquid.numbers.px_decimals``) and 5
significant figures unless whole (``numbers.MAX_SIG_FIGS``): that is the instrument's tick,
``10**-(6 - d)``, and its ``price_sig_figs``. Every order is worth at least $10 (the venue's
"Order must have minimum value of $10."), reduce-only ones aside. Pure: no I/O.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Final

import attrs

from mm.model import Instrument
from mm.venues.hyperliquid import numbers

VENUE: Final = "hyperliquid"
QUOTE: Final = "USDC"  # perpetuals are margined and settled in USDC
MIN_ORDER_VALUE: Final = 10.0  # USDC


@attrs.frozen(slots=True)
class AssetMeta:
    """One perpetual as the venue's ``meta`` lists it: its index (the ``a`` of an order), name,
    size decimals and maximum leverage. Hyperliquid's own record; the rest of mm sees the
    ``Instrument`` built from it."""

    index: int
    coin: str
    sz_decimals: int
    max_leverage: int


def instrument_of(meta: AssetMeta) -> Instrument:
    """The instrument of a perpetual as the venue's metadata describes it."""
    lot = Decimal(1).scaleb(-meta.sz_decimals)
    return Instrument(
        venue=VENUE,
        symbol=meta.coin,
        base=meta.coin,
        quote=QUOTE,
        price_increment=Decimal(1).scaleb(-numbers.px_decimals(meta.sz_decimals)),
        size_increment=lot,
        min_size=lot,
        min_notional=MIN_ORDER_VALUE,
        price_sig_figs=numbers.MAX_SIG_FIGS,
    )
