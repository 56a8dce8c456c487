"""Fan-out: one publisher, named consumers, each reading its own memory channel.

Fills and order events are never dropped and never reordered (DESIGN), and a consumer that
fails must not keep the others from their copy. So every consumer gets its own channel with an
unbounded buffer: ``publish`` never blocks and never drops (it is called from the user stream's
routing, which must not wait on the slowest reader), each consumer sees every item in the
order it was published, and one that raises, or is slow, or is restarted, leaves the others'
channels untouched. The channels outlive a consumer's task: a consumer restarted by its
supervisor carries on from the item after the one it failed on.

``consume`` is the consumer's task: it hands each item to a plain function. It fails as that
function fails (its supervisor restarts it); the item it failed on is not offered again.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from typing import Generic, TypeVar

import trio

T = TypeVar("T")


class Fanout(Generic[T]):
    """One unbounded channel per named consumer; ``receiver`` hands each one out once."""

    def __init__(self, consumers: Iterable[str]) -> None:
        self._sends: dict[str, trio.MemorySendChannel[T]] = {}
        self._receivers: dict[str, trio.MemoryReceiveChannel[T]] = {}
        for name in consumers:
            if name in self._sends:
                raise ValueError(f"consumer {name!r} named twice")
            self._sends[name], self._receivers[name] = trio.open_memory_channel[T](math.inf)
        if not self._sends:
            raise ValueError("a fan-out needs at least one consumer")

    def publish(self, item: T) -> None:
        """Every consumer gets ``item``, after everything published before it."""
        for send in self._sends.values():
            send.send_nowait(item)  # unbounded: never WouldBlock

    def receiver(self, name: str) -> trio.MemoryReceiveChannel[T]:
        """The consumer's channel; each is handed out once, so it has one reader."""
        try:
            return self._receivers.pop(name)
        except KeyError:
            known = ", ".join(self._sends)
            raise KeyError(f"no consumer {name!r} left to hand out (consumers: {known})") from None

    def backlog(self) -> dict[str, int]:
        """Items published and not yet read, per consumer."""
        return {name: send.statistics().current_buffer_used for name, send in self._sends.items()}


async def consume(
    receiver: trio.MemoryReceiveChannel[T],
    handle: Callable[[T], object],
    *,
    task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Hand every item of ``receiver`` to ``handle``, in order, until cancelled."""
    task_status.started()
    async for item in receiver:
        handle(item)
