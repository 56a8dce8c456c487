"""A client WebSocket connection on ``wsproto`` over a Trio stream, with no background task.

The venues' sockets (``mm.venues.*.ws``) are read by one task each, their receive loop, and
written by several (pings, subscriptions, and on Hyperliquid orders from slot tasks). This
connection is shaped for that: ``get_message`` is called by one task at a time and reads the
socket itself, so a message costs no task switch and no channel between a reader task and its
consumer. One ``receive_some`` (up to ``receive_buffer_size`` bytes) is turned into every complete
message it holds, up to ``message_queue_size`` of them parsed ahead, kept in a deque and returned
one per call; the rest of the bytes wait until the deque is empty. The usual frame (a whole text
or binary message in one frame) is read by this module; wsproto reads every other frame, and
the opening handshake (``_parse`` says how the two share the stream).

- ``send_message`` may be called from any task, concurrently: one lock (FIFO) is held around
  wsproto's ``send`` and the stream's ``send_all``, and the same lock sends the answers to the
  server's pings and the Close frames, so frames never interleave.
- Fairness: a call answered from the deque does not wait for anything, so under a flood of small
  messages the receive loop would never let another task run; every ``checkpoint_every``-th
  such call (and every socket read) is a Trio checkpoint.
- Hand-over: when the deque is empty and the last read did not fill the receive buffer (the
  socket is most likely drained), ``get_message`` passes two checkpoints before reading, so
  that every task the messages just taken woke (a strategy's order task) runs before the read,
  its EAGAIN and its wait's registration (~20 us), whatever order Trio gives a batch; a read
  that filled the buffer is followed by the next at once (a flood pays nothing for it).
- Cancellation works at every await. A cancelled read loses nothing (the bytes stay in the
  socket). A send cancelled part-way may have left half a frame on the wire: the connection is
  then unusable and is aborted (closed as 1006, "a send was interrupted"); a send cancelled
  before it started leaves the connection as it was.

How it fails, always as ``ConnectionClosed`` carrying a ``CloseReason`` (``code``, ``reason``,
``name``; also in ``closed`` once closed), after the messages that arrived before the end:

- the peer closes: its code and reason; the Close frame is answered and the stream closed;
- the stream ends or breaks without a Close frame: 1006 (``ABNORMAL_CLOSURE``);
- the peer breaks the protocol (as wsproto reads it: a masked frame, a bad opcode, invalid
  UTF-8 ...): wsproto's code, 1002 (1007 for invalid text); we send that Close frame and close
  the stream without waiting for an answer;
- a message larger than ``max_message_size`` bytes of payload (known from a frame's header,
  before the frame is all read): 1009, likewise;
- our own close (``aclose``, at the end of ``open_websocket_url``'s block): our code, after a
  Close frame and the peer's answer, awaited up to ``disconnect_timeout`` (then the stream is
  closed all the same).

Opening fails with ``HandshakeError``: ``ConnectionTimeout`` when the TCP connection, the TLS
handshake and the upgrade take longer than ``connect_timeout``, ``ConnectionRejected`` when the
server answers the upgrade with another status (its status, headers and body), and ``OSError``
from the TCP connect as Trio raises it. Venue-neutral: nothing here knows a venue.
"""

from __future__ import annotations

import ssl
from collections import deque
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import cast
from urllib.parse import urlsplit

import attrs
import trio
from wsproto.connection import Connection, ConnectionState, ConnectionType
from wsproto.events import (
    AcceptConnection,
    BytesMessage,
    CloseConnection,
    Message,
    Ping,
    RejectConnection,
    RejectData,
    Request,
    TextMessage,
)
from wsproto.frame_protocol import CloseReason as Code
from wsproto.handshake import H11Handshake
from wsproto.utilities import RemoteProtocolError

from mm import world

__all__ = [
    "CHECKPOINT_EVERY",
    "CloseReason",
    "ConnectionClosed",
    "ConnectionRejected",
    "ConnectionTimeout",
    "HandshakeError",
    "WebSocketConnection",
    "connect_websocket_url",
    "open_websocket_url",
    "wrap_client_stream",
]

# Messages returned from the deque between two checkpoints, at most (see the docstring).
CHECKPOINT_EVERY = 32
# The largest rejection body kept (ConnectionRejected.body).
_MAX_REJECT_BODY = 64 << 10
_OPEN = ConnectionState.OPEN


def _code_name(code: int) -> str:
    try:
        return Code(code).name
    except ValueError:
        if 1000 <= code <= 2999:
            return "RFC_RESERVED"
        if 3000 <= code <= 3999:
            return "IANA_RESERVED"
        if 4000 <= code <= 4999:
            return "PRIVATE_RESERVED"
        return "INVALID_CODE"


@attrs.frozen(slots=True)
class CloseReason:
    """Why a WebSocket closed: the close ``code``, its ``name`` (``NORMAL_CLOSURE``, or the
    RFC's range for codes it does not name) and the ``reason`` text (None when there was none)."""

    code: int
    reason: str | None = None
    name: str = attrs.field(init=False)

    @name.default
    def _name(self) -> str:
        return _code_name(self.code)


class ConnectionClosed(Exception):
    """The connection is closed (by the peer, by us, or lost); ``reason`` says how."""

    def __init__(self, reason: CloseReason) -> None:
        super().__init__(reason)
        self.reason = reason


class HandshakeError(Exception):
    """The WebSocket could not be opened (after the TCP connection, or by its timeout)."""


class ConnectionTimeout(HandshakeError):
    """No open WebSocket within ``connect_timeout``."""


class ConnectionRejected(HandshakeError):
    """The server answered the upgrade with another HTTP status."""

    def __init__(self, status_code: int, headers: list[tuple[bytes, bytes]], body: bytes) -> None:
        super().__init__(f"upgrade rejected with HTTP {status_code}")
        self.status_code = status_code
        self.headers = headers
        self.body = body


class WebSocketConnection:
    """One open client WebSocket (see the module docstring: who may call what, and how it
    fails). ``closed`` is the ``CloseReason`` once the connection is closed, else None.
    ``initial``: bytes read after the upgrade's answer, the start of the server's frames."""

    def __init__(
        self,
        stream: trio.abc.Stream,
        connection: Connection,
        *,
        initial: bytes = b"",
        message_queue_size: int = 64,
        max_message_size: int = 1 << 20,
        receive_buffer_size: int = 64 << 10,
        disconnect_timeout: float = 60.0,
        checkpoint_every: int = CHECKPOINT_EVERY,
    ) -> None:
        if message_queue_size < 1 or checkpoint_every < 1 or receive_buffer_size < 1:
            raise ValueError("queue size, checkpoint interval and receive buffer must be >= 1")
        self._stream = stream
        self._conn = connection
        self._queue_size = message_queue_size
        self._max_size = max_message_size
        self._receive_size = receive_buffer_size
        self._disconnect_timeout = disconnect_timeout
        self._checkpoint_every = checkpoint_every
        self._messages: deque[str | bytes] = deque()
        self._buffer = bytearray(initial)  # bytes read and not parsed yet
        self._eof = False  # the stream ended
        self._parts: list[str | bytes] = []  # the fragments of the message being assembled
        self._parts_size = 0  # their payload bytes
        self._in_message = False  # wsproto was handed a first fragment, not yet the last
        self._control = bytearray()  # pongs and Close frames owed, sent before anything else
        self._send_lock = trio.StrictFIFOLock()
        self._closed: CloseReason | None = None
        self._done_reading = False  # the peer's Close (or the stream's end) was read
        self._stream_closed = False
        self._reading = False  # a get_message is waiting in receive_some
        self._read_over = trio.Event()
        self._streak = 0  # messages returned since the last checkpoint
        self._filled = False  # the last read filled the receive buffer: more is likely waiting

    @property
    def closed(self) -> CloseReason | None:
        return self._closed

    def __repr__(self) -> str:
        state = f"closed {self._closed.code}" if self._closed else "open"
        return f"<WebSocketConnection {state}, {len(self._messages)} messages queued>"

    # --- receiving ------------------------------------------------------------------------------

    async def get_message(self) -> str | bytes:
        """The next message (``str`` for text, ``bytes`` for binary); ConnectionClosed once the
        connection is closed and the messages that came before the close are all taken.
        One task at a time."""
        messages = self._messages
        if messages:
            streak = self._streak + 1
            if streak >= self._checkpoint_every:
                self._streak = 0
                await trio.lowlevel.checkpoint()
                if messages:  # (unless our close emptied it meanwhile)
                    return messages.popleft()
            else:
                self._streak = streak
                return messages.popleft()
        return await self._next_message()

    async def _next_message(self) -> str | bytes:
        messages = self._messages
        yielded = False
        while True:
            self._parse()
            if self._control or (self._done_reading and not self._stream_closed):
                await self._answer()
            if messages:
                return messages.popleft()
            if self._closed is not None:
                raise ConnectionClosed(self._closed)
            if not yielded and not self._filled:
                # The last read drained the socket: this one most likely finds nothing and
                # parks the task. The tasks its messages woke run first (see the module): the
                # first checkpoint puts this task in the next batch beside them, the second in
                # the batch after (whatever order Trio gives the first).
                yielded = True
                await trio.lowlevel.checkpoint()
                await trio.lowlevel.checkpoint()
                continue
            await self._read()

    async def _read(self) -> None:
        self._reading = True
        self._read_over = trio.Event()
        try:
            data = await self._stream.receive_some(self._receive_size)
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            data = b""
        finally:
            self._reading = False
            self._read_over.set()
        self._streak = 0
        self._filled = len(data) >= self._receive_size
        if data:
            self._buffer += data
        else:
            self._eof = True

    def _parse(self) -> None:
        """Turn the bytes read into messages (up to the queue's size), pongs owed and the close.
        Never waits.

        A whole unfragmented text or binary frame, unmasked, with no extension bits (what a
        venue sends, nearly always) is read here: its header, then the payload (text decoded
        strictly as UTF-8). Every other frame (control frames, fragments, anything malformed)
        is handed whole to wsproto, whose events say what it is; so wsproto is never in the
        middle of a frame or of a message when a frame is read here.
        """
        messages = self._messages
        limit = self._queue_size
        buf = self._buffer
        pos = 0
        try:
            while len(messages) < limit and not self._done_reading:
                size = len(buf) - pos
                if size < 2:
                    break
                first, second = buf[pos], buf[pos + 1]
                length, head = second & 0x7F, 2
                if length >= 126:
                    head = 4 if length == 126 else 10
                    if size < head:
                        break
                    if length == 126:  # (the usual: a 16-bit length, read without a slice)
                        length = buf[pos + 2] << 8 | buf[pos + 3]
                    else:
                        length = int.from_bytes(buf[pos + 2 : pos + 10], "big")
                if second & 0x80:
                    head += 4  # (masked: wsproto refuses it)
                opcode = first & 0x0F
                if opcode <= 2:  # a data frame: its size counts before it is all here
                    total = length + (self._parts_size if opcode == 0 else 0)
                    if total > self._max_size:
                        self._fail(Code.MESSAGE_TOO_BIG, self._too_big())
                        return
                end = pos + head + length
                if len(buf) < end:
                    break
                if (first == 0x81 or first == 0x82) and not second & 0x80 and not self._in_message:
                    start, pos = pos + head, end
                    if self._closed is not None:
                        continue  # after our close: not delivered
                    if first == 0x81:
                        try:
                            messages.append(buf[start:end].decode())
                        except UnicodeDecodeError:
                            self._fail(Code.INVALID_FRAME_PAYLOAD_DATA, "invalid UTF-8 text")
                            return
                    else:
                        messages.append(bytes(buf[start:end]))
                    continue
                if opcode <= 2:
                    self._parts_size += length
                    if opcode and not first & 0x80:
                        self._in_message = True  # (a first fragment)
                frame = bytes(buf[pos:end])
                pos = end
                self._conn.receive_data(frame)
                self._events()
            if self._eof and len(messages) < limit and not self._done_reading:
                self._conn.receive_data(None)  # the end: read as 1006
                self._events()
        finally:
            del buf[:pos]

    def _events(self) -> None:
        """wsproto's events for the one frame it was handed (or the end of the stream)."""
        conn = self._conn
        for event in conn.events():
            if isinstance(event, Message):
                data = event.data
                if self._closed is None:
                    self._parts.append(data)
                if event.message_finished:
                    parts, self._parts, self._parts_size = self._parts, [], 0
                    self._in_message = False
                    if self._closed is None:
                        if isinstance(event, TextMessage):
                            self._messages.append("".join(parts))  # type: ignore[arg-type]
                        else:
                            self._messages.append(b"".join(parts))  # type: ignore[arg-type]
            elif isinstance(event, Ping):
                if conn.state is _OPEN:
                    self._control += conn.send(event.response())
            elif isinstance(event, CloseConnection):
                self._on_close(event)
                return
            # (a Pong: nothing to do)

    def _too_big(self) -> str:
        return f"message larger than {self._max_size}"

    def _on_close(self, event: CloseConnection) -> None:
        conn = self._conn
        state = conn.state
        if state is ConnectionState.REMOTE_CLOSING:  # the peer's close: answered
            self._control += conn.send(event.response())
            self._set_closed(CloseReason(int(event.code), event.reason or None))
            self._done_reading = True
        elif state is ConnectionState.CLOSED:  # the answer to ours, or the stream's end (1006)
            self._set_closed(CloseReason(int(event.code), event.reason or None))
            self._done_reading = True
        else:  # OPEN or LOCAL_CLOSING: wsproto could not parse what the peer sent
            self._fail(event.code, event.reason or "protocol error")

    def _fail(self, code: int, reason: str) -> None:
        """The peer broke the rules: our Close frame with ``code``, then no more reading (the
        stream is closed without waiting for an answer)."""
        if self._conn.state is _OPEN:
            self._control += self._conn.send(CloseConnection(code=code, reason=reason))
        self._set_closed(CloseReason(int(code), reason))
        self._parts, self._parts_size, self._in_message = [], 0, False
        self._done_reading = True

    def _set_closed(self, reason: CloseReason) -> None:
        if self._closed is None:
            self._closed = reason

    async def _answer(self) -> None:
        """Send what is owed (pongs, a Close frame); close the stream once reading is over."""
        try:
            if self._control:
                async with self._send_lock:
                    await trio.lowlevel.checkpoint_if_cancelled()
                    if self._control and not self._stream_closed:
                        data = bytes(self._control)
                        self._control.clear()
                        await self._send_all(data)
        except ConnectionClosed:
            pass  # (closed as it says; the caller raises it)
        if self._done_reading and not self._stream_closed:
            await self._close_stream()

    # --- sending --------------------------------------------------------------------------------

    async def send_message(self, message: str | bytes) -> None:
        """Send one message (text for ``str``, binary for ``bytes``); ConnectionClosed when the
        connection is closed or closing. Any task, concurrently."""
        event = TextMessage(data=message) if isinstance(message, str) else BytesMessage(message)
        async with self._send_lock:
            await trio.lowlevel.checkpoint_if_cancelled()
            if self._closed is not None or self._conn.state is not _OPEN:
                raise ConnectionClosed(self._closed or CloseReason(Code.ABNORMAL_CLOSURE))
            data = self._conn.send(event)
            if self._control:
                data = bytes(self._control) + data
                self._control.clear()
            await self._send_all(data)

    async def _send_all(self, data: bytes) -> None:
        """``send_all`` under the send lock, not started if already cancelled (checked by the
        caller); a send cancelled or failed on the way aborts the connection."""
        try:
            await self._stream.send_all(data)
        except trio.Cancelled:
            await self._abort(CloseReason(Code.ABNORMAL_CLOSURE, "a send was interrupted"))
            raise
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            await self._abort(CloseReason(Code.ABNORMAL_CLOSURE))
            raise ConnectionClosed(self._closed or CloseReason(Code.ABNORMAL_CLOSURE)) from None

    # --- closing --------------------------------------------------------------------------------

    async def aclose(self, code: int = Code.NORMAL_CLOSURE, reason: str | None = None) -> None:
        """Close: our Close frame, the peer's answer awaited up to ``disconnect_timeout``, then
        the stream. Messages not yet taken are dropped. Idempotent; never raises
        ConnectionClosed (Cancelled, when cancelled, after closing the stream)."""
        try:
            if self._closed is None and self._conn.state is _OPEN:
                self._closed = CloseReason(int(code), reason)
                self._messages.clear()
                with trio.move_on_after(self._disconnect_timeout):
                    async with self._send_lock:
                        await trio.lowlevel.checkpoint_if_cancelled()
                        if not self._stream_closed:
                            data = bytes(self._control) + self._conn.send(
                                CloseConnection(code=code, reason=reason)
                            )
                            self._control.clear()
                            await self._send_all(data)
                    await self._await_close_answer()
        except ConnectionClosed:
            pass
        finally:
            self._messages.clear()
            await self._close_stream()

    async def _await_close_answer(self) -> None:
        if self._reading:  # the receive loop is in a read: let it finish (it reads no more)
            await self._read_over.wait()
        while True:
            self._parse()  # (messages are dropped: we are closing)
            if self._done_reading or self._stream_closed:
                return
            await self._read()

    async def _abort(self, reason: CloseReason) -> None:
        self._set_closed(reason)
        self._messages.clear()
        await self._close_stream()

    async def _close_stream(self) -> None:
        self._done_reading = True
        if self._closed is None:
            self._closed = CloseReason(Code.ABNORMAL_CLOSURE)
        if not self._stream_closed:
            self._stream_closed = True
            await trio.aclose_forcefully(self._stream)


# --- opening ------------------------------------------------------------------------------------


async def wrap_client_stream(
    stream: trio.abc.Stream,
    host: str,
    resource: str,
    *,
    message_queue_size: int = 64,
    max_message_size: int = 1 << 20,
    receive_buffer_size: int = 64 << 10,
    disconnect_timeout: float = 60.0,
    checkpoint_every: int = CHECKPOINT_EVERY,
) -> WebSocketConnection:
    """The client's upgrade over an open ``stream`` (``host``: the Host header, ``resource``:
    the path and query). HandshakeError (ConnectionRejected) when the server does not accept;
    the stream is left to the caller then."""
    handshake = H11Handshake(ConnectionType.CLIENT)
    await stream.send_all(handshake.send(Request(host=host, target=resource)))
    # wsproto is handed the answer's head alone: what follows it (the server's first frames,
    # often in the same read) is this connection's, read by ``_parse`` (or a refusal's body).
    received = bytearray()
    rejected: RejectConnection | None = None
    body = bytearray()
    while True:
        try:
            data = await stream.receive_some(receive_buffer_size)
        except (trio.BrokenResourceError, trio.ClosedResourceError) as exc:
            raise HandshakeError(f"stream lost during the upgrade: {exc!r}") from exc
        if rejected is None:
            if not data:
                raise HandshakeError("stream closed during the upgrade")
            received += data
            end = received.find(b"\r\n\r\n")
            if end < 0:
                if len(received) > _MAX_REJECT_BODY:
                    raise HandshakeError("the upgrade's answer has no end to its head")
                continue
            data, rest = bytes(received[: end + 4]), bytes(received[end + 4 :])
        elif not data:  # the end of a refusal's body without its framing
            raise ConnectionRejected(rejected.status_code, list(rejected.headers), bytes(body))
        else:
            rest = b""
        try:
            handshake.receive_data(cast(bytes, data) or None)
            events = list(handshake.events())
            if rejected is None and rest and events and isinstance(events[0], RejectConnection):
                handshake.receive_data(rest)  # (the start of its body)
                events += handshake.events()
        except RemoteProtocolError as exc:
            raise HandshakeError(f"bad upgrade answer: {exc}") from exc
        for event in events:
            if isinstance(event, AcceptConnection):
                connection = handshake.connection
                assert connection is not None
                return WebSocketConnection(
                    stream,
                    connection,
                    initial=rest,
                    message_queue_size=message_queue_size,
                    max_message_size=max_message_size,
                    receive_buffer_size=receive_buffer_size,
                    disconnect_timeout=disconnect_timeout,
                    checkpoint_every=checkpoint_every,
                )
            if isinstance(event, RejectConnection):
                rejected = event
                if not event.has_body:
                    raise ConnectionRejected(event.status_code, list(event.headers), b"")
            elif isinstance(event, RejectData) and rejected is not None:
                body += event.data[: max(0, _MAX_REJECT_BODY - len(body))]
                if event.body_finished:
                    raise ConnectionRejected(
                        rejected.status_code, list(rejected.headers), bytes(body)
                    )
        if rejected is None:
            raise HandshakeError("the upgrade's answer was neither accepted nor refused")


def _target(url: str) -> tuple[bool, str, int, str, str]:
    """``(tls, host, port, Host header, resource)`` of a ``ws://`` or ``wss://`` URL."""
    parts = urlsplit(url)
    if parts.scheme not in ("ws", "wss"):
        raise ValueError(f"not a WebSocket URL: {url!r}")
    tls = parts.scheme == "wss"
    host = parts.hostname
    if not host:
        raise ValueError(f"no host in {url!r}")
    default = 443 if tls else 80
    port = parts.port or default
    named = f"[{host}]" if ":" in host else host
    header = named if port == default else f"{named}:{port}"
    resource = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    return tls, host, port, header, resource


async def connect_websocket_url(
    url: str,
    *,
    ssl_context: ssl.SSLContext | None = None,
    message_queue_size: int = 64,
    max_message_size: int = 1 << 20,
    receive_buffer_size: int = 64 << 10,
    connect_timeout: float = 60.0,
    disconnect_timeout: float = 60.0,
    checkpoint_every: int = CHECKPOINT_EVERY,
) -> WebSocketConnection:
    """Open a WebSocket to ``url`` (``wss``: TLS with ``ssl_context``, by default the system's
    trust). The caller closes it (``aclose``); ``open_websocket_url`` does that for you."""
    tls, host, port, header, resource = _target(url)
    try:
        with trio.fail_after(connect_timeout):
            stream: trio.abc.Stream = await world.open_tcp_stream(host, port)
            try:
                if tls:
                    stream = trio.SSLStream(
                        stream,
                        ssl_context or ssl.create_default_context(),
                        server_hostname=host,
                        https_compatible=True,
                    )
                    await stream.do_handshake()
                return await wrap_client_stream(
                    stream,
                    header,
                    resource,
                    message_queue_size=message_queue_size,
                    max_message_size=max_message_size,
                    receive_buffer_size=receive_buffer_size,
                    disconnect_timeout=disconnect_timeout,
                    checkpoint_every=checkpoint_every,
                )
            except BaseException:
                await trio.aclose_forcefully(stream)
                raise
    except trio.TooSlowError:
        raise ConnectionTimeout(f"{url}: not open within {connect_timeout:g}s") from None


@asynccontextmanager
async def open_websocket_url(
    url: str,
    *,
    ssl_context: ssl.SSLContext | None = None,
    message_queue_size: int = 64,
    max_message_size: int = 1 << 20,
    receive_buffer_size: int = 64 << 10,
    connect_timeout: float = 60.0,
    disconnect_timeout: float = 60.0,
    checkpoint_every: int = CHECKPOINT_EVERY,
) -> AsyncIterator[WebSocketConnection]:
    """A WebSocket to ``url`` for the block, closed at its end (``aclose``)."""
    ws = await connect_websocket_url(
        url,
        ssl_context=ssl_context,
        message_queue_size=message_queue_size,
        max_message_size=max_message_size,
        receive_buffer_size=receive_buffer_size,
        connect_timeout=connect_timeout,
        disconnect_timeout=disconnect_timeout,
        checkpoint_every=checkpoint_every,
    )
    try:
        yield ws
    finally:
        await ws.aclose()
