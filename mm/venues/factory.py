"""Builds the venue adapter that ``venue.kind`` names: the one module outside a venue's package
that imports it.

The adapter is the generic venue service (``mm.venues.service``) on the connector the venue's
package supplies (``mm.venues.base.VenueConnector``): a new venue adds a package and its
branches here. The service (mm.app) asks here for an adapter, ``mm check`` (mm.ops.checks)
for a probe of the venue and the account it trades for; both see the venue through the port,
and nothing else in mm names a venue package. A kind with no builder fails naming
``venue.kind`` (the config already refuses a kind outside ``KINDS``, so this is the factory and
the config disagreeing, a bug: tests/venues/test_factory.py checks they agree).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager

from prometheus_client import CollectorRegistry

from mm.execution.dispatch import DispatchOutput
from mm.feeds.history import FillHistory
from mm.model import AccountState, Fill
from mm.secrets import Secret
from mm.venues.base import VenueConnector, VenueProbe
from mm.venues.config import KINDS, ApiCredentials, FeedsConfig, VenueConfig
from mm.venues.hyperliquid import limits as hyperliquid_limits
from mm.venues.hyperliquid import probe as hyperliquid_probe
from mm.venues.hyperliquid.connector import HyperliquidConnector

# The [rate_limit] section: Hyperliquid's client-side limiter is the one there is, so its
# settings are the section's type; mm.config reads it here, the one door to a venue package.
# It stays a static field of Config (cattrs structures the whole document by type, before
# venue.kind is known): a second venue with limiter settings of its own makes this a per-kind
# hook (the factory asking venue.kind for its section's type once [venue] is read), not before.
from mm.venues.hyperliquid.rate_limit import RateLimitConfig as RateLimitConfig
from mm.venues.kucoin import limits as kucoin_limits
from mm.venues.kucoin import probe as kucoin_probe
from mm.venues.kucoin.connector import KucoinConnector
from mm.venues.kucoin.signing import Credentials
from mm.venues.service import VenueService


def build_connector(
    venue: VenueConfig,
    feeds: FeedsConfig,
    *,
    signing_key: Secret | None,
    registry: CollectorRegistry,
    rate_limit: RateLimitConfig | None = None,
    api_credentials: ApiCredentials | None = None,
) -> VenueConnector:
    """What the venue ``venue.kind`` names supplies to the venue service: its connections,
    signer, request budget and access check."""
    if venue.kind == "hyperliquid":
        return HyperliquidConnector(
            signing_key=_signing_key(venue, signing_key),
            account_address=venue.account_address,
            registry=registry,
            rest_deadline_s=feeds.user.rest_deadline_s,
            action_expiry_s=feeds.action_expiry_s,
            expiry_allowance_s=feeds.expiry_allowance_s,
            access_recheck_s=feeds.startup.access_recheck_s,
            rate_limit=rate_limit,
            mainnet=venue.network == "mainnet",
        )
    if venue.kind == "kucoin":
        return KucoinConnector(
            credentials=_kucoin_credentials(venue, api_credentials),
            symbols=feeds.coins,
            rest_deadline_s=feeds.user.rest_deadline_s,
            access_recheck_s=feeds.startup.access_recheck_s,
        )
    raise ValueError(_unknown(venue))


def _signing_key(venue: VenueConfig, signing_key: Secret | None) -> Secret:
    if signing_key is None:
        raise ValueError(f"venue.private_key_env: {venue.kind} needs a signing key, none given")
    return signing_key


def _kucoin_credentials(venue: VenueConfig, api: ApiCredentials | None) -> Credentials:
    if api is None:
        raise ValueError(f"venue.api_key_env: {venue.kind} needs API credentials, none given")
    return Credentials(api.key, api.secret, api.passphrase, api.version)


def build_adapter(
    venue: VenueConfig,
    feeds: FeedsConfig,
    *,
    venue_url: Callable[[], str | None],
    signing_key: Secret | None,
    registry: CollectorRegistry,
    killed: Callable[[], bool],
    on_fill: Callable[[Fill], None],
    on_order_events: Callable[[Sequence[DispatchOutput]], None],
    on_feed_state: Callable[[str, str], None],
    on_startup: Callable[[AccountState], None],
    on_account: Callable[[AccountState], None] | None = None,
    rate_limit: RateLimitConfig | None = None,
    fill_history: FillHistory | None = None,
    api_credentials: ApiCredentials | None = None,
) -> VenueService:
    """The venue service on ``venue.kind``'s connector, its URL read through ``venue_url``
    when a feed starts (an embedded simulator's port is known only once it listens); ``killed``
    says whether the
    kill switch is tripped (then it is not healthy for trading); ``on_fill`` and
    ``on_order_events`` publish every new fill and every order lifecycle batch, in order;
    ``on_feed_state`` hears every feed's state change and ``on_startup`` the account as the
    startup sequence read it, before any fill is routed; ``on_account`` each account state the
    user stream pushes (a spot venue's balances)."""
    connector = build_connector(
        venue,
        feeds,
        signing_key=signing_key,
        registry=registry,
        rate_limit=rate_limit,
        api_credentials=api_credentials,
    )
    return VenueService(
        connector,
        feeds,
        venue_url=venue_url,
        registry=registry,
        killed=killed,
        on_fill=on_fill,
        on_order_events=on_order_events,
        on_feed_state=on_feed_state,
        on_startup=on_startup,
        on_account=on_account,
        fill_history=fill_history,
        cancel_foreign_orders=venue.cancel_foreign_orders,
    )


@asynccontextmanager
async def open_probe(
    venue: VenueConfig,
    url: str,
    *,
    signing_key: Secret | None,
    rate_limit: RateLimitConfig,
    request_timeout_s: float,
    symbols: Sequence[str] = (),
    api_credentials: ApiCredentials | None = None,
) -> AsyncIterator[VenueProbe]:
    """The venue ``venue.kind`` names, at ``url``, as ``mm check`` asks it (each request
    bounded by ``request_timeout_s``; ``symbols``: those the service follows, for a venue that
    reads them one by one)."""
    if venue.kind == "hyperliquid":
        async with hyperliquid_probe.open_probe(
            url,
            signing_key=_signing_key(venue, signing_key),
            account_address=venue.account_address,
            network=venue.network,
            rate_limit=rate_limit,
            request_timeout_s=request_timeout_s,
        ) as probe:
            yield probe
        return
    if venue.kind == "kucoin":
        async with kucoin_probe.open_probe(
            url,
            credentials=_kucoin_credentials(venue, api_credentials),
            symbols=symbols,
            request_timeout_s=request_timeout_s,
        ) as kucoin:
            yield kucoin
        return
    raise ValueError(_unknown(venue))


def account_of(
    venue: VenueConfig, signing_key: Secret | None, api_credentials: ApiCredentials | None = None
) -> str:
    """The account an adapter of ``venue.kind`` trades for, as the venue names it."""
    if venue.kind == "hyperliquid":
        return hyperliquid_probe.account_for(
            _signing_key(venue, signing_key), venue.account_address
        )
    if venue.kind == "kucoin":
        return kucoin_probe.account_for(_kucoin_credentials(venue, api_credentials))
    raise ValueError(_unknown(venue))


def fills_listed_again(venue: VenueConfig, max_fill_pages: int) -> int:
    """The most of the account's fills ``venue.kind`` can list again (its fill reads reach
    back no further, or a catch-up of ``max_fill_pages`` pages reads no more): the fill dedup
    must remember at least as many, or a catch-up that lists them all forwards the oldest
    twice (mm.config refuses a smaller ``feeds.user.dedup_capacity``)."""
    if venue.kind == "hyperliquid":
        return hyperliquid_limits.FILLS_RETAINED
    if venue.kind == "kucoin":
        # Listed by time, from where the feed last was: a catch-up lists at most its pages.
        return kucoin_limits.FILLS_PAGE * max_fill_pages
    raise ValueError(_unknown(venue))


def _unknown(venue: VenueConfig) -> str:
    return f"venue.kind: no adapter for {venue.kind!r} (known: {', '.join(KINDS)})"
