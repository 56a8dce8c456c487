"""The order router: the shell between executors and the venue client.

Every request is registered with the dispatcher before it leaves, every answer is applied, and
an answer that never came or cannot be laid onto its orders (``OrderFateUnknown``, a cancel's
``RequestTimeout``) makes the order ``unknown`` until ``orderStatus`` by cloid says what the
venue has: nothing is re-sent before that, so a lost answer can never double an order; the
answers the call did get for its other orders (``OrderFateUnknown.known``) are applied first. A
request the venue refused whole (rate limited, rejected, one error status for the batch) is
applied as a rejection of each of its orders: a place or modify refused leaves nothing new at
the venue, a cancel refused leaves the order live and tracked. A cancel the venue answers with a
refusal for one order (it no longer has it open: filled, or canceled by an earlier cancel whose
answer was lost) is followed at once by ``orderStatus``, applied as one more report. Lifecycle
events, from the router's answers and from the user stream's reports alike, go to one ``emit``
callback.

The venue commits an action a block or two after it takes it in, and refuses it once its expiry
has passed. So "the venue does not know this order" is no answer while a place or modify whose
answer was lost may still land: the router tells the dispatcher until when it may
(``OrderFateUnknown.lands_by_ms``: the action's expiry plus the clock allowance), keeps the order
UNKNOWN, and asks again once that time has passed. A call abandoned before its answer
(cancelled: a stop, a kill, a restart of the slot) leaves a bound too: what it sent may land up
to ``landing_window_ms`` after it went away.

``send_place`` is ``place`` of one order in two halves, for a venue that can write one at once
(``SendsPlaceNow``): registered and written in no task's name (the caller's task need not be
the one that awaits), then ``SentPlace.settle`` applies the answer by the same rules, in any
task; ``SentPlace.abandon`` when it never will be (the order left to land, as a cancelled call
leaves it).

Each call runs under `Dispatcher.awaiting` for its orders, from before the request is registered
until its answer (or resolution) is applied: an order left pending when no call awaits it any
more (the caller was cancelled mid-request) is the order auditor's to resolve.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from contextlib import AbstractContextManager
from functools import partial
from typing import Protocol

import trio
from loguru import logger

from mm.execution.dispatch import Dispatcher, DispatchOutput
from mm.execution.lifecycle import OrderState
from mm.model import (
    CancelOrder,
    CancelResult,
    Filled,
    ModifyOrder,
    OrderId,
    OrderReport,
    PlaceOrder,
    PlaceResult,
    Rejected,
    Resting,
)
from mm.venues.base import (
    OrderFateUnknown,
    PendingPlace,
    RequestTimeout,
    SendsPlaceNow,
    VenueError,
)


class OrderVenue(Protocol):
    def new_client_id(self) -> str: ...

    async def place(self, orders: Sequence[PlaceOrder]) -> list[PlaceResult]: ...

    async def cancel(self, cancels: Sequence[CancelOrder]) -> list[CancelResult]: ...

    async def modify(self, modifies: Sequence[ModifyOrder]) -> list[PlaceResult]: ...

    async def order_status(
        self, *, oid: OrderId | None = None, cloid: str | None = None
    ) -> OrderReport | None: ...


Emit = Callable[[Sequence[DispatchOutput]], None]


class OrderRouter:
    def __init__(
        self,
        dispatcher: Dispatcher,
        venue: OrderVenue,
        emit: Emit,
        now_ms: Callable[[], int],
        *,
        landing_window_ms: int = 0,
    ) -> None:
        self.dispatcher = dispatcher
        self.venue = venue
        self.emit = emit
        self.now_ms = now_ms
        # How long after it was sent an action may still take effect at the venue (its expiry
        # window plus the clock allowance): the bound left by a call abandoned mid-request.
        self.landing_window_ms = landing_window_ms
        # The venue's way to write one order at once (``send_place``), if it has one.
        self._sends_now = venue if isinstance(venue, SendsPlaceNow) else None

    def new_client_id(self) -> str:
        """A fresh client order id from the venue's adapter, for an order about to be sent."""
        return self.venue.new_client_id()

    async def place(self, orders: Sequence[PlaceOrder]) -> None:
        cloids = [order.cloid for order in orders]
        with self.dispatcher.awaiting(cloids):
            try:
                now = self.now_ms()
                for order in orders:
                    self.dispatcher.submit(order, now)
                await self._placed(orders, partial(self.venue.place, orders))
            except BaseException:
                self._gone(cloids)
                raise

    def place_ready(self) -> bool:
        """Whether ``send_place`` would send an order now."""
        venue = self._sends_now
        return venue is not None and venue.place_ready()

    def send_place(self, order: PlaceOrder) -> SentPlace | None:
        """``place`` of one order in two halves, when the venue can write it at once
        (``SendsPlaceNow``): here, in no task's name, it is registered and its request
        written (or refused before the venue); ``SentPlace.settle``, awaited in any task,
        applies the answer as ``place`` does. None, with nothing registered or sent, when the
        venue has no such way. Call it when ``place_ready`` said yes, in the same step: an
        order the venue then could not write at once is answered ``Rejected`` (registered,
        never sent: nothing is out of step with the venue)."""
        venue = self._sends_now
        if venue is None:
            return None
        cloids = [order.cloid]
        awaiting = self.dispatcher.awaiting(cloids)
        awaiting.__enter__()
        try:
            self.dispatcher.submit(order, self.now_ms())
            try:
                sent = venue.send_place(order)
            except VenueError as refused:  # refused whole: nothing of it was sent
                sent = Rejected(str(refused))
            if sent is None:  # (place_ready said it could: nothing was written)
                sent = Rejected("the venue could not write it at once")
        except BaseException:  # (a bug of the venue's: left as a failed ``place`` leaves it)
            self._gone(cloids)
            awaiting.__exit__(None, None, None)
            raise
        return SentPlace(self, order, awaiting, sent)

    def _gone(self, cloids: Sequence[str]) -> None:
        """A call ended without its answer (cancelled, or failing): what it sent may still
        land up to the landing window from now."""
        self.dispatcher.caller_gone(cloids, self.now_ms() + self.landing_window_ms)

    async def _placed(
        self,
        orders: Sequence[PlaceOrder],
        request: Callable[[], Awaitable[Sequence[PlaceResult]]],
    ) -> None:
        """Apply the answers of a place of ``orders`` (submitted) that ``request`` awaits."""
        try:
            results = await request()
        except OrderFateUnknown as unknown:
            now = self.now_ms()
            for order in orders:
                answered = unknown.known.get(order.cloid)
                if answered is not None:
                    self.emit(self.dispatcher.on_place_ack(order.cloid, answered, now))
            self.dispatcher.may_land(unknown.cloids, unknown.lands_by_ms)
            await self._unknown(unknown.cloids)
            return
        except VenueError as refused:  # the whole request was refused: nothing was placed
            results = [Rejected(str(refused)) for _ in orders]
        now = self.now_ms()
        for order, result in zip(orders, results, strict=True):
            self.emit(self.dispatcher.on_place_ack(order.cloid, result, now))

    async def _sent_result(self, sent: PlaceResult | PendingPlace) -> list[PlaceResult]:
        if isinstance(sent, Resting | Filled | Rejected):
            return [sent]
        return [await sent.result()]

    async def modify(self, modifies: Sequence[ModifyOrder]) -> None:
        """Modify each order; one that has ended since the caller planned it (filled, or
        canceled, while the caller awaited something else) is left out: its fate is decided,
        and a modify of it would be refused by its lifecycle."""
        modifies = [modify for modify in modifies if not self._ended(modify.order.cloid)]
        if not modifies:
            await trio.lowlevel.checkpoint()
            return
        cloids = [modify.order.cloid for modify in modifies]
        with self.dispatcher.awaiting(cloids):
            try:
                await self._modify(modifies)
            except BaseException:  # as in place: what it sent may still land
                self.dispatcher.caller_gone(cloids, self.now_ms() + self.landing_window_ms)
                raise

    async def _modify(self, modifies: Sequence[ModifyOrder]) -> None:
        now = self.now_ms()
        for modify in modifies:
            self.dispatcher.request_modify(modify, now)
        try:
            results = await self.venue.modify(modifies)
        except OrderFateUnknown as unknown:
            self.dispatcher.may_land(unknown.cloids, unknown.lands_by_ms)
            await self._unknown(unknown.cloids)
            return
        except VenueError as refused:
            results = [Rejected(str(refused)) for _ in modifies]
        now = self.now_ms()
        for modify, result in zip(modifies, results, strict=True):
            self.emit(self.dispatcher.on_modify_ack(modify.order.cloid, result, now))

    async def cancel(self, cloids: Sequence[str]) -> None:
        """Cancel each order; one that has ended since the caller chose it is left out (see
        ``modify``)."""
        cloids = [cloid for cloid in cloids if not self._ended(cloid)]
        if not cloids:
            await trio.lowlevel.checkpoint()
            return
        with self.dispatcher.awaiting(cloids):
            await self._cancel(cloids)

    async def _cancel(self, cloids: Sequence[str]) -> None:
        now = self.now_ms()
        cancels = [
            CancelOrder(self.dispatcher.request_cancel(cloid, now).coin, cloid=cloid)
            for cloid in cloids
        ]
        try:
            results = await self.venue.cancel(cancels)
        except (RequestTimeout, OrderFateUnknown):
            await self._unknown(cloids)
            return
        except VenueError as refused:  # refused whole (rate limited...): the orders stay live
            now = self.now_ms()
            for cloid in cloids:
                self.emit(self.dispatcher.on_cancel_ack(cloid, Rejected(str(refused)), now))
            return
        now = self.now_ms()
        for cloid, result in zip(cloids, results, strict=True):
            self.emit(self.dispatcher.on_cancel_ack(cloid, result, now))
        # A cancel the venue refused for its order means, but for a place still on its way,
        # that the order is no longer open (filled, or canceled by an earlier cancel of ours
        # whose answer and report were lost to a closed connection): its fate is asked at once,
        # not left working until the order audit finds it absent.
        for cloid, result in zip(cloids, results, strict=True):
            if isinstance(result, Rejected) and not self._ended(cloid):
                await self._ask(cloid)

    def _ended(self, cloid: str) -> bool:
        order = self.dispatcher.registry.get(cloid)
        return order is not None and order.is_terminal

    async def _unknown(self, cloids: Sequence[str]) -> None:
        """Mark each order unknown, then ask the venue about each before anything else."""
        now = self.now_ms()
        for cloid in cloids:
            self.emit(self.dispatcher.on_timeout(cloid, now))
        for cloid in cloids:
            await self._resolve(cloid)

    async def _ask(self, cloid: str) -> None:
        """Apply the venue's orderStatus for an order we hold as working, as one more report
        (not known: nothing changes; the order audit settles it)."""
        try:
            report = await self.venue.order_status(cloid=cloid)
        except VenueError as error:
            logger.warning("order {}: orderStatus after a refused cancel failed: {}", cloid, error)
            return
        self.emit(self.dispatcher.resolve_unknown(cloid, report, self.now_ms()))

    async def resolve(self, cloid: str) -> None:
        """Settle an unknown order from the venue's orderStatus (None: never placed)."""
        with self.dispatcher.awaiting([cloid]):
            await self._resolve(cloid)

    async def _resolve(self, cloid: str) -> None:
        """Ask until the answer settles the order, or it can no longer land and is asked once
        more: an order still on its way is not taken for never placed."""
        while True:
            try:
                report = await self.venue.order_status(cloid=cloid)
            except VenueError as error:
                logger.warning("order {} stays unknown: orderStatus failed: {}", cloid, error)
                return
            now = self.now_ms()
            self.emit(self.dispatcher.resolve_unknown(cloid, report, now))
            order = self.dispatcher.order(cloid)
            wait_ms = None
            if order is not None and order.state is OrderState.UNKNOWN:
                wait_ms = order.landing_wait_ms(now)
            if wait_ms is None:
                return  # settled, or left to the auditor (nothing more to wait for here)
            await trio.sleep(wait_ms / 1000)


class SentPlace:
    """One order ``OrderRouter.send_place`` registered and sent: ``settle`` awaits and applies
    its answer, in any task, as ``place`` does (a cancel meanwhile leaves the order to land up
    to the landing window, as a cancelled ``place`` does). Exactly one of ``settle`` or
    ``abandon`` must follow: until then the dispatcher counts the order as awaited."""

    __slots__ = ("_awaiting", "_order", "_router", "_sent", "_settled")

    def __init__(
        self,
        router: OrderRouter,
        order: PlaceOrder,
        awaiting: AbstractContextManager[None],
        sent: PlaceResult | PendingPlace,
    ) -> None:
        self._router = router
        self._order = order
        self._awaiting = awaiting
        self._sent = sent
        self._settled = False

    async def settle(self) -> None:
        if self._settled:
            raise RuntimeError(f"{self._order.cloid}: settled already")
        self._settled = True
        router, orders = self._router, (self._order,)
        try:
            await router._placed(orders, partial(router._sent_result, self._sent))
        except BaseException:
            router._gone([self._order.cloid])
            raise
        finally:
            self._awaiting.__exit__(None, None, None)

    def abandon(self) -> None:
        """Never to be settled (its caller is gone): the order left to land, as a cancelled
        ``place`` leaves it (the auditor resolves it)."""
        if not self._settled:
            self._settled = True
            self._router._gone([self._order.cloid])
            self._awaiting.__exit__(None, None, None)
