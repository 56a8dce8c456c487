"""The Hyperliquid adapter assembled for the service: feeds as supervised children, the client.

The service's ``feeds`` supervisor gets one child per feed. A feed child owns its WebSocket
connection and its consumer and runs both; a crash of either restarts the pair with backoff.
The venue's URL is read when a child starts, so an embedded simulator listening on a port
chosen at start is found (it starts earlier in the tree). What outlives restarts (the book bus,
the trades channel, metrics, the signer and the rate limiter) belongs to the adapter.
"""

from __future__ import annotations

from collections.abc import Callable

import attrs
import trio
from prometheus_client import CollectorRegistry

from mm.book import BookBus
from mm.execution.rate_limit import RateLimitConfig, RateLimiter
from mm.feeds.health import ConnectionConfig, Transition
from mm.feeds.market import MarketFeed, MarketFeedConfig
from mm.model import Trade
from mm.secrets import Secret
from mm.settings import at_least, setting
from mm.venues.hyperliquid.metrics import AdapterMetrics
from mm.venues.hyperliquid.signing import L1Signer
from mm.venues.hyperliquid.ws import WsConnection


def _coins(value: tuple[str, ...]) -> str | None:
    return None if value else "must name at least one coin"


@attrs.frozen
class FeedsConfig:
    # Coins whose books, trades and mids are followed.
    coins: tuple[str, ...] = setting(("BTC", "ETH"), _coins)
    # Trades waiting for the strategy before new ones are dropped (and counted).
    trades_queue: int = setting(10_000, at_least(1))
    connection: ConnectionConfig = attrs.field(factory=ConnectionConfig)
    market: MarketFeedConfig = attrs.field(factory=MarketFeedConfig)


class HyperliquidAdapter:
    def __init__(
        self,
        config: FeedsConfig,
        *,
        venue_url: Callable[[], str | None],
        signing_key: Secret,
        account_address: str,
        registry: CollectorRegistry,
        rate_limit: RateLimitConfig | None = None,
    ) -> None:
        self.config = config
        self._venue_url = venue_url
        self.metrics = AdapterMetrics(registry)
        self.bus = BookBus()
        self.trades_send, self.trades = trio.open_memory_channel[Trade](config.trades_queue)
        self.signer = L1Signer(signing_key.reveal())
        self.account = (account_address or self.signer.address).lower()
        self.limiter = RateLimiter(rate_limit)
        self.market_feed: MarketFeed | None = None
        self.market_ws: WsConnection | None = None

    def url(self) -> str:
        url = self._venue_url()
        if url is None:
            raise RuntimeError("the venue's URL is not known yet (has the simulator started?)")
        return url

    def _on_state(self, feed: str) -> Callable[[Transition], None]:
        def changed(transition: Transition) -> None:
            self.metrics.set_feed_state(feed, transition.new.value)
            if transition.new.value == "reconnecting":
                self.metrics.reconnects.labels(feed=feed).inc()

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
            ws,
            self.config.coins,
            self.bus,
            self.trades_send.clone(),
            config=self.config.market,
            metrics=self.metrics,
            name="market",
        )
        async with trio.open_nursery() as nursery:
            await nursery.start(ws.run)
            await nursery.start(feed.run)
            self.market_ws, self.market_feed = ws, feed
            task_status.started()
