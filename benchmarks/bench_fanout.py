"""Benchmark: an l2Book fan-out from the simulator to many WebSocket clients on loopback, the
simulator's send cost apart from the clients' receive cost.

The simulator runs in this process with a quiet market; the clients (``--clients``, 50) run in a
child process (this script with ``--serve-clients``), each subscribed to ``l2Book`` for BTC.
Each round marks the book changed and publishes; the child reports when its last client has
the frame (on CLOCK_MONOTONIC, which both processes read). Printed, per fan-out:

- the baseline, measured in the same run: building and serialising one snapshot and pushing it
  into every session's outbox, with no sockets (the simulator's share that is not networking);
- the simulator's send cost: this process's CPU time per fan-out (snapshot, serialise, push,
  and each session's WebSocket framing and socket write);
- the clients' receive cost: the child's CPU time per fan-out (socket read, WebSocket parsing
  and ``orjson.loads`` in every client), and per client;
- the wall time from publishing until the last client has the frame (median, p99), and frames
  delivered per second at that pace.

CPU times are the processes' own (``time.process_time``), so load from other processes on the
machine does not inflate them as it does wall times. Run:
``python benchmarks/bench_fanout.py [--clients N] [--rounds N] [--quick]``. Fails when the child
process exits or stops answering (``RuntimeError``).
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Sequence
from functools import partial
from pathlib import Path

import orjson
import trio
from loguru import logger
from trio_websocket import WebSocketConnection, connect_websocket_url

from mm.venues.sim.config import MarketConfig, SimConfig
from mm.venues.sim.events import BookChanged
from mm.venues.sim.hub import Session
from mm.venues.sim.venue import SimVenue

EPOCH_MS = 1_800_000_000_000
SCRIPT = Path(__file__).resolve()
TIMEOUT_S = 30.0  # a child that has not answered by then is stuck


def quiet_config() -> SimConfig:
    market = MarketConfig(step_ms=3_600_000, taker_a=0.0, volatility_bps=0.0)
    return SimConfig(market=market, rate_limits=False, book_interval_ms=3_600_000)


def publish(venue: SimVenue) -> None:
    """One fan-out: the book marked changed, its snapshot published to every subscriber."""
    venue.engine.events.append(BookChanged(0))
    venue.publish_events()
    venue.publish_books()


def baseline(venue: SimVenue, sessions: int, rounds: int) -> float:
    """Seconds per fan-out without sockets: snapshot, serialise, push to every outbox."""
    hub = venue.hub
    fake = [Session(index, rounds + 1) for index in range(sessions)]
    for session in fake:
        hub.add(session, ("l2Book", "BTC"))
    started = time.perf_counter()
    for _ in range(rounds):
        publish(venue)
    elapsed = time.perf_counter() - started
    for session in fake:
        hub.drop(session)
    return elapsed / rounds


def checkout_environment() -> dict[str, str]:
    """The child runs this checkout's mm, as this process does (not an installed copy)."""
    root = str(Path(__file__).resolve().parent.parent)
    path = os.environ.get("PYTHONPATH")
    return {**os.environ, "PYTHONPATH": root if not path else f"{root}{os.pathsep}{path}"}


# --- the clients' process ---------------------------------------------------------------------


async def serve_clients(url: str, count: int) -> None:
    """``count`` clients subscribed to BTC's l2Book; prints ``ready``, then for each frame time
    that every client has received, ``<time> <CLOCK_MONOTONIC ns> <process CPU ns>``."""
    stdout = trio.lowlevel.FdStream(os.dup(sys.stdout.fileno()))
    ws_url = url.replace("http", "ws", 1) + "/ws"
    received: dict[int, int] = {}  # frame time -> clients that have it
    async with trio.open_nursery() as nursery:
        clients: list[WebSocketConnection] = []

        async def connect() -> None:
            ws = await connect_websocket_url(nursery, ws_url)
            await ws.get_message()  # greeting
            subscription = {"type": "l2Book", "coin": "BTC"}
            await ws.send_message(
                orjson.dumps({"method": "subscribe", "subscription": subscription}).decode()
            )
            await ws.get_message()  # ack
            await ws.get_message()  # snapshot
            clients.append(ws)

        async with trio.open_nursery() as connecting:
            for _ in range(count):
                connecting.start_soon(connect)

        async def read(ws: WebSocketConnection) -> None:
            while True:
                frame = orjson.loads(await ws.get_message())
                if frame.get("channel") != "l2Book":
                    continue
                at = frame["data"]["time"]
                received[at] = received.get(at, 0) + 1
                if received[at] == count:
                    del received[at]
                    now, cpu = time.monotonic_ns(), time.process_time_ns()
                    await stdout.send_all(f"{at} {now} {cpu}\n".encode())

        for ws in clients:
            nursery.start_soon(read, ws)
        await stdout.send_all(b"ready\n")
        await trio.sleep_forever()


class Lines:
    """The child's stdout, line by line."""

    def __init__(self, process: trio.Process) -> None:
        assert process.stdout is not None
        self.process = process
        self._stdout = process.stdout
        self._buffer = b""

    async def next(self) -> str:
        with trio.fail_after(TIMEOUT_S):
            while b"\n" not in self._buffer:
                chunk = await self._stdout.receive_some()
                if not chunk:
                    raise RuntimeError(f"the clients' process exited ({self.process.returncode})")
                self._buffer += chunk
        line, self._buffer = self._buffer.split(b"\n", 1)
        return line.decode()


# --- the simulator's side -----------------------------------------------------------------------


async def fan_out(clients: int, rounds: int) -> dict[str, float | list[float]]:
    venue = SimVenue(quiet_config(), epoch_ms=EPOCH_MS)
    async with trio.open_nursery() as nursery:
        await nursery.start(venue.run)
        assert venue.url is not None
        base = baseline(venue, clients, rounds)
        command = [sys.executable, str(SCRIPT), "--serve-clients", venue.url, str(clients)]
        process = await nursery.start(
            partial(
                trio.run_process,
                command,
                stdout=subprocess.PIPE,
                env=checkout_environment(),
                check=False,
            )
        )
        lines = Lines(process)
        if await lines.next() != "ready":
            raise RuntimeError("the clients' process did not come up")
        walls: list[float] = []
        sim_cpu = client_cpu = 0
        for round_ in range(rounds + 1):  # the first round only sets the CPU counters going
            await trio.sleep(0.001)  # let the clock move so each frame has a new time
            wanted = venue.now_ms()
            started, cpu = time.monotonic_ns(), time.process_time_ns()
            publish(venue)
            while True:
                at, done, their_cpu = (int(field) for field in (await lines.next()).split())
                if at >= wanted:
                    break
            if round_ == 0:
                sim_from, clients_from = cpu, their_cpu
                continue
            walls.append((done - started) / 1e9)
            sim_cpu = time.process_time_ns() - sim_from
            client_cpu = their_cpu - clients_from
        process.terminate()
        nursery.cancel_scope.cancel()
    return {
        "baseline": base,
        "wall": walls,
        "sim_cpu": sim_cpu / 1e9 / rounds,
        "client_cpu": client_cpu / 1e9 / rounds,
    }


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--rounds", type=int, default=200)
    parser.add_argument("--quick", action="store_true", help="5 clients, 10 rounds")
    parser.add_argument("--serve-clients", nargs=2, metavar=("URL", "N"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    logger.remove()  # the simulator's INFO lines would interleave with the figures
    logger.add(sys.stderr, level="WARNING")
    if args.serve_clients:
        url, count = args.serve_clients
        trio.run(serve_clients, url, int(count))
        return
    clients, rounds = (5, 10) if args.quick else (args.clients, args.rounds)
    load = os.getloadavg()[0]
    figures = trio.run(fan_out, clients, rounds)
    walls = figures["wall"]
    assert isinstance(walls, list)
    base, sim_cpu, client_cpu = figures["baseline"], figures["sim_cpu"], figures["client_cpu"]
    assert isinstance(base, float)
    assert isinstance(sim_cpu, float)
    assert isinstance(client_cpu, float)
    median = statistics.median(walls)
    p99 = sorted(walls)[min(len(walls) - 1, int(len(walls) * 0.99))]
    us = 1e6
    print(f"l2Book fan-out to {clients} WebSocket clients over loopback, {rounds} rounds")
    print(f"  baseline: snapshot + serialise + push to {clients} outboxes  {base * us:9.1f} us")
    print(
        f"  simulator's send cost (its CPU per fan-out)          {sim_cpu * us:9.1f} us"
        f"  ({sim_cpu / base:.1f}x the baseline: the rest is WebSocket framing and writes)"
    )
    print(
        f"  clients' receive cost (their CPU per fan-out)        {client_cpu * us:9.1f} us"
        f"  ({client_cpu / clients * us:.1f} us a client)"
    )
    print(
        f"  wall time, publish to the last client: median {median * us:.1f} us, "
        f"p99 {p99 * us:.1f} us"
    )
    print(f"  frames delivered per second at that pace: {clients / median:,.0f}")
    print(f"  load average (1 min): {load:.2f} at the start, {os.getloadavg()[0]:.2f} at the end")


if __name__ == "__main__":
    main()
