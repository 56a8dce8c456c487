"""The health board: produces the health snapshot from its sources, for risk and autonomy.

``FeedStates`` is where the feeds' state changes arrive (the adapter's ``on_feed_state``,
built before the adapter): it reduces them into each feed's state and reconnect count and
publishes every change at once on a channel per reader (a fan-out: never dropped, never
reordered, each reader its own), so risk evaluates the moment a feed goes down and autonomy
counts the reconnect, as soon as their tasks run, and a reader restarted by its supervisor
misses none.

``HealthBoard`` is built with the sources (the venue adapter's feeds and sync gate, the feed
states, the journal's lag, the queues' fills, the one account poller); ``snapshot()`` takes the
snapshot of now, the one value risk evaluates on and autonomy reads its readings from, so both
judge the same facts. ``run`` is the ``health`` child: it keeps the account poller going and
fails only as the poller fails (its supervisor restarts it; the latest reading stays). Taking a
snapshot never fails for a source that has nothing yet: it is empty (no book, no account
reading), never invented.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any

import trio

from mm import clock
from mm.fanout import Fanout
from mm.health.account import AccountWatch
from mm.health.snapshot import FeedChange, FeedStatus, HealthSnapshot, with_feed_state
from mm.venues.base import VenueAdapter

READERS = ("risk", "autonomy")


def channel_fill(channel: trio.MemoryReceiveChannel[Any]) -> float:
    """How full a memory channel's buffer is, from 0 to 1 (0 for an unbounded one): a queue
    reading for the board."""
    stats = channel.statistics()
    capacity = stats.max_buffer_size
    if not capacity or capacity == float("inf"):
        return 0.0
    return stats.current_buffer_used / capacity


class FeedStates:
    """Every feed's state, from its changes, and the changes on a channel per reader."""

    def __init__(self, readers: Iterable[str] = READERS) -> None:
        self._feeds: dict[str, FeedStatus] = {}
        self._changes = Fanout[FeedChange](readers)

    def changes(self, reader: str) -> trio.MemoryReceiveChannel[FeedChange]:
        """The reader's channel of feed state changes (handed out once per reader)."""
        return self._changes.receiver(reader)

    def on_feed_state(self, feed: str, state: str) -> None:
        """A feed's new state (the adapter's listener), now."""
        change = FeedChange(feed, state, trio.current_time())
        self._feeds = with_feed_state(self._feeds, change)
        self._changes.publish(change)

    def statuses(self) -> dict[str, FeedStatus]:
        return dict(self._feeds)


class HealthBoard:
    """The health snapshot's one producer (see the module docstring)."""

    def __init__(
        self,
        adapter: VenueAdapter,
        feeds: FeedStates,
        account: AccountWatch,
        *,
        journal_lag: Callable[[float], float],
        queues: Mapping[str, Callable[[], float]],
    ) -> None:
        self._adapter = adapter
        self._feeds = feeds
        self._account = account
        self._journal_lag = journal_lag  # wall seconds now -> seconds the oldest entry waited
        self._queues = queues

    def snapshot(self) -> HealthSnapshot:
        """Every source as it is now."""
        adapter = self._adapter
        wall = clock.wall()
        return HealthSnapshot(
            at=trio.current_time(),
            wall=wall,
            feeds=self._feeds.statuses(),
            market=adapter.market_connection(),
            book_ms={coin: adapter.last_book_ms(coin) for coin in adapter.coins},
            in_sync=adapter.in_sync(),
            healthy=adapter.healthy(),
            stale=frozenset(adapter.stale_coins()),
            journal_lag_s=self._journal_lag(wall),
            queue_fill={name: fill() for name, fill in self._queues.items()},
            account=self._account.latest,
        )

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """The ``health`` child: the account poller, the only one of the venue's account."""
        await self._account.run(task_status=task_status)
