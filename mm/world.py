"""The world outside the service's process, as the service reaches it: the TCP connections it
opens, the HTTP servers it runs (the admin API, the embedded simulator's face) and the blocking
calls it runs off the event loop (the journal's writes, the run file, an incident's dump), and
its process id as the journal records it.

On a real run each is the operating system's (``OperatingSystem``): ``trio.open_tcp_stream``,
hypercorn serving on a socket, ``trio.to_thread.run_sync``. A run can be given another world
(``install``, before the service starts, in the same Trio run), as a Trio run is given its
clock: every part of the service that reaches out does so through this module, so nothing else
changes. ``mm simulate`` installs ``mm.simulation.memory_world.MemoryWorld``: the servers in
the same process, reached through in-memory byte streams, and blocking calls run in place, so
that a run depends on nothing but its code, its config and its seed.

Fails: as the world installed does. The operating system's raise ``OSError`` for a connection
refused or a host unreachable, and what hypercorn and the blocking call raise.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

import trio
from trio.lowlevel import RunVar

if TYPE_CHECKING:
    import httpx
    from hypercorn.config import Config as HypercornConfig
    from hypercorn.typing import ASGIFramework

__all__ = [
    "OperatingSystem",
    "World",
    "http_transport",
    "install",
    "open_tcp_stream",
    "process_id",
    "run_blocking",
    "serve_asgi",
]

T = TypeVar("T")


class World(Protocol):
    """What the service reaches past its process through."""

    async def open_tcp_stream(self, host: str, port: int) -> trio.abc.Stream:
        """A connection to ``host:port``."""
        ...

    async def serve_asgi(
        self,
        app: ASGIFramework,
        config: HypercornConfig,
        *,
        task_status: trio.TaskStatus[list[str]] = trio.TASK_STATUS_IGNORED,
    ) -> None:
        """Serve ``app`` on ``config.bind`` until cancelled; reports the URLs it is bound to."""
        ...

    def http_transport(self) -> httpx.AsyncBaseTransport | None:
        """The transport an HTTP client sends its requests over (None: httpx's own, on the
        operating system's sockets)."""
        ...

    async def run_blocking(self, function: Callable[..., T], *args: Any) -> T:
        """``function(*args)``, which blocks (disk), without blocking the other tasks."""
        ...

    def process_id(self) -> int:
        """The service's process id, as its journal records it."""
        ...


class OperatingSystem:
    """The real world: the operating system's sockets and threads."""

    async def open_tcp_stream(self, host: str, port: int) -> trio.abc.Stream:
        return await trio.open_tcp_stream(host, port)

    async def serve_asgi(
        self,
        app: ASGIFramework,
        config: HypercornConfig,
        *,
        task_status: trio.TaskStatus[list[str]] = trio.TASK_STATUS_IGNORED,
    ) -> None:
        from hypercorn.trio import serve  # (imported where served: the CLI's commands start fast)

        await serve(app, config, mode="asgi", task_status=task_status)

    def http_transport(self) -> httpx.AsyncBaseTransport | None:
        return None

    async def run_blocking(self, function: Callable[..., T], *args: Any) -> T:
        return await trio.to_thread.run_sync(function, *args)

    def process_id(self) -> int:
        return os.getpid()


_WORLD: RunVar[World] = RunVar("mm_world", default=OperatingSystem())


def install(world: World) -> None:
    """Run the rest of this Trio run in ``world`` (before the service starts)."""
    _WORLD.set(world)


async def open_tcp_stream(host: str, port: int) -> trio.abc.Stream:
    """A TCP connection to ``host:port`` in this run's world."""
    return await _WORLD.get().open_tcp_stream(host, port)


async def serve_asgi(
    app: ASGIFramework,
    config: HypercornConfig,
    *,
    task_status: trio.TaskStatus[list[str]] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Serve ``app`` with hypercorn's ``config`` in this run's world until cancelled; reports
    the URLs it is bound to (``task_status``)."""
    await _WORLD.get().serve_asgi(app, config, task_status=task_status)


def http_transport() -> httpx.AsyncBaseTransport | None:
    """The transport for an HTTP client in this run's world (None: httpx's own, and outside a
    Trio run, where a client may be built before its run starts)."""
    try:
        world = _WORLD.get()
    except RuntimeError:  # (no Trio run)
        return None
    return world.http_transport()


def process_id() -> int:
    """The service's process id in this run's world (as the journal records it)."""
    return _WORLD.get().process_id()


async def run_blocking(function: Callable[..., T], *args: Any) -> T:
    """``function(*args)``, a blocking call, in this run's world (a worker thread on the
    operating system)."""
    return await _WORLD.get().run_blocking(function, *args)
