"""The Hyperliquid adapter implements the venue interface (checked by mypy and at runtime): its
client the port's client, its connector the port's connector, and the venue service on it the
port's adapter."""

from __future__ import annotations

import inspect

from prometheus_client import CollectorRegistry

from mm.secrets import Secret
from mm.venues.base import VenueAdapter, VenueClient, VenueConnector
from mm.venues.config import DEV_PRIVATE_KEY, FeedsConfig
from mm.venues.hyperliquid.client import HyperliquidClient
from mm.venues.hyperliquid.connector import HyperliquidConnector
from mm.venues.service import VenueService


def test_the_client_has_every_request_of_the_interface() -> None:
    wanted = {
        name
        for name, member in inspect.getmembers(VenueClient)
        if inspect.iscoroutinefunction(member)
    }
    assert wanted == {
        "open_orders",
        "account_state",
        "fills_since",
        "order_status",
        "rate_limit",
        "place",
        "cancel",
        "modify",
        "instruments",
    }
    for name in wanted:
        assert inspect.iscoroutinefunction(getattr(HyperliquidClient, name)), name


def test_the_adapter_is_a_venue_adapter() -> None:
    registry = CollectorRegistry()
    feeds = FeedsConfig()
    connector: VenueConnector = HyperliquidConnector(
        signing_key=Secret(DEV_PRIVATE_KEY),
        account_address="",
        registry=registry,
        rest_deadline_s=feeds.user.rest_deadline_s,
        action_expiry_s=feeds.action_expiry_s,
        expiry_allowance_s=feeds.expiry_allowance_s,
        access_recheck_s=feeds.startup.access_recheck_s,
    )
    adapter: VenueAdapter = VenueService(
        connector,
        feeds,
        venue_url=lambda: None,
        registry=registry,
        killed=lambda: False,
        on_fill=lambda fill: None,
        on_order_events=lambda events: None,
        on_feed_state=lambda feed, state: None,
        on_startup=lambda account: None,
    )
    assert adapter.client is None  # until the user feed is up
    assert adapter.healthy() is False


def typed_client(client: HyperliquidClient) -> VenueClient:
    return client  # mypy checks that the client satisfies the protocol
