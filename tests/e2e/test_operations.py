"""Operations end to end on the embedded simulator: force-flat under a deadline, HALT that
survives a restart until ``mm rearm``, and the drills (journal unwritable, position drift)."""

from __future__ import annotations

import datetime as dt
import sqlite3
from collections.abc import AsyncIterator
from functools import partial
from typing import Any, cast

import httpx
import pytest
import trio
from hypercorn.trio import serve
from hypercorn.typing import ASGIFramework

from mm import clock as mm_clock
from mm.app import Service
from mm.asgi import hypercorn_config
from mm.config import load_config, resolve_secrets
from mm.journal import DATABASE_NAME, read_events
from mm.model import PlaceOrder, Side, Tif
from mm.ops.autonomy import Mode
from mm.venues.hyperliquid.wire import new_cloid
from mm.venues.hyperliquid.ws import WsConnection
from tests.conftest import eventually
from tests.e2e.fast import FAST
from tests.e2e.virtual import positions_at_venue
from tests.hyperliquid_adapter import hyperliquid
from tests.ops.test_notifier import Receiver


def clock(moment: dt.datetime) -> str:
    return moment.strftime("%H:%M:%S")


def btc_track(force_flat_in_s: float, closed_after_s: float, first: str = "open") -> dict[str, Any]:
    """A UTC track for BTC: ``first`` since a minute ago, force_flat soon, closed after that."""
    now = dt.datetime.now(dt.UTC).replace(microsecond=0)
    force_flat = now + dt.timedelta(seconds=force_flat_in_s)
    schedule = [
        {"phase": first, "at": clock(now - dt.timedelta(minutes=1))},
        {"phase": "force_flat", "at": clock(force_flat)},
        {"phase": "closed", "at": clock(force_flat + dt.timedelta(seconds=closed_after_s))},
    ]
    return {"name": "btc", "symbols": ["BTC"], "schedule": schedule}


def session_toml(track: dict[str, Any]) -> str:
    """The [session] section with two tracks (TOML inline tables; the conftest writer is flat)."""

    def value(item: Any) -> str:
        if isinstance(item, str):
            return f'"{item}"'
        if isinstance(item, bool):
            return "true" if item else "false"
        if isinstance(item, list):
            return "[" + ", ".join(value(entry) for entry in item) + "]"
        if isinstance(item, dict):
            return "{ " + ", ".join(f"{k} = {value(v)}" for k, v in item.items()) + " }"
        return repr(item)

    crypto = {"name": "crypto", "symbols": ["ETH"], "always_open": True}
    return f"\n[session]\ntracks = [{value(crypto)}, {value(track)}]\n"


def service_for(write_config: Any, track: dict[str, Any] | None, **sections: Any) -> Service:
    path = write_config(**FAST, **sections)
    if track is not None:
        path.write_text(path.read_text() + session_toml(track))
    config = load_config(path, {})
    return Service(config, resolve_secrets(config, {}))


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    """A local HTTP receiver standing in for a webhook."""
    app = Receiver()
    async with trio.open_nursery() as nursery:
        config = hypercorn_config("127.0.0.1", 0)
        serving = partial(serve, cast(ASGIFramework, app), config, mode="asgi")
        binds: list[str] = await nursery.start(serving)
        app.url = binds[0]
        yield app
        nursery.cancel_scope.cancel()


async def venue_position(service: Service, coin: str) -> float:
    client = service.adapter.client
    assert client is not None
    account = await client.account_state()
    return next((p.szi for p in account.positions if p.coin == coin), 0.0)


async def buy_btc(service: Service, size: float) -> None:
    """A marketable order of our own (as an operator would send): a real fill on the account."""
    router, book = service.adapter.router, service.adapter.bus.latest("BTC")
    assert router is not None
    assert book is not None
    assert book.best_ask is not None
    order = PlaceOrder("BTC", Side.BUY, book.best_ask * 1.002, size, Tif.IOC, new_cloid())
    await router.place([order])


def open_coins(service: Service) -> set[str]:
    assert service.venue is not None
    engine, account = service.venue.engine, service.adapter.account
    return {engine.specs[order.asset].name for order in engine.open_orders(account)}


async def test_force_flat_flattens_the_position_before_the_deadline(
    write_config: Any, autojump_clock: trio.abc.Clock
) -> None:
    service = service_for(write_config, btc_track(force_flat_in_s=30, closed_after_s=90))
    async with trio.open_nursery() as nursery:
        await nursery.start(service.run)
        with trio.fail_after(120):
            await eventually(lambda: service.adapter.healthy(), within=20)
            await eventually(lambda: "BTC" in open_coins(service), within=25)
            await buy_btc(service, 0.003)
            await eventually(lambda: service.trading.positions.position("BTC") > 0.002, within=5)
            assert await venue_position(service, "BTC") > 0.002
            # FORCE_FLAT: quotes pulled, position sold down to zero within the deadline.
            gate = service.session.gate
            await eventually(lambda: gate.track_phase("btc").label == "force_flat", within=35)
            entered = trio.current_time()
            await eventually(lambda: service.flattener.last is not None, within=60)
            last = service.flattener.last
            assert last is not None
            assert last.done, last
            assert trio.current_time() - entered < 60
            assert await venue_position(service, "BTC") == 0.0
            assert "BTC" not in open_coins(service)
            # The other track keeps trading, and nothing escalated.
            await eventually(lambda: "ETH" in open_coins(service), within=15)
            assert service.coordinator.mode is Mode.NORMAL
            symbols = service.trading.status()["symbols"]
            assert symbols["BTC"]["allowed"] == "session phase force_flat"
            assert symbols["ETH"]["allowed"] == "all"
            service.request_stop("test finished")
    database = service.config.run_dir / DATABASE_NAME
    phases = [(e.data["track"], e.data["phase"]) for e in read_events(database, "phase")]
    assert ("btc", "open") in phases
    assert ("btc", "force_flat") in phases
    [done] = read_events(database, "flatten_done")
    assert done.data["done"] is True
    assert done.data["orders"] >= 1


async def test_a_missed_flatten_deadline_halts_until_rearm(
    write_config: Any, receiver: Receiver, autojump_clock: trio.abc.Clock
) -> None:
    notify = {"sinks": ["log", "webhook"], "webhook_url": f"{receiver.url}/hook"}
    # BTC is never quoted (pre_open until force_flat): only our own order moves its position.
    track = btc_track(force_flat_in_s=20, closed_after_s=8, first="pre_open")  # 8 s deadline
    service = service_for(write_config, track, notify=notify)
    async with trio.open_nursery() as nursery:
        await nursery.start(service.run)
        with trio.fail_after(120):
            assert service.venue is not None
            assert service.venue.url is not None
            await eventually(lambda: service.adapter.healthy(), within=20)
            await eventually(lambda: "ETH" in open_coins(service), within=60)  # trading
            await buy_btc(service, 0.003)
            await eventually(lambda: service.trading.positions.position("BTC") > 0.002, within=5)
            async with httpx.AsyncClient(base_url=service.venue.url) as sim:
                reply = await sim.post("/sim/faults", json={"refuse_fills": True})
                assert reply.status_code == 200
            await eventually(lambda: service.coordinator.mode is Mode.HALT, within=50)
            assert service.coordinator.autonomy.reason is not None
            assert service.coordinator.autonomy.reason.value == "flatten_deadline_missed"
            assert await venue_position(service, "BTC") > 0.002  # nothing could fill
            # HALT: no orders at all, ETH included; the critical notification went out at once.
            await eventually(lambda: not open_coins(service), within=3)

            def critical() -> list[Any]:
                return [r.body for r in receiver.requests if r.body["severity"] == "critical"]

            await eventually(lambda: any(b["kind"] == "halt" for b in critical()), within=5)
            assert any(body["kind"] == "flatten" for body in critical())
            service.request_stop("restart while halted")
    # A restart stays in HALT: no quotes until mm rearm.
    restarted = service_for(write_config, None)
    async with trio.open_nursery() as nursery:
        await nursery.start(restarted.run)
        with trio.fail_after(90):
            assert restarted.coordinator.mode is Mode.HALT
            await eventually(lambda: restarted.adapter.healthy(), within=20)
            await trio.sleep(4)
            assert not open_coins(restarted)
            async with httpx.AsyncClient(base_url=str(restarted.admin_url)) as admin:
                status = (await admin.get("/status")).json()
                assert status["mode"]["mode"] == "halt"
                body = {"reason": "flatten drill over", "who": "test"}
                assert (await admin.post("/rearm", json=body)).status_code == 200
            await eventually(lambda: restarted.coordinator.mode is Mode.NORMAL, within=5)
            await eventually(lambda: "ETH" in open_coins(restarted), within=30)
            restarted.request_stop("test finished")
    database = service.config.run_dir / DATABASE_NAME
    modes = [e.data["transition"]["mode"] for e in read_events(database, "autonomy")]
    assert modes[-2:] == ["halt", "normal"]
    evidence = read_events(database, "autonomy")[-2].data["evidence"]
    assert evidence["metrics"]
    assert evidence["recent_events"]


async def test_an_unwritable_journal_reduces_only_and_loses_nothing(
    write_config: Any, autojump_clock: trio.abc.Clock
) -> None:
    service = service_for(write_config, None, autonomy={"journal_stale_s": 2.0})
    database = service.config.run_dir / DATABASE_NAME
    async with trio.open_nursery() as nursery:
        await nursery.start(service.run)
        with trio.fail_after(120):
            await eventually(lambda: bool(open_coins(service)), within=30)
            # Another process holds the write lock: every journal write fails after its timeout.
            blocker = sqlite3.connect(database, isolation_level=None, timeout=0.1)
            blocker.execute("BEGIN EXCLUSIVE")
            try:
                await eventually(lambda: service.coordinator.mode is Mode.REDUCE_ONLY, within=30)
                assert service.coordinator.autonomy.reason is not None
                assert service.coordinator.autonomy.reason.value == "journal_stale"
                assert service.journal.lag(mm_clock.wall()) > 2.0
                await trio.sleep(2)  # more events pile up behind the lock
            finally:
                blocker.execute("ROLLBACK")
                blocker.close()
            await eventually(lambda: service.journal.lag(mm_clock.wall()) == 0.0, within=20)
            # Reduce-only holds until a rearm, even though the journal recovered.
            assert service.coordinator.mode is Mode.REDUCE_ONLY
            client = service.adapter.client
            assert client is not None
            venue_fills = await client.fills_since(0)
            service.request_stop("test finished")
    written = service.registry.get_sample_value("mm_journal_entries_total")
    rows = read_events(database)
    assert written == len(rows)
    journaled = {(e.data["tid"], e.data["oid"]) for e in read_events(database, "fill")}
    assert {(fill.tid, fill.oid) for fill in venue_fills} <= journaled
    kinds = {e.kind for e in rows}
    assert {"autonomy", "order_event", "service_stopping"} <= kinds


async def test_a_position_changed_behind_our_back_is_drift(
    write_config: Any, autojump_clock: trio.abc.Clock
) -> None:
    service = service_for(write_config, None, autonomy={"drift_grace_s": 3.0, "venue_poll_s": 0.5})
    async with trio.open_nursery() as nursery:
        await nursery.start(service.run)
        with trio.fail_after(90):
            assert service.venue is not None
            assert service.venue.url is not None
            await eventually(lambda: bool(open_coins(service)), within=30)
            held = await venue_position(service, "ETH")
            async with httpx.AsyncClient(base_url=service.venue.url) as sim:
                body = {"user": service.adapter.account, "coin": "ETH", "szi": str(held + 0.01)}
                assert (await sim.post("/sim/liquidate", json=body)).status_code == 200
            await eventually(lambda: service.coordinator.mode is Mode.REDUCE_ONLY, within=20)
            reason = service.coordinator.autonomy.reason
            assert reason is not None
            assert reason.value == "reconciliation_drift"
            values = service.coordinator.autonomy.values
            assert values["symbol"] == "ETH"
            local, venue = values["local"], values["venue"]
            assert isinstance(local, float)
            assert isinstance(venue, float)
            assert abs(venue - local) > 1e-6
            # The gap is the forced change: each side's reading is from its own moment (the
            # venue's is polled, fills land in between), so compare once no fill is in transit.
            positions = service.trading.positions

            def gap() -> float:
                return positions_at_venue(service).get("ETH", 0.0) - positions.position("ETH")

            await eventually(lambda: abs(gap() - 0.01) < 1e-6, within=10)
            assert service.killswitch.switch.tripped is False  # small: drift, not liquidation
            service.request_stop("test finished")


def feed_sockets(service: Service) -> tuple[WsConnection, WsConnection]:
    """The adapter's two WebSocket connections: the market feed's and the user stream's."""
    market, client = hyperliquid(service).market_ws, hyperliquid(service).client
    assert market is not None
    assert client is not None
    assert client.ws is not None
    return market, client.ws


def both_feeds_up(service: Service, connects_before: tuple[int, int] = (0, 0)) -> bool:
    """Both feed sockets connected (each past ``connects_before`` successful connects), and the
    simulator holding exactly those two open: nothing is still reconnecting or closing."""
    assert service.venue is not None
    sockets = feed_sockets(service)
    return len(service.venue.sessions) == 2 and all(
        ws.connected and ws.health.connects > before
        for ws, before in zip(sockets, connects_before, strict=True)
    )


async def test_feed_reconnect_flapping_reduces_only(
    write_config: Any, autojump_clock: trio.abc.Clock
) -> None:
    service = service_for(write_config, None, autonomy={"flapping_reconnects": 3})
    async with trio.open_nursery() as nursery:
        await nursery.start(service.run)
        with trio.fail_after(90):
            assert service.venue is not None
            assert service.venue.url is not None
            await eventually(lambda: service.adapter.healthy(), within=20)
            await eventually(lambda: both_feeds_up(service), within=20)
            async with httpx.AsyncClient(base_url=service.venue.url) as sim:
                for _ in range(3):  # both feeds drop each time: one venue disconnect
                    market, user = feed_sockets(service)
                    connects = (market.health.connects, user.health.connects)
                    reply = await sim.post("/sim/disconnect")
                    assert reply.json()["closed"] == 2
                    # Both sockets back (a new connect each), not merely the service healthy
                    # again: books stay fresh while the market socket is still reconnecting.
                    await eventually(partial(both_feeds_up, service, connects), within=20)
            market, user = feed_sockets(service)
            assert market.reconnects >= 2
            assert user.reconnects >= 2
            await eventually(lambda: service.coordinator.mode is Mode.REDUCE_ONLY, within=10)
            reason = service.coordinator.autonomy.reason
            assert reason is not None
            assert reason.value == "feed_reconnect_flapping"
            assert service.monitor.readings.reconnects >= 3
            service.request_stop("test finished")
