"""Benchmark: the simulator's matching engine under a realistic mix of operations.

Run with ``python benchmarks/bench_engine.py [--n N] [--repeat R] [--seed S] [--profile]``
(``--quick``: 2,000 operations once, to check it runs).
It builds an engine with BTC and ETH, a system user (the synthetic market) and four funded
market makers plus a funded taker, seeds 30 resting levels a side per asset, then replays a
pre-generated script of operations around a slowly drifting mid:

- 60% place: passive Alo/Gtc quotes 1-30 steps from the mid, most within a few steps (Gtc
  may cross after a drift, Alo is then rejected);
- 25% cancel of a random live order of the user (a client knows from its user stream which of
  its orders still rest; with none left, a stale oid: a MISSING_ORDER, as live);
- 10% modify (cancel-and-replace) of a random live order to a new price near the mid;
- 5% aggressive Ioc by the funded taker that sweeps up to 10 steps through the mid.

With this flow each book holds a steady one to a few hundred resting orders.

The script and its requests are built before timing, and events are drained every 256
operations, as the shell would. It prints the median rate over the repetitions, two baselines
measured in the same run (the same loop driving a no-op engine, and bare ``OrderBook``
insert/remove), and per-operation latency percentiles from a separate, timed-per-op pass.
"""

from __future__ import annotations

import argparse
import cProfile
import gc
import pstats
import random
import statistics
import time
from collections.abc import Callable, Sequence
from typing import Any

import attrs

from mm.venues.sim.assets import AssetSpec
from mm.venues.sim.book import Order, OrderBook
from mm.venues.sim.engine import Engine, OrderRequest, Resting

BTC = AssetSpec(0, "BTC", 5)
ETH = AssetSpec(1, "ETH", 4)
SPECS = (BTC, ETH)
# Mid in ticks (BTC tenths of a dollar, ETH cents), the quoting step in ticks, a quote's lots.
MIDS = (500_000, 300_000)
STEPS = (10, 10)  # $1 for BTC, $0.10 for ETH
QUOTE_LOTS = ((20_00, 80_00), (1_00_00, 4_00_00))  # 0.002-0.008 BTC, 1-4 ETH
MKT = "mkt"
MAKERS = ("mm0", "mm1", "mm2", "mm3")
TAKER = "taker"
PLACE, CANCEL, MODIFY, SWEEP = range(4)
KIND_NAMES = ("place", "cancel", "modify", "ioc sweep")
DRAIN_EVERY = 256
T0 = 1_700_000_000_000


@attrs.frozen
class Op:
    kind: int
    user: str
    pick: float  # which known order a cancel or modify targets, in [0, 1)
    request: OrderRequest | None


def distance(rng: random.Random) -> int:
    """Steps from the mid: mostly close, a tail out to 30."""
    return min(1 + int(rng.expovariate(0.3)), 30)


def quote(asset: int, mid: int, is_buy: bool, distance: int, lots: int, tif: str) -> OrderRequest:
    spec = SPECS[asset]
    px = mid - distance * STEPS[asset] if is_buy else mid + distance * STEPS[asset]
    return OrderRequest(asset, is_buy, spec.px_str(px), spec.sz_str(lots), tif=tif)


def make_script(n: int, seed: int) -> list[Op]:
    rng = random.Random(seed)
    mids = list(MIDS)
    script = []
    for index in range(n):
        if index % 500 == 0:  # the mid drifts a step now and then
            for asset in (0, 1):
                mids[asset] += rng.choice((-1, 0, 1)) * STEPS[asset]
        asset = rng.randrange(2)
        low, high = QUOTE_LOTS[asset]
        roll = rng.random()
        if roll < 0.60:
            user = MKT if rng.random() < 0.2 else rng.choice(MAKERS)
            tif = "Alo" if rng.random() < 0.7 else "Gtc"
            is_buy = rng.random() < 0.5
            request = quote(asset, mids[asset], is_buy, distance(rng), rng.randint(low, high), tif)
            script.append(Op(PLACE, user, 0.0, request))
        elif roll < 0.85:
            script.append(Op(CANCEL, rng.choice((MKT, *MAKERS)), rng.random(), None))
        elif roll < 0.95:
            is_buy = rng.random() < 0.5
            request = quote(
                asset, mids[asset], is_buy, distance(rng), rng.randint(low, high), "Alo"
            )
            script.append(Op(MODIFY, rng.choice((MKT, *MAKERS)), rng.random(), request))
        else:
            is_buy = rng.random() < 0.5
            request = quote(asset, mids[asset], not is_buy, 10, 5 * high, "Ioc")
            request = attrs.evolve(request, is_buy=is_buy)  # crosses 10 steps past the mid
            script.append(Op(SWEEP, TAKER, 0.0, request))
    return script


def build_engine() -> Engine:
    engine = Engine(SPECS, system_users={MKT})
    for user in (*MAKERS, TAKER):
        engine.fund(user, 1e12)
    for asset in (0, 1):
        low, high = QUOTE_LOTS[asset]
        for distance in range(1, 31):
            for is_buy in (True, False):
                for copy in range(3):
                    lots = low + (high - low) * copy // 2
                    engine.place(MKT, quote(asset, MIDS[asset], is_buy, distance, lots, "Gtc"), T0)
    engine.events.clear()
    return engine


class _Everything(dict[int, Order]):
    def __contains__(self, key: object) -> bool:
        return True


@attrs.define
class _NoOpBook:
    orders: dict[int, Order] = attrs.field(factory=_Everything)


class NoOpEngine:
    """The engine's calls, doing nothing: measures the driver loop itself."""

    def __init__(self) -> None:
        self.events: list[Any] = []
        self.books = [_NoOpBook(), _NoOpBook()]
        self._resting = Resting(1, None)

    def place(self, user: str, request: OrderRequest, now: int) -> Resting:
        return self._resting

    def cancel(self, user: str, asset: int, oid: int, now: int) -> None:
        return None

    def modify(self, user: str, target: int, request: OrderRequest, now: int) -> Resting:
        return self._resting


def drive(engine: Any, script: list[Op], latencies: list[int] | None = None) -> None:
    """Replay ``script``; with ``latencies``, record each operation's nanoseconds."""
    known: dict[str, list[tuple[int, int]]] = {user: [] for user in (MKT, *MAKERS, TAKER)}
    books = [book.orders for book in engine.books]
    clock = time.perf_counter_ns
    now = T0
    for index, op in enumerate(script):
        now += 1
        target = None
        if op.kind == CANCEL or op.kind == MODIFY:
            # A random live order of the user; orders found filled are forgotten on the way.
            orders = known[op.user]
            while orders:
                slot = int(op.pick * len(orders))
                asset, oid = orders[slot]
                orders[slot] = orders[-1]
                orders.pop()
                if oid in books[asset]:
                    target = (asset, oid)
                    break
        start = clock() if latencies is not None else 0
        if op.kind == PLACE or op.kind == SWEEP:
            assert op.request is not None
            result = engine.place(op.user, op.request, now)
            if isinstance(result, Resting):
                known[op.user].append((op.request.asset, result.oid))
        elif op.kind == CANCEL:
            asset, oid = target or (0, 0)
            engine.cancel(op.user, asset, oid, now)
        else:
            assert op.request is not None
            asset, oid = target or (op.request.asset, 0)
            request = op.request
            if asset != request.asset:
                request = attrs.evolve(request, asset=asset, px=SPECS[asset].px_str(MIDS[asset]))
            result = engine.modify(op.user, oid, request, now)
            if isinstance(result, Resting):
                known[op.user].append((asset, result.oid))
        if latencies is not None:
            latencies.append(clock() - start)
        if index % DRAIN_EVERY == 0:
            engine.events.clear()


def book_baseline(n: int, seed: int, depth: int = 500) -> float:
    """Seconds for ``n`` bare OrderBook operations on a book of about ``depth`` orders.

    Alternately inserts a new order near the mid and, once ``depth`` rest, removes a random one:
    the book's own share of the engine's work, with no validation, accounting or events.
    """
    rng = random.Random(seed)
    orders = []
    for oid in range(1, n // 2 + 1):
        is_buy = rng.random() < 0.5
        px = 500_000 + (-1 if is_buy else 1) * min(1 + int(rng.expovariate(0.3)), 30) * 10
        orders.append(Order(oid, "u", 0, is_buy, px, 5, 5, 0))
    picks = [rng.random() for _ in orders]
    book = OrderBook()
    live: list[int] = []
    start = time.perf_counter()
    for order, pick in zip(orders, picks, strict=True):
        book.insert(order)
        live.append(order.oid)
        if len(live) > depth:
            slot = int(pick * len(live))
            book.remove(live[slot])
            live[slot] = live[-1]
            live.pop()
    return time.perf_counter() - start


def timed(run: Callable[[], None]) -> float:
    start = time.perf_counter()
    run()
    return time.perf_counter() - start


def percentile(sorted_values: list[int], fraction: float) -> float:
    return sorted_values[min(len(sorted_values) - 1, int(fraction * len(sorted_values)))] / 1e3


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--n", type=int, default=200_000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--profile", action="store_true", help="cProfile one repetition")
    parser.add_argument("--quick", action="store_true", help="2,000 operations once")
    args = parser.parse_args(argv)
    if args.quick:
        args.n, args.repeat = 2_000, 1
    script = make_script(args.n, args.seed)
    gc.collect()
    gc.freeze()  # the script is long-lived: keep collector passes over it out of the timings
    counts = [sum(op.kind == kind for op in script) for kind in range(4)]
    mix = ", ".join(
        f"{name} {count / args.n:.0%}" for name, count in zip(KIND_NAMES, counts, strict=True)
    )
    print(f"engine: {args.n:,} operations ({mix}), {args.repeat} repetitions")

    samples = []
    engine = build_engine()  # stays defined with --repeat 0
    for _ in range(args.repeat):
        engine = build_engine()
        start = time.perf_counter()
        drive(engine, script)
        samples.append(time.perf_counter() - start)
    seconds = statistics.median(samples)
    resting = sum(len(book.orders) for book in engine.books)
    trades = engine._next_tid - 1  # tids are handed out consecutively from 1
    print(
        f"  engine              {args.n / seconds:>12,.0f} ops/s  (median {seconds:.3f} s; "
        f"best {args.n / min(samples):,.0f} ops/s)"
    )
    print(f"  after one run: {resting:,} resting orders, {trades:,} trades")

    noop = statistics.median(timed(lambda: drive(NoOpEngine(), script)) for _ in range(args.repeat))
    print(
        f"  baseline: driver loop on a no-op engine {args.n / noop:>12,.0f} ops/s "
        f"({noop / args.n * 1e6:.2f} us/op of the engine figure is the loop)"
    )
    book = statistics.median(book_baseline(args.n, args.seed) for _ in range(args.repeat))
    print(f"  baseline: bare OrderBook insert/remove  {args.n / book:>12,.0f} ops/s")

    latencies: list[int] = []
    pauses: list[float] = []
    started = [0.0]

    def on_gc(phase: str, info: dict[str, int]) -> None:
        if info["generation"] == 2:
            if phase == "start":
                started[0] = time.perf_counter()
            else:
                pauses.append(time.perf_counter() - started[0])

    gc.callbacks.append(on_gc)
    drive(build_engine(), script, latencies)
    gc.callbacks.remove(on_gc)
    by_kind: dict[int, list[int]] = {kind: [] for kind in range(4)}
    for op, latency in zip(script, latencies, strict=True):
        by_kind[op.kind].append(latency)
    latencies.sort()
    print(
        f"  latency per op: p50 {percentile(latencies, 0.5):.1f} us, "
        f"p99 {percentile(latencies, 0.99):.1f} us, max {latencies[-1] / 1e3:.0f} us"
    )
    if pauses:
        print(
            f"    (gen-2 GC passes during this pass: {len(pauses)}, "
            f"longest {max(pauses) * 1e3:.0f} ms: compare with the max)"
        )
    for kind, values in by_kind.items():
        values.sort()
        if values:
            print(
                f"    {KIND_NAMES[kind]:<10} p50 {percentile(values, 0.5):>7.1f} us   "
                f"p99 {percentile(values, 0.99):>7.1f} us"
            )

    if args.profile:
        profiler = cProfile.Profile()
        engine = build_engine()
        profiler.runcall(drive, engine, script)
        pstats.Stats(profiler).sort_stats("tottime").print_stats(20)
    gc.unfreeze()  # a caller in the same process (tests/test_benchmarks.py) collects as before


if __name__ == "__main__":
    main()
