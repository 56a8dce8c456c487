"""The executor slots' ways to the venue: fills and order ends routed to the slot by client
order id (``LegRoutes``, over a real dispatcher), live legs through a real order router over a
scripted venue (``RouterVenue``), paper legs behind the venue's test order
(``TestedPaperVenue``), and the order a leg is sent or tested as."""

from __future__ import annotations

import itertools
import math
import random
from collections.abc import Callable, Sequence
from decimal import Decimal

import attrs
import trio
import trio.testing
from hypothesis import given, settings
from hypothesis import strategies as st

from mm.execution.dispatch import Dispatcher, DispatchOutput
from mm.execution.lifecycle import OrderState
from mm.execution.orders import OrderRouter
from mm.model import (
    CancelOrder,
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
    Tif,
    TradeId,
)
from mm.strategies.triarb.cascade import LegOrder
from mm.strategies.triarb.claims import Claims
from mm.strategies.triarb.reports import Outcome, TriangleReport
from mm.strategies.triarb.signals import Signal
from mm.strategies.triarb.slot import ExecutorSlot, LegAck, LegDone, LegEvent
from mm.strategies.triarb.venue import LegRoutes, RouterVenue, leg_place_order
from mm.strategies.triarb.venue import TestedPaperVenue as PaperLegs  # (no test class)
from mm.venues.base import VenueError
from tests.strategies.triarb.test_slot import BOOKS, CONFIG, INSTRUMENTS, NOW_MS, TERMS, signal

ETH = INSTRUMENTS["ETH-USDT"]


def fill(cloid: str, sz: str, n: int, *, symbol: str = "ETH-USDT", side: Side = Side.SELL) -> Fill:
    """A taker fill of the order ``cloid`` as the adapter reports it (venue order id
    ``kucoin:<cloid>``)."""
    return Fill(
        coin=symbol,
        side=side,
        px=2600.0,
        sz=float(sz),
        time_ms=NOW_MS,
        oid=OrderId(f"kucoin:{cloid}"),
        tid=TradeId(f"kucoin:{cloid}/{n}"),
        cloid=cloid,
        fee=0.0,
        fee_token="USDT",
        crossed=True,
        start_position=0.0,
        direction="Sell",
        closed_pnl=0.0,
        hash="",
    )


def ioc(cloid: str, sz: str = "0.0397") -> PlaceOrder:
    return PlaceOrder("ETH-USDT", Side.SELL, 2597.4, float(sz), Tif.IOC, cloid)


def drain(receive: trio.MemoryReceiveChannel[LegEvent]) -> list[LegEvent]:
    events: list[LegEvent] = []
    while True:
        try:
            events.append(receive.receive_nowait())
        except trio.WouldBlock:
            return events


def routed(
    capacity: int = 16,
) -> tuple[
    Dispatcher, LegRoutes, trio.MemorySendChannel[LegEvent], trio.MemoryReceiveChannel[LegEvent]
]:
    dispatcher = Dispatcher()
    send, receive = trio.open_memory_channel[LegEvent](math.inf)
    return dispatcher, LegRoutes(dispatcher, capacity), send, receive


def through(dispatcher: Dispatcher, routes: LegRoutes, event: Fill) -> None:
    """A fill as the service hands it on: the dispatcher applies it, then the desk hears it."""
    dispatcher.on_fill(event, NOW_MS)
    routes.on_fill(event)


# --- LegRoutes ---------------------------------------------------------------------------------


async def test_a_routed_orders_fills_then_one_end_with_its_size_once_it_is_filled() -> None:
    dispatcher, routes, send, receive = routed()
    dispatcher.submit(ioc("c1"), NOW_MS)
    routes.open("c1", send)
    first, second = fill("c1", "0.02", 0), fill("c1", "0.0197", 1)
    through(dispatcher, routes, first)
    assert drain(receive) == [first]  # partly filled: not over yet
    through(dispatcher, routes, second)
    assert drain(receive) == [second, LegDone("c1", Decimal("0.0397"))]
    routes.settle("c1")  # asked again: the end went once
    assert drain(receive) == []
    assert routes.routed == 2


async def test_an_ioc_answered_in_part_ends_with_the_answers_total_before_its_fills() -> None:
    dispatcher, routes, send, receive = routed()
    dispatcher.submit(ioc("c1"), NOW_MS)
    routes.open("c1", send)
    dispatcher.on_place_ack("c1", Filled(OrderId("kucoin:c1"), "c1", 0.02, 2600.0), NOW_MS)
    order = dispatcher.registry.get("c1")
    assert order is not None
    assert order.state is OrderState.CANCELED  # the rest canceled
    routes.settle("c1")
    assert drain(receive) == [LegDone("c1", Decimal("0.02"))]
    late = fill("c1", "0.02", 0)
    through(dispatcher, routes, late)
    assert drain(receive) == [late]  # the fill the slot waits for; no second end


async def test_a_fill_from_the_history_without_a_client_id_reaches_its_leg_by_order_id() -> None:
    """The fill audit found the leg's fill in the venue's history (no client id there) before
    the user stream's copy, which was then dropped as a duplicate: before the order's answer
    told its id, the fill is held and delivered when the answer settles the route; after, it
    goes by the id at once. (Found by a campaign: the leg timed out, then an unwind sold what
    it had already sold.)"""
    dispatcher, routes, send, receive = routed()
    dispatcher.submit(ioc("c1"), NOW_MS)
    routes.open("c1", send)
    early = attrs.evolve(fill("c1", "0.0397", 0), cloid=None)
    through(dispatcher, routes, early)
    assert drain(receive) == []  # its order's id is not known yet
    dispatcher.on_place_ack("c1", Filled(OrderId("kucoin:c1"), "c1", 0.0397, 2600.0), NOW_MS)
    routes.settle("c1")  # as RouterVenue does on the answer
    assert drain(receive) == [fill("c1", "0.0397", 0), LegDone("c1", Decimal("0.0397"))]

    dispatcher.submit(ioc("c2", "0.02"), NOW_MS)
    routes.open("c2", send)
    dispatcher.on_place_ack("c2", Resting(OrderId("kucoin:c2"), "c2"), NOW_MS)
    late = attrs.evolve(fill("c2", "0.02", 0), cloid=None)
    through(dispatcher, routes, late)
    assert drain(receive) == [fill("c2", "0.02", 0), LegDone("c2", Decimal("0.02"))]


async def test_an_order_canceled_without_an_answer_ends_with_what_filled() -> None:
    dispatcher, routes, send, receive = routed()
    dispatcher.submit(ioc("c1"), NOW_MS)
    routes.open("c1", send)
    first = fill("c1", "0.0123", 0)
    through(dispatcher, routes, first)
    report = OrderReport(
        "ETH-USDT",
        Side.SELL,
        2597.4,
        0.0274,
        0.0397,
        OrderId("kucoin:c1"),
        "c1",
        NOW_MS,
        OrderStatus.CANCELED,
        NOW_MS,
        "done",
    )
    dispatcher.on_order_report(report, NOW_MS)
    routes.settle("c1")
    assert drain(receive) == [first, LegDone("c1", Decimal("0.0123"))]


async def test_the_end_of_an_order_canceled_without_an_answer_is_its_fills_exact_sum() -> None:
    # 0.1 + 0.2 is 0.30000000000000004 in floats: the slot, summing its fills as decimals,
    # would wait for a fill that never comes, until its timeout.
    dispatcher, routes, send, receive = routed()
    dispatcher.submit(ioc("c1", "0.5"), NOW_MS)
    routes.open("c1", send)
    through(dispatcher, routes, fill("c1", "0.1", 0))
    through(dispatcher, routes, fill("c1", "0.2", 1))
    report = OrderReport(
        "ETH-USDT",
        Side.SELL,
        2597.4,
        0.2,
        0.5,
        OrderId("kucoin:c1"),
        "c1",
        NOW_MS,
        OrderStatus.CANCELED,
        NOW_MS,
        "done",
    )
    dispatcher.on_order_report(report, NOW_MS)
    routes.settle("c1")
    assert drain(receive)[-1] == LegDone("c1", Decimal("0.3"))


async def test_a_rejected_order_has_no_end_to_send() -> None:
    dispatcher, routes, send, receive = routed()
    dispatcher.submit(ioc("c1"), NOW_MS)
    routes.open("c1", send)
    dispatcher.on_place_ack("c1", Rejected("200004 Balance insufficient!"), NOW_MS)
    routes.settle("c1")
    routes.settle("unknown")  # neither routed nor tracked
    assert drain(receive) == []


async def test_fills_of_other_orders_are_not_routed() -> None:
    dispatcher, routes, send, receive = routed()
    dispatcher.submit(ioc("c1"), NOW_MS)
    routes.open("c1", send)
    through(dispatcher, routes, fill("other", "0.01", 0))
    through(dispatcher, routes, attrs.evolve(fill("c1", "0.01", 1), cloid=None))
    assert drain(receive) == []
    assert routes.routed == 0
    routes.close("c1")
    through(dispatcher, routes, fill("c1", "0.0397", 2))  # closed: no longer routed
    assert drain(receive) == []
    assert len(routes) == 0


async def test_a_closed_channel_drops_its_route() -> None:
    dispatcher, routes, send, receive = routed()
    dispatcher.submit(ioc("c1"), NOW_MS)
    routes.open("c1", send)
    await receive.aclose()  # the slot that sent it has gone
    through(dispatcher, routes, fill("c1", "0.0397", 0))
    assert len(routes) == 0
    assert routes.routed == 0


async def test_the_oldest_routes_are_evicted_past_the_capacity() -> None:
    dispatcher, routes, send, receive = routed(capacity=2)
    for cloid in ("c1", "c2", "c3"):
        dispatcher.submit(ioc(cloid), NOW_MS)
        routes.open(cloid, send)
    assert len(routes) == 2
    through(dispatcher, routes, fill("c1", "0.01", 0))
    assert drain(receive) == []
    kept = fill("c2", "0.01", 0)
    through(dispatcher, routes, kept)
    assert drain(receive) == [kept]


@settings(max_examples=150, deadline=None)
@given(
    lots=st.lists(st.integers(1, 200), min_size=1, max_size=6),
    partial=st.booleans(),
    answer_at=st.integers(0, 6),
    order=st.randoms(use_true_random=False),
)
async def test_any_interleaving_delivers_each_fill_once_and_one_end_once_the_order_is_over(
    lots: list[int], partial: bool, answer_at: int, order: random.Random
) -> None:
    """The fills in any order, the place's answer (its total) anywhere among them: every fill
    reaches the slot once, and exactly one end, with the total filled, as soon as the
    dispatcher says the order is over, never before."""
    lot = ETH.size_increment
    sizes = [n * lot for n in lots]
    total = sum(sizes, Decimal(0))
    size = total + lot if partial else total
    dispatcher, routes, send, receive = routed()
    dispatcher.submit(ioc("c1", str(size)), NOW_MS)
    routes.open("c1", send)
    fills = [fill("c1", str(sz), n) for n, sz in enumerate(sizes)]
    order.shuffle(fills)
    steps: list[Fill | None] = list(fills)
    steps.insert(min(answer_at, len(steps)), None)  # None: the place's answer
    seen: list[LegEvent] = []
    for step in steps:
        if step is None:
            answer = Filled(OrderId("kucoin:c1"), "c1", float(total), 2600.0)
            dispatcher.on_place_ack("c1", answer, NOW_MS)
            routes.settle("c1")  # as RouterVenue does once the answer is applied
        else:
            through(dispatcher, routes, step)
        tracked = dispatcher.registry.get("c1")
        assert tracked is not None
        now = drain(receive)
        seen += now
        ends = [event for event in seen if isinstance(event, LegDone)]
        assert len(ends) == (1 if tracked.is_terminal else 0)
        if step is not None:
            assert step in now
    assert [event for event in seen if isinstance(event, Fill)] == fills
    assert [event for event in seen if isinstance(event, LegDone)] == [LegDone("c1", total)]


# --- RouterVenue -------------------------------------------------------------------------------


# A scripted answer to a place: a result, the error the request raises, or the result made
# from the order sent.
Answer = PlaceResult | VenueError | Callable[[PlaceOrder], PlaceResult]


def venue_cloid(n: int) -> str:
    """The ``n``th client order id the scripted venue makes."""
    return f"mm{n:030d}"


class ScriptedOrderVenue:
    """The order router's venue: client ids of the venue's format, each place answered with the
    next scripted answer (or raising it); ``before`` is called with each order first (the
    user stream's fills may come ahead of the answer)."""

    def __init__(
        self,
        answers: Sequence[Answer],
        before: Callable[[PlaceOrder], None] = lambda order: None,
    ) -> None:
        self._answers = list(answers)
        self._before = before
        self._ids = itertools.count(1)
        self.placed: list[PlaceOrder] = []

    def new_client_id(self) -> str:
        return venue_cloid(next(self._ids))

    async def place(self, orders: Sequence[PlaceOrder]) -> list[PlaceResult]:
        await trio.lowlevel.checkpoint()
        (order,) = orders
        self.placed.append(order)
        self._before(order)
        answer = self._answers.pop(0)
        if isinstance(answer, VenueError):
            raise answer
        return [answer(order) if callable(answer) else answer]

    async def cancel(self, cancels: Sequence[CancelOrder]) -> list[CancelResult]:
        raise AssertionError("a leg is never canceled")

    async def modify(self, modifies: Sequence[ModifyOrder]) -> list[PlaceResult]:
        raise AssertionError("a leg is never modified")

    async def order_status(
        self, *, oid: OrderId | None = None, cloid: str | None = None
    ) -> OrderReport | None:
        return None


@attrs.define
class Live:
    venue: ScriptedOrderVenue
    dispatcher: Dispatcher
    routes: LegRoutes
    leg_venue: RouterVenue
    fills: trio.MemoryReceiveChannel[LegEvent]
    fills_in: trio.MemorySendChannel[LegEvent]
    events: list[DispatchOutput]
    allowed: list[PlaceOrder]


def live(
    *answers: Answer,
    refuse: str | None = None,
    fills_first: Callable[[PlaceOrder], Sequence[Fill]] | None = None,
) -> Live:
    """A RouterVenue over a real router and dispatcher; ``refuse``: the pre-trade checks'
    answer; ``fills_first``: fills the user stream delivers before the place's answer."""
    dispatcher = Dispatcher()
    routes = LegRoutes(dispatcher)
    events: list[DispatchOutput] = []
    allowed: list[PlaceOrder] = []

    def before(order: PlaceOrder) -> None:
        for early in fills_first(order) if fills_first is not None else ():
            through(dispatcher, routes, early)

    venue = ScriptedOrderVenue(answers, before)
    router = OrderRouter(dispatcher, venue, events.extend, lambda: NOW_MS)
    send, receive = trio.open_memory_channel[LegEvent](math.inf)

    def allow(order: PlaceOrder) -> str | None:
        allowed.append(order)
        return refuse

    leg_venue = RouterVenue(lambda: router, dispatcher, routes, send, INSTRUMENTS, allow)
    return Live(venue, dispatcher, routes, leg_venue, receive, send, events, allowed)


SELL = LegOrder(
    "ETH-USDT", Side.SELL, Decimal("2597.40"), Decimal("0.0397"), None, Decimal("0.0397")
)


async def test_a_live_leg_is_an_ioc_under_the_venues_client_id_and_its_end_follows() -> None:
    cloid = venue_cloid(1)
    rig = live(Filled(OrderId(f"kucoin:{cloid}"), cloid, 0.0397, 2600.0))
    ack = await rig.leg_venue.place(SELL, "tri0-1-L2", BOOKS["ETH-USDT"])
    assert ack == LegAck(OrderId(f"kucoin:{cloid}"), "", cloid)
    assert rig.venue.placed == [PlaceOrder("ETH-USDT", Side.SELL, 2597.4, 0.0397, Tif.IOC, cloid)]
    assert rig.allowed == rig.venue.placed  # the pre-trade checks saw what was sent
    assert drain(rig.fills) == [LegDone(cloid, Decimal("0.0397"))]
    the_fill = fill(cloid, "0.0397", 0)
    through(rig.dispatcher, rig.routes, the_fill)
    assert drain(rig.fills) == [the_fill]


async def test_a_leg_the_pretrade_checks_refuse_is_not_sent() -> None:
    rig = live(refuse="reduce only: ETH-USDT")
    ack = await rig.leg_venue.place(SELL, "tri0-1-L2", BOOKS["ETH-USDT"])
    assert ack == LegAck(None, "reduce only: ETH-USDT", venue_cloid(1))
    assert not ack.accepted
    assert rig.venue.placed == []
    assert len(rig.routes) == 0
    assert rig.dispatcher.registry.get(ack.cloid or "") is None


async def test_a_leg_the_venue_rejects_is_an_ack_error_and_its_route_is_closed() -> None:
    rig = live(Rejected("200004 Balance insufficient!"), VenueError("429000 Too many requests"))
    ack = await rig.leg_venue.place(SELL, "tri0-1-L2", BOOKS["ETH-USDT"])
    assert (ack.oid, ack.error) == (None, "200004 Balance insufficient!")
    assert len(rig.routes) == 0
    whole = await rig.leg_venue.place(SELL, "tri0-1-U0", BOOKS["ETH-USDT"])  # refused whole
    assert (whole.oid, whole.error) == (None, "429000 Too many requests")
    assert len(rig.venue.placed) == 2
    assert len(rig.routes) == 0
    assert drain(rig.fills) == []


async def test_the_next_legs_client_id_is_drawn_after_an_answer_from_the_same_router() -> None:
    cloid = venue_cloid(1)
    rig = live(Filled(OrderId(f"kucoin:{cloid}"), cloid, 0.0397, 2600.0), Rejected("no"))
    await rig.leg_venue.place(SELL, "tri0-1-L2", BOOKS["ETH-USDT"])
    drawn = rig.venue.new_client_id()  # the venue's third id: the second is the spare
    assert drawn == venue_cloid(3)
    second = await rig.leg_venue.place(SELL, "tri0-2-L2", BOOKS["ETH-USDT"])
    assert second.cloid == venue_cloid(2)
    assert [order.cloid for order in rig.venue.placed] == [venue_cloid(1), venue_cloid(2)]
    # Another router (the client was replaced): its own id, never the old router's spare.
    moved = live(Rejected("no"))
    old = OrderRouter(rig.dispatcher, rig.venue, rig.events.extend, lambda: NOW_MS)
    moved.leg_venue._spare = (old, "mm-spare-of-the-old-router")
    answered = await moved.leg_venue.place(SELL, "tri0-3-L2", BOOKS["ETH-USDT"])
    assert answered.cloid == venue_cloid(1)  # the new venue's first
    assert [order.cloid for order in moved.venue.placed] == [venue_cloid(1)]


async def test_a_market_leg_or_no_client_is_refused_before_anything_is_sent() -> None:
    rig = live()
    market = attrs.evolve(SELL, market=True)
    ack = await rig.leg_venue.place(market, "tri0-1-L2", BOOKS["ETH-USDT"])
    assert ack == LegAck(None, "live legs are IOC limits: a market leg is for paper mode")
    assert rig.allowed == []
    down = RouterVenue(lambda: None, rig.dispatcher, rig.routes, rig.fills_in, INSTRUMENTS, str)
    assert await down.place(SELL, "tri0-1-L2", BOOKS["ETH-USDT"]) == LegAck(
        None, "the venue client is not up"
    )
    assert rig.venue.placed == []


async def test_a_slot_runs_a_triangle_live_hearing_fills_by_the_venues_client_ids(
    autojump_clock: trio.testing.MockClock,
) -> None:
    # Each leg fills whole: the user stream's fill comes ahead of the place's answer.
    def fills_first(order: PlaceOrder) -> list[Fill]:
        early = fill(order.cloid, repr(order.sz), 0, symbol=order.coin, side=order.side)
        return [attrs.evolve(early, px=order.px)]

    def filled(order: PlaceOrder) -> PlaceResult:
        return Filled(OrderId(f"kucoin:{order.cloid}"), order.cloid, order.sz, order.px)

    rig = live(filled, filled, filled, fills_first=fills_first)
    outcomes_in, outcomes_out = trio.open_memory_channel[TriangleReport](1)
    _, signals = trio.open_memory_channel[Signal](0)
    slot = ExecutorSlot(
        0,
        Claims(1),
        CONFIG,
        INSTRUMENTS,
        TERMS,
        rig.leg_venue,
        signals,
        rig.fills,
        outcomes_in,
        wall_ms=lambda: NOW_MS,  # the books' time: the signal is fresh
    )
    report = await slot.take(signal())
    assert report is not None
    assert report.outcome is Outcome.FILLED
    cloids = [venue_cloid(n) for n in (1, 2, 3)]
    assert [order.cloid for order in rig.venue.placed] == cloids
    assert [run.fills[0].cloid for run in report.legs] == cloids
    assert trio.current_time() == 0  # no leg waited for its timeout
    assert outcomes_out.receive_nowait() is report


# --- TestedPaperVenue --------------------------------------------------------------------------


@attrs.define
class OrderTests:
    """The venue client's test-order endpoint: answers ``answer`` (or raises it)."""

    answer: Rejected | VenueError | None = None
    tested: list[PlaceOrder] = attrs.Factory(list)

    def taker_fee(self, symbol: str) -> Decimal:
        raise AssertionError("not read by the paper venue")

    def funds_increment(self, symbol: str) -> Decimal:
        raise AssertionError("not read by the paper venue")

    async def test_order(self, order: PlaceOrder) -> Rejected | None:
        await trio.lowlevel.checkpoint()
        self.tested.append(order)
        if isinstance(self.answer, VenueError):
            raise self.answer
        return self.answer


def paper(spot: OrderTests | None) -> tuple[PaperLegs, trio.MemoryReceiveChannel[LegEvent]]:
    send, receive = trio.open_memory_channel[LegEvent](math.inf)
    return PaperLegs(lambda: spot, INSTRUMENTS, TERMS, send), receive


async def test_a_paper_leg_the_test_order_refuses_is_an_ack_error_and_fills_nothing() -> None:
    spot = OrderTests(Rejected("400100 Order size below the minimum requirement."))
    venue, fills = paper(spot)
    ack = await venue.place(SELL, "tri0-1-L2", BOOKS["ETH-USDT"])
    assert ack == LegAck(None, "400100 Order size below the minimum requirement.")
    assert spot.tested == [PlaceOrder("ETH-USDT", Side.SELL, 2597.4, 0.0397, Tif.IOC, "tri0-1-L2")]
    assert drain(fills) == []


async def test_a_paper_leg_whose_test_order_fails_is_an_ack_error() -> None:
    venue, fills = paper(OrderTests(VenueError("KuCoin unavailable")))
    ack = await venue.place(SELL, "tri0-1-L2", BOOKS["ETH-USDT"])
    assert ack == LegAck(None, "test order failed: KuCoin unavailable")
    assert drain(fills) == []
    down, _ = paper(None)
    assert await down.place(SELL, "tri0-1-L2", BOOKS["ETH-USDT"]) == LegAck(
        None, "the venue client is not up"
    )


async def test_a_paper_leg_the_test_order_takes_fills_from_the_book_as_evaluated() -> None:
    venue, fills = paper(OrderTests())
    ack = await venue.place(SELL, "tri0-1-L2", BOOKS["ETH-USDT"])
    assert ack == LegAck(OrderId("paper:tri0-1-L2"))
    events = drain(fills)
    assert [(e.px, e.sz, e.cloid) for e in events if isinstance(e, Fill)] == [
        (2600.0, 0.0397, "tri0-1-L2")
    ]
    assert events[-1] == LegDone("tri0-1-L2", Decimal("0.0397"))


# --- leg_place_order ---------------------------------------------------------------------------


def test_an_ioc_leg_is_sent_as_its_size_at_its_limit() -> None:
    assert leg_place_order(SELL, "c", ETH) == PlaceOrder(
        "ETH-USDT", Side.SELL, 2597.4, 0.0397, Tif.IOC, "c"
    )


def test_a_market_buy_by_funds_is_checked_as_the_lots_its_funds_buy_at_the_limit() -> None:
    buy = LegOrder(
        "BTC-USDT", Side.BUY, Decimal("50050"), None, Decimal("100"), Decimal("100"), True
    )
    # 100 / 50050 = 0.0019980..., floored to the 0.00001 lot.
    assert leg_place_order(buy, "c", INSTRUMENTS["BTC-USDT"]) == PlaceOrder(
        "BTC-USDT", Side.BUY, 50050.0, 0.00199, Tif.IOC, "c"
    )


@settings(max_examples=100, deadline=None)
@given(
    funds=st.decimals(Decimal("0.01"), Decimal("100000"), places=2),
    ticks=st.integers(1, 10**7),
)
def test_a_market_buys_size_is_the_most_lots_its_funds_buy(funds: Decimal, ticks: int) -> None:
    btc = INSTRUMENTS["BTC-USDT"]
    px = ticks * btc.price_increment
    buy = LegOrder("BTC-USDT", Side.BUY, px, None, funds, funds, True)
    size = Decimal(repr(leg_place_order(buy, "c", btc).sz))
    assert size % btc.size_increment == 0
    assert size * px <= funds < (size + btc.size_increment) * px
