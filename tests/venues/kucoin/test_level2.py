"""The level-2 book kept by KuCoin's sync procedure: whatever the venue drops, duplicates or
sends before the snapshot, a synced book is the venue's book at its sequence, and a lost
increment is always seen as a gap before it can make a wrong book."""

from __future__ import annotations

import heapq
import itertools

import attrs
import pytest
from hypothesis import given
from hypothesis import strategies as st

from mm.venues.kucoin.level2 import Change, Increment, Level2Book, Outcome, Snapshot

SYMBOL = "ETH-BTC"


def inc(
    start: int, end: int, bids: tuple[Change, ...] = (), asks: tuple[Change, ...] = ()
) -> Increment:
    return Increment(SYMBOL, start, end, 1_000 + end, bids, asks)


def test_the_documented_procedure_step_by_step() -> None:
    book = Level2Book(SYMBOL)
    assert book.book(5) is None
    # Increments before the snapshot are buffered...
    assert (
        book.increment(inc(10, 11, bids=(Change(100.0, 1.0, 10), Change(99.0, 2.0, 11))))
        is Outcome.BUFFERED
    )
    assert book.increment(inc(12, 12, asks=(Change(101.0, 3.0, 12),))) is Outcome.BUFFERED
    assert (
        book.increment(inc(13, 14, bids=(Change(100.0, 0.0, 13), Change(None, 0.0, 14))))
        is Outcome.BUFFERED
    )
    # ...and replayed onto the snapshot: what it already holds (sequence 11) is skipped.
    snapshot = Snapshot(SYMBOL, 11, 900, bids=((100.0, 1.0), (99.0, 2.0), (98.0, 5.0)))
    assert book.snapshot(snapshot) is Outcome.SYNCED
    assert book.sequence == 14
    bids, asks = book.top(5)
    assert bids == ((99.0, 2.0, 0), (98.0, 5.0, 0))  # 100 removed by size 0 at 13
    assert asks == ((101.0, 3.0, 0),)
    # A duplicate is stale; a message that continues applies; one past last + 1 is a gap.
    assert book.increment(inc(12, 14)) is Outcome.STALE
    assert book.increment(inc(14, 15, asks=(Change(101.0, 4.0, 15),))) is Outcome.APPLIED
    assert book.top(1)[1] == ((101.0, 4.0, 0),)
    assert book.increment(inc(17, 17)) is Outcome.GAP
    assert not book.synced
    assert book.book(5) is None
    assert book.gaps == 1
    # The next snapshot resumes from the increment that showed the gap.
    assert book.snapshot(Snapshot(SYMBOL, 16, 950, asks=((102.0, 1.0),))) is Outcome.SYNCED
    assert book.sequence == 17
    snap = book.book(5, received_ns=3)
    assert snap is not None
    assert (snap.coin, snap.seq, snap.received_ns, snap.asks) == (SYMBOL, 17, 3, ((102.0, 1.0, 0),))


def test_a_snapshot_older_than_the_buffer_is_a_gap_and_buffering_goes_on() -> None:
    book = Level2Book(SYMBOL, buffer_limit=2)
    for seq in (5, 6, 7):  # the oldest (5) is dropped: the buffer holds 6 and 7
        book.increment(inc(seq, seq, bids=(Change(float(seq), 1.0, seq),)))
    assert book.buffer_dropped == 1
    assert book.snapshot(Snapshot(SYMBOL, 4, 0)) is Outcome.GAP
    assert not book.synced
    assert book.snapshot(Snapshot(SYMBOL, 5, 0)) is Outcome.SYNCED
    assert book.sequence == 7
    assert book.top(3)[0] == ((7.0, 1.0, 0), (6.0, 1.0, 0))


def test_another_symbols_message_is_refused() -> None:
    book = Level2Book(SYMBOL)
    with pytest.raises(ValueError, match="BTC-USDT book message for the ETH-BTC book"):
        book.increment(Increment("BTC-USDT", 1, 1, 0))
    with pytest.raises(ValueError, match="buffer_limit"):
        Level2Book(SYMBOL, buffer_limit=0)


FIRST = 1_000  # the sequence of the first change after the initial book


@attrs.frozen
class Run:
    """The venue's book: an initial one, then changes (each its own sequence, from FIRST), cut
    into messages; how many changes the client's first snapshot holds; whether the client also
    buffered the message after it; and which messages reach the client after the snapshot, in
    what order (some lost, some duplicated, some late)."""

    bids: dict[float, float]
    asks: dict[float, float]
    changes: list[tuple[bool, float | None, float]]
    messages: list[Increment]
    held: int
    one_more: bool
    order: list[int]

    def state(self, held: int) -> Snapshot:
        """The venue's book once ``held`` changes are in, as its REST snapshot reads."""
        bids, asks = dict(self.bids), dict(self.asks)
        for is_bid, price, size in self.changes[:held]:
            side = bids if is_bid else asks
            if price is None:
                continue
            if size == 0:
                side.pop(price, None)
            else:
                side[price] = size
        levels = sorted(bids.items(), reverse=True), sorted(asks.items())
        return Snapshot(SYMBOL, FIRST + held - 1, 0, tuple(levels[0]), tuple(levels[1]))


BID_PRICES = st.sampled_from([float(p) for p in range(90, 100)])
ASK_PRICES = st.sampled_from([float(p) for p in range(101, 111)])
SIZES = st.sampled_from([0.0, 1.0, 2.5])


@st.composite
def runs(draw: st.DrawFn) -> Run:
    change = st.one_of(
        st.tuples(st.just(True), BID_PRICES | st.none(), SIZES),
        st.tuples(st.just(False), ASK_PRICES | st.none(), SIZES),
    )
    changes = draw(st.lists(change, min_size=1, max_size=40))
    inner = range(1, len(changes))
    cuts = sorted(draw(st.sets(st.sampled_from(inner)))) if inner else []
    bounds = [0, *cuts, len(changes)]
    messages = []
    for lo, hi in itertools.pairwise(bounds):
        bids = tuple(
            Change(c[1], c[2], FIRST + i) for i, c in enumerate(changes) if lo <= i < hi and c[0]
        )
        asks = tuple(
            Change(c[1], c[2], FIRST + i)
            for i, c in enumerate(changes)
            if lo <= i < hi and not c[0]
        )
        messages.append(Increment(SYMBOL, FIRST + lo, FIRST + hi - 1, FIRST + hi, bids, asks))
    return Run(
        draw(st.dictionaries(BID_PRICES, st.floats(0.5, 5.0), max_size=6)),
        draw(st.dictionaries(ASK_PRICES, st.floats(0.5, 5.0), max_size=6)),
        changes,
        messages,
        draw(st.integers(0, len(changes))),
        draw(st.booleans()),
        draw(st.lists(st.integers(0, len(messages) - 1), max_size=2 * len(messages))),
    )


def assert_is_the_venues(book: Level2Book, run: Run) -> None:
    assert book.sequence is not None
    want = run.state(book.sequence - FIRST + 1)
    bids, asks = book.top(100)
    assert bids == tuple((price, size, 0) for price, size in want.bids)
    assert asks == tuple((price, size, 0) for price, size in want.asks)


@given(runs())
def test_a_synced_book_is_always_the_venues_book_at_its_sequence(run: Run) -> None:
    book = Level2Book(SYMBOL)
    # Subscribed first: every message that began before the snapshot's sequence was buffered
    # (the last of them may reach past it: its older changes are in the snapshot already).
    snapshot = run.state(run.held)
    buffered = [m for m in run.messages if m.sequence_start <= snapshot.sequence]
    if run.one_more and len(buffered) < len(run.messages):
        buffered.append(run.messages[len(buffered)])
    for message in buffered:
        assert book.increment(message) is Outcome.BUFFERED
    assert book.snapshot(snapshot) is Outcome.SYNCED
    assert_is_the_venues(book, run)
    newest = snapshot.sequence
    for index in run.order:
        message = run.messages[index]
        newest = max(newest, message.sequence_end)
        outcome = book.increment(message)
        if outcome is Outcome.GAP:
            # A new snapshot, of the venue as it is now (at least as far as it has sent).
            assert book.snapshot(run.state(newest - FIRST + 1)) is Outcome.SYNCED
        assert book.synced
        assert_is_the_venues(book, run)


def heap_top(book: Level2Book, depth: int) -> tuple[tuple[tuple[float, float, int], ...], ...]:
    """``top`` as it was read before the sides kept their prices sorted: a heap over each
    side's levels (the oracle)."""
    bids = heapq.nlargest(depth, book._bids.items())
    asks = heapq.nsmallest(depth, book._asks.items())
    return tuple((p, s, 0) for p, s in bids), tuple((p, s, 0) for p, s in asks)


PRICES = st.floats(0.001, 1e6, allow_nan=False, allow_infinity=False) | st.sampled_from(
    [0.05, 0.0501, 0.0499, 100.0, 100.5]
)
LEVELS = st.lists(st.tuples(PRICES, st.sampled_from([0.0, 1.0, 2.5]) | st.floats(0.1, 9.0)))
CHANGES = st.lists(st.tuples(PRICES | st.none(), st.sampled_from([0.0, 3.0]) | st.floats(0.1, 9.0)))


@given(
    LEVELS,
    LEVELS,
    st.lists(st.one_of(st.tuples(CHANGES, CHANGES), st.tuples(LEVELS, LEVELS).map(list))),
)
def test_the_best_levels_are_the_heaps_over_each_side(
    bids: list[tuple[float, float]],
    asks: list[tuple[float, float]],
    steps: list[tuple[list[tuple[float | None, float]], list[tuple[float | None, float]]]]
    | list[list[list[tuple[float, float]]]],
) -> None:
    """The sides' sorted prices follow every snapshot (repeated prices, empty levels) and
    change (new, replaced and removed levels, a removal of a level not there, a change of the
    sequence alone): ``top`` at any depth is the heap's."""
    book = Level2Book(SYMBOL)
    book.snapshot(Snapshot(SYMBOL, 1, 0, tuple(bids), tuple(asks)))
    sequence = 1
    for step in steps:
        if isinstance(step, list):  # a new snapshot
            sequence += 1
            book.snapshot(Snapshot(SYMBOL, sequence, 0, tuple(step[0]), tuple(step[1])))
        else:
            bid_changes, ask_changes = (
                tuple(Change(p, s, sequence + 1 + n) for n, (p, s) in enumerate(side))
                for side in step
            )
            end = sequence + 1 + max(len(bid_changes), len(ask_changes), 1)
            assert book.increment(inc(sequence + 1, end, bid_changes, ask_changes)) is (
                Outcome.APPLIED
            )
            sequence = end
        for depth in (0, 1, 3, 100, 1 << 30):
            assert book.top(depth) == heap_top(book, depth)
