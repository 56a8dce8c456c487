"""Benchmark: decision latency (book frame in -> orders handed to the order client) through the
service's own pipeline, against a loopback WebSocket ping to the same simulator, interleaved.

The simulator runs in a child process (this script with ``--serve-sim``), so its work (moving
the mid, re-quoting its liquidity, building and serialising the l2Book frame, matching our
orders) never runs on the measured process. mm's side is assembled from the components' public
constructors as ``mm/app.py`` assembles them, on the shipped ``config.toml``: the venue service
(``build_adapter``: WebSocket connections, market feed, user feed, the startup sequence and
user-event routing), the strategy ``strategy.kind`` names, and ``Trading``: the strategy (it
decides on each book in the feed's task) and its task, the mailboxes, the executor slots with
their order budget and pre-trade checks. What differs
from the shipped configuration, and why: one symbol (BTC); ticks come as fast as a round
allows, not every half second, and each moves the book, so the throttles tuned for real time
(the accumulator's ``min_interval_s`` and ``mid_threshold_bps``, the order budget, the client's
request limiter, the pre-trade rate and duplicate window, the simulator's rate limits, account
request budget and block delay) are opened wide: their checks still run, they no longer
refuse. The journal is not in the path (order events are counted).

Each round: one ping round trip on a socket of its own, with the client the venues' sockets
use (``mm.websocket``: the baseline reads with the same code as the span's frame); then the
simulator moves its mid 3 bps (back and forth), re-quotes its liquidity and publishes one
l2Book frame, and
reports when the frame was handed to its WebSocket server to be framed and written (on
CLOCK_MONOTONIC, which both processes read). The span starts there, so it also holds the
simulator's framing and socket write (tens of microseconds): an upper bound. It ends when the
first order call for that tick reaches the order client (a wrapper around the venue client,
below the order router). The round then waits until the orders are answered and the process is
idle, so rounds never overlap, and only then reads the simulator's report (so this harness does
no work of its own in the span); a round in which an order call came before the frame (a requote
on the strategy's timer) is not counted. The quoter is warmed first with 300 s of synthetic mids
and trades (its estimators' windows full: steady state), then by unmeasured rounds. Printed:
p50/p99 of decision latency beside the ping's and the ratios; apart, the simulator's own work
per tick (mid move to frame handed to its server), not in the span.

Run: ``python benchmarks/bench_tick_to_order.py [--rounds N] [--warmup N] [--quick]``. Fails
(exit status 1) when more than a tenth of the ticks send no order, a round does not settle
within 10 s, or the simulator's process stops answering.
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
from typing import Any

import attrs
import orjson
import trio
import trio.testing
from loguru import logger

from mm import clock
from mm.book import Book
from mm.config import Config, load_config, resolve_secrets
from mm.execution.auditor import OrderAuditor
from mm.execution.cancel_all import CancelAll
from mm.execution.legs import LegExecutor
from mm.execution.orders import OrderRouter, OrderVenue
from mm.execution.permissions import Grant, PermissionBoard, Source
from mm.execution.permissions import Level as Permitted
from mm.metrics import new_registry
from mm.model import (
    CancelOrder,
    CancelResult,
    Fill,
    Instrument,
    Level,
    ModifyOrder,
    OrderId,
    OrderReport,
    PlaceOrder,
    PlaceResult,
    Side,
    Trade,
    TradeId,
)
from mm.portfolio import Portfolio
from mm.strategies.base import StrategyContext
from mm.strategies.registry import build_strategy
from mm.strategies.runner import Trading
from mm.venues.factory import build_adapter
from mm.websocket import WebSocketConnection, open_websocket_url

HERE = Path(__file__).resolve().parent
CONFIG = HERE.parent / "config.toml"
COIN = "BTC"
MOVE = 0.0003  # the simulator's mid moves 3 bps each tick, back and forth
HISTORY_S = 300  # the estimators' windows (strategy.volatility / intensity window_s)
WIDE = 1_000_000.0  # a rate or budget no round can exhaust
ROUND_TIMEOUT_S = 10.0  # a tick that has not settled by then: the pipeline is stuck
FIRST_CALL_WAIT_S = 2.0  # a tick with no order call by then sent nothing (it is not counted)
MAX_IDLE_SHARE = 0.1  # more ticks than this that send nothing: the bench measures nothing


def checkout_environment() -> dict[str, str]:
    """The child runs this checkout's mm, as this process does (not an installed copy)."""
    root = str(Path(__file__).resolve().parent.parent)
    path = os.environ.get("PYTHONPATH")
    return {**os.environ, "PYTHONPATH": root if not path else f"{root}{os.pathsep}{path}"}


# --- the simulator's process ----------------------------------------------------------------


async def serve_sim(account: str) -> None:
    """The simulator, in this process: prints its URL and mid, then for each ``tick`` line on
    stdin moves the mid and publishes, and prints when the l2Book frame was handed to the server
    and how long its own work took until then (CLOCK_MONOTONIC nanoseconds)."""
    from mm.venues.sim import server
    from mm.venues.sim.config import MarketConfig, SimConfig
    from mm.venues.sim.venue import SimVenue

    written: list[int] = []
    frame_written = trio.Event()

    class StampingApp(server.SimApp):
        """The simulator's face, noting when each l2Book frame is handed to hypercorn to be
        framed and written. Not after: the write wakes the client, which may run before this
        process does again (on a busy machine, long before)."""

        async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
            if scope["type"] != "websocket":
                return await super().__call__(scope, receive, send)

            async def stamped(message: Any) -> None:
                if message["type"] == "websocket.send" and message.get("text", "").startswith(
                    '{"channel":"l2Book"'
                ):
                    written.append(time.monotonic_ns())
                    frame_written.set()
                await send(message)

            return await super().__call__(scope, receive, stamped)

    # serve_venue builds its application from this name: this process is the bench's harness.
    server.SimApp = StampingApp  # type: ignore[misc]
    quiet = MarketConfig(step_ms=3_600_000, taker_a=0.0, volatility_bps=0.0)
    config = SimConfig(
        coins=(COIN,),
        market=quiet,
        book_interval_ms=3_600_000,  # a frame only when a tick publishes one
        rate_limits=False,
        # The account's request budget as the venue reports it (userRateLimit): the client's
        # limiter keeps to it, and a few thousand ticks would spend the shipped 10,000.
        address_initial_requests=10_000_000,
        commit_delay_min_ms=0.0,
        commit_delay_max_ms=0.0,
    )
    venue = SimVenue(config, fund_at_start=(account,))
    stdin = trio.lowlevel.FdStream(os.dup(sys.stdin.fileno()))
    stdout = trio.lowlevel.FdStream(os.dup(sys.stdout.fileno()))
    async with trio.open_nursery() as nursery:
        await nursery.start(venue.run)
        await stdout.send_all(f"{venue.url} {venue.market.mid[0]!r}\n".encode())
        buffer = b""
        tick = 0
        while True:
            chunk = await stdin.receive_some()
            if not chunk:
                break
            buffer += chunk
            while b"\n" in buffer:
                line, buffer = buffer.split(b"\n", 1)
                if line != b"tick":
                    raise SystemExit(f"unknown command {line!r}")
                tick += 1
                frame_written = trio.Event()
                first = len(written)  # our orders make the venue publish books of its own
                began = time.monotonic_ns()
                venue.market.mid[0] *= 1 + (MOVE if tick % 2 else -MOVE)
                venue.market.step(venue.now_ms(), 0.0)  # re-quote the liquidity at the new mid
                venue.publish_events()
                venue.publish_books()  # the tick: one l2Book frame
                with trio.fail_after(ROUND_TIMEOUT_S):
                    await frame_written.wait()
                at = written[first]
                await stdout.send_all(f"{at} {at - began}\n".encode())
        nursery.cancel_scope.cancel()


class SimProcess:
    """The simulator's child process, spoken to through its stdin and stdout. Fails with
    ``RuntimeError`` when it exits or stops answering."""

    def __init__(self, process: trio.Process) -> None:
        assert process.stdin is not None
        assert process.stdout is not None
        self.process = process
        self._stdin = process.stdin
        self._stdout = process.stdout
        self._buffer = b""

    async def line(self) -> str:
        with trio.fail_after(ROUND_TIMEOUT_S):
            while b"\n" not in self._buffer:
                chunk = await self._stdout.receive_some()
                if not chunk:
                    raise RuntimeError(f"the simulator exited ({self.process.returncode})")
                self._buffer += chunk
        line, self._buffer = self._buffer.split(b"\n", 1)
        return line.decode()

    async def close(self) -> None:
        """End of input: the simulator stops and the process exits."""
        await self._stdin.aclose()

    async def tick(self) -> None:
        """Ask for one frame (``ticked`` says when it was handed to the server)."""
        await self._stdin.send_all(b"tick\n")

    async def ticked(self) -> tuple[int, int]:
        """(When the frame was handed to the server, the simulator's own work), nanoseconds."""
        written, work = (await self.line()).split()
        return int(written), int(work)


# --- mm's side ------------------------------------------------------------------------------


def bench_config(url: str) -> Config:
    """The shipped configuration with the changes the module's docstring lists."""
    shipped = load_config(CONFIG, {})
    strategy = attrs.evolve(
        shipped.strategy,
        symbols=(COIN,),
        accumulator=attrs.evolve(
            shipped.strategy.accumulator, min_interval_s=0.0, mid_threshold_bps=0.0
        ),
    )
    return attrs.evolve(
        shipped,
        venue=attrs.evolve(shipped.venue, url=url),
        feeds=attrs.evolve(shipped.feeds, coins=(COIN,)),
        strategy=strategy,
        rate_limit=attrs.evolve(
            shipped.rate_limit,
            ip_weight_per_minute=int(WIDE),
            order_tokens_per_second=WIDE,
            order_burst=WIDE,
        ),
        pretrade=attrs.evolve(
            shipped.pretrade, orders_per_second=WIDE, burst=int(WIDE), duplicate_window_s=0.0
        ),
    )


class StampedVenue:
    """The venue client as the order router reaches it: notes when each order call arrives
    (CLOCK_MONOTONIC nanoseconds, since ``clear``) and how many still wait for their answer."""

    def __init__(self, venue: OrderVenue) -> None:
        self.venue = venue
        self.calls: list[tuple[int, str]] = []
        self.first_cpu_ns = 0  # this process's CPU time at the first call since ``clear``
        self.called = trio.Event()  # set at the first call since ``clear``
        self.in_flight = 0

    def clear(self) -> None:
        self.calls = []
        self.called = trio.Event()

    def _handed(self, call: str) -> None:
        if not self.calls:
            self.first_cpu_ns = time.process_time_ns()
            self.called.set()
        self.calls.append((time.monotonic_ns(), call))
        self.in_flight += 1

    def new_client_id(self) -> str:
        return self.venue.new_client_id()

    async def place(self, orders: Sequence[PlaceOrder]) -> list[PlaceResult]:
        self._handed("place")
        try:
            return await self.venue.place(orders)
        finally:
            self.in_flight -= 1

    async def cancel(self, cancels: Sequence[CancelOrder]) -> list[CancelResult]:
        self._handed("cancel")
        try:
            return await self.venue.cancel(cancels)
        finally:
            self.in_flight -= 1

    async def modify(self, modifies: Sequence[ModifyOrder]) -> list[PlaceResult]:
        self._handed("modify")
        try:
            return await self.venue.modify(modifies)
        finally:
            self.in_flight -= 1

    async def order_status(
        self, *, oid: OrderId | None = None, cloid: str | None = None
    ) -> OrderReport | None:
        return await self.venue.order_status(oid=oid, cloid=cloid)


def warm(trading: Trading, mid: float, now: float) -> None:
    """``HISTORY_S`` of synthetic history up to ``now`` through the strategy's own interface: a
    mid a second wiggling around the simulator's, and five trades a second at growing depths."""
    strategy = trading.strategy
    for step in range(HISTORY_S):
        t = now - HISTORY_S + step
        wiggle = mid * (1 + 0.0002 * ((-1) ** step))
        at_ms = int(t * 1000)
        strategy.on_book(Book(COIN, at_ms, (Level(wiggle - 1, 1.0),), (Level(wiggle + 1, 1.0),)), t)
        for depth in range(1, 6):
            side = Side.BUY if step % 2 else Side.SELL
            px = wiggle * (1 + side.sign * depth * 1e-4)
            tid = TradeId(f"bench:{step * 10 + depth}")
            strategy.on_trade(Trade(COIN, side, px, 0.01, at_ms, tid), t)


@attrs.define
class Figures:
    decision: list[float] = attrs.field(factory=list)  # seconds
    ping: list[float] = attrs.field(factory=list)
    sim_work: list[float] = attrs.field(factory=list)
    cpu: list[float] = attrs.field(factory=list)  # this process's CPU time in the span
    to_feed: list[float] = attrs.field(factory=list)  # frame handed -> the feed's stamp
    from_feed: list[float] = attrs.field(factory=list)  # the feed's stamp -> order client
    first_calls: dict[str, int] = attrs.field(factory=dict)
    idle_ticks: int = 0  # ticks after which no order was sent (reconcile kept every order)
    timer_ticks: int = 0  # ticks with a requote on the strategy's timer in them
    order_events: int = 0
    fills: int = 0


async def ping(ws: WebSocketConnection) -> float:
    started = time.monotonic_ns()
    await ws.send_message('{"method":"ping"}')
    while orjson.loads(await ws.get_message()).get("channel") != "pong":
        pass
    return (time.monotonic_ns() - started) / 1e9


async def settle(stamped: StampedVenue, trading: Trading) -> None:
    """Until every order call is answered, no ladder waits and the process is idle."""
    with trio.fail_after(ROUND_TIMEOUT_S):
        while True:
            await trio.testing.wait_all_tasks_blocked(cushion=0.001)
            if stamped.in_flight == 0 and not any(len(box) for box in trading.mailboxes):
                return
            await trio.sleep(0.0005)


async def run_bench(rounds: int, warmup: int) -> Figures:
    figures = Figures()
    # The account is known before anything runs: the simulator's faucet funds it at start.
    config = bench_config("http://127.0.0.1:1")
    secrets = resolve_secrets(config, {})
    assert secrets.venue_key is not None
    registry = new_registry("bench")
    permissions = PermissionBoard()
    stopping = permissions.slot(Source.SERVICE)
    url: list[str] = []

    def on_events(events: Sequence[object]) -> None:
        figures.order_events += len(events)

    def on_fill(fill: Fill) -> None:
        figures.fills += 1
        if portfolio.apply(fill):
            trading.on_fill(fill)

    adapter = build_adapter(
        config.venue,
        config.feeds,
        venue_url=lambda: url[0] if url else None,
        signing_key=secrets.venue_key,
        registry=registry,
        killed=lambda: False,
        on_fill=on_fill,
        on_order_events=on_events,
        on_feed_state=lambda feed, state: None,
        on_startup=lambda account: portfolio.adopt_venue_positions(account),
        rate_limit=config.rate_limit,
    )

    def instrument(coin: str) -> Instrument:
        assert adapter.client is not None
        return adapter.client.instrument(coin)

    portfolio = Portfolio(config.strategy.symbols, instrument)
    stamped: list[StampedVenue] = []
    routers: list[OrderRouter] = []
    strategy = build_strategy(
        config.strategy,
        StrategyContext(
            permissions=permissions,
            portfolio=portfolio,
            instruments=instrument,
            live_orders=lambda coin: sum(
                1 for order in adapter.dispatcher.registry.live() if order.coin == coin
            ),
            registry=registry,
        ),
    )
    legs = LegExecutor(lambda: routers[0] if routers else None, adapter.dispatcher, instrument)
    trading = Trading(
        strategy,
        config.executor,
        adapter,
        registry,
        permissions,
        CancelAll(lambda: adapter.client),
        config.pretrade,
        portfolio=portfolio,
        legs=legs,
        dispatcher=adapter.dispatcher,
        router=lambda: routers[0] if routers else None,
    )

    async def record(kind: str, data: dict[str, object]) -> None:
        return None

    command = [sys.executable, str(HERE / Path(__file__).name), "--serve-sim", adapter.account]
    async with trio.open_nursery() as outer:
        process = await outer.start(
            partial(
                trio.run_process,
                command,
                env=checkout_environment(),
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                check=False,
            )
        )
        sim = SimProcess(process)
        sim_url, sim_mid = (await sim.line()).split()
        url.append(sim_url)
        async with trio.open_nursery() as nursery:
            await nursery.start(adapter.run_user)
            await nursery.start(
                adapter.run_execution, record, OrderAuditor(config.executor.audit, registry)
            )
            real = adapter.router
            assert real is not None
            venue = StampedVenue(real.venue)
            stamped.append(venue)
            routers.append(
                OrderRouter(
                    real.dispatcher,
                    venue,
                    real.emit,
                    real.now_ms,
                    landing_window_ms=real.landing_window_ms,
                )
            )
            await nursery.start(trading.run_strategy)
            # Before the first live book: the estimators take their samples in time order.
            warm(trading, float(sim_mid), trio.current_time())
            # The feed stamps a frame's arrival on Trio's clock (mm.clock.monotonic_ns): the
            # same CLOCK_MONOTONIC as time.monotonic_ns, shifted by Trio's random offset.
            trio_offset_ns = clock.monotonic_ns() - time.monotonic_ns()
            await nursery.start(adapter.run_market)
            for slot in trading.slots():
                await nursery.start(slot.run)
            with trio.fail_after(ROUND_TIMEOUT_S):
                await adapter.bus.wait_newer(COIN, 0)
                assert adapter.user_stream is not None
                await adapter.user_stream.synced.wait()
            async with open_websocket_url(url[0].replace("http", "ws", 1) + "/ws") as ws:
                await ws.get_message()  # the greeting
                ticks = 0
                while len(figures.decision) < rounds:
                    ticks += 1
                    await settle(venue, trading)
                    round_trip = await ping(ws)
                    venue.clear()
                    await sim.tick()
                    cpu = time.process_time_ns()  # after the pipe's write: not mm's work
                    # The simulator's report is read once the tick's orders are out: reading
                    # the pipe meanwhile would put this harness's work in the span.
                    with trio.move_on_after(FIRST_CALL_WAIT_S):
                        await venue.called.wait()
                    await settle(venue, trading)
                    written, work = await sim.ticked()
                    if any(at < written for at, _ in venue.calls):
                        # Orders sent before the frame was out: a requote on the strategy's
                        # timer (strategy.accumulator.max_age_s), not this tick's.
                        figures.timer_ticks += 1
                        continue
                    if not venue.calls:
                        figures.idle_ticks += 1
                        if figures.idle_ticks > MAX_IDLE_SHARE * ticks + 10:
                            raise SystemExit(f"{figures.idle_ticks} of {ticks} ticks sent nothing")
                        continue
                    if ticks <= warmup:
                        continue
                    handed, call = venue.calls[0]
                    figures.cpu.append((venue.first_cpu_ns - cpu) / 1e9)
                    figures.ping.append(round_trip)
                    figures.decision.append((handed - written) / 1e9)
                    book = adapter.bus.latest(COIN)
                    if book is not None and book.received_ns:  # the feed's arrival stamp
                        arrived = book.received_ns - trio_offset_ns
                        figures.to_feed.append((arrived - written) / 1e9)
                        figures.from_feed.append((handed - arrived) / 1e9)
                    figures.sim_work.append(work / 1e9)
                    figures.first_calls[call] = figures.first_calls.get(call, 0) + 1
            # As mm stops: halted first, so the strategy task's exit does not cancel again.
            stopping.set(Grant(Permitted.HALTED, "the benchmark is done"))
            await trading.stop()
            nursery.cancel_scope.cancel()
        await sim.close()
    return figures


# --- the report -----------------------------------------------------------------------------


def percentile(values: Sequence[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * q))]


def report(figures: Figures, warmup: int) -> None:
    decision, baseline = figures.decision, figures.ping
    print(
        f"decision latency through mm's pipeline, {len(decision)} ticks, each with its ping "
        f"({warmup} warm-up rounds not counted)"
    )
    print("  (frame handed to the simulator's server -> socket -> WebSocket -> market feed ->")
    print("   book bus -> strategy, in the feed's task -> mailbox -> slot: reconcile, budget,")
    print("   pre-trade -> order router -> order client)")
    rows = [("baseline: loopback WebSocket ping round trip", baseline), ("decision", decision)]
    for label, values in rows:
        p50, p99 = statistics.median(values) * 1e6, percentile(values, 0.99) * 1e6
        print(f"  {label:<46} p50 {p50:8.1f} us  p99 {p99:8.1f} us")
    ratio50 = statistics.median(decision) / statistics.median(baseline)
    ratio99 = percentile(decision, 0.99) / percentile(baseline, 0.99)
    print(f"  decision / ping: p50 {ratio50:.2f}x (target <= 1.5x), p99 {ratio99:.2f}x (<= 3x)")
    if figures.from_feed:
        print(
            "  of which, at the feed's arrival stamp (Book.received_ns): frame handed -> stamp "
            f"p50 {statistics.median(figures.to_feed) * 1e6:.1f} us; stamp -> order client "
            f"p50 {statistics.median(figures.from_feed) * 1e6:.1f} us, "
            f"p99 {percentile(figures.from_feed, 0.99) * 1e6:.1f} us"
        )
    print(
        f"  this process's CPU time in the span (what other load cannot inflate): p50 "
        f"{statistics.median(figures.cpu) * 1e6:.1f} us, "
        f"p99 {percentile(figures.cpu, 0.99) * 1e6:.1f} us"
    )
    work = figures.sim_work
    print(
        f"  apart, the simulator's own work per tick (not in the span): p50 "
        f"{statistics.median(work) * 1e6:.1f} us, p99 {percentile(work, 0.99) * 1e6:.1f} us"
    )
    calls = ", ".join(f"{name} {count}" for name, count in sorted(figures.first_calls.items()))
    print(f"  first order call of each tick: {calls}; order events {figures.order_events}")
    print(
        f"  not counted: ticks that sent nothing {figures.idle_ticks}, ticks with a requote on "
        f"the strategy's timer {figures.timer_ticks}; fills {figures.fills}"
    )


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5000, help="measured ticks (>= 5,000)")
    parser.add_argument("--warmup", type=int, default=300, help="unmeasured ticks first")
    parser.add_argument("--quick", action="store_true", help="10 ticks: check it runs")
    parser.add_argument("--serve-sim", metavar="ACCOUNT", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    logger.remove()  # the components' INFO lines would interleave with the figures
    logger.add(sys.stderr, level="WARNING")
    if args.serve_sim:
        trio.run(serve_sim, args.serve_sim)
        return
    rounds, warmup = (10, 2) if args.quick else (args.rounds, args.warmup)
    load = os.getloadavg()[0]
    figures = trio.run(run_bench, rounds, warmup)
    report(figures, warmup)
    print(f"  load average (1 min): {load:.2f} at the start, {os.getloadavg()[0]:.2f} at the end")


if __name__ == "__main__":
    main()
