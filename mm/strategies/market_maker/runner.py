"""The trading subtree: the strategy task and the executor slots, as supervised children.

The strategy task follows the book bus and the trade tape, keeps one ``SymbolQuoter`` per
symbol, and when a requote is due publishes the symbol's desired ladder to the mailbox of its
executor slot. It publishes nothing while the adapter is out of sync with the venue (user stream
resyncing, a book stale): quoting is blocked until the resync completes. What may be sent is
read from the permission board (``mm.execution.permissions``), never decided here. Fills (the
portfolio's channel, consumed outside the trading scope) update positions, PnL, markouts and the
quoters' inventory. When the subtree stops (``mm stop``, the kill switch), every open order of
the account is canceled at the venue by the one cancel-all (``mm.execution.cancel_all``),
shielded and within its deadline.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from typing import Any

import trio
from loguru import logger
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from mm import clock
from mm.execution.cancel_all import CancelAll, CancelAllReport, Purpose
from mm.execution.dispatch import Dispatcher
from mm.execution.orders import OrderRouter
from mm.execution.permissions import Level, Permission, PermissionBoard, Source, allows
from mm.execution.pretrade import (
    PretradeConfig,
    PretradeContext,
    RecentOrders,
    RejectionLog,
    TokenBucket,
    check,
)
from mm.execution.slots import ExecutorConfig, ExecutorSlot, Mailbox, Signal, slot_for
from mm.metrics import LATENCY_BUCKETS
from mm.model import AccountState, DesiredOrder, Fill, PlaceOrder, Side
from mm.portfolio import Markouts, PositionBook
from mm.strategies.market_maker.engine import QuotePlan, StrategyConfig, SymbolQuoter
from mm.venues.base import VenueAdapter

SUMMARY_EVERY_S = 60.0  # the console's one-line summary


def _side_word(side: Side) -> str:
    return "bid" if side is Side.BUY else "ask"


def _price(px: float | None) -> str:
    return "-" if px is None else f"{px:.6g}"


def _gate_label(why: str) -> str:
    return "data_gate" if why == "data_gate" else "not_in_sync"


class TradingMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.quoted_spread = Gauge(
            "mm_quoted_spread_bps",
            "Spread between our top bid and ask.",
            ["symbol"],
            registry=registry,
        )
        self.spread_factor = Gauge(
            "mm_spread_factor_ratio",
            "Spread multipliers applied, by factor (1 = no change).",
            ["symbol", "factor"],
            registry=registry,
        )
        self.cycle = Histogram(
            "mm_quote_cycle_seconds",
            "Time to compute one symbol's quotes.",
            buckets=LATENCY_BUCKETS,
            registry=registry,
        )
        self.tick_to_order = Histogram(
            "mm_tick_to_order_seconds",
            "From a book frame's arrival to its orders being handed to the order client "
            "(signing and the socket write follow).",
            buckets=LATENCY_BUCKETS,
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
        self.gate = Counter(
            "mm_quote_gate_decisions",
            "Quote gate decisions by reason.",
            ["symbol", "reason"],
            registry=registry,
        )
        self.estimate = Gauge(
            "mm_strategy_estimate",
            "Model estimates (sigma, a, k, ...).",
            ["symbol", "name"],
            registry=registry,
        )
        self.signal = Gauge(
            "mm_market_signal",
            "Market signals per symbol: cascade severity (0 calm, 0.8 pull, 5 kill), flow "
            "toxicity (0..1) and the directional edge (bps).",
            ["symbol", "name"],
            registry=registry,
        )


class PretradeGate:
    """The pre-trade checks at the last hop before the venue client, with their trackers."""

    def __init__(self, config: PretradeConfig, trading: Trading) -> None:
        self.config = config
        self.trading = trading
        self.recent = RecentOrders(config.duplicate_window_s)
        self.throttle: TokenBucket | None = None
        self.log = RejectionLog(config.log_quiet_s)
        self.rejected = Counter(
            "mm_pretrade_rejections",
            "Order intents refused by a pre-trade check.",
            ["check"],
            registry=trading.registry,
        )

    def allow(self, order: PlaceOrder) -> bool:
        now = trio.current_time()
        if self.throttle is None:
            self.throttle = TokenBucket.from_config(self.config, now)
        trading = self.trading
        book = trading.adapter.bus.latest(order.coin)
        permission = trading.permission(order.coin)
        context = PretradeContext(
            mid=book.mid if book is not None else None,
            open_orders=len(trading.dispatcher.registry.live()),
            reduce_only=permission.reduce_only,
            position=trading.positions.position(order.coin),
            recent=self.recent,
            throttle=self.throttle,
            now=now,
            closed=permission.closed,
        )
        rejection = check(order, context, self.config)
        if rejection is None:
            return True
        self.rejected.labels(check=rejection.check.value).inc()
        if self.log.record(rejection, now):
            logger.warning(
                "pre-trade check {} refused an order: {}", rejection.check, rejection.detail
            )
        return False


MarkoutListener = Callable[[str, int, float, int, "int | None"], None]


class Trading:
    def __init__(
        self,
        strategy: StrategyConfig,
        executor: ExecutorConfig,
        adapter: VenueAdapter,
        registry: CollectorRegistry,
        permissions: PermissionBoard,
        cancel_all: CancelAll,
        pretrade: PretradeConfig | None = None,
        on_markout: MarkoutListener | None = None,
        *,
        dispatcher: Dispatcher,
        router: Callable[[], OrderRouter | None],
    ) -> None:
        self.registry = registry
        self.permissions = permissions  # read only: its owners write it
        self.cancel_all = cancel_all
        self.strategy = strategy
        self.executor = executor
        self.adapter = adapter
        # The executor's order lifecycle and its way to the venue (once the client is up).
        self.dispatcher = dispatcher
        self.router = router
        self.metrics = TradingMetrics(registry)
        self.positions = PositionBook()
        self.markouts = Markouts()
        self.markouts.listener = self._on_markout
        self._markout_listener = on_markout  # the journal's, for mm report
        self.mailboxes = [Mailbox() for _ in range(executor.slots)]
        self.quoters: dict[str, SymbolQuoter] = {}
        self.last_plans: dict[str, QuotePlan] = {}
        self.ticks: dict[str, float] = {}
        self._quoted_book_ms: dict[str, int] = {}  # the book each symbol was last quoted on
        self.pulled: dict[str, str] = {}  # symbols whose quotes are pulled, and why
        self._announced: set[str] = set()  # symbols whose first quotes were logged
        self._filled = False  # the first fill was logged
        self.pretrade = PretradeGate(pretrade or PretradeConfig(), self)

    # --- children ---------------------------------------------------------------------------

    def slots(self) -> list[ExecutorSlot]:
        return [
            ExecutorSlot(
                index,
                mailbox,
                self.router,
                self.dispatcher,
                self.executor,
                on_sending=self._sending,
                allow=self.pretrade.allow,
                budget=lambda: self.adapter.limiter.order_budget(trio.current_time()),
            )
            for index, mailbox in enumerate(self.mailboxes)
        ]

    async def run_strategy(
        self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED
    ) -> None:
        client = self.adapter.client
        if client is None:
            raise RuntimeError("the user feed must start before the strategy")
        for coin in self.strategy.symbols:
            instrument = client.instrument(coin)
            self.quoters[coin] = SymbolQuoter(instrument, self.strategy)
            self.ticks[coin] = float(instrument.price_increment)
        try:
            async with trio.open_nursery() as nursery:
                nursery.start_soon(self._trades)
                task_status.started()
                await self._quote_loop()
        finally:
            # Cancelled without a halt: a crash pulls here. The kill switch, the stop and HALT
            # (the board halted) run their own cancel-all; a second one would only double it.
            if self.permissions.halted() is None:
                await self.cancel_all(Purpose.CRASH)

    def adopt_venue_positions(self, account: AccountState) -> None:
        """Every configured coin's position becomes the venue's (zero when the venue lists none:
        it omits flat coins); fills up to the account's time are part of it."""
        venue = {position.coin: position for position in account.positions}
        for coin in self.strategy.symbols:
            position = venue.get(coin)
            size, entry = (position.szi, position.entry_px) if position else (0.0, 0.0)
            self.positions.seed(coin, size, entry, account.time_ms)

    async def _trades(self) -> None:
        async for trade in self.adapter.trades:
            quoter = self.quoters.get(trade.coin)
            if quoter is not None:
                quoter.on_trade(trade, trio.current_time())

    async def _quote_loop(self) -> None:
        bus = self.adapter.bus
        version = 0
        exported_at = 0.0
        summarized_at = -math.inf
        wake_in = self.strategy.accumulator.max_age_s
        while True:
            with trio.move_on_after(wake_in):
                version = await bus.wait_any(version)
            now = trio.current_time()
            now_ms = clock.wall_ms()
            in_sync = self.adapter.in_sync()
            stale = set(self.adapter.stale_coins())
            headroom = self.adapter.limiter.headroom(now)
            if now - exported_at >= 1.0:
                self.export()
                exported_at = now
            if now - summarized_at >= SUMMARY_EVERY_S:
                if summarized_at > -math.inf:
                    logger.info("summary: {}", self.summary())
                summarized_at = now
            wake_in = self.strategy.accumulator.max_age_s
            for coin, quoter in self.quoters.items():
                book = bus.latest(coin)
                if book is not None and book is not quoter.book:  # only a new book is news
                    quoter.on_book(book, now)
                    if book.mid is not None:
                        self.markouts.on_mid(coin, book.mid, now_ms)
                quoter.set_position(self.positions.position(coin))
                quoter.set_headroom(headroom)
                quoter.set_risk_factor(self.permissions.permission(coin).widen)
                pull = self._pull_reason(coin, quoter, now, in_sync=in_sync, stale=stale)
                if pull is not None:
                    self._pull(coin, pull)
                    continue
                if self.pulled.pop(coin, None) is not None:
                    if coin in self._announced:
                        logger.info("{}: data fresh and in sync again, quoting resumes", coin)
                    self._quote(coin, quoter, now)
                elif quoter.due(now) or self._pulled_by_risk(coin):
                    self._quote(coin, quoter, now)
                # Wake when this book turns stale, to pull its quotes at once.
                wake_in = min(wake_in, max(quoter.fresh_until() - now, 0.0) + 1e-3)

    def _pull_reason(
        self, coin: str, quoter: SymbolQuoter, now: float, *, in_sync: bool, stale: set[str]
    ) -> str | None:
        """Why nothing of this coin may rest at the venue now: stale data (this symbol's book
        older than strategy.max_book_age_s, or flagged stale by the feed) or the user stream
        out of sync with the venue. None: quote."""
        if not in_sync:
            return "not in sync with the venue"
        if coin in stale or not quoter.fresh(now):
            return "data_gate"
        return None

    def _pulled_by_risk(self, coin: str) -> bool:
        """Risk says pull and the coin still has orders: requote it now (the permission empties
        its ladder, so its resting quotes are canceled at once, not at its next requote)."""
        if self.permissions.grant(Source.RISK).level < Level.PULLED:
            return False
        return any(order.coin == coin for order in self.dispatcher.registry.live())

    def _pull(self, coin: str, why: str) -> None:
        """Stale data means no quotes: an empty ladder cancels the coin's resting orders. Sent
        again while any order of the coin is live (one still pending when the pull began is
        canceled once its answer lands); the slot's mailbox keeps only the latest signal."""
        live = any(order.coin == coin for order in self.dispatcher.registry.live())
        if self.pulled.get(coin) != why:
            if coin not in self.pulled and coin in self._announced:  # it was quoting
                logger.warning("{}: quotes pulled ({})", coin, why)
            self.pulled[coin] = why
            self.metrics.gate.labels(symbol=coin, reason=_gate_label(why)).inc()
        if live:
            mailbox = self.mailboxes[slot_for(coin, len(self.mailboxes))]
            mailbox.put(Signal(coin, (), self.ticks[coin], 0))

    def _quote(self, coin: str, quoter: SymbolQuoter, now: float) -> None:
        started = time.perf_counter()
        plan = quoter.quote(now)
        self.metrics.cycle.observe(time.perf_counter() - started)
        self.last_plans[coin] = plan
        self.metrics.gate.labels(symbol=coin, reason=plan.reason or "quoting").inc()
        if plan.bid is not None and plan.ask is not None and plan.mid:
            self.metrics.quoted_spread.labels(symbol=coin).set(
                (plan.ask - plan.bid) / plan.mid * 1e4
            )
        if plan.spread is not None:
            for factor, multiplier in plan.spread.factors.items():
                self.metrics.spread_factor.labels(symbol=coin, factor=factor.value).set(multiplier)
        if plan.glft is not None:
            glft = plan.glft
            estimates = {
                "sigma": glft.sigma,
                "a": glft.a,
                "k": glft.k,
                "q": glft.q,
                "half_spread_bps": glft.half_spread_bps,
            }
            for name, value in estimates.items():
                self.metrics.estimate.labels(symbol=coin, name=name).set(value)
        orders = self._within_risk(coin, plan.orders)
        mailbox = self.mailboxes[slot_for(coin, len(self.mailboxes))]
        book = self.adapter.bus.latest(coin)
        received_ms = book.received_ms if book is not None else 0
        # Tick to order is measured from a book that moved us; a requote on the accumulator's
        # timer with a book already quoted on carries no tick (0: not measured).
        if received_ms == self._quoted_book_ms.get(coin):
            received_ms = 0
        else:
            self._quoted_book_ms[coin] = received_ms
        mailbox.put(Signal(coin, tuple(orders), self.ticks[coin], received_ms))
        if orders and coin not in self._announced:
            self._announced.add(coin)
            sides = {order.side for order in orders}
            which = "both sides" if len(sides) == 2 else f"the {_side_word(sides.pop())} only"
            logger.info(
                "{}: quoting {} (bid {}, ask {}; {} orders)",
                coin,
                which,
                _price(plan.bid),
                _price(plan.ask),
                len(orders),
            )

    def permission(self, coin: str) -> Permission:
        """What the board allows for ``coin`` now (the strategy and the pre-trade checks)."""
        return self.permissions.permission(coin)

    def _within_risk(self, coin: str, orders: list[DesiredOrder]) -> list[DesiredOrder]:
        """The board has the last word: pull everything, or keep the reducing side."""
        permission = self.permission(coin)
        position = self.positions.position(coin)
        return [
            order for order in orders if allows(permission, order.side, position, reduce_only=False)
        ]

    def _sending(self, signal: Signal) -> None:
        """Tick to order: from the book frame's arrival to its orders going to the client."""
        if signal.book_received_ms:
            elapsed = clock.wall() - signal.book_received_ms / 1000
            self.metrics.tick_to_order.observe(max(elapsed, 0.0))

    # --- fills ------------------------------------------------------------------------------

    def on_fill(self, fill: Fill) -> None:
        if not self.positions.apply(fill):
            return
        self.markouts.on_fill(fill)
        if not self._filled:
            self._filled = True
            side = "bought" if fill.side is Side.BUY else "sold"
            logger.info("first fill: {} {} {:g} at {:g}", side, fill.coin, fill.sz, fill.px)
        self.metrics.fills.labels(
            symbol=fill.coin, side="buy" if fill.side is Side.BUY else "sell"
        ).inc()
        quoter = self.quoters.get(fill.coin)
        if quoter is not None:
            quoter.on_fill(fill, trio.current_time())
            quoter.set_position(self.positions.position(fill.coin))

    def _on_markout(
        self, coin: str, horizon_ms: int, bps: float, fill_time_ms: int, tid: int | None
    ) -> None:
        """A fill's markout completed: it feeds its symbol's toxicity, then the journal."""
        quoter = self.quoters.get(coin)
        if quoter is not None:
            quoter.on_markout(horizon_ms, bps, trio.current_time())
        if self._markout_listener is not None:
            self._markout_listener(coin, horizon_ms, bps, fill_time_ms, tid)

    def cascade_severity(self, now: float) -> float:
        """The worst cascade severity of the quoted symbols (0 before any market data)."""
        return max((quoter.cascade_severity(now) for quoter in self.quoters.values()), default=0.0)

    # --- status -----------------------------------------------------------------------------

    def summary(self) -> str:
        """One line for a person watching the console: per symbol the orders resting at the
        venue, fills, position and PnL, and the total PnL."""
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
            state = f" ({self.pulled[coin]})" if coin in self.pulled else ""
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
        now = trio.current_time()
        for coin, quoter in self.quoters.items():
            for name, value in quoter.signals(now).items():
                self.metrics.signal.labels(symbol=coin, name=name).set(value)
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
        """Per symbol what may be sent, why it quotes or not, its quotes, its open orders at the
        venue, position, PnL and markouts. ``stopped`` says why trading is stopped outright (the
        kill switch): then nothing is quoted, whatever the last plan was."""
        positions = self.positions.snapshot(self.marks())
        markouts = self.markouts.summary()
        now = trio.current_time()
        resting: dict[str, int] = {}
        for order in self.dispatcher.registry.live():
            if order.oid is not None:  # acknowledged: at the venue
                resting[order.coin] = resting.get(order.coin, 0) + 1
        symbols: dict[str, Any] = {}
        for coin in self.strategy.symbols:
            plan = self.last_plans.get(coin)
            position = positions.get(coin, {})
            coin_markouts = markouts["symbols"].get(coin, {})
            permission = self.permission(coin)
            allowed = "reduce only" if permission.reduce_only else "all"
            quoting = stopped is None and coin not in self.pulled and plan is not None
            if stopped is not None:
                gate = stopped
            elif coin in self.pulled:
                gate = f"pulled: {self.pulled[coin]}"
            else:
                gate = (plan.reason or "quoting") if plan else "not quoted yet"
            symbols[coin] = {
                "allowed": stopped or permission.closed or allowed,
                "gate": gate,
                "bid": plan.bid if plan and quoting else None,
                "ask": plan.ask if plan and quoting else None,
                "orders": resting.get(coin, 0),
                "signals": quoter.signals(now) if (quoter := self.quoters.get(coin)) else {},
                "position": position,
                "markouts": coin_markouts,
            }
        return {"in_sync": self.adapter.in_sync(), "symbols": symbols}

    # --- stop -------------------------------------------------------------------------------

    async def stop(self) -> CancelAllReport | None:
        """Quote no more and cancel every open order, while the feeds and client still run: the
        cancel-all re-reads the venue until it shows none (a slot's order still in flight is
        caught by the confirming read) or its deadline passes. The report says what was
        canceled and which orders remain (None: no venue client)."""
        for mailbox in self.mailboxes:
            mailbox.clear()
        return await self.cancel_all(Purpose.STOP)
