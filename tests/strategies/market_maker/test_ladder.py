"""Tests for the quote ladder: wire validity, passivity, non-crossing, sizes."""

from __future__ import annotations

import attrs
from hypothesis import given, settings
from hypothesis import strategies as st

from mm.model import Instrument, Side
from mm.strategies.market_maker.ladder import (
    DesiredOrder,
    LadderConfig,
    LimitTicks,
    build_ladder,
    level_size,
)
from mm.venues.hyperliquid import numbers
from mm.venues.hyperliquid.instruments import AssetMeta, instrument_of
from mm.venues.hyperliquid.wire import format_px, format_sz
from tests.strategies.market_maker.ladder_reference import reference_build_ladder


def perp(sz_decimals: int) -> Instrument:
    """A Hyperliquid perpetual's instrument, as its provider builds it from the metadata."""
    return instrument_of(AssetMeta(0, "COIN", sz_decimals, 50))


def _bids(orders: list[DesiredOrder]) -> list[DesiredOrder]:
    return [o for o in orders if o.side is Side.BUY]


def _asks(orders: list[DesiredOrder]) -> list[DesiredOrder]:
    return [o for o in orders if o.side is Side.SELL]


def test_basic_ladder_bps() -> None:
    config = LadderConfig(levels=3, spacing=10.0, base_size=0.01)
    orders = build_ladder(100_000.0, 100_010.0, perp(5), config)
    assert [o.px for o in _bids(orders)] == [100_000.0, 99_900.0, 99_800.0]
    assert [o.px for o in _asks(orders)] == [
        100_010.0,
        100_111.0,
        100_211.0,
    ]  # 100_110.01 rounds up
    assert all(o.sz == 0.01 for o in orders)
    assert [o.level for o in _bids(orders)] == [0, 1, 2]


def test_passive_rounding() -> None:
    config = LadderConfig(levels=1, base_size=1.0)
    orders = build_ladder(12.34567, 12.34561, perp(2), config)
    bid, ask = _bids(orders)[0], _asks(orders)[0]
    assert bid.px == 12.345  # 5 significant figures, rounded down
    assert ask.px == 12.346  # rounded up
    assert bid.px < ask.px


def test_ticks_spacing() -> None:
    config = LadderConfig(levels=3, spacing_mode="ticks", spacing=2.0, base_size=10.0)
    orders = build_ladder(1.2345, 1.2350, perp(2), config)
    assert [o.px for o in _bids(orders)] == [1.2345, 1.2343, 1.2341]
    assert [o.px for o in _asks(orders)] == [1.235, 1.2352, 1.2354]


def test_size_schedules() -> None:
    assert level_size(LadderConfig(base_size=1.0), 3) == 1.0
    linear = LadderConfig(base_size=1.0, size_schedule="linear", size_step=0.5)
    assert [level_size(linear, i) for i in range(3)] == [1.0, 1.5, 2.0]
    geometric = LadderConfig(base_size=1.0, size_schedule="geometric", size_ratio=2.0)
    assert [level_size(geometric, i) for i in range(3)] == [1.0, 2.0, 4.0]


def test_min_notional_drops_levels() -> None:
    config = LadderConfig(levels=3, base_size=0.1, size_schedule="linear", size_step=0.5)
    # 0.1 * 80 = 8 < 10 (dropped), 0.15 * 80 = 12 kept, 0.2 * 80 = 16 kept
    orders = build_ladder(80.0, 80.1, perp(2), config)
    assert [o.level for o in _bids(orders)] == [1, 2]


def test_size_rounds_to_zero_dropped() -> None:
    assert build_ladder(100.0, 101.0, perp(0), LadderConfig(base_size=0.4, min_notional=0.0)) == []


def test_crossed_tops_are_uncrossed() -> None:
    orders = build_ladder(101.0, 100.0, perp(2), LadderConfig(levels=2, base_size=1.0))
    assert max(o.px for o in _bids(orders)) < 100.0
    assert min(o.px for o in _asks(orders)) > 101.0


def test_market_best_respected() -> None:
    orders = build_ladder(
        100.0,
        100.5,
        perp(2),
        LadderConfig(levels=1, base_size=1.0),
        market_bid=100.2,
        market_ask=99.9,
    )
    assert _bids(orders)[0].px < 99.9
    assert _asks(orders)[0].px > 100.2


def test_sides_and_levels_override() -> None:
    config = LadderConfig(levels=5, base_size=1.0)
    orders = build_ladder(100.0, 100.1, perp(2), config, levels=2, sides=(Side.SELL,))
    assert [o.side for o in orders] == [Side.SELL, Side.SELL]
    assert build_ladder(100.0, 100.1, perp(2), config, levels=0) == []
    assert [o.side for o in build_ladder(None, 100.1, perp(2), config, levels=1)] == [Side.SELL]


@given(
    mid=st.floats(min_value=1e-3, max_value=1e6, allow_nan=False),
    spread_bps=st.floats(min_value=-50.0, max_value=200.0),
    sz_decimals=st.integers(min_value=0, max_value=5),
    levels=st.integers(min_value=1, max_value=6),
    spacing_mode=st.sampled_from(["bps", "ticks"]),
    spacing=st.floats(min_value=0.1, max_value=100.0),
    schedule=st.sampled_from(["constant", "linear", "geometric"]),
    notional=st.floats(min_value=1.0, max_value=1e5),
    market_skew=st.floats(min_value=-1e-3, max_value=1e-3),
)
def test_ladder_always_wire_valid_and_non_crossing(
    mid: float,
    spread_bps: float,
    sz_decimals: int,
    levels: int,
    spacing_mode: str,
    spacing: float,
    schedule: str,
    notional: float,
    market_skew: float,
) -> None:
    half = mid * spread_bps / 20_000.0
    bid, ask = mid - half, mid + half
    market_bid, market_ask = mid * (1 - 5e-4 + market_skew), mid * (1 + 5e-4 + market_skew)
    config = LadderConfig(
        levels=levels,
        spacing_mode=spacing_mode,
        spacing=spacing,
        base_size=notional / mid,
        size_schedule=schedule,
    )
    if bid <= 0:
        return
    orders = build_ladder(
        bid, ask, perp(sz_decimals), config, market_bid=market_bid, market_ask=market_ask
    )
    for order in orders:
        px_text = format_px(order.px, sz_decimals, order.side)
        assert numbers.is_valid_px(px_text, sz_decimals)
        assert float(px_text) == order.px  # already valid: unchanged
        assert float(format_sz(order.sz, sz_decimals)) == order.sz
        assert order.px * order.sz >= config.min_notional
    bids, asks = _bids(orders), _asks(orders)
    for o in bids:
        assert o.px <= bid
        assert o.px < ask
        assert o.px < market_ask
    for o in asks:
        assert o.px >= ask
        assert o.px > bid
        assert o.px > market_bid
    bid_px = [o.px for o in bids]
    ask_px = [o.px for o in asks]
    assert bid_px == sorted(bid_px, reverse=True)
    assert len(set(bid_px)) == len(bid_px)
    assert ask_px == sorted(ask_px)
    assert len(set(ask_px)) == len(ask_px)


@given(
    schedule=st.sampled_from(["constant", "linear", "geometric"]),
    base_size=st.floats(min_value=1e-4, max_value=10.0),
    top=st.floats(min_value=10.0, max_value=100_000.0),
)
def test_a_base_size_given_is_the_configs_replaced(
    schedule: str, base_size: float, top: float
) -> None:
    """The strategy's order size per quote, without a new config per quote: the same ladder as
    the config with that base size."""
    config = LadderConfig(levels=3, size_schedule=schedule, base_size=0.5, min_notional=0.0)
    instrument = perp(3)
    given_size = build_ladder(top, top * 1.001, instrument, config, base_size=base_size)
    evolved = attrs.evolve(config, base_size=base_size)
    assert given_size == build_ladder(top, top * 1.001, instrument, evolved)
    assert [level_size(config, i, base_size) for i in range(3)] == [
        level_size(evolved, i) for i in range(3)
    ]


@settings(max_examples=300, deadline=None)
@given(
    mid=st.floats(min_value=1e-3, max_value=1e6, allow_nan=False),
    spread_bps=st.floats(min_value=-50.0, max_value=200.0),
    sz_decimals=st.integers(min_value=0, max_value=5),
    levels=st.integers(min_value=1, max_value=6),
    count=st.one_of(st.none(), st.integers(min_value=-1, max_value=6)),
    spacing_mode=st.sampled_from(["bps", "ticks"]),
    spacing=st.floats(min_value=0.1, max_value=100.0),
    schedule=st.sampled_from(["constant", "linear", "geometric"]),
    size_step=st.sampled_from([0.0, 0.5]),
    notional=st.floats(min_value=1.0, max_value=1e5),
    base_size=st.one_of(st.none(), st.floats(min_value=0.0, max_value=10.0)),
    market=st.one_of(st.none(), st.floats(min_value=-2e-3, max_value=2e-3)),
    sides=st.sampled_from([(Side.BUY, Side.SELL), (Side.BUY,), (Side.SELL,), ()]),
    one_sided=st.sampled_from(["both", "bid", "ask"]),
)
def test_the_ladder_is_the_reference_implementations(
    mid: float,
    spread_bps: float,
    sz_decimals: int,
    levels: int,
    count: int | None,
    spacing_mode: str,
    spacing: float,
    schedule: str,
    size_step: float,
    notional: float,
    base_size: float | None,
    market: float | None,
    sides: tuple[Side, ...],
    one_sided: str,
) -> None:
    """build_ladder gives the orders of the implementation before issue 16's per-tick cuts
    (level 0 of a bps ladder rounded once with the top, a size rounded once per distinct raw
    size): the same orders in the same order, crossed tops and market limits included."""
    half = mid * spread_bps / 20_000.0
    bid: float | None = mid - half if one_sided != "ask" else None
    ask: float | None = mid + half if one_sided != "bid" else None
    market_bid = market_ask = None
    if market is not None:
        market_bid, market_ask = mid * (1 - 5e-4 + market), mid * (1 + 5e-4 + market)
    config = LadderConfig(
        levels=levels,
        spacing_mode=spacing_mode,
        spacing=spacing,
        base_size=notional / mid,
        size_schedule=schedule,
        size_step=size_step,
    )
    instrument = perp(sz_decimals)
    orders = [
        build(
            bid,
            ask,
            instrument,
            config,
            levels=count,
            sides=sides,
            market_bid=market_bid,
            market_ask=market_ask,
            base_size=base_size,
        )
        for build in (build_ladder, reference_build_ladder)
    ]
    assert orders[0] == orders[1]


@given(
    sz_decimals=st.integers(0, 5),
    asks=st.lists(
        st.tuples(st.floats(1e-4, 2e5), st.floats(1e-4, 2e5), st.booleans(), st.booleans()),
        min_size=1,
        max_size=40,
    ),
)
def test_remembered_limits_give_the_ladder_the_instruments_limits(
    sz_decimals: int, asks: list[tuple[float, float, bool, bool]]
) -> None:
    """A ladder built with the quoter's remembered limit roundings (the same prices asked
    again, a memo of three prices starting afresh when full) is the ladder built without: the
    remembered tick count of a price is the instrument's, either way round."""
    instrument = perp(sz_decimals)
    limits = LimitTicks(instrument, size=3)
    config = LadderConfig(levels=3, spacing=2.0, base_size=1.0, min_notional=0.0)
    for first, second, one_sided, repeat in asks:
        bid, ask = min(first, second), max(first, second)
        for _ in range(2 if repeat else 1):
            market_bid = None if one_sided else bid * 0.999
            market_ask = ask * 1.001
            remembered = build_ladder(
                bid,
                ask,
                instrument,
                config,
                market_bid=market_bid,
                market_ask=market_ask,
                limit_ticks=limits,
            )
            plain = build_ladder(
                bid, ask, instrument, config, market_bid=market_bid, market_ask=market_ask
            )
            assert remembered == plain
            for px in (bid, ask):
                for up in (True, False):
                    assert limits.price_ticks(px, up=up) == instrument.price_ticks(px, up=up)
    assert len(limits._known) <= 3
