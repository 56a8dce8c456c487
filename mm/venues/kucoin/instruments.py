"""KuCoin's symbols and fee rates, pure: ``/api/v2/symbols`` as mm's ``Instrument``s with the
venue's own rules beside them, and the account's rates from ``/api/v1/trade-fees``.

A symbol's grid (KuCoin's specification of ``/api/v2/symbols``): prices on ``priceIncrement``,
sizes on ``baseIncrement`` and at least ``baseMinSize``, a market order's funds on
``quoteIncrement`` and at least ``quoteMinSize``, and every order at least ``minFunds`` of
notional. A symbol with ``enableTrading`` false is listed but refuses orders: it is read, and
``tradable`` says so.

Fees: ``/api/v1/trade-fees`` gives the account's actual maker and taker rates of each symbol;
the symbol's ``makerFeeCoefficient`` / ``takerFeeCoefficient`` multiply them (0: no fee), and
the fee is charged in the symbol's ``feeCurrency`` (``fee_rate``).

Fails: ``CodecError`` naming the symbol and what is wrong; nothing is half-read.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import attrs

from mm.model import Instrument
from mm.venues.kucoin import numbers
from mm.venues.kucoin.codec import CodecError
from mm.venues.kucoin.ids import VENUE

__all__ = ["FeeRates", "SymbolSpec", "fee_rate", "parse_symbols", "parse_trade_fees"]


@attrs.frozen
class SymbolSpec:
    """One symbol: mm's instrument of it, and the rules of KuCoin's that it does not hold."""

    instrument: Instrument
    quote_increment: Decimal
    quote_min_size: Decimal
    fee_currency: str
    maker_coefficient: Decimal
    taker_coefficient: Decimal
    tradable: bool


@attrs.frozen
class FeeRates:
    """The account's rates for a symbol, before its coefficients."""

    maker: Decimal
    taker: Decimal


def _text(entry: dict[str, Any], key: str) -> str:
    value = entry[key]
    if type(value) is not str or not value:
        raise ValueError(f"{key}: expected a non-empty string, got {value!r}")
    return value


def _positive(entry: dict[str, Any], key: str) -> Decimal:
    value = numbers.parse(entry[key])
    if value <= 0:
        raise ValueError(f"{key}: must be positive, got {entry[key]!r}")
    return value


def _symbol(entry: Any) -> SymbolSpec:
    symbol = entry.get("symbol") if type(entry) is dict else None
    try:
        if type(entry) is not dict:
            raise TypeError(f"expected an object, got {type(entry).__name__}")
        tradable = entry["enableTrading"]
        if type(tradable) is not bool:
            raise ValueError(f"enableTrading: expected true or false, got {tradable!r}")
        instrument = Instrument(
            venue=VENUE,
            symbol=_text(entry, "symbol"),
            base=_text(entry, "baseCurrency"),
            quote=_text(entry, "quoteCurrency"),
            price_increment=_positive(entry, "priceIncrement"),
            size_increment=_positive(entry, "baseIncrement"),
            min_size=_positive(entry, "baseMinSize"),
            min_notional=float(numbers.parse(entry["minFunds"])),
        )
        return SymbolSpec(
            instrument,
            _positive(entry, "quoteIncrement"),
            _positive(entry, "quoteMinSize"),
            _text(entry, "feeCurrency"),
            numbers.parse(entry["makerFeeCoefficient"]),
            numbers.parse(entry["takerFeeCoefficient"]),
            tradable,
        )
    except (KeyError, TypeError, ValueError) as error:
        raise CodecError(f"malformed symbol {symbol!r}: {type(error).__name__}: {error}") from None


def parse_symbols(data: Any) -> list[SymbolSpec]:
    """The ``data`` of ``/api/v2/symbols``."""
    if type(data) is not list:
        raise CodecError(f"malformed symbols: expected a list, got {type(data).__name__}")
    return [_symbol(entry) for entry in data]


def parse_trade_fees(data: Any) -> dict[str, FeeRates]:
    """The ``data`` of ``/api/v1/trade-fees``, by symbol."""
    try:
        if type(data) is not list:
            raise TypeError(f"expected a list, got {type(data).__name__}")
        return {
            _text(entry, "symbol"): FeeRates(
                numbers.parse(entry["makerFeeRate"]), numbers.parse(entry["takerFeeRate"])
            )
            for entry in data
        }
    except (KeyError, TypeError, ValueError, AttributeError) as error:
        raise CodecError(f"malformed trade fees: {type(error).__name__}: {error}") from None


def fee_rate(spec: SymbolSpec, rates: FeeRates, *, taker: bool) -> float:
    """The rate a fill of the symbol pays, in its ``fee_currency``: the account's rate times
    the symbol's coefficient."""
    if taker:
        return float(rates.taker * spec.taker_coefficient)
    return float(rates.maker * spec.maker_coefficient)
