"""The triangle desk: the signals to the executor slots, the slots, and what their triangles'
reports become. The shell around ``slot.ExecutorSlot``.

The strategy task hands each signal the strategy found to ``offer`` (in the feed's task,
where the strategy decides on each book). When a slot waits, ``offer`` starts the triangle for
that slot there and then (``ExecutorSlot.start``: the claim, the limits, and its first leg
written on a free order-lane connection) and hands it to the slot, whose task goes on from the
first leg's answer: no round of the scheduler lies between the book and the first leg's
request. Otherwise the bounded signal queue (``triarb.signal_queue``,
``signal_queue.SignalQueue``) keeps the signal for the first slot that is done, while there is
room, else it is dropped and counted (a signal is perishable; the feed never waits). A slot
that a cancel (kill switch, stop) has reached no longer waits: nothing is started for it.
``children``
gives the trading subtree one child per slot (``triarb.slots``), each run by ``run_slot``
inside the trading scope, so the kill switch and the stop cancel them: a slot sends no leg
after the cancel, awaits a leg in flight up to its timeout, and reports what it holds.

At each run of a slot child it reads the instruments and the venue's spot terms (taker fees,
funds increments), opens its own fill channel (``LegRoutes`` sends it its orders' fills and
ends, by client order id, from ``on_fill``) and runs the slot over the live venue
(``RouterVenue``: IOC legs through the order router, after the pre-trade checks) or, in paper
mode, over ``TestedPaperVenue`` (the venue's test order, fills from the books as evaluated).
Before a claimed triangle's first leg the slot asks ``admit``: the risk limits
(``limits.Limiter``: the permission board, the day's loss per primary, the rate of triangles,
the inventory per currency on the portfolio's balances) grant it or refuse it, counted by
reason.

Every report is logged (one line in the reference's format), journaled as a ``triangle`` row
(``mm report`` reads them), counted in the metrics, recorded in the limiter's daily loss
(when the triangle closed in its primary) and kept among the recent ones for ``mm status``.
A slot's reports are taken by a task beside it, and those still waiting when the slot ends
(cancelled) are taken on the way out: no report is lost to a cancel.

Fails: a slot child raises what its slot raises (a bug in a venue's answer path): the
supervisor restarts it, its claim released. ``run_slot`` raises ``RuntimeError`` when the venue
client is not up or offers no spot terms. What ``offer`` raises (a bug of the order path met
while starting a triangle in the feed's task, the claim released) reaches the strategy task,
which raises it: the strategy restarts, not the feed.
"""

from __future__ import annotations

import math
from collections import Counter, deque
from collections.abc import Awaitable, Callable, Sequence
from decimal import Decimal
from functools import partial
from typing import Any

import trio
from loguru import logger
from prometheus_client import CollectorRegistry, Gauge, Histogram
from prometheus_client import Counter as MetricCounter

from mm import clock
from mm.execution.dispatch import (
    Dispatcher,
    DispatchOutput,
    OrderCanceled,
    OrderExpired,
    OrderFilled,
)
from mm.execution.orders import OrderRouter
from mm.metrics import LATENCY_BUCKETS
from mm.model import Fill, PlaceOrder
from mm.strategies.base import StrategyContext
from mm.strategies.triarb.balances import BalanceBoard
from mm.strategies.triarb.claims import Claims
from mm.strategies.triarb.config import TriarbConfig
from mm.strategies.triarb.limits import Limiter
from mm.strategies.triarb.reports import Outcome, TriangleReport, journal_row, log_line
from mm.strategies.triarb.signal_queue import SignalQueue
from mm.strategies.triarb.signals import Signal
from mm.strategies.triarb.slot import ExecutorSlot, LegEvent, LegVenue, Started
from mm.strategies.triarb.strategy import spot_terms
from mm.strategies.triarb.venue import LegRoutes, RouterVenue, TestedPaperVenue

__all__ = ["RECENT_KEPT", "TriangleDesk"]

RECENT_KEPT = 20  # the latest triangles, for mm status
REPORTS_QUEUE = 16  # a slot's reports waiting for the task that records them
SLIPPAGE_BUCKETS = (-100.0, -50.0, -20.0, -10.0, -5.0, -2.0, -1.0, 0.0, 1.0, 2.0, 5.0, 10.0)


class TriarbMetrics:
    """The desk's metrics (``busy`` is read when scraped: the desk gives it its function)."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.signals = MetricCounter(
            "mm_triarb_signals",
            "Signals the strategy handed to the desk: queued for a slot, or dropped because "
            "every slot was busy and the signal queue full (a signal is perishable).",
            ["fate"],
            registry=registry,
        )
        self.refused = MetricCounter(
            "mm_triarb_refused",
            "Signals a slot claimed and did not start: stale (past the book age, or books "
            "from before our last trade on a pair), or refused by a risk limit or the "
            "permission board (claim conflicts are in mm status).",
            ["reason"],
            registry=registry,
        )
        self.triangles = MetricCounter(
            "mm_triarb_triangles",
            "Triangles started, by how they ended (filled, failed, aborted, unwound).",
            ["outcome"],
            registry=registry,
        )
        self.profit = Gauge(
            "mm_triarb_profit",
            "Profit of this run's closed triangles, in their primary quote currency.",
            ["primary"],
            registry=registry,
        )
        self.busy = Gauge(
            "mm_triarb_slots_busy", "Executor slots with a triangle in flight.", registry=registry
        )
        self.first_leg = Histogram(
            "mm_triarb_first_leg_seconds",
            "From a slot taking a signal to its first leg's order handed to the venue client.",
            buckets=LATENCY_BUCKETS,
            registry=registry,
        )
        self.leg_latency = Histogram(
            "mm_triarb_leg_seconds",
            "From a leg's order fired to its fills all in (legs that filled).",
            ["leg"],
            buckets=LATENCY_BUCKETS,
            registry=registry,
        )
        self.slippage = Histogram(
            "mm_triarb_slippage_bps",
            "Effective minus predicted profit of closed triangles (bps of the start volume).",
            buckets=SLIPPAGE_BUCKETS,
            registry=registry,
        )


class TriangleDesk:
    """The signals to the slots, the slots and their reports (see the module)."""

    def __init__(
        self,
        config: TriarbConfig,
        symbols: tuple[str, ...],
        context: StrategyContext,
        router: Callable[[], OrderRouter | None],
        dispatcher: Dispatcher,
        record: Callable[[dict[str, Any]], object],
        *,
        wall_ms: Callable[[], int] = clock.wall_ms,
    ) -> None:
        self.config = config
        self.symbols = symbols
        self.context = context
        self._router = router
        self._dispatcher = dispatcher
        self._record = record
        self._wall_ms = wall_ms
        self._signals = SignalQueue[Signal | Started](config.signal_queue)
        self.claims = Claims(config.slots, share_primary=config.share_primary)
        self.limiter = Limiter(config.limits)
        self.routes = LegRoutes(dispatcher)
        # The venue's pushed balances: the slots' balance override (await_balance, live only).
        self.balances = BalanceBoard()
        self.metrics = TriarbMetrics(context.registry)
        # Read from the claims at each scrape, not set by the slots on their way to a leg.
        self.metrics.busy.set_function(self.claims.busy_count)
        # The signal counter's two children, looked up once: ``offer`` runs in the feed's task
        # for every signal, ahead of the slot that takes it (a ``labels`` call is ~10 us).
        self._queued_signals = self.metrics.signals.labels(fate="queued")
        self._dropped_signals = self.metrics.signals.labels(fate="dropped")
        self.recent: deque[TriangleReport] = deque(maxlen=RECENT_KEPT)
        self.queued = 0
        self.dropped = 0
        self.at_once = 0  # triangles whose first leg ``offer`` sent, in the feed's task
        self.outcomes: Counter[Outcome] = Counter()
        self.refused: Counter[str] = Counter()
        self.profit: dict[str, Decimal] = {}
        self._slots: dict[int, ExecutorSlot] = {}  # the latest run of each slot
        self._taken_before = 0  # triangles the earlier runs of the slots started
        # What the limits read before each triangle, looked up once.
        self._held = context.portfolio.balances.get
        self._permission = context.permissions.permission

    # --- the strategy task's side ----------------------------------------------------------------

    def offer(self, signal: Signal) -> bool:
        """Start ``signal``'s triangle for a slot that waits, else queue it if there is room,
        else drop it (counted): never waits. False when dropped."""
        queue = self._signals
        idle = queue.idle()
        if idle is not None:
            slot = self._slots[idle]
            started = slot.start(signal)
            if started is not None:
                try:
                    queue.hand(idle, started)
                except RuntimeError:
                    slot.forsake(started)
                    raise
                if started.first is not None:
                    self.at_once += 1
        elif not queue.put_nowait(signal):
            self.dropped += 1
            self._dropped_signals.inc()
            return False
        self.queued += 1
        self._queued_signals.inc()
        return True

    def on_fill(self, fill: Fill) -> None:
        """A fill new to the portfolio: to the slot whose order it is."""
        self.routes.on_fill(fill)

    def on_order_events(self, events: Sequence[DispatchOutput]) -> None:
        """Order lifecycle events (the user stream's reports and the answers, as the
        dispatcher applied them): a leg's order that ended after its place call returned (its
        IOC rest cancelled on the user stream, with nothing more filled) is over for its slot
        now, not at the fill timeout."""
        for event in events:
            if isinstance(event, OrderCanceled | OrderExpired | OrderFilled):
                self.routes.settle(event.cloid)

    # --- the slots ------------------------------------------------------------------------------

    def children(
        self, allow: Callable[[PlaceOrder], str | None]
    ) -> list[tuple[str, Callable[..., Awaitable[None]]]]:
        """One child per slot, for the trading subtree: its name and what runs it."""
        return [
            (f"slot-{index}", partial(self.run_slot, index, allow))
            for index in range(self.config.slots)
        ]

    async def run_slot(
        self,
        index: int,
        allow: Callable[[PlaceOrder], str | None],
        *,
        task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED,
    ) -> None:
        instruments = {symbol: self.context.instruments(symbol) for symbol in self.symbols}
        terms = spot_terms(self.config, instruments, self.context)
        fills_send, fills_receive = trio.open_memory_channel[LegEvent](math.inf)
        reports_send, reports_receive = trio.open_memory_channel[TriangleReport](REPORTS_QUEUE)
        venue: LegVenue
        if self.config.paper:
            venue = TestedPaperVenue(self.context.spot, instruments, terms, fills_send)
        else:
            venue = RouterVenue(
                self._router, self._dispatcher, self.routes, fills_send, instruments, allow
            )
        slot = ExecutorSlot(
            index,
            self.claims,
            self.config,
            instruments,
            terms,
            venue,
            self._signals.inbox(index),
            fills_receive,
            reports_send,
            cloid_prefix=f"t{self._wall_ms() % 36**6:x}s",
            admit=self._admit,
            balances=None if self.config.paper else self.balances,
            on_refused=self._refused,
            wall_ms=self._wall_ms,  # the reports' times, as the limiter's day is read
        )
        previous = self._slots.get(index)
        if previous is not None:  # (a restart: what the last run started still counts)
            self._taken_before += previous.taken
        self._slots[index] = slot
        try:
            async with fills_send, fills_receive, trio.open_nursery() as nursery:
                nursery.start_soon(self._reports, reports_receive)
                task_status.started()
                await slot.run()
                nursery.cancel_scope.cancel()
        finally:
            # The reports a cancel left waiting (the receiving end is closed only after: a
            # closed end would give none of them).
            with reports_receive:
                while True:
                    try:
                        report = reports_receive.receive_nowait()
                    except (trio.WouldBlock, trio.EndOfChannel):
                        break
                    self._on_report(report)

    def _admit(self, signal: Signal) -> str | None:
        """The limits' answer for a claimed triangle (None: it starts). The limiter reads the
        portfolio's balance of a currency only when it has an inventory limit."""
        breach = self.limiter.admit(
            signal.evaluation, self._held, self._wall_ms(), self._permission
        )
        if breach is None:
            return None
        self._refused(breach.reason.value)
        return breach.reason.value

    def _refused(self, reason: str) -> None:
        """A slot took a signal and did not start it: stale, or refused by the limits."""
        self.refused[reason] += 1
        self.metrics.refused.labels(reason=reason).inc()

    async def _reports(self, reports: trio.MemoryReceiveChannel[TriangleReport]) -> None:
        async for report in reports:
            self._on_report(report)

    def _on_report(self, report: TriangleReport) -> None:
        metrics = self.metrics
        self.outcomes[report.outcome] += 1
        metrics.triangles.labels(outcome=report.outcome.value).inc()
        runs = report.runs
        if runs:
            metrics.first_leg.observe((runs[0][1].times.fired_ns - report.signal_ns) / 1e9)
        for label, run in runs:
            if run.times.latency_ns is not None:
                metrics.leg_latency.labels(leg=label).observe(run.times.latency_ns / 1e9)
        profit = report.profit
        primary = report.triangle.primary
        if profit is not None:
            self.limiter.record(primary, profit, report.time_ms)
            self.profit[primary] = self.profit.get(primary, Decimal(0)) + profit
            metrics.profit.labels(primary=primary).set(float(self.profit[primary]))
        effective = report.effective_bps
        if effective is not None:
            metrics.slippage.observe(effective - report.predicted_bps)
        self.recent.append(report)
        line = log_line(report)
        if report.outcome is Outcome.FILLED:
            logger.info("triangle {}", line)
        else:
            logger.warning("triangle {}", line)
        self._record(journal_row(report))

    @property
    def taken(self) -> int:
        """Triangles the slots started (claimed and admitted), over all their runs."""
        return self._taken_before + sum(slot.taken for slot in self._slots.values())

    # --- status ---------------------------------------------------------------------------------

    def status(self) -> dict[str, Any]:
        """Slots busy, signals, outcomes, refusals, profit and the recent triangles."""
        return {
            "mode": "paper" if self.config.paper else "live",
            "slots": self.config.slots,
            "busy": {
                str(slot): " > ".join(triangle.currencies)
                for slot, triangle in sorted(self.claims.busy().items())
            },
            "signals": {"queued": self.queued, "dropped": self.dropped, "at_once": self.at_once},
            "outcomes": {outcome.value: n for outcome, n in self.outcomes.items()},
            "refused": dict(self.refused),
            "conflicts": self._conflicts(),
            "profit": {primary: str(amount) for primary, amount in self.profit.items()},
            "recent": [log_line(report) for report in reversed(self.recent)],
        }

    def summary(self) -> str:
        """One line for the console: outcomes, signals, profit per primary, busy slots."""
        outcomes = ", ".join(
            f"{self.outcomes[outcome]} {outcome.value.lower()}" for outcome in Outcome
        )
        profit = ", ".join(f"{primary} {amount:+.6f}" for primary, amount in self.profit.items())
        return (
            f"triangles: {outcomes}; signals {self.queued} queued, {self.dropped} dropped; "
            f"profit {profit or 'none yet'}; slots busy {len(self.claims.busy())}/"
            f"{self.config.slots}"
        )

    def _conflicts(self) -> dict[str, int]:
        """Signals whose claim a triangle in flight refused, by the isolation rule's reason."""
        total: Counter[str] = Counter()
        for slot in self._slots.values():
            for reason, n in slot.dropped.items():
                total[reason.value] += n
        return dict(total)
