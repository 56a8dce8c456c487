"""The KuCoin probe ``mm check`` asks: against the simulator's face over loopback (the key, the
books over a WebSocket), and on an in-memory transport for what the face does not do (an
account paying its fees in KCS, a refused key)."""

from __future__ import annotations

import copy
import hashlib
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
import orjson
import trio

from mm import clock
from mm.model import PlaceOrder, RateLimitState, Side, Tif
from mm.secrets import Secret
from mm.venues.base import VenueProbe
from mm.venues.kucoin.client import KucoinClient
from mm.venues.kucoin.probe import KucoinProbe, account_for, open_probe
from mm.venues.kucoin.rate_budget import RateBudget
from mm.venues.kucoin.rest import KucoinRestTransport
from mm.venues.kucoin.signing import Credentials
from mm.venues.sim.kucoin.server import DEV_KEY, KucoinSimVenue
from tests.fixture_paths import KUCOIN

MESSAGES: dict[str, Any] = json.loads((KUCOIN / "messages.json").read_text(encoding="utf-8"))
FEES: dict[str, Any] = json.loads((KUCOIN / "rest_trade_fees.json").read_text(encoding="utf-8"))
ANSWERS: dict[str, Any] = json.loads((KUCOIN / "rest_orders.json").read_text(encoding="utf-8"))
FOLLOWED = ["BTC-USDT", "ETH-USDT"]


@asynccontextmanager
async def face_probe(credentials: Credentials = DEV_KEY) -> AsyncIterator[KucoinProbe]:
    venue = KucoinSimVenue(seed=7)
    async with trio.open_nursery() as nursery:
        url = await nursery.start(venue.run)
        async with open_probe(
            url, credentials=credentials, symbols=FOLLOWED, request_timeout_s=60.0
        ) as probe:
            yield probe
        nursery.cancel_scope.cancel()


async def test_the_probe_against_the_face(autojump_clock: trio.abc.Clock) -> None:
    async with face_probe() as checked:
        probe: VenueProbe = checked
        assert probe.account == account_for(DEV_KEY)
        digest = hashlib.sha256(b"mm-sim-key").hexdigest()[:12]
        assert probe.account == f"kucoin-key-{digest}"  # the key's fingerprint, not the key
        access = await probe.access()
        assert access.allowed
        assert "key verified" in access.detail
        assert "no fills yet" in access.detail
        seen, errors = await probe.books(FOLLOWED, 10.0)
        assert (seen, errors) == (set(FOLLOWED), [])
        assert probe.fills_page == 100
        assert probe.dead_mans_switch_volume == 0.0  # armed for any account
        # After a trade in USDT the account's fees are seen to be in the quote.
        client = checked.client
        mid = (await client.level2_snapshot("BTC-USDT")).asks[0][0]
        taking = PlaceOrder("BTC-USDT", Side.BUY, mid * 1.01, 0.001, Tif.IOC, "mm-probe-1")
        await client.place([taking])
        access = await probe.access()
        assert access.allowed
        assert "no fee paid in KCS" in access.detail
        state = await probe.client.rate_limit()
        shares = probe.headroom_by_kind(state)
        assert 0 < shares["Spot"] < 1


async def test_a_refused_key_is_said_in_the_venues_words(
    autojump_clock: trio.abc.Clock,
) -> None:
    wrong = Credentials(DEV_KEY.key, Secret("not-the-secret"), DEV_KEY.passphrase)
    async with face_probe(wrong) as probe:
        access = await probe.access()
    assert not access.allowed
    assert "40000" in access.detail
    assert "not-the-secret" not in access.detail


def test_headroom_from_the_venues_figures() -> None:
    probe = KucoinProbe.__new__(KucoinProbe)
    assert probe.headroom_by_kind(RateLimitState(0.0, 1_000, 4_000)) == {"Spot": 0.75}
    assert probe.headroom_by_kind(RateLimitState(0.0, 0, 0)) == {"Spot": 0.0}


async def test_an_account_paying_fees_in_kcs_is_refused(autojump_clock: trio.abc.Clock) -> None:
    fills = copy.deepcopy(ANSWERS["hf_fills"]["data"])
    fills["items"][0]["feeCurrency"] = "KCS"

    def handle(request: httpx.Request) -> httpx.Response:
        data = {
            "/api/v2/symbols": [MESSAGES["rest_symbol_BTC-USDT"]],
            "/api/v1/trade-fees": FEES["trade_fees_response"]["data"][:1],
            "/api/v1/accounts": ANSWERS["accounts"]["data"],
            "/api/v1/hf/fills": fills,
        }[request.url.path]
        return httpx.Response(200, content=orjson.dumps({"code": "200000", "data": data}))

    async with KucoinRestTransport(
        "http://venue",
        DEV_KEY,
        budget=RateBudget(),
        now_ms=clock.wall_ms,
        transport=httpx.MockTransport(handle),
    ) as rest:
        probe = KucoinProbe(KucoinClient(rest, ["BTC-USDT"]), DEV_KEY)
        access = await probe.access()
    assert not access.allowed
    assert "pays its fees in KCS" in access.detail
    assert "11029373945659392" in access.detail  # the fill that shows it


async def test_a_followed_symbol_the_venue_does_not_list_is_refused(
    autojump_clock: trio.abc.Clock,
) -> None:
    venue = KucoinSimVenue(seed=7)
    async with trio.open_nursery() as nursery:
        url = await nursery.start(venue.run)
        async with open_probe(
            url, credentials=DEV_KEY, symbols=["BTC-USDT", "DOGE-USDT"], request_timeout_s=60.0
        ) as probe:
            access = await probe.access()
        nursery.cancel_scope.cancel()
    assert not access.allowed
    assert access.detail == "DOGE-USDT is not listed"
