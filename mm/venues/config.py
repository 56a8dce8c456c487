"""The ``[venue]`` section: which venue mm trades on, where, and with which signing key.

The signing key never lives in config.toml: it comes from the environment variable or file
the section names. For the embedded simulator (or any loopback URL) a well-known development
key is used when none is configured; that key is refused for any other URL.
"""

from __future__ import annotations

import re
from urllib.parse import urlsplit

import attrs

from mm.settings import non_empty, one_of, setting

EMBEDDED = "embedded"
# A publicly known key ("mm" repeated): only ever for the simulator on this machine.
DEV_PRIVATE_KEY = "0x" + "6d6d" * 16
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
    from mm.config import is_loopback

    host = urlsplit(url).hostname or ""
    return is_loopback(host)


@attrs.frozen
class VenueConfig:
    kind: str = setting("hyperliquid", one_of("hyperliquid"))
    url: str = setting(EMBEDDED, _url)
    network: str = setting("testnet", one_of("mainnet", "testnet"))
    account_address: str = setting("", _address)
    private_key_env: str = setting("MM_HL_PRIVATE_KEY", non_empty)
    private_key_file: str = setting("")
    cancel_foreign_orders: bool = setting(True)
