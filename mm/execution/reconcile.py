"""Order reconciliation: the fewest venue calls that turn our live orders into the desired quotes.

Pure and synchronous: `reconcile` diffs the strategy's desired orders for one symbol against our
live orders there and returns a `Plan` of keeps, modifies, cancels and places (plus the desired
orders deferred to a later cycle). The executor sends the plan; nothing here does I/O.

Matching
--------

A live order *matches* a desired order when the sides are equal, the price is within
``max(px_tolerance_bps * desired.px / 1e4, px_tolerance_ticks * tick)`` and the remaining size
is within ``sz_tolerance * desired.sz``. Matches are one-to-one (a maximum bipartite matching).

- **Terminal** live orders (FILLED, CANCELED, REJECTED, EXPIRED) are ignored.
- **Working** live orders (OPEN, PARTIALLY_FILLED) may be kept, modified or canceled.
- **Blocked** live orders (PENDING_NEW, PENDING_CANCEL, PENDING_MODIFY, UNKNOWN) are never acted
  on. One that matches a desired order occupies it (it is listed in ``keep``, so the desired
  order is not placed again); one that matches nothing is listed in ``untouched``. A desired order
  that nothing working can serve, while an unmatched blocked order sits on its side, could only be
  served by acting on that order: it is ``deferred`` (at most one per unmatched blocked order),
  so that we never stack a new order beside one whose fate is open.

The matching takes working orders first (Kuhn's augmenting paths, in that order, keep every
order already matched), so among the maximum matchings it uses the most working orders: a working
order kept is a call saved, a blocked one occupying leaves a working one to cancel or modify.

Objective
---------

Venue calls are batched: placing n orders is one call, canceling n is one call, and a
batchModify of n is one call (a modify keeps the cloid). After the keeps, every remaining working
order on a side is either modified to a remaining desired order of that side or canceled, and
every remaining (not deferred) desired order is either the target of a modify or placed. The plan
minimizes, lexicographically:

1. the number of distinct action batches (nonempty among modify, cancel, place: ``calls()``);
2. the number of orders touched (modified + canceled + placed);
3. then prefers modifies over cancel+place.

Keeping as many orders as possible never costs a batch or a touch, so keeps come first. Without
other constraints (2) makes every possible modify happen; (1) may instead turn modifies into
cancel+place when the cancel and place batches are sent anyway (for example a stale extra bid to
cancel and a new ask to place: canceling both bids and placing both orders is two calls, where
modify + cancel + place would be three). Modifies pair the nearest prices; sides never mix.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence

import attrs

from mm.execution.lifecycle import WORKING_STATES, OrderState, TrackedOrder
from mm.model import DesiredOrder, OrderId, Side
from mm.settings import at_least, non_negative, setting

#: Live states that are never acted on (no cancel, no modify, nothing placed over them).
BLOCKED_STATES: frozenset[OrderState] = frozenset(
    {
        OrderState.PENDING_NEW,
        OrderState.PENDING_CANCEL,
        OrderState.PENDING_MODIFY,
        OrderState.UNKNOWN,
    }
)
_EPS = 1e-9
# The same states as tuples, for the per-cycle membership tests: a tuple finds an enum member
# by identity, where a set would first call the enum's Python-level __hash__.
_WORKING: tuple[OrderState, ...] = tuple(WORKING_STATES)
_BLOCKED: tuple[OrderState, ...] = tuple(BLOCKED_STATES)
# Enum members read once: a member read through its class is a Python-level lookup.
_PENDING_MODIFY = OrderState.PENDING_MODIFY
_BUY = Side.BUY


def _fraction(value: float) -> str | None:
    return None if 0 <= value < 1 else f"must be in [0, 1), got {value!r}"


@attrs.frozen
class ReconcileConfig:
    """Tolerances under which a live order is kept as it is."""

    px_tolerance_bps: float = setting(1.0, non_negative)  # of the desired price
    px_tolerance_ticks: int = setting(0, at_least(0))  # used with ``tick`` (the wider wins)
    sz_tolerance: float = setting(0.1, _fraction)  # fraction of the desired size


@attrs.frozen(slots=True)
class LiveOrder:
    """One of our orders as reconciliation sees it: ``sz`` is the remaining size."""

    cloid: str
    oid: OrderId | None
    side: Side
    px: float
    sz: float
    state: OrderState

    @classmethod
    def from_tracked(cls, order: TrackedOrder) -> LiveOrder:
        """A snapshot of a tracked order; a pending modify is seen at its target price and size."""
        px, sz = order.px, order.leaves_sz
        if order.state is _PENDING_MODIFY and order.modify_target is not None:
            px, sz = order.modify_target[0], order.modify_target[1]
        return cls(order.cloid, order.oid, order.side, px, sz, order.state)


@attrs.frozen
class Plan:
    """What to send: each live and each desired order appears in at most one list."""

    keep: list[tuple[LiveOrder, DesiredOrder]] = attrs.Factory(list)
    modify: list[tuple[LiveOrder, DesiredOrder]] = attrs.Factory(list)
    cancel: list[LiveOrder] = attrs.Factory(list)
    place: list[DesiredOrder] = attrs.Factory(list)
    deferred: list[DesiredOrder] = attrs.Factory(list)
    untouched: list[LiveOrder] = attrs.Factory(list)  # blocked orders that match nothing

    def calls(self) -> int:
        """Venue calls: one per nonempty batch (modify, cancel, place)."""
        return sum(1 for batch in (self.modify, self.cancel, self.place) if batch)

    def touched(self) -> int:
        """Orders acted on: modified + canceled + placed."""
        return len(self.modify) + len(self.cancel) + len(self.place)

    @property
    def is_empty(self) -> bool:
        return self.calls() == 0


def px_tolerance(px: float, config: ReconcileConfig, tick: float = 0.0) -> float:
    """The price distance under which a live order still serves a desired price ``px``."""
    return max(config.px_tolerance_bps * abs(px) / 1e4, config.px_tolerance_ticks * tick)


def matches(
    live: LiveOrder, want: DesiredOrder, config: ReconcileConfig, tick: float = 0.0
) -> bool:
    """Whether ``live`` serves ``want`` as it is (same side, price and size within tolerance)."""
    if live.side is not want.side:
        return False
    px_ok = abs(live.px - want.px) <= px_tolerance(want.px, config, tick) + _EPS * abs(want.px)
    sz_ok = abs(live.sz - want.sz) <= config.sz_tolerance * want.sz + _EPS * abs(want.sz)
    return px_ok and sz_ok


def _adjacency(
    lefts: Sequence[LiveOrder],
    rights: Sequence[DesiredOrder],
    config: ReconcileConfig,
    tick: float,
) -> list[list[int]]:
    """For each live order, the desired orders it ``matches``, nearest price first (then level,
    then index). The desired orders are indexed by side with their tolerances computed once, so
    a live order is compared with its own side's only: the same lists as ``matches`` over every
    pair, without the pairs that cannot match."""
    buys: list[tuple[int, DesiredOrder, float, float]] = []
    sells: list[tuple[int, DesiredOrder, float, float]] = []
    sz_tolerance = config.sz_tolerance
    bps = config.px_tolerance_bps
    tick_room = config.px_tolerance_ticks * tick
    buy = Side.BUY
    for j, want in enumerate(rights):
        px, sz = want.px, want.sz
        # px_tolerance(px, config, tick), its terms computed as it computes them
        px_room = max(bps * abs(px) / 1e4, tick_room) + _EPS * abs(px)
        sz_room = sz_tolerance * sz + _EPS * abs(sz)
        (buys if want.side is buy else sells).append((j, want, px_room, sz_room))
    adjacency: list[list[int]] = []
    for live in lefts:
        found: list[tuple[float, int, int]] = []
        live_px, live_sz = live.px, live.sz
        for j, want, px_room, sz_room in buys if live.side is buy else sells:
            distance = abs(want.px - live_px)
            if distance <= px_room and abs(live_sz - want.sz) <= sz_room:
                found.append((distance, want.level, j))
        found.sort()
        adjacency.append([j for _, _, j in found])
    return adjacency


def _max_matching(adjacency: list[list[int]]) -> dict[int, int]:
    """Kuhn's algorithm, lefts in the given order, each trying its adjacency list in order:
    right index -> left."""
    owner: dict[int, int] = {}
    for i in range(len(adjacency)):
        _augment(adjacency, owner, i, set())
    return owner


def _augment(adjacency: list[list[int]], owner: dict[int, int], i: int, seen: set[int]) -> bool:
    """One augmenting path from left ``i``. A module function, not a closure in
    ``_max_matching``: a recursive closure holds itself through its cell, a cycle the
    collector had to free on every reconcile (most of the live service's cyclic garbage)."""
    for j in adjacency[i]:
        if j in seen:
            continue
        seen.add(j)
        if j not in owner or _augment(adjacency, owner, owner[j], seen):
            owner[j] = i
            return True
    return False


def _nearest_pairs(
    lives: list[LiveOrder], wants: list[DesiredOrder], count: int
) -> list[tuple[int, int]]:
    """``count`` index pairs, greedily the nearest prices first (deterministic ties)."""
    if count <= 0:
        return []
    candidates = sorted(
        (
            (abs(live.px - want.px), i, j)
            for i, live in enumerate(lives)
            for j, want in enumerate(wants)
        ),
    )
    used_l: set[int] = set()
    used_r: set[int] = set()
    pairs: list[tuple[int, int]] = []
    for _, i, j in candidates:
        if len(pairs) >= count:
            break
        if i in used_l or j in used_r:
            continue
        used_l.add(i)
        used_r.add(j)
        pairs.append((i, j))
    return pairs


def reconcile(
    desired: Sequence[DesiredOrder],
    live: Sequence[LiveOrder],
    config: ReconcileConfig,
    *,
    tick: float = 0.0,
) -> Plan:
    """The plan with the fewest venue calls turning ``live`` into ``desired`` (one symbol)."""
    working = [order for order in live if order.state in _WORKING]
    blocked = [order for order in live if order.state in _BLOCKED]
    lefts = working + blocked
    owner = _max_matching(_adjacency(lefts, desired, config, tick))
    keep: list[tuple[LiveOrder, DesiredOrder]] = []
    matched_left: set[int] = set()
    for j, want in enumerate(desired):
        i = owner.get(j)
        if i is not None:
            matched_left.add(i)
            keep.append((lefts[i], want))
    # Per side (0 buys, 1 sells: lists, not dicts keyed by Side, whose hash is Python code), in
    # the order of ``lefts`` and ``desired``: the unmatched working and blocked orders and the
    # unmatched desired orders.
    sell = Side.SELL
    free_working: tuple[list[LiveOrder], list[LiveOrder]] = ([], [])
    free_blocked: tuple[list[LiveOrder], list[LiveOrder]] = ([], [])
    for i, order in enumerate(working):
        if i not in matched_left:
            free_working[order.side is sell].append(order)
    for i, order in enumerate(blocked, len(working)):
        if i not in matched_left:
            free_blocked[order.side is sell].append(order)
    open_wants: tuple[list[DesiredOrder], list[DesiredOrder]] = ([], [])
    for j, want in enumerate(desired):
        if j not in owner:
            open_wants[want.side is sell].append(want)

    untouched: list[LiveOrder] = []
    servable: list[list[DesiredOrder]] = []
    deferred_by_side: list[list[DesiredOrder]] = []
    for side_working, side_blocked, wants in zip(
        free_working, free_blocked, open_wants, strict=True
    ):
        untouched.extend(side_blocked)
        n_defer = min(max(0, len(wants) - len(side_working)), len(side_blocked))
        if n_defer == 0:
            servable.append(wants)
            deferred_by_side.append([])
            continue
        deferred_ix = {j for _, j in _nearest_pairs(side_blocked, wants, n_defer)}
        servable.append([w for j, w in enumerate(wants) if j not in deferred_ix])
        deferred_by_side.append([w for j, w in enumerate(wants) if j in deferred_ix])

    buy_working, sell_working = free_working
    buy_wants, sell_wants = servable
    best: tuple[tuple[int, int, int], int, int] | None = None
    working_count = len(buy_working) + len(sell_working)
    wants_count = len(buy_wants) + len(sell_wants)
    max_buy = min(len(buy_working), len(buy_wants))
    max_sell = min(len(sell_working), len(sell_wants))
    for m_buy, m_sell in itertools.product(range(max_buy + 1), range(max_sell + 1)):
        modifies = m_buy + m_sell
        cancels = working_count - modifies
        places = wants_count - modifies
        batches = (modifies > 0) + (cancels > 0) + (places > 0)  # none is negative
        cost = (batches, modifies + cancels + places, -modifies)
        if best is None or cost < best[0]:
            best = (cost, m_buy, m_sell)
    assert best is not None
    modify: list[tuple[LiveOrder, DesiredOrder]] = []
    cancel: list[LiveOrder] = []
    place: list[DesiredOrder] = []
    deferred: list[DesiredOrder] = []
    for side, count in ((0, best[1]), (1, best[2])):
        side_working, wants = free_working[side], servable[side]
        pairs = _nearest_pairs(side_working, wants, count)
        if pairs:
            modify.extend([(side_working[i], wants[j]) for i, j in pairs])
            moved, served = {i for i, _ in pairs}, {j for _, j in pairs}
            cancel.extend([o for i, o in enumerate(side_working) if i not in moved])
            place.extend([w for j, w in enumerate(wants) if j not in served])
        else:
            cancel.extend(side_working)
            place.extend(wants)
        deferred.extend(deferred_by_side[side])
    if len(place) > 1:
        place.sort(key=_place_order)  # asks first
    return Plan(keep, modify, cancel, place, deferred, untouched)


def _place_order(want: DesiredOrder) -> tuple[int, bool, float]:
    """Places go out level by level, asks before bids, then by price."""
    return (want.level, want.side is _BUY, want.px)
