"""The service of a simulated run as its operator sees a process: started, stopped, crashed,
and started again from its run directory (its journal), as ``mm start`` would be run again.

Each start is a new ``Service`` built from the same config, as ``mm start`` builds it; the
venue outlives it (a venue of its own, as the real one is). ``stop`` asks the service to stop
(``mm stop``: it cancels its orders and flushes its journal). ``crash`` is a process killed
where it stands: the world cuts it off first (``MemoryWorld.crash``: its connections dropped,
its writes refused), then its tasks are cancelled, so that nothing of what they do on the way
out reaches the venue or the disk; its journal is what it had written.

What the invariants need of every incarnation is kept (``incarnations``): the supervision
tree's state just before it ended, the fills its portfolio heard, the triangles its desk took.

Fails: ``start`` raises what the service raised while starting; a service that ends on its own
(a crash of the service, not one the run drew) raises out of ``keep``, as ``mm start`` exits.
"""

from __future__ import annotations

from typing import Any

import attrs
import trio

from mm import clock
from mm.app import Service
from mm.config import Config, Secrets
from mm.simulation.memory_world import MemoryWorld

__all__ = ["Incarnation", "ServiceProcess"]


@attrs.define
class Incarnation:
    """What one start of the service left: its tree when it ended, the trade ids its
    portfolio heard (None: it forgot some), the triangles its desk took."""

    tree: dict[str, Any] | None = None
    heard: frozenset[str] | None = frozenset()
    taken: int = 0


class ServiceProcess:
    """The service, started again after each stop or crash (see the module)."""

    def __init__(self, config: Config, secrets: Secrets, memory: MemoryWorld) -> None:
        self.config = config
        self._secrets = secrets
        self._memory = memory
        self.service = Service(config, secrets)
        self.incarnations: list[Incarnation] = []
        self._scope: trio.CancelScope | None = None
        self._ended = trio.Event()
        self._crashing = False
        self.up = trio.Event()  # set while the service runs
        self.up_since: float | None = None  # when it last started (wall), None while down

    async def start(self, nursery: trio.Nursery) -> Service:
        """Start the service (a new one after the first: the same config and run directory),
        in ``nursery``; returns it once it runs."""
        if self._scope is not None:
            self.service = Service(self.config, self._secrets)
        self._scope = trio.CancelScope()
        self._ended = trio.Event()
        await nursery.start(self._keep, self.service, self._scope, self._ended)
        self.up.set()
        self.up_since = clock.wall()
        return self.service

    async def _keep(
        self,
        service: Service,
        scope: trio.CancelScope,
        ended: trio.Event,
        *,
        task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED,
    ) -> None:
        try:
            with scope:
                async with trio.open_nursery() as nursery:
                    await nursery.start(service.run)
                    task_status.started()
        except Exception:
            if not self._crashing:  # (what a process cut off raises on its way out is moot)
                raise
        finally:
            ended.set()

    def _note_tree(self) -> Incarnation:
        """A new incarnation's record, with the tree as it is while the service still runs."""
        incarnation = Incarnation(tree=self.service.status()["tree"])
        self.incarnations.append(incarnation)
        return incarnation

    def _note_end(self, incarnation: Incarnation) -> None:
        """What the service heard and took, once it has ended (a fill of the orders its stop
        cancels may land meanwhile)."""
        desk = self.service.trading.triangles
        incarnation.heard = self.service.portfolio.positions.heard_trades()
        incarnation.taken = desk.taken if desk is not None else 0

    async def stop(self, reason: str) -> None:
        """``mm stop``: the service stops as it does when asked, and is down."""
        self.up = trio.Event()
        self.up_since = None
        incarnation = self._note_tree()
        self.service.request_stop(reason)
        await self._ended.wait()
        self._note_end(incarnation)

    async def crash(self) -> None:
        """The process killed: cut off from the world, then its tasks cancelled."""
        assert self._scope is not None
        self.up = trio.Event()
        self.up_since = None
        incarnation = self._note_tree()
        self._crashing = True
        self._memory.crash()
        self._scope.cancel()
        await self._ended.wait()
        self._memory.revive()
        self._crashing = False
        self._note_end(incarnation)

    async def end(self) -> None:
        """The run is over: the last incarnation stops (and is noted)."""
        await self.stop("the simulated run is over")

    def heard(self) -> frozenset[str] | None:
        """The trade ids every incarnation's portfolio heard (None: one forgot some)."""
        heard: set[str] = set()
        for incarnation in self.incarnations:
            if incarnation.heard is None:
                return None
            heard |= incarnation.heard
        return frozenset(heard)
