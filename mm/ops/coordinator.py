"""The mode coordinator: one place that changes the autonomy mode and makes it take effect.

The coordinator owns the autonomy slot of the permission board (``mm.execution.permissions``)
and writes it the moment ``Autonomy`` moves, so the strategy, the pre-trade checks and the
flattener, which read the board, all see a mode change at the same instant. Then, in order:
HALT cancels every open order (shielded, within a deadline); the transition is journaled with
its evidence (the triggering values, recent events, a metrics snapshot) and checkpointed, so a
restart keeps the mode; the operator is notified (HALT is critical and bypasses the rate limit).

Commands come from sync code (the admin server, the flattener) through ``request``; the
autonomy monitor calls ``escalate`` directly from its own task.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Awaitable, Callable
from typing import Any

import attrs
import trio
from loguru import logger
from prometheus_client import CollectorRegistry, Counter, Gauge

from mm import clock
from mm.execution.permissions import OPEN, Grant, Level, Slot
from mm.journal import Journal
from mm.ops.autonomy import REASONS, Autonomy, AutonomyConfig, Mode, Reason, Transition, Trigger
from mm.ops.notify import Notification, Severity

JOURNAL_KIND = "autonomy"
RECENT_EVENTS = 50


@attrs.frozen
class Escalate:
    trigger: Trigger


@attrs.frozen
class RearmMode:
    who: str
    why: str


Command = Escalate | RearmMode


def metrics_snapshot(registry: CollectorRegistry) -> dict[str, float]:
    """Every mm_ sample except histogram buckets, as ``name{labels}: value``."""
    snapshot: dict[str, float] = {}
    for family in registry.collect():
        for sample in family.samples:
            if not sample.name.startswith("mm_") or sample.name.endswith(("_bucket", "_created")):
                continue
            labels = ",".join(f'{k}="{v}"' for k, v in sorted(sample.labels.items()))
            snapshot[f"{sample.name}{{{labels}}}" if labels else sample.name] = sample.value
    return snapshot


MODE_GRANTS = {
    Mode.NORMAL: OPEN,
    Mode.QUARANTINED: Grant(Level.PULLED, "mode: no new orders"),
    Mode.REDUCE_ONLY: Grant(Level.REDUCE_ONLY, "mode: reduce only"),
    Mode.HALT: Grant(Level.HALTED, "the mode is HALT"),
}


def mode_grant(mode: Mode) -> Grant:
    """The mode as its slot of the permission board: HALT sends nothing at all, QUARANTINED no
    new orders (resting quotes go), REDUCE_ONLY only reducing orders."""
    return MODE_GRANTS[mode]


class ModeCoordinator:
    def __init__(
        self,
        config: AutonomyConfig,
        journal: Journal,
        notify: Callable[[Notification], None],
        registry: CollectorRegistry,
        cancel_all: Callable[[], Awaitable[object]],
        permission: Slot,
        rearmed: Callable[[], None],
    ) -> None:
        self.autonomy = Autonomy(config)
        self.permission = permission  # its slot of the permission board, written with the mode
        self.journal = journal
        self.notify = notify
        self.registry = registry
        self.cancel_all = cancel_all
        self.recent: deque[str] = deque(maxlen=RECENT_EVENTS)
        self.raised: dict[str, Trigger] = {}  # the monitor's latest triggers, by reason
        self.rearmed = rearmed  # told after a rearm has taken effect (the session resumes)
        self._send, self._commands = trio.open_memory_channel[Command](256)
        self._mode = Gauge(
            "mm_autonomy_mode",
            "Autonomy mode: 0 normal, 1 quarantined, 2 reduce_only, 3 halt.",
            registry=registry,
        )
        self._transitions = Counter(
            "mm_autonomy_transitions",
            "Autonomy mode changes, by the mode entered and the reason.",
            ["mode", "reason"],
            registry=registry,
        )
        self._triggers = Gauge(
            "mm_autonomy_trigger",
            "1 while the autonomy monitor sees this trigger, else 0.",
            ["reason"],
            registry=registry,
        )
        for reason in REASONS:
            self._triggers.labels(reason=reason.value).set(0)

    # --- the mode (the strategy and the pre-trade checks read it from the board) -----------

    @property
    def mode(self) -> Mode:
        return self.autonomy.mode

    @property
    def reason(self) -> Reason | None:
        """Why the mode is what it is (None: NORMAL, or the operator's rearm)."""
        return self.autonomy.reason

    # --- restore, commands ------------------------------------------------------------------

    def restore(self, checkpoint: dict[str, Any] | None) -> None:
        """Before start: the journal's last mode (REDUCE_ONLY and HALT survive a restart)."""
        self.autonomy = Autonomy.restore(self.autonomy.config, checkpoint)
        self.permission.set(mode_grant(self.mode))
        self._mode.set(int(self.mode))
        if self.mode is not Mode.NORMAL:
            reason = self.autonomy.reason.value if self.autonomy.reason else None
            logger.warning("autonomy mode restored: {} ({})", self.mode.label, reason)

    def note(self, event: str) -> None:
        """An event worth showing as evidence with the next transition."""
        self.recent.append(f"{clock.wall():.3f} {event}")

    def request(self, command: Command) -> None:
        self._send.send_nowait(command)

    def observe(self, triggers: list[Trigger]) -> None:
        """The monitor's current triggers, for status and the trigger gauge."""
        current = {trigger.reason.value: trigger for trigger in triggers}
        for reason in set(self.raised) | set(current):
            self._triggers.labels(reason=reason).set(1 if reason in current else 0)
        self.raised = current

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Serve commands (part of the autonomy child)."""
        task_status.started()
        async for command in self._commands:
            if isinstance(command, Escalate):
                await self.escalate(command.trigger)
            else:
                await self.rearm(command.who, command.why)

    # --- transitions ------------------------------------------------------------------------

    async def escalate(self, trigger: Trigger) -> Transition | None:
        transition = self.autonomy.escalate(trigger, clock.wall())
        if transition is not None:
            await self._apply(transition)
        return transition

    async def recover(self, quiet_since: float | None) -> Transition | None:
        transition = self.autonomy.recover(quiet_since, clock.wall())
        if transition is not None:
            await self._apply(transition)
        return transition

    async def rearm(self, who: str, why: str) -> Transition | None:
        transition = self.autonomy.rearm(who, why, clock.wall())
        if transition is not None:
            await self._apply(transition)
            self.rearmed()
        return transition

    async def _apply(self, transition: Transition) -> None:
        self.permission.set(mode_grant(transition.mode))  # the instant the mode moves
        self._mode.set(int(transition.mode))
        reason = transition.reason.value if transition.reason else "rearm"
        self._transitions.labels(mode=transition.mode.label, reason=reason).inc()
        line = f"autonomy {transition.previous.label} -> {transition.mode.label} ({reason})"
        if transition.mode is Mode.HALT:
            logger.critical("{} {}", line, dict(transition.values))
            await self.cancel_all()
        elif transition.mode > transition.previous:
            logger.warning("{} {}", line, dict(transition.values))
        else:
            logger.warning("{} by {}: {}", line, transition.who or "recovery", transition.why)
        self.note(line)
        evidence = {
            "triggers": {r: dict(t.values) for r, t in self.raised.items()},
            "recent_events": list(self.recent),
            "metrics": metrics_snapshot(self.registry),
        }
        await self.journal.record(
            JOURNAL_KIND,
            transition=transition.to_json(),
            checkpoint=self.autonomy.checkpoint(),
            evidence=evidence,
        )
        self.notify(_notification(transition))

    def status(self) -> dict[str, Any]:
        return {
            **self.autonomy.status(),
            "triggers": {reason: dict(t.values) for reason, t in self.raised.items()},
        }


def _notification(transition: Transition) -> Notification:
    reason = transition.reason.value if transition.reason else "rearm"
    fields = dict(transition.values)
    if transition.who:
        fields["who"] = transition.who
        fields["why"] = transition.why
    if transition.mode is Mode.HALT:
        severity, kind = Severity.CRITICAL, "halt"
    elif transition.mode > transition.previous:
        severity, kind = Severity.WARNING, "mode"
    else:
        severity, kind = Severity.INFO, "mode"
    title = f"mm {transition.mode.label.upper()} ({reason})"
    text = f"autonomy mode {transition.previous.label} -> {transition.mode.label}: {reason}"
    return Notification(kind, severity, title, text, transition.at, fields)
