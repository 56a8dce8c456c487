"""The startup sequence, before any quoting: metadata, open orders, cancel all, positions, limits.

Each step reads the venue's truth (never local memory of a previous run). With
``cancel_open_orders`` (the default) the one cancel-all (``mm.execution.cancel_all``, over every
path to the venue) cancels every resting order and reads the venue again until it reports none,
within ``cancel_attempts`` cancel requests; a venue that keeps reporting orders, or cannot be
read, stops the start (``StartupFailed``) rather than quoting next to orders nobody tracks.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

import attrs
from loguru import logger

from mm.execution.cancel_all import CancelAllPolicy, cancel_all, paths_of
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


STARTUP_DEADLINE_S = 30.0  # the whole cancel-all before the first quote


class StartupFailed(Exception):
    """The venue could not be brought to a known state; nothing may trade."""


@attrs.frozen
class StartupConfig:
    cancel_open_orders: bool = setting(True)
    cancel_attempts: int = setting(3, at_least(1))
    cancel_settle_s: float = setting(0.5, positive)


def startup_policy(config: StartupConfig) -> CancelAllPolicy:
    """The one cancel-all, paced by ``[feeds.startup]``: at most ``cancel_attempts`` cancel
    requests, ``cancel_settle_s`` before each re-read; nothing is in flight yet, so no
    confirming read."""
    return CancelAllPolicy(
        deadline_s=STARTUP_DEADLINE_S,
        settle_s=config.cancel_settle_s,
        confirm_s=0.0,
        max_rounds=config.cancel_attempts,
    )


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
    if not config.cancel_open_orders:
        orders = await venue.open_orders()
        canceled = 0
    else:
        report = await cancel_all(paths_of(venue), startup_policy(config))
        if not report.zero:
            left = len(report.remaining)
            raise StartupFailed(
                f"{left} orders still open after {report.attempts} cancel-all attempts"
                if report.reads
                else f"the venue's open orders could not be read: {report.describe()}"
            )
        if report.attempts:
            logger.info("startup: {}", report.describe())
        orders, canceled = [], report.canceled
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
