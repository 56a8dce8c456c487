"""Fills that come without their order's client id, for the executors that route fills by it.

A venue's fill history may not carry the client id (KuCoin's ``/hf/fills``): a fill the fill
audit or a resync found there before the user stream's own copy (which is then dropped as a
duplicate) reaches the service without it. ``UnidentifiedFills.identify`` gives such a fill
the client id of its order as the dispatcher tracks it (by the order's id:
``Dispatcher.with_cloid``); before the order's answer has told its id, it holds the fill (the
latest ``capacity`` orders'), and ``release`` hands the held fills of an order back, with its
client id, once the answer has come. Plain bookkeeping; never fails.
"""

from __future__ import annotations

from collections import OrderedDict

import attrs

from mm.execution.dispatch import Dispatcher
from mm.model import Fill, OrderId

__all__ = ["UnidentifiedFills"]


class UnidentifiedFills:
    """Fills without a client id, identified by their order's id (see the module)."""

    def __init__(self, dispatcher: Dispatcher, capacity: int) -> None:
        self._dispatcher = dispatcher
        self._capacity = capacity
        self._held: OrderedDict[OrderId, list[Fill]] = OrderedDict()

    def identify(self, fill: Fill) -> Fill | None:
        """``fill`` with its client id, or None: held until its order's answer."""
        fill = self._dispatcher.with_cloid(fill)
        if fill.cloid is not None:
            return fill
        self._held.setdefault(fill.oid, []).append(fill)
        while len(self._held) > self._capacity:
            self._held.popitem(last=False)
        return None

    def release(self, cloid: str) -> list[Fill]:
        """The fills held for the order ``cloid``, with that client id (none while its id is
        not known)."""
        tracked = self._dispatcher.registry.get(cloid)
        if tracked is None or tracked.oid is None:
            return []
        return [attrs.evolve(fill, cloid=cloid) for fill in self._held.pop(tracked.oid, ())]
