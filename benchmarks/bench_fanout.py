"""Benchmark: a full l2Book fan-out from the simulator to many WebSocket clients on loopback.

Starts the simulator in-process with a quiet market, connects CLIENTS WebSocket clients to
``l2Book`` for BTC, then repeatedly marks the book changed, publishes, and waits until every
client has received the frame. Prints the time per fan-out and frames delivered per second,
next to a baseline measured in the same run: building and serialising one snapshot and pushing
it into every session's outbox, with no sockets. Run: ``python benchmarks/bench_fanout.py``.
"""

from __future__ import annotations

import statistics
import time

import orjson
import trio
from trio_websocket import WebSocketConnection, connect_websocket_url

from mm.venues.sim.config import MarketConfig, SimConfig
from mm.venues.sim.events import BookChanged
from mm.venues.sim.hub import Session
from mm.venues.sim.venue import SimVenue

CLIENTS = 50
ROUNDS = 200
EPOCH_MS = 1_800_000_000_000


def quiet_config() -> SimConfig:
    market = MarketConfig(step_ms=3_600_000, taker_a=0.0, volatility_bps=0.0)
    return SimConfig(market=market, rate_limits=False, book_interval_ms=3_600_000)


def baseline(venue: SimVenue, sessions: int, rounds: int) -> float:
    """Seconds per fan-out without sockets: snapshot, serialise, push to every outbox."""
    hub = venue.hub
    fake = [Session(index, rounds + 1) for index in range(sessions)]
    for session in fake:
        hub.add(session, ("l2Book", "BTC"))
    started = time.perf_counter()
    for _ in range(rounds):
        venue.engine.events.append(BookChanged(0))
        venue.publish_events()
        venue.publish_books()
    elapsed = time.perf_counter() - started
    for session in fake:
        hub.drop(session)
    return elapsed / rounds


async def drain_until(ws: WebSocketConnection, wanted: int) -> None:
    """Read frames until one carries l2Book time ``wanted``."""
    while True:
        frame = orjson.loads(await ws.get_message())
        if frame.get("channel") == "l2Book" and frame["data"]["time"] >= wanted:
            return


async def fan_out() -> tuple[list[float], float]:
    venue = SimVenue(quiet_config(), epoch_ms=EPOCH_MS)
    async with trio.open_nursery() as nursery:
        await nursery.start(venue.run)
        assert venue.url is not None
        ws_url = venue.url.replace("http", "ws", 1) + "/ws"
        base = baseline(venue, CLIENTS, ROUNDS)
        clients: list[WebSocketConnection] = []
        async with trio.open_nursery() as connecting:

            async def connect() -> None:
                ws = await connect_websocket_url(nursery, ws_url)
                await ws.get_message()  # greeting
                await ws.send_message(
                    orjson.dumps(
                        {"method": "subscribe", "subscription": {"type": "l2Book", "coin": "BTC"}}
                    ).decode()
                )
                await ws.get_message()  # ack
                await ws.get_message()  # snapshot
                clients.append(ws)

            for _ in range(CLIENTS):
                connecting.start_soon(connect)
        timings: list[float] = []
        for _ in range(ROUNDS):
            await trio.sleep(0.001)  # let the clock move so each frame has a new time
            wanted = venue.now_ms()
            started = time.perf_counter()
            venue.engine.events.append(BookChanged(0))
            venue.publish_events()
            venue.publish_books()
            async with trio.open_nursery() as readers:
                for ws in clients:
                    readers.start_soon(drain_until, ws, wanted)
            timings.append(time.perf_counter() - started)
        for ws in clients:
            await ws.aclose()
        nursery.cancel_scope.cancel()
    return timings, base


def main() -> None:
    timings, base = trio.run(fan_out)
    median = statistics.median(timings)
    p99 = sorted(timings)[int(len(timings) * 0.99) - 1]
    print(f"l2Book fan-out to {CLIENTS} WebSocket clients over loopback, {ROUNDS} rounds")
    print(f"  baseline (snapshot + serialise + push to {CLIENTS} outboxes): {base * 1e6:8.1f} us")
    print(f"  full fan-out, median:                                  {median * 1e6:8.1f} us")
    print(f"  full fan-out, p99:                                     {p99 * 1e6:8.1f} us")
    print(f"  frames delivered per second:                           {CLIENTS / median:8.0f}")
    print(f"  network and client share of the fan-out:               {1 - base / median:8.1%}")


if __name__ == "__main__":
    main()
