"""The supervisor: starts children in order, restarts them by policy, escalates when they flap.

A child is a plain ``async def run(*, task_status=...)``; it does not know it is supervised.
Children start one after another through ``nursery.start`` semantics, so each is ready before
the next begins. ``Exception`` from a child is a crash; ``BaseException`` (cancellation,
KeyboardInterrupt) is never caught and never counted as one.
"""

from __future__ import annotations

import enum
import random
import time
from collections.abc import Callable, Sequence
from typing import Any

import attrs
import trio
from loguru import logger

from supervisors.backoff import Intensity, RestartWindow
from supervisors.observer import NullObserver, Observer
from supervisors.spec import ChildSpec, Restart, Strategy
from supervisors.status import ChildState, ChildStatus


class SupervisorEscalation(Exception):
    """A supervisor gave up: its children restarted more often than its intensity allows."""


class _Exit(enum.Enum):
    CRASHED = "crashed"
    RETURNED = "returned"
    CANCELLED = "cancelled"


@attrs.define(eq=False)
class _Child:
    """A supervisor's private, mutable record of one child."""

    spec: ChildSpec
    path: str
    state: ChildState = ChildState.STOPPED
    restarts: int = 0
    last_error: str | None = None
    since: float = attrs.field(factory=time.time)
    up_at: float | None = None  # trio clock when it last reported ready
    exit: _Exit | None = None

    def snapshot(self) -> ChildStatus:
        nested = self.spec.describe() if self.spec.describe is not None else ()
        return ChildStatus(
            name=self.spec.name,
            path=self.path,
            restart=self.spec.restart,
            state=self.state,
            restarts=self.restarts,
            last_error=self.last_error,
            since=self.since,
            children=nested,
        )


@attrs.define(eq=False)
class _Round:
    """One start of a restart group; remembers what ended it."""

    cancel_scope: trio.CancelScope
    ready: int = 0  # members that reported ready in this round
    trigger: _Child | None = None
    error: BaseException | None = None


class _ReadyReporter:
    """The ``task_status`` handed to a child: marks it running, then tells our own starter."""

    def __init__(self, on_ready: Any, outer: trio.TaskStatus[None]) -> None:
        self._on_ready = on_ready
        self._outer = outer
        self.reported = False

    def started(self, value: object = None) -> None:
        if self.reported:
            raise RuntimeError("task_status.started() called twice")
        self.reported = True
        self._on_ready()
        self._outer.started()


def describe_error(error: BaseException) -> str:
    text = str(error)
    return f"{type(error).__name__}: {text}" if text else type(error).__name__


class Supervisor:
    """Supervises ``children`` under ``strategy``; ``path`` names it in status and metrics."""

    def __init__(
        self,
        path: str,
        children: Sequence[ChildSpec],
        *,
        strategy: Strategy = Strategy.ONE_FOR_ONE,
        intensity: Intensity | None = None,
        observer: Observer | None = None,
        rng: random.Random | None = None,
        wall: Callable[[], float] | None = None,
    ) -> None:
        names = [spec.name for spec in children]
        duplicates = sorted({name for name in names if names.count(name) > 1})
        if duplicates:
            raise ValueError(f"{path}: duplicate child names {duplicates}")
        self.path = path
        self.name = path.rsplit("/", 1)[-1]
        self.strategy = strategy
        self._children = [_Child(spec, f"{path}/{spec.name}") for spec in children]
        self._window = RestartWindow(intensity or Intensity())
        self._observer = observer or NullObserver()
        self._rng = rng or random.Random()
        self._wall = wall  # wall time for ``since``: the service passes its one clock

    def status(self) -> tuple[ChildStatus, ...]:
        """The children's states now, nested supervisors included."""
        return tuple(child.snapshot() for child in self._children)

    def as_child(
        self,
        *,
        restart: Restart = Restart.PERMANENT,
        **kwargs: Any,
    ) -> ChildSpec:
        """This supervisor as a child spec of a parent supervisor."""
        return ChildSpec(self.name, self.run, restart=restart, describe=self.status, **kwargs)

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Start every child in order, report ready, then supervise until cancelled."""
        # Each run starts with an empty restart history, as a restarted child supervisor must.
        self._window = RestartWindow(self._window.intensity)
        if self.strategy is Strategy.ONE_FOR_ONE:
            groups = [[child] for child in self._children]
        else:
            groups = [list(self._children)]
        try:
            async with trio.open_nursery() as nursery:
                for group in groups:
                    await nursery.start(self._keep, group)
                task_status.started()
        except BaseExceptionGroup as group_error:
            escalations, rest = group_error.split(SupervisorEscalation)
            if escalations is not None and rest is None:
                first = _first_leaf(escalations)
                raise first from first.__cause__
            raise

    def _set(self, child: _Child, state: ChildState) -> None:
        child.state = state
        child.since = self._wall() if self._wall is not None else time.time()
        self._observer.state_changed(child.path, state, child.last_error)

    async def _keep(
        self,
        members: list[_Child],
        *,
        task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED,
    ) -> None:
        """Run a restart group (one child, or all of them) until none is left to restart."""
        reported = False
        attempt = 0
        alive = list(members)
        try:
            while alive:
                async with trio.open_nursery() as nursery:
                    round_ = _Round(nursery.cancel_scope)
                    for child in alive:
                        await nursery.start(self._run_member, child, round_)
                    if not reported and (round_.trigger is None or round_.ready == len(alive)):
                        task_status.started()
                        reported = True
                trigger = round_.trigger
                if trigger is None:
                    break  # everyone ended without asking for a restart
                alive = [child for child in alive if _restartable(child)]
                now = trio.current_time()
                if not self._window.admit(now):
                    for child in alive:
                        self._set(child, ChildState.FAILED)
                    intensity = self._window.intensity
                    raise SupervisorEscalation(
                        f"{self.path}: {trigger.path} exceeded the restart intensity "
                        f"({intensity.max_restarts} restarts in {intensity.period:g}s); "
                        f"last error: {trigger.last_error}"
                    ) from round_.error
                if trigger.up_at is not None and now - trigger.up_at >= trigger.spec.stable_after:
                    attempt = 0
                delay = trigger.spec.backoff.delay(attempt, self._rng)
                attempt += 1
                for child in alive:
                    child.restarts += 1
                    self._observer.restarted(child.path)
                    self._set(child, ChildState.BACKING_OFF)
                logger.warning(
                    "restarting {} in {:.3f}s (attempt {}) after: {}",
                    ", ".join(child.path for child in alive),
                    delay,
                    attempt,
                    trigger.last_error,
                )
                await trio.sleep(delay)
        finally:
            for child in members:
                if child.state in (ChildState.BACKING_OFF, ChildState.STARTING):
                    self._set(child, ChildState.STOPPED)
        if not reported:
            task_status.started()

    async def _run_member(
        self,
        child: _Child,
        round_: _Round,
        *,
        task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED,
    ) -> None:
        """Run ``child`` once and record how it ended; a restart trigger cancels the round."""

        def ready() -> None:
            round_.ready += 1
            child.up_at = trio.current_time()
            self._set(child, ChildState.RUNNING)

        reporter = _ReadyReporter(ready, task_status)
        child.exit = _Exit.CANCELLED
        child.up_at = None
        self._set(child, ChildState.STARTING)
        try:
            with logger.contextualize(child=child.path):
                await child.spec.run(task_status=reporter)
        except Exception as error:
            child.exit = _Exit.CRASHED
            child.last_error = describe_error(error)
            logger.opt(exception=error).error("{} crashed: {}", child.path, child.last_error)
            self._set(child, ChildState.FAILED)
            if child.spec.restart is not Restart.TEMPORARY:
                self._trigger(round_, child, error)
        else:
            child.exit = _Exit.RETURNED
            self._set(child, ChildState.STOPPED)
            if child.spec.restart is Restart.PERMANENT:
                child.last_error = "returned while permanent"
                self._trigger(round_, child, None)
        finally:
            if child.exit is _Exit.CANCELLED:
                self._set(child, ChildState.STOPPED)
        if not reporter.reported:
            task_status.started()

    def _trigger(self, round_: _Round, child: _Child, error: BaseException | None) -> None:
        if round_.trigger is None:
            round_.trigger = child
            round_.error = error
        round_.cancel_scope.cancel()


def _restartable(child: _Child) -> bool:
    """After a restart was triggered: which members of the group start again."""
    if child.spec.restart is Restart.TEMPORARY:
        return False
    if child.exit is _Exit.RETURNED:
        return child.spec.restart is Restart.PERMANENT
    return True


def _first_leaf(group: BaseExceptionGroup[SupervisorEscalation]) -> SupervisorEscalation:
    first = group.exceptions[0]
    return _first_leaf(first) if isinstance(first, BaseExceptionGroup) else first
