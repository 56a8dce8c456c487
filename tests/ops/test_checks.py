"""Pre-flight and post-flight checks: the pure helpers, then against real services and venues
on loopback (a running mm, a stopped one, a standalone simulator)."""

from __future__ import annotations

import copy
import sqlite3
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import attrs
import httpx
import pytest
import trio

from mm.app import Service
from mm.config import Config, Secrets, resolve_secrets
from mm.journal import DATABASE_NAME, Entry, open_database, write_batch
from mm.model import Fill, PlaceOrder, Side, Tif
from mm.ops.checks import (
    CheckResult,
    FillKey,
    exit_code,
    positions_match,
    postflight,
    preflight,
    reconcile_fills,
    render,
    run_checks,
)
from mm.runfile import is_locked
from mm.venues.hyperliquid.wire import new_cloid
from mm.venues.sim.venue import SimVenue
from tests.conftest import eventually
from tests.ids import hl_oid, hl_tid

Loader = Callable[..., tuple[Config, Secrets]]

PREFLIGHT = [
    "config",
    "journal_writable",
    "disk_space",
    "kill_switch",
    "venue_reachable",
    "venue_access",
    "feeds_receiving",
    "positions_match",
    "api_headroom",
    "dead_mans_switch",
]
POSTFLIGHT = ["no_open_orders", "journal_flushed", "pnl_reconciled"]


# --- helpers -----------------------------------------------------------------------------------


def by_name(results: Sequence[CheckResult]) -> dict[str, CheckResult]:
    return {result.name: result for result in results}


def assert_no_secret(results: Sequence[CheckResult], secrets: Secrets) -> None:
    assert secrets.venue_key is not None
    key = secrets.venue_key.reveal()
    text = render(results)
    assert key not in text
    assert key.removeprefix("0x") not in text


def fill(tid: int, oid: int, closed_pnl: float = 0.0, fee: float = 0.01, time_ms: int = 1) -> Fill:
    return Fill(
        coin="BTC",
        side=Side.BUY,
        px=100.0,
        sz=0.1,
        time_ms=time_ms,
        oid=hl_oid(oid),
        tid=hl_tid(tid),
        cloid=None,
        fee=fee,
        fee_token="USDC",
        crossed=False,
        start_position=0.0,
        direction="Open Long",
        closed_pnl=closed_pnl,
        hash="0x0",
    )


def key(tid: int, oid: int) -> FillKey:
    return (hl_tid(tid), hl_oid(oid))


def journaled(f: Fill) -> dict[str, Any]:
    """A fill as the service journals it."""
    return attrs.asdict(f, value_serializer=lambda _i, _f, v: v.value if isinstance(v, Side) else v)


def journal(config: Config, *entries: tuple[str, dict[str, Any]], ts: float | None = None) -> Path:
    path = config.run_dir / DATABASE_NAME
    conn = open_database(path)
    try:
        now = time.time() if ts is None else ts
        write_batch(
            conn, [Entry(now + i * 0.001, kind, data) for i, (kind, data) in enumerate(entries)]
        )
    finally:
        conn.close()
    return path


def _secrets(service: Service) -> Secrets:
    """The running fixture's service was built by ``load()``: its secrets resolve again."""
    return resolve_secrets(service.config, {})


async def check_running(service: Service, *, post: bool) -> list[CheckResult]:
    return await run_checks(
        service.config, _secrets(service), post=post, admin_url=service.admin_url
    )


async def get_status(service: Service) -> dict[str, Any]:
    async with httpx.AsyncClient(timeout=5.0) as client:
        reply = await client.get(f"{service.admin_url}/status")
        status: dict[str, Any] = reply.json()
    return status


async def synced(service: Service) -> None:
    adapter = service.adapter
    await eventually(lambda: adapter.user_stream is not None and adapter.client is not None)
    assert adapter.user_stream is not None
    with trio.fail_after(10):
        await adapter.user_stream.synced.wait()
    await eventually(lambda: bool(service.trading.status()["in_sync"]))


def mark(service: Service) -> float:
    assert service.venue is not None
    price = service.venue.engine.mark(0)  # BTC
    assert price is not None
    return price


async def take_a_fill(service: Service) -> None:
    """Cross the BTC book with an IOC buy; wait until mm's position shows it."""
    client = service.adapter.client
    assert client is not None
    await client.place(
        [PlaceOrder("BTC", Side.BUY, mark(service) * 1.02, 0.001, Tif.IOC, new_cloid())]
    )
    await eventually(lambda: service.trading.positions.position("BTC") != 0)


async def rest_an_order(service: Service) -> None:
    """A post-only BUY far below the mid: it rests at the venue."""
    client = service.adapter.client
    assert client is not None
    assert service.venue is not None
    venue, account = service.venue, service.adapter.account
    order = PlaceOrder("BTC", Side.BUY, round(mark(service) * 0.9), 0.001, Tif.ALO, new_cloid())
    await client.place([order])
    await eventually(lambda: bool(venue.engine.open_orders(account)))


async def stopped(service: Service, nursery_done: trio.Event) -> None:
    service.request_stop("test")
    with trio.fail_after(10):
        await nursery_done.wait()
    assert not is_locked(service.config.run_dir)


# --- pure helpers ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("local", "venue", "expected"),
    [
        ({}, {}, []),
        ({"BTC": 0.5, "ETH": -1.0}, {"BTC": 0.5, "ETH": -1.0}, []),
        ({"BTC": 0.0}, {}, []),  # missing counts as flat
        ({"BTC": 1.0}, {"BTC": 1.0 + 1e-12}, []),  # within the tolerance
        ({"BTC": 1.0}, {}, ["BTC: mm 1, venue 0"]),
        ({}, {"SOL": -2.5}, ["SOL: mm 0, venue -2.5"]),
        ({"BTC": 1.0, "ETH": 2.0}, {"BTC": -1.0, "ETH": 2.0}, ["BTC: mm 1, venue -1"]),
    ],
)
def test_positions_match(
    local: Mapping[str, float], venue: Mapping[str, float], expected: list[str]
) -> None:
    assert positions_match(local, venue) == expected


def test_positions_match_tolerance_is_configurable() -> None:
    assert positions_match({"BTC": 1.0}, {"BTC": 1.001}, tolerance=0.01) == []
    assert positions_match({"BTC": 1.0}, {"BTC": 1.1}, tolerance=0.01) == ["BTC: mm 1, venue 1.1"]


def test_reconcile_fills_all_matched() -> None:
    venue = [fill(1, 10, closed_pnl=2.0, fee=0.5), fill(2, 11, fee=0.25)]
    result = reconcile_fills([journaled(f) for f in venue], venue)
    assert result.ok
    assert result.matched == 2
    assert result.missing_in_journal == []
    assert result.missing_at_venue == []
    assert result.journal_net_pnl == pytest.approx(1.25)
    assert result.venue_net_pnl == pytest.approx(1.25)


@pytest.mark.parametrize(
    ("journal_fills", "venue_fills", "missing_in_journal", "missing_at_venue", "matched"),
    [
        ([fill(1, 10)], [fill(1, 10), fill(2, 11)], [key(2, 11)], [], 1),
        ([fill(1, 10), fill(3, 12)], [fill(1, 10)], [], [key(3, 12)], 1),
        ([fill(1, 10)], [fill(1, 11)], [key(1, 11)], [key(1, 10)], 0),  # same tid, other order
        ([], [fill(4, 13)], [key(4, 13)], [], 0),
    ],
)
def test_reconcile_fills_names_the_missing_fills(
    journal_fills: list[Fill],
    venue_fills: list[Fill],
    missing_in_journal: list[FillKey],
    missing_at_venue: list[FillKey],
    matched: int,
) -> None:
    result = reconcile_fills([journaled(f) for f in journal_fills], venue_fills)
    assert not result.ok
    assert result.missing_in_journal == missing_in_journal
    assert result.missing_at_venue == missing_at_venue
    assert result.matched == matched


def test_reconcile_fills_reads_a_journal_written_before_ids_were_qualified() -> None:
    """A fill journaled by an mm that knew only Hyperliquid holds its bare integer ids: it is
    the venue's fill of those ids, not one missing on either side."""
    old = {**journaled(fill(1, 10, closed_pnl=1.0)), "tid": 1, "oid": 10}
    result = reconcile_fills([old], [fill(1, 10, closed_pnl=1.0)])
    assert (result.ok, result.matched) == (True, 1)


def test_reconcile_fills_catches_a_pnl_difference_on_the_same_fills() -> None:
    venue = [fill(1, 10, closed_pnl=5.0, fee=0.1)]
    journal_fills = [journaled(fill(1, 10, closed_pnl=4.0, fee=0.1))]
    result = reconcile_fills(journal_fills, venue)
    assert result.matched == 1
    assert not result.missing_in_journal
    assert not result.missing_at_venue
    assert not result.ok
    assert result.journal_net_pnl == pytest.approx(3.9)
    assert result.venue_net_pnl == pytest.approx(4.9)


def test_reconcile_fills_counts_a_repeated_fill_once() -> None:
    venue = [fill(1, 10, closed_pnl=1.0, fee=0.0)]
    twice = [journaled(venue[0]), journaled(venue[0])]
    result = reconcile_fills(twice, venue + venue)
    assert result.ok
    assert result.matched == 1
    assert result.journal_net_pnl == pytest.approx(1.0)


@pytest.mark.parametrize(
    ("oks", "code", "verdict"),
    [
        ([], 0, "OK: 0 checks"),
        ([True, True], 0, "OK: 2 checks, 2 passed, 0 failed, 0 skipped"),
        ([True, None], 0, "OK: 2 checks, 1 passed, 0 failed, 1 skipped"),
        ([True, False, None], 1, "FAILED: 3 checks, 1 passed, 1 failed, 1 skipped"),
    ],
)
def test_render_and_exit_code(oks: list[bool | None], code: int, verdict: str) -> None:
    results = [CheckResult(f"check_{i}", ok, f"detail {i}") for i, ok in enumerate(oks)]
    lines = render(results).splitlines()
    assert exit_code(results) == code
    assert lines[-1].startswith(verdict)
    assert len(lines) == len(results) + 1
    labels = {True: "PASS", False: "FAIL", None: "SKIP"}
    for line, result in zip(lines, results, strict=False):
        assert line.split() == [labels[result.ok], result.name, "detail", result.name[-1]]


def test_a_warning_is_neither_a_pass_nor_a_failure() -> None:
    results = [
        CheckResult("dead_mans_switch", True, "UNAVAILABLE: new account", warning=True),
        CheckResult("config", True, "valid"),
    ]
    lines = render(results).splitlines()
    assert lines[0].split()[:2] == ["WARN", "dead_mans_switch"]
    assert lines[-1] == "OK: 2 checks, 1 passed, 1 warning, 0 failed, 0 skipped"
    assert exit_code(results) == 0


# --- pre-flight --------------------------------------------------------------------------------


async def test_preflight_against_a_running_service_passes(running: Service) -> None:
    await synced(running)
    await take_a_fill(running)  # a position: mm and the venue must agree on it
    await trio.sleep(1.0)
    results = await check_running(running, post=False)
    assert [r.name for r in results] == PREFLIGHT
    assert all(r.ok is True for r in results), render(results)
    assert exit_code(results) == 0
    checks = by_name(results)
    assert "BTC 0.001" in checks["positions_match"].detail
    assert "from the running mm" in checks["kill_switch"].detail
    # A new account: the venue would refuse the dead-man's switch, a warning, not a failure.
    assert checks["dead_mans_switch"].label == "WARN"
    assert "UNAVAILABLE" in checks["dead_mans_switch"].detail
    assert "traded $1,000,000" in checks["dead_mans_switch"].detail
    assert_no_secret(results, _secrets(running))

    # The same document with the autonomy mode at HALT: the kill-switch gate closes.
    halted = copy.deepcopy(await get_status(running))
    halted["mode"]["mode"], halted["mode"]["reason"] = "halt", "daily_loss"
    checks = by_name(await preflight(running.config, _secrets(running), status=halted))
    assert checks["kill_switch"].ok is False
    assert "HALT (daily_loss)" in checks["kill_switch"].detail
    assert "mm rearm" in checks["kill_switch"].detail


async def test_preflight_without_a_service_starts_the_embedded_venue(load: Loader) -> None:
    config, secrets = load()
    results = await run_checks(config, secrets, post=False, admin_url=None)
    assert [r.name for r in results] == PREFLIGHT
    checks = by_name(results)
    skipped = checks.pop("positions_match")
    assert skipped.ok is None
    assert "starts flat" in skipped.detail
    assert all(r.ok is True for r in checks.values()), render(results)
    assert "embedded venue started" in checks["venue_reachable"].detail
    assert "books received for BTC, ETH" in checks["feeds_receiving"].detail
    assert checks["dead_mans_switch"].label == "WARN"
    assert "this one has traded $0.00" in checks["dead_mans_switch"].detail
    assert exit_code(results) == 0
    assert (config.run_dir / DATABASE_NAME).exists()  # journal_writable created it
    assert_no_secret(results, secrets)


async def test_a_tripped_kill_switch_fails_preflight(running: Service) -> None:
    await synced(running)
    async with httpx.AsyncClient(base_url=str(running.admin_url), timeout=5.0) as admin:
        reply = await admin.post("/kill", json={"reason": "test"})
        assert reply.status_code < 300
        await eventually(lambda: running.killswitch.switch.tripped)
    status = await get_status(running)
    assert status["killswitch"]["tripped"]
    results = await check_running(running, post=False)
    checks = by_name(results)
    assert checks["kill_switch"].ok is False
    assert "manual" in checks["kill_switch"].detail
    assert "test" in checks["kill_switch"].detail
    assert "mm rearm" in checks["kill_switch"].detail
    assert exit_code(results) == 1


async def test_a_kill_switch_tripped_before_the_stop_fails_preflight_from_the_journal(
    load: Loader,
) -> None:
    config, secrets = load()
    service = Service(config, secrets)
    done = trio.Event()
    async with trio.open_nursery() as nursery:

        async def run() -> None:
            await service.run()
            done.set()

        nursery.start_soon(run)
        await eventually(lambda: service.state == "running")
        await service.kill("test before stop")
        await eventually(lambda: service.killswitch.switch.tripped)
        await trio.sleep(0.2)  # the checkpoint goes to the journal
        await stopped(service, done)
    checks = by_name(await preflight(config, secrets, status=None))
    assert checks["kill_switch"].ok is False
    assert "manual" in checks["kill_switch"].detail
    assert "restored tripped when mm starts" in checks["kill_switch"].detail


@pytest.mark.parametrize(("mode", "ok"), [("halt", False), ("reduce_only", True), ("normal", True)])
async def test_the_journaled_autonomy_mode_halt_fails_preflight(
    load: Loader, mode: str, ok: bool
) -> None:
    config, secrets = load()
    checkpoint = {"mode": mode, "reason": "daily_loss", "since": time.time(), "values": {}}
    journal(config, ("autonomy", {"checkpoint": checkpoint}))
    checks = by_name(await preflight(config, secrets, status=None))
    assert checks["kill_switch"].ok is ok
    if not ok:
        assert "HALT (daily_loss)" in checks["kill_switch"].detail
        assert "mm rearm" in checks["kill_switch"].detail


async def test_a_locked_journal_fails_journal_writable(load: Loader) -> None:
    config, secrets = load()
    path = config.run_dir / DATABASE_NAME
    open_database(path).close()
    holder = sqlite3.connect(path, isolation_level=None)
    try:
        holder.execute("BEGIN EXCLUSIVE")
        started = time.monotonic()
        checks = by_name(await preflight(config, secrets, status=None, journal_busy_timeout_s=0.2))
        assert time.monotonic() - started < 5
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    assert checks["journal_writable"].ok is False
    assert "locked" in checks["journal_writable"].detail
    assert checks["disk_space"].ok is True  # only the journal failed


async def test_too_little_disk_space_fails(load: Loader) -> None:
    config, secrets = load()
    results = await preflight(config, secrets, status=None, min_free_mib=1e12)
    checks = by_name(results)
    assert checks["disk_space"].ok is False
    assert "minimum 1,000,000,000,000 MiB" in checks["disk_space"].detail
    assert exit_code(results) == 1


async def test_an_unreachable_venue_fails_without_crashing(load: Loader) -> None:
    config, secrets = load(venue={"url": "http://127.0.0.1:1"})
    with trio.fail_after(20):
        results = await run_checks(config, secrets, post=False, admin_url=None)
    checks = by_name(results)
    assert [r.name for r in results] == PREFLIGHT
    assert checks["venue_reachable"].ok is False
    assert "127.0.0.1:1" in checks["venue_reachable"].detail
    for name in ("feeds_receiving", "positions_match", "api_headroom", "dead_mans_switch"):
        assert checks[name].ok is None
        assert "not reachable" in checks[name].detail
    post = by_name(await run_checks(config, secrets, post=True, admin_url=None))
    assert post["no_open_orders"].ok is False


async def test_an_admin_that_does_not_answer_is_a_failure(load: Loader) -> None:
    config, secrets = load()
    results = await run_checks(config, secrets, post=False, admin_url="http://127.0.0.1:1")
    assert by_name(results)["service_status"].ok is False
    assert exit_code(results) == 1


async def test_the_signing_key_never_appears_in_the_output(load: Loader) -> None:
    config, secrets = load()
    assert secrets.venue_key is not None
    key = secrets.venue_key.reveal()
    # The key in the run_dir's name: every detail that names a path would show it.
    config = attrs.evolve(config, service=attrs.evolve(config.service, run_dir=f"run-{key}"))
    results = await preflight(config, secrets, status=None)
    results += await postflight(config, secrets, status=None)
    text = render(results)
    assert key not in text
    assert "run-***" in text


# --- against a venue with no mm running (a real URL) -------------------------------------------


async def test_with_a_configured_venue_and_no_service_the_journal_is_compared(
    load: Loader,
) -> None:
    config, secrets = load()
    async with trio.open_nursery() as nursery:
        sim = SimVenue(config.sim)
        await nursery.start(sim.run)
        assert sim.url is not None
        config = attrs.evolve(config, venue=attrs.evolve(config.venue, url=sim.url))
        started = time.time() - 5
        # A fill journaled during the run that the venue never made, and one after the stop
        # (outside the run: not compared).
        ghost = journaled(fill(99, 999, closed_pnl=1.0, time_ms=int(started * 1000) + 1))
        later = journaled(fill(98, 998, time_ms=int(time.time() * 1000)))
        journal(
            config,
            ("service_started", {}),
            ("fill", ghost),
            ("fill", later),
            ("positions", {"positions": {"BTC": 0.001, "ETH": 0.0}}),
            ("service_stopping", {"reason": "test"}),
            ts=started,
        )
        pre = by_name(await preflight(config, secrets, status=None))
        post = by_name(await postflight(config, secrets, status=None))
        nursery.cancel_scope.cancel()
    assert pre["venue_reachable"].ok is True
    assert "embedded" not in pre["venue_reachable"].detail
    assert pre["feeds_receiving"].ok is True
    assert pre["positions_match"].ok is False  # the journal says long, the venue is flat
    assert "BTC: mm 0.001, venue 0" in pre["positions_match"].detail
    assert post["no_open_orders"].ok is True
    assert post["journal_flushed"].ok is True
    assert post["pnl_reconciled"].ok is False  # a journaled fill the venue never made
    assert (
        f"unknown to the venue: tid {hl_tid(99)}/oid {hl_oid(999)}" in post["pnl_reconciled"].detail
    )
    assert f"tid {hl_tid(98)}/" not in post["pnl_reconciled"].detail


# --- post-flight -------------------------------------------------------------------------------


async def test_postflight_right_after_a_kill_passes(running: Service) -> None:
    await synced(running)
    await take_a_fill(running)
    await rest_an_order(running)
    assert running.venue is not None
    venue, account = running.venue, running.adapter.account
    async with httpx.AsyncClient(base_url=str(running.admin_url), timeout=5.0) as admin:
        assert (await admin.post("/kill", json={"reason": "test"})).status_code < 300
    await eventually(lambda: running.killswitch.switch.tripped)
    await eventually(lambda: not venue.engine.open_orders(account))  # canceled by the kill
    results = await check_running(running, post=True)
    assert [r.name for r in results] == POSTFLIGHT
    checks = by_name(results)
    assert checks["no_open_orders"].ok is True, render(results)
    assert checks["pnl_reconciled"].ok is True, render(results)
    assert "1 fills matched" in checks["pnl_reconciled"].detail
    assert_no_secret(results, _secrets(running))


async def test_postflight_with_an_open_order_at_the_venue_fails(running: Service) -> None:
    await synced(running)
    await rest_an_order(running)
    results = await check_running(running, post=True)
    checks = by_name(results)
    assert checks["no_open_orders"].ok is False
    assert "1 open at the venue: BTC buy 0.001@" in checks["no_open_orders"].detail
    assert exit_code(results) == 1


async def test_postflight_after_the_service_stopped(load: Loader) -> None:
    config, secrets = load()
    service = Service(config, secrets)
    done = trio.Event()
    async with trio.open_nursery() as nursery:

        async def run() -> None:
            await service.run()
            done.set()

        nursery.start_soon(run)
        await synced(service)
        await take_a_fill(service)
        await stopped(service, done)
    results = await run_checks(config, secrets, post=True, admin_url=None)
    checks = by_name(results)
    assert checks["journal_flushed"].ok is True, render(results)
    assert "stopped cleanly" in checks["journal_flushed"].detail
    for name in ("no_open_orders", "pnl_reconciled"):
        assert checks[name].ok is None
        assert "lives only inside a running mm" in checks[name].detail
    assert exit_code(results) == 0
    assert_no_secret(results, secrets)


async def test_postflight_after_a_crash_fails_journal_flushed(load: Loader) -> None:
    config, secrets = load()
    journal(config, ("service_stopping", {}), ("service_started", {}))  # no stop after the start
    checks = by_name(await postflight(config, secrets, status=None))
    assert checks["journal_flushed"].ok is False
    assert "journaled no stop" in checks["journal_flushed"].detail
