"""The kill switch acts for real (issue 12 sections 5-6, issue 13 item 4), with the shipped
config.toml on virtual time (``tests/e2e/virtual.py``).

An acknowledged kill survives a crash; a second kill says "already tripped" and is journaled;
a monitor repeating its request is not a trip; a venue that refuses the dead-man's backstop
does not stop the cancel-all and the answer says there is no backstop; after a forced
liquidation mm shows the venue's position; a trading subtree that keeps crashing trips the
switch with every order canceled instead of taking the service down; a rearm is refused while
the condition holds (and the mode is not rearmed either) unless forced; a flatten is refused
under a tripped switch or HALT and leaves the mode alone; a dump says its path.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
import trio

from mm.app import Service
from mm.config import load_config, resolve_secrets
from mm.execution.commands import QuoteLadder
from mm.execution.reconcile import Plan
from mm.execution.slots import ExecutorSlot
from mm.journal import DATABASE_NAME, read_events
from mm.ops.autonomy import Mode, Reason, Trigger
from mm.risk.controller import Kill
from mm.risk.killswitch import KillReason
from tests.e2e.virtual import SHIPPED_CONFIG, shipped_env, wait_for

# An account that has traded $1,000,000: the venue arms its dead-man's switch (a new one is
# refused; tests/e2e/test_deadman_volume.py).
TRADED = {"sim.initial_volume_usdc": 1_000_000.0}


def build(run_dir: Path, overrides: Mapping[str, Any] | None = None) -> Service:
    env = shipped_env(run_dir, overrides)
    config = load_config(SHIPPED_CONFIG, env)
    return Service(config, resolve_secrets(config, env))


@asynccontextmanager
async def running(service: Service) -> AsyncIterator[trio.CancelScope]:
    """The service running; the scope given cancels it without a graceful stop (a crash, as
    far as the kill switch and the journal's acknowledgements go). Stopped gracefully on exit
    unless the test cancelled it."""
    async with trio.open_nursery() as nursery:
        await nursery.start(service.run)
        yield nursery.cancel_scope
        service.request_stop("test finished")


def open_orders(service: Service) -> list[Any]:
    assert service.venue is not None
    return list(service.venue.engine.open_orders(service.adapter.account))


def venue_position(service: Service, coin: str) -> float:
    """The service's signed position in ``coin`` at the venue now."""
    assert service.venue is not None
    spec = service.venue.engine.by_name[coin]
    account = service.venue.engine.account(service.adapter.account)
    return 0.0 if account is None else account.position(spec.index).szi / 10**spec.sz_decimals


def quoting(service: Service) -> bool:
    return len(open_orders(service)) >= 2


@asynccontextmanager
async def admin(service: Service) -> AsyncIterator[httpx.AsyncClient]:
    assert service.admin_url is not None
    async with httpx.AsyncClient(base_url=service.admin_url, timeout=120.0) as client:
        yield client


async def test_an_acknowledged_kill_survives_a_crash_right_after_the_answer(
    tmp_path: Path, autojump_clock: trio.abc.Clock
) -> None:
    run_dir = tmp_path / "run"
    service = build(run_dir, TRADED)
    async with running(service) as crash, admin(service) as client:
        await wait_for(lambda: quoting(service), within=45.0)
        reply = await client.post("/kill", json={"reason": "drill"})
        crash.cancel()  # no graceful stop: the process dies right after the answer
    assert reply.status_code == 200
    answer = reply.json()
    assert answer["already_tripped"] is False
    assert answer["journal_committed"] is True
    assert answer["cancel_sent"] is True
    assert answer["cancel_all"]["zero"] is True, answer
    assert answer["cancel_all"]["canceled"] >= 2
    assert answer["backstop"]["armed"] is True, answer
    assert open_orders(service) == []

    again = build(run_dir)
    async with running(again):
        status = again.status()["killswitch"]
        assert status["tripped"] is True
        assert status["reason"] == "manual"
        assert status["values"] == {"reason": "drill"}
        await trio.sleep(5.0)
        assert open_orders(again) == []  # nothing quoted while it stays tripped


async def test_a_second_kill_says_already_tripped_and_repeats_are_not_trips(
    tmp_path: Path, autojump_clock: trio.abc.Clock
) -> None:
    service = build(tmp_path / "run")
    async with running(service), admin(service) as client:
        await wait_for(lambda: quoting(service), within=45.0)
        first = (await client.post("/kill", json={"reason": "first"})).json()
        # The risk aggregator asking again and again while its condition holds.
        values = {"drawdown": 0.05, "limit": 0.02}
        for _ in range(5):
            service.killswitch.request(Kill(KillReason.MAX_DRAWDOWN, values))
            await trio.sleep(0.5)
        second = await client.post("/kill", json={"reason": "second"})
        status = service.status()["killswitch"]
    assert second.status_code == 200
    answer = second.json()
    assert answer["already_tripped"] is True
    assert answer["tripped_for"] == "manual"
    assert answer["since"] == first["since"]
    assert answer["journal_committed"] is True
    assert status["trips"] == 1
    assert status["repeats"] == 4  # the first drawdown request is recorded, the rest repeat
    checkpoints = read_events(tmp_path / "run" / DATABASE_NAME, "killswitch")
    assert checkpoints[-1].data["request"] == {"request": "manual", "values": {"reason": "second"}}
    reasons = [trip["reason"] for trip in checkpoints[-1].data["trips"]]
    assert reasons == ["manual", "max_drawdown", "manual"]


async def test_no_backstop_left_never_stops_the_cancel_and_is_said(
    tmp_path: Path, autojump_clock: trio.abc.Clock
) -> None:
    service = build(tmp_path / "run", TRADED)
    async with running(service), admin(service) as client:
        assert service.venue is not None
        engine, account = service.venue.engine, service.adapter.account
        await wait_for(lambda: quoting(service), within=45.0)
        # Earlier trips used up the day's ten scheduled-cancel triggers at the venue.
        for _ in range(10):
            now = service.venue.now_ms()
            assert engine.schedule_cancel(account, now + 5_000, now) is None
            engine.run_schedules(now + 5_000)
        await wait_for(lambda: quoting(service), within=30.0)  # quoting again
        reply = await client.post("/kill", json={"reason": "no backstop"})
        status = (await client.get("/status")).json()["killswitch"]
    answer = reply.json()
    assert answer["cancel_all"]["zero"] is True, answer
    assert answer["cancel_all"]["canceled"] >= 2
    assert open_orders(service) == []
    assert answer["backstop"]["armed"] is False
    assert "Too many scheduled cancel triggers today." in answer["backstop"]["detail"]
    assert status["backstop"] == answer["backstop"]


async def test_after_a_forced_liquidation_mm_shows_the_venues_position(
    tmp_path: Path, autojump_clock: trio.abc.Clock
) -> None:
    service = build(tmp_path / "run")
    async with running(service):
        assert service.venue is not None
        await wait_for(lambda: quoting(service), within=45.0)
        service.venue.force_position(service.adapter.account, "ETH", "0.5")
        await wait_for(lambda: service.killswitch.last_trip is not None, within=30.0)
        status = service.status()
        at_venue = venue_position(service, "ETH")
    assert status["killswitch"]["reason"] == "liquidation_detected"
    assert at_venue == pytest.approx(0.5, abs=0.1)  # the forced position, and fills since
    assert status["trading"]["symbols"]["ETH"]["position"]["position"] == pytest.approx(at_venue)
    assert service.killswitch.last_trip is not None
    assert service.killswitch.last_trip.positions is not None
    assert service.killswitch.last_trip.positions["ETH"] == pytest.approx(at_venue)
    assert open_orders(service) == []


async def test_a_slot_crashing_past_its_restart_intensity_trips_the_kill_switch(
    tmp_path: Path, autojump_clock: trio.abc.Clock, monkeypatch: pytest.MonkeyPatch
) -> None:
    service = build(tmp_path / "run")
    async with running(service):
        await wait_for(lambda: quoting(service), within=45.0)

        async def crash(self: ExecutorSlot, signal: QuoteLadder) -> Plan:
            raise RuntimeError(f"slot {self.index} broke on {signal.coin}")

        monkeypatch.setattr(ExecutorSlot, "execute", crash)
        await wait_for(lambda: service.killswitch.last_trip is not None, within=120.0)
        status = service.status()
        assert service.state == "running"  # the service stays up: feeds, admin, journal
    killswitch = status["killswitch"]
    assert killswitch["reason"] == "escalation"
    assert "exceeded the restart intensity" in killswitch["values"]["error"]
    assert open_orders(service) == []
    assert service.killswitch.last_trip is not None
    assert service.killswitch.last_trip.cancel is not None
    assert service.killswitch.last_trip.cancel.zero


async def test_rearm_is_refused_while_the_condition_holds_unless_forced(
    tmp_path: Path, autojump_clock: trio.abc.Clock
) -> None:
    service = build(tmp_path / "run")
    async with running(service), admin(service) as client:
        assert service.venue is not None
        await wait_for(lambda: quoting(service), within=45.0)
        trigger = Trigger(Reason.OPERATOR_FLATTEN, Mode.REDUCE_ONLY, {"who": "test"})
        await service.coordinator.escalate(trigger)
        # A position far past the hard limit: the position monitor would kill again at once.
        service.venue.force_position(service.adapter.account, "BTC", "1")
        await wait_for(lambda: service.killswitch.last_trip is not None, within=30.0)

        refused = await client.post("/rearm", json={"reason": "looks fine", "who": "alice"})
        assert refused.status_code == 409
        answer = refused.json()
        assert answer["refused"] is True
        blockers = {b["monitor"]: b["values"] for b in answer["blockers"]}
        assert blockers["position"]["symbol"] == "BTC"
        assert blockers["position"]["value"] > blockers["position"]["limit"]
        assert service.killswitch.switch.tripped
        assert service.coordinator.mode is Mode.REDUCE_ONLY  # the mode is not rearmed either

        body = {"reason": "I know", "who": "alice", "force": True}
        forced = await client.post("/rearm", json=body)
        assert forced.status_code == 200
        assert forced.json()["rearmed"] is True
        assert forced.json()["forced"] is True
        assert forced.json()["mode"] == "normal"
        bad = await client.post("/rearm", json={"reason": "x", "force": "yes"})
        assert bad.status_code == 400
    database = tmp_path / "run" / DATABASE_NAME
    [refusal] = read_events(database, "rearm_refused")
    assert refusal.data["who"] == "alice"
    assert "position" in [b["monitor"] for b in refusal.data["blockers"]]
    [rearm] = read_events(database, "rearm")
    assert rearm.data["forced"] is True
    assert "position" in [b["monitor"] for b in rearm.data["overridden"]]


async def test_flatten_is_refused_under_a_trip_or_halt_and_leaves_the_mode(
    tmp_path: Path, autojump_clock: trio.abc.Clock
) -> None:
    service = build(tmp_path / "run")
    async with running(service), admin(service) as client:
        await wait_for(lambda: quoting(service), within=45.0)
        await client.post("/kill", json={"reason": "stop"})
        refused = await client.post("/flatten", json={"reason": "end of day"})
        assert refused.status_code == 409
        assert "kill switch" in refused.json()["refused"]
        await trio.sleep(1.0)
        assert service.coordinator.mode is Mode.NORMAL

        await client.post("/rearm", json={"reason": "drill over", "who": "test"})
        trigger = Trigger(Reason.FLATTEN_DEADLINE_MISSED, Mode.HALT, {"seconds": 1.0})
        await service.coordinator.escalate(trigger)
        halted = await client.post("/flatten", json={"reason": "again"})
        assert halted.status_code == 409
        assert "HALT" in halted.json()["refused"]
        assert service.permissions.halted() == "the mode is HALT"

        dump = await client.post("/dump", json={"reason": "look"})
        assert dump.status_code == 200
        path = Path(dump.json()["path"])
        assert path.parent == tmp_path / "run" / "incidents"
        dumped = await trio.Path(path).read_bytes()
        assert orjson.loads(dumped)["why"] == "look"
    assert read_events(tmp_path / "run" / DATABASE_NAME, "flatten_started") == []


@pytest.mark.parametrize("at_kill", [None, 1.0], ids=["30%-lost", "all-lost-at-kill"])
async def test_a_kill_with_lost_acks_reaches_zero_at_once(
    tmp_path: Path, autojump_clock: trio.abc.Clock, at_kill: float | None
) -> None:
    """Issue 13, item 4: one lost WebSocket reply used to skip the cancel and the backstop
    (orders left for up to the venue's 30 s dead-man's switch); now every request goes over
    REST too and the kill reports the time to zero."""
    service = build(tmp_path / "run", {"sim.faults.ws_drop_post_replies": 0.3, **TRADED})
    async with running(service), admin(service) as client:
        assert service.venue is not None
        await wait_for(lambda: quoting(service), within=45.0)
        if at_kill is not None:
            service.venue.faults.update({"ws_drop_post_replies": at_kill})
        reply = await client.post("/kill", json={"reason": "lost acks"})
        assert open_orders(service) == []
    answer = reply.json()
    assert answer["cancel_all"]["zero"] is True, answer
    assert answer["cancel_all"]["seconds_to_zero"] < 2.0, answer
    assert answer["backstop"]["armed"] is True, answer
    assert answer["journal_committed"] is True
