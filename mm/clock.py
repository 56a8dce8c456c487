"""The one clock of the service: every time the shell reads comes from here.

``monotonic()`` is Trio's clock (``trio.current_time()``): timers, deadlines, rates and ages;
``monotonic_ns()`` is the same clock in whole nanoseconds, for stamps that latencies are
measured from (a frame's arrival: a whole-millisecond wall stamp would bias them by up to 1 ms).
``wall()`` / ``wall_ms()`` is wall-clock time (epoch seconds / milliseconds): journal entries,
checkpoints, nonces, venue timestamps, session schedules. Both follow the clock the Trio run was
started with, so the whole service, the embedded simulator included, runs on Trio's
``MockClock`` in tests and simulations: on a real clock ``wall()`` is the system's time (it
follows NTP and clock steps); on a ``MockClock`` it is the system time at the run's first read
plus the virtual time elapsed since, so an hour of trading passes in seconds and still reads as
a sensible date. ``pin(epoch_s)`` fixes where a run's wall time starts (reproducible runs).

Outside a Trio run (command-line helpers) ``wall()`` is the system's time and ``monotonic()``
raises, as Trio does.
"""

from __future__ import annotations

import sys
import time

import trio
from trio.lowlevel import RunVar, current_clock

# Wall time minus Trio time, fixed per run when the run uses a MockClock (None: system time).
_OFFSET: RunVar[float | None] = RunVar("mm_clock_wall_offset")


def monotonic() -> float:
    """Seconds on Trio's clock (the current run's, virtual under a MockClock)."""
    return trio.current_time()


def monotonic_ns() -> int:
    """``monotonic()`` in whole nanoseconds (virtual under a MockClock, as ``monotonic``)."""
    return int(trio.current_time() * 1_000_000_000)


def _offset() -> float | None:
    try:
        return _OFFSET.get()
    except LookupError:
        pass
    offset = None
    if _is_mock_clock(current_clock()):
        offset = time.time() - trio.current_time()
    _OFFSET.set(offset)
    return offset


def _is_mock_clock(clock: trio.abc.Clock) -> bool:
    """Whether ``clock`` is Trio's MockClock. Only a run that imported ``trio.testing`` can have
    one, so the service does not import it (it pulls in pytest, a tenth of a second of every
    ``mm`` command's start) just to find out."""
    testing = sys.modules.get("trio.testing")
    return testing is not None and isinstance(clock, testing.MockClock)


def wall() -> float:
    """Wall-clock time in seconds since the epoch, on the run's clock (see the module)."""
    try:
        offset = _offset()
    except RuntimeError:  # not inside trio.run
        return time.time()
    if offset is None:
        return time.time()
    return offset + trio.current_time()


def wall_ms() -> int:
    """``wall()`` in whole milliseconds."""
    return int(wall() * 1000)


def pin(epoch_s: float) -> None:
    """Make this run's wall time read ``epoch_s`` now and advance with Trio's clock from here
    (for simulations that must reproduce byte for byte, and tests that need a given date)."""
    _OFFSET.set(epoch_s - trio.current_time())
