"""The startup sequence, before any quoting: metadata, open orders, cancel all, positions, limits.

Each step reads the venue's truth (never local memory of a previous run). With
``cancel_open_orders`` (the default) the one cancel-all (``mm.execution.cancel_all``, over every
path to the venue) cancels every resting order and reads the venue again until it reports none,
within ``cancel_attempts`` cancel requests; a venue that keeps reporting orders, or cannot be
read, stops the start (``StartupFailed``) rather than quoting next to orders nobody tracks.
Given a ``foreign`` predicate (``venue.cancel_foreign_orders = false``: the account is shared
with another client, a person or a program), the orders it picks are left alone: only mm's own
(an earlier run's) are canceled, and the foreign ones stay in ``StartupState.open_orders``.
What was canceled and what was left is logged and kept in ``StartupState`` for the journal.

A rate limit is not a failure. An HTTP 429 while starting (the venue's IP budget spent, often
by the restarts of a previous failure) is waited out: ``StartupWaits`` holds the step until the
adapter's backoff (``RequestBudget.read_retry_wait``: exponential, with jitter, capped) is over
and asks again, for as long as the venue answers 429. Crashing instead would restart the child
at once, spend more of the budget, and exhaust the supervisor's restart intensity (mm exited)
or trip the kill switch on the errors counted meanwhile. The waits are counted apart from
failures (``mm_startup_rate_limited_total{step}``, ``mm_startup_waiting``), and the step that
waits, since when, shows in ``/status`` and makes ``/readyz`` say so.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import Any, Protocol, TypeVar

import attrs
import trio
from loguru import logger
from prometheus_client import CollectorRegistry, Counter, Gauge

from mm import clock
from mm.execution.cancel_all import CancelAllPolicy, CancelAllReport, cancel_all, paths_of
from mm.model import (
    AccountState,
    CancelOrder,
    CancelResult,
    Instrument,
    OpenOrder,
    RateLimitState,
)
from mm.settings import at_least, positive, setting
from mm.venues.base import RateLimited, RequestBudget

T = TypeVar("T")


class StartupVenue(Protocol):
    async def instruments(self) -> list[Instrument]: ...

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
    # While the venue refuses the key for the account, ask it again this often.
    access_recheck_s: float = setting(30.0, positive)


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
    instruments: tuple[Instrument, ...]  # what the venue lists
    open_orders: tuple[OpenOrder, ...]  # what rests after the sequence (none, or the foreign)
    canceled: int
    account: AccountState
    limits: RateLimitState
    canceled_orders: tuple[OpenOrder, ...] = ()  # what the cancel-all canceled
    foreign_orders: tuple[OpenOrder, ...] = ()  # other clients' orders, left alone


LISTED_IN_LOG = 10  # orders named in a startup log line; the journal has them all


def describe_orders(orders: Sequence[OpenOrder]) -> str:
    """Orders for a log line: ``BTC buy 0.001 @ 50000 oid 12 cloid 0x...``, at most
    ``LISTED_IN_LOG`` of them."""
    text = "; ".join(
        f"{o.coin} {o.side.name.lower()} {o.sz:g} @ {o.px:g} oid {o.oid} cloid {o.cloid}"
        for o in orders[:LISTED_IN_LOG]
    )
    more = len(orders) - LISTED_IN_LOG
    return f"{text}; and {more} more" if more > 0 else text


class StartupWaits:
    """Startup's waits on the venue's rate limit, shared by every start of the service's
    children (the user feed's metadata, the execution child's sequence) and shown in status.

    ``call(step, request)`` returns the request's answer, asking again after each HTTP 429 once
    the rate limiter's backoff is over (the client told the limiter of the 429; a 429 it was
    not told of is told here). Any other error passes through: a venue that fails is the
    caller's to judge, as before. ``rate_limited`` is how many 429s startup waited out, so
    that risk does not count them as API errors of trading.
    """

    def __init__(self, limiter: RequestBudget, registry: CollectorRegistry | None = None) -> None:
        self._limiter = limiter
        self.rate_limited = 0
        self._waiting: str | None = None  # the step waiting now
        self._since: float | None = None  # wall time its first 429 came
        self._waits = 0  # 429s met by the step waiting now
        self._next_try: float | None = None  # trio time of its next try
        self._counter = Counter(
            "mm_startup_rate_limited",
            "HTTP 429s met while starting, waited out (not failures), by startup step.",
            ["step"],
            registry=registry,
        )
        self._gauge = Gauge(
            "mm_startup_waiting",
            "1 while a startup step waits for the venue's rate limit to allow it again.",
            registry=registry,
        )

    async def call(self, step: str, request: Callable[[], Awaitable[T]]) -> T:
        """``request()``'s answer, however many 429s come first."""
        while True:
            try:
                answer = await request()
            except RateLimited as error:
                await self._wait(step, str(error))
                continue
            self._done(step)
            return answer

    async def cancel_all(self, run: Callable[[], Awaitable[CancelAllReport]]) -> CancelAllReport:
        """The cancel-all's report, run again while the venue could not be read at all because
        it answered 429 (the cancel-all never raises: its paths' failures are in the limiter's
        count)."""
        while True:
            before = self._limiter.rejections
            report = await run()
            limited = self._limiter.rejections - before
            if report.reads or not limited:
                self._done("cancel_all")
                return report
            self.rate_limited += limited - 1  # _wait counts the last one
            self._counter.labels(step="cancel_all").inc(limited - 1)
            await self._wait("cancel_all", "the open orders could not be read: HTTP 429", told=True)

    async def _wait(self, step: str, error: str, *, told: bool = False) -> None:
        now = clock.monotonic()
        delay = self._limiter.read_retry_wait(now, counted=told)
        self.rate_limited += 1
        self._counter.labels(step=step).inc()
        if self._waiting != step:
            self._waiting, self._since, self._waits = step, clock.wall(), 0
            self._gauge.set(1)
        self._waits += 1
        self._next_try = now + delay
        logger.warning(
            "startup: {} rate limited by the venue ({}); waiting {:.2f}s ({} so far), not failing",
            step,
            error,
            delay,
            self._waits,
        )
        await trio.sleep(delay)

    def _done(self, step: str) -> None:
        if self._waiting is None:
            return
        logger.info("startup: {} answered after {} rate-limited tries", step, self._waits)
        self._waiting = self._since = self._next_try = None
        self._waits = 0
        self._gauge.set(0)

    def waiting(self) -> str | None:
        """The step waiting now and why, in words (None: nothing waits)."""
        if self._waiting is None or self._since is None:
            return None
        since = clock.wall() - self._since
        return (
            f"{self._waiting} rate limited by the venue (HTTP 429) for {since:.0f}s, "
            f"{self._waits} times; waiting, not failing"
        )

    def status(self) -> dict[str, Any]:
        next_in = None
        if self._next_try is not None:
            next_in = round(max(self._next_try - clock.monotonic(), 0.0), 3)
        return {
            "waiting": self._waiting,
            "since": self._since,
            "rate_limited_now": self._waits,
            "next_try_in_s": next_in,
            "rate_limited_total": self.rate_limited,
        }


async def run_startup(
    venue: StartupVenue,
    config: StartupConfig,
    waits: StartupWaits,
    *,
    foreign: Callable[[OpenOrder], bool] | None = None,
) -> StartupState:
    """The sequence; each step waits out the venue's rate limit (``waits``, on the adapter's
    request budget). Orders ``foreign`` picks are left alone."""
    instruments = await waits.call("metadata", venue.instruments)
    logger.info("startup: {} instruments listed", len(instruments))
    canceled_orders: tuple[OpenOrder, ...] = ()
    if not config.cancel_open_orders:
        orders = await waits.call("open_orders", venue.open_orders)
        canceled = 0
    else:
        policy = startup_policy(config)
        report = await waits.cancel_all(lambda: cancel_all(paths_of(venue), policy, spare=foreign))
        if not report.zero:
            left = len(report.remaining)
            raise StartupFailed(
                f"{left} orders still open after {report.attempts} cancel-all attempts"
                if report.reads
                else f"the venue's open orders could not be read: {report.describe()}"
            )
        if report.attempts:
            logger.info("startup: {}", report.describe())
        if report.canceled_orders:
            logger.info(
                "startup: canceled {} open order(s): {}",
                len(report.canceled_orders),
                describe_orders(report.canceled_orders),
            )
        if report.spared:
            logger.warning(
                "startup: left {} order(s) of other clients alone "
                "(venue.cancel_foreign_orders = false): {}",
                len(report.spared),
                describe_orders(report.spared),
            )
        orders, canceled = list(report.spared), report.canceled
        canceled_orders = report.canceled_orders
    account = await waits.call("account_state", venue.account_state)
    limits = await waits.call("rate_limit", venue.rate_limit)
    logger.info(
        "startup: account value {:.2f}, {} positions, {} of {} requests used",
        account.account_value,
        len(account.positions),
        limits.requests_used,
        limits.requests_cap,
    )
    foreign_orders = tuple(o for o in orders if foreign is not None and foreign(o))
    return StartupState(
        tuple(instruments),
        tuple(orders),
        canceled,
        account,
        limits,
        canceled_orders,
        foreign_orders,
    )
