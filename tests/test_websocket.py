"""mm's client WebSocket (``mm.websocket``).

(a) Over ``trio.testing.memory_stream_pair`` with a wsproto server on the other end (``Peer``):
the handshake, messages, fragments, pings, every way of closing, the protocol's failures,
concurrent senders, cancellation and fairness; timeouts on ``autojump_clock``.
(b) Over a scripted stream that hands out chosen chunks, one per read: how many reads a
byte stream takes, and (Hypothesis) that any split of a stream of frames gives the same messages.
(c) Over loopback: ``open_websocket_url`` against trio-websocket's server, plain and TLS (the
test certificate for localhost), and the connect timeout.
"""

from __future__ import annotations

import itertools
import ssl
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from functools import partial
from typing import Any

import pytest
import trio
import trio.testing
from hypothesis import given
from hypothesis import strategies as st
from trio_websocket import WebSocketRequest, serve_websocket
from wsproto import ConnectionType, WSConnection
from wsproto.connection import Connection
from wsproto.events import (
    AcceptConnection,
    BytesMessage,
    CloseConnection,
    Event,
    Message,
    Ping,
    Pong,
    RejectConnection,
    RejectData,
    Request,
    TextMessage,
)

from mm.websocket import (
    CloseReason,
    ConnectionClosed,
    ConnectionRejected,
    ConnectionTimeout,
    HandshakeError,
    WebSocketConnection,
    open_websocket_url,
    wrap_client_stream,
)
from tests.fixture_paths import KUCOIN

CERT, KEY = KUCOIN / "tls_localhost_cert.pem", KUCOIN / "tls_localhost_key.pem"


# --- (a) a wsproto server over memory streams ---------------------------------------------------


class Peer:
    """The server's end: wsproto over the other half of a memory stream pair."""

    def __init__(self, stream: trio.abc.Stream) -> None:
        self.stream = stream
        self.ws = WSConnection(ConnectionType.SERVER)
        self.request: Request | None = None
        self._pending: list[Event] = []

    async def accept(self) -> None:
        self.request = await self._expect(Request)  # type: ignore[assignment]
        await self.send(AcceptConnection())

    async def send(self, *events: Event) -> None:
        await self.stream.send_all(b"".join(self.ws.send(event) for event in events))

    async def text(self, *texts: str) -> None:
        await self.send(*(TextMessage(data=text) for text in texts))

    async def next_event(self) -> Event:
        while not self._pending:
            data = await self.stream.receive_some(1 << 16)
            self.ws.receive_data(bytes(data) or None)
            self._pending.extend(self.ws.events())
        return self._pending.pop(0)

    async def _expect(self, kind: type[Event]) -> Event:
        event = await self.next_event()
        assert isinstance(event, kind), event
        return event

    async def messages(self, count: int) -> list[str | bytes]:
        """The next ``count`` whole messages from the client."""
        out: list[str | bytes] = []
        part: list[Any] = []
        while len(out) < count:
            event = await self.next_event()
            assert isinstance(event, Message), event
            part.append(event.data)
            if event.message_finished:
                joined = "".join(part) if isinstance(event, TextMessage) else b"".join(part)
                out.append(joined)
                part = []
        return out

    async def at_eof(self) -> bool:
        """Whether the client closed its stream (nothing more comes)."""
        return await self.stream.receive_some(1) == b""


@asynccontextmanager
async def connected(**options: Any) -> AsyncIterator[tuple[WebSocketConnection, Peer]]:
    client_stream, server_stream = trio.testing.memory_stream_pair()
    peer = Peer(server_stream)
    async with trio.open_nursery() as nursery:
        nursery.start_soon(peer.accept)
        ws = await wrap_client_stream(client_stream, "venue.test", "/ws?x=1", **options)
    yield ws, peer


async def test_the_handshake_asks_for_the_resource_on_the_host() -> None:
    async with connected() as (ws, peer):
        assert peer.request is not None
        assert (peer.request.host, peer.request.target) == ("venue.test", "/ws?x=1")
        assert ws.closed is None
        assert "open" in repr(ws)


async def test_frames_in_the_same_read_as_the_upgrade_answer_are_kept(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """The server's first frames often arrive with its 101 answer, in one read."""
    client_stream, server_stream = trio.testing.memory_stream_pair()
    peer = Peer(server_stream)

    async def accept_and_greet() -> None:
        await peer._expect(Request)
        await peer.send(AcceptConnection(), TextMessage(data="hello"), Ping(payload=b"p"))

    async with trio.open_nursery() as nursery:
        nursery.start_soon(accept_and_greet)
        await trio.testing.wait_all_tasks_blocked()  # both frames sent before the client reads
        ws = await wrap_client_stream(client_stream, "venue.test", "/ws")
    with trio.fail_after(1):  # (lost, they would never come: the clock jumps to the deadline)
        assert await ws.get_message() == "hello"
        assert await peer.next_event() == Pong(payload=b"p")


@pytest.mark.parametrize("split", [False, True])
async def test_a_refused_upgrade_says_its_status_and_body(split: bool) -> None:
    client_stream, server_stream = trio.testing.memory_stream_pair()
    peer = Peer(server_stream)

    async def refuse() -> None:
        await peer._expect(Request)
        reject = RejectConnection(
            status_code=403, headers=[(b"content-length", b"6")], has_body=True
        )
        if split:  # the head, then the body in another read
            await peer.send(reject)
            await trio.testing.wait_all_tasks_blocked()
            await peer.send(RejectData(data=b"banned"))
        else:
            await peer.send(reject, RejectData(data=b"banned"))

    async with trio.open_nursery() as nursery:
        nursery.start_soon(refuse)
        with pytest.raises(ConnectionRejected) as refused:
            await wrap_client_stream(client_stream, "venue.test", "/ws")
    assert (refused.value.status_code, refused.value.body) == (403, b"banned")


async def test_an_upgrade_answered_with_garbage_or_nothing_fails_the_handshake() -> None:
    for answer in (b"nonsense\r\n\r\n", b""):
        client_stream, server_stream = trio.testing.memory_stream_pair()

        async def answer_with(data: bytes, server: trio.abc.Stream = server_stream) -> None:
            await server.receive_some(1 << 16)
            if data:
                await server.send_all(data)
            await server.aclose()

        async with trio.open_nursery() as nursery:
            nursery.start_soon(answer_with, answer)
            with pytest.raises(HandshakeError):
                await wrap_client_stream(client_stream, "venue.test", "/ws")


async def test_text_and_binary_messages_both_ways() -> None:
    async with connected() as (ws, peer):
        await peer.send(TextMessage(data="héllo"), BytesMessage(data=b"\x00\xff"))
        assert await ws.get_message() == "héllo"
        binary = await ws.get_message()
        assert binary == b"\x00\xff"
        assert type(binary) is bytes
        await ws.send_message("text")
        await ws.send_message(b"\x01bytes")
        assert await peer.messages(2) == ["text", b"\x01bytes"]


async def test_fragmented_messages_are_joined() -> None:
    async with connected() as (ws, peer):
        await peer.send(
            TextMessage(data="frag", message_finished=False),
            Ping(payload=b"in between"),  # control frames may come between fragments
            TextMessage(data="ment", message_finished=False),
            TextMessage(data="ed", message_finished=True),
            BytesMessage(data=b"ab", message_finished=False),
            BytesMessage(data=b"cd", message_finished=True),
        )
        assert await ws.get_message() == "fragmented"
        assert await ws.get_message() == b"abcd"
        assert await peer.next_event() == Pong(payload=b"in between")


async def test_a_ping_is_answered_with_its_pong() -> None:
    async with connected() as (ws, peer):
        await peer.send(Ping(payload=b"are you there"))
        await peer.text("after")
        assert await ws.get_message() == "after"
        assert await peer.next_event() == Pong(payload=b"are you there")


async def test_a_peer_close_comes_after_the_messages_before_it() -> None:
    async with connected() as (ws, peer):
        await peer.text("one", "two")
        await peer.send(CloseConnection(code=4001, reason="going"))
        assert [await ws.get_message(), await ws.get_message()] == ["one", "two"]
        with pytest.raises(ConnectionClosed) as closed:
            await ws.get_message()
        assert closed.value.reason == CloseReason(4001, "going")
        assert closed.value.reason.name == "PRIVATE_RESERVED"
        assert ws.closed == closed.value.reason
        # The close is answered with the same code, and the stream closed.
        answer = await peer.next_event()
        assert isinstance(answer, CloseConnection)
        assert answer.code == 4001
        assert await peer.at_eof()
        with pytest.raises(ConnectionClosed):
            await ws.send_message("too late")
        with pytest.raises(ConnectionClosed):  # and again
            await ws.get_message()
        await ws.aclose()  # nothing more to do


async def test_a_lost_stream_is_an_abnormal_closure() -> None:
    async with connected() as (ws, peer):
        await peer.text("last")
        await peer.stream.aclose()
        assert await ws.get_message() == "last"
        with pytest.raises(ConnectionClosed) as closed:
            await ws.get_message()
        assert (closed.value.reason.code, closed.value.reason.name) == (1006, "ABNORMAL_CLOSURE")


async def test_our_close_waits_for_the_answer(autojump_clock: trio.testing.MockClock) -> None:
    async with connected(disconnect_timeout=5) as (ws, peer):

        async def answer() -> None:
            await peer.text("in flight")  # crossing our close: dropped
            event = await peer.next_event()
            assert event == CloseConnection(code=1000, reason="done")
            await trio.sleep(1)
            await peer.send(event.response())

        async with trio.open_nursery() as nursery:
            nursery.start_soon(answer)
            await trio.testing.wait_all_tasks_blocked()
            start = trio.current_time()
            await ws.aclose(1000, "done")
            assert trio.current_time() - start == pytest.approx(1)
        assert ws.closed == CloseReason(1000, "done")
        assert await peer.at_eof()
        with pytest.raises(ConnectionClosed):
            await ws.get_message()
        with pytest.raises(ConnectionClosed):
            await ws.send_message("x")


async def test_our_close_without_an_answer_gives_up_after_the_timeout(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async with connected(disconnect_timeout=3) as (ws, peer):
        start = trio.current_time()
        await ws.aclose()
        assert trio.current_time() - start == pytest.approx(3)
        assert isinstance(await peer.next_event(), CloseConnection)
        assert await peer.at_eof()
        assert ws.closed == CloseReason(1000)


async def test_our_close_while_the_receive_loop_reads(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """The reading task takes the answer; the closer waits for it, and the reader learns."""
    async with connected(disconnect_timeout=5) as (ws, peer):
        outcome: list[CloseReason] = []

        async def reader() -> None:
            while True:
                try:
                    await ws.get_message()
                except ConnectionClosed as closed:
                    outcome.append(closed.reason)
                    return

        async def answer() -> None:
            event = await peer.next_event()
            assert isinstance(event, CloseConnection)
            await trio.sleep(0.5)
            await peer.send(event.response())

        async with trio.open_nursery() as nursery:
            nursery.start_soon(reader)
            nursery.start_soon(answer)
            await trio.testing.wait_all_tasks_blocked()
            start = trio.current_time()
            await ws.aclose()
            assert trio.current_time() - start == pytest.approx(0.5)
        assert outcome == [CloseReason(1000)]


@pytest.mark.parametrize(
    ("raw", "code"),
    [
        (b"\x01\x01a\x81\x01b", 1002),  # a new text frame inside a fragmented message
        (b"\x80\x01a", 1002),  # a continuation with no message begun
        (b"\xc1\x01a", 1002),  # an extension bit (none was agreed)
        (b"\x83\x00", 1002),  # a reserved opcode
        (b"\x81\x82abcd\x00\x00", 1002),  # a masked frame from the server
        (b"\x81\x02\xc3\x28", 1007),  # invalid UTF-8 in a text frame
    ],
)
async def test_a_protocol_error_closes_with_its_code(raw: bytes, code: int) -> None:
    async with connected() as (ws, peer):
        await peer.text("fine")
        await peer.stream.send_all(raw)
        assert await ws.get_message() == "fine"
        with pytest.raises(ConnectionClosed) as closed:
            await ws.get_message()
        assert closed.value.reason.code == code
        sent = await peer.next_event()
        assert isinstance(sent, CloseConnection)
        assert sent.code == code
        assert await peer.at_eof()  # no answer awaited


@pytest.mark.parametrize("fragmented", [False, True])
async def test_an_oversized_message_closes_with_1009(fragmented: bool) -> None:
    async with connected(max_message_size=100) as (ws, peer):
        await peer.text("x" * 100)  # at the limit: fine
        if fragmented:
            await peer.send(
                TextMessage(data="y" * 60, message_finished=False),
                TextMessage(data="y" * 41, message_finished=True),
            )
        else:
            await peer.text("y" * 101)
        assert await ws.get_message() == "x" * 100
        with pytest.raises(ConnectionClosed) as closed:
            await ws.get_message()
        assert (closed.value.reason.code, closed.value.reason.name) == (1009, "MESSAGE_TOO_BIG")
        sent = await peer.next_event()
        assert isinstance(sent, CloseConnection)
        assert sent.code == 1009


async def test_concurrent_senders_while_receiving() -> None:
    """Slot tasks send while the receive loop reads and answers pings: every frame whole."""
    senders, each = 5, 40
    async with connected() as (ws, peer):
        received: list[str | bytes] = []

        async def receive_loop() -> None:
            while len(received) < 50:
                received.append(await ws.get_message())

        async def sender(n: int) -> None:
            for i in range(each):
                await ws.send_message(f"{n}:{i}:" + "z" * (i * 37 % 300))

        async def server() -> None:
            for i in range(50):
                await peer.send(Ping(payload=b"%d" % i), TextMessage(data=str(i)))
                await trio.lowlevel.checkpoint()

        got: list[str | bytes] = []
        pongs: list[bytes] = []

        async def server_reads() -> None:
            while len(got) < senders * each or len(pongs) < 50:
                event = await peer.next_event()
                if isinstance(event, Pong):
                    pongs.append(bytes(event.payload))
                else:
                    assert isinstance(event, TextMessage)
                    assert event.message_finished
                    got.append(event.data)

        async with trio.open_nursery() as nursery:
            nursery.start_soon(receive_loop)
            nursery.start_soon(server)
            nursery.start_soon(server_reads)
            for n in range(senders):
                nursery.start_soon(sender, n)
        assert received == [str(i) for i in range(50)]
        assert pongs == [b"%d" % i for i in range(50)]
        for n in range(senders):  # each sender's messages whole and in its order
            mine = [m for m in got if isinstance(m, str) and m.startswith(f"{n}:")]
            assert mine == [f"{n}:{i}:" + "z" * (i * 37 % 300) for i in range(each)]


async def test_a_read_cancelled_midway_loses_nothing(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async with connected() as (ws, peer):
        with trio.move_on_after(1) as waited:
            await ws.get_message()
        assert waited.cancelled_caught
        await peer.send(TextMessage(data="half", message_finished=False))
        with trio.move_on_after(1) as waited:  # half a message in hand, then cancelled
            await ws.get_message()
        assert waited.cancelled_caught
        await peer.send(TextMessage(data="-whole", message_finished=True))
        await peer.text("next")
        assert await ws.get_message() == "half-whole"
        assert await ws.get_message() == "next"
        await ws.send_message("still open")
        assert await peer.messages(1) == ["still open"]


async def test_a_send_cancelled_before_it_starts_leaves_the_socket_usable() -> None:
    async with connected() as (ws, peer):
        with trio.CancelScope() as scope:
            scope.cancel()
            await ws.send_message("never")
        await ws.send_message("sent")
        assert await peer.messages(1) == ["sent"]
        assert ws.closed is None


async def test_a_flood_does_not_starve_other_tasks() -> None:
    """Ten thousand messages in one read: the receive loop still lets other tasks run. Trio runs
    each runnable task once a batch in an order of its choosing, so the other task runs at least
    once in every ``2 * checkpoint_every`` messages or so (without the checkpoint: never, until the
    whole read is taken)."""
    count, every = 10_000, 16
    async with connected(receive_buffer_size=1 << 20, checkpoint_every=every) as (ws, peer):
        await peer.text(*(str(i) for i in range(count)))
        ticks = 0
        seen: list[int] = []  # the other task's ticks at each message

        async def ticker() -> None:
            nonlocal ticks
            while True:
                await trio.lowlevel.checkpoint()
                ticks += 1

        async with trio.open_nursery() as nursery:
            nursery.start_soon(ticker)
            for i in range(count):
                assert await ws.get_message() == str(i)
                seen.append(ticks)
            nursery.cancel_scope.cancel()
        runs = [i for i in range(1, count) if seen[i] != seen[i - 1]]
        gaps = [b - a for a, b in zip([0, *runs], runs, strict=False)]
        assert len(runs) >= count // (2 * every) - 1
        assert max(gaps) <= 2 * every + 1


# --- (b) a scripted stream: chosen chunks, one per read -----------------------------------------


class Chunks(trio.abc.Stream):
    """Hands out the given chunks, one per ``receive_some``, then the end; keeps what is sent."""

    def __init__(self, chunks: Sequence[bytes]) -> None:
        self.chunks = list(chunks)
        self.reads = 0
        self.sent = bytearray()

    async def receive_some(self, max_bytes: int | None = None) -> bytes:
        await trio.lowlevel.checkpoint()
        self.reads += 1
        return self.chunks.pop(0) if self.chunks else b""

    async def send_all(self, data: bytes | bytearray | memoryview) -> None:
        await trio.lowlevel.checkpoint()
        self.sent += data

    async def wait_send_all_might_not_block(self) -> None:
        await trio.lowlevel.checkpoint()

    async def aclose(self) -> None:
        await trio.lowlevel.checkpoint()


def frames(messages: Sequence[str | bytes], pings: bool = False) -> bytes:
    """The bytes a server sends for ``messages`` (those of 21 to 99 in three fragments, with a
    ping between the first two when ``pings``; a ping after each message too), then a close."""
    server = Connection(ConnectionType.SERVER)
    out = bytearray()
    for n, message in enumerate(messages):
        kind = TextMessage if isinstance(message, str) else BytesMessage
        if 20 < len(message) < 100:
            third = len(message) // 3
            pieces = [message[:third], message[third : 2 * third], message[2 * third :]]
            for i, piece in enumerate(pieces):
                out += server.send(kind(data=piece, message_finished=i == 2))  # type: ignore[arg-type]
                if pings and i == 0:
                    out += server.send(Ping(payload=b"f%d" % n))
        else:
            out += server.send(kind(data=message))  # type: ignore[arg-type]
        if pings:
            out += server.send(Ping(payload=b"m%d" % n))
    out += server.send(CloseConnection(code=1000, reason="end"))
    return bytes(out)


def client(stream: trio.abc.Stream, **options: Any) -> WebSocketConnection:
    return WebSocketConnection(stream, Connection(ConnectionType.CLIENT), **options)


async def read_all(ws: WebSocketConnection) -> tuple[list[str | bytes], CloseReason]:
    got: list[str | bytes] = []
    while True:
        try:
            got.append(await ws.get_message())
        except ConnectionClosed as closed:
            return got, closed.reason


async def test_one_read_gives_every_message_it_holds() -> None:
    stream = Chunks([frames(["a", "b", b"c", "d" * 30])])
    got, reason = await read_all(client(stream))
    assert got == ["a", "b", b"c", "d" * 30]
    assert reason == CloseReason(1000, "end")
    assert stream.reads == 1


async def test_a_message_split_across_reads() -> None:
    data = frames(["split me please"])
    stream = Chunks([data[:1], data[1:5], data[5:9], data[9:]])
    got, _ = await read_all(client(stream))
    assert got == ["split me please"]
    assert stream.reads == 4


async def test_the_queue_parses_ahead_at_most_its_size() -> None:
    """``message_queue_size`` bounds the messages parsed ahead of the consumer (the rest wait
    as bytes); all still come out, in order, from one read."""
    stream = Chunks([frames([str(i) for i in range(10)])])
    ws = client(stream, message_queue_size=3)
    assert await ws.get_message() == "0"
    assert len(ws._messages) == 2  # parsed ahead: up to three, one taken
    got, _ = await read_all(ws)
    assert got == [str(i) for i in range(1, 10)]
    assert stream.reads == 1


message_texts = st.lists(
    st.one_of(st.text(max_size=60), st.binary(max_size=60)), min_size=1, max_size=12
)


@given(message_texts, st.lists(st.integers(min_value=0, max_value=2000), max_size=20))
def test_any_split_of_the_bytes_gives_the_same_messages(
    messages: list[str | bytes], cuts: list[int]
) -> None:
    data = frames(messages)
    points = sorted({cut % (len(data) + 1) for cut in cuts} | {0, len(data)})
    chunks = [data[a:b] for a, b in itertools.pairwise(points) if b > a]

    async def main() -> tuple[list[str | bytes], CloseReason]:
        return await read_all(client(Chunks(chunks), message_queue_size=4))

    got, reason = trio.run(main)
    assert got == messages
    assert reason == CloseReason(1000, "end")


# --- (c) loopback -------------------------------------------------------------------------------


async def echo(request: WebSocketRequest) -> None:
    ws = await request.accept()
    async for message in _messages(ws):
        await ws.send_message(message)


async def _messages(ws: Any) -> AsyncIterator[str | bytes]:
    from trio_websocket import ConnectionClosed as Closed

    while True:
        try:
            yield await ws.get_message()
        except Closed:
            return


async def test_loopback_against_trio_websocket(nursery: trio.Nursery) -> None:
    servers = await nursery.start(serve_websocket, echo, "127.0.0.1", 0, None)
    url = f"ws://127.0.0.1:{servers.port}/echo"
    async with open_websocket_url(url, connect_timeout=5, disconnect_timeout=5) as ws:
        for message in ("one", b"two", "x" * 100_000):
            await ws.send_message(message)
            assert await ws.get_message() == message
    assert ws.closed == CloseReason(1000)


async def test_loopback_over_tls(nursery: trio.Nursery) -> None:
    server_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_context.load_cert_chain(CERT, KEY)
    servers = await nursery.start(serve_websocket, echo, "127.0.0.1", 0, server_context)
    url = f"wss://localhost:{servers.port}/echo"
    trusted = ssl.create_default_context(cafile=str(CERT))
    async with open_websocket_url(url, ssl_context=trusted, connect_timeout=5) as ws:
        await ws.send_message("over tls")
        assert await ws.get_message() == "over tls"
    # Without the certificate trusted: the default context refuses the host.
    with pytest.raises(trio.BrokenResourceError):
        async with open_websocket_url(url, connect_timeout=5):
            pass


async def test_no_upgrade_answer_in_time_is_a_connect_timeout(
    nursery: trio.Nursery, autojump_clock: trio.testing.MockClock
) -> None:
    async def silent(stream: trio.SocketStream) -> None:
        await trio.sleep_forever()

    listeners = await nursery.start(partial(trio.serve_tcp, silent, 0, host="127.0.0.1"))
    port = listeners[0].socket.getsockname()[1]
    start = trio.current_time()
    with pytest.raises(ConnectionTimeout):
        await open_websocket_url(f"ws://127.0.0.1:{port}/", connect_timeout=2).__aenter__()
    assert trio.current_time() - start == pytest.approx(2)


def test_urls_other_than_websocket_ones_are_refused() -> None:
    async def main() -> None:
        for url, why in (("http://venue.test/", "not a WebSocket URL"), ("ws:///x", "no host")):
            with pytest.raises(ValueError, match=why):
                await open_websocket_url(url).__aenter__()

    trio.run(main)


# --- (c) the tasks a message woke run before the next read ---------------------------------------


class Parked(trio.abc.Stream):
    """Logs each ``receive_some`` as it is called; hands out the given chunks, then waits forever
    (an open socket with nothing more to read)."""

    def __init__(self, chunks: Sequence[bytes], log: list[str]) -> None:
        self.chunks = list(chunks)
        self.log = log

    async def receive_some(self, max_bytes: int | None = None) -> bytes:
        self.log.append("read")
        if self.chunks:
            await trio.lowlevel.checkpoint()
            return self.chunks.pop(0)
        await trio.sleep_forever()
        raise AssertionError("unreachable")

    async def send_all(self, data: bytes | bytearray | memoryview) -> None:
        await trio.lowlevel.checkpoint()

    async def wait_send_all_might_not_block(self) -> None:
        await trio.lowlevel.checkpoint()

    async def aclose(self) -> None:
        await trio.lowlevel.checkpoint()


async def _after_a_wake(receive_buffer_size: int) -> list[str]:
    """One message read; handling it wakes another task, then the reader asks for the next
    message (none comes). What happened after the wake, in order."""
    data = Connection(ConnectionType.SERVER).send(TextMessage(data="tick"))
    log: list[str] = []
    ws = client(Parked([data], log), receive_buffer_size=receive_buffer_size)
    woken = trio.Event()

    async def other() -> None:
        await woken.wait()
        log.append("woken")

    async def reader() -> None:
        assert await ws.get_message() == "tick"
        log.clear()
        woken.set()
        await ws.get_message()

    async with trio.open_nursery() as nursery:
        nursery.start_soon(other)
        nursery.start_soon(reader)
        await trio.testing.wait_all_tasks_blocked()
        nursery.cancel_scope.cancel()
    return log


async def test_a_task_woken_by_a_message_runs_before_the_next_read() -> None:
    """The read drained the socket: before reading again (and most likely parking), the reader
    lets the task the message woke run, whatever order Trio gives a batch (at random: hence
    the repeats). Without that the read always comes first."""
    orders = [await _after_a_wake(receive_buffer_size=1 << 16) for _ in range(20)]
    assert orders == [["woken", "read"]] * 20


async def test_a_read_that_filled_the_buffer_is_followed_by_a_read_at_once() -> None:
    """A read that filled the receive buffer: more bytes are likely waiting, so the next read
    comes without a yield before it (a stream's throughput pays no scheduling for it)."""
    size = len(Connection(ConnectionType.SERVER).send(TextMessage(data="tick")))
    orders = [await _after_a_wake(receive_buffer_size=size) for _ in range(20)]
    assert orders == [["read", "woken"]] * 20
