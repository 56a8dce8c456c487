"""The WebSocket connection manager.

(a) Against a scripted fake venue over in-memory streams (``trio.testing.memory_stream_pair``,
mm's client on one end, trio-websocket's server on the other), under ``autojump_clock``: every
timing (pings, stale detection, backoff, post timeouts) is checked on Trio's virtual clock.
(b) Against the simulator over real loopback sockets, on the real clock, briefly.
"""

from __future__ import annotations

import itertools
import random
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import attrs
import httpx
import orjson
import pytest
import trio
import trio.testing
import trio_websocket
from hypothesis import given
from hypothesis import strategies as st
from trio_websocket import wrap_server_stream

from mm.connection import ConnectionConfig, State, Transition
from mm.venues.base import Gap
from mm.venues.hyperliquid.ws import (
    GREETING,
    ConflatingSubscription,
    ConnectionDown,
    ConnectionFailed,
    Delivery,
    FrameStream,
    PostFailed,
    PostRejected,
    PostTimeout,
    Subscription,
    SubscriptionRejected,
    WsConnection,
    frame_key,
    same_subscription,
    subscription_key,
    ws_url,
)
from mm.venues.sim.config import MarketConfig, SimConfig
from mm.venues.sim.venue import SimVenue
from mm.websocket import WebSocketConnection, open_websocket_url, wrap_client_stream

Json = dict[str, Any]
USER = "0x" + "ab" * 20
L2_BTC: Json = {"type": "l2Book", "coin": "BTC"}
TRADES_BTC: Json = {"type": "trades", "coin": "BTC"}


class MaxRng(random.Random):
    """Always the upper bound: every backoff delay is its ceiling."""

    def uniform(self, a: float, b: float) -> float:
        return b


def book(coin: str, time_ms: int = 1) -> Json:
    return {"channel": "l2Book", "data": {"coin": coin, "time": time_ms, "levels": [[], []]}}


def trades(coin: str, tid: int = 1) -> Json:
    return {"channel": "trades", "data": [{"coin": coin, "px": "1.0", "sz": "1", "tid": tid}]}


# --- the fake venue -----------------------------------------------------------------------------


@attrs.define(eq=False)
class ServerSide:
    """One accepted socket at the fake venue."""

    ws: trio_websocket.WebSocketConnection
    opened_at: float
    received: list[Json] = attrs.field(factory=list)
    pings: list[float] = attrs.field(factory=list)

    async def send(self, frame: Json | str) -> None:
        await self.ws.send_message(
            frame if isinstance(frame, str) else orjson.dumps(frame).decode()
        )

    def subscriptions(self) -> list[Json]:
        return [m["subscription"] for m in self.received if m.get("method") == "subscribe"]


PostHandler = Callable[[Json], Json | None]


@attrs.define(eq=False)
class FakeVenue:
    """A scripted Hyperliquid WebSocket face: greeting, acks, pongs, posts, as configured."""

    answer_pings: bool = True
    ack: bool = True
    greet: bool = True
    refuse: int = 0  # refuse this many connects (then accept)
    reject_coins: frozenset[str] = frozenset()
    hold_acks: int = 0  # buffer this many subscribe acks, then send them in reverse order
    on_post: PostHandler | None = None
    connects: list[float] = attrs.field(factory=list)
    sides: list[ServerSide] = attrs.field(factory=list)
    _held: list[Json] = attrs.field(factory=list)
    _new: trio.Event = attrs.field(factory=trio.Event)

    @asynccontextmanager
    async def connect(self) -> AsyncIterator[WebSocketConnection]:
        self.connects.append(trio.current_time())
        if self.refuse:
            self.refuse -= 1
            raise OSError("connection refused")
        client_stream, server_stream = trio.testing.memory_stream_pair()
        async with trio.open_nursery() as nursery:
            nursery.start_soon(self._serve, server_stream)
            ws = await wrap_client_stream(client_stream, "venue.test", "/ws")
            try:
                yield ws
            finally:
                with trio.move_on_after(1):
                    await ws.aclose()
                nursery.cancel_scope.cancel()

    async def side(self, index: int) -> ServerSide:
        """The index-th accepted socket, once it is there."""
        while len(self.sides) <= index:
            await self._new.wait()
        return self.sides[index]

    async def _serve(self, stream: trio.StapledStream[Any, Any]) -> None:
        async with trio.open_nursery() as nursery:
            request = await wrap_server_stream(nursery, stream)
            ws = await request.accept()
            side = ServerSide(ws, trio.current_time())
            self.sides.append(side)
            self._new.set()
            self._new = trio.Event()
            if self.greet:
                await side.send(GREETING)
            while True:
                try:
                    text = await ws.get_message()
                except trio_websocket.ConnectionClosed:
                    break
                message = orjson.loads(text)
                side.received.append(message)
                await self._answer(side, message)
            # The reader task finishes the closing handshake, then ends.

    async def _answer(self, side: ServerSide, message: Json) -> None:
        method = message.get("method")
        if method == "ping":
            side.pings.append(trio.current_time())
            if self.answer_pings:
                await side.send({"channel": "pong"})
        elif method in ("subscribe", "unsubscribe") and self.ack:
            subscription = dict(message["subscription"])
            if subscription.get("coin") in self.reject_coins:
                text = f"Invalid subscription {orjson.dumps(subscription).decode()}"
                await side.send({"channel": "error", "data": text})
                return
            if subscription["type"] == "l2Book":  # normalized, as the venue echoes it
                subscription.setdefault("nSigFigs", None)
                subscription.setdefault("mantissa", None)
            if "user" in subscription:
                subscription["user"] = subscription["user"].lower()
            ack = {
                "channel": "subscriptionResponse",
                "data": {"method": method, "subscription": subscription},
            }
            if self.hold_acks:
                self._held.append(ack)
                if len(self._held) < self.hold_acks:
                    return
                for held in reversed(self._held):
                    await side.send(held)
                self._held.clear()
                return
            await side.send(ack)
        elif method == "post" and self.on_post is not None:
            reply = self.on_post(message)
            if reply is not None:
                await side.send(reply)


def post_reply(message: Json, payload: Any) -> Json:
    kind = message["request"]["type"]
    return {
        "channel": "post",
        "data": {"id": message["id"], "response": {"type": kind, "payload": payload}},
    }


def echo(message: Json) -> Json:
    return post_reply(message, {"echo": message["request"]["payload"]})


def state(conn: WsConnection) -> State:
    """The state now (a call, so that the type checker does not narrow it across awaits)."""
    return conn.state


def active(sub: Subscription) -> bool:
    return sub.active


def quick(**changes: Any) -> ConnectionConfig:
    return attrs.evolve(ConnectionConfig(), **changes)


@asynccontextmanager
async def running(conn: WsConnection, *, started: bool = True) -> AsyncIterator[trio.Nursery]:
    async with trio.open_nursery() as nursery:
        if started:
            await nursery.start(conn.run)
        else:
            nursery.start_soon(conn.run)
        yield nursery
        nursery.cancel_scope.cancel()


def manager(
    venue: FakeVenue, config: ConnectionConfig | None = None, **kwargs: Any
) -> WsConnection:
    return WsConnection("ws://venue.test/ws", config or quick(), connect=venue.connect, **kwargs)


async def take(stream: FrameStream, count: int) -> list[Delivery]:
    return [await stream.receive() for _ in range(count)]


async def wait_for(predicate: Callable[[], bool], step: float = 0.01, within: float = 600) -> None:
    """Poll (on whichever clock runs) until ``predicate`` holds."""
    with trio.fail_after(within):
        while not predicate():  # noqa: ASYNC110 -- polling state the code under test owns
            await trio.sleep(step)


async def outcome_of(conn: WsConnection) -> BaseException | None:
    try:
        await conn.run()
    except Exception as error:
        return error
    return None


# --- (a) scripted venue, virtual clock ----------------------------------------------------------


async def test_greeting_subscribe_acks_and_routing(autojump_clock: trio.abc.Clock) -> None:
    venue = FakeVenue()
    conn = manager(venue)
    tap = conn.listen()
    book_btc = await conn.subscribe(L2_BTC)
    trades_btc = await conn.subscribe(TRADES_BTC)
    fills = await conn.subscribe({"type": "userFills", "user": USER.upper().replace("0X", "0x")})
    async with running(conn):
        assert state(conn) is State.HEALTHY
        assert conn.connected
        side = await venue.side(0)
        assert sorted(sub["type"] for sub in side.subscriptions()) == [
            "l2Book",
            "trades",
            "userFills",
        ]
        assert all(sub.active for sub in conn.subscriptions)
        assert await tap.receive() == GREETING
        await side.send(book("ETH"))  # nobody subscribed: unrouted
        await side.send(book("BTC", 7))
        await side.send({"channel": "trades", "data": []})  # empty: nothing to route
        await side.send(trades("BTC", 3))
        await side.send({"channel": "userFills", "data": {"user": USER, "fills": []}})
        assert await book_btc.receive() == book("BTC", 7)
        assert await trades_btc.receive() == trades("BTC", 3)
        assert await fills.receive() == {
            "channel": "userFills",
            "data": {"user": USER, "fills": []},
        }
        assert conn.frames_received["greeting"] == 1
        assert conn.frames_received["l2Book"] == 2
        assert conn.frames_received["trades"] == 2
        assert conn.frames_received["subscriptionResponse"] == 3
        assert conn.unrouted_frames == 1
        assert conn.malformed_frames == 0
        tapped = [await tap.receive() for _ in range(8)]  # three acks, five data frames
        assert [frame["channel"] for frame in tapped if isinstance(frame, dict)][-5:] == [
            "l2Book",
            "l2Book",
            "trades",
            "trades",
            "userFills",
        ]


async def test_acks_are_matched_by_subscription_not_order(autojump_clock: trio.abc.Clock) -> None:
    venue = FakeVenue(hold_acks=3)
    conn = manager(venue)
    for coin in ("BTC", "ETH", "SOL"):
        await conn.subscribe({"type": "l2Book", "coin": coin})
    async with running(conn):
        assert state(conn) is State.HEALTHY
        assert all(sub.active for sub in conn.subscriptions)


async def test_subscribe_while_connected_and_unsubscribe(autojump_clock: trio.abc.Clock) -> None:
    venue = FakeVenue()
    conn = manager(venue)
    async with running(conn):
        side = await venue.side(0)
        sub = await conn.subscribe(L2_BTC)
        assert sub.active
        assert side.subscriptions() == [L2_BTC]
        twin = await conn.subscribe(L2_BTC)  # shares the venue subscription
        assert twin.active
        assert side.subscriptions() == [L2_BTC]
        await side.send(book("BTC"))
        assert await sub.receive() == book("BTC")
        assert await twin.receive() == book("BTC")
        await conn.unsubscribe(twin)
        assert [m for m in side.received if m["method"] == "unsubscribe"] == []
        await conn.unsubscribe(sub)
        assert [m for m in side.received if m["method"] == "unsubscribe"] == [
            {"method": "unsubscribe", "subscription": L2_BTC}
        ]
        with pytest.raises(trio.EndOfChannel):
            await sub.receive()
        assert [frame async for frame in twin] == []


async def test_a_refused_subscription_closes_its_stream(autojump_clock: trio.abc.Clock) -> None:
    venue = FakeVenue(reject_coins=frozenset({"NOPE"}))
    conn = manager(venue)
    early = await conn.subscribe({"type": "l2Book", "coin": "NOPE"})
    good = await conn.subscribe(L2_BTC)
    async with running(conn):
        assert state(conn) is State.HEALTHY  # the rest of the connection is fine
        assert early.closed
        assert early.error is not None
        assert early.error.startswith("Invalid subscription")
        assert good.active
        with pytest.raises(trio.EndOfChannel):
            await early.receive()
        with pytest.raises(SubscriptionRejected, match="Invalid subscription"):
            await conn.subscribe({"type": "trades", "coin": "NOPE"})
        assert [sub.subscription for sub in conn.subscriptions] == [L2_BTC]


async def test_user_events_cannot_be_subscribed_for_two_users() -> None:
    conn = WsConnection("http://venue.test")
    assert conn.url == "ws://venue.test/ws"
    await conn.subscribe({"type": "userEvents", "user": USER})
    await conn.subscribe({"type": "userEvents", "user": USER})  # the same: shares it
    with pytest.raises(ValueError, match="one userEvents subscription per connection"):
        await conn.subscribe({"type": "userEvents", "user": "0x" + "cd" * 20})
    with pytest.raises(ValueError, match="needs coin"):
        await conn.subscribe({"type": "l2Book"})


async def test_pings_every_50_seconds(autojump_clock: trio.abc.Clock) -> None:
    venue = FakeVenue()
    conn = manager(venue, quick(stale_after_s=1000.0))
    async with running(conn):
        side = await venue.side(0)
        await trio.sleep(175)
        assert [round(t - side.opened_at, 3) for t in side.pings] == [50.0, 100.0, 150.0]
        assert conn.pings_sent == 3
        assert conn.frames_received["pong"] == 3
        assert state(conn) is State.HEALTHY


async def test_no_pong_means_a_dead_socket(autojump_clock: trio.abc.Clock) -> None:
    venue = FakeVenue(answer_pings=False)
    changes: list[Transition] = []
    conn = manager(
        venue,
        quick(stale_after_s=1000.0, pong_timeout_s=10.0),
        rng=MaxRng(),
        on_state_change=changes.append,
    )
    errors = conn.listen(["error", "pong"])
    async with running(conn):
        start = trio.current_time()
        await venue.side(1)
        # Ping at 50 s, no pong by 60 s, then a reconnect after (at most) 1 s.
        assert venue.connects[1] - start == pytest.approx(61.0)
        await conn.wait_connected()
        assert conn.reconnects == 1
        await (await venue.side(1)).send({"channel": "error", "data": "something odd"})
        assert await errors.receive() == {"channel": "error", "data": "something odd"}
    lost = [change for change in changes if change.new is State.RECONNECTING]
    assert lost[0].reason == "no pong within 10s"
    assert lost[0].at - start == pytest.approx(60.0)


async def test_silence_makes_the_connection_stale_then_reconnects(
    autojump_clock: trio.abc.Clock,
) -> None:
    venue = FakeVenue()
    changes: list[Transition] = []
    conn = manager(venue, quick(stale_after_s=10.0), rng=MaxRng(), on_state_change=changes.append)
    await conn.subscribe(L2_BTC)
    async with running(conn):
        up_at = trio.current_time()
        side = await venue.side(0)
        await trio.sleep(9.9)
        assert state(conn) is State.HEALTHY
        await trio.sleep(0.2)
        assert state(conn) is State.STALE
        assert conn.health.since == pytest.approx(up_at + 10.0)
        await side.send(book("BTC"))
        await wait_for(lambda: state(conn) is State.HEALTHY)
        healed_at = trio.current_time()
        # Twenty silent seconds (two stale periods): reconnect, resubscribe.
        second = await venue.side(1)
        assert venue.connects[1] - healed_at == pytest.approx(21.0, abs=0.05)
        await wait_for(lambda: state(conn) is State.HEALTHY)
        assert second.subscriptions() == [L2_BTC]
        assert conn.reconnects == 1
    assert [change.new for change in changes] == [
        State.HEALTHY,
        State.STALE,
        State.HEALTHY,
        State.STALE,
        State.RECONNECTING,
        State.HEALTHY,
    ]
    assert changes[4].reason.startswith("stale: no message for 20.0s")


async def test_posts_are_correlated_by_id(autojump_clock: trio.abc.Clock) -> None:
    held: list[Json] = []

    def reply_in_reverse(message: Json) -> Json | None:
        held.append(message)
        return None

    venue = FakeVenue(on_post=reply_in_reverse)
    conn = manager(venue)
    answers: dict[str, Any] = {}

    async def ask(name: str) -> None:
        answers[name] = await conn.post({"type": "info", "payload": {"type": name}})

    async with running(conn):
        side = await venue.side(0)
        async with trio.open_nursery() as nursery:
            nursery.start_soon(ask, "allMids")
            await wait_for(lambda: len(held) == 1)
            nursery.start_soon(ask, "meta")
            await wait_for(lambda: len(held) == 2)
            assert [m["id"] for m in held] == [1, 2]
            for message in reversed(held):
                await side.send(echo(message))
        assert answers == {
            "allMids": {"type": "info", "payload": {"echo": {"type": "allMids"}}},
            "meta": {"type": "info", "payload": {"echo": {"type": "meta"}}},
        }
        assert conn.late_post_replies == 0


async def test_post_timeout_and_a_late_reply_dropped(autojump_clock: trio.abc.Clock) -> None:
    held: list[Json] = []

    def hold(message: Json) -> None:
        held.append(message)

    venue = FakeVenue(on_post=hold)
    conn = manager(venue)
    async with running(conn):
        side = await venue.side(0)
        start = trio.current_time()
        with pytest.raises(PostTimeout) as raised:
            await conn.post({"type": "action", "payload": {"action": "x"}})
        assert trio.current_time() - start == pytest.approx(5.0)
        assert raised.value.post_id == 1
        start = trio.current_time()
        with pytest.raises(PostTimeout):
            await conn.post({"type": "info", "payload": {}}, timeout=1.5)
        assert trio.current_time() - start == pytest.approx(1.5)
        assert conn.post_timeouts == 2
        await side.send(echo(held[0]))  # too late: dropped and counted
        await wait_for(lambda: conn.late_post_replies == 1)
        venue.on_post = echo
        assert await conn.post({"type": "info", "payload": 3}) == {
            "type": "info",
            "payload": {"echo": 3},
        }
        assert held[-1]["id"] == 2  # ids keep growing
        assert state(conn) is State.HEALTHY


async def test_a_post_refused_by_the_venue(autojump_clock: trio.abc.Clock) -> None:
    def too_many(message: Json) -> Json:
        return {"channel": "error", "data": f"too many pending post requests id={message['id']}"}

    venue = FakeVenue(on_post=too_many)
    conn = manager(venue)
    async with running(conn):
        with pytest.raises(PostRejected, match="too many pending post requests id=1"):
            await conn.post({"type": "info", "payload": {}})
        assert conn.errors_received == 1


async def test_post_when_not_connected_raises() -> None:
    conn = WsConnection("ws://venue.test/ws")
    with pytest.raises(ConnectionDown, match="connecting"):
        await conn.post({"type": "info", "payload": {}})


async def test_malformed_frames_are_counted_and_skipped(autojump_clock: trio.abc.Clock) -> None:
    venue = FakeVenue()
    conn = manager(venue)
    sub = await conn.subscribe(L2_BTC)
    async with running(conn):
        side = await venue.side(0)
        for bad in (
            "not json",
            "[1, 2]",
            '{"no": "channel"}',
            '{"channel": "l2Book", "data": {}}',
            '{"channel": "post", "data": "x"}',
        ):
            await side.send(bad)
        await side.send(book("BTC"))
        assert await sub.receive() == book("BTC")
        assert conn.malformed_frames == 5
        assert state(conn) is State.HEALTHY


async def test_a_slow_consumer_never_blocks_the_loop(autojump_clock: trio.abc.Clock) -> None:
    venue = FakeVenue(on_post=echo)
    conn = manager(venue)
    slow = await conn.subscribe(L2_BTC, buffer=3)
    fast = await conn.subscribe(TRADES_BTC, buffer=3)
    async with running(conn):
        side = await venue.side(0)
        got: list[Delivery] = []

        async def drain() -> None:
            async for frame in fast:
                got.append(frame)

        async with trio.open_nursery() as nursery:
            nursery.start_soon(drain)
            for n in range(10):
                await side.send(book("BTC", n))
                await side.send(trades("BTC", n))
                await trio.sleep(0.001)
            # Nobody reads the book, yet posts are answered and trades flow.
            assert await conn.post({"type": "info", "payload": 1}) == {
                "type": "info",
                "payload": {"echo": 1},
            }
            await wait_for(lambda: len(got) == 10)
            nursery.cancel_scope.cancel()
        assert got == [trades("BTC", n) for n in range(10)]
        assert slow.dropped == 7
        assert conn.dropped_frames == 7
        assert slow.gaps == 1
        frames = await take(slow, 4)
        assert frames[:3] == [book("BTC", n) for n in range(3)]
        assert isinstance(frames[3], Gap)
        await side.send(book("BTC", 99))  # caught up: delivered again
        assert await slow.receive() == book("BTC", 99)
        assert fast.dropped == 0


async def test_closed_consumers_and_full_taps(autojump_clock: trio.abc.Clock) -> None:
    venue = FakeVenue()
    conn = manager(venue)
    gone = await conn.subscribe(L2_BTC)
    kept = await conn.subscribe(L2_BTC)
    tap = conn.listen(["l2Book"], buffer=1)
    async with running(conn):
        side = await venue.side(0)
        await gone.receive_channel.aclose()  # the consumer went away
        for n in range(3):
            await side.send(book("BTC", n))
        assert await take(kept, 3) == [book("BTC", n) for n in range(3)]
        assert gone.closed
        assert gone.delivered == 0
        assert gone not in conn.subscriptions  # no longer routed to
        first, marker = await take(tap, 2)
        assert first == book("BTC", 0)
        assert isinstance(marker, Gap)
        assert tap.dropped == 2
        assert conn.dropped_frames == 2
        counters = conn.counters()
        assert counters["frames_received"]["l2Book"] == 3
        assert counters["dropped_frames"] == 2
        assert counters["reconnects"] == 0
        conn.close_tap(tap)
        with pytest.raises(trio.EndOfChannel):
            await tap.receive()


async def test_reconnect_backs_off_resubscribes_and_fails_pending_posts(
    autojump_clock: trio.abc.Clock,
) -> None:
    venue = FakeVenue(on_post=lambda message: None)
    changes: list[Transition] = []
    conn = manager(venue, rng=MaxRng(), on_state_change=changes.append)
    sub = await conn.subscribe(L2_BTC)
    failures: list[BaseException] = []

    async def doomed_post() -> None:
        try:
            await conn.post({"type": "action", "payload": {}})
        except ConnectionDown as error:
            failures.append(error)

    async with running(conn) as nursery:
        side = await venue.side(0)
        await side.send(book("BTC", 1))
        assert await sub.receive() == book("BTC", 1)
        nursery.start_soon(doomed_post)
        nursery.start_soon(doomed_post)
        await wait_for(lambda: sum(m["method"] == "post" for m in side.received) == 2)
        venue.refuse = 3
        closed_at = trio.current_time()
        await side.ws.aclose()
        await wait_for(lambda: len(failures) == 2)
        assert trio.current_time() - closed_at < 0.1  # at once, not after the post timeout
        assert state(conn) is State.RECONNECTING
        with pytest.raises(ConnectionDown):
            await conn.post({"type": "info", "payload": {}})
        second = await venue.side(1)
        await conn.wait_connected()
        # Ceilings 1, 2, 4, 8 s before attempts 1-4 (MaxRng draws the ceiling itself).
        gaps = [b - a for a, b in itertools.pairwise([closed_at, *venue.connects[1:]])]
        assert gaps == pytest.approx([1.0, 2.0, 4.0, 8.0], abs=0.01)
        assert second.subscriptions() == [L2_BTC]
        assert sub.active
        await second.send(book("BTC", 2))
        assert await sub.receive() == book("BTC", 2)
        assert conn.reconnects == 1
        assert conn.health.attempts == 0
        assert state(conn) is State.HEALTHY
    assert [change.new for change in changes] == [
        State.HEALTHY,
        State.RECONNECTING,
        State.HEALTHY,
    ]
    assert changes[1].reason.startswith("closed by the venue")


async def test_backoff_delays_stay_within_jitter_bounds(autojump_clock: trio.abc.Clock) -> None:
    venue = FakeVenue()
    conn = manager(venue, rng=random.Random(3))
    async with running(conn):
        side = await venue.side(0)
        venue.refuse = 6
        closed_at = trio.current_time()
        await side.ws.aclose()
        await venue.side(1)
    times = [closed_at, *venue.connects[1:]]
    gaps = [b - a for a, b in itertools.pairwise(times)]
    assert len(gaps) == 7
    for attempt, gap in enumerate(gaps):
        assert 0.0 <= gap <= conn.health.delay_ceiling(attempt) + 0.01


async def test_gives_up_after_ten_attempts(autojump_clock: trio.abc.Clock) -> None:
    venue = FakeVenue()
    conn = manager(venue, rng=MaxRng())
    result: list[BaseException | None] = []
    async with trio.open_nursery() as nursery:

        async def run_it() -> None:
            result.append(await outcome_of(conn))

        nursery.start_soon(run_it)
        side = await venue.side(0)
        await conn.wait_connected()
        venue.refuse = 1000
        closed_at = trio.current_time()
        await side.ws.aclose()
    (error,) = result
    assert isinstance(error, ConnectionFailed)
    assert "gave up after 10 attempts" in str(error)
    assert state(conn) is State.FAILED
    assert conn.health.attempts == 10
    times = [closed_at, *venue.connects[1:]]
    gaps = [b - a for a, b in itertools.pairwise(times)]
    assert gaps == pytest.approx([1, 2, 4, 8, 16, 32, 60, 60, 60, 60], abs=0.01)
    assert trio.current_time() - closed_at == pytest.approx(sum(gaps), abs=0.05)


async def test_first_connect_failing_never_reports_ready(autojump_clock: trio.abc.Clock) -> None:
    venue = FakeVenue(refuse=1000)
    conn = manager(venue, quick(max_attempts=3), rng=MaxRng())
    with pytest.RaisesGroup(pytest.RaisesExc(ConnectionFailed, match="connection refused")):
        async with trio.open_nursery() as nursery:
            await nursery.start(conn.run)
    assert [round(t, 3) for t in venue.connects] == [
        round(venue.connects[0], 3),
        round(venue.connects[0] + 2, 3),
        round(venue.connects[0] + 6, 3),
    ]
    assert state(conn) is State.FAILED


async def test_missing_acks_or_greeting_fail_the_attempt(autojump_clock: trio.abc.Clock) -> None:
    venue = FakeVenue(ack=False)
    conn = manager(venue, quick(connect_timeout_s=2.0, max_attempts=2), rng=MaxRng())
    await conn.subscribe(L2_BTC)
    error = await outcome_of(conn)
    assert isinstance(error, ConnectionFailed)
    assert "timed out waiting for subscription acknowledgements" in str(error)
    silent = FakeVenue(greet=False)
    conn = manager(silent, quick(connect_timeout_s=2.0, max_attempts=1))
    error = await outcome_of(conn)
    assert isinstance(error, ConnectionFailed)
    assert "TooSlowError" in str(error)


async def test_subscribing_while_down_takes_effect_on_the_next_socket(
    autojump_clock: trio.abc.Clock,
) -> None:
    venue = FakeVenue()
    conn = manager(venue, rng=MaxRng())
    async with running(conn):
        first = await venue.side(0)
        venue.refuse = 1
        await first.ws.aclose()
        await wait_for(lambda: state(conn) is State.RECONNECTING)
        sub = await conn.subscribe(TRADES_BTC)  # returns at once: registered
        assert not active(sub)
        second = await venue.side(1)
        await conn.wait_connected()
        assert sub.active
        assert second.subscriptions() == [TRADES_BTC]
        await second.send(trades("BTC", 5))
        assert await sub.receive() == trades("BTC", 5)


async def test_run_starts_afresh_after_failing(autojump_clock: trio.abc.Clock) -> None:
    venue = FakeVenue(refuse=2)
    conn = manager(venue, quick(max_attempts=2), rng=MaxRng())
    assert isinstance(await outcome_of(conn), ConnectionFailed)
    assert state(conn) is State.FAILED
    async with running(conn):  # as a supervisor restarts the child
        assert state(conn) is State.HEALTHY
        assert conn.health.attempts == 0


def test_routing_keys_follow_the_sdk() -> None:
    assert subscription_key({"type": "allMids"}) == "allMids"
    assert subscription_key(L2_BTC) == "l2Book:btc"
    assert subscription_key({"type": "userEvents", "user": USER}) == "user"
    assert subscription_key({"type": "userFills", "user": USER.upper()}) == f"userFills:{USER}"
    assert subscription_key({"type": "candle", "coin": "ETH", "interval": "1m"}) == "candle:eth,1m"
    assert subscription_key({"type": "activeAssetData", "coin": "BTC", "user": USER}) == (
        f"activeAssetData:btc,{USER}"
    )
    assert frame_key(book("BTC")) == "l2Book:btc"
    assert frame_key(trades("ETH")) == "trades:eth"
    assert frame_key({"channel": "trades", "data": []}) is None
    assert frame_key({"channel": "user", "data": {"fills": []}}) == "user"
    assert frame_key({"channel": "candle", "data": {"s": "ETH", "i": "1m"}}) == "candle:eth,1m"
    assert frame_key({"channel": "activeSpotAssetCtx", "data": {"coin": "@1"}}) == (
        "activeAssetCtx:@1"
    )
    assert frame_key({"channel": "orderUpdates", "data": []}) == "orderUpdates"
    assert same_subscription(
        {"type": "userFills", "user": USER.upper()},
        {"type": "userFills", "user": USER, "aggregateByTime": False},
    )
    assert same_subscription(L2_BTC, {**L2_BTC, "nSigFigs": None, "mantissa": None})
    assert not same_subscription({**L2_BTC, "nSigFigs": 5}, {**L2_BTC, "nSigFigs": None})
    assert not same_subscription(L2_BTC, {"type": "l2Book", "coin": "ETH"})
    assert not same_subscription(L2_BTC, "l2Book")
    assert ws_url("https://api.hyperliquid.xyz/") == "wss://api.hyperliquid.xyz/ws"
    assert ws_url("ws://127.0.0.1:1/ws") == "ws://127.0.0.1:1/ws"


# --- (b) the simulator, real loopback, real clock -----------------------------------------------


async def next_data(sub: Subscription, within: float = 5.0) -> Json:
    with trio.fail_after(within):
        while True:
            frame = await sub.receive()
            if isinstance(frame, dict):
                return frame


async def test_against_the_simulator() -> None:
    config = SimConfig(
        book_interval_ms=20,
        market=MarketConfig(step_ms=20, taker_a=40.0, taker_k=0.1),
    )
    venue = SimVenue(config, epoch_ms=1_800_000_000_000)
    with trio.fail_after(12):
        async with trio.open_nursery() as nursery:
            await nursery.start(venue.run)
            assert venue.url is not None
            conn = WsConnection(venue.url, quick(backoff_initial_s=0.05, backoff_cap_s=0.2))
            books = await conn.subscribe(L2_BTC)
            prints = await conn.subscribe(TRADES_BTC)
            await nursery.start(conn.run)
            assert conn.frames_received["greeting"] == 1
            snapshot = await next_data(books)
            assert snapshot["channel"] == "l2Book"
            assert snapshot["data"]["coin"] == "BTC"
            trade = await next_data(prints)
            assert trade["data"][0]["coin"] == "BTC"
            reply = await conn.post({"type": "info", "payload": {"type": "allMids"}})
            assert reply["type"] == "info"
            assert "BTC" in reply["payload"]["data"]
            async with httpx.AsyncClient(base_url=venue.url, timeout=5.0) as client:
                closed = await client.post("/sim/disconnect")
            assert closed.json() == {"closed": 1}
            await wait_for(lambda: conn.reconnects == 1)
            assert state(conn) is State.HEALTHY
            assert all(sub.active for sub in conn.subscriptions)
            seen = conn.frames_received["subscriptionResponse"]
            assert seen == 4  # two acks per socket
            # Frames flow again on the new socket (the book snapshot comes first).
            while True:
                frame = await next_data(books)
                if frame["data"]["time"] > snapshot["data"]["time"]:
                    break
            await next_data(prints)
            assert conn.malformed_frames == 0
            nursery.cancel_scope.cancel()


async def test_the_message_limit_error_fails_every_pending_post_at_once() -> None:
    """The venue refuses a message past 2,000 a minute (per IP, across connections) with an
    error that names no post: every post pending on the socket fails at once with that text
    (``PostFailed``, a ``ConnectionDown``: fate unknown), instead of waiting out its timeout."""
    venue = SimVenue(SimConfig(book_interval_ms=100), epoch_ms=1_800_000_000_000)
    async with trio.open_nursery() as nursery:
        await nursery.start(venue.run)
        assert venue.url is not None
        conn = WsConnection(venue.url, quick(post_timeout_s=60.0))
        await nursery.start(conn.run)
        venue.faults.update({"ws_drop_post_replies": 1.0})  # posts stay pending
        outcomes: list[BaseException] = []

        async def ask(request: Json) -> None:
            try:
                await conn.post({"type": "info", "payload": request})
            except Exception as error:
                outcomes.append(error)

        nursery.start_soon(ask, {"type": "allMids"})
        nursery.start_soon(ask, {"type": "meta"})
        # Both posts reached the venue (answered, the answers lost): they are pending.
        await wait_for(
            lambda: venue.ws_limits.messages("127.0.0.1", venue.now_ms() / 1000) >= 2, within=10
        )
        # Another client on the same IP spends the rest of the minute's messages.
        async with open_websocket_url(ws_url(venue.url)) as other:
            used = venue.ws_limits.messages("127.0.0.1", venue.now_ms() / 1000)
            for _ in range(2000 - used):
                await other.send_message('{"method":"ping"}')
            await wait_for(
                lambda: venue.ws_limits.messages("127.0.0.1", venue.now_ms() / 1000) >= 2000,
                within=10,
            )
            assert conn.counters()["posts_failed"] == 0
            assert outcomes == []
            nursery.start_soon(ask, {"type": "clearinghouseState", "user": USER})
            with trio.fail_after(10):  # far below the posts' 60 s timeout
                await wait_for(lambda: len(outcomes) == 3)
        text = "Cannot send more than 2000 messages per minute."
        assert all(isinstance(error, PostFailed) for error in outcomes), outcomes
        assert all(str(error).endswith(text) for error in outcomes)
        assert all(isinstance(error, ConnectionDown) for error in outcomes)
        assert conn.posts_failed == 3
        assert conn.post_timeouts == 0
        assert state(conn) is State.HEALTHY  # the socket stays up
        nursery.cancel_scope.cancel()


def test_watching_says_when_the_socket_goes_down_and_comes_back() -> None:
    heard: list[Transition] = []
    conn = WsConnection("ws://127.0.0.1:1", on_state_change=heard.append)
    changes: list[tuple[bool, str]] = []

    def move(old: State, new: State) -> None:
        assert conn.on_state_change is not None
        conn.on_state_change(Transition("user", old, new, 0.0, "why", 1))

    with conn.watching(lambda up, reason: changes.append((up, reason))):
        move(State.HEALTHY, State.STALE)  # still up: nothing to say
        move(State.STALE, State.RECONNECTING)
        move(State.RECONNECTING, State.RECONNECTING)  # a failed attempt: still down
        move(State.RECONNECTING, State.HEALTHY)
    move(State.HEALTHY, State.RECONNECTING)  # after the block: only the connection's own hook
    assert changes == [
        (False, "connection reconnecting: why"),
        (False, "connection reconnecting: why"),
        (True, "connection healthy: why"),
    ]
    assert len(heard) == 5
    assert conn.on_state_change == heard.append


# --- conflated book frames -------------------------------------------------------------------


async def test_a_conflating_subscription_hands_on_the_latest_frame_and_its_stamp() -> None:
    sub = ConflatingSubscription(L2_BTC, "l2Book:btc")
    assert all(sub.offer(book("BTC", t), received_ns=t * 10) for t in (1, 2, 3))
    assert (sub.conflated, sub.delivered, sub.gaps, sub.dropped) == (2, 3, 0, 0)
    assert await sub.receive() == book("BTC", 3)
    assert sub.received_ns == 30
    with trio.move_on_after(0.01) as waited:  # nothing new: it waits
        await sub.receive()
    assert waited.cancelled_caught
    sub.offer(book("BTC", 4), received_ns=40)
    sub.close()
    assert sub.offer(book("BTC", 5)) is False  # closed: taken no more
    assert await sub.receive() == book("BTC", 4)  # what it held before the close
    assert sub.received_ns == 40
    with pytest.raises(trio.EndOfChannel):
        await sub.receive()


async def test_a_closed_conflating_subscription_wakes_its_waiting_consumer() -> None:
    sub = ConflatingSubscription(L2_BTC, "l2Book:btc")
    ended = trio.Event()

    async def consume() -> None:
        with pytest.raises(trio.EndOfChannel):
            await sub.receive()
        ended.set()

    async with trio.open_nursery() as nursery:
        nursery.start_soon(consume)
        await trio.testing.wait_all_tasks_blocked()
        with pytest.raises(trio.BusyResourceError):
            await sub.receive()  # one consumer only
        sub.close("refused")
        await ended.wait()
    assert sub.error == "refused"


@given(st.lists(st.one_of(st.just("take"), st.integers(min_value=1, max_value=10**9)), max_size=40))
def test_conflation_hands_on_the_newest_frame_since_the_last_take(steps: list[str | int]) -> None:
    """Whatever the interleaving of frames and takes, a take returns the newest frame offered
    since the previous take, with its stamp, and every frame not handed on is counted once."""

    async def main() -> None:
        sub = ConflatingSubscription(L2_BTC, "l2Book:btc")
        newest: int | None = None
        taken = offered = 0
        for step in steps:
            if step == "take":
                if newest is None:
                    continue  # (it would wait)
                assert await sub.receive() == book("BTC", newest)
                assert sub.received_ns == newest * 7
                newest = None
                taken += 1
            else:
                assert isinstance(step, int)
                assert sub.offer(book("BTC", step), received_ns=step * 7)
                newest = step
                offered += 1
        pending = 0 if newest is None else 1
        assert sub.conflated == offered - taken - pending
        assert sub.delivered == offered

    trio.run(main)


async def test_book_frames_conflate_and_are_stamped_on_arrival(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """On the connection: a book subscription made with conflate keeps the latest frame, stamped
    with Trio's clock in nanoseconds as it was read; a trades subscription on the same socket
    gets every frame."""
    venue = FakeVenue()
    conn = manager(venue)
    async with running(conn):
        side = await venue.side(0)
        books = await conn.subscribe(L2_BTC, conflate=True)
        trade_sub = await conn.subscribe(TRADES_BTC, buffer=16)
        assert isinstance(books, ConflatingSubscription)
        await trio.sleep(1.000_000_5)
        sent_at = trio.current_time()  # virtual time stands still until every task waits
        for t in (1, 2, 3):
            await side.send(book("BTC", t))
            await side.send(trades("BTC", t))
        await wait_for(lambda: conn.frames_received["trades"] == 3)
        assert trio.current_time() > sent_at
        assert await books.receive() == book("BTC", 3)
        assert books.received_ns == int(sent_at * 1_000_000_000)
        assert books.received_ns % 1_000_000 != 0  # finer than a millisecond
        assert conn.conflated_frames == books.conflated == 2
        assert conn.dropped_frames == 0
        assert await take(trade_sub, 3) == [trades("BTC", t) for t in (1, 2, 3)]
        assert conn.counters()["conflated_frames"] == 2
        await conn.unsubscribe(books)
        assert conn.conflated_frames == 2  # kept once the subscription is gone


async def test_an_attached_sink_gets_every_frame_as_it_is_offered() -> None:
    """Once a sink is attached, nothing waits in the slot: the frame that was waiting goes to
    the sink at once, then every frame as it is offered, with its stamp; ``receive`` only
    waits for the end."""
    sub = ConflatingSubscription(L2_BTC, "l2Book:btc")
    assert sub.offer(book("BTC", 1), received_ns=10)
    got: list[tuple[Any, int]] = []
    sub.attach(lambda frame, ns: got.append((frame, ns)))
    assert got == [(book("BTC", 1), 10)]
    assert all(sub.offer(book("BTC", t), received_ns=t * 10) for t in (2, 3))
    assert got == [(book("BTC", t), t * 10) for t in (1, 2, 3)]
    assert (sub.conflated, sub.delivered, sub.received_ns) == (0, 3, 30)
    with pytest.raises(trio.BusyResourceError):
        sub.attach(got.append)  # type: ignore[arg-type]
    with trio.move_on_after(0.01) as waited:
        await sub.receive()
    assert waited.cancelled_caught
    sub.close()
    assert sub.offer(book("BTC", 4)) is False
    assert len(got) == 3
    with pytest.raises(trio.EndOfChannel):
        await sub.receive()


async def test_a_failing_sink_closes_its_subscription_and_fails_its_consumer() -> None:
    sub = ConflatingSubscription(L2_BTC, "l2Book:btc")
    failed = trio.Event()

    def sink(frame: Any, received_ns: int) -> None:
        if frame["data"]["time"] == 2:
            raise LookupError("the consumer's bug")

    async def consume() -> None:
        with pytest.raises(LookupError, match="the consumer's bug"):
            await sub.receive()
        failed.set()

    sub.attach(sink)
    async with trio.open_nursery() as nursery:
        nursery.start_soon(consume)
        await trio.testing.wait_all_tasks_blocked()
        assert sub.offer(book("BTC", 1))
        assert not failed.is_set()
        assert sub.offer(book("BTC", 2)) is False  # raised: refused, closed
        assert sub.closed
        assert sub.error == "its consumer failed: LookupError: the consumer's bug"
        await failed.wait()
    assert isinstance(sub.failure, LookupError)
    assert sub.offer(book("BTC", 3)) is False


async def test_a_failing_sink_does_not_stop_the_connection(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """A sink that raises in the receive loop costs its own subscription only: the connection
    forgets it and goes on routing every other frame; the frame is not counted malformed."""
    venue = FakeVenue()
    conn = manager(venue)
    async with running(conn):
        side = await venue.side(0)
        books = await conn.subscribe(L2_BTC, conflate=True)
        eth = await conn.subscribe({"type": "l2Book", "coin": "ETH"}, conflate=True)
        assert isinstance(books, ConflatingSubscription)
        assert isinstance(eth, ConflatingSubscription)

        def sink(frame: Any, received_ns: int) -> None:
            raise RuntimeError("boom")

        books.attach(sink)
        await side.send(book("BTC", 1))
        await side.send(book("ETH", 2))
        await wait_for(lambda: conn.frames_received["l2Book"] == 2)
        assert await eth.receive() == book("ETH", 2)
        assert books.closed
        assert isinstance(books.failure, RuntimeError)
        assert books not in conn.subscriptions
        assert conn.connected
        assert (conn.malformed_frames, conn.dropped_frames) == (0, 0)
        with pytest.raises(RuntimeError, match="boom"):
            await books.receive()


def test_the_receive_buffer_is_asked_of_the_websocket(monkeypatch: pytest.MonkeyPatch) -> None:
    asked: dict[str, Any] = {}

    def fake_open(url: str, **kwargs: Any) -> Any:
        asked.update(kwargs, url=url)
        return None

    monkeypatch.setattr("mm.venues.hyperliquid.ws.open_websocket_url", fake_open)
    WsConnection("ws://venue.test/ws", quick(receive_buffer_size=1 << 20))._open_url()
    assert asked["receive_buffer_size"] == 1 << 20
    WsConnection("ws://venue.test/ws")._open_url()
    assert asked["receive_buffer_size"] == ConnectionConfig().receive_buffer_size == 65536
