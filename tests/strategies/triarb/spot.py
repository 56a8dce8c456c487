"""A KuCoin-like spot instrument for the triarb tests, from its symbol and the venue's strings."""

from __future__ import annotations

from decimal import Decimal

from mm.model import Instrument


def instrument(
    symbol: str,
    price_increment: str = "0.01",
    size_increment: str = "0.0001",
    min_size: str = "0",
    min_notional: float = 0.0,
) -> Instrument:
    """``BASE-QUOTE`` on the given grid and minimums."""
    base, quote = symbol.split("-")
    return Instrument(
        "kucoin",
        symbol,
        base,
        quote,
        Decimal(price_increment),
        Decimal(size_increment),
        Decimal(min_size),
        min_notional,
    )
