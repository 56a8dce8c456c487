"""The venue as the service runs it, for any venue: feeds as supervised children, the
execution child, the venue's health; built on the ``VenueConnector`` of ``venue.kind``.

The service's ``feeds`` supervisor gets one child per feed. A feed child opens its connection
through the connector and runs the generic consumer on it (``mm.feeds``: the market feed's
checked books, trades and mids; the user feed's deduplicated events and resync gate); a crash
of either restarts the pair with backoff. The venue's URL is read when a child starts, so an
embedded simulator listening on a port chosen at start is found (it starts earlier in the
tree). The user child reads the venue's instruments and waits for the venue's access before it
hands the client and the order router on. The execution child runs the startup sequence, then
routes every user event (``mm.venues.routing``) with the dead-man's switch kept armed, the
order auditor and the venue's account budget running beside. What outlives restarts (the book
bus, the trades and user-events channels, the dispatcher, the fill history, the metrics, the
dead-man's keeper and the startup waits) belongs to this object; what is a venue's (signing,
limiter, sockets) to its connector.

What a child builds it hands on through a ``mm.handoff.Handoff`` (the market child its feed
and connection, the user child its feed, the client the venue allowed and the order router on
it, the execution child what startup read): the execution child waits for the user child's
client instead of reading an attribute that may still be None, and the components built
before any child runs read the latest (``client``, ``router``: None until the user feed is
up).

How it fails: each child raises what its connection, feed or startup raises, and its
supervisor restarts it; before the user feed is up there is no client (``client`` is None,
the dead-man's switch calls raise).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import attrs
import trio
from prometheus_client import CollectorRegistry

from mm import clock
from mm.book import BookBus
from mm.connection import Transition
from mm.execution.auditor import AuditLink, OrderAuditor
from mm.execution.deadman import DeadmanKeeper
from mm.execution.dispatch import DispatchConfig, Dispatcher, DispatchOutput
from mm.execution.orders import OrderRouter
from mm.execution.startup import StartupState, StartupWaits, run_startup
from mm.feeds.history import FillHistory
from mm.feeds.market import MarketFeed
from mm.feeds.metrics import FeedMetrics
from mm.feeds.user import Resynced, UserFeed, UserStreamEvent
from mm.handoff import Handoff
from mm.journal import entry_data
from mm.model import AccountState, Fill, OpenOrder, Trade
from mm.venues.base import (
    Connection,
    MarketSession,
    RequestBudget,
    UserSession,
    VenueClient,
    VenueConnector,
)
from mm.venues.config import FeedsConfig
from mm.venues.routing import Record, UserEventRouter

COUNTERS_EVERY_S = 1.0


@attrs.frozen
class MarketSide:
    """What the market child hands on once its feed runs: the feed and its connection."""

    feed: MarketFeed
    connection: Connection


@attrs.frozen
class UserSide:
    """What the user child hands on once the venue allowed the key: the user feed, the client
    to trade with and the order router on it."""

    stream: UserFeed
    client: VenueClient
    router: OrderRouter


class VenueService:
    """The venue adapter the service runs (``mm.venues.base.VenueAdapter``), on a venue's
    connector: the feed children, the execution child, and what the components read of them
    (see the module)."""

    def __init__(
        self,
        connector: VenueConnector,
        config: FeedsConfig,
        *,
        venue_url: Callable[[], str | None],
        registry: CollectorRegistry,
        killed: Callable[[], bool],
        on_fill: Callable[[Fill], None],
        on_order_events: Callable[[Sequence[DispatchOutput]], None],
        on_feed_state: Callable[[str, str], None],
        on_startup: Callable[[AccountState], None],
        on_account: Callable[[AccountState], None] | None = None,
        fill_history: FillHistory | None = None,
        cancel_foreign_orders: bool = True,
    ) -> None:
        self.connector = connector
        self.config = config
        # With False, orders on the account that mm did not place (no client id of mm's) are
        # left alone by the startup cancel-all and by the order audit
        # ([venue] cancel_foreign_orders).
        self.cancel_foreign_orders = cancel_foreign_orders
        self._venue_url = venue_url
        self.feed_metrics = FeedMetrics(registry)
        self.bus = BookBus()
        self.trades_send, self.trades = trio.open_memory_channel[Trade](config.trades_queue)
        # Startup's waits on the venue's rate limit (a 429 while starting is waited out).
        self.startup_waits = StartupWaits(connector.limiter, registry)
        # What the feed children built, handed on each time one starts (the latest stays
        # until a restart hands the next).
        self._market = Handoff[MarketSide]()
        self._user = Handoff[UserSide]()
        self.user_events_send, self.user_events = trio.open_memory_channel[UserStreamEvent](
            config.user_events_queue
        )
        self.dispatcher = Dispatcher(DispatchConfig(dedup_capacity=config.user.dedup_capacity))
        # Every new fill (to the portfolio and risk) and every lifecycle event batch (to the
        # journal) is published through these, in order (the service's fan-out channels).
        self._on_fill = on_fill
        self._on_order_events = on_order_events
        self._on_feed_state = on_feed_state  # (feed, new state): risk and autonomy judge it
        self._startup = Handoff[StartupState]()  # the execution child's last sequence
        # Told the venue's account as the startup sequence read it, before any fill is routed.
        self._on_startup = on_startup
        # Told each account state the user stream pushes (a spot venue's balances).
        self._on_account = on_account
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

    @property
    def account(self) -> str:
        return self.connector.account

    @property
    def market_feed(self) -> MarketFeed | None:
        market = self._market.latest
        return market.feed if market is not None else None

    @property
    def user_stream(self) -> UserFeed | None:
        user = self._user.latest
        return user.stream if user is not None else None

    @property
    def client(self) -> VenueClient | None:
        """The client the venue allowed to trade, once the user feed is up."""
        user = self._user.latest
        return user.client if user is not None else None

    @property
    def router(self) -> OrderRouter | None:
        user = self._user.latest
        return user.router if user is not None else None

    @property
    def startup(self) -> StartupState | None:
        """What the execution child's startup sequence read, once it ran."""
        return self._startup.latest

    @property
    def limiter(self) -> RequestBudget:
        return self.connector.limiter

    def _on_state(self, feed: str) -> Callable[[Transition], None]:
        def changed(transition: Transition) -> None:
            self.feed_metrics.set_feed_state(feed, transition.new.value)
            if transition.new.value == "reconnecting":
                self.feed_metrics.reconnects.labels(feed=feed).inc()
            self._on_feed_state(feed, transition.new.value)

        return changed

    # --- the feed children ----------------------------------------------------------------

    async def run_market(
        self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED
    ) -> None:
        """The market feed child: its connection and the books, trades and mids it carries."""
        async with trio.open_nursery() as nursery:
            market: MarketSession = await nursery.start(
                self.connector.run_market,
                self.url(),
                self.config.connection,
                self._on_state("market"),
            )
            feed = MarketFeed(
                market.stream,
                self.config.coins,
                self.bus,
                self.trades_send.clone(),
                config=self.config.market,
                metrics=self.feed_metrics,
                name="market",
            )
            await nursery.start(feed.run)
            self._market.hand(MarketSide(feed, market.connection))
            nursery.start_soon(self._export_counters, market.connection, "market", None)
            task_status.started()

    async def run_user(
        self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED
    ) -> None:
        """The user feed child: its connection, the user stream, and the order client on it."""
        # A user stream is quiet when nothing trades: silence alone never means it is dead
        # (the ping's pong timeout still catches a dead socket).
        quiet = attrs.evolve(self.config.connection, stale_readings_to_reconnect=0)
        async with trio.open_nursery() as nursery:
            user: UserSession = await nursery.start(
                self.connector.run_user,
                self.url(),
                quiet,
                self._on_state("user"),
                self.startup_waits,
            )
            stream = UserFeed(
                user.stream,
                self.user_events_send.clone(),
                self.config.user,
                history=self.fill_history,
            )
            await nursery.start(stream.run)
            await self.startup_waits.call("metadata", user.unchecked.instruments)
            # Nothing is sent for the account before the venue says this key may.
            client = await user.trading_client(self.startup_waits)
            router = OrderRouter(
                self.dispatcher,
                client,
                self._order_events,
                lambda: clock.wall_ms(),
                landing_window_ms=user.landing_window_ms,
            )
            self._user.hand(UserSide(stream, client, router))
            nursery.start_soon(self._export_counters, user.connection, "user", stream)
            task_status.started()

    async def _export_counters(
        self, connection: Connection, feed: str, stream: UserFeed | None
    ) -> None:
        """Copy the connection's counters into metrics, once a second; malformed frames are
        the connection's and, on the user feed, the user stream's."""
        exported: dict[str, int] = {}
        malformed_exported = 0
        while True:
            for channel, count in list(connection.frames_received.items()):
                delta = count - exported.get(channel, 0)
                if delta > 0:
                    self.feed_metrics.messages.labels(feed=feed, channel=channel).inc(delta)
                    exported[channel] = count
            malformed = connection.malformed_frames + (stream.malformed_frames if stream else 0)
            if malformed > malformed_exported:
                self.feed_metrics.malformed.labels(feed=feed).inc(malformed - malformed_exported)
                malformed_exported = malformed
            await trio.sleep(COUNTERS_EVERY_S)

    def _order_events(self, events: Sequence[DispatchOutput]) -> None:
        if events:
            self._on_order_events(events)

    # --- what the service's components read -------------------------------------------------

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
        market = self._market.latest
        if market is None:
            return None
        return market.connection.state.value, market.connection.health.attempts

    @property
    def resync_snapshot(self) -> Resynced | None:
        stream = self.user_stream
        return stream.resync_snapshot if stream is not None else None

    def rate_limit_waits(self) -> int:
        return self.startup_waits.rate_limited + self.connector.rate_limit_waits()

    def startup_waiting(self) -> str | None:
        return self.startup_waits.waiting()

    def access_refused(self) -> str | None:
        return self.connector.access_refused()

    def status(self) -> dict[str, Any]:
        return {
            "api_headroom": self.connector.limiter.headroom_by_kind(clock.monotonic()),
            "startup": self.startup_waits.status(),
            **self.connector.status(),
        }

    def healthy(self) -> bool:
        """Fit to keep trading: the kill switch not tripped, in sync, and every book fresh
        (the dead-man's switch is refreshed only while this holds)."""
        return not self._killed() and self.in_sync() and not self.stale_coins()

    # --- the venue's dead-man's switch, as the keeper arms it ------------------------------

    async def schedule_cancel(self, at_ms: int | None) -> None:
        if self.client is None:
            raise RuntimeError("the order client is not up")
        switch = self.client.dead_mans_switch
        if switch is None:
            raise RuntimeError("the venue has no dead-man's switch")
        await switch.schedule_cancel(at_ms)

    async def traded_volume(self) -> float:
        """The account's cumulative traded volume (USD) as the venue counts it."""
        if self.client is None:
            raise RuntimeError("the order client is not up")
        switch = self.client.dead_mans_switch
        if switch is None:
            raise RuntimeError("the venue has no dead-man's switch")
        return await switch.traded_volume()

    # --- the execution child ----------------------------------------------------------------

    async def run_execution(
        self,
        record: Record,
        auditor: OrderAuditor,
        *,
        task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED,
    ) -> None:
        """The execution child: the startup sequence, then every user event through the
        dispatcher (each fill journaled), with the dead-man's switch kept armed while healthy,
        the order auditor comparing the venue's orders with ours while in sync, and the venue's
        account budget kept on its figures."""
        # The client the user child hands on (it starts first, in the feeds' subtree).
        client = (await self._user.wait()).client
        foreign = None if self.cancel_foreign_orders else _foreign_to(client)
        startup = await run_startup(
            client, self.config.startup, self.startup_waits, foreign=foreign
        )
        self._startup.hand(startup)
        self._on_startup(startup.account)
        await record(
            "startup",
            {
                "canceled": startup.canceled,
                "account_value": startup.account.account_value,
                "positions": len(startup.account.positions),
                "canceled_orders": [entry_data(o) for o in startup.canceled_orders],
                "foreign_left": [entry_data(o) for o in startup.foreign_orders],
            },
        )
        link = AuditLink(
            venue=lambda: self.client,
            dispatcher=self.dispatcher,
            emit=self._order_events,
            record=record,
            in_sync=self.in_sync,
            leave=foreign,
        )
        budget = self.connector.account_budget
        router = UserEventRouter(
            dispatcher=self.dispatcher,
            record=record,
            auditor=auditor,
            deadman=self.deadman,
            emit=self._order_events,
            on_fill=self._on_fill,
            budget=budget,
            on_account=self._on_account,
        )
        async with trio.open_nursery() as nursery:
            await nursery.start(self.deadman.run)
            await nursery.start(auditor.run, link)
            if budget is not None:
                await nursery.start(budget.run)
            task_status.started()
            async for event in self.user_events:
                await router.route(event)


def _foreign_to(client: VenueClient) -> Callable[[OpenOrder], bool]:
    """Orders mm did not place: they carry no client id of mm's (the venue's format)."""

    def foreign(order: OpenOrder) -> bool:
        return not client.is_own_client_id(order.cloid)

    return foreign
