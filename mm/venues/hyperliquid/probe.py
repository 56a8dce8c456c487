"""Hyperliquid as ``mm check`` asks it (the port's ``VenueProbe``): a client on the venue's
REST API, the access check the user feed makes at each start, the l2Book subscription over a
WebSocket of its own, and the venue's rules the checks judge by (its dead-man's volume, its
page of fills, its address budget through a fresh limiter).

Nothing is retried here: a request that fails raises, and the checks turn it into a FAIL
with its text.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager

import orjson
import trio

from mm.model import RateLimitState
from mm.secrets import Secret
from mm.venues.base import AccessAnswer
from mm.venues.hyperliquid import codec
from mm.venues.hyperliquid.access import check_access
from mm.venues.hyperliquid.client import HyperliquidClient
from mm.venues.hyperliquid.rate_limit import RateLimitConfig, RateLimiter
from mm.venues.hyperliquid.rest import RestTransport
from mm.venues.hyperliquid.schedule_cancel import REQUIRED_VOLUME_USD
from mm.venues.hyperliquid.signing import L1Signer
from mm.venues.hyperliquid.ws import ws_url
from mm.websocket import open_websocket_url

FILLS_PAGE = 2000  # the venue's most fills per userFillsByTime answer


class HyperliquidProbe:
    def __init__(
        self, url: str, client: HyperliquidClient, network: str, rate_limit: RateLimitConfig
    ) -> None:
        self.url = url
        self.client = client
        self.network = network
        self.rate_limit = rate_limit
        self.fills_page = FILLS_PAGE
        self.dead_mans_switch_volume: float | None = REQUIRED_VOLUME_USD

    @property
    def account(self) -> str:
        return self.client.account

    async def access(self) -> AccessAnswer:
        access = await check_access(self.client, network=self.network)
        return AccessAnswer(access.allowed, access.problem or access.summary)

    async def books(self, symbols: Sequence[str], wait_s: float) -> tuple[set[str], list[str]]:
        seen: set[str] = set()
        errors: list[str] = []
        async with open_websocket_url(
            ws_url(self.url), connect_timeout=5.0, disconnect_timeout=1.0
        ) as ws:
            for coin in symbols:
                subscription = {"type": "l2Book", "coin": coin}
                message = {"method": "subscribe", "subscription": subscription}
                await ws.send_message(orjson.dumps(message).decode())
            with trio.move_on_after(wait_s):
                while not seen.issuperset(symbols):
                    try:
                        frame = orjson.loads(await ws.get_message())
                    except orjson.JSONDecodeError:
                        continue  # the greeting is plain text
                    if not isinstance(frame, dict):
                        continue
                    channel = frame.get("channel")
                    if channel == "error":
                        errors.append(str(frame.get("data")))
                    elif channel == "l2Book":
                        seen.add(codec.parse_l2_book(frame["data"]).coin)
        return seen, errors

    def headroom_by_kind(self, state: RateLimitState) -> dict[str, float]:
        limiter = RateLimiter(self.rate_limit)
        now = trio.current_time()
        limiter.observe(state, now)
        return limiter.headroom_by_kind(now)


def account_for(signing_key: Secret, account_address: str) -> str:
    """The account traded for: the one configured, else the signing key's own address."""
    return (account_address or L1Signer(signing_key.reveal()).address).lower()


@asynccontextmanager
async def open_probe(
    url: str,
    *,
    signing_key: Secret,
    account_address: str,
    network: str,
    rate_limit: RateLimitConfig,
    request_timeout_s: float,
) -> AsyncIterator[HyperliquidProbe]:
    """A probe of the venue at ``url`` for the account (the key's own when none is named)."""
    signer = L1Signer(signing_key.reveal())
    async with RestTransport(url, deadline_s=request_timeout_s) as rest:
        client = HyperliquidClient(
            rest=rest,
            signer=signer,
            account=account_for(signing_key, account_address),
            mainnet=network == "mainnet",
            limiter=RateLimiter(rate_limit),
        )
        yield HyperliquidProbe(url, client, network, rate_limit)
