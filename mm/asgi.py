"""ASGI plumbing shared by the servers hypercorn runs: the admin API and the simulator's face.

Type aliases for the ASGI callables, the lifespan handshake, request-body reading and the
hypercorn configuration both servers start from.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from hypercorn.config import Config as HypercornConfig

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]


async def run_lifespan(receive: Receive, send: Send) -> None:
    """Answer the server's startup and shutdown messages; returns after shutdown."""
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
            return


async def read_body(receive: Receive, max_bytes: int | None = None) -> bytes | None:
    """The whole request body; None once it exceeds ``max_bytes`` (when given)."""
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] != "http.request":
            return b"".join(chunks)
        chunk = message.get("body", b"")
        size += len(chunk)
        if max_bytes is not None and size > max_bytes:
            return None
        chunks.append(chunk)
        if not message.get("more_body", False):
            return b"".join(chunks)


def bind_address(host: str, port: int) -> str:
    """hypercorn's bind syntax: IPv6 hosts go in brackets."""
    return f"[{host}]:{port}" if ":" in host and not host.startswith("[") else f"{host}:{port}"


def hypercorn_config(host: str, port: int) -> HypercornConfig:
    """Bound to ``host:port``, no access log, errors to the stdlib logger, a 1 s graceful stop."""
    config = HypercornConfig()
    config.bind = [bind_address(host, port)]
    config.accesslog = None
    config.errorlog = logging.getLogger("hypercorn.error")
    config.graceful_timeout = 1.0
    config.keep_alive_timeout = 5.0
    return config
