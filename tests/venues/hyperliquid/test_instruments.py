"""Hyperliquid's instruments: built from its metadata, they round exactly as the venue's own
number rules (``mm.venues.hyperliquid.numbers``) say, and the simulator takes what they make."""

from __future__ import annotations

from decimal import Decimal

import pytest
import trio
from hypothesis import given
from hypothesis import strategies as st

from mm.model import PlaceOrder, Rejected, Resting, Side, Tif
from mm.venues.base import InstrumentProvider, UnknownInstrument
from mm.venues.hyperliquid import numbers
from mm.venues.hyperliquid.client import HyperliquidClient
from mm.venues.hyperliquid.instruments import AssetMeta, instrument_of
from mm.venues.hyperliquid.wire import format_px, format_sz
from mm.venues.sim.universe import UNIVERSE
from tests.venues.hyperliquid.harness import passive, setup

sz_decimals_st = st.integers(min_value=0, max_value=numbers.MAX_PERP_DECIMALS)
prices = st.floats(min_value=1e-6, max_value=1e8, allow_nan=False, allow_infinity=False)


def provider(client: HyperliquidClient) -> InstrumentProvider:
    return client  # mypy checks that the client is the port's instrument provider


@given(sz_decimals=sz_decimals_st, px=prices, up=st.booleans())
def test_prices_round_as_the_venues_rules_say(sz_decimals: int, px: float, up: bool) -> None:
    instrument = instrument_of(AssetMeta(0, "COIN", sz_decimals, 50))
    px_decimals = numbers.px_decimals(sz_decimals)
    ticks = instrument.price_ticks(px, up=up)
    expected = numbers.round_ticks(numbers.exact_units(px, px_decimals), px_decimals, up=up)
    assert ticks == expected
    rounded = instrument.round_price(px, up=up)
    assert (rounded >= px) if up else (rounded <= px)  # never crosses
    if ticks > 0:
        text = numbers.wire_str(ticks, px_decimals)
        assert numbers.is_valid_px(text, sz_decimals)  # on the venue's grid
        assert float(text) == rounded
        # What the adapter sends for it is that very price (already valid: unchanged).
        assert format_px(rounded, sz_decimals, Side.SELL if up else Side.BUY) == text
    assert instrument.is_valid_ticks(ticks) == (
        ticks > 0 and numbers.is_valid_ticks(ticks, px_decimals)
    )


@given(sz_decimals=sz_decimals_st, ticks=st.integers(min_value=-5, max_value=10**13))
def test_the_grid_is_the_venues(sz_decimals: int, ticks: int) -> None:
    instrument = instrument_of(AssetMeta(0, "COIN", sz_decimals, 50))
    px_decimals = numbers.px_decimals(sz_decimals)
    assert instrument.is_valid_ticks(ticks) == numbers.is_valid_ticks(ticks, px_decimals)
    for up in (True, False):
        assert instrument.round_ticks(ticks, up=up) == numbers.round_ticks(
            Decimal(ticks), px_decimals, up=up
        )


@given(
    sz_decimals=sz_decimals_st,
    sz=st.floats(min_value=0.0, max_value=1e7, allow_nan=False),
    up=st.sampled_from([None, True, False]),
)
def test_sizes_land_on_the_venues_lots(sz_decimals: int, sz: float, up: bool | None) -> None:
    instrument = instrument_of(AssetMeta(0, "COIN", sz_decimals, 50))
    lots = instrument.size_lots(sz, up=up)
    if up is None:
        assert lots == numbers.round_lots(numbers.exact_units(sz, 0), sz_decimals)
    text = numbers.wire_str(lots, sz_decimals)
    assert numbers.sz_lots_exact(text, sz_decimals) == lots  # no digit past the lot
    assert float(text) == instrument.lots_size(lots)
    if lots > 0:  # what the adapter sends for it is that very size
        assert format_sz(instrument.lots_size(lots), sz_decimals) == text


def test_an_instrument_from_the_metadata() -> None:
    btc = instrument_of(AssetMeta(0, "BTC", 5, 40))
    assert (btc.venue, btc.symbol, btc.base, btc.quote) == ("hyperliquid", "BTC", "BTC", "USDC")
    assert btc.price_increment == Decimal("0.1")  # 6 - szDecimals decimals
    assert btc.size_increment == btc.min_size == Decimal("0.00001")
    assert btc.min_notional == 10.0
    assert btc.price_sig_figs == 5


async def test_the_client_provides_the_venues_instruments() -> None:
    with trio.fail_after(15):
        async with setup() as (venue, client):
            listed = await provider(client).instruments()
            assert [i.symbol for i in listed] == ["BTC", "ETH"]
            for instrument in listed:
                sz_decimals = UNIVERSE[instrument.symbol].sz_decimals
                assert instrument == instrument_of(AssetMeta(0, instrument.symbol, sz_decimals, 0))
                assert client.instrument(instrument.symbol) == instrument
            with pytest.raises(UnknownInstrument):
                client.instrument("DOGE")
            btc = client.instrument("BTC")
            # An order priced and sized by the instrument is taken; its minimum value is the
            # venue's (one lot less and the venue refuses it, in its own words).
            px = btc.round_price(passive(venue, Side.BUY, away=0.1) * 1.0000123, up=False)
            enough = btc.round_size(btc.min_notional / px, up=True)
            short = btc.lots_size(btc.size_lots(enough) - 1)
            taken, refused = await client.place(
                [
                    PlaceOrder("BTC", Side.BUY, px, enough, Tif.GTC, client.new_client_id()),
                    PlaceOrder("BTC", Side.BUY, px, short, Tif.GTC, client.new_client_id()),
                ]
            )
            assert isinstance(taken, Resting)
            assert isinstance(refused, Rejected)
            assert refused.reason.startswith("Order must have minimum value of $10.")
