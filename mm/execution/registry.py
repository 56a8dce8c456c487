"""The order identity registry: which venue orders are ours, by cloid and by oid.

Pure bookkeeping, no I/O. An order is registered under its cloid when it is submitted, *before*
the request leaves, so that any answer or report that comes back (even ahead of the order API's
own answer) finds it. Its current venue oid is indexed when the venue first names it (ack or
report) and again on every modify, which gives the order a new oid; the oids it had before stay
indexed too, so a late report for a replaced oid is recognised as ours (and stale) instead of
looking like someone else's order: those the order remembers (its newest ``RETIRED_OIDS_KEPT``,
`mm.execution.lifecycle`), each unindexed when the order forgets it. A report for an oid
forgotten that way is matched by its cloid, or routed as untracked (as for a forgotten order).

Live orders are never dropped. Terminal orders are kept for a bounded number of further terminal
orders (FIFO), so that late reports and fills after the end still match; past that they are
forgotten and a straggler is routed as untracked. A retained terminal order is kept *cold*: as
its `TrackedOrder.compact` tuple (strings and numbers, which the garbage collector stops
tracking), not as the order, which each full collection would walk with its 31 fields (the
2,000 retained were most of what the service's full collections walked: benchmarks/
gc_census.py). A lookup that finds a cold order thaws it (the same object again while anyone
still holds it, through a weak reference, else one rebuilt equal field for field) and keeps it
warm until its next sync, which makes it cold again while it is still terminal; its cloid keeps
its place in registration order throughout. The oid index maps to cloids, not orders. An order
the venue shows alive after it had ended (revived: `mm.execution.lifecycle`) moves back among
the live ones.

The per-cycle queries are indexed: a slot asks for one symbol's live orders
(`OrderRegistry.live` with a coin) and gets them from a per-symbol index, never by scanning
every symbol's orders or the retained terminal ones; a sync looks at the order's retired oids
only when they changed since its last sync (a modify: one oid more, perhaps one forgotten), so
its cost does not grow with the order's history. The indexes are kept by the same
calls that keep the orders (`register`, `sync`, retention): nothing else may change them.

"In flight since" (the time the request in flight left) lets reconciliation give an order the
benefit of the doubt while its placement has not been answered: see `OrderRegistry.in_flight`.
"""

from __future__ import annotations

import functools
import weakref
from collections import deque
from collections.abc import Iterator
from typing import Any

from mm.execution.lifecycle import COMPACT_FIELDS, OrderState, TrackedOrder
from mm.model import OrderId

_PENDING = frozenset({OrderState.PENDING_NEW, OrderState.PENDING_CANCEL, OrderState.PENDING_MODIFY})
_OID_AT = COMPACT_FIELDS.index("oid")


class DuplicateCloid(ValueError):
    """A cloid is already registered (live, or terminal and still retained)."""


class OrderRegistry:
    """Our orders by cloid and by every oid they have had, with bounded terminal retention."""

    def __init__(self, terminal_capacity: int = 2_000) -> None:
        if terminal_capacity < 1:
            raise ValueError(f"terminal_capacity must be at least 1, got {terminal_capacity}")
        self.terminal_capacity = terminal_capacity
        # Every order by cloid in registration order; None for a cold one (in _cold).
        self._by_cloid: dict[str, TrackedOrder | None] = {}
        self._cold: dict[str, tuple[Any, ...]] = {}  # cloid -> the terminal order, compact
        # cloid -> the order made cold, while something else still holds it
        self._cold_refs: dict[str, weakref.ref[TrackedOrder]] = {}
        self._by_oid: dict[OrderId, str] = {}  # every oid an order has or keeps -> its cloid
        # The orders not yet seen terminal: the per-cycle queries scan these, never the
        # (up to terminal_capacity) retained terminal orders.
        self._live: dict[str, TrackedOrder] = {}
        self._live_by_coin: dict[str, dict[str, TrackedOrder]] = {}  # coin -> cloid -> order
        # cloid -> its retired oids as indexed at its last sync (a tuple of strings: not a
        # container the garbage collector walks once it has survived a collection).
        self._retired_indexed: dict[str, tuple[OrderId, ...]] = {}
        self._terminal: deque[str] = deque()
        self._terminal_set: set[str] = set()
        self.evicted = 0  # terminal orders forgotten to respect the bound

    def __len__(self) -> int:
        return len(self._by_cloid)

    def __contains__(self, cloid: object) -> bool:
        return cloid in self._by_cloid

    def __iter__(self) -> Iterator[TrackedOrder]:
        """Every order, in registration order (cold ones thawed: for tests and tools)."""
        orders = [self.get(cloid) for cloid in list(self._by_cloid)]
        return iter([order for order in orders if order is not None])

    # --- registration ---------------------------------------------------------------------------

    def register(self, order: TrackedOrder) -> None:
        """Register a new order under its cloid (before its request leaves)."""
        if order.cloid in self._by_cloid:
            raise DuplicateCloid(f"cloid {order.cloid} is already registered")
        for oid in (order.oid, *order.retired_oids):
            if oid is not None and oid in self._by_oid:
                raise DuplicateCloid(f"oid {oid} already belongs to {self._by_oid[oid]}")
        self._by_cloid[order.cloid] = order
        self._live[order.cloid] = order
        self._live_by_coin.setdefault(order.coin, {})[order.cloid] = order
        self.sync(order)

    def sync(self, order: TrackedOrder) -> None:
        """Index the order's current and past oids; move it to retention once terminal."""
        cloid = order.cloid
        if self._by_cloid.get(cloid) is not order and not self._thawed_is(order):
            raise KeyError(f"order {cloid} is not registered")
        if order.oid is not None:
            owner = self._by_oid.setdefault(order.oid, cloid)
            if owner != cloid:
                raise DuplicateCloid(f"oid {order.oid} already belongs to {owner}")
        if not self._indexed_now(order):
            self._index_retired(order)
        if not order.is_terminal and order.cloid in self._terminal_set:
            # Revived (the venue showed an order we had ended alive): live again, in its place
            # by registration like every live order. Rare, so the linear work does not matter.
            self._terminal_set.discard(order.cloid)
            self._terminal.remove(order.cloid)
            self._live = {
                key: known
                for key, known in self._by_cloid.items()
                if known is not None and (key in self._live or known is order)
            }
            self._live_by_coin[order.coin] = {
                cloid: known for cloid, known in self._live.items() if known.coin == order.coin
            }
        if order.is_terminal and order.cloid not in self._terminal_set:
            self._live.pop(order.cloid, None)
            coin_live = self._live_by_coin.get(order.coin)
            if coin_live is not None:
                coin_live.pop(order.cloid, None)
                if not coin_live:
                    del self._live_by_coin[order.coin]
            self._terminal.append(order.cloid)
            self._terminal_set.add(order.cloid)
            while len(self._terminal) > self.terminal_capacity:
                self._forget(self._terminal.popleft())
        if order.is_terminal and cloid in self._terminal_set:
            self._cool(order)

    def _cool(self, order: TrackedOrder) -> None:
        """Keep a terminal order cold (see the module)."""
        cloid = order.cloid
        self._cold[cloid] = order.compact()
        # Kept while a caller still holds the order: its end takes the entry out.
        self._cold_refs[cloid] = weakref.ref(order, functools.partial(self._released, cloid))
        self._by_cloid[cloid] = None

    def _released(self, cloid: str, ref: weakref.ref[TrackedOrder]) -> None:
        if self._cold_refs.get(cloid) is ref:
            del self._cold_refs[cloid]

    def _thaw(self, cloid: str) -> TrackedOrder:
        values = self._cold.pop(cloid)
        ref = self._cold_refs.pop(cloid, None)
        order = None if ref is None else ref()
        if order is None:
            order = TrackedOrder.from_compact(values)
        self._by_cloid[cloid] = order
        return order

    def _thawed_is(self, order: TrackedOrder) -> bool:
        """Whether ``order`` is the cold order of its cloid, still held by a caller: thawed."""
        ref = self._cold_refs.get(order.cloid)
        if ref is None or ref() is not order:
            return False
        self._thaw(order.cloid)
        return True

    def _indexed_now(self, order: TrackedOrder) -> bool:
        """Whether the order's retired oids are those indexed: they are only ever appended to and
        trimmed at their start (`TrackedOrder._retire`), so their count and last oid tell."""
        retired = order.retired_oids
        indexed = self._retired_indexed.get(order.cloid, ())
        return len(indexed) == len(retired) and (not retired or indexed[-1] == retired[-1])

    def _index_retired(self, order: TrackedOrder) -> None:
        """Index the retired oids the order gained, unindex those it forgot."""
        retired = order.retired_oids
        before = self._retired_indexed.get(order.cloid, ())
        had = set(before)
        for oid in retired:
            if oid not in had:
                owner = self._by_oid.setdefault(oid, order.cloid)
                if owner != order.cloid:
                    raise DuplicateCloid(f"oid {oid} already belongs to {owner}")
        kept = set(retired)
        for oid in before:
            if oid not in kept and oid != order.oid and self._by_oid.get(oid) == order.cloid:
                del self._by_oid[oid]
        self._retired_indexed[order.cloid] = retired

    def _forget(self, cloid: str) -> None:
        self._terminal_set.discard(cloid)
        order = self._by_cloid.pop(cloid)
        kept: tuple[OrderId, ...] = ()
        if order is None:
            oid = self._cold.pop(cloid)[_OID_AT]
            self._cold_refs.pop(cloid, None)
        else:
            oid, kept = order.oid, order.retired_oids
        indexed = self._retired_indexed.pop(cloid, ())
        self.evicted += 1
        for had in (oid, *indexed, *kept):
            if had is not None and self._by_oid.get(had) == cloid:
                del self._by_oid[had]

    # --- lookups --------------------------------------------------------------------------------

    def get(self, cloid: str) -> TrackedOrder | None:
        order = self._by_cloid.get(cloid)
        if order is None and cloid in self._cold:
            return self._thaw(cloid)
        return order

    def by_oid(self, oid: OrderId) -> TrackedOrder | None:
        """The order that has, or had, this venue oid."""
        cloid = self._by_oid.get(oid)
        return None if cloid is None else self.get(cloid)

    def find(self, cloid: str | None, oid: OrderId | None) -> TrackedOrder | None:
        """By cloid first (it never changes), then by oid."""
        if cloid is not None:
            order = self.get(cloid)
            if order is not None:
                return order
        return self.by_oid(oid) if oid is not None else None

    def is_retired(self, order: TrackedOrder, oid: OrderId) -> bool:
        """Whether ``oid`` is one of ``order``'s past oids it keeps (``oid in
        order.retired_oids``), from the index when it is up to date; an order changed since its
        last sync (it may have gained or forgotten one) asks the order (a bounded scan)."""
        if oid == order.oid:
            return False
        if self._by_cloid.get(order.cloid) is order and self._indexed_now(order):
            return self._by_oid.get(oid) == order.cloid  # its current oid and those it keeps
        return order.is_retired_oid(oid)

    def current_oid(self, cloid: str) -> OrderId | None:
        order = self.get(cloid)
        return order.oid if order is not None else None

    def live(self, coin: str | None = None) -> list[TrackedOrder]:
        """Orders not yet terminal (UNKNOWN included: it is never assumed gone), in the order
        they were registered; with ``coin``, that symbol's only (from its index, no scan)."""
        orders = self._live if coin is None else self._live_by_coin.get(coin)
        if not orders:
            return []
        return [o for o in orders.values() if not o.is_terminal]

    def live_count(self) -> int:
        """``len(live())``, without making the list (the pre-trade checks' count, per order)."""
        return sum(1 for o in self._live.values() if not o.is_terminal)

    # --- in flight ------------------------------------------------------------------------------

    def in_flight_since(self, cloid: str) -> int | None:
        """When the request in flight for this order left; None when nothing is in flight."""
        order = self.get(cloid)
        return order.in_flight_since_ms if order is not None else None

    def in_flight(self) -> list[TrackedOrder]:
        """Orders the venue may hold without our knowing their oid yet: placed, not answered
        (PENDING_NEW, or UNKNOWN before any oid was learned)."""
        return [o for o in self._live.values() if o.oid is None and not o.is_terminal]

    def overdue(self, now_ms: int, timeout_ms: int) -> list[TrackedOrder]:
        """Pending orders whose request left at least ``timeout_ms`` ago: time them out.
        (UNKNOWN orders have timed out already; they wait for the venue.)"""
        return [
            o
            for o in self._live.values()
            if o.in_flight_since_ms is not None
            and o.state in _PENDING
            and now_ms - o.in_flight_since_ms >= timeout_ms
        ]
