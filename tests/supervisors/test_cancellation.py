"""Cancellation and non-``Exception`` errors: neither counts as a crash nor causes a restart."""

from __future__ import annotations

import pytest
import trio
import trio.testing
from prometheus_client import CollectorRegistry

from supervisors import (
    Backoff,
    ChildSpec,
    ChildState,
    MetricsObserver,
    Strategy,
    Supervisor,
)
from tests.supervisors.helpers import (
    CRASH,
    DEADLINE,
    MaxRng,
    ScriptedChild,
    leaves,
    start,
    status_of,
)


@pytest.mark.parametrize("strategy", list(Strategy))
async def test_cancelling_the_tree_is_clean(
    autojump_clock: trio.testing.MockClock, strategy: Strategy
) -> None:
    registry = CollectorRegistry()
    children = [ScriptedChild(name) for name in ("a", "b", "c")]
    supervisor = Supervisor(
        "root",
        [child.spec() for child in children],
        strategy=strategy,
        observer=MetricsObserver(registry),
    )
    with trio.CancelScope() as scope:
        async with trio.open_nursery() as nursery:
            await start(nursery, supervisor)
            await trio.sleep(10.0)
            for child in children:
                up = registry.get_sample_value("mm_child_up", {"child": f"root/{child.name}"})
                assert up == 1.0
            scope.cancel()
    # reaching this line means the cancellation ended without an exception
    assert scope.cancelled_caught

    for child in children:
        path = f"root/{child.name}"
        assert child.invocations == 1
        assert child.cancelled == [0]
        assert registry.get_sample_value("mm_child_up", {"child": path}) == 0.0
        assert registry.get_sample_value("mm_supervisor_restarts_total", {"child": path}) == 0.0
    for status in supervisor.status():
        assert status.state is ChildState.STOPPED
        assert status.restarts == 0
        assert status.last_error is None


async def test_cancelling_during_backoff_stops_the_waiting_child(
    autojump_clock: trio.testing.MockClock,
) -> None:
    flaky = ScriptedChild("flaky", CRASH)
    supervisor = Supervisor(
        "root", [flaky.spec(backoff=Backoff(initial=100.0, cap=100.0))], rng=MaxRng()
    )
    with trio.move_on_after(50.0) as scope:
        async with trio.open_nursery() as nursery:
            await start(nursery, supervisor)
            await trio.sleep_forever()
    assert scope.cancelled_caught
    assert flaky.invocations == 1
    assert status_of(supervisor, "flaky").state is ChildState.STOPPED


class Abort(BaseException):
    """A non-``Exception`` error a child might raise."""


@pytest.mark.parametrize("error_type", [KeyboardInterrupt, Abort])
async def test_base_exception_from_a_child_propagates_without_restart(
    autojump_clock: trio.testing.MockClock, error_type: type[BaseException]
) -> None:
    calls: list[float] = []
    sibling = ScriptedChild("sibling")

    async def run(*, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        calls.append(trio.current_time())
        task_status.started()
        await trio.sleep(1.0)
        raise error_type("stop")

    supervisor = Supervisor("root", [ChildSpec("interrupted", run), sibling.spec()])
    with trio.fail_after(DEADLINE), pytest.raises(BaseException) as caught:  # noqa: PT011
        await supervisor.run()

    assert [type(leaf) for leaf in leaves(caught.value)] == [error_type]
    assert len(calls) == 1
    assert sibling.cancelled == [0]
    for status in supervisor.status():
        assert status.restarts == 0
        assert status.last_error is None
        assert status.state is ChildState.STOPPED
