"""The risk aggregator: a child of the tree that evaluates the monitors and acts on them.

On a short timer it builds a ``RiskState`` from what the service knows (the UTC day's PnL and
its peak, positions from fills, marks from the books, the venue's account value, feed ages and
connection states, API rejections), evaluates the eight monitors, publishes the decision the
strategy reads (pull quotes, reduce only, the risk spread factor) and trips the kill switch on
KILL (once: while the switch is tripped a monitor still at KILL is not a new trip). The feeds'
states and ages and the venue's account come from the health snapshot (``mm.health``), the
same one autonomy reads, and every feed state change is evaluated the moment it arrives on
risk's channel of them: a monitor that needs the account value and has none says it cannot
judge rather than inventing one. Every account reading of the one poller also feeds the
liquidation detector: a position change larger than 20% of the maximum position with
no matching fill within 5 s is a forced liquidation, and trips the switch.

The day's PnL (``mm.risk.daily``) is the UTC day's realised PnL net of fees, restored from the
journal's fills of the day at start (``restore_day``) and fed every routed fill, plus the open
positions' unrealised PnL; it and its peak start again at 00:00 UTC (on the one clock).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable
from typing import Any

import trio
from loguru import logger
from prometheus_client import CollectorRegistry, Gauge

from mm import clock
from mm.execution.permissions import Grant, Level, PermissionBoard, Slot, Source
from mm.fanout import consume
from mm.health.board import HealthBoard
from mm.health.snapshot import AccountReading, FeedChange, HealthSnapshot
from mm.model import Fill, Side
from mm.portfolio import Portfolio
from mm.risk.aggregate import LiquidationDetector, RiskDecision, evaluate
from mm.risk.controller import Kill
from mm.risk.daily import SEEN_CAPACITY, DailyPnl, utc_day
from mm.risk.killswitch import KillReason, Value
from mm.risk.monitors import Action, Assessment, RiskConfig
from mm.risk.state import (
    ErrorWindow,
    FeedHealth,
    PositionVelocity,
    PriceVelocity,
    RiskState,
    SymbolRisk,
)
from mm.trading_view import TradingView
from mm.venues.base import VenueAdapter

EVALUATE_EVERY_S = 0.5

KILL_REASONS = {
    "loss": KillReason.MAX_LOSS,
    "drawdown": KillReason.MAX_DRAWDOWN,
    "position": KillReason.MAX_POSITION,
    "position_velocity": KillReason.POSITION_RUNAWAY,
    "data_staleness": KillReason.STALE_DATA,
    "cascade": KillReason.CASCADE,
    "price_velocity": KillReason.PRICE_VELOCITY,
    "rate_limit": KillReason.RATE_LIMIT,
}


def grant(decision: RiskDecision) -> Grant:
    """The risk decision as its slot of the permission board: pull (no new orders), reduce
    only, or open; widened by its WIDEN factor whatever the level."""
    if decision.pull:
        return Grant(Level.PULLED, "risk: no new orders", decision.spread_factor)
    if decision.reduce_only:
        return Grant(Level.REDUCE_ONLY, "risk: reduce only", decision.spread_factor)
    return Grant(widen=decision.spread_factor)


class RiskAggregator:
    def __init__(
        self,
        config: RiskConfig,
        trading: TradingView,
        adapter: VenueAdapter,
        kills: trio.MemorySendChannel[Kill],
        board: PermissionBoard,
        registry: CollectorRegistry,
        permission: Slot,
        fills: trio.MemoryReceiveChannel[Fill],
        *,
        health: HealthBoard,
        portfolio: Portfolio,
        feed_changes: trio.MemoryReceiveChannel[FeedChange],
        account_readings: trio.MemoryReceiveChannel[AccountReading],
        fills_remembered: int = SEEN_CAPACITY,
    ) -> None:
        self.config = config
        self._fills_remembered = fills_remembered  # the day's fill keys kept to count each once
        self.permission = permission  # its slot of the permission board
        # Its own copies, in order, outliving restarts: every fill, every feed state change,
        # every account reading (the liquidation detector's).
        self._fills = fills
        self._feed_changes = feed_changes
        self._account_readings = account_readings
        self.health = health  # the snapshot the feeds and the account are judged on
        self.portfolio = portfolio  # positions and their PnL (read only)
        self.trading = trading
        self.adapter = adapter
        # Requests to trip the kill switch; whether it is tripped is its slot of the board (a
        # monitor still at KILL while it is is not a new trip).
        self._kills = kills
        self._board = board
        self.decision: RiskDecision | None = None
        self.last_state: RiskState | None = None
        # restore_day() replaces it at start
        self.daily = DailyPnl(utc_day(clock.wall_ms()), fills_remembered)
        max_contracts = trading.strategy.max_position_usd  # refined per symbol with the mark
        self._velocity = {c: PositionVelocity(max_contracts) for c in trading.strategy.symbols}
        # Price velocity is judged per second (5%/s pull, 15%/s kill): a one-second window.
        self._prices = {coin: PriceVelocity(window_s=1.0) for coin in trading.strategy.symbols}
        self._errors = ErrorWindow(config.api_error_window_s)
        self._rejections_seen = 0
        self._liquidations: dict[str, LiquidationDetector] = {}
        self._severity = Gauge(
            "mm_risk_action",
            "The action of each risk monitor (0 none .. 5 kill).",
            ["monitor"],
            registry=registry,
        )
        self._decision = Gauge(
            "mm_risk_decision",
            "The aggregate risk decision: the most severe monitor action (0 none .. 5 kill).",
            registry=registry,
        )
        self._judging = Gauge(
            "mm_risk_monitor_judging",
            "1 while a risk monitor has the inputs it needs, 0 while it cannot judge "
            "(e.g. drawdown before the account value is known).",
            ["monitor"],
            registry=registry,
        )
        self.recent_errors: deque[str] = deque(maxlen=20)

    # --- the day's PnL ----------------------------------------------------------------------

    def restore_day(self, now_ms: int, fills: Iterable[Fill]) -> None:
        """Before start: the UTC day of ``now_ms`` as the journal's fills of it tell it."""
        self.daily = DailyPnl.restore(utc_day(now_ms), fills, self._fills_remembered)
        if self.daily.fills:
            logger.info(
                "the day's PnL restored from the journal: {} fills of {}, realised {:+.2f}, "
                "peak {:+.2f}",
                self.daily.fills,
                self.daily.day.isoformat(),
                self.daily.realized,
                self.daily.peak,
            )

    @property
    def peak_pnl(self) -> float:
        """The highest the day's PnL has been (0 at the start of a day)."""
        return self.daily.peak

    @peak_pnl.setter
    def peak_pnl(self, value: float) -> None:
        self.daily.peak = value

    def drawdown(self) -> float | None:
        """PnL below its peak as a fraction of the account value, as last evaluated (None:
        cannot be judged, or not evaluated yet): autonomy's HALT rule reads it."""
        state = self.last_state
        return state.drawdown if state is not None else None

    # --- status -----------------------------------------------------------------------------

    def status(self) -> dict[str, Any]:
        decision = self.decision
        if decision is None:
            return {"action": None}
        state = self.last_state
        return {
            "action": decision.action.name.lower(),
            "day": self.daily.day.isoformat(),
            "daily_pnl": state.daily_pnl if state else None,
            "peak_pnl": state.peak_pnl if state else None,
            "drawdown_usd": state.drawdown_usd if state else None,
            "drawdown": state.drawdown if state else None,  # against account value
            "account_value": state.account_value if state else None,
            "reasons": list(decision.reasons),
            "spread_factor": decision.spread_factor,
            "monitors": {a.monitor: a.action.name.lower() for a in decision.assessments},
            "cannot_judge": {a.monitor: a.reason for a in decision.assessments if not a.judging},
        }

    # --- the child --------------------------------------------------------------------------

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        task_status.started()
        async with trio.open_nursery() as nursery:
            await nursery.start(consume, self._feed_changes, self._on_feed_change)
            await nursery.start(consume, self._fills, self._on_fill)
            nursery.start_soon(self._watch_positions)
            while True:
                await trio.sleep(EVALUATE_EVERY_S)
                self.evaluate_now()

    def evaluate_now(self) -> RiskDecision:
        state = self.state(trio.current_time())
        self.last_state = state
        decision = evaluate(state, self.config)
        self.decision = decision
        self.permission.set(grant(decision))
        for assessment in decision.assessments:
            self._severity.labels(monitor=assessment.monitor).set(int(assessment.action))
            self._judging.labels(monitor=assessment.monitor).set(1 if assessment.judging else 0)
        self._decision.set(int(decision.action))
        tripped = self._board.grant(Source.KILLSWITCH).level is Level.HALTED
        if decision.kill and not tripped:
            winner = decision.winner
            values: dict[str, Value] = {
                key: value
                for key, value in winner.values.items()
                if isinstance(value, int | float | str)
            }
            values["monitor_reason"] = winner.reason
            self._request(Kill(KILL_REASONS[winner.monitor], values))
        return decision

    def _request(self, kill: Kill) -> None:
        """A kill to the kill switch's channel of risk's requests; never blocks."""
        try:
            self._kills.send_nowait(kill)
        except trio.WouldBlock:
            logger.error("kill switch request queue full; dropped {}", kill)

    def rearm_blockers(self) -> list[Assessment]:
        """The monitors that would trip the kill switch again right now (evaluated afresh): a
        rearm while one of them holds would only re-trip (the incident-response reference's
        "when NOT to reset")."""
        state = self.state(trio.current_time())
        return [a for a in evaluate(state, self.config).assessments if a.action is Action.KILL]

    def state(self, now: float) -> RiskState:
        health = self.health.snapshot()
        marks = self.trading.marks()
        daily = self.daily
        previous = (daily.day, daily.realized, daily.peak)
        if daily.roll(clock.wall_ms()):
            logger.info(
                "a new UTC day {}: the day's PnL and its peak start again (the day before, {}: "
                "realised {:+.2f}, peak {:+.2f})",
                daily.day.isoformat(),
                previous[0].isoformat(),
                previous[1],
                previous[2],
            )
        portfolio = self.portfolio
        positions = portfolio.positions
        # Each symbol's PnL is in its quote: ETH-BTC's is in BTC, valued as the account's.
        unrealized = sum(
            positions.unrealized(coin, mark) * portfolio.quote_mark(coin, marks)
            for coin, mark in marks.items()
        )
        pnl, peak = daily.observe(unrealized)
        symbols = {}
        for coin in self.trading.strategy.symbols:
            # A position; on a spot account what is held of the symbol's base beyond the start.
            contracts = portfolio.exposure(coin)
            mark = marks.get(coin)
            unit = portfolio.exposure_mark(coin, marks)
            velocity = self._velocity[coin]
            if unit:
                velocity.max_position = self.trading.strategy.max_position_usd / unit
            symbols[coin] = SymbolRisk(
                contracts=contracts,
                value_usd=abs(contracts) * (unit or 0.0),
                position_velocity=velocity.update(contracts, now),
                price_velocity=self._prices[coin].update(mark, now) if mark else 0.0,
            )
        # The 429s startup and the user stream's resyncs waited out are waits, not API errors
        # of the trading judged here.
        rejections = self.adapter.limiter.rejections - self.adapter.rate_limit_waits()
        for _ in range(rejections - self._rejections_seen):
            self._errors.record(now)
        self._rejections_seen = rejections
        return RiskState(
            daily_pnl=pnl,
            peak_pnl=peak,
            account_value=health.account_value,
            symbols=symbols,
            feeds=self._feeds(health),
            api_errors=self._errors.count(now),
            cascade_severity=self.trading.strategy.cascade_severity(now),
        )

    @staticmethod
    def _feeds(health: HealthSnapshot) -> dict[str, FeedHealth]:
        """The market feed's connection and its oldest book's age (none before it started)."""
        if health.market is None:
            return {}
        state, attempts = health.market
        return {"market": FeedHealth(health.oldest_book_age_s(), state, attempts)}

    # --- forced liquidations ----------------------------------------------------------------

    def _detector(self, coin: str, mark: float | None) -> LiquidationDetector:
        detector = self._liquidations.get(coin)
        if detector is None:
            max_contracts = self.trading.strategy.max_position_usd / (mark or 1.0)
            detector = LiquidationDetector.from_config(max_contracts, self.config)
            self._liquidations[coin] = detector
        return detector

    def _on_feed_change(self, change: FeedChange) -> None:
        """A feed's new state, from risk's channel of them."""
        if change.trouble:
            self.recent_errors.append(f"{clock.wall():.3f} feed {change.feed} {change.state}")
        self.evaluate_now()  # a feed going stale or down is judged at once

    def _on_fill(self, fill: Fill) -> None:
        marks = self.trading.marks()
        self.daily.on_fill(
            fill,
            quote_usd=self.portfolio.quote_mark(fill.coin, marks),
            fee_usd=self.portfolio.currency_mark(fill.fee_token, marks) or 1.0,
        )
        signed = fill.sz if fill.side is Side.BUY else -fill.sz
        self._detector(fill.coin, fill.px).on_fill(signed, trio.current_time(), fill.time_ms)
        self.evaluate_now()  # a fill changes positions and PnL: decide at once

    async def _watch_positions(self) -> None:
        """Every account reading, judged now, against the fills known: a jump it shows waits
        ``liquidation_fill_window_s`` from now for fills still on their way (a reading whose
        answer was slow, a reply lost and asked again, must not have spent the window
        already: the fills it holds can arrive just after it)."""
        async for reading in self._account_readings:
            if reading.account.of_balances:
                continue  # spot: no position, nothing a venue could liquidate
            marks = self.trading.marks()
            venue = {p.coin: p.szi for p in reading.account.positions}
            now = trio.current_time()
            for coin in self.trading.strategy.symbols:
                detector = self._detector(coin, marks.get(coin))
                detector.on_position(venue.get(coin, 0.0), now, reading.account.time_ms)
            for coin in self.trading.strategy.symbols:
                for event in self._detector(coin, marks.get(coin)).poll(now):
                    logger.critical("forced liquidation detected on {}: {}", coin, event)
                    values: dict[str, Value] = {"coin": coin, "delta": event.delta}
                    self._request(Kill(KillReason.LIQUIDATION_DETECTED, values))
