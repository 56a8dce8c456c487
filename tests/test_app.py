"""The service in-process on loopback: tree, admin endpoints, run file, journal, stop, failures."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx
import pytest
import trio

from mm.app import Service, StartupError
from mm.config import Config, Secrets
from mm.journal import DATABASE_NAME, read_events
from mm.model import PlaceOrder, Side, Tif
from mm.runfile import RUN_FILE_NAME, AlreadyRunning, RunInfo, is_locked
from mm.venues.hyperliquid.wire import new_cloid
from supervisors import SupervisorEscalation
from tests.conftest import eventually

Loader = Callable[..., tuple[Config, Secrets]]


async def test_healthz_and_status_answer(running: Service, admin: httpx.AsyncClient) -> None:
    health = await admin.get("/healthz")
    assert health.status_code == 200
    status = (await admin.get("/status")).json()
    assert status["state"] == "running"
    assert status["healthy"] is True
    assert status["config_hash"] == running.config_hash
    assert status["version"]
    children = {child["name"]: child for child in status["tree"]["children"]}
    assert list(children) == [
        "admin",
        "journal",
        "notifier",
        "venue",
        "feeds",
        "execution",
        "portfolio",
        "order-events",
        "trading",
        "health",
        "risk",
        "autonomy",
        "session",
    ]
    assert all(child["state"] == "running" for child in children.values())
    assert all(child["restarts"] == 0 for child in children.values())


async def test_metrics_export_child_state(running: Service, admin: httpx.AsyncClient) -> None:
    text = (await admin.get("/metrics")).text
    assert 'mm_child_up{child="mm/admin"} 1.0' in text
    assert 'mm_child_up{child="mm/journal"} 1.0' in text
    assert 'mm_supervisor_restarts_total{child="mm/journal"} 0.0' in text
    assert "mm_build_info{" in text


async def test_run_file_names_the_admin_url(running: Service) -> None:
    run_file = running.config.run_dir / RUN_FILE_NAME
    info = RunInfo.from_json(run_file.read_bytes())
    assert info.admin_url == running.admin_url
    assert is_locked(running.config.run_dir)


async def test_post_stop_stops_and_cleans_up(load: Loader) -> None:
    config, secrets = load()
    service = Service(config, secrets)
    with trio.fail_after(5):
        async with trio.open_nursery() as nursery:
            await nursery.start(service.run)
            async with httpx.AsyncClient(base_url=str(service.admin_url)) as client:
                reply = await client.post("/stop")
            assert reply.status_code == 202
    assert service.stop_reason == "admin POST /stop"
    assert not (config.run_dir / RUN_FILE_NAME).exists()
    assert not is_locked(config.run_dir)
    kinds = [entry.kind for entry in read_events(config.run_dir / DATABASE_NAME)]
    assert kinds[0] == "startup"  # the startup sequence runs before the service is up
    assert "service_started" in kinds
    assert "resync" in kinds  # the user stream's first sync, journaled
    assert kinds[-1] == "service_stopping"


async def test_second_service_on_the_same_run_dir_refuses(running: Service, load: Loader) -> None:
    config, secrets = load()
    with pytest.raises(AlreadyRunning, match="already running"):
        await Service(config, secrets).run()


async def test_taken_admin_port_fails_fast(load: Loader) -> None:
    listener = trio.socket.socket()
    with listener:
        await listener.bind(("127.0.0.1", 0))
        listener.listen()
        port = listener.getsockname()[1]
        config, secrets = load(admin={"port": port})
        with pytest.raises(StartupError, match=f"admin.port: cannot bind 127.0.0.1:{port}"):
            await Service(config, secrets).run()
    assert not is_locked(config.run_dir)


async def test_a_crashing_child_escalates_as_a_plain_exception(
    load: Loader, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def broken_journal(self: Any, *, task_status: Any = trio.TASK_STATUS_IGNORED) -> None:
        raise OSError("disk on fire")

    monkeypatch.setattr("mm.journal.Journal.run", broken_journal)
    config, secrets = load(supervision={"max_restarts": 2, "restart_period": 60.0})
    service = Service(config, secrets)
    with trio.fail_after(5), pytest.raises(SupervisorEscalation, match="disk on fire"):
        await service.run()
    assert service.state == "failed"
    assert not (config.run_dir / RUN_FILE_NAME).exists()
    assert not is_locked(config.run_dir)


async def test_healthz_is_503_while_a_permanent_child_is_down(
    load: Loader, monkeypatch: pytest.MonkeyPatch
) -> None:
    runs = 0
    restarted = trio.Event()

    async def journal_that_hangs_on_restart(
        self: Any, *, task_status: Any = trio.TASK_STATUS_IGNORED
    ) -> None:
        nonlocal runs
        runs += 1
        if runs > 1:
            restarted.set()
            await trio.sleep_forever()  # never ready again
        task_status.started()
        raise OSError("journal lost its disk")

    monkeypatch.setattr("mm.journal.Journal.run", journal_that_hangs_on_restart)
    config, secrets = load()
    service = Service(config, secrets)
    with trio.fail_after(5):
        async with trio.open_nursery() as nursery:
            await nursery.start(service.run)
            async with httpx.AsyncClient(base_url=str(service.admin_url)) as client:
                await restarted.wait()
                reply = await client.get("/healthz")
                status = (await client.get("/status")).json()
            service.request_stop("test finished")
    assert reply.status_code == 503
    assert reply.json()["problems"] == [
        "mm/journal is starting (last error: OSError: journal lost its disk)"
    ]
    journal = status["tree"]["children"][1]
    assert journal["restarts"] == 1
    assert journal["last_error"] == "OSError: journal lost its disk"


async def test_the_market_feed_carries_the_embedded_venues_books(
    running: Service, admin: httpx.AsyncClient
) -> None:
    bus = running.adapter.bus
    with trio.fail_after(5):
        for coin in ("BTC", "ETH"):
            await bus.wait_newer(coin, 0)
    assert running.venue is not None
    book = bus.latest("BTC")
    assert book is not None
    assert book.mid is not None
    venue_mid = running.venue.engine.mark(0)
    assert venue_mid is not None
    assert abs(book.mid / venue_mid - 1) < 0.01
    metrics = (await admin.get("/metrics")).text
    assert 'mm_feed_state{feed="market",state="healthy"} 1.0' in metrics
    assert 'mm_book_age_seconds{symbol="BTC"}' in metrics


async def test_fills_reach_the_dispatcher_and_the_journal(running: Service) -> None:
    # The service's own account trades at the embedded venue: the fill comes back through
    # the user stream, is routed by the dispatcher and journaled, once.
    adapter = running.adapter
    assert adapter.client is not None
    assert adapter.user_stream is not None
    with trio.fail_after(10):
        await adapter.user_stream.synced.wait()
        assert running.venue is not None
        mark = running.venue.engine.mark(0)
        assert mark is not None
        cross = PlaceOrder("BTC", Side.BUY, mark * 1.02, 0.001, Tif.IOC, new_cloid())
        await adapter.client.place([cross])
        await eventually(lambda: adapter.dispatcher.stats.fills > 0)
    # Not submitted through an executor (none exists yet): the fill is routed as untracked.
    assert adapter.dispatcher.stats.untracked_fills == 1
    database = running.config.run_dir / DATABASE_NAME
    await eventually(lambda: bool(read_events(database, "fill")))
    fills = read_events(database, "fill")
    assert len(fills) == 1
    assert fills[0].data["coin"] == "BTC"
    assert fills[0].data["cloid"] == cross.cloid


async def test_feed_messages_and_api_headroom_are_exported(
    running: Service, admin: httpx.AsyncClient
) -> None:
    def exported() -> bool:
        registry = running.registry
        messages = registry.get_sample_value(
            "mm_feed_messages_total", {"feed": "market", "channel": "l2Book"}
        )
        headroom = registry.get_sample_value("mm_api_headroom_ratio", {"kind": "overall"})
        return bool(messages) and headroom is not None

    await eventually(exported, within=5)
    text = (await admin.get("/metrics")).text
    assert 'mm_feed_messages_total{channel="l2Book",feed="market"}' in text
    assert 'mm_api_headroom_ratio{kind="ip"}' in text


def test_every_fill_dedup_remembers_what_the_config_says(load: Loader) -> None:
    """One key sizes all four: the fill history, the dispatcher, the position book, the day's
    PnL. A smaller one anywhere would count again a fill the others drop as a duplicate; a
    larger one is memory that grows for hours (the soak's heap)."""
    config, secrets = load(environ={"MM_FEEDS__USER__DEDUP_CAPACITY": "12345"})
    service = Service(config, secrets)
    assert service.fill_history.capacity == 12_345
    assert service.adapter.dispatcher.config.dedup_capacity == 12_345
    assert service.portfolio.positions._max_keys == 12_345
    assert service.risk.daily.capacity == 12_345
