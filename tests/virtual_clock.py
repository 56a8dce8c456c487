"""The virtual clock the tests run on: Trio's autojump clock, held still while a thread works.

pytest-trio's ``autojump_clock`` is ``MockClock(autojump_threshold=0)``: the moment no task can
run, the clock jumps to the next deadline. A task waiting on a worker thread (the journal's
SQLite writes, the startup's recovery, a snapshot written to disk) cannot run either, so while
the thread works for real milliseconds the clock jumps deadline after deadline: under load, a
300 ms write let tens of virtual seconds pass, and a drill waiting ten virtual seconds for the
kill switch timed out (CI, ``test_the_day_rolls_at_midnight_utc``). A real service's clock moves
300 ms in that time, not tens of seconds, so the jump was the harness's, not mm's.

``thread_held_clock()`` jumps only when no worker thread of Trio's default limiter (``to_thread``
and everything built on it) is busy; while one is, the run loop waits for it in real time, in
steps of ``THREAD_WAIT_S``, and its answer wakes the loop at once. MockClock is final, so this
is a MockClock whose ``_autojump`` (the hook Trio's run loop calls when the clock may jump) is
wrapped on the instance; ``tests/test_virtual_clock.py`` fails if Trio stops calling that hook.
"""

from __future__ import annotations

import trio
from trio.testing import MockClock

THREAD_WAIT_S = 0.001  # real seconds the loop waits on a busy thread before looking again


def thread_held_clock() -> MockClock:
    """An autojump clock that stands still while a worker thread is busy."""
    clock = MockClock(autojump_threshold=0)
    jump = clock._autojump

    def autojump_unless_a_thread_works() -> None:
        if trio.to_thread.current_default_thread_limiter().borrowed_tokens:
            clock.autojump_threshold = THREAD_WAIT_S
            return
        clock.autojump_threshold = 0
        jump()

    clock._autojump = autojump_unless_a_thread_works  # type: ignore[method-assign]
    return clock
