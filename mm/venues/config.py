"""The ``[venue]`` and ``[feeds]`` sections: which venue mm trades on, where, with which signing
key, and how its feeds and startup run.

The venue's secrets never live in config.toml: each comes from the environment variable or file
the section names (Hyperliquid: a signing key; KuCoin: an API key, its secret and its
passphrase). For the embedded simulator (or any loopback URL) well-known development secrets
are used when none are configured; they are refused for any other URL.
"""

from __future__ import annotations

import re
from urllib.parse import urlsplit

import attrs

from mm.connection import ConnectionConfig
from mm.execution.deadman import DeadmanConfig
from mm.execution.startup import StartupConfig
from mm.feeds.market import MarketFeedConfig
from mm.feeds.user import UserStreamConfig
from mm.secrets import Secret
from mm.settings import at_least, is_loopback, non_empty, non_negative, one_of, positive, setting

EMBEDDED = "embedded"
# The venue adapters mm.venues.factory builds (venue.kind).
KINDS = ("hyperliquid", "kucoin")
# A publicly known key ("mm" repeated): only ever for the simulator on this machine.
DEV_PRIVATE_KEY = "0x" + "6d6d" * 16
# KuCoin's: the simulator's KuCoin face accepts these (key, secret, passphrase).
DEV_API_KEY = ("mm-sim-key", "mm-sim-secret", "mm-sim-passphrase")
ADDRESS = re.compile(r"^0x[0-9a-fA-F]{40}$")
PRIVATE_KEY = re.compile(r"^(0x)?[0-9a-fA-F]{64}$")


def _url(value: str) -> str | None:
    if value == EMBEDDED:
        return None
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return f'must be "embedded" or an http(s) base URL, got {value!r}'
    return None


def _address(value: str) -> str | None:
    if value and ADDRESS.match(value) is None:
        return f"must be empty or a 0x-prefixed 40-hex-digit address, got {value!r}"
    return None


def is_local_url(url: str) -> bool:
    """The embedded simulator, or a URL on this machine's loopback."""
    if url == EMBEDDED:
        return True
    host = urlsplit(url).hostname or ""
    return is_loopback(host)


@attrs.frozen
class VenueConfig:
    kind: str = setting("hyperliquid", one_of(*KINDS))
    url: str = setting(EMBEDDED, _url)
    network: str = setting("testnet", one_of("mainnet", "testnet"))
    account_address: str = setting("", _address)
    private_key_env: str = setting("MM_HL_PRIVATE_KEY", non_empty)
    private_key_file: str = setting("")
    # KuCoin (kind = "kucoin"): the API key, its secret and passphrase, each from an environment
    # variable or a file (the file wins when set); the key's version (2 or 3: the passphrase is
    # sent signed).
    api_key_env: str = setting("MM_KC_API_KEY", non_empty)
    api_key_file: str = setting("")
    api_secret_env: str = setting("MM_KC_API_SECRET", non_empty)
    api_secret_file: str = setting("")
    api_passphrase_env: str = setting("MM_KC_API_PASSPHRASE", non_empty)
    api_passphrase_file: str = setting("")
    api_key_version: str = setting("2", one_of("2", "3"))
    cancel_foreign_orders: bool = setting(True)


@attrs.frozen(repr=False)
class ApiCredentials:
    """An API key as a venue of keys and passphrases (KuCoin) takes it: every part a ``Secret``
    (printed as ``***``), and the key's version."""

    key: Secret
    secret: Secret
    passphrase: Secret
    version: str = "2"

    def secrets(self) -> list[Secret]:
        return [self.key, self.secret, self.passphrase]

    def __repr__(self) -> str:
        return f"ApiCredentials(version={self.version!r})"


def dev_api_credentials() -> ApiCredentials:
    """The development credentials the simulator's KuCoin face accepts (``DEV_API_KEY``)."""
    key, secret, passphrase = DEV_API_KEY
    return ApiCredentials(Secret(key), Secret(secret), Secret(passphrase))


def _coins(value: tuple[str, ...]) -> str | None:
    return None if value else "must name at least one coin"


@attrs.frozen
class FeedsConfig:
    # Coins whose books, trades and mids are followed.
    coins: tuple[str, ...] = setting(("BTC", "ETH"), _coins)
    # Trades waiting for the strategy before new ones are dropped (and counted).
    trades_queue: int = setting(10_000, at_least(1))
    # User events (order reports, fills) waiting for the executor; never dropped: a full queue
    # makes the user stream wait (its connection buffers, then resyncs if it must).
    user_events_queue: int = setting(100_000, at_least(1))
    # Every order action (place, cancel, modify) carries expiresAfter: the venue refuses it once
    # this many seconds have passed since it was signed. An order whose answer was lost and that
    # the venue does not know (unknownOid) is taken for never placed only once its action can
    # no longer land: this window plus expiry_allowance_s (the venue's clock against ours).
    action_expiry_s: float = setting(3.0, positive)
    expiry_allowance_s: float = setting(0.5, non_negative)
    connection: ConnectionConfig = attrs.field(factory=ConnectionConfig)
    market: MarketFeedConfig = attrs.field(factory=MarketFeedConfig)
    user: UserStreamConfig = attrs.field(factory=UserStreamConfig)
    startup: StartupConfig = attrs.field(factory=StartupConfig)
    deadman: DeadmanConfig = attrs.field(factory=DeadmanConfig)
