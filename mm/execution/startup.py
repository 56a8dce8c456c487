"""The startup sequence, before any quoting: metadata, open orders, cancel all, positions, limits.

Each step reads the venue's truth (never local memory of a previous run). With
``cancel_open_orders`` (the default) every resting order is canceled and the venue is read
again until it reports none, within ``cancel_attempts``; a venue that keeps reporting orders
stops the start (``StartupFailed``) rather than quoting next to orders nobody tracks.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

import attrs
import trio
from loguru import logger

from mm.model import (
    AccountState,
    AssetMeta,
    CancelOrder,
    CancelResult,
    OpenOrder,
    RateLimitState,
)
from mm.settings import at_least, positive, setting


class StartupVenue(Protocol):
    async def metadata(self) -> list[AssetMeta]: ...

    async def open_orders(self) -> list[OpenOrder]: ...

    async def cancel(self, cancels: Sequence[CancelOrder]) -> list[CancelResult]: ...

    async def account_state(self) -> AccountState: ...

    async def rate_limit(self) -> RateLimitState: ...


class StartupFailed(Exception):
    """The venue could not be brought to a known state; nothing may trade."""


@attrs.frozen
class StartupConfig:
    cancel_open_orders: bool = setting(True)
    cancel_attempts: int = setting(3, at_least(1))
    cancel_settle_s: float = setting(0.5, positive)


@attrs.frozen
class StartupState:
    assets: tuple[AssetMeta, ...]
    open_orders: tuple[OpenOrder, ...]  # what rests after the sequence (none when canceling)
    canceled: int
    account: AccountState
    limits: RateLimitState


async def run_startup(venue: StartupVenue, config: StartupConfig) -> StartupState:
    assets = await venue.metadata()
    logger.info("startup: {} assets listed", len(assets))
    orders = await venue.open_orders()
    canceled = 0
    if config.cancel_open_orders:
        attempt = 0
        while orders:
            attempt += 1
            if attempt > config.cancel_attempts:
                raise StartupFailed(
                    f"{len(orders)} orders still open after {config.cancel_attempts} "
                    "cancel-all attempts"
                )
            logger.info("startup: canceling {} open orders (attempt {})", len(orders), attempt)
            results = await venue.cancel([CancelOrder(o.coin, oid=o.oid) for o in orders])
            canceled += sum(result is None for result in results)
            await trio.sleep(config.cancel_settle_s)
            orders = await venue.open_orders()
    account = await venue.account_state()
    limits = await venue.rate_limit()
    logger.info(
        "startup: account value {:.2f}, {} positions, {} of {} requests used",
        account.account_value,
        len(account.positions),
        limits.requests_used,
        limits.requests_cap,
    )
    return StartupState(tuple(assets), tuple(orders), canceled, account, limits)
