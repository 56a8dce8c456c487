"""The generic user feed, fed the venue port's typed user stream through memory channels.

``FakeUserStream`` is a ``UserStream`` with no venue behind it: its subscriptions are
``FakeStream`` memory channels into which a test pushes typed events (``OrderReport``,
``Fill``, ``FillsSnapshot``, ``NonUserCancel``, ``Liquidation``, ``Funding``, ``AccountState``)
and the ``Gap``, ``Malformed`` and ``Foreign`` markers; its reads answer from lists the test
holds, and its connection goes down and up when the test says. The feed's own behaviour is
tested here: the history, deduplication, the sync gate, every trigger of a resync, and the
paging of fills. Hyperliquid's stream (its subscriptions, frames and reads, the simulator) is
tested in tests/venues/hyperliquid/test_user_stream.py.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager
from typing import Any

import pytest
import trio

from mm.bounded import BoundedSet
from mm.feeds.history import FillHistory, HistoryStart, JournaledFills
from mm.feeds.user import (
    Resynced,
    SyncGate,
    UserFeed,
    UserStreamConfig,
    UserStreamError,
    UserStreamEvent,
    fills_since,
)
from mm.model import (
    AccountState,
    Fill,
    FillsSnapshot,
    Funding,
    Liquidation,
    NonUserCancel,
    OpenOrder,
    OrderReport,
    OrderStatus,
    Position,
    Side,
)
from mm.venues.base import (
    EventStream,
    Foreign,
    Gap,
    Malformed,
    UserStream,
    UserStreamItem,
    VenueError,
)
from tests.feeds.test_history import fill, row
from tests.feeds.test_market import FakeStream
from tests.ids import hl_oid, hl_tid

USER = "0x" + "1a" * 20
ACCOUNT = AccountState(50_000, 1_000.0, 0.0, 1_000.0, ())
OPEN = OpenOrder("BTC", Side.BUY, 94_000.0, 0.01, 0.01, hl_oid(11), "0xc1", 40_000)

Item = UserStreamItem | Foreign


class FakeUserStream:
    """The port's ``UserStream`` over memory channels; see the module docstring."""

    account = USER
    fills_page = 3

    def __init__(self) -> None:
        self.connected = True
        self.reconnects = 0
        self.fills: list[Fill] = []  # what the venue lists
        self.open: list[OpenOrder] = [OPEN]
        self.calls: list[tuple[str, int | None]] = []
        self.fail = False
        self.streams: dict[str, FakeStream[Item]] = {}
        self.unsubscribed: list[str] = []
        self.hook: Callable[[bool, str], None] | None = None

    @contextmanager
    def watching(self, on_change: Callable[[bool, str], None]) -> Iterator[None]:
        self.hook = on_change
        try:
            yield
        finally:
            self.hook = None

    async def subscribe(self, *, buffer: int | None = None) -> list[EventStream[Item]]:
        await trio.lowlevel.checkpoint()
        for channel in ("orders", "fills"):
            self.streams[channel] = FakeStream[Item](channel, channel, buffer or 8, active=True)
        return list(self.streams.values())

    async def unsubscribe(self, stream: EventStream[Any]) -> None:
        assert isinstance(stream, FakeStream)
        self.unsubscribed.append(stream.key)
        stream.close()

    async def _read(self, what: str, at: int | None = None) -> None:
        await trio.lowlevel.checkpoint()
        self.calls.append((what, at))
        if self.fail:
            raise VenueError("HTTP 500 Internal Server Error")

    async def recent_fills(self) -> list[Fill]:
        await self._read("recent")
        return list(self.fills)

    async def fills_since(self, time_ms: int) -> list[Fill]:
        await self._read("since", time_ms)
        listed = sorted((f for f in self.fills if f.time_ms >= time_ms), key=lambda f: f.time_ms)
        return listed[: self.fills_page]

    async def open_orders(self) -> list[OpenOrder]:
        await self._read("open")
        return list(self.open)

    async def account_state(self) -> AccountState:
        await self._read("account")
        return ACCOUNT

    # the test's hands
    def push(self, channel: str, item: Item | Gap | Malformed) -> None:
        assert self.streams[channel].push(item)

    def down(self, reason: str) -> None:
        self.connected = False
        assert self.hook is not None
        self.hook(False, reason)

    def up(self) -> None:
        self.connected = True
        self.reconnects += 1
        assert self.hook is not None
        self.hook(True, "up")


def typed(stream: FakeUserStream) -> UserStream:
    return stream  # mypy checks that the fake is the port's UserStream


@asynccontextmanager
async def feed(
    venue: FakeUserStream, *, history: FillHistory | None = None
) -> AsyncIterator[tuple[UserFeed, trio.MemoryReceiveChannel[UserStreamEvent]]]:
    send, receive = trio.open_memory_channel[UserStreamEvent](0)
    config = UserStreamConfig(retry_initial_s=0.01, retry_cap_s=0.02, fill_lookback_ms=0)
    user_feed = UserFeed(typed(venue), send, config, history=history)
    async with trio.open_nursery() as nursery:
        await nursery.start(user_feed.run)
        try:
            yield user_feed, receive
        finally:
            nursery.cancel_scope.cancel()


async def next_event(receive: trio.MemoryReceiveChannel[UserStreamEvent]) -> UserStreamEvent:
    with trio.fail_after(2):
        return await receive.receive()


async def until_resynced(
    receive: trio.MemoryReceiveChannel[UserStreamEvent],
) -> tuple[list[UserStreamEvent], Resynced]:
    events: list[UserStreamEvent] = []
    while True:
        event = await next_event(receive)
        if isinstance(event, Resynced):
            return events, event
        events.append(event)


async def nothing_more(receive: trio.MemoryReceiveChannel[UserStreamEvent]) -> None:
    with trio.move_on_after(0.05):
        pytest.fail(f"unexpected event {await receive.receive()!r}")


async def wait_for(predicate: Callable[[], bool]) -> None:
    with trio.fail_after(2):
        while not predicate():  # noqa: ASYNC110 -- polling state the code under test owns
            await trio.sleep(0.001)


def journaled(*rows: tuple[int, int, int]) -> FillHistory:
    history = FillHistory(1_000)
    history.restore(JournaledFills.from_rows([row(*r) for r in rows]))
    return history


async def test_a_first_run_ends_the_history_then_resyncs_and_opens_the_gate() -> None:
    venue = FakeUserStream()
    venue.fills = [fill(1, 1_000), fill(2, 2_000)]
    async with feed(venue) as (user, receive):
        assert not user.synced.is_set()
        assert await next_event(receive) == HistoryStart(2_000)
        events, marker = await until_resynced(receive)
        # The open order is reported as the live stream would have; history is not forwarded.
        assert [type(event) for event in events] == [OrderReport]
        report = events[0]
        assert isinstance(report, OrderReport)
        assert (report.oid, report.status, report.status_time_ms) == (
            hl_oid(11),
            OrderStatus.OPEN,
            50_000,
        )
        assert (marker.reason, marker.open_orders, marker.account) == ("starting", (OPEN,), ACCOUNT)
        await wait_for(user.synced.is_set)
        assert venue.calls[0] == ("recent", None)  # before subscribing
        assert sorted(venue.calls[1:]) == [("account", None), ("open", None), ("since", 2_000)]
        assert user.history_fills == 2
        assert user.user == USER


async def test_typed_events_are_forwarded_in_order_once() -> None:
    venue = FakeUserStream()
    report = OrderReport(
        "BTC",
        Side.BUY,
        94_000.0,
        0.01,
        0.01,
        hl_oid(12),
        "0xc2",
        60_000,
        OrderStatus.OPEN,
        60_000,
        "live",
    )
    funding = Funding("BTC", -0.012, 0.01, 0.0000125, 3_600_000)
    liquidation = Liquidation(1, "0x" + "2b" * 20, USER, 100.0, 10.0)
    pushed = AccountState(
        61_000, 990.0, 10.0, 980.0, (Position("BTC", 0.01, 94_000.0, 0.0, None, 10.0, 10),)
    )
    async with feed(venue, history=journaled((1, 7, 1_000))) as (user, receive):
        await until_resynced(receive)
        await wait_for(user.synced.is_set)
        venue.push("orders", report)
        venue.push("fills", fill(5, 5_000))
        venue.push("orders", NonUserCancel("BTC", hl_oid(12)))
        venue.push("orders", liquidation)
        venue.push("orders", funding)
        venue.push("orders", funding)  # a duplicated message
        venue.push("orders", pushed)  # a venue that pushes its balances
        venue.push("fills", fill(5, 5_000))  # the same fill again (another subscription)
        venue.push("fills", Malformed("bad"))
        venue.push("fills", Foreign("another account's fills"))
        got = [await next_event(receive) for _ in range(6)]
        assert set(map(type, got)) == {
            OrderReport,
            Fill,
            NonUserCancel,
            Liquidation,
            Funding,
            AccountState,
        }
        assert [e for e in got if not isinstance(e, Fill)] == [
            report,
            NonUserCancel("BTC", hl_oid(12)),
            liquidation,
            funding,
            pushed,
        ]
        await nothing_more(receive)
        assert user.duplicate_events == 1
        assert user.duplicate_fills["live"] == 1
        assert (user.malformed_frames, user.foreign_frames) == (1, 1)
        assert user.forwarded["account"] == 1
        assert user.synced.is_set()  # none of it is a loss of sync


async def test_a_fills_snapshot_forwards_only_what_was_missed() -> None:
    venue = FakeUserStream()
    history = journaled((3, 7, 3_000), (1, 7, 1_000))
    async with feed(venue, history=history) as (user, receive):
        await until_resynced(receive)
        await wait_for(user.synced.is_set)
        # Fill 0 is older than anything journaled (history), 1 and 3 are journaled, 2 was missed.
        snapshot = FillsSnapshot(
            tuple(fill(tid, 500 if tid == 0 else tid * 1_000) for tid in range(4))
        )
        venue.push("fills", snapshot)
        got = await next_event(receive)
        assert isinstance(got, Fill)
        assert got.tid == hl_tid(2)
        await nothing_more(receive)
        assert user.duplicate_fills["snapshot"] == 2
        assert user.history_fills == 1
        assert user.recovered_fills["snapshot"] == 1
        assert history.recovered["snapshot"] == 1


async def test_each_loss_of_sync_closes_the_gate_until_a_resync() -> None:
    venue = FakeUserStream()
    async with feed(venue, history=journaled((1, 7, 1_000))) as (user, receive):
        await until_resynced(receive)
        await wait_for(user.synced.is_set)

        # A Gap marker: messages dropped on one subscription.
        venue.fills.append(fill(2, 2_000))  # lost with them
        venue.push("fills", Gap(trio.current_time()))
        events, marker = await until_resynced(receive)
        assert marker.reason == "frames dropped on fills"
        assert [e.tid for e in events if isinstance(e, Fill)] == [hl_tid(2)]
        assert ("since", 1_000) in venue.calls  # from the last fill seen in sync
        await wait_for(user.synced.is_set)

        # Gaps counted by a subscription before its marker is read.
        venue.streams["orders"].gaps += 1
        venue.push("fills", fill(3, 3_000))  # any event wakes the feed
        events, marker = await until_resynced(receive)
        assert marker.reason == "frames dropped: the consumer fell behind"
        await wait_for(user.synced.is_set)
        assert user.gaps == 2  # the marker's and the one counted before its marker

        # The connection goes down: closed at once, no resync until it is up again.
        venue.down("connection reconnecting: test")
        assert not user.synced.is_set()
        assert user.synced.reason == "connection reconnecting: test"
        calls = len(venue.calls)
        await trio.sleep(0.05)
        assert len(venue.calls) == calls
        venue.up()
        events, marker = await until_resynced(receive)
        assert marker.reason == "connection reconnecting: test"
        await wait_for(user.synced.is_set)

        # A reconnect seen only in the counter, on the next event.
        venue.reconnects += 1
        venue.push("orders", Malformed("x"))
        events, marker = await until_resynced(receive)
        assert marker.reason == "reconnected"
        await wait_for(user.synced.is_set)
        assert user.resyncs == 5
        assert user.sync_losses == 4
    assert not user.synced.is_set()
    assert user.synced.reason == "user stream stopped"
    assert venue.hook is None  # the watch ended with the run
    assert sorted(venue.unsubscribed) == ["fills", "orders"]


async def test_a_failing_read_keeps_the_gate_closed_and_is_retried() -> None:
    venue = FakeUserStream()
    venue.fail = True
    async with feed(venue, history=journaled((1, 7, 1_000))) as (user, receive):
        await wait_for(lambda: user.resync_failures >= 2)
        assert "HTTP 500" in user.synced.reason
        assert not user.synced.is_set()
        venue.fail = False
        await until_resynced(receive)
        await wait_for(user.synced.is_set)


async def test_fills_come_page_by_page() -> None:
    venue = FakeUserStream()
    venue.fills = [fill(tid, 10_000 + tid) for tid in range(1, 9)]
    async with feed(venue, history=journaled((0, 7, 0))) as (user, receive):
        events, marker = await until_resynced(receive)
        assert [e.tid for e in events if isinstance(e, Fill)] == [hl_tid(t) for t in range(1, 9)]
        assert marker.fills_recovered == 8
        # Pages of 3: each starts at the newest fill of the last (the overlap is deduplicated).
        assert [at for what, at in venue.calls if what == "since"] == [0, 10_003, 10_005, 10_007]
        assert user.duplicate_fills["rest"] == 3


async def test_paging_stops_at_a_full_page_within_one_millisecond() -> None:
    fills = [fill(tid, 7) for tid in range(5)]
    starts: list[int] = []

    async def page(start: int) -> list[Fill]:
        starts.append(start)
        return [f for f in fills if f.time_ms >= start][:3]

    assert len(await fills_since(page, 7, 10, "test", 3)) == 3
    assert starts == [7]
    assert len(await fills_since(page, 0, 10, "test", 3)) == 6  # the overlap is the caller's
    assert starts == [7, 0, 7]
    assert len(await fills_since(page, 0, 1, "test", 3)) == 3  # at most max_pages
    assert starts == [7, 0, 7, 0]


async def test_an_ended_subscription_ends_the_feed() -> None:
    venue = FakeUserStream()
    with pytest.RaisesGroup(
        pytest.RaisesExc(UserStreamError, match="fills subscription ended: refused"),
        flatten_subgroups=True,
    ):
        async with feed(venue, history=journaled((1, 7, 1_000))) as (_, receive):
            await until_resynced(receive)
            venue.streams["fills"].close("refused")
            await trio.sleep(1)


def test_gate_and_bounded_set() -> None:
    gate = SyncGate()
    assert not gate.is_set()
    assert gate.reason == "not synced yet"
    seen: list[tuple[bool, str]] = []
    gate.on_change = lambda is_open, reason: seen.append((is_open, reason))
    gate.open()
    gate.open()
    gate.close("down")
    gate.close("still down")
    assert seen == [(True, ""), (False, "down")]
    assert gate.reason == "still down"
    assert (gate.opens, gate.closes) == (1, 1)

    keys = BoundedSet(2)
    for key in (1, 2, 2, 3):
        keys.add(key)
    assert 1 not in keys
    assert 2 in keys
    assert 3 in keys
    assert len(keys) == 2
    with pytest.raises(ValueError, match="capacity"):
        BoundedSet(0)
