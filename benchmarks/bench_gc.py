"""Benchmark: garbage-collection pauses in the live service, untuned against tuned.

Runs ``mm sim`` (10 coins) and ``mm start`` quoting them, out of process (``live.py``), once per
variant, one after the other, for ``--minutes`` each, and reads the service's own measure of
every collection's pause (``mm_gc_pause_seconds``, ``mm_gc_pause_max_seconds``) and its CPU:

- ``untuned``: what mm did before: no freeze, CPython's thresholds (700, 10, 10);
- ``frozen+shipped``: ``mm start`` as shipped, the freeze after startup and
  ``mm.gc_pauses.THRESHOLDS``;
- ``frozen+T``: the freeze and thresholds T (``--thresholds 10000,10,10 ...``).

Prints, per variant: collections per minute and the longest pause by generation (wall time),
the collector's own CPU in its costliest collection, the pauses over 1 ms, the pause time per
minute and mm's CPU (cores), with the ratio to ``untuned`` measured in the same run. Other load
on the machine makes absolute figures noisy; the wall-time pauses include any preemption by
other processes (the CPU column does not), so the longest pause is an upper bound.
Run: ``python benchmarks/bench_gc.py [--minutes 3] [--thresholds 10000,10,10]``.
"""

from __future__ import annotations

import argparse
import re
import sys
import tempfile
import time
from pathlib import Path

from live import Live, coins, cpu_seconds, load_average

SYMBOLS = 10
DRIVER = """
import sys
import mm.app
from mm import gc_pauses
variant = sys.argv.pop(1)
if variant == "untuned":
    mm.app.tune_after_startup = lambda: gc_pauses.Frozen(0, 0.0)
elif variant != "frozen+shipped":
    thresholds = tuple(int(x) for x in variant.split("+")[1].split(","))
    mm.app.tune_after_startup = lambda: gc_pauses.tune_after_startup(thresholds)
from mm.cli import main
sys.exit(main(sys.argv[1:]))
"""
SERIES = re.compile(r'^(mm_gc_pause_\w+)\{generation="(\d)"(?:,le="([^"]+)")?\}$')


def gc_figures(metrics: dict[str, float]) -> dict[str, list[float]]:
    """{"count": [...], "sum": [...], "max": [...], "over_1ms": [...]} by generation."""
    figures = {key: [0.0, 0.0, 0.0] for key in ("count", "sum", "max", "cpu_max", "le_1ms")}
    for name, value in metrics.items():
        match = SERIES.match(name)
        if not match:
            continue
        family, generation, le = match.group(1), int(match.group(2)), match.group(3)
        if family == "mm_gc_pause_seconds_count":
            figures["count"][generation] = value
        elif family == "mm_gc_pause_seconds_sum":
            figures["sum"][generation] = value
        elif family == "mm_gc_pause_max_seconds":
            figures["max"][generation] = value
        elif family == "mm_gc_pause_cpu_max_seconds":
            figures["cpu_max"][generation] = value
        elif family == "mm_gc_pause_seconds_bucket" and le == "0.001":
            figures["le_1ms"][generation] = value
    figures["over_1ms"] = [c - b for c, b in zip(figures["count"], figures["le_1ms"], strict=True)]
    return figures


def run_variant(variant: str, minutes: float, directory: Path) -> dict[str, object]:
    live = Live(
        directory / variant.replace(",", "_").replace("+", "_"),
        coins(SYMBOLS),
        mm_command=[sys.executable, "-c", DRIVER, variant, "start"],
    )
    live.start()
    try:
        assert live.mm is not None
        pid = live.mm.pid
        time.sleep(10)  # past the startup's own collections
        first, cpu_first, load = live.metrics(), cpu_seconds(pid), [load_average()]
        started = time.monotonic()
        while time.monotonic() - started < minutes * 60:
            time.sleep(15)
            load.append(load_average())
        last, cpu_last = live.metrics(), cpu_seconds(pid)
        elapsed_min = (time.monotonic() - started) / 60
        status = live.status()["gc"]
    finally:
        live.stop()
    before, after = gc_figures(first), gc_figures(last)
    return {
        "per_min": [
            (a - b) / elapsed_min for a, b in zip(after["count"], before["count"], strict=True)
        ],
        "pause_ms_per_min": (sum(after["sum"]) - sum(before["sum"])) * 1000 / elapsed_min,
        "max_ms": [m * 1000 for m in after["max"]],
        "cpu_max_ms": [m * 1000 for m in after["cpu_max"]],
        "over_1ms": [a - b for a, b in zip(after["over_1ms"], before["over_1ms"], strict=True)],
        "cpu_per_s": (cpu_last - cpu_first) / (elapsed_min * 60),
        "frozen": status["frozen_objects"],
        "thresholds": status["thresholds"],
        "load": sum(load) / len(load),
        "fills": sum(v for k, v in last.items() if k.startswith("mm_fills_total")),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=3.0)
    parser.add_argument("--thresholds", nargs="*", default=[])
    args = parser.parse_args()
    variants = ["untuned", "frozen+shipped"]
    variants += [f"frozen+{thresholds}" for thresholds in args.thresholds]
    results = {}
    with tempfile.TemporaryDirectory(prefix="mm-bench-gc-") as directory:
        for variant in variants:
            results[variant] = run_variant(variant, args.minutes, Path(directory))
            print(variant, results[variant], flush=True)
    base = results["untuned"]
    print(f"\n{SYMBOLS} symbols, {args.minutes} min per variant, mm and mm sim out of process")
    print(
        f"{'variant':<24}{'thresholds':<16}{'frozen':>7}  {'coll/min g0/g1/g2':<18}"
        f"{'max ms g0/g1/g2':<22}{'cpu max ms':>11}{'>1ms':>6}{'pause ms/min':>19}"
        f"{'cpu':>6}{'load':>6}"
    )
    for variant, r in results.items():
        per_min = "/".join(f"{x:.1f}" for x in r["per_min"])  # type: ignore[attr-defined]
        longest = "/".join(f"{x:.1f}" for x in r["max_ms"])  # type: ignore[attr-defined]
        cpu_max = max(r["cpu_max_ms"])  # type: ignore[call-overload]
        ratio = r["pause_ms_per_min"] / max(base["pause_ms_per_min"], 1e-9)  # type: ignore[operator]
        print(
            f"{variant:<24}{r['thresholds']!s:<16}{r['frozen']:>7}  {per_min:<18}"
            f"{longest:<22}{cpu_max:>11.2f}{sum(r['over_1ms']):>6.0f}"  # type: ignore[arg-type]
            f"{r['pause_ms_per_min']:>10.2f} ({ratio:.2f}x){r['cpu_per_s']:>6.3f}{r['load']:>6.2f}"
        )


if __name__ == "__main__":
    main()
