"""Execution dispatch: venue order reports and fills in, typed lifecycle events out.

Pure functional core (no I/O, no clock: every entry point takes ``now_ms``). The order API shell
and the user-stream task call one `Dispatcher`; it owns the `TrackedOrder` s (through an
`OrderRegistry`) and answers every input with a list of events.

Two-tier routing
    A report or fill whose cloid (else oid) is registered is turned into typed events
    (`OrderAccepted`, `OrderUpdated`, `FillEvent`, `OrderFilled`, ...). Anything else, an order
    placed by another client, or by us before a restart, or forgotten after retention, is passed
    on raw as `UntrackedReport` / `UntrackedFill` for reconciliation, never turned into
    lifecycle events.

Fill dedup
    Fills are deduplicated on (oid, tid) in a bounded FIFO set before routing: the userFills
    snapshot sent again after a resubscribe, or a duplicated frame, is dropped and counted,
    never applied twice. The oid is part of the key so that the two sides of one trade (two of
    our orders crossing) would still be two fills; for one order, tid alone decides.

Cancel-replace
    Hyperliquid modifies by cancel-and-replace: under one cloid the venue reports the old oid
    ``canceled`` and a new oid accepted, and those two reports, the fills on the new oid and the
    modify's own answer can arrive in any order. A pending-modify marker (keyed on cloid) is set
    when the modify is *sent* (not when it is answered, unlike the reference design: so a cancel
    of the old oid that arrives before anything else is covered too), and:

    - the first evidence of the new oid (the modify's answer, a report for an oid the order has
      not had, a fill on it) promotes it to the order's oid and emits exactly one `OrderUpdated`;
      the old oid is retired, and every later report for it is stale (counted, no event, no
      regression);
    - except when the order has forgotten some of its oids (it keeps the newest
      ``RETIRED_OIDS_KEPT``, `mm.execution.lifecycle`): then a report or fill under its cloid for
      an oid it does not know may as well be a very late one for a forgotten oid as the
      replacement's, and only the modify's answer (or an orderStatus answer for the cloid,
      which names the cloid's current venue order) tells which. Such an event is held on the
      marker, never taken for the replacement's, and replayed in arrival order once the marker
      expires, whatever expires it: on the replacement if the answer named its oid, else as a
      late event for an oid the order no longer has (a fill counted in the order's total on no
      leg, a report stale). Nothing held is lost, and a forgotten oid never passes for the
      replacement (before, its fill was booked on the new leg and its ``canceled`` ended the
      live order);
    - a ``CANCELED`` (at our request, not by the venue's rules) for the old oid that arrives
      while the marker is set is held back, not applied: dropped when the replacement shows
      up, replayed (as `OrderCanceled`) when the modify is refused;
    - a rejected replacement leg (e.g. ``badAloPxRejected`` for the new oid) is retired and the
      marker stays until the modify's answer, so the order's fate is decided by the old oid's
      reports whatever the arrival order;
    - the marker expires when the modify is refused, when the order ends, or when an
      authoritative orderStatus answer (`Dispatcher.resolve_unknown` after a timeout) names the
      old oid (no replacement exists) or the rejected replacement (the modify failed; without a
      held cancel the order stays UNKNOWN until the old oid's status is asked for).

Unknown outcomes
    `Dispatcher.on_timeout` moves a pending order to UNKNOWN; venue reports, late answers, or
    `Dispatcher.resolve_unknown` (an orderStatus answer, or None when the venue does not know
    the cloid) resolve it. `Dispatcher.resolve_absent` does the same for a working order the
    venue no longer lists (a ghost: `mm.execution.audit`), which the venue not knowing it ends.
    The venue takes an action in and commits it a block or two later, so an orderStatus answer
    asked while the place or modify may still land (`Dispatcher.may_land`,
    `Dispatcher.caller_gone`; see `TrackedOrder.lands_by_ms`) is no proof: "not found" changes
    nothing, nor does the old oid still open under a modify's cloid; the router asks again once
    the request can no longer land.

Late evidence
    A live report, a resting answer or a fill for an order that ended REJECTED or EXPIRED (the
    venue refused it or did not know it) revives it (`OrderRevived`, then managed as any live
    order): the venue's word that an order lives is never ignored.

Requests awaited
    The order router brackets every request, its answer and its resolution with
    `Dispatcher.awaiting`; `Dispatcher.awaited` names the orders a caller is still waiting on, so
    that the order auditor never takes such an order for stuck, however long it waits.

Venue inputs that contradict the order's state (an illegal transition) change nothing: they are
counted in `DispatchStats.conflicts` (and a contradicting fill or live report is also passed on
raw, so reconciliation sees it). Local requests that are illegal raise `IllegalTransition`.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable

import attrs

from mm.bounded import BoundedSet
from mm.execution.lifecycle import (
    IllegalTransition,
    LifecycleError,
    Op,
    OrderState,
    TrackedOrder,
    Transition,
)
from mm.execution.registry import OrderRegistry
from mm.model import (
    CancelResult,
    Fill,
    Filled,
    ModifyOrder,
    OrderId,
    OrderReport,
    OrderStatus,
    PlaceOrder,
    PlaceResult,
    Rejected,
    Resting,
    Side,
)

# --- events ------------------------------------------------------------------------------------


@attrs.frozen(slots=True)
class OrderAccepted:
    """The venue holds the order (first time it is seen live or filled)."""

    cloid: str
    oid: OrderId
    coin: str
    side: Side
    px: float
    sz: float
    time_ms: int


@attrs.frozen(slots=True)
class OrderUpdated:
    """A modify took effect: one event, whatever the order of the venue's cancel/accept."""

    cloid: str
    oid: OrderId
    old_oid: OrderId
    px: float
    sz: float
    time_ms: int


@attrs.frozen(slots=True)
class FillEvent:
    """One unique fill of a tracked order (never emitted twice for a trade)."""

    cloid: str
    fill: Fill
    filled_sz: float  # cumulative, this fill included
    avg_px: float
    time_ms: int


@attrs.frozen(slots=True)
class OrderPartiallyFilled:
    cloid: str
    oid: OrderId | None
    filled_sz: float
    leaves_sz: float
    avg_px: float
    time_ms: int


@attrs.frozen(slots=True)
class OrderFilled:
    cloid: str
    oid: OrderId | None
    filled_sz: float  # what the fills so far add up to (they may still be on their way)
    avg_px: float
    time_ms: int


@attrs.frozen(slots=True)
class OrderCanceled:
    cloid: str
    oid: OrderId | None
    reason: str  # the venue's own word for it (Hyperliquid's marginCanceled, say)
    filled_sz: float
    time_ms: int


@attrs.frozen(slots=True)
class OrderRejected:
    cloid: str
    oid: OrderId | None
    reason: str
    time_ms: int


@attrs.frozen(slots=True)
class OrderExpired:
    cloid: str
    oid: OrderId | None
    reason: str
    time_ms: int


@attrs.frozen(slots=True)
class OrderRevived:
    """An order that had ended REJECTED or EXPIRED is live at the venue after all: it is
    tracked and managed again (its late ``open``, resting answer or fill said so)."""

    cloid: str
    oid: OrderId | None
    was: str  # the state it had ended in
    time_ms: int


@attrs.frozen(slots=True)
class OrderStateUnknown:
    """A request got no answer: the order's fate is unknown until the venue says."""

    cloid: str
    oid: OrderId | None
    op: Op
    time_ms: int


@attrs.frozen(slots=True)
class OrderCancelRejected:
    cloid: str
    oid: OrderId | None
    reason: str
    time_ms: int


@attrs.frozen(slots=True)
class OrderModifyRejected:
    cloid: str
    oid: OrderId | None
    reason: str
    time_ms: int


@attrs.frozen(slots=True)
class UntrackedReport:
    """A report for an order we do not track: for reconciliation."""

    report: OrderReport


@attrs.frozen(slots=True)
class UntrackedFill:
    """A fill of an order we do not track: for reconciliation (and positions)."""

    fill: Fill


OrderEvent = (
    OrderAccepted
    | OrderUpdated
    | FillEvent
    | OrderPartiallyFilled
    | OrderFilled
    | OrderCanceled
    | OrderRejected
    | OrderExpired
    | OrderRevived
    | OrderStateUnknown
    | OrderCancelRejected
    | OrderModifyRejected
)
Untracked = UntrackedReport | UntrackedFill
DispatchOutput = OrderEvent | Untracked


# --- configuration, counters, dedup ------------------------------------------------------------


@attrs.frozen(slots=True)
class DispatchConfig:
    dedup_capacity: int = 10_000  # fills remembered for dedup (the service: feeds.user's)
    # Terminal orders kept so late reports still match: a late report comes within seconds,
    # and at the shipped order budget (2 orders a second) 2,000 orders are 16 minutes of them.
    terminal_retention: int = 2_000

    def __attrs_post_init__(self) -> None:
        for name in ("dedup_capacity", "terminal_retention"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1")


@attrs.define(slots=True)
class DispatchStats:
    reports: int = 0
    fills: int = 0
    fills_applied: int = 0
    duplicate_fills: int = 0
    untracked_reports: int = 0
    untracked_fills: int = 0
    stale_reports: int = 0  # reports for replaced oids, or after the end
    suppressed_cancels: int = 0  # cancels of a replaced oid held back (cancel-replace)
    held_for_answer: int = 0  # ambiguous events held until a modify's answer (cancel-replace)
    rejected_replacements: int = 0
    unknown_status: int = 0  # status words we do not know (state kept)
    unknown_acks: int = 0  # answers for cloids we do not (or no longer) track
    conflicts: int = 0  # venue inputs that contradict the order's state (state kept)
    last_conflict: str = ""
    revived: int = 0  # REJECTED or EXPIRED orders the venue showed alive
    may_still_land: int = 0  # orderStatus answers set aside: the request may still land


@attrs.define(slots=True)
class PendingModify:
    """The cancel-replace marker of one cloid, set when the modify is sent."""

    old_oid: OrderId
    sent_ms: int
    held_cancel: OrderReport | None = None  # the old oid's cancel, held back
    rejected_oid: OrderId | None = None  # a replacement leg the venue rejected
    # Events for an oid the order does not know, which the order's forgotten oids make
    # ambiguous: replayed in this order when the marker expires (see the module).
    held: list[OrderReport | Fill] = attrs.Factory(list)


# --- the dispatcher ----------------------------------------------------------------------------


class _Awaiting:
    """``Dispatcher.awaiting``'s context: the cloids counted in ``awaited`` while it is entered
    (a class, not a generator: it is on every order's send path)."""

    __slots__ = ("_awaited", "_keys")

    def __init__(self, awaited: Counter[str], keys: list[str]) -> None:
        self._awaited = awaited
        self._keys = keys

    def __enter__(self) -> None:
        awaited = self._awaited
        for key in self._keys:  # (not Counter.update: its generic checks, on every order)
            awaited[key] += 1

    def __exit__(self, *exc_info: object) -> None:
        awaited = self._awaited
        for key in self._keys:
            left = awaited[key] - 1
            if left > 0:
                awaited[key] = left
            else:
                del awaited[key]


class Dispatcher:
    """Tracks our orders and turns venue answers, reports and fills into lifecycle events."""

    def __init__(self, config: DispatchConfig | None = None) -> None:
        self.config = config or DispatchConfig()
        self.registry = OrderRegistry(self.config.terminal_retention)
        self.stats = DispatchStats()
        self._dedup = BoundedSet(self.config.dedup_capacity)
        self._modifies: dict[str, PendingModify] = {}
        # Held events of markers that expired, replayed before the call that expired them
        # returns (`_settled`).
        self._released: list[OrderReport | Fill] = []
        self._awaited: Counter[str] = Counter()

    def order(self, cloid: str) -> TrackedOrder | None:
        return self.registry.get(cloid)

    def with_cloid(self, fill: Fill) -> Fill:
        """``fill`` with the client id of its order as tracked here, when it came without one
        (a venue's fill history may not carry it: KuCoin's ``/hf/fills`` does not); as it is
        when it has one, or its order is not tracked."""
        if fill.cloid is not None or fill.oid is None:
            return fill
        order = self.registry.by_oid(fill.oid)
        return fill if order is None else attrs.evolve(fill, cloid=order.cloid)

    def pending_modify(self, cloid: str) -> PendingModify | None:
        return self._modifies.get(cloid)

    # --- requests (call before the request leaves) --------------------------------------------

    def awaiting(self, cloids: Iterable[str]) -> _Awaiting:
        """Mark these orders as awaited by a caller (a request, its answer or its resolution
        under way) while the body runs, however it ends."""
        return _Awaiting(self._awaited, list(cloids))

    def awaited(self) -> frozenset[str]:
        """The cloids a caller is waiting on (see `awaiting`)."""
        return frozenset(self._awaited)

    def submit(self, order: PlaceOrder, now_ms: int) -> TrackedOrder:
        """Register a new order (PENDING_NEW). Raises `DuplicateCloid` for a known cloid."""
        tracked = TrackedOrder.submit(order, now_ms)
        self.registry.register(tracked)
        return tracked

    def request_cancel(self, cloid: str, now_ms: int) -> TrackedOrder:
        """Mark a cancel as sent (PENDING_CANCEL). Raises `IllegalTransition` if not allowed."""
        order = self._require(cloid)
        order.request_cancel(now_ms)
        return order

    def request_modify(self, modify: ModifyOrder, now_ms: int) -> TrackedOrder:
        """Mark a modify as sent (PENDING_MODIFY) and set the cancel-replace marker."""
        if modify.oid is None:
            order = self._require(modify.order.cloid)
        else:
            found = self.registry.by_oid(modify.oid)
            if found is None:
                raise LifecycleError(f"no tracked order {modify.oid!r}")
            order = found
            if modify.oid != order.oid:
                raise LifecycleError(f"modify of {order.cloid}: oid {modify.oid} was replaced")
        new = modify.order
        if new.cloid != order.cloid or new.coin != order.coin or new.side is not order.side:
            raise LifecycleError(
                f"modify of {order.cloid} must keep its cloid, coin and side "
                f"(got {new.cloid} {new.coin} {new.side.name})"
            )
        old_oid = order.oid
        order.request_modify(new.px, new.sz, new.tif, now_ms)
        assert old_oid is not None  # request_modify requires a known oid
        self._modifies[order.cloid] = PendingModify(old_oid=old_oid, sent_ms=now_ms)
        return order

    # --- answers of the order API ---------------------------------------------------------------

    def on_place_ack(self, cloid: str, result: PlaceResult, now_ms: int) -> list[DispatchOutput]:
        order = self._answered(cloid)
        if order is None:
            return []
        if isinstance(result, Resting):
            oid = result.oid
            return self._settled(
                self._step(order, now_ms, lambda: order.ack_resting(oid, now_ms)), now_ms
            )
        if isinstance(result, Filled):
            filled = result
            return self._settled(
                self._step(
                    order, now_ms, lambda: order.ack_filled(filled.oid, filled.total_sz, now_ms)
                ),
                now_ms,
            )
        reason = result.reason
        return self._settled(
            self._step(order, now_ms, lambda: order.ack_rejected(reason, now_ms)), now_ms
        )

    def on_cancel_ack(self, cloid: str, result: CancelResult, now_ms: int) -> list[DispatchOutput]:
        order = self._answered(cloid)
        if order is None:
            return []
        if isinstance(result, Rejected):
            reason = result.reason
            events = self._step(order, now_ms, lambda: order.cancel_refused(reason, now_ms))
        else:
            events = self._step(order, now_ms, lambda: order.cancel_acked(now_ms))
        return self._settled(events, now_ms)

    def on_modify_ack(self, cloid: str, result: PlaceResult, now_ms: int) -> list[DispatchOutput]:
        order = self._answered(cloid)
        if order is None:
            return []
        if isinstance(result, Rejected):
            return self._settled(self._modify_refused(order, result.reason, now_ms), now_ms)
        oid = result.oid
        events: list[DispatchOutput] = []
        marker = self._modifies.get(cloid)
        if (
            marker is not None
            and order.modify_target is not None
            and not order.is_terminal
            and not self.registry.is_retired(order, oid)
        ):
            # The first evidence of the replacement; or, with events held, the first that is
            # sure: the venue's price and size are those of the first held report for it.
            first = next((e for e in marker.held if e.oid == oid), None)
            if isinstance(first, OrderReport):
                events += self._replace(order, oid, now_ms, px=first.px, sz=first.orig_sz)
            else:
                events += self._replace(order, oid, now_ms)
            events = self._settled(events, now_ms)  # what it held, before the answer's fill
        elif oid != order.oid:
            self._conflict(f"modify answer for {cloid}: oid {oid} is not current")
            return []
        if isinstance(result, Filled) and oid == order.oid:
            filled = result
            events += self._step(
                order, now_ms, lambda: order.ack_filled(filled.oid, filled.total_sz, now_ms)
            )
        return self._settled(events, now_ms)

    def may_land(self, cloids: Iterable[str], lands_by_ms: float | None) -> None:
        """The place or modify in flight for these orders got no answer; what was sent may still
        take effect until ``lands_by_ms`` (wall ms: its expiry plus the clock allowance), or
        None: it can no longer (it was answered, unreadably). Call before `on_timeout`."""
        for cloid in cloids:
            order = self.registry.get(cloid)
            if order is not None:
                order.may_land(lands_by_ms)

    def caller_gone(self, cloids: Iterable[str], lands_by_ms: float) -> None:
        """The caller of a place or modify went away before its answer (cancelled): what it sent
        may still land until ``lands_by_ms`` at the latest."""
        for cloid in cloids:
            order = self.registry.get(cloid)
            if order is not None:
                order.caller_gone(lands_by_ms)

    def on_timeout(self, cloid: str, now_ms: int) -> list[DispatchOutput]:
        """The request in flight for ``cloid`` got no answer in time."""
        order = self._answered(cloid)
        if order is None:
            return []
        return self._settled(self._step(order, now_ms, lambda: order.timed_out(now_ms)), now_ms)

    def resolve_unknown(
        self, cloid: str, report: OrderReport | None, now_ms: int
    ) -> list[DispatchOutput]:
        """Settle an order with the venue's orderStatus answer for its cloid (None: unknown
        to the venue). On an order that is not UNKNOWN this is just another report."""
        order = self._answered(cloid)
        if order is None:
            return []
        if report is None:
            if order.state is OrderState.UNKNOWN and order.may_still_land(now_ms):
                self.stats.may_still_land += 1
            return self._settled(
                self._step(order, now_ms, lambda: order.resolved_missing(now_ms)), now_ms
            )
        if report.cloid is not None and report.cloid != cloid:
            self._conflict(f"orderStatus for {cloid} names cloid {report.cloid}")
            return []
        authoritative = order.state is OrderState.UNKNOWN
        return self._settled(self._apply_report(order, report, now_ms, authoritative), now_ms)

    def resolve_absent(
        self, cloid: str, report: OrderReport | None, now_ms: int
    ) -> list[DispatchOutput]:
        """Settle an order the venue no longer lists as open, with its orderStatus answer for the
        cloid. None (the venue does not know it either) ends a working order as EXPIRED."""
        order = self._answered(cloid)
        if order is None:
            return []
        if report is None:
            return self._settled(self._step(order, now_ms, lambda: order.vanished(now_ms)), now_ms)
        return self.resolve_unknown(cloid, report, now_ms)

    # --- the user stream ------------------------------------------------------------------------

    def on_order_report(self, report: OrderReport, now_ms: int) -> list[DispatchOutput]:
        self.stats.reports += 1
        order = self.registry.find(report.cloid, report.oid)
        if order is None or (report.cloid is not None and report.cloid != order.cloid):
            self.stats.untracked_reports += 1
            return [UntrackedReport(report)]
        return self._settled(self._apply_report(order, report, now_ms, authoritative=False), now_ms)

    def on_fill(self, fill: Fill, now_ms: int) -> list[DispatchOutput]:
        self.stats.fills += 1
        if self._dedup.seen((fill.oid, fill.tid)):
            self.stats.duplicate_fills += 1
            return []
        order = self.registry.find(fill.cloid, fill.oid)
        if order is None:
            self.stats.untracked_fills += 1
            return [UntrackedFill(fill)]
        return self._settled(self._apply_fill(order, fill, now_ms), now_ms)

    # --- internals ------------------------------------------------------------------------------

    def _apply_fill(self, order: TrackedOrder, fill: Fill, now_ms: int) -> list[DispatchOutput]:
        """A fill (deduplicated) of this order."""
        events: list[DispatchOutput] = []
        if (
            order.oid is not None
            and not order.knows_oid(fill.oid)
            and order.modify_target is not None
            and not order.is_terminal
        ):
            marker = self._modifies.get(order.cloid)
            if marker is not None:
                # A fill on a new oid under our cloid while a modify is in flight: the
                # replacement's, unless the order has forgotten oids (then held: see the module).
                if order.retired_dropped:
                    return self._hold(marker, fill)
                events += self._replace(order, fill.oid, now_ms)
        try:
            transition = order.apply_fill(fill, now_ms)
        except IllegalTransition as error:
            self._conflict(str(error))
            self.stats.untracked_fills += 1
            return [*events, UntrackedFill(fill)]
        self.stats.fills_applied += 1
        self._sync(order)
        events += self._events(order, transition, now_ms)
        return events

    def _hold(self, marker: PendingModify, event: OrderReport | Fill) -> list[DispatchOutput]:
        marker.held.append(event)
        self.stats.held_for_answer += 1
        return []

    def _settled(self, events: list[DispatchOutput], now_ms: int) -> list[DispatchOutput]:
        """``events``, then those of the held events released meanwhile, replayed in the order
        they came (each a report or fill under its order's cloid: see `_hold`). Its order is
        known still (retention forgets an order only as others end after it, never within the
        call that released the event); were it not, the event would go on untracked."""
        released = self._released
        while released:
            event = released.pop(0)
            order = None if event.cloid is None else self.registry.get(event.cloid)
            if isinstance(event, Fill):
                events += (
                    [UntrackedFill(event)]
                    if order is None
                    else self._apply_fill(order, event, now_ms)
                )
            else:
                events += (
                    [UntrackedReport(event)]
                    if order is None
                    else self._apply_report(order, event, now_ms, authoritative=False)
                )
        return events

    def _apply_report(
        self, order: TrackedOrder, report: OrderReport, now_ms: int, authoritative: bool
    ) -> list[DispatchOutput]:
        status, word, oid = report.status, report.venue_status, report.oid
        if status is OrderStatus.UNRECOGNIZED:
            self.stats.unknown_status += 1
        marker = self._modifies.get(order.cloid)
        if order.oid is None or oid == order.oid:
            if marker is not None and oid == marker.old_oid:
                if authoritative and status is OrderStatus.OPEN and order.may_still_land(now_ms):
                    # The old oid still rests, but the modify may still land (a block or two
                    # after the venue took it in): no proof that it failed. Asked again later.
                    self.stats.may_still_land += 1
                    return []
                if authoritative:
                    # orderStatus by cloid names the old oid: no replacement exists.
                    events: list[DispatchOutput] = []
                    events += self._modify_refused(
                        order, "modify not applied", now_ms, replay=False
                    )
                    events += self._step(
                        order,
                        now_ms,
                        lambda: order.report(status, oid, now_ms, authoritative=True, word=word),
                    )
                    return events
                if status is OrderStatus.CANCELED:
                    # Most likely the old leg of our cancel-replace, ahead of the new oid (a
                    # cancel by the venue's own rules is no part of it: applied at once).
                    marker.held_cancel = report
                    self.stats.suppressed_cancels += 1
                    return []
            return self._step(
                order,
                now_ms,
                lambda: order.report(status, oid, now_ms, authoritative=authoritative, word=word),
            )
        if order.knows_oid(oid):
            if authoritative and marker is not None and oid == marker.rejected_oid:
                # orderStatus names the rejected replacement: the modify failed.
                return self._modify_refused(order, word, now_ms, settle=False)
            self.stats.stale_reports += 1  # a replaced oid: never regresses the order
            return []
        if marker is not None and order.modify_target is not None and not order.is_terminal:
            # A new oid under our cloid while a modify is in flight: the replacement leg.
            if status is OrderStatus.UNRECOGNIZED:
                return []
            if status is OrderStatus.REJECTED:
                order.retire_oid(oid)
                marker.rejected_oid = oid
                self._sync(order)
                self.stats.rejected_replacements += 1
                if authoritative:
                    return self._modify_refused(order, word, now_ms, settle=False)
                return []
            if not authoritative and order.retired_dropped:
                return self._hold(marker, report)  # the replacement's, or a forgotten oid's
            events = self._replace(order, oid, now_ms, px=report.px, sz=report.orig_sz)
            if status is not OrderStatus.OPEN:
                events += self._step(
                    order, now_ms, lambda: order.report(status, oid, now_ms, word=word)
                )
            return events
        if status is OrderStatus.OPEN and not order.is_terminal:
            # A live venue order under our cloid that is not the one we track: reconcile it.
            self._conflict(f"order {order.cloid}: live report for unexpected oid {oid}")
            self.stats.untracked_reports += 1
            return [UntrackedReport(report)]
        self.stats.stale_reports += 1
        return []

    def _replace(
        self,
        order: TrackedOrder,
        new_oid: OrderId,
        now_ms: int,
        *,
        px: float | None = None,
        sz: float | None = None,
    ) -> list[DispatchOutput]:
        self._end_modify(order.cloid)  # a held cancel of the old oid is now stale
        return self._step(order, now_ms, lambda: order.replaced(new_oid, now_ms, px=px, sz=sz))

    def _end_modify(self, cloid: str) -> PendingModify | None:
        """Expire the cloid's marker; what it held is replayed before the call returns."""
        marker = self._modifies.pop(cloid, None)
        if marker is not None and marker.held:
            self._released += marker.held
        return marker

    def _modify_refused(
        self,
        order: TrackedOrder,
        reason: str,
        now_ms: int,
        *,
        replay: bool = True,
        settle: bool = True,
    ) -> list[DispatchOutput]:
        """Expire the marker of a failed modify; replay the old oid's cancel if it was held.

        ``settle=False``: the failure is all we learned (an orderStatus answer naming the
        rejected replacement); without a held cancel an UNKNOWN order stays UNKNOWN until the
        old oid's status is known.
        """
        marker = self._end_modify(order.cloid)
        events = self._step(
            order, now_ms, lambda: order.modify_refused(reason, now_ms, settle=settle)
        )
        if replay and marker is not None and marker.held_cancel is not None:
            held = marker.held_cancel
            events += [
                e
                for e in self._apply_report(order, held, now_ms, authoritative=False)
                if not isinstance(e, (UntrackedReport, UntrackedFill))
            ]
        return events

    def _step(
        self, order: TrackedOrder, now_ms: int, transition: Callable[[], Transition]
    ) -> list[DispatchOutput]:
        try:
            result = transition()
        except IllegalTransition as error:
            self._conflict(str(error))
            return []
        self._sync(order)
        return self._events(order, result, now_ms)

    def _sync(self, order: TrackedOrder) -> None:
        self.registry.sync(order)
        if order.modify_target is None and order.cloid in self._modifies:
            self._end_modify(order.cloid)

    def _events(self, order: TrackedOrder, tr: Transition, now_ms: int) -> list[DispatchOutput]:
        cloid, oid = order.cloid, order.oid
        out: list[DispatchOutput] = []
        if tr.revived is not None:
            self.stats.revived += 1
            out.append(OrderRevived(cloid, oid, tr.revived.value, now_ms))
        if tr.accepted and oid is not None:
            out.append(
                OrderAccepted(cloid, oid, order.coin, order.side, order.px, order.sz, now_ms)
            )
        if tr.replaced_oid is not None and oid is not None:
            out.append(OrderUpdated(cloid, oid, tr.replaced_oid, order.px, order.sz, now_ms))
        if tr.fill is not None:
            out.append(FillEvent(cloid, tr.fill, order.filled_sz, order.avg_fill_px, now_ms))
            if not tr.after.is_terminal:
                out.append(
                    OrderPartiallyFilled(
                        cloid, oid, order.filled_sz, order.leaves_sz, order.avg_fill_px, now_ms
                    )
                )
        reason = tr.reason or order.reason or ""
        if tr.refused is Op.CANCEL:
            out.append(OrderCancelRejected(cloid, oid, reason, now_ms))
        elif tr.refused is Op.MODIFY:
            out.append(OrderModifyRejected(cloid, oid, reason, now_ms))
        if tr.changed:
            after = tr.after
            if after is OrderState.FILLED:
                out.append(OrderFilled(cloid, oid, order.filled_sz, order.avg_fill_px, now_ms))
            elif after is OrderState.CANCELED:
                out.append(OrderCanceled(cloid, oid, reason, order.filled_sz, now_ms))
            elif after is OrderState.REJECTED:
                out.append(OrderRejected(cloid, oid, reason, now_ms))
            elif after is OrderState.EXPIRED:
                out.append(OrderExpired(cloid, oid, reason, now_ms))
            elif after is OrderState.UNKNOWN:
                out.append(OrderStateUnknown(cloid, oid, order.pending or Op.PLACE, now_ms))
        return out

    def _require(self, cloid: str) -> TrackedOrder:
        order = self.registry.get(cloid)
        if order is None:
            raise LifecycleError(f"no tracked order {cloid!r}")
        return order

    def _answered(self, cloid: str) -> TrackedOrder | None:
        order = self.registry.get(cloid)
        if order is None:
            self.stats.unknown_acks += 1
        return order

    def _conflict(self, text: str) -> None:
        self.stats.conflicts += 1
        self.stats.last_conflict = text
