"""The ``session`` child: the governor's phases put to work, and the flattener under a deadline.

It runs the session governor (wall-clock phases per track, published in the track gate and in
the session's slot of the permission board, which the strategy and the pre-trade checks read)
and acts on each phase change: journals it, notifies, and when a track enters FORCE_FLAT hands
its symbols to the flattener with a deadline (the earlier of ``session.flatten_deadline_s`` and
the track's next phase change). ``mm flatten`` (``request_flatten``) is refused at once,
changing nothing, while HALT or a tripped kill switch forbids orders; otherwise it first moves
the mode to REDUCE_ONLY, so the strategy cannot rebuild the position afterwards, then flattens
every symbol under the same deadline; that REDUCE_ONLY holds until ``mm rearm``, so a restart
in it (of the process, from the journal's mode, or of this child) flattens again, finishing a
flatten the restart cut off. A flatten that misses its deadline escalates to HALT with
a critical notification. The flattener never runs while the mode is HALT or the kill switch is
tripped, and either stops one under way: a halted service sends no orders at all until ``mm
rearm``. The runner writes each symbol's phase into its slot of the permission board and reads
the board for HALT and the kill switch.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import attrs
import trio
from loguru import logger
from prometheus_client import CollectorRegistry

from mm.execution.flatten import Flattener
from mm.execution.permissions import OPEN, Grant, Level, PermissionBoard, Slot
from mm.journal import Journal
from mm.ops.autonomy import Mode, Reason, Trigger
from mm.ops.coordinator import ModeCoordinator
from mm.ops.governor import PhaseChange, SessionGovernor, WallClock
from mm.ops.notify import Notification, Severity
from mm.ops.session import Phase, SessionConfig, TrackGate, next_change


@attrs.frozen
class FlattenRequest:
    who: str
    why: str


def phase_grant(phase: Phase) -> Grant:
    """A symbol's phase as the session's slot of the permission board: OPEN anything,
    CLOSE_ONLY only reducing orders, any other phase no new orders (the flattener's own
    reduce-only orders still go under FORCE_FLAT)."""
    if phase is Phase.OPEN:
        return OPEN
    if phase is Phase.CLOSE_ONLY:
        return Grant(Level.REDUCE_ONLY, f"session phase {phase.label}")
    return Grant(Level.PULLED, f"session phase {phase.label}")


class SessionRunner:
    def __init__(
        self,
        config: SessionConfig,
        symbols: Sequence[str],
        flattener: Flattener,
        coordinator: ModeCoordinator,
        journal: Journal,
        notify: Callable[[Notification], None],
        registry: CollectorRegistry,
        board: PermissionBoard,
        permission: Slot,
    ) -> None:
        self.config = config
        self.symbols = tuple(symbols)
        self.gate = TrackGate(config)
        self.board = board  # read: whether anything may be sent (HALT, the kill switch)
        self.permission = permission  # its slot of the board: each symbol's phase
        self.flattener = flattener
        self.coordinator = coordinator
        self.journal = journal
        self.notify = notify
        self.registry = registry
        self.governor: SessionGovernor | None = None
        self._tracks = {track.name: track for track in config.tracks}
        self._send, self._requests = trio.open_memory_channel[FlattenRequest](16)
        self._nursery: trio.Nursery | None = None
        self._clock: WallClock | None = None
        self._running: set[trio.CancelScope] = set()  # flattens under way
        self.permission.set(phase_grant(self.gate.default))
        self._publish(symbol for track in config.tracks for symbol in track.symbols)

    def _publish(self, symbols: Iterable[str]) -> None:
        """The symbols' phases into the session's slot of the permission board."""
        for symbol in symbols:
            self.permission.set_symbol(symbol, phase_grant(self.gate.phase(symbol)))

    def request_flatten(self, who: str, why: str) -> str | None:
        """``mm flatten`` / ``POST /flatten`` (sync, from the admin server): None when the
        flatten is on its way, else why it is refused. While HALT or a tripped kill switch
        forbids every order it is refused at once and nothing changes, the mode included."""
        halted = self.board.halted()
        if halted is not None:
            return f"{halted}: no orders until mm rearm"
        try:
            self._send.send_nowait(FlattenRequest(who, why))
        except trio.WouldBlock:
            return "too many flatten requests waiting; try again"
        return None

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        # After a restart the governor reports the current phases again: a track still in
        # FORCE_FLAT starts its (cut short) flatten again through _on_change.
        if self.governor is None:  # one governor for the process: its metrics register once
            self._clock = WallClock.start()
            self.governor = SessionGovernor(
                self.config, self.gate, self._clock, self._on_change, self.registry
            )
        async with trio.open_nursery() as nursery:
            self._nursery = nursery
            nursery.start_soon(self._serve_requests)
            nursery.start_soon(self._stop_flattening_when_halted)
            await nursery.start(self.governor.run)
            if self.coordinator.reason is Reason.OPERATOR_FLATTEN:
                # The operator's flatten holds until mm rearm: the one the process's end (or
                # this child's) cut off, if any, is finished; an account already flat costs
                # one read of its positions.
                logger.warning("the operator's flatten holds (REDUCE_ONLY): flattening again")
                deadline = trio.current_time() + self.config.flatten_deadline_s
                why = "the operator's flatten, again after a restart"
                nursery.start_soon(self._flatten, self.symbols, deadline, why)
            task_status.started()

    async def _serve_requests(self) -> None:
        async for request in self._requests:
            trigger = Trigger(Reason.OPERATOR_FLATTEN, Mode.REDUCE_ONLY, {"who": request.who})
            await self.coordinator.escalate(trigger)
            deadline = trio.current_time() + self.config.flatten_deadline_s
            await self._flatten(self.symbols, deadline, f"{request.who}: {request.why}")

    async def _stop_flattening_when_halted(self) -> None:
        """HALT or a kill switch trip (the board halted) stops every flatten under way."""
        while True:
            if self.board.halted() is not None:
                self.stop_flattening()
            await self.board.wait_changed()

    async def _on_change(self, change: PhaseChange) -> None:
        self._publish(change.symbols)  # at once: the governor has just set the phase
        data = {
            "track": change.track,
            "symbols": list(change.symbols),
            "previous": change.previous.label,
            "phase": change.phase.label,
            "at": change.at,
        }
        await self.journal.record("phase", **data)
        self.coordinator.note(
            f"session {change.track} {change.previous.label} -> {change.phase.label}"
        )
        severity = Severity.WARNING if change.phase is Phase.FORCE_FLAT else Severity.INFO
        self.notify(
            Notification(
                "phase",
                severity,
                f"session {change.track}: {change.phase.label}",
                f"track {change.track} {change.previous.label} -> {change.phase.label}",
                change.at,
                {"symbols": ",".join(change.symbols)},
            )
        )
        if change.phase is Phase.FORCE_FLAT:
            self.start_flatten(change.track, change.at)

    def start_flatten(self, track: str, at: float) -> None:
        """Flatten a track's traded symbols in the background, under the force-flat deadline."""
        nursery = self._nursery
        config = self._tracks.get(track)
        if nursery is None or config is None:
            return
        seconds = self.config.flatten_deadline_s
        upcoming = next_change(config, dt.datetime.fromtimestamp(at, dt.UTC))
        if upcoming is not None:
            seconds = min(seconds, max(upcoming.timestamp() - at, 0.0))
        symbols = [symbol for symbol in config.symbols if symbol in self.symbols]
        deadline = trio.current_time() + seconds
        nursery.start_soon(self._flatten, symbols, deadline, f"track {track} force_flat")

    def resume(self) -> None:
        """After a rearm: tracks still in FORCE_FLAT are flattened again."""
        if self.governor is None:
            return
        for track in self._tracks:
            if self.gate.track_phase(track) is Phase.FORCE_FLAT:
                self.start_flatten(track, self._now())

    def stop_flattening(self) -> None:
        """HALT or a kill switch trip: no orders at all, so a flatten under way stops here."""
        for scope in self._running:
            scope.cancel()

    async def _flatten(self, symbols: Sequence[str], deadline: float, why: str) -> None:
        if not symbols:
            return
        halted = self.board.halted()
        if halted is not None:
            logger.warning("not flattening {} ({}): {}", list(symbols), why, halted)
            return
        busy = set(symbols) & self.flattener.active
        if busy:
            logger.warning("not flattening {} ({}): already being flattened", sorted(busy), why)
            return
        await self.journal.record("flatten_started", symbols=list(symbols), why=why)
        with trio.CancelScope() as scope:
            self._running.add(scope)
            try:
                result = await self.flattener.flatten(symbols, deadline)
            finally:
                self._running.discard(scope)
        if scope.cancelled_caught:
            logger.warning("flatten of {} stopped: HALT or kill switch", list(symbols))
            await self.journal.record("flatten_stopped", symbols=list(symbols), why=why)
            return
        await self.journal.record("flatten_done", why=why, **attrs.asdict(result))
        if result.done:
            self.notify(
                Notification(
                    "flatten",
                    Severity.INFO,
                    "flattened",
                    f"flattened {', '.join(symbols)} in {result.seconds:.1f}s ({why})",
                    self._now(),
                    {"orders": result.orders},
                )
            )
            return
        remaining = {coin: round(size, 8) for coin, size in result.remaining.items()}
        self.notify(
            Notification(
                "flatten",
                Severity.CRITICAL,
                "flatten missed its deadline",
                f"positions still open after {result.seconds:.1f}s ({why}): {remaining}",
                self._now(),
                {"orders": result.orders},
            )
        )
        values: dict[str, Any] = {f"remaining_{c}": s for c, s in remaining.items()}
        values["seconds"] = round(result.seconds, 3)
        await self.coordinator.escalate(Trigger(Reason.FLATTEN_DEADLINE_MISSED, Mode.HALT, values))

    def _now(self) -> float:
        return self._clock.time() if self._clock is not None else 0.0

    def status(self) -> dict[str, Any]:
        return {
            "tracks": self.governor.status() if self.governor is not None else {},
            "default_open": self.config.default_open,
            "flatten": self.flattener.status(),
        }
