"""Nested supervisors: a supervisor as another's child, its status subtree, its escalation."""

from __future__ import annotations

import trio
import trio.testing

from supervisors import ChildState, Intensity, Restart, Supervisor, walk
from tests.supervisors.helpers import CRASH, MinRng, ScriptedChild, start, status_of, supervise_for


async def test_status_shows_the_nested_tree(autojump_clock: trio.testing.MockClock) -> None:
    leaf_a, leaf_b, top = ScriptedChild("a"), ScriptedChild("b"), ScriptedChild("top")
    inner = Supervisor("root/inner", [leaf_a.spec(), leaf_b.spec()])
    outer = Supervisor("root", [inner.as_child(), top.spec()])
    assert inner.name == "inner"

    async with trio.open_nursery() as nursery:
        await start(nursery, outer)
        statuses = outer.status()
        nursery.cancel_scope.cancel()

    inner_status, top_status = statuses
    assert (inner_status.name, inner_status.path) == ("inner", "root/inner")
    assert inner_status.restart is Restart.PERMANENT
    assert inner_status.state is ChildState.RUNNING
    assert [(s.name, s.path, s.state) for s in inner_status.children] == [
        ("a", "root/inner/a", ChildState.RUNNING),
        ("b", "root/inner/b", ChildState.RUNNING),
    ]
    assert top_status.children == ()
    assert [s.path for s in walk(statuses)] == [
        "root/inner",
        "root/inner/a",
        "root/inner/b",
        "root/top",
    ]
    # the outer supervisor started the inner one (and its children) before its next child
    assert top.began[0] >= leaf_b.began[0]


async def test_escalating_child_supervisor_is_restarted_by_its_parent(
    autojump_clock: trio.testing.MockClock,
) -> None:
    flaky = ScriptedChild("flaky", CRASH, CRASH)
    calm = ScriptedChild("calm")
    inner = Supervisor(
        "root/inner", [flaky.spec()], intensity=Intensity(max_restarts=1, period=60.0), rng=MinRng()
    )
    outer = Supervisor("root", [inner.as_child(), calm.spec()], rng=MinRng())

    async with trio.open_nursery() as nursery:
        await start(nursery, outer)
        await trio.sleep(10.0)
        inner_status = status_of(outer, "inner")
        nursery.cancel_scope.cancel()

    # run 0 crashed and was restarted by inner; run 1 crashed and inner escalated;
    # outer restarted inner, which started flaky again (run 2, which stays up)
    assert flaky.invocations == 3
    assert inner_status.state is ChildState.RUNNING
    assert inner_status.restarts == 1
    assert inner_status.last_error is not None
    assert inner_status.last_error.startswith("SupervisorEscalation: root/inner: root/inner/flaky")
    (flaky_status,) = inner_status.children
    assert flaky_status.state is ChildState.RUNNING
    assert flaky_status.restarts == 1  # inner's own restarts of flaky, kept across its restart
    assert calm.invocations == 1
    assert status_of(outer, "calm").restarts == 0


async def test_restarted_child_supervisor_gets_its_full_intensity_again(
    autojump_clock: trio.testing.MockClock,
) -> None:
    flaky = ScriptedChild("flaky", CRASH, CRASH, CRASH)
    inner = Supervisor(
        "root/inner", [flaky.spec()], intensity=Intensity(max_restarts=1, period=60.0), rng=MinRng()
    )
    outer = Supervisor("root", [inner.as_child()], rng=MinRng())
    await supervise_for(outer, 10.0)

    # run 0: restarted by inner; run 1: inner escalates, outer restarts inner;
    # run 2: the fresh inner may restart it once more by itself; run 3 stays up
    assert flaky.invocations == 4
    assert status_of(outer, "inner").restarts == 1
