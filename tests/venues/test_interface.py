"""The Hyperliquid adapter implements the venue interface (checked by mypy and at runtime)."""

from __future__ import annotations

import inspect

from prometheus_client import CollectorRegistry

from mm.secrets import Secret
from mm.venues.base import VenueAdapter, VenueClient
from mm.venues.config import DEV_PRIVATE_KEY, FeedsConfig
from mm.venues.hyperliquid.adapter import HyperliquidAdapter
from mm.venues.hyperliquid.client import HyperliquidClient


def test_the_client_has_every_request_of_the_interface() -> None:
    wanted = {
        name
        for name, member in inspect.getmembers(VenueClient)
        if inspect.iscoroutinefunction(member)
    }
    assert wanted == {
        "metadata",
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
    adapter: VenueAdapter = HyperliquidAdapter(
        FeedsConfig(),
        venue_url=lambda: None,
        signing_key=Secret(DEV_PRIVATE_KEY),
        account_address="",
        registry=CollectorRegistry(),
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
