"""Status snapshots (state, restarts, last error, since), health, JSON export and Prometheus
metrics of a running supervisor."""

from __future__ import annotations

import json

import pytest
import trio
import trio.testing
from prometheus_client import CollectorRegistry

import supervisors.supervisor
from supervisors import (
    Backoff,
    ChildState,
    ChildStatus,
    FanOut,
    MetricsObserver,
    Restart,
    Supervisor,
    unhealthy,
    walk,
)
from tests.supervisors.helpers import CRASH, Act, MaxRng, ScriptedChild, start, status_of

EPOCH = 1_700_000_000.0


class VirtualWallClock:
    """Stands in for the ``time`` module inside the supervisor: wall time follows trio's clock."""

    @staticmethod
    def time() -> float:
        return EPOCH + trio.current_time()


@pytest.fixture
def wall_clock(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(supervisors.supervisor, "time", VirtualWallClock)


def restarts_metric(registry: CollectorRegistry, path: str) -> float | None:
    return registry.get_sample_value("mm_supervisor_restarts_total", {"child": path})


def up_metric(registry: CollectorRegistry, path: str) -> float | None:
    return registry.get_sample_value("mm_child_up", {"child": path})


@pytest.mark.usefixtures("wall_clock")
async def test_status_and_metrics_follow_a_crash_and_restart(
    autojump_clock: trio.testing.MockClock,
) -> None:
    registry = CollectorRegistry()
    flaky = ScriptedChild("flaky", Act(runs_for=2.0))
    steady = ScriptedChild("steady")
    extra = ScriptedChild("extra", CRASH)
    supervisor = Supervisor(
        "root",
        [
            flaky.spec(backoff=Backoff(initial=10.0, cap=10.0)),
            steady.spec(),
            extra.spec(restart=Restart.TEMPORARY),
        ],
        observer=MetricsObserver(registry),
        rng=MaxRng(),
    )
    async with trio.open_nursery() as nursery:
        t0 = trio.current_time()
        await start(nursery, supervisor)
        # the metrics exist (at 0 restarts) as soon as the children started
        assert restarts_metric(registry, "root/steady") == 0.0
        assert up_metric(registry, "root/steady") == 1.0

        await trio.sleep(5.0)  # flaky crashed at t0 + 2 and backs off until t0 + 12
        backing_off = status_of(supervisor, "flaky")
        assert backing_off.state is ChildState.BACKING_OFF
        assert backing_off.restarts == 1
        assert backing_off.last_error == "RuntimeError: flaky failed on run 0"
        assert backing_off.since == EPOCH + t0 + 2.0
        assert up_metric(registry, "root/flaky") == 0.0
        assert restarts_metric(registry, "root/flaky") == 1.0
        assert unhealthy(supervisor.status()) == [
            "root/flaky is backing_off (last error: RuntimeError: flaky failed on run 0)"
        ]

        await trio.sleep(10.0)  # restarted at t0 + 12
        running = status_of(supervisor, "flaky")
        assert running.state is ChildState.RUNNING
        assert running.restarts == 1
        assert running.last_error == "RuntimeError: flaky failed on run 0"  # kept for reading
        assert running.since == EPOCH + t0 + 12.0
        assert up_metric(registry, "root/flaky") == 1.0
        assert restarts_metric(registry, "root/flaky") == 1.0

        steady_status = status_of(supervisor, "steady")
        assert (steady_status.state, steady_status.restarts) == (ChildState.RUNNING, 0)
        assert steady_status.last_error is None
        assert steady_status.since == EPOCH + t0

        # a temporary child that failed for good does not make the tree unhealthy
        assert status_of(supervisor, "extra").state is ChildState.FAILED
        assert up_metric(registry, "root/extra") == 0.0
        assert restarts_metric(registry, "root/extra") == 0.0
        assert unhealthy(supervisor.status()) == []
        nursery.cancel_scope.cancel()

    assert up_metric(registry, "root/flaky") == 0.0
    assert restarts_metric(registry, "root/flaky") == 1.0


async def test_status_snapshot_is_json_serialisable(
    autojump_clock: trio.testing.MockClock,
) -> None:
    flaky = ScriptedChild("flaky", CRASH)
    inner = Supervisor(
        "root/inner", [flaky.spec(backoff=Backoff(initial=100.0, cap=100.0))], rng=MaxRng()
    )
    outer = Supervisor("root", [inner.as_child(), ScriptedChild("other").spec()])
    async with trio.open_nursery() as nursery:
        await start(nursery, outer)
        await trio.sleep(1.0)
        statuses = outer.status()
        nursery.cancel_scope.cancel()

    exported = json.loads(json.dumps([status.to_dict() for status in statuses]))
    assert exported[0]["name"] == "inner"
    assert exported[0]["state"] == "running"
    assert exported[0]["restart"] == "permanent"
    (nested,) = exported[0]["children"]
    assert nested == {
        "name": "flaky",
        "path": "root/inner/flaky",
        "restart": "permanent",
        "state": "backing_off",
        "restarts": 1,
        "last_error": "RuntimeError: flaky failed on run 0",
        "since": nested["since"],
        "children": [],
    }
    assert isinstance(nested["since"], float)
    assert exported[1]["children"] == []
    assert unhealthy(statuses) == [
        "root/inner/flaky is backing_off (last error: RuntimeError: flaky failed on run 0)"
    ]


def make_status(
    path: str,
    state: ChildState,
    restart: Restart = Restart.PERMANENT,
    last_error: str | None = None,
    children: tuple[ChildStatus, ...] = (),
) -> ChildStatus:
    return ChildStatus(
        name=path.rsplit("/", 1)[-1],
        path=path,
        restart=restart,
        state=state,
        restarts=0,
        last_error=last_error,
        since=EPOCH,
        children=children,
    )


def test_walk_and_unhealthy_on_a_tree() -> None:
    tree = (
        make_status(
            "r/sup",
            ChildState.RUNNING,
            children=(
                make_status("r/sup/ok", ChildState.RUNNING),
                make_status("r/sup/down", ChildState.FAILED, last_error="OSError: gone"),
                make_status("r/sup/once", ChildState.STOPPED, Restart.TRANSIENT),
            ),
        ),
        make_status("r/starting", ChildState.STARTING),
        make_status("r/tmp", ChildState.FAILED, Restart.TEMPORARY, "ValueError: x"),
    )
    assert [status.path for status in walk(tree)] == [
        "r/sup",
        "r/sup/ok",
        "r/sup/down",
        "r/sup/once",
        "r/starting",
        "r/tmp",
    ]
    assert unhealthy(tree) == [
        "r/sup/down is failed (last error: OSError: gone)",
        "r/starting is starting",
    ]
    assert json.loads(json.dumps(tree[0].to_dict()))["children"][1]["state"] == "failed"


class Journal:
    """An observer that records every report."""

    def __init__(self) -> None:
        self.events: list[tuple[str, str, str | None]] = []

    def state_changed(self, path: str, state: ChildState, error: str | None) -> None:
        self.events.append((path, state.value, error))

    def restarted(self, path: str) -> None:
        self.events.append((path, "restarted", None))


async def test_fan_out_reports_to_every_observer(autojump_clock: trio.testing.MockClock) -> None:
    registry = CollectorRegistry()
    journal = Journal()
    flaky = ScriptedChild("flaky", CRASH)
    supervisor = Supervisor(
        "root",
        [flaky.spec(backoff=Backoff(initial=1.0, cap=1.0))],
        observer=FanOut(journal, MetricsObserver(registry)),
        rng=MaxRng(),
    )
    async with trio.open_nursery() as nursery:
        await start(nursery, supervisor)
        await trio.sleep(5.0)
        nursery.cancel_scope.cancel()

    error = "RuntimeError: flaky failed on run 0"
    assert journal.events == [
        ("root/flaky", "starting", None),
        ("root/flaky", "running", None),
        ("root/flaky", "failed", error),
        ("root/flaky", "restarted", None),
        ("root/flaky", "backing_off", error),
        ("root/flaky", "starting", error),
        ("root/flaky", "running", error),
        ("root/flaky", "stopped", error),
    ]
    assert restarts_metric(registry, "root/flaky") == 1.0
    assert up_metric(registry, "root/flaky") == 0.0
