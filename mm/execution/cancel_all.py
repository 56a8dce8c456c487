"""One cancel-all: cancel every open order at the venue and re-read until it shows none.

Used wherever mm must leave nothing resting: the kill switch, ``mm stop``, HALT, the startup
sequence and the flattener (for its symbols), all but the startup through ``CancelAll``, which takes
the deadline of each purpose from one table (``POLICIES``). Each round reads the venue's open orders
and, if any are left, cancels them by oid, then reads again after ``settle_s``; the first read that
shows none is confirmed by one more read ``confirm_s`` later (an order a slot was sending may land
after the first). It ends when the venue shows zero, when ``max_rounds`` cancel requests were sent,
or at the policy's deadline, and returns a ``CancelAllReport``: how many were canceled (answered so,
or gone at a later read when the answer was lost) and which, which orders remain (coin, oid), the
time to zero and the rounds. Orders a ``spare`` predicate picks (the startup's other clients'
orders, when told to leave them) are neither canceled nor waited for: the report lists them as
spared.

Every request goes over every path the venue client has (``paths_of``: the WebSocket post,
then REST alone). A request starts on the first path; a failure, or no answer within
``hedge_s``, starts the next path as well, and the first answer wins (a cancel can be sent
twice: it cannot double anything). So one lost reply costs ``hedge_s``, never the rest of the
cancel-all. A request no path answers within ``request_timeout_s`` is tried again in the next
round. It never raises for the venue's failures: the report says what is left, and the caller
(kill switch, stop) says so.
"""

from __future__ import annotations

import enum
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from functools import partial
from typing import Any, Protocol, TypeVar, cast

import attrs
import trio
from loguru import logger

from mm.model import CancelOrder, CancelResult, OpenOrder, OrderId

T = TypeVar("T")
RETRY_PAUSE_S = 0.1  # at least this between reads when no path answered


class CancelVenue(Protocol):
    """What a cancel-all needs of one path to the venue."""

    async def open_orders(self) -> list[OpenOrder]: ...

    async def cancel(self, cancels: Sequence[CancelOrder]) -> list[CancelResult]: ...


V = TypeVar("V", bound=CancelVenue)


def paths_of(venue: V) -> tuple[V, ...]:
    """The venue client's paths, its usual one (WebSocket post when up) first, then REST alone
    when the client offers it (``over_rest()``)."""
    over_rest = getattr(venue, "over_rest", None)
    if over_rest is None:
        return (venue,)
    return (venue, cast(V, over_rest()))


@attrs.frozen
class CancelAllPolicy:
    """How long a cancel-all may take and how it paces its requests (seconds)."""

    deadline_s: float = 10.0  # the whole cancel-all; what is left then is reported
    hedge_s: float = 0.25  # no answer on a path this long: the next path is tried as well
    request_timeout_s: float = 2.0  # one request over every path; then the next round
    settle_s: float = 0.2  # between a cancel and the read that checks it
    confirm_s: float = 0.3  # a read showing none is confirmed this much later (0: not)
    max_rounds: int | None = None  # cancel requests at most (None: until the deadline)


KILL = CancelAllPolicy(deadline_s=10.0)
"""The kill switch: keep at it for 10 s (its dead-man's backstop fires 6 s after the trip)."""
STOP = CancelAllPolicy(deadline_s=5.0)
"""``mm stop``, HALT and a crash of the strategy: 5 s, well inside ``service.shutdown_timeout``."""
FLATTEN = CancelAllPolicy(deadline_s=2.0, settle_s=0.0, confirm_s=0.0)
"""The flattener, before its reduce-only orders: short (its orders are IOC: nothing of its own
is in flight to wait for), under the flatten deadline."""


class Purpose(enum.StrEnum):
    """Why everything is canceled; it picks the deadline (``POLICIES``)."""

    KILL = "kill"  # the kill switch's trip, and its sweeps until the venue shows none
    STOP = "stop"  # mm stop
    HALT = "halt"  # the autonomy mode's HALT
    CRASH = "crash"  # the strategy task ended without a halt
    FLATTEN = "flatten"  # the flattener's symbols, before its reduce-only orders


POLICIES: Mapping[Purpose, CancelAllPolicy] = {
    Purpose.KILL: KILL,
    Purpose.STOP: STOP,
    Purpose.HALT: STOP,
    Purpose.CRASH: STOP,
    Purpose.FLATTEN: FLATTEN,
}
"""The one deadline policy: every cancel-all of the service takes its deadline from here."""
SHIELDED = frozenset({Purpose.STOP, Purpose.HALT, Purpose.CRASH})
"""Run to their deadline whoever is cancelled meanwhile. The kill switch shields its trip itself
and a rearm ends its sweeps at once; the flattener's ends at its deadline or a HALT."""


@attrs.frozen
class CancelAllReport:
    """What a cancel-all did, for logs, the kill's answer, ``mm status`` and the journal."""

    canceled: int  # orders canceled: answered so, or gone at a later read (a lost answer)
    remaining: tuple[tuple[str, OrderId], ...]  # (coin, oid) open at the last read
    seconds_to_zero: float | None  # from the start to the read that showed none; None: never
    attempts: int  # cancel requests sent
    reads: int  # reads the venue answered
    seconds: float  # the whole cancel-all
    canceled_orders: tuple[OpenOrder, ...] = ()  # the canceled, as the venue last listed them
    spared: tuple[OpenOrder, ...] = ()  # left alone (``spare``), as the last read listed them

    @property
    def zero(self) -> bool:
        """The venue was seen (and confirmed) with no open order."""
        return self.seconds_to_zero is not None and not self.remaining

    def to_json(self) -> dict[str, Any]:
        return {
            "zero": self.zero,
            "canceled": self.canceled,
            "remaining": [{"coin": coin, "oid": oid} for coin, oid in self.remaining],
            "seconds_to_zero": self.seconds_to_zero,
            "attempts": self.attempts,
            "reads": self.reads,
            "seconds": round(self.seconds, 6),
        }

    def describe(self) -> str:
        """One line for logs and operators."""
        tries = f"{self.attempts} cancel request{'s' if self.attempts != 1 else ''}"
        spared = f", {len(self.spared)} left alone" if self.spared else ""
        if self.zero:
            assert self.seconds_to_zero is not None
            return (
                f"{self.canceled} canceled, none open at the venue after "
                f"{self.seconds_to_zero:.3f}s ({tries}){spared}"
            )
        if not self.reads:
            return f"the venue's open orders could not be read within {self.seconds:.1f}s"
        left = ", ".join(f"{coin} {oid}" for coin, oid in self.remaining)
        return (
            f"{self.canceled} canceled, {len(self.remaining)} still open after "
            f"{self.seconds:.1f}s ({tries}): {left}{spared}"
        )


async def first_answer(
    paths: Sequence[T],
    call: Callable[[T], Awaitable[Any]],
    policy: CancelAllPolicy,
    errors: list[str] | None = None,
) -> tuple[bool, Any]:
    """Ask ``call`` over ``paths`` as the module describes; ``(True, answer)`` from the first
    path that answered, ``(False, None)`` when none did within ``request_timeout_s``. Each
    path's failure is appended to ``errors``."""
    answers: list[Any] = []
    with trio.move_on_after(policy.request_timeout_s):
        async with trio.open_nursery() as nursery:

            async def attempt(path: T, failed: trio.Event) -> None:
                try:
                    answer = await call(path)
                except Exception as error:  # a failed path: the next one is tried
                    if errors is not None:
                        errors.append(f"{type(error).__name__}: {error}")
                    failed.set()
                    return
                answers.append(answer)
                nursery.cancel_scope.cancel()

            for path in paths:
                failed = trio.Event()
                nursery.start_soon(attempt, path, failed)
                with trio.move_on_after(policy.hedge_s):
                    await failed.wait()
    return (True, answers[0]) if answers else (False, None)


async def _cancel(path: CancelVenue, cancels: Sequence[CancelOrder]) -> list[CancelResult]:
    return await path.cancel(cancels)


async def _read(path: CancelVenue) -> list[OpenOrder]:
    return await path.open_orders()


async def cancel_all(
    paths: Sequence[CancelVenue],
    policy: CancelAllPolicy,
    *,
    coins: Iterable[str] | None = None,
    spare: Callable[[OpenOrder], bool] | None = None,
    cancel_sent: trio.Event | None = None,
) -> CancelAllReport:
    """Cancel every open order (only ``coins``', and never one ``spare`` picks) as the module
    describes. ``cancel_sent`` is set once the first cancel request has been answered or given
    up, or when there was nothing to cancel."""
    if not paths:
        raise ValueError("a cancel-all needs at least one path to the venue")
    wanted = None if coins is None else frozenset(coins)
    started = trio.current_time()
    targets: dict[OrderId, OpenOrder] = {}  # every order a cancel was sent for, as last listed
    spared: dict[OrderId, OpenOrder] = {}
    confirmed: set[OrderId] = set()  # cancels the venue answered as done
    in_flight: set[OrderId] = set()  # cancels sent since the last read
    checked: set[OrderId] = set()  # cancels sent before a read that came back
    last_seen: list[OpenOrder] = []
    attempts = reads = 0
    zero_at: float | None = None
    errors: list[str] = []
    try:
        with trio.move_on_after(policy.deadline_s):
            while True:
                answered, orders = await first_answer(paths, _read, policy, errors)
                if not answered:
                    await trio.sleep(max(policy.settle_s, RETRY_PAUSE_S))  # unreachable: pace
                    continue
                reads += 1
                checked |= in_flight
                in_flight = set()
                listed = [o for o in orders if wanted is None or o.coin in wanted]
                if spare is not None:
                    spared = {o.oid: o for o in listed if spare(o)}
                    listed = [o for o in listed if o.oid not in spared]
                last_seen = listed
                if not last_seen:
                    if cancel_sent is not None:
                        cancel_sent.set()
                    if zero_at is not None or policy.confirm_s <= 0:
                        zero_at = trio.current_time() if zero_at is None else zero_at
                        break  # confirmed, or no confirmation asked
                    zero_at = trio.current_time()
                    await trio.sleep(policy.confirm_s)
                    continue
                zero_at = None  # orders (again): not at zero
                if policy.max_rounds is not None and attempts >= policy.max_rounds:
                    break
                attempts += 1
                cancels = [CancelOrder(o.coin, oid=o.oid) for o in last_seen]
                in_flight |= {o.oid for o in last_seen}
                targets.update((o.oid, o) for o in last_seen)
                answered, results = await first_answer(
                    paths, partial(_cancel, cancels=cancels), policy, errors
                )
                if cancel_sent is not None:
                    cancel_sent.set()
                if answered:
                    confirmed.update(
                        cancel.oid
                        for cancel, result in zip(cancels, results, strict=False)
                        if result is None and cancel.oid is not None
                    )
                await trio.sleep(policy.settle_s)
    finally:
        if cancel_sent is not None:
            cancel_sent.set()
    seconds = trio.current_time() - started
    still_open = {o.oid for o in last_seen}
    gone = confirmed | (checked - still_open)
    report = CancelAllReport(
        canceled=len(gone),
        remaining=tuple((o.coin, o.oid) for o in last_seen),
        seconds_to_zero=None if zero_at is None else zero_at - started,
        attempts=attempts,
        reads=reads,
        seconds=seconds,
        canceled_orders=tuple(targets[oid] for oid in sorted(gone) if oid in targets),
        spared=tuple(spared[oid] for oid in sorted(spared)),
    )
    if errors and not report.zero:
        logger.warning("cancel-all: requests failed on the way: {}", "; ".join(errors[-5:]))
    return report


class CancelAll:
    """The service's one cancel-all: the kill switch, ``mm stop``, HALT, a strategy crash and the
    flattener all call it, with the venue client of the moment and the deadline ``POLICIES``
    gives their purpose, shielded where ``SHIELDED`` says. Logs what it did; with no venue
    client it cancels nothing, says so and returns None."""

    def __init__(self, venue: Callable[[], CancelVenue | None]) -> None:
        self._venue = venue

    async def __call__(
        self,
        purpose: Purpose,
        *,
        coins: Iterable[str] | None = None,
        cancel_sent: trio.Event | None = None,
    ) -> CancelAllReport | None:
        venue = self._venue()
        if venue is None:
            logger.error("cancel-all ({}): no venue client; nothing could be canceled", purpose)
            if cancel_sent is not None:
                cancel_sent.set()
            return None
        with trio.CancelScope(shield=purpose in SHIELDED):
            report = await cancel_all(
                paths_of(venue), POLICIES[purpose], coins=coins, cancel_sent=cancel_sent
            )
        if report.zero:
            logger.info("cancel-all ({}): {}", purpose, report.describe())
        else:
            logger.error(
                "cancel-all ({}): open orders left at the venue: {}", purpose, report.describe()
            )
        return report
