"""The admin ASGI app: routes, health codes, bearer-token checks and response redaction."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from prometheus_client import CollectorRegistry, Counter

from mm.admin import AdminApp, AdminContext
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
