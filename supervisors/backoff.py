"""Restart delays: exponential backoff with full jitter, and the restart-intensity window.

Pure logic, no I/O: the supervisor asks these objects how long to wait and whether a child
has restarted too often, and keeps the clock itself.
"""

from __future__ import annotations

import random
from collections import deque

import attrs


def _positive(instance: object, attribute: attrs.Attribute[float], value: float) -> None:
    if not value > 0:  # written so that NaN is rejected too
        raise ValueError(f"{attribute.name} must be > 0, got {value}")


@attrs.frozen
class Backoff:
    """Exponential backoff with full jitter (delay drawn uniformly from [0, ceiling]).

    The ceiling for attempt n (0-based) is ``min(cap, initial * multiplier**n)``.
    """

    initial: float = attrs.field(default=0.5, validator=_positive)
    multiplier: float = attrs.field(default=2.0)
    cap: float = attrs.field(default=30.0, validator=_positive)

    @multiplier.validator
    def _check_multiplier(self, attribute: attrs.Attribute[float], value: float) -> None:
        if not value >= 1:  # written so that NaN is rejected too
            raise ValueError(f"multiplier must be >= 1, got {value}")

    def ceiling(self, attempt: int) -> float:
        """The largest delay attempt ``attempt`` may draw."""
        if attempt < 0:
            raise ValueError(f"attempt must be >= 0, got {attempt}")
        ceiling = self.initial
        for _ in range(attempt):
            ceiling *= self.multiplier
            if ceiling >= self.cap:
                return self.cap
        return min(ceiling, self.cap)

    def delay(self, attempt: int, rng: random.Random) -> float:
        """A delay for attempt ``attempt``, uniform in [0, ceiling(attempt)]."""
        return rng.uniform(0.0, self.ceiling(attempt))


@attrs.frozen
class Intensity:
    """At most ``max_restarts`` restarts within ``period`` seconds; one more escalates."""

    max_restarts: int = attrs.field(default=5)
    period: float = attrs.field(default=60.0, validator=_positive)

    @max_restarts.validator
    def _check_max(self, attribute: attrs.Attribute[int], value: int) -> None:
        if value < 0:
            raise ValueError(f"max_restarts must be >= 0, got {value}")


@attrs.define
class RestartWindow:
    """The restart times inside the intensity period, oldest first."""

    intensity: Intensity
    _times: deque[float] = attrs.field(factory=deque)

    def admit(self, now: float) -> bool:
        """Record a restart at ``now``; False when it would exceed the intensity."""
        horizon = now - self.intensity.period
        while self._times and self._times[0] <= horizon:
            self._times.popleft()
        if len(self._times) >= self.intensity.max_restarts:
            return False
        self._times.append(now)
        return True

    def __len__(self) -> int:
        return len(self._times)
