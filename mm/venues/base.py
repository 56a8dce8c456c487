"""The venue interface: what every adapter provides to the rest of mm.

Two parts. ``VenueClient`` is the request side: queries and batched order requests in
``mm.model`` types. ``VenueAdapter`` is the whole adapter as the service runs it: its feeds are
supervised children (``run_market``, ``run_user``) that deliver typed values on the book bus,
the trades channel and the user-events channel, and its client is available once the user feed
is up. Adapters hide wire formats, signing, transport fallbacks and retries behind these.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol

import trio

from mm.book import BookBus
from mm.model import (
    AccountState,
    AssetMeta,
    CancelOrder,
    CancelResult,
    Fill,
    ModifyOrder,
    OpenOrder,
    OrderReport,
    PlaceOrder,
    PlaceResult,
    RateLimitState,
    Trade,
)


class VenueError(Exception):
    """A request failed at the venue or on the way (after the adapter's own retries)."""


class SwitchNeedsVolume(VenueError):
    """The venue refuses to arm its dead-man's switch until the account has traded
    ``required`` (USD); it counts ``traded`` so far (None when it did not say). Asking again
    before that volume is traded is refused again."""

    def __init__(self, text: str, required: float, traded: float | None) -> None:
        super().__init__(text)
        self.text = text
        self.required = required
        self.traded = traded


class VenueClient(Protocol):
    # --- reference and account state -------------------------------------------------------

    async def metadata(self) -> list[AssetMeta]: ...

    async def open_orders(self) -> list[OpenOrder]: ...

    async def account_state(self) -> AccountState: ...

    async def fills_since(self, time_ms: int) -> list[Fill]: ...

    async def order_status(self, target: int | str) -> OrderReport | None:
        """By oid or cloid; None when the venue does not know the order."""
        ...

    async def rate_limit(self) -> RateLimitState: ...

    # --- orders (batched; results in request order) ----------------------------------------

    async def place(self, orders: Sequence[PlaceOrder]) -> list[PlaceResult]: ...

    async def cancel(self, cancels: Sequence[CancelOrder]) -> list[CancelResult]: ...

    async def modify(self, modifies: Sequence[ModifyOrder]) -> list[PlaceResult]: ...

    async def schedule_cancel(self, at_ms: int | None) -> None:
        """Arm (or with None, disarm) the venue's dead-man's switch."""
        ...


class VenueAdapter(Protocol):
    bus: BookBus  # the latest checked book per coin
    trades: trio.MemoryReceiveChannel[Trade]
    user_events: trio.MemoryReceiveChannel[Any]  # order reports, fills, cancels, resync marks

    @property
    def client(self) -> VenueClient | None:
        """The request side, once the user feed is up."""
        ...

    def healthy(self) -> bool:
        """In sync with the venue: user stream resynced and every book fresh."""
        ...

    async def run_market(
        self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED
    ) -> None: ...

    async def run_user(
        self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED
    ) -> None: ...
