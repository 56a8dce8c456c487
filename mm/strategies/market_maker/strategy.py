"""The market maker behind the Strategy protocol: one ``SymbolQuoter`` per symbol, post-only
ladders out.

On each decision it updates every quoter with the portfolio's position, the API headroom and
the board's widen factor, and for each symbol returns a ``QuoteLadder`` when a requote is due:
the quoter's plan, less what the permission board forbids. When the user stream is out of sync
or the symbol's book is stale, it returns an empty ladder while any order of the symbol is live
(the slot cancels them), and quotes again once the data is fresh and in sync. Plain logic: a
quoter's exception propagates to the strategy task, which the supervisor restarts.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from functools import partial
from typing import Any

import attrs
from loguru import logger
from prometheus_client import Counter, Gauge, Histogram

from mm.book import Book
from mm.execution.commands import Command, QuoteLadder
from mm.execution.permissions import Level, Source, allows
from mm.metrics import LATENCY_BUCKETS
from mm.model import DesiredOrder, Fill, Side, Trade
from mm.strategies.base import MarketView, StrategyContext
from mm.strategies.market_maker.engine import QuotePlan, StrategyConfig, SymbolQuoter
from mm.strategies.market_maker.spread import SpreadFactor

EXPORT_EVERY_S = 1.0  # the market signals into their gauges


def _side_word(side: Side) -> str:
    return "bid" if side is Side.BUY else "ask"


def _price(px: float | None) -> str:
    return "-" if px is None else f"{px:.6g}"


def _gate_label(why: str) -> str:
    return "data_gate" if why == "data_gate" else "not_in_sync"


class Series:
    """One labelled gauge series and the value last given it (``None``: never set): set only
    when the value changes, as ``QuotingMetrics.set`` sets it. The child is looked up at the
    first set, so a series nobody set is not exported."""

    __slots__ = ("_child", "_lookup", "value")

    def __init__(self, lookup: Callable[[], Any]) -> None:
        self._lookup = lookup
        self._child: Any = None
        self.value: float | None = None

    def set(self, value: float) -> None:
        if self.value == value:
            return
        if self._child is None:
            self._child = self._lookup()
        self._child.set(value)
        self.value = value


@attrs.frozen
class _QuoteGauges:
    """One symbol's quote gauges, looked up once: the quote sets a dozen a tick."""

    quoted_spread: Series
    factors: dict[SpreadFactor, Series]
    sigma: Series
    a: Series
    k: Series
    q: Series
    half_spread_bps: Series


class QuotingMetrics:
    def __init__(self, context: StrategyContext) -> None:
        registry = context.registry
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
        self._children: dict[tuple[object, ...], Any] = {}
        self._series: dict[tuple[object, ...], Series] = {}  # each with the value it was set to
        self._quote_gauges: dict[str, _QuoteGauges] = {}

    def child(self, metric: Any, *values: str) -> Any:
        """``metric.labels(*values)`` (values in the metric's label order), looked up once: every
        quote sets about a dozen labelled series, and ``labels`` checks and joins its values
        under a lock on each call. The child is the one ``labels`` would return (nothing here
        removes a series)."""
        key = (id(metric), *values)
        found = self._children.get(key)
        if found is None:
            found = self._children[key] = metric.labels(*values)
        return found

    def set(self, gauge: Gauge, value: float, *values: str) -> None:
        """``gauge.labels(*values).set(value)``, skipped when the series holds that value
        already (set by this method: nothing else writes these series). Most of a quote's
        dozen gauges keep their value from one quote to the next (the spread factors, the
        intensity fit), and each set takes the series' lock."""
        self.series(gauge, *values).set(value)

    def series(self, gauge: Gauge, *values: str) -> Series:
        """The series ``set`` sets for these label values (one per series)."""
        key = (id(gauge), *values)
        found = self._series.get(key)
        if found is None:
            found = self._series[key] = Series(partial(self.child, gauge, *values))
        return found

    def quote_gauges(self, coin: str) -> _QuoteGauges:
        """``coin``'s quote gauges, the series ``set`` sets for them."""
        found = self._quote_gauges.get(coin)
        if found is None:
            estimate = self.estimate
            found = self._quote_gauges[coin] = _QuoteGauges(
                quoted_spread=self.series(self.quoted_spread, coin),
                factors={
                    factor: self.series(self.spread_factor, coin, factor.value)
                    for factor in SpreadFactor
                },
                sigma=self.series(estimate, coin, "sigma"),
                a=self.series(estimate, coin, "a"),
                k=self.series(estimate, coin, "k"),
                q=self.series(estimate, coin, "q"),
                half_spread_bps=self.series(estimate, coin, "half_spread_bps"),
            )
        return found


class MarketMaker:
    """GLFT quoting of ``config.symbols`` (the ``[strategy]`` section)."""

    def __init__(self, config: StrategyConfig, context: StrategyContext) -> None:
        self.config = config
        self.context = context
        self.metrics = QuotingMetrics(context)
        self.quoters: dict[str, SymbolQuoter] = {}
        self.last_plans: dict[str, QuotePlan] = {}
        self.ticks: dict[str, float] = {}
        self.pulled: dict[str, str] = {}  # symbols whose quotes are pulled, and why
        self._quoted_book_ms: dict[str, int] = {}  # the book each symbol was last quoted on
        self._announced: set[str] = set()  # symbols whose first quotes were logged
        self._exported_at = -EXPORT_EVERY_S
        # The quotes of the last decision, their bookkeeping left for ``after_decision``.
        self._quoted: list[tuple[str, QuotePlan, list[DesiredOrder], float]] = []

    @property
    def symbols(self) -> tuple[str, ...]:
        return self.config.symbols

    @property
    def max_position_usd(self) -> float:
        return self.config.max_position_usd

    def open(self, now: float) -> None:
        for coin in self.config.symbols:
            instrument = self.context.instruments(coin)
            self.quoters[coin] = SymbolQuoter(instrument, self.config)
            self.ticks[coin] = float(instrument.price_increment)

    # --- what it is told --------------------------------------------------------------------

    def on_book(self, book: Book, now: float) -> None:
        quoter = self.quoters.get(book.coin)
        if quoter is not None:
            quoter.on_book(book, now)

    def on_trade(self, trade: Trade, now: float) -> None:
        quoter = self.quoters.get(trade.coin)
        if quoter is not None:
            quoter.on_trade(trade, now)

    def on_fill(self, fill: Fill, now: float) -> None:
        quoter = self.quoters.get(fill.coin)
        if quoter is not None:
            quoter.on_fill(fill, now)
            quoter.set_position(self.context.portfolio.position(fill.coin))

    def on_markout(self, coin: str, horizon_ms: int, bps: float, now: float) -> None:
        """A fill's markout feeds its symbol's toxicity."""
        quoter = self.quoters.get(coin)
        if quoter is not None:
            quoter.on_markout(horizon_ms, bps, now)

    # --- deciding ---------------------------------------------------------------------------

    def decide(self, now: float, view: MarketView) -> Sequence[Command]:
        if self._quoted:  # a caller that never asked for the last decision's bookkeeping
            self.after_decision(now)
        commands: list[Command] = []
        changed = self.quoters.keys() if view.changed is None else view.changed
        for coin in changed:
            quoter = self.quoters.get(coin)
            if quoter is None:
                continue
            quoter.set_position(self.context.portfolio.position(coin))
            quoter.set_headroom(view.headroom)
            quoter.set_risk_factor(self.context.permissions.permission(coin).widen)
            pull = self._pull_reason(coin, quoter, now, view)
            if pull is not None:
                commands += self._pull(coin, pull)
                continue
            if self.pulled.pop(coin, None) is not None:
                if coin in self._announced:
                    logger.info("{}: data fresh and in sync again, quoting resumes", coin)
                commands.append(self._quote(coin, quoter, now))
            elif quoter.due(now) or coin in view.requote or self._pulled_by_risk(coin):
                commands.append(self._quote(coin, quoter, now))
        return commands

    def after_decision(self, now: float) -> None:
        """The bookkeeping of the last decision, once its ladders are with the executor: the
        quotes' gauges, counters and cycle times, the first quotes' log line, and every
        ``EXPORT_EVERY_S`` the market signals' gauges. Each value is the one the quote computed
        (nothing here feeds a decision)."""
        quoted, self._quoted = self._quoted, []
        for coin, plan, orders, elapsed in quoted:
            self._record(coin, plan, orders, elapsed)
        if now - self._exported_at >= EXPORT_EVERY_S:
            self._exported_at = now
            for coin, quoter in self.quoters.items():
                for name, value in quoter.signals(now).items():
                    self.metrics.signal.labels(symbol=coin, name=name).set(value)

    def wake_in(self, now: float) -> float:
        """The requote timer, or sooner when a quoting symbol's book turns stale (to pull its
        quotes at once)."""
        wake = self.config.accumulator.max_age_s
        for coin, quoter in self.quoters.items():
            if coin not in self.pulled:
                wake = min(wake, max(quoter.fresh_until() - now, 0.0) + 1e-3)
        return wake

    def _pull_reason(
        self, coin: str, quoter: SymbolQuoter, now: float, view: MarketView
    ) -> str | None:
        """Why nothing of this coin may rest at the venue now: stale data (this symbol's book
        older than strategy.max_book_age_s, or flagged stale by the feed) or the user stream
        out of sync with the venue. None: quote."""
        if not view.in_sync:
            return "not in sync with the venue"
        if coin in view.stale or not quoter.fresh(now):
            return "data_gate"
        return None

    def _pulled_by_risk(self, coin: str) -> bool:
        """Risk says pull and the coin still has orders: requote it now (the permission empties
        its ladder, so its resting quotes are canceled at once, not at its next requote)."""
        if self.context.permissions.grant(Source.RISK).level < Level.PULLED:
            return False
        return self.context.live_orders(coin) > 0

    def _pull(self, coin: str, why: str) -> list[Command]:
        """Stale data means no quotes: an empty ladder cancels the coin's resting orders. Sent
        as the pull begins and again while any order of the coin is live (one still pending when
        the pull began is canceled once its answer lands); the slot's mailbox keeps only the
        latest ladder."""
        began = self.pulled.get(coin) != why
        if began:
            if coin not in self.pulled and coin in self._announced:  # it was quoting
                logger.warning("{}: quotes pulled ({})", coin, why)
            self.pulled[coin] = why
            self.metrics.gate.labels(symbol=coin, reason=_gate_label(why)).inc()
        # As the pull begins, with or without an order live: the empty ladder supersedes the
        # last one, which the slot would otherwise plan again when the order budget's tokens
        # come for what it had to defer (campaign seed 16: quotes placed on a stale book for
        # five seconds after the pull, none having been live when it began).
        if began or self.context.live_orders(coin) > 0:
            return [QuoteLadder(coin, (), self.ticks[coin], 0)]
        return []

    def _quote(self, coin: str, quoter: SymbolQuoter, now: float) -> QuoteLadder:
        """The coin's ladder: the quoter's plan within what the board allows. Its gauges and
        log line wait for ``after_decision`` (they delay no order)."""
        started = time.perf_counter()
        plan = quoter.quote(now)
        elapsed = time.perf_counter() - started
        self.last_plans[coin] = plan
        orders = self._within_risk(coin, plan.orders)
        self._quoted.append((coin, plan, orders, elapsed))
        received_ms = quoter.book.received_ms if quoter.book is not None else 0
        # Tick to order is measured from a book that moved us; a requote on the accumulator's
        # timer with a book already quoted on carries no tick (0: not measured).
        if received_ms == self._quoted_book_ms.get(coin):
            received_ms = 0
        else:
            self._quoted_book_ms[coin] = received_ms
        return QuoteLadder(coin, tuple(orders), self.ticks[coin], received_ms)

    def _record(
        self, coin: str, plan: QuotePlan, orders: list[DesiredOrder], elapsed: float
    ) -> None:
        """One quote's gauges, counters and cycle time, and the coin's first quotes' log line."""
        metrics = self.metrics
        metrics.cycle.observe(elapsed)
        metrics.child(metrics.gate, coin, plan.reason or "quoting").inc()
        gauges = metrics.quote_gauges(coin)
        if plan.bid is not None and plan.ask is not None and plan.mid:
            gauges.quoted_spread.set((plan.ask - plan.bid) / plan.mid * 1e4)
        if plan.spread is not None:
            factors = gauges.factors
            for factor, multiplier in plan.spread.factors.items():
                factors[factor].set(multiplier)
        if plan.glft is not None:
            glft = plan.glft
            gauges.sigma.set(glft.sigma)
            gauges.a.set(glft.a)
            gauges.k.set(glft.k)
            gauges.q.set(glft.q)
            gauges.half_spread_bps.set(glft.half_spread_bps)
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

    def _within_risk(self, coin: str, orders: list[DesiredOrder]) -> list[DesiredOrder]:
        """The board has the last word: pull everything, or keep the reducing side."""
        permission = self.context.permissions.permission(coin)
        if permission.level is Level.OPEN:  # anything goes (allows' first rule)
            return orders
        position = self.context.portfolio.position(coin)
        return [
            order for order in orders if allows(permission, order.side, position, reduce_only=False)
        ]

    # --- what it shows ----------------------------------------------------------------------

    def cascade_severity(self, now: float) -> float:
        """The worst cascade severity of the quoted symbols (0 before any market data)."""
        return max((quoter.cascade_severity(now) for quoter in self.quoters.values()), default=0.0)

    def holding(self, coin: str) -> str | None:
        return self.pulled.get(coin)

    def status(self, coin: str, now: float) -> Mapping[str, Any]:
        plan = self.last_plans.get(coin)
        quoting = coin not in self.pulled and plan is not None
        if coin in self.pulled:
            gate = f"pulled: {self.pulled[coin]}"
        else:
            gate = (plan.reason or "quoting") if plan else "not quoted yet"
        quoter = self.quoters.get(coin)
        return {
            "gate": gate,
            "bid": plan.bid if plan and quoting else None,
            "ask": plan.ask if plan and quoting else None,
            "signals": quoter.signals(now) if quoter else {},
        }

    def decisions(self) -> Mapping[str, Any]:
        return {coin: plan.status() for coin, plan in self.last_plans.items()}
