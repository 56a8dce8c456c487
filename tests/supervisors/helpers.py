"""Shared doubles for the supervisor tests: stub random sources and scripted children.

Every time recorded here is ``trio.current_time()``, i.e. the (virtual, autojump) trio clock.
"""

from __future__ import annotations

import random
from typing import Any, Literal

import attrs
import trio

from supervisors import ChildSpec, ChildStatus, Supervisor


class MaxRng(random.Random):
    """A random source whose ``uniform`` always returns the upper bound (the backoff ceiling)."""

    def uniform(self, a: float, b: float) -> float:
        return b


class MinRng(random.Random):
    """A random source whose ``uniform`` always returns the lower bound (no backoff delay)."""

    def uniform(self, a: float, b: float) -> float:
        return a


@attrs.frozen
class Act:
    """What one invocation of a :class:`ScriptedChild` does.

    It sleeps ``setup`` seconds, calls ``task_status.started()`` if ``ready``, then works for
    ``runs_for`` seconds (forever when None) and finally crashes or returns, as ``ends`` says.
    """

    setup: float = 0.0
    ready: bool = True
    runs_for: float | None = None
    ends: Literal["crash", "return"] = "crash"


FOREVER = Act()
CRASH = Act(runs_for=0.0)
RETURN = Act(runs_for=0.0, ends="return")
CRASH_BEFORE_READY = Act(ready=False, runs_for=0.0)


class ScriptedChild:
    """A child whose n-th invocation follows ``acts[n]`` (``then`` once they run out).

    It records, in virtual time, when each invocation began, reported ready, crashed or
    returned, and which invocations were cancelled. ``journal`` (optionally shared between
    children) receives ``"<name>:begin"`` and ``"<name>:ready"`` in the order they happen.
    """

    def __init__(
        self,
        name: str,
        *acts: Act,
        then: Act = FOREVER,
        journal: list[str] | None = None,
    ) -> None:
        self.name = name
        self.acts = acts
        self.then = then
        self.journal: list[str] = journal if journal is not None else []
        self.began: list[float] = []
        self.ready_at: list[float] = []
        self.crashed_at: list[float] = []
        self.returned_at: list[float] = []
        self.cancelled: list[int] = []

    @property
    def invocations(self) -> int:
        return len(self.began)

    def spec(self, **kwargs: Any) -> ChildSpec:
        return ChildSpec(self.name, self.run, **kwargs)

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        index = len(self.began)
        act = self.acts[index] if index < len(self.acts) else self.then
        self.began.append(trio.current_time())
        self.journal.append(f"{self.name}:begin")
        try:
            if act.setup:
                await trio.sleep(act.setup)
            if act.ready:
                self.ready_at.append(trio.current_time())
                self.journal.append(f"{self.name}:ready")
                task_status.started()
            if act.runs_for is None:
                await trio.sleep_forever()
            else:
                await trio.sleep(act.runs_for)
        except trio.Cancelled:
            self.cancelled.append(index)
            raise
        if act.ends == "crash":
            self.crashed_at.append(trio.current_time())
            raise RuntimeError(f"{self.name} failed on run {index}")
        self.returned_at.append(trio.current_time())


def status_of(supervisor: Supervisor, name: str) -> ChildStatus:
    """The status of the direct child called ``name``."""
    (found,) = [status for status in supervisor.status() if status.name == name]
    return found


def leaves(error: BaseException) -> list[BaseException]:
    """The exceptions inside ``error``, with any (nested) exception groups flattened."""
    if isinstance(error, BaseExceptionGroup):
        return [leaf for inner in error.exceptions for leaf in leaves(inner)]
    return [error]


DEADLINE = 1000.0
"""Virtual seconds after which a test gives up waiting (a broken supervisor fails, not hangs)."""


async def start(nursery: trio.Nursery, supervisor: Supervisor) -> None:
    """``nursery.start(supervisor.run)``, failing if it does not report ready in time."""
    with trio.fail_after(DEADLINE):
        await nursery.start(supervisor.run)


async def supervise_for(supervisor: Supervisor, seconds: float) -> None:
    """Start ``supervisor``, let it run ``seconds`` of virtual time, then cancel it."""
    async with trio.open_nursery() as nursery:
        await start(nursery, supervisor)
        await trio.sleep(seconds)
        nursery.cancel_scope.cancel()
