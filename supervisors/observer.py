"""Hooks through which a supervisor reports state changes and restarts: metrics, journals."""

from __future__ import annotations

from typing import Protocol

from prometheus_client import CollectorRegistry, Counter, Gauge

from supervisors.status import ChildState


class Observer(Protocol):
    """Called synchronously by a supervisor; must not block or raise."""

    def state_changed(self, path: str, state: ChildState, error: str | None) -> None: ...

    def restarted(self, path: str) -> None: ...


class NullObserver:
    def state_changed(self, path: str, state: ChildState, error: str | None) -> None:
        return None

    def restarted(self, path: str) -> None:
        return None


class MetricsObserver:
    """Exports ``mm_supervisor_restarts_total{child}`` and ``mm_child_up{child}``."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self._restarts = Counter(
            "mm_supervisor_restarts",
            "Restarts of a supervised child since the process started.",
            ["child"],
            registry=registry,
        )
        self._up = Gauge(
            "mm_child_up",
            "1 while a supervised child is running, 0 otherwise.",
            ["child"],
            registry=registry,
        )

    def state_changed(self, path: str, state: ChildState, error: str | None) -> None:
        self._up.labels(child=path).set(1.0 if state is ChildState.RUNNING else 0.0)
        if state is ChildState.STARTING:
            # Make the counter visible (at 0) before the first restart.
            self._restarts.labels(child=path)

    def restarted(self, path: str) -> None:
        self._restarts.labels(child=path).inc()


class FanOut:
    """Passes every report to several observers."""

    def __init__(self, *observers: Observer) -> None:
        self._observers = observers

    def state_changed(self, path: str, state: ChildState, error: str | None) -> None:
        for observer in self._observers:
            observer.state_changed(path, state, error)

    def restarted(self, path: str) -> None:
        for observer in self._observers:
            observer.restarted(path)
