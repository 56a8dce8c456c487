"""The world in memory: its streams keep Trio's stream contract (Trio's own conformance
checks), its servers are hypercorn's answering HTTP and WebSocket clients of the service's
own kinds, and a blocking call runs in place."""

from __future__ import annotations

import threading

import httpx
import pytest
import trio
import trio.testing

from mm import world
from mm.asgi import Receive, Scope, Send, hypercorn_config, run_lifespan
from mm.simulation.memory_world import FIRST_PORT, MemoryStream, MemoryWorld, connection
from mm.websocket import open_websocket_url


async def _pair() -> tuple[MemoryStream, MemoryStream]:
    return connection(("127.0.0.1", 50_001), ("127.0.0.1", FIRST_PORT))


async def test_a_memory_connection_keeps_trios_half_closeable_stream_contract() -> None:
    await trio.testing.check_half_closeable_stream(_pair, None)


async def test_bytes_written_at_once_are_read_in_order_and_eof_ends_them() -> None:
    client, server = await _pair()
    assert client.send_now(b"GET / HTTP/1.1\r\n") == 16
    await client.send_all(b"\r\n")
    await client.send_eof()
    assert await server.receive_some(4) == b"GET "
    assert await server.receive_some() == b"/ HTTP/1.1\r\n\r\n"
    assert await server.receive_some() == b""
    with pytest.raises(trio.ClosedResourceError):
        await client.send_all(b"after EOF")
    assert server.socket.getpeername() == ("127.0.0.1", 50_001)


async def test_a_peer_gone_breaks_sends_and_ends_receives() -> None:
    client, server = await _pair()
    await server.aclose()
    with pytest.raises(trio.BrokenResourceError):
        await client.send_all(b"x")
    assert await client.receive_some() == b""


async def test_no_server_at_an_address_is_a_refused_connection() -> None:
    with pytest.raises(ConnectionRefusedError):
        await MemoryWorld().open_tcp_stream("127.0.0.1", 1)


async def test_httpx_and_the_websocket_client_reach_a_server_in_memory() -> None:
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await run_lifespan(receive, send)
        elif scope["type"] == "http":
            body = f"{scope['method']} {scope['path']} from {scope['client'][0]}".encode()
            await send({"type": "http.response.start", "status": 200, "headers": []})
            await send({"type": "http.response.body", "body": body})
        else:
            assert (await receive())["type"] == "websocket.connect"
            await send({"type": "websocket.accept"})
            message = await receive()
            await send({"type": "websocket.send", "text": message["text"].upper()})
            await send({"type": "websocket.close", "code": 1000})

    memory = MemoryWorld()
    world.install(memory)
    async with trio.open_nursery() as nursery:
        binds: list[str] = await nursery.start(
            world.serve_asgi, app, hypercorn_config("127.0.0.1", 0)
        )
        assert binds == [f"http://127.0.0.1:{FIRST_PORT}"]
        transport = world.http_transport()
        assert transport is not None
        async with httpx.AsyncClient(base_url=binds[0], transport=transport) as client:
            for _ in range(3):  # (one kept-alive connection)
                answer = await client.get("/info")
                assert answer.text == "GET /info from 127.0.0.1"
        async with open_websocket_url(f"ws://127.0.0.1:{FIRST_PORT}/ws") as socket:
            await socket.send_message("hello")
            assert await socket.get_message() == "HELLO"
        assert memory.connections == 2
        nursery.cancel_scope.cancel()


async def test_a_blocking_call_runs_in_place_and_the_pid_is_the_simulated_one() -> None:
    memory = MemoryWorld()
    world.install(memory)

    def blocking(n: int) -> tuple[int, int]:
        return n, threading.get_ident()

    assert await world.run_blocking(blocking, 3) == (3, threading.get_ident())
    assert world.process_id() == 0
