"""The admin ASGI app: routes, health codes, bearer-token checks and response redaction."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, MutableMapping
from typing import Any

import attrs
import httpx
import orjson
import pytest
import trio
import trio.testing
from prometheus_client import CollectorRegistry, Counter

from mm.admin import (
    COMMAND_WAIT_S,
    MAX_BODY_BYTES,
    AdminApp,
    AdminContext,
    AdminServer,
    Answer,
)
from mm.asgi import Receive, Scope, Send, read_body
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


# --- bodies: the token first, a size cap, bounded reads, a 4xx for any bad body ----------------


ENDLESS_UNTIL = 16 << 20


class Recorded:
    """An ASGI exchange by hand: a receive that counts what the app pulled, and the reply."""

    def __init__(self, messages: list[dict[str, Any]] | None = None, endless: int = 0) -> None:
        self._messages = list(messages or [])
        self._endless = endless  # then chunks of this size forever (more_body always true)
        self.pulled = 0
        self.calls = 0
        self.sent: list[dict[str, Any]] = []

    async def receive(self) -> dict[str, Any]:
        self.calls += 1
        if self._messages:
            message = self._messages.pop(0)
        elif self._endless:
            # "Endless": a client that would go on; its last chunk comes after 16 MiB, so that
            # an app reading it all (as it once did) ends, and fails the test, in bounded time.
            more = self.pulled + 2 * self._endless <= ENDLESS_UNTIL
            message = {"type": "http.request", "body": b"x" * self._endless, "more_body": more}
        else:
            await trio.sleep_forever()
        self.pulled += len(message.get("body", b""))
        return message

    async def send(self, message: MutableMapping[str, Any]) -> None:
        self.sent.append(dict(message))

    @property
    def status(self) -> int:
        status: int = self.sent[0]["status"]
        return status

    def json(self) -> Any:
        return orjson.loads(self.sent[1]["body"])


def post_scope(path: str, headers: list[tuple[bytes, bytes]]) -> dict[str, Any]:
    return {"type": "http", "method": "POST", "path": path, "headers": headers}


async def test_a_post_without_the_token_is_refused_before_its_body_is_read(
    guarded_fixture: Fixture,
) -> None:
    exchange = Recorded(endless=64 * 1024)
    headers = [(b"content-length", str(300 << 20).encode())]
    await guarded_fixture.app(post_scope("/stop", headers), exchange.receive, exchange.send)
    assert exchange.status == 401
    assert exchange.calls == 0
    assert exchange.pulled == 0
    assert guarded_fixture.stops == []


async def test_a_declared_oversized_body_is_413_unread(guarded_fixture: Fixture) -> None:
    exchange = Recorded(endless=64 * 1024)
    headers = [
        (b"authorization", f"Bearer {TOKEN}".encode()),
        (b"content-length", str(MAX_BODY_BYTES + 1).encode()),
    ]
    await guarded_fixture.app(post_scope("/stop", headers), exchange.receive, exchange.send)
    assert exchange.status == 413
    assert str(MAX_BODY_BYTES) in exchange.json()["error"]
    assert exchange.pulled == 0
    assert guarded_fixture.stops == []


@pytest.mark.parametrize("chunk", [1, 1000, 64 * 1024, MAX_BODY_BYTES + 1])
async def test_an_undeclared_oversized_body_is_read_no_further_than_the_cap(
    open_fixture: Fixture, chunk: int
) -> None:
    exchange = Recorded(endless=chunk)  # chunked: no content-length to refuse it up front
    await open_fixture.app(post_scope("/stop", []), exchange.receive, exchange.send)
    assert exchange.status == 413
    # It stops at the chunk that crosses the cap: never more than that chunk beyond it.
    assert exchange.pulled <= MAX_BODY_BYTES + chunk
    assert open_fixture.stops == []


async def test_read_body_never_holds_more_than_the_cap() -> None:
    for chunk in (1, 7, 4096):
        exchange = Recorded(endless=chunk)
        assert await read_body(exchange.receive, 10_000) is None
        assert exchange.pulled <= 10_000 + chunk
    whole = Recorded([{"type": "http.request", "body": b"x" * 10_000, "more_body": False}])
    assert await read_body(whole.receive, 10_000) == b"x" * 10_000


def nested(depth: int) -> bytes:
    return b'{"reason": ' + b"[" * depth + b"]" * depth + b"}"


@pytest.mark.parametrize(
    ("body", "says"),
    [
        (nested(900), "nested more than"),  # valid JSON: str() of it used to recurse (500)
        (nested(5000), "not valid JSON"),  # past orjson's own limit
        (b'{"reason": ["x"]}', "reason must be a string, got an array"),
        (b'{"reason": {"a": 1}}', "reason must be a string, got an object"),
        (b"[1, 2]", "must be a JSON object, got an array"),
        (b"{not json", "not valid JSON"),
    ],
    ids=["deep", "deeper-than-orjson", "reason-array", "reason-object", "array", "garbage"],
)
async def test_a_bad_command_body_is_a_400_with_the_reason(
    commanded: tuple[Commands, httpx.AsyncClient], body: bytes, says: str
) -> None:
    commands, client = commanded
    for path in ("/kill", "/rearm", "/flatten", "/dump"):
        reply = await client.post(path, content=body)
        assert reply.status_code == 400, (path, reply.text)
        assert says in reply.json()["error"]
    assert commands.calls == []


class CountingApp(AdminApp):
    """The admin app, counting the body bytes it pulls from the server."""

    pulled = 0

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        async def counted() -> Any:
            message = await receive()
            self.pulled += len(message.get("body", b""))
            return message

        await super().__call__(scope, counted, send)


async def post_raw(url: str, head: bytes, *, body_limit: int, chunk: bytes = b"") -> bytes:
    """Send ``head`` then ``chunk`` (64 KiB of body by default) again and again until the
    server answers (or closes, or ``body_limit`` is sent); return the answer's status line."""
    host, port = url.removeprefix("http://").rsplit(":", 1)
    stream = await trio.open_tcp_stream(host, int(port))
    answer = bytearray()
    answered = trio.Event()

    async def read() -> None:
        while b"\r\n" not in answer:
            data = await stream.receive_some(4096)
            if not data:
                break
            answer.extend(data)
        answered.set()

    async with stream, trio.open_nursery() as nursery:
        nursery.start_soon(read)
        await stream.send_all(head)
        sent, chunk = 0, chunk or b"x" * (64 * 1024)
        with contextlib.suppress(trio.BrokenResourceError, trio.ClosedResourceError):
            while not answered.is_set() and sent < body_limit:
                await stream.send_all(chunk)
                sent += len(chunk)
        with trio.fail_after(10):
            await answered.wait()
    return bytes(answer).split(b"\r\n", 1)[0]


@pytest.fixture
async def served_app() -> AsyncIterator[tuple[CountingApp, str]]:
    fixture = Fixture(Secret(TOKEN))
    app = CountingApp(fixture.app._context)
    bound: list[str] = []

    async def on_bound(url: str) -> None:
        bound.append(url)

    async with trio.open_nursery() as nursery:
        await nursery.start(AdminServer(app, "127.0.0.1", 0, on_bound).run)
        yield app, bound[0]
        nursery.cancel_scope.cancel()


async def test_a_huge_post_over_http_is_answered_early_and_never_buffered(
    served_app: tuple[CountingApp, str],
) -> None:
    """A 300 MB POST to the real admin server: 401 without the token and 413 with it, each
    answered long before the body could have been sent, and the app pulls nothing of it
    (it used to read and keep the whole body first)."""
    app, url = served_app
    declared = 300 << 20
    head = f"POST /kill HTTP/1.1\r\nhost: x\r\ncontent-length: {declared}\r\n".encode()
    no_token = await post_raw(url, head + b"\r\n", body_limit=32 << 20)
    assert no_token.startswith(b"HTTP/1.1 401"), no_token
    with_token = head + f"authorization: Bearer {TOKEN}\r\n\r\n".encode()
    too_large = await post_raw(url, with_token, body_limit=32 << 20)
    assert too_large.startswith(b"HTTP/1.1 413"), too_large
    assert app.pulled == 0
    # Chunked, with the token: read up to the cap, then 413, the rest never read.
    chunked = (
        b"POST /kill HTTP/1.1\r\nhost: x\r\ntransfer-encoding: chunked\r\n"
        + f"authorization: Bearer {TOKEN}\r\n\r\n".encode()
    )
    endless = await post_raw_chunked(url, chunked, body_limit=32 << 20)
    assert endless.startswith(b"HTTP/1.1 413"), endless
    assert MAX_BODY_BYTES < app.pulled <= MAX_BODY_BYTES + 64 * 1024


async def post_raw_chunked(url: str, head: bytes, *, body_limit: int) -> bytes:
    """``post_raw`` with the body in HTTP/1.1 chunks of 16 KiB (no declared length)."""
    size = 16 * 1024
    frame = f"{size:x}\r\n".encode() + b"y" * size + b"\r\n"
    return await post_raw(url, head, body_limit=body_limit, chunk=frame)


# --- liveness and readiness ---------------------------------------------------------------------


async def test_readyz_is_200_only_while_trading_and_healthz_stays_alive() -> None:
    reasons: list[str] = []
    fixture = Fixture()
    app = AdminApp(attrs.evolve(fixture.app._context, not_trading=lambda: reasons))
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://admin") as client:
        ready = await client.get("/readyz")
        assert (ready.status_code, ready.json()) == (200, {"status": "trading"})
        reasons.extend(["kill switch tripped (manual)", "mode HALT (pnl_peak_drawdown)"])
        ready = await client.get("/readyz")
        assert ready.status_code == 503
        assert ready.json() == {"status": "not trading", "reasons": reasons}
        assert (await client.get("/healthz")).status_code == 200  # alive all along
        assert (await client.post("/readyz")).status_code == 405


async def test_readyz_without_a_readiness_source_is_never_ready(
    open_client: httpx.AsyncClient,
) -> None:
    ready = await open_client.get("/readyz")
    assert ready.status_code == 503
    assert ready.json()["reasons"] == ["readiness is not known to this service"]
