"""The Hyperliquid WebSocket: one connection manager per socket, run as a supervised child.

``WsConnection.run`` connects, reads the venue's greeting, (re)subscribes every registered
subscription and waits for each acknowledgement, then serves: a receive loop that parses every
frame and hands it on without ever waiting for a consumer, an application-level ping every
``ping_interval_s``, and a watchdog for silence. When the socket is lost it fails every pending
post with ``ConnectionDown``, backs off (full jitter, under Trio's clock) and reconnects, as the
connection-health machine (``mm.connection``) says; after ``max_attempts`` failed attempts in
a row ``run`` raises ``ConnectionFailed`` so that its supervisor escalates.

Consumers:

- ``await subscribe(subscription)`` registers a venue subscription (``{"type": "l2Book",
  "coin": "BTC"}``) and returns a ``Subscription``: a bounded stream of frames (parsed JSON
  objects) routed to it by channel and key (coin, user), as the official SDK routes them. It
  survives reconnects: the manager subscribes it again on every new socket.
- ``listen(channels)`` is a tap on raw traffic: every frame of the given channels (all frames,
  and the greeting text, when ``channels`` is None), with no venue subscription.
- ``await post(request)`` sends ``{"method": "post", "id": n, "request": request}`` and returns
  the reply's ``response`` (``{"type": "info" | "action" | "error", "payload": ...}``),
  correlated by a monotonic id; ``PostTimeout`` after the timeout (a late reply is counted and
  dropped), ``ConnectionDown`` when the socket is not up or is lost before the reply,
  ``PostRejected`` when the venue refuses it outright (too many pending posts), ``PostFailed``
  (a ``ConnectionDown``) when the venue refuses a message without naming its post: its
  message limit ("Cannot send more than 2000 messages per minute."). The refused message
  cannot be told apart from the others, so every post pending on the socket fails at once
  with that text, its fate unknown, as when the socket drops before the reply, instead of
  each waiting out its timeout.

A consumer that does not keep up loses frames, never slows the socket: each stream is a bounded
memory channel fed with ``send_nowait``, holding ``buffer`` frames that the consumer has not
received yet (one handed to a consumer waiting for it counts until the consumer has it; the
stream counts them itself rather than asking the channel for its statistics on every frame).
When a frame does not fit, it is dropped and counted,
and a ``Gap`` marker (the venue port's) takes the one slot kept free for it, so the consumer
learns that it missed frames (and, e.g., resyncs) right after the frames it did get. A
subscription made with ``conflate=True`` (l2Book: every frame is a full snapshot that supersedes
the one before) is no queue but a slot holding the latest frame, handed to its consumer without
a channel: a frame the consumer had not taken yet is replaced (counted in ``conflated``), never
marked as a gap, and only its newest frame is ever parsed. Its consumer may instead ``attach``
a sink, which the receive loop calls with each frame as it arrives: no slot and no task switch
per frame, so the consumer is never behind; a sink that raises closes its own subscription (and
its consumer's ``receive`` raises the error), never the receive loop. Trades and user events
are never conflated.

Every frame is stamped on arrival, before it is parsed, with Trio's clock in whole nanoseconds
(``mm.clock.monotonic_ns``); a conflating subscription's ``received_ns`` is the stamp of the
frame it last handed out, which latencies from "book frame in" are measured from.

No frame, however shaped, ends the receive loop: one that is not JSON, not an object with a
channel, or not shaped as its channel where the manager reads it (routing keys, post ids,
acknowledgements, error texts) is counted in ``malformed_frames`` and skipped. The manager
reads only the fields it routes by, and only as strings and integers.

Counters (plain attributes, for metrics): ``frames_received`` per channel, ``malformed_frames``
(not JSON, or not shaped as their channel), ``dropped_frames`` (one per consumer that missed a
frame), ``conflated_frames`` (book frames replaced by a newer one before their consumer took
them), ``unrouted_frames`` (no consumer for their key), ``late_post_replies``,
``post_timeouts``, ``posts_failed`` (by an error naming no post), ``errors_received``,
``pings_sent``, ``reconnects``; ``health`` holds the
state, attempts, reason and time of the last transition, and ``on_state_change`` hears of every
transition (``watching`` adds a listener for a while, told only whether the socket is up).
"""

from __future__ import annotations

import itertools
import random
import re
from collections import Counter
from collections.abc import Callable, Collection, Iterator, Mapping
from contextlib import AbstractAsyncContextManager, AbstractContextManager, contextmanager, suppress
from typing import Any, Protocol, TypeAlias

import attrs
import orjson
import trio
from loguru import logger

from mm import randomness
from mm.connection import ConnectionConfig, ConnectionHealth, State, Transition
from mm.venues.base import Gap
from mm.venues.hyperliquid.limits import is_ws_messages_limit
from mm.websocket import ConnectionClosed, WebSocketConnection, open_websocket_url

GREETING = "Websocket connection established."
GREETING_CHANNEL = "greeting"  # how the greeting is counted and tapped
PING = '{"method":"ping"}'

Frame: TypeAlias = dict[str, Any] | str
Connect: TypeAlias = Callable[[], AbstractAsyncContextManager[WebSocketConnection]]


class ConnectionDown(Exception):
    """The socket is not up (or went down before a reply)."""


class ConnectionFailed(Exception):
    """The manager gave up reconnecting (``max_attempts`` failed attempts in a row)."""


class PostTimeout(Exception):
    """No reply to a post within its timeout; the post's fate at the venue is unknown."""

    def __init__(self, post_id: int, timeout: float) -> None:
        super().__init__(f"no reply to post {post_id} within {timeout:g}s")
        self.post_id = post_id
        self.timeout = timeout


class PostRejected(Exception):
    """The venue refused a post before handling it (an error frame naming its id)."""


class PostFailed(ConnectionDown):
    """The venue refused a message on the socket without naming its post (its message limit):
    every pending post fails with the venue's text. Which one was refused is unknown, so each
    may or may not have acted, exactly as when the socket drops before the reply."""


class SubscriptionRejected(Exception):
    """The venue refused a subscription (e.g. an unknown coin)."""


Delivery: TypeAlias = Frame | Gap


# --- routing: subscriptions and frames to keys (as the official SDK's identifiers) --------------

# subscription type -> (frame channel, the fields that key it)
_SUBSCRIPTIONS: dict[str, tuple[str, tuple[str, ...]]] = {
    "allMids": ("allMids", ()),
    "l2Book": ("l2Book", ("coin",)),
    "trades": ("trades", ("coin",)),
    "bbo": ("bbo", ("coin",)),
    "candle": ("candle", ("coin", "interval")),
    "userEvents": ("user", ()),
    "orderUpdates": ("orderUpdates", ()),
    "userFills": ("userFills", ("user",)),
    "userFundings": ("userFundings", ("user",)),
    "userNonFundingLedgerUpdates": ("userNonFundingLedgerUpdates", ("user",)),
    "webData2": ("webData2", ("user",)),
    "activeAssetCtx": ("activeAssetCtx", ("coin",)),
    "activeAssetData": ("activeAssetData", ("coin", "user")),
}
# Frames on these channels carry no key: one subscription per connection (the user's own).
_UNKEYED_USER_TYPES = frozenset({"userEvents", "orderUpdates"})
_CONTROL_CHANNELS = frozenset({"pong", "post", "subscriptionResponse", "error"})
# What a frame not shaped as its channel raises on the way (RecursionError as a last line: no
# step recurses into a value or takes its repr, so a frame nested 1,000 deep is just malformed).
_MALFORMED = (KeyError, TypeError, AttributeError, IndexError, ValueError, RecursionError)
_POST_ID = re.compile(r"\bid=([0-9]+)")


def subscription_key(subscription: Mapping[str, Any]) -> str:
    """The routing key of a subscription: ``"l2Book:btc"``, ``"user"``, ``"candle:btc,1m"``."""
    kind = subscription.get("type")
    if not isinstance(kind, str) or not kind:
        raise ValueError(f"a subscription needs a type, got {dict(subscription)!r}")
    channel, fields = _SUBSCRIPTIONS.get(kind, (kind, ()))
    values = []
    for field in fields:
        value = subscription.get(field)
        if not isinstance(value, str) or not value:
            raise ValueError(f"a {kind} subscription needs {field}, got {dict(subscription)!r}")
        values.append(value if field == "interval" else value.lower())
    return f"{channel}:{','.join(values)}" if values else channel


def frame_key(frame: Mapping[str, Any]) -> str | None:
    """The routing key of a data frame (None: it names nothing to route by, e.g. no trades).

    Raises KeyError, TypeError or AttributeError when the frame is not shaped as its channel
    (every part of a key must be a string: nothing else is ever turned into text).
    """
    channel = frame["channel"]
    data: Any = frame.get("data")
    if channel == "l2Book":  # (the busiest channel, first)
        return f"l2Book:{data['coin'].lower()}"
    if channel == "trades":
        return f"trades:{data[0]['coin'].lower()}" if data else None
    if channel == "candle":
        return f"candle:{data['s'].lower()},{_text(data['i'])}"
    if channel == "activeSpotAssetCtx":
        channel = "activeAssetCtx"
    if channel in ("l2Book", "bbo", "activeAssetCtx"):
        return f"{channel}:{data['coin'].lower()}"
    if channel in ("userFills", "userFundings", "userNonFundingLedgerUpdates", "webData2"):
        return f"{channel}:{data['user'].lower()}"
    if channel == "activeAssetData":
        return f"{channel}:{data['coin'].lower()},{data['user'].lower()}"
    return str(channel)


def same_subscription(sent: Mapping[str, Any], echoed: Any) -> bool:
    """Whether the venue's (normalized) echo is of the subscription we sent: our keys agree."""
    if not isinstance(echoed, Mapping):
        return False
    for key, value in sent.items():
        if key not in echoed:
            return False
        other = echoed[key]
        if key == "user" and isinstance(value, str) and isinstance(other, str):
            if value.lower() != other.lower():
                return False
        elif value != other:
            return False
    return True


def _text(value: Any) -> str:
    """A string field of a frame; TypeError for anything else (never ``str()`` of a value)."""
    if type(value) is not str:
        raise TypeError(f"expected a string, got {type(value).__name__}")
    return value


def ws_url(url: str) -> str:
    """A WebSocket URL: ``http(s)://host`` (the venue's base URL) becomes ``ws(s)://host/ws``."""
    if url.startswith(("http://", "https://")):
        return "ws" + url[len("http") :].rstrip("/") + "/ws"
    return url


# --- consumers ----------------------------------------------------------------------------------


class StateHooked(Protocol):
    """A connection that tells ``on_state_change`` of its transitions."""

    on_state_change: Callable[[Transition], None] | None


@contextmanager
def watching_state(conn: StateHooked, on_change: Callable[[bool, str], None]) -> Iterator[None]:
    """Within the block, ``on_change(up, reason)`` hears at once when ``conn`` goes down and
    when it is up again (after the hook it had, which keeps hearing of every transition and is
    given back at the end of the block)."""
    previous = conn.on_state_change

    def changed(transition: Transition) -> None:
        if previous is not None:
            previous(transition)
        reason = f"connection {transition.new.value}: {transition.reason}"
        if not transition.new.up:
            on_change(False, reason)
        elif not transition.old.up:
            on_change(True, reason)

    conn.on_state_change = changed
    try:
        yield
    finally:
        if conn.on_state_change == changed:
            conn.on_state_change = previous


class FrameStream:
    """A bounded stream of frames for one consumer; one slot is kept for the ``Gap`` marker."""

    def __init__(self, buffer: int, channels: frozenset[str] | None = None) -> None:
        if buffer < 1:
            raise ValueError(f"buffer must be >= 1, got {buffer}")
        self.buffer = buffer
        self.channels = channels
        self._send, self.receive_channel = trio.open_memory_channel[Delivery](buffer + 1)
        self._queued = 0  # deliveries sent and not yet received (counted here, not asked of
        # the channel per frame)
        self.delivered = 0
        self.dropped = 0
        self.gaps = 0
        self.closed = False
        self.error: str | None = None  # why the stream was closed by the manager
        self._in_gap = False

    def offer(self, frame: Frame, received_ns: int = 0) -> bool:
        """Hand a frame on without waiting; False when it was dropped (consumer behind).
        ``received_ns``: when it arrived (kept only by a conflating subscription)."""
        if self.closed:
            return False
        try:
            if self._queued < self.buffer:
                self._send.send_nowait(frame)
                self._queued += 1
                self._in_gap = False
                self.delivered += 1
                return True
            self.dropped += 1
            if not self._in_gap:
                self._send.send_nowait(Gap(trio.current_time()))  # the slot kept free for it
                self._queued += 1
                self._in_gap = True
                self.gaps += 1
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            self.closed = True  # the consumer closed its end
        return False

    def close(self, error: str | None = None) -> None:
        """End the stream: the consumer's ``receive`` raises EndOfChannel once drained."""
        if error is not None:
            self.error = error
        self.closed = True
        self._send.close()

    async def receive(self) -> Delivery:
        delivery = await self.receive_channel.receive()
        self._queued -= 1
        return delivery

    def __aiter__(self) -> FrameStream:
        return self

    async def __anext__(self) -> Delivery:
        try:
            return await self.receive()
        except trio.EndOfChannel:
            raise StopAsyncIteration from None


class Subscription(FrameStream):
    """A venue subscription's frames. ``active``: acknowledged on the current socket."""

    def __init__(self, subscription: Mapping[str, Any], key: str, buffer: int) -> None:
        super().__init__(buffer)
        self.subscription = dict(subscription)
        self.key = key
        self.active = False
        # When the frame ``receive`` last returned arrived (conflating subscriptions; 0 here).
        self.received_ns = 0

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.subscription!r}, active={self.active})"


FrameSink: TypeAlias = Callable[[Frame, int], None]
"""What a consumer attaches to a ``ConflatingSubscription``: called with each frame and its
arrival stamp (``received_ns``) as it comes, in the connection's task."""


class ConflatingSubscription(Subscription):
    """A subscription whose frames supersede each other (full book snapshots): no queue, only the
    latest frame, handed to the one consumer waiting in ``receive`` without a channel. A frame
    not yet taken when the next one comes is replaced and counted in ``conflated``; there is
    never a gap to report. ``received_ns`` is the arrival of the frame ``receive`` returned.

    Or, once a consumer ``attach``-es a sink, no slot and no task switch at all: every frame is
    handed to the sink as it is offered, in the connection's receive task, so its consumer is
    never behind and never sees a stale frame (it has the latest as soon as it arrives), and
    ``receive`` only waits for the end. How it fails: a sink that raises does not reach the
    connection; the subscription closes (the connection stops routing to it, as to a consumer
    that closed its end) and ``receive``, in the consumer's own task, raises the exception
    (``failure``) where its supervisor expects the consumer's errors.
    """

    def __init__(self, subscription: Mapping[str, Any], key: str) -> None:
        super().__init__(subscription, key, 1)
        self.conflated = 0
        self.failure: Exception | None = None  # what the attached sink raised, if it did
        self._latest: dict[str, Any] | str | None = None
        self._latest_ns = 0
        self._waiter: trio.lowlevel.Task | None = None
        self._sink: FrameSink | None = None

    def attach(self, sink: FrameSink) -> None:
        """Hand every frame from now on to ``sink`` as it comes (see the class); a frame
        waiting in the slot goes to it at once. ``sink`` must not block and should not raise."""
        if self._sink is not None:
            raise trio.BusyResourceError("this subscription has a sink already")
        self._sink = sink
        frame, self._latest = self._latest, None
        if frame is not None and not self.closed:
            self._push(sink, frame, self._latest_ns)

    def _push(self, sink: FrameSink, frame: Frame, received_ns: int) -> bool:
        self.received_ns = received_ns
        try:
            sink(frame, received_ns)
        except Exception as exc:  # the consumer's error, for the consumer's task
            self.failure = exc
            self.close(f"its consumer failed: {type(exc).__name__}: {exc}")
            return False
        return True

    def offer(self, frame: Frame, received_ns: int = 0) -> bool:
        if self.closed:
            return False
        sink = self._sink
        if sink is not None:
            self.delivered += 1
            return self._push(sink, frame, received_ns)
        if self._latest is not None:
            self.conflated += 1
        self._latest = frame
        self._latest_ns = received_ns
        self.delivered += 1
        self._wake()
        return True

    def close(self, error: str | None = None) -> None:
        if error is not None:
            self.error = error
        self.closed = True
        self._wake()

    def _wake(self) -> None:
        task, self._waiter = self._waiter, None
        if task is not None:
            trio.lowlevel.reschedule(task)

    async def receive(self) -> Delivery:
        """The latest frame not yet taken (waiting for one); EndOfChannel once closed and
        taken, or the sink's ``failure`` once it failed."""
        if self._latest is None and not self.closed:
            if self._waiter is not None:
                raise trio.BusyResourceError("another task is receiving from this subscription")
            self._waiter = trio.lowlevel.current_task()

            def abort(_: Any) -> trio.lowlevel.Abort:
                self._waiter = None
                return trio.lowlevel.Abort.SUCCEEDED

            await trio.lowlevel.wait_task_rescheduled(abort)
        else:
            await trio.lowlevel.checkpoint()
        frame = self._latest
        if frame is None:
            if self.failure is not None:
                raise self.failure
            raise trio.EndOfChannel
        self._latest = None
        self.received_ns = self._latest_ns
        return frame


# --- the manager --------------------------------------------------------------------------------


@attrs.define(eq=False)
class _Waiter:
    """One request awaiting its reply: a post, or a subscribe/unsubscribe acknowledgement."""

    done: trio.Event = attrs.field(factory=trio.Event)
    response: Any = None
    error: Exception | None = None

    def resolve(self, response: Any = None, error: Exception | None = None) -> None:
        if not self.done.is_set():
            self.response = response
            self.error = error
            self.done.set()


@attrs.define(eq=False)
class _AckWaiter(_Waiter):
    method: str = "subscribe"
    subscription: dict[str, Any] = attrs.field(factory=dict)


class WsConnection:
    """One WebSocket connection to the venue, kept up; see the module docstring."""

    def __init__(
        self,
        url: str,
        config: ConnectionConfig | None = None,
        *,
        name: str = "hyperliquid-ws",
        connect: Connect | None = None,
        rng: random.Random | None = None,
        on_state_change: Callable[[Transition], None] | None = None,
    ) -> None:
        self.url = ws_url(url)
        self.config = config or ConnectionConfig()
        self.name = name
        self._connect = connect or self._open_url
        self.on_state_change = on_state_change
        self.health = ConnectionHealth(
            self.config, name=name, rng=rng or randomness.generator(), on_change=self._changed
        )
        # Counters, for metrics.
        self.frames_received: Counter[str] = Counter()
        self.malformed_frames = 0
        self.dropped_frames = 0
        self._conflated_gone = 0  # conflated by subscriptions no longer routed to
        self.unrouted_frames = 0
        self.late_post_replies = 0
        self.post_timeouts = 0
        self.posts_failed = 0
        self.pings_sent = 0
        self.reconnects = 0
        self.errors_received = 0
        # Consumers.
        self._subscriptions: list[Subscription] = []
        self._routes: dict[str, list[Subscription]] = {}
        self._taps: list[FrameStream] = []
        # The current socket and what is awaiting replies on it.
        self._ws: WebSocketConnection | None = None
        self._scope: trio.CancelScope | None = None
        self._lost: str | None = None
        self._active_keys: set[str] = set()
        self._ids = itertools.count(1)
        self._posts: dict[int, _Waiter] = {}
        self._acks: list[_AckWaiter] = []
        self._pong = trio.Event()
        self._up = trio.Event()
        self._started = False
        self._accounted = False
        self._delay: float | None = None

    # --- state ----------------------------------------------------------------------------------

    @property
    def state(self) -> State:
        return self.health.state

    @property
    def conflated_frames(self) -> int:
        """Book frames replaced by a newer one before their consumer took them (ever)."""
        return self._conflated_gone + sum(
            sub.conflated for sub in self._subscriptions if isinstance(sub, ConflatingSubscription)
        )

    @property
    def connected(self) -> bool:
        return self._ws is not None and self.health.state.up

    async def wait_connected(self) -> None:
        """Return once the socket is up and every subscription acknowledged."""
        while not self.connected:
            await self._up.wait()

    def counters(self) -> dict[str, Any]:
        """Every counter, as plain data."""
        return {
            "frames_received": dict(self.frames_received),
            "malformed_frames": self.malformed_frames,
            "dropped_frames": self.dropped_frames,
            "conflated_frames": self.conflated_frames,
            "unrouted_frames": self.unrouted_frames,
            "late_post_replies": self.late_post_replies,
            "post_timeouts": self.post_timeouts,
            "posts_failed": self.posts_failed,
            "pings_sent": self.pings_sent,
            "reconnects": self.reconnects,
            "errors_received": self.errors_received,
        }

    # --- consumers ------------------------------------------------------------------------------

    async def subscribe(
        self, subscription: Mapping[str, Any], *, buffer: int | None = None, conflate: bool = False
    ) -> Subscription:
        """Register a subscription (kept across reconnects); its frames come on the result
        (with ``conflate``, a ``ConflatingSubscription``: only the latest frame is kept).

        When the socket is up, this subscribes at once and returns after the acknowledgement
        (or raises ``SubscriptionRejected``); otherwise the subscription is made on connect.
        Several subscriptions with the same key share one venue subscription (a later one
        does not get the venue's initial snapshot).
        """
        key = subscription_key(subscription)
        kind = subscription["type"]
        if kind in _UNKEYED_USER_TYPES:
            for other in self._routes.get(key, ()):
                if not same_subscription(other.subscription, subscription):
                    raise ValueError(
                        f"{kind} frames carry no user: one {kind} subscription per connection"
                    )
        sub = (
            ConflatingSubscription(subscription, key)
            if conflate
            else Subscription(subscription, key, buffer or self.config.subscription_buffer)
        )
        self._subscriptions.append(sub)
        self._routes.setdefault(key, []).append(sub)
        if not self.connected or key in self._active_keys:
            sub.active = key in self._active_keys and self.connected
            return sub
        self._active_keys.add(key)
        try:
            rejected = await self._request("subscribe", sub.subscription)
        except ConnectionDown:
            return sub  # subscribed again on the next socket
        except trio.TooSlowError:
            self._lose(f"no acknowledgement for {sub.subscription}")
            return sub
        if rejected is not None:
            self._reject(key, rejected)
            raise SubscriptionRejected(rejected)
        for same in self._routes.get(key, ()):
            same.active = True
        return sub

    async def unsubscribe(self, sub: Subscription) -> None:
        """Stop a subscription and close its stream; unsubscribes at the venue when it was the
        last one with its key (best effort: the venue forgets it on reconnect anyway)."""
        self._forget(sub)
        sub.close()
        if self._routes.get(sub.key) or sub.key not in self._active_keys:
            return
        self._active_keys.discard(sub.key)
        if self.connected:
            with suppress(ConnectionDown, trio.TooSlowError):
                await self._request("unsubscribe", sub.subscription)

    def listen(
        self, channels: Collection[str] | None = None, *, buffer: int | None = None
    ) -> FrameStream:
        """A tap: every frame on ``channels`` (None: every frame, and the greeting text)."""
        tap = FrameStream(
            buffer or self.config.subscription_buffer,
            frozenset(channels) if channels is not None else None,
        )
        self._taps.append(tap)
        return tap

    def watching(self, on_change: Callable[[bool, str], None]) -> AbstractContextManager[None]:
        """``on_change(up, reason)`` at once when the socket goes down or is up again, within
        the block (``watching_state``)."""
        return watching_state(self, on_change)

    def close_tap(self, tap: FrameStream) -> None:
        if tap in self._taps:
            self._taps.remove(tap)
        tap.close()

    @property
    def subscriptions(self) -> tuple[Subscription, ...]:
        return tuple(self._subscriptions)

    # --- requests -------------------------------------------------------------------------------

    async def post(
        self,
        request: Mapping[str, Any],
        timeout: float | None = None,  # noqa: ASYNC109 -- the venue request's own deadline
    ) -> Any:
        """Send a post request and return the reply's ``response`` object."""
        ws = self._ws
        if ws is None or not self.health.state.up:
            raise ConnectionDown(f"{self.name} is {self.health.state.value}")
        post_id = next(self._ids)
        limit = self.config.post_timeout_s if timeout is None else timeout
        waiter = _Waiter()
        self._posts[post_id] = waiter
        message = orjson.dumps({"method": "post", "id": post_id, "request": request}).decode()
        try:
            with trio.move_on_after(limit):
                try:
                    await ws.send_message(message)
                except ConnectionClosed:
                    raise ConnectionDown(f"{self.name}: socket closed") from None
                await waiter.done.wait()
        finally:
            self._posts.pop(post_id, None)
        if not waiter.done.is_set():
            self.post_timeouts += 1
            raise PostTimeout(post_id, limit)
        if waiter.error is not None:
            raise waiter.error
        return waiter.response

    async def _request(self, method: str, subscription: dict[str, Any]) -> str | None:
        """Subscribe or unsubscribe and await the acknowledgement: None, or the rejection text.

        Raises ConnectionDown if the socket goes, trio.TooSlowError if no answer in time.
        """
        ws = self._ws
        if ws is None:
            raise ConnectionDown(f"{self.name} is not connected")
        waiter = _AckWaiter(method=method, subscription=subscription)
        self._acks.append(waiter)
        try:
            with trio.fail_after(self.config.connect_timeout_s):
                try:
                    await ws.send_message(
                        orjson.dumps({"method": method, "subscription": subscription}).decode()
                    )
                except ConnectionClosed:
                    raise ConnectionDown(f"{self.name}: socket closed") from None
                await waiter.done.wait()
        finally:
            if waiter in self._acks:
                self._acks.remove(waiter)
        if waiter.error is not None:
            raise waiter.error
        rejected: str | None = waiter.response
        return rejected

    # --- the child ------------------------------------------------------------------------------

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Keep the connection up; ready once first connected. Raises ConnectionFailed."""
        health = self.health
        health.start(trio.current_time())
        self._started = False
        delay: float | None = None
        while True:
            if delay:
                await trio.sleep(delay)
            self._lost = None
            self._accounted = False
            error: Exception | None = None
            try:
                async with self._connect() as ws:
                    await self._session(ws, task_status)
            except Exception as exc:  # every failure of a socket is retried, by the health FSM
                error = exc
            finally:
                self._down()
            if not self._accounted:
                self._account(self._lost or (_describe(error) if error else "connection ended"))
            delay = self._delay
            if delay is None:
                raise ConnectionFailed(f"{self.name}: {health.reason}") from error

    def _account(self, reason: str) -> None:
        """Tell the health machine how the socket ended; ``_delay`` is its answer."""
        health = self.health
        now = trio.current_time()
        self._accounted = True
        if health.state.up:
            self._delay = health.disconnected(now, reason)
        else:
            self._delay = health.attempt_failed(now, reason)
            if self._delay is not None:  # (FAILED is logged as a transition)
                logger.warning(
                    "{}: connect attempt {} failed, next in {:.2f}s: {}",
                    self.name,
                    health.attempts,
                    self._delay,
                    reason,
                )

    def _open_url(self) -> AbstractAsyncContextManager[WebSocketConnection]:
        config = self.config
        return open_websocket_url(
            self.url,
            message_queue_size=config.message_queue_size,
            max_message_size=config.max_message_size,
            receive_buffer_size=config.receive_buffer_size,
            connect_timeout=config.connect_timeout_s,
            disconnect_timeout=config.disconnect_timeout_s,
        )

    async def _session(self, ws: WebSocketConnection, task_status: trio.TaskStatus[None]) -> None:
        """Serve one socket until it is lost: greeting, subscriptions, then the loops.

        When it ends (not cancelled), waiters fail and the health machine hears of it at once,
        before the socket's closing handshake.
        """
        self._ws = ws
        self._active_keys = set()
        try:
            await self._serve(ws, task_status)
        except Exception as exc:
            self._account(self._lost or _describe(exc))
            raise
        else:
            self._account(self._lost or "connection ended")
        finally:
            self._down()

    async def _serve(self, ws: WebSocketConnection, task_status: trio.TaskStatus[None]) -> None:
        with trio.fail_after(self.config.connect_timeout_s):
            first = await _message(ws)
        if first is None:
            self._lost = "closed before the greeting"
            return
        self._handle(first)
        async with trio.open_nursery() as nursery:
            self._scope = nursery.cancel_scope
            nursery.start_soon(self._receive_loop, ws)
            with trio.move_on_after(self.config.connect_timeout_s) as timer:
                await self._subscribe_all()
            if timer.cancelled_caught:
                self._lose("timed out waiting for subscription acknowledgements")
                return
            self._came_up()
            if not self._started:
                self._started = True
                task_status.started()
            nursery.start_soon(self._pinger, ws)
            nursery.start_soon(self._watchdog)

    async def _subscribe_all(self) -> None:
        """Subscribe every registered key not yet active on this socket; await every ack."""
        while True:
            pending: dict[str, Subscription] = {}
            for sub in self._subscriptions:
                if sub.key not in self._active_keys and sub.key not in pending:
                    pending[sub.key] = sub
            if not pending:
                return
            self._active_keys.update(pending)
            async with trio.open_nursery() as nursery:
                for key, sub in pending.items():
                    nursery.start_soon(self._subscribe_one, key, sub.subscription)

    async def _subscribe_one(self, key: str, subscription: dict[str, Any]) -> None:
        try:
            rejected = await self._request("subscribe", subscription)
        except ConnectionDown:
            return  # the receive loop has seen it go and is ending the session
        if rejected is not None:
            self._reject(key, rejected)
            return
        for sub in self._routes.get(key, ()):
            sub.active = True

    def _came_up(self) -> None:
        self.health.connected(trio.current_time())
        if self.health.connects > 1:
            self.reconnects += 1
        self._up.set()

    def _down(self) -> None:
        """The socket is gone: fail everything that was waiting on it."""
        self._ws = None
        self._scope = None
        if self._up.is_set():
            self._up = trio.Event()
        self._active_keys = set()
        for sub in self._subscriptions:
            sub.active = False
        posts, self._posts = self._posts, {}
        for waiter in posts.values():
            waiter.resolve(error=ConnectionDown(f"{self.name}: connection lost"))
        acks, self._acks = self._acks, []
        for ack in acks:
            ack.resolve(error=ConnectionDown(f"{self.name}: connection lost"))
        self._pong.set()

    def _lose(self, reason: str) -> None:
        """End the current session (the socket is dead, silent, or broke a rule)."""
        if self._lost is None:
            self._lost = reason
        if self._scope is not None:
            self._scope.cancel()

    async def _receive_loop(self, ws: WebSocketConnection) -> None:
        get_message, handle = ws.get_message, self._handle
        while True:
            try:  # (as _message, inline: once a frame)
                message = await get_message()
            except ConnectionClosed:
                closed = ws.closed
                detail = f" ({closed.code} {closed.reason or closed.name})" if closed else ""
                self._lose(f"closed by the venue{detail}")
                return
            handle(message)

    async def _pinger(self, ws: WebSocketConnection) -> None:
        interval = self.config.ping_interval_s
        next_at = trio.current_time() + interval
        while True:
            await trio.sleep_until(next_at)
            self._pong = pong = trio.Event()
            try:
                await ws.send_message(PING)
            except ConnectionClosed:
                return  # the receive loop reports it
            self.pings_sent += 1
            with trio.move_on_after(self.config.pong_timeout_s):
                await pong.wait()
            if not pong.is_set():
                self._lose(f"no pong within {self.config.pong_timeout_s:g}s")
                return
            next_at = max(next_at + interval, trio.current_time())

    async def _watchdog(self) -> None:
        health = self.health
        while True:
            await trio.sleep_until(health.next_check(trio.current_time()))
            now = trio.current_time()
            if health.tick(now):
                silent = now - (health.last_message_at or now)
                self._lose(f"stale: no message for {silent:.1f}s")
                return

    # --- frames ---------------------------------------------------------------------------------

    def _handle(self, message: str | bytes) -> None:
        """One frame from the socket. Never waits: consumers get it with ``send_nowait`` (or
        in their slot). Stamped first, on the monotonic clock in nanoseconds."""
        now = trio.current_time()
        received_ns = int(now * 1_000_000_000)  # mm.clock.monotonic_ns, read once with ``now``
        self.health.message(now)
        self._pong.set()  # any frame shows the socket alive
        text = message.decode(errors="replace") if isinstance(message, bytes) else message
        if text == GREETING:
            self.frames_received[GREETING_CHANNEL] += 1
            self._tap(GREETING_CHANNEL, text)
            return
        try:
            frame = orjson.loads(text)
        except orjson.JSONDecodeError:
            self.malformed_frames += 1
            return
        channel = frame.get("channel") if isinstance(frame, dict) else None
        if not isinstance(channel, str):
            self.malformed_frames += 1
            return
        self.frames_received[channel] += 1
        try:
            if channel in _CONTROL_CHANNELS:
                self._control(channel, frame)
            else:
                self._route(frame, received_ns)
        except _MALFORMED:
            self.malformed_frames += 1
            return
        self._tap(channel, frame)

    def _route(self, frame: dict[str, Any], received_ns: int = 0) -> None:
        key = frame_key(frame)
        if key is None:
            return
        subs = self._routes.get(key)
        if not subs:
            self.unrouted_frames += 1
            return
        gone = False
        for sub in subs:
            if not sub.offer(frame, received_ns):
                if sub.closed:
                    gone = True
                else:
                    self.dropped_frames += 1
        if gone:  # consumers that closed their end: no longer routed to (still subscribed)
            for sub in [sub for sub in subs if sub.closed]:
                self._forget(sub)

    def _tap(self, channel: str, frame: Frame) -> None:
        gone = False
        for tap in self._taps:
            if (tap.channels is None or channel in tap.channels) and not tap.offer(frame):
                if tap.closed:
                    gone = True
                else:
                    self.dropped_frames += 1
        if gone:
            self._taps = [tap for tap in self._taps if not tap.closed]

    def _control(self, channel: str, frame: dict[str, Any]) -> None:
        data: Any = frame.get("data")
        if channel == "post":
            post_id = data["id"]
            if type(post_id) is not int:  # 1.0 or true would answer post 1
                raise TypeError(f"a post id is an integer, got {type(post_id).__name__}")
            waiter = self._posts.pop(post_id, None)
            if waiter is None:
                self.late_post_replies += 1
            else:
                waiter.resolve(data["response"])
        elif channel == "subscriptionResponse":
            method, echoed = data["method"], data["subscription"]
            for ack in self._acks:
                if ack.method == method and same_subscription(ack.subscription, echoed):
                    self._acks.remove(ack)
                    ack.resolve(None)
                    return
        elif channel == "error":
            text = _text(data)
            self.errors_received += 1
            self._error(text)

    def _error(self, text: str) -> None:
        """An error frame: a refused post or subscription, a refused message that names no
        post (every pending post fails), or something for the taps only."""
        match = _POST_ID.search(text)
        if match is not None:
            waiter = self._posts.pop(int(match.group(1)), None)
            if waiter is not None:
                waiter.resolve(error=PostRejected(text))
                return
        if is_ws_messages_limit(text):
            self._fail_posts(text)
            return
        start = text.find("{")
        if start < 0:
            return
        try:
            named = orjson.loads(text[start:])
        except orjson.JSONDecodeError:
            return
        for ack in self._acks:
            if same_subscription(ack.subscription, named) and same_subscription(
                named, ack.subscription
            ):
                self._acks.remove(ack)
                # "Already subscribed" / "Already unsubscribed": the venue is where we want it.
                ack.resolve(None if text.startswith("Already") else text)
                return

    def _fail_posts(self, text: str) -> None:
        """Fail every pending post with the venue's text (``PostFailed``): a late reply to one
        of them is counted and dropped, as after a timeout."""
        posts, self._posts = self._posts, {}
        if posts:
            logger.warning("{}: {} pending post(s) failed: {}", self.name, len(posts), text)
        for waiter in posts.values():
            self.posts_failed += 1
            waiter.resolve(error=PostFailed(f"{self.name}: {text}"))

    def _reject(self, key: str, reason: str) -> None:
        """The venue refused a subscription: close every stream with that key."""
        self._active_keys.discard(key)
        logger.error("{}: subscription refused: {}", self.name, reason)
        for sub in list(self._routes.get(key, ())):
            self._forget(sub)
            sub.close(reason)

    def _forget(self, sub: Subscription) -> None:
        if sub in self._subscriptions:
            self._subscriptions.remove(sub)
            if isinstance(sub, ConflatingSubscription):
                self._conflated_gone += sub.conflated
        subs = self._routes.get(sub.key)
        if subs is not None and sub in subs:
            subs.remove(sub)
            if not subs:
                del self._routes[sub.key]

    def _changed(self, transition: Transition) -> None:
        level = "INFO" if transition.new in (State.HEALTHY, State.CONNECTING) else "WARNING"
        if transition.new is State.FAILED:
            level = "ERROR"
        logger.log(
            level,
            "{}: {} -> {} ({})",
            transition.name,
            transition.old.value,
            transition.new.value,
            transition.reason,
        )
        if self.on_state_change is not None:
            self.on_state_change(transition)


async def _message(ws: WebSocketConnection) -> str | bytes | None:
    """The next message, or None once the socket is closed."""
    try:
        return await ws.get_message()
    except ConnectionClosed:
        return None


def _describe(error: BaseException) -> str:
    while isinstance(error, BaseExceptionGroup) and error.exceptions:
        error = error.exceptions[0]
    text = str(error)
    return f"{type(error).__name__}: {text}" if text else type(error).__name__
