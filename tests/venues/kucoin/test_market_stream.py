"""KuCoin's market stream: books kept from the level-2 increments by the sync procedure, over
loopback against the simulator's face on ``autojump_clock``, equal to the face's exchange book
after the market moved, and again after increments were lost (dropped on the way, or the
connection closed by the face); trades and mids from the spec's messages on a scripted socket
(the face does not serve those topics)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any

import attrs
import pytest
import trio
import trio.testing

from mm.connection import ConnectionConfig
from mm.model import BookSnapshot, Mids, PriceLevel, Side, Trade
from mm.venues.base import Gap, Malformed
from mm.venues.kucoin.ids import trade_id
from mm.venues.kucoin.level2 import Snapshot
from mm.venues.kucoin.market_stream import BookStream, KucoinMarketStream
from mm.venues.kucoin.ws import KucoinWs, Socket
from mm.venues.sim.kucoin.depth import ALL_LEVELS
from mm.websocket import open_websocket_url
from tests.fixture_paths import KUCOIN
from tests.venues.kucoin.face import Face, running_face
from tests.venues.kucoin.test_ws import FakeVenue

SYMBOL = "BTC-USDT"
SPEC: dict[str, Any] = json.loads((KUCOIN / "ws_market.json").read_text(encoding="utf-8"))


def exchange_book(face: Face, symbol: str, depth: int = ALL_LEVELS) -> tuple[Any, Any]:
    """The face's exchange book of ``symbol`` as the stream's levels: (bids, asks)."""
    book, spec = face.venue.exchange.books[symbol], face.venue.depth.symbols[symbol]

    def side(is_buy: bool) -> tuple[PriceLevel, ...]:
        return tuple(
            (float(spec.price(px)), float(spec.size(size)), 0)
            for px, size, _ in book.levels(is_buy, depth)
        )

    return side(True), side(False)


async def in_sync(stream: BookStream, face: Face, after: float) -> BookSnapshot:
    """The first book, from ``after`` on (Trio's clock), at the face's current sequence."""
    async for event in stream:
        if (
            isinstance(event, BookSnapshot)
            and trio.current_time() >= after
            and event.seq == face.venue.depth.sequence[stream.symbol]
        ):
            return event
    raise AssertionError(f"the stream ended: {stream.error}")


@asynccontextmanager
async def market(
    face: Face,
    snapshot: Callable[[str], Any] | None = None,
    connect: Callable[[str], AbstractAsyncContextManager[Socket]] | None = None,
) -> AsyncIterator[KucoinMarketStream]:
    ws = KucoinWs(face.bullet, ConnectionConfig(), name="kucoin-market-test", connect=connect)
    stream = KucoinMarketStream(ws, snapshot or face.snapshot)
    async with trio.open_nursery() as nursery:
        await nursery.start(ws.run)
        await nursery.start(stream.run)
        yield stream
        nursery.cancel_scope.cancel()


async def test_a_book_follows_the_face_for_thirty_seconds(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async with running_face() as face, market(face) as stream:
        full = await stream.books(SYMBOL, buffer=8)
        top = await stream.books(SYMBOL, buffer=8, depth=3)
        first = await anext(aiter(full))
        assert isinstance(first, BookSnapshot)
        assert first.seq is not None
        book = await in_sync(full, face, after=30.0)
        assert (book.bids, book.asks) == exchange_book(face, SYMBOL)
        assert len(book.bids) > 3
        assert book.seq is not None
        assert book.seq > first.seq  # the market moved
        cut = await in_sync(top, face, after=30.0)
        assert (cut.bids, cut.asks) == exchange_book(face, SYMBOL, 3)
        assert full.gaps == top.gaps == 0
        assert face.snapshots == 2  # one per stream, at the start


@attrs.define(eq=False)
class Dropping:
    """A socket that loses some of the venue's level-2 messages (as a slow link would)."""

    inner: Any
    lose: Callable[[int], bool]  # by the message's number among the level-2 ones
    seen: int = 0
    lost: int = 0

    async def get_message(self) -> str | bytes:
        while True:
            message = await self.inner.get_message()
            if '"/market/level2:' in str(message):
                self.seen += 1
                if self.lose(self.seen):
                    self.lost += 1
                    continue
            return message  # type: ignore[no-any-return]

    async def send_message(self, message: str | bytes) -> None:
        await self.inner.send_message(message)


async def test_lost_increments_show_as_a_gap_and_the_book_is_synced_again(
    autojump_clock: trio.testing.MockClock,
) -> None:
    sockets: list[Dropping] = []

    @asynccontextmanager
    async def connect(url: str) -> AsyncIterator[Socket]:
        async with open_websocket_url(url) as ws:
            sockets.append(Dropping(ws, lambda n: n in (50, 51, 120)))
            yield sockets[-1]

    async with running_face() as face, market(face, connect=connect) as stream:
        book = await stream.books(SYMBOL, buffer=8)
        events: list[Any] = []
        async for event in book:
            events.append(event)
            if sockets[0].lost == 3 and book.resyncs == 3:
                break
        gaps = [i for i, event in enumerate(events) if isinstance(event, Gap)]
        assert len(gaps) == 2  # one per hole in the sequence (50-51, 120)
        assert all(isinstance(events[i + 1], BookSnapshot) for i in gaps)
        assert book.gaps == 2
        assert face.snapshots == 3  # the first, and one per gap
        synced = await in_sync(book, face, after=trio.current_time() + 5)
        assert (synced.bids, synced.asks) == exchange_book(face, SYMBOL)
        assert stream.ws.reconnects == 0


async def test_a_connection_the_face_closes_is_a_gap_and_a_new_snapshot(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async with running_face() as face, market(face) as stream:
        book = await stream.books(SYMBOL, buffer=8)
        await in_sync(book, face, after=2.0)
        assert face.drop_sessions("level2", SYMBOL) == 1
        async for event in book:
            if isinstance(event, Gap):
                break
        assert isinstance(await anext(aiter(book)), BookSnapshot)
        assert stream.ws.reconnects == 1
        assert face.snapshots == 2
        synced = await in_sync(book, face, after=trio.current_time() + 10)
        assert (synced.bids, synced.asks) == exchange_book(face, SYMBOL)


async def test_a_failing_snapshot_is_asked_again_and_never_ends_the_stream(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async with running_face() as face:
        failures = [RuntimeError("venue down"), OSError("no route")]

        async def snapshot(symbol: str) -> Snapshot:
            if failures:
                raise failures.pop()
            return await face.snapshot(symbol)

        async with market(face, snapshot=snapshot) as stream:
            book = await stream.books(SYMBOL, buffer=8)
            first = await anext(aiter(book))
            assert isinstance(first, BookSnapshot)
            assert book.snapshot_failures == 2
            synced = await in_sync(book, face, after=trio.current_time() + 5)
            assert (synced.bids, synced.asks) == exchange_book(face, SYMBOL)


async def test_books_need_the_stream_running() -> None:
    async def snapshot(symbol: str) -> Snapshot:
        raise AssertionError("never asked")

    stream = KucoinMarketStream(
        KucoinWs(FakeVenue().bullet, ConnectionConfig(), name="x"), snapshot
    )
    with pytest.raises(RuntimeError, match="run"):
        await stream.books(SYMBOL, buffer=8)


async def test_trades_and_mids_from_the_specs_messages(
    autojump_clock: trio.testing.MockClock,
) -> None:
    venue = FakeVenue()
    ws = KucoinWs(venue.bullet, ConnectionConfig(), name="fake", connect=venue.connect)

    async def no_snapshot(symbol: str) -> Snapshot:
        raise AssertionError("no book here")

    stream = KucoinMarketStream(ws, no_snapshot)
    async with trio.open_nursery() as nursery:
        await nursery.start(ws.run)
        await nursery.start(stream.run)
        trades = await stream.trades(SYMBOL, buffer=8)
        mids = await stream.mids(buffer=8)
        socket = venue.sockets[0]
        assert [m["topic"] for m in socket.sent] == ["/market/match:BTC-USDT", "/market/ticker:all"]
        socket.push(SPEC["match"])
        socket.push({**SPEC["match"], "data": {**SPEC["match"]["data"], "side": "short"}})
        assert await anext(aiter(trades)) == Trade(
            SYMBOL, Side.BUY, 67523.0, 0.003, 1729843222921, trade_id("11067996711960577")
        )
        assert isinstance(await anext(aiter(trades)), Malformed)
        # Tickers queued are folded into one Mids: the whole map, the latest of each symbol.
        socket.push(SPEC["all_tickers"])
        eth = {**SPEC["all_tickers"], "subject": "ETH-USDT"}
        socket.push({**eth, "data": {**eth["data"], "bestBid": "2000", "bestAsk": "2002"}})
        socket.push({**SPEC["all_tickers"], "data": {**SPEC["all_tickers"]["data"], "bestBid": ""}})
        await trio.testing.wait_all_tasks_blocked()
        first = await anext(aiter(mids))
        btc = (67218.6 + 67218.7) / 2
        assert first == Mids({"BTC-USDT": btc, "ETH-USDT": 2001.0})
        assert isinstance(await anext(aiter(mids)), Malformed)  # the empty bid's
        socket.push(
            {**SPEC["all_tickers"], "data": {**SPEC["all_tickers"]["data"], "bestBid": "0"}}
        )
        assert await anext(aiter(mids)) == Mids({"ETH-USDT": 2001.0})  # BTC-USDT's bids gone
        assert first.mids["BTC-USDT"] == btc  # each Mids its own dict
        nursery.cancel_scope.cancel()


async def test_delivered_books_come_in_the_receive_loop_and_a_failing_handler_ends_its_stream(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async with running_face() as face, market(face) as stream:
        delivered = await stream.books(SYMBOL, buffer=8)
        iterated = await stream.books(SYMBOL, buffer=8)
        books: list[BookSnapshot] = []
        tasks: set[str] = set()

        def handle(event: Any) -> None:
            assert isinstance(event, BookSnapshot), event
            tasks.add(trio.lowlevel.current_task().name)
            books.append(event)
            if len(books) == 50:
                raise ValueError("the consumer's bug")

        delivered.deliver(handle)
        with pytest.raises(trio.BusyResourceError):
            delivered.deliver(handle)
        with pytest.raises(ValueError, match="the consumer's bug"):
            await anext(aiter(delivered))  # raised in the consumer's task, not the socket's
        assert len(books) == 50
        assert delivered.conflated == 0  # each handed over as it was made, none replaced
        # The first book comes from the resync task, the rest in the socket's receive loop.
        assert any(name.endswith("_receive_loop") for name in tasks), tasks
        assert all(b.seq is not None for b in books)
        seqs = [b.seq for b in books if b.seq is not None]
        assert seqs == sorted(seqs)
        # The connection and the other stream go on; the failed one hears nothing more.
        synced = await in_sync(iterated, face, after=trio.current_time() + 5)
        assert (synced.bids, synced.asks) == exchange_book(face, SYMBOL)
        assert len(books) == 50
        assert stream.ws.reconnects == 0
