"""Ordered start: each child is ready before the next begins, and the supervisor reports ready
only once all of them are."""

from __future__ import annotations

import pytest
import trio
import trio.testing

from supervisors import Backoff, ChildState, Restart, Strategy, Supervisor
from tests.supervisors.helpers import (
    CRASH_BEFORE_READY,
    Act,
    MaxRng,
    MinRng,
    ScriptedChild,
    start,
    status_of,
)


async def test_next_child_begins_only_after_the_previous_one_is_ready(
    autojump_clock: trio.testing.MockClock,
) -> None:
    journal: list[str] = []
    slow = ScriptedChild("slow", Act(setup=3.0), journal=journal)
    slower = ScriptedChild("slower", Act(setup=2.0), journal=journal)
    quick = ScriptedChild("quick", journal=journal)
    supervisor = Supervisor("root", [slow.spec(), slower.spec(), quick.spec()])
    t0 = trio.current_time()
    async with trio.open_nursery() as nursery:
        await start(nursery, supervisor)
        ready = trio.current_time()
        states = [status.state for status in supervisor.status()]
        nursery.cancel_scope.cancel()

    assert journal == [
        "slow:begin",
        "slow:ready",
        "slower:begin",
        "slower:ready",
        "quick:begin",
        "quick:ready",
    ]
    assert slow.began == [t0]
    assert slower.began == [t0 + 3.0]
    assert quick.began == [t0 + 5.0]
    # Supervisor.run reported ready after the last child did, and not before
    assert ready == t0 + 5.0
    assert states == [ChildState.RUNNING] * 3


async def test_supervisor_start_waits_for_a_child_retrying_its_start(
    autojump_clock: trio.testing.MockClock,
) -> None:
    journal: list[str] = []
    shaky = ScriptedChild(
        "shaky", Act(setup=1.0, ready=False, runs_for=0.0), CRASH_BEFORE_READY, journal=journal
    )
    second = ScriptedChild("second", journal=journal)
    supervisor = Supervisor("root", [shaky.spec(), second.spec()], rng=MinRng())
    t0 = trio.current_time()
    async with trio.open_nursery() as nursery:
        await start(nursery, supervisor)
        ready = trio.current_time()
        statuses = supervisor.status()
        nursery.cancel_scope.cancel()

    assert shaky.invocations == 3
    assert len(shaky.crashed_at) == 2
    assert journal == [
        "shaky:begin",
        "shaky:begin",
        "shaky:begin",
        "shaky:ready",
        "second:begin",
        "second:ready",
    ]
    assert second.began == [shaky.ready_at[0]]
    assert ready == t0 + 1.0
    assert statuses[0].restarts == 2
    assert [status.state for status in statuses] == [ChildState.RUNNING] * 2


async def test_start_waits_through_the_backoff_of_a_retried_start(
    autojump_clock: trio.testing.MockClock,
) -> None:
    shaky = ScriptedChild("shaky", CRASH_BEFORE_READY)
    second = ScriptedChild("second")
    supervisor = Supervisor(
        "root", [shaky.spec(backoff=Backoff(initial=2.0)), second.spec()], rng=MaxRng()
    )
    async with trio.open_nursery() as nursery:
        t0 = trio.current_time()
        await start(nursery, supervisor)
        ready = trio.current_time()
        assert status_of(supervisor, "shaky").state is ChildState.RUNNING
        nursery.cancel_scope.cancel()
    assert shaky.began == [t0, t0 + 2.0]
    assert second.began == [t0 + 2.0]
    assert ready == t0 + 2.0


@pytest.mark.parametrize("strategy", list(Strategy))
@pytest.mark.parametrize(
    ("restart", "act"),
    [
        (Restart.TEMPORARY, CRASH_BEFORE_READY),
        (Restart.TRANSIENT, Act(ready=False, runs_for=0.0, ends="return")),
    ],
)
async def test_child_ending_for_good_before_ready_does_not_block_the_start(
    autojump_clock: trio.testing.MockClock, strategy: Strategy, restart: Restart, act: Act
) -> None:
    setup = ScriptedChild("setup", act)
    server = ScriptedChild("server")
    supervisor = Supervisor("root", [setup.spec(restart=restart), server.spec()], strategy=strategy)
    async with trio.open_nursery() as nursery:
        await start(nursery, supervisor)  # TooSlowError if the start is never reported
        statuses = supervisor.status()
        nursery.cancel_scope.cancel()
    assert setup.invocations == 1
    assert server.invocations == 1
    assert statuses[1].state is ChildState.RUNNING
    assert statuses[0].restarts == 0
