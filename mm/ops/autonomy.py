"""Autonomy modes: NORMAL, QUARANTINED, REDUCE_ONLY, HALT, and the rules for moving between them.

The modes, from the mildest:

- ``NORMAL``: trade.
- ``QUARANTINED``: stand aside. No new quotes (resting ones are canceled), positions are held.
  Entered when margin usage passes its warning level; it returns to NORMAL by itself once no
  trigger has been raised for ``quarantine_recover_after_s``.
- ``REDUCE_ONLY``: get out. Only orders that shrink a position go out. Entered on the platform
  triggers (journal stale, feed gaps, reconnect flapping, queue depth, memory, reconciliation
  drift, margin usage) and by ``mm flatten``. By default only ``mm rearm`` leaves it.
- ``HALT``: stop. No orders at all; every open order is canceled. Entered on a drawdown past its
  limit or a missed flatten deadline. Only ``mm rearm`` leaves it, never a timer.

Automatic transitions only go to stricter modes (the one exception is the configured recovery
above). Reasons are one frozen enumeration: a trigger with a reason outside it cannot be built.

Pure: no I/O and no clock reads; ``now`` is wall-clock seconds passed in by the shell.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from typing import Any, Final

import attrs

from mm.settings import at_least, non_negative, positive, setting

Value = str | int | float | bool | None


class Mode(enum.IntEnum):
    NORMAL = 0
    QUARANTINED = 1
    REDUCE_ONLY = 2
    HALT = 3

    @property
    def label(self) -> str:
        return self.name.lower()


class Reason(enum.StrEnum):
    """Why the mode changed: the frozen set of reason codes (also a metric label)."""

    JOURNAL_STALE = "journal_stale"
    FEED_GAP_MAJORITY = "feed_gap_majority"
    FEED_RECONNECT_FLAPPING = "feed_reconnect_flapping"
    QUEUE_DEPTH_EXCEEDED = "queue_depth_exceeded"
    MEMORY_PRESSURE = "memory_pressure"
    RECONCILIATION_DRIFT = "reconciliation_drift"
    MARGIN_WARNING = "margin_warning"
    MARGIN_USAGE = "margin_usage"
    PNL_PEAK_DRAWDOWN = "pnl_peak_drawdown"
    FLATTEN_DEADLINE_MISSED = "flatten_deadline_missed"
    OPERATOR_FLATTEN = "operator_flatten"


REASONS: Final[frozenset[Reason]] = frozenset(Reason)


class UnknownReason(ValueError):
    """A trigger named a reason outside the frozen set."""


def _frozen_reason(_instance: Any, _attribute: Any, value: Any) -> None:
    if type(value) is not Reason:
        raise UnknownReason(f"{value!r} is not one of the frozen reason codes {sorted(REASONS)}")


@attrs.frozen
class Trigger:
    """A condition seen by the monitor: the mode it calls for, and the values that showed it."""

    reason: Reason = attrs.field(validator=_frozen_reason)
    mode: Mode
    values: Mapping[str, Value] = attrs.field(factory=dict)


@attrs.frozen
class Transition:
    previous: Mode
    mode: Mode
    reason: Reason | None  # None for a rearm
    at: float
    automatic: bool
    values: Mapping[str, Value] = attrs.field(factory=dict)
    who: str = ""
    why: str = ""

    def to_json(self) -> dict[str, Any]:
        return {
            "previous": self.previous.label,
            "mode": self.mode.label,
            "reason": self.reason.value if self.reason else None,
            "at": self.at,
            "automatic": self.automatic,
            "values": dict(self.values),
            "who": self.who,
            "why": self.why,
        }


@attrs.frozen
class AutonomyConfig:
    """The ``[autonomy]`` section: how often to look, and the thresholds of each trigger."""

    check_every_s: float = setting(0.25, positive)
    # Journal entries waiting longer than this for a successful write.
    journal_stale_s: float = setting(60.0, positive)
    # A symbol whose book is older than this has a feed gap; more than this fraction of the
    # symbols with a gap is a majority gap.
    feed_gap_s: float = setting(10.0, positive)
    feed_gap_fraction: float = setting(0.5, positive)
    # Feed reconnects within the window that count as flapping.
    flapping_reconnects: int = setting(5, at_least(1))
    flapping_window_s: float = setting(300.0, positive)
    # A channel or queue fuller than this fraction of its capacity.
    queue_depth_fraction: float = setting(0.9, positive)
    # Resident memory of the process, in MiB.
    max_rss_mib: float = setting(2048.0, positive)
    # How often the venue's positions and margin are read, and how long a difference between
    # local and venue positions (beyond drift_tolerance, in coin) may last before it counts.
    venue_poll_s: float = setting(2.0, positive)
    drift_tolerance: float = setting(1e-9, non_negative)
    drift_grace_s: float = setting(10.0, non_negative)
    # Margin used as a fraction of account value: quarantine, then reduce only.
    margin_warning: float = setting(0.5, positive)
    margin_reduce_only: float = setting(0.8, positive)
    # HALT when total PnL falls this fraction of the venue's account value below its peak: the
    # same measure as risk.max_drawdown (which trips the kill switch), and below it, so HALT
    # acts first. Not judged while the account value is unknown.
    max_drawdown: float = setting(0.01, positive)
    # QUARANTINED returns to NORMAL after this long without any trigger; REDUCE_ONLY does the
    # same only when reduce_only_needs_rearm is false. HALT always needs mm rearm.
    quarantine_recover_after_s: float = setting(30.0, non_negative)
    reduce_only_needs_rearm: bool = setting(True)


class Autonomy:
    """The current mode and its history; transitions follow the rules in the module docstring."""

    def __init__(self, config: AutonomyConfig) -> None:
        self.config = config
        self.mode = Mode.NORMAL
        self.reason: Reason | None = None
        self.since: float | None = None
        self.values: Mapping[str, Value] = {}
        self.transitions: list[Transition] = []

    def escalate(self, trigger: Trigger, now: float) -> Transition | None:
        """Move to the trigger's mode if it is stricter than the current one. An operator's
        flatten in the same mode takes over the reason, so that mode no longer recovers by
        itself."""
        pinned = (
            trigger.reason is Reason.OPERATOR_FLATTEN
            and trigger.mode == self.mode
            and self.mode is not Mode.NORMAL
            and self.reason is not Reason.OPERATOR_FLATTEN
        )
        if trigger.mode <= self.mode and not pinned:
            return None
        return self._move(trigger.mode, trigger.reason, now, True, trigger.values)

    def recover(self, quiet_since: float | None, now: float) -> Transition | None:
        """Back to NORMAL when the mode allows it and nothing has triggered since quiet_since."""
        config = self.config
        recoverable = self.mode is Mode.QUARANTINED or (
            self.mode is Mode.REDUCE_ONLY
            and not config.reduce_only_needs_rearm
            and self.reason is not Reason.OPERATOR_FLATTEN
        )
        if not recoverable or quiet_since is None:
            return None
        if now - quiet_since < config.quarantine_recover_after_s:
            return None
        values = {"quiet_s": round(now - quiet_since, 3)}
        return self._move(Mode.NORMAL, None, now, True, values)

    def rearm(self, who: str, why: str, now: float) -> Transition | None:
        """The operator's way back to NORMAL from any mode."""
        if self.mode is Mode.NORMAL:
            return None
        return self._move(Mode.NORMAL, None, now, False, {}, who=who, why=why)

    def _move(
        self,
        mode: Mode,
        reason: Reason | None,
        now: float,
        automatic: bool,
        values: Mapping[str, Value],
        *,
        who: str = "",
        why: str = "",
    ) -> Transition:
        transition = Transition(self.mode, mode, reason, now, automatic, dict(values), who, why)
        self.mode, self.reason, self.since, self.values = mode, reason, now, dict(values)
        self.transitions.append(transition)
        return transition

    # --- persistence: a stricter mode survives a restart ------------------------------------

    def checkpoint(self) -> dict[str, Any]:
        return {
            "mode": self.mode.label,
            "reason": self.reason.value if self.reason else None,
            "since": self.since,
            "values": dict(self.values),
        }

    @classmethod
    def restore(cls, config: AutonomyConfig, data: Mapping[str, Any] | None) -> Autonomy:
        """The mode journaled last. QUARANTINED is not kept: it is re-entered if still due."""
        autonomy = cls(config)
        if not data:
            return autonomy
        try:
            mode = Mode[str(data["mode"]).upper()]
            reason = Reason(data["reason"]) if data.get("reason") else None
        except (KeyError, ValueError):
            return autonomy
        if mode <= Mode.QUARANTINED:
            return autonomy
        autonomy.mode, autonomy.reason = mode, reason
        autonomy.since = data.get("since")
        autonomy.values = dict(data.get("values") or {})
        return autonomy

    def status(self) -> dict[str, Any]:
        return {
            **self.checkpoint(),
            "transitions": len(self.transitions),
            "last": self.transitions[-1].to_json() if self.transitions else None,
        }
