"""The admin ASGI app: routes, health codes, bearer-token checks and response redaction."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import attrs
import httpx
import pytest
import trio
import trio.testing
from prometheus_client import CollectorRegistry, Counter

from mm.admin import COMMAND_WAIT_S, AdminApp, AdminContext, Answer
from mm.secrets import Redactor, Secret

TOKEN = "s3cret-token-0123456789"


class Fixture:
    def __init__(self, token: Secret | None = None) -> None:
        self.problem_list: list[str] = []
        self.stops: list[str] = []
        self.status_doc: dict[str, Any] = {"service": "mm", "tree": {"name": "mm"}}
        self.registry = CollectorRegistry()
        Counter("mm_test_events", "Events for the test.", registry=self.registry).inc(3)
        redact = Redactor([token] if token else [])
        self.app = AdminApp(
            AdminContext(
                status=lambda: self.status_doc,
                problems=lambda: self.problem_list,
                registry=self.registry,
                request_stop=self.stops.append,
                token=token,
                redact=redact,
            )
        )


async def client_for(fixture: Fixture) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=fixture.app)
    async with httpx.AsyncClient(transport=transport, base_url="http://admin") as client:
        yield client


@pytest.fixture
def open_fixture() -> Fixture:
    return Fixture()


@pytest.fixture
def guarded_fixture() -> Fixture:
    return Fixture(Secret(TOKEN))


@pytest.fixture
async def open_client(open_fixture: Fixture) -> AsyncIterator[httpx.AsyncClient]:
    async for client in client_for(open_fixture):
        yield client


@pytest.fixture
async def guarded_client(guarded_fixture: Fixture) -> AsyncIterator[httpx.AsyncClient]:
    async for client in client_for(guarded_fixture):
        yield client


async def test_healthz_is_200_when_no_problems(open_client: httpx.AsyncClient) -> None:
    reply = await open_client.get("/healthz")
    assert reply.status_code == 200
    assert reply.json() == {"status": "ok"}


async def test_healthz_is_503_with_reasons(
    open_fixture: Fixture, open_client: httpx.AsyncClient
) -> None:
    open_fixture.problem_list.append("mm/journal is backing_off")
    reply = await open_client.get("/healthz")
    assert reply.status_code == 503
    assert reply.json() == {"status": "unhealthy", "problems": ["mm/journal is backing_off"]}


async def test_status_serves_the_status_document(
    open_fixture: Fixture, open_client: httpx.AsyncClient
) -> None:
    open_fixture.status_doc["uptime_seconds"] = 12.5
    reply = await open_client.get("/status")
    assert reply.status_code == 200
    assert reply.headers["content-type"] == "application/json"
    assert reply.json() == open_fixture.status_doc


async def test_metrics_serves_prometheus_text(open_client: httpx.AsyncClient) -> None:
    reply = await open_client.get("/metrics")
    assert reply.status_code == 200
    assert reply.headers["content-type"].startswith("text/plain; version=0.0.4")
    assert "mm_test_events_total 3.0" in reply.text


async def test_stop_without_token_configured(
    open_fixture: Fixture, open_client: httpx.AsyncClient
) -> None:
    reply = await open_client.post("/stop")
    assert reply.status_code == 202
    assert open_fixture.stops == ["admin POST /stop"]


@pytest.mark.parametrize(
    "headers",
    [{}, {"authorization": "Bearer wrong-token-000000000"}, {"authorization": TOKEN}],
    ids=["missing", "wrong", "not-bearer"],
)
async def test_post_needs_the_bearer_token(
    guarded_fixture: Fixture, guarded_client: httpx.AsyncClient, headers: dict[str, str]
) -> None:
    reply = await guarded_client.post("/stop", headers=headers)
    assert reply.status_code == 401
    assert reply.headers["www-authenticate"].startswith("Bearer")
    assert guarded_fixture.stops == []


async def test_post_with_the_token_is_accepted(
    guarded_fixture: Fixture, guarded_client: httpx.AsyncClient
) -> None:
    reply = await guarded_client.post("/stop", headers={"authorization": f"Bearer {TOKEN}"})
    assert reply.status_code == 202
    assert guarded_fixture.stops == ["admin POST /stop"]


async def test_get_endpoints_stay_open_with_a_token(guarded_client: httpx.AsyncClient) -> None:
    assert (await guarded_client.get("/healthz")).status_code == 200
    assert (await guarded_client.get("/metrics")).status_code == 200


async def test_unknown_path_and_wrong_method(
    open_fixture: Fixture, open_client: httpx.AsyncClient
) -> None:
    assert (await open_client.get("/nope")).status_code == 404
    assert (await open_client.get("/stop")).status_code == 405
    assert (await open_client.post("/status")).status_code == 405
    assert open_fixture.stops == []


async def test_responses_are_redacted(
    guarded_fixture: Fixture, guarded_client: httpx.AsyncClient
) -> None:
    guarded_fixture.status_doc["service"] = f"echo-{TOKEN}"
    guarded_fixture.problem_list.append(f"leaked {TOKEN}")
    status = await guarded_client.get("/status")
    health = await guarded_client.get("/healthz")
    for reply in (status, health):
        assert TOKEN not in reply.text
        assert "***" in reply.text


class Commands:
    """The service's side of the operator's commands: records the calls, answers as told."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, ...]] = []
        self.answer = Answer(200, {"done": True})
        self.never = False  # the service never gets to an outcome

    async def _answer(self, *call: str) -> Answer:
        self.calls.append(call)
        if self.never:
            await trio.sleep_forever()
        return self.answer

    async def kill(self, reason: str) -> Answer:
        return await self._answer("kill", reason)

    async def rearm(self, who: str, why: str, force: bool) -> Answer:
        return await self._answer("rearm", who, why, str(force))

    async def dump(self, why: str) -> Answer:
        return await self._answer("dump", why)

    async def flatten(self, who: str, why: str) -> Answer:
        return await self._answer("flatten", who, why)


@pytest.fixture
async def commanded() -> AsyncIterator[tuple[Commands, httpx.AsyncClient]]:
    commands = Commands()
    fixture = Fixture()
    context = attrs.evolve(
        fixture.app._context,
        kill=commands.kill,
        rearm=commands.rearm,
        dump=commands.dump,
        flatten=commands.flatten,
    )
    fixture.app = AdminApp(context)
    async for client in client_for(fixture):
        yield commands, client


async def test_a_command_is_answered_with_its_outcome(
    commanded: tuple[Commands, httpx.AsyncClient],
) -> None:
    commands, client = commanded
    commands.answer = Answer(409, {"refused": "the kill switch is tripped"})
    reply = await client.post("/flatten", json={"reason": "eod", "who": "alice"})
    assert reply.status_code == 409
    assert reply.json() == {"refused": "the kill switch is tripped"}
    commands.answer = Answer(200, {"path": "/run/incidents/incident-1.json"})
    assert (await client.post("/dump", json={})).json()["path"].endswith("incident-1.json")
    await client.post("/kill", json={"reason": "drill"})
    await client.post("/kill", json={})
    assert commands.calls == [
        ("flatten", "alice", "eod"),
        ("dump", "requested"),
        ("kill", "drill"),
        ("kill", "manual kill (no reason given)"),
    ]


async def test_rearm_takes_force_as_a_boolean_only(
    commanded: tuple[Commands, httpx.AsyncClient],
) -> None:
    commands, client = commanded
    assert (await client.post("/rearm", json={"who": "bob"})).status_code == 400
    bad = await client.post("/rearm", json={"reason": "ok", "force": "yes"})
    assert bad.status_code == 400
    assert bad.json() == {"error": "force must be true or false, got 'yes'"}
    assert commands.calls == []
    await client.post("/rearm", json={"reason": "ok", "who": "bob"})
    await client.post("/rearm", json={"reason": "sure", "who": "bob", "force": True})
    assert commands.calls == [("rearm", "bob", "ok", "False"), ("rearm", "bob", "sure", "True")]


async def test_a_command_without_an_outcome_in_time_is_a_504(
    commanded: tuple[Commands, httpx.AsyncClient], autojump_clock: trio.testing.MockClock
) -> None:
    commands, client = commanded
    commands.never = True
    started = trio.current_time()
    reply = await client.post("/kill", json={"reason": "stuck"})
    assert reply.status_code == 504
    assert "goes on in the service" in reply.json()["error"]
    assert trio.current_time() - started == pytest.approx(COMMAND_WAIT_S)


async def test_commands_the_service_lacks_are_a_503(open_client: httpx.AsyncClient) -> None:
    for path in ("/kill", "/rearm", "/dump", "/flatten"):
        reply = await open_client.post(path, json={"reason": "x"})
        assert reply.status_code == 503, path
