"""The order auditor: a task that keeps the venue's open orders and our registry in agreement.

It runs inside the execution child (`VenueService.run_execution`), and audits only while
the user stream is in sync. Every ``every_s`` seconds it reads the venue's open orders (one
``frontendOpenOrders`` through the client, which charges the rate limiter), asks
`mm.execution.audit.audit` what disagrees, and acts. A resync hands over its own snapshot of the
venue's open orders (`OrderAuditor.resynced`): the auditor audits with it as soon as the stream
is back in sync (waiting at most ``grace_s`` for that), in place of the next read, and the period
starts again from there. What it does:

- **orphans** (venue orders no local order explains, past the grace period): canceled by oid in
  one batch when ``orphans = "cancel"``; with ``"warn"`` left alone and warned about once each,
  and so is every orphan the link's ``leave`` picks (another client's order, with
  ``venue.cancel_foreign_orders = false``).
  Those still at the venue are listed in `OrderAuditor.status` (``foreign_orders``) and counted
  in ``mm_orders_foreign``;
- **ghosts** (acknowledged by the venue and not ended here, absent at the venue): their
  orderStatus is asked and applied (`Dispatcher.resolve_absent`); a working order the venue does
  not know either ends EXPIRED;
- **stuck** orders (pending or UNKNOWN past ``stuck_after_s`` with no caller awaiting them): a
  pending one is timed out (UNKNOWN), then resolved from orderStatus by cloid, and by oid when
  the cloid's answer left it UNKNOWN.

Every action is journaled (``orphan_order``, ``ghost_order``, ``stuck_order``), logged at
WARNING and counted (``mm_orders_orphaned_total{action}``, ``mm_orders_ghost_resolved_total``,
``mm_orders_stuck_resolved_total``, by the state reached). The lifecycle events the
resolutions produce go to ``emit``, like every other.

How it fails: a venue error on a read or a cancel is logged and counted
(``mm_order_audits_total{result="failed"}``) and changes nothing here (an order whose fate is
unknown stays UNKNOWN); the next audit tries again. No audit runs while the stream is out of
sync or the client is not up (``result="skipped"``), and a snapshot read while sync was lost is
thrown away. Anything else is a bug and crashes the task, and so the execution child, which its
supervisor restarts.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any, Protocol

import attrs
import trio
from loguru import logger
from prometheus_client import CollectorRegistry, Counter, Gauge

from mm import clock
from mm.bounded import BoundedSet
from mm.execution.audit import AuditConfig, Findings, Snapshot, audit
from mm.execution.dispatch import Dispatcher, DispatchOutput
from mm.execution.lifecycle import OrderState
from mm.journal import entry_data
from mm.model import CancelOrder, CancelResult, OpenOrder, OrderId, OrderReport, OrderStatus
from mm.venues.base import MalformedAnswer, VenueError

Record = Callable[[str, dict[str, Any]], Awaitable[None]]
Emit = Callable[[Sequence[DispatchOutput]], None]
_FAILURES = (VenueError, MalformedAnswer)
# Where the venue's status ends an order, as the ghost metric labels it.
_ENDS: Mapping[OrderStatus, str] = {
    OrderStatus.FILLED: "filled",
    OrderStatus.CANCELED: "canceled",
    OrderStatus.CANCELED_BY_VENUE: "canceled",
    OrderStatus.REJECTED: "rejected",
}


class AuditVenue(Protocol):
    async def open_orders(self) -> list[OpenOrder]: ...

    async def order_status(
        self, *, oid: OrderId | None = None, cloid: str | None = None
    ) -> OrderReport | None: ...

    async def cancel(self, cancels: Sequence[CancelOrder]) -> list[CancelResult]: ...


class AuditMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.orphaned = Counter(
            "mm_orders_orphaned",
            "Orders at the venue that no local order explains, by what was done with them: "
            "canceled, warned (left at the venue, reported once), cancel_failed (retried).",
            ["action"],
            registry=registry,
        )
        self.ghosts = Counter(
            "mm_orders_ghost_resolved",
            "Orders working here but absent at the venue, settled from the venue's orderStatus, "
            "by the state they reached.",
            ["state"],
            registry=registry,
        )
        self.stuck = Counter(
            "mm_orders_stuck_resolved",
            "Orders pending or unknown past the deadline with no request awaited, settled from "
            "the venue's orderStatus, by the state they reached.",
            ["state"],
            registry=registry,
        )
        self.foreign = Gauge(
            "mm_orders_foreign",
            "Orders at the venue that no local order explains (another client's), as of the "
            "last audit.",
            registry=registry,
        )
        self.audits = Counter(
            "mm_order_audits",
            "Order audits by result: ok, skipped (out of sync), failed (a venue error).",
            ["result"],
            registry=registry,
        )


@attrs.frozen
class AuditLink:
    """What an audit works with, handed down by the execution child when it starts."""

    venue: Callable[[], AuditVenue | None]  # the client, None while it is not up
    dispatcher: Dispatcher
    emit: Emit
    record: Record
    in_sync: Callable[[], bool]
    # Orphans this picks are warned about, never canceled (other clients' orders, when the
    # account is shared and mm must leave them: venue.cancel_foreign_orders = false).
    leave: Callable[[OpenOrder], bool] | None = None


class OrderAuditor:
    """Finds orphans, ghosts and stuck orders and acts on them (see the module docstring).

    Built once per service (its metrics and what it reports outlive restarts of the execution
    child); `run` is started by each execution child with the collaborators of that run.
    """

    def __init__(self, config: AuditConfig, registry: CollectorRegistry) -> None:
        self.config = config
        self.metrics = AuditMetrics(registry)
        self.foreign: tuple[OpenOrder, ...] = ()
        self.counts: dict[str, int] = dict.fromkeys(
            ("audits", "orphans_canceled", "orphans_warned", "ghosts_resolved", "stuck_resolved"),
            0,
        )
        self.last_audit_ms: int | None = None
        self.last_result = "not run yet"
        self._handed: Snapshot | None = None
        self._wake = trio.Event()
        self._absent: Mapping[str, int] = {}
        self._warned = BoundedSet(10_000)

    @property
    def grace_ms(self) -> int:
        return round(self.config.grace_s * 1000)

    @property
    def stuck_after_ms(self) -> int:
        return round(self.config.stuck_after_s * 1000)

    def resynced(self, open_orders: Sequence[OpenOrder], asked_ms: int) -> None:
        """A resync's snapshot of the venue's open orders: audited next, once in sync."""
        self._handed = Snapshot(tuple(open_orders), asked_ms)
        self._wake.set()

    def status(self) -> dict[str, Any]:
        """For ``mm status``: the policy, the last audit and the foreign orders at the venue."""
        now = clock.wall_ms()
        return {
            "orphans": self.config.orphans,
            "every_s": self.config.every_s,
            "last_audit_age_s": (
                None if self.last_audit_ms is None else (now - self.last_audit_ms) / 1000
            ),
            "last_result": self.last_result,
            "foreign_orders": [
                {
                    "coin": o.coin,
                    "side": o.side.name.lower(),
                    "px": o.px,
                    "sz": o.sz,
                    "oid": o.oid,
                    "cloid": o.cloid,
                    "age_s": (now - o.time_ms) / 1000,
                }
                for o in self.foreign
            ],
            **self.counts,
        }

    async def run(
        self, link: AuditLink, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED
    ) -> None:
        task_status.started()
        while True:
            with trio.move_on_after(self.config.every_s):
                await self._wake.wait()
            self._wake = trio.Event()
            if self._handed is not None:
                # The resync that handed it opens the sync gate right after: wait for that.
                with trio.move_on_after(self.config.grace_s):
                    while not link.in_sync():  # noqa: ASYNC110 - the gate is the stream's
                        await trio.sleep(0.05)
            await self.audit_once(link)

    async def audit_once(self, link: AuditLink) -> Findings | None:
        """One audit: read (or take) the venue's orders, decide, act. None when skipped."""
        venue = link.venue()
        snapshot, self._handed = self._handed, None
        if venue is None or not link.in_sync():
            self._result("skipped", "not in sync" if venue is not None else "client not up")
            return None
        failure = None
        if snapshot is None:
            asked = clock.wall_ms()
            try:
                orders = await venue.open_orders()
            except _FAILURES as error:
                failure = f"reading open orders failed: {error}"
            else:
                if link.in_sync():  # else the registry may lack reports: judge nothing by it
                    snapshot = Snapshot(tuple(orders), asked)
        dispatcher = link.dispatcher
        findings = audit(
            dispatcher.registry,
            snapshot,
            clock.wall_ms(),
            grace_ms=self.grace_ms,
            stuck_after_ms=self.stuck_after_ms,
            awaited=dispatcher.awaited(),
            absent_since=self._absent,
        )
        self._absent = findings.absent_since
        if snapshot is not None:
            failure = await self._orphans(venue, link, findings.orphans) or failure
        for cloid in findings.ghosts:
            failure = await self._ghost(venue, link, cloid) or failure
        for cloid in findings.stuck:
            failure = await self._stuck(venue, link, cloid) or failure
        self.counts["audits"] += 1
        self.last_audit_ms = clock.wall_ms()
        if failure is None:
            self._result("ok")
        else:
            logger.warning("order audit: {}", failure)
            self._result("failed", failure)
        return findings

    # --- orphans ----------------------------------------------------------------------------------

    async def _orphans(
        self, venue: AuditVenue, link: AuditLink, orphans: Sequence[OpenOrder]
    ) -> str | None:
        failure = None
        leave = link.leave
        doomed = [
            o
            for o in orphans
            if self.config.orphans == "cancel" and (leave is None or not leave(o))
        ]
        spared = [o for o in orphans if o not in doomed]
        remaining = list(spared)
        if doomed:
            try:
                results = await venue.cancel([CancelOrder(o.coin, oid=o.oid) for o in doomed])
            except _FAILURES as error:
                failure = f"canceling {len(doomed)} orphan(s) failed: {error}"
                remaining += doomed
                for orphan in doomed:
                    await self._orphan(link, orphan, "cancel_failed", str(error))
            else:
                for orphan, result in zip(doomed, results, strict=True):
                    if result is None:
                        self.counts["orphans_canceled"] += 1
                        await self._orphan(link, orphan, "canceled")
                    else:
                        remaining.append(orphan)
                        await self._orphan(link, orphan, "cancel_failed", result.reason)
        for orphan in spared:
            if not self._warned.seen(orphan.oid):
                self.counts["orphans_warned"] += 1
                await self._orphan(link, orphan, "warned")
        self.foreign = tuple(remaining)
        self.metrics.foreign.set(len(remaining))
        return failure

    async def _orphan(
        self, link: AuditLink, orphan: OpenOrder, action: str, reason: str | None = None
    ) -> None:
        self.metrics.orphaned.labels(action=action).inc()
        logger.warning(
            "orphan order at the venue ({}): {} {} {} @ {} oid {} cloid {}{}",
            action,
            orphan.coin,
            orphan.side.name.lower(),
            orphan.sz,
            orphan.px,
            orphan.oid,
            orphan.cloid,
            f": {reason}" if reason else "",
        )
        data = entry_data(orphan)
        await link.record("orphan_order", {**data, "action": action, "reason": reason})

    # --- ghosts and stuck orders ------------------------------------------------------------------

    async def _ghost(self, venue: AuditVenue, link: AuditLink, cloid: str) -> str | None:
        order = link.dispatcher.order(cloid)
        if order is None:
            return None
        before = order.state
        try:
            report = await venue.order_status(cloid=cloid)
        except _FAILURES as error:
            return f"orderStatus of ghost {cloid} failed: {error}"
        link.emit(link.dispatcher.resolve_absent(cloid, report, clock.wall_ms()))
        after = order.state
        verdict = _ENDS.get(report.status) if report is not None else None
        if after is not before:
            reached = after.value
        elif verdict is not None:
            # Applied once its request in flight is answered (a held cancel of a modify's
            # old leg, say): it ends where the venue says.
            reached = verdict
        else:
            reached = None  # the venue says it is live after all
        if reached is not None:
            self.counts["ghosts_resolved"] += 1
            self.metrics.ghosts.labels(state=reached).inc()
        await self._settled(link, "ghost_order", cloid, before, after, report)
        return None

    async def _stuck(self, venue: AuditVenue, link: AuditLink, cloid: str) -> str | None:
        dispatcher = link.dispatcher
        order = dispatcher.order(cloid)
        if order is None:
            return None
        before = order.state
        link.emit(dispatcher.on_timeout(cloid, clock.wall_ms()))  # pending -> UNKNOWN
        report = None
        oid = order.oid
        for by_oid in (False, True):
            if order.state is not OrderState.UNKNOWN or (by_oid and oid is None):
                break
            try:
                if by_oid:
                    report = await venue.order_status(oid=oid)
                else:
                    report = await venue.order_status(cloid=cloid)
            except _FAILURES as error:  # the order stays UNKNOWN: asked again next audit
                return f"orderStatus of stuck order {cloid} failed: {error}"
            if report is None and by_oid:
                break  # by oid the venue's silence says no more than by cloid
            link.emit(dispatcher.resolve_unknown(cloid, report, clock.wall_ms()))
        after = order.state
        if after is not OrderState.UNKNOWN:
            self.counts["stuck_resolved"] += 1
            self.metrics.stuck.labels(state=after.value).inc()
        await self._settled(link, "stuck_order", cloid, before, after, report)
        return None

    async def _settled(
        self,
        link: AuditLink,
        kind: str,
        cloid: str,
        before: OrderState,
        after: OrderState,
        report: OrderReport | None,
    ) -> None:
        logger.warning(
            "{}: {} {} -> {} (venue: {})",
            kind.replace("_", " "),
            cloid,
            before.value,
            after.value,
            report.venue_status if report is not None else "unknown",
        )
        await link.record(
            kind,
            {
                "cloid": cloid,
                "before": before.value,
                "after": after.value,
                "venue_status": report.venue_status if report is not None else None,
            },
        )

    def _result(self, result: str, detail: str = "") -> None:
        self.metrics.audits.labels(result=result).inc()
        self.last_result = f"{result}: {detail}" if detail else result
