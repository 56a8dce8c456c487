"""Benchmark: the quote path's CPU per cycle, on a steady-state quoter (issue 16, item 2).

One cycle is what the strategy and a slot do for one symbol on a new book, without the I/O:

- **quote**: ``SymbolQuoter.on_book`` then ``quote`` (the estimators, GLFT, the spread chain,
  the ladder's rounding to the instrument's ticks and lots);
- **reconcile**: the symbol's live orders from the dispatcher's registry (``ExecutorSlot``'s
  lookup) and ``reconcile`` against the desired ladder;
- **wire**: the prices and sizes of the orders the plan places or modifies in the venue's wire
  form (``format_px`` / ``format_sz``, as the client builds its order wires).

The quoter is warmed to steady state first: a full volatility window (300 one-second samples),
trades enough for its intensity fit, and a registry holding nine other symbols' live orders
and thousands of retained terminal ones, as a service that has run for a while holds them. Each
cycle moves the mid by a random step and advances 0.25 s, so every fourth cycle takes a
volatility sample and evicts one; the plan's places, modifies and cancels are then acknowledged
through the dispatcher (untimed), so live orders stay at steady state too.

Baselines, measured in the same run and interleaved with the cycles, since the machine is
shared and absolute figures are noisy:

- **reference**: a fixed pure-Python computation (sorting and summing 300 floats), the unit
  the cycle is given in, so that runs under different load compare;
- **old sigma**: the volatility estimate as the O(window) two-pass formula computed it before
  issue 16, on the estimator's current samples;
- **Decimal px**: one price rounded as the Decimal path did it before issue 16
  (``Decimal(repr(x))`` scaled to ticks and rounded), beside **int px**, the path used now
  (``mm.venues.hyperliquid.numbers.float_ticks`` when present).

Run: ``python benchmarks/bench_quote.py [--cycles N] [--quick] [--profile]``. ``--profile`` runs the
cycles once more under cProfile and prints the top functions by own time.
"""

from __future__ import annotations

import argparse
import cProfile
import itertools
import math
import pstats
import random
import statistics
import time
from collections.abc import Callable
from decimal import Decimal
from typing import Any

from mm.book import Book
from mm.execution.dispatch import Dispatcher
from mm.execution.reconcile import Plan, reconcile
from mm.execution.slots import ExecutorConfig, ExecutorSlot, Mailbox
from mm.model import ModifyOrder, OrderId, PlaceOrder, Resting, Side, Tif, Trade, TradeId
from mm.strategies.market_maker.engine import StrategyConfig, SymbolQuoter
from mm.venues.hyperliquid import numbers, wire
from mm.venues.hyperliquid.instruments import AssetMeta, instrument_of

COIN = "BTC"
SZ_DECIMALS = 5
MID = 97_000.0
OTHER_COINS = tuple(f"C{i}" for i in range(9))
BOOK_DEPTH = 10  # levels a side, the feed's default depth (feeds.market.book_depth)
TERMINAL_ORDERS = 5_000  # retained terminal orders in the registry (the default keeps 10,000)


class Cycle:
    """A steady-state quoter, a dispatcher with a realistic registry, and one cycle's work."""

    def __init__(self, seed: int) -> None:
        self.random = random.Random(seed)
        self.instrument = instrument_of(AssetMeta(0, COIN, SZ_DECIMALS, 50))
        self.config = StrategyConfig(symbols=(COIN,))
        self.quoter = SymbolQuoter(self.instrument, self.config)
        self.dispatcher = Dispatcher()
        self.slot = ExecutorSlot(0, Mailbox(), lambda: None, self.dispatcher, ExecutorConfig())
        self.tick = float(self.instrument.price_increment)
        self.now = 1_000.0
        self.mid = MID
        self._ids = itertools.count(1)
        self._warm()

    def _cloid(self) -> str:
        return f"0x{next(self._ids):032x}"

    def _oid(self) -> OrderId:
        return OrderId(f"hyperliquid:{next(self._ids)}")

    def _book(self) -> Book:
        half = self.tick * 5
        # As the feed parses them: (px, sz, n) tuples, as deep as it reads (book_depth).
        bids = tuple((self.mid - half - i * self.tick * 10, 1.0, 1) for i in range(BOOK_DEPTH))
        asks = tuple((self.mid + half + i * self.tick * 10, 1.0, 1) for i in range(BOOK_DEPTH))
        return Book(COIN, int(self.now * 1000), bids, asks)

    def _warm(self) -> None:
        """A full volatility window, an intensity fit, other symbols' orders, terminal ones."""
        quoter = self.quoter
        start = self.now - self.config.volatility.window_s
        for step in range(int(self.config.volatility.window_s)):
            t = start + step
            self.mid *= 1 + self.random.gauss(0.0, 2e-4)
            quoter.on_book(self._book(), t)
            for depth in range(1, 6):
                side = Side.BUY if (step + depth) % 2 else Side.SELL
                px = self.mid * (1 + side.sign * depth * 1e-4)
                tid = TradeId(f"hyperliquid:{step * 10 + depth}")
                quoter.on_trade(Trade(COIN, side, px, 0.01, int(t * 1000), tid), t)
        quoter.on_book(self._book(), self.now)
        now_ms = int(self.now * 1000)
        for coin in OTHER_COINS:
            for level in range(3):
                for side in Side:
                    self._rest(PlaceOrder(coin, side, 10.0 + level, 1.0, Tif.ALO, self._cloid()))
        for _ in range(TERMINAL_ORDERS):
            cloid = self._cloid()
            self.dispatcher.submit(PlaceOrder("C0", Side.BUY, 1.0, 1.0, Tif.ALO, cloid), now_ms)
            self.dispatcher.on_place_ack(cloid, Resting(self._oid(), cloid), now_ms)
            self.dispatcher.request_cancel(cloid, now_ms)
            self.dispatcher.on_cancel_ack(cloid, None, now_ms)
        for _ in range(20):  # the symbol's own orders in place
            self.apply(self.run_quote(), self.run_reconcile(self.run_quote()))

    def _rest(self, order: PlaceOrder) -> None:
        now_ms = int(self.now * 1000)
        self.dispatcher.submit(order, now_ms)
        self.dispatcher.on_place_ack(order.cloid, Resting(self._oid(), order.cloid), now_ms)

    def step(self) -> None:
        """The market moves: a new mid a quarter second later."""
        self.now += 0.25
        self.mid *= 1 + self.random.gauss(0.0, 1e-4)

    def run_quote(self) -> Any:
        self.quoter.on_book(self._book(), self.now)
        return self.quoter.quote(self.now)

    def run_reconcile(self, plan: Any) -> Plan:
        live = self.slot.live_orders(COIN)
        return reconcile(plan.orders, live, self.slot.config.reconcile, tick=self.tick)

    def run_wire(self, plan: Plan) -> int:
        count = 0
        for desired in itertools.chain(plan.place, (want for _, want in plan.modify)):
            wire.format_px(desired.px, SZ_DECIMALS, desired.side)
            wire.format_sz(desired.sz, SZ_DECIMALS)
            count += 1
        return count

    def apply(self, _: Any, plan: Plan) -> None:
        """The venue answers the plan at once (untimed): live orders stay at steady state."""
        now_ms = int(self.now * 1000)
        dispatcher = self.dispatcher
        for order in plan.cancel:
            dispatcher.request_cancel(order.cloid, now_ms)
            dispatcher.on_cancel_ack(order.cloid, None, now_ms)
        for live, want in plan.modify:
            modify = PlaceOrder(COIN, want.side, want.px, want.sz, Tif.ALO, live.cloid)
            dispatcher.request_modify(ModifyOrder(modify), now_ms)
            dispatcher.on_modify_ack(live.cloid, Resting(self._oid(), live.cloid), now_ms)
        for want in plan.place:
            self._rest(PlaceOrder(COIN, want.side, want.px, want.sz, Tif.ALO, self._cloid()))

    def old_sigma(self) -> float | None:
        """The volatility estimate by the formula before issue 16: two passes over the window."""
        estimator = self.quoter.volatility
        values = [mid for _, mid in estimator._samples]
        count = len(values) - 1
        if count < estimator.config.min_samples:
            return None
        diffs = [b - a for a, b in itertools.pairwise(values)]
        mean = math.fsum(diffs) / count
        variance = math.fsum((d - mean) ** 2 for d in diffs) / (count - 1)
        return math.sqrt(variance / estimator.config.sample_interval_s)


def reference(values: list[float]) -> float:
    """The fixed unit of work the cycle is measured in."""
    return math.fsum(sorted(values))


def decimal_px(px: float) -> int:
    """A price in ticks by the Decimal path before issue 16 (BTC, 1 decimal, rounding up)."""
    exact = Decimal(repr(px)).scaleb(numbers.px_decimals(SZ_DECIMALS))
    return numbers.round_ticks(exact, numbers.px_decimals(SZ_DECIMALS), up=True)


def int_px_path() -> Callable[[float], int] | None:
    """The integer path, when this tree has it."""
    float_ticks = getattr(numbers, "float_ticks", None)
    if float_ticks is None:
        return None
    decimals = numbers.px_decimals(SZ_DECIMALS)

    def run(px: float) -> int:
        result: int = float_ticks(px, decimals, up=True)
        return result

    return run


def timed(fn: Callable[..., Any], *args: Any) -> tuple[float, Any]:
    started = time.perf_counter()
    result = fn(*args)
    return time.perf_counter() - started, result


def measure(cycle: Cycle, cycles: int) -> dict[str, list[float]]:
    rows: dict[str, list[float]] = {
        name: []
        for name in (
            "reference",
            "quote",
            "reconcile",
            "wire",
            "cycle",
            "old sigma",
            "Decimal px",
            "int px",
        )
    }
    ref_values = [cycle.random.random() for _ in range(300)]
    int_px = int_px_path()
    for _ in range(cycles):
        cycle.step()
        rows["reference"].append(timed(reference, ref_values)[0])
        t_quote, plan = timed(cycle.run_quote)
        t_rec, rec = timed(cycle.run_reconcile, plan)
        t_wire, _ = timed(cycle.run_wire, rec)
        rows["quote"].append(t_quote)
        rows["reconcile"].append(t_rec)
        rows["wire"].append(t_wire)
        rows["cycle"].append(t_quote + t_rec + t_wire)
        rows["old sigma"].append(timed(cycle.old_sigma)[0])
        px = cycle.mid * (1 + cycle.random.random() * 1e-3)
        rows["Decimal px"].append(timed(decimal_px, px)[0])
        if int_px is not None:
            rows["int px"].append(timed(int_px, px)[0])
        cycle.apply(plan, rec)
    return rows


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cycles", type=int, default=5_000)
    parser.add_argument("--quick", action="store_true", help="50 cycles: that it runs, no figure")
    parser.add_argument("--seed", type=int, default=16)
    parser.add_argument("--profile", action="store_true")
    args = parser.parse_args(argv)
    if args.quick:
        args.cycles = 50
    cycle = Cycle(args.seed)
    rows = measure(cycle, args.cycles)
    ref = statistics.median(rows["reference"])
    samples = cycle.quoter.volatility.sample_count
    print(f"quote path, {args.cycles} cycles, steady state ({samples} volatility samples)")
    print(f"  {'stage':<12} {'p50 us':>9} {'p99 us':>9} {'p50 / reference':>16}")
    for name, values in rows.items():
        if not values:
            continue
        ordered = sorted(values)
        p50 = statistics.median(ordered)
        p99 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]
        print(f"  {name:<12} {p50 * 1e6:9.2f} {p99 * 1e6:9.2f} {p50 / ref:16.3f}")
    if args.profile:
        profiler = cProfile.Profile()
        profiler.enable()
        for _ in range(args.cycles):
            cycle.step()
            plan = cycle.run_quote()
            rec = cycle.run_reconcile(plan)
            cycle.run_wire(rec)
            cycle.apply(plan, rec)
        profiler.disable()
        pstats.Stats(profiler).sort_stats("tottime").print_stats(25)


if __name__ == "__main__":
    main()
