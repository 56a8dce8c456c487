"""Hyperliquid's user stream as the venue port's ``UserStream``: one address's events and reads.

``HyperliquidUserStream`` subscribes, on a ``WsConnection`` that runs as its own child (and
subscribes again after every reconnect), ``orderUpdates``, ``userFills`` and ``userEvents`` for
the user, and hands each on as an ``EventStream`` of typed values, every frame decoded once by
the codec: orderUpdates frames are ``OrderReport`` values; userFills frames are the fills
(``Fill``) or, for the snapshot the venue sends on every (re)subscribe (``isSnapshot``), one
``FillsSnapshot``; userEvents (``user``) frames are their fills, liquidation, non-user cancels
and funding payment, in that order. The venue's frames carry no sequence numbers: a frame the
connection dropped because the consumer fell behind comes as the port's ``Gap``; losses on a
disconnect show in ``connected`` and ``reconnects`` and in the connection's state changes,
which ``watching`` passes on (``WsConnection.watching``).

The resync's reads are REST ``/info`` requests through the ``InfoSource`` the stream is given
(the service's is ``mm.venues.hyperliquid.queries.RestQueries``, through the rate limiter, at
their true weight), each within ``deadline_s``: ``userFills`` (the most recent fills),
``userFillsByTime`` (a page of at most ``limits.FILLS_PAGE``), ``frontendOpenOrders`` and
``clearinghouseState`` (stamped with our clock when asked).

How it fails: a frame that does not parse is a ``Malformed`` marker; another user's userFills
frame, or a frame of a channel the stream does not carry, is a ``Foreign`` one; a read fails
with the transport's ``VenueError`` (``RateLimited`` for a 429) or ``CodecError`` (a
``MalformedAnswer``) for an answer without the venue's shape.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from contextlib import AbstractContextManager
from typing import Any, Final, Protocol

from mm import clock
from mm.model import AccountState, Fill, FillsSnapshot, OpenOrder
from mm.venues.base import EventStream, Foreign, UserStreamItem
from mm.venues.hyperliquid import limits
from mm.venues.hyperliquid.codec import (
    CodecError,
    OrderUpdatesFrame,
    UserEventsFrame,
    UserFillsFrame,
    decode_message,
    parse_clearinghouse_state,
    parse_fills,
    parse_open_orders,
)
from mm.venues.hyperliquid.market_stream import ParsedStream
from mm.venues.hyperliquid.ws import Subscription

__all__ = ["USER_CHANNELS", "HyperliquidUserStream", "InfoSource", "UserConnection"]

USER_CHANNELS: Final = ("orderUpdates", "userFills", "userEvents")


class UserConnection(Protocol):
    """The part of ``WsConnection`` the user stream uses."""

    reconnects: int

    def watching(self, on_change: Callable[[bool, str], None]) -> AbstractContextManager[None]: ...

    @property
    def connected(self) -> bool: ...

    async def subscribe(
        self, subscription: Mapping[str, Any], *, buffer: int | None = None
    ) -> Subscription: ...

    async def unsubscribe(self, sub: Subscription) -> None: ...


class InfoSource(Protocol):
    """``POST /info``, as ``RestTransport`` and ``RestQueries`` (through the limiter) offer it."""

    async def info(self, request: Mapping[str, Any], *, deadline_s: float | None = None) -> Any: ...


class HyperliquidUserStream:
    """One address's orderUpdates, userFills and userEvents, and its reads; see the module."""

    fills_page: Final = limits.FILLS_PAGE

    def __init__(
        self,
        user: str,
        connection: UserConnection,
        rest: InfoSource,
        *,
        deadline_s: float | None,
    ) -> None:
        self.user = user.lower()
        self._conn = connection
        self._rest = rest
        self._deadline_s = deadline_s

    @property
    def account(self) -> str:
        return self.user

    @property
    def connected(self) -> bool:
        return self._conn.connected

    @property
    def reconnects(self) -> int:
        return self._conn.reconnects

    def watching(self, on_change: Callable[[bool, str], None]) -> AbstractContextManager[None]:
        return self._conn.watching(on_change)

    async def subscribe(
        self, *, buffer: int | None = None
    ) -> list[EventStream[UserStreamItem | Foreign]]:
        streams: list[EventStream[UserStreamItem | Foreign]] = []
        for kind in USER_CHANNELS:
            sub = await self._conn.subscribe({"type": kind, "user": self.user}, buffer=buffer)
            streams.append(ParsedStream(sub, kind, self._parse))
        return streams

    async def unsubscribe(self, stream: EventStream[Any]) -> None:
        if not isinstance(stream, ParsedStream):
            raise TypeError(f"not a stream of this venue: {stream!r}")
        await self._conn.unsubscribe(stream.subscription)

    def _parse(self, delivery: dict[str, Any]) -> list[UserStreamItem | Foreign]:
        try:
            frame = decode_message(delivery)
        except TypeError as error:
            raise CodecError(str(error)) from error
        if isinstance(frame, OrderUpdatesFrame):
            return list(frame.reports)
        if isinstance(frame, UserFillsFrame):
            if frame.user.lower() != self.user:
                return [Foreign(f"fills of {frame.user}")]
            if frame.is_snapshot:
                return [FillsSnapshot(tuple(frame.fills))]
            return list(frame.fills)
        if isinstance(frame, UserEventsFrame):
            events: list[UserStreamItem | Foreign] = list(frame.fills)
            if frame.liquidation is not None:
                events.append(frame.liquidation)
            events.extend(frame.non_user_cancels)
            if frame.funding is not None:
                events.append(frame.funding)
            return events
        return [Foreign(type(frame).__name__)]

    # --- reads ------------------------------------------------------------------------------------

    async def _info(self, request: Mapping[str, Any]) -> Any:
        return await self._rest.info(request, deadline_s=self._deadline_s)

    async def recent_fills(self) -> list[Fill]:
        return parse_fills(await self._info({"type": "userFills", "user": self.user}))

    async def fills_since(self, time_ms: int) -> list[Fill]:
        request = {"type": "userFillsByTime", "user": self.user, "startTime": time_ms}
        return parse_fills(await self._info(request))

    async def open_orders(self) -> list[OpenOrder]:
        return parse_open_orders(
            await self._info({"type": "frontendOpenOrders", "user": self.user})
        )

    async def account_state(self) -> AccountState:
        local_ms = clock.wall_ms()
        data = await self._info({"type": "clearinghouseState", "user": self.user})
        return parse_clearinghouse_state(data, local_ms)
