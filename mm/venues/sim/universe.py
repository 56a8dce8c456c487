"""The perpetuals the simulator can list: names, size decimals, leverage, start prices."""

from __future__ import annotations

from collections.abc import Sequence

import attrs

from mm.venues.sim.assets import AssetSpec


@attrs.frozen
class Listing:
    sz_decimals: int
    max_leverage: int
    start_px: float


UNIVERSE: dict[str, Listing] = {
    "BTC": Listing(5, 40, 95_000.0),
    "ETH": Listing(4, 25, 3_500.0),
    "SOL": Listing(2, 20, 180.0),
    "DOGE": Listing(0, 10, 0.25),
}


def specs_for(coins: Sequence[str]) -> list[AssetSpec]:
    return [
        AssetSpec(index, coin, UNIVERSE[coin].sz_decimals, UNIVERSE[coin].max_leverage)
        for index, coin in enumerate(coins)
    ]
