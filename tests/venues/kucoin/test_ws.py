"""KuCoin's WebSocket connection manager.

(a) Over loopback against the simulator's KuCoin face (``KucoinSimVenue``), on
``autojump_clock``: the handshake, a token asked anew per connect, subscriptions acknowledged
and made again after the face drops the connection (with a ``Gap`` first), pings keeping a quiet
connection alive, no pong as a lost connection, a refused topic, a consumer's overflow.
(b) Against a scripted fake socket (memory channels), where the face cannot provoke a case:
malformed messages, no welcome, giving up after ``max_attempts``, routing per symbol.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any

import attrs
import orjson
import pytest
import trio
import trio.testing

from mm import clock
from mm.connection import ConnectionConfig, State, Transition
from mm.venues.base import Gap, Malformed
from mm.venues.kucoin.ws import (
    ConnectionFailed,
    Delivery,
    Frame,
    KucoinWs,
    Socket,
    SubscriptionRejected,
    TopicSubscription,
    routing_keys,
)
from mm.venues.kucoin.ws_protocol import Bullet
from mm.websocket import CloseReason, ConnectionClosed, open_websocket_url
from tests.venues.kucoin.face import Face, running_face

LEVEL2_BTC = "/market/level2:BTC-USDT"
CONFIG = ConnectionConfig()


async def next_frame(sub: TopicSubscription) -> Frame:
    async for delivery in sub:
        if isinstance(delivery, Frame):
            return delivery
    raise AssertionError("the subscription ended")


@asynccontextmanager
async def connected(
    face: Face,
    config: ConnectionConfig = CONFIG,
    connect: Callable[[str], AbstractAsyncContextManager[Socket]] | None = None,
    transitions: list[Transition] | None = None,
) -> AsyncIterator[KucoinWs]:
    ws = KucoinWs(
        face.bullet,
        config,
        name="kucoin-test",
        connect=connect,
        on_state_change=transitions.append if transitions is not None else None,
    )
    async with trio.open_nursery() as nursery:
        await nursery.start(ws.run)
        yield ws
        nursery.cancel_scope.cancel()


# --- (a) over loopback against the face ---------------------------------------------------------


async def test_handshake_subscription_and_frames_routed_per_symbol(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async with running_face() as face, connected(face) as ws:
        assert ws.connected
        assert ws.state is State.HEALTHY
        assert face.bullets == 1
        assert len(face.venue.tokens) == 1
        both = await ws.subscribe("/market/level2:BTC-USDT,ETH-USDT", private=False, buffer=1000)
        btc = await ws.subscribe(LEVEL2_BTC, private=False, buffer=1000)
        assert both.active
        assert btc.active
        assert both.channel == "/market/level2"
        seen: set[str] = set()
        while len(seen) < 2:
            frame = await next_frame(both)
            assert frame.subject == "trade.l2update"
            assert 0 < frame.received_ns <= clock.monotonic_ns()
            seen.add(frame.topic)
        assert seen == {"/market/level2:BTC-USDT", "/market/level2:ETH-USDT"}
        frame = await next_frame(btc)  # only BTC-USDT's messages reach it
        assert frame.topic == LEVEL2_BTC
        assert frame.data["symbol"] == "BTC-USDT"
        assert ws.frames_received["/market/level2"] > 0
        assert ws.malformed_frames == 0
        assert ws.reconnects == 0


async def test_a_dropped_connection_is_made_again_with_a_new_token_and_a_gap_first(
    autojump_clock: trio.testing.MockClock,
) -> None:
    transitions: list[Transition] = []
    heard: list[bool] = []
    async with running_face() as face, connected(face, transitions=transitions) as ws:
        sub = await ws.subscribe(LEVEL2_BTC, private=False, buffer=10_000)
        await next_frame(sub)
        with ws.watching(lambda up, reason: heard.append(up)):
            assert face.drop_sessions("level2", "BTC-USDT") == 1
            # What was queued before the drop comes first, then the Gap, then new frames.
            async for delivery in sub:
                if isinstance(delivery, Gap):
                    break
            assert isinstance(await sub.receive(), Frame)
            await ws.wait_connected()
        assert sub.active
        assert sub.gaps == 1
        assert ws.reconnects == 1
        assert face.bullets == 2
        assert len(face.venue.tokens) == 2
        assert len(face.sessions("level2", "BTC-USDT")) == 1  # subscribed again at the face
        assert heard == [False, True]
        assert [t.new for t in transitions] == [State.HEALTHY, State.RECONNECTING, State.HEALTHY]


async def test_pings_keep_a_quiet_connection_alive(autojump_clock: trio.testing.MockClock) -> None:
    # No subscription: pongs are the only messages. Silent for a stale period (10 s) it would
    # read as stale, for two the watchdog would reconnect; a ping every half stale period
    # (5 s, more often than the face's 18 s) keeps it talking, and never stale.
    transitions: list[Transition] = []
    async with running_face() as face, connected(face, transitions=transitions) as ws:
        await trio.sleep(62)
        assert ws.pings_sent == 12  # at 5, 10, ... 60 s
        assert ws.reconnects == 0
        assert ws.connected
        assert face.bullets == 1
    assert State.STALE not in {transition.new for transition in transitions}


async def test_pings_follow_a_shorter_stale_limit(autojump_clock: trio.testing.MockClock) -> None:
    config = ConnectionConfig(stale_after_s=4.0)
    async with running_face() as face, connected(face, config) as ws:
        await trio.sleep(21)
        assert ws.pings_sent == 10  # every 2 s
        assert ws.reconnects == 0
        assert face.bullets == 1


@attrs.define(eq=False)
class PongEater:
    """A socket that hides the venue's pongs from the manager (on its first connect only)."""

    inner: Any
    eaten: int = 0

    async def get_message(self) -> str | bytes:
        while True:
            message = await self.inner.get_message()
            if b'"pong"' in (message.encode() if isinstance(message, str) else message):
                self.eaten += 1
                continue
            return message  # type: ignore[no-any-return]

    async def send_message(self, message: str | bytes) -> None:
        await self.inner.send_message(message)


async def test_no_pong_in_time_is_a_lost_connection(autojump_clock: trio.testing.MockClock) -> None:
    eaters: list[PongEater] = []

    @asynccontextmanager
    async def connect(url: str) -> AsyncIterator[Socket]:
        async with open_websocket_url(url) as ws:
            if eaters:
                yield ws
            else:
                eaters.append(PongEater(ws))
                yield eaters[0]

    transitions: list[Transition] = []
    async with (
        running_face() as face,
        connected(face, connect=connect, transitions=transitions) as ws,
    ):
        sub = await ws.subscribe(LEVEL2_BTC, private=False, buffer=100_000)  # never silent
        while ws.reconnects == 0:
            await next_frame(sub)
        assert eaters[0].eaten == 1
        up, lost = transitions[0], transitions[1]
        assert (up.new, lost.new) == (State.HEALTHY, State.RECONNECTING)
        # The first ping at 5 s (half the stale limit), its pong awaited 10 s.
        assert 15 <= lost.at - up.at < 15.5
        assert lost.reason == "no pong within 10s"


async def test_a_refused_topic_raises_and_ends_its_subscription(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async with running_face() as face:
        ws = KucoinWs(face.bullet, CONFIG, name="kucoin-test")
        # Registered before the connection: refused on connect, its stream ends with why.
        early = await ws.subscribe("/market/level2:NOPE-USDT", private=False, buffer=10)
        async with trio.open_nursery() as nursery:
            await nursery.start(ws.run)
            assert [delivery async for delivery in early] == []
            assert early.error is not None
            assert "404" in early.error
            with pytest.raises(SubscriptionRejected, match="not found"):
                await ws.subscribe("/market/nothing:BTC-USDT", private=False, buffer=10)
            assert ws.subscriptions == ()
            assert ws.connected
            assert ws.errors_received == 2
            nursery.cancel_scope.cancel()


async def test_a_consumer_that_falls_behind_loses_frames_behind_one_gap(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async with running_face() as face, connected(face) as ws:
        sub = await ws.subscribe(LEVEL2_BTC, private=False, buffer=3)
        await trio.sleep(3)  # thirty market steps, not read
        taken = [await sub.receive() for _ in range(5)]
        assert [type(d) for d in taken] == [Frame, Frame, Frame, Gap, Frame]
        assert sub.dropped > 0
        assert ws.dropped_frames == sub.dropped
        assert sub.gaps == 1
        assert ws.reconnects == 0  # the socket never waited for the consumer


# --- (b) a scripted fake socket -----------------------------------------------------------------

BULLET = Bullet("secret-token", "wss://venue.test/endpoint", 18.0, 10.0)


@attrs.define(eq=False)
class FakeSocket:
    """One socket to a scripted venue: answers pings and subscriptions; the test pushes data."""

    refuse: frozenset[str] = frozenset()
    sent: list[dict[str, Any]] = attrs.field(factory=list)
    _send: trio.MemorySendChannel[str | None] = attrs.field(init=False)
    _receive: trio.MemoryReceiveChannel[str | None] = attrs.field(init=False)

    def __attrs_post_init__(self) -> None:
        self._send, self._receive = trio.open_memory_channel[str | None](1000)

    def push(self, message: dict[str, Any] | str | None) -> None:
        """A message from the venue (None: it closes the socket)."""
        text = message if message is None or isinstance(message, str) else orjson.dumps(message)
        self._send.send_nowait(text if not isinstance(text, bytes) else text.decode())

    async def get_message(self) -> str | bytes:
        message = await self._receive.receive()
        if message is None:
            raise ConnectionClosed(CloseReason(1000, "bye"))
        return message

    async def send_message(self, message: str | bytes) -> None:
        request = orjson.loads(message)
        self.sent.append(request)
        if request["type"] == "ping":
            self.push({"id": request["id"], "type": "pong"})
        elif request["topic"] in self.refuse:
            self.push({"id": request["id"], "type": "error", "code": 404, "data": "not found"})
        else:
            self.push({"id": request["id"], "type": "ack"})


@attrs.define(eq=False)
class FakeVenue:
    welcome: bool = True
    refuse: frozenset[str] = frozenset()
    urls: list[str] = attrs.field(factory=list)
    sockets: list[FakeSocket] = attrs.field(factory=list)
    bullets: int = 0

    async def bullet(self) -> Bullet:
        self.bullets += 1
        return BULLET

    @asynccontextmanager
    async def connect(self, url: str) -> AsyncIterator[Socket]:
        self.urls.append(url)
        socket = FakeSocket(self.refuse)
        self.sockets.append(socket)
        if self.welcome:
            socket.push({"id": "x", "type": "welcome"})
        yield socket


def message(topic: str, data: Any = None, subject: str = "s") -> dict[str, Any]:
    return {"type": "message", "topic": topic, "subject": subject, "data": data or {}}


async def test_malformed_messages_are_counted_and_skipped(
    autojump_clock: trio.testing.MockClock,
) -> None:
    venue = FakeVenue()
    ws = KucoinWs(venue.bullet, CONFIG, name="fake", connect=venue.connect)
    async with trio.open_nursery() as nursery:
        await nursery.start(ws.run)
        sub = await ws.subscribe(LEVEL2_BTC, private=False, buffer=10)
        socket = venue.sockets[0]
        for text in ("not json", "[1, 2]", '{"type": 7}', '{"type": "message", "data": {}}'):
            socket.push(text)
        socket.push({"type": "message", "topic": LEVEL2_BTC})  # no data: marked on its topic
        socket.push(message(LEVEL2_BTC, {"n": 1}))
        assert isinstance(await sub.receive(), Malformed)
        frame = await sub.receive()
        assert isinstance(frame, Frame)
        assert frame.data == {"n": 1}
        assert ws.malformed_frames == 5
        assert ws.reconnects == 0
        assert ws.connected
        nursery.cancel_scope.cancel()


async def test_no_welcome_fails_the_attempt_and_max_attempts_give_up(
    autojump_clock: trio.testing.MockClock,
) -> None:
    venue = FakeVenue(welcome=False)
    config = ConnectionConfig(max_attempts=3, connect_timeout_s=5.0)
    ws = KucoinWs(venue.bullet, config, name="fake", connect=venue.connect)
    with pytest.raises(ConnectionFailed, match="gave up after 3 attempts"):
        await ws.run()
    assert ws.state is State.FAILED
    assert venue.bullets == 3
    assert len(venue.urls) == 3
    # A fresh connect id each time, the token in the URL.
    assert len(set(venue.urls)) == 3
    assert all("token=secret-token" in url for url in venue.urls)


async def test_a_failing_token_request_is_a_failed_attempt(
    autojump_clock: trio.testing.MockClock,
) -> None:
    venue = FakeVenue()
    failures = [OSError("refused"), OSError("refused")]
    asked: list[float] = []

    async def bullet() -> Bullet:
        asked.append(trio.current_time())
        if failures:
            raise failures.pop()
        return await venue.bullet()

    ws = KucoinWs(bullet, CONFIG, name="fake", connect=venue.connect)
    async with trio.open_nursery() as nursery:
        await nursery.start(ws.run)
        assert ws.connected
        assert ws.health.connects == 1
        assert len(venue.sockets) == 1
        assert len(asked) == 3  # two failed attempts, then the connect
        assert asked == sorted(set(asked))  # backing off between them, on Trio's clock
        nursery.cancel_scope.cancel()


async def test_routing_per_symbol_and_unsubscribing_what_no_one_wants(
    autojump_clock: trio.testing.MockClock,
) -> None:
    venue = FakeVenue()
    ws = KucoinWs(venue.bullet, CONFIG, name="fake", connect=venue.connect)
    async with trio.open_nursery() as nursery:
        await nursery.start(ws.run)
        both = await ws.subscribe("/market/level2:BTC-USDT,ETH-USDT", private=False, buffer=10)
        eth = await ws.subscribe("/market/level2:ETH-USDT", private=False, buffer=10)
        tickers = await ws.subscribe("/market/ticker:all", private=False, buffer=10)
        orders = await ws.subscribe("/spotMarket/tradeOrdersV2", private=True, buffer=10)
        socket = venue.sockets[0]
        socket.push(message("/market/level2:ETH-USDT", {"n": 1}))
        socket.push(message("/market/level2:SOL-USDT", {"n": 2}))  # no one's
        socket.push(message("/market/ticker:all", {"n": 3}, subject="BTC-USDT"))
        socket.push(message("/spotMarket/tradeOrdersV2", {"n": 4}))
        assert (await next_frame(orders)).data == {"n": 4}
        assert (await next_frame(both)).data == {"n": 1}
        assert (await next_frame(eth)).data == {"n": 1}
        assert (await next_frame(tickers)).subject == "BTC-USDT"
        assert ws.unrouted_frames == 1
        await ws.unsubscribe(both)
        assert [delivery async for delivery in both] == []
        assert socket.sent[-1] == {
            "id": socket.sent[-1]["id"],
            "type": "unsubscribe",
            "topic": "/market/level2:BTC-USDT",  # ETH-USDT is still wanted
            "privateChannel": False,
            "response": True,
        }
        nursery.cancel_scope.cancel()


def test_routing_keys_of_topics() -> None:
    assert routing_keys("/market/level2:A-B,C-D") == (
        "/market/level2",
        (("/market/level2", "A-B"), ("/market/level2", "C-D")),
    )
    assert routing_keys("/spotMarket/tradeOrdersV2") == (
        "/spotMarket/tradeOrdersV2",
        (("/spotMarket/tradeOrdersV2", ""),),
    )
    for bad in ("market/level2:A", "/market/level2:", "/market/level2:A,,B", "/x:A,A"):
        with pytest.raises(ValueError, match="not a KuCoin topic"):
            routing_keys(bad)


# --- (c) a subscription with a sink attached ----------------------------------------------------


def frame(n: int) -> Frame:
    return Frame(n, LEVEL2_BTC, "trade.l2update", {"n": n})


async def test_an_attached_sink_takes_what_was_queued_then_every_frame_as_it_is_offered() -> None:
    sub = TopicSubscription(LEVEL2_BTC, private=False, buffer=4)
    assert sub.offer(frame(1))
    taken: list[Any] = []
    sub.attach(taken.append)
    assert taken == [frame(1)]  # the queued one first, at once
    for n in range(2, 12):  # far past the buffer: nothing queues, nothing is dropped
        assert sub.offer(frame(n))
        assert taken[-1] == frame(n)  # handed over in the offering task, before it returns
    sub.mark_gap()
    sub.mark_gap()  # one Gap until a frame gets through
    assert sub.offer(Malformed("bad"))
    assert [type(d) for d in taken[-2:]] == [Gap, Malformed]
    assert (sub.delivered, sub.dropped, sub.gaps) == (12, 0, 1)
    with pytest.raises(trio.BusyResourceError):
        sub.attach(taken.append)
    sub.close()
    assert not sub.offer(frame(99))
    with pytest.raises(trio.EndOfChannel):
        await sub.receive()  # it only waits for the end


async def test_a_sink_that_raises_closes_its_subscription_and_its_consumer_gets_the_error() -> None:
    sub = TopicSubscription(LEVEL2_BTC, private=False, buffer=4)
    calls: list[Delivery] = []

    def sink(delivery: Delivery) -> None:
        calls.append(delivery)
        raise KeyError("a bug of the consumer")

    sub.attach(sink)
    assert not sub.offer(frame(1))  # the manager forgets a closed subscription
    assert sub.closed
    assert sub.error == "its consumer failed: KeyError: 'a bug of the consumer'"
    assert not sub.offer(frame(2))
    assert len(calls) == 1
    with pytest.raises(KeyError, match="a bug of the consumer"):
        await sub.receive()  # in the consumer's task


async def test_frames_reach_an_attached_sink_in_the_receive_loop_and_a_reconnect_is_a_gap(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async with running_face() as face, connected(face) as ws:
        sub = await ws.subscribe(LEVEL2_BTC, private=False, buffer=1)
        taken: list[Delivery] = []
        tasks: set[str] = set()
        enough, gap, again = trio.Event(), trio.Event(), trio.Event()

        def sink(delivery: Delivery) -> None:
            taken.append(delivery)
            tasks.add(trio.lowlevel.current_task().name)
            if isinstance(delivery, Gap):
                gap.set()
            elif gap.is_set():
                again.set()  # a frame of the new socket, after the Gap
            elif len(taken) == 20:
                enough.set()

        sub.attach(sink)
        with trio.fail_after(30):
            await enough.wait()
        assert all(isinstance(d, Frame) for d in taken)
        assert sub.dropped == ws.dropped_frames == 0  # a buffer of one would have dropped
        assert all(t.endswith("_receive_loop") for t in tasks), tasks
        assert face.drop_sessions("level2", "BTC-USDT") == 1
        with trio.fail_after(30):
            await again.wait()
        assert [type(d) for d in taken].count(Gap) == 1
        assert sub.gaps == 1
        assert ws.reconnects == 1
