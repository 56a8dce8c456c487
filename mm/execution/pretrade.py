"""Pre-trade checks in the send path: reject an order before it reaches the venue.

``check(order, context, config)`` runs, in order: ``closed`` (no order may go out: a session
phase that is not open, HALT, quotes pulled), ``invalid`` (price and size finite and > 0),
``max_notional`` (price x size in USD: one limit that fits a coin at any price, where a size in
coin that suits ETH refuses every order of DOGE; price x size is in the instrument's quote, so
it is valued at ``quote_usd``, the USD value of one unit of the quote the shell read: 1 for a
USD quote, BTC's for ETH-BTC; an unknown value refuses the order, naming the quote),
``price_collar`` (distance from the mid as a fraction of the mid; no usable mid rejects),
``max_open_orders`` (open orders already at the limit), ``reduce_only`` (in reduce-only mode an
order must shrink |position|: the opposite side of the position, no larger than it, so never
flipping it), ``duplicate`` (the same coin, side, price and size passed within
``duplicate_window_s``) and ``throttle`` (a token bucket of ``orders_per_second`` with
``burst``). The first failing check gives a ``Rejection`` naming it;
None means the order may be sent. Boundaries pass: a size equal to the maximum, a price exactly
at the collar, a duplicate exactly ``duplicate_window_s`` later.

A passing order is recorded: it spends one throttle token and becomes a recent order for
duplicate detection, so each ``check`` that returns None must be followed by the send. A
rejected order spends nothing.

``RejectionLog`` counts rejections by check and says when to log one: the first rejection of a
check after ``log_quiet_s`` without any (once per burst).

Pure: no I/O and no clock reads. ``now`` is seconds on one monotonic origin (the shell passes
``trio.current_time()``).
"""

from __future__ import annotations

import enum
import math
from collections import deque
from typing import Final

import attrs

from mm.model import PlaceOrder, Side
from mm.settings import at_least, non_negative, positive, setting


class CheckName(enum.StrEnum):
    CLOSED = "closed"
    INVALID = "invalid"
    MAX_NOTIONAL = "max_notional"
    PRICE_COLLAR = "price_collar"
    MAX_OPEN_ORDERS = "max_open_orders"
    REDUCE_ONLY = "reduce_only"
    DUPLICATE = "duplicate"
    THROTTLE = "throttle"


CHECKS: Final[tuple[CheckName, ...]] = tuple(CheckName)


def collar_fraction(value: float) -> str | None:
    return None if 0 < value < 1 else f"must be > 0 and < 1, got {value!r}"


@attrs.frozen
class PretradeConfig:
    """The ``[pretrade]`` section."""

    # Per order: notional in USD (price x size, in the quote, times the quote's USD value).
    max_order_notional_usd: float = setting(10_000.0, positive)
    # The farthest an order's price may be from the mid, as a fraction of the mid.
    price_collar: float = setting(0.05, collar_fraction)
    # Open orders at which new placements are rejected.
    max_open_orders: int = setting(50, at_least(1))
    # The same coin, side, price and size again within this many seconds is a duplicate.
    duplicate_window_s: float = setting(1.0, non_negative)
    # The message-rate throttle: a token bucket.
    orders_per_second: float = setting(20.0, positive)
    burst: int = setting(40, at_least(1))
    # A check's rejections are logged once per burst: after this long without one.
    log_quiet_s: float = setting(10.0, non_negative)


@attrs.frozen(slots=True)
class Rejection:
    """Why an order was rejected: the check's name and a human-readable detail."""

    check: CheckName
    detail: str


class TokenBucket:
    """A token bucket, full at start: ``rate`` tokens a second, at most ``burst`` held."""

    def __init__(self, rate: float, burst: float, now: float) -> None:
        if rate <= 0 or burst < 1:
            raise ValueError(f"a token bucket needs rate > 0 and burst >= 1, got {rate}, {burst}")
        self.rate = rate
        self.burst = burst
        self.tokens = float(burst)
        self.updated = now

    @classmethod
    def from_config(cls, config: PretradeConfig, now: float) -> TokenBucket:
        return cls(config.orders_per_second, config.burst, now)

    def refill(self, now: float) -> None:
        """Add the tokens earned since the last update (time never runs backwards here)."""
        if now > self.updated:
            self.tokens = min(self.burst, self.tokens + (now - self.updated) * self.rate)
            self.updated = now

    def available(self, now: float) -> float:
        self.refill(now)
        return self.tokens

    def try_take(self, now: float) -> bool:
        """Spend a token if one is there."""
        self.refill(now)
        if self.tokens >= 1:
            self.tokens -= 1
            return True
        return False


@attrs.frozen(slots=True)
class SentOrder:
    coin: str
    side: Side
    px: float
    sz: float
    at: float


class RecentOrders:
    """Orders passed recently, for duplicate detection (kept for ``window_s``)."""

    def __init__(self, window_s: float) -> None:
        self.window_s = window_s
        self._orders: deque[SentOrder] = deque()

    def __len__(self) -> int:
        return len(self._orders)

    def _expire(self, now: float) -> None:
        while self._orders and now - self._orders[0].at >= self.window_s:
            self._orders.popleft()

    def add(self, order: PlaceOrder, now: float) -> None:
        self._expire(now)
        self._orders.append(SentOrder(order.coin, order.side, order.px, order.sz, now))

    def find(self, order: PlaceOrder, now: float) -> SentOrder | None:
        """A recent order with the same coin, side, price and size, sent under the window ago."""
        self._expire(now)
        for sent in self._orders:
            if (sent.coin, sent.side, sent.px, sent.sz) == (
                order.coin,
                order.side,
                order.px,
                order.sz,
            ) and now - sent.at < self.window_s:
                return sent
        return None


@attrs.define
class PretradeContext:
    """What the checks need besides the order: a snapshot, plus the two mutable trackers.

    ``position`` is the signed position in the order's coin; ``open_orders`` the number of our
    open orders counted against ``max_open_orders``; ``quote`` the coin's quote currency and
    ``quote_usd`` the USD value of one unit of it (None: not known, so no order passes).
    """

    mid: float | None
    open_orders: int
    reduce_only: bool
    position: float
    recent: RecentOrders
    throttle: TokenBucket
    now: float
    quote: str
    quote_usd: float | None
    # Why no order may go out at all (a closed session phase, HALT, quotes pulled), or None.
    closed: str | None = None


def _static_checks(
    order: PlaceOrder, context: PretradeContext, config: PretradeConfig
) -> Rejection | None:
    if context.closed is not None:
        return Rejection(CheckName.CLOSED, context.closed)
    px, sz = order.px, order.sz
    if not (math.isfinite(px) and math.isfinite(sz) and px > 0 and sz > 0):
        return Rejection(CheckName.INVALID, f"price {px!r} and size {sz!r} must be finite and > 0")
    notional = px * sz
    quote_usd = context.quote_usd
    if quote_usd is None or not (math.isfinite(quote_usd) and quote_usd > 0):
        return Rejection(
            CheckName.MAX_NOTIONAL,
            f"the USD value of {context.quote} is not known ({quote_usd!r}): notional "
            f"{notional} {context.quote} cannot be held to {config.max_order_notional_usd} USD",
        )
    usd = notional * quote_usd
    if usd > config.max_order_notional_usd:
        valued = "" if quote_usd == 1.0 else f" ({notional} {context.quote} at {quote_usd} USD)"
        return Rejection(
            CheckName.MAX_NOTIONAL, f"notional {usd}{valued} > {config.max_order_notional_usd}"
        )
    mid = context.mid
    if mid is None or not math.isfinite(mid) or mid <= 0:
        return Rejection(CheckName.PRICE_COLLAR, f"no usable mid ({mid!r})")
    if abs(px - mid) > config.price_collar * mid:
        return Rejection(
            CheckName.PRICE_COLLAR,
            f"price {px} is {abs(px - mid) / mid:.4%} from mid {mid} > {config.price_collar:.4%}",
        )
    if context.open_orders >= config.max_open_orders:
        return Rejection(
            CheckName.MAX_OPEN_ORDERS,
            f"{context.open_orders} open orders >= {config.max_open_orders}",
        )
    if context.reduce_only:
        position = context.position
        if position == 0 or order.side.sign * position > 0 or sz > abs(position):
            return Rejection(
                CheckName.REDUCE_ONLY,
                f"{order.side.name} {sz} would not reduce position {position}",
            )
    return None


def check(order: PlaceOrder, context: PretradeContext, config: PretradeConfig) -> Rejection | None:
    """The first failing check's rejection, or None (then the order is recorded as sent)."""
    rejection = _static_checks(order, context, config)
    if rejection is not None:
        return rejection
    now = context.now
    duplicate = context.recent.find(order, now)
    if duplicate is not None:
        return Rejection(
            CheckName.DUPLICATE,
            f"same {order.coin} {order.side.name} {order.sz}@{order.px} "
            f"{now - duplicate.at:.3f}s ago",
        )
    if not context.throttle.try_take(now):
        return Rejection(
            CheckName.THROTTLE,
            f"over {context.throttle.rate}/s (burst {context.throttle.burst})",
        )
    context.recent.add(order, now)
    return None


class RejectionLog:
    """Counts rejections by check; ``record`` says whether to log (once per burst)."""

    def __init__(self, quiet_s: float) -> None:
        self.quiet_s = quiet_s
        self.counts: dict[CheckName, int] = dict.fromkeys(CheckName, 0)
        self._last: dict[CheckName, float] = {}
        self._suppressed: dict[CheckName, int] = dict.fromkeys(CheckName, 0)

    def record(self, rejection: Rejection, now: float) -> bool:
        """Count the rejection; True when it is the first of its check after a quiet period."""
        name = rejection.check
        self.counts[name] += 1
        last = self._last.get(name)
        self._last[name] = now
        if last is None or now - last >= self.quiet_s:
            self._suppressed[name] = 0
            return True
        self._suppressed[name] += 1
        return False

    def suppressed(self, name: CheckName) -> int:
        """Rejections of ``name`` not logged since its last logged one."""
        return self._suppressed[name]
