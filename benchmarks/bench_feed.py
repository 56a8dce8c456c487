"""Benchmark: CPU per l2Book frame through the real ingest path, beside a bare ``orjson.loads``.

Run with ``python benchmarks/bench_feed.py [--frames N] [--rounds R] [--coins C] [--socket]``
(``--quick``: 300 frames x 2 rounds, in process only).

The frames are the recorded l2Book answer in ``tests/fixtures/hyperliquid/info_responses.json``
(DYDX, 20 levels a side; ``ws_frames.jsonl`` holds no l2Book frame) put in the channel's
envelope as the venue sends it (``{"channel": "l2Book", "data": {coin, time, levels}}``,
compact JSON, levels ``px, sz, n``), under ``--coins`` coin names in turn; frame ``i`` moves
the whole book by a few ticks and every size by up to +-50% (seeded), keeps the venue's number
formats, and advances the time by 1 ms, so that every frame is a new, valid, uncrossed book that
the quality checks accept.

What is measured (``time.process_time``, this process's CPU, over ``--frames`` frames a round):

- **ingest**: the service's own path from the frame's text to the book on the ``BookBus``: a
  ``WsConnection`` reading the frames from a socket, routing each to its subscription, the
  ``HyperliquidMarketStream`` parsing it, the ``MarketFeed`` building, checking and publishing
  the book (where the strategy reads it), with Trio's scheduling between them. By default the
  socket is an in-process replay: the service's own WebSocket client (``mm.websocket``, 64 KiB
  reads) reading the frames as the venue frames them from an in-process stream, so the
  framing and the reader are in the figure; the frames are encoded before the round (the
  venue's work is not). With ``--socket`` the frames come over a real loopback WebSocket from
  a server in a child process (its CPU is not this process's), once with a 4 KiB receive
  buffer and once with 64 KiB, so the effect of the receive buffer is measured too.
- **orjson**: a bare ``orjson.loads`` of the same frame texts, the floor of any Python feed.

Rounds alternate the two (ingest first in even rounds) so that load from other processes falls
on both alike; medians of the rounds are printed, with their ratio. Absolute figures move with
the machine's load; the ratio is the figure to compare. ``books/frame`` says how many frames
became a published book (1.00: none was conflated away or rejected, so the CPU is per book).
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import random
import statistics
import time
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from pathlib import Path
from typing import Any

import orjson
import trio
import trio.testing
from wsproto.connection import Connection, ConnectionType
from wsproto.events import CloseConnection, TextMessage

from mm.book import BookBus
from mm.feeds.market import MarketFeed
from mm.model import Trade
from mm.venues.hyperliquid.market_stream import HyperliquidMarketStream
from mm.venues.hyperliquid.ws import GREETING, WsConnection
from mm.websocket import WebSocketConnection, open_websocket_url

FIXTURE = Path(__file__).parent.parent / "tests/fixtures/hyperliquid/info_responses.json"
COIN_NAMES = ("DYDX", "BTC", "ETH", "SOL", "AVAX", "ARB", "OP", "APT")


def recorded_book() -> dict[str, Any]:
    book: dict[str, Any] = json.loads(FIXTURE.read_text())["info"]["l2Book"]["response"]
    return book


def _decimals(text: str) -> int:
    return len(text.split(".")[1]) if "." in text else 0


def _fmt(value: float, decimals: int) -> str:
    """As the venue prints numbers: fixed decimals, trailing zeros (and the point) stripped."""
    text = f"{value:.{decimals}f}"
    return text.rstrip("0").rstrip(".") if "." in text else text


def build_frames(count: int, coins: int, start_ms: int, seed: int) -> list[str]:
    """``count`` l2Book frame texts from the recorded book; see the module docstring."""
    base = recorded_book()
    bids, asks = base["levels"]
    px_dec = max(_decimals(level["px"]) for level in bids + asks)
    sz_dec = max(_decimals(level["sz"]) for level in bids + asks)
    tick = 10.0**-px_dec
    rng = random.Random(seed)
    names = COIN_NAMES[:coins]
    frames = []
    for i in range(count):
        shift = rng.randint(-5, 5) * tick

        def side(levels: list[dict[str, Any]], shift: float = shift) -> list[dict[str, Any]]:
            return [
                {
                    "px": _fmt(float(level["px"]) + shift, px_dec),
                    "sz": _fmt(
                        max(float(level["sz"]) * rng.uniform(0.5, 1.5), 10.0**-sz_dec), sz_dec
                    ),
                    "n": level["n"],
                }
                for level in levels
            ]

        data = {
            "coin": names[i % len(names)],
            "time": start_ms + i,
            "levels": [side(bids), side(asks)],
        }
        frames.append(orjson.dumps({"channel": "l2Book", "data": data}).decode())
    return frames


# --- the in-process replay stream -------------------------------------------------------------


class ReplayStream(trio.abc.Stream):
    """The venue's end of an in-process byte stream, read by ``mm.websocket``'s connection as
    it reads a socket: the greeting, an answer to every (un)subscription and ping, then the
    frames ``replay`` queues, as the WebSocket frames (unmasked, one text frame a message) the
    venue sends. ``receive_some`` is a checkpoint and hands out up to the bytes asked for, as a
    socket read does. Frames are encoded by ``encode`` before a round is measured."""

    def __init__(self, subscriptions: int) -> None:
        self._venue = Connection(ConnectionType.SERVER)
        self._inbox = bytearray()
        self._arrived = trio.Event()
        self.drained = trio.Event()
        self.subscribed = trio.Event()  # once ``subscriptions`` were acknowledged
        self._subscriptions = subscriptions
        self._push(self.encode([GREETING]))

    def encode(self, texts: list[str]) -> bytes:
        send = self._venue.send
        return b"".join(send(TextMessage(data=text)) for text in texts)

    def replay(self, data: bytes) -> None:
        """Queue ``data`` (from ``encode``); ``drained`` is set once it was all read."""
        self.drained = trio.Event()
        self._push(data)

    def _push(self, data: bytes) -> None:
        self._inbox += data
        self._arrived.set()

    async def receive_some(self, max_bytes: int | None = None) -> bytes:
        while not self._inbox:
            self.drained.set()
            self._arrived = trio.Event()
            await self._arrived.wait()
        await trio.lowlevel.checkpoint()  # as a socket read
        size = max_bytes or len(self._inbox)
        chunk = bytes(self._inbox[:size])
        del self._inbox[:size]
        return chunk

    async def send_all(self, data: bytes | bytearray | memoryview) -> None:
        await trio.lowlevel.checkpoint()
        self._venue.receive_data(bytes(data))
        for event in self._venue.events():
            if isinstance(event, CloseConnection):
                self._push(self._venue.send(event.response()))
            elif isinstance(event, TextMessage):
                self._answer(orjson.loads(event.data))

    def _answer(self, message: dict[str, Any]) -> None:
        method = message.get("method")
        if method in ("subscribe", "unsubscribe"):
            answer = {"method": method, "subscription": message["subscription"]}
            self._push(
                self.encode(
                    [orjson.dumps({"channel": "subscriptionResponse", "data": answer}).decode()]
                )
            )
            self._subscriptions -= 1
            if self._subscriptions == 0:
                self.subscribed.set()
        elif method == "ping":
            self._push(self.encode(['{"channel":"pong"}']))

    async def wait_send_all_might_not_block(self) -> None:
        await trio.lowlevel.checkpoint()

    async def aclose(self) -> None:
        await trio.lowlevel.checkpoint()


# --- the loopback WebSocket server (a child process) -----------------------------------------


def _serve(port_out: Any, go: Any, frames: int, rounds: int, coins: int) -> None:
    """The venue: the greeting, acknowledgements, then ``frames`` frames a round, as fast as
    the socket takes them, each round when the parent says go."""
    from trio_websocket import ConnectionClosed, WebSocketRequest, serve_websocket

    async def handler(request: WebSocketRequest) -> None:
        ws = await request.accept()
        await ws.send_message(GREETING)
        subscribed = 0
        while subscribed < 2 * coins + 1:  # books and trades per coin, and mids
            message = orjson.loads(await ws.get_message())
            answer = {"method": message["method"], "subscription": message["subscription"]}
            await ws.send_message(
                orjson.dumps({"channel": "subscriptionResponse", "data": answer}).decode()
            )
            subscribed += 1
        start_ms = int(time.time() * 1000)
        try:
            for round_ in range(rounds + 1):  # a first round to warm up
                texts = build_frames(frames, coins, start_ms + round_ * frames, seed=round_)
                await trio.to_thread.run_sync(go.wait)
                go.clear()
                for text in texts:
                    await ws.send_message(text)
        except ConnectionClosed:
            return
        await trio.sleep_forever()

    async def main(argv: list[str] | None = None) -> None:
        async with trio.open_nursery() as nursery:
            servers = await nursery.start(serve_websocket, handler, "127.0.0.1", 0, None)
            port_out.send(servers.port)

    trio.run(main)


# --- the measurement -------------------------------------------------------------------------


def bare_orjson(texts: list[str]) -> float:
    loads = orjson.loads
    start = time.process_time()
    for text in texts:
        loads(text)
    return time.process_time() - start


async def measure(
    args: argparse.Namespace, connect: Callable[[], Any], socket: Any
) -> dict[str, Any]:
    """Run the feed on ``connect``'s socket; per round the ingest and orjson CPU per frame."""
    coins = COIN_NAMES[: args.coins]
    conn = WsConnection("ws://127.0.0.1", connect=connect)
    bus = BookBus()
    trades_send, _trades_receive = trio.open_memory_channel[Trade](1024)
    feed = MarketFeed(HyperliquidMarketStream(conn), coins, bus, trades_send)
    start_ms = int(time.time() * 1000)
    ingest: list[float] = []
    bare: list[float] = []
    books = frames = 0
    async with trio.open_nursery() as nursery:
        await nursery.start(conn.run)
        nursery.start_soon(feed.run)
        if isinstance(socket, ReplayStream):
            await socket.subscribed.wait()  # (the server waits for them itself)
        for round_ in range(args.rounds + 1):  # round 0 warms up (and makes the feed ready)
            texts = build_frames(args.frames, args.coins, start_ms + round_ * args.frames, round_)
            received = conn.frames_received["l2Book"]
            published = feed.books_published
            if round_ % 2:
                bare_cpu = bare_orjson(texts)
            if isinstance(socket, ReplayStream):
                encoded = socket.encode(texts)
            begin = time.process_time()
            if isinstance(socket, ReplayStream):
                socket.replay(encoded)
                await socket.drained.wait()
            else:
                socket.set()  # the server sends the round
                # Polled (a few hundred idle wakeups a round), so as to add no work per frame.
                while conn.frames_received["l2Book"] < received + len(texts):  # noqa: ASYNC110
                    await trio.sleep(0.005)
            await trio.testing.wait_all_tasks_blocked()
            spent = time.process_time() - begin
            if not round_ % 2:
                bare_cpu = bare_orjson(texts)
            if round_ == 0:
                await feed.wait_ready()
                continue
            ingest.append(spent / len(texts))
            bare.append(bare_cpu / len(texts))
            books += feed.books_published - published
            frames += conn.frames_received["l2Book"] - received
        nursery.cancel_scope.cancel()
    return {"ingest": ingest, "bare": bare, "books_per_frame": books / frames if frames else 0.0}


def report(label: str, result: dict[str, Any]) -> None:
    ingest = statistics.median(result["ingest"]) * 1e6
    bare = statistics.median(result["bare"]) * 1e6
    ratios = [i / b for i, b in zip(result["ingest"], result["bare"], strict=True)]
    print(
        f"{label:<28} ingest {ingest:7.1f} us/frame   baseline orjson.loads {bare:5.1f} us/frame"
        f"   ratio {ingest / bare:5.2f}x (per-round median {statistics.median(ratios):5.2f}x)"
        f"   books/frame {result['books_per_frame']:.2f}"
    )


def run_inproc(args: argparse.Namespace) -> None:
    socket = ReplayStream(2 * args.coins + 1)  # books and trades per coin, and mids

    @asynccontextmanager
    async def connect() -> AsyncIterator[WebSocketConnection]:
        ws = WebSocketConnection(
            socket,
            Connection(ConnectionType.CLIENT),  # (opened: the upgrade is no part of the figure)
            message_queue_size=64,
            max_message_size=4 << 20,
            receive_buffer_size=64 << 10,
            disconnect_timeout=1.0,
        )
        try:
            yield ws
        finally:
            await ws.aclose()

    report("in-process replay", trio.run(measure, args, connect, socket))


def run_socket(args: argparse.Namespace, receive_buffer: int) -> None:
    context = multiprocessing.get_context("spawn")
    port_out, port_in = context.Pipe()
    go = context.Event()
    server = context.Process(
        target=_serve, args=(port_in, go, args.frames, args.rounds, args.coins), daemon=True
    )
    server.start()
    try:
        port = port_out.recv()

        def connect() -> AbstractAsyncContextManager[Any]:
            return open_websocket_url(
                f"ws://127.0.0.1:{port}/ws",
                message_queue_size=64,
                max_message_size=4 << 20,
                receive_buffer_size=receive_buffer,
            )

        report(
            f"loopback, {receive_buffer >> 10} KiB receive", trio.run(measure, args, connect, go)
        )
    finally:
        server.kill()
        server.join()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=5_000, help="frames per round")
    parser.add_argument("--rounds", type=int, default=6, help="measured rounds (plus a warm-up)")
    parser.add_argument("--coins", type=int, default=4, choices=range(1, len(COIN_NAMES) + 1))
    parser.add_argument("--socket", action="store_true", help="over a loopback WebSocket too")
    parser.add_argument("--quick", action="store_true", help="300 frames x 2 rounds, in process")
    args = parser.parse_args(argv)
    if args.quick:
        args.frames, args.rounds, args.socket = 300, 2, False
    sample = build_frames(1, 1, 0, 0)[0]
    print(
        f"{args.frames} frames x {args.rounds} rounds, {args.coins} coins, {len(sample)} B a frame"
    )
    run_inproc(args)
    if args.socket:
        run_socket(args, 4 << 10)
        run_socket(args, 64 << 10)


if __name__ == "__main__":
    main()
