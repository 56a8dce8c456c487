"""The Hyperliquid adapter assembled for the service: feeds as supervised children, the client.

The service's ``feeds`` supervisor gets one child per feed. A feed child owns its WebSocket
connection and its consumer and runs both; a crash of either restarts the pair with backoff.
The venue's URL is read when a child starts, so an embedded simulator listening on a port
chosen at start is found (it starts earlier in the tree). What outlives restarts (the book bus,
the trades channel, metrics, the signer and the rate limiter) belongs to the adapter.
"""

from __future__ import annotations

import enum
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import attrs
import trio
from prometheus_client import CollectorRegistry

from mm import clock
from mm.book import BookBus
from mm.connection import Transition
from mm.execution.auditor import AuditLink, OrderAuditor
from mm.execution.deadman import DeadmanKeeper
from mm.execution.dispatch import Dispatcher, DispatchOutput
from mm.execution.orders import OrderRouter
from mm.execution.startup import StartupState, StartupWaits, run_startup
from mm.feeds.history import FillHistory
from mm.feeds.market import MarketFeed
from mm.feeds.metrics import FeedMetrics
from mm.feeds.user import Resynced, UserFeed, UserStreamEvent
from mm.model import AccountState, Fill, OpenOrder, OrderReport, RateLimitState, Trade
from mm.secrets import Secret
from mm.venues.config import FeedsConfig
from mm.venues.hyperliquid import wire
from mm.venues.hyperliquid.access import VenueAccess
from mm.venues.hyperliquid.address_budget import AddressBudget
from mm.venues.hyperliquid.client import HyperliquidClient
from mm.venues.hyperliquid.market_stream import HyperliquidMarketStream
from mm.venues.hyperliquid.metrics import AdapterMetrics
from mm.venues.hyperliquid.queries import RestQueries
from mm.venues.hyperliquid.rate_limit import RateLimitConfig, RateLimiter
from mm.venues.hyperliquid.rest import RestTransport
from mm.venues.hyperliquid.signing import L1Signer
from mm.venues.hyperliquid.user_stream import HyperliquidUserStream
from mm.venues.hyperliquid.wire import is_own_cloid
from mm.venues.hyperliquid.ws import WsConnection


class HyperliquidAdapter:
    def __init__(
        self,
        config: FeedsConfig,
        *,
        venue_url: Callable[[], str | None],
        signing_key: Secret,
        account_address: str,
        registry: CollectorRegistry,
        killed: Callable[[], bool],
        on_fill: Callable[[Fill], None],
        on_order_events: Callable[[Sequence[DispatchOutput]], None],
        on_feed_state: Callable[[str, str], None],
        on_startup: Callable[[AccountState], None],
        rate_limit: RateLimitConfig | None = None,
        mainnet: bool = False,
        fill_history: FillHistory | None = None,
        cancel_foreign_orders: bool = True,
    ) -> None:
        self.config = config
        # With False, orders on the account that mm did not place (no mm cloid) are left alone
        # by the startup cancel-all and by the order audit ([venue] cancel_foreign_orders).
        self.cancel_foreign_orders = cancel_foreign_orders
        self._venue_url = venue_url
        self.metrics = AdapterMetrics(registry)
        self.feed_metrics = FeedMetrics(registry)
        self.bus = BookBus()
        self.trades_send, self.trades = trio.open_memory_channel[Trade](config.trades_queue)
        self.signer = L1Signer(signing_key.reveal())
        self.account = (account_address or self.signer.address).lower()
        self.limiter = RateLimiter(rate_limit)
        # Startup's waits on the venue's rate limit (a 429 while starting is waited out).
        self.startup_waits = StartupWaits(self.limiter, registry)
        # 429s the user stream met reading the venue (its history, its resyncs): waits of a
        # resync, retried on its backoff once the limiter's is over, not API errors of trading.
        self.sync_rate_limited = 0
        # The address budget: fills credited as they come, the venue's figures read again
        # periodically and after every resync.
        self.address_budget = AddressBudget(
            self.limiter,
            self._rate_limit_read,
            every_s=self.limiter.config.address_refresh_seconds,
            registry=registry,
        )
        self.mainnet = mainnet
        # The venue's word on this key for this account, asked at every start of the user feed.
        self.access = VenueAccess(
            network="mainnet" if mainnet else "testnet",
            recheck_s=config.startup.access_recheck_s,
            waits=self.startup_waits,
        )
        self.market_feed: MarketFeed | None = None
        self.market_ws: WsConnection | None = None
        self.user_events_send, self.user_events = trio.open_memory_channel[UserStreamEvent](
            config.user_events_queue
        )
        self.user_stream: UserFeed | None = None
        self.client: HyperliquidClient | None = None
        self.dispatcher = Dispatcher()
        self.router: OrderRouter | None = None
        # Every new fill (to the portfolio and risk) and every lifecycle event batch (to the
        # journal) is published through these, in order (the service's fan-out channels).
        self._on_fill = on_fill
        self._on_order_events = on_order_events
        self._on_feed_state = on_feed_state  # (feed, new state): risk and autonomy judge it
        self.startup: StartupState | None = None
        # Told the venue's account as the startup sequence read it, before any fill is routed.
        self._on_startup = on_startup
        self._killed = killed  # the kill switch is tripped: not healthy for trading
        # The fills accounted for (the journal's, restored at start, and those forwarded since):
        # a fill is forwarded once, whichever user stream or audit finds it.
        self.fill_history = (
            fill_history if fill_history is not None else FillHistory(config.user.dedup_capacity)
        )
        # The venue's dead-man's switch, kept armed by the execution child while healthy; it
        # outlives that child's restarts (what the venue refused, the triggers fired).
        self.deadman = DeadmanKeeper(
            self,
            config.deadman,
            healthy=self.healthy,
            now_ms=lambda: clock.wall_ms(),
            registry=registry,
        )

    def url(self) -> str:
        url = self._venue_url()
        if url is None:
            raise RuntimeError("the venue's URL is not known yet (has the simulator started?)")
        return url

    def _on_state(self, feed: str) -> Callable[[Transition], None]:
        def changed(transition: Transition) -> None:
            self.feed_metrics.set_feed_state(feed, transition.new.value)
            if transition.new.value == "reconnecting":
                self.feed_metrics.reconnects.labels(feed=feed).inc()
            self._on_feed_state(feed, transition.new.value)

        return changed

    async def run_market(
        self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED
    ) -> None:
        """The market feed child: its connection and the books, trades and mids it carries."""
        ws = WsConnection(
            self.url(),
            self.config.connection,
            name="market",
            on_state_change=self._on_state("market"),
        )
        feed = MarketFeed(
            HyperliquidMarketStream(ws),
            self.config.coins,
            self.bus,
            self.trades_send.clone(),
            config=self.config.market,
            metrics=self.feed_metrics,
            name="market",
        )
        async with trio.open_nursery() as nursery:
            await nursery.start(ws.run)
            await nursery.start(feed.run)
            self.market_ws, self.market_feed = ws, feed
            nursery.start_soon(self._export_counters, ws, "market")
            task_status.started()

    async def run_user(
        self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED
    ) -> None:
        """The user feed child: its connection, the user stream, and the order client on it."""
        url = self.url()
        # A user stream is quiet when nothing trades: silence alone never means it is dead
        # (the ping's pong timeout still catches a dead socket).
        quiet = attrs.evolve(self.config.connection, stale_readings_to_reconnect=0)
        ws = WsConnection(url, quiet, name="user", on_state_change=self._on_state("user"))
        async with RestTransport(url) as rest:
            stream = UserFeed(
                HyperliquidUserStream(
                    self.account,
                    ws,
                    # Over REST, through the limiter with each request's true weight.
                    RestQueries(
                        rest, self.limiter, essential=True, on_rate_limited=self._sync_rate_limited
                    ),
                    deadline_s=self.config.user.rest_deadline_s,
                ),
                self.user_events_send.clone(),
                self.config.user,
                history=self.fill_history,
            )
            unchecked = HyperliquidClient(
                rest=rest,
                ws=ws,
                signer=self.signer,
                account=self.account,
                mainnet=self.mainnet,
                limiter=self.limiter,
                metrics=self.metrics,
                nonces=wire.NonceSource(),
                post_timeout_s=self.config.connection.post_timeout_s,
                action_expiry_s=self.config.action_expiry_s,
                expiry_allowance_s=self.config.expiry_allowance_s,
            )
            async with trio.open_nursery() as nursery:
                await nursery.start(ws.run)
                await nursery.start(stream.run)
                await self.startup_waits.call("metadata", unchecked.metadata)
                # Nothing is sent for the account before the venue says this key may.
                access = await self.access.until_allowed(unchecked)
                client = unchecked.for_vault(access.vault_address)
                self.user_stream, self.client = stream, client
                self.router = OrderRouter(
                    self.dispatcher,
                    client,
                    self._order_events,
                    lambda: clock.wall_ms(),
                    landing_window_ms=client.landing_window_ms,
                )
                nursery.start_soon(self._export_counters, ws, "user")
                task_status.started()

    def _sync_rate_limited(self) -> None:
        self.sync_rate_limited += 1

    def _rate_limit_read(self) -> Callable[[], Awaitable[RateLimitState]] | None:
        client = self.client
        return client.rate_limit if client is not None else None

    async def _export_counters(self, ws: WsConnection, feed: str) -> None:
        """Copy the connection's counters and the API headroom into metrics, once a second;
        malformed frames are the connection's and, on the user feed, the user stream's."""
        exported: dict[str, int] = {}
        malformed_exported = 0
        while True:
            for channel, count in list(ws.frames_received.items()):
                delta = count - exported.get(channel, 0)
                if delta > 0:
                    self.feed_metrics.messages.labels(feed=feed, channel=channel).inc(delta)
                    exported[channel] = count
            stream = self.user_stream if feed == "user" else None
            malformed = ws.malformed_frames + (stream.malformed_frames if stream else 0)
            if malformed > malformed_exported:
                self.feed_metrics.malformed.labels(feed=feed).inc(malformed - malformed_exported)
                malformed_exported = malformed
            now = trio.current_time()
            for kind, headroom in self.limiter.headroom_by_kind(now).items():
                self.metrics.headroom.labels(kind=kind).set(headroom)
            self.metrics.headroom.labels(kind="overall").set(self.limiter.headroom(now))
            await trio.sleep(1.0)

    def _order_events(self, events: Sequence[DispatchOutput]) -> None:
        if events:
            self._on_order_events(events)

    def in_sync(self) -> bool:
        """The user stream's gate is open: local orders, fills and positions follow the venue's
        (False while it resyncs, and before it first synced)."""
        stream = self.user_stream
        return stream is not None and stream.synced.is_set()

    def stale_coins(self) -> list[str]:
        """Coins whose last book arrived longer ago than feeds.market.quality.max_age_ms (or
        never): the feed flags them stale (all of them while the market feed is down)."""
        feed = self.market_feed
        if feed is None:
            return list(self.config.coins)
        return feed.stale_coins(clock.wall_ms(), self.config.market.quality.max_age_ms)

    @property
    def coins(self) -> tuple[str, ...]:
        return self.config.coins

    def last_book_ms(self, coin: str) -> int | None:
        feed = self.market_feed
        return feed.last_book_ms(coin) if feed is not None else None

    def market_connection(self) -> tuple[str, int] | None:
        ws = self.market_ws
        return (ws.state.value, ws.health.attempts) if ws is not None else None

    @property
    def resync_snapshot(self) -> Resynced | None:
        stream = self.user_stream
        return stream.resync_snapshot if stream is not None else None

    def rate_limit_waits(self) -> int:
        return self.startup_waits.rate_limited + self.sync_rate_limited

    def startup_waiting(self) -> str | None:
        return self.startup_waits.waiting()

    def access_refused(self) -> str | None:
        return self.access.refused()

    def status(self) -> dict[str, Any]:
        return {
            "api_headroom": self.limiter.headroom_by_kind(clock.monotonic()),
            "address_budget": self.address_budget.status(),
            "startup": self.startup_waits.status(),
            "venue_access": self.access.status(),
        }

    def healthy(self) -> bool:
        """Fit to keep trading: the kill switch not tripped, in sync, and every book fresh
        (the dead-man's switch is refreshed only while this holds)."""
        return not self._killed() and self.in_sync() and not self.stale_coins()

    async def schedule_cancel(self, at_ms: int | None) -> None:
        if self.client is None:
            raise RuntimeError("the order client is not up")
        await self.client.schedule_cancel(at_ms)

    async def traded_volume(self) -> float:
        """The account's cumulative traded volume (USD) as the venue counts it (``cumVlm``)."""
        if self.client is None:
            raise RuntimeError("the order client is not up")
        return await self.client.traded_volume()

    async def run_execution(
        self,
        record: Callable[[str, dict[str, Any]], Awaitable[None]],
        auditor: OrderAuditor,
        *,
        task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED,
    ) -> None:
        """The execution child: the startup sequence, then every user event through the
        dispatcher (each fill journaled), with the dead-man's switch kept armed while healthy
        and the order auditor comparing the venue's orders with ours while in sync."""
        if self.client is None:
            raise RuntimeError("the user feed must start before execution")
        foreign = None if self.cancel_foreign_orders else is_foreign
        self.startup = await run_startup(
            self.client, self.config.startup, self.startup_waits, foreign=foreign
        )
        self._on_startup(self.startup.account)
        await record(
            "startup",
            {
                "canceled": self.startup.canceled,
                "account_value": self.startup.account.account_value,
                "positions": len(self.startup.account.positions),
                "canceled_orders": [_order(o) for o in self.startup.canceled_orders],
                "foreign_left": [_order(o) for o in self.startup.foreign_orders],
            },
        )
        link = AuditLink(
            venue=lambda: self.client,
            dispatcher=self.dispatcher,
            emit=self._order_events,
            record=record,
            in_sync=lambda: self.user_stream is not None and self.user_stream.synced.is_set(),
            leave=foreign,
        )
        async with trio.open_nursery() as nursery:
            await nursery.start(self.deadman.run)
            await nursery.start(auditor.run, link)
            await nursery.start(self.address_budget.run)
            task_status.started()
            async for event in self.user_events:
                await self._route(event, record, auditor)

    async def _route(
        self,
        event: UserStreamEvent,
        record: Callable[[str, dict[str, Any]], Awaitable[None]],
        auditor: OrderAuditor,
    ) -> None:
        now_ms = clock.wall_ms()
        if isinstance(event, Fill):
            await record("fill", attrs.asdict(event, value_serializer=_plain))
            self.address_budget.on_fill(event)
            self._order_events(self.dispatcher.on_fill(event, now_ms))
            self.deadman.on_fill(event.px * event.sz)
            self._on_fill(event)
        elif isinstance(event, OrderReport):
            self._order_events(self.dispatcher.on_order_report(event, now_ms))
        elif isinstance(event, Resynced):
            await record(
                "resync",
                {"reason": event.reason, "fills_recovered": event.fills_recovered},
            )
            # Audited next (orphans, ghosts), dated when the resync's reads were sent.
            asked_ms = event.time_ms - round(event.duration_s * 1000)
            auditor.resynced(event.open_orders, asked_ms)
            self.address_budget.resynced(clock.monotonic() - event.duration_s)
        else:
            await record(type(event).__name__.lower(), attrs.asdict(event, value_serializer=_plain))


def _plain(_instance: Any, _field: Any, value: Any) -> Any:
    return value.value if isinstance(value, enum.Enum) else value


def is_foreign(order: OpenOrder) -> bool:
    """An order mm did not place: it carries no cloid of mm's (``wire.CLOID_PREFIX``)."""
    return not is_own_cloid(order.cloid)


def _order(order: OpenOrder) -> dict[str, Any]:
    """An open order as the journal keeps it."""
    return attrs.asdict(order, value_serializer=_plain)
