"""``mm check`` on KuCoin (``venue.kind = "kucoin"``): the embedded face, a face at a loopback
URL, a secret the venue refuses, an account that pays its fees in KCS, and credentials missing
for a remote URL; run as the user runs it (``mm check``, a subprocess) where the command's own
words matter, and through ``run_checks`` (what the command calls) elsewhere."""

from __future__ import annotations

import copy
import json
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from functools import partial
from typing import Any, cast

import orjson
import trio
from hypercorn.trio import serve
from hypercorn.typing import ASGIFramework

from mm import clock
from mm.asgi import Receive, Scope, Send, hypercorn_config, run_lifespan
from mm.config import Config, Secrets
from mm.journal import DATABASE_NAME
from mm.model import Filled, PlaceOrder, Side, Tif
from mm.ops.checks import CheckResult, exit_code, render, run_checks
from mm.venues.kucoin.client import KucoinClient
from mm.venues.kucoin.rate_budget import RateBudget
from mm.venues.kucoin.rest import KucoinRestTransport
from mm.venues.sim.kucoin.server import DEV_KEY, KucoinSimVenue
from tests.conftest import ConfigWriter
from tests.e2e.mmproc import run_mm
from tests.fixture_paths import KUCOIN as FIXTURES
from tests.ops.test_checks import PREFLIGHT, by_name, journal, journaled

Loader = Callable[..., tuple[Config, Secrets]]

SYMBOLS = ["BTC-USDT", "ETH-USDT"]
# A KuCoin config: the venue's kind, its symbols followed and traded, always open.
KUCOIN: dict[str, dict[str, Any]] = {
    "venue": {"kind": "kucoin"},
    "feeds": {"coins": SYMBOLS},
    "strategy": {"symbols": SYMBOLS},
    "session": {"default_open": True},
}
WRONG_SECRET = {
    "MM_KC_API_KEY": DEV_KEY.key.reveal(),
    "MM_KC_API_SECRET": "not-the-faces-secret",
    "MM_KC_API_PASSPHRASE": DEV_KEY.passphrase.reveal(),
}


def kucoin(**venue: Any) -> dict[str, dict[str, Any]]:
    sections = copy.deepcopy(KUCOIN)
    sections["venue"].update(venue)
    return sections


def assert_no_secret(results: Sequence[CheckResult], secrets: Secrets) -> None:
    assert secrets.venue_api is not None
    text = render(results)
    for part in secrets.venue_api.secrets():
        assert part.reveal() not in text


@asynccontextmanager
async def running_face() -> AsyncIterator[KucoinSimVenue]:
    face = KucoinSimVenue(seed=3)
    async with trio.open_nursery() as nursery:
        await nursery.start(face.run)
        yield face
        nursery.cancel_scope.cancel()


# --- as the user runs it -----------------------------------------------------------------------


def test_mm_check_on_the_embedded_face_passes(write_config: ConfigWriter) -> None:
    checked = run_mm("check", "-c", str(write_config(**KUCOIN)), timeout=60.0)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    lines = {line.split()[1]: line for line in checked.stdout.splitlines() if "  " in line}
    for name in PREFLIGHT:
        label = "SKIP" if name == "positions_match" else "PASS"
        assert lines[name].startswith(label), checked.stdout
    assert "venue kucoin embedded," in lines["config"]
    assert "embedded venue started for the checks" in lines["venue_reachable"]
    assert "key verified" in lines["venue_access"]
    assert "books received for BTC-USDT, ETH-USDT" in lines["feeds_receiving"]
    assert "a spot account has balances (BTC, ETH, USDT), not positions" in lines["positions_match"]
    assert "arms it for any account" in lines["dead_mans_switch"]


def test_mm_check_with_a_secret_the_face_does_not_know_fails_in_its_words(
    write_config: ConfigWriter,
) -> None:
    """The face knows only the development key; the secret set in the environment is another
    one: the venue answers, and refuses the key, saying why."""
    checked = run_mm("check", "-c", str(write_config(**KUCOIN)), env=WRONG_SECRET, timeout=60.0)
    assert checked.returncode == 1, checked.stdout + checked.stderr
    lines = {line.split()[1]: line for line in checked.stdout.splitlines() if "  " in line}
    assert lines["venue_reachable"].startswith("PASS")  # it answers and lists the symbols
    assert lines["venue_access"].startswith("FAIL")
    # The face's code and message: the passphrase is sent signed with the secret (a version 2
    # key), so the first thing a wrong secret breaks is the passphrase's signature.
    assert (
        "the venue refuses the key: KuCoin 400004: KC-API-PASSPHRASE error (HTTP 401)"
        in lines["venue_access"]
    )
    assert "not-the-faces-secret" not in checked.stdout + checked.stderr


def test_mm_check_without_credentials_for_a_remote_kucoin_names_the_keys(
    write_config: ConfigWriter,
) -> None:
    config = write_config(**kucoin(url="https://api.kucoin.com"))
    checked = run_mm("check", "-c", str(config), timeout=60.0)
    assert checked.returncode == 2  # a configuration error: nothing was asked of the venue
    assert "venue.api_key_env: KuCoin credentials are required for https://api.kucoin.com" in (
        checked.stderr
    )
    assert "MM_KC_API_KEY, MM_KC_API_SECRET and MM_KC_API_PASSPHRASE" in checked.stderr
    assert checked.stdout == ""


# --- against a face at a loopback URL ----------------------------------------------------------


async def test_check_against_a_running_face_passes_and_reconciles_its_fills(
    load: Loader, autojump_clock: trio.abc.Clock
) -> None:
    async with running_face() as face:
        config, secrets = load(**kucoin(url=face.url))
        pre = await run_checks(config, secrets, post=False, admin_url=None)
        assert [r.name for r in pre] == PREFLIGHT
        checks = by_name(pre)
        assert checks.pop("positions_match").ok is None
        assert all(r.ok is True for r in checks.values()), render(pre)
        assert "embedded" not in checks["venue_reachable"].detail
        assert face.url in checks["venue_reachable"].detail
        assert "no fills yet" in checks["venue_access"].detail
        assert_no_secret(pre, secrets)

        # A run that took one fill: journaled as the service journals it, the venue agrees.
        started = clock.wall() - 1
        async with KucoinRestTransport(
            face.url, DEV_KEY, budget=RateBudget(), now_ms=clock.wall_ms, deadline_s=30.0
        ) as rest:
            client = KucoinClient(rest, SYMBOLS)
            await client.instruments()
            ask = face.market.mids()["BTC-USDT"] * 1.02
            taking = PlaceOrder("BTC-USDT", Side.BUY, ask, 0.001, Tif.IOC, client.new_client_id())
            (placed,) = await client.place([taking])
            assert isinstance(placed, Filled)
            fills = await client.fills_since(int(started * 1000))
        assert fills
        journal(config, ("service_started", {}), ts=started)
        journal(
            config,
            *[("fill", journaled(fill)) for fill in fills],
            ("service_stopping", {"reason": "test"}),
            ts=clock.wall() + 1,  # the run's clock: virtual time moves it
        )
        post = by_name(await run_checks(config, secrets, post=True, admin_url=None))
        again = by_name(await run_checks(config, secrets, post=False, admin_url=None))
    assert post["no_open_orders"].ok is True, post
    assert post["journal_flushed"].ok is True, post
    assert post["pnl_reconciled"].ok is True, post
    assert f"{len(fills)} fills matched" in post["pnl_reconciled"].detail
    # The account has paid a fee now, in the quote: still allowed, and says so.
    assert again["venue_access"].ok is True
    assert f"no fee paid in KCS in its last {len(fills)} fills" in again["venue_access"].detail
    assert (config.run_dir / DATABASE_NAME).exists()


# --- an account that pays its fees in KCS ------------------------------------------------------

MESSAGES: dict[str, Any] = json.loads((FIXTURES / "messages.json").read_text(encoding="utf-8"))
FEES: dict[str, Any] = json.loads((FIXTURES / "rest_trade_fees.json").read_text(encoding="utf-8"))
ANSWERS: dict[str, Any] = json.loads((FIXTURES / "rest_orders.json").read_text(encoding="utf-8"))


def kcs_answers() -> dict[str, Any]:
    """The venue's REST answers (the specification's examples, recorded) of an account whose
    latest fill paid its fee in KCS, by path."""
    fills = copy.deepcopy(ANSWERS["hf_fills"]["data"])
    fills["items"][0]["feeCurrency"] = "KCS"
    return {
        "/api/v2/symbols": [MESSAGES["rest_symbol_BTC-USDT"]],
        "/api/v1/trade-fees": FEES["trade_fees_response"]["data"][:1],
        "/api/v1/accounts": ANSWERS["accounts"]["data"],
        "/api/v1/hf/fills": fills,
    }


@asynccontextmanager
async def kcs_venue() -> AsyncIterator[str]:
    """A venue on loopback answering ``kcs_answers`` (404 for anything else): its URL."""
    answers = kcs_answers()

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await run_lifespan(receive, send)
            return
        data = answers.get(scope["path"])
        status, body = (
            (200, {"code": "200000", "data": data})
            if data is not None
            else (404, {"code": "404000", "msg": "Url Not Found"})
        )
        headers = [(b"content-type", b"application/json")]
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": orjson.dumps(body)})

    config = hypercorn_config("127.0.0.1", 0)
    async with trio.open_nursery() as nursery:
        asgi = cast(ASGIFramework, app)
        binds: list[str] = await nursery.start(partial(serve, asgi, config, mode="asgi"))
        yield binds[0]
        nursery.cancel_scope.cancel()


async def test_an_account_paying_fees_in_kcs_fails_the_check(
    load: Loader, autojump_clock: trio.abc.Clock
) -> None:
    async with kcs_venue() as url:
        sections = kucoin(url=url)
        sections["feeds"] = {"coins": ["BTC-USDT"]}
        sections["strategy"] = {"symbols": ["BTC-USDT"]}
        config, secrets = load(**sections)
        results = await run_checks(config, secrets, post=False, admin_url=None)
    checks = by_name(results)
    assert checks["venue_reachable"].ok is True, render(results)
    access = checks["venue_access"]
    assert access.ok is False
    assert "the account pays its fees in KCS" in access.detail
    assert "turn off 'pay fees with KCS'" in access.detail
    assert exit_code(results) == 1
