"""The order auditor's shell against an in-memory venue, on virtual time: what it does with
orphans (cancel or warn), ghosts and stuck orders, what it journals, counts and reports, and how
it behaves when the venue fails or the stream is out of sync."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import attrs
import pytest
import trio
from prometheus_client import CollectorRegistry

from mm import clock
from mm.execution.audit import AuditConfig
from mm.execution.auditor import AuditLink, OrderAuditor
from mm.execution.deadman import DeadmanConfig, DeadmanKeeper
from mm.execution.dispatch import Dispatcher, DispatchOutput
from mm.execution.lifecycle import OrderState
from mm.feeds.user import Resynced
from mm.model import (
    AccountState,
    CancelOrder,
    CancelResult,
    ModifyOrder,
    OpenOrder,
    OrderId,
    OrderReport,
    PlaceOrder,
    Rejected,
    Resting,
    Side,
    Tif,
)
from mm.venues.base import VenueError
from mm.venues.hyperliquid.status import order_status
from mm.venues.routing import UserEventRouter
from tests.ids import hl_oid

S = OrderState
CONFIG = AuditConfig()  # the shipped values


def cloid(n: int) -> str:
    return f"0x{n:032x}"


class FakeVenue:
    """Open orders, orderStatus answers and cancels, in memory; ``down`` fails every call."""

    def __init__(self) -> None:
        self.orders: list[OpenOrder] = []
        self.statuses: dict[str, OrderReport] = {}  # by cloid or by oid
        self.cancels: list[CancelOrder] = []
        self.asked: list[str] = []
        self.reads = 0
        self.down = False

    async def open_orders(self) -> list[OpenOrder]:
        self._check()
        self.reads += 1
        return list(self.orders)

    async def order_status(
        self, *, oid: OrderId | None = None, cloid: str | None = None
    ) -> OrderReport | None:
        self._check()
        target = oid if oid is not None else cloid
        assert target is not None
        self.asked.append(target)
        return self.statuses.get(target)

    async def cancel(self, cancels: Sequence[CancelOrder]) -> list[CancelResult]:
        self._check()
        self.cancels.extend(cancels)
        results: list[CancelResult] = []
        for cancel in cancels:
            listed = [o for o in self.orders if o.oid == cancel.oid]
            self.orders = [o for o in self.orders if o.oid != cancel.oid]
            results.append(None if listed else Rejected("Order was never placed"))
        return results

    def _check(self) -> None:
        if self.down:
            raise VenueError("venue unavailable")


class NoSwitch:
    """The dead-man's switch of a router that never arms it here (a resync does not touch it)."""

    async def schedule_cancel(self, at_ms: int | None) -> None:
        raise AssertionError("the switch is not armed in these tests")

    async def traded_volume(self) -> float:
        raise AssertionError("the switch is not armed in these tests")


@attrs.define
class Rig:
    auditor: OrderAuditor
    venue: FakeVenue
    dispatcher: Dispatcher
    link: AuditLink
    registry: CollectorRegistry
    journal: list[tuple[str, dict[str, Any]]]
    events: list[DispatchOutput]
    synced: list[bool]

    def sample(self, name: str, **labels: str) -> float:
        return self.registry.get_sample_value(name, labels) or 0.0

    def journaled(self, kind: str) -> list[dict[str, Any]]:
        return [data for k, data in self.journal if k == kind]


def rig(config: AuditConfig = CONFIG) -> Rig:
    registry = CollectorRegistry()
    venue = FakeVenue()
    dispatcher = Dispatcher()
    journal: list[tuple[str, dict[str, Any]]] = []
    events: list[DispatchOutput] = []
    synced = [True]

    async def record(kind: str, data: dict[str, Any]) -> None:
        journal.append((kind, data))

    link = AuditLink(lambda: venue, dispatcher, events.extend, record, lambda: synced[0])
    auditor = OrderAuditor(config, registry)
    return Rig(auditor, venue, dispatcher, link, registry, journal, events, synced)


def foreign(oid: int, age_s: float) -> OpenOrder:
    placed = clock.wall_ms() - round(age_s * 1000)
    return OpenOrder("BTC", Side.BUY, 90_000.0, 0.001, 0.001, hl_oid(oid), "0xforeign", placed)


def place(r: Rig, n: int, *, ack: bool = True) -> None:
    order = PlaceOrder("BTC", Side.BUY, 100.0, 1.0, Tif.ALO, cloid(n))
    r.dispatcher.submit(order, clock.wall_ms())
    if ack:
        r.dispatcher.on_place_ack(cloid(n), Resting(hl_oid(10 + n), cloid(n)), clock.wall_ms())


def listed(n: int) -> OpenOrder:
    return OpenOrder("BTC", Side.BUY, 100.0, 1.0, 1.0, hl_oid(10 + n), cloid(n), clock.wall_ms())


def report(n: int, status: str) -> OrderReport:
    now = clock.wall_ms()
    word = status
    return OrderReport(
        "BTC",
        Side.BUY,
        100.0,
        1.0,
        1.0,
        hl_oid(10 + n),
        cloid(n),
        now,
        order_status(word),
        now,
        word,
    )


def state(r: Rig, n: int) -> OrderState:
    order = r.dispatcher.order(cloid(n))
    assert order is not None
    return order.state


# --- orphans -------------------------------------------------------------------------------------


async def test_an_orphan_is_canceled_journaled_and_counted_once_past_the_grace(
    autojump_clock: trio.abc.Clock,
) -> None:
    r = rig()
    place(r, 1)
    r.venue.orders = [listed(1), foreign(99, age_s=CONFIG.grace_s - 1)]
    await r.auditor.audit_once(r.link)
    assert r.venue.cancels == []  # too young: it may be an order on its way
    await trio.sleep(1.0)
    await r.auditor.audit_once(r.link)
    assert r.venue.cancels == [CancelOrder("BTC", oid=hl_oid(99))]  # ours (oid 11) untouched
    assert [o.oid for o in r.venue.orders] == [hl_oid(11)]
    assert r.sample("mm_orders_orphaned_total", action="canceled") == 1
    (entry,) = r.journaled("orphan_order")
    assert (entry["oid"], entry["action"], entry["side"]) == (hl_oid(99), "canceled", "buy")
    status = r.auditor.status()
    assert (status["orphans_canceled"], status["foreign_orders"]) == (1, [])
    assert r.sample("mm_orders_foreign") == 0


async def test_with_warn_an_orphan_stays_is_reported_and_warned_about_once(
    autojump_clock: trio.abc.Clock,
) -> None:
    r = rig(attrs.evolve(CONFIG, orphans="warn"))
    r.venue.orders = [foreign(99, age_s=60)]
    await r.auditor.audit_once(r.link)
    await r.auditor.audit_once(r.link)
    assert r.venue.cancels == []
    assert r.sample("mm_orders_orphaned_total", action="warned") == 1
    assert [e["action"] for e in r.journaled("orphan_order")] == ["warned"]
    assert r.sample("mm_orders_foreign") == 1
    (shown,) = r.auditor.status()["foreign_orders"]
    assert (shown["oid"], shown["coin"], shown["side"], shown["cloid"]) == (
        hl_oid(99),
        "BTC",
        "buy",
        "0xforeign",
    )
    assert shown["age_s"] == pytest.approx(60, abs=1)
    r.venue.orders = []  # its owner canceled it
    await r.auditor.audit_once(r.link)
    assert r.auditor.status()["foreign_orders"] == []
    assert r.sample("mm_orders_foreign") == 0


async def test_a_refused_orphan_cancel_is_journaled_and_retried(
    autojump_clock: trio.abc.Clock,
) -> None:
    r = rig()
    orphan = foreign(99, age_s=60)
    r.venue.orders = [orphan]
    r.venue.down = True
    await r.auditor.audit_once(r.link)  # the read fails: nothing is judged
    assert r.auditor.last_result.startswith("failed: reading open orders failed")
    assert r.sample("mm_order_audits_total", result="failed") == 1
    r.venue.down = False
    r.auditor.resynced([orphan, foreign(98, age_s=60)], clock.wall_ms())  # 98 is gone already
    await r.auditor.audit_once(r.link)
    assert r.venue.reads == 0  # the resync's snapshot stood in for a read
    actions = {e["oid"]: e["action"] for e in r.journaled("orphan_order")}
    assert actions == {hl_oid(99): "canceled", hl_oid(98): "cancel_failed"}
    assert r.sample("mm_orders_orphaned_total", action="cancel_failed") == 1
    assert [o["oid"] for o in r.auditor.status()["foreign_orders"]] == [hl_oid(98)]


# --- ghosts --------------------------------------------------------------------------------------


async def test_a_ghost_is_settled_from_the_venue_after_two_misses(
    autojump_clock: trio.abc.Clock,
) -> None:
    r = rig()
    place(r, 1)
    place(r, 2)
    r.venue.orders = [listed(2)]  # 1 is gone: the venue canceled it and its report was lost
    r.venue.statuses[cloid(1)] = report(1, "canceled")
    await trio.sleep(1.0)
    await r.auditor.audit_once(r.link)
    assert state(r, 1) is S.OPEN  # one miss proves little
    assert r.venue.asked == []
    await trio.sleep(CONFIG.grace_s)
    await r.auditor.audit_once(r.link)
    assert state(r, 1) is S.CANCELED
    assert state(r, 2) is S.OPEN
    assert r.venue.asked == [cloid(1)]
    assert r.sample("mm_orders_ghost_resolved_total", state="canceled") == 1
    assert [type(e).__name__ for e in r.events] == ["OrderCanceled"]
    (entry,) = r.journaled("ghost_order")
    assert entry == {
        "cloid": cloid(1),
        "before": "open",
        "after": "canceled",
        "venue_status": "canceled",
    }


async def test_a_ghost_with_a_modify_in_flight_ends_when_the_modify_is_answered(
    autojump_clock: trio.abc.Clock,
) -> None:
    r = rig()
    place(r, 1)
    r.venue.statuses[cloid(1)] = report(1, "canceled")
    await trio.sleep(1.0)
    await r.auditor.audit_once(r.link)
    await trio.sleep(CONFIG.grace_s)
    modify = PlaceOrder("BTC", Side.BUY, 101.0, 1.0, Tif.ALO, cloid(1))
    r.dispatcher.request_modify(ModifyOrder(modify), clock.wall_ms())  # being poked
    await r.auditor.audit_once(r.link)
    assert state(r, 1) is S.PENDING_MODIFY  # the venue's cancel waits for the modify's answer
    assert r.sample("mm_orders_ghost_resolved_total", state="canceled") == 1
    events = r.dispatcher.on_modify_ack(
        cloid(1), Rejected("Cannot modify canceled or filled order"), clock.wall_ms()
    )
    assert [type(e).__name__ for e in events] == ["OrderModifyRejected", "OrderCanceled"]
    assert state(r, 1) is S.CANCELED


async def test_a_ghost_the_venue_does_not_know_expires(autojump_clock: trio.abc.Clock) -> None:
    r = rig()
    place(r, 1)
    await trio.sleep(1.0)
    await r.auditor.audit_once(r.link)
    await trio.sleep(CONFIG.grace_s)
    await r.auditor.audit_once(r.link)
    assert state(r, 1) is S.EXPIRED
    assert r.auditor.status()["ghosts_resolved"] == 1


# --- stuck orders --------------------------------------------------------------------------------


async def test_a_pending_order_nobody_awaits_is_settled_after_the_deadline(
    autojump_clock: trio.abc.Clock,
) -> None:
    r = rig()
    place(r, 1, ack=False)  # its caller went away before the answer came
    place(r, 2, ack=False)
    r.venue.orders = [listed(1)]
    r.venue.statuses[cloid(1)] = report(1, "open")
    with r.dispatcher.awaiting([cloid(2)]):  # 2's caller is still waiting (rate limiter, say)
        await trio.sleep(CONFIG.stuck_after_s - 1)
        await r.auditor.audit_once(r.link)
        assert r.venue.asked == []
        await trio.sleep(1)
        await r.auditor.audit_once(r.link)
        assert state(r, 1) is S.OPEN  # the venue has it: accepted, not placed again
        assert state(r, 2) is S.PENDING_NEW
    assert r.venue.asked == [cloid(1)]
    assert [type(e).__name__ for e in r.events] == ["OrderStateUnknown", "OrderAccepted"]
    assert r.sample("mm_orders_stuck_resolved_total", state="open") == 1
    (entry,) = r.journaled("stuck_order")
    assert (entry["before"], entry["after"]) == ("pending_new", "open")


async def test_a_stuck_order_stays_unknown_while_the_venue_cannot_say(
    autojump_clock: trio.abc.Clock,
) -> None:
    r = rig()
    place(r, 1, ack=False)
    r.venue.down = True
    await trio.sleep(CONFIG.stuck_after_s)
    await r.auditor.audit_once(r.link)
    assert state(r, 1) is S.UNKNOWN  # never assumed gone nor never placed
    assert r.journaled("stuck_order") == []
    r.venue.down = False
    await r.auditor.audit_once(r.link)
    assert state(r, 1) is S.UNKNOWN  # nothing heard for less than the deadline: not asked
    await trio.sleep(CONFIG.stuck_after_s)
    await r.auditor.audit_once(r.link)
    assert state(r, 1) is S.REJECTED  # the venue does not know it: it was never placed
    assert r.sample("mm_orders_stuck_resolved_total", state="rejected") == 1


# --- when it audits ------------------------------------------------------------------------------


async def test_nothing_is_judged_out_of_sync_or_without_a_client(
    autojump_clock: trio.abc.Clock,
) -> None:
    r = rig()
    r.venue.orders = [foreign(99, age_s=60)]
    r.synced[0] = False
    assert await r.auditor.audit_once(r.link) is None
    assert r.auditor.last_result == "skipped: not in sync"
    no_client = attrs.evolve(r.link, venue=lambda: None)
    r.synced[0] = True
    assert await r.auditor.audit_once(no_client) is None
    assert (r.venue.reads, r.venue.cancels) == (0, [])
    assert r.sample("mm_order_audits_total", result="skipped") == 2


async def test_a_snapshot_read_while_sync_was_lost_is_thrown_away(
    autojump_clock: trio.abc.Clock,
) -> None:
    r = rig()
    r.venue.orders = [foreign(99, age_s=60)]
    read = r.venue.open_orders

    async def losing_sync() -> list[OpenOrder]:
        r.synced[0] = False
        return await read()

    r.venue.open_orders = losing_sync  # type: ignore[method-assign]
    findings = await r.auditor.audit_once(r.link)
    assert findings is not None
    assert findings.orphans == ()
    assert r.venue.cancels == []


async def test_run_audits_every_period(autojump_clock: trio.abc.Clock) -> None:
    r = rig()
    async with trio.open_nursery() as nursery:
        await nursery.start(r.auditor.run, r.link)
        await trio.sleep(CONFIG.every_s * 3 + 0.5)
        nursery.cancel_scope.cancel()
    assert r.venue.reads == 3
    assert r.auditor.status()["audits"] == 3
    assert r.auditor.status()["last_result"] == "ok"


# --- the execution child's router hands it every resync's snapshot --------------------------


async def test_a_resync_snapshot_is_handed_to_the_auditor_and_judged_next(
    autojump_clock: trio.abc.Clock,
) -> None:
    r = rig()
    router = UserEventRouter(
        dispatcher=r.dispatcher,
        record=r.link.record,
        auditor=r.auditor,
        deadman=DeadmanKeeper(
            NoSwitch(), DeadmanConfig(), healthy=lambda: False, now_ms=clock.wall_ms
        ),
        emit=r.events.extend,
        on_fill=lambda fill: None,
    )
    stray = foreign(4242, age_s=60)
    r.venue.orders = [foreign(7, age_s=60)]  # what a read now would say: not what is judged
    resynced = Resynced(
        "reconnected", clock.wall_ms(), (stray,), AccountState(0, 0, 0, 0, ()), 0, 0
    )
    await router.route(resynced)
    assert ("resync", {"reason": "reconnected", "fills_recovered": 0}) in r.journal
    findings = await r.auditor.audit_once(r.link)
    assert findings is not None
    assert findings.orphans == (stray,)
    assert r.venue.reads == 0
    await r.auditor.audit_once(r.link)  # the snapshot served once; later audits read again
    assert r.venue.reads == 1


async def test_a_resync_is_audited_as_soon_as_the_stream_is_back_in_sync(
    autojump_clock: trio.abc.Clock,
) -> None:
    r = rig()
    orphan = foreign(99, age_s=60)
    r.venue.orders = [orphan]
    async with trio.open_nursery() as nursery:
        await nursery.start(r.auditor.run, r.link)
        await trio.sleep(1.0)
        r.synced[0] = False  # a resync: the gate opens only after its snapshot went out
        r.auditor.resynced([orphan], clock.wall_ms())
        await trio.sleep(1.0)
        assert r.venue.cancels == []  # out of sync: nothing judged yet
        r.synced[0] = True
        await trio.sleep(0.1)
        assert r.venue.cancels == [CancelOrder("BTC", oid=hl_oid(99))]
        assert r.venue.reads == 0  # judged on the resync's snapshot
        await trio.sleep(CONFIG.every_s - 0.5)
        assert r.venue.reads == 0  # the period started again from that audit
        await trio.sleep(1.0)
        assert r.venue.reads == 1
        r.synced[0] = False
        r.auditor.resynced([orphan], clock.wall_ms())
        await trio.sleep(CONFIG.grace_s + 0.1)  # never back in sync: skipped, snapshot dropped
        assert r.auditor.last_result == "skipped: not in sync"
        r.synced[0] = True
        await trio.sleep(CONFIG.every_s)
        assert r.venue.reads == 2
        nursery.cancel_scope.cancel()
