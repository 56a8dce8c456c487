"""The executor slots' ways to the venue: live through the order router, or paper behind the
venue's test order; and the routing of order events to the slot that sent the order.

``LegRoutes`` maps the client order id the venue knows a leg by to the fill channel of the
slot that sent it. Every fill new to the portfolio passes ``on_fill``: one of a routed order
goes to its slot, then the order's end is looked up in the dispatcher's registry, and once
the order is over (filled, or its IOC rest cancelled) a ``LegDone`` with the total the venue
reports follows it, once (the order's size when filled, the place answer's total when the rest
was cancelled, else the exact sum of the fills delivered). The fill channels are unbounded (a
slot never holds up the fill path); a channel whose slot has gone (restarted) drops its
routes. Routes are kept for the latest ``capacity`` orders: an IOC is over within a request,
and a slot waits for a leg at most its fill timeout. A fill that comes without a client id
(from the venue's fill history: the fill audit or a resync found it before the user stream's
own copy, which is then dropped as a duplicate) goes by its order id: to the route of the
order the dispatcher knows by it, or, before the order's answer has told its id, it is held
(the latest ``capacity`` orders') and delivered when that order's route is settled.

``RouterVenue`` (live) sends a leg as an IOC limit order through the order router, under a
client order id of the venue's format (``new_client_id``: mm's orders are recognisable at the
venue), after the pre-trade checks (``allow``), and answers from the dispatcher's registry:
refused (by the checks, the venue, or a request that failed whole) or accepted with the
venue's order id. A request whose answer was lost leaves the order UNKNOWN (the router
resolves it, never re-sending): the leg then waits for fills until its timeout.

``TestedPaperVenue`` (paper) asks the venue's test-order endpoint whether it would take the
leg's order (the same order a live leg sends, validated and never placed), and fills it from
the book as evaluated (``PaperVenue``): paper and live differ only at the venue call.

Fails: what the router or the venue client raise beyond a venue's refusal (a bug, or the
client gone) propagates to the slot, which ends without a report; the supervisor restarts it.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Mapping
from decimal import Decimal

import attrs
import trio

from mm.execution.dispatch import Dispatcher
from mm.execution.lifecycle import OrderState
from mm.execution.orders import OrderRouter, SentPlace
from mm.execution.unidentified import UnidentifiedFills
from mm.model import Fill, Instrument, PlaceOrder, Rejected, Tif
from mm.strategies.triarb.cascade import LegOrder
from mm.strategies.triarb.slot import LegAck, LegDone, LegEvent, PaperVenue, SentLeg
from mm.strategies.triarb.triangles import BookView, Terms
from mm.venues.base import SpotTerms, VenueError

__all__ = ["ROUTES_KEPT", "LegRoutes", "RouterVenue", "TestedPaperVenue", "leg_place_order"]

ROUTES_KEPT = 4096


@attrs.define
class _Route:
    fills: trio.MemorySendChannel[LegEvent]
    done: bool = False
    # The sizes of the fills delivered, summed exactly (the registry's sum is of floats).
    filled: Decimal = Decimal(0)


class LegRoutes:
    """Fills and order ends to the slot that sent the order (see the module)."""

    def __init__(self, dispatcher: Dispatcher, capacity: int = ROUTES_KEPT) -> None:
        self._dispatcher = dispatcher
        self._capacity = capacity
        self._routes: OrderedDict[str, _Route] = OrderedDict()
        self._unidentified = UnidentifiedFills(dispatcher, capacity)
        self.routed = 0  # fills delivered to a slot

    def __len__(self) -> int:
        return len(self._routes)

    def open(self, cloid: str, fills: trio.MemorySendChannel[LegEvent]) -> None:
        """From now on ``cloid``'s fills and end go to ``fills``."""
        self._routes[cloid] = _Route(fills)
        while len(self._routes) > self._capacity:
            self._routes.popitem(last=False)

    def close(self, cloid: str) -> None:
        self._routes.pop(cloid, None)

    def on_fill(self, fill: Fill) -> None:
        identified = self._unidentified.identify(fill)
        cloid = identified.cloid if identified is not None else None
        if identified is None or cloid is None:
            return
        fill = identified
        route = self._routes.get(cloid)
        if route is None:
            return
        if self._deliver(cloid, route, fill):
            self.routed += 1
            route.filled += Decimal(repr(fill.sz))
            self.settle(cloid)

    def settle(self, cloid: str) -> None:
        """Send the order's end to its slot once the registry says it is over."""
        route = self._routes.get(cloid)
        if route is None or route.done:
            return
        tracked = self._dispatcher.registry.get(cloid)
        if tracked is None:
            return
        held = self._unidentified.release(cloid)
        if held:
            for fill in held:  # (each settles the route after it: the last one ends it)
                self.on_fill(fill)
            return
        if tracked.state is OrderState.FILLED:
            filled = Decimal(repr(tracked.sz))
        elif tracked.state.is_terminal and tracked.state is not OrderState.REJECTED:
            answered = tracked.answered_filled_sz
            # Without the venue's total, what has filled: the fills delivered, summed as the
            # slot sums them (a float sum such as 0.1 + 0.2 is more than the decimals' 0.3).
            filled = route.filled if answered is None else Decimal(repr(answered))
        else:
            return
        if self._deliver(cloid, route, LegDone(cloid, filled)):
            route.done = True

    def _deliver(self, cloid: str, route: _Route, event: LegEvent) -> bool:
        try:
            route.fills.send_nowait(event)
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            self._routes.pop(cloid, None)  # the slot that sent it has gone
            return False
        return True


def leg_place_order(order: LegOrder, cloid: str, instrument: Instrument) -> PlaceOrder:
    """The IOC limit a leg is sent as: a market buy by funds is checked as the size its funds
    buy at the limit (floored to the lot), which is what the venue validates."""
    size = order.size
    if size is None:
        assert order.funds is not None  # a LegOrder has one of the two
        lots = (order.funds / order.px) // instrument.size_increment
        size = lots * instrument.size_increment
    return PlaceOrder(order.symbol, order.side, float(order.px), float(size), Tif.IOC, cloid)


class RouterVenue:
    """A slot's live ``LegVenue``: IOC legs through the order router (see the module)."""

    def __init__(
        self,
        router: Callable[[], OrderRouter | None],
        dispatcher: Dispatcher,
        routes: LegRoutes,
        fills: trio.MemorySendChannel[LegEvent],
        instruments: Mapping[str, Instrument],
        allow: Callable[[PlaceOrder], str | None],
    ) -> None:
        self._router = router
        self._dispatcher = dispatcher
        self._routes = routes
        self._fills = fills
        self._instruments = instruments
        self._allow = allow
        # The next leg's client order id, drawn from ``router`` once the previous leg was
        # answered (while the slot waits for its fills), not on the way to the send.
        self._spare: tuple[OrderRouter, str] | None = None

    async def place(self, order: LegOrder, cloid: str, book: BookView) -> LegAck:
        router = self._router()
        if router is None:
            return LegAck(None, "the venue client is not up")
        if order.market:
            return LegAck(None, "live legs are IOC limits: a market leg is for paper mode")
        ack = await self._place(router, order, self._client_id(router))
        self._spare = (router, router.new_client_id())
        return ack

    def send(self, order: LegOrder, cloid: str, book: BookView) -> SentLeg | LegAck | None:
        """``place``'s order written at once, in no task's name (``OrderRouter.send_place``),
        when the router is up and the venue can write it now: its refusal at once, or the
        sent leg whose ``ack`` is ``place``'s answer; None, with nothing checked or sent, else
        (``place`` then sends it)."""
        router = self._router()
        if router is None or order.market or not router.place_ready():
            return None
        venue_cloid = self._client_id(router)
        placed = leg_place_order(order, venue_cloid, self._instruments[order.symbol])
        refused = self._allow(placed)
        if refused is not None:
            return LegAck(None, refused, venue_cloid)
        self._routes.open(venue_cloid, self._fills)
        sent = router.send_place(placed)
        assert sent is not None  # place_ready said so, and nothing has run since
        return _SentLeg(self, router, venue_cloid, sent)

    def _client_id(self, router: OrderRouter) -> str:
        """The spare client order id drawn after the last answer, or a new one (a spare of
        another router, the client replaced since, is not used: ids are its own)."""
        spare, self._spare = self._spare, None
        if spare is not None and spare[0] is router:
            return spare[1]
        return router.new_client_id()

    async def _place(self, router: OrderRouter, order: LegOrder, venue_cloid: str) -> LegAck:
        placed = leg_place_order(order, venue_cloid, self._instruments[order.symbol])
        refused = self._allow(placed)
        if refused is not None:
            return LegAck(None, refused, venue_cloid)
        self._routes.open(venue_cloid, self._fills)
        await router.place([placed])
        return self._acked(venue_cloid)

    def _acked(self, venue_cloid: str) -> LegAck:
        """The leg's answer as the dispatcher applied it."""
        tracked = self._dispatcher.registry.get(venue_cloid)
        if tracked is None or tracked.state is OrderState.REJECTED:
            self._routes.close(venue_cloid)
            reason = "no answer" if tracked is None else tracked.reason or "rejected"
            return LegAck(None, reason, venue_cloid)
        self._routes.settle(venue_cloid)
        return LegAck(tracked.oid, "", venue_cloid)


class _SentLeg:
    """A leg ``RouterVenue.send`` wrote: ``ack`` settles its place (in the slot's task) and
    answers as ``RouterVenue.place`` does."""

    __slots__ = ("_cloid", "_router", "_sent", "_venue")

    def __init__(
        self, venue: RouterVenue, router: OrderRouter, cloid: str, sent: SentPlace
    ) -> None:
        self._venue = venue
        self._router = router
        self._cloid = cloid
        self._sent = sent

    async def ack(self) -> LegAck:
        await self._sent.settle()
        venue, router = self._venue, self._router
        venue._spare = (router, router.new_client_id())  # the next leg's, off its path
        return venue._acked(self._cloid)

    def abandon(self) -> None:
        self._sent.abandon()


class TestedPaperVenue:
    """A slot's paper ``LegVenue``: the venue's test order, then fills from the book as
    evaluated (see the module)."""

    def __init__(
        self,
        spot: Callable[[], SpotTerms | None],
        instruments: Mapping[str, Instrument],
        terms: Terms,
        fills: trio.MemorySendChannel[LegEvent],
    ) -> None:
        self._spot = spot
        self._instruments = instruments
        self._paper = PaperVenue(instruments, terms, fills)

    async def place(self, order: LegOrder, cloid: str, book: BookView) -> LegAck:
        spot = self._spot()
        if spot is None:
            return LegAck(None, "the venue client is not up")
        tested = leg_place_order(order, cloid, self._instruments[order.symbol])
        try:
            refused = await spot.test_order(tested)
        except VenueError as error:
            refused = Rejected(f"test order failed: {error}")
        if refused is not None:
            return LegAck(None, refused.reason)
        return await self._paper.place(order, cloid, book)
