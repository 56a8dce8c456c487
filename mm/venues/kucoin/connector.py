"""KuCoin's connector: what this venue supplies to the generic venue service.

``mm.venues.service.VenueService`` runs the feeds and the execution child for any venue; this
is the part that is KuCoin's (``mm.venues.base.VenueConnector``):

* ``run_market`` opens the signed, budgeted REST (``KucoinRestTransport``) and a public
  WebSocket (``KucoinWs``, a new ``bullet-public`` token before every connect), and runs the
  market stream beside it (``KucoinMarketStream``: level-2 books kept by the venue's sync
  procedure, its REST snapshots through the same transport; trades; mids from tickers);
* ``run_user`` opens the REST and a private WebSocket (``bullet-private``), reads the followed
  symbols and the account's fee rates (the user stream charges each match its rate), and hands
  back the account's stream (``KucoinUserStream``) and a client that may read but not yet trade;
  ``trading_client`` asks the venue whether the key may trade (``KucoinProbe.access``: the key
  verified by a signed read, the symbols open to trading, no fee paid in KCS) and returns the
  client once it may.

What outlives the connections' restarts belongs here: the credentials, the request budget
(``RateBudget``, kept on the venue's ``gw-ratelimit-*`` figures, and the port's view of it,
``KucoinBudget``) and the access answers. KuCoin has no per-account budget of the kind
Hyperliquid's address budget is: ``account_budget`` is None.

How it fails: a connection that cannot be opened or drops for good raises out of its ``run_*``
(the feed child restarts it with backoff), as does a first read of the symbols that fails; a
refused access is waited on, rechecked every ``access_recheck_s``, never raised.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from functools import partial
from typing import Any

import attrs
import trio
from loguru import logger

from mm import clock
from mm.connection import ConnectionConfig, Transition
from mm.venues.base import RateLimitWaits, VenueClient
from mm.venues.kucoin.budget import KucoinBudget
from mm.venues.kucoin.client import KucoinClient
from mm.venues.kucoin.lane import CONNECTIONS
from mm.venues.kucoin.market_stream import KucoinMarketStream
from mm.venues.kucoin.probe import KucoinProbe, account_for
from mm.venues.kucoin.rate_budget import RateBudget
from mm.venues.kucoin.rest import KucoinRestTransport
from mm.venues.kucoin.signing import Credentials
from mm.venues.kucoin.user_stream import KucoinUserStream
from mm.venues.kucoin.ws import KucoinWs

__all__ = ["KucoinConnector", "KucoinMarket", "KucoinUser"]


@attrs.frozen
class KucoinMarket:
    """The market connection ``run_market`` opened (``mm.venues.base.MarketSession``)."""

    stream: KucoinMarketStream
    connection: KucoinWs


@attrs.frozen
class KucoinUser:
    """The user connection ``run_user`` opened (``mm.venues.base.UserSession``)."""

    connector: KucoinConnector
    stream: KucoinUserStream
    unchecked: KucoinClient
    connection: KucoinWs

    @property
    def landing_window_ms(self) -> int:
        return self.unchecked.landing_window_ms

    async def trading_client(self, waits: RateLimitWaits) -> VenueClient:
        return await self.connector.allowed(self.unchecked, waits)


class KucoinConnector:
    """KuCoin's connections, request budget and access gate (see the module)."""

    account_budget = None  # (no per-account budget beside the pools: see the module)

    def __init__(
        self,
        *,
        credentials: Credentials,
        symbols: Sequence[str],
        rest_deadline_s: float,
        access_recheck_s: float,
        now_ms: Callable[[], int] = clock.wall_ms,
    ) -> None:
        self.credentials = credentials
        self.symbols = tuple(symbols)
        self.account = account_for(credentials)
        self.rate_budget = RateBudget()
        self.limiter = KucoinBudget(self.rate_budget)
        self._rest_deadline_s = rest_deadline_s
        self._access_recheck_s = access_recheck_s
        self._now_ms = now_ms
        self._refused: str | None = None
        self._allowed: str | None = None  # what the venue's answer found, once it allowed

    def _rest(self, url: str, *, orders: bool) -> KucoinRestTransport:
        """``orders``: the REST that trades, with the order lane's connections; the market's
        reads (snapshots, the public bullet) need none of them."""
        return KucoinRestTransport(
            url,
            self.credentials,
            budget=self.rate_budget,
            now_ms=self._now_ms,
            deadline_s=self._rest_deadline_s,
            lane_connections=CONNECTIONS if orders else 0,
        )

    def _client(self, rest: KucoinRestTransport) -> KucoinClient:
        return KucoinClient(rest, self.symbols, now_ms=self._now_ms)

    async def run_market(
        self,
        url: str,
        config: ConnectionConfig,
        on_state: Callable[[Transition], None],
        *,
        task_status: trio.TaskStatus[KucoinMarket] = trio.TASK_STATUS_IGNORED,
    ) -> None:
        """The market connection and its stream, until cancelled."""
        async with self._rest(url, orders=False) as rest:
            client = self._client(rest)
            ws = KucoinWs(
                partial(client.bullet, False), config, name="market", on_state_change=on_state
            )
            stream = KucoinMarketStream(ws, client.level2_snapshot, mid_symbols=self.symbols)
            async with trio.open_nursery() as nursery:
                await nursery.start(ws.run)
                await nursery.start(stream.run)
                task_status.started(KucoinMarket(stream, ws))

    async def run_user(
        self,
        url: str,
        config: ConnectionConfig,
        on_state: Callable[[Transition], None],
        waits: RateLimitWaits,
        *,
        task_status: trio.TaskStatus[KucoinUser] = trio.TASK_STATUS_IGNORED,
    ) -> None:
        """The private connection, the account's stream and the unchecked client on the REST,
        until cancelled."""
        async with self._rest(url, orders=True) as rest:
            client = self._client(rest)
            # The fee rates first: the stream charges every match the account's rate. (A 429
            # here, as the feed restarts among other readers, is waited out.)
            await waits.call("metadata", client.instruments)
            ws = KucoinWs(
                partial(client.bullet, True), config, name="user", on_state_change=on_state
            )
            stream = KucoinUserStream(self.account, ws, client)
            async with trio.open_nursery() as nursery:
                await nursery.start(ws.run)
                task_status.started(KucoinUser(self, stream, client, ws))

    async def allowed(self, client: KucoinClient, waits: RateLimitWaits) -> VenueClient:
        """The client, once the venue says the key may trade for the account (asked again
        every ``access_recheck_s`` until it does; why not is in ``access_refused``)."""
        probe = KucoinProbe(client, self.credentials)
        while True:
            answer = await waits.call("venue_access", probe.access)
            if answer.allowed:
                if self._refused is not None:
                    logger.info("KuCoin allows the key now: {}", answer.detail)
                self._refused, self._allowed = None, answer.detail
                return client
            if answer.detail != self._refused:
                logger.error("KuCoin: not trading: {}", answer.detail)
            self._refused = answer.detail
            await trio.sleep(self._access_recheck_s)

    def rate_limit_waits(self) -> int:
        return 0  # the resync's reads wait on the transport's budget, never on a 429

    def access_refused(self) -> str | None:
        return self._refused

    def status(self) -> dict[str, Any]:
        return {
            "venue_access": {
                "allowed": self._refused is None and self._allowed is not None,
                "detail": self._refused or self._allowed,
            },
        }
