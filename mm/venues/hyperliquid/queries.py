"""Every ``/info`` request through the client-side rate limiter, with its true weight.

The venue weighs an ``/info`` request by its type and, for the types that list fills, orders or
candles, also by the items its answer lists (``mm.venues.hyperliquid.limits``): a page of 2000
fills weighs 20 + 100. The per-item weight is known only once the answer is in, so ``ask``
records the most the request can weigh before sending it (waiting for the limiter's window,
block and budget as any request does), then settles on what the answer weighed: requests in
flight together can never take the window past the budget, and what a small answer did not
use is given back at once.

``ask`` is the one way to the venue's ``/info``: the order client's queries (over the
WebSocket post or REST) and ``RestQueries``, the REST view the user stream is given for its
history read and its resyncs (on its own deadlines), share the service's one limiter, so no
request spends the IP budget behind its back.

How it fails: what the send raises passes through. An HTTP 429 (over REST, or a WebSocket
post answered with one) is told to the limiter first (``RateLimiter.on_http_429``: every
request waits out its backoff, and the IP budget is cut and recovers), then raised as
``RateLimited``; the venue counts none of a refused request, so neither does the window. A
request that failed otherwise keeps its base weight (the venue counted it) and gives back the
per-item reservation.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from functools import partial
from typing import Any, Protocol

import trio

from mm.venues.base import RateLimited
from mm.venues.hyperliquid import limits
from mm.venues.hyperliquid.rate_limit import Cost, RateLimiter, acquire_at

__all__ = ["InfoTransport", "RestQueries", "ask"]


class InfoTransport(Protocol):
    """The part of ``RestTransport`` a query needs: ``POST /info``."""

    async def info(self, request: Mapping[str, Any], *, deadline_s: float | None = None) -> Any: ...


async def ask(
    limiter: RateLimiter,
    request: Mapping[str, Any],
    send: Callable[[], Awaitable[Any]],
    *,
    clock: Callable[[], float] = trio.current_time,
    essential: bool = False,
) -> Any:
    """``send()``'s answer to ``request``, with the request charged to ``limiter`` at its true
    weight (see the module docstring; ``essential``: see ``Cost``)."""
    reserved = Cost.reserved_info(request, essential=essential)
    at = await acquire_at(limiter, reserved, clock=clock)
    weight = limits.info_weight(request)
    try:
        answer = await send()
        weight = limits.answered_info_weight(request, answer)
        return answer
    except RateLimited:
        weight = 0  # refused: the venue counts none of it
        limiter.on_http_429(clock())
        raise
    finally:
        limiter.settle(at, reserved.weight, weight, clock())


class RestQueries:
    """``POST /info`` over REST through the limiter: what the user stream reads the venue with.

    ``on_rate_limited`` hears of every HTTP 429 met here (after the limiter was told), so the
    service can tell the resync's waits, which the stream retries on its own backoff, from API
    errors of trading. With ``essential`` (the user stream's: trading waits on its resync, and
    fills made while the socket was down are unknown until it is done) a request waits out the
    limiter's block after a 429 like any other, then spends the full IP budget rather than the
    reactive cut that paces trading's requests (which would hold a resync for up to minutes).
    """

    def __init__(
        self,
        rest: InfoTransport,
        limiter: RateLimiter,
        *,
        essential: bool = False,
        on_rate_limited: Callable[[], None] | None = None,
        clock: Callable[[], float] = trio.current_time,
    ) -> None:
        self._rest = rest
        self._limiter = limiter
        self._essential = essential
        self._on_rate_limited = on_rate_limited
        self._clock = clock

    async def info(self, request: Mapping[str, Any], *, deadline_s: float | None = None) -> Any:
        send = partial(self._rest.info, request, deadline_s=deadline_s)
        try:
            return await ask(
                self._limiter, request, send, clock=self._clock, essential=self._essential
            )
        except RateLimited:
            if self._on_rate_limited is not None:
                self._on_rate_limited()
            raise
