"""Operator notifications, the shell: the ``notifier`` child and its sinks (log, webhook, telegram).

``Notifier.notify(n)`` is synchronous and never blocks: any task or synchronous callback in the
Trio thread may call it. It appends to one intake channel with an unbounded buffer whose bound
is enforced here: past ``queue_size`` queued notifications a non-critical one is dropped and
counted, while a critical one is always queued (criticals are rare and come from code; the
dispatcher drains the intake without ever waiting on a sink, so the queue cannot grow behind a
slow sink). One channel keeps criticals and the rest in the order they were raised.

``Notifier.run`` is the ``notifier`` child. It takes notifications off the intake, passes them
through the ``RateLimiter`` (waking at ``next_due()`` to flush coalesced ones), redacts every
text, and hands each outgoing message to every sink's worker. A worker owns one sink, its own
bounded queue (when full, the oldest non-critical message is dropped and counted; only a queue
full of criticals loses its oldest critical) and its own task, and bounds every send by
``send_timeout_s``. Failures are counted and logged at WARNING at most once a minute per sink.
So a slow or dead sink delays neither the caller nor the other sinks. The intake, the rate
limiter's state and the sink queues belong to the Notifier, so a restarted child loses nothing.

Secrets: every text going out passes through the service's redactor and one made of the
notification tokens. The Telegram bot token is part of the Bot API's URL; the client only ever
sees ``/bot***/sendMessage`` and a transport puts the token in at the last hop, so neither
httpx's request log nor an error message can show it. Logs name the sink, never a URL.
"""

from __future__ import annotations

import math
import re
from collections import deque
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any, Final, Protocol
from urllib.parse import quote

import attrs
import httpx
import orjson
import trio
from loguru import logger
from prometheus_client import CollectorRegistry, Counter

from mm.ops.notify import (
    LOG_SINK,
    TELEGRAM_SINK,
    WEBHOOK_SINK,
    FieldValue,
    Notification,
    NotifyConfig,
    RateLimiter,
    Severity,
    render_text,
)
from mm.secrets import REDACTED, Redactor, Secret
from mm.settings import ConfigError, join_path

FAILURE_LOG_INTERVAL_S: Final = 60.0
TELEGRAM_MAX_TEXT: Final = 4096
INTAKE: Final = "intake"
# <bot id>:<secret>, as BotFather hands it out.
TELEGRAM_TOKEN: Final = re.compile(r"\d+:[A-Za-z0-9_-]+")


# --- secrets -----------------------------------------------------------------------------------


@attrs.frozen
class NotifySecrets:
    webhook_token: Secret | None = None
    telegram_token: Secret | None = None

    def secrets(self) -> tuple[Secret, ...]:
        """The tokens that are set, for the service's log redactor."""
        return tuple(s for s in (self.webhook_token, self.telegram_token) if s is not None)


def read_notify_secrets(
    config: NotifyConfig, environ: Mapping[str, str], path: str = "notify"
) -> NotifySecrets:
    """The tokens the config names, from the environment; ConfigError naming what is missing.

    The webhook token is optional (read only when the webhook is a sink). The Telegram token is
    required when Telegram is a sink. No message ever includes a token's value.
    """
    problems: list[str] = []
    webhook_token: Secret | None = None
    if WEBHOOK_SINK in config.sinks and config.webhook_token_env:
        raw = environ.get(config.webhook_token_env, "").strip()
        webhook_token = Secret(raw) if raw else None
    telegram_token: Secret | None = None
    if TELEGRAM_SINK in config.sinks:
        key = join_path(path, "telegram_token_env")
        name = config.telegram_token_env
        raw = environ.get(name, "").strip() if name else ""
        if not name:
            problems.append(f"{key}: name the environment variable that holds the bot token")
        elif not raw:
            problems.append(
                f"{key}: set the environment variable {name} to the Telegram bot token "
                f"({TELEGRAM_SINK!r} is in {join_path(path, 'sinks')})"
            )
        elif TELEGRAM_TOKEN.fullmatch(raw) is None:
            problems.append(
                f"{key}: the value of {name} does not look like a Telegram bot token "
                "(<bot id>:<secret>, without a 'bot' prefix)"
            )
        else:
            telegram_token = Secret(raw)
    if problems:
        raise ConfigError(problems)
    return NotifySecrets(webhook_token=webhook_token, telegram_token=telegram_token)


# --- sinks -------------------------------------------------------------------------------------


class SinkError(Exception):
    """A send that reached the other side and was refused; the message is safe to log."""


class Sink(Protocol):
    """Where notifications go. ``session()`` holds the sink's resources while its worker runs;
    ``send`` raises on failure (the worker bounds it with a timeout)."""

    @property
    def name(self) -> str: ...

    def session(self) -> AbstractAsyncContextManager[None]: ...

    async def send(self, n: Notification) -> None: ...


def _log_line(n: Notification) -> str:
    line = f"notification {n.kind}: {n.title}"
    if n.text:
        line += " - " + " / ".join(n.text.splitlines())
    if n.fields:
        line += " " + " ".join(f"{key}={value}" for key, value in n.fields.items())
    return line


class LogSink:
    """Writes each notification to the service log at a level matching its severity."""

    name = LOG_SINK

    @asynccontextmanager
    async def session(self) -> AsyncIterator[None]:
        yield

    async def send(self, n: Notification) -> None:
        line = _log_line(n)
        if n.severity is Severity.CRITICAL:
            logger.critical("{}", line)
        elif n.severity is Severity.WARNING:
            logger.warning("{}", line)
        else:
            logger.info("{}", line)


def _json_body(payload: dict[str, Any]) -> tuple[bytes, dict[str, str]]:
    return orjson.dumps(payload), {"Content-Type": "application/json"}


class _HttpSinkState(Protocol):
    _timeout_s: float
    _client: httpx.AsyncClient | None


@asynccontextmanager
async def _client_session(
    sink: _HttpSinkState, transport: httpx.AsyncBaseTransport | None
) -> AsyncIterator[None]:
    """The sink's one httpx client for the life of its worker."""
    async with httpx.AsyncClient(
        timeout=sink._timeout_s, transport=transport, follow_redirects=False
    ) as client:
        sink._client = client
        try:
            yield
        finally:
            sink._client = None


class WebhookSink:
    """POSTs ``{"kind","severity","title","text","at","fields"}`` as JSON; non-2xx fails."""

    name = WEBHOOK_SINK

    def __init__(
        self,
        url: str,
        token: Secret | None,
        timeout_s: float,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self._url = url
        self._token = token
        self._timeout_s = timeout_s
        self._transport = transport
        self._client: httpx.AsyncClient | None = None

    def session(self) -> AbstractAsyncContextManager[None]:
        return _client_session(self, self._transport)

    async def send(self, n: Notification) -> None:
        assert self._client is not None, "send outside session()"
        body, headers = _json_body(
            {
                "kind": n.kind,
                "severity": str(n.severity),
                "title": n.title,
                "text": n.text,
                "at": n.at,
                "fields": dict(n.fields),
            }
        )
        if self._token is not None:
            headers["Authorization"] = f"Bearer {self._token.reveal()}"
        response = await self._client.post(self._url, content=body, headers=headers)
        if not response.is_success:
            raise SinkError(f"HTTP {response.status_code}")


class _PathSecretTransport(httpx.AsyncBaseTransport):
    """Replaces the ``***`` placeholder in the request path with the secret, at the last hop.

    The client, its request log and any error naming the request see only the placeholder.
    """

    def __init__(self, inner: httpx.AsyncBaseTransport, secret: Secret) -> None:
        self._inner = inner
        self._secret = secret

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        raw_path = request.url.raw_path.replace(
            REDACTED.encode(), quote(self._secret.reveal(), safe=":").encode()
        )
        inner = httpx.Request(
            request.method,
            request.url.copy_with(raw_path=raw_path),
            headers=request.headers,
            stream=request.stream,
            extensions=request.extensions,
        )
        return await self._inner.handle_async_request(inner)

    async def aclose(self) -> None:
        await self._inner.aclose()


class TelegramSink:
    """Telegram Bot API ``sendMessage`` with the plain-text rendering; checks the reply's ``ok``.

    Non-critical messages are sent silently (``disable_notification``): only criticals ring.
    """

    name = TELEGRAM_SINK

    def __init__(
        self,
        api_url: str,
        token: Secret,
        chat_id: str,
        timeout_s: float,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self._url = f"{api_url.rstrip('/')}/bot{REDACTED}/sendMessage"
        self._token = token
        self._chat_id = chat_id
        self._timeout_s = timeout_s
        self._transport = transport
        self._client: httpx.AsyncClient | None = None

    def session(self) -> AbstractAsyncContextManager[None]:
        inner = self._transport or httpx.AsyncHTTPTransport()
        return _client_session(self, _PathSecretTransport(inner, self._token))

    async def send(self, n: Notification) -> None:
        assert self._client is not None, "send outside session()"
        text = render_text(n)
        if len(text) > TELEGRAM_MAX_TEXT:
            text = text[: TELEGRAM_MAX_TEXT - 1] + "…"
        body, headers = _json_body(
            {"chat_id": self._chat_id, "text": text, "disable_notification": not n.critical}
        )
        response = await self._client.post(self._url, content=body, headers=headers)
        try:
            reply = orjson.loads(response.content)
        except orjson.JSONDecodeError:
            raise SinkError(f"HTTP {response.status_code}: the reply is not JSON") from None
        if not isinstance(reply, dict) or reply.get("ok") is not True:
            description = reply.get("description", "") if isinstance(reply, dict) else ""
            raise SinkError(f"HTTP {response.status_code}: {str(description)[:200]}")


def build_sinks(config: NotifyConfig, secrets: NotifySecrets) -> list[Sink]:
    """The sinks ``config.sinks`` names, in that order."""
    sinks: list[Sink] = []
    for name in config.sinks:
        if name == LOG_SINK:
            sinks.append(LogSink())
        elif name == WEBHOOK_SINK:
            sinks.append(
                WebhookSink(config.webhook_url, secrets.webhook_token, config.send_timeout_s)
            )
        elif name == TELEGRAM_SINK:
            if secrets.telegram_token is None:
                raise ConfigError(["notify.telegram_token_env: the Telegram bot token is not set"])
            sinks.append(
                TelegramSink(
                    config.telegram_api_url,
                    secrets.telegram_token,
                    config.telegram_chat_id,
                    config.send_timeout_s,
                )
            )
        else:
            raise ConfigError([f"notify.sinks: unknown sink {name!r}"])
    return sinks


# --- the dispatcher ----------------------------------------------------------------------------


class _Metrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.sent = Counter(
            "mm_notifications",
            "Notifications delivered, by sink, kind and severity.",
            ["sink", "kind", "severity"],
            registry=registry,
        )
        self.dropped = Counter(
            "mm_notifications_dropped",
            "Notifications dropped because a queue was full (queue: intake or a sink's name).",
            ["queue", "kind"],
            registry=registry,
        )
        self.failures = Counter(
            "mm_notification_failures",
            "Sends that failed or timed out, by sink.",
            ["sink"],
            registry=registry,
        )
        self.coalesced = Counter(
            "mm_notifications_coalesced",
            "Notifications held by the per-kind rate limit, to go out in a coalesced message.",
            ["kind"],
            registry=registry,
        )


class _Quiet:
    """Says when to log a recurring problem: at most once per ``interval_s``."""

    def __init__(self, interval_s: float) -> None:
        self.interval_s = interval_s
        self.suppressed = 0
        self._last: float | None = None

    def should_log(self, now: float) -> bool:
        if self._last is None or now - self._last >= self.interval_s:
            self._last = now
            return True
        self.suppressed += 1
        return False


class _SinkWorker:
    """One sink's bounded queue and the task that drains it."""

    def __init__(
        self,
        sink: Sink,
        capacity: int,
        timeout_s: float,
        metrics: _Metrics,
        redact: Callable[[str], str],
    ) -> None:
        self.sink = sink
        self.capacity = capacity
        self.timeout_s = timeout_s
        self.queue: deque[Notification] = deque()
        self.sent = 0
        self.dropped = 0
        self.failed = 0
        self._metrics = metrics
        self._redact = redact
        self._wake = trio.Event()
        self._quiet = _Quiet(FAILURE_LOG_INTERVAL_S)

    def put(self, n: Notification) -> None:
        """Queue ``n``; when full, drop the oldest non-critical message (``n`` itself if it is
        the only one), or the oldest critical when the queue holds nothing else."""
        if len(self.queue) >= self.capacity:
            victim = next((i for i, old in enumerate(self.queue) if not old.critical), None)
            if victim is not None:
                dropped = self.queue[victim]
                del self.queue[victim]
            elif not n.critical:
                self._drop(n)
                return
            else:
                dropped = self.queue.popleft()
            self._drop(dropped)
        self.queue.append(n)
        self._wake.set()

    def _drop(self, n: Notification) -> None:
        self.dropped += 1
        self._metrics.dropped.labels(queue=self.sink.name, kind=n.kind).inc()

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        async with self.sink.session():
            task_status.started()
            while True:
                if not self.queue:
                    self._wake = trio.Event()
                    await self._wake.wait()
                    continue
                await self._deliver(self.queue.popleft())

    async def _deliver(self, n: Notification) -> None:
        error: str | None = None
        with trio.move_on_after(self.timeout_s) as scope:
            try:
                await self.sink.send(n)
            except SinkError as failure:
                error = str(failure)
            except Exception as failure:  # any send error is the sink's failure, never ours
                error = f"{type(failure).__name__}: {failure}"
        if scope.cancelled_caught:
            error = f"timed out after {self.timeout_s:g} s"
        if error is None:
            self.sent += 1
            self._metrics.sent.labels(
                sink=self.sink.name, kind=n.kind, severity=str(n.severity)
            ).inc()
            return
        self.failed += 1
        self._metrics.failures.labels(sink=self.sink.name).inc()
        if self._quiet.should_log(trio.current_time()):
            suppressed, self._quiet.suppressed = self._quiet.suppressed, 0
            logger.warning(
                "notification sink {} failed to send a {} notification: {} "
                "({} more failures not logged since the last warning)",
                self.sink.name,
                n.kind,
                self._redact(error),
                suppressed,
            )

    def status(self) -> dict[str, int]:
        return {
            "sent": self.sent,
            "failed": self.failed,
            "dropped": self.dropped,
            "queued": len(self.queue),
        }


class Notifier:
    """The notification dispatcher: ``notify`` from anywhere, ``run`` as the ``notifier`` child.

    ``sinks`` replaces the ones the config names (for tests and embedding).
    """

    def __init__(
        self,
        config: NotifyConfig,
        secrets: NotifySecrets,
        registry: CollectorRegistry,
        redact: Redactor,
        *,
        sinks: Sequence[Sink] | None = None,
    ) -> None:
        self._config = config
        own = Redactor(secrets.secrets())
        self._redact: Callable[[str], str] = lambda text: own(redact(text))
        self._metrics = _Metrics(registry)
        self._limiter = RateLimiter(config.min_interval_s)
        self._send, self._receive = trio.open_memory_channel[Notification](math.inf)
        self._dropped = 0
        self._drop_log = _Quiet(FAILURE_LOG_INTERVAL_S)
        chosen = build_sinks(config, secrets) if sinks is None else list(sinks)
        self._workers = [
            _SinkWorker(
                sink, config.sink_queue_size, config.send_timeout_s, self._metrics, self._redact
            )
            for sink in chosen
        ]

    def notify(self, n: Notification) -> None:
        """Queue ``n`` for the dispatcher; never blocks. Call from the Trio thread only."""
        if not n.critical and self.queued() >= self._config.queue_size:
            self._dropped += 1
            self._metrics.dropped.labels(queue=INTAKE, kind=n.kind).inc()
            return
        self._send.send_nowait(n)

    def queued(self) -> int:
        """Notifications waiting for the dispatcher."""
        return self._send.statistics().current_buffer_used

    def fill(self) -> float:
        """How full the intake is against ``queue_size`` (criticals may take it past 1)."""
        return self.queued() / self._config.queue_size

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        async with trio.open_nursery() as nursery:
            for worker in self._workers:
                await nursery.start(worker.run)
            task_status.started()
            await self._dispatch()

    async def _dispatch(self) -> None:
        while True:
            n: Notification | None = None
            wake_at = self._limiter.next_due()
            with trio.move_on_at(math.inf if wake_at is None else wake_at):
                n = await self._receive.receive()
            now = trio.current_time()
            for coalesced in self._limiter.due(now):
                self._fan_out(coalesced)
            if n is None:
                continue
            outgoing = self._limiter.offer(n, now)
            if outgoing is None:
                self._metrics.coalesced.labels(kind=n.kind).inc()
            else:
                self._fan_out(outgoing)
            if self._dropped and self._drop_log.should_log(now):
                logger.warning(
                    "notification queue full: {} non-critical notifications dropped so far",
                    self._dropped,
                )

    def _clean(self, n: Notification) -> Notification:
        redact = self._redact
        fields: dict[str, FieldValue] = {
            redact(key): redact(value) if isinstance(value, str) else value
            for key, value in n.fields.items()
        }
        return attrs.evolve(n, title=redact(n.title), text=redact(n.text), fields=fields)

    def _fan_out(self, n: Notification) -> None:
        clean = self._clean(n)
        for worker in self._workers:
            worker.put(clean)

    def status(self) -> dict[str, Any]:
        """Counts for ``/status``: the intake, the rate limiter and each sink."""
        return {
            "queued": self.queued(),
            "held": self._limiter.held(),
            "dropped": self._dropped,
            "sinks": {worker.sink.name: worker.status() for worker in self._workers},
        }
