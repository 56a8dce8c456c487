"""Signed REST to KuCoin over one pooled httpx client, inside the venue's rate limits.

Each request's resource pool and weight (``limits.limit_of``) are taken from the budget
(``rate_budget``) before it is sent, waiting on the run's clock while the budget says to; the
answer's ``gw-ratelimit-*`` headers are given back to the budget, a 429 empties its pool. A
private request is signed (``signing``) over exactly what is sent: the query as it reads (httpx
URL-encodes it on the wire, as the venue expects) and the JSON body's bytes.

How it fails, in the port's terms: the envelope's refusals as ``answers`` raises them
(``KucoinError`` with the venue's code, ``RateLimited``, ``MalformedAnswer``); no answer within
the deadline is ``RequestTimeout`` (the request may have acted); a connection that fails is
``KucoinUnavailable``. Secrets never appear in an error: they are only in the headers.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from types import TracebackType
from typing import Any

import httpx
import orjson
import trio

from mm.venues.base import RateLimited, RequestTimeout, VenueError
from mm.venues.kucoin.answers import unwrap
from mm.venues.kucoin.limits import limit_of
from mm.venues.kucoin.rate_budget import RateBudget
from mm.venues.kucoin.signing import Credentials, endpoint, sign_request

__all__ = ["KucoinRestTransport", "KucoinUnavailable"]


class KucoinUnavailable(VenueError):
    """The request did not reach the venue, or the venue failed it (no answer it could read)."""


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
    ) -> None:
        self._client = httpx.AsyncClient(
            base_url=base_url,
            timeout=httpx.Timeout(deadline_s),
            limits=httpx.Limits(max_connections=8, max_keepalive_connections=8),
            transport=transport,
        )
        self._credentials = credentials
        self.budget = budget
        self._now_ms = now_ms
        self._deadline_s = deadline_s
        self.waits = 0  # requests that waited for the budget

    async def __aenter__(self) -> KucoinRestTransport:
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
        pool, weight = limit_of(method, path)
        await self._take(pool, weight)
        content = orjson.dumps(body).decode() if body is not None else ""
        headers = {"Content-Type": "application/json"}
        if signed:
            if self._credentials is None:
                raise ValueError(f"{method} {path} is private, and no credentials were given")
            headers |= sign_request(
                self._credentials, self._now_ms(), method, endpoint(path, query), content
            )
        try:
            with trio.fail_after(self._deadline_s):
                response = await self._client.request(
                    method, path, params=dict(query or {}), content=content, headers=headers
                )
        except (trio.TooSlowError, httpx.TimeoutException) as error:
            raise RequestTimeout(f"{method} {path}: no answer within the deadline") from error
        except httpx.TransportError as error:
            raise KucoinUnavailable(f"{method} {path}: {type(error).__name__}") from error
        now = trio.current_time()
        self.budget.observe(pool, response.headers, now)
        if response.status_code >= 500:
            raise KucoinUnavailable(f"{method} {path}: HTTP {response.status_code}")
        try:
            return unwrap(response.status_code, response.content)
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
