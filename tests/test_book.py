"""The L2 Book's derived prices and the conflating BookBus."""

from __future__ import annotations

import pytest
import trio
import trio.testing

from mm.book import Book, BookBus
from mm.model import BookSnapshot, Level


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
