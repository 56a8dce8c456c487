"""A value one task builds and hands on to the tasks that need it, read now or waited for.

A supervised child builds a resource (a connection's client, a feed) each time it starts; the
components that use it are built once, before any child runs. ``Handoff`` is what the child
hands the value through, instead of an attribute of its own that others read and find None:
``hand`` publishes it (a restarted child hands its new one), ``latest`` reads it now (None
before the first), ``wait`` returns it once there is one. It never fails: a value is only ever
replaced by a newer one.
"""

from __future__ import annotations

from typing import Generic, TypeVar

import trio

T = TypeVar("T")


class Handoff(Generic[T]):
    """The latest value handed on (see the module)."""

    def __init__(self) -> None:
        self._value: T | None = None
        self._handed = trio.Event()

    def hand(self, value: T) -> None:
        self._value = value
        self._handed.set()

    @property
    def latest(self) -> T | None:
        return self._value

    async def wait(self) -> T:
        """The latest value, once one was handed."""
        await self._handed.wait()
        value = self._value
        assert value is not None  # set before the event
        return value
