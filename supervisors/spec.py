"""What a supervisor is told about its children: child specs, restart policies, strategies."""

from __future__ import annotations

import enum
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

import attrs

from supervisors.backoff import Backoff

if TYPE_CHECKING:
    from supervisors.status import ChildStatus


class Restart(enum.Enum):
    """When a child that ended is started again."""

    PERMANENT = "permanent"  # always: after a crash and after a normal return
    TRANSIENT = "transient"  # only after a crash
    TEMPORARY = "temporary"  # never


class Strategy(enum.Enum):
    """Which children restart when one of them crashes."""

    ONE_FOR_ONE = "one_for_one"  # only the crashed child
    ONE_FOR_ALL = "one_for_all"  # every child, in start order


ChildRun = Callable[..., Awaitable[Any]]
"""``async def run(*, task_status=trio.TASK_STATUS_IGNORED)``: calls ``task_status.started()``
once ready, then works until cancelled (or returns, or raises)."""


@attrs.frozen
class ChildSpec:
    """One child of a supervisor.

    ``describe`` is set for children that are themselves supervisors, so that the status tree
    shows their own children.
    """

    name: str = attrs.field()
    run: ChildRun = attrs.field()
    restart: Restart = Restart.PERMANENT
    backoff: Backoff = attrs.field(factory=Backoff)
    stable_after: float = 30.0
    describe: Callable[[], tuple[ChildStatus, ...]] | None = None

    @name.validator
    def _check_name(self, attribute: attrs.Attribute[str], value: str) -> None:
        if not value or "/" in value:
            raise ValueError(f"child name must be non-empty and contain no '/', got {value!r}")
