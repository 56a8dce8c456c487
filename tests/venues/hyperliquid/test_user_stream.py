"""Hyperliquid's user stream under the generic user feed: typed events in order, fill dedup,
the sync gate and resyncs, from the venue's frames and ``/info`` answers.

Most tests run against the simulator over real loopback sockets on the real clock, trading
in-process (``venue.engine.place`` then ``venue.publish_events``): a resting buy of ours inside
a deliberately wide synthetic spread, hit by IOC sells of a second funded address. The later
tests drive the stream through a fake connection (the real ``Subscription`` streams, fed by
hand) and a fake ``/info``, to check each trigger of a resync on its own; the last ones check
that the venue's recorded frames come out as the port's types. The feed's own behaviour on
typed events is in tests/feeds/test_user.py.
"""

from __future__ import annotations

import json
import math
import random
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import AbstractContextManager, asynccontextmanager
from typing import Any

import attrs
import httpx
import pytest
import trio

from mm.connection import ConnectionConfig, State, Transition
from mm.feeds.history import FillHistory, HistoryStart, JournaledFills
from mm.feeds.user import (
    Resynced,
    UserFeed,
    UserStreamConfig,
    UserStreamError,
    UserStreamEvent,
)
from mm.model import (
    Fill,
    FillsSnapshot,
    Funding,
    Liquidation,
    NonUserCancel,
    OrderId,
    OrderReport,
    OrderStatus,
    Side,
    TradeId,
)
from mm.venues.base import Foreign, Malformed
from mm.venues.hyperliquid.codec import parse_fills
from mm.venues.hyperliquid.limits import FILLS_PAGE
from mm.venues.hyperliquid.rest import RestTransport, VenueUnavailable
from mm.venues.hyperliquid.user_stream import USER_CHANNELS, HyperliquidUserStream
from mm.venues.hyperliquid.ws import Subscription, WsConnection, subscription_key, watching_state
from mm.venues.sim.config import MarketConfig, SimConfig
from mm.venues.sim.engine import OrderRequest, Resting
from mm.venues.sim.faults import FaultConfig
from mm.venues.sim.venue import SimVenue
from tests.feeds.test_history import row
from tests.fixture_paths import HYPERLIQUID as FIXTURES
from tests.ids import hl_oid, hl_tid

USER = "0x" + "1a" * 20
TAKER = "0x" + "2b" * 20
EPOCH_MS = 1_800_000_000_000
BTC = 0
PX = "95000"  # BTC starts at 95 000; the synthetic liquidity sits 5 % away on each side
RECONNECT_DELAY_S = 0.3  # the connection's first reconnect delay (MaxRng: the ceiling)


class MaxRng(random.Random):
    """Always the upper bound: every backoff delay is its ceiling."""

    def uniform(self, a: float, b: float) -> float:
        return b


async def wait_for(predicate: Callable[[], bool], within: float = 5.0) -> None:
    with trio.fail_after(within):
        while not predicate():  # noqa: ASYNC110 -- polling state the code under test owns
            await trio.sleep(0.005)


# --- against the simulator -------------------------------------------------------------------


def sim_config(faults: Mapping[str, Any]) -> SimConfig:
    return SimConfig(
        coins=("BTC",),
        book_interval_ms=50,
        rate_limits=False,
        market=MarketConfig(
            step_ms=50,
            volatility_bps=0.0,
            jump_rate_per_hour=0.0,
            taker_a=0.0,
            liquidity_spread_bps=1000.0,
        ),
        faults=FaultConfig(**faults),
    )


def connection_config() -> ConnectionConfig:
    return ConnectionConfig(
        ping_interval_s=0.2,  # pongs also flush a frame the reorder fault holds back
        pong_timeout_s=1.0,
        stale_after_s=1.0,
        backoff_initial_s=RECONNECT_DELAY_S,
        backoff_cap_s=0.5,
        connect_timeout_s=3.0,
        disconnect_timeout_s=0.5,
    )


@attrs.define(eq=False)
class Harness:
    venue: SimVenue
    conn: WsConnection
    stream: UserFeed
    receive: trio.MemoryReceiveChannel[UserStreamEvent]
    nursery: trio.Nursery
    events: list[UserStreamEvent] = attrs.field(factory=list)
    gate_log: list[tuple[float, bool, str]] = attrs.field(factory=list)

    @property
    def url(self) -> str:
        assert self.venue.url is not None
        return self.venue.url

    async def start(self, *, collect: bool = True) -> None:
        await self.nursery.start(self.stream.run)
        if collect:
            self.nursery.start_soon(self.collect)

    async def collect(self) -> None:
        async for event in self.receive:
            self.events.append(event)

    # trading, in-process
    def rest_order(self, sz: str = "0.01") -> OrderId:
        venue = self.venue
        result = venue.engine.place(USER, OrderRequest(BTC, True, PX, sz), venue.now_ms())
        assert isinstance(result, Resting), result
        venue.publish_events()
        return hl_oid(result.oid)

    def fill(self, sz: str = "0.001") -> TradeId:
        venue = self.venue
        venue.engine.place(TAKER, OrderRequest(BTC, False, PX, sz, tif="Ioc"), venue.now_ms())
        venue.publish_events()
        return hl_tid(venue.engine.fills[USER][-1].tid)

    def venue_tids(self) -> list[TradeId]:
        return [hl_tid(fill.tid) for fill in self.venue.engine.fills.get(USER, ())]

    # what came out
    def fills(self) -> list[Fill]:
        return [event for event in self.events if isinstance(event, Fill)]

    def fill_tids(self) -> list[TradeId]:
        return [fill.tid for fill in self.fills()]

    def reports(self) -> list[OrderReport]:
        return [event for event in self.events if isinstance(event, OrderReport)]

    def markers(self) -> list[Resynced]:
        return [event for event in self.events if isinstance(event, Resynced)]

    def all_fills_once(self) -> bool:
        return sorted(self.fill_tids()) == sorted(self.venue_tids())

    async def control(self, path: str, body: Mapping[str, Any] | None = None) -> Any:
        async with httpx.AsyncClient(base_url=self.url, timeout=5.0) as client:
            response = await client.post(path, json=dict(body or {}))
        response.raise_for_status()
        return response.json()

    async def faults(self, **changes: Any) -> None:
        await self.control("/sim/faults", changes)

    async def disconnect(self) -> None:
        """Close the socket at the venue and wait until the stream has noticed."""
        assert await self.control("/sim/disconnect") == {"closed": 1}
        await wait_for(lambda: not self.stream.synced.is_set(), within=2.0)

    def gate_opens(self) -> list[float]:
        return [at for at, is_open, _ in self.gate_log if is_open]

    def gate_closes(self) -> list[tuple[float, str]]:
        return [(at, reason) for at, is_open, reason in self.gate_log if not is_open]


@asynccontextmanager
async def harness(
    *,
    faults: Mapping[str, Any] | None = None,
    config: UserStreamConfig | None = None,
    out_buffer: float = math.inf,
) -> AsyncIterator[Harness]:
    venue = SimVenue(sim_config(faults or {}), epoch_ms=EPOCH_MS)
    async with trio.open_nursery() as nursery:
        await nursery.start(venue.run)
        assert venue.url is not None
        venue.engine.fund(USER, 100_000)
        venue.engine.fund(TAKER, 100_000)
        conn = WsConnection(venue.url, connection_config(), name="user-ws", rng=MaxRng())
        rest = RestTransport(venue.url, deadline_s=5.0)
        send, receive = trio.open_memory_channel[UserStreamEvent](out_buffer)
        config = config or UserStreamConfig(retry_initial_s=0.05, retry_cap_s=0.1)
        venue_stream = HyperliquidUserStream(USER, conn, rest, deadline_s=config.rest_deadline_s)
        stream = UserFeed(venue_stream, send, config, name="user-test")
        h = Harness(venue, conn, stream, receive, nursery)
        stream.synced.on_change = lambda is_open, reason: h.gate_log.append(
            (trio.current_time(), is_open, reason)
        )
        await nursery.start(conn.run)
        try:
            yield h
        finally:
            nursery.cancel_scope.cancel()
            await rest.aclose()


async def test_events_arrive_typed_and_in_order_and_history_is_not_forwarded() -> None:
    with trio.fail_after(10):
        async with harness() as h:
            first = h.rest_order()
            history = [h.fill(), h.fill()]  # before the stream starts: history
            await h.start()
            await h.stream.synced.wait()
            assert h.stream.history_fills == 2
            assert h.fills() == []
            # The startup resync: the open order as a report, then the marker with it.
            (marker,) = h.markers()
            assert marker.reason == "starting"
            assert [o.oid for o in marker.open_orders] == [first]
            assert marker.open_orders[0].sz == pytest.approx(0.008)
            assert marker.account.account_value > 0
            assert [(r.oid, r.venue_status) for r in h.reports()] == [(first, "open")]
            assert h.stream.resync_snapshot is marker

            # Live: three partial fills, the last one fills the order, then a second order.
            live = [h.fill() for _ in range(3)]
            live.append(h.fill("0.005"))
            second = h.rest_order("0.002")
            live.append(h.fill("0.002"))
            await wait_for(lambda: len(h.fills()) == 5 and len(h.reports()) == 4)
            assert h.fill_tids() == live  # in the venue's order
            for fill in h.fills():
                assert fill.coin == "BTC"
                assert fill.side is Side.BUY
                assert fill.px == 95_000.0
                assert not fill.crossed
            assert [f.oid for f in h.fills()] == [first] * 4 + [second]
            assert [f.sz for f in h.fills()] == pytest.approx([0.001] * 3 + [0.005, 0.002])
            assert [(r.oid, r.venue_status) for r in h.reports()] == [
                (first, "open"),
                (first, "filled"),
                (second, "open"),
                (second, "filled"),
            ]
            # Each fill also came on userEvents: dropped there, counted.
            await wait_for(lambda: h.stream.duplicate_fills["live"] == 5)
            assert h.stream.duplicate_fills["snapshot"] == 2  # the first snapshot: history
            assert h.stream.forwarded["fill"] == 5
            assert h.stream.forwarded["order_report"] == 4

            # Resubscribing brings the userFills snapshot again (all seven fills): no duplicate.
            await h.disconnect()
            await h.stream.synced.wait()
            await wait_for(lambda: h.stream.duplicate_fills["snapshot"] == 2 + 7)
            assert h.fill_tids() == live
            assert not set(history) & set(h.fill_tids())
            assert h.stream.resyncs == 2
            assert h.markers()[-1].reason.startswith("connection reconnecting")
            assert h.markers()[-1].open_orders == ()
            assert h.conn.malformed_frames == 0
            assert h.stream.malformed_frames == 0


async def test_duplicated_and_reordered_frames_forward_every_fill_once() -> None:
    with trio.fail_after(10):
        async with harness(faults={"ws_duplicate": 1.0}) as h:
            await h.start()
            await h.stream.synced.wait()
            oid = h.rest_order()
            for _ in range(5):
                h.fill()
                await trio.sleep(0.01)
            await wait_for(h.all_fills_once)
            await h.faults(ws_duplicate=0.3, ws_reorder=0.5)
            for _ in range(5):
                h.fill()
                await trio.sleep(0.01)
            await wait_for(h.all_fills_once)
            await trio.sleep(0.5)  # stragglers: held-back frames, duplicates
            tids = h.fill_tids()
            assert len(tids) == len(set(tids)) == 10
            assert sorted(tids) == sorted(h.venue_tids())
            assert h.stream.duplicate_fills["live"] >= 15  # two channels, every frame doubled
            assert h.stream.duplicate_events >= 1  # the order's "open", sent twice
            reports = [(r.oid, r.venue_status) for r in h.reports()]
            assert reports == [(oid, "open"), (oid, "filled")]
            assert h.stream.synced.is_set()


async def test_fills_missed_while_disconnected_are_recovered_by_the_resync() -> None:
    with trio.fail_after(12):
        async with harness() as h:
            await h.start()
            await h.stream.synced.wait()
            h.rest_order()
            h.fill()
            h.fill()
            await wait_for(h.all_fills_once)

            # Fills while the socket is down (the client waits RECONNECT_DELAY_S to reconnect).
            await h.disconnect()
            closed_at = trio.current_time()
            missed = [h.fill(), h.fill(), h.fill()]
            assert not set(missed) & set(h.fill_tids())
            await h.stream.synced.wait()
            assert trio.current_time() - closed_at >= RECONNECT_DELAY_S * 0.9
            assert h.all_fills_once()
            recovered = h.stream.recovered_fills
            assert recovered["rest"] + recovered["snapshot"] == 3
            assert h.stream.resyncs == 2
            assert h.conn.reconnects == 1
            assert h.gate_closes()[-1][1].startswith(("connection reconnecting", "resyncing"))

            # Again, with every data frame dropped around the reconnect (no snapshot, no live
            # frames): only the REST resync can bring the missed fills, before its marker.
            before = recovered["rest"]
            await h.faults(ws_drop=1.0)
            await h.disconnect()
            missed = [h.fill(), h.fill()]
            await h.stream.synced.wait()
            assert h.stream.recovered_fills["rest"] == before + 2
            index = {id(event): i for i, event in enumerate(h.events)}
            marker = h.markers()[-1]
            assert marker.fills_recovered == 2
            assert all(index[id(f)] < index[id(marker)] for f in h.fills() if f.tid in missed)
            await h.faults(ws_drop=0.0)

            # Live again; everything exactly once.
            h.fill()
            h.fill()
            await wait_for(h.all_fills_once)
            await trio.sleep(0.1)
            tids = h.fill_tids()
            assert len(tids) == len(set(tids)) == 9
            assert h.stream.synced.is_set()
            assert h.stream.resyncs == 3


async def test_the_gate_stays_closed_until_the_resync_completes() -> None:
    latency = 0.4
    with trio.fail_after(12):
        async with harness(faults={"http_latency_ms": latency * 1000}) as h:
            started = trio.current_time()
            await h.start()
            assert not h.stream.synced.is_set()
            assert h.stream.synced.reason  # says why
            await h.stream.synced.wait()
            # The fill history before subscribing, then the resync: two slow requests in a row.
            assert trio.current_time() - started >= 2 * latency
            assert h.stream.last_resync_duration_s is not None
            assert h.stream.last_resync_duration_s >= latency

            await h.disconnect()
            closed_at = h.gate_closes()[-1][0]
            # Up again, and the resync is waiting for REST: the gate stays closed meanwhile.
            await wait_for(lambda: h.stream.synced.reason.startswith("resyncing"))
            resync_at = trio.current_time()
            assert h.conn.connected
            await trio.sleep(latency / 2)
            assert not h.stream.synced.is_set()
            await h.stream.synced.wait()
            opened_at = h.gate_opens()[-1]
            assert opened_at - resync_at >= latency * 0.95
            assert opened_at - closed_at >= RECONNECT_DELAY_S + latency
            assert h.stream.last_resync_duration_s >= latency

            # A failing resync keeps the gate closed, retries, and opens once REST answers.
            await h.faults(http_latency_ms=0, http_5xx=1.0)
            await h.disconnect()
            await wait_for(lambda: h.stream.resync_failures >= 2)
            assert not h.stream.synced.is_set()
            assert "HTTP 500" in h.stream.synced.reason  # failed, or retrying after a failure
            await h.faults(http_5xx=0.0)
            await h.stream.synced.wait()
            assert h.stream.resyncs == 3


async def test_a_gap_in_a_subscription_triggers_a_resync() -> None:
    config = UserStreamConfig(subscription_buffer=2, retry_initial_s=0.05, retry_cap_s=0.1)
    with trio.fail_after(10):
        async with harness(config=config, out_buffer=0) as h:
            await h.start(collect=False)
            # Nothing is read but these: where the history starts, and the startup marker.
            assert await h.receive.receive() == HistoryStart(None)
            first = await h.receive.receive()
            assert isinstance(first, Resynced)
            await h.stream.synced.wait()
            h.rest_order()
            # The consumer does not read: the stream blocks on its first send, the subscription
            # buffers fill up and the connection drops frames.
            for _ in range(8):
                h.fill()
                await trio.sleep(0.02)
            await wait_for(lambda: h.conn.dropped_frames > 0)
            assert h.stream.synced.is_set()  # the stream has not seen it yet (it is blocked)
            h.nursery.start_soon(h.collect)
            await wait_for(lambda: h.stream.resyncs == 2 and h.stream.synced.is_set())
            await wait_for(h.all_fills_once)
            await trio.sleep(0.1)
            tids = h.fill_tids()
            assert len(tids) == len(set(tids)) == 8
            assert h.stream.gaps >= 1
            assert h.stream.recovered_fills["rest"] >= 1
            assert any(reason.startswith("frames dropped") for _, reason in h.gate_closes())
            assert h.markers()[-1].reason.startswith("frames dropped")


# --- a fake connection and a fake /info --------------------------------------------------------


def fill_json(tid: int, time_ms: int, oid: int = 7) -> dict[str, Any]:
    return {
        "coin": "BTC",
        "px": "95000.0",
        "sz": "0.001",
        "side": "B",
        "time": time_ms,
        "startPosition": "0.0",
        "dir": "Open Long",
        "closedPnl": "0.0",
        "hash": "0x" + f"{tid:064x}",
        "oid": oid,
        "crossed": False,
        "fee": "0.01",
        "tid": tid,
        "feeToken": "USDC",
    }


ACCOUNT = {
    "marginSummary": {
        "accountValue": "1000.0",
        "totalMarginUsed": "0.0",
        "totalNtlPos": "0.0",
        "totalRawUsd": "1000.0",
    },
    "withdrawable": "1000.0",
    "assetPositions": [],
    "time": EPOCH_MS,
}


@attrs.define(eq=False)
class FakeInfo:
    fills: list[dict[str, Any]] = attrs.field(factory=list)
    calls: list[dict[str, Any]] = attrs.field(factory=list)
    fail: bool = False
    hold: trio.Event | None = None  # when set, clearinghouseState waits for it
    holding: trio.Event = attrs.field(factory=trio.Event)

    async def info(self, request: Mapping[str, Any], *, deadline_s: float | None = None) -> Any:
        await trio.lowlevel.checkpoint()
        self.calls.append(dict(request))
        if self.fail:
            raise VenueUnavailable("/info", 500, "Internal Server Error")
        kind = request["type"]
        if kind == "userFills":
            return list(reversed(self.fills))
        if kind == "userFillsByTime":  # oldest first, at most a page
            return [f for f in self.fills if f["time"] >= request["startTime"]][:FILLS_PAGE]
        if kind == "clearinghouseState" and self.hold is not None:
            self.holding.set()
            await self.hold.wait()
        if kind == "frontendOpenOrders":
            return []
        if kind == "clearinghouseState":
            return ACCOUNT
        raise AssertionError(kind)


@attrs.define(eq=False)
class FakeConnection:
    """What the stream uses of WsConnection, with the real Subscription streams."""

    buffer: int = 4
    on_state_change: Callable[[Transition], None] | None = None
    reconnects: int = 0
    up: bool = True
    subs: dict[str, Subscription] = attrs.field(factory=dict)

    @property
    def connected(self) -> bool:
        return self.up

    async def subscribe(
        self, subscription: Mapping[str, Any], *, buffer: int | None = None
    ) -> Subscription:
        await trio.lowlevel.checkpoint()
        sub = Subscription(subscription, subscription_key(subscription), buffer or self.buffer)
        sub.active = True
        self.subs[subscription["type"]] = sub
        return sub

    async def unsubscribe(self, sub: Subscription) -> None:
        sub.close()

    def watching(self, on_change: Callable[[bool, str], None]) -> AbstractContextManager[None]:
        return watching_state(self, on_change)

    def push(self, kind: str, data: Any) -> bool:
        channel = {"userEvents": "user"}.get(kind, kind)
        return self.subs[kind].offer({"channel": channel, "data": data})

    def transition(self, old: State, new: State) -> None:
        assert self.on_state_change is not None
        self.on_state_change(Transition("fake", old, new, trio.current_time(), "test", 0))


def live_fills(*fills: dict[str, Any]) -> dict[str, Any]:
    return {"user": USER, "fills": list(fills)}


@asynccontextmanager
async def fake_stream(
    info: FakeInfo, conn: FakeConnection, **kwargs: Any
) -> AsyncIterator[tuple[UserFeed, trio.MemoryReceiveChannel[UserStreamEvent]]]:
    send, receive = trio.open_memory_channel[UserStreamEvent](0)
    config = UserStreamConfig(retry_initial_s=0.01, retry_cap_s=0.02, fill_lookback_ms=0)
    venue = HyperliquidUserStream(USER, conn, info, deadline_s=config.rest_deadline_s)
    stream = UserFeed(venue, send, config, **kwargs)
    async with trio.open_nursery() as nursery:
        await nursery.start(stream.run)
        try:
            yield stream, receive
        finally:
            nursery.cancel_scope.cancel()


async def next_event(receive: trio.MemoryReceiveChannel[UserStreamEvent]) -> UserStreamEvent:
    with trio.fail_after(2):
        return await receive.receive()


async def test_gap_reconnect_and_disconnect_each_trigger_a_resync() -> None:
    info = FakeInfo([fill_json(1, 1_000), fill_json(2, 2_000)])
    conn = FakeConnection(buffer=2)
    with trio.fail_after(5):
        async with fake_stream(info, conn) as (stream, receive):
            # A first run: the history ends at the newest fill the venue lists, for the journal.
            assert await next_event(receive) == HistoryStart(2_000)
            marker = await next_event(receive)
            assert isinstance(marker, Resynced)
            await wait_for(stream.synced.is_set)
            assert stream.history_fills == 2
            assert info.calls[0]["type"] == "userFills"  # the history, before subscribing
            assert sorted(c["type"] for c in info.calls[1:]) == [
                "clearinghouseState",
                "frontendOpenOrders",
                "userFillsByTime",
            ]

            # A live fill; then the consumer stalls while more arrive than the buffer holds.
            info.fills.append(fill_json(3, 3_000))
            conn.push("userFills", live_fills(fill_json(3, 3_000)))
            assert isinstance(got := await next_event(receive), Fill)
            assert got.tid == hl_tid(3)
            for tid in (4, 5, 6, 7):
                info.fills.append(fill_json(tid, tid * 1_000))
                conn.push("userFills", live_fills(fill_json(tid, tid * 1_000)))
            assert conn.subs["userFills"].gaps == 1
            seen: list[TradeId] = []
            while True:
                event = await next_event(receive)
                if isinstance(event, Resynced):
                    break
                assert isinstance(event, Fill)
                seen.append(event.tid)
            assert event.reason.startswith("frames dropped")
            fetched = [c for c in info.calls if c["type"] == "userFillsByTime"][-1]
            assert fetched["startTime"] == 3_000  # the last fill seen in sync
            await wait_for(stream.synced.is_set)
            with trio.move_on_after(0.1):  # the buffered frames are all duplicates now
                pytest.fail(f"unexpected event {await receive.receive()!r}")
            assert sorted(seen) == [hl_tid(t) for t in (4, 5, 6, 7)]
            assert stream.gaps == 1

            # A reconnect seen only in the counter (no hook call) closes the gate on the next
            # frame; so does a malformed one (counted, skipped).
            conn.reconnects += 1
            conn.push("userFills", {"user": USER, "fills": [{"tid": "bad"}]})
            marker = await next_event(receive)
            assert isinstance(marker, Resynced)
            assert marker.reason == "reconnected"
            assert stream.malformed_frames == 1

            # A disconnect heard from the hook: closed at once, no resync until up again.
            await wait_for(stream.synced.is_set)
            conn.up = False
            conn.transition(State.HEALTHY, State.RECONNECTING)
            assert not stream.synced.is_set()
            assert stream.synced.reason == "connection reconnecting: test"
            calls = len(info.calls)
            await trio.sleep(0.05)
            assert len(info.calls) == calls
            conn.up = True
            conn.reconnects += 1
            conn.transition(State.RECONNECTING, State.HEALTHY)
            marker = await next_event(receive)
            assert isinstance(marker, Resynced)
            assert marker.reason == "connection reconnecting: test"
            await wait_for(stream.synced.is_set)

            # Another user's fills and userEvents' other events.
            conn.push("userFills", {"user": TAKER, "fills": [fill_json(99, 9_000)]})
            conn.push("userEvents", {"nonUserCancel": [{"coin": "BTC", "oid": 7}]})
            assert await next_event(receive) == NonUserCancel("BTC", hl_oid(7))
            await wait_for(lambda: stream.foreign_frames == 1)
            liquidation = {
                "lid": 1,
                "liquidator": TAKER,
                "liquidated_user": USER,
                "liquidated_ntl_pos": "100.0",
                "liquidated_account_value": "10.0",
            }
            conn.push("userEvents", {"liquidation": liquidation})
            assert await next_event(receive) == Liquidation(1, TAKER, USER, 100.0, 10.0)
            # The hourly funding payment, once even when its frame comes twice.
            payment = {
                "time": 1_700_000_000_000,
                "coin": "BTC",
                "usdc": "-0.012",
                "szi": "0.01",
                "fundingRate": "0.0000125",
            }
            conn.push("userEvents", {"funding": payment})
            conn.push("userEvents", {"funding": payment})
            assert await next_event(receive) == Funding(
                "BTC", -0.012, 0.01, 0.0000125, 1_700_000_000_000
            )
            await wait_for(lambda: stream.duplicate_events == 1)
            assert stream.forwarded["funding"] == 1
            assert stream.forwarded["fill"] == 5
            assert stream.resyncs == 4
        assert not stream.synced.is_set()
        assert stream.synced.reason == "user stream stopped"
        assert conn.on_state_change is None  # the hook was given back


def journaled(*rows: tuple[int, int, int]) -> FillHistory:
    """A history restored from a journal holding these (tid, oid, time_ms) fills."""
    history = FillHistory(1_000)
    history.restore(JournaledFills.from_rows([row(*r) for r in rows]))
    return history


async def test_history_is_what_the_journal_holds_and_a_failing_resync() -> None:
    # The journal holds fills 1 and 3; fill 2 (between them) never reached it, fill 4 was made
    # while the service was down, fill 0 is older than anything journaled.
    info = FakeInfo([fill_json(tid, 500 if tid == 0 else tid * 1_000) for tid in range(5)])
    info.fail = True
    conn = FakeConnection()
    history = journaled((3, 7, 3_000), (1, 7, 1_000))
    with trio.fail_after(5):
        async with fake_stream(info, conn, history=history) as (stream, receive):
            await wait_for(lambda: stream.resync_failures >= 2)
            assert "HTTP 500" in stream.synced.reason
            info.fail = False
            # The resync reads from the newest journaled fill: the journaled one is not
            # forwarded again (the time floor let it through on every start), the new one is.
            fill, marker = [await next_event(receive) for _ in range(2)]
            assert isinstance(fill, Fill)
            assert fill.tid == hl_tid(4)
            assert isinstance(marker, Resynced)
            assert marker.fills_recovered == 1
            starts = {c["startTime"] for c in info.calls if c["type"] == "userFillsByTime"}
            assert starts == {3_000}
            await wait_for(stream.synced.is_set)
            # The snapshot of a (re)subscribe: the fill the journal lacks comes through, older
            # than the newest journaled one as it is; the journaled ones and fill 4 are seen,
            # fill 0 is history.
            conn.push("userFills", {**live_fills(*info.fills), "isSnapshot": True})
            conn.push("userEvents", {"fills": [fill_json(3, 3_000)]})
            got = await next_event(receive)
            assert isinstance(got, Fill)
            assert got.tid == hl_tid(2)
            with trio.move_on_after(0.1):
                pytest.fail(f"unexpected event {await receive.receive()!r}")
            assert stream.history_fills == 1
            assert stream.duplicate_fills["snapshot"] == 3
            assert stream.duplicate_fills["live"] == 1
            assert history.recovered == {"resync": 1, "snapshot": 1}
            status = stream.snapshot()
            assert status["user"] == USER
            assert status["synced"]["open"] is True
            assert status["recovered_fills"] == {"rest": 1, "snapshot": 1}
            assert status["forwarded"] == {"fill": 2, "resynced": 1}
        assert all(history.known(fill) for fill in parse_fills(info.fills))


async def test_fill_recovery_pages_and_a_resync_overtaken_by_a_disconnect_is_redone() -> None:
    count = FILLS_PAGE + 500
    info = FakeInfo([fill_json(tid, 10_000 + tid) for tid in range(1, count + 1)])
    info.hold = trio.Event()
    conn = FakeConnection()
    with trio.fail_after(5):
        async with fake_stream(info, conn, history=journaled((0, 7, 0))) as (stream, receive):
            await info.holding.wait()
            # The socket drops while the resync waits for REST: its result stands, the gate
            # stays closed, and the stream resyncs again once the socket is back.
            conn.up = False
            conn.transition(State.HEALTHY, State.RECONNECTING)
            info.hold.set()
            info.hold = None
            tids = []
            while not isinstance(event := await next_event(receive), Resynced):
                assert isinstance(event, Fill)
                tids.append(event.tid)
            assert tids == [hl_tid(t) for t in range(1, count + 1)]
            pages = [c["startTime"] for c in info.calls if c["type"] == "userFillsByTime"]
            assert pages == [0, 10_000 + FILLS_PAGE]  # the second page starts at the last seen
            await wait_for(lambda: stream.resyncs_repeated == 1)
            assert not stream.synced.is_set()
            conn.up = True
            conn.reconnects += 1
            conn.transition(State.RECONNECTING, State.HEALTHY)
            marker = await next_event(receive)
            assert isinstance(marker, Resynced)
            assert marker.fills_recovered == 0
            await wait_for(stream.synced.is_set)
            assert stream.duplicate_fills["rest"] == 2


async def test_a_refused_subscription_ends_the_stream() -> None:
    conn = FakeConnection()
    with trio.fail_after(5):
        with pytest.RaisesGroup(
            pytest.RaisesExc(UserStreamError, match="userFills"), flatten_subgroups=True
        ):
            async with fake_stream(FakeInfo(), conn) as (_, receive):
                assert await next_event(receive) == HistoryStart(None)
                await next_event(receive)
                conn.subs["userFills"].close("refused")
                await trio.sleep(1)


# --- the venue's recorded frames as the port's types ------------------------------------------

RECORDED: list[dict[str, Any]] = [
    json.loads(line)
    for line in (FIXTURES / "ws_frames.jsonl").read_text().splitlines()
    if line.strip()
]
RECORDED_USER = "0x31ca8395cf837de08b24da3f660e77761dfb974b"  # the account of the recordings


def recorded(channel: str) -> list[dict[str, Any]]:
    return [frame for frame in RECORDED if frame["channel"] == channel]


async def test_recorded_frames_come_out_as_the_ports_types() -> None:
    conn = FakeConnection(buffer=8)
    stream = HyperliquidUserStream(RECORDED_USER, conn, FakeInfo(), deadline_s=1.0)
    funding_frame = json.loads((FIXTURES / "user_funding.json").read_text())["ws_user_frame"]
    with trio.fail_after(2):
        orders, fills, events = await stream.subscribe()
        assert [s.channel for s in (orders, fills, events)] == list(USER_CHANNELS)
        [updates] = recorded("orderUpdates")
        [snapshot] = recorded("userFills")
        assert conn.subs["orderUpdates"].offer(updates)
        assert conn.subs["userFills"].offer(snapshot)
        for frame in [*recorded("user"), funding_frame]:
            assert conn.subs["userEvents"].offer(frame)
        conn.subs["userFills"].offer({**snapshot, "data": {**snapshot["data"], "user": USER}})
        report = await anext(aiter(orders))
        listed = await anext(aiter(fills))
        foreign = await anext(aiter(fills))
        user_events = [await anext(aiter(events)) for _ in range(3)]
    assert report == OrderReport(
        "BTC",
        Side.BUY,
        64020.0,
        1.17163,
        1.17163,
        hl_oid(502464968365),
        "0xffabb2d185b75ea5ca0a5cd346b21507",
        1784976929583,
        OrderStatus.REJECTED,
        1784976929583,
        "badAloPxRejected",
    )
    assert isinstance(listed, FillsSnapshot)
    [usual] = listed.fills
    assert (usual.coin, usual.tid, usual.time_ms) == (
        "USUAL",
        hl_tid(691079299625582),
        1788490193264,
    )
    assert (usual.side, usual.px, usual.sz, usual.crossed) == (Side.SELL, 0.01152, 1052.9, True)
    assert (usual.fee, usual.fee_token) == (0.0, "USDC")
    assert foreign == Foreign(f"fills of {USER}")  # another account's
    fill_a, fill_b, funding = user_events
    assert isinstance(fill_a, Fill)
    assert isinstance(fill_b, Fill)
    assert (fill_a.tid, fill_a.fee, fill_a.fee_token) == (hl_tid(404237815023429), 0.019785, "USDC")
    assert (fill_b.tid, fill_b.fee, fill_b.oid) == (
        hl_tid(745210434703679),
        0.009997,
        hl_oid(55030848197),
    )
    assert funding == Funding("BTC", 5.950454, -0.68582, 0.00010081, 1681948800000)


async def test_malformed_and_unexpected_frames_are_markers() -> None:
    conn = FakeConnection()
    stream = HyperliquidUserStream(USER, conn, FakeInfo(), deadline_s=1.0)
    with trio.fail_after(2):
        _, fills, _ = await stream.subscribe()
        conn.push("userFills", {"user": USER, "fills": [{"tid": "bad"}]})
        conn.subs["userFills"].offer({"channel": "pong"})
        malformed = await anext(aiter(fills))
        unexpected = await anext(aiter(fills))
        await stream.unsubscribe(fills)
    assert isinstance(malformed, Malformed)
    assert unexpected == Foreign("Pong")
    with pytest.raises(TypeError, match="not a stream of this venue"):
        await stream.unsubscribe(object())  # type: ignore[arg-type]


async def test_the_reads_ask_the_venue_for_the_account() -> None:
    info = FakeInfo([fill_json(1, 1_000), fill_json(2, 2_000)])
    stream = HyperliquidUserStream(
        USER.upper().replace("0X", "0x"), FakeConnection(), info, deadline_s=1.0
    )
    assert stream.account == USER
    assert stream.fills_page == 2000
    assert [f.tid for f in await stream.recent_fills()] == [hl_tid(2), hl_tid(1)]
    assert [f.tid for f in await stream.fills_since(1_500)] == [hl_tid(2)]
    assert await stream.open_orders() == []
    account = await stream.account_state()
    assert account.account_value == 1000.0
    assert [call["type"] for call in info.calls] == [
        "userFills",
        "userFillsByTime",
        "frontendOpenOrders",
        "clearinghouseState",
    ]
    assert all(call["user"] == USER for call in info.calls)
