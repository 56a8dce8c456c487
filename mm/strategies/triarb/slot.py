"""An executor slot: one Trio task that takes signals and runs their triangles' legs, live or
paper, and reports how each ended.

One ``ExecutorSlot`` per slot (the reference's ``concurrent_slots``), each a child of the
trading scope. Its loop (:meth:`ExecutorSlot.run`):

1. take a ``Signal`` from its source (the desk's signal queue) and claim its triangle in
   ``Claims`` (or be handed a triangle the strategy's task began for it with ``start``: that
   first part, claim and limits, done there, and its first leg written at once when the venue
   can, ``SendsLegNow``; the slot's task goes on from that leg's answer); a refused claim
   drops the signal, counted by its reason (``dropped``), and the slot takes the next; so
   does a stale signal (``refused``: its oldest book is past
   ``max_book_age_ms`` when the slot takes it, having waited in the queue, or a book of it is
   stamped before our last fill on that pair: it may show the very opportunity a triangle just
   took, as ``Claims`` keeps each pair's last fill) and a triangle the caller's ``admit``
   refuses once claimed (the risk limits and the permission board: ``refused``, by the reason
   it gives; ``on_refused`` hears each stale signal, ``admit`` counts its own);
2. run the three legs in order through a :class:`LegVenue`: each leg's order is
   ``cascade.next_leg`` on what the previous leg ACTUALLY yielded (``leg_output`` of its
   fills; the start volume evaluated for the first), at the evaluated worst price plus the
   slippage (a market order when ``leg_order = "market"``). The order is placed under a client
   order id (``<prefix><slot>-<corr>-L<n>``, ``-U<n>`` for an unwind: the caller's prefix
   makes them unique across runs); its fills and the venue's word that it is done
   (:class:`LegDone`: the IOC's rest cancelled, or all filled) arrive on the slot's own fill
   channel (the order path routes them there by client order id; events
   of another id, a late one of an earlier order, are skipped). A leg ends when it is done and
   its fills are in, or at ``fill_timeout_s`` after it was fired (the ack's wait included).
   With ``await_balance`` (the reference's balance override), the next leg's input is no more
   than the venue's available balance of what the leg bought, from the first balance push
   stamped at or after the leg's last fill (``balances.BalanceBoard``; waited for up to
   ``BALANCE_WAIT_S``, else the fills' figure stands): what the venue holds, not what the
   fills say, bounds what is sent (a fee charged otherwise than computed would make the next
   leg refused for insufficient balance);
3. when a leg fails (the venue refused it, nothing filled, it timed out, or ``next_leg``
   refused it) with something held outside the primary, the slot trades what it holds back to
   the primary (``unwind = "unwind"``: each held currency through the triangle's pair that
   joins it to the primary, as a leg order through the same cascade arithmetic and venue: a
   market order when legs are, else an IOC at the deepest price visible on the book as
   evaluated moved by the slippage, since getting out matters more than the price) or keeps it
   and reports it (``"hold"``);
4. a cancel of the enclosing scope (kill switch, stop) is looked at between legs: a leg not yet
   sent is never sent, nor is an unwind; an order in flight is awaited, shielded, up to its
   timeout; the report says what is held;
5. release the claim (in a ``finally``) and send the ``TriangleReport`` on the outcome channel
   (waiting for room: the reports are not perishable).

Timings are on the service's monotonic clock from the moment the slot took the signal (the
report's ``signal_ns``: the ``Signal`` carries only its millisecond on the books' clock, so the
time it waited in the queue is not in them).

Outcomes: FILLED (three legs filled; a partial fill cascades what was filled, and the rest of a
partial last leg shows as held), FAILED (a venue error, nothing filled or a timeout; held or
an unwind that itself failed), ABORTED (a leg refused by ``next_leg`` before it was sent, or
the cancel) and UNWOUND (a failure, then everything held traded back to the primary).

Paper mode differs only at the venue: :class:`PaperVenue` answers ``place`` with the fills
``cascade.paper_fills`` gives on the book the leg was evaluated on (``place`` gets that book;
a live venue ignores it), delivered on the same fill channel.

Fails: what ``place`` raises (a venue must answer a refusal with a :class:`LegAck` carrying the
error, so anything raised is a bug) ends ``run`` with the claim released and no report; a
timed-out order's late fills are not counted (the report says what was known when it timed
out). After a cancel the report is sent without waiting (``send_nowait``): when the outcome
channel is full or closed it is logged instead, with ``unsent`` counted. ``run`` returns when
its source ends (``trio.EndOfChannel``). ``start`` raises what the venue's ``send`` raises (a
bug), with the claim released: nothing was sent.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from decimal import Context, Decimal, Inexact, InvalidOperation
from typing import Final, Protocol, TypeAlias, runtime_checkable

import attrs
import trio
from loguru import logger

from mm import clock
from mm.model import Fill, Instrument, OrderId, PriceLevel, Side
from mm.strategies.triarb import cascade
from mm.strategies.triarb.balances import BalanceBoard
from mm.strategies.triarb.cascade import LegOrder, next_leg, paper_fills
from mm.strategies.triarb.claims import Claims, Conflict
from mm.strategies.triarb.claims import Reason as ClaimReason
from mm.strategies.triarb.config import TriarbConfig
from mm.strategies.triarb.legs import Leg, Triangle
from mm.strategies.triarb.reports import LegRun, LegTimes, Outcome, TriangleReport, log_line
from mm.strategies.triarb.signals import Signal
from mm.strategies.triarb.triangles import BookView, Terms

__all__ = [
    "ExecutorSlot",
    "Fired",
    "LegAck",
    "LegDone",
    "LegEvent",
    "LegVenue",
    "PaperVenue",
    "SendsLegNow",
    "SentLeg",
    "SignalSource",
    "Started",
]

_ZERO: Final = Decimal(0)
# How long a slot waits, after a leg, for the venue's balance push that books it
# (await_balance): the venue pushes a balance change within milliseconds of the match.
BALANCE_WAIT_S: Final = 1.0
# Why a slot drops a signal it took (``refused``), before its claim's risk limits.
STALE_BOOKS: Final = "stale books"
BEFORE_OUR_TRADE: Final = "books before our last trade"
# Sums and differences of venue amounts are exact, as in the cascade.
_EXACT: Final = Context(prec=400, traps=[Inexact, InvalidOperation])


@attrs.frozen(slots=True)
class LegAck:
    """The venue's answer to a leg's order: accepted (``oid``) or refused (``error``, the
    venue's words, and no ``oid``). ``cloid``: the client order id the venue knows the order
    by, which its fills and end carry, when it is not the one the slot gave (a live venue's
    ids are of the venue's format)."""

    oid: OrderId | None
    error: str = ""
    cloid: str | None = None

    @property
    def accepted(self) -> bool:
        return not self.error


@attrs.frozen(slots=True)
class LegDone:
    """The venue's word that the order ``cloid`` is over (filled, or its IOC rest cancelled)
    with ``filled`` of the base filled in all: the leg ends once fills for that much are in."""

    cloid: str
    filled: Decimal


# What the slot's fill channel carries: its orders' fills and their ends.
LegEvent: TypeAlias = Fill | LegDone


class LegVenue(Protocol):
    """The seam to the order path: send a leg's order. ``book`` is the book the leg was
    evaluated on (a live venue ignores it; the paper venue fills from it). Fills and the
    order's end are delivered on the slot's fill channel, not returned."""

    async def place(self, order: LegOrder, cloid: str, book: BookView) -> LegAck: ...


class SentLeg(Protocol):
    """A leg's order written already (``SendsLegNow.send``): ``ack`` awaits the venue's
    answer, in any task; ``abandon`` when it never will be (the order is left to land)."""

    async def ack(self) -> LegAck: ...

    def abandon(self) -> None: ...


@runtime_checkable
class SendsLegNow(Protocol):
    """A ``LegVenue`` that can write a leg's order at once, in no task's name (the live venue
    on a lane connection that is free): the strategy's task sends a triangle's first leg for
    the slot it then hands the triangle to. Answers the refusal at once (a ``LegAck``), the
    sent leg, or None with nothing sent when it cannot go without waiting."""

    def send(self, order: LegOrder, cloid: str, book: BookView) -> SentLeg | LegAck | None: ...


class SignalSource(Protocol):
    """Where a slot takes its work: a signal, or a triangle started for it (``Started``).
    Raises ``trio.EndOfChannel`` when there will be no more."""

    async def receive(self) -> Signal | Started: ...


@attrs.frozen(slots=True)
class Fired:
    """A triangle's first leg sent by ``ExecutorSlot.start``: its order, when it was fired
    (the service's monotonic ns), the Trio time its fill timeout ends, and what was sent."""

    order: LegOrder
    fired_ns: int
    deadline: float
    sent: SentLeg | LegAck


@attrs.frozen(slots=True)
class Started:
    """A triangle ``ExecutorSlot.start`` claimed and admitted in the strategy's task, for the
    slot to run on (``first``: its first leg, when it was sent already)."""

    signal: Signal
    signal_ns: int
    first: Fired | None


class PaperVenue:
    """A ``LegVenue`` whose orders fill from the book as evaluated (``cascade.paper_fills``:
    walking the depth within the order's limit, the same rounding), acknowledged at once, the
    fills then the order's end put on ``fills`` without waiting (a slot's fill channel is
    unbounded: the order path never waits on a slot). Fees are each symbol's taker rate in
    ``terms``, charged in the quote. Fails: ``trio.WouldBlock`` when ``fills`` is bounded and
    full, ``trio.BrokenResourceError`` when the slot's end is closed, ``KeyError`` for an
    unknown symbol."""

    def __init__(
        self,
        instruments: Mapping[str, Instrument],
        terms: Terms,
        fills: trio.MemorySendChannel[LegEvent],
    ) -> None:
        self._instruments = instruments
        self._terms = terms
        self._fills = fills
        self.placed: list[tuple[LegOrder, str]] = []

    async def place(self, order: LegOrder, cloid: str, book: BookView) -> LegAck:
        await trio.lowlevel.checkpoint()
        self.placed.append((order, cloid))
        instrument = self._instruments[order.symbol]
        levels = book.asks if order.side is Side.BUY else book.bids
        oid = OrderId(f"paper:{cloid}")
        fills = paper_fills(
            order,
            instrument,
            levels,
            self._terms.fees.get(order.symbol, _ZERO),
            oid=oid,
            cloid=cloid,
            time_ms=clock.wall_ms(),
        )
        for fill in fills:
            self._fills.send_nowait(fill)
        self._fills.send_nowait(LegDone(cloid, _filled(fills)))
        return LegAck(oid)


@attrs.frozen(slots=True)
class _Failure:
    """Why the legs stopped short: ``outcome`` FAILED or ABORTED, and what to say."""

    outcome: Outcome
    detail: str


class ExecutorSlot:
    """One executor slot (see the module): ``run`` takes signals until their channel closes.

    Counters: ``taken`` signals claimed and admitted, ``dropped`` signals refused a claim (by
    reason), ``refused`` claimed and refused by ``admit`` (by its reason), ``outcomes``
    triangles by how they ended, ``unsent`` reports that could not be sent after a cancel
    (logged instead)."""

    def __init__(
        self,
        slot: int,
        claims: Claims,
        config: TriarbConfig,
        instruments: Mapping[str, Instrument],
        terms: Terms,
        venue: LegVenue,
        signals: SignalSource,
        fills: trio.MemoryReceiveChannel[LegEvent],
        outcomes: trio.MemorySendChannel[TriangleReport],
        *,
        cloid_prefix: str = "tri",
        admit: Callable[[Signal], str | None] | None = None,
        balances: BalanceBoard | None = None,
        on_refused: Callable[[str], None] | None = None,
        monotonic_ns: Callable[[], int] = clock.monotonic_ns,
        wall_ms: Callable[[], int] = clock.wall_ms,
    ) -> None:
        self.slot = slot
        self._claims = claims
        self._config = config
        self._instruments = instruments
        self._terms = terms
        self._venue = venue
        # The venue's way to write a first leg at once, from the strategy's task (``start``).
        self._sends = venue if isinstance(venue, SendsLegNow) else None
        self._signals = signals
        self._fills = fills
        self._outcomes = outcomes
        self._prefix = f"{cloid_prefix}{slot}"
        self._admit = admit
        # The venue's pushed balances, read after each leg when await_balance is on.
        self._balances = balances if config.await_balance else None
        self.balance_waits_missed = 0
        self._on_refused = on_refused
        self._monotonic_ns = monotonic_ns
        self._wall_ms = wall_ms
        self._market = config.leg_order == "market"
        self._slippage = Decimal(repr(config.max_slippage_bps))
        self.taken = 0
        self.dropped: Counter[ClaimReason] = Counter()
        self.refused: Counter[str] = Counter()  # claimed, then refused by ``admit``, by why
        self.outcomes: Counter[Outcome] = Counter()
        self.unsent = 0

    def __repr__(self) -> str:
        return f"ExecutorSlot({self.slot}, taken={self.taken}, outcomes={dict(self.outcomes)})"

    async def run(self) -> None:
        """Take signals, and triangles started for this slot, until the source ends (or the
        scope is cancelled)."""
        source = self._signals
        while True:
            try:
                item = await source.receive()
            except trio.EndOfChannel:
                return
            if isinstance(item, Started):
                await self.run_started(item)
            else:
                await self.take(item)

    async def take(self, signal: Signal) -> TriangleReport | None:
        """Claim ``signal``'s triangle and run it; the report sent (None when refused)."""
        if not self._begin(signal):
            return None
        return await self.run_started(Started(signal, self._monotonic_ns(), None))

    def start(self, signal: Signal) -> Started | None:
        """``take``'s first part, in the strategy's task, for this slot while it waits: the
        claim and the limits, then the first leg sent when the venue can write it at once
        (else ``first`` is None and ``run_started`` sends it). None when refused (counted as
        ``take`` counts it). What it answers must go to this slot's ``run_started``."""
        if not self._begin(signal):
            return None
        signal_ns = self._monotonic_ns()
        sends = self._sends
        if sends is None:
            return Started(signal, signal_ns, None)
        try:
            leg, book = signal.triangle.legs[0], signal.books[0]
            order = self._order(leg, signal.volume, signal.evaluation.legs[0].worst_px)
            if isinstance(order, str):
                return Started(signal, signal_ns, None)  # (``run_started`` says why, aborting)
            fired_ns = self._monotonic_ns()
            deadline = trio.current_time() + self._config.fill_timeout_s
            sent = sends.send(order, self._cloid(signal, "L0"), book)
        except BaseException:
            self._claims.release(self.slot)  # nothing was sent: the triangle never started
            raise
        if sent is None:
            return Started(signal, signal_ns, None)
        return Started(signal, signal_ns, Fired(order, fired_ns, deadline, sent))

    def forsake(self, started: Started) -> None:
        """``started`` will never run here (its slot stopped waiting: a bug of the caller):
        its claim released, and a first leg sent left to land (the auditor resolves it)."""
        first = started.first
        if first is not None and not isinstance(first.sent, LegAck):
            first.sent.abandon()
        self._claims.release(self.slot)

    def _begin(self, signal: Signal) -> bool:
        """Claim ``signal``'s triangle and pass it through the staleness and the limits:
        whether it may start (a refusal counted, the claim released)."""
        granted = self._claims.claim(self.slot, signal.triangle)
        if isinstance(granted, Conflict):
            self.dropped[granted.reason] += 1
            return False
        refused = self._stale(signal)
        if refused is not None and self._on_refused is not None:
            self._on_refused(refused)
        if refused is None and self._admit is not None:
            refused = self._admit(signal)
        if refused is not None:
            self._claims.release(self.slot)
            self.refused[refused] += 1
            return False
        self.taken += 1
        return True

    async def run_started(self, started: Started) -> TriangleReport:
        """Run a triangle ``start`` (or ``take``) began for this slot, to its report."""
        report: TriangleReport | None = None
        try:
            report = await self._execute(started)
        finally:
            self._claims.release(self.slot, None if report is None else _last_fill_ms(report))
        self.outcomes[report.outcome] += 1
        await self._send(report)
        return report

    def _cloid(self, signal: Signal, leg: str) -> str:
        return f"{self._prefix}-{signal.corr}-{leg}"

    def _stale(self, signal: Signal) -> str | None:
        """Why ``signal`` is stale when a slot takes it, else None: its oldest book is past
        ``max_book_age_ms`` now (it waited in the queue), or a book predates a fill of ours on
        that pair (a triangle just traded it: the opportunity it shows may be the one taken)."""
        now_ms = self._wall_ms()
        if now_ms - min(signal.book_times_ms) > self._config.max_book_age_ms:
            return STALE_BOOKS
        claims = self._claims
        for symbol, book_ms in zip(signal.triangle.symbols, signal.book_times_ms, strict=True):
            if book_ms < claims.traded_ms(symbol):
                return BEFORE_OUR_TRADE
        return None

    # --- one triangle --------------------------------------------------------------------------

    async def _execute(self, started: Started) -> TriangleReport:
        signal, signal_ns, first = started.signal, started.signal_ns, started.first
        triangle = signal.triangle
        runs: list[LegRun] = []
        held = signal.volume
        failure: _Failure | None = None
        stopped = False  # by a cancel
        for n, (leg, book, result) in enumerate(
            zip(triangle.legs, signal.books, signal.evaluation.legs, strict=True)
        ):
            if n == 0 and first is not None:  # sent already, before any cancel could come
                run, error = await self._leg(
                    leg, first.order, self._cloid(signal, "L0"), book, first
                )
            else:
                if _cancelled():
                    failure, stopped = _Failure(Outcome.ABORTED, f"cancelled before L{n}"), True
                    break
                order = self._order(leg, held, result.worst_px)
                if isinstance(order, str):
                    failure = _Failure(Outcome.ABORTED, f"L{n} {leg.symbol} not sent: {order}")
                    break
                run, error = await self._leg(leg, order, self._cloid(signal, f"L{n}"), book)
            runs.append(run)
            if error:
                failure = _Failure(Outcome.FAILED, f"L{n} {leg.symbol} {error}")
                break
            held = run.received
            if self._balances is not None and n < 2:
                held = await self._balance_capped(run, held)
        unwind: tuple[LegRun, ...] = ()
        if failure is None:
            outcome, detail = Outcome.FILLED, ""
        else:
            outcome, detail = failure.outcome, failure.detail
            holding = _holding(triangle, runs)
            if holding and _cancelled():
                outcome = Outcome.ABORTED
                detail = f"{detail}: holding" if stopped else f"{detail}; cancelled: holding"
            elif holding and self._config.unwind == "hold":
                detail = f"{detail}; holding"
            elif holding:
                unwind, error = await self._unwind(signal, holding)
                if error:
                    outcome, detail = Outcome.FAILED, f"{detail}; unwind {error}"
                else:
                    outcome = Outcome.UNWOUND
        return TriangleReport(
            str(signal.corr),
            outcome,
            signal.evaluation,
            signal.books,
            signal_ns,
            self._wall_ms(),
            tuple(runs),
            unwind,
            detail,
        )

    async def _balance_capped(self, run: LegRun, held: Decimal) -> Decimal:
        """``held`` no more than the venue says is available of the leg's target once it has
        booked the leg's fills (``await_balance``), waited for up to ``BALANCE_WAIT_S``,
        shielded (a cancel is looked at before the next leg); ``held`` as is when no push came
        in time (counted: ``balance_waits_missed``)."""
        last_fill_ms = max(fill.time_ms for fill in run.fills)
        available: Mapping[str, Decimal] | None = None
        assert self._balances is not None
        with trio.CancelScope(shield=True) as scope:
            scope.deadline = trio.current_time() + BALANCE_WAIT_S
            available = await self._balances.after(last_fill_ms)
        if available is None:
            self.balance_waits_missed += 1
            return held
        return min(held, available.get(run.leg.target, _ZERO))

    def _order(self, leg: Leg, held: Decimal, worst_px: Decimal) -> LegOrder | str:
        """The order for ``leg`` from ``held`` of its source, or why none is sent."""
        increment = self._terms.funds_increments.get(leg.symbol)
        market = self._market
        if market and leg.side is Side.BUY and increment is None:
            return f"a market buy needs {leg.symbol}'s funds increment"
        order = next_leg(
            leg,
            self._instruments[leg.symbol],
            held,
            self._terms.fees.get(leg.symbol, _ZERO),
            worst_px,
            self._slippage,
            market_funds_increment=increment,
            market=market,
        )
        if isinstance(order, cascade.Refusal):
            return f"{order.shortfall.value} ({order.detail})"
        return order

    async def _leg(
        self, leg: Leg, order: LegOrder, cloid: str, book: BookView, sent: Fired | None = None
    ) -> tuple[LegRun, str]:
        """Send ``order`` (unless ``sent`` already) and await its end, shielded from a cancel,
        up to the fill timeout: the leg as run and what went wrong ("" when it filled and
        ended)."""
        ack: LegAck | None = None
        acked: int | None = None
        done: LegDone | None = None
        fills: list[Fill] = []
        if sent is None:
            fired = self._monotonic_ns()
            deadline = trio.current_time() + self._config.fill_timeout_s
        else:
            fired, deadline = sent.fired_ns, sent.deadline
        with trio.CancelScope(deadline=deadline, shield=True) as scope:
            if sent is None:
                ack = await self._venue.place(order, cloid, book)
            elif isinstance(sent.sent, LegAck):
                ack = sent.sent
            else:
                ack = await sent.sent.ack()
            if not ack.accepted:
                return LegRun(leg, LegTimes(fired)), f"rejected: {ack.error}"
            acked = self._monotonic_ns()
            events_cloid = ack.cloid or cloid
            while done is None or _filled(fills) < done.filled:
                event = await self._fills.receive()
                if event.cloid != events_cloid:
                    continue  # a late event of an earlier order
                if isinstance(event, LegDone):
                    done = event
                else:
                    fills.append(event)
        timeout = self._config.fill_timeout_s
        if ack is None:
            return LegRun(leg, LegTimes(fired)), f"timed out after {timeout:g}s unacknowledged"
        if scope.cancelled_caught:
            run = LegRun(leg, LegTimes(fired, acked), tuple(fills))
            return run, f"timed out after {timeout:g}s with {len(fills)} fills"
        run = LegRun(leg, LegTimes(fired, acked, self._monotonic_ns()), tuple(fills))
        return run, "" if fills else "nothing filled"

    async def _unwind(
        self, signal: Signal, holding: Sequence[tuple[str, Decimal]]
    ) -> tuple[tuple[LegRun, ...], str]:
        """Trade each held currency back to the primary: the unwind's legs, and what went
        wrong ("" when every one filled)."""
        runs: list[LegRun] = []
        errors: list[str] = []
        for n, (currency, amount) in enumerate(holding):
            if _cancelled():
                errors.append(f"cancelled before U{n}")
                break
            leg, book = _way_back(signal, currency)
            worst = _deepest(book.asks if leg.side is Side.BUY else book.bids)
            if worst is None:
                errors.append(f"U{n} {leg.symbol}: no {leg.side.value} side to take")
                continue
            order = self._order(leg, amount, worst)
            if isinstance(order, str):
                errors.append(f"U{n} {leg.symbol} not sent: {order}")
                continue
            run, error = await self._leg(leg, order, self._cloid(signal, f"U{n}"), book)
            runs.append(run)
            if error:
                errors.append(f"U{n} {leg.symbol} {error}")
        if not runs and not errors:
            errors.append("nothing to trade")
        return tuple(runs), "; ".join(errors)

    async def _send(self, report: TriangleReport) -> None:
        if not _cancelled():
            await self._outcomes.send(report)
            return
        try:
            self._outcomes.send_nowait(report)
        except (trio.WouldBlock, trio.BrokenResourceError, trio.ClosedResourceError):
            self.unsent += 1
            logger.warning("triarb slot {} report not sent: {}", self.slot, log_line(report))


def _last_fill_ms(report: TriangleReport) -> int | None:
    """The venue's time of the report's last fill (legs and unwinds), None when none filled."""
    times = [
        fill.time_ms for runs in (report.legs, report.unwind) for run in runs for fill in run.fills
    ]
    return max(times, default=None)


def _cancelled() -> bool:
    """Whether the task's enclosing scope is cancelled (looked at, not raised)."""
    return trio.current_effective_deadline() == -math.inf


def _filled(fills: Sequence[Fill]) -> Decimal:
    total = _ZERO
    for fill in fills:
        total = _EXACT.add(total, Decimal(repr(fill.sz)))
    return total


def _holding(triangle: Triangle, runs: Sequence[LegRun]) -> list[tuple[str, Decimal]]:
    """What the legs left outside the primary that is worth trading back: each currency's net
    amount, the one last received first."""
    net: dict[str, Decimal] = {}
    for run in runs:
        net[run.leg.target] = _EXACT.add(net.get(run.leg.target, _ZERO), run.received)
        net[run.leg.source] = _EXACT.subtract(net.get(run.leg.source, _ZERO), run.spent)
    net.pop(triangle.primary, None)
    return [(currency, amount) for currency, amount in reversed(net.items()) if amount > 0]


def _way_back(signal: Signal, currency: str) -> tuple[Leg, BookView]:
    """The trade of ``currency`` back to the primary, and its book as evaluated: the first
    leg's pair the other way for the first currency held, the last leg for the second."""
    first, _, last = signal.triangle.legs
    if currency == first.target:
        back = Leg(first.symbol, first.side.opposite, currency, signal.triangle.primary)
        return back, signal.books[0]
    return last, signal.books[2]


def _deepest(levels: Sequence[PriceLevel]) -> Decimal | None:
    """The worst price visible on a side of the book: an unwind takes what it must."""
    prices = [level[0] for level in levels if level[0] > 0 and level[1] > 0]
    return Decimal(repr(prices[-1])) if prices else None
