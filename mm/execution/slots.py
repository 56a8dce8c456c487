"""Executor slots: each a supervised child that turns a symbol's desired ladder into orders.

The strategy publishes one ``QuoteLadder`` per symbol (mm.execution.commands) into the mailbox
of the symbol's slot. A symbol always maps to the same slot (a stable hash), and a slot handles
one ladder of a symbol at a time, so its orders are never raced by another: each symbol has a
worker of its own in the slot, started at its first ladder and woken by the mailbox whenever a
new one comes (one task hop from the strategy task to the order client). The symbols of one
slot go side by side: one awaiting the venue's answer to its requests (a block or two) does not
hold the others' ladders in the mailbox. A mailbox keeps only the latest ladder per symbol: a
symbol that falls behind acts on the newest ladder, never on stale ones. A pull (an empty
ladder) does not wait for the worker: while the worker awaits the venue, the symbol's puller
cancels at once the working orders no request holds (``ExecutorSlot._pull_at_once``).
A slot reconciles the desired ladder with the symbol's live orders (the dispatcher's registry),
then sends cancels, modifies and places through the order router, which passes the rate
limiter and never re-sends an order whose fate is unknown.

The order budget is one for every symbol (``mm.execution.budget`` holds its policy): the
``BudgetDesk`` says how many of a plan's places and modifies may go now, the levels that matter
first, and the rest waits there as the symbol's demand, without holding the slot. When tokens
come, the desk divides them across the waiting symbols and puts each one it served back in
its slot's mailbox: the slot plans again from the symbol's latest ladder (the strategy task
re-quotes a waiting symbol on every book of it) and the live orders of that moment, never from
the plan it held. A plan older than its symbol's latest book by more than
``executor.budget.max_plan_age_s`` is never sent: its cancels go, and the strategy is asked for
a fresh one. Nothing here swallows an error: a failing request or budget read propagates to the
slot's supervisor, and the desk forgets nothing a restarted slot would need (the next ladder
carries the symbol's whole wish again).
"""

from __future__ import annotations

import zlib
from collections import deque
from collections.abc import Callable, Sequence

import attrs
import trio

from mm.execution.audit import AuditConfig
from mm.execution.budget import BudgetConfig, Want, divide, rank, want
from mm.execution.commands import QuoteLadder
from mm.execution.dispatch import Dispatcher
from mm.execution.orders import OrderRouter
from mm.execution.reconcile import LiveOrder, Plan, ReconcileConfig, reconcile
from mm.model import DesiredOrder, ModifyOrder, PlaceOrder, Side
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
    # How the order budget, one for every symbol, is divided (mm.execution.budget).
    budget: BudgetConfig = attrs.field(factory=BudgetConfig)


def slot_for(coin: str, slots: int) -> int:
    """The slot of a symbol: stable across runs and restarts."""
    return zlib.crc32(coin.encode()) % slots


class Mailbox:
    """Latest ladder per symbol wins; ``get`` hands out symbols in the order they arrived.

    A symbol can be claimed (``claim``) by the worker that executes it: from then on its
    ladders wake that worker (``take``), one hop from the strategy task, instead of
    queueing for ``get``; released (the worker ended, failed or was cancelled), a ladder of it
    that waits goes back in the queue for ``get``, so a restarted slot finds it. ``replan``
    puts a symbol back with the last ladder handed out for it (unless a newer one waits
    already): its slot plans it again, from the live orders of then. ``len`` counts the
    ladders waiting, claimed symbols' too. Plain bookkeeping and Trio events; ``claim`` raises
    ``RuntimeError`` for a symbol claimed already (two workers would race its orders)."""

    def __init__(self) -> None:
        self._latest: dict[str, QuoteLadder] = {}  # waiting ladders, per symbol
        self._last: dict[str, QuoteLadder] = {}  # the last ladder handed out, per symbol
        self._order: deque[str] = deque()  # unclaimed symbols with a ladder, in arrival order
        self._arrived = trio.Event()
        # Claimed symbols, each with the event its worker waits on (None: it is at work).
        self._claimed: dict[str, trio.Event | None] = {}
        # Per claimed symbol, the event its puller waits on for an empty ladder (``pulled``).
        self._pulls: dict[str, trio.Event] = {}
        self.replaced = 0  # ladders superseded before a slot took them

    def put(self, ladder: QuoteLadder) -> None:
        coin = ladder.coin
        if coin in self._latest:
            self.replaced += 1
        elif coin in self._claimed:
            waiting = self._claimed[coin]
            if waiting is not None:
                waiting.set()
        else:
            self._order.append(coin)
            self._arrived.set()
        self._latest[coin] = ladder
        if not ladder.desired:
            pull = self._pulls.get(coin)
            if pull is not None:
                pull.set()

    def replan(self, coin: str) -> bool:
        """Hand ``coin`` out again; False when there is nothing to plan it from."""
        if coin in self._latest:
            return True
        ladder = self._last.get(coin)
        if ladder is None:
            return False
        self.put(ladder)
        return True

    def waiting(self, coin: str) -> bool:
        """Whether a ladder of ``coin`` newer than the one at work waits."""
        return coin in self._latest

    def __len__(self) -> int:
        return len(self._latest)

    def clear(self) -> None:
        """Drop every waiting ladder (the strategy is stopping)."""
        self._latest.clear()
        self._last.clear()
        self._order.clear()

    async def get(self) -> QuoteLadder:
        """The next ladder of an unclaimed symbol, in the order the symbols arrived."""
        while not self._order:
            self._arrived = trio.Event()
            await self._arrived.wait()
            # Woken, then cancelled before running (the slot is failing): leave the ladder.
            await trio.lowlevel.checkpoint_if_cancelled()
        return self._hand_out(self._order.popleft())

    async def pulled(self, coin: str) -> None:
        """Returns when an empty ladder of ``coin`` (a pull) waits while the worker that
        claimed the symbol is at work, not waiting in ``take`` (which hands it the ladder)."""
        while True:
            pull = self._pulls[coin] = trio.Event()
            await pull.wait()
            latest = self._latest.get(coin)
            if latest is not None and not latest.desired and self._claimed.get(coin, 0) is None:
                return

    def _hand_out(self, coin: str) -> QuoteLadder:
        ladder = self._latest.pop(coin)
        self._last[coin] = ladder
        return ladder

    def claim(self, coin: str) -> None:
        """From now on ``coin``'s ladders go to the one worker that claimed it (``take``),
        until it ``release``s the symbol. Raises ``RuntimeError`` if it is claimed already."""
        if coin in self._claimed:
            raise RuntimeError(f"{coin} is claimed already")
        self._claimed[coin] = None

    async def take(self, coin: str) -> QuoteLadder:
        """The latest ladder of ``coin``, which the caller claimed: waits until one comes."""
        while coin not in self._latest:
            waiting = self._claimed[coin] = trio.Event()
            try:
                await waiting.wait()
                await trio.lowlevel.checkpoint_if_cancelled()  # as in ``get``
            finally:
                self._claimed[coin] = None
        return self._hand_out(coin)

    def release(self, coin: str) -> None:
        """``coin``'s worker is gone: its waiting ladder, if any, queues again for ``get``."""
        self._pulls.pop(coin, None)
        if self._claimed.pop(coin, False) is False:
            return
        if coin in self._latest:  # waiting for the worker that is gone: back in the queue
            self._order.append(coin)
            self._arrived.set()


@attrs.frozen
class Grant:
    """What the desk gave one symbol's plan: ``n`` of its ranked orders may go now.

    ``granted_at`` is when the desk found the tokens it reserved for the symbol (the monotonic
    clock, ``trio.current_time``; None: none were reserved, this plan did not wait);
    ``waited_s`` how long the symbol's orders had waited for tokens when this grant gave some
    (None: it did not wait, or got nothing)."""

    n: int
    granted_at: float | None = None
    waited_s: float | None = None


class BudgetDesk:
    """The shared order budget handed to symbols by the policy of ``mm.execution.budget``.

    ``take`` gives a symbol's plan what it may send now (its reserved tokens, plus its part of
    the free ones beside the other symbols waiting) and keeps the rest as its demand; ``run``
    looks at the budget every ``poll_s`` while any symbol waits, divides what came across them,
    reserves it for each and hands the symbol to ``requeue`` (its slot's mailbox), so that it is
    planned again when its tokens are there. ``settle`` says a grant's orders were handed to the
    client (the limiter counts them from then; until then they are held back here, so no two
    symbols are given the same token). Never raises on its own: the budget's errors propagate.
    """

    def __init__(
        self,
        budget: Callable[[], int],
        config: BudgetConfig,
        requeue: Callable[[str], bool],
    ) -> None:
        self._budget = budget
        self.config = config
        self._requeue = requeue
        self._pending: dict[str, tuple[Want, ...]] = {}  # what each waiting symbol wants
        self._reserved: dict[str, int] = {}  # tokens found for a symbol, until it plans again
        self._granted_at: dict[str, float] = {}
        self._outstanding: dict[str, int] = {}  # granted, not yet handed to the client
        self._since: dict[str, float] = {}  # when each waiting symbol began to wait
        self.served: dict[str, float] = {}  # when each symbol was last given tokens
        self._wanted = trio.Event()

    def waiting(self) -> frozenset[str]:
        """The symbols whose orders wait for tokens (pending or reserved)."""
        return frozenset(self._pending.keys() | self._reserved.keys())

    def _held(self) -> int:
        return sum(self._reserved.values()) + sum(self._outstanding.values())

    def free(self) -> int:
        """Tokens nobody holds: the budget less what is reserved or granted and not yet sent."""
        return self._budget() - self._held()

    def take_all(self, coin: str, count: int) -> Grant | None:
        """The grant ``take`` gives a plan of ``count`` places and modifies when all of them
        may go now: no other symbol waits, and the tokens reserved for ``coin`` and the free
        ones cover them (the division gives it them all, so their ranking cannot matter and
        is not asked for). None, changing nothing: not all may go (``take`` decides)."""
        if any(other != coin for other in self._pending):
            return None
        # Free: the budget less every hold, this symbol's reservation too (the budget counts it).
        if count > self._reserved.get(coin, 0) + max(self.free(), 0):
            return None
        return self._grant(coin, count, count, trio.current_time())

    def take(self, coin: str, wants: Sequence[Want]) -> Grant:
        """How many of ``wants`` (ranked best first) ``coin`` may send now; the rest waits."""
        now = trio.current_time()
        reserved = self._reserved.get(coin, 0)
        pending = {other: w for other, w in self._pending.items() if other != coin}
        demands: dict[str, Sequence[Want]] = {coin: wants, **pending}
        free = self.free()  # less its reservation too: the budget counts those tokens
        extra = divide(max(free, 0), demands, self.served)[coin]
        n = min(len(wants), reserved + extra)
        grant = self._grant(coin, n, len(wants), now)
        if n < len(wants):
            self._pending[coin] = tuple(wants[n:])
        return grant

    def _grant(self, coin: str, n: int, wanted: int, now: float) -> Grant:
        """``n`` of the ``wanted`` orders of ``coin``'s plan go now: its reservation is used
        up, and the time it waits starts (or runs on) while some of them wait."""
        self._reserved.pop(coin, None)
        granted_at = self._granted_at.pop(coin, None)
        self._pending.pop(coin, None)
        since = self._since.get(coin)
        waited = now - since if n and since is not None else None
        if n < wanted:
            self._since[coin] = now if n or since is None else since
            self._wanted.set()
        else:
            self._since.pop(coin, None)
        if n:
            self.served[coin] = now
            self._outstanding[coin] = self._outstanding.get(coin, 0) + n
        return Grant(n, granted_at, waited)

    def budget_now(self) -> int:
        """The budget's own count of orders that may go now, holds aside."""
        return self._budget()

    def give_back(self, coin: str, wants: Sequence[Want]) -> None:
        """Orders ``coin`` was granted but could not send after all: they wait again."""
        if not wants:
            return
        self._pending[coin] = tuple(sorted([*self._pending.get(coin, ()), *wants]))
        self._since.setdefault(coin, trio.current_time())
        self._wanted.set()

    def settle(self, coin: str) -> None:
        """The orders ``coin`` was granted were handed to the client (or will not be sent)."""
        self._outstanding.pop(coin, None)

    def forget(self, coin: str) -> None:
        """``coin`` wants nothing until its next plan (its plan was too old to send): its
        reserved tokens go back, the time it has waited runs on."""
        self._pending.pop(coin, None)
        self._reserved.pop(coin, None)
        self._granted_at.pop(coin, None)

    def clear(self) -> None:
        """Forget every demand and reservation (trading stops; the next ladders start over)."""
        self._pending.clear()
        self._reserved.clear()
        self._granted_at.clear()
        self._outstanding.clear()
        self._since.clear()

    def poll(self) -> dict[str, int]:
        """Divide the free tokens across the waiting symbols and requeue each one served."""
        free = self.free()
        if free < 1 or not self._pending:
            return {}
        grants = {c: n for c, n in divide(free, self._pending, self.served).items() if n}
        now = trio.current_time()
        for coin, n in grants.items():
            del self._pending[coin]
            if self._requeue(coin):
                self._reserved[coin] = self._reserved.get(coin, 0) + n
                self._granted_at.setdefault(coin, now)
            else:  # nothing to plan it from: the next ladder brings its wish again
                self._since.pop(coin, None)
        return grants

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        task_status.started()
        while True:
            if not self._pending:
                self._wanted = trio.Event()
                await self._wanted.wait()
            await trio.sleep(self.config.poll_s)
            self.poll()


@attrs.frozen
class Handover:
    """One plan's orders handed to the order client, as the metrics see it.

    ``decision_s``: from the book frame the plan was made from (or the tokens' grant, when
    later) to the hand-over: the CPU path, budget waits excluded (None: a requote on a timer,
    with no new book and no wait). ``budget_wait_s``: how long the symbol's orders had waited for
    tokens (None: they did not wait). ``plan_age_s``: how much older the plan's book is than the
    symbol's latest book (0: made from it; None: nothing placed or modified)."""

    coin: str
    decision_s: float | None
    budget_wait_s: float | None
    plan_age_s: float | None


class ExecutorSlot:
    """One slot: takes ladders from its mailbox and sends each symbol's plan (see the module
    docstring). A failing request propagates (the supervisor restarts the slot)."""

    def __init__(
        self,
        index: int,
        mailbox: Mailbox,
        router: Callable[[], OrderRouter | None],
        dispatcher: Dispatcher,
        config: ExecutorConfig,
        *,
        on_sent: Callable[[QuoteLadder, Plan], None] | None = None,
        on_sending: Callable[[Handover], None] | None = None,
        allow: Callable[[Sequence[PlaceOrder]], list[PlaceOrder]] | None = None,
        budget: Callable[[], int] | None = None,
        desk: BudgetDesk | None = None,
        reducing: Callable[[str], Side | None] | None = None,
        latest_book_s: Callable[[str], float | None] | None = None,
        replan: Callable[[str], None] | None = None,
    ) -> None:
        self.index = index
        self.mailbox = mailbox
        self._router = router
        self.dispatcher = dispatcher
        self.config = config
        self.on_sent = on_sent
        self.on_sending = on_sending
        # The pre-trade checks: of a batch of intents, those that pass (one refused is never
        # sent).
        self.allow = allow
        # The order budget shared by every symbol; None: no budget, send the whole plan. A
        # bare ``budget`` (orders that may go now) gets a desk of this slot's own.
        if desk is None and budget is not None:
            desk = BudgetDesk(budget, config.budget, mailbox.replan)
        self.desk = desk
        self.reducing = reducing  # the side that reduces a high inventory, per symbol
        self.latest_book_s = latest_book_s  # when a symbol's latest book arrived (monotonic s)
        self.replan = replan  # ask the strategy for a fresh ladder of a symbol
        self.cycles = 0
        self.stale_plans = 0  # plans too old to send, re-planned instead
        self.superseded = 0  # plans left part sent: a newer ladder came while they were sent
        self.pulled_at_once = 0  # pulls that canceled orders while the worker awaited the venue

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Each symbol to a worker of its own, started at its first ladder: the worker claims
        the symbol's ladders from the mailbox and executes the latest each time it is free,
        woken straight by the strategy's hand-over (an older ladder that came meanwhile is
        dropped by the mailbox). A worker's failure fails the slot (its supervisor restarts
        it; the symbol's waiting ladder goes back to the mailbox's queue)."""
        async with trio.open_nursery() as nursery:
            task_status.started()
            while True:
                ladder = await self.mailbox.get()
                self.mailbox.claim(ladder.coin)
                nursery.start_soon(self._work, ladder)

    async def _work(self, ladder: QuoteLadder) -> None:
        coin = ladder.coin
        try:
            async with trio.open_nursery() as nursery:
                nursery.start_soon(self._pull_at_once, coin)
                while True:
                    await self.execute(ladder)
                    ladder = await self.mailbox.take(coin)
        finally:
            self.mailbox.release(coin)

    async def _pull_at_once(self, coin: str) -> None:
        """A pull (an empty ladder) that comes while the symbol's worker awaits the venue
        cancels at once the symbol's working orders that no request holds: the worker may be
        held for seconds (a place whose reply the venue lost is asked about, and that answer
        can be lost too; campaign seed 562 held one 10 s while the book was stale), and a quote
        resting on a stale book must not wait for it. The worker then drops the rest of its
        plan (a newer ladder waits) and works the pull, which cancels what its requests held
        once they are answered. Reconciling the empty ladder picks the same orders a pull
        would: working ones, never one pending an answer (its lifecycle allows no cancel)."""
        while True:
            await self.mailbox.pulled(coin)
            router = self._router()
            if router is None:
                continue
            held = self.dispatcher.awaited()
            live = [order for order in self.live_orders(coin) if order.cloid not in held]
            cancels = reconcile((), live, self.config.reconcile).cancel
            if cancels:
                self.pulled_at_once += 1
                await router.cancel([order.cloid for order in cancels])

    def _allowed(self, orders: list[PlaceOrder]) -> list[PlaceOrder]:
        return orders if self.allow is None or not orders else self.allow(orders)

    def live_orders(self, coin: str) -> list[LiveOrder]:
        return [LiveOrder.from_tracked(order) for order in self.dispatcher.registry.live(coin)]

    def _plan_age(self, ladder: QuoteLadder) -> float | None:
        """How much older the ladder's book is than the symbol's latest (None: unknown)."""
        if self.latest_book_s is None or not ladder.planned_from_s:
            return None
        latest = self.latest_book_s(ladder.coin)
        return None if latest is None else max(latest - ladder.planned_from_s, 0.0)

    async def execute(self, ladder: QuoteLadder) -> Plan:
        """Reconcile one symbol and send what the plan asks, cancels first (they free margin);
        places and modifies as the budget allows, the levels that matter first."""
        router = self._router()
        plan = reconcile(
            ladder.desired, self.live_orders(ladder.coin), self.config.reconcile, tick=ladder.tick
        )
        if router is None:  # the venue client is not up: nothing can be sent this cycle
            return plan
        coin = ladder.coin
        age = self._plan_age(ladder)
        reducing = self.reducing(coin) if self.reducing is not None else None
        grant = Grant(len(plan.place) + len(plan.modify))
        too_old = age is not None and age > self.config.budget.max_plan_age_s
        if (plan.place or plan.modify) and too_old:
            # Made from a book too old to send from: cancels go, the rest is planned afresh.
            self.stale_plans += 1
            if self.desk is not None:
                self.desk.forget(coin)
            if self.replan is not None:
                self.replan(coin)
            plan = within_budget(plan, 0, reducing)
        elif self.desk is not None:
            full = self.desk.take_all(coin, len(plan.place) + len(plan.modify))
            grant = full if full is not None else self.desk.take(coin, ranked_wants(plan, reducing))
            plan = within_budget(plan, grant.n, reducing)
        try:
            return await self._send(router, ladder, plan, grant, age, reducing)
        finally:
            if self.desk is not None:
                self.desk.settle(coin)

    def _superseded(self, coin: str, plan: Plan, reducing: Side | None) -> bool:
        """Whether a newer ladder of ``coin`` came while this plan's requests were answered
        (a reply lost and asked again, the venue slow): what is left of the plan is then not
        sent (its book may be stale by now: the newer decision may pull every quote), its
        budget is given back, and the newer ladder is worked next."""
        if not self.mailbox.waiting(coin):
            return False
        self.superseded += 1
        if self.desk is not None:
            left = within_budget(plan, 0, reducing)
            dropped = left.deferred[len(plan.deferred) :]
            self.desk.give_back(coin, [want(d, modify=False, reducing=reducing) for d in dropped])
        return True

    def _still_within(self, coin: str, plan: Plan, reducing: Side | None) -> Plan:
        """What is left of the plan, trimmed to the budget there is now: a request took a block
        or two to be answered, and something beside the desk (a multi-leg command, the
        flattener) may have spent tokens meanwhile; waiting in the limiter for more would hold
        the slot. What is trimmed waits at the desk again."""
        if self.desk is None:
            return plan
        trimmed = within_budget(plan, self.desk.budget_now(), reducing)
        if trimmed is not plan:
            dropped = trimmed.deferred[len(plan.deferred) :]
            self.desk.give_back(coin, [want(d, modify=False, reducing=reducing) for d in dropped])
        return trimmed

    async def _send(
        self,
        router: OrderRouter,
        ladder: QuoteLadder,
        plan: Plan,
        grant: Grant,
        age: float | None,
        reducing: Side | None,
    ) -> Plan:
        # The hand-over as measured now, recorded once the requests are made: the metrics
        # delay no order.
        handover = None
        if plan.calls() and self.on_sending is not None:
            handover = self._handover(ladder, plan, grant, age)
        try:
            return await self._requests(router, ladder, plan, reducing)
        finally:
            if handover is not None and self.on_sending is not None:
                self.on_sending(handover)

    async def _requests(
        self, router: OrderRouter, ladder: QuoteLadder, plan: Plan, reducing: Side | None
    ) -> Plan:
        if plan.cancel:
            await router.cancel([order.cloid for order in plan.cancel])
            plan = self._still_within(ladder.coin, plan, reducing)
        if self._superseded(ladder.coin, plan, reducing):
            return self._sent(ladder, within_budget(plan, 0, reducing))
        modified = [_place(ladder, desired, live.cloid) for live, desired in plan.modify]
        modifies = [ModifyOrder(order) for order in self._allowed(modified)]
        if modifies:
            await router.modify(modifies)
            sent = plan.modify
            rest = self._still_within(ladder.coin, attrs.evolve(plan, modify=[]), reducing)
            if self._superseded(ladder.coin, rest, reducing):
                rest = within_budget(rest, 0, reducing)
            plan = attrs.evolve(rest, modify=sent)
        places = [_place(ladder, desired, router.new_client_id()) for desired in plan.place]
        places = self._allowed(places)
        if places:
            await router.place(places)
        return self._sent(ladder, plan)

    def _sent(self, ladder: QuoteLadder, plan: Plan) -> Plan:
        self.cycles += 1
        if self.on_sent is not None:
            self.on_sent(ladder, plan)
        return plan

    def _handover(
        self, ladder: QuoteLadder, plan: Plan, grant: Grant, age: float | None
    ) -> Handover:
        now = trio.current_time()
        start: float | None = None
        if ladder.book_received_ms and ladder.planned_from_s:  # a book that moved the strategy
            start = ladder.planned_from_s
        if grant.granted_at is not None:
            start = grant.granted_at if start is None else max(start, grant.granted_at)
        tokens = bool(plan.place or plan.modify)
        return Handover(
            ladder.coin,
            None if start is None else max(now - start, 0.0),
            grant.waited_s if tokens else None,
            age if tokens else None,
        )


def ranked_wants(plan: Plan, reducing: Side | None = None) -> list[Want]:
    """The plan's places and modifies as the policy ranks them, best first."""
    wants = [want(desired, modify=False, reducing=reducing) for desired in plan.place]
    wants += [want(desired, modify=True, reducing=reducing) for _, desired in plan.modify]
    return sorted(wants)


def within_budget(plan: Plan, budget: int, reducing: Side | None = None) -> Plan:
    """The plan trimmed to ``budget`` places and modifies (cancels are free), the levels that
    matter first (``mm.execution.budget.rank``: the top of each side before the levels behind
    it, the reducing side first at a level while inventory is high, a missing order before
    moving one that rests). What is left waits for the tokens, and is then planned again from
    the latest ladder, instead of holding the slot on a plan made from an old book."""
    wanted = len(plan.modify) + len(plan.place)
    if wanted <= budget:
        return plan
    wants = [want(desired, modify=False, reducing=reducing) for desired in plan.place]
    wants += [want(desired, modify=True, reducing=reducing) for _, desired in plan.modify]
    chosen = set(rank(wants)[: max(budget, 0)])
    n_place = len(plan.place)
    return attrs.evolve(
        plan,
        place=[d for i, d in enumerate(plan.place) if i in chosen],
        modify=[m for i, m in enumerate(plan.modify) if i + n_place in chosen],
        deferred=[
            *plan.deferred,
            *(d for i, d in enumerate(plan.place) if i not in chosen),
            *(d for i, (_, d) in enumerate(plan.modify) if i + n_place not in chosen),
        ],
    )


def _place(ladder: QuoteLadder, desired: DesiredOrder, cloid: str) -> PlaceOrder:
    return PlaceOrder(ladder.coin, desired.side, desired.px, desired.sz, ladder.tif, cloid)
