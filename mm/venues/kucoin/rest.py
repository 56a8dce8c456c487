"""Signed REST to KuCoin, inside the venue's rate limits: orders on the order lane, the rest
over one pooled httpx client.

Each request's resource pool and weight (``limits.limit_of``) are taken from the budget
(``rate_budget``) before it is sent, waiting on the run's clock while the budget says to; the
answer's ``gw-ratelimit-*`` headers are given back to the budget, a 429 empties its pool. A
private request is signed (``signing``) over exactly what is sent: the query as it reads (httpx
URL-encodes it on the wire, as the venue expects) and the JSON body's bytes.

The signed requests that are not reads (place, cancel, alter, the dead-man's switch, the
private bullet: every signed method but ``GET``) go on the order lane (``lane.OrderLane``): a
few connections opened when the transport is entered and kept open, the request's bytes written
by hand (``http1``) with what never changes joined once (the request line and pool of each
``POST`` path; ``Host``, ``Content-Type``, the key, the signed passphrase: ``signing.Signer``),
the signature over a copy of the HMAC keyed once. ``send_now`` writes such a request at once,
without waiting for anything (a free plain connection, the budget with room: ``ready_now``),
and hands back the ``LaneCall`` whose ``answer`` is awaited in any task: an order sent from one
task and answered in another. Reads and public requests stay on httpx. A
transport made with an httpx ``transport`` (the tests' in-memory ones) sends everything through
it, and so does one used without being entered. The lane connects to the host itself: it does
not go through an ``HTTP(S)_PROXY`` that httpx would honour.

How it fails, in the port's terms: the envelope's refusals as ``answers`` raises them
(``KucoinError`` with the venue's code, ``RateLimited``, ``MalformedAnswer``); no answer within
the deadline is ``RequestTimeout`` (the request may have acted); a connection that fails is
``KucoinUnavailable``. On the lane: a request of which not one byte was written (no connection
open and free by the deadline, or its socket refused the first write) is ``KucoinNotSent``, a
``KucoinUnavailable`` that says the venue never saw it; once any byte went out, a connection
that fails or closes before the whole answer is ``KucoinUnavailable`` (it may have acted), and
the request is never sent again. Secrets never appear in an error: they are only in the headers.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable, Mapping
from functools import partial
from types import TracebackType
from typing import Any, Final
from urllib.parse import urlsplit

import httpx
import orjson
import trio

from mm import world
from mm.venues.base import RateLimited, RequestTimeout, VenueError
from mm.venues.kucoin.answers import unwrap
from mm.venues.kucoin.http1 import Answer, header_block, request_line
from mm.venues.kucoin.lane import (
    CONNECTIONS,
    Connect,
    Exchange,
    Lost,
    NotSent,
    OrderLane,
    connect_to,
)
from mm.venues.kucoin.limits import limit_of
from mm.venues.kucoin.rate_budget import RateBudget
from mm.venues.kucoin.signing import Credentials, Signer, endpoint

__all__ = ["KucoinNotSent", "KucoinRestTransport", "KucoinUnavailable", "LaneCall"]

USER_AGENT: Final = "mm"
# What follows a lane request's constant start (its line and constant headers).
_SIGNED_REST: Final = b"%sKC-API-SIGN: %s\r\nKC-API-TIMESTAMP: %d\r\nContent-Length: %d\r\n\r\n%s"
_LANE_PATH: Final = re.compile(r"/[A-Za-z0-9/_.~-]*")  # a path sent as it reads


class KucoinUnavailable(VenueError):
    """The request did not reach the venue, or the venue failed it (no answer it could read)."""


class KucoinNotSent(KucoinUnavailable):
    """Not one byte of the request was written: the venue never saw it."""


class KucoinRestTransport:
    """KuCoin's REST, signed and budgeted (see the module)."""

    def __init__(
        self,
        base_url: str,
        credentials: Credentials | None,
        *,
        budget: RateBudget,
        now_ms: Callable[[], int],
        deadline_s: float = 5.0,
        transport: httpx.AsyncBaseTransport | None = None,
        lane_connections: int = CONNECTIONS,
        connect: Connect | None = None,
    ) -> None:
        """``lane_connections``: the order lane's (0: none, everything on httpx); ``connect``:
        how the lane opens one (by default TCP to ``base_url``'s host, and TLS for https)."""
        self._client = httpx.AsyncClient(
            base_url=base_url,
            timeout=httpx.Timeout(deadline_s),
            limits=httpx.Limits(max_connections=8, max_keepalive_connections=8),
            transport=transport if transport is not None else world.http_transport(),
        )
        self.budget = budget
        self._now_ms = now_ms
        self._deadline_s = deadline_s
        self.waits = 0  # requests that waited for the budget
        self._signer = Signer(credentials) if credentials is not None else None
        self.lane: OrderLane | None = None
        self._lane_open = False
        self._prefix = urlsplit(base_url).path.rstrip("/")
        self._head = b""
        self._lines: dict[tuple[str, str], tuple[str, int, bytes]] = {}  # (pool, weight, start)
        if transport is None and lane_connections > 0:
            default_connect, host = connect_to(base_url)
            self.lane = OrderLane(connect or default_connect, connections=lane_connections)
            self._head = header_block(
                [
                    ("Host", host),
                    ("User-Agent", USER_AGENT),
                    ("Accept-Encoding", "identity"),
                    ("Content-Type", "application/json"),
                    *(self._signer.static_headers if self._signer is not None else ()),
                ]
            )

    async def __aenter__(self) -> KucoinRestTransport:
        if self.lane is not None and self._signer is not None:
            await self.lane.__aenter__()
            self._lane_open = True
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        if self._lane_open and self.lane is not None:
            self._lane_open = False
            await self.lane.__aexit__(None, None, None)  # (its tasks cancelled: never waits)
        with trio.CancelScope(shield=True):
            await self._client.aclose()

    async def request(
        self,
        method: str,
        path: str,
        *,
        query: Mapping[str, str] | None = None,
        body: Mapping[str, Any] | None = None,
        signed: bool = True,
    ) -> Any:
        """The ``data`` of the venue's answer to one request (see the module for failures)."""
        if signed and method != "GET" and self._lane_open and _LANE_PATH.fullmatch(path):
            return await self._on_lane(method, path, query, body)
        pool, weight = limit_of(method, path)
        await self._take(pool, weight)
        content = orjson.dumps(body).decode() if body is not None else ""
        headers = {"Content-Type": "application/json"}
        if signed:
            if self._signer is None:
                raise ValueError(f"{method} {path} is private, and no credentials were given")
            headers |= self._signer.headers(self._now_ms(), method, endpoint(path, query), content)
        try:
            with trio.fail_after(self._deadline_s):
                response = await self._client.request(
                    method, path, params=dict(query or {}), content=content, headers=headers
                )
        except (trio.TooSlowError, httpx.TimeoutException) as error:
            raise RequestTimeout(f"{method} {path}: no answer within the deadline") from error
        except httpx.TransportError as error:
            raise KucoinUnavailable(f"{method} {path}: {type(error).__name__}") from error
        return self._answered(
            method, path, pool, response.status_code, response.headers, response.content
        )

    async def _on_lane(
        self,
        method: str,
        path: str,
        query: Mapping[str, str] | None,
        body: Mapping[str, Any] | None,
    ) -> Any:
        """``request`` on the order lane (entered, with credentials: see ``request``)."""
        assert self.lane is not None
        pool, weight, start = self._lane_line(method, path, query)
        if self.budget.take(pool, weight, trio.current_time()) > 0:
            await self._take(pool, weight)
        request, deadline = self._signed(method, path, query, body, start)
        return await self._lane_answer(method, path, pool, self.lane.exchange(request, deadline))

    def would_wait(self, method: str, path: str) -> bool:
        """Whether ``request`` would wait for the rate budget before sending this now."""
        pool, weight = limit_of(method, path)
        return self.budget.pool(pool).wait(weight, trio.current_time()) > 0

    def ready_now(self, method: str, path: str) -> bool:
        """Whether ``send_now`` would write this request now (nothing is spent here)."""
        if self._lane_now(method, path) is None:
            return False
        pool, weight, _ = self._lane_line(method, path, None)
        return self.budget.pool(pool).wait(weight, trio.current_time()) <= 0

    def _lane_now(self, method: str, path: str) -> OrderLane | None:
        """The order lane when it can take this request now (entered, a plain connection
        idle, a signed path that goes on it)."""
        lane = self.lane
        if (
            lane is None
            or not self._lane_open
            or method == "GET"
            or not lane.ready_now()
            or not _LANE_PATH.fullmatch(path)
        ):
            return None
        return lane

    def send_now(self, method: str, path: str, body: Mapping[str, Any] | None) -> LaneCall | None:
        """A signed request that goes on the order lane (see the module), written at once,
        its answer to come from the ``LaneCall``; None, with nothing written or spent, when
        it cannot go without waiting: the lane not entered, no plain connection of it idle,
        or the budget says to wait. Raises ``KucoinNotSent`` when the socket refused it."""
        lane = self._lane_now(method, path)
        if lane is None:
            return None
        pool, weight, start = self._lane_line(method, path, None)
        if self.budget.take(pool, weight, trio.current_time()) > 0:
            return None
        request, deadline = self._signed(method, path, None, body, start)
        try:
            exchange = lane.send_now(request, deadline)
        except NotSent as error:
            raise KucoinNotSent(f"{method} {path}: not sent: {error}") from error
        assert exchange is not None  # a connection was idle, and nothing has run since
        return LaneCall(exchange, partial(self._lane_answer, method, path, pool))

    def _lane_line(
        self, method: str, path: str, query: Mapping[str, str] | None
    ) -> tuple[str, int, bytes]:
        """A lane request's pool, weight, and the bytes that start it (its request line and
        constant headers), joined once per ``POST`` path."""
        known = self._lines.get((method, path)) if not query else None
        if known is not None:
            return known
        pool, weight = limit_of(method, path)
        target = self._prefix + path
        if query:
            target += "?" + str(httpx.QueryParams(query))
        line = (pool, weight, request_line(method, target) + self._head)
        if not query and method == "POST":  # a few paths, each with no id in it
            self._lines[(method, path)] = line
        return line

    def _signed(
        self,
        method: str,
        path: str,
        query: Mapping[str, str] | None,
        body: Mapping[str, Any] | None,
        start: bytes,
    ) -> tuple[bytes, float]:
        """A lane request's bytes, signed now, and its deadline."""
        assert self._signer is not None
        content = orjson.dumps(body) if body is not None else b""
        stamp = self._now_ms()
        signature = self._signer.signature_bytes(stamp, method, endpoint(path, query), content)
        request = _SIGNED_REST % (start, signature, stamp, len(content), content)
        return request, trio.current_time() + self._deadline_s

    async def _lane_answer(
        self, method: str, path: str, pool: str, exchange: Awaitable[Answer]
    ) -> Any:
        """The ``data`` of a lane request's answer (the lane's failures in the port's terms)."""
        try:
            answer = await exchange
        except NotSent as error:
            raise KucoinNotSent(f"{method} {path}: not sent: {error}") from error
        except Lost as error:
            raise KucoinUnavailable(f"{method} {path}: {error}") from error
        except trio.TooSlowError as error:
            raise RequestTimeout(f"{method} {path}: no answer within the deadline") from error
        return self._answered(method, path, pool, answer.status, answer.headers, answer.body)

    def _answered(
        self,
        method: str,
        path: str,
        pool: str,
        status: int,
        headers: Mapping[str, str],
        body: bytes,
    ) -> Any:
        """An answer's ``data``, its rate-limit headers given back to the budget (see the
        module for what raises)."""
        now = trio.current_time()
        self.budget.observe(pool, headers, now)
        if status >= 500:
            raise KucoinUnavailable(f"{method} {path}: HTTP {status}")
        try:
            return unwrap(status, body)
        except RateLimited:
            self.budget.refused(pool, now)
            raise

    async def _take(self, pool: str, weight: int) -> None:
        wait = self.budget.take(pool, weight, trio.current_time())
        if wait > 0:
            self.waits += 1
        while wait > 0:
            await trio.sleep(wait)
            wait = self.budget.take(pool, weight, trio.current_time())


class LaneCall:
    """A request ``KucoinRestTransport.send_now`` wrote: ``answer`` awaits its ``data``, in
    any task, and fails as ``request`` does. Never awaited, a request written whole costs
    nothing (the lane reads its answer all the same and frees the connection); one the socket
    took only part of holds its connection until the deadline, which drops it."""

    __slots__ = ("_exchange", "_finish")

    def __init__(
        self, exchange: Exchange, finish: Callable[[Awaitable[Answer]], Awaitable[Any]]
    ) -> None:
        self._exchange = exchange
        self._finish = finish

    async def answer(self) -> Any:
        return await self._finish(self._exchange.answer())
