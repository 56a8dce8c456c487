"""Restart policies: which way of ending (crash or return) restarts a permanent, transient or
temporary child."""

from __future__ import annotations

import pytest
import trio
import trio.testing

from supervisors import Backoff, ChildState, Intensity, Restart, Supervisor
from tests.supervisors.helpers import (
    CRASH,
    CRASH_BEFORE_READY,
    DEADLINE,
    RETURN,
    Act,
    MinRng,
    ScriptedChild,
    start,
    status_of,
    supervise_for,
)

QUICK = Backoff(initial=0.01, cap=0.01)


@pytest.mark.parametrize(
    ("restart", "first", "invocations", "state", "restarts", "last_error"),
    [
        (Restart.PERMANENT, CRASH, 2, ChildState.RUNNING, 1, "RuntimeError: job failed on run 0"),
        (Restart.PERMANENT, RETURN, 2, ChildState.RUNNING, 1, "returned while permanent"),
        (Restart.TRANSIENT, CRASH, 2, ChildState.RUNNING, 1, "RuntimeError: job failed on run 0"),
        (Restart.TRANSIENT, RETURN, 1, ChildState.STOPPED, 0, None),
        (Restart.TEMPORARY, CRASH, 1, ChildState.FAILED, 0, "RuntimeError: job failed on run 0"),
        (Restart.TEMPORARY, RETURN, 1, ChildState.STOPPED, 0, None),
    ],
)
async def test_restart_policy(
    autojump_clock: trio.testing.MockClock,
    restart: Restart,
    first: Act,
    invocations: int,
    state: ChildState,
    restarts: int,
    last_error: str | None,
) -> None:
    job = ScriptedChild("job", first)
    keeper = ScriptedChild("keeper")  # keeps the supervisor up whatever happens to job
    supervisor = Supervisor("root", [job.spec(restart=restart, backoff=QUICK), keeper.spec()])
    async with trio.open_nursery() as nursery:
        await start(nursery, supervisor)
        await trio.sleep(60.0)
        status = status_of(supervisor, "job")
        nursery.cancel_scope.cancel()

    assert job.invocations == invocations
    assert status.state is state
    assert status.restarts == restarts
    assert status.last_error == last_error
    assert keeper.invocations == 1


async def test_supervisor_returns_once_no_child_is_left_to_restart(
    autojump_clock: trio.testing.MockClock,
) -> None:
    done = ScriptedChild("done", RETURN)
    dropped = ScriptedChild("dropped", CRASH)
    supervisor = Supervisor(
        "root",
        [done.spec(restart=Restart.TRANSIENT), dropped.spec(restart=Restart.TEMPORARY)],
    )
    with trio.fail_after(DEADLINE):
        await supervisor.run()
    assert (done.invocations, dropped.invocations) == (1, 1)
    assert [status.state for status in supervisor.status()] == [
        ChildState.STOPPED,
        ChildState.FAILED,
    ]


async def test_transient_child_crashing_before_ready_is_restarted(
    autojump_clock: trio.testing.MockClock,
) -> None:
    child = ScriptedChild("job", CRASH_BEFORE_READY, CRASH_BEFORE_READY)
    supervisor = Supervisor("root", [child.spec(restart=Restart.TRANSIENT)], rng=MinRng())
    await supervise_for(supervisor, 10.0)
    assert child.invocations == 3
    assert status_of(supervisor, "job").restarts == 2
    assert status_of(supervisor, "job").state is ChildState.STOPPED  # cancelled at the end


async def test_temporary_crash_does_not_count_toward_the_intensity(
    autojump_clock: trio.testing.MockClock,
) -> None:
    dropped = ScriptedChild("dropped", CRASH)
    keeper = ScriptedChild("keeper")
    supervisor = Supervisor(
        "root",
        [dropped.spec(restart=Restart.TEMPORARY), keeper.spec()],
        intensity=Intensity(max_restarts=0),
    )
    await supervise_for(supervisor, 10.0)  # would raise SupervisorEscalation if it counted
    assert dropped.invocations == 1
    assert status_of(supervisor, "dropped").state is ChildState.FAILED
    assert keeper.cancelled == [0]
