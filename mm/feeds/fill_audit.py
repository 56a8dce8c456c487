"""The fill audit: the account's fills at the venue against those forwarded, so none is lost.

A venue can drop a user-stream message with nothing on the socket saying so (Hyperliquid's
carry no sequence numbers): a fill sent on both userFills and userEvents and dropped on both
never reached the journal, the positions or the PnL, and nothing noticed. ``FillAudit.run`` (a
child of the feeds supervisor) reads the account's fills from the venue (the port's
``fills_since``, page by page, through the order client and so through its rate limiter) every
``audit_every_s`` seconds, and soon after the autonomy monitor sees local positions drift from
the venue's (``positions_compared``, the callable the monitor is given when it is built, told of
every comparison), and hands every fill nobody has forwarded (``FillHistory``: not journaled,
not forwarded by the stream or an earlier audit) to the user-events channel, in time order: the
normal fill path (journal, dispatcher, positions, PnL, markouts, risk) takes it there, exactly
once.

Each read starts ``fill_lookback_ms`` (at least ``audit_settle_ms``) before the previous read
was sent, the first one that far before the newest fill known at start. A periodic audit leaves
fills younger than ``audit_settle_ms`` to the live stream (they may still be on their way) and
to the next read; an audit for a drift takes them too: the venue's position already shows them,
and every moment a lost fill stays lost counts against the liquidation detector's window and
the drift grace (one that was only on its way arrives as a duplicate and is dropped). When a
drift is seen, the audit runs ``audit_drift_gap_s`` after the previous one
at the earliest; while the drift lasts and the audits find nothing (a position the venue
changed without a fill: the liquidation detector's business), after a few such audits the gap
doubles up to the period, so a lasting drift costs the rate budget little; once positions
agree again, the next drift is audited soon again (``AuditSchedule``).

How it fails: a read that fails (the venue down, rate-limited, a malformed answer) is logged,
counted (``mm_fill_audits_total{result="failed"}``) and done again at the next period or drift,
from the same start: nothing is skipped. Before the order client is up, or before the history
knows where it ends (the user stream's first start), there is nothing to audit against: the
round is skipped. A cancelled hand-off gives its claim back (``FillHistory.release``).

Metrics: ``mm_fills_recovered_total{source}`` (fills the live stream missed: ``snapshot`` and
``resync`` found by the user stream, ``audit`` by this) and
``mm_fill_audits_total{trigger, result}``.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterator
from typing import Protocol

import trio
from loguru import logger
from prometheus_client import CollectorRegistry, Counter
from prometheus_client.core import CounterMetricFamily, Metric
from prometheus_client.registry import Collector

from mm import clock
from mm.feeds.history import FillHistory, missed_fills
from mm.feeds.user import UserStreamConfig, UserStreamEvent, fills_since
from mm.model import Fill
from mm.venues.base import MalformedAnswer, VenueError

__all__ = ["RECOVERY_SOURCES", "AuditSchedule", "FillAudit", "FillSource"]

RECOVERY_SOURCES = ("snapshot", "resync", "audit")
# Drift audits in a row at the shortest gap before the gap starts doubling (see AuditSchedule).
QUICK_DRIFT_AUDITS = 3
PERIODIC = "periodic"
DRIFT = "drift"


class FillSource(Protocol):
    """The part of the order client the audit reads: one page of the account's fills, of at
    most ``fills_page`` fills (the port's ``VenueClient`` offers it)."""

    async def fills_since(self, time_ms: int) -> list[Fill]: ...

    @property
    def fills_page(self) -> int: ...


class AuditSchedule:
    """When the next audit is due (pure; times on the monotonic clock).

    Every ``every_s`` after the last one; after a drift is seen, ``drift_gap_s`` after the last
    one at the earliest. While a drift lasts and its audits find nothing, the first
    ``QUICK_DRIFT_AUDITS`` keep that gap (a lost fill must be back before the liquidation
    detector's window and the drift grace run out, and the account reading that showed the
    drift may have raced a fill still on its way), then the gap doubles up to ``every_s``; it
    is back to ``drift_gap_s`` once an audit finds a fill or the positions are seen to agree.
    """

    def __init__(self, every_s: float, drift_gap_s: float, now: float) -> None:
        self.every_s = every_s
        self.drift_gap_s = drift_gap_s
        self.last_at = now
        self.fruitless = 0  # drift audits in a row that found nothing while the drift lasted
        self.drift_pending = False

    @property
    def gap_s(self) -> float:
        """The least time from one audit to a drift's."""
        doublings = max(self.fruitless - QUICK_DRIFT_AUDITS + 1, 0)
        return min(self.drift_gap_s * 2.0**doublings, self.every_s)

    def compared(self, drifting: bool) -> None:
        """Local positions were compared with the venue's: they drift, or they agree (which
        ends a drift: the next one is audited soon again)."""
        if drifting:
            self.drift_pending = True
        else:
            self.fruitless = 0

    def due_at(self) -> float:
        periodic = self.last_at + self.every_s
        if not self.drift_pending:
            return periodic
        return min(periodic, self.last_at + self.gap_s)

    def trigger(self, now: float) -> str | None:
        """Why an audit is due now (None: not yet)."""
        if now < self.due_at():
            return None
        return DRIFT if self.drift_pending else PERIODIC

    def done(self, now: float, trigger: str, recovered: int) -> None:
        """An audit ran (or was tried) at ``now``."""
        self.last_at = now
        if trigger == DRIFT:
            self.drift_pending = False
            self.fruitless = 0 if recovered else min(self.fruitless + 1, 64)


class _Recovered(Collector):
    """``mm_fills_recovered_total{source}``, read from the history at each scrape."""

    def __init__(self, history: FillHistory) -> None:
        self._history = history

    def collect(self) -> Iterator[Metric]:
        family = CounterMetricFamily(
            "mm_fills_recovered",
            "Fills the live user stream missed, forwarded once found: by the stream's snapshot "
            "or resync, or by the fill audit.",
            labels=["source"],
        )
        for source in RECOVERY_SOURCES:
            family.add_metric([source], float(self._history.recovered[source]))
        yield family


class FillAudit:
    """Reads the venue's fills and forwards the ones missed (see the module docstring)."""

    def __init__(
        self,
        config: UserStreamConfig,
        history: FillHistory,
        venue: Callable[[], FillSource | None],
        send: trio.MemorySendChannel[UserStreamEvent],
        registry: CollectorRegistry,
        *,
        name: str = "fill audit",
    ) -> None:
        self.config = config
        self.history = history
        self._venue = venue
        self._send = send
        self.name = name
        self._schedule: AuditSchedule | None = None
        self._wake = trio.Event()
        self._drift_before_start: Collection[str] = ()
        self.start_ms: int | None = None  # where the next read starts (venue time)
        self.audits = Counter(
            "mm_fill_audits",
            "Fill audits (the venue's fills against those forwarded), by trigger and result.",
            ["trigger", "result"],
            registry=registry,
        )
        registry.register(_Recovered(history))

    # --- what the autonomy monitor calls ----------------------------------------------------

    def positions_compared(self, drifting: Collection[str]) -> None:
        """Local positions were compared with the venue's; ``drifting`` names the coins that
        disagree (none: they agree). A drift asks for an audit soon: a fill may be lost."""
        schedule = self._schedule
        if schedule is None:
            self._drift_before_start = drifting
            return
        schedule.compared(bool(drifting))
        if drifting:
            self._wake.set()

    # --- the child --------------------------------------------------------------------------

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        config = self.config
        schedule = AuditSchedule(config.audit_every_s, config.audit_drift_gap_s, clock.monotonic())
        self._schedule = schedule
        if self._drift_before_start:
            schedule.compared(True)
        task_status.started()
        while True:
            trigger = schedule.trigger(clock.monotonic())
            if trigger is None:
                self._wake = trio.Event()
                with trio.move_on_at(schedule.due_at()):
                    await self._wake.wait()
                continue
            recovered = await self.audit(trigger)
            schedule.done(clock.monotonic(), trigger, recovered)

    async def audit(self, trigger: str = PERIODIC) -> int:
        """One audit: read the venue's fills since the start, forward the ones missed. Returns
        how many were forwarded (0 also when it could not run or failed)."""
        venue = self._venue()
        history = self.history
        if venue is None or not history.baselined:
            return 0
        config = self.config
        behind = max(config.fill_lookback_ms, config.audit_settle_ms)
        sent_ms = clock.wall_ms()
        start = self.start_ms
        if start is None:
            start = (history.mark_ms if history.mark_ms is not None else sent_ms) - behind
        start = max(start, 0)
        try:
            fills = await fills_since(
                venue.fills_since, start, config.max_fill_pages, self.name, venue.fills_page
            )
        except (VenueError, MalformedAnswer) as error:
            self.audits.labels(trigger=trigger, result="failed").inc()
            logger.warning("{}: the venue's fills could not be read: {}", self.name, error)
            return 0
        forwarded = 0
        settled_ms = sent_ms - config.audit_settle_ms if trigger == PERIODIC else sent_ms
        for fill in missed_fills(history, fills, settled_ms):
            if not history.claim(fill):
                continue  # forwarded by the stream while this one waited
            try:
                await self._send.send(fill)
            except BaseException:
                history.release(fill)
                raise
            forwarded += 1
            history.recovered["audit"] += 1
            logger.warning(
                "{}: fill {} ({} {} {:g} at {:g}) missed by the user stream; recovered",
                self.name,
                fill.tid,
                fill.coin,
                fill.side.value,
                fill.sz,
                fill.px,
            )
        self.start_ms = max(start, sent_ms - behind)
        self.audits.labels(trigger=trigger, result="ok").inc()
        return forwarded
