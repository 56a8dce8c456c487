"""The garbage collector in the running service: its thresholds, the freeze once startup is
done, and every collection's pause measured live (``mm_gc_pause_seconds``, ``mm status``).

CPython's cyclic collector stops the whole process while it runs, and a collection of the
oldest generation walks every object the collector tracks. Most of mm's long-lived objects
are built at start (modules, the configuration, the supervision tree, the components and their
tables): :func:`tune_after_startup` collects once, then moves everything alive into the
permanent generation (``gc.freeze()``), so no later collection walks it again, and sets
``THRESHOLDS``. Frozen objects are still freed by reference counting; only a cycle among them
is never collected, which is why the collection comes first.

What the old generation holds after the freeze is what the service keeps while it runs, and a
full collection visits every reference of every such object (a cache miss each on a busy heap:
its cost follows the references more than the objects). ``benchmarks/gc_census.py`` counts
them by owner in the live service. The structures that keep thousands of items for hours keep
them in forms the collector does not track (tuples of strings and numbers): the registry's
retained terminal orders (``TrackedOrder.compact``), the bounded sets' value records
(``mm.bounded.compact_key``), an order's retired oids.

A collection that frees cyclic garbage costs far more per object than one that only walks
(deallocation, finalizers), so the per-tick and per-order paths make none:
``gc_census.py --garbage`` counts what the live service's collections free, by what made each
cycle, and ``tests/cyclic.py``'s ``no_cyclic_garbage`` holds a path to none (reconcile's
matching, an order's signature). What is left comes from libraries (hypercorn, per admin
connection).

:class:`GcPauses` times each collection from ``gc.callbacks``' "start" to its "stop" on the
monotonic clock and keeps, per generation, the count, the total, the histogram buckets and the
longest pause, and the collector's own CPU time (the thread's) in its costliest collection. The
registry reads those at scrape time (it is a collector): the callback runs inside whatever
allocation triggered the collection, in any thread, possibly while that thread holds a
metric's lock, so it never takes a lock itself and does only arithmetic on its own lists. It
cannot fail in a way that matters: an exception in a callback would be printed by the
interpreter as unraisable and the collection would go on; a "stop" with no "start" (the
callback installed mid-collection) is ignored.
"""

from __future__ import annotations

import bisect
import gc
import time
from collections.abc import Callable, Iterator
from typing import Any

import attrs
from prometheus_client.metrics_core import GaugeMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.registry import Collector

__all__ = ["GENERATIONS", "PAUSE_BUCKETS", "THRESHOLDS", "Frozen", "GcPauses", "tune_after_startup"]

GENERATIONS = 3
# Seconds: young collections take microseconds; a full one over a large heap, a tenth of a second
# or more. 0.02 is the target for the longest pause.
PAUSE_BUCKETS = (
    0.00001,
    0.000025,
    0.00005,
    0.0001,
    0.00025,
    0.0005,
    0.001,
    0.0025,
    0.005,
    0.01,
    0.02,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
)

# (gen0, gen1, gen2): CPython's own, kept after measuring (benchmarks/bench_gc.py and the soak,
# 10 symbols, mm and mm sim out of process, 2 cores under a load of 3-8). A larger gen0 makes
# fewer young collections and less collector time a minute (10,000: 2 a minute, 0.20x the
# untuned pause time a minute against 0.35-0.46x at 700) but each walks more young objects:
# its young collections took ~10 ms on average and up to 27 ms of the collector's own CPU,
# against ~2 ms at 700; the longest pause is the figure that matters to a quote (target under
# 20 ms), so gen0 stays at 700. The full collections (108 ms untuned) are what the freeze
# removes: after it, the old generation holds only what was built since start.
THRESHOLDS = (700, 10, 10)


@attrs.frozen
class Frozen:
    """What :func:`tune_after_startup` did: objects frozen, and how long its collection took."""

    objects: int
    collect_seconds: float


def tune_after_startup(thresholds: tuple[int, int, int] | None = None) -> Frozen:
    """Collect, freeze what is alive and set the thresholds (``THRESHOLDS`` unless given).

    Called once, when the service's tree has started and before it trades.
    """
    started = time.perf_counter()
    gc.collect()
    collect_seconds = time.perf_counter() - started
    gc.freeze()
    gc.set_threshold(*(THRESHOLDS if thresholds is None else thresholds))
    return Frozen(gc.get_freeze_count(), collect_seconds)


class GcPauses(Collector):
    """Every collection's pause by generation, from ``gc.callbacks``; a Prometheus collector."""

    def __init__(
        self,
        timer: Callable[[], float] = time.perf_counter,
        cpu_timer: Callable[[], float] = time.thread_time,
    ) -> None:
        self._timer = timer
        self._cpu_timer = cpu_timer
        self._started: tuple[float, float] | None = None
        # The collector's own CPU in its costliest collection: on a loaded machine the
        # wall-clock pause also holds the time the OS gave other processes.
        self._longest_cpu = [0.0] * GENERATIONS
        # The costliest collection's generation, CPU, wall time and the unreachable objects it
        # found: a full collection's cost is the objects it walks and the garbage it frees.
        self._costliest: dict[str, float | int] | None = None
        self._counts = [[0] * (len(PAUSE_BUCKETS) + 1) for _ in range(GENERATIONS)]
        self._sums = [0.0] * GENERATIONS
        self._longest = [0.0] * GENERATIONS

    # --- the callback -------------------------------------------------------------------------

    def install(self) -> None:
        if self._callback not in gc.callbacks:
            gc.callbacks.append(self._callback)

    def uninstall(self) -> None:
        while self._callback in gc.callbacks:
            gc.callbacks.remove(self._callback)

    def _callback(self, phase: str, info: dict[str, Any]) -> None:
        if phase == "start":
            self._started = (self._timer(), self._cpu_timer())
            return
        started, self._started = self._started, None
        if started is None:
            return
        wall, cpu = started
        self.observe(
            int(info["generation"]),
            self._timer() - wall,
            self._cpu_timer() - cpu,
            collected=int(info.get("collected", 0)),
        )

    def observe(
        self, generation: int, seconds: float, cpu_seconds: float = 0.0, *, collected: int = 0
    ) -> None:
        """One collection of ``generation`` that stopped the process for ``seconds`` (wall
        clock), ``cpu_seconds`` of which the collector spent on the CPU, and found
        ``collected`` unreachable objects."""
        if cpu_seconds > max(self._longest_cpu):
            self._costliest = {
                "generation": generation,
                "cpu_ms": round(cpu_seconds * 1000, 3),
                "wall_ms": round(seconds * 1000, 3),
                "collected": collected,
            }
        if cpu_seconds > self._longest_cpu[generation]:
            self._longest_cpu[generation] = cpu_seconds
        self._counts[generation][bisect.bisect_left(PAUSE_BUCKETS, seconds)] += 1
        self._sums[generation] += seconds
        if seconds > self._longest[generation]:
            self._longest[generation] = seconds

    # --- what is read -------------------------------------------------------------------------

    def collections(self) -> list[int]:
        return [sum(counts) for counts in self._counts]

    def longest(self) -> float:
        """The longest pause of any generation so far, in seconds (0 before any)."""
        return max(self._longest)

    def status(self) -> dict[str, Any]:
        """For ``mm status``: pauses so far, the thresholds and what is frozen."""
        longest = self._longest
        return {
            "longest_pause_ms": round(max(longest) * 1000, 3),
            "longest_pause_ms_by_generation": [round(s * 1000, 3) for s in longest],
            "longest_pause_cpu_ms": round(max(self._longest_cpu) * 1000, 3),
            "costliest_collection": self._costliest,
            "collections": self.collections(),
            "thresholds": list(gc.get_threshold()),
            "frozen_objects": gc.get_freeze_count(),
        }

    def collect(self) -> Iterator[Metric]:
        histogram = HistogramMetricFamily(
            "mm_gc_pause_seconds",
            "Time the process stood still in each cyclic garbage collection, by generation.",
            labels=["generation"],
        )
        longest = GaugeMetricFamily(
            "mm_gc_pause_max_seconds",
            "The longest garbage-collection pause since start, by generation.",
            labels=["generation"],
        )
        longest_cpu = GaugeMetricFamily(
            "mm_gc_pause_cpu_max_seconds",
            "The collector's own CPU time in its costliest collection since start, by "
            "generation (a pause less any time the OS ran other processes).",
            labels=["generation"],
        )
        for generation in range(GENERATIONS):
            counts = list(self._counts[generation])
            cumulative, buckets = 0, []
            for bound, count in zip((*PAUSE_BUCKETS, float("inf")), counts, strict=True):
                cumulative += count
                buckets.append((_le(bound), float(cumulative)))
            label = [str(generation)]
            histogram.add_metric(label, buckets, self._sums[generation])
            longest.add_metric(label, self._longest[generation])
            longest_cpu.add_metric(label, self._longest_cpu[generation])
        yield histogram
        yield longest
        yield longest_cpu


def _le(bound: float) -> str:
    """A bucket's bound as the exposition writes it (Prometheus' Go float format)."""
    return "+Inf" if bound == float("inf") else repr(bound)
