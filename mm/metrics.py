"""The service's Prometheus registry: one per service instance, never the global default.

Naming follows Prometheus conventions: the ``mm_`` prefix, base units in the name (``_seconds``,
``_usd``, ``_bps``, ``_ratio``), ``_total`` on counters (added by prometheus_client), label sets
drawn from small fixed sets (symbols, feeds, kinds, reasons; never ids or free text), help text
on every metric. Latency histograms share ``LATENCY_BUCKETS``, from 10 µs to 5 s.
``tests/test_metrics.py`` checks all of it against a live registry.
"""

from __future__ import annotations

from prometheus_client import (
    CollectorRegistry,
    Gauge,
    GCCollector,
    Info,
    PlatformCollector,
    ProcessCollector,
    disable_created_metrics,
    generate_latest,
)

from mm import __version__, clock

__all__ = ["CONTENT_TYPE", "LATENCY_BUCKETS", "new_registry", "render"]

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

# Seconds: tick to order, order acks and journal batches live between tens of µs and seconds.
LATENCY_BUCKETS = (
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
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
    5.0,
)


def new_registry(service_name: str) -> CollectorRegistry:
    """A registry with process and build information; components add their own metrics."""
    # No ``*_created`` series: they double the series count and no dashboard reads them
    # (prometheus_client's switch is process-wide; every registry of mm wants it off).
    disable_created_metrics()  # type: ignore[no-untyped-call]
    registry = CollectorRegistry(auto_describe=True)
    ProcessCollector(registry=registry)
    PlatformCollector(registry=registry)
    GCCollector(registry=registry)
    Info("mm_build", "Version of the running mm.", registry=registry).info(
        {"version": __version__, "service": service_name}
    )
    Gauge("mm_start_time_seconds", "Wall-clock time the service started.", registry=registry).set(
        clock.wall()
    )
    return registry


def render(registry: CollectorRegistry) -> bytes:
    """The registry in Prometheus text exposition format."""
    return generate_latest(registry)
