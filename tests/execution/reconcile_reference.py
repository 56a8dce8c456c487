"""The reconciliation before issue 16's per-tick cuts, verbatim but for names: the reference
that ``tests/execution/test_reconcile.py`` holds ``mm.execution.reconcile.reconcile`` to."""

from __future__ import annotations

import itertools
from collections.abc import Sequence

import attrs

from mm.execution.reconcile import (
    _BLOCKED,
    _WORKING,
    LiveOrder,
    Plan,
    ReconcileConfig,
    _max_matching,
    matches,
)
from mm.model import DesiredOrder, Side


def _reference_adjacency(
    lefts: Sequence[LiveOrder], rights: Sequence[DesiredOrder], config: ReconcileConfig, tick: float
) -> list[list[int]]:
    """Every pair through ``matches``, nearest price first (then level, then index)."""
    return [
        [
            j
            for _, _, j in sorted(
                (abs(want.px - live.px), want.level, j)
                for j, want in enumerate(rights)
                if matches(live, want, config, tick)
            )
        ]
        for live in lefts
    ]


def _reference_nearest_pairs(
    lives: list[LiveOrder], wants: list[DesiredOrder], count: int
) -> list[tuple[int, int]]:
    """``count`` index pairs, greedily the nearest prices first (deterministic ties)."""
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


@attrs.define
class _Side:
    working: list[LiveOrder]  # unmatched working orders
    wants: list[DesiredOrder]  # unmatched desired orders that may be served now
    deferred: list[DesiredOrder]

    @property
    def max_modify(self) -> int:
        return min(len(self.working), len(self.wants))


def reference_reconcile(
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
    owner = _max_matching(_reference_adjacency(lefts, desired, config, tick))
    plan = Plan()
    matched_left: set[int] = set()
    for j, want in enumerate(desired):
        if j in owner:
            matched_left.add(owner[j])
            plan.keep.append((lefts[owner[j]], want))
    free = [order for i, order in enumerate(lefts) if i not in matched_left]
    open_wants = [want for j, want in enumerate(desired) if j not in owner]

    sides: dict[Side, _Side] = {}
    for side in tuple(Side):
        side_working = [o for o in free if o.side is side and o.state in _WORKING]
        side_blocked = [o for o in free if o.side is side and o.state in _BLOCKED]
        wants = [w for w in open_wants if w.side is side]
        plan.untouched.extend(side_blocked)
        n_defer = min(max(0, len(wants) - len(side_working)), len(side_blocked))
        deferred_ix = {j for _, j in _reference_nearest_pairs(side_blocked, wants, n_defer)}
        sides[side] = _Side(
            side_working,
            [w for j, w in enumerate(wants) if j not in deferred_ix],
            [w for j, w in enumerate(wants) if j in deferred_ix],
        )

    buy, sell = sides[Side.BUY], sides[Side.SELL]
    best: tuple[tuple[int, int, int], int, int] | None = None
    working_count = len(buy.working) + len(sell.working)
    wants_count = len(buy.wants) + len(sell.wants)
    for m_buy, m_sell in itertools.product(range(buy.max_modify + 1), range(sell.max_modify + 1)):
        modifies = m_buy + m_sell
        cancels = working_count - modifies
        places = wants_count - modifies
        batches = (modifies > 0) + (cancels > 0) + (places > 0)  # none is negative
        cost = (batches, modifies + cancels + places, -modifies)
        if best is None or cost < best[0]:
            best = (cost, m_buy, m_sell)
    assert best is not None
    for side, count in ((Side.BUY, best[1]), (Side.SELL, best[2])):
        state = sides[side]
        pairs = _reference_nearest_pairs(state.working, state.wants, count)
        plan.modify.extend((state.working[i], state.wants[j]) for i, j in pairs)
        moved, served = {i for i, _ in pairs}, {j for _, j in pairs}
        plan.cancel.extend(o for i, o in enumerate(state.working) if i not in moved)
        plan.place.extend(w for j, w in enumerate(state.wants) if j not in served)
        plan.deferred.extend(state.deferred)
    plan.place.sort(key=lambda w: (w.level, w.side is Side.BUY, w.px))  # asks first
    return plan
