"""Aggregate the monitors into one ``RiskDecision``, and detect liquidations (pure).

``evaluate`` runs every monitor in the fixed order of ``MONITORS``; the most severe action wins
and, among equals, the first monitor in that order. The decision's spread factor is the largest
factor of the WIDEN assessments (1.0 without any). ``LiquidationDetector`` flags a position
change larger than a fraction of the maximum position that no fill explains within a window.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Sequence

import attrs

from mm.risk.monitors import MONITORS, Action, Assessment, Monitor, RiskConfig
from mm.risk.state import RiskState


@attrs.frozen
class RiskDecision:
    """What the strategy and executors read."""

    action: Action
    spread_factor: float
    winner: Assessment
    assessments: tuple[Assessment, ...]

    @property
    def reduce_only(self) -> bool:
        return self.action >= Action.REDUCE_ONLY

    @property
    def pull(self) -> bool:
        return self.action >= Action.PULL

    @property
    def kill(self) -> bool:
        return self.action is Action.KILL

    @property
    def reasons(self) -> tuple[str, ...]:
        return tuple(a.reason for a in self.assessments if a.action is not Action.NONE)


def decide(assessments: Sequence[Assessment]) -> RiskDecision:
    """The most severe assessment wins (the first among equals)."""
    if not assessments:
        raise ValueError("no assessments")
    winner = assessments[0]
    for assessment in assessments[1:]:
        if assessment.action > winner.action:
            winner = assessment
    factors = [a.spread_factor for a in assessments if a.action is Action.WIDEN]
    return RiskDecision(
        action=winner.action,
        spread_factor=max(factors, default=1.0),
        winner=winner,
        assessments=tuple(assessments),
    )


def evaluate(
    state: RiskState, config: RiskConfig, monitors: Iterable[Monitor] = MONITORS
) -> RiskDecision:
    """Run ``monitors`` (all eight by default) on ``state`` and decide."""
    return decide([monitor(state, config) for monitor in monitors])


@attrs.frozen
class LiquidationEvent:
    """A position change no fill explained: ``delta`` contracts first seen at ``time``."""

    time: float
    delta: float
    max_position: float


@attrs.define
class _Jump:
    time: float
    unexplained: float
    at_ms: int | None = None  # the venue time of the snapshot that showed it


@attrs.define
class LiquidationDetector:
    """Position jumps with no matching fill within ``window_s`` seconds -> ``LiquidationEvent``.

    Feed it fills (signed contracts, + buys) and position snapshots (signed contracts) with
    their times. A snapshot's change is first matched against the fills received since the
    previous snapshot, however long ago (the snapshots may come far apart); what remains, if
    larger than ``fraction * max_position``, is a pending jump that fills arriving up to
    ``window_s`` later can still explain (fills and position updates come on separate
    streams). A snapshot's ``now`` is when it is judged (not when it was asked for: its answer
    may have been slow). ``poll(now)`` reports the jumps still unexplained more than
    ``window_s`` after they were seen.

    With the venue's times (``at_ms``: a fill's trade time, a snapshot's time), a fill counts
    for the snapshots it falls between, whenever it arrives: one that arrives after a snapshot
    that already holds it (late on the live stream, or recovered by the fill audit) can still
    explain a jump pending from that snapshot, and is never taken to explain the next change;
    one made after a snapshot explains no jump of it and waits for the next. Without them, a
    fill counts for the next snapshot processed after it arrives.
    """

    max_position: float
    fraction: float = 0.2
    window_s: float = 5.0
    _position: float | None = attrs.field(default=None, init=False)
    _position_ms: int | None = attrs.field(default=None, init=False)  # the snapshot's venue time
    _fills: deque[tuple[float, float, int | None]] = attrs.field(factory=deque, init=False)
    _pending: list[_Jump] = attrs.field(factory=list, init=False)

    @classmethod
    def from_config(cls, max_position: float, config: RiskConfig) -> LiquidationDetector:
        return cls(max_position, config.liquidation_fraction, config.liquidation_fill_window_s)

    @property
    def threshold(self) -> float:
        return self.fraction * self.max_position

    def on_fill(self, size: float, now: float, at_ms: int | None = None) -> None:
        """A fill of ``size`` contracts (signed) received at ``now``, made at ``at_ms``."""
        for jump in self._pending:
            if now - jump.time > self.window_s or size == 0.0:
                continue
            if (jump.unexplained > 0) != (size > 0):
                continue
            if at_ms is not None and jump.at_ms is not None and at_ms > jump.at_ms:
                continue  # made after the snapshot: not part of its change
            used = min(abs(size), abs(jump.unexplained)) * (1.0 if size > 0 else -1.0)
            jump.unexplained -= used
            size -= used
        self._pending = [j for j in self._pending if abs(j.unexplained) > self.threshold]
        # A fill made before the last snapshot was taken is in it, and explains no later change
        # (one made in the snapshot's own millisecond may or may not be: it counts for the next).
        held = self._position_ms is not None and at_ms is not None and at_ms < self._position_ms
        if size != 0.0 and not held:
            self._fills.append((now, size, at_ms))

    def on_position(self, contracts: float, now: float, at_ms: int | None = None) -> None:
        """A position snapshot (taken at venue time ``at_ms``); the first one only sets the
        baseline."""
        previous, self._position = self._position, contracts
        self._position_ms = at_ms
        # Every fill waiting here is part of this change (or, made after it, of the next),
        # however long ago it came: the readings can be minutes apart (the account's reads
        # slowed by the venue's 429s and 5xx), and a fill dropped for its age would leave its
        # part of the change unexplained: a liquidation that never was.
        if previous is None:
            self._fills.clear()
            return
        # Fills made after this snapshot was taken are for the next one.
        explained = 0.0
        later: deque[tuple[float, float, int | None]] = deque()
        for fill in self._fills:
            made = fill[2]
            if at_ms is not None and made is not None and made > at_ms:
                later.append(fill)
            else:
                explained += fill[1]
        self._fills = later
        unexplained = contracts - previous - explained
        if abs(unexplained) > self.threshold:
            self._pending.append(_Jump(now, unexplained, at_ms))

    def poll(self, now: float) -> list[LiquidationEvent]:
        """Jumps still unexplained more than ``window_s`` after they were seen (reported once)."""
        due = [j for j in self._pending if now - j.time > self.window_s]
        self._pending = [j for j in self._pending if now - j.time <= self.window_s]
        return [LiquidationEvent(j.time, j.unexplained, self.max_position) for j in due]
