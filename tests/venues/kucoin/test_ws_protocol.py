"""KuCoin's WebSocket protocol against the recorded messages: the bullet answer, the URL, what
a client sends and what it receives."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from mm.venues.kucoin.answers import unwrap
from mm.venues.kucoin.codec import CodecError
from mm.venues.kucoin.ws_protocol import (
    Bullet,
    Kind,
    classify,
    connect_url,
    parse_bullet,
    ping,
    subscribe,
    unsubscribe,
)
from tests.fixture_paths import KUCOIN

MESSAGES: dict[str, Any] = json.loads((KUCOIN / "messages.json").read_text(encoding="utf-8"))


def test_the_recorded_bullet_answer_and_the_url_it_gives() -> None:
    bullet = parse_bullet(unwrap(200, json.dumps(MESSAGES["bullet_private_response"])))
    assert bullet.endpoint == "wss://ws-api-spot.kucoin.com/"
    assert (bullet.ping_interval_s, bullet.ping_timeout_s) == (18.0, 10.0)
    assert "<token>" not in repr(bullet)  # the token is kept out of logs
    url = connect_url(Bullet("a b&c", "ws://127.0.0.1:9/endpoint", 18.0, 10.0), "mm-1")
    parts = urlsplit(url)
    assert (parts.scheme, parts.netloc, parts.path) == ("ws", "127.0.0.1:9", "/endpoint")
    assert parse_qs(parts.query) == {"token": ["a b&c"], "connectId": ["mm-1"]}
    with pytest.raises(ValueError, match="not a WebSocket endpoint"):
        connect_url(Bullet("t", "https://api.kucoin.com", 1.0, 1.0), "x")


@pytest.mark.parametrize(
    "data",
    [
        {"token": "", "instanceServers": []},
        {"token": "t", "instanceServers": []},
        {"token": "t", "instanceServers": [{"protocol": "http"}]},
        {
            "token": "t",
            "instanceServers": [
                {
                    "endpoint": "https://x",
                    "protocol": "websocket",
                    "pingInterval": 1,
                    "pingTimeout": 1,
                }
            ],
        },
        {
            "token": "t",
            "instanceServers": [
                {
                    "endpoint": "wss://x",
                    "protocol": "websocket",
                    "pingInterval": "18000",
                    "pingTimeout": 1,
                }
            ],
        },
        None,
    ],
)
def test_a_bullet_answer_without_a_usable_server_is_refused(data: Any) -> None:
    with pytest.raises(CodecError, match="malformed bullet answer"):
        parse_bullet(data)


def test_what_a_client_sends_is_the_documented_shape() -> None:
    recorded = MESSAGES["ws_subscribe"]
    sent = json.loads(subscribe(recorded["id"], recorded["topic"], private=False))
    assert sent == recorded
    assert json.loads(ping("1545910590801")) == MESSAGES["ws_ping"]
    assert json.loads(unsubscribe("7", "/spotMarket/tradeOrdersV2", private=True)) == {
        "id": "7",
        "type": "unsubscribe",
        "topic": "/spotMarket/tradeOrdersV2",
        "privateChannel": True,
        "response": True,
    }


@pytest.mark.parametrize(
    ("name", "kind", "request_id", "topic"),
    [
        ("ws_welcome", Kind.WELCOME, "hQvf8jkno", None),
        ("ws_ack", Kind.ACK, "1545910660739", None),
        ("ws_pong", Kind.PONG, "1545910590801", None),
        ("ws_ping", Kind.NOTICE, "1545910590801", None),
        ("new_spec_ticker", Kind.MESSAGE, None, "/market/ticker:BTC-USDT"),
        ("new_spec_level2_increment", Kind.MESSAGE, None, "/market/level2:BTC-USDT"),
        ("tradeOrdersV2_match_taker", Kind.MESSAGE, None, "/spotMarket/tradeOrdersV2"),
    ],
)
def test_each_recorded_message_is_classified(
    name: str, kind: Kind, request_id: str | None, topic: str | None
) -> None:
    received = classify(json.dumps(MESSAGES[name]))
    assert (received.kind, received.id, received.topic) == (kind, request_id, topic)
    assert received.message == MESSAGES[name]


def test_an_error_and_what_is_no_message() -> None:
    error = classify('{"id":"3","type":"error","code":404,"data":"topic /x is not found"}')
    assert (error.kind, error.id) == (Kind.ERROR, "3")
    for text in (
        "not json",
        "[1]",
        '{"id":1}',
        '{"type":"message","data":{}}',
        '{"type":"ack","id":[1]}',
    ):
        with pytest.raises(CodecError):
            classify(text)


@pytest.mark.parametrize("kind", list(Kind))
def test_a_type_is_its_kind_and_any_other_text_a_notice(kind: Kind) -> None:
    assert classify(json.dumps({"type": kind.value, "topic": "/t", "data": 1})).kind is kind
    assert classify(json.dumps({"type": kind.value.upper()})).kind is Kind.NOTICE
    for wrong in (None, 1, [kind.value], {kind.value: 1}):
        with pytest.raises(CodecError, match="without a type"):
            classify(json.dumps({"type": wrong}))
