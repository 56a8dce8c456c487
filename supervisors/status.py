"""Readable state of supervised children: a snapshot tree for /status, health and metrics."""

from __future__ import annotations

import enum
from typing import Any

import attrs

from supervisors.spec import Restart


class ChildState(enum.Enum):
    STARTING = "starting"
    RUNNING = "running"
    BACKING_OFF = "backing_off"
    STOPPED = "stopped"
    FAILED = "failed"


@attrs.frozen
class ChildStatus:
    """A child's state at one moment. ``since`` is wall-clock seconds since the epoch."""

    name: str
    path: str
    restart: Restart
    state: ChildState
    restarts: int
    last_error: str | None
    since: float
    children: tuple[ChildStatus, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "path": self.path,
            "restart": self.restart.value,
            "state": self.state.value,
            "restarts": self.restarts,
            "last_error": self.last_error,
            "since": self.since,
            "children": [child.to_dict() for child in self.children],
        }


def walk(statuses: tuple[ChildStatus, ...]) -> list[ChildStatus]:
    """Every status in the tree, depth first, parents before their children."""
    found: list[ChildStatus] = []
    for status in statuses:
        found.append(status)
        found.extend(walk(status.children))
    return found


def unhealthy(statuses: tuple[ChildStatus, ...]) -> list[str]:
    """Reasons the tree is not healthy: every permanent child must be running."""
    return [
        f"{status.path} is {status.state.value}"
        + (f" (last error: {status.last_error})" if status.last_error else "")
        for status in walk(statuses)
        if status.restart is Restart.PERMANENT and status.state is not ChildState.RUNNING
    ]
