"""The order audit's decision: orphans at the venue, ghosts and stuck orders here.

Pure (no I/O, no clock: every input carries its time). The order auditor
(`mm.execution.auditor.OrderAuditor`) fetches the venue's open orders, calls `audit` with the
dispatcher's registry, and acts on the `Findings`. What counts as what:

Orphan
    An open order at the venue that no local order explains: nothing here has its cloid or
    oid, or the local order it names ended (went terminal) at least ``grace`` before the
    snapshot was asked for (a "zombie": ended here, still resting there). Spared: an order placed
    less than ``grace`` before the snapshot was asked for (by the venue's own placement time),
    and one without a cloid that could be ours while our placement or modify at its coin, side
    and price is still unanswered (its oid is not known yet). mm gives every order a cloid, so an
    orphan is in practice an order placed by another client of the account, or by an earlier mm.

Ghost
    One of our orders the venue has acknowledged (its oid is known; working, or with a cancel or
    modify in flight) that the venue does not list, in two snapshots asked at least ``grace``
    apart, with no sign of life from the venue in between. A single absence proves little (the
    report of a fill or a cancel that raced the snapshot may be on its way), so the first
    absence only makes it a suspect; ``Findings.absent_since`` carries the suspects to the next
    audit. An order the venue showed alive (``TrackedOrder.seen_ms``: an ack, a live report, a
    fill) after a snapshot was asked for is not judged by that snapshot; our own requests that
    the venue refused (a cancel or modify of an order it no longer has) are no sign of life, so
    an order the strategy keeps poking is judged all the same (asking the venue is safe in any
    state: the dispatcher applies its answer as it applies any report). Never a ghost: an order
    still on its way (PENDING_NEW, no oid yet), an UNKNOWN one, and one found stuck (the stuck
    rule asks about those).

Stuck
    An order whose fate waits on an answer that nobody is waiting for any more: pending
    (``OrderRegistry.overdue``: its request left at least ``stuck_after`` ago) or UNKNOWN with
    nothing heard for ``stuck_after`` (a status query that failed), and no caller awaiting a
    request for it (`mm.execution.dispatch.Dispatcher.awaited`: a request still being sent or
    waited for, behind the rate limiter say, is not stuck however long it takes).

Nothing here decides what to do about them: the auditor cancels or reports orphans (``orphans``
in `AuditConfig`) and asks the venue about ghosts and stuck orders.
"""

from __future__ import annotations

import math
from collections.abc import Collection, Mapping

import attrs

from mm.execution.lifecycle import WORKING_STATES, OrderState, TrackedOrder
from mm.execution.registry import OrderRegistry
from mm.model import OpenOrder
from mm.settings import one_of, positive, setting

ORPHAN_POLICIES = ("cancel", "warn")


@attrs.frozen
class AuditConfig:
    """``[executor.audit]``: how often the venue's orders are compared with ours, the grace
    periods, and what is done with orphans."""

    # Compare the venue's open orders with ours every this many seconds (each audit is one
    # frontendOpenOrders request, IP weight 20: at 10 s, 120 of the 1080 per minute we spend).
    # A resync's snapshot counts as an audit.
    every_s: float = setting(10.0, positive)
    # An order at the venue is an orphan only once placed this long ago, and one of ours is a
    # ghost only when absent from the venue in audits this far apart (seconds).
    grace_s: float = setting(5.0, positive)
    # What to do with an orphan: "cancel" it, or "warn" (leave it, log a warning, and show it
    # in mm status and the mm_orders_foreign metric).
    orphans: str = setting("cancel", one_of(*ORPHAN_POLICIES))
    # An order pending (or UNKNOWN) this long with no request for it awaited is stuck: ask the
    # venue for its status (seconds; keep it above what a request may take, post_timeout_s
    # plus the REST deadline).
    stuck_after_s: float = setting(15.0, positive)


@attrs.frozen
class Snapshot:
    """The venue's open orders, and the wall time (ms) their request was sent: what they show
    is at least that recent."""

    orders: tuple[OpenOrder, ...]
    asked_ms: int


@attrs.frozen
class Findings:
    orphans: tuple[OpenOrder, ...] = ()
    ghosts: tuple[str, ...] = ()  # cloids
    stuck: tuple[str, ...] = ()  # cloids
    absent_since: Mapping[str, int] = attrs.field(factory=dict)  # suspects: cloid -> first miss


def audit(
    registry: OrderRegistry,
    snapshot: Snapshot | None,
    now_ms: int,
    *,
    grace_ms: int,
    stuck_after_ms: int,
    awaited: Collection[str] = frozenset(),
    absent_since: Mapping[str, int] | None = None,
) -> Findings:
    """Everything one audit finds. Without a snapshot (none could be read) only stuck orders
    are found, and the ghost suspects are kept as they are."""
    stuck = find_stuck(registry, now_ms, stuck_after_ms, awaited)
    if snapshot is None:
        return Findings(stuck=stuck, absent_since=dict(absent_since or {}))
    ghosts, suspects = find_ghosts(registry, snapshot, grace_ms, absent_since or {})
    return Findings(
        orphans=find_orphans(registry, snapshot, grace_ms),
        ghosts=tuple(cloid for cloid in ghosts if cloid not in stuck),
        stuck=stuck,
        absent_since=suspects,
    )


def is_orphan(registry: OrderRegistry, order: OpenOrder, asked_ms: int, grace_ms: int) -> bool:
    """Whether a venue open order, listed in a snapshot asked at ``asked_ms``, is nobody's."""
    if asked_ms - order.time_ms < grace_ms:
        return False  # just placed: ours may not be registered by oid yet, theirs may be fine
    ours = registry.find(order.cloid, order.oid)
    if ours is not None:
        if not ours.is_terminal or ours.terminal_ms is None:
            return False
        return asked_ms - ours.terminal_ms >= grace_ms  # ended here, still resting there
    if order.cloid is not None:
        return True  # not a cloid of ours (every order we send carries one)
    return not any(
        mine.coin == order.coin
        and mine.side is order.side
        and (mine.oid is None or mine.modify_target is not None)
        and _same_px(mine, order.px)
        for mine in registry.live()
    )


def find_orphans(
    registry: OrderRegistry, snapshot: Snapshot, grace_ms: int
) -> tuple[OpenOrder, ...]:
    return tuple(o for o in snapshot.orders if is_orphan(registry, o, snapshot.asked_ms, grace_ms))


def find_ghosts(
    registry: OrderRegistry,
    snapshot: Snapshot,
    grace_ms: int,
    absent_since: Mapping[str, int],
) -> tuple[tuple[str, ...], dict[str, int]]:
    """The ghosts, and the suspects to carry over (cloid -> when its absence was first seen)."""
    cloids = {o.cloid for o in snapshot.orders if o.cloid is not None}
    oids = {o.oid for o in snapshot.orders}
    asked = snapshot.asked_ms
    ghosts: list[str] = []
    suspects: dict[str, int] = {}
    for order in registry.live():
        if order.oid is None or order.state not in _ACKNOWLEDGED:
            continue
        seen = order.seen_ms if order.seen_ms is not None else order.created_ms
        if order.cloid in cloids or order.oid in oids or seen > asked:
            continue  # listed, or seen alive since the snapshot was asked for: no judgement
        first = absent_since.get(order.cloid)
        if first is None or seen > first:
            first = asked  # first missed now (or seen alive since it was last missed)
        if asked - first >= grace_ms:
            ghosts.append(order.cloid)
        else:
            suspects[order.cloid] = first
    return tuple(ghosts), suspects


def find_stuck(
    registry: OrderRegistry, now_ms: int, stuck_after_ms: int, awaited: Collection[str]
) -> tuple[str, ...]:
    pending = registry.overdue(now_ms, stuck_after_ms)
    unknown = [
        o
        for o in registry.live()
        if o.state is OrderState.UNKNOWN and now_ms - o.updated_ms >= stuck_after_ms
    ]
    return tuple(o.cloid for o in [*pending, *unknown] if o.cloid not in awaited)


_ACKNOWLEDGED = WORKING_STATES | {OrderState.PENDING_CANCEL, OrderState.PENDING_MODIFY}


def _same_px(order: TrackedOrder, px: float) -> bool:
    prices = [order.px] + ([order.modify_target[0]] if order.modify_target else [])
    return any(math.isclose(p, px, rel_tol=1e-9, abs_tol=1e-12) for p in prices)
