"""Tests for the notifier: real sends to a local HTTP receiver on loopback (hypercorn, Trio).

Real sockets, real time: the windows and timeouts are fractions of a second.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Iterator
from functools import partial
from typing import Any, cast

import attrs
import loguru
import orjson
import pytest
import trio
import trio.testing
from hypercorn.trio import serve
from hypercorn.typing import ASGIFramework
from loguru import logger
from prometheus_client import CollectorRegistry

from mm.asgi import Receive, Scope, Send, hypercorn_config, read_body, run_lifespan
from mm.ops.notifier import (
    LogSink,
    Notifier,
    NotifySecrets,
    read_notify_secrets,
)
from mm.ops.notify import Notification, NotifyConfig, Severity, render_text
from mm.secrets import Redactor, Secret
from mm.settings import ConfigError
from tests.conftest import eventually

AT = 1_700_000_000.0
WEBHOOK_TOKEN = "wh-token-5f2c9a81d4e7"
BOT_TOKEN = "123456789:AAF-secret_bot_token_xyz"


def note(
    kind: str = "mode",
    text: str = "t",
    severity: Severity = Severity.INFO,
    title: str = "title",
    **fields: Any,
) -> Notification:
    return Notification(kind, severity, title, text, AT, fields)


# --- a local HTTP receiver ---------------------------------------------------------------------


@attrs.frozen
class Received:
    path: str
    headers: dict[str, str]
    body: Any
    raw: bytes
    at: float  # trio.current_time() on arrival


@attrs.define
class Receiver:
    """An ASGI app that records every request; Telegram paths get a Bot API reply."""

    url: str = ""
    requests: list[Received] = attrs.Factory(list)
    status: int = 200
    telegram_reply: dict[str, Any] = attrs.Factory(
        lambda: {"ok": True, "result": {"message_id": 1}}
    )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await run_lifespan(receive, send)
            return
        raw = await read_body(receive, 1 << 20) or b""
        headers = {key.decode().lower(): value.decode() for key, value in scope["headers"]}
        self.requests.append(
            Received(scope["path"], headers, orjson.loads(raw), raw, trio.current_time())
        )
        reply = self.telegram_reply if scope["path"].startswith("/bot") else {}
        await send(
            {
                "type": "http.response.start",
                "status": self.status,
                "headers": [(b"content-type", b"application/json")],
            }
        )
        await send({"type": "http.response.body", "body": orjson.dumps(reply)})

    def paths(self) -> list[str]:
        return [request.path for request in self.requests]


@pytest.fixture
async def receiver(nursery: trio.Nursery) -> Receiver:
    app = Receiver()
    binds: list[str] = await nursery.start(
        partial(serve, cast(ASGIFramework, app), hypercorn_config("127.0.0.1", 0), mode="asgi")
    )
    app.url = binds[0]
    return app


@pytest.fixture
async def dead_url(nursery: trio.Nursery) -> str:
    """A server that accepts connections and never answers."""

    async def hang(stream: trio.SocketStream) -> None:
        await trio.sleep_forever()

    listeners: list[trio.SocketListener] = await nursery.start(
        partial(trio.serve_tcp, hang, 0, host="127.0.0.1")
    )
    port = listeners[0].socket.getsockname()[1]
    return f"http://127.0.0.1:{port}/hook"


@pytest.fixture
def logs() -> Iterator[list[tuple[str, str]]]:
    """(level, message) of every loguru record while the test runs."""
    records: list[tuple[str, str]] = []

    def sink(message: loguru.Message) -> None:
        records.append((message.record["level"].name, message.record["message"]))

    handler_id = logger.add(sink, level="DEBUG")
    try:
        yield records
    finally:
        logger.remove(handler_id)


@pytest.fixture
def registry() -> CollectorRegistry:
    return CollectorRegistry()


async def started(
    nursery: trio.Nursery,
    config: NotifyConfig,
    registry: CollectorRegistry,
    secrets: NotifySecrets | None = None,
    redact: Redactor | None = None,
) -> Notifier:
    notifier = Notifier(config, secrets or NotifySecrets(), registry, redact or Redactor())
    await nursery.start(notifier.run)
    return notifier


def metric(registry: CollectorRegistry, name: str, **labels: str) -> float:
    return registry.get_sample_value(name, labels) or 0.0


def webhook_config(url: str, **changes: Any) -> NotifyConfig:
    return NotifyConfig(**{"sinks": ("webhook",), "webhook_url": url, **changes})


def telegram_config(api_url: str, **changes: Any) -> NotifyConfig:
    return NotifyConfig(
        **{
            "sinks": ("telegram",),
            "telegram_api_url": api_url,
            "telegram_chat_id": "-100123",
            **changes,
        }
    )


# --- sinks -------------------------------------------------------------------------------------


async def test_webhook_posts_json_with_bearer_token(
    nursery: trio.Nursery, receiver: Receiver, registry: CollectorRegistry
) -> None:
    config = webhook_config(f"{receiver.url}/hook")
    secrets = NotifySecrets(webhook_token=Secret(WEBHOOK_TOKEN))
    notifier = await started(nursery, config, registry, secrets)
    notifier.notify(note("halt", "daily loss", Severity.CRITICAL, "HALT", loss_usd=-512.5))
    await eventually(lambda: len(receiver.requests) == 1)

    [request] = receiver.requests
    assert request.path == "/hook"
    assert request.headers["authorization"] == f"Bearer {WEBHOOK_TOKEN}"
    assert request.headers["content-type"] == "application/json"
    assert request.body == {
        "kind": "halt",
        "severity": "critical",
        "title": "HALT",
        "text": "daily loss",
        "at": AT,
        "fields": {"loss_usd": -512.5},
    }
    await eventually(lambda: notifier.status()["sinks"]["webhook"]["sent"] == 1)
    labels = {"sink": "webhook", "kind": "halt", "severity": "critical"}
    assert metric(registry, "mm_notifications_total", **labels) == 1


async def test_webhook_without_token_sends_no_authorization(
    nursery: trio.Nursery, receiver: Receiver, registry: CollectorRegistry
) -> None:
    notifier = await started(nursery, webhook_config(f"{receiver.url}/hook"), registry)
    notifier.notify(note())
    await eventually(lambda: len(receiver.requests) == 1)
    assert "authorization" not in receiver.requests[0].headers


async def test_webhook_non_2xx_is_a_failure(
    nursery: trio.Nursery,
    receiver: Receiver,
    registry: CollectorRegistry,
    logs: list[tuple[str, str]],
) -> None:
    receiver.status = 500
    notifier = await started(nursery, webhook_config(f"{receiver.url}/hook"), registry)
    notifier.notify(note())
    await eventually(
        lambda: metric(registry, "mm_notification_failures_total", sink="webhook") == 1
    )
    assert notifier.status()["sinks"]["webhook"] == {
        "sent": 0,
        "failed": 1,
        "dropped": 0,
        "queued": 0,
    }
    assert [m for level, m in logs if level == "WARNING"] == [
        "notification sink webhook failed to send a mode notification: HTTP 500 "
        "(0 more failures not logged since the last warning)"
    ]


async def test_telegram_send_message(
    nursery: trio.Nursery,
    receiver: Receiver,
    registry: CollectorRegistry,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="httpx")
    secrets = NotifySecrets(telegram_token=Secret(BOT_TOKEN))
    notifier = await started(nursery, telegram_config(receiver.url), registry, secrets)
    halt = note("halt", "kill switch tripped", Severity.CRITICAL, "HALT", reason="drawdown")
    mode = note("mode", "mode is now reduce_only", Severity.WARNING, "Mode")
    notifier.notify(halt)
    notifier.notify(mode)
    await eventually(lambda: len(receiver.requests) == 2)

    assert receiver.paths() == [f"/bot{BOT_TOKEN}/sendMessage"] * 2
    assert [r.body for r in receiver.requests] == [
        {"chat_id": "-100123", "text": render_text(halt), "disable_notification": False},
        {"chat_id": "-100123", "text": render_text(mode), "disable_notification": True},
    ]
    await eventually(lambda: notifier.status()["sinks"]["telegram"]["sent"] == 2)
    # httpx logs each request with its URL: the token is never in it.
    messages = [record.getMessage() for record in caplog.records if record.name == "httpx"]
    assert any("/bot***/sendMessage" in message for message in messages)
    assert not any(BOT_TOKEN in message for message in messages)


async def test_telegram_reply_not_ok_is_a_failure(
    nursery: trio.Nursery,
    receiver: Receiver,
    registry: CollectorRegistry,
    logs: list[tuple[str, str]],
) -> None:
    receiver.telegram_reply = {"ok": False, "error_code": 400, "description": "chat not found"}
    secrets = NotifySecrets(telegram_token=Secret(BOT_TOKEN))
    notifier = await started(nursery, telegram_config(receiver.url), registry, secrets)
    notifier.notify(note())
    await eventually(lambda: notifier.status()["sinks"]["telegram"]["failed"] == 1)
    assert metric(registry, "mm_notification_failures_total", sink="telegram") == 1
    warnings = [m for level, m in logs if level == "WARNING"]
    assert len(warnings) == 1
    assert "sink telegram failed" in warnings[0]
    assert "chat not found" in warnings[0]
    assert not any(BOT_TOKEN in m for _, m in logs)


async def test_log_sink_levels_follow_severity(logs: list[tuple[str, str]]) -> None:
    sink = LogSink()
    async with sink.session():
        await sink.send(note("halt", "x", Severity.CRITICAL, "HALT", loss=1.5))
        await sink.send(note("margin", "y", Severity.WARNING, "Margin"))
        await sink.send(note("phase", "a\nb", Severity.INFO, "Phase"))
    assert logs == [
        ("CRITICAL", "notification halt: HALT - x loss=1.5"),
        ("WARNING", "notification margin: Margin - y"),
        ("INFO", "notification phase: Phase - a / b"),
    ]


# --- the pipeline ------------------------------------------------------------------------------


async def test_rate_limit_and_coalescing_end_to_end(
    nursery: trio.Nursery, receiver: Receiver, registry: CollectorRegistry
) -> None:
    config = webhook_config(f"{receiver.url}/hook", min_interval_s=0.2)
    notifier = await started(nursery, config, registry)
    start = trio.current_time()
    for i in range(5):
        notifier.notify(note("mode", f"mode {i}"))
    await eventually(lambda: len(receiver.requests) == 2, within=2.0)
    first, second = receiver.requests
    assert first.body["text"] == "mode 0"
    assert "coalesced" not in first.body["fields"]
    assert second.body["text"].startswith("mode 4\n(+4 more 'mode' notifications in the last 0.2")
    assert second.body["fields"] == {"coalesced": 4}
    assert second.at - start >= 0.2
    assert metric(registry, "mm_notifications_coalesced_total", kind="mode") == 4
    await trio.sleep(0.3)
    assert len(receiver.requests) == 2
    assert notifier.status()["held"] == 0


async def test_critical_bypasses_the_rate_limit(
    nursery: trio.Nursery, receiver: Receiver, registry: CollectorRegistry
) -> None:
    config = webhook_config(f"{receiver.url}/hook", min_interval_s=30.0)
    notifier = await started(nursery, config, registry)
    notifier.notify(note("halt", "warning first", Severity.WARNING))
    notifier.notify(note("halt", "held", Severity.WARNING))
    notifier.notify(note("halt", "HALT", Severity.CRITICAL))
    await eventually(lambda: len(receiver.requests) == 2, within=2.0)
    assert [r.body["text"] for r in receiver.requests] == ["warning first", "HALT"]
    assert notifier.status()["held"] == 1


async def test_notifications_raised_before_the_child_starts_are_kept(
    nursery: trio.Nursery, receiver: Receiver, registry: CollectorRegistry
) -> None:
    notifier = Notifier(
        webhook_config(f"{receiver.url}/hook"), NotifySecrets(), registry, Redactor()
    )
    notifier.notify(note("halt", "early", Severity.CRITICAL))
    assert notifier.status()["queued"] == 1
    await nursery.start(notifier.run)
    await eventually(lambda: len(receiver.requests) == 1)
    assert receiver.requests[0].body["text"] == "early"


async def test_a_dead_sink_slows_neither_callers_nor_other_sinks(
    nursery: trio.Nursery,
    receiver: Receiver,
    dead_url: str,
    registry: CollectorRegistry,
    logs: list[tuple[str, str]],
) -> None:
    config = NotifyConfig(
        sinks=("webhook", "telegram"),
        webhook_url=dead_url,
        telegram_api_url=receiver.url,
        telegram_chat_id="42",
        min_interval_s=0.2,
        # Long beside the HALT's way to Telegram even on a loaded machine (where that way took
        # 0.55 s once): a Telegram sink that waited on the webhook's send would wait this out.
        send_timeout_s=2.0,
    )
    secrets = NotifySecrets(telegram_token=Secret(BOT_TOKEN))
    notifier = await started(nursery, config, registry, secrets)
    start = trio.current_time()
    began = time.perf_counter()
    for i in range(1000):
        notifier.notify(note(f"kind{i % 5}", f"message {i}"))
    notifier.notify(note("halt", "HALT", Severity.CRITICAL))
    assert time.perf_counter() - began < 0.5  # synchronous: it cannot wait on a sink
    assert notifier.status()["dropped"] == 0

    # Telegram gets the HALT before the webhook's first send has even timed out.
    def halts() -> list[Received]:
        return [r for r in receiver.requests if r.body["text"].startswith("CRITICAL: title\nHALT")]

    await eventually(lambda: len(halts()) == 1, within=1.0)
    assert halts()[0].at - start < config.send_timeout_s
    # Then the rest, coalesced per kind, none lost. On a quiet machine the 1,000 queued are
    # worked through inside one 0.2 s window: one message per kind, then one "(+199 more ...)"
    # each. A loaded one may take longer than the window, which then closes midway: more
    # messages, each counting what it holds. Either way every notification is accounted for.
    more = re.compile(r"\(\+(\d+) more 'kind\d' notifications")

    def accounted() -> int:
        """A message stands for itself, or, coalesced, for the N it counts (itself among them)."""
        return sum(
            sum(int(count) for count in more.findall(r.body["text"])) or 1
            for r in receiver.requests
            if r not in halts()
        )

    await eventually(lambda: accounted() == 1000, within=5.0)
    assert len(receiver.requests) >= 11
    assert sum(bool(more.search(r.body["text"])) for r in receiver.requests) >= 5

    # Each webhook send times out; the failures are counted, one warning is logged.
    await eventually(
        lambda: metric(registry, "mm_notification_failures_total", sink="webhook") >= 2,
        within=3 * config.send_timeout_s,
    )
    webhook = notifier.status()["sinks"]["webhook"]
    assert webhook["failed"] >= 2
    assert webhook["sent"] == 0
    assert notifier.status()["sinks"]["telegram"] == {
        "sent": len(receiver.requests),
        "failed": 0,
        "dropped": 0,
        "queued": 0,
    }
    warnings = [m for level, m in logs if level == "WARNING"]
    assert warnings == [
        "notification sink webhook failed to send a kind0 notification: timed out after 2 s "
        "(0 more failures not logged since the last warning)"
    ]


async def test_a_full_intake_drops_non_critical_and_keeps_critical(
    nursery: trio.Nursery, receiver: Receiver, registry: CollectorRegistry
) -> None:
    config = webhook_config(f"{receiver.url}/hook", queue_size=10, min_interval_s=0.0)
    notifier = Notifier(config, NotifySecrets(), registry, Redactor())
    for i in range(25):
        notifier.notify(note("mode", f"m{i}"))
    notifier.notify(note("halt", "HALT", Severity.CRITICAL))
    status = notifier.status()
    assert (status["queued"], status["dropped"]) == (11, 15)
    assert metric(registry, "mm_notifications_dropped_total", queue="intake", kind="mode") == 15
    await nursery.start(notifier.run)
    await eventually(lambda: len(receiver.requests) == 11)
    assert receiver.requests[-1].body["text"] == "HALT"


async def test_a_full_sink_queue_drops_the_oldest_non_critical(
    nursery: trio.Nursery, dead_url: str, registry: CollectorRegistry
) -> None:
    config = webhook_config(dead_url, sink_queue_size=3, min_interval_s=0.0, send_timeout_s=5.0)
    notifier = await started(nursery, config, registry)
    notifier.notify(note("mode", "in flight"))
    await trio.testing.wait_all_tasks_blocked()  # the webhook worker hangs on its first send
    notifier.notify(note("halt", "HALT 1", Severity.CRITICAL))
    for i in range(10):
        notifier.notify(note("mode", f"m{i}"))
    notifier.notify(note("halt", "HALT 2", Severity.CRITICAL))
    await eventually(lambda: notifier.status()["queued"] == 0)
    await trio.testing.wait_all_tasks_blocked()
    webhook = notifier.status()["sinks"]["webhook"]
    assert (webhook["queued"], webhook["dropped"]) == (3, 9)
    assert metric(registry, "mm_notifications_dropped_total", queue="webhook", kind="halt") == 0
    assert metric(registry, "mm_notifications_dropped_total", queue="webhook", kind="mode") == 9


# --- secrets -----------------------------------------------------------------------------------


async def test_secrets_are_redacted_at_the_receiver_and_in_logs(
    nursery: trio.Nursery,
    receiver: Receiver,
    registry: CollectorRegistry,
    logs: list[tuple[str, str]],
) -> None:
    config = NotifyConfig(sinks=("log", "webhook"), webhook_url=f"{receiver.url}/hook")
    secrets = NotifySecrets(webhook_token=Secret(WEBHOOK_TOKEN))
    service_secret = "svc-secret-0123456789"
    notifier = await started(nursery, config, registry, secrets, Redactor([Secret(service_secret)]))
    notifier.notify(
        note(
            "margin",
            f"token is {WEBHOOK_TOKEN}, key {service_secret}",
            Severity.WARNING,
            f"about {WEBHOOK_TOKEN}",
            detail=f"Bearer {WEBHOOK_TOKEN}",
        )
    )
    await eventually(lambda: len(receiver.requests) == 1)
    await eventually(lambda: any(level == "WARNING" for level, _ in logs))

    [request] = receiver.requests
    assert request.body["text"] == "token is ***, key ***"
    assert request.body["title"] == "about ***"
    assert request.body["fields"] == {"detail": "Bearer ***"}
    assert WEBHOOK_TOKEN.encode() not in request.raw
    assert logs == [
        ("WARNING", "notification margin: about *** - token is ***, key *** detail=Bearer ***")
    ]


# --- reading the secrets -----------------------------------------------------------------------


def test_read_secrets_requires_the_telegram_token() -> None:
    config = NotifyConfig(sinks=("telegram",), telegram_chat_id="42")
    with pytest.raises(ConfigError) as caught:
        read_notify_secrets(config, {"MM_TELEGRAM_BOT_TOKEN": "  "})
    assert caught.value.errors == [
        "notify.telegram_token_env: set the environment variable MM_TELEGRAM_BOT_TOKEN to the "
        "Telegram bot token ('telegram' is in notify.sinks)"
    ]


def test_read_secrets_refuses_a_malformed_telegram_token_without_showing_it() -> None:
    config = NotifyConfig(sinks=("telegram",), telegram_chat_id="42", telegram_token_env="BOT")
    with pytest.raises(ConfigError) as caught:
        read_notify_secrets(config, {"BOT": "bot123:not-a-real-token-value"})
    assert caught.value.errors == [
        "notify.telegram_token_env: the value of BOT does not look like a Telegram bot token "
        "(<bot id>:<secret>, without a 'bot' prefix)"
    ]
    assert "not-a-real-token-value" not in str(caught.value)


def test_read_secrets() -> None:
    config = NotifyConfig(
        sinks=("webhook", "telegram"), webhook_url="https://example.com/h", telegram_chat_id="42"
    )
    environ = {"MM_NOTIFY_WEBHOOK_TOKEN": WEBHOOK_TOKEN, "MM_TELEGRAM_BOT_TOKEN": BOT_TOKEN}
    secrets = read_notify_secrets(config, environ)
    assert secrets.webhook_token == Secret(WEBHOOK_TOKEN)
    assert secrets.telegram_token == Secret(BOT_TOKEN)
    assert secrets.secrets() == (Secret(WEBHOOK_TOKEN), Secret(BOT_TOKEN))
    assert WEBHOOK_TOKEN not in repr(secrets)
    # The webhook token is optional; sinks not configured read nothing.
    assert read_notify_secrets(config, {"MM_TELEGRAM_BOT_TOKEN": BOT_TOKEN}).webhook_token is None
    assert read_notify_secrets(NotifyConfig(), environ) == NotifySecrets()
