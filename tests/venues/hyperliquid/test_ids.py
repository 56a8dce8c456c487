"""Hyperliquid's order and trade ids as mm's qualified ids: built and read back only here, and
the form journals written before ids were qualified are read in."""

from __future__ import annotations

import pytest

from mm.model import OrderId, TradeId, journaled_order_id, journaled_trade_id
from mm.venues.hyperliquid.ids import order_id, trade_id, venue_oid, venue_tid


def test_ids_are_qualified_by_the_venue_and_read_back() -> None:
    assert order_id(141682155423) == "hyperliquid:141682155423"
    assert venue_oid(order_id(141682155423)) == 141682155423
    assert trade_id(745210434703679) == "hyperliquid:745210434703679"
    assert venue_tid(trade_id(745210434703679)) == 745210434703679


@pytest.mark.parametrize(
    "other", ["kucoin:5c35c02703aa673ceec2a168", "hyperliquid:", "hyperliquid:-1", "12", "x:1"]
)
def test_an_id_that_is_not_hyperliquids_is_refused(other: str) -> None:
    with pytest.raises(ValueError, match="not a hyperliquid order id"):
        venue_oid(OrderId(other))
    with pytest.raises(ValueError, match="not a hyperliquid trade id"):
        venue_tid(TradeId(other))


def test_a_journals_bare_integers_are_hyperliquids_ids() -> None:
    """Journals written before ids were qualified hold Hyperliquid's integers (the only venue
    then): the journal's readers take them as this package would have qualified them."""
    assert journaled_order_id(55030848197) == order_id(55030848197)
    assert journaled_trade_id(404237815023429) == trade_id(404237815023429)
    assert journaled_order_id(order_id(3)) == order_id(3)  # written qualified: as it is
    assert (
        journaled_order_id("kucoin:5c35c02703aa673ceec2a168") == "kucoin:5c35c02703aa673ceec2a168"
    )
    for bad in (True, 1.5, None, "12", ""):
        with pytest.raises(ValueError, match="not an order id"):
            journaled_order_id(bad)  # type: ignore[arg-type]
