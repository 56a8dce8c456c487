"""Operator notifications, the pure core: messages, the ``[notify]`` config, the rate limiter.

A ``Notification`` is what the risk system, the kill switch and the session governor tell the
operators (a HALT, a daily-loss breach, a mode or phase change). ``RateLimiter`` decides when
each one goes out:

- A critical notification (HALT, kill switch, daily loss) always goes out at once. It neither
  waits for nor spends its kind's slot, and it leaves the kind's held messages alone: a HALT
  must never wait behind a chatty "mode" stream, nor be rewritten by one.
- Non-critical notifications go out at most once per ``min_interval_s`` per kind. One that
  arrives inside its kind's window is held: the limiter keeps the latest and a count, and when
  the window ends (``due``) sends one coalesced message: the latest title and text plus
  ``(+N more '<kind>' notifications in the last T s)``, severity the highest held, and
  ``fields["coalesced"] = N``, where N is how many held notifications the message stands for
  (the shown one included: N more since the last one the operator saw). Nothing is lost: every
  offered notification is either sent itself or counted in exactly one coalesced message.
  A kind's window ends at ``last_sent + min_interval_s``, the very sum ``next_due()`` returns, so
  calling ``due`` at that time always releases (no floating-point near miss to spin on).

``render_text`` is the plain-text form the sinks send. Pure: no I/O and no clock reads; ``now``
is seconds on one monotonic origin (the shell passes ``trio.current_time()``), while
``Notification.at`` is the wall-clock time of the event, for people.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Final
from urllib.parse import urlsplit

import attrs

from mm.settings import at_least, check_section, join_path, non_negative, positive, setting

FieldValue = str | float | int | bool | None

LOG_SINK: Final = "log"
WEBHOOK_SINK: Final = "webhook"
TELEGRAM_SINK: Final = "telegram"
SINK_NAMES: Final[tuple[str, ...]] = (LOG_SINK, WEBHOOK_SINK, TELEGRAM_SINK)
COALESCED_FIELD: Final = "coalesced"
# A Telegram chat id: a (possibly negative) integer, or @channelusername.
CHAT_ID: Final = re.compile(r"-?\d+|@[A-Za-z][A-Za-z0-9_]{3,}")


class Severity(enum.StrEnum):
    INFO = "info"
    WARNING = "warning"
    CRITICAL = "critical"

    @property
    def rank(self) -> int:
        return _RANK[self]


_RANK: Final[dict[Severity, int]] = {
    Severity.INFO: 0,
    Severity.WARNING: 1,
    Severity.CRITICAL: 2,
}


def _copy_fields(value: Mapping[str, FieldValue]) -> dict[str, FieldValue]:
    return dict(value)


@attrs.frozen
class Notification:
    """One message for the operators. ``kind`` comes from code (a small, fixed set)."""

    kind: str
    severity: Severity
    title: str
    text: str
    at: float  # wall-clock epoch seconds of the event
    fields: Mapping[str, FieldValue] = attrs.field(factory=dict, converter=_copy_fields)

    @property
    def critical(self) -> bool:
        return self.severity is Severity.CRITICAL


# --- config ------------------------------------------------------------------------------------


def _sink_names(value: tuple[str, ...]) -> str | None:
    if not value:
        return f"must name at least one sink ({', '.join(SINK_NAMES)})"
    unknown = [name for name in value if name not in SINK_NAMES]
    if unknown:
        return (
            f"unknown sink {', '.join(repr(name) for name in unknown)}; "
            f"choose from {', '.join(SINK_NAMES)}"
        )
    if len(set(value)) != len(value):
        return "names a sink more than once"
    return None


def _http_url(value: str, *, required: bool) -> str | None:
    # Never echo the value: a webhook URL can carry a secret in its path.
    if not value:
        return "must not be empty" if required else None
    try:
        parts = urlsplit(value)
    except ValueError:
        return "must be an http:// or https:// URL"
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return "must be an http:// or https:// URL"
    if parts.username or parts.password:
        return "must not carry credentials (user:password@); name a token with webhook_token_env"
    return None


def _optional_url(value: str) -> str | None:
    return _http_url(value, required=False)


def _required_url(value: str) -> str | None:
    return _http_url(value, required=True)


def _chat_id(value: str) -> str | None:
    if not value or CHAT_ID.fullmatch(value):
        return None
    return f"must be a numeric chat id or @channelname, got {value!r}"


def _env_name(value: str) -> str | None:
    if not value or re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", value):
        return None
    return f"must be an environment variable name, got {value!r}"


@attrs.frozen
class NotifyConfig:
    """The ``[notify]`` section. Secrets (tokens) come from the environment, never the file."""

    # Where notifications go: any of "log", "webhook", "telegram".
    sinks: tuple[str, ...] = setting((LOG_SINK,), _sink_names)
    # Non-critical notifications of one kind: at most one per this many seconds (coalesced).
    min_interval_s: float = setting(10.0, non_negative)
    # Notifications waiting for the dispatcher; non-critical ones beyond this are dropped.
    queue_size: int = setting(1000, at_least(1))
    # Notifications waiting for one sink; the oldest (non-critical first) is dropped beyond it.
    sink_queue_size: int = setting(100, at_least(1))
    # The most one send to one sink may take.
    send_timeout_s: float = setting(5.0, positive)
    # Webhook: a JSON POST to this URL, with an optional bearer token from the environment.
    webhook_url: str = setting("", _optional_url)
    webhook_token_env: str = setting("MM_NOTIFY_WEBHOOK_TOKEN", _env_name)
    # Telegram Bot API: the bot token comes from the environment.
    telegram_api_url: str = setting("https://api.telegram.org", _required_url)
    telegram_token_env: str = setting("MM_TELEGRAM_BOT_TOKEN", _env_name)
    telegram_chat_id: str = setting("", _chat_id)

    def problems(self, path: str = "notify") -> list[str]:
        """Every problem as ``key.path: reason``: each field's check, then the cross-checks."""
        return check_section(self, path) + self.cross_problems(path)

    def cross_problems(self, path: str = "notify") -> list[str]:
        """The rules that span keys (the config loader checks the fields themselves)."""
        problems: list[str] = []
        sinks_key = join_path(path, "sinks")
        if WEBHOOK_SINK in self.sinks and not self.webhook_url:
            problems.append(
                f"{join_path(path, 'webhook_url')}: required when {sinks_key} "
                f"includes {WEBHOOK_SINK!r}"
            )
        if TELEGRAM_SINK in self.sinks:
            if not self.telegram_chat_id:
                problems.append(
                    f"{join_path(path, 'telegram_chat_id')}: required when {sinks_key} "
                    f"includes {TELEGRAM_SINK!r}"
                )
            if not self.telegram_token_env:
                problems.append(
                    f"{join_path(path, 'telegram_token_env')}: required when {sinks_key} "
                    f"includes {TELEGRAM_SINK!r} (the bot token is read from it)"
                )
        return problems


# --- rate limiting -----------------------------------------------------------------------------


@attrs.define
class _KindState:
    last_sent: float | None = None  # when the last non-critical message of the kind went out
    latest: Notification | None = None  # the latest held message
    held: int = 0
    severity: Severity = Severity.INFO  # the highest held


def _span(seconds: float) -> str:
    return f"{seconds:.3g}"


class RateLimiter:
    """Per-kind rate limit with coalescing; see the module docstring for the rules."""

    def __init__(self, min_interval_s: float) -> None:
        if min_interval_s < 0:
            raise ValueError(f"min_interval_s must be >= 0, got {min_interval_s}")
        self.min_interval_s = min_interval_s
        self._kinds: dict[str, _KindState] = {}

    def offer(self, n: Notification, now: float) -> Notification | None:
        """The message to send now (``n`` or a coalesced one), or None when ``n`` is held."""
        if n.critical:
            return n
        state = self._kinds.setdefault(n.kind, _KindState())
        if state.last_sent is not None and now < state.last_sent + self.min_interval_s:
            self._hold(state, n)
            return None
        if state.held:  # the window ended before ``due`` ran: n joins the held ones and goes now
            self._hold(state, n)
            return self._release(state, now)
        state.last_sent = now
        return n

    def due(self, now: float) -> list[Notification]:
        """One coalesced message per kind whose window has ended, earliest due first."""
        ready = [
            (state.last_sent, kind)
            for kind, state in self._kinds.items()
            if state.held
            and state.last_sent is not None
            and now >= state.last_sent + self.min_interval_s
        ]
        return [self._release(self._kinds[kind], now) for _, kind in sorted(ready)]

    def next_due(self) -> float | None:
        """The earliest time a held message becomes sendable; None when nothing is held."""
        times = [
            state.last_sent + self.min_interval_s
            for state in self._kinds.values()
            if state.held and state.last_sent is not None
        ]
        return min(times, default=None)

    def held(self) -> int:
        """Notifications held now, over all kinds."""
        return sum(state.held for state in self._kinds.values())

    @staticmethod
    def _hold(state: _KindState, n: Notification) -> None:
        if not state.held or n.severity.rank > state.severity.rank:
            state.severity = n.severity
        state.latest = n
        state.held += 1

    def _release(self, state: _KindState, now: float) -> Notification:
        latest = state.latest
        assert latest is not None
        count = state.held
        assert state.last_sent is not None  # a message is held only inside a window
        since = now - state.last_sent
        coalesced = attrs.evolve(
            latest,
            severity=state.severity,
            text=(
                f"{latest.text}\n(+{count} more {latest.kind!r} notifications "
                f"in the last {_span(since)} s)"
            ),
            fields={**latest.fields, COALESCED_FIELD: count},
        )
        state.last_sent = now
        state.latest = None
        state.held = 0
        state.severity = Severity.INFO
        return coalesced


# --- rendering ---------------------------------------------------------------------------------


def _value_text(value: FieldValue) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def render_text(n: Notification) -> str:
    """Plain text: ``SEVERITY: title``, the text, then the fields as ``key: value`` lines."""
    try:
        when = datetime.fromtimestamp(n.at, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
    except (ValueError, OverflowError, OSError):
        when = repr(n.at)
    lines = [f"{n.severity.upper()}: {n.title}"]
    if n.text:
        lines.append(n.text)
    lines.extend(f"{key}: {_value_text(value)}" for key, value in n.fields.items())
    lines.append(f"kind: {n.kind}, at {when}")
    return "\n".join(lines)
