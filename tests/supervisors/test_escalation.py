"""Escalation: past its restart intensity a supervisor gives up with ``SupervisorEscalation``."""

from __future__ import annotations

import pytest
import trio
import trio.testing

from supervisors import Backoff, ChildState, Intensity, Strategy, Supervisor, SupervisorEscalation
from tests.supervisors.helpers import (
    CRASH,
    CRASH_BEFORE_READY,
    DEADLINE,
    Act,
    MinRng,
    ScriptedChild,
    start,
    status_of,
)


async def test_escalates_once_restarts_exceed_the_intensity(
    autojump_clock: trio.testing.MockClock,
) -> None:
    sibling = ScriptedChild("sibling")
    flaky = ScriptedChild("flaky", then=CRASH)
    supervisor = Supervisor(
        "root",
        [sibling.spec(), flaky.spec(backoff=Backoff(initial=0.01, cap=0.01))],
        intensity=Intensity(max_restarts=3, period=10.0),
    )
    with trio.fail_after(DEADLINE), pytest.raises(SupervisorEscalation) as caught:
        await supervisor.run()

    assert type(caught.value) is SupervisorEscalation  # plain, not inside an ExceptionGroup
    assert "root/flaky exceeded the restart intensity (3 restarts in 10s)" in str(caught.value)
    assert "RuntimeError: flaky failed on run 3" in str(caught.value)
    assert isinstance(caught.value.__cause__, RuntimeError)
    assert flaky.invocations == 4  # the first run and three restarts
    flaky_status = status_of(supervisor, "flaky")
    assert flaky_status.state is ChildState.FAILED
    assert flaky_status.restarts == 3
    assert flaky_status.last_error == "RuntimeError: flaky failed on run 3"
    # the sibling was cancelled, not restarted
    assert sibling.invocations == 1
    assert sibling.cancelled == [0]
    assert status_of(supervisor, "sibling").state is ChildState.STOPPED
    assert status_of(supervisor, "sibling").restarts == 0


async def test_zero_intensity_escalates_on_the_first_crash(
    autojump_clock: trio.testing.MockClock,
) -> None:
    flaky = ScriptedChild("flaky", CRASH)
    supervisor = Supervisor("root", [flaky.spec()], intensity=Intensity(max_restarts=0))
    with trio.fail_after(DEADLINE), pytest.raises(SupervisorEscalation):
        await supervisor.run()
    assert flaky.invocations == 1
    assert status_of(supervisor, "flaky").restarts == 0


async def test_escalation_while_starting_is_raised_plain(
    autojump_clock: trio.testing.MockClock,
) -> None:
    never_ready = ScriptedChild("never_ready", then=CRASH_BEFORE_READY)
    later = ScriptedChild("later")
    supervisor = Supervisor(
        "root",
        [never_ready.spec(), later.spec()],
        intensity=Intensity(max_restarts=2, period=10.0),
    )
    with trio.fail_after(DEADLINE), pytest.raises(SupervisorEscalation) as caught:
        await supervisor.run()
    assert type(caught.value) is SupervisorEscalation
    assert never_ready.invocations == 3
    assert later.invocations == 0
    assert status_of(supervisor, "never_ready").state is ChildState.FAILED


async def test_one_for_all_escalation_fails_every_child(
    autojump_clock: trio.testing.MockClock,
) -> None:
    steady = ScriptedChild("steady")
    flaky = ScriptedChild("flaky", then=Act(runs_for=1.0))
    supervisor = Supervisor(
        "root",
        [steady.spec(), flaky.spec()],
        strategy=Strategy.ONE_FOR_ALL,
        intensity=Intensity(max_restarts=2, period=10.0),
        rng=MinRng(),
    )
    with trio.fail_after(DEADLINE), pytest.raises(SupervisorEscalation):
        await supervisor.run()
    assert steady.invocations == 3
    assert [status.state for status in supervisor.status()] == [ChildState.FAILED] * 2
    assert [status.restarts for status in supervisor.status()] == [2, 2]


@pytest.mark.parametrize(("crash_every", "escalates"), [(6.0, False), (4.0, True)])
async def test_only_restarts_inside_the_period_count(
    autojump_clock: trio.testing.MockClock, crash_every: float, escalates: bool
) -> None:
    flaky = ScriptedChild("flaky", *[Act(runs_for=crash_every)] * 10)
    supervisor = Supervisor(
        "root",
        [flaky.spec(stable_after=1000.0)],
        intensity=Intensity(max_restarts=1, period=5.0),
        rng=MinRng(),
    )
    t0 = trio.current_time()
    if escalates:
        with trio.fail_after(DEADLINE), pytest.raises(SupervisorEscalation):
            await supervisor.run()
        assert flaky.invocations == 2
        assert trio.current_time() - t0 == pytest.approx(2 * crash_every)
        return
    async with trio.open_nursery() as nursery:
        await start(nursery, supervisor)
        await trio.sleep(10 * crash_every + 1.0)
        status = status_of(supervisor, "flaky")
        nursery.cancel_scope.cancel()
    assert flaky.invocations == 11
    assert status.restarts == 10
    assert status.state is ChildState.RUNNING
