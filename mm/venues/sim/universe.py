"""The perpetuals the simulator can list: names, size decimals, leverage, start prices.

Pure data, no I/O; an unknown coin is a ``KeyError`` here and a config error in ``[sim] coins``,
which chooses the listed coins (their asset indexes are their positions in that list).

The universe holds ``UNIVERSE_SIZE`` (100) perpetuals, in three groups:

- BTC, ETH, SOL and DOGE, the simulator's first four, with the values it has always had
  (tests and recorded runs depend on them).
- The other 24 perpetuals of Hyperliquid's mainnet ``meta`` recorded in
  ``tests/fixtures/hyperliquid/info_responses.json``: their real name, ``szDecimals`` and
  ``maxLeverage``, and as start price the mainnet mid of the same recording (``allMids``)
  rounded to 5 significant figures (a price the venue accepts).
- Generated perpetuals ``SYN001``... up to the size, for runs that need many symbols (scaling
  benchmarks, soaks): deterministic, the same on every machine. The n-th one's start price is
  ``10 ** (-2 + 6 * frac(n * phi))`` (a low-discrepancy spread from 0.01 to 10,000 over the
  golden ratio's fractional parts) rounded to 5 significant figures; its ``szDecimals`` is
  ``round(log10(price))`` clamped to 0..5 (the rule that gives the first four theirs: a lot is
  worth between about $0.3 and $3), and its ``maxLeverage`` is 20 above a price of 100, 10 above
  1 and 5 below, as the venue lists large coins with higher caps.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import attrs

from mm.venues.sim.assets import AssetSpec

UNIVERSE_SIZE = 100
GENERATED_PREFIX = "SYN"
_PHI = (1 + math.sqrt(5)) / 2


@attrs.frozen
class Listing:
    sz_decimals: int
    max_leverage: int
    start_px: float


# The simulator's original four: unchanged.
_FIRST: dict[str, Listing] = {
    "BTC": Listing(5, 40, 95_000.0),
    "ETH": Listing(4, 25, 3_500.0),
    "SOL": Listing(2, 20, 180.0),
    "DOGE": Listing(0, 10, 0.25),
}

# Hyperliquid mainnet's meta (name, szDecimals, maxLeverage) and allMids, as recorded in
# tests/fixtures/hyperliquid/info_responses.json, in the meta's order.
_RECORDED: dict[str, Listing] = {
    "ATOM": Listing(2, 50, 9.3384),
    "MATIC": Listing(1, 50, 0.77389),
    "DYDX": Listing(1, 50, 2.1131),
    "AVAX": Listing(2, 50, 14.171),
    "BNB": Listing(3, 50, 243.14),
    "APE": Listing(1, 50, 1.9660),
    "OP": Listing(1, 50, 1.4552),
    "LTC": Listing(2, 50, 91.832),
    "ARB": Listing(1, 50, 1.2890),
    "INJ": Listing(1, 50, 9.3230),
    "SUI": Listing(1, 50, 0.69539),
    "kPEPE": Listing(0, 50, 0.0015650),
    "CRV": Listing(1, 50, 0.79852),
    "LDO": Listing(1, 50, 2.0457),
    "LINK": Listing(1, 50, 6.9123),
    "STX": Listing(1, 50, 0.62927),
    "RNDR": Listing(1, 50, 1.9458),
    "CFX": Listing(0, 50, 0.18654),
    "FTM": Listing(0, 50, 0.26268),
    "GMX": Listing(2, 50, 55.860),
    "SNX": Listing(1, 50, 2.6256),
    "XRP": Listing(0, 50, 0.73862),
    "BCH": Listing(3, 50, 240.53),
    "APT": Listing(2, 50, 7.7731),
}


def generated_listing(n: int) -> Listing:
    """The n-th generated perpetual (n >= 1): see the module's docstring for the rule."""
    fraction = (n * _PHI) % 1.0
    price = float(f"{10.0 ** (-2 + 6 * fraction):.5g}")
    sz_decimals = min(5, max(0, round(math.log10(price))))
    leverage = 20 if price > 100 else 10 if price > 1 else 5
    return Listing(sz_decimals, leverage, price)


def _universe() -> dict[str, Listing]:
    listed = {**_FIRST, **_RECORDED}
    generated = UNIVERSE_SIZE - len(listed)
    for n in range(1, generated + 1):
        listed[f"{GENERATED_PREFIX}{n:03d}"] = generated_listing(n)
    return listed


UNIVERSE: dict[str, Listing] = _universe()


def specs_for(coins: Sequence[str]) -> list[AssetSpec]:
    return [
        AssetSpec(index, coin, UNIVERSE[coin].sz_decimals, UNIVERSE[coin].max_leverage)
        for index, coin in enumerate(coins)
    ]
