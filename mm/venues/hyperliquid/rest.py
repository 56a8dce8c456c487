"""REST transport to the venue: ``POST /info`` and ``POST /exchange`` over one pooled client.

One httpx client per adapter (connection pooling, HTTP keep-alive), an overall deadline per request
with ``trio.fail_after`` (connect, send, wait and read together), and the venue's failure modes as
exceptions the order API can act on: 429 → ``TooManyRequests`` (the port's ``RateLimited``), 5xx →
``VenueUnavailable``, a timeout → the port's ``RequestTimeout`` (the request may or may not have
acted: callers treat an order's fate as unknown), 422 and other statuses → ``RestError``. A read
(``/info``) whose kept-alive connection was closed under it is asked once more; an action never is
(it may have acted).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from types import TracebackType
from typing import Any

import httpx
import orjson
import trio

from mm import world
from mm.venues.base import RateLimited, RequestTimeout, VenueError

Observer = Callable[[str, float, int], None]  # (endpoint, seconds, status; 0 on timeout)


class RestError(VenueError):
    def __init__(self, endpoint: str, status: int, text: str) -> None:
        super().__init__(f"{endpoint}: HTTP {status}: {text[:200]}")
        self.endpoint = endpoint
        self.status = status
        self.text = text


class TooManyRequests(RestError, RateLimited):
    """HTTP 429: the IP's weight budget is spent."""


class VenueUnavailable(RestError):
    """HTTP 5xx: the venue failed the request."""


class RestTransport:
    def __init__(
        self,
        base_url: str,
        *,
        deadline_s: float = 5.0,
        observer: Observer | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self._client = httpx.AsyncClient(
            base_url=base_url,
            timeout=httpx.Timeout(deadline_s),
            limits=httpx.Limits(max_connections=8, max_keepalive_connections=8),
            headers={"content-type": "application/json"},
            transport=transport if transport is not None else world.http_transport(),
        )
        self._deadline_s = deadline_s
        self._observer = observer

    async def __aenter__(self) -> RestTransport:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        with trio.CancelScope(shield=True):
            await self._client.aclose()

    async def info(self, request: Mapping[str, Any], *, deadline_s: float | None = None) -> Any:
        """``POST /info``. A read that met a kept-alive connection the venue had just closed
        (no answer at all) is asked once more: it is read-only, and an idle pooled connection
        closing as it is reused is no sign of the venue failing."""
        try:
            return await self._post("/info", request, deadline_s)
        except VenueUnavailable as error:
            if not isinstance(error.__cause__, httpx.RemoteProtocolError):
                raise
        return await self._post("/info", request, deadline_s)

    async def exchange(self, body: Mapping[str, Any], *, deadline_s: float | None = None) -> Any:
        return await self._post("/exchange", body, deadline_s)

    async def _post(self, endpoint: str, payload: Mapping[str, Any], deadline: float | None) -> Any:
        started = time.perf_counter()
        try:
            with trio.fail_after(deadline if deadline is not None else self._deadline_s):
                response = await self._client.post(endpoint, content=orjson.dumps(payload))
        except (trio.TooSlowError, httpx.TimeoutException) as error:
            self._observe(endpoint, started, 0)
            raise RequestTimeout(f"{endpoint}: no answer within the deadline") from error
        except httpx.TransportError as error:
            self._observe(endpoint, started, 0)
            raise VenueUnavailable(endpoint, 0, f"transport error: {error!r}") from error
        self._observe(endpoint, started, response.status_code)
        status = response.status_code
        if status == 200:
            try:
                return orjson.loads(response.content)
            except orjson.JSONDecodeError as error:
                raise RestError(endpoint, status, "answer is not JSON") from error
        if status == 429:
            raise TooManyRequests(endpoint, status, response.text)
        if status >= 500:
            raise VenueUnavailable(endpoint, status, response.text)
        raise RestError(endpoint, status, response.text)

    def _observe(self, endpoint: str, started: float, status: int) -> None:
        if self._observer is not None:
            self._observer(endpoint, time.perf_counter() - started, status)
