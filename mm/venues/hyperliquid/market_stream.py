"""Hyperliquid's market data as the venue port's ``MarketStream``.

``HyperliquidMarketStream`` subscribes, on a ``WsConnection`` (run as its own child elsewhere,
which keeps the socket up and subscribes again after every reconnect), ``l2Book`` and
``trades`` per coin and ``allMids`` once, and hands each subscription on as an ``EventStream``
of typed values, every frame parsed once by the codec: an l2Book frame is a ``BookSnapshot``
(the venue's books are full snapshots, timed by the venue, with no sequence number; only the
levels within the subscriber's ``depth`` are parsed, and it carries the connection's stamp of
the frame's arrival, ``received_ns``), a trades frame the ``Trade`` values it lists, an
allMids frame one ``Mids``. Book subscriptions never queue: a book stream (``BookStream``, the
port's ``DirectStream``) either hands each frame, parsed, to its consumer's handler as it
arrives, in the connection's receive task (``deliver``: no task switch per frame, the
consumer is never behind), or, iterated, the connection keeps the latest frame of a coin and
the stream parses only that one, so a consumer that falls behind skips to the newest book
instead of working through stale ones (and sees no gap: nothing is lost that a later snapshot
does not carry).

How it fails: a frame that does not parse (or a frame of another channel on a subscription)
comes as a ``Malformed`` marker, for the feed to count and skip (delivered books too); a
delivered book's handler that raises ends that book stream only, and iterating it raises the
error in the consumer's task, not the connection's; frames the connection dropped
because the feed fell behind come as the port's ``Gap`` (for books nothing more is needed: the
next l2Book frame replaces the book). A subscription the venue refuses while the socket is up
raises ``SubscriptionRejected``; one refused on a later connect ends its stream, with the
venue's text as ``error``.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Generic, Protocol, TypeVar

import trio

from mm.model import BookSnapshot, Mids, Trade
from mm.venues.base import EventStream, Gap, Malformed
from mm.venues.hyperliquid.codec import (
    CodecError,
    TradesFrame,
    decode_message,
    parse_all_mids,
    parse_l2_book,
)
from mm.venues.hyperliquid.ws import ConflatingSubscription, Subscription

__all__ = [
    "BOOK_CHANNEL",
    "MIDS_CHANNEL",
    "TRADES_CHANNEL",
    "BookStream",
    "HyperliquidMarketStream",
    "MarketConnection",
    "ParsedStream",
]

BOOK_CHANNEL = "l2Book"
TRADES_CHANNEL = "trades"
MIDS_CHANNEL = "allMids"

_T = TypeVar("_T")


class MarketConnection(Protocol):
    """What the market stream uses of its connection (``WsConnection`` satisfies it)."""

    @property
    def connected(self) -> bool: ...

    async def wait_connected(self) -> None: ...

    async def subscribe(
        self, subscription: Mapping[str, Any], *, buffer: int | None = None, conflate: bool = False
    ) -> Subscription: ...

    async def unsubscribe(self, sub: Subscription) -> None: ...


class ParsedStream(Generic[_T]):
    """One subscription's frames, parsed: the port's ``EventStream`` over a ``Subscription``."""

    def __init__(
        self,
        sub: Subscription,
        channel: str,
        parse: Callable[[dict[str, Any]], Sequence[_T]],
    ) -> None:
        self.subscription = sub
        self.channel = channel
        self._parse = parse
        self._pending: deque[_T] = deque()

    @property
    def active(self) -> bool:
        return self.subscription.active

    @property
    def error(self) -> str | None:
        return self.subscription.error

    @property
    def description(self) -> str:
        return str(self.subscription.subscription)

    @property
    def gaps(self) -> int:
        return self.subscription.gaps

    def __aiter__(self) -> ParsedStream[_T]:
        return self

    async def __anext__(self) -> _T | Gap | Malformed:
        pending = self._pending
        while not pending:
            try:
                delivery = await self.subscription.receive()
            except trio.EndOfChannel:
                raise StopAsyncIteration from None
            if type(delivery) is dict:
                try:
                    events = self._parse(delivery)
                except CodecError as error:
                    return Malformed(str(error))
                if len(events) == 1:
                    return events[0]
                pending.extend(events)
            elif isinstance(delivery, Gap):
                return delivery
        return pending.popleft()


class BookStream(ParsedStream[BookSnapshot]):
    """A coin's l2Book subscription: a ``ParsedStream`` over a ``ConflatingSubscription``, and
    the port's ``DirectStream``: ``deliver`` has each frame parsed and handed to the consumer's
    handler as it arrives, in the connection's task (no slot, no task switch per frame); a
    frame that does not parse is handed on as ``Malformed``. A handler that raises ends the
    stream: iterating it raises that exception in the consumer's task (the subscription's
    ``failure``), and the connection goes on."""

    def __init__(self, sub: ConflatingSubscription, depth: int | None) -> None:
        def parse(frame: dict[str, Any]) -> list[BookSnapshot]:
            # The frame's arrival: the subscription's stamp of the frame it just handed out.
            return parse_book_frame(frame, sub.received_ns, depth)

        super().__init__(sub, BOOK_CHANNEL, parse)
        self.conflating = sub
        self.depth = depth

    def deliver(self, handle: Callable[[BookSnapshot | Gap | Malformed], None]) -> None:
        depth = self.depth

        def sink(frame: dict[str, Any] | str, received_ns: int) -> None:
            if type(frame) is not dict:
                return  # (as when iterated: only frame objects are routed to a subscription)
            try:
                book = parse_l2_book(frame.get("data"), depth, received_ns)
            except CodecError as error:
                handle(Malformed(str(error)))
                return
            handle(book)

        self.conflating.attach(sink)


def parse_book_frame(
    frame: dict[str, Any], received_ns: int = 0, depth: int | None = None
) -> list[BookSnapshot]:
    return [parse_l2_book(frame.get("data"), depth, received_ns)]


def parse_trades_frame(frame: dict[str, Any]) -> list[Trade]:
    # The codec parses text; the connection hands the frame on already parsed.
    decoded = decode_message(frame)
    if not isinstance(decoded, TradesFrame):
        raise CodecError(f"not a trades frame: {type(decoded).__name__}")
    return decoded.trades


def parse_mids_frame(frame: dict[str, Any]) -> list[Mids]:
    data = frame.get("data")
    return [parse_all_mids(data.get("mids") if type(data) is dict else None)]


class HyperliquidMarketStream:
    """l2Book, trades and allMids of one connection, typed; see the module docstring."""

    def __init__(self, conn: MarketConnection) -> None:
        self.conn = conn

    @property
    def connected(self) -> bool:
        return self.conn.connected

    async def wait_connected(self) -> None:
        await self.conn.wait_connected()

    async def books(self, symbol: str, *, buffer: int, depth: int | None = None) -> BookStream:
        # Every l2Book frame is a full snapshot: the connection keeps the latest for us, or
        # hands each to the consumer as it comes (``BookStream.deliver``).
        sub = await self.conn.subscribe(
            {"type": BOOK_CHANNEL, "coin": symbol}, buffer=buffer, conflate=True
        )
        if not isinstance(sub, ConflatingSubscription):
            raise TypeError(f"a book subscription must conflate, got {sub!r}")
        return BookStream(sub, depth)

    async def trades(self, symbol: str, *, buffer: int) -> ParsedStream[Trade]:
        sub = await self.conn.subscribe({"type": TRADES_CHANNEL, "coin": symbol}, buffer=buffer)
        return ParsedStream(sub, TRADES_CHANNEL, parse_trades_frame)

    async def mids(self, *, buffer: int) -> ParsedStream[Mids]:
        sub = await self.conn.subscribe({"type": MIDS_CHANNEL}, buffer=buffer)
        return ParsedStream(sub, MIDS_CHANNEL, parse_mids_frame)

    async def unsubscribe(self, stream: EventStream[Any]) -> None:
        if not isinstance(stream, ParsedStream):
            raise TypeError(f"not a stream of this venue: {stream!r}")
        await self.conn.unsubscribe(stream.subscription)
