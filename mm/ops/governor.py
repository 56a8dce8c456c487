"""The session governor: the supervised child that moves each track through its phases.

At start it computes every track's phase from the wall clock, sets it in the ``TrackGate`` and
reports it (``on_change``, previous = the gate's phase, INIT on a fresh start). Then it sleeps
until the earliest next change of any track, at most ``MAX_SLEEP_S`` so that a step of the
system clock is noticed within a minute, and at each wake recomputes every phase; each track
whose phase differs is updated in the gate (first, so trading stops at once), in the metrics, in
the log, and reported to ``on_change`` (the caller journals it).

The governor reports the phase it observes, not the path between: after downtime or a clock
step, a track found CLOSED that was last OPEN gives one change OPEN -> CLOSED, with no invented
CLOSE_ONLY or FORCE_FLAT. Changes are reported in time order, and tracks changing at the same
instant in config order.

Wall time comes from ``WallClock``: a wall-clock base plus the elapsed Trio time, so tests run
whole days on Trio's autojump clock.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any, Final

import attrs
import trio
from loguru import logger
from prometheus_client import CollectorRegistry, Counter, Gauge

from mm import clock
from mm.ops.session import Phase, SessionConfig, TrackConfig, TrackGate, next_change, phase_at

# The longest sleep between two looks at the clock.
MAX_SLEEP_S: Final = 60.0
# Woken this close before a change (float rounding of clock arithmetic), the change has come.
_WAKE_SLACK: Final = timedelta(milliseconds=1)


class WallClock:
    """Wall time derived from Trio's clock: ``base + (trio.current_time() - trio_base)``.

    ``WallClock.start()`` follows the service clock: ``resync`` re-reads ``mm.clock.wall()``.
    ``WallClock.start(now_wall)`` is fixed to the given start (tests): ``resync`` does nothing.
    Must be created inside ``trio.run``.
    """

    def __init__(self, wall_base: float, trio_base: float, *, live: bool) -> None:
        self._wall_base = wall_base
        self._trio_base = trio_base
        self._live = live

    @classmethod
    def start(cls, now_wall: float | None = None) -> WallClock:
        wall = clock.wall() if now_wall is None else now_wall
        return cls(wall, trio.current_time(), live=now_wall is None)

    def set(self, now_wall: float) -> None:
        """Declare the wall time now (a clock step)."""
        self._wall_base = now_wall
        self._trio_base = trio.current_time()

    def resync(self) -> None:
        """Follow a step of the system clock (live clocks only)."""
        if self._live:
            self.set(clock.wall())

    def time(self) -> float:
        """Wall time, epoch seconds."""
        return self._wall_base + (trio.current_time() - self._trio_base)

    def now(self) -> datetime:
        return datetime.fromtimestamp(self.time(), UTC)

    def deadline(self, when: datetime) -> float:
        """The Trio time at which this clock reads ``when``."""
        return self._trio_base + (when.timestamp() - self._wall_base)


@attrs.frozen
class PhaseChange:
    """A track moved from ``previous`` to ``phase`` at wall time ``at`` (epoch seconds)."""

    track: str
    symbols: tuple[str, ...]
    previous: Phase
    phase: Phase
    at: float


OnChange = Callable[[PhaseChange], Awaitable[None]]


class SessionMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.phase = Gauge(
            "mm_session_phase",
            "Session phase of each track: 0 init, 1 pre_open, 2 open, 3 close_only, "
            "4 force_flat, 5 closed.",
            ["track"],
            registry=registry,
        )
        self.changes = Counter(
            "mm_session_phase_changes",
            "Session phase changes, by track and the phase entered.",
            ["track", "phase"],
            registry=registry,
        )


class SessionGovernor:
    """Runs the tracks' phases into the gate; see the module docstring."""

    def __init__(
        self,
        config: SessionConfig,
        gate: TrackGate,
        clock: WallClock,
        on_change: OnChange,
        registry: CollectorRegistry,
    ) -> None:
        self._config = config
        self._gate = gate
        self._clock = clock
        self._on_change = on_change
        self._metrics = SessionMetrics(registry)
        self._next: dict[str, datetime | None] = {track.name: None for track in config.tracks}
        for track in config.tracks:
            self._metrics.phase.labels(track=track.name).set(gate.track_phase(track.name))

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        self._clock.resync()
        now = self._clock.now()
        for track in self._config.tracks:
            await self._enter(track, phase_at(track, now), now)
        task_status.started()
        while True:
            target = now + timedelta(seconds=MAX_SLEEP_S)
            upcoming = [moment for moment in self._next.values() if moment is not None]
            if upcoming:
                target = min(target, *upcoming)
            await trio.sleep_until(self._clock.deadline(target))
            self._clock.resync()
            before, now = now, self._clock.now()
            if timedelta(0) < target - now <= _WAKE_SLACK:
                now = target
            for track in self._config.tracks:
                phase = phase_at(track, now)
                expected = self._next[track.name]
                if phase != self._gate.track_phase(track.name):
                    await self._enter(track, phase, now)
                elif now < before or (expected is not None and now >= expected):
                    self._next[track.name] = next_change(track, now)  # the clock stepped

    async def _enter(self, track: TrackConfig, phase: Phase, now: datetime) -> None:
        previous = self._gate.track_phase(track.name)
        self._gate.set_phase(track.name, phase)
        self._next[track.name] = next_change(track, now)
        self._metrics.phase.labels(track=track.name).set(phase)
        self._metrics.changes.labels(track=track.name, phase=phase.label).inc()
        logger.info("session {}: {} -> {}", track.name, previous.label, phase.label)
        await self._on_change(
            PhaseChange(
                track=track.name,
                symbols=tuple(track.symbols),
                previous=previous,
                phase=phase,
                at=now.timestamp(),
            )
        )

    def status(self) -> dict[str, Any]:
        """Per track: phase, symbols and the next change (ISO 8601, UTC) or None."""
        status: dict[str, Any] = {}
        for track in self._config.tracks:
            upcoming = self._next[track.name]
            status[track.name] = {
                "phase": self._gate.track_phase(track.name).label,
                "symbols": list(track.symbols),
                "next_change": None if upcoming is None else upcoming.isoformat(),
            }
        return status
