"""KuCoin's WebSocket protocol, pure: the token handshake's answer, the URL to connect to, the
messages a client sends, and what each message it receives is.

The venue's procedure (KuCoin's docs, "WebSocket": "Apply connect token", "Create connection",
"Ping", "Subscribe"):

* ``POST /api/v1/bullet-public`` (or ``-private``, signed) answers a ``token`` and its
  ``instanceServers``: each an ``endpoint``, ``pingInterval`` and ``pingTimeout`` in
  milliseconds (``parse_bullet``). A token is asked for anew before every connection (they
  expire after 24 hours, and a reconnect with an old one may be refused).
* The client connects to ``endpoint?token=…&connectId=…`` (``connect_url``; the connect id is
  the client's, echoed in the welcome), and waits for ``{"type": "welcome"}`` before anything
  else.
* It subscribes with ``{"id", "type": "subscribe", "topic", "privateChannel", "response":
  true}`` and the venue acknowledges with ``{"id", "type": "ack"}`` (``subscribe``); errors
  come as ``{"id", "type": "error", "code", "data"}``.
* It pings (``{"id", "type": "ping"}``, answered by ``pong`` with the same id) every
  ``pingInterval``: silent for about a minute, it is disconnected.
* Data comes as ``{"type": "message", "topic", "subject", "data"}`` (``classify``).

Fails: ``CodecError`` for a bullet answer without a usable server, or a message that is not
JSON object of the venue's shape; ``ValueError`` for an endpoint that is not ``ws``/``wss``.
"""

from __future__ import annotations

import enum
from typing import Any, Final
from urllib.parse import urlencode, urlsplit

import attrs
import orjson

from mm.venues.kucoin.codec import CodecError

__all__ = [
    "Bullet",
    "Kind",
    "Received",
    "classify",
    "connect_url",
    "parse_bullet",
    "ping",
    "subscribe",
    "unsubscribe",
]


@attrs.frozen
class Bullet:
    """A connect token and the server to use it on."""

    token: str = attrs.field(repr=False)  # a credential of sorts: not in logs
    endpoint: str
    ping_interval_s: float
    ping_timeout_s: float


class Kind(enum.Enum):
    WELCOME = "welcome"
    ACK = "ack"
    PONG = "pong"
    MESSAGE = "message"
    ERROR = "error"
    NOTICE = "notice"  # other control messages the venue may send (and a ping of its own)


# Each kind by its type's text (``Kind(text)``, an enum's call, costs a microsecond a message).
_KINDS: Final = {kind.value: kind for kind in Kind}


@attrs.frozen(slots=True)
class Received:
    """A received message: what it is, its id (control messages), topic and subject (data)."""

    kind: Kind
    id: str | None
    topic: str | None
    subject: str | None
    message: dict[str, Any] = attrs.field(repr=False)


def parse_bullet(data: Any) -> Bullet:
    """The ``data`` of a bullet answer; its first ``websocket`` server."""
    try:
        token = data["token"]
        if type(token) is not str or not token:
            raise ValueError("no token")
        for server in data["instanceServers"]:
            if server.get("protocol") != "websocket":
                continue
            interval, timeout = server["pingInterval"], server["pingTimeout"]
            if type(interval) is not int or type(timeout) is not int or interval <= 0:
                raise ValueError(f"pingInterval {interval!r}, pingTimeout {timeout!r}")
            endpoint = server["endpoint"]
            connect_url(Bullet(token, endpoint, 1.0, 1.0), "check")  # (a ws URL, or ValueError)
            return Bullet(token, endpoint, interval / 1000, timeout / 1000)
        raise ValueError("no websocket server")
    except (KeyError, TypeError, ValueError, AttributeError) as error:
        raise CodecError(f"malformed bullet answer: {type(error).__name__}: {error}") from None


def connect_url(bullet: Bullet, connect_id: str) -> str:
    """Where to connect: the server's endpoint with the token and the client's connect id."""
    parts = urlsplit(bullet.endpoint)
    if parts.scheme not in ("ws", "wss") or not parts.netloc:
        raise ValueError(f"not a WebSocket endpoint: {bullet.endpoint!r}")
    query = urlencode({"token": bullet.token, "connectId": connect_id})
    separator = "&" if parts.query else "?"
    return f"{bullet.endpoint}{separator}{query}"


def _request(kind: str, request_id: str | int, **fields: Any) -> str:
    return orjson.dumps({"id": request_id, "type": kind, **fields}).decode()


def subscribe(request_id: str | int, topic: str, *, private: bool) -> str:
    """Subscribe to ``topic`` (``/market/level2:BTC-USDT,ETH-USDT``), an ack asked for."""
    return _request("subscribe", request_id, topic=topic, privateChannel=private, response=True)


def unsubscribe(request_id: str | int, topic: str, *, private: bool) -> str:
    return _request("unsubscribe", request_id, topic=topic, privateChannel=private, response=True)


def ping(request_id: str | int) -> str:
    return _request("ping", request_id)


def classify(text: str | bytes) -> Received:
    """What a received message is (see the module)."""
    try:
        message = orjson.loads(text)
    except orjson.JSONDecodeError:
        raise CodecError("a WebSocket message that is not JSON") from None
    if type(message) is not dict:
        raise CodecError(f"a WebSocket message that is not an object: {type(message).__name__}")
    kind_text = message.get("type")
    if type(kind_text) is not str:
        raise CodecError(f"a WebSocket message without a type: {message!r:.200}")
    kind = _KINDS.get(kind_text, Kind.NOTICE)
    request_id = message.get("id")
    if request_id is not None and type(request_id) not in (str, int):
        raise CodecError(f"a WebSocket message with an id of {type(request_id).__name__}")
    topic, subject = message.get("topic"), message.get("subject")
    if kind is Kind.MESSAGE and (type(topic) is not str or "data" not in message):
        raise CodecError(f"a data message without its topic or data: {message!r:.200}")
    return Received(
        kind,
        None if request_id is None else str(request_id),
        topic if type(topic) is str else None,
        subject if type(subject) is str else None,
        message,
    )
