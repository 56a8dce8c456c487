"""The triangle desk: signals queued or dropped, claimed triangles admitted by the risk limits
and the permission board, reports counted, journaled and shown, and a slot run end to end in
paper mode, its reports kept through a cancel (on the virtual clock)."""

from __future__ import annotations

import math
from collections.abc import Mapping
from decimal import Decimal
from typing import Any

import attrs
import pytest
import trio
import trio.testing
from prometheus_client import CollectorRegistry

from mm.execution.dispatch import Dispatcher
from mm.execution.permissions import Grant, Level, PermissionBoard, Source
from mm.model import OrderId, OrderReport, OrderStatus, PlaceOrder, Rejected, Resting, Side, Tif
from mm.portfolio import Portfolio
from mm.strategies.base import StrategyContext
from mm.strategies.triarb.config import TriarbConfig
from mm.strategies.triarb.desk import TriangleDesk
from mm.strategies.triarb.limits import TriangleLimits
from mm.strategies.triarb.reports import Outcome, TriangleReport, journal_row, log_line
from mm.strategies.triarb.slot import LegDone, LegEvent, PaperVenue
from tests.strategies.triarb.test_slot import (
    FEE,
    FORWARD,
    INSTRUMENTS,
    Reply,
    harness,
    scripted,
    signal,
)

NOW_MS = 1_748_282_153_719  # the wall clock of the desk and of test_slot's slots
SYMBOLS = tuple(INSTRUMENTS)
PAPER = TriarbConfig(fill_timeout_s=5.0, max_slippage_bps=10.0, signal_queue=2)


@attrs.define
class Spot:
    """The venue client's spot terms: a 0.1 % taker fee everywhere; test orders are taken,
    each after ``gate`` (when set) opens."""

    gate: trio.Event | None = None
    tested: list[PlaceOrder] = attrs.Factory(list)

    def taker_fee(self, symbol: str) -> Decimal:
        return FEE

    def funds_increment(self, symbol: str) -> Decimal:
        return INSTRUMENTS[symbol].price_increment

    async def test_order(self, order: PlaceOrder) -> Rejected | None:
        self.tested.append(order)
        if self.gate is not None:
            await self.gate.wait()
        return None


@attrs.define
class Rig:
    desk: TriangleDesk
    spot: Spot
    rows: list[dict[str, Any]]
    permissions: PermissionBoard
    portfolio: Portfolio
    registry: CollectorRegistry
    dispatcher: Dispatcher

    def metric(self, name: str, labels: Mapping[str, str] | None = None) -> float | None:
        return self.registry.get_sample_value(name, dict(labels or {}))


def rig(config: TriarbConfig = PAPER, spot: Spot | None = None, *, up: bool = True) -> Rig:
    """A desk over a fake context; ``up``: the venue client offers its spot terms."""
    spot = spot or Spot()
    rows: list[dict[str, Any]] = []
    permissions = PermissionBoard()
    portfolio = Portfolio((), INSTRUMENTS.__getitem__)
    registry = CollectorRegistry()
    context = StrategyContext(
        permissions=permissions,
        portfolio=portfolio,
        instruments=INSTRUMENTS.__getitem__,
        live_orders=lambda symbol: 0,
        registry=registry,
        spot=lambda: spot if up else None,
    )
    dispatcher = Dispatcher()
    desk = TriangleDesk(
        config, SYMBOLS, context, lambda: None, dispatcher, rows.append, wall_ms=lambda: NOW_MS
    )
    return Rig(desk, spot, rows, permissions, portfolio, registry, dispatcher)


def no_live_checks(order: PlaceOrder) -> str | None:
    raise AssertionError(f"a paper leg went to the pre-trade checks: {order}")


# --- signals -----------------------------------------------------------------------------------


async def test_signals_queue_until_the_channel_is_full_then_are_dropped_and_counted() -> None:
    r = rig()
    assert [r.desk.offer(signal(n)) for n in (1, 2, 3)] == [True, True, False]
    assert (r.desk.queued, r.desk.dropped) == (2, 1)
    assert r.metric("mm_triarb_signals_total", {"fate": "queued"}) == 2
    assert r.metric("mm_triarb_signals_total", {"fate": "dropped"}) == 1
    assert r.desk.status()["signals"] == {"queued": 2, "dropped": 1, "at_once": 0}


async def test_without_a_queue_a_signal_goes_only_to_a_waiting_slot() -> None:
    r = rig(attrs.evolve(PAPER, signal_queue=0))
    assert not r.desk.offer(signal())
    assert r.desk.dropped == 1


# --- admission ---------------------------------------------------------------------------------


async def test_a_closed_board_refuses_a_claimed_triangle_counted_by_reason() -> None:
    r = rig()
    assert r.desk._admit(signal()) is None
    r.permissions.slot(Source.KILLSWITCH).set(Grant(Level.HALTED, "kill switch"))
    assert r.desk._admit(signal()) == "permission board"
    assert r.desk._admit(signal()) == "permission board"
    assert r.desk.refused == {"permission board": 2}
    assert r.metric("mm_triarb_refused_total", {"reason": "permission board"}) == 2
    assert r.desk.status()["refused"] == {"permission board": 2}
    assert r.desk.limiter.started_in_window(NOW_MS) == 1  # only the one admitted


async def test_the_busy_gauge_reads_the_claims_when_scraped() -> None:
    r = rig()
    assert r.desk.claims.claim(0, FORWARD)
    assert r.metric("mm_triarb_slots_busy") == 1
    r.permissions.slot(Source.KILLSWITCH).set(Grant(Level.HALTED, "kill switch"))
    assert r.desk._admit(signal()) == "permission board"
    r.desk.claims.release(0)
    assert r.metric("mm_triarb_slots_busy") == 0  # the refused triangle's slot is free


async def test_the_inventory_limit_reads_the_portfolios_balances() -> None:
    # Leg 1 receives 0.00199 BTC: within 0.003 BTC from nothing, not from 0.002 held.
    limits = TriangleLimits(inventory={"BTC": 0.003})
    r = rig(attrs.evolve(PAPER, limits=limits))
    assert r.desk._admit(signal()) is None
    r.portfolio.balances.seed("BTC", 0.002)
    assert r.desk._admit(signal()) == "inventory limit"
    assert r.desk.refused == {"inventory limit": 1}


# --- reports -----------------------------------------------------------------------------------


async def unwound_at_a_loss() -> TriangleReport:
    """A triangle whose leg 2 was refused and leg 1 unwound: 0.2188801 USDT lost."""
    slot, _ = scripted(
        Reply(fills=(("50000", "0.00199"),)),
        Reply(error="200004 Balance insufficient!"),
        Reply(fills=(("49990", "all"),)),
    )
    report = await slot.take(signal())
    assert report is not None
    assert report.profit == Decimal("-0.2188801")
    return report


async def filled_in_paper() -> TriangleReport:
    slot, _ = harness(lambda fills: PaperVenue(INSTRUMENTS, PAPER.terms(), fills))
    report = await slot.take(signal(2))
    assert report is not None
    assert report.outcome is Outcome.FILLED
    return report


async def test_a_report_is_counted_journaled_shown_and_its_profit_recorded(
    autojump_clock: trio.testing.MockClock,
) -> None:
    r = rig()
    loss, gain = await unwound_at_a_loss(), await filled_in_paper()
    r.desk._on_report(loss)
    r.desk._on_report(gain)
    assert r.desk.outcomes == {Outcome.UNWOUND: 1, Outcome.FILLED: 1}
    assert r.metric("mm_triarb_triangles_total", {"outcome": "UNWOUND"}) == 1
    assert r.metric("mm_triarb_triangles_total", {"outcome": "FILLED"}) == 1
    assert gain.profit is not None
    profit = Decimal("-0.2188801") + gain.profit
    assert r.desk.profit == {"USDT": profit}
    assert r.metric("mm_triarb_profit", {"primary": "USDT"}) == float(profit)
    assert r.desk.limiter.daily_loss("USDT", NOW_MS) == 0  # the gain made up for the loss
    assert r.rows == [journal_row(loss), journal_row(gain)]
    assert r.metric("mm_triarb_leg_seconds_count", {"leg": "L0"}) == 2
    assert r.metric("mm_triarb_slippage_bps_count") == 2
    r.desk.claims.claim(1, FORWARD)
    status = r.desk.status()
    assert status == {
        "mode": "paper",
        "slots": 2,
        "busy": {"1": "USDT > BTC > ETH"},
        "signals": {"queued": 0, "dropped": 0, "at_once": 0},
        "outcomes": {"UNWOUND": 1, "FILLED": 1},
        "refused": {},
        "conflicts": {},
        "profit": {"USDT": str(profit)},
        "recent": [log_line(gain), log_line(loss)],  # the latest first
    }


async def test_a_loss_past_the_daily_limit_refuses_the_next_triangle(
    autojump_clock: trio.testing.MockClock,
) -> None:
    r = rig(attrs.evolve(PAPER, limits=TriangleLimits(max_daily_loss={"USDT": 0.2})))
    assert r.desk._admit(signal()) is None
    r.desk._on_report(await unwound_at_a_loss())
    assert r.desk._admit(signal()) == "daily loss limit reached"
    assert r.metric("mm_triarb_refused_total", {"reason": "daily loss limit reached"}) == 1


# --- the slots ---------------------------------------------------------------------------------


async def test_a_paper_slot_takes_a_queued_signal_and_reports_it_filled(
    autojump_clock: trio.testing.MockClock,
) -> None:
    r = rig()
    ((name, run),) = r.desk.children(no_live_checks)[:1]
    assert [n for n, _ in r.desk.children(no_live_checks)] == ["slot-0", "slot-1"]
    async with trio.open_nursery() as nursery:
        await nursery.start(run)
        assert r.desk.offer(signal())
        await trio.testing.wait_all_tasks_blocked()
        nursery.cancel_scope.cancel()
    assert name == "slot-0"
    assert r.desk.outcomes == {Outcome.FILLED: 1}
    assert [(row["outcome"], row["time_ms"]) for row in r.rows] == [("FILLED", NOW_MS)]
    # Each leg asked the venue's test order, under the slot's client order ids.
    assert [order.coin for order in r.spot.tested] == ["BTC-USDT", "ETH-BTC", "ETH-USDT"]
    assert [order.cloid.split("-", 1)[1] for order in r.spot.tested] == ["1-L0", "1-L1", "1-L2"]
    assert r.desk.profit["USDT"] > 0
    assert r.desk.claims.busy() == {}
    assert r.metric("mm_triarb_slots_busy") == 0
    assert r.metric("mm_triarb_first_leg_seconds_count") == 1
    assert r.desk.status()["conflicts"] == {}


async def test_a_report_waiting_when_the_slot_is_cancelled_is_still_recorded(
    autojump_clock: trio.testing.MockClock,
) -> None:
    # Leg 1's test order is in flight when the kill switch cancels the trading scope: the
    # slot awaits it, reports what it holds, and the report is taken on the way out.
    gate = trio.Event()
    r = rig(spot=Spot(gate))
    scope = trio.CancelScope()

    async def trading() -> None:
        with scope:
            await r.desk.run_slot(0, no_live_checks)

    async with trio.open_nursery() as nursery:
        nursery.start_soon(trading)
        await trio.testing.wait_all_tasks_blocked()
        r.desk.offer(signal())
        await trio.testing.wait_all_tasks_blocked()
        assert len(r.spot.tested) == 1
        assert r.metric("mm_triarb_slots_busy") == 1
        scope.cancel()
        await trio.sleep(1)  # the leg in flight is awaited through the cancel
        gate.set()
    assert r.desk.outcomes == {Outcome.ABORTED: 1}
    assert [row["detail"] for row in r.rows] == ["cancelled before L1: holding"]
    assert r.desk.recent[-1].held == {"BTC": Decimal("0.00199")}
    assert r.desk.claims.busy() == {}
    assert r.metric("mm_triarb_slots_busy") == 0


async def test_a_slot_cannot_run_without_the_venues_spot_terms() -> None:
    r = rig(up=False)
    with pytest.raises(RuntimeError, match="offers no spot terms"):
        await r.desk.run_slot(0, no_live_checks)


# --- order events -------------------------------------------------------------------------------


async def test_a_leg_whose_order_ends_on_the_user_stream_is_over_at_once() -> None:
    # The place answered "resting" (an IOC's rest cancelled a moment later): the cancel, heard
    # on the user stream, ends the leg for its slot with nothing filled; no fill would have.
    r = rig()
    dispatcher = r.dispatcher
    send, receive = trio.open_memory_channel[LegEvent](math.inf)
    order = PlaceOrder("ETH-USDT", Side.SELL, 2597.4, 0.0397, Tif.IOC, "c1")
    dispatcher.submit(order, NOW_MS)
    r.desk.routes.open("c1", send)
    accepted = dispatcher.on_place_ack("c1", Resting(OrderId("kucoin:c1"), "c1"), NOW_MS)
    r.desk.on_order_events(accepted)
    assert receive.statistics().current_buffer_used == 0  # resting: not over
    report = OrderReport(
        "ETH-USDT",
        Side.SELL,
        2597.4,
        0.0397,
        0.0397,
        OrderId("kucoin:c1"),
        "c1",
        NOW_MS,
        OrderStatus.CANCELED,
        NOW_MS,
        "done",
    )
    r.desk.on_order_events(dispatcher.on_order_report(report, NOW_MS))
    assert receive.receive_nowait() == LegDone("c1", Decimal(0))
