"""A KuCoin topic's messages as the venue port's ``EventStream``: what the market and user
streams share.

``OnTopic`` is the part every stream over one ``TopicSubscription`` has: its channel (the
topic's prefix, by which counters are kept) and the subscription's state (``active``,
``error``, ``gaps``). ``ParsedTopic`` is the plain stream: each ``Frame`` parsed, in the
consumer's task, into the events it carries (an order change that is a match is a report and a
fill), the subscription's ``Gap`` markers passed on, and a frame whose parse raises
``CodecError`` handed on as ``Malformed``; iteration ends when the subscription does.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Sequence
from typing import Generic, TypeVar

from mm.venues.base import Gap, Malformed
from mm.venues.kucoin.codec import CodecError
from mm.venues.kucoin.ws import Frame, TopicSubscription

__all__ = ["OnTopic", "ParsedTopic"]

_T = TypeVar("_T")


class OnTopic:
    """A stream over one ``TopicSubscription``: its channel and the subscription's state."""

    def __init__(self, sub: TopicSubscription) -> None:
        self.subscription = sub
        self.channel = sub.channel

    @property
    def active(self) -> bool:
        return self.subscription.active

    @property
    def error(self) -> str | None:
        return self.subscription.error

    @property
    def description(self) -> str:
        return self.subscription.topic

    @property
    def gaps(self) -> int:
        return self.subscription.gaps


class ParsedTopic(OnTopic, Generic[_T]):
    """One topic's frames, parsed into the events each carries (see the module)."""

    def __init__(self, sub: TopicSubscription, parse: Callable[[Frame], Sequence[_T]]) -> None:
        super().__init__(sub)
        self._parse = parse
        self._pending: deque[_T] = deque()

    def __aiter__(self) -> ParsedTopic[_T]:
        return self

    async def __anext__(self) -> _T | Gap | Malformed:
        pending = self._pending
        while not pending:
            item = await self.subscription.__anext__()  # StopAsyncIteration: it ended
            if not isinstance(item, Frame):
                return item
            try:
                events = self._parse(item)
            except CodecError as error:
                return Malformed(str(error))
            if len(events) == 1:
                return events[0]
            pending.extend(events)
        return pending.popleft()
