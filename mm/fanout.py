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

Never blocking means a consumer that stops keeping up lets its backlog grow without bound, so
the backlog is watched instead: ``backlog()`` per consumer, ``fill()`` the same against
``full_at`` (the backlog health readings call full; autonomy's queue-depth reading takes it),
and ``export_backlogs`` shows every fan-out's backlogs as ``mm_fanout_backlog``.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping
from typing import Any, Generic, TypeVar

import trio
from prometheus_client import CollectorRegistry, Gauge

T = TypeVar("T")

FULL_AT = 10_000
"""Items waiting for one consumer that health readings call a full queue (as full as the
journal's shipped queue): far beyond any burst of fills or order events a consumer that keeps
up ever leaves behind."""


class Fanout(Generic[T]):
    """One unbounded channel per named consumer; ``receiver`` hands each one out once."""

    def __init__(self, consumers: Iterable[str], *, full_at: int = FULL_AT) -> None:
        if full_at < 1:
            raise ValueError("full_at must be at least 1")
        self.full_at = full_at
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

    def fill(self) -> dict[str, float]:
        """Each consumer's backlog against ``full_at`` (1.0 and above: full)."""
        return {name: used / self.full_at for name, used in self.backlog().items()}


def export_backlogs(registry: CollectorRegistry, fanouts: Mapping[str, Fanout[Any]]) -> None:
    """``mm_fanout_backlog{channel, consumer}``: items each consumer of each named fan-out has
    not read yet, read from the channels when scraped."""
    gauge = Gauge(
        "mm_fanout_backlog",
        "Items published on a fan-out channel (fills, order events) that a consumer has not "
        "read yet.",
        ["channel", "consumer"],
        registry=registry,
    )
    for channel, fanout in fanouts.items():
        for consumer in fanout.backlog():
            gauge.labels(channel=channel, consumer=consumer).set_function(
                _backlog_of(fanout, consumer)
            )


def queue_fills(fanouts: Mapping[str, Fanout[Any]]) -> dict[str, Callable[[], float]]:
    """A reading of each consumer's fill (``fill()``), named ``channel.consumer``: the queues
    autonomy's queue-depth reading watches."""
    return {
        f"{channel}.{consumer}": _fill_of(fanout, consumer)
        for channel, fanout in fanouts.items()
        for consumer in fanout.backlog()
    }


def _fill_of(fanout: Fanout[Any], consumer: str) -> Callable[[], float]:
    return lambda: fanout.fill()[consumer]


def _backlog_of(fanout: Fanout[Any], consumer: str) -> Callable[[], float]:
    return lambda: fanout.backlog()[consumer]


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
