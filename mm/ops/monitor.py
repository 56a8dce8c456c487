"""The autonomy monitor: the ``autonomy`` child that reads platform health and moves the mode.

Several times a second (``autonomy.check_every_s``) it gathers ``Readings``: the journal's
write lag, every symbol's book age, venue disconnects in the flapping window (a drop that
takes the market and user feeds down together is one, not two), the fill of the service's
queues, resident memory, local against venue positions and margin usage (from the risk
child's ``AccountWatch``, which reads the venue every ``venue_poll_s`` and at every resync)
and the drop of PnL from its peak against the account value. ``assess`` turns them into
triggers and the coordinator escalates to the strictest. When the current mode may recover by
itself, the time since the last trigger is handed to the coordinator.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping
from typing import Any

import psutil
import trio

from mm import clock
from mm.journal import Journal
from mm.ops.autonomy import AutonomyConfig
from mm.ops.coordinator import ModeCoordinator
from mm.ops.health import DriftTracker, Readings, VenueDisconnects, assess
from mm.risk.account import AccountReading, AccountWatch
from mm.trading_view import TradingView
from mm.venues.base import VenueAdapter

QueueFill = Callable[[], float]


def channel_fill(channel: trio.MemoryReceiveChannel[Any]) -> float:
    """How full a memory channel's buffer is, from 0 to 1 (0 for an unbounded one)."""
    stats = channel.statistics()
    capacity = stats.max_buffer_size
    if not capacity or capacity == float("inf"):
        return 0.0
    return stats.current_buffer_used / capacity


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
        journal: Journal,
        adapter: VenueAdapter,
        trading: TradingView,
        queues: Mapping[str, QueueFill],
        drawdown: Callable[[], float | None],
        account: AccountWatch,
        *,
        on_drift: Callable[[Collection[str]], None] | None = None,
    ) -> None:
        self.config = config
        self.coordinator = coordinator
        self.journal = journal
        self.adapter = adapter
        self.trading = trading
        self.queues = queues
        self.drawdown = drawdown
        self.account_watch = account
        self._on_drift = on_drift  # told the drifting coins of every comparison (the fill audit)
        self._reading_seen: AccountReading | None = None
        self.reconnects = VenueDisconnects(config.flapping_window_s)
        self.drift = DriftTracker(config.drift_tolerance)
        self.drifting: dict[str, tuple[float, float, float]] = {}
        self.readings = Readings()
        self.quiet_since: float | None = None
        self._process = psutil.Process()
        self._started: float | None = None

    def on_feed_state(self, feed: str, state: str) -> None:
        """A feed's new state: disconnects are counted for flapping, and noted as evidence."""
        if state == "reconnecting":
            self.reconnects.record(feed, trio.current_time())
        if state in ("reconnecting", "stale", "failed"):
            self.coordinator.note(f"feed {feed} {state}")

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        self._started = trio.current_time()
        async with trio.open_nursery() as nursery:
            await nursery.start(self.coordinator.run)
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
        now_ms = clock.wall() * 1000
        ages: dict[str, float | None] = {}
        # A book that has not arrived yet is as old as the monitor's run: a gap only once the
        # feed has had feed_gap_s to deliver it.
        waited = trio.current_time() - (self._started or trio.current_time())
        for coin in self.trading.strategy.symbols:
            last = self.adapter.last_book_ms(coin)
            ages[coin] = waited if last is None else (now_ms - last) / 1000
        self._judge_drift()
        reading = self.account_watch.latest
        usage = None
        if reading is not None and reading.account.account_value > 0:
            usage = reading.account.margin_used / reading.account.account_value
        return Readings(
            journal_lag_s=self.journal.lag(clock.wall()),
            # No book ages before the market feed started (none is late yet).
            book_ages_s=ages if self.adapter.market_connection() is not None else {},
            reconnects=self.reconnects.count(trio.current_time()),
            queue_fill={name: fill() for name, fill in self.queues.items()},
            rss_bytes=self._process.memory_info().rss,
            drift=self.drifting,
            margin_usage=usage,
            drawdown=self.drawdown(),
        )

    def _judge_drift(self) -> None:
        """Local against venue positions, once per new account reading, only while in sync
        (out of sync, positions are being recovered, not drifting)."""
        reading = self.account_watch.latest
        if reading is None or reading is self._reading_seen or not self.adapter.healthy():
            return
        self._reading_seen = reading
        symbols = self.trading.strategy.symbols
        venue = {p.coin: p.szi for p in reading.account.positions if p.coin in symbols}
        local = {coin: self.trading.positions.position(coin) for coin in symbols}
        self.drifting = self.drift.update(local, venue, trio.current_time())
        if self._on_drift is not None:
            self._on_drift(tuple(self.drifting))

    def status(self) -> dict[str, object]:
        readings = self.readings
        return {
            "journal_lag_s": round(readings.journal_lag_s, 3),
            "reconnects": readings.reconnects,
            "rss_mib": round(readings.rss_bytes / 2**20, 1),
            "margin_usage": readings.margin_usage,
            "drift": {coin: list(values) for coin, values in readings.drift.items()},
            "queue_fill": {name: round(fill, 4) for name, fill in readings.queue_fill.items()},
        }
