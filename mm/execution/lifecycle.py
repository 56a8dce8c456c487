"""The order lifecycle: one order's state machine, driven by what we send and what the venue says.

What the venue says arrives as ``mm.model.OrderStatus`` (the adapter maps its venue's status
words to it) with the venue's own word beside it, which an ended order keeps as its reason.

Pure: no I/O and no clock; every input carries ``now_ms``. A `TrackedOrder` is mutable and owned
by one `mm.execution.dispatch.Dispatcher`; each input returns a `Transition` (what changed, for the
dispatcher to turn into typed events) or raises `IllegalTransition` *before* touching any field,
so a refused input never corrupts state.

An order is identified by its cloid for its whole life. The venue's oid changes on every modify
(Hyperliquid modifies by cancel-and-replace): ``oid`` is the current venue order, ``retired_oids``
the ones it replaced (late reports for those are stale and must not regress the order), the
newest ``RETIRED_OIDS_KEPT`` of them: an order modified every few seconds for hours would
otherwise keep every id it ever had. ``retired_dropped`` counts the older ones forgotten. A
report or fill that names a forgotten oid is matched by its cloid when it carries one (a fill
is then applied to the order's totals, once: fills are deduplicated on (oid, tid) before they
reach an order) and is otherwise passed on as untracked, like any order the registry no longer
holds; positions are the portfolio's, from every fill, whichever order it matches.

States
------

=================  ========================================================================
PENDING_NEW        placed, no answer yet (the cloid is registered before the request leaves)
OPEN               resting at the venue, nothing filled
PARTIALLY_FILLED   resting, some size filled (cumulative over the cloid's oids)
PENDING_CANCEL     a cancel is in flight
PENDING_MODIFY     a modify (cancel-and-replace) is in flight
UNKNOWN            a request timed out: the order's fate is not known. It is never assumed
                   gone or never placed; only the venue resolves it
FILLED             terminal: fully filled
CANCELED           terminal: canceled (by us, by the venue's own rules, by the dead-man's switch)
REJECTED           terminal: never went live (rejected, or the venue has never heard of it)
EXPIRED            terminal: went live once, and the venue no longer knows it
=================  ========================================================================

Transition table (``working`` = PARTIALLY_FILLED when anything has filled, else OPEN;
``base`` = the state beneath a pending cancel/modify or a timed-out request):

====================  =========================================  =============================
input                 from                                       to
====================  =========================================  =============================
submit                (new)                                      PENDING_NEW
ack Resting / live    PENDING_NEW, UNKNOWN(place)                working (OrderAccepted)
  report              UNKNOWN(cancel/modify), authoritative      working
                      PENDING_CANCEL/MODIFY, UNKNOWN(cancel/     unchanged; base := working
                      modify) from the WebSocket
ack Filled            any non-FILLED state                       FILLED (IOC short fill:
                                                                 CANCELED)
ack Rejected          not yet live                               REJECTED; live: illegal
report FILLED         any non-FILLED state (terminal included)   FILLED
report CANCELED,      any non-terminal                           CANCELED (reason = the word)
  CANCELED_BY_VENUE
report REJECTED       not yet live / live                        REJECTED / CANCELED
report UNRECOGNIZED   any                                        unchanged, flagged
fill (partial)        PENDING_NEW, OPEN, UNKNOWN(place)          PARTIALLY_FILLED
                      PENDING_CANCEL/MODIFY, UNKNOWN(other)      unchanged; base := working
                      terminal                                   unchanged (size applied)
fill (completes oid)  any non-FILLED state (terminal included)   FILLED
request cancel        PENDING_NEW, OPEN, PARTIALLY_FILLED,       PENDING_CANCEL; else illegal
                      UNKNOWN (no modify unresolved)
cancel ack (done)     any non-terminal, after a cancel request   CANCELED
cancel ack (refused)  PENDING_CANCEL, UNKNOWN(cancel)            base (OrderCancelRejected)
request modify        OPEN, PARTIALLY_FILLED                     PENDING_MODIFY; else illegal
modify takes effect   PENDING_MODIFY, UNKNOWN(modify)            working, new oid
                                                                 (OrderUpdated)
modify refused        PENDING_MODIFY, UNKNOWN(modify)            base (OrderModifyRejected);
                                                                 UNKNOWN kept if only the
                                                                 failure is known (settle=False)
timeout               PENDING_NEW, PENDING_CANCEL,               UNKNOWN; else no-op
                      PENDING_MODIFY
resolved: not found   UNKNOWN: never had an oid / had one        REJECTED / EXPIRED; unchanged
                                                                 while its place or modify
                                                                 may still land
vanished              OPEN, PARTIALLY_FILLED (absent at the      EXPIRED; UNKNOWN: as
                      venue, unknown to orderStatus); UNKNOWN    resolved: not found
live report, ack      REJECTED, EXPIRED                          working (revived)
  Resting, or fill
====================  =========================================  =============================

Decisions:

- **Not known is not never placed while the request may still land.** The venue commits an
  action a block or two after it takes it in, and refuses it once its expiry has passed (the
  adapter puts one on every order action). Until then ``orderStatus`` answers that it does not
  know an order that is on its way. ``lands_by_ms`` is until when the order's place or modify
  whose answer we lack may still take effect (its expiry plus an allowance for the venue's
  clock; infinite while its caller still waits for the answer); the router sets it when an
  answer is lost or its caller gives up. While it lasts, "not found" changes nothing: the order
  stays UNKNOWN and is asked about again once it has passed.
- **The venue's word that an order lives revives it.** A live report, a resting answer or a
  fill for an order ended as REJECTED (the venue refused it, or did not know it) or EXPIRED (the
  venue no longer knew it) means the venue has it after all: it is working again (``revived``),
  tracked and managed like any other, so the strategy keeps or cancels it. A CANCELED order stays
  canceled: an ``open`` report that was sent before our cancel took effect arrives after its
  answer as a matter of course (an order of ours truly left resting is the order auditor's
  zombie, canceled after its grace).
- **Terminal states are final, except for FILLED and the revival above.** Fills are truth: a
  fill is always applied to ``filled_sz`` and ``avg_fill_px``, whatever the state (a fill that
  raced a cancel ack is real). When the fills on the current oid reach its size, or the venue
  reports ``filled``, the order moves to FILLED even from CANCELED, EXPIRED or REJECTED: the
  cancel lost the race, the order actually filled. A partial late fill leaves a CANCELED order
  CANCELED (partially filled, remainder canceled: the normal end of a cancel racing a fill),
  and revives a REJECTED or EXPIRED one. Nothing else leaves a terminal state, and FILLED is
  never left.
- **A live report does not resolve a timed-out cancel or modify.** A WebSocket ``open`` may have
  been sent before the venue processed the cancel, so it proves only that the order was placed;
  the state stays UNKNOWN until a terminal report, a late ack, or an authoritative orderStatus
  answer (``authoritative=True``). For a timed-out *place*, any live evidence resolves it.
- **A refusal returns to the base state**: a refused cancel or modify means the request did not
  take effect; the order is where it was, and the next venue report says if it has since gone.
- An IOC's rest that the venue reports as rejected (Hyperliquid's ``iocCancelRejected``) is
  REJECTED (as the order API answers it), so the ack and the report agree whatever order they
  arrive in. A rejection word for an order already seen live means
  it is gone: CANCELED, with the word as the reason.
- **One request in flight per order.** Cancel or modify while a cancel or modify is pending is
  illegal (a timed-out cancel may be retried from UNKNOWN); the kill switch's cancel-all goes
  around the lifecycle and its reports settle every order.
"""

from __future__ import annotations

import enum
import math
from typing import Any, Final

import attrs

from mm.model import Fill, OrderId, OrderStatus, PlaceOrder, Side, Tif


class OrderState(enum.Enum):
    PENDING_NEW = "pending_new"
    OPEN = "open"
    PARTIALLY_FILLED = "partially_filled"
    FILLED = "filled"
    PENDING_CANCEL = "pending_cancel"
    PENDING_MODIFY = "pending_modify"
    CANCELED = "canceled"
    REJECTED = "rejected"
    EXPIRED = "expired"
    UNKNOWN = "unknown"

    @property
    def is_terminal(self) -> bool:
        return self in _TERMINAL


TERMINAL_STATES: frozenset[OrderState] = frozenset(
    {OrderState.FILLED, OrderState.CANCELED, OrderState.REJECTED, OrderState.EXPIRED}
)
# The same states as a tuple, for the hot tests: a member is found in a tuple by identity, while
# a frozenset of enum members hashes the member with Enum's Python-level __hash__ on every test
# (the registry's live() asks every live order, several times a tick).
_TERMINAL: tuple[OrderState, ...] = tuple(TERMINAL_STATES)
# The retired oids an order remembers, newest kept. A late report comes within seconds (a
# WebSocket's lag); every modify spends a token of the order budget, shared by every symbol (2 a
# second, burst 20, as shipped), so 64 more modifies of one order take at least 22 s even if the
# whole budget went to it (minutes when 10 symbols share it). Bounded memory: 64 ids, a few KB,
# for each of the live and the retained terminal orders at most.
RETIRED_OIDS_KEPT: Final = 64
WORKING_STATES: frozenset[OrderState] = frozenset({OrderState.OPEN, OrderState.PARTIALLY_FILLED})


class Op(enum.Enum):
    """A request to the venue's order API."""

    PLACE = "place"
    CANCEL = "cancel"
    MODIFY = "modify"


class LifecycleError(Exception):
    """Base of the lifecycle's errors."""


class IllegalTransition(LifecycleError):
    """An input that this order's state does not allow. Nothing was changed."""

    def __init__(self, cloid: str, state: OrderState, action: str, detail: str = "") -> None:
        self.cloid = cloid
        self.state = state
        self.action = action
        self.detail = detail
        text = f"order {cloid}: {action} is illegal in state {state.name}"
        super().__init__(f"{text}: {detail}" if detail else text)


@attrs.frozen(slots=True)
class Transition:
    """The outcome of one input: the state before and after, and what else happened."""

    action: str
    before: OrderState
    after: OrderState
    accepted: bool = False  # the order was seen live at the venue for the first time
    replaced_oid: OrderId | None = None  # a modify took effect; this oid was replaced
    fill: Fill | None = None  # a fill was applied
    refused: Op | None = None  # the venue refused this cancel or modify
    reason: str | None = None
    ignored: str | None = None  # why the input changed nothing ("stale", "unknown status", ...)
    revived: OrderState | None = None  # the terminal state the venue's live word undid

    @property
    def changed(self) -> bool:
        return self.before is not self.after


def _covers(filled: float, size: float) -> bool:
    """Whether ``filled`` reaches ``size``, allowing for float sums of decimal sizes."""
    return filled >= size - 1e-9 * max(1.0, abs(size))


@attrs.define(slots=True, eq=False)
class TrackedOrder:
    """One of our orders, from submission to a terminal state. Mutated only by its methods."""

    cloid: str
    coin: str
    side: Side
    px: float  # the current venue order's price
    sz: float  # the current venue order's original size (changes on modify)
    orig_sz: float  # the size first submitted
    tif: Tif
    reduce_only: bool
    created_ms: int
    updated_ms: int
    state: OrderState = OrderState.PENDING_NEW
    oid: OrderId | None = None
    # A tuple of strings: no container the garbage collector walks once it has survived a
    # collection (a list would be one more tracked object for each of the retained orders).
    retired_oids: tuple[OrderId, ...] = ()
    filled_sz: float = 0.0  # cumulative over every oid this cloid had: the sum of unique fills
    avg_fill_px: float = 0.0
    oid_filled_sz: float = 0.0  # filled on the current oid (decides partial vs full)
    fill_count: int = 0
    answered_filled_sz: float | None = None  # an immediate fill's total, as the answer said
    accepted: bool = False  # seen live (or filled) at the venue at least once
    acked_ms: int | None = None
    seen_ms: int | None = None  # the venue last showed it alive: ack, live report, fill, modify
    terminal_ms: int | None = None
    in_flight_since_ms: int | None = None  # when the request in flight left
    pending: Op | None = Op.PLACE  # the request in flight (kept through UNKNOWN)
    base: OrderState = OrderState.PENDING_NEW  # the state beneath a pending cancel/modify
    cancel_sent: bool = False
    modify_target: tuple[float, float, Tif] | None = None  # px, sz, tif of a modify in flight
    reason: str | None = None  # why it ended: the venue's word, or the rejection text
    # Status words we could not map (flagged). A tuple, empty for nearly every order: a retained
    # order's every container is one more object each full collection walks.
    unknown_words: tuple[str, ...] = ()
    # Until when (wall ms) a place or modify of this order whose answer we lack may still take
    # effect at the venue: infinite while its caller waits, then the request's expiry plus the
    # clock allowance (set by the router), None when nothing may land any more.
    lands_by_ms: float | None = math.inf
    # Retired oids forgotten (past RETIRED_OIDS_KEPT, oldest first): retired_oids keeps the rest.
    retired_dropped: int = 0

    # --- construction ---------------------------------------------------------------------------

    def compact(self) -> tuple[Any, ...]:
        """This order as a flat tuple of strings, numbers and None (its fields in
        ``COMPACT_FIELDS``' order, an enum member by its value): a tuple the garbage collector
        stops tracking once it has survived a collection or two (the tuples inside it first),
        where the order itself is walked with its every field by each full collection. The
        registry keeps its terminal orders so."""
        values: list[Any] = []
        for name in COMPACT_FIELDS:
            value = getattr(self, name)
            if isinstance(value, enum.Enum):
                value = value.value
            elif name == "modify_target" and value is not None:
                value = (value[0], value[1], value[2].value)
            values.append(value)
        return tuple(values)

    @classmethod
    def from_compact(cls, values: tuple[Any, ...]) -> TrackedOrder:
        """The order :meth:`compact` made ``values`` of, equal field for field."""
        fields: dict[str, Any] = {}
        for name, value in zip(COMPACT_FIELDS, values, strict=True):
            kind = _ENUM_FIELDS.get(name)
            if kind is not None and value is not None:
                value = kind(value)
            elif name == "modify_target" and value is not None:
                value = (value[0], value[1], Tif(value[2]))
            fields[name] = value
        return cls(**fields)

    @classmethod
    def submit(cls, order: PlaceOrder, now_ms: int) -> TrackedOrder:
        """A new order, PENDING_NEW, registered before its request leaves."""
        if order.sz <= 0:
            raise ValueError(f"order {order.cloid}: size must be positive, got {order.sz}")
        return cls(
            cloid=order.cloid,
            coin=order.coin,
            side=order.side,
            px=order.px,
            sz=order.sz,
            orig_sz=order.sz,
            tif=order.tif,
            reduce_only=order.reduce_only,
            created_ms=now_ms,
            updated_ms=now_ms,
            in_flight_since_ms=now_ms,
        )

    # --- queries --------------------------------------------------------------------------------

    @property
    def is_terminal(self) -> bool:
        return self.state in _TERMINAL

    @property
    def leaves_sz(self) -> float:
        """Size still working on the current venue order (0 once terminal)."""
        if self.is_terminal:
            return 0.0
        return max(0.0, self.sz - self.oid_filled_sz)

    @property
    def reject_reason(self) -> str | None:
        return self.reason if self.state is OrderState.REJECTED else None

    @property
    def can_cancel(self) -> bool:
        """A cancel may be sent: not terminal, nothing else in flight but a timed-out request,
        and no modify unresolved (its outcome decides which venue order a cancel would hit)."""
        return self.state in _CANCELABLE and self.modify_target is None

    @property
    def can_modify(self) -> bool:
        return self.state in WORKING_STATES and self.oid is not None

    def knows_oid(self, oid: OrderId) -> bool:
        return oid == self.oid or self.is_retired_oid(oid)

    def is_retired_oid(self, oid: OrderId) -> bool:
        """``oid in self.retired_oids``: one of the newest ``RETIRED_OIDS_KEPT`` oids it replaced
        (a scan of at most that many: it no longer grows with the order's history)."""
        return oid in self.retired_oids

    def _retire(self, oid: OrderId) -> None:
        retired = (*self.retired_oids, oid)
        excess = len(retired) - RETIRED_OIDS_KEPT
        if excess > 0:
            retired = retired[excess:]
            self.retired_dropped += excess
        self.retired_oids = retired

    def working_state(self) -> OrderState:
        return OrderState.PARTIALLY_FILLED if self.filled_sz > 0 else OrderState.OPEN

    # --- local requests ---------------------------------------------------------------------------

    def request_cancel(self, now_ms: int) -> Transition:
        if not self.can_cancel:
            raise IllegalTransition(self.cloid, self.state, "request_cancel")
        before = self.state
        self.base = self._underlying()
        self.state = OrderState.PENDING_CANCEL
        self.pending = Op.CANCEL
        self.cancel_sent = True
        self.in_flight_since_ms = now_ms
        return self._done("request_cancel", before, now_ms)

    def request_modify(self, px: float, sz: float, tif: Tif, now_ms: int) -> Transition:
        if not self.can_modify:
            raise IllegalTransition(self.cloid, self.state, "request_modify")
        if sz <= 0:
            raise ValueError(f"order {self.cloid}: modify size must be positive, got {sz}")
        before = self.state
        self.base = self.working_state()
        self.state = OrderState.PENDING_MODIFY
        self.pending = Op.MODIFY
        self.modify_target = (px, sz, tif)
        self.in_flight_since_ms = now_ms
        self.lands_by_ms = math.inf  # the modify is on its way, its caller waits
        return self._done("request_modify", before, now_ms)

    def may_land(self, lands_by_ms: float | None) -> None:
        """Until when the place or modify in flight may still take effect at the venue (see
        ``lands_by_ms``): its expiry once the answer is known to be lost, None when it can no
        longer land (its answer came, unreadable)."""
        self.lands_by_ms = lands_by_ms

    def caller_gone(self, lands_by_ms: float) -> None:
        """The caller of the place or modify in flight went away before its answer: what it sent
        may still land until ``lands_by_ms`` (a bound: sent before now, expiring within the
        window). An order with a tighter bound, or none, keeps its own."""
        if self.lands_by_ms == math.inf:
            self.lands_by_ms = lands_by_ms

    def may_still_land(self, now_ms: int) -> bool:
        """Whether a place or modify of this order whose fate is unknown may still take effect
        at the venue at ``now_ms``: the venue not knowing it proves nothing yet."""
        unresolved = self.pending in (Op.PLACE, Op.MODIFY) or (
            self.pending is Op.CANCEL and self.base in _UNPLACED
        )
        return unresolved and self.lands_by_ms is not None and now_ms <= self.lands_by_ms

    def landing_wait_ms(self, now_ms: int) -> int | None:
        """How long until what may still land no longer can (ms, for asking the venue again);
        None when nothing may land, or its caller still waits (no bound yet)."""
        if not self.may_still_land(now_ms) or self.lands_by_ms in (None, math.inf):
            return None
        assert self.lands_by_ms is not None
        return max(0, math.ceil(self.lands_by_ms - now_ms) + 1)

    # --- answers of the order API ---------------------------------------------------------------

    def ack_resting(self, oid: OrderId, now_ms: int) -> Transition:
        """The place request's answer: resting under ``oid``."""
        self._check_oid(oid, "ack_resting")
        self.acked_ms = now_ms if self.acked_ms is None else self.acked_ms
        return self.live(oid, now_ms, authoritative=True, action="ack_resting")

    def ack_filled(self, oid: OrderId, total_sz: float, now_ms: int) -> Transition:
        """The place (or modify) answer: filled at once, ``total_sz`` of it."""
        self._check_oid(oid, "ack_filled")
        self.acked_ms = now_ms if self.acked_ms is None else self.acked_ms
        self.answered_filled_sz = total_sz
        if self.tif is Tif.IOC and not _covers(total_sz, self.sz):
            # An IOC that filled in part: the venue canceled the rest.
            self._adopt(oid)
            return self.closed(OrderStatus.CANCELED, "canceled", now_ms, "ack_filled")
        if _covers(total_sz, self.sz):
            self._adopt(oid)
            return self.closed(OrderStatus.FILLED, "filled", now_ms, "ack_filled")
        # A resting order that matched in part: live, the fills will follow.
        return self.live(oid, now_ms, authoritative=True, action="ack_filled")

    def ack_rejected(self, reason: str, now_ms: int) -> Transition:
        """The place request's answer: rejected. Illegal once the order was seen live."""
        if self.is_terminal:
            return self._noop("ack_rejected", now_ms, "terminal")
        if self.accepted:
            raise IllegalTransition(self.cloid, self.state, "ack_rejected", "order is live")
        before = self.state
        self._finish(OrderState.REJECTED, reason, now_ms)
        return self._done("ack_rejected", before, now_ms, reason=reason)

    def cancel_acked(self, now_ms: int) -> Transition:
        """The venue canceled the order at our request."""
        if not self.cancel_sent:
            raise IllegalTransition(self.cloid, self.state, "cancel_acked", "no cancel was sent")
        if self.is_terminal:
            return self._noop("cancel_acked", now_ms, "terminal")
        before = self.state
        self._finish(OrderState.CANCELED, "canceled", now_ms)
        return self._done("cancel_acked", before, now_ms, reason="canceled")

    def cancel_refused(self, reason: str, now_ms: int) -> Transition:
        """The venue refused our cancel (typically: the order is already gone)."""
        if not self.cancel_sent:
            raise IllegalTransition(self.cloid, self.state, "cancel_refused", "no cancel was sent")
        if self.pending is not Op.CANCEL or self.state not in _AWAITING:
            return self._noop("cancel_refused", now_ms, "no cancel pending", Op.CANCEL, reason)
        before = self.state
        self._restore_base(now_ms)
        return self._done("cancel_refused", before, now_ms, refused=Op.CANCEL, reason=reason)

    def replaced(
        self,
        new_oid: OrderId,
        now_ms: int,
        *,
        px: float | None = None,
        sz: float | None = None,
    ) -> Transition:
        """A modify took effect: the venue order is now ``new_oid`` (the old one is retired).

        ``px`` and ``sz`` are the venue's (from a report), else the modify's own values.
        """
        if self.modify_target is None or self.is_terminal:
            raise IllegalTransition(self.cloid, self.state, "replaced", "no modify in flight")
        if self.is_retired_oid(new_oid):
            raise IllegalTransition(self.cloid, self.state, "replaced", f"oid {new_oid} retired")
        before = self.state
        old = self.oid
        target_px, target_sz, target_tif = self.modify_target
        if old is not None and old != new_oid:
            self._retire(old)
            self.oid_filled_sz = 0.0
        self.oid = new_oid
        self.px = target_px if px is None else px
        self.sz = target_sz if sz is None else sz
        self.tif = target_tif
        self.modify_target = None
        self.state = self.working_state()
        self.pending = None
        self.in_flight_since_ms = None
        self.seen_ms = now_ms
        return self._done("replaced", before, now_ms, replaced_oid=old)

    def modify_refused(self, reason: str, now_ms: int, *, settle: bool = True) -> Transition:
        """The venue refused our modify: the order is where it was before it.

        ``settle=False`` (an UNKNOWN order learning only that the modify failed, not whether
        the old venue order still rests) keeps it UNKNOWN until the venue says.
        """
        if self.modify_target is None:
            return self._noop("modify_refused", now_ms, "no modify pending", Op.MODIFY, reason)
        before = self.state
        self.modify_target = None
        in_doubt = self.state is OrderState.UNKNOWN and not settle
        if self.pending is Op.MODIFY and self.state in _AWAITING and not in_doubt:
            self._restore_base(now_ms)
        return self._done("modify_refused", before, now_ms, refused=Op.MODIFY, reason=reason)

    def retire_oid(self, oid: OrderId) -> None:
        """Remember ``oid`` as a dead leg of this order (a replacement the venue rejected)."""
        if oid != self.oid and not self.is_retired_oid(oid):
            self._retire(oid)

    def timed_out(self, now_ms: int) -> Transition:
        """The request in flight got no answer: the order's fate is UNKNOWN."""
        if self.state not in _PENDING:
            return self._noop("timed_out", now_ms, "nothing pending")
        before = self.state
        if self.state is OrderState.PENDING_NEW:
            self.base = OrderState.UNKNOWN
        if self.pending in (Op.PLACE, Op.MODIFY) and self.lands_by_ms == math.inf:
            # No bound was given for what may land (the caller knew of no expiry): none.
            self.lands_by_ms = None
        self.state = OrderState.UNKNOWN
        return self._done("timed_out", before, now_ms)

    def resolved_missing(self, now_ms: int) -> Transition:
        """The venue does not know the order: never placed (REJECTED) or forgotten (EXPIRED);
        unless its place or modify may still land (``lands_by_ms``): then nothing changes."""
        if self.state is not OrderState.UNKNOWN:
            return self._noop("resolved_missing", now_ms, "not unknown")
        if self.may_still_land(now_ms):
            return self._noop("resolved_missing", now_ms, "may still land")
        before = self.state
        if self.oid is None and not self.accepted:
            self._finish(OrderState.REJECTED, "not found at venue", now_ms)
        else:
            self._finish(OrderState.EXPIRED, "no longer known at venue", now_ms)
        return self._done("resolved_missing", before, now_ms, reason=self.reason)

    def vanished(self, now_ms: int) -> Transition:
        """The venue neither lists the order as open nor knows it (orderStatus): a working order
        is gone (EXPIRED); an UNKNOWN one is resolved as `resolved_missing` does."""
        if self.state is OrderState.UNKNOWN:
            return self.resolved_missing(now_ms)
        if self.state not in WORKING_STATES:
            return self._noop("vanished", now_ms, "not working")
        before = self.state
        self._finish(OrderState.EXPIRED, "absent at venue", now_ms)
        return self._done("vanished", before, now_ms, reason=self.reason)

    # --- the venue's reports ----------------------------------------------------------------------

    def report(
        self,
        status: OrderStatus,
        oid: OrderId,
        now_ms: int,
        *,
        authoritative: bool = False,
        word: str | None = None,
    ) -> Transition:
        """A status report for the current oid (the dispatcher has matched ``oid``).

        ``word`` is the venue's own (the reason an ended order keeps; ``status``'s name when
        not given). ``authoritative``: an orderStatus answer asked for after a timeout, which
        resolves UNKNOWN even when it says the order is live.
        """
        self._check_oid(oid, "report")
        word = status.value if word is None else word
        if status is OrderStatus.UNRECOGNIZED:
            self.unknown_words = (*self.unknown_words, word)
            return self._noop("report", now_ms, f"unknown status {word!r}")
        if status is OrderStatus.OPEN:
            return self.live(oid, now_ms, authoritative=authoritative, action="report")
        self._adopt(oid)
        return self.closed(status, word, now_ms, "report")

    def live(self, oid: OrderId, now_ms: int, *, authoritative: bool, action: str) -> Transition:
        """Evidence that the venue order ``oid`` is resting."""
        self._check_oid(oid, action)
        before = self.state
        self._adopt(oid)
        if self.state in _REVIVABLE:
            return self._revive(action, now_ms, self.working_state())
        if self.is_terminal:
            return self._noop(action, now_ms, "terminal")
        self.seen_ms = now_ms
        first = self._accept()
        state = self.state
        if state is OrderState.PENDING_NEW or (
            state is OrderState.UNKNOWN and (self.pending is Op.PLACE or authoritative)
        ):
            self.state = self.working_state()
            self.pending = None
            self.modify_target = None
            self.in_flight_since_ms = None
        elif state in _AWAITING and self.base in _UNPLACED:
            self.base = self.working_state()
        return self._done(action, before, now_ms, accepted=first)

    def closed(self, status: OrderStatus, word: str, now_ms: int, action: str) -> Transition:
        """The venue says the order is done: filled, canceled or rejected."""
        before = self.state
        if status is OrderStatus.FILLED:
            if self.state is OrderState.FILLED:
                return self._noop(action, now_ms, "terminal")
            first = self._accept()
            self._finish(OrderState.FILLED, word, now_ms)
            return self._done(action, before, now_ms, accepted=first, reason=word)
        if self.is_terminal:
            return self._noop(action, now_ms, "terminal")
        if status is OrderStatus.REJECTED and not self.accepted:
            self._finish(OrderState.REJECTED, word, now_ms)
            return self._done(action, before, now_ms, reason=word)
        # Canceled, or a rejection word for an order that was live: either way it is gone.
        self._finish(OrderState.CANCELED, word, now_ms)
        return self._done(action, before, now_ms, reason=word)

    def apply_fill(self, fill: Fill, now_ms: int) -> Transition:
        """Apply a (deduplicated) fill. Fills are truth: applied in every state."""
        if fill.coin != self.coin or fill.side is not self.side:
            raise IllegalTransition(
                self.cloid, self.state, "fill", f"{fill.coin}/{fill.side.name} does not match"
            )
        if fill.sz <= 0:
            raise IllegalTransition(self.cloid, self.state, "fill", f"size {fill.sz}")
        before = self.state
        total = self.filled_sz + fill.sz
        self.avg_fill_px = (self.avg_fill_px * self.filled_sz + fill.px * fill.sz) / total
        self.filled_sz = total
        self.fill_count += 1
        self.seen_ms = now_ms
        current = self.oid is None or fill.oid == self.oid
        if self.oid is None and (not self.is_terminal or self.state in _REVIVABLE):
            self.oid = fill.oid
        if current:
            self.oid_filled_sz += fill.sz
        first = self._accept() if not self.is_terminal else False
        state = self.state
        if state is OrderState.FILLED:
            pass
        elif current and _covers(self.oid_filled_sz, self.sz):
            self._finish(OrderState.FILLED, "filled", now_ms)
        elif state in _REVIVABLE and current:
            # Refused or unknown to the venue, and yet filled in part: it lives after all.
            revived = self._revive("fill", now_ms, OrderState.PARTIALLY_FILLED)
            return attrs.evolve(revived, before=before, fill=fill)
        elif state.is_terminal:
            pass  # a late partial fill: size applied, the order stays where the venue put it
        elif state in (OrderState.PENDING_NEW, OrderState.OPEN) or (
            state is OrderState.UNKNOWN and self.pending is Op.PLACE
        ):
            self.state = OrderState.PARTIALLY_FILLED
            self.pending = None
            self.in_flight_since_ms = None
        elif state in _AWAITING:
            self.base = OrderState.PARTIALLY_FILLED
        return self._done("fill", before, now_ms, accepted=first, fill=fill)

    # --- internals ------------------------------------------------------------------------------

    def _check_oid(self, oid: OrderId, action: str) -> None:
        if self.oid is not None and oid != self.oid:
            raise IllegalTransition(
                self.cloid, self.state, action, f"oid {oid} is not the current oid {self.oid}"
            )

    def _adopt(self, oid: OrderId) -> None:
        """Learn the venue oid (the first answer or report to carry it)."""
        if self.oid is None:
            self.oid = oid

    def _accept(self) -> bool:
        """Note that the order went live; True the first time."""
        first = not self.accepted
        self.accepted = True
        return first

    def _underlying(self) -> OrderState:
        if self.state is OrderState.UNKNOWN:
            return OrderState.UNKNOWN if self.pending is Op.PLACE else self.base
        if self.state is OrderState.PENDING_NEW:
            return OrderState.PENDING_NEW
        return self.working_state()

    def _restore_base(self, now_ms: int) -> None:
        base = self.base
        if base is OrderState.PENDING_NEW:
            self.state, self.pending = OrderState.PENDING_NEW, Op.PLACE
            self.in_flight_since_ms = self.created_ms
        elif base is OrderState.UNKNOWN:
            self.state, self.pending = OrderState.UNKNOWN, Op.PLACE
            self.in_flight_since_ms = self.created_ms
        else:
            self.state, self.pending = self.working_state(), None
            self.in_flight_since_ms = None

    def _revive(self, action: str, now_ms: int, state: OrderState) -> Transition:
        """A REJECTED or EXPIRED order the venue shows alive: working again, nothing in flight."""
        before = self.state
        self.state = state
        self.reason = None
        self.terminal_ms = None
        self.pending = None
        self.modify_target = None
        self.in_flight_since_ms = None
        self.lands_by_ms = None
        self.seen_ms = now_ms
        first = self._accept()
        transition = self._done(action, before, now_ms, accepted=first)
        return attrs.evolve(transition, revived=before)

    def _finish(self, state: OrderState, reason: str, now_ms: int) -> None:
        self.state = state
        self.reason = reason
        self.pending = None
        self.modify_target = None
        self.in_flight_since_ms = None
        self.terminal_ms = now_ms if self.terminal_ms is None else self.terminal_ms

    def _done(
        self,
        action: str,
        before: OrderState,
        now_ms: int,
        *,
        accepted: bool = False,
        replaced_oid: OrderId | None = None,
        fill: Fill | None = None,
        refused: Op | None = None,
        reason: str | None = None,
    ) -> Transition:
        self.updated_ms = now_ms
        return Transition(
            action=action,
            before=before,
            after=self.state,
            accepted=accepted,
            replaced_oid=replaced_oid,
            fill=fill,
            refused=refused,
            reason=reason,
        )

    def _noop(
        self,
        action: str,
        now_ms: int,
        why: str,
        refused: Op | None = None,
        reason: str | None = None,
    ) -> Transition:
        del now_ms  # nothing changed: updated_ms stays
        return Transition(
            action=action,
            before=self.state,
            after=self.state,
            refused=refused,
            reason=reason,
            ignored=why,
        )


_CANCELABLE = frozenset(
    {
        OrderState.PENDING_NEW,
        OrderState.OPEN,
        OrderState.PARTIALLY_FILLED,
        OrderState.UNKNOWN,
    }
)
_PENDING = frozenset({OrderState.PENDING_NEW, OrderState.PENDING_CANCEL, OrderState.PENDING_MODIFY})
_AWAITING = frozenset({OrderState.PENDING_CANCEL, OrderState.PENDING_MODIFY, OrderState.UNKNOWN})
_UNPLACED = frozenset({OrderState.PENDING_NEW, OrderState.UNKNOWN})
# Terminal states the venue's word that the order lives undoes (see "revives" above).
_REVIVABLE = frozenset({OrderState.REJECTED, OrderState.EXPIRED})

# TrackedOrder.compact's fields, in order, and those that hold an enum member (or None).
COMPACT_FIELDS: Final = tuple(field.name for field in attrs.fields(TrackedOrder))
_ENUM_FIELDS: Final[dict[str, type[enum.Enum]]] = {
    "side": Side,
    "tif": Tif,
    "state": OrderState,
    "pending": Op,
    "base": OrderState,
}
