"""Builds the service from its config: the supervision tree, the admin server, the journal.

The tree (DESIGN.md) starts with the children that exist today; later components plug in as
more child specs without changes to ``supervisors/``::

    mm (root, one-for-one)
    ├── admin      /metrics /healthz /status /stop
    ├── journal    SQLite writer
    ├── venue      the embedded simulator, when venue.url = "embedded"
    ├── feeds      one child per feed, each with its WebSocket connection
    │   ├── market books, trades and mids
    │   ├── user   order updates and fills, the resync gate, and the order client
    │   └── fills  the fill audit: the venue's fills against those forwarded
    ├── execution  startup sequence, user events through the dispatcher, dead-man's switch
    ├── portfolio  positions, PnL and balances, from its channel of fills (risk has its own)
    ├── order-events  order lifecycle events into the journal, from their channel
    ├── leg-events    (triarb) the same events to the triangle slots: a leg's order's end
    ├── trading    the strategy and the executor slots (the kill switch's scope)
    │   ├── strategy   what strategy.kind names: GLFT quoters' ladders to the slots, or
    │   │              triangular arbitrage's signals to the triangle desk
    │   └── slot-N     reconcile, rate-limit and send, one symbol at a time; or (triarb) a
    │                  triangle's three legs from their fills
    ├── health     the one poller of the venue's account (the health snapshot's source)
    ├── risk       the monitors and the kill switch's triggers
    ├── notifier   notifications to the log, a webhook, Telegram
    ├── autonomy   the autonomy monitor and the mode coordinator
    └── session    the session governor, the track gate, the flattener
"""

from __future__ import annotations

import os
import signal
import socket
from collections.abc import Awaitable, Callable, Sequence
from functools import partial
from typing import Any

import attrs
import trio
from loguru import logger

from mm import __version__, clock, world
from mm.admin import AdminApp, AdminContext, AdminServer, Answer
from mm.config import Config, Secrets, config_hash, to_dict
from mm.execution.auditor import OrderAuditor
from mm.execution.cancel_all import CancelAll, Purpose
from mm.execution.dispatch import DispatchOutput
from mm.execution.flatten import Flattener
from mm.execution.legs import LegExecutor
from mm.execution.permissions import Grant, Level, PermissionBoard, Source
from mm.fanout import Fanout, consume, export_backlogs, queue_fills
from mm.feeds.fill_audit import FillAudit
from mm.feeds.history import HISTORY_START, FillHistory, HistoryStart, JournaledFills
from mm.gc_pauses import GcPauses, tune_after_startup
from mm.health.account import AccountWatch
from mm.health.board import FeedStates, HealthBoard, channel_fill
from mm.journal import DATABASE_NAME, Journal, entry_data, journaled_fills, latest_event
from mm.metrics import new_registry
from mm.model import AccountState, Fill, Instrument, TradeId
from mm.ops.coordinator import JOURNAL_KIND as AUTONOMY_KIND
from mm.ops.coordinator import ModeCoordinator
from mm.ops.monitor import AutonomyMonitor
from mm.ops.notifier import Notifier
from mm.ops.readiness import TradingState, not_trading
from mm.ops.report import parse_fill, read_day
from mm.ops.sessions import SessionRunner
from mm.portfolio import Portfolio, PositionBook
from mm.risk.controller import Kill, KillSwitchController
from mm.risk.daily import utc_day
from mm.risk.runner import RiskAggregator
from mm.runfile import RunFile, RunInfo
from mm.secrets import Redactor
from mm.strategies.base import StrategyContext
from mm.strategies.registry import build_strategy
from mm.strategies.runner import Trading
from mm.strategies.triarb.desk import TriangleDesk
from mm.trading_view import HoldsBalances
from mm.venues.base import SpotTerms
from mm.venues.factory import build_adapter
from mm.venues.sim.kucoin.server import KucoinSimVenue
from mm.venues.sim.venue import SimVenue
from supervisors import (
    Backoff,
    ChildSpec,
    ChildState,
    ChildStatus,
    FanOut,
    Intensity,
    MetricsObserver,
    Supervisor,
    SupervisorEscalation,
    unhealthy,
)

EMBEDDED = "embedded"


class StartupError(Exception):
    """The service cannot start; the message says why."""


@attrs.frozen
class Recovered:
    """What the journal tells a new run before anything starts."""

    killswitch: dict[str, Any] | None = None  # the latest kill-switch checkpoint
    mode: dict[str, Any] | None = None  # the latest autonomy mode
    fills: JournaledFills = attrs.field(factory=JournaledFills)  # the newest, by trade id
    day_fills: tuple[Fill, ...] = ()  # the fills of the UTC day the run starts on


class JournalObserver:
    """Journals every child failure, so the database tells what the logs tell."""

    def __init__(self, journal: Journal) -> None:
        self._journal = journal

    def state_changed(self, path: str, state: ChildState, error: str | None) -> None:
        if state is not ChildState.FAILED:
            return
        self._journal.record_or_log("child_failed", child=path, error=error)

    def restarted(self, path: str) -> None:
        return None


def check_port_free(host: str, port: int) -> None:
    """Fail fast, before anything starts, when the admin port is taken."""
    if port == 0:
        return
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror as error:
        raise StartupError(f"admin.host: cannot resolve {host!r}: {error}") from None
    family, kind, proto, _, address = infos[0]
    with socket.socket(family, kind, proto) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(address)
        except OSError as error:
            raise StartupError(f"admin.port: cannot bind {host}:{port}: {error.strerror}") from None


class Service:
    """One running mm: owns the tree, the registry, the journal and the run file."""

    def __init__(
        self,
        config: Config,
        secrets: Secrets,
        *,
        handle_signals: bool = False,
        tune_gc: bool = False,
    ) -> None:
        self.config = config
        self.config_hash = config_hash(config)
        self.registry = new_registry(config.service.name)
        # Every garbage collection's pause, while the service runs; tune_gc (mm start, which owns
        # the process) also freezes what startup built and sets mm's thresholds.
        self.gc_pauses = GcPauses()
        self.registry.register(self.gc_pauses)
        self._tune_gc = tune_gc
        self.journal = Journal(config.run_dir / DATABASE_NAME, config.journal, self.registry)
        self.runfile = RunFile(config.run_dir)
        self.admin_url: str | None = None
        self.venue: SimVenue | None = None
        self.kucoin_venue: KucoinSimVenue | None = None  # the embedded KuCoin face, when run
        self.venue_url: str | None = None if config.venue.url == EMBEDDED else config.venue.url
        self.state = "starting"
        self.started_at = clock.wall()
        self.stop_reason: str | None = None
        self._handle_signals = handle_signals
        self._redact = Redactor(secrets.all())
        self._stop_requested = trio.Event()
        admin_app = AdminApp(
            AdminContext(
                status=self.status,
                problems=self.problems,
                registry=self.registry,
                request_stop=self.request_stop,
                token=secrets.admin_token,
                redact=self._redact,
                kill=self.kill,
                rearm=self.rearm,
                dump=self._dump,
                flatten=self.flatten,
                not_trading=self.not_trading,
            )
        )
        admin = AdminServer(admin_app, config.admin.host, config.admin.port, self._admin_bound)
        supervision = config.supervision
        self._intensity = Intensity(supervision.max_restarts, supervision.restart_period)
        self._observer = FanOut(MetricsObserver(self.registry), JournalObserver(self.journal))
        # The fills accounted for: restored from the journal at start, shared by the user
        # stream and the fill audit.
        self.fill_history = FillHistory(config.feeds.user.dedup_capacity)
        # "May I send?": each owner writes its slot, the strategy and the checks read it.
        self.permissions = PermissionBoard()
        # Positions, PnL and balances per currency, outside the strategy: fed by the portfolio's
        # channel of fills, the venue's positions adopted at startup; everyone else reads it.
        # Fills remembered to apply each once: as many as the fill history remembers (an
        # older fill replayed is dropped there), not the position book's million.
        positions = PositionBook(max_keys=config.feeds.user.dedup_capacity)
        self.portfolio = Portfolio(config.strategy.symbols, self._instrument, positions)
        self._stopping = self.permissions.slot(Source.SERVICE)
        # Fills to the portfolio and to risk, order events to the journal: each consumer its
        # own channel, never dropped, never reordered, none held up by another's failure.
        self.fills = Fanout[Fill](("portfolio", "risk"))
        # (Triangular arbitrage's slots hear their legs' ends from them too.)
        self.order_events = Fanout[Sequence[DispatchOutput]](
            ("journal", "trading") if config.strategy.kind == "triarb" else ("journal",)
        )
        self._fanouts: dict[str, Fanout[Any]] = {
            "fills": self.fills,
            "order_events": self.order_events,
        }
        export_backlogs(self.registry, self._fanouts)
        # Every feed's state change, to risk and to autonomy, each on its own channel.
        self.feed_states = FeedStates()
        self.adapter = build_adapter(
            config.venue,
            config.feeds,
            venue_url=lambda: self.venue_url,
            signing_key=secrets.venue_key,
            api_credentials=secrets.venue_api,
            registry=self.registry,
            killed=lambda: self.permissions.grant(Source.KILLSWITCH).level is Level.HALTED,
            on_fill=self.fills.publish,
            on_order_events=self.order_events.publish,
            on_feed_state=self.feed_states.on_feed_state,
            # Positions start from the venue's as the startup sequence reads them, before any
            # fill is routed, whether the strategy runs or the kill switch holds it.
            on_startup=self.portfolio.adopt_venue_positions,
            on_account=self._on_account,
            rate_limit=config.rate_limit,
            fill_history=self.fill_history,
        )
        self.fill_audit = FillAudit(
            config.feeds.user,
            self.fill_history,
            lambda: self.adapter.client,
            self.adapter.user_events_send.clone(),
            self.registry,
        )
        # Every "cancel everything" of the service, one deadline policy (kill, stop, HALT, flatten).
        self.cancel_all = CancelAll(lambda: self.adapter.client)
        self.order_auditor = OrderAuditor(config.executor.audit, self.registry)
        # The strategy strategy.kind names, and the task shell that feeds it and its slots.
        context = StrategyContext(
            permissions=self.permissions,
            portfolio=self.portfolio,
            instruments=self._instrument,
            live_orders=self._live_orders,
            registry=self.registry,
            spot=self._spot_terms,
        )
        strategy = build_strategy(config.strategy, context, config.triarb)
        # Triangular arbitrage's executor slots take the strategy's signals (its legs go through
        # the same order router, dispatcher and pre-trade checks as every order).
        triangles = (
            TriangleDesk(
                config.triarb,
                config.strategy.symbols,
                context,
                lambda: self.adapter.router,
                self.adapter.dispatcher,
                lambda row: self.journal.record_or_log("triangle", **row),
            )
            if config.strategy.kind == "triarb"
            else None
        )
        # Multi-leg commands, the strategy's and the flattener's; fills reach it through trading.
        self.legs = LegExecutor(
            lambda: self.adapter.router, self.adapter.dispatcher, self._instrument
        )
        self.trading = Trading(
            strategy,
            config.executor,
            self.adapter,
            self.registry,
            self.permissions,
            self.cancel_all,
            config.pretrade,
            on_markout=self._journal_markout,
            portfolio=self.portfolio,
            legs=self.legs,
            dispatcher=self.adapter.dispatcher,
            router=lambda: self.adapter.router,
            triangles=triangles,
        )
        self.notifier = Notifier(config.notify, secrets.notify, self.registry, self._redact)
        self.flattener = Flattener(
            config.flatten,
            self.adapter,
            config.pretrade,
            self.registry,
            self.permissions,
            self.permissions.slot(Source.FLATTENER),
            self.cancel_all,
            legs=self.legs,
        )
        self.coordinator = ModeCoordinator(
            config.autonomy,
            self.journal,
            self.notifier.notify,
            self.registry,
            partial(self.cancel_all, Purpose.HALT),
            self.permissions.slot(Source.AUTONOMY),
            rearmed=lambda: self.session.resume(),  # built next, with the coordinator
        )
        self.session = SessionRunner(
            config.session,
            config.strategy.symbols,
            self.flattener,
            self.coordinator,
            self.journal,
            self.notifier.notify,
            self.registry,
            self.permissions,
            self.permissions.slot(Source.SESSION),
        )
        self.root = Supervisor(
            "mm",
            self._children(admin),
            intensity=self._intensity,
            observer=self._observer,
            wall=clock.wall,
        )

    def _instrument(self, coin: str) -> Instrument:
        client = self.adapter.client
        if client is None:
            raise RuntimeError("the venue client is not up: no instruments yet")
        return client.instrument(coin)

    def _spot_terms(self) -> SpotTerms | None:
        client = self.adapter.client
        return client if isinstance(client, SpotTerms) else None

    def _live_orders(self, coin: str) -> int:
        return len(self.adapter.dispatcher.registry.live(coin))

    def _children(self, admin: AdminServer) -> list[ChildSpec]:
        children = [
            self._child("admin", admin.run),
            self._child("journal", self.journal.run),
            self._child("notifier", self.notifier.run),
        ]
        if self.config.venue.url == EMBEDDED:
            children.append(self._child("venue", self._embedded_venue()))
        feeds = Supervisor(
            "mm/feeds",
            [
                self._child("market", self.adapter.run_market),
                self._child("user", self.adapter.run_user),
                self._child("fills", self.fill_audit.run),
            ],
            intensity=self._intensity,
            observer=self._observer,
            wall=clock.wall,
        )
        children.append(feeds.as_child())
        execution = partial(self.adapter.run_execution, self._journal_entry, self.order_auditor)
        children.append(self._child("execution", execution))
        # Positions, PnL and markouts from every fill, outside the trading scope: they follow the
        # venue whether the kill switch holds trading or not.
        portfolio = partial(consume, self.fills.receiver("portfolio"), self._on_fill)
        children.append(self._child("portfolio", portfolio))
        journal = partial(
            consume, self.order_events.receiver("journal"), self._journal_order_events
        )
        children.append(self._child("order-events", journal))
        if self.trading.triangles is not None:  # (the order events' "trading" consumer)
            legs = partial(
                consume, self.order_events.receiver("trading"), self.trading.on_order_events
            )
            children.append(self._child("leg-events", legs))
        trading = Supervisor(
            "mm/trading",
            [self._child("strategy", self.trading.run_strategy)]
            + [self._child(name, run) for name, run in self.trading.children()],
            intensity=self._intensity,
            observer=self._observer,
            wall=clock.wall,
        )
        # The one poller of the venue's account, and the one health snapshot risk and autonomy
        # judge on, produced from its sources.
        self.account = AccountWatch(self.adapter, self.config.autonomy.venue_poll_s)
        adapter = self.adapter
        self.health = HealthBoard(
            adapter,
            self.feed_states,
            self.account,
            journal_lag=self.journal.lag,
            queues={
                "journal": self.journal.fill,
                "user_events": lambda: channel_fill(adapter.user_events),
                "trades": self._trades_fill,
                "notifications": self.notifier.fill,
                **queue_fills(self._fanouts),  # fills.portfolio, fills.risk, order_events.journal
            },
        )
        # Risk's kill requests reach the kill switch on a channel: risk is built first, and the
        # kill switch reads it (rearm blockers, incident dumps) without a lambda to fill later.
        kills, kill_requests = trio.open_memory_channel[Kill](64)
        self.risk = RiskAggregator(
            self.config.risk,
            self.trading,
            self.adapter,
            kills,
            self.permissions,
            self.registry,
            self.permissions.slot(Source.RISK),
            self.fills.receiver("risk"),
            health=self.health,
            portfolio=self.portfolio,
            feed_changes=self.feed_states.changes("risk"),
            account_readings=self.account.readings,
            fills_remembered=self.config.feeds.user.dedup_capacity,
        )
        self.killswitch = KillSwitchController(
            trading.run,
            self.trading,
            self.adapter,
            self.journal,
            self.config.run_dir,
            self._redact,
            permission=self.permissions.slot(Source.KILLSWITCH),
            cancel_all=self.cancel_all,
            notify=self.notifier.notify,
            dispatcher=self.adapter.dispatcher,
            deadman=self.adapter.deadman,
            portfolio=self.portfolio,
            account=self.account,
            registry=self.registry,
            risk=self.risk,
            requests=kill_requests,
        )
        children.append(
            ChildSpec("trading", self.killswitch.run, describe=self._trading_tree(trading))
        )
        children.append(self._child("health", self.health.run))
        children.append(self._child("risk", self.risk.run))
        self.monitor = AutonomyMonitor(
            self.config.autonomy,
            self.coordinator,
            self.trading,
            self.risk.drawdown,
            health=self.health,
            portfolio=self.portfolio,
            feed_changes=self.feed_states.changes("autonomy"),
            on_drift=self.fill_audit.positions_compared,
        )
        children.append(self._child("autonomy", self.monitor.run))
        children.append(self._child("session", self.session.run))
        return children

    def _on_fill(self, fill: Fill) -> None:
        """The portfolio child's: the portfolio applies the fill, then trading hears it if new
        (its markouts, a multi-leg group waiting for it, the strategy)."""
        if self.portfolio.apply(fill):
            self.trading.on_fill(fill)

    def _trades_fill(self) -> float:
        """How full the trades channel is, for the queue-depth check: 0 while the kill switch
        holds the trading subtree, whose strategy is its one reader (a channel nobody is
        meant to read fills up without anything being slow; the strategy drops the backlog
        when it runs again)."""
        if self.killswitch.switch.tripped:
            return 0.0
        return channel_fill(self.adapter.trades)

    def _on_account(self, state: AccountState) -> None:
        """An account state the user stream pushed: the triangle slots' balance override."""
        self.trading.on_account(state)

    def _journal_markout(
        self, coin: str, horizon_ms: int, bps: float, fill_time_ms: int, tid: TradeId | None
    ) -> None:
        """Each completed markout, for ``mm report`` (the fill's tid lets it drop duplicates)."""
        self.journal.record_or_log(
            "markout", coin=coin, horizon_ms=horizon_ms, bps=bps, fill_time_ms=fill_time_ms, tid=tid
        )

    def _journal_order_events(self, events: Sequence[Any]) -> None:
        """Every order lifecycle event into the journal (never waiting: events are sync)."""
        for event in events:
            data = entry_data(event)
            self.journal.record_or_log("order_event", event=type(event).__name__, **data)

    async def _journal_entry(self, kind: str, data: dict[str, Any]) -> None:
        await self.journal.record(kind, **data)

    async def _venue_bound(self, url: str) -> None:
        self.venue_url = url

    def _embedded_venue(self) -> Callable[..., Awaitable[None]]:
        """The simulator of venue.kind, run as the "venue" child: its URL is the venue's."""
        sim = self.config.sim
        if self.config.venue.kind == "kucoin":
            # KuCoin's face funds its development account (the development credentials'). Its
            # ids start from the wall clock's ms, as the Hyperliquid simulator's below.
            self.kucoin_venue = KucoinSimVenue(
                host=sim.host,
                port=sim.port,
                seed=sim.seed,
                on_bound=self._venue_bound,
                first_id=clock.wall_ms(),
            )
            return self.kucoin_venue.run
        # The faucet funds the account mm trades for, so that `make run` trades at once.
        # Its order and trade ids start from the wall clock's ms: a run in the same run_dir
        # restores the fills it journaled, and ids from 1 again would be taken for those
        # (dropped as seen: risk then saw the venue's position move with no fill).
        self.venue = SimVenue(
            sim,
            on_bound=self._venue_bound,
            fund_at_start=(self.adapter.account,),
            first_id=clock.wall_ms(),
        )
        return self.venue.run

    def _child(self, name: str, run: Any) -> ChildSpec:
        supervision = self.config.supervision
        backoff = Backoff(
            supervision.backoff_initial, supervision.backoff_multiplier, supervision.backoff_cap
        )
        return ChildSpec(name, run, backoff=backoff, stable_after=supervision.stable_after)

    # --- what the admin server reads and triggers ---------------------------------------------

    def problems(self) -> list[str]:
        found = [] if self.state == "running" else [f"mm is {self.state}"]
        return found + unhealthy(self.root.status())

    def not_trading(self) -> list[str]:
        """Why mm is not trading now, empty while it trades: /readyz and mm status."""
        killswitch = self.killswitch.status()
        reason = self.coordinator.autonomy.reason
        state = TradingState(
            service=self.state,
            killswitch=str(killswitch["reason"]) if killswitch["tripped"] else None,
            mode=self.coordinator.mode,
            mode_reason=reason.value if reason is not None else None,
            in_sync=self.adapter.in_sync(),
            waiting=self.adapter.startup_waiting(),
            access=self.adapter.access_refused(),
            down=tuple(unhealthy(self.root.status())),
        )
        return not_trading(state)

    def status(self) -> dict[str, Any]:
        problems = self.problems()
        return {
            "service": self.config.service.name,
            "version": __version__,
            "pid": os.getpid(),
            "state": self.state,
            "started_at": self.started_at,
            "uptime_seconds": round(clock.wall() - self.started_at, 3),
            "config_hash": self.config_hash,
            "admin_url": self.admin_url,
            "venue_url": self.venue_url,
            "healthy": not problems,
            "problems": problems,
            "not_trading": self.not_trading(),
            "killswitch": self.killswitch.status(),
            "deadman": self.adapter.deadman.status(),
            "mode": {**self.coordinator.status(), "health": self.monitor.status()},
            "session": self.session.status(),
            "notify": self.notifier.status(),
            "risk": self.risk.status(),
            **self.adapter.status(),
            "order_audit": self.order_auditor.status(),
            "gc": self.gc_pauses.status(),
            "trading": self._trading_status(),
            "tree": {
                "name": self.root.name,
                "path": self.root.path,
                "state": self.state,
                "children": [child.to_dict() for child in self.root.status()],
            },
        }

    def _trading_status(self) -> dict[str, Any]:
        """The trading subtree's status, with the strategy's balances when what it holds is
        balances per currency (``HoldsBalances``: triangular arbitrage on spot pairs)."""
        found = self.trading.status(self._trading_stopped())
        strategy = self.trading.strategy
        if isinstance(strategy, HoldsBalances):
            found["balances"] = strategy.balances(self.trading.marks())
        return found

    def _trading_stopped(self) -> str | None:
        """Why trading is stopped outright, for status: the kill switch, while tripped."""
        killswitch = self.killswitch.status()
        return f"kill switch tripped ({killswitch['reason']})" if killswitch["tripped"] else None

    async def kill(self, reason: str) -> Answer:
        """``mm kill`` (an operator's command, as the admin API runs it): answered once the
        trip's checkpoint is committed and the venue's cancel-all is done (or already tripped:
        since when, for what)."""
        outcome = await self.killswitch.kill(reason)
        return Answer(200, outcome.to_json())

    async def rearm(self, who: str, why: str, force: bool) -> Answer:
        """``mm rearm`` (an operator's command) resets the kill switch, then the autonomy mode
        (HALT, REDUCE_ONLY); a refused kill-switch rearm (a monitor would trip it again now)
        rearms neither."""
        outcome = await self.killswitch.rearm_request(who, why, force=force)
        body = outcome.to_json()
        if outcome.refused:
            return Answer(409, {**body, "mode": self.coordinator.mode.label})
        with trio.CancelScope(shield=True):
            transition = await self.coordinator.rearm(who, why)
        body.update(mode=self.coordinator.mode.label, mode_rearmed=transition is not None)
        return Answer(200, body)

    async def flatten(self, who: str, why: str) -> Answer:
        """``mm flatten`` (an operator's command): started (202), or refused (409) with the
        mode left as it was."""
        refused = self.session.request_flatten(who, why)
        if refused is not None:
            body = {"flattening": False, "refused": refused, "mode": self.coordinator.mode.label}
            return Answer(409, body)
        return Answer(202, {"flattening": True, "who": who, "reason": why})

    async def _dump(self, why: str) -> Answer:
        """``mm dump``: the incident dump written, and where."""
        path = await self.killswitch.dump(why)
        return Answer(200, {"path": str(path)})

    def request_stop(self, reason: str) -> None:
        if self.stop_reason is None:
            self.stop_reason = reason
        self._stop_requested.set()

    def _trading_tree(self, trading: Supervisor) -> Callable[[], tuple[ChildStatus, ...]]:
        """The trading subtree's children while it runs; none while the kill switch holds it."""

        def describe() -> tuple[ChildStatus, ...]:
            return () if self.killswitch.switch.tripped else trading.status()

        return describe

    def _recover(self, now_ms: int) -> Recovered:
        """From the journal: the latest kill-switch checkpoint, the latest autonomy mode, the
        newest fills by trade id and the fills of the UTC day of ``now_ms`` (blocking: run in a
        thread; ``now_ms`` is read on the run's clock before)."""
        database = self.config.run_dir / DATABASE_NAME
        if not database.exists():
            return Recovered()
        checkpoint = latest_event(database, "killswitch")
        mode = latest_event(database, AUTONOMY_KIND)
        limit = self.config.feeds.user.dedup_capacity
        rows = journaled_fills(database, limit)
        start = latest_event(database, HISTORY_START)
        day_fills = []
        for data in read_day(database, utc_day(now_ms))[0]:
            try:
                day_fills.append(parse_fill(data))
            except (KeyError, TypeError, ValueError):  # counted by mm report; not a PnL figure
                continue
        return Recovered(
            checkpoint.data if checkpoint else None,
            mode.data.get("checkpoint") if mode else None,
            JournaledFills.from_rows(
                rows, limit=limit, start=HistoryStart(start.data["newest_ms"]) if start else None
            ),
            tuple(day_fills),
        )

    async def _admin_bound(self, url: str) -> None:
        self.admin_url = url
        name = self._redact(self.config.service.name)
        info = RunInfo(os.getpid(), url, self.started_at, name)
        await world.run_blocking(self.runfile.write, info)

    # --- the run ------------------------------------------------------------------------------

    async def run(
        self, *, task_status: trio.TaskStatus[Service] = trio.TASK_STATUS_IGNORED
    ) -> None:
        """Start the tree, serve until a stop is requested, then stop everything."""
        self.runfile.acquire()
        self.gc_pauses.install()
        try:
            if self.runfile.removed_stale:
                logger.info("removed a stale run file in {}", self.config.run_dir)
            check_port_free(self.config.admin.host, self.config.admin.port)
            now_ms = clock.wall_ms()
            recovered = await world.run_blocking(self._recover, now_ms)
            self.killswitch.restore(recovered.killswitch)
            self.coordinator.restore(recovered.mode)
            self.fill_history.restore(recovered.fills)
            self.risk.restore_day(now_ms, recovered.day_fills)
            # The day's journaled fills and the fill keys are taken in: not held by this frame
            # for the whole run (nor frozen with what startup built).
            del recovered
            await self._run_tree(task_status)
        finally:
            self.gc_pauses.uninstall()
            self.runfile.release()
        logger.info("mm stopped ({})", self.stop_reason)

    async def _run_tree(self, task_status: trio.TaskStatus[Service]) -> None:
        try:
            async with trio.open_nursery() as nursery:
                nursery.start_soon(self._stop_when_requested, nursery.cancel_scope)
                if self._handle_signals:
                    nursery.start_soon(self._stop_on_signals)
                await nursery.start(self.root.run)
                if self._tune_gc:
                    # Startup's objects stay to the end: no later collection walks them. The
                    # one deliberate full collection before it is logged, not counted as a
                    # pause of the running service.
                    self.gc_pauses.uninstall()
                    frozen = tune_after_startup()
                    self.gc_pauses.install()
                    logger.info(
                        "gc: froze {} objects built at start (collected first in {:.1f} ms)",
                        frozen.objects,
                        frozen.collect_seconds * 1000,
                    )
                self.state = "running"
                await self.journal.record("config", **self._redact.scrub(to_dict(self.config)))
                await self.journal.record(
                    "service_started",
                    version=__version__,
                    pid=world.process_id(),
                    config_hash=self.config_hash,
                    admin_url=self.admin_url,
                )
                logger.info(
                    "mm {} '{}' running: admin {}, run_dir {}",
                    __version__,
                    self.config.service.name,
                    self.admin_url,
                    self.config.run_dir,
                )
                task_status.started(self)
        except BaseExceptionGroup as group:
            escalations, rest = group.split(SupervisorEscalation)
            if escalations is not None and rest is None:
                self.state = "failed"
                raise escalations.exceptions[0] from None
            raise

    async def _stop_when_requested(self, tree_scope: trio.CancelScope) -> None:
        await self._stop_requested.wait()
        self.state = "stopping"
        logger.info("stopping: {}", self.stop_reason)
        # Trading stops first, while the feeds and the venue client still run: no new quotes,
        # then every open order canceled. The rest of the tree is cancelled after.
        self._stopping.set(Grant(Level.HALTED, f"mm is stopping ({self.stop_reason})"))
        stopped = await self.trading.stop()  # the venue's word: zero, or the orders left
        with trio.move_on_after(2.0):  # disarmed while the connection runs, not when it closes
            await self.adapter.deadman.disarm_for_stop()
        # Never wait on the journal here: a stop must not hang behind a stuck writer.
        symbols = self.config.strategy.symbols
        positions = {coin: self.portfolio.position(coin) for coin in symbols}
        self.journal.record_or_log("positions", positions=positions)
        cancel = stopped.to_json() if stopped is not None else None
        self.journal.record_or_log("service_stopping", reason=self.stop_reason, cancel_all=cancel)
        tree_scope.cancel()

    async def _stop_on_signals(self) -> None:
        with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
            async for signum in signals:
                self.request_stop(f"signal {signal.Signals(signum).name}")
