"""A world in memory for a simulated run (``mm.world.World``): the servers the run starts (the
embedded venue's face, the admin API) are reached through in-memory byte streams, and blocking
calls run in place, so that nothing of a run is decided outside it.

On loopback sockets the kernel decides when bytes arrive and a worker thread's write ends when
the disk says: with Trio's ``MockClock`` jumping whenever every task waits, the same seed could
then take different paths. Here a byte written is in the peer's buffer at once, a server is
hypercorn's own per-connection code (``TCPServer``) given a ``MemoryStream`` instead of a
socket, and the HTTP clients' connection pools (httpcore's) open their connections here too
(``http_transport``). Ports are numbered from ``FIRST_PORT`` in the order servers start.

The journal records the service's process id as ``SIMULATED_PID`` (the run file, which
``mm stop`` signals, still holds the real one). A blocking call (the journal's SQLite writes)
runs in the calling task, without a yield: it blocks the run for its duration, which on
virtual time costs nothing simulated.

``crash`` cuts the service's process off (its connections closed, its disk writes refused)
until ``revive``: a simulated crash, whose last writes never reach the disk.

Fails: ``open_tcp_stream`` raises ``ConnectionRefusedError`` for an address no server serves,
as the operating system does; a stream used after ``aclose`` raises Trio's
``ClosedResourceError``, one whose peer is gone ``BrokenResourceError`` on send and EOF on
receive.
"""

from __future__ import annotations

import errno
import math
import operator
import socket
from collections.abc import Callable
from typing import Any, Final, TypeVar, cast

import httpcore
import httpx
import trio
from hypercorn.config import Config as HypercornConfig
from hypercorn.trio.lifespan import Lifespan
from hypercorn.trio.tcp_server import TCPServer
from hypercorn.trio.worker_context import WorkerContext
from hypercorn.typing import ASGIFramework, ConnectionState, LifespanState
from hypercorn.utils import wrap_app

__all__ = ["FIRST_PORT", "MemoryStream", "MemoryWorld", "connection"]

T = TypeVar("T")

FIRST_PORT: Final = 40_000  # the first port a server asking for any (0) is given
HOST: Final = "127.0.0.1"
KEEP_CLIENTS: Final = 1_000  # connections listed before the closed ones are let go
SIMULATED_PID: Final = 0  # the journal's pid of a simulated service (the process's own varies)


class _OneWay:
    """Bytes on their way from one end to the other."""

    __slots__ = ("buffer", "eof", "reader_gone", "waiting")

    def __init__(self) -> None:
        self.buffer = bytearray()
        self.eof = False  # the writer sent EOF or closed
        self.reader_gone = False
        self.waiting = trio.lowlevel.ParkingLot()


class _Endpoint:
    """What hypercorn reads of a connection's socket: its family and both addresses."""

    family = socket.AF_INET

    def __init__(self, local: tuple[str, int], peer: tuple[str, int]) -> None:
        self._local = local
        self._peer = peer

    def getsockname(self) -> tuple[str, int]:
        return self._local

    def getpeername(self) -> tuple[str, int]:
        return self._peer


class MemoryStream(trio.abc.HalfCloseableStream):
    """One end of an in-memory connection. ``send_now`` writes without a yield (what the order
    lane writes a request with); ``socket`` is what hypercorn reads of one."""

    def __init__(
        self, incoming: _OneWay, outgoing: _OneWay, local: tuple[str, int], peer: tuple[str, int]
    ) -> None:
        self._in = incoming
        self._out = outgoing
        self._closed = False
        self._sending = False
        self._receiving = False
        self.socket = _Endpoint(local, peer)

    def send_now(self, data: bytes | bytearray | memoryview) -> int:
        if self._closed:
            raise trio.ClosedResourceError("the stream is closed")
        if self._out.eof:
            raise trio.ClosedResourceError("sent after send_eof")
        if self._out.reader_gone:
            raise trio.BrokenResourceError("the peer closed the connection")
        self._out.buffer += data
        self._out.waiting.unpark_all()
        return len(data)

    async def send_all(self, data: bytes | bytearray | memoryview) -> None:
        if self._sending:
            raise trio.BusyResourceError("another task is sending on this stream")
        self._sending = True
        try:
            await trio.lowlevel.checkpoint_if_cancelled()
            self.send_now(data)
            await trio.lowlevel.cancel_shielded_checkpoint()
        finally:
            self._sending = False

    async def wait_send_all_might_not_block(self) -> None:
        await trio.lowlevel.checkpoint()
        if self._closed:
            raise trio.ClosedResourceError("the stream is closed")

    async def send_eof(self) -> None:
        await trio.lowlevel.checkpoint_if_cancelled()
        if self._closed:
            raise trio.ClosedResourceError("the stream is closed")
        self._out.eof = True
        self._out.waiting.unpark_all()
        await trio.lowlevel.cancel_shielded_checkpoint()

    async def receive_some(self, max_bytes: int | None = None) -> bytes:
        if max_bytes is not None:
            max_bytes = operator.index(max_bytes)
            if max_bytes < 1:
                raise ValueError("max_bytes must be >= 1")
        if self._receiving:
            raise trio.BusyResourceError("another task is receiving on this stream")
        self._receiving = True
        try:
            await trio.lowlevel.checkpoint_if_cancelled()
            while True:
                if self._closed:
                    raise trio.ClosedResourceError("the stream is closed")
                if self._in.buffer or self._in.eof:
                    break
                await self._in.waiting.park()
        finally:
            self._receiving = False
        size = len(self._in.buffer) if max_bytes is None else min(max_bytes, len(self._in.buffer))
        data = bytes(self._in.buffer[:size])
        del self._in.buffer[:size]
        await trio.lowlevel.cancel_shielded_checkpoint()
        return data

    @property
    def closed(self) -> bool:
        return self._closed

    def readable(self) -> bool:
        """Whether a receive would return at once (bytes or EOF)."""
        return bool(self._in.buffer) or self._in.eof or self._closed

    async def aclose(self) -> None:
        self.close()
        await trio.lowlevel.checkpoint()

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._out.eof = True
        self._in.reader_gone = True
        self._in.buffer.clear()
        self._out.waiting.unpark_all()
        self._in.waiting.unpark_all()


class _HttpStream(httpcore.AsyncNetworkStream):
    """A memory stream as httpcore uses a connection: its errors as httpcore's."""

    def __init__(self, stream: MemoryStream) -> None:
        self._stream = stream

    async def read(self, max_bytes: int, timeout: float | None = None) -> bytes:  # noqa: ASYNC109
        try:
            with trio.fail_after(math.inf if timeout is None else timeout):
                return await self._stream.receive_some(max_bytes)
        except trio.TooSlowError as error:
            raise httpcore.ReadTimeout(str(error)) from error
        except (trio.BrokenResourceError, trio.ClosedResourceError) as error:
            raise httpcore.ReadError(str(error)) from error

    async def write(self, buffer: bytes, timeout: float | None = None) -> None:  # noqa: ASYNC109
        try:
            with trio.fail_after(math.inf if timeout is None else timeout):
                await self._stream.send_all(buffer)
        except trio.TooSlowError as error:
            raise httpcore.WriteTimeout(str(error)) from error
        except (trio.BrokenResourceError, trio.ClosedResourceError) as error:
            raise httpcore.WriteError(str(error)) from error

    async def aclose(self) -> None:
        await self._stream.aclose()

    def get_extra_info(self, info: str) -> Any:
        if info == "is_readable":  # (an idle kept-alive connection that is: closed by the server)
            return self._stream.readable()
        return None


def connection(
    client: tuple[str, int], server: tuple[str, int]
) -> tuple[MemoryStream, MemoryStream]:
    """A connection's two ends: the client's, and the one its server accepted."""
    there, back = _OneWay(), _OneWay()
    return MemoryStream(back, there, client, server), MemoryStream(there, back, server, client)


class _Backend(httpcore.AsyncNetworkBackend):
    """httpcore's connections, opened in the memory world."""

    def __init__(self, world: MemoryWorld) -> None:
        self._world = world

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,  # noqa: ASYNC109 - httpcore's interface
        local_address: str | None = None,
        socket_options: Any = None,
    ) -> httpcore.AsyncNetworkStream:
        with trio.fail_after(math.inf if timeout is None else timeout):
            stream = await self._world.open_tcp_stream(host, port)
        assert isinstance(stream, MemoryStream)
        return _HttpStream(stream)

    async def sleep(self, seconds: float) -> None:
        await trio.sleep(seconds)


class _Transport(httpx.AsyncHTTPTransport):
    """httpx's own transport, its connection pool opening its connections in the memory world
    (httpx has no public way to give it a network: its pool is replaced)."""

    def __init__(self, world: MemoryWorld) -> None:
        super().__init__()
        self._pool = httpcore.AsyncConnectionPool(
            max_connections=8, max_keepalive_connections=8, network_backend=_Backend(world)
        )


class MemoryWorld:
    """Servers and their clients in one process, over in-memory streams (see the module)."""

    def __init__(self) -> None:
        self._servers: dict[tuple[str, int], trio.MemorySendChannel[MemoryStream]] = {}
        self._next_port = FIRST_PORT
        self._next_client_port = 50_000
        self._clients: list[MemoryStream] = []  # the connections opened, the client's ends
        self._crashed = False
        self.connections = 0  # opened, in all

    async def open_tcp_stream(self, host: str, port: int) -> trio.abc.Stream:
        await trio.lowlevel.checkpoint()
        if self._crashed:
            raise OSError(errno.ESRCH, "the process is gone (a simulated crash)")
        server = self._servers.get((host, port))
        if server is None:
            raise ConnectionRefusedError(errno.ECONNREFUSED, f"nothing serves {host}:{port}")
        self._next_client_port += 1
        client, accepted = connection((HOST, self._next_client_port), (host, port))
        server.send_nowait(accepted)
        self.connections += 1
        if len(self._clients) >= KEEP_CLIENTS:
            self._clients = [stream for stream in self._clients if not stream.closed]
        self._clients.append(client)
        return client

    def crash(self) -> None:
        """The process that opened the connections is gone: each is closed (its server sees
        the end), none can be opened, and no blocking call (a disk write) runs, until
        ``revive``. The servers stay: they are the venue's."""
        self._crashed = True
        for stream in self._clients:
            stream.close()
        self._clients.clear()

    def revive(self) -> None:
        """A new process: connections and blocking calls again."""
        self._crashed = False

    async def serve_asgi(
        self,
        app: ASGIFramework,
        config: HypercornConfig,
        *,
        task_status: trio.TaskStatus[list[str]] = trio.TASK_STATUS_IGNORED,
    ) -> None:
        host, port = _bound(config.bind[0])
        if port == 0:
            port, self._next_port = self._next_port, self._next_port + 1
        if (host, port) in self._servers:
            raise OSError(errno.EADDRINUSE, f"{host}:{port} is served already")
        wrapped = wrap_app(app, config.wsgi_max_body_size, "asgi")
        state: LifespanState = {}
        lifespan = Lifespan(wrapped, config, state)
        context = WorkerContext(None)
        accepted, accepting = trio.open_memory_channel[MemoryStream](math.inf)
        self._servers[(host, port)] = accepted
        try:
            async with trio.open_nursery() as lifespan_nursery:
                await lifespan_nursery.start(lifespan.handle_lifespan)
                await lifespan.wait_for_startup()
                async with trio.open_nursery() as connections:
                    task_status.started([f"http://{host}:{port}"])
                    async for stream in accepting:
                        # (hypercorn reads a socket's addresses off a stream: ``socket``)
                        server = TCPServer(
                            wrapped,
                            config,
                            context,
                            ConnectionState(state.copy()),
                            cast(Any, stream),
                        )
                        connections.start_soon(server.run)
        finally:
            del self._servers[(host, port)]

    def http_transport(self) -> httpx.AsyncBaseTransport | None:
        return _Transport(self)

    async def run_blocking(self, function: Callable[..., T], *args: Any) -> T:
        await trio.lowlevel.checkpoint_if_cancelled()
        if self._crashed:
            raise OSError(errno.ESRCH, "the process is gone (a simulated crash)")
        result = function(*args)
        await trio.lowlevel.cancel_shielded_checkpoint()
        return result

    def process_id(self) -> int:
        return SIMULATED_PID


def _bound(bind: str) -> tuple[str, int]:
    """hypercorn's bind (``host:port``, ``[v6]:port``) as a host and a port."""
    host, _, port = bind.rpartition(":")
    return host.strip("[]"), int(port)
