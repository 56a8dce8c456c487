"""Benchmark: decision latency, budget waits and plan ages in the live service (issue 16 item 1).

Starts ``mm sim`` listing N coins (``--symbols``, 10) and ``mm start`` quoting them at the
shipped order budget (2 orders/s, burst 20, one bucket for every symbol), each in its own
process (``live.py``: the shipped config, only the coins and the session track changed), lets
it warm up (``--warmup``, 45 s), then reads mm's histograms over ``--seconds`` (120) of market
time as the difference of two scrapes of /metrics: ``mm_decision_latency_seconds`` (book frame
in, or the budget's tokens when later, to the orders handed to the client: the CPU path),
``mm_budget_wait_seconds`` and ``mm_plan_age_seconds`` (how much older the plan's book was than
the symbol's latest, at each send of places or modifies). The baseline, from the same process
over the same window: ``mm_ws_round_trip_seconds`` (a request's round trip on the loopback
WebSocket to the simulator, as the order client measures it).

Quantiles are read from the histograms' buckets (linear within a bucket, as Prometheus's
histogram_quantile does), so they are as coarse as the buckets; the share of decisions at or
under 1 ms and of plans at or under one budget interval are exact bucket counts. Figures are
from one run on a shared machine: compare the ratio to the baseline, not absolute values; the
load average is printed.
Run: ``python benchmarks/bench_order_budget.py [--symbols 10] [--seconds 120]``.
"""

from __future__ import annotations

import argparse
import math
import re
import tempfile
import time
from pathlib import Path

from live import Live, coins, load_average

BUCKET = re.compile(r"^(?P<name>\w+)_bucket\{(?P<labels>[^}]*)\}$")


def buckets(metrics: dict[str, float], name: str) -> list[tuple[float, float]]:
    """The cumulative buckets of histogram ``name`` (summed over its labels), by bound."""
    summed: dict[float, float] = {}
    for key, value in metrics.items():
        match = BUCKET.match(key)
        if match is None or match.group("name") != name:
            continue
        le = re.search(r'le="([^"]+)"', match.group("labels"))
        if le is None:
            continue
        bound = math.inf if le.group(1) == "+Inf" else float(le.group(1))
        summed[bound] = summed.get(bound, 0.0) + value
    return sorted(summed.items())


def window(
    before: dict[str, float], after: dict[str, float], name: str
) -> list[tuple[float, float]]:
    first = dict(buckets(before, name))
    return [(bound, count - first.get(bound, 0.0)) for bound, count in buckets(after, name)]


def quantile(cumulative: list[tuple[float, float]], q: float) -> float:
    """``histogram_quantile``: linear within the bucket that holds the q-th observation."""
    total = cumulative[-1][1] if cumulative else 0.0
    if total <= 0:
        return math.nan
    rank = q * total
    lower, below = 0.0, 0.0
    for bound, count in cumulative:
        if count >= rank:
            if math.isinf(bound):
                return lower
            if count == below:
                return bound
            return lower + (bound - lower) * (rank - below) / (count - below)
        lower, below = bound, count
    return lower


def share_at_most(cumulative: list[tuple[float, float]], bound: float) -> float:
    total = cumulative[-1][1] if cumulative else 0.0
    at = max((count for b, count in cumulative if b <= bound), default=0.0)
    return at / total if total else math.nan


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--symbols", type=int, default=10)
    parser.add_argument("--seconds", type=float, default=120.0)
    parser.add_argument("--warmup", type=float, default=45.0)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="mm-bench-budget-") as directory:
        live = Live(Path(directory) / "run", coins(args.symbols))
        live.start()
        try:
            time.sleep(args.warmup)
            before, loads = live.metrics(), [load_average()]
            started = time.monotonic()
            while time.monotonic() - started < args.seconds:
                time.sleep(min(10.0, args.seconds - (time.monotonic() - started)))
                loads.append(load_average())
            after = live.metrics()
        finally:
            live.stop()
    decision = window(before, after, "mm_decision_latency_seconds")
    wait = window(before, after, "mm_budget_wait_seconds")
    age = window(before, after, "mm_plan_age_seconds")
    ping = window(before, after, "mm_ws_round_trip_seconds")
    print(
        f"mm live, {args.symbols} symbols at the shipped order budget, {args.seconds:.0f} s "
        f"after {args.warmup:.0f} s of warm-up, mm sim in its own process; "
        f"load average {sum(loads) / len(loads):.2f}"
    )
    print(f"{'':44}{'count':>8}{'p50':>12}{'p99':>12}")
    rows = [
        ("baseline: WebSocket round trip (same process)", ping),
        ("decision latency (book in -> client)", decision),
        ("budget wait", wait),
        ("plan age at send (behind the latest book)", age),
    ]
    for label, cumulative in rows:
        count = cumulative[-1][1] if cumulative else 0.0
        p50, p99 = quantile(cumulative, 0.5), quantile(cumulative, 0.99)
        print(f"  {label:42}{count:>8.0f}{p50 * 1e3:>10.3f}ms{p99 * 1e3:>10.3f}ms")
    ratio = quantile(decision, 0.5) / quantile(ping, 0.5)
    print(f"  decision / round trip: p50 {ratio:.2f}x")
    print(f"  decisions at or under 1 ms: {share_at_most(decision, 0.001):.1%}")
    print(f"  sends from a plan at most 0.5 s behind its book: {share_at_most(age, 0.5):.1%}")


if __name__ == "__main__":
    main()
