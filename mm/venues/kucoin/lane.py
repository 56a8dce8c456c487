"""The order lane: a few kept-alive HTTP/1.1 connections to KuCoin's REST host, for orders.

A place, cancel or alter is one request written on a connection opened beforehand, so that no
TCP or TLS handshake is ever on an order's path. ``OrderLane`` opens ``connections`` of them
when it is entered (https with the system's trust store and SNI, or plain http for the embedded
face), each kept by a task of its own that reads everything the server sends on it, hands each
answer to the request waiting for it, and opens the connection again when it closes (at once,
then with backoff while connecting fails). ``exchange`` writes one request's bytes (``http1``)
on an idle connection and waits for its answer; it never spawns a task, and holds no cancel
scope of its own (one costs about as much as building the request): its deadline is set on the
connection keeper's scope, which drops the connection when it passes, waking the request. On a
plain TCP connection the request goes out by one ``send`` with no yield after it (Trio's
``send_all`` yields a run-loop round after its send); over TLS by the stream's ``send_all``.
``send_now`` is ``exchange``'s first half, in no task's name: when a plain connection is idle
it writes the request at once, without waiting for anything (nothing of the caller's task is
involved, so a task can write a request that another task awaits the answer of), and gives
the ``Exchange`` whose ``answer`` is the second half; with no idle plain connection it writes
nothing and answers None. A stream other than Trio's TCP stream is written at once when it
offers ``send_now(data) -> int`` (the bytes the kernel took, 0 when it would block).

What is known of a request when something fails, the rule the order path's fates rest on:

* ``NotSent``: no idle connection came up by the deadline (the host unreachable, every
  connection busy), or the connection's socket refused the first write (reset, broken): not one
  byte of the request was written, so nothing of it reached the venue;
* ``Lost``: once the write began, anything else (the write failed, the server closed the
  connection or ended it mid-answer, the answer did not parse): the venue may have acted on it.
  The request is never written again;
* ``trio.TooSlowError``: the deadline passed before the answer came; and when the caller is
  cancelled meanwhile, the same for the connection: it is dropped (a late answer must never be
  read as the next request's) and opened again.

A connection the server said it closes (``Connection: close`` on an answer, as hypercorn's is
after its 1,000th request) or closed (EOF, seen by its reader while idle) is never written on
again. A close that crosses a request's write on the wire is that request's ``Lost``. The
server's idle timeout (hypercorn's 5 s; the venue's gateway's own) closes idle connections:
they are opened again at once, and an order that comes while none is open waits for one (up to
its deadline, then ``NotSent``).

Fails: ``exchange`` (and ``Exchange.answer``) raises ``NotSent`` or ``Lost``,
``trio.TooSlowError`` past the deadline; ``send_now`` raises ``NotSent`` when the socket
refused the first write; connecting never raises out of the lane (each failure is logged,
once per streak, and retried).
"""

from __future__ import annotations

import math
import os
import ssl
from collections.abc import Awaitable, Callable
from contextlib import AsyncExitStack
from functools import partial
from types import TracebackType
from typing import Final
from urllib.parse import urlsplit

import attrs
import trio
from loguru import logger

from mm import world
from mm.venues.kucoin.http1 import Answer, AnswerReader, HttpError

__all__ = ["Connect", "Exchange", "Lost", "NotSent", "OrderLane", "connect_to"]

CONNECTIONS: Final = 2
CONNECT_TIMEOUT_S: Final = 10.0
RETRY_FIRST_S: Final = 0.1
RETRY_MAX_S: Final = 5.0
READ_SIZE: Final = 65_536
TIMED_OUT: Final = "the deadline passed"  # (a _Waiting's error, compared by identity)

Connect = Callable[[], Awaitable[trio.abc.Stream]]


class NotSent(Exception):
    """No byte of the request was written: it never reached the venue."""


class Lost(Exception):
    """The request's bytes (some or all) went out, and no answer can be read: its effect is
    unknown."""


def connect_to(
    url: str, *, timeout_s: float = CONNECT_TIMEOUT_S, context: ssl.SSLContext | None = None
) -> tuple[Connect, str]:
    """How to open a connection to ``url``'s host (TCP, and TLS for https: the system's trust
    store unless ``context`` says otherwise), and the ``Host`` header's value for it."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"the order lane needs an http(s) URL, got {url!r}")
    tls = parts.scheme == "https"
    host = parts.hostname
    port = parts.port or (443 if tls else 80)
    host_header = host if parts.port is None else f"{host}:{port}"
    if ":" in host:  # an IPv6 literal
        host_header = f"[{host}]" if parts.port is None else f"[{host}]:{port}"
    if not tls:
        context = None
    elif context is None:
        context = ssl.create_default_context()
        context.set_alpn_protocols(["http/1.1"])

    async def connect() -> trio.abc.Stream:
        with trio.fail_after(timeout_s):
            tcp = await world.open_tcp_stream(host, port)
            if context is None:
                return tcp
            stream = trio.SSLStream(tcp, context, server_hostname=host, https_compatible=True)
            try:
                await stream.do_handshake()
            except BaseException:
                await trio.aclose_forcefully(tcp)
                raise
            return stream

    return connect, host_header


class _Waiting:
    """A request written on a connection, waiting for its answer."""

    __slots__ = ("answer", "done", "error")

    def __init__(self) -> None:
        self.done = trio.Event()
        self.answer: Answer | None = None
        self.error: str | None = None


@attrs.define(eq=False)
class _Connection:
    stream: trio.abc.Stream
    scope: trio.CancelScope = attrs.field(factory=trio.CancelScope)
    reader: AnswerReader = attrs.field(factory=AnswerReader)
    waiting: _Waiting | None = None
    closed: bool = False
    # A plain TCP stream's write with no yield (``os.write`` on its socket), or the stream's
    # own ``send_now``; None: the stream's ``send_all`` (TLS). See ``exchange``.
    write_now: Callable[[bytes], int] | None = None

    def __attrs_post_init__(self) -> None:
        if isinstance(self.stream, trio.SocketStream):
            self.write_now = partial(os.write, self.stream.socket.fileno())
        else:
            self.write_now = getattr(self.stream, "send_now", None)

    def fail(self, why: str) -> None:
        """The connection is done: its waiting request, if any, hears ``why``."""
        self.closed = True
        waiting, self.waiting = self.waiting, None
        if waiting is not None and not waiting.done.is_set():
            waiting.error = why
            waiting.done.set()


class OrderLane:
    """Kept-alive connections for order requests, and their keepers (see the module)."""

    def __init__(self, connect: Connect, *, connections: int = CONNECTIONS, name: str = "") -> None:
        if connections < 1:
            raise ValueError("the order lane needs at least one connection")
        self._connect = connect
        self._size = connections
        self._name = name
        self._idle: list[_Connection] = []
        self._ready = trio.lowlevel.ParkingLot()  # requests waiting for an idle connection
        self._stack: AsyncExitStack | None = None
        self.opened = 0  # connections opened, in all
        self.lost = 0  # requests whose answer was lost

    @property
    def idle(self) -> int:
        """Connections open and free for a request now."""
        return len(self._idle)

    async def __aenter__(self) -> OrderLane:
        stack = AsyncExitStack()
        nursery = await stack.enter_async_context(trio.open_nursery())
        stack.callback(nursery.cancel_scope.cancel)  # (callbacks run first: then the nursery)
        for index in range(self._size):
            nursery.start_soon(self._keep, index)
        self._stack = stack
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        stack, self._stack = self._stack, None
        for connection in self._idle:
            connection.closed = True
        self._idle.clear()
        if stack is not None:
            await stack.__aexit__(exc_type, exc, tb)

    async def wait_idle(self, count: int = 1) -> None:
        """Until ``count`` connections are open and idle (for a start that wants them)."""
        while len(self._idle) < count:
            await self._ready.park()

    async def exchange(self, request: bytes, deadline: float = math.inf) -> Answer:
        """Write ``request`` (its whole bytes) and read its answer by ``deadline`` (see the
        module). No cancel scope of its own: the deadline is the connection keeper's, whose
        scope is cancelled by it, which closes the connection (waking a write that blocks)."""
        await trio.lowlevel.checkpoint_if_cancelled()
        connection = self._take_idle() or await self._wait_idle(deadline)
        if connection.write_now is None:
            exchange = self._begin(connection, deadline, memoryview(request))
        else:
            exchange = self._write_now(connection, connection.write_now, request, deadline)
        return await exchange.answer()

    def ready_now(self) -> bool:
        """Whether ``send_now`` would write a request now (a plain connection is idle)."""
        return any(not c.closed and c.write_now is not None for c in self._idle)

    def send_now(self, request: bytes, deadline: float = math.inf) -> Exchange | None:
        """``request`` written at once on an idle plain connection, its answer to come from
        the ``Exchange`` (by ``deadline``); None, with nothing written, when no such
        connection is idle. Raises ``NotSent`` when the socket refused the write."""
        idle = self._idle
        for at in range(len(idle) - 1, -1, -1):
            connection = idle[at]
            if not connection.closed and connection.write_now is not None:
                del idle[at]
                return self._write_now(connection, connection.write_now, request, deadline)
        return None

    def _begin(self, connection: _Connection, deadline: float, unsent: memoryview) -> Exchange:
        waiting = _Waiting()
        connection.waiting = waiting
        if deadline != math.inf:
            connection.scope.deadline = deadline
        return Exchange(self, connection, waiting, unsent)

    def _write_now(
        self,
        connection: _Connection,
        write: Callable[[bytes], int],
        request: bytes,
        deadline: float,
    ) -> Exchange:
        """``request`` to the connection by one write with no yield (what the socket's buffer
        did not take goes by ``send_all`` in ``Exchange.answer``); ``NotSent`` when it failed
        with nothing written."""
        try:
            sent = write(request)
        except BlockingIOError:
            sent = 0
        except OSError as error:  # (write(2) failed: not one byte went out)
            connection.fail("writing")
            connection.scope.cancel()
            why = f"the connection failed before the request went out: {error}"
            raise NotSent(why) from error
        return self._begin(connection, deadline, memoryview(request)[sent:])

    def _lost(self, why: str) -> Lost:
        self.lost += 1
        return Lost(why)

    def _take_idle(self) -> _Connection | None:
        while self._idle:
            connection = self._idle.pop()
            if not connection.closed:
                return connection
        return None

    async def _wait_idle(self, deadline: float) -> _Connection:
        with trio.move_on_at(deadline):
            while True:
                await self._ready.park()
                connection = self._take_idle()
                if connection is not None:
                    return connection
        raise NotSent("no connection to the venue was open and free before the deadline")

    async def _keep(self, index: int) -> None:
        """One connection of the lane, opened again whenever it closes, until cancelled."""
        retry = RETRY_FIRST_S
        failures = 0
        while True:
            try:
                stream = await self._connect()
            except (OSError, trio.TooSlowError, trio.BrokenResourceError, ssl.SSLError) as error:
                if failures == 0:
                    logger.warning(
                        "order lane{} connection {}: cannot connect ({}): retrying",
                        self._name,
                        index,
                        error,
                    )
                failures += 1
                await trio.sleep(retry)
                retry = min(retry * 2, RETRY_MAX_S)
                continue
            if failures:
                logger.info("order lane{} connection {}: connected again", self._name, index)
            failures, retry = 0, RETRY_FIRST_S
            self.opened += 1
            connection = _Connection(stream)
            try:
                with connection.scope:
                    self._make_idle(connection)
                    await self._read(connection)
            finally:
                # Cancelled with a request waiting: its deadline passed (an abandoned one was
                # taken off first).
                connection.fail(TIMED_OUT if connection.scope.cancelled_caught else "closed")
                if connection in self._idle:
                    self._idle.remove(connection)
                await trio.aclose_forcefully(stream)

    async def _read(self, connection: _Connection) -> None:
        """Everything the server sends on ``connection``, until it closes."""
        reader = connection.reader
        while True:
            try:
                data = await connection.stream.receive_some(READ_SIZE)
            except (trio.BrokenResourceError, trio.ClosedResourceError, OSError) as error:
                connection.fail(f"reading: {type(error).__name__}")
                return
            try:
                if not data:
                    answer = reader.eof()
                    if answer is not None:
                        self._answered(connection, answer)
                    connection.fail("the server closed the connection")
                    return
                reader.feed(data)
                while (answer := reader.next()) is not None:
                    if not self._answered(connection, answer):
                        return
            except HttpError as error:
                connection.fail(f"an answer that is not HTTP: {error}")
                return

    def _answered(self, connection: _Connection, answer: Answer) -> bool:
        """Hand ``answer`` to its request: whether the connection goes on."""
        waiting, connection.waiting = connection.waiting, None
        if waiting is None:
            connection.fail("an answer to no request")
            return False
        waiting.answer = answer
        waiting.done.set()
        if answer.close:
            connection.fail("the server closes the connection after this answer")
            return False
        if connection.scope.cancel_called:  # the deadline passed as the answer came
            connection.closed = True
            return False
        connection.scope.deadline = math.inf
        self._make_idle(connection)
        return True

    def _make_idle(self, connection: _Connection) -> None:
        self._idle.append(connection)
        self._ready.unpark_all()


class Exchange:
    """A request handed to a connection of the lane (see ``OrderLane.send_now``): what of it
    is still to write (``unsent``), and its answer to await. ``answer`` may run in any task."""

    __slots__ = ("_connection", "_lane", "_waiting", "unsent")

    def __init__(
        self, lane: OrderLane, connection: _Connection, waiting: _Waiting, unsent: memoryview
    ) -> None:
        self._lane = lane
        self._connection = connection
        self._waiting = waiting
        self.unsent = unsent

    async def answer(self) -> Answer:
        """The request's answer (what is left of it written first): ``Lost`` when the
        connection failed or ended without one, ``trio.TooSlowError`` past the deadline; a
        cancel meanwhile drops the connection (a late answer must never be read as the next
        request's)."""
        connection, waiting = self._connection, self._waiting
        try:
            if self.unsent:
                try:
                    await connection.stream.send_all(self.unsent)
                except (trio.BrokenResourceError, trio.ClosedResourceError, OSError) as error:
                    if waiting.error is TIMED_OUT:
                        raise trio.TooSlowError from None
                    connection.fail(f"writing: {type(error).__name__}")
                    connection.scope.cancel()
                    raise self._lane._lost(
                        f"the connection failed while writing ({error})"
                    ) from None
            await waiting.done.wait()
        finally:
            if not waiting.done.is_set():  # the caller cancelled
                connection.fail("abandoned")
                connection.scope.cancel()
        if waiting.answer is None:
            if waiting.error is TIMED_OUT:
                raise trio.TooSlowError
            raise self._lane._lost(f"no answer: {waiting.error}")
        return waiting.answer
