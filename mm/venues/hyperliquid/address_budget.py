"""The address budget kept on the venue's own figures, and growing with what mm trades.

The venue lets an address send 10000 actions plus one per USDC it has traded since inception
(``userRateLimit``: requests used, the cap, the cumulative volume). The rate limiter counts
mm's sends on top of the venue's last figures; ``AddressBudget`` feeds it the rest:

- every fill's notional as it arrives (``on_fill``): each USDC traded raises the cap by one,
  so a market maker that fills keeps its budget instead of running down the initial 10000
  (at the shipped two orders a second, in about 1.4 hours) and throttling itself to the
  venue's one request per 10 s while the venue would allow more;
- the venue's own figures, read every ``address_refresh_seconds`` and soon after each resync
  of the user stream (every reconnect: what was sent or lost while the socket was down is the
  venue's to say; not when a read was asked for since the resync began), so the limiter never
  drifts from what the venue counts (requests of other clients of the address, a fill the
  stream has not told yet).

How it fails: a read that fails (the venue down, a 429, on which the limiter has backed off
already, a malformed answer) is logged, counted (``mm_address_budget_reads_total{result}``)
and done again at the next period or resync; meanwhile the limiter keeps its own estimate.
Before the order client is up there is nothing to read with: the round is skipped.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import trio
from loguru import logger
from prometheus_client import CollectorRegistry, Counter

from mm import clock
from mm.model import Fill, RateLimitState
from mm.venues.base import VenueError
from mm.venues.hyperliquid.rate_limit import RateLimiter

__all__ = ["AddressBudget"]

Read = Callable[[], Awaitable[RateLimitState]]


class AddressBudget:
    """Credits fills to the limiter's address budget and refreshes it from the venue."""

    def __init__(
        self,
        limiter: RateLimiter,
        read: Callable[[], Read | None],
        *,
        every_s: float,
        registry: CollectorRegistry | None = None,
    ) -> None:
        self._limiter = limiter
        self._read = read  # the order client's userRateLimit read (None: no client yet)
        self.every_s = every_s
        self._due = trio.Event()
        self.last_read_at: float | None = None  # wall time of the last good read
        self.last_state: RateLimitState | None = None
        self.reads = Counter(
            "mm_address_budget_reads",
            "Reads of the venue's address budget (userRateLimit) into the rate limiter, by result.",
            ["result"],
            registry=registry,
        )

    def on_fill(self, fill: Fill) -> None:
        """A fill of the account: its notional raises the cap (once; see ``add_volume``)."""
        self._limiter.add_volume(fill.px * fill.sz, fill.time_ms)

    def resynced(self, started_at: float) -> None:
        """The user stream resynced (a reconnect, frames lost), the resync having started at
        ``started_at`` (Trio's clock): read the venue's figures, unless the limiter has them
        from a read asked for since (the startup sequence's, on a first start)."""
        observed_at = self._limiter.observed_at
        if observed_at is None or observed_at < started_at:
            self._due.set()

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Read every ``every_s`` (the startup sequence has just read them) and on demand."""
        task_status.started()
        while True:
            with trio.move_on_after(self.every_s):
                await self._due.wait()
            self._due = trio.Event()
            await self.refresh()

    async def refresh(self) -> bool:
        """One read into the limiter; False when it could not be done."""
        read = self._read()
        if read is None:
            return False
        try:
            state = await read()
        except (VenueError, ValueError) as error:  # a codec error is a ValueError
            self.reads.labels(result="failed").inc()
            logger.warning("address budget: the venue's figures could not be read: {}", error)
            return False
        self.reads.labels(result="ok").inc()
        self.last_state = state
        self.last_read_at = clock.wall()
        return True

    def status(self) -> dict[str, object]:
        state = self.last_state
        limiter = self._limiter
        return {
            "used": limiter.address_used(),
            "cap": limiter.address_cap(),
            "venue": None
            if state is None
            else {
                "used": state.requests_used,
                "cap": state.requests_cap,
                "cum_volume": state.cum_volume,
                "read_at": self.last_read_at,
            },
        }
