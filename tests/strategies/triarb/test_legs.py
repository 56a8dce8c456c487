"""A triangle's legs chain from its primary back to it."""

from __future__ import annotations

import pytest

from mm.model import Side
from mm.strategies.triarb.legs import Leg, Triangle

BUY_BTC = Leg("BTC-USDT", Side.BUY, "USDT", "BTC")
BUY_ETH = Leg("ETH-BTC", Side.BUY, "BTC", "ETH")
SELL_ETH = Leg("ETH-USDT", Side.SELL, "ETH", "USDT")


def test_a_triangle_chains_its_legs_from_its_primary_back_to_it() -> None:
    triangle = Triangle("USDT", (BUY_BTC, BUY_ETH, SELL_ETH))
    assert triangle.symbols == ("BTC-USDT", "ETH-BTC", "ETH-USDT")
    assert triangle.currencies == ("USDT", "BTC", "ETH")
    assert triangle.name == "USDT>BTC>ETH>USDT"
    assert str(BUY_ETH) == "buy ETH-BTC BTC->ETH"


def test_legs_that_do_not_chain_or_end_elsewhere_are_refused() -> None:
    with pytest.raises(ValueError, match="starts and ends"):
        Triangle("BTC", (BUY_BTC, BUY_ETH, SELL_ETH))
    sell_sol = Leg("SOL-USDT", Side.SELL, "SOL", "USDT")
    with pytest.raises(ValueError, match="do not chain"):  # BTC held, then ETH spent
        Triangle("USDT", (BUY_BTC, SELL_ETH, sell_sol))
    twice = Leg("ETH-BTC", Side.SELL, "ETH", "USDT")  # (chains, on a pair traded already)
    with pytest.raises(ValueError, match="three pairs"):
        Triangle("USDT", (BUY_BTC, BUY_ETH, twice))
    with pytest.raises(ValueError, match="another"):
        Leg("BTC-USDT", Side.BUY, "USDT", "USDT")
