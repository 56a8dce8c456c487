"""The factory builds the adapter venue.kind names, from the sections the service hands it."""

from __future__ import annotations

import attrs
import pytest
from prometheus_client import CollectorRegistry

from mm.config import ConfigError, structure
from mm.secrets import Secret
from mm.venues.config import (
    DEV_API_KEY,
    DEV_PRIVATE_KEY,
    KINDS,
    FeedsConfig,
    VenueConfig,
    dev_api_credentials,
)
from mm.venues.factory import account_of, build_adapter, open_probe
from mm.venues.hyperliquid.connector import HyperliquidConnector
from mm.venues.hyperliquid.rate_limit import RateLimitConfig
from mm.venues.kucoin.connector import KucoinConnector
from mm.venues.service import VenueService

ACCOUNT = "0x" + "AB" * 20
DEV_API = dev_api_credentials()


def build(venue: VenueConfig) -> object:
    return build_adapter(
        venue,
        FeedsConfig(coins=("SOL",)),
        venue_url=lambda: "http://127.0.0.1:1",
        signing_key=Secret(DEV_PRIVATE_KEY),
        registry=CollectorRegistry(),
        killed=lambda: False,
        on_fill=lambda fill: None,
        on_order_events=lambda events: None,
        on_feed_state=lambda feed, state: None,
        on_startup=lambda account: None,
        api_credentials=DEV_API,
    )


@pytest.mark.parametrize("kind", KINDS)
def test_every_kind_the_config_accepts_has_an_adapter(kind: str) -> None:
    adapter = build(VenueConfig(kind=kind))
    assert adapter is not None


def test_the_adapter_gets_the_venue_section() -> None:
    adapter = build_adapter(
        VenueConfig(account_address=ACCOUNT, network="mainnet", cancel_foreign_orders=False),
        FeedsConfig(coins=("SOL",)),
        venue_url=lambda: "http://127.0.0.1:1",
        signing_key=Secret(DEV_PRIVATE_KEY),
        registry=CollectorRegistry(),
        killed=lambda: False,
        on_fill=lambda fill: None,
        on_order_events=lambda events: None,
        on_feed_state=lambda feed, state: None,
        on_startup=lambda account: None,
    )
    assert isinstance(adapter, VenueService)
    assert isinstance(adapter.connector, HyperliquidConnector)
    assert adapter.account == ACCOUNT.lower()
    assert adapter.connector.mainnet is True
    assert adapter.cancel_foreign_orders is False
    assert adapter.config.coins == ("SOL",)
    assert adapter.url() == "http://127.0.0.1:1"
    assert adapter.client is None  # until its user feed is up
    assert adapter.healthy() is False


def test_the_account_checks_fund_is_the_one_the_adapter_trades_for() -> None:
    # mm check funds an embedded venue for this account before any adapter exists.
    key = Secret(DEV_PRIVATE_KEY)
    for venue in (VenueConfig(), VenueConfig(account_address=ACCOUNT)):
        adapter = build_adapter(
            venue,
            FeedsConfig(),
            venue_url=lambda: None,
            signing_key=key,
            registry=CollectorRegistry(),
            killed=lambda: False,
            on_fill=lambda fill: None,
            on_order_events=lambda events: None,
            on_feed_state=lambda feed, state: None,
            on_startup=lambda account: None,
        )
        assert account_of(venue, key) == adapter.account
    assert account_of(VenueConfig(), key) != ACCOUNT.lower()


async def test_a_kind_without_an_adapter_is_refused_naming_the_key() -> None:
    unknown = attrs.evolve(VenueConfig(), kind="binance")  # past the config's check: a bug
    key = Secret(DEV_PRIVATE_KEY)
    with pytest.raises(ValueError, match=r"^venue\.kind: no adapter for 'binance'"):
        build(unknown)
    with pytest.raises(ValueError, match=r"^venue\.kind: no adapter for 'binance'"):
        account_of(unknown, key)
    with pytest.raises(ValueError, match=r"^venue\.kind: no adapter for 'binance'"):
        async with open_probe(
            unknown,
            "http://127.0.0.1:1",
            signing_key=key,
            rate_limit=RateLimitConfig(),
            request_timeout_s=1.0,
        ):
            pass
    with pytest.raises(ConfigError) as caught:
        structure({"venue": {"kind": "binance"}})
    assert caught.value.errors == ["venue.kind: must be one of hyperliquid, kucoin, got 'binance'"]


def test_kucoin_takes_the_api_credentials_and_follows_the_feeds_symbols() -> None:
    feeds = FeedsConfig(coins=("BTC-USDT", "ETH-USDT"))
    adapter = build_adapter(
        VenueConfig(kind="kucoin"),
        feeds,
        venue_url=lambda: "http://127.0.0.1:1",
        signing_key=None,
        registry=CollectorRegistry(),
        killed=lambda: False,
        on_fill=lambda fill: None,
        on_order_events=lambda events: None,
        on_feed_state=lambda feed, state: None,
        on_startup=lambda account: None,
        api_credentials=DEV_API,
    )
    assert isinstance(adapter.connector, KucoinConnector)
    assert adapter.connector.symbols == feeds.coins
    assert adapter.account == account_of(VenueConfig(kind="kucoin"), None, DEV_API)
    assert DEV_API_KEY[0] not in adapter.account  # a fingerprint of the key, not the key
    with pytest.raises(ValueError, match=r"venue\.api_key_env: kucoin needs API credentials"):
        account_of(VenueConfig(kind="kucoin"), Secret(DEV_PRIVATE_KEY))
