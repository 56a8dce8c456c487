"""The simulator's universe: a hundred perpetuals whose listings the venue's rules accept."""

from __future__ import annotations

import json
import math

from hypothesis import given
from hypothesis import strategies as st

from mm.settings import check_section
from mm.venues.sim.config import SimConfig
from mm.venues.sim.universe import (
    GENERATED_PREFIX,
    UNIVERSE,
    UNIVERSE_SIZE,
    Listing,
    generated_listing,
    specs_for,
)
from tests.fixture_paths import HYPERLIQUID


def test_the_first_four_keep_their_listings() -> None:
    assert list(UNIVERSE)[:4] == ["BTC", "ETH", "SOL", "DOGE"]
    assert UNIVERSE["BTC"] == Listing(5, 40, 95_000.0)
    assert UNIVERSE["ETH"] == Listing(4, 25, 3_500.0)
    assert UNIVERSE["SOL"] == Listing(2, 20, 180.0)
    assert UNIVERSE["DOGE"] == Listing(0, 10, 0.25)


def test_it_lists_a_hundred_perpetuals() -> None:
    assert len(UNIVERSE) == UNIVERSE_SIZE >= 100
    assert [spec.index for spec in specs_for(list(UNIVERSE))] == list(range(UNIVERSE_SIZE))


def test_recorded_perpetuals_carry_mainnet_meta_and_mids() -> None:
    recorded = json.loads((HYPERLIQUID / "info_responses.json").read_text())["info"]
    mids = recorded["allMids"]["response"]
    for asset in recorded["meta"]["response"]["universe"]:
        name = asset["name"]
        if name in ("BTC", "ETH", "SOL", "DOGE"):
            continue
        listing = UNIVERSE[name]
        assert listing.sz_decimals == asset["szDecimals"], name
        assert listing.max_leverage == asset["maxLeverage"], name
        assert math.isclose(listing.start_px, float(mids[name]), rel_tol=1e-4), name


def test_every_start_price_is_one_the_venue_accepts() -> None:
    for spec in specs_for(list(UNIVERSE)):
        start = UNIVERSE[spec.name].start_px
        ticks = spec.parse_px(repr(start))
        assert ticks is not None, (spec.name, start)
        assert spec.px_float(ticks) == start


@given(st.integers(min_value=1, max_value=10_000))
def test_generated_listings_follow_the_documented_rule(n: int) -> None:
    listing = generated_listing(n)
    assert listing == generated_listing(n)  # deterministic
    assert 0.01 <= listing.start_px <= 10_000
    assert 0 <= listing.sz_decimals <= 5
    # A lot is worth a few dollars at most, and never nothing after the price's own rounding.
    assert listing.start_px * 10.0**-listing.sz_decimals < 4
    assert listing.max_leverage in (5, 10, 20)


def test_generated_names_fill_the_universe_in_order() -> None:
    generated = [name for name in UNIVERSE if name.startswith(GENERATED_PREFIX)]
    assert generated == [f"{GENERATED_PREFIX}{n:03d}" for n in range(1, len(generated) + 1)]
    assert all(UNIVERSE[name] == generated_listing(n + 1) for n, name in enumerate(generated))


def test_sim_coins_choose_among_the_hundred() -> None:
    assert check_section(SimConfig(coins=tuple(UNIVERSE)), "sim") == []
    problems = check_section(SimConfig(coins=("BTC", "SYN999")), "sim")
    assert len(problems) == 1
    assert "unknown coins ['SYN999']" in problems[0]
