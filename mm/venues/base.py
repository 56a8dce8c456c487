"""The venue interface: what every adapter provides to the rest of mm.

Four parts. ``VenueClient`` is the request side: queries and, as its ``OrderClient`` part,
batched order requests in ``mm.model`` types, with the exceptions that say what became of a
request (see "orders" below). The market data and user stream section is what a venue's streams
hand the generic feed consumers (``mm.feeds``): typed events per subscription, with ``Gap`` and
``Malformed`` markers where the venue's messages were lost or did not parse. ``VenueConnector``
is what a venue package supplies to the generic assembly (``mm.venues.service``): its
connections, opened as supervised children that hand back their streams and clients, its request
budget, its access check and its status; a second venue is a package that provides one.
``VenueAdapter`` is the whole venue as the service's components use it (its feeds, its client,
its health), which the assembly builds on a connector. Adapters hide wire formats, signing,
transport fallbacks and retries behind these.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from contextlib import AbstractContextManager
from decimal import Decimal
from typing import Any, Protocol, TypeVar, runtime_checkable

import attrs
import trio

from mm.book import BookBus
from mm.connection import ConnectionConfig, ConnectionHealth, State, Transition
from mm.model import (
    AccountState,
    BookDelta,
    BookSnapshot,
    CancelOrder,
    CancelResult,
    Fill,
    FillsSnapshot,
    Funding,
    Instrument,
    Liquidation,
    Mids,
    ModifyOrder,
    NonUserCancel,
    OpenOrder,
    OrderId,
    OrderReport,
    PlaceOrder,
    PlaceResult,
    RateLimitState,
    Rejected,
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


# --- instruments ---------------------------------------------------------------------------------


class UnknownInstrument(VenueError):
    """A symbol the venue does not list (or not yet read)."""


class InstrumentProvider(Protocol):
    """The venue's instruments: read once from the venue, then looked up by symbol."""

    async def instruments(self) -> list[Instrument]:
        """Every instrument the venue lists, read from it now."""
        ...

    def instrument(self, symbol: str) -> Instrument:
        """One instrument as last read; ``UnknownInstrument`` when the venue does not list it
        (or ``instruments`` was not read yet)."""
        ...


# --- orders ------------------------------------------------------------------------------------
# What a request's failure means for the orders in it is the port's, not an adapter's: the
# executor acts on these exceptions whichever venue raised them.


class RequestTimeout(VenueError):
    """No answer within the deadline: the request may or may not have taken effect."""


class RateLimited(VenueError):
    """The venue refused the request for its rate limit (an HTTP 429, a budget spent): it did
    not act. The adapter has told its own limiter already; the caller may wait and ask again."""


class MalformedAnswer(ValueError):
    """An answer or message from the venue without the shape the adapter expects (not JSON, a
    field missing or mistyped). Not a ``VenueError``: it is no refusal, so an action whose
    answer does not parse may have acted (the client raises ``OrderFateUnknown`` for those)."""


class OrderFateUnknown(VenueError):
    """A place or modify may or may not have reached the venue: resolve before re-sending.

    ``cloids``: the client order ids of the orders whose fate is unknown. ``known``: the
    answers the call did get for its other orders, by client order id, for the caller to
    apply. ``lands_by_ms``: until when (wall ms) the action may still take effect at the venue;
    None when it can no longer (it was answered, unreadably), so "the venue does not know the
    order" is final at once.
    """

    def __init__(
        self,
        cloids: Sequence[str],
        cause: str,
        known: Mapping[str, PlaceResult] | None = None,
        *,
        lands_by_ms: int | None = None,
    ) -> None:
        super().__init__(f"fate unknown for {len(cloids)} order(s): {cause}")
        self.cloids = tuple(cloids)
        self.cause = cause
        self.known: Mapping[str, PlaceResult] = dict(known or {})
        self.lands_by_ms = lands_by_ms


@attrs.frozen(slots=True)
class OrderCapabilities:
    """What a venue's order API offers, for executors to choose their requests by.

    ``modify``: a resting order can be amended in place (else cancel and place); ``max_batch``: the
    most orders one request may carry (None: the venue sets no limit); ``post_only``, ``ioc``: those
    times in force are accepted; ``market_by_quote``: a market order may be sized in the quote
    currency; ``test_orders``: the venue validates an order without placing it.
    """

    modify: bool
    max_batch: int | None
    post_only: bool
    ioc: bool
    market_by_quote: bool
    test_orders: bool

    def __attrs_post_init__(self) -> None:
        if self.max_batch is not None and self.max_batch < 1:
            raise ValueError(f"max_batch must be at least 1, not {self.max_batch}")


class ApiHeadroom(Protocol):
    """The venue's request budget as mm spends it: ``now`` is the service clock's monotonic
    time (``mm.clock.monotonic``)."""

    def headroom(self, now: float) -> float:
        """The share of the budget left, in [0, 1]: the strategy's quota tiers read it."""
        ...

    def order_budget(self, now: float) -> int:
        """How many orders may be placed or modified now without waiting: an executor trims
        its plan to it."""
        ...


class DeadMansSwitch(Protocol):
    """A venue's dead-man's switch: it cancels every order of the account at an armed time
    unless pushed forward. Optional: ``OrderClient.dead_mans_switch`` is None without one."""

    async def schedule_cancel(self, at_ms: int | None) -> None:
        """Arm (or with None, disarm) the switch; ``SwitchNeedsVolume`` when the venue refuses
        it until the account has traded more."""
        ...

    async def traded_volume(self) -> float:
        """The account's cumulative traded volume (USD) as the venue counts it."""
        ...


class OrderClient(Protocol):
    """The order side of a venue: batched requests, results in request order.

    A request refused whole raises ``VenueError`` (``RateLimited`` for the rate limit): nothing
    of it acted. One whose answer was lost raises ``OrderFateUnknown`` (place, modify) or
    ``RequestTimeout`` (cancel): the caller asks ``order_status`` before sending again.
    """

    @property
    def capabilities(self) -> OrderCapabilities: ...

    @property
    def dead_mans_switch(self) -> DeadMansSwitch | None: ...

    def new_client_id(self) -> str:
        """A fresh client order id in the venue's format, marked as mm's."""
        ...

    def is_own_client_id(self, client_id: str | None) -> bool:
        """Whether an order's client id is one mm gave it (None: placed without one)."""
        ...

    async def open_orders(self) -> list[OpenOrder]: ...

    async def order_status(
        self, *, oid: OrderId | None = None, cloid: str | None = None
    ) -> OrderReport | None:
        """The order with venue id ``oid`` or client id ``cloid`` (exactly one is given);
        None when the venue does not know the order."""
        ...

    async def place(self, orders: Sequence[PlaceOrder]) -> list[PlaceResult]: ...

    async def cancel(self, cancels: Sequence[CancelOrder]) -> list[CancelResult]: ...

    async def modify(self, modifies: Sequence[ModifyOrder]) -> list[PlaceResult]: ...


class PendingPlace(Protocol):
    """A place written already (``SendsPlaceNow.send_place``): its result is awaited here,
    in any task, and fails as ``OrderClient.place`` does."""

    async def result(self) -> PlaceResult: ...


@runtime_checkable
class SendsPlaceNow(Protocol):
    """An order client that can write one order's request at once, without waiting and in
    no task's name (KuCoin's order lane): a strategy's task can send an order that another
    task then awaits. Optional: a client without it is sent to through ``place`` alone."""

    def place_ready(self) -> bool:
        """Whether ``send_place`` can write an order now (else it would answer None)."""
        ...

    def send_place(self, order: PlaceOrder) -> PlaceResult | PendingPlace | None:
        """The result at once when refused before the venue; the pending place once its
        request is written; None, with nothing sent, when it cannot go without waiting.
        Raises ``VenueError`` when it was refused whole, nothing of it sent."""
        ...


class VenueClient(OrderClient, InstrumentProvider, Protocol):
    """The request side: the order API, the instruments, and the queries of reference and
    account state."""

    async def account_state(self) -> AccountState: ...

    async def fills_since(self, time_ms: int) -> list[Fill]:
        """One page of the account's fills from ``time_ms`` on, oldest first (at most
        ``fills_page``: a full page may have more after)."""
        ...

    @property
    def fills_page(self) -> int: ...

    async def rate_limit(self) -> RateLimitState: ...


@runtime_checkable
class SpotTerms(Protocol):
    """What a spot venue's client offers beyond the port's orders, for a strategy that prices
    its own taker trades (triangular arbitrage): the account's taker fee rate of a symbol, as
    a fraction of the quote it is paid in; the increment a market buy's funds are floored to;
    and the venue's test order (validated as a real one, never placed). Optional: a client is
    one when it has them (``isinstance``). ``taker_fee`` and ``funds_increment`` raise
    ``UnknownInstrument`` for a symbol not read (or, for the fee, one whose fee is not paid in
    its quote); ``test_order`` answers a refusal as ``Rejected`` and raises ``VenueError`` when
    the request itself fails."""

    def taker_fee(self, symbol: str) -> Decimal: ...

    def funds_increment(self, symbol: str) -> Decimal: ...

    async def test_order(self, order: PlaceOrder) -> Rejected | None: ...


# --- market data and user stream --------------------------------------------------------------

_Event_co = TypeVar("_Event_co", covariant=True)
_T = TypeVar("_T")


@attrs.frozen(slots=True)
class Gap:
    """Events of a stream were lost here (the consumer fell behind and the venue's messages were
    dropped, or a sequence broke); ``at`` is when, on Trio's clock. A book built from deltas is
    no base for the next one; a user stream must resync."""

    at: float


@attrs.frozen(slots=True)
class Malformed:
    """A venue message on the stream that did not parse; skipped (``why`` for a DEBUG log)."""

    why: str


@attrs.frozen(slots=True)
class Foreign:
    """A well-formed message on a user subscription that is not this account's to act on
    (another account's, or of a kind the stream does not carry): counted, skipped."""

    what: str


class EventStream(Protocol[_Event_co]):
    """One venue subscription's events, typed, in the order the venue sent them.

    Iterating yields the events and the ``Gap`` and ``Malformed`` markers in between, and ends
    when the subscription ends (unsubscribed, or refused by the venue: ``error`` says why).
    ``channel`` is the venue's name for it (counters are kept per channel), ``active`` whether
    the venue acknowledged it on the current connection.
    """

    @property
    def channel(self) -> str: ...

    @property
    def active(self) -> bool: ...

    @property
    def error(self) -> str | None: ...

    @property
    def description(self) -> str: ...

    @property
    def gaps(self) -> int:
        """``Gap`` markers issued so far, whether or not iterated to yet."""
        ...

    def __aiter__(self) -> AsyncIterator[_Event_co | Gap | Malformed]: ...


@runtime_checkable
class DirectStream(EventStream[_Event_co], Protocol):
    """An ``EventStream`` that can also hand its events straight to a handler, in the task
    that receives them from the venue, without a task switch per event.

    After ``deliver(handle)``, every event and marker is given to ``handle`` as it arrives
    (``handle`` must not block, and is on the hot path); iterating the stream then yields
    nothing more and ends when the subscription ends. If ``handle`` raises, the stream stops
    and iterating it raises that exception, in the iterating (the consumer's) task: the
    venue's connection is never the one to fail for it.
    """

    def deliver(self, handle: Callable[[_Event_co | Gap | Malformed], None]) -> None: ...


BookEvent = BookSnapshot | BookDelta


class MarketStream(Protocol):
    """A venue's market data on one connection, as the generic market feed reads it.

    Each call registers a subscription (kept across reconnects) and returns its typed events. A
    venue whose books are snapshots sends ``BookSnapshot`` only (Hyperliquid's l2Book); one
    whose books are sequenced deltas starts each symbol, and follows every ``Gap`` or break of
    its sequence, with a ``BookSnapshot`` carrying the sequence its deltas continue from.
    """

    @property
    def connected(self) -> bool: ...

    async def wait_connected(self) -> None:
        """Return once the connection is up and its subscriptions acknowledged."""
        ...

    async def books(
        self, symbol: str, *, buffer: int, depth: int | None = None
    ) -> EventStream[BookEvent]:
        """The symbol's books, each side cut to its first ``depth`` levels (None: as deep as
        the venue sends), so that an adapter builds only the levels its reader uses."""
        ...

    async def trades(self, symbol: str, *, buffer: int) -> EventStream[Trade]: ...

    async def mids(self, *, buffer: int) -> EventStream[Mids]: ...

    async def unsubscribe(self, stream: EventStream[Any]) -> None:
        """End a subscription (best effort at the venue); its iteration ends."""
        ...


class RequestBudget(ApiHeadroom, Protocol):
    """The adapter's request budget as risk and status read it, beyond the quota's headroom."""

    def headroom_by_kind(self, now: float) -> dict[str, float]:
        """The share left of each of the venue's budgets (by its own names), for status."""
        ...

    @property
    def rejections(self) -> int:
        """Requests the venue refused for its rate limit, since the start."""
        ...

    def read_retry_wait(self, now: float, *, counted: bool) -> float:
        """How long a read the venue refused for its rate limit waits before it is asked
        again: what is left of the budget's backoff; ``counted``: the refusal reached the
        budget already (else it starts the backoff now)."""
        ...


class ResyncMark(Protocol):
    """The end of a user-stream resync: the account as it read it, and how long it took."""

    @property
    def account(self) -> AccountState: ...

    @property
    def duration_s(self) -> float: ...


UserStreamItem = (
    OrderReport | Fill | FillsSnapshot | NonUserCancel | Liquidation | Funding | AccountState
)
"""What a venue's user stream carries: order updates, fills (each with its fee and fee
currency), the fills listed when a subscription starts, cancels the venue made, liquidations,
funding payments, and the account's positions and balances where the venue pushes them."""


class UserStream(Protocol):
    """A venue's stream of one account's events, and the reads that resync the account, as the
    generic user feed (``mm.feeds.user``) reads them.

    The events come on ``EventStream`` subscriptions, with ``Gap`` markers where messages were
    lost (and ``gaps`` counting them), ``Malformed`` and ``Foreign`` ones for what is skipped.
    Losses the stream cannot mark are the feed's to infer: while ``connected`` is False, and
    when ``reconnects`` has moved since it last synced, events may have been lost. The reads
    raise ``VenueError`` (``RateLimited`` on the venue's rate limit) or ``MalformedAnswer``.
    """

    @property
    def account(self) -> str:
        """The account's public id at the venue (an address, not a secret)."""
        ...

    @property
    def fills_page(self) -> int:
        """The most fills one ``fills_since`` answer lists: a full page may have more after."""
        ...

    @property
    def connected(self) -> bool: ...

    @property
    def reconnects(self) -> int:
        """Connections made again since the stream started."""
        ...

    def watching(self, on_change: Callable[[bool, str], None]) -> AbstractContextManager[None]:
        """Within the block, ``on_change(up, reason)`` hears at once when the connection goes
        down and when it is up again."""
        ...

    async def subscribe(
        self, *, buffer: int | None = None
    ) -> list[EventStream[UserStreamItem | Foreign]]:
        """Every subscription the account's events need (``buffer``: messages held for each
        before a ``Gap``; None: the stream's default)."""
        ...

    async def unsubscribe(self, stream: EventStream[Any]) -> None: ...

    async def recent_fills(self) -> list[Fill]:
        """The account's most recent fills (where its history ends, on a first run)."""
        ...

    async def fills_since(self, time_ms: int) -> list[Fill]:
        """One page of the account's fills from ``time_ms`` on, oldest first."""
        ...

    async def open_orders(self) -> list[OpenOrder]: ...

    async def account_state(self) -> AccountState: ...


# --- what a venue package supplies to the assembly ---------------------------------------------


class RateLimitWaits(Protocol):
    """Startup's waits on the venue's rate limit (``mm.execution.startup.StartupWaits``): a
    request refused with ``RateLimited`` is asked again once the budget's backoff is over."""

    async def call(self, step: str, request: Callable[[], Awaitable[_T]]) -> _T:
        """``request()``'s answer, however many ``RateLimited`` refusals come first."""
        ...


class Connection(Protocol):
    """A connector's connection to the venue, as the feeds' metrics and status read it."""

    @property
    def state(self) -> State: ...

    @property
    def health(self) -> ConnectionHealth: ...

    @property
    def frames_received(self) -> Mapping[str, int]:
        """Messages received so far, per channel."""
        ...

    @property
    def malformed_frames(self) -> int:
        """Messages that did not parse, so far."""
        ...


class MarketSession(Protocol):
    """The market connection a connector opened: its stream, and the connection for metrics."""

    @property
    def stream(self) -> MarketStream: ...

    @property
    def connection(self) -> Connection: ...


class UserSession(Protocol):
    """The user connection a connector opened: the account's stream, a client that may read but
    not yet trade (``unchecked``), and the connection for metrics."""

    @property
    def stream(self) -> UserStream: ...

    @property
    def unchecked(self) -> VenueClient:
        """The request side before the venue said the key may trade for the account: for
        reference reads only."""
        ...

    @property
    def connection(self) -> Connection: ...

    @property
    def landing_window_ms(self) -> int:
        """How long after it was sent an order action may still take effect at the venue."""
        ...

    async def trading_client(self, waits: RateLimitWaits) -> VenueClient:
        """The client to trade with, once the venue says the key may trade for the account
        (asked again, and why not shown in ``access_refused``, until it does); each request
        of the check waits out the rate limit through ``waits``."""
        ...


class AccountBudget(Protocol):
    """A venue's per-account request budget kept on the venue's own figures (optional): fills
    raise it, a resync has it read again, and it refreshes itself while ``run`` runs."""

    def on_fill(self, fill: Fill) -> None: ...

    def resynced(self, started_at: float) -> None:
        """The user stream resynced, the resync having started at ``started_at`` (Trio's
        clock)."""
        ...

    async def run(
        self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED
    ) -> None: ...

    def status(self) -> dict[str, object]: ...


class VenueConnector(Protocol):
    """What a venue package supplies to the generic assembly (``mm.venues.service``).

    ``run_market`` and ``run_user`` open a connection to the venue at ``url`` with the
    connection settings given, report its state changes to ``on_state``, hand back (through
    ``task_status``) what the feeds read and the execution child trades with, and run until
    cancelled; a connection that fails raises, and the feed child restarts it. What outlives
    restarts (the request budget, the signer, the access answers) belongs to the connector.
    """

    @property
    def account(self) -> str:
        """The account traded for, as the venue names it."""
        ...

    @property
    def limiter(self) -> RequestBudget: ...

    @property
    def account_budget(self) -> AccountBudget | None: ...

    def rate_limit_waits(self) -> int:
        """The venue's rate-limit refusals the connector's user stream waited out itself
        (reading the account's history, resyncing)."""
        ...

    def access_refused(self) -> str | None:
        """Why the venue refuses this key for the account, in its words; None when it does not
        (or was not asked yet)."""
        ...

    def status(self) -> dict[str, Any]:
        """The venue's own part of ``/status`` (its account budget, its access answers)."""
        ...

    async def run_market(
        self,
        url: str,
        config: ConnectionConfig,
        on_state: Callable[[Transition], None],
        *,
        task_status: trio.TaskStatus[MarketSession] = trio.TASK_STATUS_IGNORED,
    ) -> None: ...

    async def run_user(
        self,
        url: str,
        config: ConnectionConfig,
        on_state: Callable[[Transition], None],
        waits: RateLimitWaits,
        *,
        task_status: trio.TaskStatus[UserSession] = trio.TASK_STATUS_IGNORED,
    ) -> None:
        """``waits``: what a read the connection needs before it runs goes through, so that a
        429 while starting is waited out, as every step of startup's is."""
        ...


class VenueAdapter(Protocol):
    """The adapter as the service's components use it: its feeds, its client, its health.

    ``run_market`` and ``run_user`` are supervised children; the client exists once the user
    feed is up (None before, and the callers wait or skip). Nothing here is one venue's: the
    factory (mm.venues.factory) builds the generic venue service (mm.venues.service) on the
    connector ``venue.kind`` names.
    """

    bus: BookBus  # the latest checked book per coin
    trades: trio.MemoryReceiveChannel[Trade]
    user_events: trio.MemoryReceiveChannel[Any]  # order reports, fills, cancels, resync marks

    @property
    def account(self) -> str:
        """The account traded for, as the venue names it."""
        ...

    @property
    def coins(self) -> Sequence[str]:
        """The coins whose market data the adapter follows."""
        ...

    @property
    def client(self) -> VenueClient | None:
        """The request side, once the user feed is up."""
        ...

    @property
    def limiter(self) -> RequestBudget: ...

    @property
    def resync_snapshot(self) -> ResyncMark | None:
        """The user stream's latest resync (a new object for each)."""
        ...

    def healthy(self) -> bool:
        """Fit to keep trading: the kill switch not tripped, in sync with the venue and every
        book fresh."""
        ...

    def in_sync(self) -> bool:
        """The user stream's gate is open: local orders, fills and positions follow the
        venue's (False while it resyncs, and before it first synced)."""
        ...

    def stale_coins(self) -> list[str]:
        """Coins whose last book is too old (or never came): all of them while the market feed
        is down."""
        ...

    def last_book_ms(self, coin: str) -> int | None:
        """When (wall ms) the coin's last book arrived; None before the first."""
        ...

    def market_connection(self) -> tuple[str, int] | None:
        """The market feed's connection: its state (connecting, healthy, stale, reconnecting,
        failed) and its reconnection attempts; None before it started."""
        ...

    def rate_limit_waits(self) -> int:
        """The venue's rate-limit refusals the adapter waited out itself (starting, resyncing):
        waits, not errors of the trading risk judges."""
        ...

    def startup_waiting(self) -> str | None:
        """What the startup sequence waits for now (a rate limit), None when it does not."""
        ...

    def access_refused(self) -> str | None:
        """Why the venue refuses this key for the account, in its words; None when it does
        not (or was not asked yet)."""
        ...

    def status(self) -> dict[str, Any]:
        """The adapter's part of ``/status``: budgets, startup and the venue's access."""
        ...

    async def run_market(
        self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED
    ) -> None: ...

    async def run_user(
        self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED
    ) -> None: ...


# --- pre-flight --------------------------------------------------------------------------------


@attrs.frozen
class AccessAnswer:
    """Whether the venue lets the signing key trade for the account: ``detail`` says what was
    found when it does, and why not, in the venue's words, when it does not."""

    allowed: bool
    detail: str


class VenueProbe(Protocol):
    """The venue as ``mm check`` asks it, without the service running: the request side and
    what the checks need beyond it. Every call may raise (a ``VenueError``, a transport
    error); the caller bounds each with its deadline."""

    @property
    def client(self) -> VenueClient: ...

    @property
    def account(self) -> str:
        """The account the checks ask about, as the venue names it."""
        ...

    @property
    def fills_page(self) -> int:
        """The most fills one ``fills_since`` answer carries: a full page means more may follow."""
        ...

    @property
    def dead_mans_switch_volume(self) -> float | None:
        """What the account must have traded (USD) before the venue arms its dead-man's
        switch; None when the venue has none."""
        ...

    async def access(self) -> AccessAnswer:
        """Ask the venue now whether the key may trade for the account."""
        ...

    async def books(self, symbols: Sequence[str], wait_s: float) -> tuple[set[str], list[str]]:
        """Subscribe to every symbol's book for up to ``wait_s``: the symbols a book arrived
        for, and the venue's refusals, in its words."""
        ...

    def headroom_by_kind(self, state: RateLimitState) -> dict[str, float]:
        """The share left of each of the venue's budgets as a fresh limiter reckons it from
        the venue's address figures (no request of mm's spent yet)."""
        ...
