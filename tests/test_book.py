"""The L2 Book's derived prices, the BookBuilder of snapshots and sequenced deltas, and the
conflating BookBus."""

from __future__ import annotations

import itertools

import pytest
import trio
import trio.testing
from hypothesis import given
from hypothesis import strategies as st

from mm.book import Applied, Book, BookBuilder, BookBus
from mm.model import BookDelta, BookSnapshot, Level


def book(bid: float | None, ask: float | None, *, coin: str = "BTC", time_ms: int = 1) -> Book:
    bids = (Level(bid, 2.0, 1), Level(bid - 1, 5.0, 2)) if bid is not None else ()
    asks = (Level(ask, 1.0, 1), Level(ask + 1, 4.0, 3)) if ask is not None else ()
    return Book(coin, time_ms, bids, asks)


def test_derived_prices() -> None:
    b = book(100.0, 102.0)
    assert (b.best_bid, b.best_ask, b.mid, b.spread) == (100.0, 102.0, 101.0, 2.0)
    # Microprice leans toward the side with less size: ask size 1 vs bid size 2.
    assert b.microprice == pytest.approx((100.0 * 1.0 + 102.0 * 2.0) / 3.0)
    assert not b.is_crossed
    assert not b.is_locked


def test_one_sided_book_has_no_mid() -> None:
    b = book(100.0, None)
    assert b.best_ask is None
    assert b.mid is None
    assert b.spread is None
    assert b.microprice is None


def test_crossed_and_locked() -> None:
    assert book(103.0, 102.0).is_crossed
    assert book(102.0, 102.0).is_locked
    assert not book(102.0, 102.0).is_crossed


def test_depth_within_a_distance_of_the_best() -> None:
    b = book(100.0, 102.0)
    assert b.depth(True, 0.5) == 2.0
    assert b.depth(True, 1.0) == 7.0
    assert b.depth(False, 1.0) == 5.0


def test_from_snapshot_and_age() -> None:
    snapshot = BookSnapshot("ETH", 1_000, (Level(10.0, 1.0),), (Level(11.0, 1.0),))
    b = Book.from_snapshot(snapshot, received_ms=1_050)
    assert (b.coin, b.time_ms, b.received_ms, b.mid) == ("ETH", 1_000, 1_050, 10.5)
    assert b.age_ms(1_300) == 300
    assert b.received_ns == 0  # not stamped
    stamped = Book.from_snapshot(snapshot, received_ms=1_050, received_ns=7_123_456_789)
    assert stamped.received_ns == 7_123_456_789


async def test_latest_book_per_symbol_wins() -> None:
    bus = BookBus()
    for t in range(1, 6):
        bus.publish(book(100.0 + t, 102.0 + t, time_ms=t))
    bus.publish(book(1.0, 2.0, coin="ETH"))
    latest = bus.latest("BTC")
    assert latest is not None
    assert latest.time_ms == 5
    assert bus.version("BTC") == 5
    assert bus.version("ETH") == 6
    assert bus.latest("SOL") is None
    assert sorted(bus.coins()) == ["BTC", "ETH"]


async def test_wait_newer_returns_at_once_when_already_newer() -> None:
    bus = BookBus()
    bus.publish(book(100.0, 101.0, time_ms=7))
    with trio.fail_after(1):
        version, latest = await bus.wait_newer("BTC", 0)
    assert (version, latest.time_ms) == (1, 7)


async def test_a_slow_reader_skips_to_the_latest_book(
    autojump_clock: trio.testing.MockClock,
) -> None:
    bus = BookBus()
    seen: list[int] = []

    async def reader() -> None:
        version = 0
        while len(seen) < 2:
            version, latest = await bus.wait_newer("BTC", version)
            seen.append(latest.time_ms)
            await trio.sleep(10.5)  # slow: many books are published meanwhile (no ties)

    async with trio.open_nursery() as nursery:
        nursery.start_soon(reader)
        await trio.sleep(1)
        for t in range(1, 21):
            bus.publish(book(100.0, 101.0, time_ms=t))  # publishing never waits for readers
            await trio.sleep(1)
    assert seen[0] == 1
    assert seen[1] == 11  # everything in between was conflated away


async def test_wait_newer_ignores_other_symbols(autojump_clock: trio.testing.MockClock) -> None:
    bus = BookBus()
    got: list[str] = []

    async def reader() -> None:
        _, latest = await bus.wait_newer("BTC", 0)
        got.append(latest.coin)

    async with trio.open_nursery() as nursery:
        nursery.start_soon(reader)
        await trio.sleep(1)
        bus.publish(book(1.0, 2.0, coin="ETH"))
        await trio.sleep(1)
        assert got == []
        bus.publish(book(1.0, 2.0, coin="BTC"))
    assert got == ["BTC"]


async def test_wait_any(autojump_clock: trio.testing.MockClock) -> None:
    bus = BookBus()
    async with trio.open_nursery() as nursery:

        async def later() -> None:
            await trio.sleep(5)
            bus.publish(book(1.0, 2.0, coin="ETH"))

        nursery.start_soon(later)
        assert await bus.wait_any(0) == 1
        assert trio.current_time() == pytest.approx(5)


async def test_readers_are_woken_whenever_they_came_and_went(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """Books published with no reader waiting, a reader cancelled while waiting, readers
    waiting on one symbol and on any: each waiting reader is woken by the next book, and the
    bus counts none waiting once they are gone."""
    bus = BookBus()
    for t in range(1, 4):
        bus.publish(book(100.0, 101.0, time_ms=t))  # nobody waits
    with trio.move_on_after(1):
        await bus.wait_newer("BTC", bus.version("BTC"))  # cancelled while waiting
    assert bus._waiting == 0
    got: list[tuple[str, int]] = []

    async def one(seen: int) -> None:
        _, latest = await bus.wait_newer("BTC", seen)
        got.append(("BTC", latest.time_ms))

    async def any_(seen: int) -> None:
        got.append(("any", await bus.wait_any(seen)))

    async with trio.open_nursery() as nursery:
        nursery.start_soon(one, bus.version("BTC"))
        nursery.start_soon(any_, bus.version("BTC"))
        await trio.testing.wait_all_tasks_blocked()
        assert bus._waiting == 2
        bus.publish(book(100.0, 101.0, time_ms=4))
        bus.publish(book(100.0, 101.0, time_ms=5))  # before either ran: no one left behind
    assert sorted(got) == [("BTC", 5), ("any", 5)]
    assert bus._waiting == 0
    async with trio.open_nursery() as nursery:  # and again, after books with none waiting
        bus.publish(book(100.0, 101.0, time_ms=6))
        nursery.start_soon(one, bus.version("BTC"))
        await trio.testing.wait_all_tasks_blocked()
        bus.publish(book(100.0, 101.0, time_ms=7))
    assert got[-1] == ("BTC", 7)


# --- BookBuilder: snapshots and sequenced deltas ----------------------------------------------

# One change of the venue's book: (is_bid, price, size; 0 removes the price).
Change = tuple[bool, float, float]
CHANGES = st.lists(
    st.tuples(
        st.booleans(),
        st.sampled_from([97.0, 98.0, 99.0, 100.0, 101.0, 102.0, 103.0]),
        st.sampled_from([0.0, 0.5, 1.0, 2.5]),
    ),
    max_size=40,
)


def venue_books(changes: list[Change]) -> list[tuple[tuple[Level, ...], tuple[Level, ...]]]:
    """The venue's book after each sequence number (index = sequence), best first."""
    bids: dict[float, float] = {}
    asks: dict[float, float] = {}
    books = []
    for change in [None, *changes]:
        if change is not None:
            is_bid, px, sz = change
            side = bids if is_bid else asks
            if sz > 0:
                side[px] = sz
            else:
                side.pop(px, None)
        books.append(
            (
                tuple(Level(px, sz) for px, sz in sorted(bids.items(), reverse=True)),
                tuple(Level(px, sz) for px, sz in sorted(asks.items())),
            )
        )
    return books


def deltas(changes: list[Change], first: int, cuts: list[int]) -> list[BookDelta]:
    """Changes ``first``..end (sequence numbers from 1) in messages cut at ``cuts``."""
    bounds = sorted(
        {first, *(cut for cut in cuts if first < cut <= len(changes)), len(changes) + 1}
    )
    out = []
    for start, end in itertools.pairwise(bounds):
        part = changes[start - 1 : end - 1]
        bids = tuple(Level(px, sz) for is_bid, px, sz in part if is_bid)
        asks = tuple(Level(px, sz) for is_bid, px, sz in part if not is_bid)
        out.append(BookDelta("BTC", end - 1, start, end - 1, bids, asks))
    return out


@given(CHANGES, st.data())
def test_deltas_from_any_snapshot_build_the_venues_book(
    changes: list[Change], data: st.DataObject
) -> None:
    """A snapshot at any sequence, then the venue's deltas from any point at or before the one
    that follows it (overlap is the rule on a delta venue), cut anywhere: the venue's book."""
    books = venue_books(changes)
    at = data.draw(st.integers(0, len(changes)), label="snapshot at")
    first = data.draw(st.integers(1, at + 1), label="deltas from")
    cuts = data.draw(st.lists(st.integers(1, len(changes) + 1)), label="cuts")
    builder = BookBuilder("BTC")
    builder.snapshot(BookSnapshot("BTC", at, *books[at], seq=at))
    for delta in deltas(changes, first, cuts):
        expected = Applied.STALE if delta.seq <= at else Applied.APPLIED
        assert builder.delta(delta) is expected
    built = builder.book(received_ms=7, received_ns=8)
    assert built is not None
    assert (built.bids, built.asks) == books[-1]
    assert (built.received_ms, built.received_ns) == (7, 8)
    assert builder.seq == max(at, len(changes))


@given(CHANGES.filter(lambda changes: len(changes) >= 2), st.data())
def test_a_delta_that_does_not_follow_loses_the_book_until_a_snapshot(
    changes: list[Change], data: st.DataObject
) -> None:
    books = venue_books(changes)
    at = data.draw(st.integers(0, len(changes) - 2), label="snapshot at")
    builder = BookBuilder("BTC")
    builder.snapshot(BookSnapshot("BTC", at, *books[at], seq=at))
    skipped = data.draw(st.integers(at + 2, len(changes)), label="resumes at")
    [*_, last] = deltas(changes, skipped, [])
    assert builder.delta(last) is Applied.GAP
    assert builder.book() is None
    assert builder.delta(last) is Applied.NO_BASE
    builder.snapshot(BookSnapshot("BTC", len(changes), *books[-1], seq=len(changes)))
    built = builder.book()
    assert built is not None
    assert (built.bids, built.asks) == books[-1]


def test_a_book_without_a_sequence_takes_no_deltas() -> None:
    builder = BookBuilder("BTC")
    delta = BookDelta("BTC", 2, 1, 1, (Level(99.0, 1.0),))
    assert builder.delta(delta) is Applied.NO_BASE  # nothing yet
    builder.snapshot(BookSnapshot("BTC", 1, (Level(98.0, 1.0),), ()))
    assert builder.delta(delta) is Applied.NO_BASE
    built = builder.book()
    assert built is not None
    assert built.bids == (Level(98.0, 1.0),)
    builder.lose()
    assert builder.book() is None


async def test_a_listener_hears_every_book_as_it_is_published_within_its_block() -> None:
    bus = BookBus()
    heard: list[tuple[int, int]] = []  # (time_ms, the bus's version of BTC when heard)

    def listener(published: Book) -> None:
        heard.append((published.time_ms, bus.version("BTC")))

    bus.publish(book(100.0, 101.0, time_ms=1))
    with bus.listening(listener):
        for t in (2, 3, 4):  # none conflated away: each as it is published, the bus updated
            bus.publish(book(100.0, 101.0, time_ms=t))
    bus.publish(book(100.0, 101.0, time_ms=5))
    assert heard == [(2, 2), (3, 3), (4, 4)]
