"""The service's Prometheus registry: one per service instance, never the global default."""

from __future__ import annotations

import time

from prometheus_client import (
    CollectorRegistry,
    Gauge,
    GCCollector,
    Info,
    PlatformCollector,
    ProcessCollector,
    generate_latest,
)

from mm import __version__

__all__ = ["CONTENT_TYPE", "new_registry", "render"]

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


def new_registry(service_name: str) -> CollectorRegistry:
    """A registry with process and build information; components add their own metrics."""
    registry = CollectorRegistry(auto_describe=True)
    ProcessCollector(registry=registry)
    PlatformCollector(registry=registry)
    GCCollector(registry=registry)
    Info("mm_build", "Version of the running mm.", registry=registry).info(
        {"version": __version__, "service": service_name}
    )
    Gauge("mm_start_time_seconds", "Wall-clock time the service started.", registry=registry).set(
        time.time()
    )
    return registry


def render(registry: CollectorRegistry) -> bytes:
    """The registry in Prometheus text exposition format."""
    return generate_latest(registry)
