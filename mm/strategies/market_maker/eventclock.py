"""The time as a market signal sees it: it never goes back, and garbage never moves it.

``EventClock.event(now)`` is an update's time: a non-finite time is refused (None: ignore the
update), an earlier one counts as the latest seen. ``EventClock.query(now)`` is a reading's
time: never before the latest update, and the latest when ``now`` is not finite. The cascade
detector and the toxicity tracker share it so that a clock going back or a NaN cannot make a
window run backwards. Pure.
"""

from __future__ import annotations

import math


def _finite(value: float) -> bool:
    return isinstance(value, (int, float)) and math.isfinite(value)


class EventClock:
    """The latest time seen; see the module docstring."""

    def __init__(self) -> None:
        self.latest: float | None = None

    def event(self, now: float) -> float | None:
        if not _finite(now):
            return None
        if self.latest is not None and now < self.latest:
            now = self.latest
        self.latest = now
        return now

    def query(self, now: float) -> float:
        latest = self.latest
        if not _finite(now):
            return latest if latest is not None else 0.0
        if latest is None or now > latest:
            self.latest = latest = now
        return latest
