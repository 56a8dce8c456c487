"""KuCoin's WebSocket: one connection manager per socket, run as a supervised child.

``KucoinWs.run`` keeps one socket up by the venue's procedure (``ws_protocol``): before EVERY
connect it awaits ``bullet()`` (the caller's REST call to ``bullet-public`` or
``bullet-private``: a new token each time, as the venue asks), connects to the bullet's endpoint
with a fresh connect id, waits for the ``welcome`` (within the config's connect timeout), then
(re)subscribes every registered subscription and waits for each ``ack``, and serves: a receive loop
that classifies every message and hands data on without ever waiting for a consumer, a ``ping``
every ``bullet.ping_interval_s`` (or the config's ``ping_interval_s``, or half its
``stale_after_s``, when smaller: a quiet private connection's pongs are then its only frames, and
must come before it would read as stale), and a watchdog for silence. No ``pong`` within the
bullet's ``ping_timeout_s`` (or the config's ``pong_timeout_s`` when smaller) is a lost socket.
When the socket is lost it backs off (full jitter, under Trio's clock) and reconnects, as the
connection-health machine (``mm.connection``) says; after ``max_attempts`` failed attempts in a row
``run`` raises ``ConnectionFailed`` so that its supervisor escalates.

Consumers ``await subscribe(topic, private=..., buffer=...)`` and get a ``TopicSubscription``:
a bounded stream of ``Frame`` values (a data message, stamped on arrival with
``mm.clock.monotonic_ns()``) with the venue port's ``Gap`` and ``Malformed`` markers. It
survives reconnects: the manager subscribes it again on every new socket. KuCoin subscribes to
several symbols at once (``/market/level2:BTC-USDT,ETH-USDT``) while each message names one
(``/market/level2:BTC-USDT``), so messages are routed per (topic prefix, symbol); a topic
without symbols (the private ``/spotMarket/tradeOrdersV2``) routes by its prefix, and
``/market/ticker:all`` by its ``all``.

How it fails:

- A consumer that does not keep up loses frames, never slows the socket: each subscription
  holds at most ``buffer`` frames not yet taken; one that does not fit is dropped and counted,
  and one ``Gap(at=trio.current_time())`` marker takes the slot kept free for it.
- Or a consumer ``attach``-es a sink to its subscription: then every frame and marker is
  handed to the sink as it arrives, in the receive loop (no queue, no task switch per frame;
  the consumer is never behind). A sink that raises does not reach the receive loop: its
  subscription closes (no longer routed to, as one whose consumer closed its end) and
  ``receive``, in the consumer's own task, raises what the sink raised (``failure``).
- After every reconnect each subscription that was live on an earlier socket gets a ``Gap``
  before its first frame of the new socket (messages may have been lost while it was down).
- The venue refusing a subscription (an ``error`` answering its ``subscribe``) ends that
  subscription with ``error`` set; ``subscribe`` raises ``SubscriptionRejected`` when the
  refusal answers it directly.
- A message that is not JSON, not of the venue's shape, is counted in ``malformed_frames`` and
  skipped (a ``Malformed`` marker goes to the subscription it names, when it names one); no
  message ever ends the receive loop.
- Nothing is logged per message above DEBUG; transitions are logged (INFO/WARNING/ERROR).

Counters (plain attributes, for metrics): ``frames_received`` per topic prefix,
``malformed_frames``, ``dropped_frames``, ``unrouted_frames``, ``errors_received``,
``pings_sent``, ``reconnects`` (connections made again since start); ``health`` holds the
state machine, and ``on_state_change`` hears of every transition (``watching`` adds a listener
for a while, told only whether the socket is up). The bullet's token is never logged.
"""

from __future__ import annotations

import itertools
import random
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import AbstractAsyncContextManager, AbstractContextManager, contextmanager, suppress
from typing import Any, Protocol, TypeAlias

import attrs
import orjson
import trio
from loguru import logger

from mm import clock, randomness
from mm.connection import ConnectionConfig, ConnectionHealth, State, Transition
from mm.venues.base import Gap, Malformed
from mm.venues.kucoin.codec import CodecError
from mm.venues.kucoin.ws_protocol import (
    Bullet,
    Kind,
    classify,
    connect_url,
    ping,
    subscribe,
    unsubscribe,
)
from mm.websocket import ConnectionClosed, open_websocket_url

__all__ = [
    "ConnectionDown",
    "ConnectionFailed",
    "Delivery",
    "Frame",
    "KucoinWs",
    "Socket",
    "SubscriptionRejected",
    "TopicSubscription",
    "routing_keys",
]


class ConnectionFailed(Exception):
    """The manager gave up reconnecting (``max_attempts`` failed attempts in a row)."""


class SubscriptionRejected(Exception):
    """The venue refused a subscription (an unknown topic or symbol): its ``error`` text."""


class ConnectionDown(Exception):
    """The socket is not up, or went down before the venue answered."""


class Socket(Protocol):
    """What the manager uses of a WebSocket (``mm.websocket.WebSocketConnection`` is one):
    ``get_message`` raises ``mm.websocket.ConnectionClosed`` once the socket is closed, and
    ``send_message`` may be called from other tasks while one task is in ``get_message``."""

    async def get_message(self) -> str | bytes: ...

    async def send_message(self, message: str | bytes) -> None: ...


Connect: TypeAlias = Callable[[str], AbstractAsyncContextManager[Socket]]
Key: TypeAlias = tuple[str, str]  # (topic prefix, symbol or "" when the topic names none)


@attrs.frozen(slots=True)
class Frame:
    """One data message: when it arrived (``mm.clock.monotonic_ns``), its topic (one symbol),
    subject and ``data`` as the venue sent them."""

    received_ns: int
    topic: str
    subject: str | None
    data: Any


Delivery: TypeAlias = Frame | Gap | Malformed


def routing_keys(topic: str) -> tuple[str, tuple[Key, ...]]:
    """A subscription topic's prefix and the keys its messages come under:
    ``/market/level2:A,B`` -> ``("/market/level2", (("/market/level2", "A"), (…, "B")))``;
    ``/spotMarket/tradeOrdersV2`` -> its prefix with ``""``. ValueError for a topic that is
    not ``/prefix`` or ``/prefix:SYM[,SYM…]``."""
    if type(topic) is not str or not topic.startswith("/"):
        raise ValueError(f"not a KuCoin topic: {topic!r}")
    prefix, colon, symbols = topic.partition(":")
    if not colon:
        return prefix, ((prefix, ""),)
    names = symbols.split(",")
    if not all(names) or len(set(names)) != len(names):
        raise ValueError(f"not a KuCoin topic: {topic!r}")
    return prefix, tuple((prefix, name) for name in names)


def _message_key(topic: str) -> Key:
    prefix, _, symbol = topic.partition(":")
    return prefix, symbol


class TopicSubscription:
    """One venue subscription's messages for one consumer (see the module): an async iterable
    of ``Frame``, ``Gap`` and ``Malformed``; iteration ends when it is unsubscribed or the venue
    refused it (``error`` says why). ``active``: acknowledged on the current socket."""

    def __init__(self, topic: str, *, private: bool, buffer: int) -> None:
        if buffer < 1:
            raise ValueError(f"buffer must be >= 1, got {buffer}")
        self.channel, self.keys = routing_keys(topic)
        self.topic = topic
        self.private = private
        self.buffer = buffer
        self._send, self._receive = trio.open_memory_channel[Delivery](buffer + 1)
        self._queued = 0  # deliveries sent and not yet received (counted here, not asked)
        self._in_gap = False
        self._active = False
        self._acked = trio.Event()
        self.session = 0  # the socket it was last sent on (0: none yet)
        self.was_live = False  # acknowledged on some socket: a later one owes it a Gap
        self.error: str | None = None
        self.closed = False
        self.failure: Exception | None = None  # what an attached sink raised, if it did
        self._sink: Callable[[Delivery], None] | None = None
        self.delivered = 0
        self.dropped = 0
        self.gaps = 0

    def __repr__(self) -> str:
        return f"TopicSubscription({self.topic!r}, private={self.private}, active={self.active})"

    @property
    def active(self) -> bool:
        return self._active

    @property
    def description(self) -> str:
        return self.topic

    def set_active(self, active: bool) -> None:
        if active and not self._active:
            self.was_live = True
            self._acked.set()
        elif not active and self._active:
            self._acked = trio.Event()
        self._active = active

    async def wait_active(self) -> None:
        """Return once the venue acknowledged the subscription on the current socket (or it
        ended: check ``closed``)."""
        while not self._active and not self.closed:
            await self._acked.wait()

    def attach(self, sink: Callable[[Delivery], None]) -> None:
        """Hand every delivery from now on to ``sink`` as it comes, in the socket's receive
        loop (see the module); what is queued goes to it first, at once. ``sink`` must not
        block and should not raise; ``receive`` then only waits for the end (or raises the
        sink's ``failure``)."""
        if self._sink is not None:
            raise trio.BusyResourceError("this subscription has a sink already")
        self._sink = sink
        while not self.closed:
            try:
                delivery = self._receive.receive_nowait()
            except (trio.WouldBlock, trio.EndOfChannel):
                return
            self._queued -= 1
            self._push(sink, delivery)

    def _push(self, sink: Callable[[Delivery], None], delivery: Delivery) -> bool:
        try:
            sink(delivery)
        except Exception as exc:  # the consumer's error, for the consumer's task
            self.failure = exc
            self.close(f"its consumer failed: {type(exc).__name__}: {exc}")
            return False
        return True

    # --- the manager's side ---------------------------------------------------------------------

    def offer(self, delivery: Frame | Malformed) -> bool:
        """Hand a message on without waiting; False when it was dropped (consumer behind, or
        gone)."""
        if self.closed:
            return False
        sink = self._sink
        if sink is not None:
            self._in_gap = False
            self.delivered += 1
            return self._push(sink, delivery)
        try:
            if self._queued < self.buffer:
                self._send.send_nowait(delivery)
                self._queued += 1
                self._in_gap = False
                self.delivered += 1
                return True
            self.dropped += 1
            self.mark_gap()
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            self.closed = True  # the consumer closed its end
        return False

    def mark_gap(self) -> None:
        """Messages were lost here: one ``Gap`` marker (none more until a message gets
        through). It always fits: the slot kept free is used only on entering a gap."""
        if self.closed or self._in_gap:
            return
        sink = self._sink
        if sink is not None:
            self._in_gap = True
            self.gaps += 1
            self._push(sink, Gap(trio.current_time()))
            return
        try:
            self._send.send_nowait(Gap(trio.current_time()))
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            self.closed = True
            return
        self._queued += 1
        self._in_gap = True
        self.gaps += 1

    def close(self, error: str | None = None) -> None:
        """End the stream: iteration ends once what is queued was taken."""
        if error is not None:
            self.error = error
        self.closed = True
        self._acked.set()
        self._send.close()

    # --- the consumer's side --------------------------------------------------------------------

    async def receive(self) -> Delivery:
        """The next delivery; ``trio.EndOfChannel`` once the subscription ended (or, once an
        attached sink failed, what it raised)."""
        try:
            delivery = await self._receive.receive()
        except trio.EndOfChannel:
            if self.failure is not None:
                raise self.failure from None
            raise
        self._queued -= 1
        return delivery

    def receive_nowait(self) -> Delivery:
        """The next delivery if one is queued: ``trio.WouldBlock`` if none, EndOfChannel once
        ended."""
        delivery = self._receive.receive_nowait()
        self._queued -= 1
        return delivery

    def __aiter__(self) -> AsyncIterator[Delivery]:
        return self

    async def __anext__(self) -> Delivery:
        try:
            return await self.receive()
        except trio.EndOfChannel:
            raise StopAsyncIteration from None


@attrs.define(eq=False)
class _Waiter:
    """A subscribe or unsubscribe awaiting its ``ack`` (or ``error``)."""

    done: trio.Event = attrs.field(factory=trio.Event)
    refused: str | None = None
    lost: bool = False

    def resolve(self, refused: str | None = None, *, lost: bool = False) -> None:
        if not self.done.is_set():
            self.refused, self.lost = refused, lost
            self.done.set()


class KucoinWs:
    """One WebSocket connection to KuCoin, kept up; see the module docstring."""

    def __init__(
        self,
        bullet: Callable[[], Awaitable[Bullet]],
        config: ConnectionConfig,
        *,
        name: str,
        on_state_change: Callable[[Transition], None] | None = None,
        connect: Connect | None = None,
        rng: random.Random | None = None,
    ) -> None:
        self._bullet = bullet
        self.config = config
        self.name = name
        self.on_state_change = on_state_change
        self._connect = connect or self._open
        self.health = ConnectionHealth(
            config, name=name, rng=rng or randomness.generator(), on_change=self._changed
        )
        # Counters, for metrics.
        self.frames_received: Counter[str] = Counter()
        self.malformed_frames = 0
        self.dropped_frames = 0
        self.unrouted_frames = 0
        self.errors_received = 0
        self.pings_sent = 0
        self.reconnects = 0
        # Consumers.
        self._subscriptions: list[TopicSubscription] = []
        self._routes: dict[Key, list[TopicSubscription]] = {}
        # The current socket and what awaits answers on it.
        self._ws: Socket | None = None
        self._session = 0
        self._scope: trio.CancelScope | None = None
        self._lost: str | None = None
        self._ids = itertools.count(1)
        self._waiters: dict[str, _Waiter] = {}
        self._ping_id: str | None = None
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
    def connected(self) -> bool:
        return self._ws is not None and self.health.state.up

    async def wait_connected(self) -> None:
        """Return once the socket is up and every subscription acknowledged."""
        while not self.connected:
            await self._up.wait()

    def watching(self, on_change: Callable[[bool, str], None]) -> AbstractContextManager[None]:
        """Within the block, ``on_change(up, reason)`` hears at once when the socket goes down
        and when it is up again (after ``on_state_change``, which keeps hearing of every
        transition and is given back at the end of the block)."""
        return self._watching(on_change)

    @contextmanager
    def _watching(self, on_change: Callable[[bool, str], None]) -> Iterator[None]:
        previous = self.on_state_change

        def changed(transition: Transition) -> None:
            if previous is not None:
                previous(transition)
            reason = f"connection {transition.new.value}: {transition.reason}"
            if not transition.new.up:
                on_change(False, reason)
            elif not transition.old.up:
                on_change(True, reason)

        self.on_state_change = changed
        try:
            yield
        finally:
            if self.on_state_change == changed:
                self.on_state_change = previous

    @property
    def subscriptions(self) -> tuple[TopicSubscription, ...]:
        return tuple(self._subscriptions)

    def counters(self) -> dict[str, Any]:
        """Every counter, as plain data."""
        return {
            "frames_received": dict(self.frames_received),
            "malformed_frames": self.malformed_frames,
            "dropped_frames": self.dropped_frames,
            "unrouted_frames": self.unrouted_frames,
            "errors_received": self.errors_received,
            "pings_sent": self.pings_sent,
            "reconnects": self.reconnects,
        }

    # --- consumers ------------------------------------------------------------------------------

    async def subscribe(self, topic: str, *, private: bool, buffer: int) -> TopicSubscription:
        """Register a subscription (kept across reconnects). When the socket is up this
        subscribes at once and returns after the venue's ``ack`` (``SubscriptionRejected`` on
        its ``error``); otherwise it is subscribed on the next connect."""
        sub = TopicSubscription(topic, private=private, buffer=buffer)
        self._subscriptions.append(sub)
        for key in sub.keys:
            self._routes.setdefault(key, []).append(sub)
        if not self.connected:
            return sub
        sub.session = self._session
        try:
            refused = await self._request("subscribe", topic, private)
        except ConnectionDown:
            return sub  # subscribed again on the next socket
        except trio.TooSlowError:
            self._lose(f"no acknowledgement of {topic}")
            return sub
        if refused is not None:
            self._reject(sub, refused)
            raise SubscriptionRejected(f"{topic}: {refused}")
        sub.set_active(True)
        return sub

    async def unsubscribe(self, sub: TopicSubscription) -> None:
        """End a subscription (its iteration ends); unsubscribes at the venue the symbols no
        other subscription still wants (best effort: the venue forgets them on reconnect)."""
        self._forget(sub)
        sub.close()
        left = [name for prefix, name in sub.keys if (prefix, name) not in self._routes]
        if not left or not self.connected or sub.session != self._session:
            return
        topic = sub.channel if left == [""] else f"{sub.channel}:{','.join(left)}"
        with suppress(ConnectionDown, trio.TooSlowError):
            await self._request("unsubscribe", topic, sub.private)

    # --- the child ------------------------------------------------------------------------------

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Keep the connection up; started once first connected. Raises ConnectionFailed."""
        self.health.start(trio.current_time())
        self._started = False
        delay: float | None = None
        while True:
            if delay:
                await trio.sleep(delay)
            self._lost = None
            self._accounted = False
            error: Exception | None = None
            try:
                with trio.fail_after(self.config.connect_timeout_s):
                    bullet = await self._bullet()
                url = connect_url(bullet, randomness.hex_id(64))
                async with self._connect(url) as ws:
                    await self._serve_socket(ws, bullet, task_status)
            except trio.TooSlowError as exc:
                error = exc
                self._lost = self._lost or "timed out asking for a connect token"
            except Exception as exc:  # every failure of a socket is retried, by the health FSM
                error = exc
            finally:
                self._down()
            if not self._accounted:
                self._account(self._lost or (_describe(error) if error else "connection ended"))
            delay = self._delay
            if delay is None:
                raise ConnectionFailed(f"{self.name}: {self.health.reason}") from error

    def _open(self, url: str) -> AbstractAsyncContextManager[Socket]:
        config = self.config
        return open_websocket_url(
            url,
            message_queue_size=config.message_queue_size,
            max_message_size=config.max_message_size,
            receive_buffer_size=config.receive_buffer_size,
            connect_timeout=config.connect_timeout_s,
            disconnect_timeout=config.disconnect_timeout_s,
        )

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

    async def _serve_socket(
        self, ws: Socket, bullet: Bullet, task_status: trio.TaskStatus[None]
    ) -> None:
        """Serve one socket until it is lost; the health machine hears of the end at once."""
        self._ws = ws
        self._session += 1
        try:
            await self._serve(ws, bullet, task_status)
        except Exception as exc:
            self._account(self._lost or _describe(exc))
            raise
        else:
            self._account(self._lost or "connection ended")
        finally:
            self._down()

    async def _serve(self, ws: Socket, bullet: Bullet, task_status: trio.TaskStatus[None]) -> None:
        with trio.fail_after(self.config.connect_timeout_s):
            first = await _message(ws)
        if first is None:
            self._lost = "closed before the welcome"
            return
        try:
            welcome = classify(first)
        except CodecError as error:
            self._lost = f"no welcome: {error}"
            return
        if welcome.kind is not Kind.WELCOME:
            self._lost = f"no welcome: a {welcome.kind.value} message came first"
            return
        self.health.message(trio.current_time())
        async with trio.open_nursery() as nursery:
            self._scope = nursery.cancel_scope
            nursery.start_soon(self._receive_loop, ws)
            with trio.move_on_after(self.config.connect_timeout_s) as timer:
                await self._subscribe_all()
            if timer.cancelled_caught:
                self._lose("timed out waiting for subscription acknowledgements")
                return
            if self._ws is None:
                return  # lost while subscribing
            self._came_up()
            if not self._started:
                self._started = True
                task_status.started()
            nursery.start_soon(self._pinger, ws, bullet)
            nursery.start_soon(self._watchdog)

    async def _subscribe_all(self) -> None:
        """Subscribe every registered subscription not yet sent on this socket (a Gap first for
        each that was live on an earlier one); await every answer."""
        session = self._session
        while True:
            pending = [sub for sub in self._subscriptions if sub.session != session]
            if not pending:
                return
            for sub in pending:
                sub.session = session
                if sub.was_live:
                    sub.mark_gap()  # messages may have been lost while it was down
            async with trio.open_nursery() as nursery:
                for sub in pending:
                    nursery.start_soon(self._subscribe_one, sub)

    async def _subscribe_one(self, sub: TopicSubscription) -> None:
        try:
            refused = await self._request("subscribe", sub.topic, sub.private)
        except ConnectionDown:
            return  # the receive loop has seen it go and is ending the session
        if refused is not None:
            self._reject(sub, refused)
        elif sub in self._subscriptions:
            sub.set_active(True)

    async def _request(self, method: str, topic: str, private: bool) -> str | None:
        """Send a subscribe or unsubscribe and await its answer: None (``ack``) or the refusal.
        ConnectionDown if the socket goes first, TooSlowError without an answer in time."""
        ws = self._ws
        if ws is None:
            raise ConnectionDown(f"{self.name} is not connected")
        request_id = str(next(self._ids))
        waiter = _Waiter()
        self._waiters[request_id] = waiter
        build = subscribe if method == "subscribe" else unsubscribe
        try:
            with trio.fail_after(self.config.connect_timeout_s):
                try:
                    await ws.send_message(build(request_id, topic, private=private))
                except ConnectionClosed:
                    raise ConnectionDown(f"{self.name}: socket closed") from None
                await waiter.done.wait()
        finally:
            self._waiters.pop(request_id, None)
        if waiter.lost:
            raise ConnectionDown(f"{self.name}: connection lost")
        return waiter.refused

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
        for sub in self._subscriptions:
            sub.set_active(False)
        waiters, self._waiters = self._waiters, {}
        for waiter in waiters.values():
            waiter.resolve(lost=True)
        self._pong.set()

    def _lose(self, reason: str) -> None:
        """End the current session (the socket is dead, silent, or broke a rule)."""
        if self._lost is None:
            self._lost = reason
        if self._scope is not None:
            self._scope.cancel()

    async def _receive_loop(self, ws: Socket) -> None:
        get_message, handle = ws.get_message, self._handle
        while True:
            try:
                message = await get_message()
            except ConnectionClosed as closed:
                reason = closed.reason
                detail = f" ({reason.code} {reason.reason or reason.name})" if reason else ""
                self._lose(f"closed by the venue{detail}")
                return
            handle(message)

    async def _pinger(self, ws: Socket, bullet: Bullet) -> None:
        config = self.config
        interval = min(bullet.ping_interval_s, config.ping_interval_s, config.stale_after_s / 2)
        timeout = min(bullet.ping_timeout_s, config.pong_timeout_s)
        next_at = trio.current_time() + interval
        while True:
            await trio.sleep_until(next_at)
            request_id = f"ping-{next(self._ids)}"
            self._ping_id, self._pong = request_id, trio.Event()
            pong = self._pong
            try:
                await ws.send_message(ping(request_id))
            except ConnectionClosed:
                return  # the receive loop reports it
            self.pings_sent += 1
            with trio.move_on_after(timeout):
                await pong.wait()
            if not pong.is_set():
                self._lose(f"no pong within {timeout:g}s")
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

    # --- messages -------------------------------------------------------------------------------

    def _handle(self, message: str | bytes) -> None:
        """One message from the socket. Never waits: consumers get it with ``send_nowait``.
        Stamped first, on the monotonic clock in nanoseconds."""
        received_ns = clock.monotonic_ns()
        self.health.message(trio.current_time())
        try:
            received = classify(message)
        except CodecError as error:
            self.malformed_frames += 1
            self._malformed(message, str(error))
            return
        kind = received.kind
        if kind is Kind.MESSAGE:
            topic = received.topic
            assert topic is not None  # (classify checks a message's topic)
            key = _message_key(topic)
            self.frames_received[key[0]] += 1
            self._route(key, Frame(received_ns, topic, received.subject, received.message["data"]))
        elif kind is Kind.PONG:
            if received.id is not None and received.id == self._ping_id:
                self._pong.set()
        elif kind is Kind.ACK:
            waiter = self._waiters.get(received.id or "")
            if waiter is not None:
                waiter.resolve()
        elif kind is Kind.ERROR:
            self.errors_received += 1
            data = received.message.get("data")
            code = received.message.get("code")
            text = f"{code}: {data}" if code is not None else str(data)
            waiter = self._waiters.get(received.id or "")
            if waiter is not None:
                waiter.resolve(text[:200])
            else:
                logger.warning("{}: the venue sent an error: {:.200}", self.name, text)

    def _route(self, key: Key, delivery: Frame | Malformed) -> None:
        subs = self._routes.get(key)
        if not subs:
            self.unrouted_frames += 1
            return
        gone = False
        for sub in subs:
            if not sub.offer(delivery):
                if sub.closed:
                    gone = True
                else:
                    self.dropped_frames += 1
        if gone:  # consumers that closed their end: no longer routed to
            for sub in [sub for sub in subs if sub.closed]:
                self._forget(sub)

    def _malformed(self, message: str | bytes, why: str) -> None:
        """A message that did not parse: a marker to the subscription it names, if any."""
        try:
            parsed = orjson.loads(message)
        except orjson.JSONDecodeError:
            return
        topic = parsed.get("topic") if type(parsed) is dict else None
        if type(topic) is str:
            logger.debug("{}: skipped a malformed message on {:.80}: {}", self.name, topic, why)
            self._route(_message_key(topic), Malformed(why))

    def _reject(self, sub: TopicSubscription, reason: str) -> None:
        """The venue refused a subscription: its stream ends with the venue's text."""
        logger.error("{}: subscription {} refused: {}", self.name, sub.topic, reason)
        self._forget(sub)
        sub.close(reason)

    def _forget(self, sub: TopicSubscription) -> None:
        if sub in self._subscriptions:
            self._subscriptions.remove(sub)
        for key in sub.keys:
            subs = self._routes.get(key)
            if subs is not None and sub in subs:
                subs.remove(sub)
                if not subs:
                    del self._routes[key]

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


async def _message(ws: Socket) -> str | bytes | None:
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
