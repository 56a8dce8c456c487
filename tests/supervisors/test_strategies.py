"""Restart strategies: one-for-one leaves siblings alone, one-for-all restarts every child."""

from __future__ import annotations

import trio
import trio.testing

from supervisors import ChildState, Restart, Strategy, Supervisor
from tests.supervisors.helpers import Act, MinRng, ScriptedChild, start, status_of, supervise_for

CRASH_AT_5 = Act(runs_for=5.0)


async def test_one_for_one_crash_does_not_disturb_siblings(
    autojump_clock: trio.testing.MockClock,
) -> None:
    journal: list[str] = []
    before = ScriptedChild("before", journal=journal)
    flaky = ScriptedChild("flaky", CRASH_AT_5, CRASH_AT_5, journal=journal)
    after = ScriptedChild("after", journal=journal)
    supervisor = Supervisor(
        "root", [before.spec(), flaky.spec(), after.spec()], strategy=Strategy.ONE_FOR_ONE
    )
    async with trio.open_nursery() as nursery:
        await start(nursery, supervisor)
        await trio.sleep(30.0)
        statuses = {status.name: status for status in supervisor.status()}
        # the siblings are still inside their first invocation, never cancelled
        assert before.cancelled == []
        assert after.cancelled == []
        nursery.cancel_scope.cancel()

    assert flaky.invocations == 3
    assert statuses["flaky"].restarts == 2
    for name, sibling in (("before", before), ("after", after)):
        assert sibling.invocations == 1
        assert statuses[name].restarts == 0
        assert statuses[name].state is ChildState.RUNNING
        assert statuses[name].last_error is None
    assert journal[:6] == [
        "before:begin",
        "before:ready",
        "flaky:begin",
        "flaky:ready",
        "after:begin",
        "after:ready",
    ]
    assert journal[6:] == ["flaky:begin", "flaky:ready"] * 2


async def test_one_for_all_crash_restarts_every_child_in_start_order(
    autojump_clock: trio.testing.MockClock,
) -> None:
    journal: list[str] = []
    first = ScriptedChild("first", journal=journal)
    flaky = ScriptedChild("flaky", CRASH_AT_5, journal=journal)
    last = ScriptedChild("last", journal=journal)
    supervisor = Supervisor(
        "root",
        [first.spec(), flaky.spec(), last.spec()],
        strategy=Strategy.ONE_FOR_ALL,
        rng=MinRng(),
    )
    async with trio.open_nursery() as nursery:
        await start(nursery, supervisor)
        await trio.sleep(30.0)
        statuses = supervisor.status()
        nursery.cancel_scope.cancel()

    begins = [entry.removesuffix(":begin") for entry in journal if entry.endswith(":begin")]
    assert begins == ["first", "flaky", "last"] * 2
    # each restarted child reported ready before the next one began
    assert journal[6:] == [
        "first:begin",
        "first:ready",
        "flaky:begin",
        "flaky:ready",
        "last:begin",
        "last:ready",
    ]
    assert first.cancelled[0] == 0
    assert last.cancelled[0] == 0
    assert [status.restarts for status in statuses] == [1, 1, 1]
    assert [status.state for status in statuses] == [ChildState.RUNNING] * 3
    # the siblings were restarted right when the crash happened (no backoff with MinRng)
    assert first.began[1] == flaky.crashed_at[0]


async def test_one_for_all_does_not_restart_temporary_siblings(
    autojump_clock: trio.testing.MockClock,
) -> None:
    helper = ScriptedChild("helper")
    flaky = ScriptedChild("flaky", CRASH_AT_5)
    supervisor = Supervisor(
        "root",
        [helper.spec(restart=Restart.TEMPORARY), flaky.spec()],
        strategy=Strategy.ONE_FOR_ALL,
        rng=MinRng(),
    )
    await supervise_for(supervisor, 30.0)
    assert helper.invocations == 1
    assert helper.cancelled == [0]
    assert flaky.invocations == 2
    assert status_of(supervisor, "helper").restarts == 0
    assert status_of(supervisor, "flaky").restarts == 1


async def test_one_for_all_does_not_restart_a_transient_sibling_that_finished(
    autojump_clock: trio.testing.MockClock,
) -> None:
    journal: list[str] = []
    setup = ScriptedChild("setup", Act(runs_for=1.0, ends="return"), journal=journal)
    flaky = ScriptedChild("flaky", CRASH_AT_5, journal=journal)
    supervisor = Supervisor(
        "root",
        [setup.spec(restart=Restart.TRANSIENT), flaky.spec()],
        strategy=Strategy.ONE_FOR_ALL,
        rng=MinRng(),
    )
    await supervise_for(supervisor, 30.0)
    assert journal == [
        "setup:begin",
        "setup:ready",
        "flaky:begin",
        "flaky:ready",
        "flaky:begin",  # only flaky runs again
        "flaky:ready",
    ]
    assert setup.returned_at == [setup.ready_at[0] + 1.0]
    assert status_of(supervisor, "setup").state is ChildState.STOPPED
    assert status_of(supervisor, "setup").restarts == 0
    assert status_of(supervisor, "flaky").restarts == 1
