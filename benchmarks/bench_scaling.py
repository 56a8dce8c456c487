"""Benchmark: the live service's CPU against the number of symbols it quotes (issue 16).

For N in 10, 40 and 100 (``--symbols``), and 10 again at the end (the drift of the machine's
load over the run), starts ``mm sim`` listing N coins and ``mm start`` quoting them, each in its
own process (``live.py``: the shipped config, only the coins and the session track changed), lets
it warm up (``--warmup``, 45 s: every symbol quoting), then reads the mm process's CPU time
(user + system, psutil) and its feed message counters over ``--seconds`` (90) of market time
(the simulator runs on the wall clock). The simulator's CPU is its own process's and is not
counted; it is printed apart.

Prints per N: mm's CPU in cores (CPU seconds per market second), per symbol, and its ratio to
N=10's; then the l2Book frames each symbol received per second and mm's CPU per frame, with its
ratio to N=10's; and the marginal CPU a symbol added since the previous N (% of a core), which
is the figure to read for linearity: flat when cores = fixed + N x per-symbol, growing with N
under an N**2 term (per symbol and per frame fall with N while the fixed costs spread).
The simulator, one process, did not keep a book every 500 ms (the shipped
pace) for 100 coins on this machine: fewer frames per symbol arrived, books went stale, quotes
were pulled, and CPU per symbol flattered mm. So every N runs at ``--book-interval-ms`` (1000),
and the frames per symbol per second say whether the simulator kept that pace. "quoting"
counts the symbols with orders resting after the warm-up (the shared order budget paces how
many). Figures are from one run on a shared machine: compare the ratios, not the absolute
values; the load average is printed with each row.
Run: ``python benchmarks/bench_scaling.py [--symbols 10 40 100] [--seconds 90]``.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from live import Live, coins, cpu_seconds, load_average


def measure(
    count: int, warmup: float, seconds: float, directory: Path, book_interval_ms: int
) -> dict[str, float]:
    # The simulator's pace, the same at every N: one book per coin per interval.
    pace = {"MM_SIM__BOOK_INTERVAL_MS": str(book_interval_ms)}
    live = Live(directory / f"n{count}-{time.monotonic_ns()}", coins(count), sim_env=pace)
    live.start()
    try:
        assert live.mm is not None
        assert live.sim is not None
        time.sleep(warmup)
        quoting = _quoting(live)
        first = live.metrics()
        mm_first, sim_first, wall_first = (
            cpu_seconds(live.mm.pid),
            cpu_seconds(live.sim.pid),
            time.monotonic(),
        )
        loads = [load_average()]
        while time.monotonic() - wall_first < seconds:
            time.sleep(min(10.0, seconds - (time.monotonic() - wall_first)))
            loads.append(load_average())
        mm_last, sim_last = cpu_seconds(live.mm.pid), cpu_seconds(live.sim.pid)
        elapsed = time.monotonic() - wall_first
        last = live.metrics()
    finally:
        live.stop()
    books = _books(last) - _books(first)
    mm_cores = (mm_last - mm_first) / elapsed
    return {
        "n": count,
        "mm_cores": mm_cores,
        "per_symbol": mm_cores / count,
        "sim_cores": (sim_last - sim_first) / elapsed,
        "books_per_symbol_s": books / elapsed / count,
        "cpu_us_per_book": (mm_last - mm_first) / books * 1e6 if books else 0.0,
        "quoting": quoting,
        "load": sum(loads) / len(loads),
    }


def _books(metrics: dict[str, float]) -> float:
    """l2Book frames mm's market feed received."""
    return metrics.get('mm_feed_messages_total{channel="l2Book",feed="market"}', 0.0)


def _quoting(live: Live) -> float:
    """How many of the symbols have orders resting at the venue after the warm-up."""
    symbols = live.status().get("trading", {}).get("symbols", {})
    return float(sum(1 for row in symbols.values() if row.get("orders")))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--symbols", type=int, nargs="+", default=[10, 40, 100])
    parser.add_argument("--seconds", type=float, default=90.0)
    parser.add_argument("--warmup", type=float, default=45.0)
    parser.add_argument("--book-interval-ms", type=int, default=1000)
    args = parser.parse_args()
    counts = [*args.symbols, args.symbols[0]]
    rows = []
    with tempfile.TemporaryDirectory(prefix="mm-bench-scaling-") as directory:
        for count in counts:
            row = measure(count, args.warmup, args.seconds, Path(directory), args.book_interval_ms)
            print(row, flush=True)
            rows.append(row)
    base = rows[0]["per_symbol"]
    base_book = rows[0]["cpu_us_per_book"] or 1.0
    print(
        f"\nmm's CPU by symbols quoted, {args.seconds:.0f} s each after {args.warmup:.0f} s of "
        "warm-up, mm sim in its own process (not counted), a book per coin every "
        f"{args.book_interval_ms} ms at most"
    )
    print(
        f"{'N':>5}{'mm cores':>10}{'per symbol':>12}{'ratio':>7}{'books/sym/s':>13}"
        f"{'us/book':>9}{'ratio':>7}{'marginal':>10}{'quoting':>9}{'sim cores':>11}{'load1':>7}"
    )
    previous: dict[str, float] | None = None
    for row in rows:
        # What each symbol added since the previous (smaller) N, in % of a core: flat when the
        # loop is linear (cores = fixed + N x per-symbol), growing with N under an N**2 term.
        marginal = "-"
        if previous is not None and row["n"] > previous["n"]:
            added = (row["mm_cores"] - previous["mm_cores"]) / (row["n"] - previous["n"])
            marginal = f"{added * 100:.3f}%"
        previous = row
        print(
            f"{row['n']:>5.0f}{row['mm_cores']:>10.3f}{row['per_symbol'] * 100:>11.3f}%"
            f"{row['per_symbol'] / base:>7.2f}{row['books_per_symbol_s']:>13.2f}"
            f"{row['cpu_us_per_book']:>9.0f}{row['cpu_us_per_book'] / base_book:>7.2f}"
            f"{marginal:>10}{row['quoting']:>9.0f}{row['sim_cores']:>11.3f}{row['load']:>7.2f}"
        )


if __name__ == "__main__":
    main()
