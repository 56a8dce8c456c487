"""The Hyperliquid adapter's client-side rate limiter: stay under the venue's limits.

The venue's limits and request weights come from ``mm.venues.hyperliquid.limits`` (the figures
are cited there). Three tiers of defence, as in the reference market maker:

1. **Proactive.** A sliding 60 s window of the IP's REST weight (1200 per minute documented; we
   spend at most ``ip_safety_margin`` of it, 1080 by default), and the per-address action budget
   (``nRequestsCap``), tracked from the venue's ``userRateLimit`` answers (``observe``) plus our
   own sends since (a batch of n counts n, cancels get the larger cancel cap). A request that
   would not fit waits; we stop ``address_reserve_requests`` short of the cap, and once there
   send at most one action per ``10 s + address_throttled_margin_seconds``, the rate the venue
   still allows a limited address.
2. **Reactive.** On an HTTP 429 or the venue's address-limit text ("Too many cumulative requests
   sent ..."), ``on_rejection`` blocks sends for an exponential backoff with jitter (a 429
   blocks everything; the address text blocks actions other than cancels), and cuts the
   effective IP budget by ``budget_cut_factor`` (never below ``budget_floor``). Once the block
   ends, the budget recovers linearly, from 0 to full in ``budget_recovery_seconds``. The address
   text also carries the venue's own count and cap, which replace our estimate.
3. **Budget.** A token bucket (``order_tokens_per_second``, ``order_burst``) spreads the order
   budget over quote cycles: placing and modifying orders spend a token per order, cancels and
   info requests spend none (cancels are defence).

Pure: no I/O and no clock reads. Every method that depends on time takes ``now`` (seconds, one
monotonic origin, never decreasing; the shell passes ``trio.current_time()``). Randomness (the
backoff jitter) comes from an injected ``random.Random``. The one async helper, ``acquire``, is
the shell's: it sleeps until a request fits, then records it. A wait ends at a known time unless
the budget grows before it: weight given back (``settle``), the venue's figures read again
(``observe``) or a fill's volume raising the cap (``add_volume``). So a waiter sleeps until the
time its wait was computed for, and is woken early (``wake_on``: a callback, the limiter's one
link to its waiters) only by such a change to the budget that holds it; it then looks again.

``headroom(now)`` in [0, 1] is what is left of the tightest budget: the minimum of the IP
window's spendable fraction (under the reactive cut), the address budget's, and the reactive
state (0 while blocked, the recovering budget factor after); ``headroom_by_kind`` gives each for
metrics and the quote gate's tiers.

Before the first ``observe`` the address is taken as a fresh one (0 requests used, a cap of
10000, as the venue documents for every new address); the shell fetches ``userRateLimit`` at
start, then periodically and after every reconnect (``mm.venues.hyperliquid.address_budget``),
passes each answer to ``observe``, and tells ``add_volume`` of every fill in between: the venue adds
one request to the cap per USDC traded, so a market maker's budget grows as it trades.

Some ``/info`` answers weigh more by the items they list (``limits.answered_info_weight``),
known only once the answer is in: such a request records the most it can weigh
(``Cost.reserved_info``) and ``settle`` gives back the rest, so that requests in flight
together can never take the IP window past the budget.
"""

from __future__ import annotations

import math
import random
import sys
from collections import deque
from collections.abc import Callable, Mapping
from typing import Any, Final, Literal

import attrs
import trio

from mm import randomness
from mm.model import RateLimitState
from mm.settings import non_negative, positive, setting
from mm.venues.hyperliquid import limits

Kind = Literal["info", "order", "cancel", "action"]
"""What a request is: an ``/info`` request; an action placing or modifying orders; a cancel
action (larger address allowance); any other action (``updateLeverage``, ``scheduleCancel``...)."""

KINDS: Final[tuple[Kind, ...]] = ("info", "order", "cancel", "action")
HEADROOM_KINDS: Final = ("ip", "address", "reactive")

_AMOUNT_EPS: Final = 1e-9
"""Tolerance when comparing budget shares and tokens (float rounding of rates and ramps)."""
_MAX_OWN_SEND_ENTRIES: Final = 4096


def fraction(value: float) -> str | None:
    return None if 0 < value <= 1 else f"must be > 0 and <= 1, got {value!r}"


def unit_interval(value: float) -> str | None:
    return None if 0 <= value <= 1 else f"must be between 0 and 1, got {value!r}"


def open_fraction(value: float) -> str | None:
    return None if 0 < value < 1 else f"must be > 0 and < 1, got {value!r}"


@attrs.frozen
class RateLimitConfig:
    """The client limiter's settings; the venue's own figures come from ``limits``."""

    enabled: bool = setting(True)

    # Proactive, per IP: the venue's weight per window, and the share of it we spend.
    ip_weight_per_minute: int = setting(limits.IP_WEIGHT_PER_MINUTE, positive)
    window_seconds: float = setting(limits.WINDOW_SECONDS, positive)
    ip_safety_margin: float = setting(0.9, fraction)

    # Proactive, per address: requests kept back from the cap (and the cancel cap), and the
    # pace once there (the venue's 10 s plus a margin for latency).
    address_reserve_requests: int = setting(100, non_negative)
    address_throttled_interval_seconds: float = setting(
        limits.ADDRESS_THROTTLED_INTERVAL_SECONDS, positive
    )
    address_throttled_margin_seconds: float = setting(1.0, non_negative)
    # How often the venue's own figures of the address budget (userRateLimit, IP weight 20)
    # are read again; also after every reconnect, and every fill raises the cap meanwhile.
    address_refresh_seconds: float = setting(60.0, positive)

    # Reactive: backoff on a rejection (doubling from initial up to cap, each delay drawn from
    # [delay * (1 - jitter), delay]); the streak resets after a success or a quiet spell.
    backoff_initial_seconds: float = setting(0.5, positive)
    backoff_cap_seconds: float = setting(30.0, positive)
    backoff_jitter: float = setting(0.5, unit_interval)
    backoff_reset_seconds: float = setting(120.0, positive)
    # Reactive: each rejection multiplies the IP budget by the cut (down to the floor); after the
    # block it climbs back linearly, from 0 to the full budget in budget_recovery_seconds.
    budget_cut_factor: float = setting(0.5, open_fraction)
    budget_floor: float = setting(0.1, fraction)
    budget_recovery_seconds: float = setting(300.0, positive)

    # Budget: a token bucket for orders placed or modified (a batch of n spends n).
    order_tokens_per_second: float = setting(2.0, positive)
    order_burst: float = setting(20.0, positive)

    @property
    def ip_budget(self) -> int:
        """The IP weight we allow ourselves per window: 1080 of 1200 at 0.9."""
        return max(1, math.floor(self.ip_weight_per_minute * self.ip_safety_margin + 1e-9))


class RateLimitError(ValueError):
    """A request that can never fit the budget (its weight exceeds it)."""


@attrs.frozen
class Cost:
    """What one request spends: its kind, its IP weight and its address requests.

    An ``essential`` request (the user stream's resync, which trading waits on) waits out a
    reactive block like any other, but then spends the full IP budget, not the cut one that
    paces the rest after a rejection.
    """

    kind: Kind
    weight: int
    requests: int = 0
    essential: bool = False

    @classmethod
    def info(cls, request_type: str, *, items: int = 0) -> Cost:
        """An ``/info`` request (``items``: what it returns, for the per-item weight)."""
        weight = limits.info_weight({"type": request_type})
        return cls("info", weight + limits.extra_info_weight(request_type, items))

    @classmethod
    def of_info(cls, request: Mapping[str, Any]) -> Cost:
        """An ``/info`` request from its payload, before counting what it returns."""
        return cls("info", limits.info_weight(request))

    @classmethod
    def reserved_info(cls, request: Mapping[str, Any], *, essential: bool = False) -> Cost:
        """An ``/info`` request at the most it can weigh, the items of its answer unknown yet
        (``settle`` once they are known)."""
        return cls("info", limits.reserved_info_weight(request), essential=essential)

    @classmethod
    def orders(cls, n: int = 1) -> Cost:
        """An action placing or modifying ``n`` orders (one request, batched)."""
        return cls("order", limits.exchange_weight_for(n), max(1, n))

    @classmethod
    def cancels(cls, n: int = 1) -> Cost:
        """An action cancelling ``n`` orders."""
        return cls("cancel", limits.exchange_weight_for(n), max(1, n))

    @classmethod
    def of_action(cls, action: Mapping[str, Any]) -> Cost:
        """An ``/exchange`` action from its payload (``{"type": "order", "orders": [...]}``)."""
        if limits.is_cancel_action(action):
            kind: Kind = "cancel"
        elif str(action.get("type")) in limits.BATCH_FIELDS:
            kind = "order"
        else:
            kind = "action"
        return cls(kind, limits.exchange_weight(action), limits.address_requests(action))

    @property
    def is_action(self) -> bool:
        return self.kind != "info"


def as_cost(cost: Cost | int) -> Cost:
    """A plain int is an IP weight with no address requests (an info request, extra weight)."""
    if isinstance(cost, Cost):
        return cost
    return Cost("info", cost)


class _Window:
    """Weight charged at instants; a charge at ``t`` counts while ``now < t + length``."""

    __slots__ = ("entries", "length", "total")

    def __init__(self, length: float) -> None:
        self.length = length
        self.entries: deque[tuple[float, int]] = deque()
        self.total = 0

    def expire(self, now: float) -> None:
        # ``at + length <= now``, computed exactly as the waits are, so that waking at the
        # computed instant always finds the charge gone.
        entries = self.entries
        length = self.length
        while entries and entries[0][0] + length <= now:
            self.total -= entries.popleft()[1]

    def add(self, amount: int, now: float) -> None:
        if amount > 0:
            self.entries.append((now, amount))
            self.total += amount

    def lower(self, at: float, amount: int, to: int) -> None:
        """Lower a charge of ``amount`` made at ``at`` to ``to`` (nothing if it has left)."""
        entries = self.entries
        for index in range(len(entries) - 1, -1, -1):
            charged_at, charged = entries[index]
            if charged_at < at:
                return
            if charged_at == at and charged == amount:
                entries[index] = (charged_at, to)
                self.total -= amount - to
                return


class RateLimiter:
    """Proactive window and address budget, reactive backoff, and the order bucket."""

    def __init__(
        self, config: RateLimitConfig | None = None, rng: random.Random | None = None
    ) -> None:
        self._config = config if config is not None else RateLimitConfig()
        self._rng = rng if rng is not None else randomness.generator()
        self._window = _Window(self._config.window_seconds)
        self._weight_total = 0
        # Address: the last venue figures, plus our own sends since they were taken.
        self._address_known = False
        self._base_used = 0
        self._base_cap = limits.ADDRESS_INITIAL_REQUESTS
        self._base_volume = 0.0
        self._volume_since = 0.0
        self._volume_as_of_ms: int | None = None  # fills before it are in the venue's figure
        self._observed_at: float | None = None  # when the last figures were asked for
        self._own_sends: deque[tuple[float, int]] = deque()
        self._own_total = 0
        self._folded = 0  # own sends too old to keep one by one
        self._folded_until = -math.inf
        self._last_action_at: float | None = None
        # Reactive.
        self._streak = 0
        self._last_rejection_at: float | None = None
        self._blocked_all_until = -math.inf
        self._blocked_actions_until = -math.inf
        self._lowered = 1.0
        self._recover_from = -math.inf
        self._rejections = 0
        # Orders of requests waiting in `acquire` for the bucket: held back from the budget the
        # quote cycles read, so that a batch waiting for its tokens is not starved by smaller
        # ones taking each token as it refills.
        self._reserved_orders = 0
        # Order bucket (full until first used).
        self._tokens = self._config.order_burst
        self._tokens_at: float | None = None
        # Requests waiting in `acquire` to be woken when the IP window, or the address budget,
        # grows before its time (see `wake_on`).
        self._ip_wakers: set[Callable[[], None]] = set()
        self._address_wakers: set[Callable[[], None]] = set()

    @property
    def config(self) -> RateLimitConfig:
        return self._config

    # ----------------------------------------------------------------------------------------
    # Admission

    def wait_time(self, cost: Cost | int, now: float) -> float:
        """Seconds from ``now`` until ``cost`` fits every budget (0: now; ``inf``: never).

        Once the wait has passed the request fits, unless something else was recorded or
        rejected in between.
        """
        return max(self.waits(cost, now))

    def waits(self, cost: Cost | int, now: float) -> tuple[float, float, float]:
        """`wait_time`'s parts, by what can end them: ``(timed, ip, address)``.

        ``timed``: the reactive block and the order bucket, which only time ends; ``ip``: the
        IP window, which weight given back (``settle``) can also shorten; ``address``: the
        address budget, which the venue's figures (``observe``) or a fill (``add_volume``) can.
        """
        if not self._config.enabled:
            return 0.0, 0.0, 0.0
        c = as_cost(cost)
        timed = self._blocked_wait(c, now)
        if c.kind == "order":
            timed = max(timed, self._bucket_wait(c.requests, now))
        ip = self._ip_wait(c.weight, now, cut=not c.essential)
        address = self._address_wait(c, now) if c.is_action else 0.0
        return timed, ip, address

    def wake_on(self, wake: Callable[[], None], *, ip: bool, address: bool) -> None:
        """Call ``wake`` (once) when the IP window (``ip``), or the address budget
        (``address``), grows before its time; `forget` takes it back."""
        if ip:
            self._ip_wakers.add(wake)
        if address:
            self._address_wakers.add(wake)

    def forget(self, wake: Callable[[], None]) -> None:
        self._ip_wakers.discard(wake)
        self._address_wakers.discard(wake)

    def _wake(self, wakers: set[Callable[[], None]]) -> None:
        for wake in tuple(wakers):
            self.forget(wake)
            wake()

    def can_send(self, cost: Cost | int, now: float) -> bool:
        """Whether ``cost`` fits every budget at ``now``."""
        return self.wait_time(cost, now) == 0.0

    def record(self, cost: Cost | int, now: float) -> None:
        """Count a request sent at ``now`` (whether or not ``can_send`` said yes)."""
        c = as_cost(cost)
        self._window.expire(now)
        self._window.add(max(0, c.weight), now)
        self._weight_total += max(0, c.weight)
        if c.is_action:
            self._add_own_send(max(0, c.requests), now)
            self._last_action_at = now
        if c.kind == "order":
            self._refill(now)
            self._tokens -= max(0, c.requests)

    def settle(self, at: float, reserved: int, weight: int, now: float) -> None:
        """A request recorded at ``at`` with ``reserved`` IP weight turned out to weigh
        ``weight``: give back what was reserved beyond it, or charge the rest at ``now``.

        The venue weighs some ``/info`` answers by the items they list, known only once the
        answer is in, so such a request reserves the most it can weigh and settles here.
        """
        self._window.expire(now)
        self._weight_total += max(0, weight) - reserved
        if weight > reserved:
            self._window.add(weight - reserved, now)
        elif weight < reserved:
            self._window.lower(at, reserved, max(0, weight))
            if self._ip_wakers:
                self._wake(self._ip_wakers)

    def try_acquire(self, cost: Cost | int, now: float) -> bool:
        """``record`` the request and return True if it fits now; else False, nothing recorded."""
        if not self.can_send(cost, now):
            return False
        self.record(cost, now)
        return True

    # ----------------------------------------------------------------------------------------
    # Proactive: the IP window

    def ip_used(self, now: float) -> int:
        """IP weight sent in the window ending at ``now``."""
        self._window.expire(now)
        return self._window.total

    @property
    def weight_total(self) -> int:
        """The IP weight of every request recorded, as settled: what the venue was sent."""
        return self._weight_total

    def ip_allowance(self, now: float) -> float:
        """The IP weight allowed per window at ``now``: the budget under the reactive cut."""
        return self._config.ip_budget * self.budget_factor(now)

    def _ip_wait(self, weight: int, now: float, *, cut: bool = True) -> float:
        budget = self._config.ip_budget
        if weight > budget:
            return math.inf
        reaches = self._factor_reaches if cut else _full_budget
        window = self._window
        window.expire(now)
        used = window.total
        start = now
        # Walk the charges as they leave the window (each at ``at + length``), the budget
        # share climbing meanwhile, until the used weight plus this one fits.
        for at, amount in window.entries:
            reached = reaches((used + weight) / budget, start)
            gone = at + window.length
            if reached < gone:
                break
            used -= amount
            start = gone
        else:
            reached = reaches(weight / budget, start)
        if math.isinf(reached):
            return math.inf
        return _seconds_until(now, reached)

    # ----------------------------------------------------------------------------------------
    # Proactive: the address budget

    @property
    def address_known(self) -> bool:
        """Whether the venue has told us the address's figures (else a fresh address is assumed)."""
        return self._address_known

    def observe(
        self,
        state: RateLimitState,
        now: float,
        *,
        sent_at: float | None = None,
        volume_as_of_ms: int | None = None,
    ) -> None:
        """Take the venue's ``userRateLimit`` answer.

        ``sent_at`` is when the query was sent (default ``now``): our sends from then on may not
        be in the venue's count, so they stay counted on top of it. ``volume_as_of_ms`` is the
        wall time (ms) the answer came in: fills older than that are in its ``cum_volume``, so
        ``add_volume`` skips them when they are told afterwards (a fill the venue made while the
        answer was on its way is skipped too: under-counting volume is the safe side).
        """
        as_of = now if sent_at is None else sent_at
        self._address_known = True
        self._observed_at = as_of
        self._base_used = state.requests_used
        self._base_cap = state.requests_cap
        self._base_volume = state.cum_volume
        self._volume_since = 0.0
        if volume_as_of_ms is not None:
            self._volume_as_of_ms = volume_as_of_ms
        while self._own_sends and self._own_sends[0][0] < as_of:
            self._own_total -= self._own_sends.popleft()[1]
        if self._folded_until < as_of:
            self._folded = 0
            self._folded_until = -math.inf
        if self._address_wakers:  # the figures may have room the estimate had not
            self._wake(self._address_wakers)

    @property
    def observed_at(self) -> float | None:
        """When the venue's last figures were asked for (``observe``'s ``sent_at``; None: never)."""
        return self._observed_at

    def add_volume(self, usdc: float, time_ms: int | None = None) -> None:
        """Count traded notional (a fill's ``px * sz``, made at venue time ``time_ms``) toward
        the cap, until the next observe; a fill older than the venue's last figure is in it
        already and counts nothing."""
        as_of = self._volume_as_of_ms
        if time_ms is not None and as_of is not None and time_ms < as_of:
            return
        self._volume_since += abs(usdc)
        if self._address_wakers:
            self._wake(self._address_wakers)

    def address_used(self) -> int:
        """The address's requests used: the venue's last count plus our sends since."""
        return self._base_used + self._folded + self._own_total

    def address_cap(self) -> int:
        """The address's cap: the venue's last figure plus what our fills have added since."""
        rate = limits.REQUESTS_PER_USDC
        gained = math.floor((self._base_volume + self._volume_since) * rate) - math.floor(
            self._base_volume * rate
        )
        return self._base_cap + max(0, gained)

    def address_cancel_cap(self) -> int:
        return limits.cancel_cap(self.address_cap())

    def _address_limit(self, cancel: bool) -> int:
        cap = self.address_cancel_cap() if cancel else self.address_cap()
        return cap - self._config.address_reserve_requests

    def address_remaining(self, *, cancel: bool = False) -> int:
        """Requests we allow ourselves before throttling (orders' budget, or cancels')."""
        return max(0, self._address_limit(cancel) - self.address_used())

    def _address_wait(self, cost: Cost, now: float) -> float:
        if self.address_used() + cost.requests <= self._address_limit(cost.kind == "cancel"):
            return 0.0
        if self._last_action_at is None:
            return 0.0
        pace = (
            self._config.address_throttled_interval_seconds
            + self._config.address_throttled_margin_seconds
        )
        return _seconds_until(now, self._last_action_at + pace)

    def _add_own_send(self, n: int, now: float) -> None:
        if n <= 0:
            return
        self._own_sends.append((now, n))
        self._own_total += n
        if len(self._own_sends) > _MAX_OWN_SEND_ENTRIES:
            at, amount = self._own_sends.popleft()
            self._own_total -= amount
            self._folded += amount
            self._folded_until = max(self._folded_until, at)

    # ----------------------------------------------------------------------------------------
    # Reactive

    def on_rejection(
        self,
        now: float,
        *,
        status: int | None = None,
        text: str | None = None,
        sent_at: float | None = None,
        wall_ms: int | None = None,
    ) -> float | None:
        """React to a rejection: HTTP ``status`` 429, or the venue's address-limit ``text``.

        Returns the backoff delay started, or None when the rejection is not a rate limit.
        ``sent_at`` is when the rejected request was sent (for the address figures its text
        carries; default ``now``), ``wall_ms`` the wall time the rejection came in (its volume
        is the venue's as of then: see ``observe``).
        """
        address_error = limits.parse_address_rate_limit(text) if text is not None else None
        if address_error is not None:
            volume = address_error.volume
            self.observe(
                RateLimitState(
                    cum_volume=volume if volume is not None else self._base_volume,
                    requests_used=address_error.sent,
                    requests_cap=address_error.cap,
                ),
                now,
                sent_at=now if sent_at is None else sent_at,
                volume_as_of_ms=wall_ms if volume is not None else None,
            )
            return self._reject(now, all_requests=False)
        if status == 429 or (text is not None and limits.is_address_rate_limit(text)):
            return self._reject(now, all_requests=status == 429)
        return None

    def on_http_429(self, now: float) -> float:
        """React to an HTTP 429 (the IP limit): every request waits. Returns the delay."""
        return self._reject(now, all_requests=True)

    def read_retry_wait(self, now: float, *, counted: bool) -> float:
        """How long a read refused with a 429 waits before it is asked again: the block still
        running, else (``counted``: the 429 went through ``on_http_429`` already, and its block
        is over) the initial backoff, else a backoff started now."""
        blocked = self.blocked_until("info")
        if blocked > now:
            return blocked - now
        if counted:
            return self.config.backoff_initial_seconds
        return self.on_http_429(now)

    def on_success(self, now: float) -> None:
        """A request went through: the next rejection starts the backoff afresh."""
        del now
        self._streak = 0

    def _reject(self, now: float, *, all_requests: bool) -> float:
        config = self._config
        self._rejections += 1
        blocked = self._blocked_all_until if all_requests else self.blocked_until("order")
        if now < blocked:
            # Requests sent before the block began, rejected for the same reason: one episode.
            return blocked - now
        if (
            self._last_rejection_at is not None
            and now - self._last_rejection_at >= config.backoff_reset_seconds
        ):
            self._streak = 0
        self._streak += 1
        self._last_rejection_at = now
        factor = self.budget_factor(now)
        base = min(
            config.backoff_cap_seconds,
            config.backoff_initial_seconds * 2.0 ** min(self._streak - 1, 64),
        )
        delay = base * (1.0 - config.backoff_jitter * self._rng.random())
        until = now + delay
        if all_requests:
            self._blocked_all_until = max(self._blocked_all_until, until)
        else:
            self._blocked_actions_until = max(self._blocked_actions_until, until)
        self._lowered = max(config.budget_floor, factor * config.budget_cut_factor)
        self._recover_from = max(until, self._blocked_all_until, self._blocked_actions_until)
        return delay

    @property
    def rejections(self) -> int:
        """Rate-limit rejections seen (for a ``_total`` counter)."""
        return self._rejections

    @property
    def backoff_streak(self) -> int:
        return self._streak

    def blocked_until(self, kind: Kind = "order") -> float:
        """When the reactive block on requests of ``kind`` ends (``-inf``: none)."""
        if kind in ("order", "action"):
            return max(self._blocked_all_until, self._blocked_actions_until)
        return self._blocked_all_until

    def budget_factor(self, now: float) -> float:
        """The share of the IP budget allowed at ``now``: 1, or cut and recovering."""
        if self._lowered >= 1.0 or now <= self._recover_from:
            return self._lowered
        climbed = (now - self._recover_from) / self._config.budget_recovery_seconds
        return min(1.0, self._lowered + climbed)

    def _factor_reaches(self, need: float, start: float) -> float:
        """The first time from ``start`` on when ``budget_factor >= need`` (``inf``: never)."""
        if self.budget_factor(start) + _AMOUNT_EPS >= need:
            return start
        if need > 1.0 + _AMOUNT_EPS:
            return math.inf
        at = self._recover_from + (need - self._lowered) * self._config.budget_recovery_seconds
        return max(start, at)

    def _blocked_wait(self, cost: Cost, now: float) -> float:
        return _seconds_until(now, self.blocked_until(cost.kind))

    # ----------------------------------------------------------------------------------------
    # Budget: the order bucket

    def _refill(self, now: float) -> None:
        if self._tokens_at is not None and now > self._tokens_at:
            self._tokens = min(
                self._config.order_burst,
                self._tokens + (now - self._tokens_at) * self._config.order_tokens_per_second,
            )
        if self._tokens_at is None or now > self._tokens_at:
            self._tokens_at = now

    def order_tokens(self, now: float) -> float:
        """Tokens in the order bucket at ``now`` (negative: a batch larger than the burst)."""
        self._refill(now)
        return self._tokens

    def _bucket_wait(self, n: int, now: float) -> float:
        need = min(float(n), self._config.order_burst)
        short = need - self.order_tokens(now)
        if short <= _AMOUNT_EPS:
            return 0.0
        return short / self._config.order_tokens_per_second

    def order_budget(self, now: float) -> int:
        """How many orders a quote cycle may place or modify now without waiting."""
        if not self._config.enabled:
            return sys.maxsize
        if self.blocked_until("order") > now:
            return 0
        tokens = math.floor(self.order_tokens(now) - self._reserved_orders + _AMOUNT_EPS)
        return max(0, min(tokens, self.address_remaining()))

    def reserve_orders(self, cost: Cost | int) -> int:
        """Hold back ``cost``'s orders from `order_budget` while it waits for the bucket (see
        `acquire`); returns how many, to give to `release_orders`."""
        c = as_cost(cost)
        held = max(0, c.requests) if c.kind == "order" else 0
        self._reserved_orders += held
        return held

    def release_orders(self, held: int) -> None:
        self._reserved_orders -= held

    # ----------------------------------------------------------------------------------------
    # Headroom

    def headroom_by_kind(self, now: float) -> dict[str, float]:
        """Each budget's spendable fraction at ``now``, in [0, 1].

        ``ip``: the IP window's weight still allowed under the reactive cut, over the full
        budget; ``address``: requests left before the address reserve, over the cap less the
        reserve; ``reactive``: 0 while blocked, else the recovering budget factor.
        """
        if not self._config.enabled:
            return dict.fromkeys(HEADROOM_KINDS, 1.0)
        budget = self._config.ip_budget
        ip = (self.ip_allowance(now) - self.ip_used(now)) / budget
        limit = self._address_limit(False)
        address = (limit - self.address_used()) / limit if limit > 0 else 0.0
        blocked = max(self._blocked_all_until, self._blocked_actions_until) > now
        reactive = 0.0 if blocked else self.budget_factor(now)
        return {
            "ip": _clamp(ip),
            "address": _clamp(address),
            "reactive": _clamp(reactive),
        }

    def headroom(self, now: float) -> float:
        """The tightest budget's spendable fraction at ``now``, in [0, 1]."""
        return min(self.headroom_by_kind(now).values())


def _full_budget(need: float, start: float) -> float:
    """``_factor_reaches`` for a request that spends the full budget, not the cut one."""
    return start if need <= 1.0 + _AMOUNT_EPS else math.inf


def _seconds_until(now: float, then: float) -> float:
    """Seconds from ``now`` to ``then`` (0 if past), such that ``now + wait >= then`` exactly.

    Rounding must never wake a sleeper a hair before its time: it would find a wait of a few
    ulps left and, on a clock that cannot advance by that little, spin.
    """
    if then <= now:
        return 0.0
    wait = then - now
    while now + wait < then:
        wait = _bump(now, wait)
    return wait


def _bump(now: float, wait: float) -> float:
    """The next wait that moves ``now + wait`` up by at least one representable step."""
    return wait + max(math.ulp(wait), math.ulp(now + wait))


def _clamp(value: float) -> float:
    return min(1.0, max(0.0, value))


async def acquire(
    limiter: RateLimiter,
    cost: Cost | int,
    *,
    clock: Callable[[], float] = trio.current_time,
) -> float:
    """Sleep until ``cost`` fits, record it, and return the seconds waited.

    Raises ``RateLimitError`` (without waiting) for a request that can never fit.
    """
    start = clock()
    return await acquire_at(limiter, cost, clock=clock) - start


async def acquire_at(
    limiter: RateLimiter,
    cost: Cost | int,
    *,
    clock: Callable[[], float] = trio.current_time,
) -> float:
    """Sleep until ``cost`` fits, record it, and return the time it was recorded at (what
    ``RateLimiter.settle`` takes).

    Raises ``RateLimitError`` (without waiting) for a request that can never fit.
    """
    held = 0
    try:
        while True:
            now = clock()
            timed, ip, address = limiter.waits(cost, now)
            wait = max(timed, ip, address)
            if wait == 0.0:
                limiter.record(cost, now)
                return now
            if math.isinf(wait):
                raise RateLimitError(
                    f"request of weight {as_cost(cost).weight} exceeds the IP budget "
                    f"of {limiter.config.ip_budget} per {limiter.config.window_seconds:g} s"
                )
            if not held:  # first in line for the tokens it waits for (see order_budget)
                held = limiter.reserve_orders(cost)
            # Until the wait is over, or the budget that holds it grows sooner: a budget whose
            # wait does not exceed the one only time ends, or the other one's, cannot shorten
            # it by growing (what it gained is seen when the waiter looks again).
            on_ip = ip > timed and ip >= address
            on_address = address > timed and address >= ip
            if not (on_ip or on_address):
                await trio.sleep(wait)
                continue
            woken = trio.Event()
            wake = woken.set
            limiter.wake_on(wake, ip=on_ip, address=on_address)
            try:
                with trio.move_on_after(wait):
                    await woken.wait()
            finally:
                limiter.forget(wake)
    finally:
        limiter.release_orders(held)
