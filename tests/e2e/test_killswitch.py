"""The kill switch end to end on the embedded simulator: trip, orders gone, restart, rearm."""

from __future__ import annotations

from typing import Any

import httpx
import orjson
import trio

from mm.app import Service
from mm.config import load_config, resolve_secrets
from mm.journal import DATABASE_NAME, read_events
from tests.conftest import eventually
from tests.e2e.fast import FAST


def service_for(write_config: Any) -> Service:
    config = load_config(write_config(**FAST), {})
    return Service(config, resolve_secrets(config, {}))


async def test_kill_cancels_everything_persists_and_rearm_resumes(write_config: Any) -> None:
    service = service_for(write_config)
    with trio.fail_after(90):
        async with trio.open_nursery() as nursery:
            await nursery.start(service.run)
            assert service.venue is not None
            engine, account = service.venue.engine, service.adapter.account
            await eventually(lambda: bool(engine.open_orders(account)), within=45)
            async with httpx.AsyncClient(base_url=str(service.admin_url)) as admin:
                asked_at = trio.current_time()
                reply = await admin.post("/kill", json={"reason": "drill"})
                # Answered once the checkpoint is committed and the venue shows no open order.
                assert reply.status_code == 200
                answer = reply.json()
                assert answer["journal_committed"] is True
                assert answer["cancel_all"]["zero"] is True, answer
                assert answer["cancel_all"]["seconds_to_zero"] <= 1.0
                assert engine.open_orders(account) == []
                assert trio.current_time() - asked_at <= 2.0
                # Feeds and admin keep running; trading stays stopped.
                await eventually(lambda: bool(service.killswitch.incidents), within=5)
                dump = orjson.loads(service.killswitch.incidents[0].read_bytes())
                assert dump["killswitch"]["trips"][0]["reason"] == "manual"
                for part in ("trading", "quotes", "risk", "open_orders", "recent_errors"):
                    assert part in dump, part
                btc_quote = dump["quotes"]["BTC"]
                assert "inventory" in btc_quote
                assert any(key.startswith("spread_") for key in btc_quote)  # spread factors
                assert (await admin.get("/healthz")).status_code == 200
                status = (await admin.get("/status")).json()
                assert status["killswitch"]["tripped"] is True
                assert status["killswitch"]["reason"] == "manual"
                labels = {"reason": "manual"}
                assert service.registry.get_sample_value("mm_kill_switch_tripped", labels) == 1.0
                assert service.adapter.bus.latest("BTC") is not None
                await trio.sleep(1.5)
                assert engine.open_orders(account) == []  # nothing new while tripped
                assert (await admin.post("/rearm", json={})).status_code == 400  # needs a why
            service.request_stop("restart with the switch tripped")
    database = service.config.run_dir / DATABASE_NAME
    assert read_events(database, "killswitch")[-1].data["trips"]
    # The journal holds the boot config (no secrets in it) and every order event.
    assert read_events(database, "config")[0].data["strategy"]["symbols"] == ["BTC", "ETH"]
    events = {entry.data["event"] for entry in read_events(database, "order_event")}
    assert "OrderAccepted" in events

    # A restart keeps the switch tripped; a rearm resumes quoting.
    again = Service(service.config, resolve_secrets(service.config, {}))
    with trio.fail_after(90):
        async with trio.open_nursery() as nursery:
            await nursery.start(again.run)
            assert again.venue is not None
            engine, account = again.venue.engine, again.adapter.account

            def tripped() -> bool:
                return again.killswitch.switch.tripped

            assert tripped()
            await trio.sleep(3)
            assert engine.open_orders(account) == []
            async with httpx.AsyncClient(base_url=str(again.admin_url)) as admin:
                reply = await admin.post("/rearm", json={"reason": "drill over", "who": "test"})
                assert reply.status_code == 200
                assert reply.json()["rearmed"] is True
            await eventually(lambda: bool(engine.open_orders(account)), within=45)
            assert not tripped()
            again.request_stop("test finished")
    rearms = read_events(database, "rearm")
    assert [(r.data["who"], r.data["why"]) for r in rearms] == [("test", "drill over")]
