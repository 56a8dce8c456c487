"""The Venue interface: what every adapter provides to the rest of mm.

Streams deliver typed events (``mm.model``) on memory channels; requests are batched. An
adapter hides its wire format, signing, transport fallbacks and retries behind this.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

import trio

from mm.model import (
    AccountState,
    AssetMeta,
    CancelOrder,
    CancelResult,
    Fill,
    MarketEvent,
    ModifyOrder,
    OpenOrder,
    OrderReport,
    PlaceOrder,
    PlaceResult,
    RateLimitState,
    UserEvent,
)


class VenueError(Exception):
    """A request failed at the venue or on the way (after the adapter's own retries)."""


class Venue(Protocol):
    # --- reference and account state (REST or WebSocket post) -------------------------------

    async def metadata(self) -> list[AssetMeta]: ...

    async def open_orders(self) -> list[OpenOrder]: ...

    async def account_state(self) -> AccountState: ...

    async def fills_since(self, time_ms: int) -> list[Fill]: ...

    async def order_status(self, target: int | str) -> OrderReport | None:
        """By oid or cloid; None when the venue does not know the order."""
        ...

    async def rate_limit(self) -> RateLimitState: ...

    # --- orders (batched; results in request order) -----------------------------------------

    async def place(self, orders: Sequence[PlaceOrder]) -> list[PlaceResult]: ...

    async def cancel(self, cancels: Sequence[CancelOrder]) -> list[CancelResult]: ...

    async def modify(self, modifies: Sequence[ModifyOrder]) -> list[PlaceResult]: ...

    async def schedule_cancel(self, at_ms: int | None) -> None:
        """Arm (or with None, disarm) the venue's dead-man's switch."""
        ...

    # --- streams (run as supervised children; events go to the given channels) -------------

    async def run_market_stream(
        self,
        coins: Sequence[str],
        events: trio.MemorySendChannel[MarketEvent],
        *,
        task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED,
    ) -> None: ...

    async def run_user_stream(
        self,
        events: trio.MemorySendChannel[UserEvent],
        *,
        task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED,
    ) -> None: ...
