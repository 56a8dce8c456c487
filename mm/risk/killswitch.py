"""The kill switch: a latching emergency stop, with its reasons, checkpoints and manual rearm.

Once tripped, the switch stays tripped until an operator rearms it (``rearm``); nothing else
resets it. The first trip sets the switch's reason; later trips while tripped are recorded (the
most recent ``MAX_FURTHER_TRIPS``, with a count of those dropped) but never change the original
reason. ``trip`` never raises: it is the path of last resort. ``latches`` counts the trips that
tripped an armed switch (what an operator calls "trips"); ``repeats`` tells a monitor's request
that only says again what is recorded (its condition still holds) from a new trip.

Each trip carries its reason, the values that tripped it (plain JSON data, e.g.
``{"loss": 512.0, "limit": 500.0}``; ``REASON_VALUES`` lists the keys each reason is expected to
carry) and its time.

Persistence: ``checkpoint()`` gives plain JSON data; ``KillSwitch.restore(checkpoint, now)``
rebuilds a switch at start. A checkpoint younger than ``CHECKPOINT_MAX_AGE_S`` (24 h) restores
a tripped switch (trading stays stopped across a restart); transient reasons
(``TRANSIENT_REASONS``: position_runaway) are not restored; an older checkpoint is ignored (an
armed switch). Exactly 24 h old counts as older.

Pure: no I/O and no clock reads. Times are seconds since the Unix epoch (wall-clock time, since
checkpoints outlive the process), passed in by the caller.
"""

from __future__ import annotations

import enum
import math
from collections.abc import Mapping
from typing import Any, Final

import attrs

Value = float | int | str | bool | None
"""A trip's value: plain JSON data."""


class KillReason(enum.StrEnum):
    MAX_LOSS = "max_loss"
    MAX_DRAWDOWN = "max_drawdown"
    MAX_POSITION = "max_position"
    POSITION_RUNAWAY = "position_runaway"
    STALE_DATA = "stale_data"
    RATE_LIMIT = "rate_limit"
    CASCADE = "cascade"
    PRICE_VELOCITY = "price_velocity"  # a flash move, which the cascade severity may not confirm
    MANUAL = "manual"
    LIQUIDATION_DETECTED = "liquidation_detected"
    ESCALATION = "escalation"  # the trading subtree kept crashing past its restart intensity


REASON_VALUES: Final[Mapping[KillReason, tuple[str, ...]]] = {
    KillReason.MAX_LOSS: ("loss", "limit"),
    KillReason.MAX_DRAWDOWN: ("drawdown", "limit"),
    KillReason.MAX_POSITION: ("value", "limit"),
    KillReason.POSITION_RUNAWAY: ("contracts", "limit"),
    KillReason.STALE_DATA: ("elapsed", "threshold"),
    KillReason.RATE_LIMIT: ("count", "limit"),
    KillReason.CASCADE: ("severity",),
    KillReason.PRICE_VELOCITY: ("velocity", "limit"),
    KillReason.MANUAL: ("reason",),
    KillReason.LIQUIDATION_DETECTED: ("position_delta", "max_position"),
    KillReason.ESCALATION: ("error",),
}
"""The values each reason is expected to carry (documentation; ``trip`` does not enforce it)."""

TRANSIENT_REASONS: Final[frozenset[KillReason]] = frozenset({KillReason.POSITION_RUNAWAY})
"""Reasons not restored from a checkpoint: the condition is re-evaluated after a restart."""

CHECKPOINT_MAX_AGE_S: Final = 24 * 60 * 60.0
CHECKPOINT_VERSION: Final = 1
MAX_FURTHER_TRIPS: Final = 64


def _copy_values(values: Mapping[str, Value]) -> dict[str, Value]:
    return dict(values)


@attrs.frozen(slots=True)
class Trip:
    """One trip: why, with what values, when (seconds since the epoch)."""

    reason: KillReason
    values: Mapping[str, Value] = attrs.field(converter=_copy_values, hash=False)
    at: float

    def to_json(self) -> dict[str, Any]:
        return {"reason": self.reason.value, "values": dict(self.values), "at": self.at}

    @classmethod
    def from_json(cls, data: Any) -> Trip:
        if not isinstance(data, dict):
            raise ValueError(f"a trip must be an object, got {data!r}")
        try:
            reason = KillReason(data["reason"])
            values = data.get("values", {})
            at = data["at"]
        except (KeyError, ValueError) as error:
            raise ValueError(f"bad trip {data!r}: {error}") from None
        if not isinstance(values, dict):
            raise ValueError(f"a trip's values must be an object, got {values!r}")
        if isinstance(at, bool) or not isinstance(at, int | float) or not math.isfinite(at):
            raise ValueError(f"a trip's time must be a number, got {at!r}")
        return cls(reason, values, float(at))


@attrs.frozen(slots=True)
class RearmRecord:
    """The audit record of a rearm: who, why, when, and what it reset.

    ``reset`` is the original trip then the further ones recorded (empty when the switch was not
    tripped); ``dropped`` counts further trips that were not kept.
    """

    who: str
    why: str
    at: float
    reset: tuple[Trip, ...]
    dropped: int = 0

    @property
    def was_tripped(self) -> bool:
        return bool(self.reset)

    def to_json(self) -> dict[str, Any]:
        return {
            "who": self.who,
            "why": self.why,
            "at": self.at,
            "reset": [trip.to_json() for trip in self.reset],
            "dropped": self.dropped,
        }


class KillSwitch:
    """A latching kill switch; armed (not tripped) when new."""

    def __init__(self) -> None:
        self._original: Trip | None = None
        self._further: list[Trip] = []
        self._dropped = 0
        self._latches = 0

    # --- state -------------------------------------------------------------------------------

    @property
    def tripped(self) -> bool:
        return self._original is not None

    @property
    def reason(self) -> KillReason | None:
        """The original reason while tripped, else None."""
        return None if self._original is None else self._original.reason

    @property
    def original(self) -> Trip | None:
        return self._original

    @property
    def trips(self) -> tuple[Trip, ...]:
        """Every trip kept since the last rearm, the original first."""
        if self._original is None:
            return ()
        return (self._original, *self._further)

    @property
    def reasons(self) -> frozenset[KillReason]:
        return frozenset(trip.reason for trip in self.trips)

    @property
    def latches(self) -> int:
        """Trips that tripped the switch while it was armed, over its life (a restored trip
        counts); requests recorded while it was already tripped do not."""
        return self._latches

    def repeats(self, reason: KillReason) -> bool:
        """Whether a trip for ``reason`` now only repeats one already recorded: a monitor still
        seeing its condition. An operator's kill is never a repeat."""
        return reason is not KillReason.MANUAL and reason in self.reasons

    @property
    def dropped(self) -> int:
        """Further trips not kept (beyond ``MAX_FURTHER_TRIPS``)."""
        return self._dropped

    # --- transitions -------------------------------------------------------------------------

    def trip(self, reason: KillReason, values: Mapping[str, Value], now: float) -> bool:
        """Trip the switch (or record a further trip); True when this trip latched it."""
        trip = Trip(reason, values, now)
        if self._original is None:
            self._original = trip
            self._latches += 1
            return True
        self._further.append(trip)
        if len(self._further) > MAX_FURTHER_TRIPS:
            del self._further[0]
            self._dropped += 1
        return False

    def rearm(self, who: str, why: str, now: float) -> RearmRecord:
        """Reset the switch (the only way); ``who`` and ``why`` must be given (ValueError)."""
        if not who.strip():
            raise ValueError("a rearm needs who")
        if not why.strip():
            raise ValueError("a rearm needs why")
        record = RearmRecord(who, why, now, self.trips, self._dropped)
        self._original = None
        self._further = []
        self._dropped = 0
        return record

    # --- persistence -------------------------------------------------------------------------

    def checkpoint(self, now: float | None = None) -> dict[str, Any]:
        """The switch's state as plain JSON data.

        ``saved_at`` is ``now`` when given, else the latest trip's time (None when armed); a
        restore measures the checkpoint's age from it. Pass ``now`` when checkpointing
        periodically, so a long-tripped switch is not forgotten on restart.
        """
        trips = self.trips
        saved_at = now if now is not None else (max(t.at for t in trips) if trips else None)
        return {
            "version": CHECKPOINT_VERSION,
            "saved_at": saved_at,
            "tripped": self.tripped,
            "trips": [trip.to_json() for trip in trips],
            "dropped": self._dropped,
        }

    @classmethod
    def restore(cls, checkpoint: Mapping[str, Any] | None, now: float) -> KillSwitch:
        """A switch from a checkpoint (ValueError when malformed), as the module describes."""
        switch = cls()
        if checkpoint is None:
            return switch
        if checkpoint.get("version") != CHECKPOINT_VERSION:
            raise ValueError(f"unknown checkpoint version {checkpoint.get('version')!r}")
        raw_trips = checkpoint.get("trips")
        if not isinstance(raw_trips, list):
            raise ValueError("a checkpoint's trips must be a list")
        trips = [Trip.from_json(item) for item in raw_trips]
        saved_at = checkpoint.get("saved_at")
        if not trips:
            return switch
        if isinstance(saved_at, bool) or not isinstance(saved_at, int | float):
            raise ValueError(f"a tripped checkpoint needs saved_at, got {saved_at!r}")
        if now - saved_at >= CHECKPOINT_MAX_AGE_S:
            return switch  # stale: ignored
        for trip in trips:
            if trip.reason not in TRANSIENT_REASONS:
                switch.trip(trip.reason, trip.values, trip.at)
        return switch
