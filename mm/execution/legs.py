"""The multi-leg executor: runs a ``MultiLeg`` command, leg after leg, through the order router.

For each leg its ``LegGroup`` (mm.execution.commands) asks for, it builds an IOC at the leg's
price and size (the size rounded down to the instrument's lot), asks ``allow`` (the permission
board, the pre-trade checks), and sends it; then it waits for the venue's answer and the leg's
fills (the fill channel calls ``on_fill``), and the group sizes the next leg from them. A leg
refused by ``allow`` or by the venue, one below the instrument's lot or minimum once scaled, a
market leg (this executor prices none) and a leg with no end (its fills, or its fate once
unknown) ``leg_timeout_s`` after its answer stop the group, and the returned group says why
(a timed-out leg with what the dispatcher knows of its order: one the venue ended whose fills
never reached ``on_fill`` says so, with the venue's total and what was heard).
Commands are never conflated: each call of ``execute`` runs its own groups to their ends
(independent groups' ready legs share one request, as the flattener's round of one IOC per
symbol did); a failure of the request itself (a timeout, a lost answer) is the router's to
resolve (the order stays UNKNOWN, never re-sent) and stops the group.

A fill that comes without a client id (from the venue's fill history: the fill audit found it
before the user stream's own copy, which is then dropped as a duplicate; ``Trading`` gives one
its client id when the dispatcher knows its order's id) whose order's id is not known yet is
held (the latest ``HELD_KEPT`` orders') and heard once the request's answer has told the id.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Final

import trio
from loguru import logger

from mm.execution.commands import GroupState, LegGroup, LegOrder, MultiLeg
from mm.execution.dispatch import Dispatcher
from mm.execution.lifecycle import OrderState
from mm.execution.orders import OrderRouter
from mm.execution.unidentified import UnidentifiedFills
from mm.model import Fill, Instrument, PlaceOrder, Tif

HELD_KEPT: Final = 256  # orders whose fills came without a client id before their answer


class LegExecutor:
    """Sends multi-leg groups; ``on_fill`` must see every fill (it wakes the group waiting)."""

    def __init__(
        self,
        router: Callable[[], OrderRouter | None],
        dispatcher: Dispatcher,
        instruments: Callable[[str], Instrument],
    ) -> None:
        self._router = router
        self.dispatcher = dispatcher
        self.instruments = instruments
        self._working: dict[str, tuple[LegGroup, int]] = {}  # cloid -> its group and leg
        self._unidentified = UnidentifiedFills(dispatcher, HELD_KEPT)
        self._changed = trio.Event()

    def ready(self) -> bool:
        """The venue client is up: orders can be sent."""
        return self._router() is not None

    def on_fill(self, fill: Fill) -> None:
        identified = self._unidentified.identify(fill)
        if identified is None or identified.cloid is None:
            return
        working = self._working.get(identified.cloid)
        if working is not None:
            group, index = working
            group.on_fill(index, fill.sz)
            self._wake()

    def _wake(self) -> None:
        self._changed.set()
        self._changed = trio.Event()

    async def execute(
        self,
        *commands: MultiLeg,
        allow: Callable[[PlaceOrder], str | None],
        leg_timeout_s: float,
    ) -> list[LegGroup]:
        """Run ``commands`` to their ends: every leg done, or stopped (``reason`` says why).
        Independent groups advance together: the legs they have ready go in one request.
        ``allow`` says why an order may not go out (None: it may); a leg not ended
        ``leg_timeout_s`` after its answer stops its group."""
        groups = [LegGroup(command) for command in commands]
        while ready := [(g, leg) for g in groups if (leg := g.next_order()) is not None]:
            await self._send(ready, allow, leg_timeout_s)
        for group in groups:
            if group.state is GroupState.STOPPED:
                logger.warning("multi-leg {} stopped: {}", group.command.group_id, group.reason)
        return groups

    def _order(self, leg: LegOrder, cloid: str) -> PlaceOrder | str:
        """The leg's IOC, or why there is none."""
        if leg.leg.px is None:
            return "a market leg needs a price: this executor sends IOC legs only"
        instrument = self.instruments(leg.leg.coin)
        sz = instrument.round_size(leg.sz, up=False)
        if sz <= 0 or sz < float(instrument.min_size):
            return f"{leg.sz:g} is below the instrument's lot or minimum size"
        return PlaceOrder(
            leg.leg.coin, leg.leg.side, leg.leg.px, sz, Tif.IOC, cloid, leg.leg.reduce_only
        )

    async def _send(
        self,
        ready: list[tuple[LegGroup, LegOrder]],
        allow: Callable[[PlaceOrder], str | None],
        leg_timeout_s: float,
    ) -> None:
        """Send the ready legs in one request and wait until each ended or timed out."""
        router = self._router()
        sent: list[tuple[LegGroup, LegOrder, PlaceOrder]] = []
        for group, leg in ready:
            order = (
                "the venue client is not up"
                if router is None
                else self._order(leg, router.new_client_id())
            )
            if isinstance(order, PlaceOrder):
                order = allow(order) or order
            if isinstance(order, str):
                group.on_refused(leg.index, order)
            else:
                sent.append((group, leg, order))
        if router is None or not sent:
            return
        for group, leg, order in sent:
            self._working[order.cloid] = (group, leg.index)

        def working() -> list[tuple[LegGroup, LegOrder, PlaceOrder]]:
            return [
                (group, leg, order)
                for group, leg, order in sent
                if group.state is GroupState.WORKING and group.index == leg.index
            ]

        try:
            # The request runs to its answer (the router bounds it: an answer that never comes
            # leaves the orders UNKNOWN); abandoning it would leave them pending, unawaited.
            try:
                await router.place([order for _, _, order in sent])
            except Exception as error:
                for group, leg, _ in sent:
                    group.on_refused(leg.index, f"the request failed: {error}")
                return
            self._release_held(order for _, _, order in sent)
            with trio.move_on_after(leg_timeout_s):
                while True:
                    for group, leg, order in working():
                        self._settle(group, leg.index, order)
                    if not working():
                        return
                    await self._changed.wait()
            for group, leg, order in working():
                group.on_timeout(leg.index, self._fate(group, leg.index, order))
        finally:
            for _, _, order in sent:
                del self._working[order.cloid]

    def _release_held(self, orders: Iterable[PlaceOrder]) -> None:
        """The fills held for these orders, now that their answers told their ids."""
        for order in orders:
            for fill in self._unidentified.release(order.cloid):
                self.on_fill(fill)

    def _fate(self, group: LegGroup, index: int, order: PlaceOrder) -> str | None:
        """What the dispatcher knows of a leg's order that did not end in time, for the
        group's reason: the venue's end and total, and how much of it was heard as fills
        (an order the venue ended whose fills never reached ``on_fill``), else its state."""
        tracked = self.dispatcher.registry.get(order.cloid)
        if tracked is None:
            return None
        if not tracked.state.is_terminal:
            return f"its order is {tracked.state.value}"
        answered = tracked.answered_filled_sz
        total = tracked.filled_sz if answered is None else answered
        return (
            f"the venue ended its order {tracked.state.value} with {total:g} filled, "
            f"{group.filled[index]:g} of it heard as fills"
        )

    def _settle(self, group: LegGroup, index: int, order: PlaceOrder) -> None:
        """What the dispatcher knows of the leg's order: refused, or ended with a total."""
        tracked = self.dispatcher.registry.get(order.cloid)
        if tracked is None:
            return
        if tracked.state is OrderState.REJECTED:
            group.on_refused(index, tracked.reason or "rejected")
        elif tracked.state is OrderState.FILLED:
            group.on_ended(index, tracked.sz)
        elif tracked.state.is_terminal:
            # An IOC canceled after filling in part: the answer's total, else what was seen.
            filled = tracked.answered_filled_sz
            group.on_ended(index, tracked.filled_sz if filled is None else filled)
