"""Connection health per feed: a pure state machine (no I/O, no clock of its own).

A plain building block below the venue port: every venue's socket manager drives one (it
reports connects, frames and failures), and the generic feeds and the port read its states.

States::

    CONNECTING ──connected──► HEALTHY ◄──message── STALE
        │                       │  └──tick: no message for stale_after_s──►┘
        │                  disconnected                                      │
        │                       ▼                                            │
        └─attempt_failed─► RECONNECTING ◄────────────── disconnected ────────┘
              (x max_attempts)   │ └──connected──► HEALTHY
                                ▼
                              FAILED  (after max_attempts failed attempts in a row)

The shell (a WebSocket manager) reports what happens, with the time, and asks how long to wait
before the next attempt: exponential backoff with full jitter (``supervisors.backoff``), 1 s
initial, times 2, capped at 60 s, at most 10 attempts; a successful connect resets the count.

Attempt ``n`` of an outage (1-based) waits a delay drawn from ``[0, ceiling(n - 1)]``: after a
disconnect the first reconnect waits up to 1 s, the next up to 2 s, then 4, 8 … 60 s. The very
first connect of a feed is not delayed, so its second attempt waits up to 2 s.

"Message" means any frame from the venue, pongs included: HEALTHY says the connection is alive
and talking. With ``stale_readings_to_reconnect`` (default 2, as the reference's connection
supervisor) a connection that stays silent for that many stale periods in a row should be
reconnected; ``tick`` says so. Keep ``stale_after_s`` above ``ping_interval_s`` for
connections that may be quiet (a user stream), since pongs are then their only frames.
"""

from __future__ import annotations

import enum
import random
from collections.abc import Callable
from typing import Any

import attrs

from mm.settings import at_least, non_negative, positive, setting
from supervisors.backoff import Backoff


class State(enum.Enum):
    CONNECTING = "connecting"  # the first connect of this feed, not yet up
    HEALTHY = "healthy"  # up, and a message arrived within stale_after_s
    STALE = "stale"  # up, but silent for stale_after_s or more
    RECONNECTING = "reconnecting"  # lost; backing off between attempts
    FAILED = "failed"  # gave up after max_attempts failed attempts

    @property
    def up(self) -> bool:
        """Connected (whether or not messages are flowing)."""
        return self in (State.HEALTHY, State.STALE)


@attrs.frozen
class ConnectionConfig:
    """One connection's timing: staleness, pings, reconnect backoff, timeouts, buffers."""

    # No message for this long: STALE.
    stale_after_s: float = setting(10.0, positive)
    # This many stale periods in a row: reconnect (0: never reconnect for silence alone).
    stale_readings_to_reconnect: int = setting(2, at_least(0))
    # An application-level {"method":"ping"} this often (the venue drops sockets idle for 60 s).
    ping_interval_s: float = setting(50.0, positive)
    # No pong (nor any other frame) this long after a ping: the connection is dead.
    pong_timeout_s: float = setting(10.0, positive)
    # Reconnect backoff: full jitter, ceiling initial * multiplier**n, capped.
    backoff_initial_s: float = setting(1.0, positive)
    backoff_multiplier: float = setting(2.0, at_least(1))
    backoff_cap_s: float = setting(60.0, positive)
    # Failed attempts in a row before FAILED.
    max_attempts: int = setting(10, at_least(1))
    # A WebSocket post (info or action) without a reply after this long fails.
    post_timeout_s: float = setting(5.0, positive)
    # Opening the socket, the greeting, and every subscription acknowledged, within this.
    connect_timeout_s: float = setting(10.0, positive)
    # Closing handshake on the way out.
    disconnect_timeout_s: float = setting(2.0, non_negative)
    # The messages mm.websocket parses ahead of its reader from one socket read (the rest of
    # the bytes wait in its buffer), and the largest message accepted (payload bytes).
    message_queue_size: int = setting(64, at_least(1))
    max_message_size: int = setting(4 << 20, at_least(1024))
    # Bytes asked of the socket per read (4 KiB, trio-websocket's default, took several reads and
    # wakeups for a burst of 1.5-3 KB l2Book frames).
    receive_buffer_size: int = setting(64 << 10, at_least(1024))
    # Frames buffered per consumer before the consumer is "slow" and frames are dropped.
    subscription_buffer: int = setting(1024, at_least(1))

    @property
    def backoff(self) -> Backoff:
        return Backoff(
            initial=self.backoff_initial_s,
            multiplier=self.backoff_multiplier,
            cap=self.backoff_cap_s,
        )


@attrs.frozen
class Transition:
    """One change of state, as reported to ``on_change``."""

    name: str
    old: State
    new: State
    at: float
    reason: str
    attempts: int


@attrs.define
class ConnectionHealth:
    """The health of one connection. Every event takes ``now`` (seconds, any monotonic clock)."""

    config: ConnectionConfig = attrs.field(factory=ConnectionConfig)
    name: str = "connection"
    rng: random.Random = attrs.field(factory=random.Random)
    on_change: Callable[[Transition], None] | None = None  # told of every change of state
    state: State = State.CONNECTING
    attempts: int = 0  # failed attempts in a row since the last successful connect
    since: float = 0.0  # time of the last transition
    reason: str = "not started"
    last_message_at: float | None = None
    connects: int = 0  # successful connects, ever
    stale_readings: int = 0  # stale periods in a row
    _backoff: Backoff = attrs.field(init=False)

    def __attrs_post_init__(self) -> None:
        self._backoff = self.config.backoff

    # --- events ---------------------------------------------------------------------------------

    def start(self, now: float) -> None:
        """A (re)started feed: CONNECTING, no attempts counted."""
        self.attempts = 0
        self.stale_readings = 0
        self._move(State.CONNECTING, now, "starting")

    def connected(self, now: float) -> None:
        """The connection is up (and subscribed): HEALTHY, attempt count reset."""
        self.attempts = 0
        self.stale_readings = 0
        self.last_message_at = now
        self.connects += 1
        reason = "reconnected" if self.connects > 1 else "connected"
        self._move(State.HEALTHY, now, reason)

    def message(self, now: float) -> None:
        """A frame arrived."""
        self.last_message_at = now
        self.stale_readings = 0
        if self.state is State.STALE:
            self._move(State.HEALTHY, now, "message received")

    def tick(self, now: float) -> bool:
        """Check for silence; True when the connection should be reconnected for it."""
        if not self.state.up or self.last_message_at is None:
            return False
        last, period = self.last_message_at, self.config.stale_after_s
        silent = now - last
        # Whole stale periods so far, computed as next_check computes its deadlines (so that
        # a tick at a deadline always counts it, whatever the float rounding).
        readings = max(int(silent // period), 0)
        if now >= last + period * (readings + 1):
            readings += 1
        while readings > 0 and now < last + period * readings:
            readings -= 1
        if readings < 1:
            return False
        self.stale_readings = readings
        if self.state is State.HEALTHY:
            self._move(State.STALE, now, f"no message for {silent:.1f}s")
        limit = self.config.stale_readings_to_reconnect
        return bool(limit) and readings >= limit

    def disconnected(self, now: float, reason: str) -> float | None:
        """The connection was lost (or closed for silence): the delay before reconnecting.

        From CONNECTING or RECONNECTING this is a failed attempt (``attempt_failed``).
        None means FAILED: give up.
        """
        if self.state is State.FAILED:
            return None
        if not self.state.up:
            return self.attempt_failed(now, reason)
        self.attempts = 0
        self.stale_readings = 0
        self._move(State.RECONNECTING, now, reason)
        return self._backoff.delay(0, self.rng)

    def attempt_failed(self, now: float, reason: str) -> float | None:
        """A connect attempt failed: the delay before the next one, or None (FAILED)."""
        if self.state is State.FAILED:
            return None
        self.attempts += 1
        if self.attempts >= self.config.max_attempts:
            self._move(State.FAILED, now, f"gave up after {self.attempts} attempts; last: {reason}")
            return None
        self.reason = reason
        return self._backoff.delay(self.attempts, self.rng)

    # --- questions ------------------------------------------------------------------------------

    def next_check(self, now: float) -> float:
        """When ``tick`` next has something to decide (never earlier than needed)."""
        period = self.config.stale_after_s
        if not self.state.up or self.last_message_at is None:
            return now + period
        return max(now, self.last_message_at + period * (self.stale_readings + 1))

    def delay_ceiling(self, attempt: int) -> float:
        """The largest delay drawn before attempt ``attempt`` + 1 of an outage."""
        return self._backoff.ceiling(attempt)

    def snapshot(self) -> dict[str, Any]:
        """Plain data for status and metrics."""
        return {
            "name": self.name,
            "state": self.state.value,
            "attempts": self.attempts,
            "since": self.since,
            "reason": self.reason,
            "last_message_at": self.last_message_at,
            "connects": self.connects,
        }

    # --- internals ------------------------------------------------------------------------------

    def _move(self, new: State, now: float, reason: str) -> None:
        old = self.state
        self.state = new
        self.since = now
        self.reason = reason
        if self.on_change is not None and new is not old:
            self.on_change(Transition(self.name, old, new, now, reason, self.attempts))
