"""KuCoin as ``mm check`` asks it (the port's ``VenueProbe``): a client on the venue's REST for
the followed symbols, the access check, the books over a WebSocket of its own, and the venue's
rules the checks judge by.

``access`` asks, in this order, and stops at the first refusal:

1. the key: a signed read of the trade account (``GET /api/v1/accounts``): a refused key,
   passphrase or signature is the venue's refusal, in its words (its code and message);
2. the symbols: each followed symbol is listed and open to trading (``enableTrading``);
3. the fee currency: an account that pays its fees in KCS (KuCoin's "pay fees with KCS"
   setting) is charged in KCS instead of the symbol's fee currency, which breaks mm's fee and
   PnL arithmetic (done in the quote). No endpoint of the venue's specification reports that
   setting, so it is read from the account's latest fills on the followed symbols
   (``account.kcs_fee_fills``): one fee paid in KCS on a symbol whose quote is not KCS refuses
   the account, naming the fill. An account with no fills yet cannot show it: the answer is
   allowed and says so (turn the setting off in KuCoin's fee settings before trading).

The probe's client reads the symbols from the public listing and no fee rate (a signed read):
``mm check``'s venue_reachable asks only whether the venue answers and lists them, so a key the
venue refuses is said by ``access``, in the venue's words. ``dead_mans_switch_volume`` is 0:
KuCoin arms its switch (``mm.venues.kucoin.deadman``) for any account.

``account_for``: the account is named by its API key (the venue's own user id comes only from
``/api/v1/user/api-key``'s ``uid``, which the face does not serve), as a fingerprint:
``kucoin-key-`` and the first 12 hex digits of the key's SHA-256. mm holds the key as a
``Secret`` (it is one of the three things a request is signed with), so it is not printed
whole in status, logs or the journal; the fingerprint is the same on every run with the key
(``printf %s KEY | sha256sum`` shows which). Never the secret or the passphrase.

Nothing is retried here: a request that fails raises, and the checks turn it into a FAIL with
its text.
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager

import trio

from mm import clock
from mm.model import RateLimitState
from mm.venues.base import AccessAnswer, UnknownInstrument
from mm.venues.kucoin import account, ws_protocol
from mm.venues.kucoin.answers import KucoinError
from mm.venues.kucoin.budget import ORDER_POOL
from mm.venues.kucoin.client import FILLS_PAGE, KucoinClient
from mm.venues.kucoin.codec import CodecError, parse_depth5
from mm.venues.kucoin.rate_budget import RateBudget
from mm.venues.kucoin.rest import KucoinRestTransport
from mm.venues.kucoin.signing import Credentials
from mm.websocket import open_websocket_url

__all__ = ["KucoinProbe", "account_for", "open_probe"]

BOOK_TOPIC = "/spotMarket/level2Depth5"


def account_for(credentials: Credentials) -> str:
    """The account traded for, as mm names it: its API key's fingerprint (see the module)."""
    digest = hashlib.sha256(credentials.key.reveal().encode()).hexdigest()
    return f"kucoin-key-{digest[:12]}"


class KucoinProbe:
    """The probe (see the module)."""

    fills_page = FILLS_PAGE
    # KuCoin has a dead-man's switch (mm.venues.kucoin.deadman) and arms it for any account:
    # no traded volume is required.
    dead_mans_switch_volume: float | None = 0.0

    def __init__(self, client: KucoinClient, credentials: Credentials) -> None:
        self.client = client
        self._account = account_for(credentials)

    @property
    def account(self) -> str:
        return self._account

    async def access(self) -> AccessAnswer:
        try:
            balances = await self.client.balances()
        except KucoinError as error:
            return AccessAnswer(False, f"the venue refuses the key: {error}")
        await self.client.instruments()
        closed = []
        for symbol in self.client.symbols:
            try:
                if not self.client.spec(symbol).tradable:
                    closed.append(f"{symbol} is not open to trading")
            except UnknownInstrument:
                closed.append(f"{symbol} is not listed")
        if closed:
            return AccessAnswer(False, "; ".join(closed))
        quotes = {s: self.client.spec(s).instrument.quote for s in self.client.symbols}
        fills = [fill for s in self.client.symbols for fill in await self.client.recent_fills(s)]
        kcs = account.kcs_fee_fills(fills, quotes)
        if kcs:
            fill = kcs[0]
            return AccessAnswer(
                False,
                f"the account pays its fees in KCS ({len(kcs)} of its last {len(fills)} fills, "
                f"e.g. trade {fill.tid} on {fill.coin}): mm's fee arithmetic is in the quote "
                "currency; turn off 'pay fees with KCS' in KuCoin's fee settings",
            )
        held = ", ".join(sorted(b.currency for b in balances if b.total > 0)) or "nothing"
        seen = (
            f"no fee paid in KCS in its last {len(fills)} fills"
            if fills
            else "no fills yet, so whether it pays fees in KCS cannot be seen"
        )
        return AccessAnswer(True, f"key verified; the trade account holds {held}; {seen}")

    async def books(self, symbols: Sequence[str], wait_s: float) -> tuple[set[str], list[str]]:
        seen: set[str] = set()
        errors: list[str] = []
        bullet = await self.client.bullet(private=False)
        url = ws_protocol.connect_url(bullet, uuid.uuid4().hex)
        with trio.move_on_after(wait_s):
            async with open_websocket_url(url, connect_timeout=5.0, disconnect_timeout=1.0) as ws:
                topic = f"{BOOK_TOPIC}:{','.join(symbols)}"
                await ws.send_message(ws_protocol.subscribe("books", topic, private=False))
                while not seen.issuperset(symbols):
                    try:
                        received = ws_protocol.classify(await ws.get_message())
                    except CodecError:
                        continue
                    if received.kind is ws_protocol.Kind.ERROR:
                        errors.append(str(received.message.get("data")))
                        break
                    if received.kind is ws_protocol.Kind.MESSAGE and (
                        received.topic or ""
                    ).startswith(BOOK_TOPIC):
                        try:
                            seen.add(parse_depth5(received.message).coin)
                        except CodecError as error:
                            errors.append(str(error))
        return seen, errors

    def headroom_by_kind(self, state: RateLimitState) -> dict[str, float]:
        """The Spot pool's share left as the venue's figures say (the pool orders draw on)."""
        if state.requests_cap <= 0:
            return {ORDER_POOL: 0.0}
        share = 1 - state.requests_used / state.requests_cap
        return {ORDER_POOL: min(1.0, max(0.0, share))}


@asynccontextmanager
async def open_probe(
    url: str,
    *,
    credentials: Credentials,
    symbols: Sequence[str],
    request_timeout_s: float,
) -> AsyncIterator[KucoinProbe]:
    """A probe of the venue at ``url`` for the key's account and the followed ``symbols``."""
    async with KucoinRestTransport(
        url,
        credentials,
        budget=RateBudget(),
        now_ms=clock.wall_ms,
        deadline_s=request_timeout_s,
    ) as rest:
        # The listing alone (public): a refused key is the access check's answer, in its words.
        yield KucoinProbe(KucoinClient(rest, symbols, fee_rates=False), credentials)
