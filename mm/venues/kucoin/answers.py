"""KuCoin's REST answers, pure: the envelope every answer comes in, opened or refused.

Every answer is ``{"code": "200000", "data": ...}`` when the request succeeded, and
``{"code": "<six digits>", "msg": "..."}`` when it did not, ``code`` a string either way
(KuCoin's docs, "Request" and "Errors"). ``unwrap`` gives the data of a success and raises the
port's errors for the others:

* HTTP 429, or code ``429000``: ``RateLimited`` (the request did not act; the budget is told by
  the caller, who knows the pool);
* any other code: ``KucoinError``, a ``VenueError`` carrying the venue's ``code`` and ``msg``
  (400100 a parameter, 200004 the balance, 400002 the timestamp, 400005 the signature...);
* an answer that is not such an envelope (not JSON, no code, a code not a string, a success
  without ``data``): ``MalformedAnswer``, with the HTTP status and the start of the text.

Fails: as above; never returns half an answer.
"""

from __future__ import annotations

from typing import Any, Final

import orjson

from mm.venues.base import MalformedAnswer, RateLimited, VenueError
from mm.venues.kucoin.limits import TOO_MANY_REQUESTS

__all__ = ["SUCCESS", "KucoinError", "unwrap"]

SUCCESS: Final = "200000"
_SHOWN: Final = 200  # characters of an unreadable answer put in the error


class KucoinError(VenueError):
    """The venue refused a request: its code and message."""

    def __init__(self, code: str, msg: str, http_status: int) -> None:
        super().__init__(f"KuCoin {code}: {msg} (HTTP {http_status})")
        self.code = code
        self.msg = msg
        self.http_status = http_status


def unwrap(http_status: int, body: bytes | str) -> Any:
    """The ``data`` of a successful answer, or the error the answer is (see the module)."""
    try:
        answer = orjson.loads(body)
    except orjson.JSONDecodeError:
        answer = None
    code = answer.get("code") if type(answer) is dict else None
    if http_status == 429 or code == TOO_MANY_REQUESTS:
        raise RateLimited(f"KuCoin {TOO_MANY_REQUESTS}: too many requests (HTTP {http_status})")
    if type(code) is not str:
        text = body.decode(errors="replace") if isinstance(body, bytes) else body
        raise MalformedAnswer(f"not a KuCoin answer (HTTP {http_status}): {text[:_SHOWN]!r}")
    if code == SUCCESS:
        if "data" not in answer:
            raise MalformedAnswer(f"a KuCoin success without data (HTTP {http_status})")
        return answer["data"]
    msg = answer.get("msg")
    raise KucoinError(code, msg if type(msg) is str else "", http_status)
