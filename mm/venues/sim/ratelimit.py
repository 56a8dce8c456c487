"""Hyperliquid's rate limits and user limits, as the embedded simulator enforces them.

Pure and synchronous: no I/O and no clock reads. Every method that depends on time takes
``now`` (seconds, any monotonic origin: the simulator passes ``trio.current_time()``), so tests
drive simulated time without sleeping.

The documented figures and request weights live in ``mm.venues.hyperliquid.limits`` (its
docstring cites the venue's docs); the adapter's client-side limiter uses the same module, so the
simulator and the client can never disagree on a figure. The weight functions and constants are
re-exported here. What this module adds is how the simulator enforces them:

Per IP address
    * The 1200 weight "per minute" is enforced as a sliding 60 s window (a log of charges), which
      is the strict reading: no 60 s interval ever holds more than 1200 weight
      (``IpWeightLimiter``). A token bucket refilling 20/s would admit up to 2400 in some 60 s
      intervals (a full bucket plus a minute of refill), which the docs' wording does not allow.
    * The weight an ``/info`` answer adds per 20 items it lists (fills, orders) is recorded once
      the answer is built (``IpWeightLimiter.record``), unconditionally: the request was
      admitted on its own weight, as the venue can only count the items once it has them, so
      a client that does not reserve for them can take the window past the limit and meet the
      429s after.
    * Requests refused for the IP weight are counted per IP (``IpWeightLimiter.refused``), as
      are the weight charged and the most the window ever held (``charged``, ``peak``).
    * ``explorer`` weight is kept in the config; the simulator has no explorer API.
    * WebSocket limits are counted across all of the IP's connections (``WsLimits``): at most 10
      open at once and 30 opened in any 60 s (a refused attempt is not counted), 1000
      subscriptions, 10 users, 2000 messages in any 60 s and 100 posts in flight.

Per address (``AddressLimiter``)
    * ``cap = 10000 + floor(cum_volume)``; a request is refused when the requests already sent
      have reached the cap (the cancel cap for cancels), so a batch started under the cap is
      admitted whole. The refusal is the venue's ``AddressRateLimit`` text with
      ``Y = cap - 1``, as in real rejections (see the shared module). ``Z`` is printed like
      ``cumVlm``.
    * Past the cap, one request is still admitted every 10 s.

Wire texts and shapes
    * ``userRateLimit`` answers ``{"cumVlm": str, "nRequestsUsed": int, "nRequestsCap": int}``.
      ``cumVlm`` is the f64 volume with 9 decimals, trailing zeros trimmed to one (``"0.0"``,
      ``"42.0"``, ``"58293.48"`` as seen in published responses; the recording in
      ``tests/fixtures/hyperliquid/info_responses.json`` has
      ``"cumVlm": "170043721737.450012207"``). Newer venue versions add ``nRequestsSurplus``
      (request weight bought with ``reserveRequestWeight``), which the simulator does not model.
    * WebSocket errors arrive as ``{"channel": "error", "data": TEXT}``; the texts below are the
      venue's own, as collected in nktkas/hyperliquid issue #78: ``Cannot subscribe to more than
      1000 channels.``, ``Cannot track more than 10 total users.``, ``Cannot send more than 2000
      messages per minute.`` and ``too many pending post requests id=<id>``.

When ``RateLimitConfig.enabled`` is false every check passes, but weights, requests, volumes,
subscriptions and posts are still counted, so ``userRateLimit`` and the gauges stay meaningful.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Hashable, Mapping
from typing import Any, Final

import attrs

from mm.venues.hyperliquid import limits
from mm.venues.hyperliquid.limits import (
    ADDRESS_RATE_LIMIT_TEMPLATE,
    BATCH_FIELDS,
    CANCEL_ACTION_TYPES,
    LIGHT_INFO_TYPES,
    PER_20_ITEMS_INFO_TYPES,
    PER_60_ITEMS_INFO_TYPES,
    USER_ROLE_INFO_TYPES,
    address_requests,
    batch_length,
    exchange_weight,
    extra_info_weight,
    info_weight,
    is_cancel_action,
    items_returned,
)

__all__ = [
    "ADDRESS_RATE_LIMIT_TEMPLATE",
    "BATCH_FIELDS",
    "CANCEL_ACTION_TYPES",
    "DEFAULT_CONFIG",
    "LIGHT_INFO_TYPES",
    "PER_20_ITEMS_INFO_TYPES",
    "PER_60_ITEMS_INFO_TYPES",
    "USER_ROLE_INFO_TYPES",
    "AddressLimiter",
    "AddressState",
    "ConnId",
    "IpWeightLimiter",
    "RateLimitConfig",
    "WsLimits",
    "address_requests",
    "batch_length",
    "exchange_weight",
    "extra_info_weight",
    "format_volume",
    "info_weight",
    "is_cancel_action",
    "items_returned",
]

ConnId = Hashable


def _positive(_instance: object, attribute: attrs.Attribute[Any], value: float) -> None:
    if not value > 0:
        raise ValueError(f"{attribute.name} must be positive, got {value!r}")


def _non_negative(_instance: object, attribute: attrs.Attribute[Any], value: float) -> None:
    if not value >= 0:
        raise ValueError(f"{attribute.name} must not be negative, got {value!r}")


@attrs.frozen
class RateLimitConfig:
    """The venue's limits; every default is the documented figure (``limits``).

    It satisfies ``limits.WeightFigures`` and ``limits.AddressFigures``, so the weight functions
    accept it in place of the documented figures.
    """

    enabled: bool = True

    # Per IP, REST: an aggregated weight per rolling window.
    ip_weight_per_minute: int = attrs.field(
        default=limits.IP_WEIGHT_PER_MINUTE, validator=_positive
    )
    window_seconds: float = attrs.field(default=limits.WINDOW_SECONDS, validator=_positive)
    exchange_batch_divisor: int = attrs.field(
        default=limits.EXCHANGE_BATCH_DIVISOR, validator=_positive
    )
    info_weight_light: int = attrs.field(default=limits.INFO_WEIGHT_LIGHT, validator=_non_negative)
    info_weight_default: int = attrs.field(
        default=limits.INFO_WEIGHT_DEFAULT, validator=_non_negative
    )
    info_weight_user_role: int = attrs.field(
        default=limits.INFO_WEIGHT_USER_ROLE, validator=_non_negative
    )
    info_items_per_extra_weight: int = attrs.field(
        default=limits.INFO_ITEMS_PER_EXTRA_WEIGHT, validator=_positive
    )
    candle_items_per_extra_weight: int = attrs.field(
        default=limits.CANDLE_ITEMS_PER_EXTRA_WEIGHT, validator=_positive
    )
    explorer_weight: int = attrs.field(default=limits.EXPLORER_WEIGHT, validator=_non_negative)

    # Per IP, WebSocket, across all of the IP's connections.
    ws_max_connections: int = attrs.field(
        default=limits.WS_MAX_CONNECTIONS, validator=_non_negative
    )
    ws_new_connections_per_minute: int = attrs.field(
        default=limits.WS_NEW_CONNECTIONS_PER_MINUTE, validator=_non_negative
    )
    ws_max_subscriptions: int = attrs.field(
        default=limits.WS_MAX_SUBSCRIPTIONS, validator=_non_negative
    )
    ws_max_users: int = attrs.field(default=limits.WS_MAX_USERS, validator=_non_negative)
    ws_messages_per_minute: int = attrs.field(
        default=limits.WS_MESSAGES_PER_MINUTE, validator=_non_negative
    )
    ws_max_inflight_posts: int = attrs.field(
        default=limits.WS_MAX_INFLIGHT_POSTS, validator=_non_negative
    )

    # Per address, actions only.
    address_initial_requests: int = attrs.field(
        default=limits.ADDRESS_INITIAL_REQUESTS, validator=_non_negative
    )
    requests_per_usdc: float = attrs.field(
        default=limits.REQUESTS_PER_USDC, validator=_non_negative
    )
    address_throttled_interval_seconds: float = attrs.field(
        default=limits.ADDRESS_THROTTLED_INTERVAL_SECONDS, validator=_positive
    )
    cancel_extra_requests: int = attrs.field(
        default=limits.CANCEL_EXTRA_REQUESTS, validator=_non_negative
    )


DEFAULT_CONFIG: Final = RateLimitConfig()


# --------------------------------------------------------------------------------------------
# Wire formats


def format_volume(usdc: float) -> str:
    """A volume as the venue prints it in ``cumVlm`` and in the address-limit error.

    Nine decimals of the f64, trailing zeros trimmed down to one: ``170043721737.45`` prints as
    ``170043721737.450012207``, ``58293.48`` as ``58293.48`` and ``0`` as ``0.0``.
    """
    text = f"{usdc:.9f}".rstrip("0")
    return text + "0" if text.endswith(".") else text


# --------------------------------------------------------------------------------------------
# Sliding windows


class _SlidingWindow:
    """Amounts charged at instants; what was charged in the last ``length`` seconds.

    A charge made at ``t`` counts while ``now - t < length``, so it is gone at ``t + length``.
    """

    __slots__ = ("_entries", "_length", "total")

    def __init__(self, length: float) -> None:
        self._length = length
        self._entries: deque[tuple[float, int]] = deque()
        self.total = 0

    def expire(self, now: float) -> None:
        horizon = now - self._length
        entries = self._entries
        while entries and entries[0][0] <= horizon:
            self.total -= entries.popleft()[1]

    def add(self, amount: int, now: float) -> None:
        if amount > 0:
            self._entries.append((now, amount))
            self.total += amount

    def seconds_until_room(self, room_needed: int, now: float) -> float:
        """Seconds from ``now`` until ``total <= room_needed`` (0 if so); call after ``expire``."""
        excess = self.total - room_needed
        if excess <= 0:
            return 0.0
        for at, amount in self._entries:
            excess -= amount
            if excess <= 0:
                return max(0.0, at + self._length - now)
        return 0.0  # unreachable: dropping every entry leaves total 0

    def __bool__(self) -> bool:
        return bool(self._entries)


# --------------------------------------------------------------------------------------------
# IP weight


class IpWeightLimiter:
    """REST weight per IP over a sliding window (1200 per 60 s by default)."""

    def __init__(self, config: RateLimitConfig = DEFAULT_CONFIG) -> None:
        self._config = config
        self._windows: dict[str, _SlidingWindow] = {}
        self._refused: dict[str, int] = {}
        self._charged: dict[str, int] = {}
        self._peak: dict[str, int] = {}

    @property
    def config(self) -> RateLimitConfig:
        return self._config

    def refused(self, ip: str) -> int:
        """Requests from ``ip`` refused (HTTP 429) because the window was full."""
        return self._refused.get(ip, 0)

    def charged(self, ip: str) -> int:
        """All the weight ``ip`` was charged, ever."""
        return self._charged.get(ip, 0)

    def peak(self, ip: str) -> int:
        """The most weight ``ip``'s window ever held."""
        return self._peak.get(ip, 0)

    def _add(self, ip: str, window: _SlidingWindow, weight: int, now: float) -> None:
        window.add(weight, now)
        self._charged[ip] = self._charged.get(ip, 0) + max(0, weight)
        self._peak[ip] = max(self._peak.get(ip, 0), window.total)

    def _window(self, ip: str, now: float) -> _SlidingWindow:
        window = self._windows.get(ip)
        if window is None:
            window = self._windows[ip] = _SlidingWindow(self._config.window_seconds)
        window.expire(now)
        return window

    def charge(self, ip: str, weight: int, now: float) -> bool:
        """Admit and record a request of ``weight`` if it fits in the window; else refuse it.

        A refused request is not recorded.
        """
        window = self._window(ip, now)
        if self._config.enabled and window.total + weight > self._config.ip_weight_per_minute:
            self._refused[ip] = self._refused.get(ip, 0) + 1
            return False
        self._add(ip, window, weight, now)
        return True

    def record(self, ip: str, weight: int, now: float) -> None:
        """Record weight unconditionally, e.g. per-item weight known once the response is built."""
        self._add(ip, self._window(ip, now), weight, now)

    def used(self, ip: str, now: float) -> int:
        """Weight charged to ``ip`` in the window ending at ``now``."""
        window = self._windows.get(ip)
        if window is None:
            return 0
        window.expire(now)
        if not window:
            del self._windows[ip]
            return 0
        return window.total

    def retry_after(self, ip: str, weight: int, now: float) -> float:
        """Seconds until a request of ``weight`` would be admitted (0 now; ``inf`` never)."""
        if not self._config.enabled:
            return 0.0
        limit = self._config.ip_weight_per_minute
        if weight > limit:
            return math.inf
        return self._window(ip, now).seconds_until_room(limit - weight, now)


# --------------------------------------------------------------------------------------------
# Address


@attrs.define
class AddressState:
    """One address's counters."""

    requests_used: int = 0
    cum_volume_usdc: float = 0.0
    last_admitted_at: float | None = None


class AddressLimiter:
    """The address-based limit on actions, and what ``userRateLimit`` reports.

    Addresses are case-insensitive (kept lower-case). Every address starts with
    ``initial_volume_usdc`` traded (an account with a history; 0: a new one).
    """

    def __init__(
        self, config: RateLimitConfig = DEFAULT_CONFIG, *, initial_volume_usdc: float = 0.0
    ) -> None:
        self._config = config
        self._initial_volume = initial_volume_usdc
        self._states: dict[str, AddressState] = {}

    @property
    def config(self) -> RateLimitConfig:
        return self._config

    def _state(self, address: str) -> AddressState:
        key = address.lower()
        state = self._states.get(key)
        if state is None:
            state = self._states[key] = AddressState(cum_volume_usdc=self._initial_volume)
        return state

    def _peek(self, address: str) -> AddressState:
        return self._states.get(address.lower()) or AddressState(
            cum_volume_usdc=self._initial_volume
        )

    def requests_used(self, address: str) -> int:
        return self._peek(address).requests_used

    def cum_volume_usdc(self, address: str) -> float:
        return self._peek(address).cum_volume_usdc

    def cap(self, address: str) -> int:
        """``initial + floor(cum_volume * requests_per_usdc)``: ``nRequestsCap``."""
        return limits.address_cap(self._peek(address).cum_volume_usdc, self._config)

    def cancel_cap(self, address: str) -> int:
        """The cancels' cumulative limit: ``min(cap + 100000, cap * 2)``."""
        return limits.cancel_cap(self.cap(address), self._config)

    def add_volume(self, address: str, usdc: float) -> None:
        """Add traded notional (USDC, taken as its absolute value) to the address's volume."""
        self._state(address).cum_volume_usdc += abs(usdc)

    def charge(
        self,
        address: str,
        n_requests: int = 1,
        *,
        is_cancel: bool = False,
        now: float | None = None,
    ) -> str | None:
        """Charge ``n_requests`` requests (a batch of n counts n) to ``address``.

        Returns None when admitted, or the venue's ``AddressRateLimit`` error text when refused
        (a refused request is not counted). A request is refused when the requests already sent
        have reached the cap (the cancel cap for cancels): the venue checks what was sent before
        the request, so a batch started under the cap is admitted whole. Past the cap, one
        request is still admitted every 10 s: pass ``now`` to get that allowance; without ``now``
        an address at its cap is refused outright.
        """
        state = self._state(address)
        limit = self.cancel_cap(address) if is_cancel else self.cap(address)
        admitted = (
            not self._config.enabled
            or state.requests_used < limit
            or (
                now is not None
                and (
                    state.last_admitted_at is None
                    or now - state.last_admitted_at
                    >= self._config.address_throttled_interval_seconds
                )
            )
        )
        if not admitted:
            return ADDRESS_RATE_LIMIT_TEMPLATE.format(
                sent=state.requests_used,
                allowed=limit - 1,
                volume=format_volume(state.cum_volume_usdc),
            )
        state.requests_used += max(0, n_requests)
        if now is not None:
            state.last_admitted_at = now
        return None

    def charge_action(
        self, address: str, action: Mapping[str, Any], now: float | None = None
    ) -> str | None:
        """``charge`` for an ``/exchange`` action: its batch size and whether it cancels."""
        return self.charge(
            address, address_requests(action), is_cancel=is_cancel_action(action), now=now
        )

    def state(self, address: str) -> dict[str, Any]:
        """The ``userRateLimit`` info response for ``address``."""
        return {
            "cumVlm": format_volume(self._peek(address).cum_volume_usdc),
            "nRequestsUsed": self.requests_used(address),
            "nRequestsCap": self.cap(address),
        }


# --------------------------------------------------------------------------------------------
# WebSocket


@attrs.define
class _Connection:
    ip: str
    subscriptions: dict[str, str | None] = attrs.Factory(dict)  # key -> user (lower) or None
    inflight_posts: int = 0


@attrs.define
class _IpWs:
    connections: int = 0
    subscriptions: int = 0
    users: dict[str, int] = attrs.Factory(dict)  # user (lower) -> subscriptions naming it
    inflight_posts: int = 0
    messages: _SlidingWindow | None = None
    opened: _SlidingWindow | None = None  # connections accepted in the last window


class WsLimits:
    """WebSocket limits per IP, across all of the IP's connections.

    The protocol face calls ``can_connect`` before accepting, ``connected`` once accepted (which
    names the connection), and ``disconnected`` when it closes, which frees its subscriptions,
    users and inflight posts. Subscription keys are whatever canonical text the face uses for a
    subscription (e.g. its JSON with sorted keys); subscribing twice to a key on one connection is
    a no-op here (the face answers it as the venue does).
    """

    def __init__(self, config: RateLimitConfig = DEFAULT_CONFIG) -> None:
        self._config = config
        self._conns: dict[ConnId, _Connection] = {}
        self._ips: dict[str, _IpWs] = {}
        self._next_id = 0

    @property
    def config(self) -> RateLimitConfig:
        return self._config

    # Error texts, as the venue words them.

    @property
    def subscriptions_error(self) -> str:
        return f"Cannot subscribe to more than {self._config.ws_max_subscriptions} channels."

    @property
    def users_error(self) -> str:
        return f"Cannot track more than {self._config.ws_max_users} total users."

    @property
    def messages_error(self) -> str:
        return limits.WS_MESSAGES_ERROR_TEMPLATE.format(limit=self._config.ws_messages_per_minute)

    @staticmethod
    def post_error(post_id: object) -> str:
        return f"too many pending post requests id={post_id}"

    # Connections.

    def _ip(self, ip: str) -> _IpWs:
        entry = self._ips.get(ip)
        if entry is None:
            entry = self._ips[ip] = _IpWs()
        return entry

    def _conn(self, conn_id: ConnId) -> tuple[_Connection, _IpWs]:
        conn = self._conns.get(conn_id)
        if conn is None:
            raise KeyError(f"unknown websocket connection {conn_id!r}")
        return conn, self._ip(conn.ip)

    def can_connect(self, ip: str, now: float | None = None) -> bool:
        """Whether ``ip`` may open one more connection: fewer than 10 open and, given ``now``,
        fewer than 30 opened in the window ending at ``now``."""
        if not self._config.enabled:
            return True
        if self.connections(ip) >= self._config.ws_max_connections:
            return False
        return now is None or self.opened(ip, now) < self._config.ws_new_connections_per_minute

    def connected(
        self, ip: str, conn_id: ConnId | None = None, *, now: float | None = None
    ) -> ConnId:
        """Register an accepted connection from ``ip``; returns its id (``conn_id`` or a new one).

        This does not check the limits: call ``can_connect`` first. Given ``now``, the
        connection counts among those opened in the window (the protocol face always passes it).
        """
        if conn_id is None:
            self._next_id += 1
            conn_id = f"{ip}#{self._next_id}"
        if conn_id in self._conns:
            raise ValueError(f"websocket connection {conn_id!r} is already registered")
        self._conns[conn_id] = _Connection(ip)
        entry = self._ip(ip)
        entry.connections += 1
        if now is not None:
            if entry.opened is None:
                entry.opened = _SlidingWindow(self._config.window_seconds)
            entry.opened.expire(now)
            entry.opened.add(1, now)
        return conn_id

    def disconnected(self, conn_id: ConnId) -> None:
        """Forget a connection and everything it held. Unknown ids are ignored."""
        conn = self._conns.pop(conn_id, None)
        if conn is None:
            return
        entry = self._ip(conn.ip)
        for user in conn.subscriptions.values():
            self._drop_subscription(entry, user)
        entry.inflight_posts -= conn.inflight_posts
        entry.connections -= 1
        if entry.connections == 0 and not entry.messages and not entry.opened:
            del self._ips[conn.ip]

    def connections(self, ip: str) -> int:
        entry = self._ips.get(ip)
        return entry.connections if entry else 0

    def opened(self, ip: str, now: float) -> int:
        """Connections ``ip`` opened in the window ending at ``now``."""
        entry = self._ips.get(ip)
        if entry is None or entry.opened is None:
            return 0
        entry.opened.expire(now)
        return entry.opened.total

    # Subscriptions.

    def subscribe(self, conn_id: ConnId, key: str, user: str | None = None) -> str | None:
        """Add subscription ``key`` (naming ``user`` if user-specific) on a connection.

        Returns None when admitted, or the venue's error text when the IP is at its subscription
        limit, or the subscription names a new user when the IP already tracks the most users.
        """
        conn, entry = self._conn(conn_id)
        if key in conn.subscriptions:
            return None
        user_key = user.lower() if user is not None else None
        if self._config.enabled:
            if entry.subscriptions >= self._config.ws_max_subscriptions:
                return self.subscriptions_error
            if (
                user_key is not None
                and user_key not in entry.users
                and len(entry.users) >= self._config.ws_max_users
            ):
                return self.users_error
        conn.subscriptions[key] = user_key
        entry.subscriptions += 1
        if user_key is not None:
            entry.users[user_key] = entry.users.get(user_key, 0) + 1
        return None

    def unsubscribe(self, conn_id: ConnId, key: str) -> bool:
        """Remove subscription ``key``; False if the connection did not hold it."""
        conn, entry = self._conn(conn_id)
        if key not in conn.subscriptions:
            return False
        self._drop_subscription(entry, conn.subscriptions.pop(key))
        return True

    @staticmethod
    def _drop_subscription(entry: _IpWs, user: str | None) -> None:
        entry.subscriptions -= 1
        if user is not None:
            left = entry.users[user] - 1
            if left:
                entry.users[user] = left
            else:
                del entry.users[user]

    def subscriptions(self, ip: str) -> int:
        entry = self._ips.get(ip)
        return entry.subscriptions if entry else 0

    def users(self, ip: str) -> int:
        entry = self._ips.get(ip)
        return len(entry.users) if entry else 0

    # Messages and posts.

    def message_sent(self, conn_id: ConnId, now: float) -> bool:
        """Count one message received from the client; False (not counted) past 2000 a minute."""
        _conn, entry = self._conn(conn_id)
        if entry.messages is None:
            entry.messages = _SlidingWindow(self._config.window_seconds)
        entry.messages.expire(now)
        if self._config.enabled and entry.messages.total >= self._config.ws_messages_per_minute:
            return False
        entry.messages.add(1, now)
        return True

    def messages(self, ip: str, now: float) -> int:
        """Messages counted for ``ip`` in the window ending at ``now``."""
        entry = self._ips.get(ip)
        if entry is None or entry.messages is None:
            return 0
        entry.messages.expire(now)
        return entry.messages.total

    def post_started(self, conn_id: ConnId) -> bool:
        """Start an inflight post; False (not started) when the IP already has 100 inflight."""
        conn, entry = self._conn(conn_id)
        if self._config.enabled and entry.inflight_posts >= self._config.ws_max_inflight_posts:
            return False
        conn.inflight_posts += 1
        entry.inflight_posts += 1
        return True

    def post_finished(self, conn_id: ConnId) -> None:
        """Finish an inflight post (its response was sent). Unknown connections are ignored."""
        conn = self._conns.get(conn_id)
        if conn is None or conn.inflight_posts == 0:
            return
        conn.inflight_posts -= 1
        self._ip(conn.ip).inflight_posts -= 1

    def inflight_posts(self, ip: str) -> int:
        entry = self._ips.get(ip)
        return entry.inflight_posts if entry else 0
