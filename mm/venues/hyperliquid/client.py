"""The Hyperliquid adapter's requests: queries and signed actions, over WebSocket post or REST.

Every action is signed once (``L1Signer``, a strictly increasing nonce) and sent as a WebSocket
``post`` when the socket is up, over REST otherwise. What happens when an answer does not come
decides whether an order can be doubled, so the rules are strict:

- the socket is down before sending: REST at once (nothing was sent);
- a post times out, or the socket drops while waiting, or REST times out or answers 5xx: the
  request may have acted. Orders and modifies are NOT re-sent: ``OrderFateUnknown`` names
  their cloids, and the caller resolves each with ``order_status`` before anything is sent
  again. Cancels are re-sent once over REST (a cancel cannot double anything);
- HTTP 429 or the venue's address-limit error: the request did not act; the rate limiter backs
  off and lowers its budget, and ``RateLimited``/``VenueRejected`` reaches the caller;
- an answer to an action that does not parse: as a lost answer, ``OrderFateUnknown`` (a
  malformed answer never crashes the caller, and no text of it is taken whole);
- a batch refused as a whole (one error status for several requests, the venue's
  pre-validation: ``mm.venues.hyperliquid.batch``): that error is each request's; a number of
  statuses that maps onto no request is an ``OrderFateUnknown`` for the batch's orders (each
  resolved with ``orderStatus``), logged as the venue's contract broken.

Every order action (place, cancel, modify) carries ``expiresAfter``: the (wall) time it is
signed plus ``action_expiry_ms``. The venue commits an action a block or two after it takes it
in, and refuses it once that time has passed, so an action whose answer was lost can take effect
only until then: ``OrderFateUnknown.lands_by_ms`` says until when (the expiry plus
``expiry_allowance_ms`` for the venue's clock against ours), and the caller treats the venue
not knowing the order as final only after that.

Post-only orders go in their own batch, apart from IOC and GTC ones, so one cannot delay or
fail the other: a batch the venue refuses whole (an error answer, a rate limit) refuses only its
own orders when the other batch was answered, and an unknown fate names only its batch's orders
(``OrderFateUnknown.known`` carries the answers of the others). Queries are read-only and fall
back to REST on any socket trouble; each is charged to the rate limiter at its true weight, the
items its answer lists included (``mm.venues.hyperliquid.queries``).

Every query is for ``account`` (the master, sub-account or vault traded for), never for the
signer; every action carries ``vault_address`` (the sub-account or vault traded for, else null),
as ``mm.venues.hyperliquid.authority`` judged it from the venue's answers.
"""

from __future__ import annotations

import copy
import time
from collections.abc import Callable, Mapping, Sequence
from functools import partial
from typing import Any, Final, TypeVar

import trio
from loguru import logger

from mm import clock
from mm.model import (
    AccountState,
    CancelOrder,
    CancelResult,
    Fill,
    Instrument,
    ModifyOrder,
    OpenOrder,
    OrderId,
    OrderReport,
    PlaceOrder,
    PlaceResult,
    RateLimitState,
    Rejected,
    Tif,
)
from mm.venues.base import (
    DeadMansSwitch,
    OrderCapabilities,
    OrderFateUnknown,
    RateLimited,
    RequestTimeout,
    SwitchNeedsVolume,
    UnknownInstrument,
    VenueError,
)
from mm.venues.hyperliquid import batch, codec, limits, queries, wire
from mm.venues.hyperliquid.authority import Role, parse_user_role, parse_vault_leader
from mm.venues.hyperliquid.ids import venue_oid
from mm.venues.hyperliquid.instruments import AssetMeta, instrument_of
from mm.venues.hyperliquid.metrics import AdapterMetrics, rejection_reason
from mm.venues.hyperliquid.rate_limit import Cost, RateLimiter, acquire
from mm.venues.hyperliquid.rest import RestTransport, TooManyRequests, VenueUnavailable
from mm.venues.hyperliquid.schedule_cancel import parse_volume_refusal
from mm.venues.hyperliquid.signing import L1Signer
from mm.venues.hyperliquid.ws import ConnectionDown, PostRejected, PostTimeout, WsConnection

_T = TypeVar("_T")
_S = TypeVar("_S", PlaceResult, CancelResult)
# The actions that carry expiresAfter: the order actions. (The dead-man's switch's
# scheduleCancel goes without: its own time says when it acts.)
ORDER_ACTIONS = frozenset({"place", "cancel", "modify"})


CAPABILITIES = OrderCapabilities(
    # batchModify amends resting orders in place, keeping each its cloid.
    modify=True,
    # The venue documents no largest batch (an /exchange request weighs 1 + floor(n / 40)).
    max_batch=None,
    post_only=True,  # Alo
    ioc=True,
    market_by_quote=False,  # a "market" order is an IOC limit order sized in the coin
    test_orders=False,
)


class UnknownCoin(UnknownInstrument):
    """A coin the venue's metadata does not list."""


class HyperliquidClient:
    # userFillsByTime lists at most this many fills an answer.
    fills_page: Final = limits.FILLS_PAGE

    def __init__(
        self,
        *,
        rest: RestTransport,
        signer: L1Signer,
        account: str,
        mainnet: bool,
        limiter: RateLimiter,
        ws: WsConnection | None = None,
        metrics: AdapterMetrics | None = None,
        nonces: wire.NonceSource | None = None,
        post_timeout_s: float = 5.0,
        action_expiry_s: float = 3.0,
        expiry_allowance_s: float = 0.5,
        clock: Callable[[], float] = trio.current_time,
        vault_address: str | None = None,
    ) -> None:
        self.rest = rest
        self.ws = ws
        self.signer = signer
        self.account = account.lower()
        self.vault_address = None if vault_address is None else vault_address.lower()
        self.mainnet = mainnet
        self.limiter = limiter
        self.metrics = metrics
        self.nonces = nonces or wire.NonceSource()
        self.post_timeout_s = post_timeout_s
        self.action_expiry_ms = round(action_expiry_s * 1000)
        self.expiry_allowance_ms = round(expiry_allowance_s * 1000)
        self._clock = clock
        self._assets: dict[str, AssetMeta] = {}
        self._instruments: dict[str, Instrument] = {}

    @property
    def landing_window_ms(self) -> int:
        """How long after it is signed an order action may still take effect at the venue."""
        return self.action_expiry_ms + self.expiry_allowance_ms

    def over_rest(self) -> HyperliquidClient:
        """This client (signer, nonces, limiter, metadata) without its socket: every request
        over REST. The cancel-all's second path, for when a WebSocket reply is lost."""
        twin = copy.copy(self)
        twin.ws = None
        return twin

    def for_vault(self, vault_address: str | None) -> HyperliquidClient:
        """This client (signer, nonces, limiter, metadata, socket) with its actions sent for
        ``vault_address``: the sub-account or vault traded for, as the venue allowed it."""
        twin = copy.copy(self)
        twin.vault_address = None if vault_address is None else vault_address.lower()
        return twin

    # --- the port's order side ---------------------------------------------------------------

    @property
    def capabilities(self) -> OrderCapabilities:
        return CAPABILITIES

    @property
    def dead_mans_switch(self) -> DeadMansSwitch:
        """The venue's ``scheduleCancel``: this client arms it."""
        return self

    def new_client_id(self) -> str:
        return wire.new_cloid()

    def is_own_client_id(self, client_id: str | None) -> bool:
        return wire.is_own_cloid(client_id)

    # --- reference data -------------------------------------------------------------------

    async def metadata(self) -> list[AssetMeta]:
        assets = codec.parse_meta(await self._info({"type": "meta"}))
        self._assets = {asset.coin: asset for asset in assets}
        self._instruments = {asset.coin: instrument_of(asset) for asset in assets}
        return assets

    async def instruments(self) -> list[Instrument]:
        await self.metadata()
        return list(self._instruments.values())

    def instrument(self, symbol: str) -> Instrument:
        found = self._instruments.get(symbol)
        if found is None:
            raise UnknownCoin(f"{symbol} is not listed (metadata loaded: {bool(self._assets)})")
        return found

    def asset(self, coin: str) -> AssetMeta:
        meta = self._assets.get(coin)
        if meta is None:
            raise UnknownCoin(f"{coin} is not listed (metadata loaded: {bool(self._assets)})")
        return meta

    # --- queries --------------------------------------------------------------------------

    async def open_orders(self) -> list[OpenOrder]:
        request = {"type": "frontendOpenOrders", "user": self.account}
        return codec.parse_open_orders(await self._info(request))

    async def account_state(self) -> AccountState:
        raw = await self._info({"type": "clearinghouseState", "user": self.account})
        return codec.parse_clearinghouse_state(raw, clock.wall_ms())

    async def fills_since(self, time_ms: int) -> list[Fill]:
        request = {"type": "userFillsByTime", "user": self.account, "startTime": time_ms}
        return codec.parse_fills(await self._info(request))

    async def order_status(
        self, *, oid: OrderId | None = None, cloid: str | None = None
    ) -> OrderReport | None:
        """By oid or by cloid (exactly one): the venue's ``orderStatus`` takes either in its
        ``oid`` field, an integer or a cloid's hex string."""
        target: int | str
        if oid is not None and cloid is None:
            target = venue_oid(oid)
        elif cloid is not None and oid is None:
            target = cloid
        else:
            raise ValueError("order_status needs exactly one of oid and cloid")
        request = {"type": "orderStatus", "user": self.account, "oid": target}
        return codec.parse_order_status(await self._info(request))

    async def rate_limit(self) -> RateLimitState:
        """The venue's figures of the address budget, taken by the limiter: the requests it
        counts from when this query was sent on, and the volume of the fills made before its
        answer came in, are its own (``RateLimiter.observe``)."""
        sent_at = self._clock()
        state = codec.parse_user_rate_limit(
            await self._info({"type": "userRateLimit", "user": self.account})
        )
        self.limiter.observe(state, self._clock(), sent_at=sent_at, volume_as_of_ms=clock.wall_ms())
        return state

    async def user_role(self, address: str) -> Role:
        """What ``address`` is to the venue: a user, an API wallet (of whom), a sub-account (of
        whom), a vault, or missing."""
        return parse_user_role(await self._info({"type": "userRole", "user": address.lower()}))

    async def vault_leader(self, address: str) -> str | None:
        """The leader of the vault at ``address`` (None: the venue knows no such vault)."""
        request = {"type": "vaultDetails", "vaultAddress": address.lower()}
        return parse_vault_leader(await self._info(request))

    async def _info(self, request: Mapping[str, Any]) -> Any:
        """An ``/info`` request at its true weight (``queries.ask``): over the WebSocket post
        while the socket is up, over REST otherwise (or when the post went wrong)."""
        return await queries.ask(
            self.limiter, request, partial(self._ask, request), clock=self._clock
        )

    async def _ask(self, request: Mapping[str, Any]) -> Any:
        ws = self.ws
        if ws is not None and ws.connected:
            started = time.perf_counter()
            try:
                reply = await ws.post({"type": "info", "payload": request}, self.post_timeout_s)
            except (ConnectionDown, PostTimeout, PostRejected):
                pass  # a query is safe to ask again over REST
            else:
                if self.metrics is not None:
                    self.metrics.ws_round_trip.labels(feed=ws.name).observe(
                        time.perf_counter() - started
                    )
                if isinstance(reply, Mapping) and reply.get("type") == "info":
                    return codec.parse_info_payload(reply.get("payload"))
                raise _reply_error(reply)
        return await self.rest.info(request)

    # --- actions --------------------------------------------------------------------------

    async def place(self, orders: Sequence[PlaceOrder]) -> list[PlaceResult]:
        """Place a batch; results in request order. Post-only orders travel apart."""
        results: list[PlaceResult | None] = [None] * len(orders)
        groups = [
            [i for i, order in enumerate(orders) if order.tif is Tif.ALO],
            [i for i, order in enumerate(orders) if order.tif is not Tif.ALO],
        ]
        groups = [indexes for indexes in groups if indexes]
        refused: list[tuple[list[int], VenueError]] = []
        unknown: list[OrderFateUnknown] = []

        async def send(indexes: list[int]) -> None:
            group = [orders[i] for i in indexes]
            cloids = [o.cloid for o in group]
            try:
                wires = [self._order_wire(order) for order in group]
                payload = await self._action(wire.order_action(wires), cloids=cloids, kind="place")
                statuses = _statuses(codec.parse_order_statuses, payload, cloids, "order")
            except OrderFateUnknown as error:
                unknown.append(error)
                return
            except VenueError as error:  # refused before acting: nothing of it was placed
                refused.append((indexes, error))
                return
            for index, status in zip(indexes, statuses, strict=True):
                results[index] = status
                self._count("place", status)

        async with trio.open_nursery() as nursery:
            for indexes in groups:
                nursery.start_soon(send, indexes)
        if refused and len(groups) == 1 and not unknown:
            raise refused[0][1]  # the whole request was refused
        for indexes, error in refused:  # beside a batch that was answered: its orders only
            for index in indexes:
                results[index] = rejected = Rejected(str(error))
                self._count("place", rejected)
        if unknown:
            known = {orders[i].cloid: r for i, r in enumerate(results) if r is not None}
            raise _combined(unknown, known)
        return [result for result in results if result is not None]

    async def cancel(self, cancels: Sequence[CancelOrder]) -> list[CancelResult]:
        """Cancel by oid and by cloid (two actions when mixed); results in request order."""
        results: list[CancelResult] = [None] * len(cancels)
        by_oid = [i for i, c in enumerate(cancels) if c.oid is not None]
        by_cloid = [i for i, c in enumerate(cancels) if c.cloid is not None]
        if by_oid:
            action = wire.cancel_action(
                [
                    wire.cancel_wire(self.asset(cancels[i].coin).index, _oid(cancels[i]))
                    for i in by_oid
                ]
            )
            self._fill_cancels(results, by_oid, await self._cancel_action(action, len(by_oid), ()))
        if by_cloid:
            cloids = [_cloid(cancels[i]) for i in by_cloid]
            wires = [
                wire.cancel_by_cloid_wire(self._index(cancels[i].coin), cloid)
                for i, cloid in zip(by_cloid, cloids, strict=True)
            ]
            action = wire.cancel_by_cloid_action(wires)
            self._fill_cancels(
                results, by_cloid, await self._cancel_action(action, len(by_cloid), cloids)
            )
        return results

    async def modify(self, modifies: Sequence[ModifyOrder]) -> list[PlaceResult]:
        wires = [
            wire.modify_wire(
                modify,
                self.asset(modify.order.coin).index,
                self.asset(modify.order.coin).sz_decimals,
            )
            for modify in modifies
        ]
        cloids = [modify.order.cloid for modify in modifies]
        payload = await self._action(wire.batch_modify_action(wires), cloids=cloids, kind="modify")
        statuses = _statuses(codec.parse_order_statuses, payload, cloids, "batchModify")
        for status in statuses:
            self._count("modify", status)
        return statuses

    async def schedule_cancel(self, at_ms: int | None) -> None:
        """Arm (or with None, disarm) the dead-man's switch; ``SwitchNeedsVolume`` when the
        venue refuses it for an account that has not traded enough."""
        payload = await self._action(wire.schedule_cancel_action(at_ms), cloids=None, kind="other")
        try:
            _parse_answer(codec.parse_default, payload, ())
        except codec.VenueRejected as error:
            refusal = parse_volume_refusal(error.text)
            if refusal is None:
                raise
            raise SwitchNeedsVolume(error.text, refusal.required, refusal.traded) from error

    async def traded_volume(self) -> float:
        """The account's cumulative traded volume (USD) as the venue counts it (``cumVlm``)."""
        return (await self.rate_limit()).cum_volume

    async def noop(self) -> str | None:
        """Send a ``noop`` signed by this key (for no vault: it acts on nothing, and only
        spends a nonce): None when the venue accepts it, else its refusal text, which says
        whether the venue knows the signer."""
        payload = await self._action(wire.noop_action(), cloids=None, kind="other", for_vault=False)
        if isinstance(payload, Mapping) and payload.get("status") == "err":
            return codec.describe(payload.get("response", ""))
        _parse_answer(codec.parse_default, payload, ())
        return None

    async def _cancel_action(
        self, action: dict[str, Any], requests: int, cloids: Sequence[str]
    ) -> list[CancelResult]:
        """One cancel action of ``requests`` cancels, a status for each; ``cloids`` name its
        orders when it cancels by cloid (an answer that leaves them unknown names them)."""
        payload = await self._action(action, cloids=None, kind="cancel")
        statuses = _statuses(codec.parse_cancel_statuses, payload, cloids, action["type"], requests)
        for status in statuses:
            self._count("cancel", status)
        return statuses

    def _fill_cancels(
        self, results: list[CancelResult], indexes: list[int], statuses: list[CancelResult]
    ) -> None:
        for index, status in zip(indexes, statuses, strict=True):
            results[index] = status

    def _index(self, coin: str) -> int:
        return self.asset(coin).index

    def _order_wire(self, order: PlaceOrder) -> dict[str, Any]:
        meta = self.asset(order.coin)
        return wire.order_wire(order, meta.index, meta.sz_decimals)

    async def _action(
        self,
        action: dict[str, Any],
        *,
        cloids: Sequence[str] | None,
        kind: str,
        for_vault: bool = True,
    ) -> Any:
        """Sign and send one action (for the vault traded for, if any, unless ``for_vault`` is
        False); the venue's payload, or an exception per the rules above."""
        resendable = cloids is None and kind == "cancel"
        expiring = kind in ORDER_ACTIONS
        await acquire(self.limiter, Cost.of_action(action), clock=self._clock)
        body = self._signed(action, for_vault=for_vault, expiring=expiring)
        ws = self.ws
        started = time.perf_counter()
        if ws is not None and ws.connected:
            try:
                reply = await ws.post({"type": "action", "payload": body}, self.post_timeout_s)
            except (PostTimeout, ConnectionDown) as error:
                if not resendable:
                    raise OrderFateUnknown(
                        cloids or (), f"websocket: {error}", lands_by_ms=self._lands_by(body)
                    ) from error
            except PostRejected:
                pass  # refused before handling: nothing acted
            else:
                self._observe_ack("websocket", started)
                if isinstance(reply, Mapping) and reply.get("type") == "action":
                    return self._checked(reply.get("payload"))
                self._rejected_reply(reply)
            body = self._signed(action, for_vault=for_vault, expiring=expiring)  # fresh nonce
            started = time.perf_counter()
        try:
            payload = await self._rest(self.rest.exchange, body)
        except (RequestTimeout, VenueUnavailable) as error:
            if resendable:
                raise
            raise OrderFateUnknown(
                cloids or (), f"rest: {error}", lands_by_ms=self._lands_by(body)
            ) from error
        self._observe_ack("rest", started)
        return self._checked(payload)

    def _signed(
        self, action: dict[str, Any], *, for_vault: bool = True, expiring: bool = False
    ) -> dict[str, Any]:
        """The signed body; an order action expires ``action_expiry_ms`` after the time it is
        signed (the wall clock, whatever the nonce source), signed as the SDK signs
        ``expires_after``."""
        nonce = self.nonces.next()
        vault = self.vault_address if for_vault else None
        expires = clock.wall_ms() + self.action_expiry_ms if expiring else None
        signature = self.signer.sign(
            action, nonce, vault_address=vault, expires_after=expires, mainnet=self.mainnet
        )
        body = {"action": action, "nonce": nonce, "signature": signature, "vaultAddress": vault}
        if expires is not None:
            body["expiresAfter"] = expires
        return body

    def _lands_by(self, body: Mapping[str, Any]) -> int | None:
        """Until when the action in ``body`` may still take effect at the venue (wall ms)."""
        expires = body.get("expiresAfter")
        return None if expires is None else int(expires) + self.expiry_allowance_ms

    def _checked(self, payload: Any) -> Any:
        """React to the venue's whole-request errors that are rate limits; pass the rest on."""
        if isinstance(payload, Mapping) and payload.get("status") == "err":
            text = codec.describe(payload.get("response", ""))
            self.limiter.on_rejection(self._clock(), text=text, wall_ms=clock.wall_ms())
        else:
            self.limiter.on_success(self._clock())
        return payload

    def _rejected_reply(self, reply: Any) -> None:
        error = _reply_error(reply)
        if isinstance(error, RateLimited):
            self.limiter.on_http_429(self._clock())
        raise error

    async def _rest(self, send: Callable[[Mapping[str, Any]], Any], body: Mapping[str, Any]) -> Any:
        try:
            return await send(body)
        except RateLimited:
            self.limiter.on_http_429(self._clock())
            raise

    def _observe_ack(self, transport: str, started: float) -> None:
        if self.metrics is not None:
            self.metrics.ack_latency.labels(transport=transport).observe(
                time.perf_counter() - started
            )

    def _count(self, action: str, status: PlaceResult | CancelResult) -> None:
        if self.metrics is None:
            return
        if status is None:
            result = "ok"
        elif isinstance(status, Rejected):
            result = "rejected"
            self.metrics.rejections.labels(reason=rejection_reason(status.reason)).inc()
        else:
            result = "ok"
        self.metrics.orders.labels(action=action, result=result).inc()


def _reply_error(reply: Any) -> VenueError:
    """The error a WebSocket post answered with: a 429 is ``RateLimited``, as over REST."""
    payload = reply.get("payload") if isinstance(reply, Mapping) else reply
    text = codec.describe(payload)
    if text.startswith("429"):
        return TooManyRequests("websocket post", 429, text)
    return codec.VenueRejected(text)


def _oid(cancel: CancelOrder) -> int:
    assert cancel.oid is not None
    return venue_oid(cancel.oid)


def _cloid(cancel: CancelOrder) -> str:
    assert cancel.cloid is not None
    return cancel.cloid


def _parse_answer(parse: Callable[[Any], _T], payload: Any, cloids: Sequence[str]) -> _T:
    """The venue's answer to an action, parsed. An answer that does not parse leaves what the
    action did unknown: ``OrderFateUnknown`` (resolved like a lost answer), never a crash."""
    try:
        return parse(payload)
    except codec.CodecError as error:
        raise OrderFateUnknown(cloids, f"unreadable answer: {error}") from error


def _statuses(
    parse: Callable[[Any], list[_S]],
    payload: Any,
    cloids: Sequence[str],
    action: str,
    requests: int | None = None,
) -> list[_S]:
    """The statuses of a batched action, one per request (``requests``, else one per cloid):
    a batch refused whole gives its error to each; a count that fits no request leaves the
    batch's orders unknown (``OrderFateUnknown``), to be asked about one by one."""
    statuses = _parse_answer(parse, payload, cloids)
    count = len(cloids) if requests is None else requests
    try:
        return batch.per_request(statuses, count)
    except batch.StatusCountMismatch as error:
        logger.error(
            "{} answer breaks the venue's contract: {}; asking the venue about each order",
            action,
            error,
        )
        raise OrderFateUnknown(cloids, f"{action}: {error}") from error


def _combined(
    unknown: list[OrderFateUnknown], known: Mapping[str, PlaceResult]
) -> OrderFateUnknown:
    """One exception for a place whose batches left orders unknown, naming every cloid whose
    fate is unknown and carrying the answers of the others."""
    cloids = [cloid for failure in unknown for cloid in failure.cloids]
    bounds = [f.lands_by_ms for f in unknown if f.lands_by_ms is not None]
    return OrderFateUnknown(
        cloids,
        "; ".join(failure.cause for failure in unknown),
        known,
        lands_by_ms=max(bounds, default=None),
    )
