"""The user feed: one account's order updates, fills and account events, kept in sync.

``UserFeed.run`` is a supervised child. It reads a venue's user stream (the port's
``UserStream``: its subscriptions deliver typed events, its reads fetch what a resync needs;
Hyperliquid's is ``mm.venues.hyperliquid.user_stream``, on a connection that runs as its own
child) and forwards the events to the memory channel the caller gives, in the order the venue
sent them (per subscription), with ``await send``: nothing is ever dropped here. While the
consumer is slow, events wait in the stream's bounded subscription buffers (which absorb bursts
without ever slowing the socket); if a buffer overflows the stream drops messages and says so
(``Gap``), and the feed resyncs, exactly as after a reconnect.

What goes out on the channel (``UserStreamEvent``):

- ``OrderReport``, ``Fill`` (live, and from the stream's ``FillsSnapshot``, deduplicated),
  ``NonUserCancel``, ``Liquidation``, ``Funding`` (the hourly funding payments) and, from a
  venue that pushes them, ``AccountState``;
- on a first run (nothing journaled), before anything else: one ``HistoryStart``, where the
  account's fill history ended (see History), for the journal;
- after every resync: the fills that were missed (oldest first), then one ``OrderReport`` with
  status ``"open"`` for every order the venue lists as open (``status_time_ms`` is the time of
  the account snapshot; for an order the dispatcher already holds live this changes nothing,
  and an order we lost track of surfaces through the dispatcher's untracked route), then one
  ``Resynced`` marker carrying the whole snapshot: the open orders and the ``AccountState``
  (positions, margin). An order that ended while we were away appears in no report: a consumer
  finds it by comparing its live orders with ``Resynced.open_orders`` (and asks orderStatus).
  The latest marker is also kept as ``UserFeed.resync_snapshot``.

Duplicate suppression
    Fills are deduplicated on (tid, oid) by the ``FillHistory`` the feed is given (one per
    process, shared with the fill audit and kept across the feed's restarts; bounded by
    ``dedup_capacity``): the fills snapshot that a venue sends on every (re)subscribe, the same
    fill on two subscriptions, duplicated messages and the overlap of a fetch with what was
    already seen are dropped and counted by source (``duplicate_fills``), never forwarded twice.
    A fill is claimed as it is handed on and the claim is given back if the send is cancelled,
    so a cancelled send loses nothing. Other events are deduplicated on their whole value (a
    duplicated message carries exactly the same report): ``duplicate_events``.

History
    A fill is history iff it is accounted for already (``mm.feeds.history``): journaled by an
    earlier run (the service restores the journal's fills by trade id into the history before
    the feed starts), or older than the oldest of them. So a fill the venue made while the
    service was down, or that an earlier run missed, comes through at start, and a journaled one
    never does. With nothing journaled (a first run), the feed reads the recent fills
    (``recent_fills``) before subscribing: they are history and the newest of them ends it,
    which the feed hands on (``HistoryStart``) for the journal to keep. History met in a
    snapshot or a fetch is counted (``history_fills``), not forwarded. Fills that happen later
    always come through: live, in a later snapshot, from the resync, or from the fill audit
    (``mm.feeds.fill_audit``) when the venue dropped their messages unnoticed.

The trading gate (``synced``)
    A ``SyncGate``: closed at start, when the connection goes down (at once, from the stream's
    ``watching``), after a reconnect (also seen from the stream's ``reconnects`` counter) and
    when messages were dropped (a subscription's ``gaps`` counter, or a ``Gap`` marker); opened
    only when a resync completes on the current connection with nothing lost meanwhile. Its
    ``reason`` says why it is closed. The strategy and the executors must not quote while it is
    closed (``is_set()`` before acting, ``wait()`` to resume, ``wait_closed()`` to react).

Resync
    Once the connection is up again and every subscription acknowledged (the resync must start
    after the live stream does, so that nothing falls between the two), three reads of the
    stream run concurrently: ``open_orders``, ``fills_since`` from the last seen fill time
    (minus ``fill_lookback_ms``, page after page) and ``account_state``. The last seen fill time
    only advances while the feed is in sync (a fill seen after messages were dropped may be
    newer than the ones lost). While the reads run, the events of the new connection wait in
    their buffers, so the resync's events come first and the live ones after (deduplicated). A
    failed read keeps the gate closed and is retried with full-jitter backoff, while events keep
    flowing (as do the events received before a disconnect: they are forwarded at once, gate
    closed). A resync during which the connection went down or messages were dropped is done
    again (its events still go out: what they say is true; only the gate stays closed). The
    three answers are not one atomic snapshot: a fill made while they are fetched may show in
    ``Resynced.account`` and come as a ``Fill`` after the marker, or the other way round, so a
    position keeper checks its position against the account (allowing for fills newer than
    ``account.time_ms``) rather than overwriting it.

Counters (plain attributes, ``counters()`` as plain data): ``forwarded`` by kind,
``duplicate_fills`` by source (live, snapshot, rest), ``duplicate_events``, ``history_fills``,
``recovered_fills`` by source (snapshot, rest: fills missed live; the history also counts them,
for ``mm_fills_recovered_total``), ``resyncs`` (completed),
``resync_failures``, ``resyncs_repeated`` (completed but overtaken by a new loss of sync),
``last_resync_duration_s``, ``sync_losses``, ``gaps``, ``malformed_frames``, ``foreign_frames``.
"""

from __future__ import annotations

import math
import random
from collections import Counter
from collections.abc import Awaitable, Callable, Iterable
from contextlib import suppress
from typing import Any, TypeAlias

import attrs
import trio
from loguru import logger

from mm import randomness
from mm.bounded import BoundedSet
from mm.feeds.history import FillHistory, HistoryStart
from mm.model import (
    AccountState,
    Fill,
    FillsSnapshot,
    Funding,
    Liquidation,
    NonUserCancel,
    OpenOrder,
    OrderReport,
    OrderStatus,
)
from mm.settings import at_least, non_negative, positive, setting
from mm.venues.base import (
    EventStream,
    Foreign,
    Gap,
    Malformed,
    MalformedAnswer,
    UserStream,
    UserStreamItem,
    VenueError,
)
from supervisors.backoff import Backoff

__all__ = [
    "Resynced",
    "SyncGate",
    "UserFeed",
    "UserStreamConfig",
    "UserStreamError",
    "UserStreamEvent",
    "fills_since",
]

Item = UserStreamItem | Foreign | Gap | Malformed
Stream = EventStream[UserStreamItem | Foreign]


class UserStreamError(Exception):
    """The stream cannot go on (a subscription was refused or closed): let it be restarted."""


# --- configuration, events, the gate -------------------------------------------------------------


@attrs.frozen
class UserStreamConfig:
    # Fills (tid, oid) remembered for dedup (and journaled fills restored at start): at least
    # what the venue can list again (a catch-up's resync pages through all of it, and the
    # snapshot of the resubscribe lists it again); the config refuses less (mm.config).
    dedup_capacity: int = setting(10_000, at_least(1))
    # Other events (reports, cancels, liquidations) remembered for dedup: duplicates of one
    # arrive within seconds.
    event_dedup_capacity: int = setting(2_000, at_least(1))
    # Frames buffered per subscription before a Gap (0: the connection's own default).
    subscription_buffer: int = setting(0, non_negative)
    # A resync fetches fills from this long before the last seen fill (overlap is deduplicated;
    # it covers fills that arrived out of time order and were lost with the socket).
    fill_lookback_ms: int = setting(5_000, non_negative)
    # Deadline of each REST request of a resync.
    rest_deadline_s: float = setting(5.0, positive)
    # Retry of a failed resync: full jitter, this initial ceiling, doubling, capped.
    retry_initial_s: float = setting(0.5, positive)
    retry_cap_s: float = setting(10.0, positive)
    # userFillsByTime pages fetched at most per resync.
    max_fill_pages: int = setting(20, at_least(1))
    # Unsubscribing on the way out (shielded) takes at most this long.
    unsubscribe_timeout_s: float = setting(1.0, non_negative)
    # The fill audit (mm.feeds.fill_audit): the venue's fills (userFillsByTime, IP weight 20)
    # against those forwarded, every audit_every_s, and audit_drift_gap_s after local positions
    # are seen to drift from the venue's (after three such audits finding nothing while the
    # drift lasts, the gap doubles up to audit_every_s). A periodic audit leaves fills younger
    # than audit_settle_ms to the live stream (a drift's audit takes them: the venue shows them).
    audit_every_s: float = setting(30.0, positive)
    audit_drift_gap_s: float = setting(2.0, positive)
    audit_settle_ms: int = setting(1_000, non_negative)


@attrs.frozen(slots=True)
class Resynced:
    """The end of a resync: what the venue said, after the missed fills and the open reports."""

    reason: str  # why the stream resynced: "starting", "connection reconnecting: ...", ...
    time_ms: int  # the venue's time of the account snapshot
    open_orders: tuple[OpenOrder, ...]
    account: AccountState
    fills_recovered: int  # fills forwarded by this resync (missed live)
    duration_s: float


UserStreamEvent: TypeAlias = (
    OrderReport
    | Fill
    | NonUserCancel
    | Liquidation
    | Funding
    | AccountState
    | Resynced
    | HistoryStart
)


class SyncGate:
    """Open while the user stream is in sync with the venue; closed, with a reason, otherwise.

    ``on_change(is_open, reason)`` hears of every change (e.g. a metrics gauge).
    """

    def __init__(self, reason: str = "not synced yet") -> None:
        self._open = trio.Event()
        self._closed = trio.Event()
        self._closed.set()
        self.reason = reason  # why it is closed; "" while open
        self.changed_at: float | None = None  # trio time of the last change
        self.opens = 0
        self.closes = 0
        self.on_change: Callable[[bool, str], None] | None = None

    def is_set(self) -> bool:
        """Whether the gate is open (trading allowed as far as the user stream goes)."""
        return self._open.is_set()

    async def wait(self) -> None:
        """Return once the gate is open."""
        while not self._open.is_set():
            await self._open.wait()

    async def wait_closed(self) -> None:
        """Return once the gate is closed."""
        while not self._closed.is_set():
            await self._closed.wait()

    def open(self) -> None:
        if self._open.is_set():
            return
        self.reason = ""
        self._mark()
        self.opens += 1
        if self._closed.is_set():
            self._closed = trio.Event()
        self._open.set()
        self._notify()

    def close(self, reason: str) -> None:
        """Close the gate (or, when closed, say why it still is)."""
        was_open = self._open.is_set()
        self.reason = reason
        if not was_open:
            return
        self._mark()
        self.closes += 1
        self._open = trio.Event()
        self._closed.set()
        self._notify()

    def snapshot(self) -> dict[str, Any]:
        return {
            "open": self.is_set(),
            "reason": self.reason,
            "changed_at": self.changed_at,
            "opens": self.opens,
            "closes": self.closes,
        }

    def _mark(self) -> None:
        with suppress(RuntimeError):  # outside a Trio run: no clock
            self.changed_at = trio.current_time()

    def _notify(self) -> None:
        if self.on_change is not None:
            self.on_change(self.is_set(), self.reason)


def _time_order(fills: Iterable[Fill]) -> list[Fill]:
    return sorted(fills, key=lambda fill: (fill.time_ms, fill.tid))


@attrs.frozen
class _Fetched:
    fills: list[Fill]
    open_orders: list[OpenOrder]
    account: AccountState


# --- the stream ----------------------------------------------------------------------------------


class UserFeed:
    """One account's order updates, fills and account events; see the module docstring."""

    def __init__(
        self,
        venue: UserStream,
        send: trio.MemorySendChannel[UserStreamEvent],
        config: UserStreamConfig | None = None,
        *,
        history: FillHistory | None = None,
        name: str = "user",
        rng: random.Random | None = None,
    ) -> None:
        self.user = venue.account
        self.config = config or UserStreamConfig()
        self.name = name
        self._venue = venue
        self._send = send
        self._rng = rng or randomness.generator()
        self._retry = Backoff(
            initial=self.config.retry_initial_s, multiplier=2.0, cap=self.config.retry_cap_s
        )
        self.synced = SyncGate("starting")
        self.resync_snapshot: Resynced | None = None
        # Kept across restarts of run(): what has been seen, and where history ends (the fill
        # history outlives the stream itself when the caller keeps it).
        self.history = history if history is not None else FillHistory(self.config.dedup_capacity)
        self._events_seen = BoundedSet(self.config.event_dedup_capacity)
        # Per run.
        self._subs: list[Stream] = []
        self._resync_reason: str | None = "starting"
        self._epoch = 0  # bumped on every loss of sync
        self._synced_reconnects: int | None = None
        self._gaps_known = 0
        self._fetch_started_at = -math.inf
        self._retry_at = -math.inf
        self._failures = 0
        self._last_failure: str | None = None
        self._waiting: trio.CancelScope | None = None
        self._running = False
        # Counters, for metrics.
        self.forwarded: Counter[str] = Counter()
        self.duplicate_fills: Counter[str] = Counter()
        self.duplicate_events = 0
        self.history_fills = 0
        self.recovered_fills: Counter[str] = Counter()
        self.resyncs = 0
        self.resync_failures = 0
        self.resyncs_repeated = 0
        self.last_resync_duration_s: float | None = None
        self.last_resync_at: float | None = None
        self.sync_losses = 0
        self.gaps = 0
        self.malformed_frames = 0
        self.foreign_frames = 0

    # --- status -----------------------------------------------------------------------------------

    def counters(self) -> dict[str, Any]:
        """Every counter, as plain data."""
        return {
            "forwarded": dict(self.forwarded),
            "duplicate_fills": dict(self.duplicate_fills),
            "duplicate_events": self.duplicate_events,
            "history_fills": self.history_fills,
            "recovered_fills": dict(self.recovered_fills),
            "resyncs": self.resyncs,
            "resync_failures": self.resync_failures,
            "resyncs_repeated": self.resyncs_repeated,
            "last_resync_duration_s": self.last_resync_duration_s,
            "sync_losses": self.sync_losses,
            "gaps": self.gaps,
            "malformed_frames": self.malformed_frames,
            "foreign_frames": self.foreign_frames,
        }

    def snapshot(self) -> dict[str, Any]:
        """Plain data for status (the address is the account's public id, not a secret)."""
        return {"user": self.user, "synced": self.synced.snapshot(), **self.counters()}

    # --- the child --------------------------------------------------------------------------------

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Subscribe and serve until cancelled; ready at once (the gate says when in sync).

        Raises ``UserStreamError`` when a subscription is refused or closed.
        """
        self._reset()
        venue = self._venue
        with venue.watching(self._on_connection):
            self._running = True
            try:
                task_status.started()
                if not self.history.baselined:
                    await self._baseline()
                self._subs = await venue.subscribe(buffer=self.config.subscription_buffer or None)
                self._gaps_known = self._gap_count()
                merged_send, merged_receive = trio.open_memory_channel[tuple[Stream, Item]](0)
                async with merged_send, merged_receive, trio.open_nursery() as nursery:
                    for sub in self._subs:
                        nursery.start_soon(self._pump, sub, merged_send.clone())
                    await self._serve(merged_receive)
            finally:
                self._running = False
                self._epoch += 1
                self.synced.close("user stream stopped")
                subs, self._subs = self._subs, []
                # Each unsubscribe forgets its stream at once, then tells the venue (bounded).
                with trio.CancelScope(shield=True) as scope:
                    scope.deadline = trio.current_time() + self.config.unsubscribe_timeout_s
                    async with trio.open_nursery() as nursery:
                        for sub in subs:
                            nursery.start_soon(venue.unsubscribe, sub)

    def _reset(self) -> None:
        self._subs = []
        self._resync_reason = "starting"
        self._epoch += 1
        self._synced_reconnects = None
        self._fetch_started_at = -math.inf
        self._retry_at = -math.inf
        self._failures = 0
        self._last_failure = None
        self.synced.close("starting")

    async def _pump(self, sub: Stream, send: trio.MemorySendChannel[tuple[Stream, Item]]) -> None:
        """Hand one subscription's events on, in order (its buffer holds them meanwhile)."""
        async with send:
            async for item in sub:
                await send.send((sub, item))
        raise UserStreamError(
            f"{self.name}: {sub.channel} subscription ended"
            + (f": {sub.error}" if sub.error else "")
        )

    async def _serve(self, receive: trio.MemoryReceiveChannel[tuple[Stream, Item]]) -> None:
        while True:
            self._check_sync()
            if self._ready_to_resync():
                await self._resync()
                continue
            received: tuple[Stream, Item] | None = None
            with trio.CancelScope(deadline=self._wake_at()) as scope:
                self._waiting = scope
                try:
                    received = await receive.receive()
                finally:
                    self._waiting = None
            if received is not None:
                await self._handle(*received)

    # --- sync state -------------------------------------------------------------------------------

    def _gap_count(self) -> int:
        return sum(sub.gaps for sub in self._subs)

    def _check_sync(self) -> None:
        """Notice what the connection's hook may not have told: gaps and reconnects."""
        gaps = self._gap_count()
        if gaps != self._gaps_known:
            self.gaps += max(gaps - self._gaps_known, 0)
            self._gaps_known = gaps
            self._lose("frames dropped: the consumer fell behind")
        venue = self._venue
        if self._resync_reason is None:
            if not venue.connected:
                self._lose("disconnected")
            elif (
                self._synced_reconnects is not None and venue.reconnects != self._synced_reconnects
            ):
                self._lose("reconnected")

    def _lose(self, reason: str) -> None:
        """Sync is lost (or lost again): close the gate, and resync when the socket is up."""
        self._epoch += 1
        if self._resync_reason is None:
            self._resync_reason = reason
            self.sync_losses += 1
            if self._running:
                logger.warning("{}: out of sync: {}", self.name, reason)
        self.synced.close(reason)
        self._wake()

    def _wake(self) -> None:
        if self._waiting is not None:
            self._waiting.cancel()

    def _on_connection(self, up: bool, reason: str) -> None:
        """The stream's connection went down (sync is lost at once) or is up again (time to
        resync)."""
        if not self._running:
            return
        if not up:
            self._lose(reason)
        else:
            self._wake()

    def _ready_to_resync(self) -> bool:
        if self._resync_reason is None or not self._venue.connected:
            return False
        if not all(sub.active for sub in self._subs):
            return False
        return trio.current_time() >= self._retry_at

    def _wake_at(self) -> float:
        if self._resync_reason is not None and self._venue.connected:
            return self._retry_at if self._retry_at > trio.current_time() else math.inf
        return math.inf

    def _in_sync(self) -> bool:
        return self._resync_reason is None and self._gap_count() == self._gaps_known

    # --- frames -----------------------------------------------------------------------------------

    async def _handle(self, sub: Stream, item: Item) -> None:
        if isinstance(item, Fill):
            await self._live_fill(item)
        elif isinstance(item, OrderReport):
            await self._forward_event(item, "order_report")
        elif isinstance(item, FillsSnapshot):
            await self._snapshot(item.fills)
        elif isinstance(item, Gap):
            if item.at >= self._fetch_started_at:  # not covered by a resync since
                self._lose(f"frames dropped on {sub.channel}")
        elif isinstance(item, Malformed):
            self.malformed_frames += 1
            logger.debug("{}: malformed frame skipped: {}", self.name, item.why)
        elif isinstance(item, Foreign):
            self.foreign_frames += 1
        elif isinstance(item, Liquidation):
            await self._forward_event(item, "liquidation")
        elif isinstance(item, NonUserCancel):
            await self._forward_event(item, "non_user_cancel")
        elif isinstance(item, Funding):
            await self._forward_event(item, "funding")
        else:
            await self._forward_event(item, "account")

    async def _live_fill(self, fill: Fill) -> None:
        if self._seen(fill, "live"):
            return
        in_sync = self._in_sync()  # as of its arrival: nothing dropped before it
        await self._forward_fill(fill)
        if in_sync:
            self.history.advance_mark(fill.time_ms)

    async def _snapshot(self, fills: Iterable[Fill]) -> None:
        """The userFills snapshot of a (re)subscribe: forward only fills not seen, oldest first."""
        for fill in _time_order(fills):
            if self._seen(fill, "snapshot") or self._history(fill):
                continue
            if await self._forward_fill(fill):
                self.recovered_fills["snapshot"] += 1
                self.history.recovered["snapshot"] += 1

    def _seen(self, fill: Fill, source: str) -> bool:
        if self.history.known(fill):
            self.duplicate_fills[source] += 1
            return True
        return False

    def _history(self, fill: Fill) -> bool:
        """A fill from before the history ends: remembered, not forwarded."""
        if self.history.before_floor(fill):
            self.history.remember(fill)
            self.history_fills += 1
            return True
        return False

    async def _forward_fill(self, fill: Fill) -> bool:
        """Hand a fill on once: claimed first (the fill audit may be looking at it too), the
        claim given back if the send is cancelled. False when it was claimed already."""
        if not self.history.claim(fill):
            self.duplicate_fills["claimed"] += 1
            return False
        try:
            await self._send.send(fill)
        except BaseException:
            self.history.release(fill)
            raise
        self.forwarded["fill"] += 1
        return True

    async def _forward_event(
        self, event: OrderReport | NonUserCancel | Liquidation | Funding | AccountState, kind: str
    ) -> None:
        if event in self._events_seen:
            self.duplicate_events += 1
            return
        await self._send.send(event)
        self._events_seen.add(event)
        self.forwarded[kind] += 1

    # --- history and resync ----------------------------------------------------------------------

    async def _baseline(self) -> None:
        """Before the first subscription: the recent fills are history; the newest ends it."""
        while True:
            try:
                fills = await self._venue.recent_fills()
            except (VenueError, MalformedAnswer) as error:
                delay = self._retry_delay()
                self.synced.close(f"fill history unavailable: {error}; retrying in {delay:.2f}s")
                logger.warning("{}: fill history unavailable: {}", self.name, error)
                await trio.sleep(delay)
                continue
            break
        self._failures = 0
        self.history_fills += len(fills)
        # Journaled (an event like any other), so that where the history ends survives a crash
        # that comes before any fill is journaled.
        await self._send.send(self.history.baseline(fills))
        self.forwarded["history_start"] += 1

    def _retry_delay(self) -> float:
        delay = self._retry.delay(self._failures, self._rng)
        self._failures += 1
        return delay

    async def _resync(self) -> None:
        reason = self._resync_reason or "resync"
        epoch, reconnects, gaps = self._epoch, self._venue.reconnects, self._gap_count()
        started = self._fetch_started_at = trio.current_time()
        failure = f"; last attempt failed: {self._last_failure}" if self._last_failure else ""
        self.synced.close(f"resyncing ({reason}){failure}")
        logger.info("{}: resyncing ({})", self.name, reason)
        try:
            fetched = await self._fetch()
        except (VenueError, MalformedAnswer) as error:
            self.resync_failures += 1
            self._last_failure = str(error)
            delay = self._retry_delay()
            self._retry_at = trio.current_time() + delay
            self.synced.close(f"resync failed: {error}; retrying in {delay:.2f}s")
            logger.warning("{}: resync failed, retrying in {:.2f}s: {}", self.name, delay, error)
            return
        self._failures = 0
        self._last_failure = None
        self._retry_at = -math.inf
        recovered = 0
        for fill in _time_order(fetched.fills):
            if self._seen(fill, "rest") or self._history(fill):
                continue
            if await self._forward_fill(fill):
                recovered += 1
        self.recovered_fills["rest"] += recovered
        self.history.recovered["resync"] += recovered
        newest = max((fill.time_ms for fill in fetched.fills), default=None)
        if newest is not None:
            self.history.advance_mark(newest)  # every fill up to the fetch is known now
        account = fetched.account
        for order in fetched.open_orders:
            await self._forward_event(_open_report(order, account.time_ms), "order_report")
        duration = trio.current_time() - started
        marker = Resynced(
            reason=reason,
            time_ms=account.time_ms,
            open_orders=tuple(fetched.open_orders),
            account=account,
            fills_recovered=recovered,
            duration_s=duration,
        )
        await self._send.send(marker)
        self.forwarded["resynced"] += 1
        self.resync_snapshot = marker
        self.resyncs += 1
        self.last_resync_duration_s = duration
        self.last_resync_at = trio.current_time()
        venue = self._venue
        if (
            epoch == self._epoch
            and venue.connected
            and venue.reconnects == reconnects
            and self._gap_count() == gaps
        ):
            self._resync_reason = None
            self._synced_reconnects = reconnects
            self.synced.open()
            logger.info(
                "{}: in sync ({} fills recovered, {} open orders, {:.3f}s)",
                self.name,
                recovered,
                len(fetched.open_orders),
                duration,
            )
        else:
            self.resyncs_repeated += 1  # sync was lost again meanwhile: the gate stays closed
            self._check_sync()

    async def _fetch(self) -> _Fetched:
        """The three reads of a resync, concurrently; the first error is raised."""
        results: dict[str, Any] = {}
        errors: list[Exception] = []

        async def fetch(key: str, read: Callable[[], Awaitable[Any]]) -> None:
            try:
                results[key] = await read()
            except (VenueError, MalformedAnswer) as error:
                errors.append(error)

        venue = self._venue
        async with trio.open_nursery() as nursery:
            nursery.start_soon(fetch, "fills", self._fetch_fills)
            nursery.start_soon(fetch, "orders", venue.open_orders)
            nursery.start_soon(fetch, "account", venue.account_state)
        if errors:
            raise errors[0]
        return _Fetched(results["fills"], results["orders"], results["account"])

    async def _fetch_fills(self) -> list[Fill]:
        """The venue's fills from the last seen fill (less the lookback), page by page."""
        mark = self.history.mark_ms
        start = max(mark - self.config.fill_lookback_ms, 0) if mark is not None else 0
        venue = self._venue
        return await fills_since(
            venue.fills_since, start, self.config.max_fill_pages, self.name, venue.fills_page
        )


async def fills_since(
    page: Callable[[int], Awaitable[list[Fill]]],
    start_ms: int,
    max_pages: int,
    name: str,
    page_size: int,
) -> list[Fill]:
    """Every fill from ``start_ms`` on (oldest first, at most ``page_size`` per ``page``), page by
    page, at most ``max_pages`` pages. Pages overlap by their boundary millisecond; callers
    deduplicate."""
    fills: list[Fill] = []
    start = start_ms
    for _ in range(max_pages):
        got = await page(start)
        fills.extend(got)
        if len(got) < page_size:
            return fills
        newest = max(fill.time_ms for fill in got)
        if newest <= start:  # a full page within one millisecond: cannot page further
            logger.warning("{}: {} fills at {} ms; paging stopped", name, len(got), start)
            return fills
        start = newest  # inclusive: the overlap is deduplicated
    logger.warning("{}: fill recovery stopped after {} fills", name, len(fills))
    return fills


def _open_report(order: OpenOrder, time_ms: int) -> OrderReport:
    """An open order of the snapshot as the report the live stream would have sent."""
    return OrderReport(
        coin=order.coin,
        side=order.side,
        px=order.px,
        sz=order.sz,
        orig_sz=order.orig_sz,
        oid=order.oid,
        cloid=order.cloid,
        time_ms=order.time_ms,
        status=OrderStatus.OPEN,
        status_time_ms=time_ms,
        venue_status="open",
    )
