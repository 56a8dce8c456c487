"""The autonomy monitor: the ``autonomy`` child that reads platform health and moves the mode.

Several times a second (``autonomy.check_every_s``) it takes the health snapshot
(``mm.health``, the one risk evaluates on too) and turns it into ``Readings``: the journal's
write lag, every symbol's book age, venue disconnects in the flapping window (a drop that
takes the market and user feeds down together is one, not two), the fill of the service's
queues (the fan-out backlogs among them), resident memory, local against venue positions and
margin usage (from the one account poller, which reads the venue every ``venue_poll_s`` and at
every resync) and the drop of PnL from its peak against the account value. ``assess`` turns
them into triggers and the coordinator escalates to the strictest. When the current mode may
recover by itself, the time since the last trigger is handed to the coordinator. The feeds'
state changes come on its own channel of them: each reconnect is counted at the time it
happened, and trouble is noted as evidence.
"""

from __future__ import annotations

from collections.abc import Callable, Collection

import psutil
import trio

from mm import clock
from mm.fanout import consume
from mm.health.board import HealthBoard
from mm.health.snapshot import RECONNECTING, AccountReading, FeedChange, HealthSnapshot
from mm.ops.autonomy import AutonomyConfig
from mm.ops.coordinator import ModeCoordinator
from mm.ops.health import (
    BALANCE_RELATIVE_TOLERANCE,
    DriftTracker,
    Readings,
    VenueDisconnects,
    assess,
)
from mm.portfolio import Portfolio
from mm.trading_view import TradingView


class AutonomyMonitor:
    """The ``autonomy`` child: readings in, triggers to the mode coordinator, recovery when quiet.

    It only reads (nothing here talks to the venue), so it cannot lose state: if a reading
    fails the child crashes and its supervisor restarts it, and the mode, kept by the
    coordinator and checkpointed in the journal, stays where it was meanwhile.
    """

    def __init__(
        self,
        config: AutonomyConfig,
        coordinator: ModeCoordinator,
        trading: TradingView,
        drawdown: Callable[[], float | None],
        *,
        health: HealthBoard,
        portfolio: Portfolio,
        feed_changes: trio.MemoryReceiveChannel[FeedChange],
        on_drift: Callable[[Collection[str]], None] | None = None,
    ) -> None:
        self.config = config
        self.coordinator = coordinator
        self.trading = trading
        self.drawdown = drawdown
        self.health = health  # the snapshot its readings come from
        self.portfolio = portfolio  # local positions, against the venue's (read only)
        self._feed_changes = feed_changes  # its own copy of every feed state change, in order
        self._on_drift = on_drift  # told the drifting coins of every comparison (the fill audit)
        self._reading_seen: AccountReading | None = None
        self.reconnects = VenueDisconnects(config.flapping_window_s)
        self.drift = DriftTracker(config.drift_tolerance)
        self.balance_drift = DriftTracker(config.drift_tolerance, BALANCE_RELATIVE_TOLERANCE)
        self.drifting: dict[str, tuple[float, float, float]] = {}
        self.readings = Readings()
        self.health_read: HealthSnapshot | None = None  # the snapshot the readings came from
        self.quiet_since: float | None = None
        self._process = psutil.Process()
        self._started: float | None = None

    def _on_feed_change(self, change: FeedChange) -> None:
        """A feed's new state: disconnects are counted for flapping (when they happened), and
        trouble is noted as evidence."""
        if change.state == RECONNECTING:
            self.reconnects.record(change.feed, change.at)
        if change.trouble:
            self.coordinator.note(f"feed {change.feed} {change.state}")

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        self._started = trio.current_time()
        async with trio.open_nursery() as nursery:
            await nursery.start(self.coordinator.run)
            await nursery.start(consume, self._feed_changes, self._on_feed_change)
            task_status.started()
            while True:
                await self.check()
                await trio.sleep(self.config.check_every_s)

    async def check(self) -> None:
        """One look: read, assess, escalate to the strictest trigger, or recover when quiet."""
        readings = self.read()
        self.readings = readings
        triggers = assess(readings, self.config)
        self.coordinator.observe(triggers)
        now = clock.wall()
        if triggers:
            self.quiet_since = None
            await self.coordinator.escalate(triggers[0])
        else:
            if self.quiet_since is None:
                self.quiet_since = now
            await self.coordinator.recover(self.quiet_since)

    def read(self) -> Readings:
        health = self.health.snapshot()
        self.health_read = health
        ages: dict[str, float | None] = {}
        # A book that has not arrived yet is as old as the monitor's run: a gap only once the
        # feed has had feed_gap_s to deliver it.
        waited = health.at - (self._started or health.at)
        for coin in self.trading.strategy.symbols:
            age = health.book_age_s(coin)
            ages[coin] = waited if age is None else age
        self._judge_drift(health)
        return Readings(
            journal_lag_s=health.journal_lag_s,
            # No book ages before the market feed started (none is late yet).
            book_ages_s=ages if health.market is not None else {},
            reconnects=self.reconnects.count(health.at),
            queue_fill=dict(health.queue_fill),
            rss_bytes=self._process.memory_info().rss,
            drift=self.drifting,
            margin_usage=health.margin_usage,
            drawdown=self.drawdown(),
        )

    def _judge_drift(self, health: HealthSnapshot) -> None:
        """Local against venue positions (a spot account: the balances of the currencies
        traded), once per new account reading, only while in sync (out of sync, positions are
        being recovered, not drifting)."""
        reading = health.account
        if reading is None or reading is self._reading_seen or not health.healthy:
            return
        self._reading_seen = reading
        account = reading.account
        if account.of_balances:
            # Spot: the venue's balances of the currencies traded, against the portfolio's.
            currencies = self.portfolio.currencies()
            held = {b.currency: b.total for b in account.balances if b.currency in currencies}
            mine = {currency: self.portfolio.balances.get(currency) for currency in currencies}
            self.drifting = self.balance_drift.update(mine, held, health.at)
        else:
            symbols = self.trading.strategy.symbols
            venue = {p.coin: p.szi for p in account.positions if p.coin in symbols}
            local = {coin: self.portfolio.position(coin) for coin in symbols}
            self.drifting = self.drift.update(local, venue, health.at)
        if self._on_drift is not None:
            self._on_drift(tuple(self.drifting))

    def status(self) -> dict[str, object]:
        readings = self.readings
        # How old the venue's account reading was (None: never read), as margin and drift saw it.
        age = self.health_read.account_age_s if self.health_read is not None else None
        return {
            "journal_lag_s": round(readings.journal_lag_s, 3),
            "reconnects": readings.reconnects,
            "rss_mib": round(readings.rss_bytes / 2**20, 1),
            "margin_usage": readings.margin_usage,
            "drift": {coin: list(values) for coin, values in readings.drift.items()},
            "queue_fill": {name: round(fill, 4) for name, fill in readings.queue_fill.items()},
            "account_age_s": round(age, 3) if age is not None else None,
        }
