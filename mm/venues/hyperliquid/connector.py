"""Hyperliquid's connector: what this venue supplies to the generic venue service.

``mm.venues.service.VenueService`` runs the feeds and the execution child for any venue; this
is the part that is Hyperliquid's (``mm.venues.base.VenueConnector``). ``run_market`` opens the
market WebSocket and hands back its stream; ``run_user`` opens the REST transport and the user
WebSocket and hands back the account's stream and an unchecked client, whose
``trading_client`` asks the venue whether the key may trade for the account (``access``) and
returns the client to trade with (for the vault the venue named). What outlives the
connections' restarts belongs here: the signer, the rate limiter and the address budget on it,
the access answers, the adapter's metrics.

How it fails: a connection that cannot be opened or drops for good raises out of its ``run_*``
(the feed child restarts it with backoff); a refused access is waited on, not raised (see
``access``); the API headroom gauges are copied once a second while a connection runs.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import attrs
import trio
from prometheus_client import CollectorRegistry

from mm.connection import ConnectionConfig, Transition
from mm.model import RateLimitState
from mm.secrets import Secret
from mm.venues.base import RateLimitWaits, VenueClient
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
from mm.venues.hyperliquid.ws import WsConnection

HEADROOM_EVERY_S = 1.0


@attrs.frozen
class HyperliquidMarket:
    """The market connection ``run_market`` opened (``mm.venues.base.MarketSession``)."""

    stream: HyperliquidMarketStream
    connection: WsConnection


@attrs.frozen
class HyperliquidUser:
    """The user connection ``run_user`` opened (``mm.venues.base.UserSession``)."""

    connector: HyperliquidConnector
    stream: HyperliquidUserStream
    unchecked: HyperliquidClient
    connection: WsConnection

    @property
    def landing_window_ms(self) -> int:
        return self.unchecked.landing_window_ms

    async def trading_client(self, waits: RateLimitWaits) -> VenueClient:
        return await self.connector.allowed(self.unchecked, waits)


class HyperliquidConnector:
    """Hyperliquid's connections, signer, rate limiter, address budget and access gate."""

    def __init__(
        self,
        *,
        signing_key: Secret,
        account_address: str,
        registry: CollectorRegistry,
        rest_deadline_s: float,
        action_expiry_s: float,
        expiry_allowance_s: float,
        access_recheck_s: float,
        rate_limit: RateLimitConfig | None = None,
        mainnet: bool = False,
    ) -> None:
        self.metrics = AdapterMetrics(registry)
        self.signer = L1Signer(signing_key.reveal())
        self.account = (account_address or self.signer.address).lower()
        self.limiter = RateLimiter(rate_limit)
        self.mainnet = mainnet
        self._rest_deadline_s = rest_deadline_s
        self._action_expiry_s = action_expiry_s
        self._expiry_allowance_s = expiry_allowance_s
        # 429s the user stream met reading the venue (its history, its resyncs): waits of a
        # resync, retried on its backoff once the limiter's is over, not API errors of trading.
        self.sync_rate_limited = 0
        # The client the venue last allowed to trade (None before): the address budget reads
        # the venue's figures with it.
        self.client: HyperliquidClient | None = None
        # The address budget: fills credited as they come, the venue's figures read again
        # periodically and after every resync.
        self.address_budget = AddressBudget(
            self.limiter,
            self._rate_limit_read,
            every_s=self.limiter.config.address_refresh_seconds,
            registry=registry,
        )
        # The venue's word on this key for this account, asked at every start of the user feed.
        self.access = VenueAccess(
            network="mainnet" if mainnet else "testnet", recheck_s=access_recheck_s
        )
        self.market_ws: WsConnection | None = None  # the latest market connection opened

    @property
    def account_budget(self) -> AddressBudget:
        return self.address_budget

    async def run_market(
        self,
        url: str,
        config: ConnectionConfig,
        on_state: Callable[[Transition], None],
        *,
        task_status: trio.TaskStatus[HyperliquidMarket] = trio.TASK_STATUS_IGNORED,
    ) -> None:
        """The market connection, until cancelled; hands back its stream once it runs."""
        ws = WsConnection(url, config, name="market", on_state_change=on_state)
        async with trio.open_nursery() as nursery:
            await nursery.start(ws.run)
            self.market_ws = ws
            nursery.start_soon(self._export_headroom)
            task_status.started(HyperliquidMarket(HyperliquidMarketStream(ws), ws))

    async def run_user(
        self,
        url: str,
        config: ConnectionConfig,
        on_state: Callable[[Transition], None],
        waits: RateLimitWaits,
        *,
        task_status: trio.TaskStatus[HyperliquidUser] = trio.TASK_STATUS_IGNORED,
    ) -> None:
        """The user connection and the REST transport, until cancelled; hands back the
        account's stream and the client on them once the socket runs (reading nothing first:
        ``waits`` is not needed here)."""
        ws = WsConnection(url, config, name="user", on_state_change=on_state)
        async with RestTransport(url) as rest:
            stream = HyperliquidUserStream(
                self.account,
                ws,
                # Over REST, through the limiter with each request's true weight.
                RestQueries(
                    rest, self.limiter, essential=True, on_rate_limited=self._sync_rate_limited
                ),
                deadline_s=self._rest_deadline_s,
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
                post_timeout_s=config.post_timeout_s,
                action_expiry_s=self._action_expiry_s,
                expiry_allowance_s=self._expiry_allowance_s,
            )
            async with trio.open_nursery() as nursery:
                await nursery.start(ws.run)
                nursery.start_soon(self._export_headroom)
                task_status.started(HyperliquidUser(self, stream, unchecked, ws))

    async def allowed(self, unchecked: HyperliquidClient, waits: RateLimitWaits) -> VenueClient:
        """Nothing is sent for the account before the venue says this key may: the client
        for the account (or vault) it allowed."""
        access = await self.access.until_allowed(unchecked, waits)
        client = unchecked.for_vault(access.vault_address)
        self.client = client
        return client

    def rate_limit_waits(self) -> int:
        return self.sync_rate_limited

    def access_refused(self) -> str | None:
        return self.access.refused()

    def status(self) -> dict[str, Any]:
        return {
            "address_budget": self.address_budget.status(),
            "venue_access": self.access.status(),
        }

    def _sync_rate_limited(self) -> None:
        self.sync_rate_limited += 1

    def _rate_limit_read(self) -> Callable[[], Awaitable[RateLimitState]] | None:
        client = self.client
        return client.rate_limit if client is not None else None

    async def _export_headroom(self) -> None:
        """The API headroom into metrics, once a second, while a connection runs."""
        while True:
            now = trio.current_time()
            for kind, headroom in self.limiter.headroom_by_kind(now).items():
                self.metrics.headroom.labels(kind=kind).set(headroom)
            self.metrics.headroom.labels(kind="overall").set(self.limiter.headroom(now))
            await trio.sleep(HEADROOM_EVERY_S)
