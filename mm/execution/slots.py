"""Executor slots: each a supervised child that turns a symbol's desired ladder into orders.

The strategy publishes one ``QuoteLadder`` per symbol (mm.execution.commands) into the mailbox
of the symbol's slot. A symbol always maps to the same slot (a stable hash), so one slot at a time
handles a symbol and its orders are never raced by another. A mailbox keeps only the latest
ladder per symbol: a slot that falls behind acts on the newest ladder, never on stale ones.
A slot reconciles the desired ladder with the symbol's live orders (the dispatcher's registry),
then sends cancels, modifies and places through the order router, which passes the rate
limiter and never re-sends an order whose fate is unknown.
"""

from __future__ import annotations

import zlib
from collections import deque
from collections.abc import Callable

import attrs
import trio

from mm.execution.audit import AuditConfig
from mm.execution.commands import QuoteLadder
from mm.execution.dispatch import Dispatcher
from mm.execution.orders import OrderRouter
from mm.execution.reconcile import LiveOrder, Plan, ReconcileConfig, reconcile
from mm.model import DesiredOrder, ModifyOrder, PlaceOrder
from mm.settings import at_least, positive, setting


@attrs.frozen
class ExecutorConfig:
    # Executor slots (supervised children); each symbol is always handled by the same one.
    slots: int = setting(2, at_least(1))
    # A strategy's multi-leg command: a leg with no end (its fills) this long after the venue
    # answered it stops its group (mm.execution.legs).
    leg_timeout_s: float = setting(5.0, positive)
    # When a live order counts as already where the strategy wants it (price in bps or ticks,
    # size as a fraction), so it is kept instead of modified.
    reconcile: ReconcileConfig = attrs.field(factory=ReconcileConfig)
    # The order auditor: orphans, ghosts and stuck orders (mm.execution.audit).
    audit: AuditConfig = attrs.field(factory=AuditConfig)


def slot_for(coin: str, slots: int) -> int:
    """The slot of a symbol: stable across runs and restarts."""
    return zlib.crc32(coin.encode()) % slots


class Mailbox:
    """Latest ladder per symbol wins; ``get`` hands out symbols in the order they arrived."""

    def __init__(self) -> None:
        self._latest: dict[str, QuoteLadder] = {}
        self._order: deque[str] = deque()
        self._arrived = trio.Event()
        self.replaced = 0  # ladders superseded before a slot took them

    def put(self, ladder: QuoteLadder) -> None:
        if ladder.coin in self._latest:
            self.replaced += 1
        else:
            self._order.append(ladder.coin)
        self._latest[ladder.coin] = ladder
        self._arrived.set()

    def __len__(self) -> int:
        return len(self._order)

    def clear(self) -> None:
        """Drop every waiting ladder (the strategy is stopping)."""
        self._latest.clear()
        self._order.clear()

    async def get(self) -> QuoteLadder:
        while not self._order:
            self._arrived = trio.Event()
            await self._arrived.wait()
        coin = self._order.popleft()
        return self._latest.pop(coin)


class ExecutorSlot:
    def __init__(
        self,
        index: int,
        mailbox: Mailbox,
        router: Callable[[], OrderRouter | None],
        dispatcher: Dispatcher,
        config: ExecutorConfig,
        *,
        on_sent: Callable[[QuoteLadder, Plan], None] | None = None,
        on_sending: Callable[[QuoteLadder], None] | None = None,
        allow: Callable[[PlaceOrder], bool] | None = None,
        budget: Callable[[], int] | None = None,
    ) -> None:
        self.index = index
        self.mailbox = mailbox
        self._router = router
        self.dispatcher = dispatcher
        self.config = config
        self.on_sent = on_sent
        self.on_sending = on_sending
        self.allow = allow  # pre-trade checks: an intent they refuse is never sent
        # Orders that may be placed or modified now without waiting (the order budget); None:
        # no budget, send the whole plan.
        self.budget = budget
        self.cycles = 0

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        task_status.started()
        while True:
            ladder = await self.mailbox.get()
            await self.execute(ladder)

    def _within_budget_now(self, plan: Plan) -> Plan:
        return plan if self.budget is None else within_budget(plan, self.budget())

    def _allowed(self, order: PlaceOrder) -> bool:
        return self.allow is None or self.allow(order)

    def live_orders(self, coin: str) -> list[LiveOrder]:
        return [LiveOrder.from_tracked(order) for order in self.dispatcher.registry.live(coin)]

    async def execute(self, ladder: QuoteLadder) -> Plan:
        """Reconcile one symbol and send what the plan asks, cancels first (they free margin)."""
        router = self._router()
        plan = reconcile(
            ladder.desired, self.live_orders(ladder.coin), self.config.reconcile, tick=ladder.tick
        )
        if router is None:  # the venue client is not up: nothing can be sent this cycle
            return plan
        if self.budget is not None:
            plan = within_budget(plan, self.budget())
        if plan.calls() and self.on_sending is not None:
            self.on_sending(ladder)  # the orders are handed to the client now
        if plan.cancel:
            await router.cancel([order.cloid for order in plan.cancel])
            # The cancels took a block or two to be answered, and the other slots may have
            # spent the budget meanwhile: what is left of the plan takes what it allows now
            # (waiting in the limiter for more would race them, and can starve).
            plan = self._within_budget_now(plan)
        modifies = [
            ModifyOrder(_place(ladder, desired, live.cloid)) for live, desired in plan.modify
        ]
        modifies = [modify for modify in modifies if self._allowed(modify.order)]
        if modifies:
            await router.modify(modifies)
            sent = plan.modify
            plan = attrs.evolve(self._within_budget_now(attrs.evolve(plan, modify=[])), modify=sent)
        places = [_place(ladder, desired, router.new_client_id()) for desired in plan.place]
        places = [order for order in places if self._allowed(order)]
        if places:
            await router.place(places)
        self.cycles += 1
        if self.on_sent is not None:
            self.on_sent(ladder, plan)
        return plan


def within_budget(plan: Plan, budget: int) -> Plan:
    """The plan trimmed to ``budget`` places and modifies (cancels are free), the levels that
    matter first: the top of each side before the levels behind it, and at one level a missing
    order (a place) before moving one that rests (a modify). What is left waits for the next
    ladder, built from a fresher book, instead of holding the slot while the budget refills and
    then sending a plan made from an old one."""
    wanted = len(plan.modify) + len(plan.place)
    if wanted <= budget:
        return plan
    ranked: list[tuple[int, int, int]] = []  # (level, 0 place / 1 modify, index)
    ranked += [(desired.level, 0, i) for i, desired in enumerate(plan.place)]
    ranked += [(desired.level, 1, i) for i, (_, desired) in enumerate(plan.modify)]
    chosen = sorted(ranked)[: max(budget, 0)]
    places = {i for _, kind, i in chosen if kind == 0}
    modifies = {i for _, kind, i in chosen if kind == 1}
    return attrs.evolve(
        plan,
        place=[d for i, d in enumerate(plan.place) if i in places],
        modify=[m for i, m in enumerate(plan.modify) if i in modifies],
        deferred=[
            *plan.deferred,
            *(d for i, d in enumerate(plan.place) if i not in places),
            *(d for i, (_, d) in enumerate(plan.modify) if i not in modifies),
        ],
    )


def _place(ladder: QuoteLadder, desired: DesiredOrder, cloid: str) -> PlaceOrder:
    return PlaceOrder(ladder.coin, desired.side, desired.px, desired.sz, ladder.tif, cloid)
