"""Child specs and supervisor construction: name checks, paths, ``as_child``, error text."""

from __future__ import annotations

import pytest
import trio

from supervisors import (
    Backoff,
    ChildSpec,
    ChildState,
    Restart,
    Supervisor,
    SupervisorEscalation,
    describe_error,
)


async def idle(*, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
    task_status.started()
    await trio.sleep_forever()


@pytest.mark.parametrize("name", ["", "a/b", "/"])
def test_child_name_must_be_non_empty_without_slash(name: str) -> None:
    with pytest.raises(ValueError, match="child name"):
        ChildSpec(name, idle)


def test_child_spec_defaults() -> None:
    spec = ChildSpec("worker", idle)
    assert spec.restart is Restart.PERMANENT
    assert spec.backoff == Backoff()
    assert spec.stable_after == 30.0
    assert spec.describe is None


def test_duplicate_child_names_are_rejected() -> None:
    with pytest.raises(ValueError, match=r"root: duplicate child names \['a'\]"):
        Supervisor("root", [ChildSpec("a", idle), ChildSpec("b", idle), ChildSpec("a", idle)])


def test_children_are_named_under_the_supervisor_path() -> None:
    supervisor = Supervisor("root/feeds", [ChildSpec("a", idle), ChildSpec("b", idle)])
    assert supervisor.name == "feeds"
    assert [(s.name, s.path) for s in supervisor.status()] == [
        ("a", "root/feeds/a"),
        ("b", "root/feeds/b"),
    ]
    assert {s.state for s in supervisor.status()} == {ChildState.STOPPED}  # not started yet


def test_as_child_describes_the_supervisor() -> None:
    supervisor = Supervisor("root/feeds", [ChildSpec("a", idle)])
    spec = supervisor.as_child(restart=Restart.TRANSIENT, stable_after=5.0)
    assert spec.name == "feeds"
    assert spec.run == supervisor.run
    assert spec.restart is Restart.TRANSIENT
    assert spec.stable_after == 5.0
    assert spec.describe is not None
    assert spec.describe() == supervisor.status()


def test_describe_error() -> None:
    assert describe_error(RuntimeError("boom")) == "RuntimeError: boom"
    assert describe_error(TimeoutError()) == "TimeoutError"
    assert describe_error(SupervisorEscalation("x")) == "SupervisorEscalation: x"
