"""Benchmark: tick-to-order latency through the real pipeline, against the simulator on loopback.

A replayed stream of book updates: each round moves the simulator's mid, requotes its
liquidity and pushes the l2Book frame at once. The frame travels the real path: the WebSocket
manager, the market feed (decode, data-quality checks, the book bus), the GLFT quoter, an
executor slot (reconciliation against the live orders), until the orders are handed to the
order client. The clock starts when the simulator pushes the frame, so the figure includes the
one-way loopback transit (about half the baseline). Printed: p50 and p99 of that tick-to-order
time, next to the baseline measured in the same run, a bare WebSocket ping round trip to the
same simulator. The quoter is warmed
up with synthetic history first so that every replayed book produces quotes.
Run: ``python benchmarks/bench_tick_to_order.py``.
"""

from __future__ import annotations

import statistics
import time

import orjson
import trio
from prometheus_client import CollectorRegistry
from trio_websocket import open_websocket_url

from mm.book import Book, BookBus
from mm.execution.dispatch import Dispatcher
from mm.execution.orders import OrderRouter
from mm.execution.slots import ExecutorConfig, ExecutorSlot, Mailbox, Signal
from mm.feeds.market import MarketFeed
from mm.model import Level, Side, Trade
from mm.strategies.market_maker.accumulator import AccumulatorConfig
from mm.strategies.market_maker.engine import StrategyConfig, SymbolQuoter
from mm.venues.hyperliquid.client import HyperliquidClient
from mm.venues.hyperliquid.market_stream import HyperliquidMarketStream
from mm.venues.hyperliquid.metrics import AdapterMetrics
from mm.venues.hyperliquid.rate_limit import RateLimitConfig, RateLimiter
from mm.venues.hyperliquid.rest import RestTransport
from mm.venues.hyperliquid.signing import L1Signer
from mm.venues.hyperliquid.ws import WsConnection
from mm.venues.sim.config import MarketConfig, SimConfig
from mm.venues.sim.venue import SimVenue

ROUNDS = 300
KEY = "0x" + "3c" * 32


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * q))]


def warm(quoter: SymbolQuoter, venue: SimVenue, now: float) -> None:
    """Synthetic history: mids a second apart and trades at growing depths."""
    bus_book = venue.l2_snapshot(0)
    mid = (float(bus_book["levels"][0][0]["px"]) + float(bus_book["levels"][1][0]["px"])) / 2
    for step in range(60):
        t = now - 60 + step
        wiggle = mid * (1 + 0.0001 * ((-1) ** step))
        book = Book("BTC", int(t * 1000), (Level(wiggle - 1, 1.0),), (Level(wiggle + 1, 1.0),))
        quoter.on_book(book, t)
        for depth in range(1, 6):
            side = Side.BUY if step % 2 else Side.SELL
            px = wiggle * (1 + side.sign * depth * 1e-4)
            quoter.on_trade(Trade("BTC", side, px, 0.01, int(t * 1000), step * 10 + depth), t)


async def ws_round_trips(url: str, rounds: int) -> list[float]:
    ws_url = url.replace("http", "ws", 1) + "/ws"
    timings = []
    async with open_websocket_url(ws_url) as ws:
        await ws.get_message()  # greeting
        for _ in range(rounds):
            started = time.perf_counter()
            await ws.send_message('{"method":"ping"}')
            while orjson.loads(await ws.get_message()).get("channel") != "pong":
                pass
            timings.append(time.perf_counter() - started)
    return timings


async def tick_to_order() -> tuple[list[float], list[float]]:
    quiet = MarketConfig(step_ms=3_600_000, taker_a=0.0, volatility_bps=0.0)
    # No commit delay: the figure ends when the orders are handed to the client, before the
    # venue's block; each round would only wait 0.2-0.5 s for the answers it does not measure.
    config = SimConfig(
        coins=("BTC",),
        market=quiet,
        book_interval_ms=3_600_000,
        commit_delay_min_ms=0.0,
        commit_delay_max_ms=0.0,
    )
    venue = SimVenue(
        config,
        fund_at_start=(L1Signer(KEY).address,),  # the faucet funds the account it trades for
    )
    strategy = StrategyConfig(
        symbols=("BTC",), accumulator=AccumulatorConfig(min_interval_s=0.0, mid_threshold_bps=0.0)
    )
    async with trio.open_nursery() as nursery:
        await nursery.start(venue.run)
        assert venue.url is not None
        baseline = await ws_round_trips(venue.url, ROUNDS)
        registry = CollectorRegistry()
        market_ws, user_ws = WsConnection(venue.url, name="market"), WsConnection(venue.url)
        await nursery.start(market_ws.run)
        await nursery.start(user_ws.run)
        bus = BookBus()
        trades_send, _trades = trio.open_memory_channel[Trade](10_000)
        feed = MarketFeed(HyperliquidMarketStream(market_ws), ["BTC"], bus, trades_send)
        await nursery.start(feed.run)
        signer = L1Signer(KEY)
        rest = RestTransport(venue.url)
        client = HyperliquidClient(
            rest=rest,
            ws=user_ws,
            signer=signer,
            account=signer.address,
            mainnet=False,
            limiter=RateLimiter(RateLimitConfig(enabled=False)),
            metrics=AdapterMetrics(registry),
        )
        await client.instruments()
        dispatcher = Dispatcher()
        router = OrderRouter(dispatcher, client, lambda events: None, lambda: 0)
        samples: list[float] = []
        pushed_at = 0.0

        def sending(signal: Signal) -> None:
            samples.append(time.perf_counter() - pushed_at)

        slot = ExecutorSlot(
            0, Mailbox(), lambda: router, dispatcher, ExecutorConfig(), on_sending=sending
        )
        quoter = SymbolQuoter(client.instrument("BTC"), strategy)
        warm(quoter, venue, trio.current_time())
        version = bus.version("BTC")
        for round_ in range(ROUNDS):
            venue.market.mid[0] *= 1 + (0.0003 if round_ % 2 else -0.0003)
            venue.market.step(venue.now_ms(), 0.0)  # requote the liquidity at the new mid
            venue.publish_events()
            pushed_at = time.perf_counter()
            venue.publish_books()  # the replayed tick: one l2Book frame, now
            version, book = await bus.wait_newer("BTC", version)
            quoter.on_book(book, trio.current_time())
            plan = quoter.quote(trio.current_time())
            signal = Signal("BTC", tuple(plan.orders), 0.1, book.received_ms)
            await slot.execute(signal)
        await rest.aclose()
        nursery.cancel_scope.cancel()
    return samples, baseline


def main() -> None:
    samples, baseline = trio.run(tick_to_order)
    if not samples:
        raise SystemExit("no orders were sent: the quoter never quoted")
    print(f"tick-to-order through the real pipeline, {len(samples)} of {ROUNDS} ticks quoted")
    print("  (frame pushed -> WebSocket -> feed -> bus -> GLFT quoter -> slot -> order client)")
    rows = [
        ("baseline, bare loopback WebSocket ping round trip", baseline),
        ("tick to order", samples),
    ]
    for label, values in rows:
        p50, p99 = statistics.median(values) * 1e6, percentile(values, 0.99) * 1e6
        print(f"  {label:<52} p50 {p50:8.1f} us  p99 {p99:8.1f} us")


if __name__ == "__main__":
    main()
