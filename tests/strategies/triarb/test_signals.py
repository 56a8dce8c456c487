"""The evaluator: book updates in, perishable signals out on a bounded trio memory channel."""

from __future__ import annotations

import math
from decimal import Decimal

import pytest
import trio
import trio.testing
from hypothesis import given, settings
from hypothesis import strategies as st

from mm.strategies.triarb.legs import Triangle
from mm.strategies.triarb.signals import Evaluator, Signal
from mm.strategies.triarb.triangles import BookView, Reason, Terms, affected, discover, index
from tests.strategies.triarb.spot import instrument

INSTRUMENTS = {
    i.symbol: i
    for i in (
        instrument("BTC-USDT", "0.1", "0.00001", "0.00001", 0.1),
        instrument("ETH-BTC", "0.00001", "0.0001", "0.0001", 0.00001),
        instrument("ETH-USDT", "0.01", "0.0001", "0.0001", 0.1),
        instrument("BTC-USDC", "0.1", "0.00001", "0.00001", 0.1),
        instrument("USDC-USDT", "0.0001", "0.01", "0.01", 0.1),
        instrument("XRP-USDT", "0.0001", "0.1", "0.1", 0.1),  # in no triangle
    )
}
FEE = Decimal("0.001")
TERMS = Terms(
    start_volume=Decimal(1000),
    max_book_age_ms=250,
    fees=dict.fromkeys(INSTRUMENTS, FEE),
    funds_increments={"BTC-USDT": Decimal("0.000001"), "ETH-BTC": Decimal("0.00000001")},
)
# USDT>BTC>ETH>USDT and USDT>ETH>BTC>USDT: the only triangles through USDT among the three.
TRIO = {s: INSTRUMENTS[s] for s in ("BTC-USDT", "ETH-BTC", "ETH-USDT")}
TRIANGLES = discover(TRIO.values(), ["USDT"])
FORWARD = TRIANGLES[0]
assert FORWARD.name == "USDT>BTC>ETH>USDT"


def view(
    bids: list[tuple[float, float]],
    asks: list[tuple[float, float]],
    time_ms: int = 1_000,
    *,
    continuous: bool = True,
) -> BookView:
    return BookView(
        tuple((px, sz, 1) for px, sz in bids),
        tuple((px, sz, 1) for px, sz in asks),
        time_ms,
        continuous,
    )


# The books of tests/strategies/triarb/test_triangles.py: USDT>BTC>ETH>USDT nets 4.8851 bps after
# fees and increments (1000 USDT in, 1000.48851 out); the other way round loses.
BTC_USDT = view([(49_990.0, 1.0)], [(50_000.0, 0.01), (50_010.0, 1.0)], 1_000)
ETH_BTC = view([(0.04999, 50.0)], [(0.05, 10.0)], 1_005)
ETH_USDT = view([(2_510.0, 10.0)], [(2_511.0, 10.0)], 1_010)
ETH_USDT_FAIR = view([(2_500.0, 10.0)], [(2_511.0, 10.0)], 1_010)  # 0.3990 ETH at 2500: a loss


def evaluator(
    send: trio.MemorySendChannel[Signal],
    min_profit_bps: float = 4.0,
    triangles: tuple[Triangle, ...] = TRIANGLES,
) -> Evaluator:
    return Evaluator(triangles, INSTRUMENTS, TERMS, min_profit_bps, send)


def feed(ev: Evaluator, eth_usdt: BookView = ETH_USDT) -> None:
    """The three books, arriving 10 ms apart (at 1100, 1110, 1120)."""
    ev.on_book("BTC-USDT", BTC_USDT, 1_100)
    ev.on_book("ETH-BTC", ETH_BTC, 1_110)
    ev.on_book("ETH-USDT", eth_usdt, 1_120)


async def test_a_dislocated_triangle_yields_one_signal_with_its_figures() -> None:
    send, receive = trio.open_memory_channel[Signal](4)
    ev = evaluator(send)
    feed(ev)
    signal = receive.receive_nowait()
    with pytest.raises(trio.WouldBlock):
        receive.receive_nowait()  # one signal: the other direction loses
    assert signal.corr == 1
    assert signal.triangle == FORWARD
    assert signal.books == (BTC_USDT, ETH_BTC, ETH_USDT)
    assert signal.book_times_ms == (1_000, 1_005, 1_010)
    assert signal.arrived_ms == (1_100, 1_110, 1_120)
    assert signal.signalled_ms == 1_120
    assert signal.volume == Decimal(1000)
    assert signal.predicted_final == Decimal("1000.48851")
    assert signal.predicted_profit == Decimal("0.48851")
    assert math.isclose(signal.predicted_bps, 4.8851)
    assert signal.evaluation.oldest_ms == 1_000
    assert [leg.size for leg in signal.evaluation.legs] == [
        Decimal("0.01997"),
        Decimal("0.3990"),
        Decimal("0.3990"),
    ]
    # Both triangles evaluated on each update; until the third book, both lack a book.
    assert ev.evaluations == 6
    assert ev.refusals == {Reason.NO_BOOK: 4}
    assert (ev.below_min_profit, ev.sent, ev.dropped) == (1, 1, 0)


async def test_an_undislocated_triangle_signals_nothing() -> None:
    send, receive = trio.open_memory_channel[Signal](4)
    ev = evaluator(send)
    feed(ev, ETH_USDT_FAIR)
    with pytest.raises(trio.WouldBlock):
        receive.receive_nowait()
    assert (ev.evaluations, ev.below_min_profit, ev.sent, ev.dropped) == (6, 2, 0, 0)


async def test_the_minimum_profit_is_inclusive_and_a_higher_one_holds_the_signal_back() -> None:
    send, receive = trio.open_memory_channel[Signal](4)
    at_minimum = evaluator(send, min_profit_bps=4.8851)
    feed(at_minimum)
    assert at_minimum.sent == 1
    above = evaluator(send, min_profit_bps=4.9)
    feed(above)
    assert (above.sent, above.below_min_profit) == (0, 2)
    assert receive.receive_nowait().corr == 1
    with pytest.raises(trio.WouldBlock):
        receive.receive_nowait()


async def test_only_the_triangles_a_book_is_in_are_evaluated() -> None:
    # Through USDT and USDC: six triangles over five pairs (test_triangles' graph).
    triangles = discover(INSTRUMENTS.values(), ["USDT", "USDC"])
    assert len(triangles) == 6
    send, _receive = trio.open_memory_channel[Signal](0)
    ev = evaluator(send, triangles=triangles)
    ev.on_book("XRP-USDT", view([(0.5, 100.0)], [(0.51, 100.0)]), 1_100)
    assert ev.evaluations == 0
    ev.on_book("ETH-BTC", ETH_BTC, 1_100)
    assert ev.evaluations == 2
    ev.on_book("BTC-USDC", view([(49_990.0, 1.0)], [(50_000.0, 1.0)]), 1_100)
    assert ev.evaluations == 2 + 4
    ev.on_book("BTC-USDT", BTC_USDT, 1_100)
    assert ev.evaluations == 2 + 4 + 6
    assert sum(ev.refusals.values()) == ev.evaluations  # no triangle has its three books yet


async def test_a_full_channel_drops_and_counts_and_never_blocks() -> None:
    send, receive = trio.open_memory_channel[Signal](1)
    ev = evaluator(send)
    feed(ev)  # signal 1 fills the queue
    ev.on_book("ETH-USDT", ETH_USDT, 1_130)  # signal 2: the queue is full, dropped
    ev.on_book("ETH-USDT", ETH_USDT, 1_140)  # signal 3: dropped
    assert (ev.sent, ev.dropped) == (1, 2)
    assert receive.receive_nowait().corr == 1
    ev.on_book("ETH-USDT", ETH_USDT, 1_150)  # room again
    assert (ev.sent, ev.dropped) == (2, 2)
    later = receive.receive_nowait()
    assert (later.corr, later.signalled_ms, later.arrived_ms[2]) == (4, 1_150, 1_150)


async def test_with_no_queue_a_signal_goes_only_to_a_waiting_slot() -> None:
    send, receive = trio.open_memory_channel[Signal](0)
    ev = evaluator(send)
    taken: list[Signal] = []

    async def slot() -> None:
        taken.append(await receive.receive())

    async with trio.open_nursery() as nursery:
        nursery.start_soon(slot)
        await trio.testing.wait_all_tasks_blocked()  # the slot waits in receive()
        feed(ev)
        ev.on_book("ETH-USDT", ETH_USDT, 1_130)  # the slot is busy with the first: dropped
    assert [signal.corr for signal in taken] == [1]
    assert (ev.sent, ev.dropped) == (1, 1)


async def test_a_stale_book_refuses_and_signals_nothing() -> None:
    send, receive = trio.open_memory_channel[Signal](4)
    ev = evaluator(send)
    ev.on_book("BTC-USDT", BTC_USDT, 1_100)
    ev.on_book("ETH-BTC", ETH_BTC, 1_110)
    ev.on_book("ETH-USDT", ETH_USDT, 1_251)  # BTC-USDT's book (1000) is 251 ms old > 250
    with pytest.raises(trio.WouldBlock):
        receive.receive_nowait()
    assert ev.refusals[Reason.STALE] == 2
    assert ev.sent == 0
    ev.on_book("BTC-USDT", BookView(BTC_USDT.bids, BTC_USDT.asks, 1_250), 1_252)  # fresh again
    assert receive.receive_nowait().book_times_ms == (1_250, 1_005, 1_010)


async def test_a_discontinuous_book_refuses_until_it_resyncs() -> None:
    send, receive = trio.open_memory_channel[Signal](4)
    ev = evaluator(send)
    feed(ev, BookView(ETH_USDT.bids, ETH_USDT.asks, ETH_USDT.time_ms, continuous=False))
    with pytest.raises(trio.WouldBlock):
        receive.receive_nowait()
    assert ev.refusals[Reason.NOT_CONTINUOUS] == 2
    assert ev.sent == 0
    ev.on_book("ETH-USDT", ETH_USDT, 1_130)  # the snapshot resynced it
    assert receive.receive_nowait().corr == 1


async def test_with_every_slot_gone_the_evaluator_says_so() -> None:
    send, receive = trio.open_memory_channel[Signal](4)
    ev = evaluator(send)
    await receive.aclose()
    ev.on_book("BTC-USDT", BTC_USDT, 1_100)  # no signal yet: nothing to send
    ev.on_book("ETH-BTC", ETH_BTC, 1_110)
    with pytest.raises(trio.BrokenResourceError):
        ev.on_book("ETH-USDT", ETH_USDT, 1_120)


# --- properties ----------------------------------------------------------------------------------

SYMBOLS = sorted(INSTRUMENTS)
PRICES = {
    "BTC-USDT": 50_000.0,
    "ETH-BTC": 0.05,
    "ETH-USDT": 2_500.0,
    "BTC-USDC": 50_000.0,
    "USDC-USDT": 1.0,
    "XRP-USDT": 0.5,
}
UPDATES = st.lists(
    st.tuples(
        st.sampled_from(SYMBOLS),
        st.floats(-0.02, 0.02),  # the mid's move from its fair price
        st.sampled_from([0.00005, 0.0001, 0.001]),  # the half spread, as a fraction of the mid
        st.integers(0, 260),  # the book's age when it arrives (ms)
        st.sampled_from([True, True, True, False]),  # continuous, mostly
    ),
    max_size=40,
)


def moved(symbol: str, move: float, half_spread: float, time_ms: int, continuous: bool) -> BookView:
    mid = PRICES[symbol] * (1 + move)
    bid, ask = float(f"{mid * (1 - half_spread):.6g}"), float(f"{mid * (1 + half_spread):.6g}")
    return view([(bid, 1_000.0)], [(ask, 1_000.0)], time_ms, continuous=continuous)


@settings(max_examples=50, deadline=None)
@given(updates=UPDATES, capacity=st.integers(0, 3))
async def test_every_evaluation_is_accounted_for_and_ids_are_unique_and_ordered(
    updates: list[tuple[str, float, float, int, bool]], capacity: int
) -> None:
    triangles = discover(INSTRUMENTS.values(), ["USDT", "USDC"])
    by_symbol = index(triangles)
    send, receive = trio.open_memory_channel[Signal](capacity)
    ev = Evaluator(triangles, INSTRUMENTS, TERMS, 0.0, send, by_symbol=by_symbol)
    received: list[Signal] = []
    expected_evaluations = 0
    for step, (symbol, move, half_spread, age, continuous) in enumerate(updates):
        now = 10_000 + step
        ev.on_book(symbol, moved(symbol, move, half_spread, now - age, continuous), now)
        expected_evaluations += len(affected(symbol, by_symbol))
        if step % 3 == 0:  # a slot takes what is queued now and then
            while True:
                try:
                    received.append(receive.receive_nowait())
                except trio.WouldBlock:
                    break
    assert ev.evaluations == expected_evaluations
    assert ev.evaluations == sum(ev.refusals.values()) + ev.below_min_profit + ev.sent + ev.dropped
    ids = [signal.corr for signal in received]
    assert ids == sorted(set(ids))
    assert all(1 <= corr <= ev.sent + ev.dropped for corr in ids)
    for signal in received:
        assert signal.predicted_bps >= 0.0
        assert signal.signalled_ms - signal.evaluation.oldest_ms <= TERMS.max_book_age_ms
        assert all(book.continuous for book in signal.books)
        assert signal.book_times_ms == tuple(book.time_ms for book in signal.books)


# --- the prefilter -------------------------------------------------------------------------------


async def test_a_triangle_whose_bound_is_below_the_minimum_is_not_walked() -> None:
    send, receive = trio.open_memory_channel[Signal](4)
    ev = evaluator(send)
    feed(ev)
    # The losing direction's bound (about -20 bps) is below 4 bps: not walked. The forward
    # one's (9.9 bps) is not: walked, and signalled at 4.8851.
    assert (ev.below_min_profit, ev.prefiltered, ev.sent) == (1, 1, 1)
    assert receive.receive_nowait().triangle == FORWARD
    fair = evaluator(send)
    feed(fair, ETH_USDT_FAIR)  # both bounds below: neither walked
    assert (fair.evaluations, fair.below_min_profit, fair.prefiltered) == (6, 2, 2)
    walked = Evaluator(TRIANGLES, INSTRUMENTS, TERMS, 4.0, send, prefilter=False)
    feed(walked, ETH_USDT_FAIR)  # the same outcome, walked
    assert (walked.evaluations, walked.below_min_profit, walked.prefiltered) == (6, 2, 0)
    # Above the exact profit but below the bound, the forward triangle is walked, not signalled.
    between = evaluator(send, min_profit_bps=9.0)
    feed(between)
    assert (between.below_min_profit, between.prefiltered, between.sent) == (2, 1, 0)


def test_a_triangle_with_a_symbol_missing_from_the_instruments_fails_when_made() -> None:
    send, _receive = trio.open_memory_channel[Signal](1)
    missing = {symbol: i for symbol, i in TRIO.items() if symbol != "ETH-BTC"}
    with pytest.raises(KeyError, match="ETH-BTC"):
        Evaluator(TRIANGLES, missing, TERMS, 4.0, send)


LEVELS = st.lists(
    st.tuples(
        st.floats(0.0, 0.004),  # the level's distance from the top, as a fraction of the mid
        st.sampled_from([1_000.0, 0.5, 0.01, 0.0]),  # its size: deep, thin, dust, empty
    ),
    min_size=1,
    max_size=3,
)
DEEP_UPDATES = st.lists(
    st.tuples(
        st.sampled_from(SYMBOLS),
        st.floats(-0.01, 0.01),  # the mid's move from its fair price
        st.sampled_from([0.00005, 0.0005]),  # the half spread, as a fraction of the mid
        LEVELS,
        LEVELS,
        st.integers(0, 260),  # the book's age when it arrives (ms)
        st.sampled_from([True, True, True, False]),  # continuous, mostly
    ),
    max_size=30,
)


def deep(
    symbol: str,
    move: float,
    half_spread: float,
    bids: list[tuple[float, float]],
    asks: list[tuple[float, float]],
    time_ms: int,
    continuous: bool,
) -> BookView:
    """A book of levels in the order drawn (not always best first) around a moved mid."""
    mid = PRICES[symbol] * (1 + move)
    return view(
        [(float(f"{mid * (1 - half_spread - away):.6g}"), size) for away, size in bids],
        [(float(f"{mid * (1 + half_spread + away):.6g}"), size) for away, size in asks],
        time_ms,
        continuous=continuous,
    )


@settings(max_examples=100, deadline=None)
@given(
    updates=DEEP_UPDATES,
    min_profit_bps=st.sampled_from([-100.0, 0.0, 4.0, 20.0]),
    fee=st.sampled_from([Decimal(0), Decimal("0.001"), Decimal("0.01")]),
)
async def test_the_prefilter_never_holds_back_a_signal_the_exact_evaluation_would_send(
    updates: list[tuple[str, float, float, list[tuple[float, float]],
                        list[tuple[float, float]], int, bool]],
    min_profit_bps: float,
    fee: Decimal,
) -> None:  # fmt: skip
    triangles = discover(INSTRUMENTS.values(), ["USDT", "USDC"])
    terms = Terms(TERMS.start_volume, TERMS.max_book_age_ms, dict.fromkeys(INSTRUMENTS, fee),
                  TERMS.funds_increments)  # fmt: skip
    channels = [trio.open_memory_channel[Signal](1_000) for _ in range(2)]
    fast, walked = (
        Evaluator(triangles, INSTRUMENTS, terms, min_profit_bps, send, prefilter=prefilter)
        for (send, _), prefilter in zip(channels, (True, False), strict=True)
    )
    for step, (symbol, move, half_spread, bids, asks, age, continuous) in enumerate(updates):
        now = 10_000 + step
        book = deep(symbol, move, half_spread, bids, asks, now - age, continuous)
        fast.on_book(symbol, book, now)
        walked.on_book(symbol, book, now)
    signals = []
    for send, receive in channels:
        send.close()
        signals.append([signal async for signal in receive])
    assert signals[0] == signals[1]  # the same signals, ids, figures and books
    assert (fast.evaluations, fast.sent, fast.dropped) == (
        walked.evaluations, walked.sent, walked.dropped
    )  # fmt: skip
    # The gates refuse alike; a triangle prefiltered is not walked, so what its walk would have
    # refused (dust, depth, minimums) or found below the minimum counts as below the minimum.
    gates = (Reason.NO_BOOK, Reason.NOT_CONTINUOUS, Reason.STALE)
    assert all(fast.refusals[reason] == walked.refusals[reason] for reason in gates)
    assert all(fast.refusals[reason] <= walked.refusals[reason] for reason in Reason)
    assert fast.below_min_profit + fast.refusals.total() == (
        walked.below_min_profit + walked.refusals.total()
    )
    assert walked.prefiltered == 0
    assert fast.prefiltered <= fast.below_min_profit


@pytest.mark.parametrize("newer", ["BTC-USDT", "ETH-BTC", "ETH-USDT"])
def test_a_signal_is_latest_until_a_newer_book_of_any_of_its_pairs(newer: str) -> None:
    send, receive = trio.open_memory_channel[Signal](10)
    ev = evaluator(send)
    feed(ev)
    signal = receive.receive_nowait()
    assert ev.is_latest(signal)
    again = {"BTC-USDT": BTC_USDT, "ETH-BTC": ETH_BTC, "ETH-USDT": ETH_USDT_FAIR}[newer]
    ev.on_book(newer, BookView(again.bids, again.asks, again.time_ms), 1_130)  # equal, not it
    assert not ev.is_latest(signal)
