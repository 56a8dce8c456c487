"""Readiness: is mm trading now, and if not, why (``GET /readyz``, ``mm status``).

Liveness and readiness are two questions. ``/healthz`` answers "is the process alive and its
supervision tree up": a container runtime restarts a process that is not, and must never
restart one for standing aside on purpose. ``/readyz`` answers "is it trading": it is not
while the service starts or stops, while a part of its supervision tree is not running (a
restarted subtree whose children are still coming up trades with none of them),
while the kill switch is tripped, while the autonomy mode
is anything but NORMAL (QUARANTINED, REDUCE_ONLY, HALT), while the user stream is out of sync
with the venue (quoting is blocked until it resyncs), while a startup step waits on the
venue's rate limit, or while the venue refuses the signing key for the account. Each is a
reason an operator can read.

Pure: no I/O and no clock reads; the shell gathers a ``TradingState`` and asks ``not_trading``.
"""

from __future__ import annotations

import attrs

from mm.ops.autonomy import Mode


@attrs.frozen
class TradingState:
    """What decides whether mm trades, read by the shell at one moment."""

    service: str  # the service's own state: starting, running, stopping, failed
    killswitch: str | None  # the trip's reason while tripped; None while armed
    mode: Mode
    mode_reason: str | None  # why the mode was entered (None for NORMAL or unknown)
    in_sync: bool  # the user stream's gate is open: orders, fills, positions follow the venue
    waiting: str | None = None  # a startup step waiting (on the venue's rate limit), and why
    access: str | None = None  # why the venue refuses the signing key for the account
    down: tuple[str, ...] = ()  # supervised children not running, as /healthz lists them


def not_trading(state: TradingState) -> list[str]:
    """Every reason mm is not trading now, the gravest first; empty while it trades."""
    reasons = []
    if state.service != "running":
        reasons.append(f"mm is {state.service}")
    reasons.extend(state.down)
    if state.killswitch is not None:
        reasons.append(f"kill switch tripped ({state.killswitch})")
    if state.mode is not Mode.NORMAL:
        why = f" ({state.mode_reason})" if state.mode_reason else ""
        reasons.append(f"mode {state.mode.name}{why}")
    if state.access is not None:
        reasons.append(f"the venue refuses the key for the account: {state.access}")
    if state.waiting is not None:
        reasons.append(f"startup waiting: {state.waiting}")
    if not state.in_sync:
        reasons.append("not in sync with the venue (quoting blocked until the user stream resyncs)")
    return reasons
