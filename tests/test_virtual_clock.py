"""The tests' virtual clock holds still while a worker thread works, and only then."""

from __future__ import annotations

import time

import trio
from trio.testing import MockClock

from tests.virtual_clock import thread_held_clock

WORK_S = 0.2  # real seconds of a worker thread's work


async def virtual_seconds_during_thread_work() -> float:
    """Virtual seconds that pass while a thread works ``WORK_S`` real seconds, with a task
    beside it that wakes every virtual second (as the service's periodic tasks do)."""

    async def ticking() -> None:
        while True:  # noqa: ASYNC110 - a periodic task, as the service's are
            await trio.sleep(1.0)

    async with trio.open_nursery() as nursery:
        nursery.start_soon(ticking)
        start = trio.current_time()
        await trio.to_thread.run_sync(time.sleep, WORK_S)
        elapsed = trio.current_time() - start
        nursery.cancel_scope.cancel()
    return elapsed


def test_the_autojump_clock_alone_lets_virtual_time_run_during_a_thread() -> None:
    """Why the held clock exists (and a check that Trio still calls the hook it overrides)."""
    elapsed = trio.run(virtual_seconds_during_thread_work, clock=MockClock(autojump_threshold=0))
    assert elapsed > 10


def test_the_clock_stands_still_while_a_worker_thread_works() -> None:
    elapsed = trio.run(virtual_seconds_during_thread_work, clock=thread_held_clock())
    assert elapsed == 0


async def test_the_tests_autojump_clock_is_held_and_jumps_when_no_thread_works(
    autojump_clock: MockClock,
) -> None:
    assert await virtual_seconds_during_thread_work() == 0  # the fixture is the held clock
    start = trio.current_time()
    await trio.sleep(3600)
    assert trio.current_time() - start == 3600
    await trio.to_thread.run_sync(time.sleep, 0.01)
    await trio.sleep(60)  # a jump after a thread's work is as immediate as before it
    assert trio.current_time() - start == 3660
