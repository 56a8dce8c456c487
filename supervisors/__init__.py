"""Generic supervision for Trio: child specs, restart policies, backoff, intensity, status.

Nothing here knows about trading; ``mm.app`` builds the service's tree out of these parts.
"""

from supervisors.backoff import Backoff, Intensity, RestartWindow
from supervisors.observer import FanOut, MetricsObserver, NullObserver, Observer
from supervisors.spec import ChildRun, ChildSpec, Restart, Strategy
from supervisors.status import ChildState, ChildStatus, unhealthy, walk
from supervisors.supervisor import Supervisor, SupervisorEscalation, describe_error

__all__ = [
    "Backoff",
    "ChildRun",
    "ChildSpec",
    "ChildState",
    "ChildStatus",
    "FanOut",
    "Intensity",
    "MetricsObserver",
    "NullObserver",
    "Observer",
    "Restart",
    "RestartWindow",
    "Strategy",
    "Supervisor",
    "SupervisorEscalation",
    "describe_error",
    "unhealthy",
    "walk",
]
