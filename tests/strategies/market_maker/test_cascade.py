"""The cascade detector on hand-made tapes: each ingredient acts, garbage does not break it."""

from __future__ import annotations

import itertools
import math

import attrs
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mm.book import Book
from mm.model import Level, Side, Trade
from mm.strategies.market_maker.cascade import (
    BPS,
    MAX_NOTIONAL,
    CascadeConfig,
    CascadeDetector,
    _ask_depth,
    _best,
    _bid_depth,
    _good_levels,
)
from tests.ids import hl_tid
from tests.strategies.market_maker.cascade_reference import ReferenceCascadeDetector

MID = 100.0
# Long enough a fall for the flow window to hold nothing else.
SETTLE = CascadeConfig().flow_window_s + 1.0
LEVEL_USD = 1_000.0  # per level, levels every 1 bp from 0.5 bp: 10 levels within 10 bps


def book(mid: float, *, bid_scale: float = 1.0, ask_scale: float = 1.0, levels: int = 20) -> Book:
    """A ladder around ``mid``: level i at (i + 0.5) bps, LEVEL_USD notional (scaled per side).

    A scale of 0 leaves zero-size levels, which the detector must skip (as an empty side).
    """

    def side(sign: int, scale: float) -> tuple[Level, ...]:
        prices = [mid * (1 + sign * (i + 0.5) * 1e-4) for i in range(levels)]
        return tuple(Level(px, LEVEL_USD * scale / px) for px in prices)

    return Book("BTC", 0, side(-1, bid_scale), side(1, ask_scale))


def trade(side: Side, notional: float, px: float = MID) -> Trade:
    return Trade("BTC", side, px, notional / px, 0, hl_tid(1))


def warm(detector: CascadeDetector, seconds: float = 60.0, rate_usd: float = 1_000.0) -> float:
    """Calm history: a still mid, a full book every 0.5 s, balanced trades; returns the time."""
    now = 0.0
    steps = int(seconds / 0.5)
    for index in range(steps + 1):
        now = index * 0.5
        detector.on_book(book(MID), now)
        side = Side.BUY if index % 2 else Side.SELL
        detector.on_trade(trade(side, rate_usd * 0.5), now)
    return now


def fall(
    detector: CascadeDetector,
    start: float,
    seconds: float,
    bps_per_s: float,
    *,
    sell_usd_per_s: float = 0.0,
    buy_usd_per_s: float = 0.0,
    bid_scale: float = 1.0,
) -> float:
    """The mid falls steadily from MID; books every 0.5 s, trades at the given rates."""
    now = start
    for index in range(1, int(seconds / 0.5) + 1):
        now = start + index * 0.5
        mid = MID * math.exp(-bps_per_s * 1e-4 * index * 0.5)
        if sell_usd_per_s:
            detector.on_trade(trade(Side.SELL, sell_usd_per_s * 0.5, mid), now)
        if buy_usd_per_s:
            detector.on_trade(trade(Side.BUY, buy_usd_per_s * 0.5, mid), now)
        detector.on_book(book(mid, bid_scale=bid_scale), now)
    return now


# --- cold start and calm ---------------------------------------------------------------------


def test_no_data_no_severity() -> None:
    detector = CascadeDetector()
    assert detector.severity(0.0) == 0.0
    parts = detector.components(5.0)
    assert parts["severity"] == 0.0
    assert all(math.isfinite(value) for value in parts.values())


def test_a_calm_market_is_calm() -> None:
    detector = CascadeDetector()
    now = warm(detector, 120.0)
    assert detector.severity(now) == 0.0
    parts = detector.components(now)
    assert parts["rate_ratio"] == pytest.approx(1.0, rel=0.05)
    assert parts["depletion"] == 0.0


def test_until_the_baseline_is_known_surge_and_depletion_do_not_count() -> None:
    config = CascadeConfig(min_baseline_s=30.0)
    detector = CascadeDetector(config)
    now = warm(detector, 10.0)  # 10 s of history: not enough
    now = fall(detector, now, SETTLE, 50.0, sell_usd_per_s=10_000.0, bid_scale=0.0)
    parts = detector.components(now)
    assert parts["surge"] == 0.0
    assert parts["depletion"] == 0.0
    assert parts["one_sided"] == pytest.approx(1.0)  # needs no baseline
    expected = 1.0 * (config.confirm_min + (config.confirm_max - config.confirm_min) / 3)
    assert parts["instant"] == pytest.approx(expected, rel=0.02)


# --- the ingredients -------------------------------------------------------------------------


def test_a_steady_fall_with_no_flow_is_velocity_times_the_minimum_confirmation() -> None:
    config = CascadeConfig()
    detector = CascadeDetector(config)
    now = warm(detector)
    now = fall(detector, now, SETTLE, 50.0)  # 50 bps/s: one velocity scale
    parts = detector.components(now)
    assert parts["velocity_bps_s"] == pytest.approx(-50.0, rel=1e-6)
    assert parts["confirmation"] == pytest.approx(config.confirm_min)
    assert parts["severity"] == pytest.approx(config.confirm_min, rel=1e-6)


def test_forced_selling_into_a_thinning_book_confirms_in_full() -> None:
    config = CascadeConfig()
    detector = CascadeDetector(config)
    now = warm(detector)  # baseline: 1000 USD/s
    now = fall(detector, now, SETTLE, 50.0, sell_usd_per_s=10_000.0, bid_scale=0.0)
    parts = detector.components(now)
    assert parts["rate_ratio"] >= config.surge_full
    assert (parts["surge"], parts["one_sided"], parts["depletion"]) == (1.0, 1.0, 1.0)
    assert parts["confirmation"] == pytest.approx(config.confirm_max)
    # The bids are gone: the mid is the best ask less the last half spread (to 1e-4).
    assert parts["severity"] == pytest.approx(config.confirm_max, rel=1e-3)
    assert parts["depletion_ask"] == 0.0  # the side not being hit is full


@pytest.mark.parametrize("ingredient", ["surge", "one_sided", "depletion"])
def test_each_ingredient_alone_raises_the_severity(ingredient: str) -> None:
    def measured(**flow: float) -> dict[str, float]:
        detector = CascadeDetector()
        now = fall(detector, warm(detector), SETTLE, 50.0, **flow)
        return detector.components(now)

    bare = measured()
    flows = {
        "surge": {"sell_usd_per_s": 2_000.0, "buy_usd_per_s": 2_000.0},  # 4x, balanced
        "one_sided": {"sell_usd_per_s": 1_000.0},  # the usual rate, all selling
        "depletion": {"bid_scale": 0.2},
    }
    shaped = measured(**flows[ingredient])
    assert shaped[ingredient] > 0.5
    others = {"surge", "one_sided", "depletion"} - {ingredient}
    assert all(shaped[name] <= 0.05 for name in others), shaped
    assert shaped["severity"] > bare["severity"] * 1.2


def test_flow_against_the_move_does_not_confirm_it() -> None:
    detector = CascadeDetector()
    now = fall(detector, warm(detector), SETTLE, 50.0, buy_usd_per_s=1_000.0)  # buyers in a fall
    parts = detector.components(now)
    assert parts["imbalance"] > 0.9
    assert parts["one_sided"] == 0.0


def test_a_rise_reads_the_asks() -> None:
    detector = CascadeDetector()
    now = warm(detector)
    for index in range(1, int(SETTLE / 0.5) + 1):
        now += 0.5
        mid = MID * math.exp(50e-4 * index * 0.5)
        detector.on_trade(trade(Side.BUY, 5_000.0, mid), now)
        detector.on_book(book(mid, ask_scale=0.0), now)
    parts = detector.components(now)
    assert parts["velocity_bps_s"] == pytest.approx(50.0, rel=1e-3)  # no asks: estimated mid
    assert (parts["one_sided"], parts["depletion"], parts["depletion_bid"]) == (1.0, 1.0, 0.0)


def test_a_jump_is_not_a_cascade() -> None:
    detector = CascadeDetector()
    now = warm(detector)
    jumped = MID * 0.99  # 100 bps at once, then still
    for _ in range(int(SETTLE / 0.5)):
        now += 0.5
        detector.on_book(book(jumped, bid_scale=0.2), now)
        detector.on_trade(trade(Side.SELL, 5_000.0, jumped), now)
        assert detector.severity(now) == 0.0
    assert detector.components(now)["one_sided"] == 1.0


def test_legs_that_disagree_give_no_velocity() -> None:
    detector = CascadeDetector()
    now = warm(detector)
    for mid in (MID * 0.995, MID * 0.99, MID * 0.995, MID):  # down for 1 s, up for 1 s
        now += 0.5
        detector.on_book(book(mid), now)
    assert detector.velocity(now) == 0.0


def test_the_severity_is_unbounded_above() -> None:
    detector = CascadeDetector()
    now = warm(detector)
    now = fall(detector, now, 2.0, 2_500.0, sell_usd_per_s=10_000.0)  # about 40% in 2 s
    assert detector.severity(now) >= 5.0 * 4


def test_the_peak_decays_with_its_half_life_once_the_move_stops() -> None:
    config = CascadeConfig(decay_half_life_s=5.0)
    detector = CascadeDetector(config)
    now = fall(detector, warm(detector), 3.0, 100.0, sell_usd_per_s=10_000.0, bid_scale=0.0)
    peak = detector.severity(now)
    assert peak > 3.0
    still = MID * math.exp(-100e-4 * 3.0)
    for _ in range(6):  # 3 s of a still mid: the velocity is gone after 2 s
        now += 0.5
        detector.on_book(book(still), now)
    assert detector.components(now)["instant"] == 0.0
    later = detector.severity(now + 5.0)
    assert later == pytest.approx(peak * 0.5 ** ((now + 5.0 - (now - 3.0)) / 5.0), rel=0.05)
    assert detector.severity(now + 100.0) < 0.01 * peak


# --- garbage and time ------------------------------------------------------------------------


def test_garbage_is_ignored_and_counted() -> None:
    detector = CascadeDetector()
    now = warm(detector)
    before = detector.components(now)
    bad_trades = [
        Trade("BTC", Side.SELL, math.nan, 1.0, 0, hl_tid(1)),
        Trade("BTC", Side.SELL, 100.0, math.inf, 0, hl_tid(1)),
        Trade("BTC", Side.SELL, -100.0, 1.0, 0, hl_tid(1)),
        Trade("BTC", Side.SELL, 100.0, 0.0, 0, hl_tid(1)),
    ]
    for bad in bad_trades:
        detector.on_trade(bad, now)
    detector.on_trade(trade(Side.SELL, 1e9), math.nan)
    crossed = Book("BTC", 0, (Level(101.0, 1.0),), (Level(99.0, 1.0),))
    detector.on_book(crossed, now)
    detector.on_book(book(50.0), math.inf)
    assert detector.ignored == 7
    after = detector.components(now)
    assert after == before
    assert detector.severity(math.nan) == 0.0


def test_absurd_notionals_are_garbage() -> None:
    detector = CascadeDetector()
    now = warm(detector)
    before = detector.components(now)
    detector.on_trade(Trade("BTC", Side.SELL, 1e200, 1e200, 0, hl_tid(1)), now)
    detector.on_trade(Trade("BTC", Side.SELL, 1e10, 1e10, 0, hl_tid(1)), now)  # 1e20 USD
    assert detector.ignored == 2
    huge = attrs.evolve(book(MID), bids=(Level(MID * 0.9999, 1e300), *book(MID).bids))
    detector.on_book(huge, now + 0.5)
    parts = detector.components(now + 0.5)
    assert parts["depletion_bid"] == before["depletion_bid"] == 0.0
    assert all(math.isfinite(value) for value in parts.values())


def test_bad_levels_are_skipped_one_by_one() -> None:
    detector = CascadeDetector()
    now = warm(detector)
    good = book(MID)
    poisoned = attrs.evolve(
        good,
        bids=(Level(math.nan, 1.0), Level(MID * 0.9999, -5.0), *good.bids),
        asks=(Level(MID * 1.0001, math.inf), *good.asks),
    )
    detector.on_book(poisoned, now + 0.5)
    parts = detector.components(now + 0.5)
    assert parts["depletion_bid"] == 0.0
    assert parts["depletion_ask"] == 0.0
    assert detector.velocity(now + 0.5) == 0.0


def test_time_never_runs_backwards() -> None:
    detector = CascadeDetector()
    now = fall(detector, warm(detector), SETTLE, 50.0)
    value = detector.severity(now)
    detector.on_book(book(MID), now - 30.0)  # arrives late: counted at ``now``
    assert detector.severity(now - 30.0) == detector.severity(now)
    assert value > 0


def test_a_one_sided_book_keeps_the_last_mid_for_depth() -> None:
    detector = CascadeDetector()
    now = warm(detector)
    empty_bids = Book("BTC", 0, (), book(MID).asks)
    for _ in range(int(SETTLE / 0.5)):
        now += 0.5
        detector.on_book(empty_bids, now)
    parts = detector.components(now)
    assert detector.velocity(now) == 0.0  # the mid is held: the ask less the half spread
    assert parts["depletion_bid"] == 1.0
    assert parts["depletion_ask"] == 0.0


# --- properties ------------------------------------------------------------------------------

floats = st.floats(allow_nan=True, allow_infinity=True)
level = st.builds(Level, floats, floats)
books = st.builds(
    Book,
    st.just("BTC"),
    st.just(0),
    st.lists(level, max_size=6).map(tuple),
    st.lists(level, max_size=6).map(tuple),
)
trades = st.builds(
    Trade, st.just("BTC"), st.sampled_from(Side), floats, floats, st.just(0), st.just(1)
)
times = st.one_of(st.floats(min_value=0, max_value=1e4), floats)
events = st.lists(st.tuples(st.one_of(books, trades), times), max_size=60)


@settings(max_examples=150, deadline=None)
@given(events, times)
def test_outputs_are_finite_and_bounded_whatever_comes_in(
    history: list[tuple[Book | Trade, float]], query: float
) -> None:
    config = CascadeConfig(min_baseline_s=0.0)
    detector = CascadeDetector(config)
    for event, now in history:
        if isinstance(event, Book):
            detector.on_book(event, now)
        else:
            detector.on_trade(event, now)
    severity = detector.severity(query)
    assert math.isfinite(severity)
    assert severity >= 0.0
    parts = detector.components(query)
    assert all(math.isfinite(value) for value in parts.values()), parts
    for name in ("surge", "one_sided", "depletion", "depletion_bid", "depletion_ask"):
        assert 0.0 <= parts[name] <= 1.0
    assert -1.0 <= parts["imbalance"] <= 1.0
    assert config.confirm_min <= parts["confirmation"] <= config.confirm_max


@settings(max_examples=60, deadline=None)
@given(
    st.floats(min_value=0.0, max_value=5_000.0),
    st.floats(min_value=0.0, max_value=5_000.0),
    st.floats(min_value=0.0, max_value=20_000.0),
)
def test_a_faster_fall_is_never_less_severe(slow: float, fast: float, selling: float) -> None:
    slow, fast = min(slow, fast), max(slow, fast)

    def severity(bps_per_s: float) -> float:
        detector = CascadeDetector()
        now = fall(detector, warm(detector, 40.0), 3.0, bps_per_s, sell_usd_per_s=selling)
        return detector.severity(now)

    assert severity(slow) <= severity(fast) + 1e-9


@settings(max_examples=60, deadline=None)
@given(st.floats(min_value=0.0, max_value=1.0), st.floats(min_value=0.0, max_value=1.0))
def test_a_thinner_hit_side_is_never_less_severe(thin: float, thick: float) -> None:
    thin, thick = min(thin, thick), max(thin, thick)

    def severity(scale: float) -> float:
        detector = CascadeDetector()
        now = fall(detector, warm(detector, 40.0), 3.0, 60.0, bid_scale=scale)
        return detector.severity(now)

    assert severity(thin) >= severity(thick) - 1e-9


_ODD = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from([0.0, -0.0, -1.0, 1e-300, 1e15, 1e16, math.inf, math.nan]),
    st.integers(min_value=-5, max_value=10**6),
)


@given(st.lists(st.tuples(_ODD, _ODD, st.integers(0, 3)), max_size=12))
def test_the_levels_kept_are_the_positive_finite_ones(
    levels: list[tuple[float, float, int]],
) -> None:
    """One pass keeps what a level-by-level check of finiteness, sign and notional keeps."""

    def good(px: float, sz: float) -> bool:
        return (
            math.isfinite(px) and math.isfinite(sz) and px > 0 and sz > 0
        ) and px * sz <= MAX_NOTIONAL

    assert _good_levels(tuple(levels)) == [lv for lv in levels if good(lv[0], lv[1])]


@given(
    bids=st.lists(st.tuples(_ODD, _ODD, st.integers(0, 3)), max_size=12),
    asks=st.lists(st.tuples(_ODD, _ODD, st.integers(0, 3)), max_size=12),
    mid=st.one_of(st.floats(0.5, 2e6), st.sampled_from([1e-300, 1e300])),
    reach_bps=st.sampled_from([0.0, 1.0, 10.0, 1e4, math.inf]),
)
def test_the_best_price_and_the_depth_are_those_of_the_levels_kept(
    bids: list[tuple[float, float, int]],
    asks: list[tuple[float, float, int]],
    mid: float,
    reach_bps: float,
) -> None:
    """The best price and the depth near the mid, read in one pass over a book's levels, are
    the first level ``_good_levels`` keeps and the sum over the levels it keeps (the same
    terms, in the same order, so the same float): bad levels anywhere, any reach."""
    kept_bids, kept_asks = _good_levels(tuple(bids)), _good_levels(tuple(asks))
    assert _best(tuple(bids)) == (kept_bids[0][0] if kept_bids else None)
    assert _best(tuple(asks)) == (kept_asks[0][0] if kept_asks else None)
    reach = mid * reach_bps / BPS
    bid_depth = math.fsum(px * sz for px, sz, _ in kept_bids if mid - px <= reach)
    ask_depth = math.fsum(px * sz for px, sz, _ in kept_asks if px - mid <= reach)
    assert _bid_depth(tuple(bids), mid, reach) == bid_depth
    assert _ask_depth(tuple(asks), mid, reach) == ask_depth


@given(
    steps=st.lists(
        st.tuples(st.sampled_from([0.0, 0.1, 0.25, 0.5, 1.0, 3.0]), st.floats(1.0, 1e5)),
        max_size=40,
    ),
    queries=st.lists(st.floats(-1.0, 30.0), max_size=8),
    legs=st.integers(1, 4),
)
def test_the_velocity_is_the_slowest_leg_when_every_leg_agrees(
    steps: list[tuple[float, float]], queries: list[float], legs: int
) -> None:
    """The velocity, taking each mark's log once and the slowest leg by min or max, is the
    velocity as defined leg by leg: the log move of each leg from the mids at its ends (each
    the latest at or before its time), in bps per second; the slowest when every leg moves the
    same way, else 0. Equal mids (no move) and too little history included."""
    config = CascadeConfig(velocity_window_s=2.0, velocity_legs=legs)
    detector = CascadeDetector(config)
    now = 0.0
    for dt, mid in steps:
        now += dt
        detector.on_book(Book("BTC", 0, (Level(mid, 1.0),), (Level(mid * 1.0001, 1.0),)), now)
    for query in [now, *queries]:
        when = detector._query_time(query)
        leg_s = config.velocity_window_s / legs
        marks = [
            detector._mid_at(when - config.velocity_window_s + index * leg_s)
            for index in range(legs + 1)
        ]
        expected = 0.0
        found = [mark for mark in marks if mark is not None]
        if len(found) == len(marks):
            moves = [
                (math.log(end) - math.log(start)) * BPS / leg_s
                for start, end in itertools.pairwise(found)
            ]
            if all(move > 0 for move in moves):
                expected = min(moves)
            elif all(move < 0 for move in moves):
                expected = max(moves)
        assert detector.velocity(query) == expected


@given(
    steps=st.lists(
        st.tuples(st.sampled_from([0.0, 0.1, 0.25, 1.0]), st.floats(1.0, 1e5)), max_size=40
    ),
    queries=st.lists(st.floats(-1.0, 20.0), max_size=10),
)
def test_the_mid_at_a_time_is_the_latest_at_or_before_it(
    steps: list[tuple[float, float]], queries: list[float]
) -> None:
    """Found by bisection over the mids kept (their times never go back), as a scan finds it;
    equal times included."""
    detector = CascadeDetector(CascadeConfig(velocity_window_s=1e9))
    now = 0.0
    for dt, mid in steps:
        now += dt
        detector.on_book(Book("BTC", 0, (Level(mid, 1.0),), (Level(mid * 1.0001, 1.0),)), now)
    kept = list(detector._mids)
    for when in [*queries, *(at for at, _ in kept)]:
        scanned = None
        for at, mid in kept:
            if at > when:
                break
            scanned = mid
        assert detector._mid_at(when) == scanned


@settings(max_examples=150, deadline=None)
@given(
    events=st.lists(
        st.tuples(
            st.sampled_from(["book", "trade", "severity", "components", "severity"]),
            st.sampled_from([0.0, 0.0, 0.5, 2.0, 7.0, -1.0, math.nan]),  # time step
            st.floats(min_value=0.97, max_value=1.03),  # mid move / trade side
            st.sampled_from([0.0, 0.3, 1.0, 3.0]),  # book scale / trade size
        ),
        max_size=60,
    )
)
def test_a_reading_remembered_is_the_reading_made_again(
    events: list[tuple[str, float, float, float]],
) -> None:
    """The severity and its components, with the last reading remembered (one book, then the
    quote at the same time), are those a detector that forgets it every time reads: through
    books, trades, repeated times, times going back and NaN."""
    config = CascadeConfig(min_baseline_s=5.0, baseline_s=30.0)
    remembering, forgetting = CascadeDetector(config), CascadeDetector(config)
    now, mid = 0.0, MID
    for kind, step, move, scale in events:
        now = now + step if math.isfinite(step) else now
        at = now if math.isfinite(step) else math.nan
        for detector in (remembering, forgetting):
            if detector is forgetting:
                detector._last_instant = None
            if kind == "book":
                detector.on_book(book(mid * move, bid_scale=scale, levels=5), at)
            elif kind == "trade":
                side = Side.BUY if move > 1.0 else Side.SELL
                detector.on_trade(trade(side, 1_000.0 * scale, mid), at)
        if kind == "book":
            mid *= move
        if kind == "severity":
            forgetting._last_instant = None
            assert remembering.severity(at) == forgetting.severity(at)
        elif kind == "components":
            forgetting._last_instant = None
            assert remembering.components(at) == forgetting.components(at)


def test_a_caller_changing_the_components_changes_no_later_reading() -> None:
    """The reading at one time is remembered and handed to severity without a copy; the
    components a caller gets are its own."""
    detector = CascadeDetector()
    now = warm(detector, 60.0)
    severity = detector.severity(now)
    parts = detector.components(now)
    expected = dict(parts)
    parts["instant"] = 99.0
    parts.clear()
    assert detector.severity(now) == severity
    assert detector.components(now) == expected


_STEPS = st.sampled_from([0.0, 0.0, 0.003, 0.01, 0.5, 1.0, 2.0, 7.0, -1.0, math.nan, math.inf])


@settings(max_examples=300, deadline=None)
@given(
    events=st.lists(
        st.tuples(
            st.sampled_from(["book", "book", "trade", "severity", "components", "velocity"]),
            _STEPS,
            st.floats(min_value=0.97, max_value=1.03),  # mid move / trade side
            st.sampled_from([0.0, 0.3, 1.0, 3.0]),  # book scale / trade size
            st.one_of(st.none(), books),  # a garbage book instead of the ladder
        ),
        max_size=80,
    ),
    legs=st.integers(1, 4),
)
def test_the_detector_reads_what_the_reference_reads(
    events: list[tuple[str, float, float, float, Book | None]], legs: int
) -> None:
    """The per-book cuts (the mids' logs taken once, the windows moved once per book, the
    depths summed from lists) change no reading: after the same books (ladders, one-sided,
    empty, garbage), trades and times (repeated, going back, NaN), every severity, component
    and velocity is the reference detector's, to the bit."""
    config = CascadeConfig(min_baseline_s=5.0, baseline_s=30.0, velocity_legs=legs)
    detector, reference = CascadeDetector(config), ReferenceCascadeDetector(config)
    now, mid = 0.0, MID
    for kind, step, move, scale, garbage in events:
        now = now + step if math.isfinite(step) else now
        at = now if math.isfinite(step) else step
        if kind == "book":
            mid *= move
            bids = 0.0 if scale == 3.0 else 1.0  # an empty bid side now and then
            ladder = garbage or book(mid, bid_scale=scale * bids, ask_scale=scale, levels=12)
            detector.on_book(ladder, at)
            reference.on_book(ladder, at)
        elif kind == "trade":
            side = Side.BUY if move > 1.0 else Side.SELL
            detector.on_trade(trade(side, 1_000.0 * scale, mid), at)
            reference.on_trade(trade(side, 1_000.0 * scale, mid), at)
        elif kind == "severity":
            assert detector.severity(at) == reference.severity(at)
        elif kind == "components":
            assert detector.components(at) == reference.components(at)
        else:
            assert detector.velocity(at) == reference.velocity(at)
    assert detector.components(now) == reference.components(now)
    assert (detector.books, detector.trades, detector.ignored) == (
        reference.books,
        reference.trades,
        reference.ignored,
    )
