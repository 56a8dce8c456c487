"""Benchmark: triangular arbitrage's evaluation throughput at KuCoin's size (issue 18).

A synthetic but KuCoin-shaped symbol graph: about 1,000 pairs (``--pairs``) over about 300
currencies (``--currencies``), every base quoted in USDT and, each with its own odds, in BTC,
USDC, ETH and KCS, plus the cross pairs among those quotes (BTC-USDT, ETH-BTC, KCS-USDT, ...).
Each currency has a dollar price (log-uniform from 0.0001 to 1,000); a pair's mid is the ratio
of its currencies' prices moved by a few bps at random, so that some triangles show a profit.
Instruments follow KuCoin's grid: a tick of five significant figures at the mid, a lot worth
about a cent, a minimum size worth about ten cents, a minimum funds of 0.1 USD in the quote, a
funds increment (``quoteIncrement``) of a hundredth of a cent; a taker fee of 0.1 % on every
pair. Books hold 20 levels a side (``--levels``), one to five ticks apart, each worth 50 to
2,000 USD. The evaluation terms are those of ``[triarb]``'s defaults: a start volume of 100 in
the primary (primaries USDT, USDC and BTC: BTC triangles are depth-limited), books up to 500 ms
old, a minimum profit of 5 bps. Every book is stamped with the same venue time, the evaluation's
now: none is stale, so every evaluation passes the gates and walks its legs (the costly case).

What it measures, in this order:

- **discovery**: ``triangles.discover`` then ``index`` over the instruments: time (median of
  ``--discoveries`` runs), the triangles found per primary, and how many a pair is in;
- **one triangle**: ``triangles.evaluate`` of one triangle through BTC-USDT, on three views
  just made of its books (as a view is when its update arrives), then again on the same views
  (as later triangles of the same update read the books an earlier one read);
- **book update**: ``signals.Evaluator.on_book`` for a new BTC-USDT book (the busiest pair: all
  its affected triangles evaluated, signals sent down a one-slot channel and the rest dropped),
  p50 and p99 per update and evaluations per second; then the same for a pair drawn at random
  from all pairs at each update (most pairs are in few triangles).

Baselines, measured in the same run and interleaved with the evaluations (the machine is shared,
so the ratios are what compare across runs):

- **orjson l2**: ``orjson.loads`` of a level-2 message of the same depth (KuCoin's
  ``/spotMarket/level2Depth50`` shape: decimal strings), the least a book update costs;
- **float walk**: for each triangle of the same update, the three books' levels walked in floats
  (price times size summed to the start volume): the walk the evaluation does, without its
  ``Decimal`` exactness, increments, minimums and fees.

Run: ``python benchmarks/bench_triarb.py [--quick] [--updates N] [--profile]``. ``--profile`` runs
the BTC-USDT updates once more under cProfile and prints the top functions by own time.

Fails: an exception from the code measured ends the run (a ``KeyError`` for a triangle whose
symbol has no instrument would be a bug in the generator here); nothing is retried.
"""

from __future__ import annotations

import argparse
import contextlib
import cProfile
import math
import pstats
import random
import statistics
import time
from collections.abc import Callable, Sequence
from decimal import Decimal
from typing import Any

import orjson
import trio

from mm.model import Instrument, PriceLevel, Side
from mm.strategies.triarb.legs import Triangle
from mm.strategies.triarb.signals import Evaluator, Signal
from mm.strategies.triarb.triangles import (
    BookView,
    Evaluation,
    Terms,
    affected,
    discover,
    evaluate,
    index,
)

QUOTES = {"USDT": 1.0, "USDC": 1.0, "BTC": 97_000.0, "ETH": 3_600.0, "KCS": 12.0}
# The odds that a base is quoted in each quote (every base has a USDT pair).
ODDS = {"USDT": 1.0, "BTC": 0.8, "USDC": 0.7, "ETH": 0.6, "KCS": 0.3}
CROSSES = (
    ("BTC", "USDT"),
    ("ETH", "USDT"),
    ("KCS", "USDT"),
    ("USDC", "USDT"),
    ("BTC", "USDC"),
    ("ETH", "USDC"),
    ("KCS", "USDC"),
    ("ETH", "BTC"),
    ("KCS", "BTC"),
    ("KCS", "ETH"),
)
PRIMARIES = ("USDT", "USDC", "BTC")
BUSY = "BTC-USDT"
FEE = Decimal("0.001")
START_VOLUME = Decimal(100)
MAX_BOOK_AGE_MS = 500
MIN_PROFIT_BPS = 5.0


def _pow10(exponent: int) -> Decimal:
    return Decimal(1).scaleb(exponent)


class Market:
    """The symbol graph, its instruments and books, and new books for a pair as it moves."""

    def __init__(self, seed: int, currencies: int, pairs: int, levels: int) -> None:
        self.random = random.Random(seed)
        self.levels = levels
        self.usd: dict[str, float] = dict(QUOTES)
        bases = [f"C{i:03d}" for i in range(max(1, currencies - len(QUOTES)))]
        for base in bases:
            self.usd[base] = 10 ** self.random.uniform(-4, 3)
        # Scale the odds so the pair count lands near the one asked for.
        wanted = max(0, pairs - len(CROSSES))
        scale = wanted / (len(bases) * sum(ODDS.values()))
        pairs_of: list[tuple[str, str]] = list(CROSSES)
        for base in bases:
            for quote, odds in ODDS.items():
                if quote == "USDT" or self.random.random() < min(1.0, odds * scale):
                    pairs_of.append((base, quote))
        self.instruments: dict[str, Instrument] = {}
        self.mids: dict[str, float] = {}
        for base, quote in pairs_of:
            symbol = f"{base}-{quote}"
            mid = self.usd[base] / self.usd[quote] * (1 + self.random.gauss(0.0, 5e-4))
            self.mids[symbol] = mid
            self.instruments[symbol] = self._instrument(symbol, base, quote, mid)
        self.funds_increments = {
            symbol: _pow10(math.floor(math.log10(1e-4 / self.usd[i.quote])))
            for symbol, i in self.instruments.items()
        }
        self.time_ms = 1_700_000_000_000
        self.books = {symbol: self.book(symbol) for symbol in self.instruments}

    def _instrument(self, symbol: str, base: str, quote: str, mid: float) -> Instrument:
        tick = _pow10(math.floor(math.log10(mid)) - 4)
        lot = _pow10(math.floor(math.log10(0.01 / self.usd[base])))
        min_size = _pow10(math.ceil(math.log10(0.1 / self.usd[base])))
        min_notional = float(_pow10(math.floor(math.log10(0.1 / self.usd[quote]))))
        min_size = max(min_size, lot)
        return Instrument("kucoin", symbol, base, quote, tick, lot, min_size, min_notional)

    def book(self, symbol: str) -> BookView:
        """A new book for ``symbol`` around its mid, moved by a random step."""
        instrument = self.instruments[symbol]
        self.mids[symbol] *= 1 + self.random.gauss(0.0, 1e-4)
        tick = instrument.price_increment
        lot = instrument.size_increment
        at = round(Decimal(repr(self.mids[symbol])) / tick)
        usd_of_base = self.usd[instrument.base]
        bids: list[PriceLevel] = []
        asks: list[PriceLevel] = []
        bid, ask = at - 1 - self.random.randrange(2), at + 1 + self.random.randrange(2)
        for _ in range(self.levels):
            for side, ticks in ((bids, bid), (asks, ask)):
                usd = self.random.uniform(50, 2_000)
                size = (Decimal(repr(usd / usd_of_base)) // lot) * lot
                side.append((float(ticks * tick), float(size), 1))
            bid -= 1 + self.random.randrange(5)
            ask += 1 + self.random.randrange(5)
        return BookView(tuple(bids), tuple(asks), self.time_ms)


def level2_message(symbol: str, view: BookView) -> bytes:
    """``view`` as KuCoin sends a depth snapshot: decimal strings, ``[price, size]`` levels."""
    data = {
        "asks": [[repr(px), repr(sz)] for px, sz, _ in view.asks],
        "bids": [[repr(px), repr(sz)] for px, sz, _ in view.bids],
        "timestamp": view.time_ms,
    }
    topic = f"/spotMarket/level2Depth50:{symbol}"
    return orjson.dumps({"type": "message", "topic": topic, "subject": "level2", "data": data})


def float_walk(triangles: Sequence[Triangle], books: dict[str, BookView]) -> float:
    """The baseline walk: each triangle's three books summed in floats to the start volume."""
    total = 0.0
    volume = float(START_VOLUME)
    for triangle in triangles:
        for leg in triangle.legs:
            view = books[leg.symbol]
            left = volume
            for px, sz, _ in view.asks if leg.side is Side.BUY else view.bids:
                cost = px * sz
                total += cost
                left -= cost
                if left <= 0:
                    break
    return total


def _copy(view: BookView) -> BookView:
    """The same book as a view never evaluated (as each update's view is when it arrives)."""
    return BookView(view.bids, view.asks, view.time_ms, view.continuous)


def timed(fn: Callable[..., Any], *args: Any) -> float:
    started = time.perf_counter()
    fn(*args)
    return time.perf_counter() - started


class Run:
    """The market, its triangles and an evaluator holding every book, as the strategy holds
    them after its first snapshots."""

    def __init__(self, args: argparse.Namespace) -> None:
        self.market = Market(args.seed, args.currencies, args.pairs, args.levels)
        self.terms = Terms(
            START_VOLUME, MAX_BOOK_AGE_MS, dict.fromkeys(self.market.instruments, FEE),
            self.market.funds_increments,
        )  # fmt: skip
        self.discovery_s = [self.discover() for _ in range(args.discoveries)]
        self.triangles = discover(self.market.instruments.values(), PRIMARIES)
        self.by_symbol = index(self.triangles)
        send, self.receive = trio.open_memory_channel[Signal](1)
        self.evaluator = Evaluator(
            self.triangles, self.market.instruments, self.terms, MIN_PROFIT_BPS, send,
            by_symbol=self.by_symbol,
        )  # fmt: skip
        for symbol, view in self.market.books.items():
            self.evaluator.on_book(symbol, view, self.market.time_ms)
        # Counted from here: the loading of the books above refuses triangles for books to come.
        self.evaluator.evaluations = self.evaluator.below_min_profit = 0
        self.evaluator.sent = self.evaluator.dropped = 0
        self.evaluator.refusals.clear()
        self._drain()
        self.symbols = sorted(self.market.instruments)

    def discover(self) -> float:
        started = time.perf_counter()
        index(discover(self.market.instruments.values(), PRIMARIES))
        return time.perf_counter() - started

    def update(self, symbol: str) -> tuple[float, float, float, int]:
        """One book update of ``symbol``: the evaluator's time, and the baselines' (orjson of
        its level-2 message, the float walk of its triangles), interleaved."""
        view = self.market.book(symbol)
        message = level2_message(symbol, view)
        triangles = affected(symbol, self.by_symbol)
        t_json = timed(orjson.loads, message)
        t_eval = timed(self.evaluator.on_book, symbol, view, self.market.time_ms)
        self.market.books[symbol] = view
        t_walk = timed(float_walk, triangles, self.market.books)
        self._drain()
        return t_eval, t_json, t_walk, len(triangles)

    def random_symbol(self) -> str:
        return self.market.random.choice(self.symbols)

    def _drain(self) -> None:
        with contextlib.suppress(trio.WouldBlock):
            self.receive.receive_nowait()


def percentiles(values: list[float]) -> tuple[float, float]:
    ordered = sorted(values)
    return statistics.median(ordered), ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]


def report_updates(name: str, rows: list[tuple[float, float, float, int]]) -> None:
    evals, jsons, walks, counts = (list(column) for column in zip(*rows, strict=True))
    p50, p99 = percentiles(evals)
    j50, _ = percentiles(jsons)
    w50, _ = percentiles(walks)
    rate = sum(counts) / sum(evals) if sum(evals) else 0.0
    print(f"  {name}: {len(rows)} updates, {statistics.median(counts):.0f} triangles (median)")
    print(f"    evaluator.on_book   p50 {p50 * 1e6:10.1f} us   p99 {p99 * 1e6:10.1f} us")
    print(f"    {rate:,.0f} evaluations/s ({1e6 / rate if rate else 0:.1f} us each)")
    print(f"    baseline orjson l2  p50 {j50 * 1e6:10.1f} us   on_book / it {p50 / j50:10.1f}x")
    print(f"    baseline float walk p50 {w50 * 1e6:10.1f} us   on_book / it {p50 / w50:10.1f}x")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=int, default=1_000)
    parser.add_argument("--currencies", type=int, default=300)
    parser.add_argument("--levels", type=int, default=20)
    parser.add_argument("--updates", type=int, default=100, help="book updates of each kind")
    parser.add_argument("--single", type=int, default=2_000, help="one-triangle evaluations")
    parser.add_argument("--discoveries", type=int, default=5)
    parser.add_argument("--seed", type=int, default=18)
    parser.add_argument("--quick", action="store_true", help="a tiny market: that it runs")
    parser.add_argument("--profile", action="store_true")
    args = parser.parse_args(argv)
    if args.quick:
        args.pairs, args.currencies, args.levels = 60, 25, 5
        args.updates, args.single, args.discoveries = 10, 20, 1
    run = Run(args)
    market = run.market
    currencies = {c for i in market.instruments.values() for c in (i.base, i.quote)}
    counts = sorted(len(found) for found in run.by_symbol.values())
    print(
        f"triarb evaluation: {len(market.instruments)} pairs over {len(currencies)} currencies, "
        f"{args.levels} levels a side, primaries {', '.join(PRIMARIES)}"
    )
    d50 = statistics.median(run.discovery_s)
    print(f"  discovery + index: {d50 * 1e3:.1f} ms (median of {len(run.discovery_s)})")
    per_primary = {p: sum(t.primary == p for t in run.triangles) for p in PRIMARIES}
    print(
        f"  triangles: {len(run.triangles)} ("
        + ", ".join(f"{p} {n}" for p, n in per_primary.items())
        + f"); {BUSY} is in {len(affected(BUSY, run.by_symbol))}; a pair in a triangle is in"
        f" {statistics.median(counts):.0f} (median), {counts[-1] if counts else 0} (most)"
    )

    through = affected(BUSY, run.by_symbol)
    one = next((t for t in through if t.primary == "USDT"), through[0])
    result = evaluate(one, market.books, market.instruments, run.terms, market.time_ms)
    outcome = (
        f"{result.profit_bps:+.1f} bps on {result.volume}"
        if isinstance(result, Evaluation)
        else f"refused: {result.reason.value}"
    )
    colds, warms, walks = [], [], []
    now = market.time_ms
    for _ in range(args.single):
        fresh = {symbol: _copy(market.books[symbol]) for symbol in one.symbols}
        colds.append(timed(evaluate, one, fresh, market.instruments, run.terms, now))
        warms.append(timed(evaluate, one, fresh, market.instruments, run.terms, now))
        walks.append(timed(float_walk, (one,), fresh))
    c50, c99 = percentiles(colds)
    h50, h99 = percentiles(warms)
    w50, _ = percentiles(walks)
    print(f"  one triangle ({one.name}, {outcome}), {args.single} evaluations:")
    print(f"    evaluate, new books p50 {c50 * 1e6:10.1f} us   p99 {c99 * 1e6:10.1f} us")
    print(f"    again, same books   p50 {h50 * 1e6:10.1f} us   p99 {h99 * 1e6:10.1f} us")
    print(f"    baseline float walk p50 {w50 * 1e6:10.1f} us   evaluate / it {c50 / w50:8.1f}x")

    busy = [run.update(BUSY) for _ in range(args.updates)]
    report_updates(f"book update of {BUSY}", busy)
    drawn = [run.update(run.random_symbol()) for _ in range(args.updates)]
    report_updates("book update of a pair drawn at random", drawn)
    evaluator = run.evaluator
    refusals = ", ".join(f"{r.value} {n}" for r, n in evaluator.refusals.most_common())
    print(
        f"  evaluator: {evaluator.evaluations} evaluations, {evaluator.below_min_profit} below"
        f" the minimum profit, {evaluator.sent} signals sent, {evaluator.dropped} dropped;"
        f" refusals: {refusals or 'none'}"
    )
    if args.profile:
        profiler = cProfile.Profile()
        profiler.enable()
        for _ in range(args.updates):
            run.update(BUSY)
        profiler.disable()
        pstats.Stats(profiler).sort_stats("tottime").print_stats(25)


if __name__ == "__main__":
    main()
