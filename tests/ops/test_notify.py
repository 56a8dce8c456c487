"""Tests for the notification core: the per-kind rate limiter and coalescer, config, rendering."""

from __future__ import annotations

from collections import defaultdict
from itertools import pairwise
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mm.ops.notify import (
    COALESCED_FIELD,
    Notification,
    NotifyConfig,
    RateLimiter,
    Severity,
    render_text,
)
from mm.settings import ConfigError, structure_section

WINDOW = 10.0
AT = 1_700_000_000.0


def note(
    kind: str = "mode",
    text: str = "t",
    severity: Severity = Severity.INFO,
    title: str = "title",
    **fields: Any,
) -> Notification:
    return Notification(kind, severity, title, text, AT, fields)


# One step: ("offer", now, notification) or ("due", now). An outcome: (now, kind, text, count)
# where count is the "coalesced" field (None for a message sent as it came).
Step = tuple[Any, ...]
Outcome = tuple[float, str, str, int | None]


def play(steps: list[Step], window: float = WINDOW) -> list[Outcome]:
    limiter = RateLimiter(window)
    out: list[Outcome] = []
    for step in steps:
        now = step[1]
        sent = [limiter.offer(step[2], now)] if step[0] == "offer" else limiter.due(now)
        for n in sent:
            if n is not None:
                count = n.fields.get(COALESCED_FIELD)
                assert count is None or isinstance(count, int)
                out.append((now, n.kind, n.text, count))
    return out


def more(text: str, count: int, kind: str = "mode", span: str = "10") -> str:
    return f"{text}\n(+{count} more {kind!r} notifications in the last {span} s)"


CRIT = Severity.CRITICAL

CASES: list[tuple[str, list[Step], list[Outcome]]] = [
    ("first passes", [("offer", 0.0, note(text="a"))], [(0.0, "mode", "a", None)]),
    (
        "second within the window is held",
        [("offer", 0.0, note(text="a")), ("offer", 5.0, note(text="b")), ("due", 9.99)],
        [(0.0, "mode", "a", None)],
    ),
    (
        "at the window's end one coalesced message with the count and the latest text",
        [
            ("offer", 0.0, note(text="a")),
            ("offer", 1.0, note(text="b")),
            ("offer", 2.0, note(text="c")),
            ("offer", 3.0, note(text="d")),
            ("due", 10.0),
            ("due", 11.0),
        ],
        [(0.0, "mode", "a", None), (10.0, "mode", more("d", 3), 3)],
    ),
    (
        "exactly min_interval later passes",
        [("offer", 0.0, note(text="a")), ("offer", 10.0, note(text="b"))],
        [(0.0, "mode", "a", None), (10.0, "mode", "b", None)],
    ),
    (
        "different kinds are independent",
        [
            ("offer", 0.0, note("mode", "a")),
            ("offer", 1.0, note("phase", "x")),
            ("offer", 2.0, note("margin", "m")),
            ("offer", 3.0, note("phase", "y")),
        ],
        [(0.0, "mode", "a", None), (1.0, "phase", "x", None), (2.0, "margin", "m", None)],
    ),
    (
        "a critical right after a non-critical of the same kind goes at once",
        [
            ("offer", 0.0, note("halt", "warn")),
            ("offer", 0.1, note("halt", "HALT", CRIT)),
            ("offer", 0.2, note("halt", "HALT again", CRIT)),
        ],
        [
            (0.0, "halt", "warn", None),
            (0.1, "halt", "HALT", None),
            (0.2, "halt", "HALT again", None),
        ],
    ),
    (
        "a critical does not spend the kind's slot",
        [("offer", 0.0, note("halt", "HALT", CRIT)), ("offer", 0.5, note("halt", "after"))],
        [(0.0, "halt", "HALT", None), (0.5, "halt", "after", None)],
    ),
    (
        "a critical leaves held messages alone: they go out at the window's end",
        [
            ("offer", 0.0, note(text="a")),
            ("offer", 1.0, note(text="b")),
            ("offer", 2.0, note(text="HALT", severity=CRIT)),
            ("due", 10.0),
        ],
        [(0.0, "mode", "a", None), (2.0, "mode", "HALT", None), (10.0, "mode", more("b", 1), 1)],
    ),
    (
        "after a coalesced message a new window starts",
        [
            ("offer", 0.0, note(text="a")),
            ("offer", 1.0, note(text="b")),
            ("due", 10.0),
            ("offer", 15.0, note(text="c")),
            ("due", 19.9),
            ("due", 20.0),
        ],
        [
            (0.0, "mode", "a", None),
            (10.0, "mode", more("b", 1), 1),
            (20.0, "mode", more("c", 1), 1),
        ],
    ),
    (
        "a message after the window, before due ran, takes the held ones along",
        [
            ("offer", 0.0, note(text="a")),
            ("offer", 5.0, note(text="b")),
            ("offer", 15.0, note(text="c")),
        ],
        [(0.0, "mode", "a", None), (15.0, "mode", more("c", 2, span="15"), 2)],
    ),
    (
        "due releases kinds in the order their windows ended",
        [
            ("offer", 0.0, note("phase", "p1")),
            ("offer", 1.0, note("mode", "m1")),
            ("offer", 2.0, note("mode", "m2")),
            ("offer", 3.0, note("phase", "p2")),
            ("due", 30.0),
        ],
        [
            (0.0, "phase", "p1", None),
            (1.0, "mode", "m1", None),
            (30.0, "phase", more("p2", 1, "phase", "30"), 1),
            (30.0, "mode", more("m2", 1, "mode", "29"), 1),
        ],
    ),
]


@pytest.mark.parametrize(("steps", "expected"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_rate_limiter(steps: list[Step], expected: list[Outcome]) -> None:
    assert play(steps) == expected


def test_zero_interval_passes_everything() -> None:
    steps: list[Step] = [("offer", 0.0, note(text=str(i))) for i in range(5)]
    assert [text for _, _, text, _ in play(steps, window=0.0)] == ["0", "1", "2", "3", "4"]


def test_next_due_and_held() -> None:
    limiter = RateLimiter(WINDOW)
    assert limiter.next_due() is None
    limiter.offer(note("mode"), 0.0)
    limiter.offer(note("phase"), 3.0)
    assert limiter.next_due() is None
    assert limiter.offer(note("phase"), 4.0) is None
    assert limiter.offer(note("mode"), 5.0) is None
    assert limiter.offer(note("mode"), 6.0) is None
    assert (limiter.next_due(), limiter.held()) == (10.0, 3)
    assert [n.kind for n in limiter.due(10.0)] == ["mode"]
    assert (limiter.next_due(), limiter.held()) == (13.0, 1)
    assert [n.kind for n in limiter.due(13.0)] == ["phase"]
    assert (limiter.next_due(), limiter.held()) == (None, 0)


def test_coalesced_message_keeps_title_fields_and_the_highest_severity() -> None:
    limiter = RateLimiter(WINDOW)
    limiter.offer(note(text="a"), 0.0)
    limiter.offer(note(text="b", severity=Severity.WARNING, title="old", price=1.0), 1.0)
    limiter.offer(note(text="c", title="new", price=2.0), 2.0)
    [coalesced] = limiter.due(10.0)
    assert coalesced.title == "new"
    assert coalesced.severity is Severity.WARNING
    assert coalesced.fields == {"price": 2.0, COALESCED_FIELD: 2}
    assert coalesced.at == AT


def test_negative_interval_is_refused() -> None:
    with pytest.raises(ValueError, match="min_interval_s"):
        RateLimiter(-1.0)


KINDS = st.sampled_from(["mode", "phase", "margin"])
OFFERS = st.lists(
    st.tuples(
        KINDS,
        st.floats(min_value=0.0, max_value=8.0, allow_nan=False),  # time since the last step
        st.booleans(),  # critical
        st.booleans(),  # call due() first
    ),
    max_size=60,
)


@given(offers=OFFERS, window=st.sampled_from([0.0, 0.5, 3.0, 10.0]))
def test_rate_limit_properties(offers: list[tuple[str, float, bool, bool]], window: float) -> None:
    limiter = RateLimiter(window)
    now = 0.0
    sent: list[tuple[float, Notification]] = []
    offered: dict[str, int] = defaultdict(int)
    latest: dict[str, str] = {}

    def record(at: float, notes: list[Notification]) -> None:
        for n in notes:
            if COALESCED_FIELD in n.fields:  # shows the latest offered text of its kind
                assert n.text.startswith(latest[n.kind] + "\n(+")
            sent.append((at, n))

    for i, (kind, step, critical, call_due) in enumerate(offers):
        now += step
        if call_due:
            record(now, limiter.due(now))
        n = note(kind, f"{kind}-{i}", Severity.CRITICAL if critical else Severity.INFO)
        out = limiter.offer(n, now)
        if critical:
            assert out is n  # a critical never waits and is never rewritten
            continue
        offered[kind] += 1
        latest[kind] = n.text
        record(now, [] if out is None else [out])
    now += window
    record(now, limiter.due(now))
    assert limiter.held() == 0
    assert limiter.next_due() is None

    for kind in offered:
        times = [at for at, n in sent if n.kind == kind and not n.critical]
        assert all(b >= a + window for a, b in pairwise(times))
    # Nothing lost: each offered message went out itself or is counted in one coalesced message.
    accounted: dict[str, int] = defaultdict(int)
    for _, n in sent:
        if not n.critical:
            count = n.fields.get(COALESCED_FIELD, 1)
            assert isinstance(count, int)
            accounted[n.kind] += count
    assert accounted == offered


@given(
    start=st.floats(min_value=0.0, max_value=1e7, allow_nan=False),
    window=st.floats(min_value=0.0, max_value=1e4, allow_nan=False),
)
def test_due_at_next_due_always_releases(start: float, window: float) -> None:
    limiter = RateLimiter(window)
    assert limiter.offer(note(text="a"), start) is not None
    if limiter.offer(note(text="b"), start) is None:
        wake = limiter.next_due()
        assert wake is not None
        assert [n.text for n in limiter.due(wake)] == [more("b", 1, span=f"{wake - start:.3g}")]


def test_fields_are_copied() -> None:
    fields: dict[str, str | float | int | bool | None] = {"a": 1}
    n = Notification("mode", Severity.INFO, "t", "x", AT, fields)
    fields["a"] = 2
    assert n.fields == {"a": 1}
    assert not n.critical
    assert Notification("halt", Severity.CRITICAL, "t", "x", AT).critical


def test_render_text() -> None:
    n = Notification(
        "daily_loss",
        Severity.CRITICAL,
        "Daily loss limit",
        "loss 512.5 USD over the 500 USD limit",
        0.0,
        {"loss_usd": -512.5, "symbol": "BTC", "reduce_only": True, "note": None},
    )
    assert render_text(n) == (
        "CRITICAL: Daily loss limit\n"
        "loss 512.5 USD over the 500 USD limit\n"
        "loss_usd: -512.5\n"
        "symbol: BTC\n"
        "reduce_only: true\n"
        "note: -\n"
        "kind: daily_loss, at 1970-01-01 00:00:00 UTC"
    )


# --- config ------------------------------------------------------------------------------------


def test_default_config_has_no_problems() -> None:
    assert NotifyConfig().problems() == []
    assert NotifyConfig().sinks == ("log",)


@pytest.mark.parametrize(
    ("config", "expected"),
    [
        (
            NotifyConfig(sinks=("log", "sms", "pager")),
            ["notify.sinks: unknown sink 'sms', 'pager'; choose from log, webhook, telegram"],
        ),
        (
            NotifyConfig(sinks=()),
            ["notify.sinks: must name at least one sink (log, webhook, telegram)"],
        ),
        (NotifyConfig(sinks=("log", "log")), ["notify.sinks: names a sink more than once"]),
        (
            NotifyConfig(sinks=("webhook",)),
            ["notify.webhook_url: required when notify.sinks includes 'webhook'"],
        ),
        (
            NotifyConfig(sinks=("webhook",), webhook_url="ftp://example.com/hook"),
            ["notify.webhook_url: must be an http:// or https:// URL"],
        ),
        (
            NotifyConfig(webhook_url="https://user:pw@example.com/hook"),
            [
                "notify.webhook_url: must not carry credentials (user:password@); "
                "name a token with webhook_token_env"
            ],
        ),
        (
            NotifyConfig(sinks=("telegram",)),
            ["notify.telegram_chat_id: required when notify.sinks includes 'telegram'"],
        ),
        (
            NotifyConfig(sinks=("telegram",), telegram_chat_id="-100123", telegram_token_env=""),
            [
                "notify.telegram_token_env: required when notify.sinks includes 'telegram' "
                "(the bot token is read from it)"
            ],
        ),
        (
            NotifyConfig(telegram_chat_id="my chat"),
            ["notify.telegram_chat_id: must be a numeric chat id or @channelname, got 'my chat'"],
        ),
        (
            NotifyConfig(telegram_api_url=""),
            ["notify.telegram_api_url: must not be empty"],
        ),
        (
            NotifyConfig(min_interval_s=-1.0, queue_size=0, send_timeout_s=0.0),
            [
                "notify.min_interval_s: must be >= 0, got -1.0",
                "notify.queue_size: must be >= 1, got 0",
                "notify.send_timeout_s: must be > 0, got 0.0",
            ],
        ),
        (
            NotifyConfig(
                sinks=("log", "webhook", "telegram"),
                webhook_url="https://hooks.example.com/mm",
                telegram_chat_id="@mm_alerts",
            ),
            [],
        ),
    ],
)
def test_config_problems(config: NotifyConfig, expected: list[str]) -> None:
    assert config.problems() == expected


def test_problems_use_the_given_path() -> None:
    assert NotifyConfig(sinks=("webhook",)).problems("ops.notify") == [
        "ops.notify.webhook_url: required when ops.notify.sinks includes 'webhook'"
    ]


def test_structured_from_toml_data() -> None:
    data = {"sinks": ["log", "telegram"], "telegram_chat_id": "-100123", "min_interval_s": 5}
    config = structure_section(data, NotifyConfig, "notify")
    assert config.sinks == ("log", "telegram")
    assert config.min_interval_s == 5.0
    assert config.problems() == []


def test_structuring_names_key_paths() -> None:
    with pytest.raises(ConfigError) as caught:
        structure_section({"sinks": ["sms"], "bot_token": "123:abc"}, NotifyConfig, "notify")
    assert caught.value.errors == [
        "notify.bot_token: secrets are never read from the config file; "
        "name an environment variable (token_env) or a file (token_file) instead"
    ]
    with pytest.raises(ConfigError) as caught:
        structure_section({"sinks": ["sms"]}, NotifyConfig, "notify")
    assert caught.value.errors == [
        "notify.sinks: unknown sink 'sms'; choose from log, webhook, telegram"
    ]
