"""The trading subtree: the generic strategy task and the executor slots, as supervised children.

The strategy task (``Trading.run_strategy``) runs the strategy ``strategy.kind`` selected
(``mm.strategies.registry``): it is told of the books of its symbols, the trade tape and its
fills, and asked to decide. Each book is handled as the bus publishes it, in the publisher's task
(``BookBus.listening``: no task switch between a book and what is decided on it). The market
maker hears of it and decides, and each quote ladder goes to the mailbox of the symbol's executor
slot (latest per symbol wins), whose worker sends it in the scheduler's next pass; the strategy
task then does the decision's bookkeeping (the quotes' gauges, the summary), once the slots have
sent, and the decisions at the strategy's timer. When a triangle desk takes the strategy's
decisions (triangular arbitrage: perishable signals, one book at a time), its signals go to the
desk there and then, and the bookkeeping that can follow (the markouts) follows; the task keeps
the timer and the gauges. Either way an error of the publisher's path is raised in the strategy
task.

Each decision concerns only the symbols with news (``Changes``: a new book, a trade, a fill,
the executor asking for a fresh plan), all of them after a change of the permission board, of
sync or of the stale set and at the strategy's ``wake_in`` deadline, so one symbol's book does
not re-run every other's; a symbol whose orders wait for the order budget
(``BudgetDesk``, shared by the slots, its policy in ``mm.execution.budget``) is quoted afresh on
every book of it. Each ladder carries when the book it was planned from arrived
(``planned_from_s``), and each hand-over to the client is measured: decision latency, budget wait
and the plan's age (``TradingMetrics``). The view it decides on says whether the user stream is in
sync with the venue and which books are stale; what may be sent is read from the permission board
(``mm.execution.permissions``), never decided here. Fills reach the portfolio
(``mm.portfolio.Portfolio``, fed by its channel outside the trading scope), and each fill new to it
then the markouts, the multi-leg executor and the strategy here: they read the portfolio, never own
it. When the subtree stops (``mm stop``, the kill switch), every open order of the account is
canceled at the venue by the one cancel-all (``mm.execution.cancel_all``), shielded and within its
deadline; a crash of the strategy does the same on its way out.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Awaitable, Callable, Collection, Iterable, Iterator, Mapping, Sequence
from functools import partial
from typing import Any

import trio
from loguru import logger
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from mm import clock
from mm.book import Book
from mm.execution.budget import reducing_side
from mm.execution.cancel_all import CancelAll, CancelAllReport, Purpose
from mm.execution.commands import LegGroup, MultiLeg, QuoteLadder
from mm.execution.dispatch import Dispatcher, DispatchOutput
from mm.execution.legs import LegExecutor
from mm.execution.orders import OrderRouter
from mm.execution.permissions import Permission, PermissionBoard
from mm.execution.pretrade import (
    PretradeConfig,
    PretradeContext,
    RecentOrders,
    Rejection,
    RejectionLog,
    TokenBucket,
    check,
)
from mm.execution.slots import (
    BudgetDesk,
    ExecutorConfig,
    ExecutorSlot,
    Handover,
    Mailbox,
    slot_for,
)
from mm.metrics import LATENCY_BUCKETS
from mm.model import AccountState, Fill, PlaceOrder, Side, TradeId
from mm.portfolio import MarkoutListener, Markouts, Portfolio
from mm.strategies.base import AfterDecision, Decision, MarketView, Strategy
from mm.strategies.triarb.desk import TriangleDesk
from mm.strategies.triarb.signals import Signal
from mm.venues.base import VenueAdapter

SUMMARY_EVERY_S = 60.0  # the console's one-line summary
TRADE_BACKLOG_MS = 5_000  # a trade older than the strategy's start by more is a backlog's
GROUPS_KEPT = 100  # the latest multi-leg commands' outcomes, for status
# Seconds: a symbol waits for the order budget from a few ms to tens of seconds (at the shipped
# 2 orders/s, ten symbols taking turns wait seconds each).
BUDGET_WAIT_BUCKETS = (0.001, 0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 20.0, 30.0, 60.0)


class TradingMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.decision_latency = Histogram(
            "mm_decision_latency_seconds",
            "From a book frame's arrival (or the order budget's tokens for a symbol that "
            "waited, when later) to the orders planned from it being handed to the order client "
            "(signing and the socket write follow): the CPU path, budget waits excluded.",
            buckets=LATENCY_BUCKETS,
            registry=registry,
        )
        self.budget_wait = Histogram(
            "mm_budget_wait_seconds",
            "How long a symbol's places and modifies waited for the order budget's tokens "
            "(observed when tokens came; orders that did not wait are not counted).",
            buckets=BUDGET_WAIT_BUCKETS,
            registry=registry,
        )
        self.plan_age = Histogram(
            "mm_plan_age_seconds",
            "At each hand-over of places or modifies: how much older the book the plan was "
            "made from is than the symbol's latest book (0: made from it). A plan older than "
            "executor.budget.max_plan_age_s is re-planned, never sent.",
            buckets=(0.0, *LATENCY_BUCKETS),
            registry=registry,
        )
        self.fills = Counter("mm_fills", "Our fills.", ["symbol", "side"], registry=registry)
        self.position = Gauge(
            "mm_position_coins", "Signed position in coin units.", ["symbol"], registry=registry
        )
        self.pnl = Gauge(
            "mm_pnl_usd",
            "PnL by kind (realized, unrealized, fees, total).",
            ["symbol", "kind"],
            registry=registry,
        )
        self.markout = Gauge(
            "mm_markout_bps",
            "Mean fill markout by horizon.",
            ["symbol", "horizon"],
            registry=registry,
        )


class FreshMarks(Mapping[str, float]):
    """The mids of the followed books that are fresh, read as they are asked for: what the
    pre-trade checks value a quote currency from (the portfolio's ``currency_mark``, the one
    valuation of the service). A symbol with no book, no mid, or a book the feed flags stale
    (``stale_coins``, read once, at the first mark asked for) has no mark, so a currency valued
    only through it is not known and the order is refused."""

    def __init__(self, adapter: VenueAdapter) -> None:
        self._adapter = adapter
        self._stale: frozenset[str] | None = None

    def __getitem__(self, coin: str) -> float:
        book = self._adapter.bus.latest(coin)
        mid = None if book is None else book.mid
        if mid is None:
            raise KeyError(coin)
        stale = self._stale
        if stale is None:
            stale = self._stale = frozenset(self._adapter.stale_coins())
        if coin in stale:
            raise KeyError(coin)
        return mid

    def __iter__(self) -> Iterator[str]:
        return (coin for coin in self._adapter.coins if coin in self)

    def __len__(self) -> int:
        return sum(1 for _ in self)


class PretradeGate:
    """The pre-trade checks at the last hop before the venue client, with their trackers.

    The notional limit is in USD: each order's quote is valued in it by the portfolio (a USD
    quote, only ever a quote of the symbols traded, at 1; another from the fresh books of the
    symbols that price it, ``FreshMarks``); a quote whose value is not known refuses the
    order."""

    def __init__(self, config: PretradeConfig, trading: Trading) -> None:
        self.config = config
        self.trading = trading
        self.recent = RecentOrders(config.duplicate_window_s)
        self.throttle: TokenBucket | None = None
        self.log = RejectionLog(config.log_quiet_s)
        # The symbols whose quote is the value currency (USDC, USDT: 1 for good), and that
        # quote: the market maker's context reads one dict for it.
        self._unit_quotes: dict[str, str] = {}
        self.rejected = Counter(
            "mm_pretrade_rejections",
            "Order intents refused by a pre-trade check.",
            ["check"],
            registry=trading.registry,
        )

    def allow(self, order: PlaceOrder) -> bool:
        """Whether ``order`` passes the checks (then it counts as sent: it must be sent)."""
        return self.refusal(order) is None

    def refusal(self, order: PlaceOrder) -> str | None:
        """Why the checks refuse ``order`` (the check and its detail), None when it passes
        (then it counts as sent: it must be sent)."""
        now = trio.current_time()
        throttle = self.throttle
        if throttle is None:
            throttle = self.throttle = TokenBucket.from_config(self.config, now)
        rejection = check(order, self._context(order.coin, now, throttle), self.config)
        if rejection is None:
            return None
        self._rejected(rejection, now)
        return f"pre-trade check {rejection.check}: {rejection.detail}"

    def allowed(self, orders: Sequence[PlaceOrder]) -> list[PlaceOrder]:
        """The orders that pass the checks, in order, each checked as ``allow`` checks it (and
        counted as sent: they must be sent). What the checks read is the same for every order
        of one call (nothing else runs meanwhile), so it is read once per symbol."""
        return self._check(orders)

    def _check(self, orders: Sequence[PlaceOrder]) -> list[PlaceOrder]:
        if not orders:
            return []
        now = trio.current_time()
        if self.throttle is None:
            self.throttle = TokenBucket.from_config(self.config, now)
        contexts: dict[str, PretradeContext] = {}
        passed = []
        for order in orders:
            context = contexts.get(order.coin)
            if context is None:
                context = contexts[order.coin] = self._context(order.coin, now, self.throttle)
            rejection = check(order, context, self.config)
            if rejection is None:
                passed.append(order)
            else:
                self._rejected(rejection, now)
        return passed

    def _rejected(self, rejection: Rejection, now: float) -> None:
        """Count a rejection, and log it when it is the first of its check in a while."""
        self.rejected.labels(check=rejection.check.value).inc()
        if self.log.record(rejection, now):
            logger.warning(
                "pre-trade check {} refused an order: {}", rejection.check, rejection.detail
            )

    def _context(self, coin: str, now: float, throttle: TokenBucket) -> PretradeContext:
        trading = self.trading
        book = trading.adapter.bus.latest(coin)
        permission = trading.permission(coin)
        quote = self._unit_quotes.get(coin)
        quote_usd: float | None = 1.0
        if quote is None:
            quote, quote_usd = self._quote_value(coin)
        return PretradeContext(
            mid=book.mid if book is not None else None,
            open_orders=trading.dispatcher.registry.live_count(),
            reduce_only=permission.reduce_only,
            position=trading.positions.position(coin),
            recent=self.recent,
            throttle=throttle,
            now=now,
            quote=quote,
            quote_usd=quote_usd,
            closed=permission.closed,
        )

    def _quote_value(self, coin: str) -> tuple[str, float | None]:
        """``coin``'s quote and its USD value now, by the portfolio's valuation from the fresh
        books (None: not known); a quote that is the value currency is remembered."""
        portfolio = self.trading.portfolio
        quote = portfolio.quote(coin)
        if quote is None:
            return f"the quote of {coin} (its instrument not read)", None
        if portfolio.is_value_unit(quote):
            self._unit_quotes[coin] = quote
            return quote, 1.0
        return quote, portfolio.currency_mark(quote, FreshMarks(self.trading.adapter))


def arrival_s(book: Book) -> float:
    """When a book's frame arrived, in seconds of the monotonic clock (``trio.current_time``,
    from its ``received_ns``), as plans and sends are compared on it; 0: not stamped."""
    return book.received_ns / 1e9


class Changes:
    """Which symbols the next decision evaluates, so that one symbol's book does not re-run
    every other's: those with a new book on the bus, a trade or a fill since the last decision,
    and those the executor asks a fresh plan for; every symbol after a change that concerns
    them all (``everything``: the permission board, sync, the stale set, the strategy's
    timer). Nothing is lost between decisions: a book published while the loop was busy is
    new at the next look (the bus keeps the latest per symbol, compared here by identity), and
    what is touched or asked stays until taken. Plain bookkeeping, no I/O."""

    def __init__(self, symbols: Sequence[str]) -> None:
        self.symbols = tuple(symbols)
        self._index = {coin: i for i, coin in enumerate(self.symbols)}
        self._seen: dict[str, Book] = {}  # the last book the strategy was told of, per symbol
        self._touched: set[str] = set()
        self._requote: set[str] = set()
        self._everything = True

    def reset(self) -> None:
        """Start afresh (the strategy task runs again): every book is news, every symbol due."""
        self._seen.clear()
        self._touched.clear()
        self._requote.clear()
        self._everything = True

    def seen(self, coin: str) -> Book | None:
        return self._seen.get(coin)

    def told(self, book: Book) -> bool:
        """Whether ``book`` is news of a symbol followed, marked as told (the strategy hears of
        it as it is published: no news at the next look)."""
        coin = book.coin
        if coin not in self._index or self._seen.get(coin) is book:
            return False
        self._seen[coin] = book
        return True

    def new_books(self, latest: Callable[[str], Book | None]) -> list[Book]:
        """The books newer than the last the strategy was told of, marked as told."""
        books = []
        for coin in self.symbols:
            book = latest(coin)
            if book is not None and book is not self._seen.get(coin):
                self._seen[coin] = book
                books.append(book)
        return books

    def touch(self, coin: str) -> None:
        """Something new for ``coin`` (a trade, a fill): evaluate it at the next decision."""
        if coin in self._index:
            self._touched.add(coin)

    def request(self, coin: str) -> None:
        """The executor asks a fresh plan of ``coin`` at the next decision."""
        if coin in self._index:
            self._requote.add(coin)

    def everything(self) -> None:
        self._everything = True

    def take(
        self, books: Iterable[Book], waiting: Collection[str]
    ) -> tuple[tuple[str, ...] | None, frozenset[str]]:
        """What the next decision evaluates (None: every symbol), in the order of the symbols,
        and which symbols it quotes afresh: those asked for, and those whose orders wait for
        the budget and have a new book (so that the plan sent when tokens come is fresh)."""
        booked = {book.coin for book in books}
        requote = frozenset(self._requote | {coin for coin in booked if coin in waiting})
        changed: tuple[str, ...] | None = None
        if not self._everything:
            coins = booked | self._touched | requote
            changed = tuple(sorted(coins, key=self._index.__getitem__))
        self._everything = False
        self._touched.clear()
        self._requote.clear()
        return changed, requote


class Trading:
    """The generic strategy task and the executor slots it feeds.

    ``run_strategy`` follows the book bus and the trade tape of the strategy's symbols, tells
    the strategy of each new book and trade, asks it to decide, and hands its quote ladders to
    the mailbox of each symbol's slot. Each fill the portfolio applied goes to the markouts, the
    multi-leg executor and the strategy. A strategy's exception crashes the task (the supervisor
    restarts it), and the crash cancels the account's orders on the way out.
    """

    def __init__(
        self,
        strategy: Strategy,
        executor: ExecutorConfig,
        adapter: VenueAdapter,
        registry: CollectorRegistry,
        permissions: PermissionBoard,
        cancel_all: CancelAll,
        pretrade: PretradeConfig | None = None,
        on_markout: MarkoutListener | None = None,
        *,
        portfolio: Portfolio,
        legs: LegExecutor,
        dispatcher: Dispatcher,
        router: Callable[[], OrderRouter | None],
        triangles: TriangleDesk | None = None,
    ) -> None:
        self.registry = registry
        # Triangular arbitrage's executor: its slots take the strategy's signals.
        self.triangles = triangles
        self.permissions = permissions  # read only: its owners write it
        self.cancel_all = cancel_all
        self.strategy = strategy
        # Its bookkeeping of a decision, left until the decision's orders are on their way.
        self._after = strategy if isinstance(strategy, AfterDecision) else None
        self.executor = executor
        self.adapter = adapter
        # The executor's order lifecycle and its way to the venue (once the client is up).
        self.dispatcher = dispatcher
        self.router = router
        self.legs = legs  # multi-leg commands (shared with the flattener: fills reach it here)
        self.groups: deque[LegGroup] = deque(maxlen=GROUPS_KEPT)  # multi-leg commands, newest last
        self.metrics = TradingMetrics(registry)
        self.portfolio = portfolio  # read only: the portfolio child feeds it
        self.positions = portfolio.positions
        self.markouts = Markouts(listener=self._on_markout)
        self._markout_listener = on_markout  # the journal's, for mm report
        self.mailboxes = [Mailbox() for _ in range(executor.slots)]
        self.changes = Changes(strategy.symbols)
        # The order budget, one for every symbol, divided across them by its policy.
        self.desk = BudgetDesk(
            lambda: adapter.limiter.order_budget(trio.current_time()),
            executor.budget,
            self._requeue,
        )
        self._filled = False  # the first fill was logged
        self.pretrade = PretradeGate(pretrade or PretradeConfig(), self)
        # What the book handler raised in the publisher's task, for the strategy task to raise.
        self._direct_failure: Exception | None = None
        self._direct_failed = trio.Event()
        # The market maker's decisions (``_decision``): when every symbol is evaluated again,
        # the sync and stale set of the last one, when the last one was made while its
        # bookkeeping waits for the strategy task (None: none waits), and the strategy task's
        # wake-up for that bookkeeping or a failure.
        self._deadline = -math.inf
        self._global_state: tuple[bool, frozenset[str]] | None = None
        self._decided_at: float | None = None
        self._wake = trio.Event()

    # --- children ---------------------------------------------------------------------------

    def children(self) -> list[tuple[str, Callable[..., Awaitable[None]]]]:
        """The executor's children beside the strategy task: the triangle desk's slots when
        the strategy finds triangles, else the quote slots; each its name and its run."""
        if self.triangles is not None:
            return self.triangles.children(self._allow_leg)
        return [(f"slot-{slot.index}", slot.run) for slot in self.slots()]

    def slots(self) -> list[ExecutorSlot]:
        return [
            ExecutorSlot(
                index,
                mailbox,
                self.router,
                self.dispatcher,
                self.executor,
                on_sending=self._sending,
                allow=self.pretrade.allowed,
                desk=self.desk,
                reducing=self._reducing,
                latest_book_s=self._latest_book_s,
                replan=self.changes.request,
            )
            for index, mailbox in enumerate(self.mailboxes)
        ]

    async def run_strategy(
        self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED
    ) -> None:
        if self.adapter.client is None:
            raise RuntimeError("the user feed must start before the strategy")
        self.changes.reset()
        self.desk.clear()
        self._direct_failure, self._direct_failed = None, trio.Event()
        self._global_state, self._decided_at, self._wake = None, None, trio.Event()
        # Limits in USD need every amount valued in a dollar: the pairs as the venue lists them
        # (a venue's symbols name no quote, Hyperliquid's; triarb's are checked at load too).
        unvalued = self.portfolio.value_problem()
        if unvalued is not None:
            raise RuntimeError(f"strategy.symbols: {unvalued}")
        self.strategy.open(trio.current_time())
        try:
            async with trio.open_nursery() as nursery:
                nursery.start_soon(self._trades)
                nursery.start_soon(self._board_changes)
                await nursery.start(self.desk.run)
                task_status.started()
                if self.triangles is None:
                    with self.adapter.bus.listening(partial(self._book_quoted, nursery)):
                        await self._quote_loop(nursery)
                else:
                    handler = partial(self._book_now, nursery)
                    with self.adapter.bus.listening(handler):
                        await self._decide_loop(nursery)
        finally:
            # Cancelled without a halt: a crash pulls here. The kill switch, the stop and HALT
            # (the board halted) run their own cancel-all; a second one would only double it.
            if self.permissions.halted() is None:
                await self.cancel_all(Purpose.CRASH)

    async def _trades(self) -> None:
        """The venue's trades to the strategy, each as it happens. The trades older than this
        runner by more than ``TRADE_BACKLOG_MS`` are dropped unread: the backlog left in the
        channel while nothing read it (the kill switch held the trading subtree), which the
        estimators (flow, cascade, toxicity) would otherwise count as happening now."""
        symbols = set(self.strategy.symbols)
        since_ms = clock.wall_ms() - TRADE_BACKLOG_MS
        backlog = 0
        async for trade in self.adapter.trades:
            if trade.time_ms < since_ms:
                backlog += 1
                continue
            if backlog:
                logger.info("trades: {} from before the strategy started dropped unread", backlog)
                backlog = 0
            if trade.coin in symbols:
                self.strategy.on_trade(trade, trio.current_time())
                self.changes.touch(trade.coin)

    async def _board_changes(self) -> None:
        """A change of the permission board concerns every symbol: the next decision
        evaluates them all."""
        while True:
            await self.permissions.wait_changed()
            self.changes.everything()

    async def _quote_loop(self, nursery: trio.Nursery) -> None:
        """The market maker's strategy task: each book is decided on as the bus publishes it,
        in the publisher's task (``_book_quoted``), and this task decides on the books
        published before the handler listened, at the strategy's timer (every symbol), and
        does each decision's bookkeeping once the slots have sent its orders."""
        bus = self.adapter.bus
        strategy = self.strategy
        exported_at = 0.0
        summarized_at = -math.inf
        now = trio.current_time()
        self._deadline = now + strategy.wake_in(now)
        books = self.changes.new_books(bus.latest)
        if books:
            self._decision(now, books, nursery)
        while True:
            if self._decided_at is None:
                with trio.move_on_at(self._deadline):
                    await self._wake.wait()
                    # Woken by a decision in the publisher's task: its ladders' slots send
                    # first. A slot woken by the hand-over runs in the scheduler's next pass,
                    # beside this task in an order Trio draws at random, so this task waits
                    # out two passes (the second finds the slot's step done: it reached the
                    # order client or its first wait), doing nothing more before them.
                    await trio.lowlevel.checkpoint()
                    await trio.lowlevel.checkpoint()
                self._wake = trio.Event()
            if self._direct_failure is not None:
                raise self._direct_failure
            now = trio.current_time()
            if self._decided_at is None:
                if now < self._deadline:  # woken for nothing left to do
                    continue
                # The timer: every symbol. Its slots send first, as above.
                self._decision(now, self.changes.new_books(bus.latest), nursery)
                await trio.lowlevel.checkpoint()
                await trio.lowlevel.checkpoint()
            # The bookkeeping, the gauges and the console's summary: they delay no order.
            decided_at, self._decided_at = self._decided_at, None
            if self._after is not None and decided_at is not None:
                self._after.after_decision(decided_at)
            now = trio.current_time()
            if now - exported_at >= 1.0:
                self.export()
                exported_at = now
            if now - summarized_at >= SUMMARY_EVERY_S:
                if summarized_at > -math.inf:
                    logger.info("summary: {}", self.summary())
                summarized_at = now

    def _book_quoted(self, nursery: trio.Nursery, book: Book) -> None:
        """A book as the bus publishes it, in the publisher's task: the market maker hears of
        it and decides on it, and its ladders go to the slots' mailboxes (the strategy task
        does the bookkeeping once they have sent). No task switch between a book and its
        quotes: the slot that sends them runs in the scheduler's next pass. Never raises: an
        error is kept for the strategy task, which raises it, and nothing more is handled here
        meanwhile."""
        if self._direct_failure is not None or not self.changes.told(book):
            return
        try:
            self._decision(trio.current_time(), (book,), nursery)
        except Exception as exc:  # the strategy's error, for the strategy task
            self._direct_failure = exc
            self._wake.set()

    def _decision(self, now: float, books: Sequence[Book], nursery: trio.Nursery) -> None:
        """One decision of the market maker at ``now`` on the news (``Changes``): the strategy
        is told of ``books`` (new to it), decides on the symbols with news (every symbol once
        the timer is due or the sync or stale set changed), and its ladders are handed over;
        its bookkeeping is left to the strategy task, woken for it."""
        strategy, adapter, changes = self.strategy, self.adapter, self.changes
        now_ms = clock.wall_ms()
        for book in books:
            strategy.on_book(book, now)
            if book.mid is not None:
                self.markouts.on_mid(book.coin, book.mid, now_ms)
        in_sync = adapter.in_sync()
        stale = frozenset(adapter.stale_coins())
        if now >= self._deadline or (in_sync, stale) != self._global_state:
            changes.everything()
            self._global_state = (in_sync, stale)
        changed, requote = changes.take(books, self.desk.waiting())
        view = MarketView(
            in_sync=in_sync,
            stale=stale,
            headroom=partial(adapter.limiter.headroom, now),
            changed=changed,
            requote=requote,
        )
        for command in strategy.decide(now, view):
            self._hand_over(command, nursery)
        self._deadline = now + strategy.wake_in(now)
        self._decided_at = now
        self._wake.set()

    async def _decide_loop(self, nursery: trio.Nursery) -> None:
        """Triangular arbitrage's strategy task: once the books published before the handler
        (``_book_now``) listened were told (it tells the strategy of every later one), decide
        at the strategy's timer."""
        bus = self.adapter.bus
        strategy = self.strategy
        changes = self.changes
        exported_at = 0.0
        summarized_at = -math.inf
        now = trio.current_time()
        deadline = now + strategy.wake_in(now)  # when every symbol is evaluated again
        global_state: tuple[bool, frozenset[str]] | None = None
        after = self._after
        first = True
        while True:
            with trio.move_on_at(deadline):
                if not first:
                    await self._direct_failed.wait()
            first = False
            if self._direct_failure is not None:
                raise self._direct_failure
            now = trio.current_time()
            now_ms = clock.wall_ms()
            books = changes.new_books(bus.latest)  # only news
            for book in books:
                strategy.on_book(book, now)
                if book.mid is not None:
                    self.markouts.on_mid(book.coin, book.mid, now_ms)
            in_sync = self.adapter.in_sync()
            stale = frozenset(self.adapter.stale_coins())
            if now >= deadline or (in_sync, stale) != global_state:
                changes.everything()
                global_state = (in_sync, stale)
            changed, requote = changes.take(books, self.desk.waiting())
            view = MarketView(
                in_sync=in_sync,
                stale=stale,
                headroom=partial(self.adapter.limiter.headroom, now),
                changed=changed,
                requote=requote,
            )
            handed = False
            for command in strategy.decide(now, view):
                handed = self._hand_over(command, nursery) or handed
            if handed:
                # The slots send first: a slot woken by the hand-over runs in the scheduler's
                # next pass, beside this task in an order Trio draws at random, so this task
                # waits out two passes (the second finds the slot's step done: it reached the
                # order client or its first wait).
                await trio.lowlevel.checkpoint()
                await trio.lowlevel.checkpoint()
            # The bookkeeping, the gauges and the console's summary after the hand-over and the
            # slots' turn: they delay no order.
            if after is not None:
                after.after_decision(now)
            if now - exported_at >= 1.0:
                self.export()
                exported_at = now
            if now - summarized_at >= SUMMARY_EVERY_S:
                if summarized_at > -math.inf:
                    logger.info("summary: {}", self.summary())
                summarized_at = now
            deadline = now + strategy.wake_in(now)

    def _book_now(self, nursery: trio.Nursery, book: Book) -> None:
        """A book as the bus publishes it, in the publisher's task (see the module): the
        strategy hears of it and decides on it, what it decides is handed over, then its
        markouts. Never raises: an error is kept for the strategy task, which raises it, and
        nothing more is handled here meanwhile."""
        if self._direct_failure is not None or not self.changes.told(book):
            return
        try:
            strategy, adapter = self.strategy, self.adapter
            now = trio.current_time()
            strategy.on_book(book, now)
            view = MarketView(
                in_sync=adapter.in_sync(),
                stale=frozenset(adapter.stale_coins()),
                headroom=partial(adapter.limiter.headroom, now),  # read only if asked
                changed=(book.coin,),
            )
            for command in strategy.decide(now, view):
                self._hand_over(command, nursery)
            if book.mid is not None:
                self.markouts.on_mid(book.coin, book.mid, clock.wall_ms())
            if self._after is not None:
                self._after.after_decision(now)
        except Exception as exc:  # the strategy's error, for the strategy task
            self._direct_failure = exc
            self._direct_failed.set()

    def _hand_over(self, command: Decision, nursery: trio.Nursery) -> bool:
        """A quote ladder goes to its symbol's slot (the latest per symbol wins); a multi-leg
        command runs at once, to its end, beside the others (never conflated); a triangle's
        signal goes to the triangle desk, or is dropped there when no slot can take it. True
        when a ladder or a multi-leg command went to a task of its own."""
        if isinstance(command, Signal):
            if self.triangles is None:
                raise RuntimeError("a triangle signal without a triangle desk to take it")
            self.triangles.offer(command)
            return False
        if isinstance(command, QuoteLadder):
            book = self.changes.seen(command.coin)  # what the strategy planned it from
            if book is not None:
                command = command.planned_from(arrival_s(book))
            self._mailbox(command.coin).put(command)
        else:
            nursery.start_soon(self._run_group, command)
        return True

    async def _run_group(self, command: MultiLeg) -> None:
        (group,) = await self.legs.execute(
            command, allow=self._allow_leg, leg_timeout_s=self.executor.leg_timeout_s
        )
        self.groups.append(group)

    def _allow_leg(self, order: PlaceOrder) -> str | None:
        return self.pretrade.refusal(order)

    def permission(self, coin: str) -> Permission:
        """What the board allows for ``coin`` now (the strategy and the pre-trade checks)."""
        return self.permissions.permission(coin)

    def _mailbox(self, coin: str) -> Mailbox:
        return self.mailboxes[slot_for(coin, len(self.mailboxes))]

    def _requeue(self, coin: str) -> bool:
        """The desk found tokens for ``coin``: its slot plans it again."""
        return self._mailbox(coin).replan(coin)

    def _latest_book_s(self, coin: str) -> float | None:
        book = self.adapter.bus.latest(coin)
        return None if book is None else arrival_s(book)

    def _reducing(self, coin: str) -> Side | None:
        """The side that reduces ``coin``'s position while its inventory is high."""
        position = self.positions.position(coin)
        if position == 0:
            return None
        book = self.adapter.bus.latest(coin)
        mid = book.mid if book is not None else None
        if mid is None:
            return None
        return reducing_side(
            position,
            position * mid,
            self.strategy.max_position_usd,
            self.executor.budget.high_inventory_ratio,
        )

    def _sending(self, handover: Handover) -> None:
        """A plan's orders go to the client: its decision latency, budget wait and age."""
        metrics = self.metrics
        if handover.decision_s is not None:
            metrics.decision_latency.observe(handover.decision_s)
        if handover.budget_wait_s is not None:
            metrics.budget_wait.observe(handover.budget_wait_s)
        if handover.plan_age_s is not None:
            metrics.plan_age.observe(handover.plan_age_s)

    # --- fills ------------------------------------------------------------------------------

    def on_fill(self, fill: Fill) -> None:
        """A fill the portfolio has just applied (new to it). One without its order's client
        id (found in the venue's fill history by the fill audit or a resync, before the user
        stream's own copy) is given it first: a triangle's slot and a multi-leg group hear
        their orders' fills by it."""
        fill = self.dispatcher.with_cloid(fill)
        self.markouts.on_fill(fill)
        if not self._filled:
            self._filled = True
            side = "bought" if fill.side is Side.BUY else "sold"
            logger.info("first fill: {} {} {:g} at {:g}", side, fill.coin, fill.sz, fill.px)
        self.metrics.fills.labels(
            symbol=fill.coin, side="buy" if fill.side is Side.BUY else "sell"
        ).inc()
        self.legs.on_fill(fill)  # a multi-leg group's next leg waits for it
        if self.triangles is not None:
            self.triangles.on_fill(fill)  # a triangle's leg waits for it
        self.strategy.on_fill(fill, trio.current_time())
        self.changes.touch(fill.coin)

    def on_order_events(self, events: Sequence[DispatchOutput]) -> None:
        """Order lifecycle events, from their channel: a triangle's leg may end by one."""
        if self.triangles is not None:
            self.triangles.on_order_events(events)

    def on_account(self, state: AccountState) -> None:
        """An account state the user stream pushed (a spot venue's balances)."""
        if self.triangles is not None:
            self.triangles.balances.on_account(state)

    def _on_markout(
        self, coin: str, horizon_ms: int, bps: float, fill_time_ms: int, tid: TradeId | None
    ) -> None:
        """A fill's markout completed: it feeds the strategy (its toxicity), then the journal."""
        self.strategy.on_markout(coin, horizon_ms, bps, trio.current_time())
        if self._markout_listener is not None:
            self._markout_listener(coin, horizon_ms, bps, fill_time_ms, tid)

    # --- status -----------------------------------------------------------------------------

    def summary(self) -> str:
        """One line for a person watching the console: per symbol the orders resting at the
        venue, fills, position and PnL, and the total PnL; the triangles' figures instead when
        the strategy finds triangles (a spot account's positions say nothing of them)."""
        if self.triangles is not None:
            return self.triangles.summary()
        positions = self.positions.snapshot(self.marks())
        resting: dict[str, int] = {}
        for order in self.dispatcher.registry.live():
            if order.oid is not None:
                resting[order.coin] = resting.get(order.coin, 0) + 1
        parts = []
        total = 0.0
        for coin in self.strategy.symbols:
            position = positions.get(coin, {})
            fills = position.get("fills_buy", 0) + position.get("fills_sell", 0)
            pnl = position.get("total", 0.0)
            total += pnl
            holding = self.strategy.holding(coin)
            state = f" ({holding})" if holding is not None else ""
            parts.append(
                f"{coin} {resting.get(coin, 0)} orders{state}, {fills} fills, "
                f"position {position.get('position', 0.0):+g}, PnL {pnl:+.2f}"
            )
        return "; ".join(parts) + f" | PnL {total:+.2f} USD"

    def marks(self) -> dict[str, float]:
        marks = {}
        for coin in self.strategy.symbols:
            book = self.adapter.bus.latest(coin)
            if book is not None and book.mid is not None:
                marks[coin] = book.mid
        return marks

    def export(self) -> None:
        """Positions, PnL and markouts into their gauges (the strategy loop calls it)."""
        positions = self.positions.snapshot(self.marks())
        markouts = self.markouts.summary()["symbols"]
        for coin in self.strategy.symbols:
            position = positions.get(coin, {})
            for kind in ("realized", "unrealized", "fees", "total"):
                if kind in position:
                    self.metrics.pnl.labels(symbol=coin, kind=kind).set(position[kind])
            if "position" in position:
                self.metrics.position.labels(symbol=coin).set(position["position"])
            for horizon, values in markouts.get(coin, {}).items():
                if values.get("mean_bps") is not None:
                    self.metrics.markout.labels(symbol=coin, horizon=horizon).set(
                        values["mean_bps"]
                    )

    def status(self, stopped: str | None = None) -> dict[str, Any]:
        """Per symbol what may be sent, the strategy's view (for the market maker: why it quotes
        or not, its quotes, its signals), its open orders at the venue, position, PnL and
        markouts. ``stopped`` says why trading is stopped outright (the kill switch): then
        nothing is quoted, whatever the strategy last decided."""
        positions = self.positions.snapshot(self.marks())
        markouts = self.markouts.summary()
        now = trio.current_time()
        resting: dict[str, int] = {}
        for order in self.dispatcher.registry.live():
            if order.oid is not None:  # acknowledged: at the venue
                resting[order.coin] = resting.get(order.coin, 0) + 1
        symbols: dict[str, Any] = {}
        for coin in self.strategy.symbols:
            permission = self.permission(coin)
            allowed = "reduce only" if permission.reduce_only else "all"
            entry: dict[str, Any] = {"allowed": stopped or permission.closed or allowed}
            entry |= self.strategy.status(coin, now)
            if stopped is not None:  # nothing rests, whatever the strategy last decided
                entry |= {"gate": stopped, "bid": None, "ask": None}
            entry |= {
                "orders": resting.get(coin, 0),
                "position": positions.get(coin, {}),
                "markouts": markouts["symbols"].get(coin, {}),
            }
            symbols[coin] = entry
        found: dict[str, Any] = {"in_sync": self.adapter.in_sync(), "symbols": symbols}
        if self.triangles is not None:
            found["triangles"] = self.triangles.status() | {
                "strategy": dict(self.strategy.decisions())
            }
        return found

    # --- stop -------------------------------------------------------------------------------

    async def stop(self) -> CancelAllReport | None:
        """Quote no more and cancel every open order, while the feeds and client still run: the
        cancel-all re-reads the venue until it shows none (a slot's order still in flight is
        caught by the confirming read) or its deadline passes. The report says what was
        canceled and which orders remain (None: no venue client)."""
        for mailbox in self.mailboxes:
            mailbox.clear()
        self.desk.clear()
        return await self.cancel_all(Purpose.STOP)
