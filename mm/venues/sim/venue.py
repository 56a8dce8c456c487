"""The simulator as a running venue: engine, market, limits and WebSocket fan-out, on one clock.

``SimVenue.run`` is a supervised child (or the whole of ``mm sim``): it serves the Hyperliquid
face, commits the actions it accepts a block or two later (``mm.venues.sim.commits``), steps
the synthetic market and fires dead-man's switches on Trio's clock, and publishes
what the engine reports. Nobody has an account until the faucet credits one: ``fund`` (also
``POST /sim/fund``), and at start each address in ``fund_at_start`` that has none yet (``mm sim
--fund``; the embedded venue names the configured account, so ``make run`` trades at once).
Time is ``mm.clock``'s wall time (``epoch_ms + trio.current_time()`` when a fixed ``epoch_ms``
is given), so under ``autojump_clock`` an hour of market runs in moments, on the same clock as
the service it runs in.
"""

from __future__ import annotations

import math
import random
from collections import Counter, defaultdict
from collections.abc import Awaitable, Callable, Sequence
from functools import partial
from typing import Any

import trio
from loguru import logger

from mm import clock
from mm.venues.hyperliquid.schedule_cancel import REQUIRED_VOLUME_USD, volume_refusal
from mm.venues.sim import aggregate
from mm.venues.sim.commits import CommitQueue
from mm.venues.sim.config import CascadeConfig, SimConfig
from mm.venues.sim.engine import HOUR_MS, Engine, Fees
from mm.venues.sim.events import (
    BookChanged,
    FundingPayment,
    NonUserCancel,
    OrderUpdate,
    Trade,
    UserFill,
)
from mm.venues.sim.faults import Faults
from mm.venues.sim.hub import Hub, Session
from mm.venues.sim.hyperliquid import wire
from mm.venues.sim.identities import Identities
from mm.venues.sim.market import FLOW_USER, LIQUIDITY_USER, SyntheticMarket
from mm.venues.sim.nonces import NonceBook
from mm.venues.sim.ratelimit import AddressLimiter, IpWeightLimiter, RateLimitConfig, WsLimits
from mm.venues.sim.universe import UNIVERSE, specs_for

L2_DEPTH = 20


class SimVenue:
    def __init__(
        self,
        config: SimConfig,
        *,
        epoch_ms: int | None = None,
        on_bound: Callable[[str], Awaitable[None]] | None = None,
        fund_at_start: Sequence[str] = (),
        first_id: int = 1,
    ) -> None:
        self.config = config
        self.mainnet = config.network == "mainnet"  # whose signatures it recovers
        self.identities = Identities()
        self._fund_at_start = tuple(address.lower() for address in fund_at_start)
        self.specs = specs_for(config.coins)
        self.engine = Engine(
            self.specs,
            Fees(maker=config.maker_fee, taker=config.taker_fee),
            system_users=(LIQUIDITY_USER, FLOW_USER),
            first_id=first_id,
        )
        self.rng = random.Random(config.seed)
        self.market = SyntheticMarket(
            self.engine,
            config.market,
            {spec.index: UNIVERSE[spec.name].start_px for spec in self.specs},
            self.rng,
        )
        limits = RateLimitConfig(
            enabled=config.rate_limits, address_initial_requests=config.address_initial_requests
        )
        self.nonces = NonceBook()
        self.ip_limits = IpWeightLimiter(limits)
        self.address_limits = AddressLimiter(limits, initial_volume_usdc=config.initial_volume_usdc)
        self.ws_limits = WsLimits(limits)
        self.hub = Hub()
        self.sessions: set[Session] = set()
        self.faults = Faults(config.faults, config.seed + 1)
        self.commits = CommitQueue(
            (config.commit_delay_min_ms, config.commit_delay_max_ms), config.seed
        )
        self._cascades = sorted(config.cascades, key=lambda cascade: cascade.start_s)
        self.url: str | None = None
        self._epoch_ms = epoch_ms
        self._on_bound = on_bound
        self._dirty: set[int] = set()
        # Set when a book changes (``_dirty`` fills): the book loop sleeps on it while no book
        # has changed instead of waking every ``book_interval_ms`` to find nothing to publish.
        self._books_changed = trio.Event()
        self._last_bbo: dict[int, tuple[int | None, int | None]] = {}
        # The last l2Book snapshot of each (asset, nSigFigs, mantissa): what a subscription or
        # an info read is answered with while the books are stalled (the venue's data frozen).
        self._last_l2: dict[tuple[int, int | None, int | None], dict[str, Any]] = {}
        # scheduleCancel actions that reached the venue, per user (tests count them).
        self.schedule_cancels: Counter[str] = Counter()

    # --- clock ---------------------------------------------------------------------------------

    def now_ms(self) -> int:
        if self._epoch_ms is None:
            return clock.wall_ms()
        return self._epoch_ms + int(trio.current_time() * 1000)

    # --- views in the venue's shapes -----------------------------------------------------------

    def mids(self) -> dict[str, str]:
        mids = {}
        for spec in self.specs:
            mark = self.engine.mark(spec.index)
            if mark is not None:
                mids[spec.name] = wire.usd(mark) if mark >= 1 else f"{mark:.8g}"
        return mids

    def l2_snapshot(
        self, asset: int, n_sig_figs: int | None = None, mantissa: int | None = None
    ) -> dict[str, Any]:
        """The book as ``l2Book`` shows it: 20 levels a side, aggregated to ``n_sig_figs``
        significant figures (and ``mantissa``) when asked (``mm.venues.sim.aggregate``). While
        the books are stalled (``faults.stall_books``) the venue's book data is frozen: the last
        snapshot made before, its time and all, to a new subscription and an info read too."""
        key = (asset, n_sig_figs, mantissa)
        if self.faults.config.stall_books:
            frozen = self._last_l2.get(key)
            if frozen is not None:
                return frozen
        spec = self.specs[asset]
        book = self.engine.books[asset]
        sides = []
        for is_buy in (True, False):
            if n_sig_figs is None:
                levels = book.levels(is_buy, L2_DEPTH)
            else:
                levels = aggregate.aggregate(
                    book.levels(is_buy, len(book.orders)),
                    is_buy=is_buy,
                    n_sig_figs=n_sig_figs,
                    mantissa=mantissa,
                    depth=L2_DEPTH,
                )
            sides.append(wire.book_levels(levels, spec))
        snapshot = {"coin": spec.name, "time": self.now_ms(), "levels": sides}
        self._last_l2[key] = snapshot  # (never changed after: a crossed frame is a copy)
        return snapshot

    def bbo(self, asset: int) -> dict[str, Any]:
        spec = self.specs[asset]
        book = self.engine.books[asset]
        sides = [book.levels(True, 1), book.levels(False, 1)]
        return {
            "coin": spec.name,
            "time": self.now_ms(),
            "bbo": [wire.book_levels(side, spec)[0] if side else None for side in sides],
        }

    def clearinghouse_state(self, user: str) -> dict[str, Any]:
        engine = self.engine
        account = engine.account(user)
        marks = engine.marks()
        positions: list[dict[str, Any]] = []
        value = used = notional = 0.0
        if account is not None:
            value = account.account_value(self.specs, marks)
            used = account.margin_used(self.specs, marks)
            for asset, position in sorted(account.positions.items()):
                if not position.szi or asset not in marks:
                    continue
                spec = self.specs[asset]
                mark = marks[asset]
                size = spec.sz_float(position.szi)
                leverage = account.leverage_for(asset)
                position_value = abs(size) * mark
                notional += position_value
                upnl = position.unrealized(spec, mark)
                margin = position_value / leverage
                free = max(value - used - engine.order_margin(user), 0.0)
                max_size = spec.sz_str(int(free * leverage / mark * 10**spec.sz_decimals))
                positions.append(
                    {
                        "position": {
                            "coin": spec.name,
                            "entryPx": _price(position.entry_px(spec)),
                            "leverage": {"type": "cross", "value": leverage},
                            "liquidationPx": liquidation_px(
                                value - upnl, size, position.entry_px(spec), spec.max_leverage
                            ),
                            "marginUsed": wire.usd(margin),
                            "maxTradeSzs": [max_size, max_size],
                            "positionValue": wire.usd(position_value),
                            "returnOnEquity": f"{upnl / (position.entry_ntl / leverage):.8f}",
                            "szi": spec.sz_str(position.szi),
                            "unrealizedPnl": wire.usd(upnl),
                        },
                        "type": "oneWay",
                    }
                )
        raw = value - sum(
            self.specs[a].sz_float(p.szi) * marks.get(a, 0.0)
            for a, p in (account.positions.items() if account else ())
        )
        summary = {
            "accountValue": wire.usd(value),
            "totalMarginUsed": wire.usd(used),
            "totalNtlPos": wire.usd(notional),
            "totalRawUsd": wire.usd(raw),
        }
        return {
            "assetPositions": positions,
            "crossMaintenanceMarginUsed": wire.usd(used / 2),
            "crossMarginSummary": dict(summary),
            "marginSummary": summary,
            "time": self.now_ms(),
            "withdrawable": wire.usd(max(value - used - engine.order_margin(user), 0.0)),
        }

    # --- publishing ----------------------------------------------------------------------------

    def publish_events(self) -> None:
        """Drain the engine's events to subscribers, batched per channel and key."""
        events = self.engine.events
        if not events:
            return
        self.engine.events = []
        trades: dict[int, list[dict[str, Any]]] = defaultdict(list)
        fills: dict[str, list[dict[str, Any]]] = defaultdict(list)
        updates: dict[str, list[dict[str, Any]]] = defaultdict(list)
        cancels: dict[str, list[dict[str, Any]]] = defaultdict(list)
        fundings: list[FundingPayment] = []
        specs = self.specs
        hub = self.hub
        # A frame is built only for a channel someone listens to (as publish_lazy does): a
        # trading user's every order says its status, and nobody may be subscribed to it.
        listened = hub.has
        for event in events:
            if isinstance(event, BookChanged):
                self._dirty.add(event.asset)
            elif isinstance(event, Trade):
                spec = specs[event.asset]
                if listened(("trades", spec.name)):
                    trades[event.asset].append(wire.trade(event, spec))
            elif isinstance(event, UserFill):
                spec = specs[event.asset]
                user = event.user
                if listened(("userFills", user)) or listened(("userEvents", user)):
                    fills[user].append(wire.user_fill(event, spec))
                self.address_limits.add_volume(user, spec.notional(event.px, event.sz))
            elif isinstance(event, OrderUpdate):
                if listened(("orderUpdates", event.user)):
                    spec = specs[event.order.asset]
                    updates[event.user].append(
                        wire.order_update(event.order, event.status, event.time, spec)
                    )
            elif isinstance(event, NonUserCancel):
                if listened(("userEvents", event.user)):
                    cancels[event.user].append({"coin": specs[event.asset].name, "oid": event.oid})
            elif isinstance(event, FundingPayment):
                fundings.append(event)
        if self._dirty:
            self._books_changed.set()
        for asset, batch in trades.items():
            hub.publish(("trades", specs[asset].name), "trades", batch)
        for user, batch in fills.items():
            hub.publish(("userFills", user), "userFills", {"user": user, "fills": batch})
            hub.publish(("userEvents", user), "user", {"fills": batch})
        for user, batch in updates.items():
            hub.publish(("orderUpdates", user), "orderUpdates", batch)
        for user, batch in cancels.items():
            hub.publish(("userEvents", user), "user", {"nonUserCancel": batch})
        for payment in fundings:  # one event per payment: a WsUserEvent holds one funding
            funding = wire.user_funding(payment, specs[payment.asset])
            hub.publish(("userEvents", payment.user), "user", {"funding": funding})

    def publish_books(self) -> None:
        """Snapshots of every book that changed since the last call (l2Book, bbo, allMids)."""
        if not self._dirty or self.faults.config.stall_books:
            return
        dirty, self._dirty = self._dirty, set()
        hub = self.hub
        aggregated = [k for k in hub.keys() if k[0] == "l2Book" and ":" in k[1]]  # noqa: SIM118
        for asset in sorted(dirty):
            name = self.specs[asset].name
            hub.publish_lazy(("l2Book", name), "l2Book", partial(self._book_frame, asset))
            for key in aggregated:  # subscriptions with nSigFigs: their own frames
                coin, n_sig_figs, mantissa = aggregate.key_parts(key[1])
                if coin == name:
                    frame = partial(self.l2_snapshot, asset, n_sig_figs, mantissa)
                    hub.publish_lazy(key, "l2Book", frame)
            book = self.engine.books[asset]
            top = (book.best_bid(), book.best_ask())
            if self._last_bbo.get(asset) != top:
                self._last_bbo[asset] = top
                hub.publish_lazy(("bbo", name), "bbo", partial(self.bbo, asset))
        hub.publish_lazy(("allMids", ""), "allMids", lambda: {"mids": self.mids()})

    def _book_frame(self, asset: int) -> dict[str, Any]:
        snapshot = self.l2_snapshot(asset)
        bids, asks = snapshot["levels"]
        if bids and asks and self.faults.cross_this_book():  # a crossed frame, made anew
            crossed_bids = [{**bids[0], "px": asks[0]["px"]}, *bids[1:]]
            crossed_asks = [{**asks[0], "px": bids[0]["px"]}, *asks[1:]]
            return {**snapshot, "levels": [crossed_bids, crossed_asks]}
        return snapshot

    def withdrawable(self, user: str) -> float:
        """USDC ``user`` may move out now: account value less margin in use and held by orders."""
        engine = self.engine
        account = engine.account(user)
        if account is None:
            return 0.0
        marks = engine.marks()
        value = account.account_value(self.specs, marks)
        return max(value - account.margin_used(self.specs, marks) - engine.order_margin(user), 0.0)

    # --- the dead-man's switch ------------------------------------------------------------------

    def schedule_cancel(self, user: str, time: int | None, now: int) -> str | None:
        """A ``scheduleCancel`` of ``user`` (counted in ``schedule_cancels``): None when done,
        else the venue's refusal. Setting a time needs the account to have traded
        $1,000,000 (``userRateLimit``'s ``cumVlm``), checked before the engine's own rules;
        clearing one is always allowed."""
        self.schedule_cancels[user] += 1
        if time is not None:
            traded = self.address_limits.cum_volume_usdc(user)
            if traded < REQUIRED_VOLUME_USD:
                return volume_refusal(REQUIRED_VOLUME_USD, traded)
        return self.engine.schedule_cancel(user, time, now)

    # --- runtime controls (tests, `POST /sim/...`) ---------------------------------------------

    def credit_volume(self, user: str, usdc: float) -> float:
        """Count ``usdc`` of volume as traded by ``user`` without a fill (trades made
        elsewhere: another venue front end, an account's history); its volume now."""
        if not math.isfinite(usdc) or usdc < 0:
            raise ValueError(f"usdc must be a finite number >= 0, got {usdc!r}")
        self.address_limits.add_volume(user.lower(), usdc)
        return self.address_limits.cum_volume_usdc(user.lower())

    def fund(self, user: str, usdc: float | None = None) -> float:
        """The faucet: credit ``usdc`` (default ``sim.faucet_usdc``) to ``user``'s account,
        opening it if it has none; its account value after. An API wallet holds no funds
        (``ValueError``): fund its master."""
        address = user.lower()
        amount = self.config.faucet_usdc if usdc is None else usdc
        if not math.isfinite(amount) or amount <= 0:
            raise ValueError(f"usdc must be a positive number, got {amount!r}")
        agent = self.identities.agent(address, self.now_ms())
        if agent is not None:
            raise ValueError(f"{address} is an API wallet of {agent.master}: fund its master")
        account = self.engine.fund(address, amount)
        logger.info("faucet: {} USDC to {}", wire.usd(amount), address)
        return account.account_value(self.specs, self.engine.marks())

    def start_cascade(self, cascade: CascadeConfig) -> None:
        """Start ``cascade`` now (its ``start_s`` is the scheduler's business, not this)."""
        spec = self.engine.by_name.get(cascade.coin)
        if spec is None:
            raise ValueError(f"unknown coin {cascade.coin!r}")
        if cascade.duration_s <= 0:
            raise ValueError("duration_s must be > 0")
        if cascade.move <= -1:
            raise ValueError("move must be > -1")
        self.market.start_cascade(
            spec.index,
            cascade.move,
            cascade.duration_s,
            self.now_ms(),
            intensity=cascade.intensity,
            one_sided=cascade.one_sided,
            thinning=cascade.thinning,
        )
        logger.info(
            "cascade on {}: {:+.2%} over {}s (takers x{:g}, {:.0%} of the other side away, "
            "{:.0%} of the hit side's liquidity withdrawn)",
            cascade.coin,
            cascade.move,
            cascade.duration_s,
            cascade.intensity,
            cascade.one_sided,
            cascade.thinning,
        )

    def disconnect_all(self, reason: str) -> int:
        """Close every open WebSocket connection; how many were open."""
        sessions = list(self.sessions)
        for session in sessions:
            session.close(reason)
        if sessions:
            logger.warning("closed {} WebSocket connections: {}", len(sessions), reason)
        return len(sessions)

    def force_position(self, user: str, coin: str, szi: str) -> None:
        """Change a user's position without a fill, as a forced liquidation does."""
        spec = self.engine.by_name.get(coin)
        if spec is None:
            raise ValueError(f"unknown coin {coin!r}")
        lots = spec.parse_sz(szi.lstrip("-"))
        if lots is None:
            raise ValueError(f"bad size {szi!r}")
        signed = -lots if szi.startswith("-") else lots
        if self.engine.account(user.lower()) is None:
            raise ValueError(f"no account for {user}")
        self.engine.force_position(user.lower(), spec.index, signed, self.now_ms())
        logger.warning("forced position of {} on {} to {}", user, coin, szi)

    # --- the running venue ---------------------------------------------------------------------

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        from mm.venues.sim.server import serve_venue

        self.market.seed_liquidity(self.now_ms())
        self.publish_events()
        for address in self._fund_at_start:
            if self.engine.account(address) is None and self.config.faucet_usdc > 0:
                self.fund(address)
        async with trio.open_nursery() as nursery:
            await nursery.start(self.commits.run)
            self.url = await nursery.start(serve_venue, self)
            logger.info(
                "simulator listening on {} (coins {})", self.url, ", ".join(self.config.coins)
            )
            if self._on_bound is not None:
                await self._on_bound(self.url)
            nursery.start_soon(self._market_loop)
            nursery.start_soon(self._book_loop)
            nursery.start_soon(self._scheduled_disconnect)
            task_status.started()

    async def _market_loop(self) -> None:
        step = self.config.market.step_ms / 1000
        started = last = self.now_ms()
        next_funding = (started // HOUR_MS + 1) * HOUR_MS
        while True:
            await trio.sleep(step)
            now = self.now_ms()
            while self._cascades and started + self._cascades[0].start_s * 1000 <= now:
                self.start_cascade(self._cascades.pop(0))
            # Step by the time that really passed, so the market keeps pace with the clock.
            self.market.step(now, (now - last) / 1000)
            last = now
            self.engine.run_schedules(now)
            while next_funding <= now:  # funding is settled on the hour, every hour
                self.engine.pay_funding(self.config.funding_rate, next_funding)
                next_funding += HOUR_MS
            self.publish_events()

    async def _scheduled_disconnect(self) -> None:
        at = self.faults.config.ws_disconnect_at_s
        if at:
            await trio.sleep(at)
            self.disconnect_all(f"fault: disconnect at {at:g}s")

    async def _book_loop(self) -> None:
        """Publish the changed books every ``book_interval_ms``. While none has changed it
        sleeps until one does and then until the tick it would have published it on had it
        woken every interval: a market stepped every few seconds (a simulated day's) woke it
        twenty times a step for nothing."""
        interval = self.config.book_interval_ms / 1000
        next_at = trio.current_time() + interval
        while True:
            await trio.sleep_until(next_at)
            self.publish_books()
            next_at = trio.current_time() + interval
            if not self._dirty:  # published (a stalled book stays dirty: retried every tick)
                self._books_changed = trio.Event()
                await self._books_changed.wait()
                behind = trio.current_time() - next_at
                if behind > 0:
                    next_at += math.ceil(behind / interval) * interval


def _price(value: float) -> str:
    return f"{value:.6g}" if value < 1 else wire.usd(float(f"{value:.5g}"))


def liquidation_px(cash: float, size: float, entry: float, max_leverage: int) -> str | None:
    """The mark at which account value falls to maintenance margin (half of initial at max).

    Account value at mark p is ``cash + size * (p - entry)``; maintenance is
    ``|size| * p / (2 * max_leverage)``. Equal when
    ``p = (size * entry - cash) / (size - |size| / (2 * max_leverage))``; None if not positive.
    """
    rate = 1 / (2 * max_leverage)
    denominator = size - abs(size) * rate
    if denominator == 0:
        return None
    price = (size * entry - cash) / denominator
    return _price(price) if price > 0 else None
