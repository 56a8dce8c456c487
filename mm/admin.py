"""The admin HTTP server: a small ASGI app served by hypercorn's Trio worker.

``GET /metrics`` (Prometheus text), ``GET /healthz`` (liveness: 200 while the process and its
supervision tree are up, or 503 with what is down), ``GET /readyz`` (readiness: 200 while it
trades, or 503 with every reason it does not: starting, kill switch tripped, a mode other than
NORMAL, out of sync with the venue, startup waiting on the venue's rate limit), ``GET /status``
(JSON), ``POST /stop`` (202, then the stop), and the operator's commands ``POST /kill``,
``/rearm``, ``/flatten``, ``/dump``, each answered with its outcome once the service has acted
(``Answer``: 200 done, 202 started, 409 refused with the reason); a command that gets no
outcome within ``COMMAND_WAIT_S`` is answered 504 and goes on in the service. Every response
body passes through the secret redactor. When a token is configured, POST endpoints require
``Authorization: Bearer <token>``; ``mm start`` refuses a non-loopback host without one.

How it fails: never with a 500 for what a caller sends. The token is checked before a byte of
the body is read (401), a body over ``MAX_BODY_BYTES`` is refused (413) without being read
further, and a body that is not a flat JSON object with text fields is a 400 that says what
is wrong. A command that fails in the service is the service's error.
"""

from __future__ import annotations

import hmac
from collections.abc import Awaitable, Callable
from functools import partial
from typing import Any, cast

import attrs
import orjson
import trio
from hypercorn.typing import ASGIFramework
from loguru import logger
from prometheus_client import CollectorRegistry

from mm import world
from mm.asgi import Receive, Scope, Send, hypercorn_config, read_body, run_lifespan
from mm.metrics import CONTENT_TYPE, render
from mm.secrets import Redactor, Secret

JSON_TYPE = b"application/json"
COMMAND_WAIT_S = 60.0  # a kill waits for its checkpoint and cancel-all (10 s at most)
# A command's body is a reason, a name and a flag: a few hundred bytes. Larger is a 413, read
# no further than this; deeper than this is a 400 (the commands' bodies are flat objects).
MAX_BODY_BYTES = 64 * 1024
MAX_JSON_DEPTH = 4


@attrs.frozen
class Response:
    status: int
    body: bytes
    content_type: bytes = JSON_TYPE
    headers: tuple[tuple[bytes, bytes], ...] = ()


def json_response(status: int, payload: Any) -> Response:
    return Response(status, orjson.dumps(payload, option=orjson.OPT_INDENT_2) + b"\n")


@attrs.frozen
class Answer:
    """A command's outcome for the operator: the HTTP status and the JSON document."""

    status: int
    body: dict[str, Any]


@attrs.frozen
class AdminContext:
    """What the admin endpoints read and trigger; supplied by the service."""

    status: Callable[[], dict[str, Any]]
    problems: Callable[[], list[str]]
    registry: CollectorRegistry
    request_stop: Callable[[str], None]
    token: Secret | None = None
    redact: Redactor = attrs.field(factory=Redactor)
    # The kill switch: trip (reason), rearm (who, why, force) and an incident dump (why).
    kill: Callable[[str], Awaitable[Answer]] | None = None
    rearm: Callable[[str, str, bool], Awaitable[Answer]] | None = None
    dump: Callable[[str], Awaitable[Answer]] | None = None
    # Flatten every position now under the flatten deadline (who, why).
    flatten: Callable[[str, str], Awaitable[Answer]] | None = None
    # Why the service is not trading now (empty while it trades): /readyz.
    not_trading: Callable[[], list[str]] | None = None


Handled = tuple[Response, Callable[[], None] | None]


class BadRequest(Exception):
    """A command's body is not what the endpoint takes: answered 400 with this message."""


class AdminApp:
    """The ASGI application."""

    def __init__(self, context: AdminContext) -> None:
        self._context = context
        self._get: dict[str, Callable[[], Response]] = {
            "/metrics": self._metrics,
            "/healthz": self._healthz,
            "/readyz": self._readyz,
            "/status": self._status,
        }
        self._post: dict[str, Callable[[dict[str, Any]], Awaitable[Handled]]] = {
            "/stop": self._stop,
            "/kill": self._kill,
            "/rearm": self._rearm,
            "/dump": self._dump,
            "/flatten": self._flatten,
        }

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await run_lifespan(receive, send)
            return
        if scope["type"] != "http":
            return
        response, then = await self._handle(scope, receive)
        await send(
            {
                "type": "http.response.start",
                "status": response.status,
                "headers": [(b"content-type", response.content_type), *response.headers],
            }
        )
        body = response.body
        if self._context.redact:
            body = self._context.redact(body.decode()).encode()
        await send({"type": "http.response.body", "body": body})
        if then is not None:
            then()  # acts after the reply is on the wire, so the caller hears the answer

    async def _handle(self, scope: Scope, receive: Receive) -> Handled:
        """The response, and what to do once it is sent."""
        path = scope["path"]
        method = scope["method"]
        if method in ("GET", "HEAD") and path in self._get:
            return self._get[path](), None
        if method == "POST" and path in self._post:
            # The token first: a caller without it never gets a byte of its body read.
            if not self._authorized(scope):
                unauthorized = Response(
                    401,
                    b'{"error": "unauthorized"}\n',
                    headers=((b"www-authenticate", b'Bearer realm="mm"'),),
                )
                return unauthorized, None
            declared = _content_length(scope)
            if declared is not None and declared > MAX_BODY_BYTES:
                return _too_large(), None
            raw = await read_body(receive, MAX_BODY_BYTES)
            if raw is None:
                return _too_large(), None
            try:
                return await self._post[path](parse_command(raw))
            except BadRequest as error:
                return json_response(400, {"error": str(error)}), None
        if path in self._get or path in self._post:
            return json_response(405, {"error": f"method {method} not allowed on {path}"}), None
        return json_response(404, {"error": f"no such endpoint: {path}"}), None

    def _authorized(self, scope: Scope) -> bool:
        token = self._context.token
        if token is None:
            return True
        expected = b"Bearer " + token.reveal().encode()
        for name, value in scope.get("headers", ()):
            if name.lower() == b"authorization":
                return hmac.compare_digest(value, expected)
        return False

    def _metrics(self) -> Response:
        return Response(200, render(self._context.registry), CONTENT_TYPE.encode())

    def _healthz(self) -> Response:
        problems = self._context.problems()
        if problems:
            return json_response(503, {"status": "unhealthy", "problems": problems})
        return json_response(200, {"status": "ok"})

    def _readyz(self) -> Response:
        not_trading = self._context.not_trading
        reasons = (
            ["readiness is not known to this service"] if not_trading is None else not_trading()
        )
        if reasons:
            return json_response(503, {"status": "not trading", "reasons": reasons})
        return json_response(200, {"status": "trading"})

    def _status(self) -> Response:
        return json_response(200, self._context.status())

    async def _stop(self, body: dict[str, Any]) -> Handled:
        return json_response(202, {"stopping": True}), partial(
            self._context.request_stop, "admin POST /stop"
        )

    async def _kill(self, body: dict[str, Any]) -> Handled:
        reason = _text(body, "reason") or "manual kill (no reason given)"
        kill = self._context.kill
        return await self._command(None if kill is None else partial(kill, reason))

    async def _rearm(self, body: dict[str, Any]) -> Handled:
        reason = _text(body, "reason")
        if not reason:
            raise BadRequest("a rearm needs a reason")
        force = body.get("force", False)
        if not isinstance(force, bool):
            shown = repr(force) if isinstance(force, str) and len(force) <= 40 else _kind(force)
            raise BadRequest(f"force must be true or false, got {shown}")
        who = _text(body, "who") or "admin"
        rearm = self._context.rearm
        return await self._command(None if rearm is None else partial(rearm, who, reason, force))

    async def _dump(self, body: dict[str, Any]) -> Handled:
        why = _text(body, "reason") or "requested"
        dump = self._context.dump
        return await self._command(None if dump is None else partial(dump, why))

    async def _flatten(self, body: dict[str, Any]) -> Handled:
        why = _text(body, "reason") or "manual flatten (no reason given)"
        who = _text(body, "who") or "admin"
        flatten = self._context.flatten
        return await self._command(None if flatten is None else partial(flatten, who, why))

    async def _command(self, action: Callable[[], Awaitable[Answer]] | None) -> Handled:
        """Run the command and answer with its outcome."""
        if action is None:
            return json_response(503, {"error": "not available in this service"}), None
        with trio.move_on_after(COMMAND_WAIT_S):
            answer = await action()
            return json_response(answer.status, answer.body), None
        error = f"no outcome within {COMMAND_WAIT_S:g}s; the command goes on in the service"
        return json_response(504, {"error": error}), None


def _text(body: dict[str, Any], key: str) -> str:
    """A text field of a command ("" when absent or null); anything but text is refused."""
    value = body.get(key)
    if value is None:
        return ""
    if not isinstance(value, str):
        raise BadRequest(f"{key} must be a string, got {_kind(value)}")
    return value


def _kind(value: Any) -> str:
    """A JSON value's type in the operator's words (never the value: it may be huge)."""
    names = {dict: "an object", list: "an array", bool: "a boolean", str: "a string"}
    return "null" if value is None else names.get(type(value), "a number")


def _content_length(scope: Scope) -> int | None:
    """The declared body size, when the request declares one."""
    for name, value in scope.get("headers", ()):
        if name.lower() == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None


def _too_large() -> Response:
    return json_response(413, {"error": f"the body is larger than {MAX_BODY_BYTES} bytes"})


def parse_command(raw: bytes) -> dict[str, Any]:
    """A command's body as a JSON object ({} when empty), or ``BadRequest`` saying what is
    wrong: not JSON, not an object, or nested deeper than any command needs (a deep value
    would otherwise reach code that recurses on it)."""
    raw = raw.strip()
    if not raw:
        return {}
    try:
        data = orjson.loads(raw)
    except orjson.JSONDecodeError as error:
        raise BadRequest(f"the body is not valid JSON: {error}") from None
    if not isinstance(data, dict):
        raise BadRequest(f"the body must be a JSON object, got {_kind(data)}")
    if _deeper_than(data, MAX_JSON_DEPTH):
        raise BadRequest(f"the body is nested more than {MAX_JSON_DEPTH} levels deep")
    return data


def _deeper_than(value: Any, limit: int) -> bool:
    """Whether containers nest more than ``limit`` levels (iterative: no recursion to blow)."""
    pending: list[tuple[Any, int]] = [(value, 1)]
    while pending:
        item, depth = pending.pop()
        if depth > limit:
            return True
        children = item.values() if isinstance(item, dict) else item
        pending.extend((c, depth + 1) for c in children if isinstance(c, dict | list))
    return False


class AdminServer:
    """The ``admin`` child: serves the app; reports its bound URL through ``on_bound``."""

    def __init__(
        self,
        app: AdminApp,
        host: str,
        port: int,
        on_bound: Callable[[str], Awaitable[None]],
    ) -> None:
        self._app = app
        self._host = host
        self._port = port
        self._on_bound = on_bound

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        config = hypercorn_config(self._host, self._port)
        async with trio.open_nursery() as nursery:
            binds: list[str] = await nursery.start(
                partial(world.serve_asgi, cast(ASGIFramework, self._app), config)
            )
            url = binds[0]
            logger.info("admin server listening on {}", url)
            await self._on_bound(url)
            task_status.started()
