"""Builds the venue adapter that ``venue.kind`` names: the one module outside a venue's package
that imports it.

The service (mm.app) asks here for an adapter, ``mm check`` (mm.ops.checks) for a probe of
the venue and the account it trades for; both see the venue through the port, and nothing
else in mm names a venue package. A kind with no builder fails naming ``venue.kind`` (the
config already refuses a kind outside ``KINDS``, so this is the factory and the config
disagreeing, a bug: tests/venues/test_factory.py checks they agree).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from typing import Any, Protocol

import trio
from prometheus_client import CollectorRegistry

from mm.execution.auditor import OrderAuditor
from mm.execution.deadman import DeadmanKeeper
from mm.execution.dispatch import Dispatcher, DispatchOutput
from mm.execution.orders import OrderRouter
from mm.feeds.history import FillHistory
from mm.feeds.user import UserStreamEvent
from mm.model import AccountState, Fill
from mm.secrets import Secret
from mm.venues.base import VenueAdapter, VenueProbe
from mm.venues.config import KINDS, FeedsConfig, VenueConfig
from mm.venues.hyperliquid import probe as hyperliquid_probe
from mm.venues.hyperliquid.adapter import HyperliquidAdapter

# The [rate_limit] section: Hyperliquid's client-side limiter is the one there is, so its
# settings are the section's type; mm.config reads it here, the one door to a venue package.
from mm.venues.hyperliquid.rate_limit import RateLimitConfig as RateLimitConfig


class ServiceAdapter(VenueAdapter, Protocol):
    """The adapter as the assembly (mm.app) runs it: the port, and the execution child and
    user-event channel it still composes, which the assembly hands to the components that use
    them (the dispatcher and the router to the executor and the flattener, the dead-man's
    keeper to the kill switch), so that those take the port alone."""

    user_events_send: trio.MemorySendChannel[UserStreamEvent]

    @property
    def dispatcher(self) -> Dispatcher: ...

    @property
    def router(self) -> OrderRouter | None: ...

    @property
    def deadman(self) -> DeadmanKeeper: ...

    async def run_execution(
        self,
        record: Callable[[str, dict[str, Any]], Awaitable[None]],
        auditor: OrderAuditor,
        *,
        task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED,
    ) -> None: ...


def build_adapter(
    venue: VenueConfig,
    feeds: FeedsConfig,
    *,
    venue_url: Callable[[], str | None],
    signing_key: Secret,
    registry: CollectorRegistry,
    killed: Callable[[], bool],
    on_fill: Callable[[Fill], None],
    on_order_events: Callable[[Sequence[DispatchOutput]], None],
    on_feed_state: Callable[[str, str], None],
    on_startup: Callable[[AccountState], None],
    rate_limit: RateLimitConfig | None = None,
    fill_history: FillHistory | None = None,
) -> ServiceAdapter:
    """The adapter for ``venue.kind``, its URL read through ``venue_url`` when a feed starts
    (an embedded simulator's port is known only once it listens); ``killed`` says whether the
    kill switch is tripped (then it is not healthy for trading); ``on_fill`` and
    ``on_order_events`` publish every new fill and every order lifecycle batch, in order;
    ``on_feed_state`` hears every feed's state change and ``on_startup`` the account as the
    startup sequence read it, before any fill is routed."""
    if venue.kind == "hyperliquid":
        return HyperliquidAdapter(
            feeds,
            venue_url=venue_url,
            signing_key=signing_key,
            account_address=venue.account_address,
            registry=registry,
            killed=killed,
            on_fill=on_fill,
            on_order_events=on_order_events,
            on_feed_state=on_feed_state,
            on_startup=on_startup,
            rate_limit=rate_limit,
            mainnet=venue.network == "mainnet",
            fill_history=fill_history,
            cancel_foreign_orders=venue.cancel_foreign_orders,
        )
    raise ValueError(_unknown(venue))


@asynccontextmanager
async def open_probe(
    venue: VenueConfig,
    url: str,
    *,
    signing_key: Secret,
    rate_limit: RateLimitConfig,
    request_timeout_s: float,
) -> AsyncIterator[VenueProbe]:
    """The venue ``venue.kind`` names, at ``url``, as ``mm check`` asks it (each request
    bounded by ``request_timeout_s``)."""
    if venue.kind == "hyperliquid":
        async with hyperliquid_probe.open_probe(
            url,
            signing_key=signing_key,
            account_address=venue.account_address,
            network=venue.network,
            rate_limit=rate_limit,
            request_timeout_s=request_timeout_s,
        ) as probe:
            yield probe
        return
    raise ValueError(_unknown(venue))


def account_of(venue: VenueConfig, signing_key: Secret) -> str:
    """The account an adapter of ``venue.kind`` trades for, as the venue names it."""
    if venue.kind == "hyperliquid":
        return hyperliquid_probe.account_for(signing_key, venue.account_address)
    raise ValueError(_unknown(venue))


def _unknown(venue: VenueConfig) -> str:
    return f"venue.kind: no adapter for {venue.kind!r} (known: {', '.join(KINDS)})"
