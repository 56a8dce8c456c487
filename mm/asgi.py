"""ASGI plumbing shared by the servers hypercorn runs: the admin API and the simulator's face.

Type aliases for the ASGI callables, the lifespan handshake, request-body reading under a size
cap and the hypercorn configuration both servers start from. Nothing here raises for a
client's input: an oversized body is reported as ``None`` for the caller to answer 413.
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


async def read_body(receive: Receive, max_bytes: int) -> bytes | None:
    """The request body, or None once it exceeds ``max_bytes``.

    Read message by message (the server hands the body over in chunks of at most its read
    size) and never holds more than ``max_bytes``: the chunk that crosses the cap is dropped
    and nothing more is read, so an oversized body costs at most ``max_bytes`` of memory
    whatever its size. The rest of it is never consumed; the server closes the connection
    after the response.
    """
    body = bytearray()
    while True:
        message = await receive()
        if message["type"] != "http.request":
            return bytes(body)
        chunk = message.get("body", b"")
        if len(body) + len(chunk) > max_bytes:
            return None
        body += chunk
        if not message.get("more_body", False):
            return bytes(body)


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
