"""Soak: the live service's memory and garbage-collection pauses over hours (issue 16 item 4).

Starts ``mm sim`` listing 10 coins and ``mm start`` quoting them, each in its own process, from
the shipped ``config.toml`` (``live.py`` says what is overridden), and every ``--every``
seconds (30) samples the mm process's resident set (psutil), its own measure of garbage-
collection pauses (``mm_gc_pause_seconds``, ``mm_gc_pause_max_seconds``), its CPU, fills and
orders, whether it trades, and the machine's load (the pauses as wall time and as the
collector's own CPU: ``mm_gc_pause_cpu_max_seconds``). Each sample is appended to
``<out>/soak.csv`` as it is taken, so a soak cut short keeps what it measured.

At the end (or with ``--report CSV`` on an existing file) it prints the curve, RSS every
``--curve-minutes`` (10), and the verdict: the least-squares slope of RSS after the warm-up
(``--warmup-minutes``, 30) in MiB per hour, flat when under ``FLAT_MIB_PER_HOUR``; and the
longest GC pause of the run, against the issue's 20 ms. Pauses are wall time inside the
service and include preemption by other processes on a loaded machine (the load is in the
CSV), so the longest is an upper bound.

How it fails: a process that does not start raises with its output's tail; mm exiting during
the soak ends the sampling, says so in the verdict (exit 1), and the processes are stopped in
every case (SIGTERM to the soak too). Run:
``python benchmarks/soak.py [--hours 2] [--out DIR]``; ``python benchmarks/soak.py --report
DIR/soak.csv``.
"""

from __future__ import annotations

import argparse
import csv
import signal
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from types import FrameType

import httpx
from live import Live, coins, cpu_seconds, load_average, rss_bytes

SYMBOLS = 10
FLAT_MIB_PER_HOUR = 1.0
PAUSE_TARGET_MS = 20.0
MIB = 1024 * 1024
COLUMNS = [
    "utc",
    "elapsed_s",
    "rss_mib",
    "sim_rss_mib",
    "gc_max_ms",
    "gc_cpu_max_ms",
    "gc_costliest_generation",
    "gc_costliest_collected",
    "gc_collections_0",
    "gc_collections_1",
    "gc_collections_2",
    "gc_pause_total_ms",
    "cpu_s",
    "fills",
    "orders",
    "trading",
    "load1",
]


class Stopped(Exception):
    """SIGTERM or SIGINT to the soak: stop sampling, stop the processes, report."""


def _on_signal(signum: int, frame: FrameType | None) -> None:
    raise Stopped(signal.Signals(signum).name)


def _sum(metrics: dict[str, float], prefix: str) -> float:
    return sum(value for name, value in metrics.items() if name.startswith(prefix))


def sample(live: Live, started: float) -> dict[str, object]:
    assert live.mm is not None
    assert live.sim is not None
    metrics = live.metrics()
    pauses_max = [
        metrics.get(f'mm_gc_pause_max_seconds{{generation="{g}"}}', 0.0) for g in range(3)
    ]
    cpu_max = [
        metrics.get(f'mm_gc_pause_cpu_max_seconds{{generation="{g}"}}', 0.0) for g in range(3)
    ]
    counts = [metrics.get(f'mm_gc_pause_seconds_count{{generation="{g}"}}', 0.0) for g in range(3)]
    status = live.status()
    costliest = (status.get("gc") or {}).get("costliest_collection") or {}
    return {
        "utc": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "elapsed_s": round(time.monotonic() - started, 1),
        "rss_mib": round(rss_bytes(live.mm.pid) / MIB, 2),
        "sim_rss_mib": round(rss_bytes(live.sim.pid) / MIB, 2),
        "gc_max_ms": round(max(pauses_max) * 1000, 3),
        "gc_cpu_max_ms": round(max(cpu_max) * 1000, 3),
        # Which collection cost the most CPU, and the unreachable objects it found.
        "gc_costliest_generation": costliest.get("generation", ""),
        "gc_costliest_collected": costliest.get("collected", ""),
        "gc_collections_0": int(counts[0]),
        "gc_collections_1": int(counts[1]),
        "gc_collections_2": int(counts[2]),
        "gc_pause_total_ms": round(_sum(metrics, "mm_gc_pause_seconds_sum") * 1000, 2),
        "cpu_s": round(cpu_seconds(live.mm.pid), 2),
        "fills": int(_sum(metrics, "mm_fills_total")),
        "orders": int(_sum(metrics, "mm_orders_total")),
        "trading": int(not status.get("not_trading")),
        "load1": round(load_average(), 2),
    }


def soak(out: Path, hours: float, every: float) -> tuple[Path, str | None]:
    """Run and sample; the CSV's path and why it ended early (None when it ran its course)."""
    out.mkdir(parents=True, exist_ok=True)
    path = out / "soak.csv"
    live = Live(out / "live", coins(SYMBOLS))
    ended: str | None = None
    signal.signal(signal.SIGTERM, _on_signal)
    signal.signal(signal.SIGINT, _on_signal)
    try:
        live.start()
        assert live.mm is not None
        print(f"soak: mm pid {live.mm.pid}, admin {live.admin_url}, venue {live.sim_url}")
        print(f"soak: {SYMBOLS} symbols {live.symbols}; sampling every {every:.0f}s into {path}")
        started = time.monotonic()
        with path.open("w", newline="") as file:
            writer = csv.DictWriter(file, COLUMNS)
            writer.writeheader()
            while True:
                if live.mm.poll() is not None:
                    ended = f"mm exited with status {live.mm.returncode}"
                    break
                try:
                    row = sample(live, started)
                except (httpx.HTTPError, OSError) as error:
                    print(f"soak: a sample failed: {error!r}", flush=True)
                else:
                    writer.writerow(row)
                    file.flush()
                    print(
                        f"soak: {row['utc']} +{float(row['elapsed_s']) / 60:.1f} min "  # type: ignore[arg-type]
                        f"rss {row['rss_mib']} MiB, gc max {row['gc_max_ms']} ms, "
                        f"fills {row['fills']}, trading {row['trading']}",
                        flush=True,
                    )
                if time.monotonic() - started >= hours * 3600:
                    break
                time.sleep(max(0.0, every - (time.monotonic() - started) % every))
    except Stopped as why:
        ended = f"the soak was stopped ({why})"
    finally:
        # Stopping the processes is not interrupted by a second signal.
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        live.stop()
    return path, ended


def _fit_slope(points: list[tuple[float, float]]) -> float | None:
    """Least-squares slope of y over x; None with fewer than 2 points."""
    if len(points) < 2:
        return None
    n = len(points)
    mean_x = sum(x for x, _ in points) / n
    mean_y = sum(y for _, y in points) / n
    var = sum((x - mean_x) ** 2 for x, _ in points)
    if var == 0:
        return None
    return sum((x - mean_x) * (y - mean_y) for x, y in points) / var


def report(path: Path, warmup_minutes: float, curve_minutes: float, ended: str | None) -> int:
    """Print the curve and the verdict; 0 when RSS is flat and the longest pause under target."""
    with path.open() as file:
        rows = list(csv.DictReader(file))
    if not rows:
        print(f"soak: no samples in {path}" + (f" ({ended})" if ended else ""))
        return 1
    elapsed = [float(row["elapsed_s"]) for row in rows]
    rss = [float(row["rss_mib"]) for row in rows]
    print(f"\nRSS of mm ({path}; {len(rows)} samples over {elapsed[-1] / 60:.1f} min):")
    print(f"{'minute':>7}{'rss MiB':>10}{'gc max ms':>11}{'fills':>8}{'load1':>7}")
    mark = 0.0
    for row, t in zip(rows, elapsed, strict=True):
        if t >= mark or row is rows[-1]:
            print(
                f"{t / 60:>7.0f}{float(row['rss_mib']):>10.1f}{float(row['gc_max_ms']):>11.2f}"
                f"{row['fills']:>8}{float(row['load1']):>7.2f}"
            )
            while mark <= t:
                mark += curve_minutes * 60
    after = [(t / 3600, r) for t, r in zip(elapsed, rss, strict=True) if t >= warmup_minutes * 60]
    slope = _fit_slope(after)
    longest = max(float(row["gc_max_ms"]) for row in rows)
    # CSVs written before the column was added have no CPU figure.
    recorded = [float(row["gc_cpu_max_ms"]) for row in rows if row.get("gc_cpu_max_ms")]
    costliest = f"{max(recorded):.2f} ms" if recorded else "not recorded"
    flat = slope is not None and slope < FLAT_MIB_PER_HOUR
    print(f"\nverdict ({'completed' if ended is None else ended}):")
    if slope is None:
        print(f"  RSS: not enough samples after the {warmup_minutes:.0f}-minute warm-up")
    else:
        lo, hi = min(r for _, r in after), max(r for _, r in after)
        print(
            f"  RSS after the {warmup_minutes:.0f}-minute warm-up: slope {slope:+.2f} MiB/hour "
            f"({'FLAT' if flat else 'GROWING'}: flat is under {FLAT_MIB_PER_HOUR} MiB/hour), "
            f"range {lo:.1f}-{hi:.1f} MiB; at start {rss[0]:.1f} MiB"
        )
        # What grows with every fill and order until their bounds are reached (the fill keys,
        # feeds.user.dedup_capacity; the registry's terminal orders, 10,000): the bytes each
        # adds, from the same samples. Read with the bounds, they say where RSS levels off.
        per_fill = _fit_slope(
            [
                (float(row["fills"]), float(row["rss_mib"]) * MIB)
                for row, t in zip(rows, elapsed, strict=True)
                if t >= warmup_minutes * 60
            ]
        )
        if per_fill is not None:
            print(
                f"  RSS per fill after the warm-up: {per_fill:+.0f} bytes "
                f"({float(rows[-1]['fills']) / max(elapsed[-1] / 60, 1e-9):.0f} fills a minute)"
            )
    ok_pause = longest < PAUSE_TARGET_MS
    print(
        f"  longest GC pause: {longest:.2f} ms ({'under' if ok_pause else 'OVER'} the "
        f"{PAUSE_TARGET_MS:.0f} ms target; wall time, with any preemption by other processes), "
        f"the costliest {costliest} of the collector's own CPU; "
        "collections by generation at the end: "
        f"{rows[-1]['gc_collections_0']}/{rows[-1]['gc_collections_1']}/"
        f"{rows[-1]['gc_collections_2']}; fills {rows[-1]['fills']}, orders {rows[-1]['orders']}"
    )
    return 0 if flat and ok_pause and ended is None else 1


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hours", type=float, default=2.0)
    parser.add_argument("--every", type=float, default=30.0, help="seconds between samples")
    parser.add_argument("--out", type=Path, default=Path("soak-out"))
    parser.add_argument("--warmup-minutes", type=float, default=30.0)
    parser.add_argument("--curve-minutes", type=float, default=10.0)
    parser.add_argument("--report", type=Path, help="only report on an existing soak.csv")
    args = parser.parse_args()
    if args.report is not None:
        return report(args.report, args.warmup_minutes, args.curve_minutes, None)
    path, ended = soak(args.out, args.hours, args.every)
    return report(path, args.warmup_minutes, args.curve_minutes, ended)


if __name__ == "__main__":
    sys.exit(main())
