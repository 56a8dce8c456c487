"""The order router: the shell between executors and the venue client.

Every request is registered with the dispatcher before it leaves, every answer is applied, and
an answer that never came or cannot be laid onto its orders (``OrderFateUnknown``, a cancel's
``RequestTimeout``) makes the order ``unknown`` until ``orderStatus`` by cloid says what the
venue has: nothing is re-sent before that, so a lost answer can never double an order; the
answers the call did get for its other orders (``OrderFateUnknown.known``) are applied first. A
request the venue refused whole (rate limited, rejected, one error status for the batch) is
applied as a rejection of each of its orders: a place or modify refused leaves nothing new at
the venue, a cancel refused leaves the order live and tracked. Lifecycle events, from the
router's answers and from the user stream's reports alike, go to one ``emit`` callback.

Each call runs under `Dispatcher.awaiting` for its orders, from before the request is registered
until its answer (or resolution) is applied: an order left pending when no call awaits it any
more (the caller was cancelled mid-request) is the order auditor's to resolve.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Protocol

from loguru import logger

from mm.execution.dispatch import Dispatcher, DispatchOutput
from mm.model import (
    CancelOrder,
    CancelResult,
    ModifyOrder,
    OrderReport,
    PlaceOrder,
    PlaceResult,
    Rejected,
)
from mm.venues.base import VenueError
from mm.venues.hyperliquid.client import OrderFateUnknown
from mm.venues.hyperliquid.rest import RequestTimeout


class OrderVenue(Protocol):
    async def place(self, orders: Sequence[PlaceOrder]) -> list[PlaceResult]: ...

    async def cancel(self, cancels: Sequence[CancelOrder]) -> list[CancelResult]: ...

    async def modify(self, modifies: Sequence[ModifyOrder]) -> list[PlaceResult]: ...

    async def order_status(self, target: int | str) -> OrderReport | None: ...


Emit = Callable[[Sequence[DispatchOutput]], None]


class OrderRouter:
    def __init__(
        self,
        dispatcher: Dispatcher,
        venue: OrderVenue,
        emit: Emit,
        now_ms: Callable[[], int],
    ) -> None:
        self.dispatcher = dispatcher
        self.venue = venue
        self.emit = emit
        self.now_ms = now_ms

    async def place(self, orders: Sequence[PlaceOrder]) -> None:
        with self.dispatcher.awaiting(order.cloid for order in orders):
            await self._place(orders)

    async def _place(self, orders: Sequence[PlaceOrder]) -> None:
        now = self.now_ms()
        for order in orders:
            self.dispatcher.submit(order, now)
        try:
            results = await self.venue.place(orders)
        except OrderFateUnknown as unknown:
            now = self.now_ms()
            for order in orders:
                answered = unknown.known.get(order.cloid)
                if answered is not None:
                    self.emit(self.dispatcher.on_place_ack(order.cloid, answered, now))
            await self._unknown(unknown.cloids)
            return
        except VenueError as refused:  # the whole request was refused: nothing was placed
            results = [Rejected(str(refused)) for _ in orders]
        now = self.now_ms()
        for order, result in zip(orders, results, strict=True):
            self.emit(self.dispatcher.on_place_ack(order.cloid, result, now))

    async def modify(self, modifies: Sequence[ModifyOrder]) -> None:
        with self.dispatcher.awaiting(modify.order.cloid for modify in modifies):
            await self._modify(modifies)

    async def _modify(self, modifies: Sequence[ModifyOrder]) -> None:
        now = self.now_ms()
        for modify in modifies:
            self.dispatcher.request_modify(modify, now)
        try:
            results = await self.venue.modify(modifies)
        except OrderFateUnknown as unknown:
            await self._unknown(unknown.cloids)
            return
        except VenueError as refused:
            results = [Rejected(str(refused)) for _ in modifies]
        now = self.now_ms()
        for modify, result in zip(modifies, results, strict=True):
            self.emit(self.dispatcher.on_modify_ack(modify.order.cloid, result, now))

    async def cancel(self, cloids: Sequence[str]) -> None:
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
        except VenueError as refused:
            results = [Rejected(str(refused)) for _ in cancels]
        now = self.now_ms()
        for cloid, result in zip(cloids, results, strict=True):
            self.emit(self.dispatcher.on_cancel_ack(cloid, result, now))

    async def _unknown(self, cloids: Sequence[str]) -> None:
        """Mark each order unknown, then ask the venue about each before anything else."""
        now = self.now_ms()
        for cloid in cloids:
            self.emit(self.dispatcher.on_timeout(cloid, now))
        for cloid in cloids:
            await self._resolve(cloid)

    async def resolve(self, cloid: str) -> None:
        """Settle an unknown order from the venue's orderStatus (None: never placed)."""
        with self.dispatcher.awaiting([cloid]):
            await self._resolve(cloid)

    async def _resolve(self, cloid: str) -> None:
        try:
            report = await self.venue.order_status(cloid)
        except VenueError as error:
            logger.warning("order {} stays unknown: orderStatus failed: {}", cloid, error)
            return
        self.emit(self.dispatcher.resolve_unknown(cloid, report, self.now_ms()))
