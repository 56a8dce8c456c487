"""Hyperliquid's documented rate limits and request weights: the single source of the figures.

Pure: constants and functions of request payloads, no I/O and no clock. Both sides use it: the
embedded simulator (``mm.venues.sim.ratelimit``) enforces these limits, and the adapter's
client-side limiter (``mm.venues.hyperliquid.rate_limit``) stays under them.

Figures, and where they come from
=================================

Hyperliquid docs, "Rate limits and user limits"
(https://hyperliquid.gitbook.io/hyperliquid-docs/for-developers/api/rate-limits-and-user-limits,
formerly ``.../api/rate-limits``):

Per IP address
    * REST requests share an aggregated weight limit of **1200 per minute**
      (``IP_WEIGHT_PER_MINUTE``, ``WINDOW_SECONDS``).
    * ``exchange`` requests weigh **1 + floor(batch_length / 40)**, batch_length being the length
      of the array in the action (orders, cancels, modifies): unbatched actions weigh 1, a batch of
      79 orders weighs 2 (``exchange_weight``).
    * ``info`` requests ``l2Book``, ``allMids``, ``clearinghouseState``, ``orderStatus``,
      ``spotClearinghouseState``, ``exchangeStatus`` weigh **2**; ``userRole`` weighs **60**; all
      other documented info requests weigh **20** (``info_weight``).
    * ``recentTrades``, ``historicalOrders``, ``userFills``, ``userFillsByTime``,
      ``fundingHistory``, ``userFunding``, ``nonUserFundingUpdates``, ``twapHistory``,
      ``userTwapSliceFills``, ``userTwapSliceFillsByTime``, ``delegatorHistory``,
      ``delegatorRewards``, ``validatorStats`` add **1 weight per 20 items** returned;
      ``candleSnapshot`` adds **1 per 60 items** (``extra_info_weight``; we count whole groups,
      ``items // 20``, as the docs do not say how a partial group is charged). The items are
      the entries of the answer's list (``items_returned``).
    * How many items an answer may hold, from the info endpoint's docs: ``userFills`` "up to
      2000 most recent fills", ``userFillsByTime`` "at most 2000 fills per response" (and "only
      the 10000 most recent fills are available"), ``historicalOrders`` "at most 2000 most
      recent historical orders", ``candleSnapshot`` "only the most recent 5000 candles"
      (``MAX_ITEMS_RETURNED``). A client cannot know the per-item weight before the answer
      comes, so it reserves the most a request can weigh (``reserved_info_weight``) and settles
      on what the answer weighed (``answered_info_weight``).
    * ``explorer`` requests weigh **40** (``EXPLORER_WEIGHT``).
    * WebSocket: at most **10 connections** open and **30 new connections per minute**, **1000
      subscriptions**, **10 unique users** across user-specific subscriptions, **2000 messages
      sent per minute** and **100 simultaneous inflight post messages**, all "across all
      websocket connections" of the IP (``WS_*``). The page said 100 connections until the
      venue lowered it; the current figures (10, and 30 new a minute) are those the venue's page
      gives today, as also copied into the Rust clients ``guilder-client-hyperliquid`` (its
      README's WebSocket table) and ``df-hyperliquid-core`` (``live/session/limits.rs``).

Per address (sub-accounts are separate users; actions only, never info requests)
    * 1 request per **1 USDC traded** cumulatively since inception, on top of an initial buffer
      of **10000 requests**: ``cap = 10000 + floor(cum_volume)`` (``address_cap``).
    * When rate limited, an address may still send **one request every 10 seconds**
      (``ADDRESS_THROTTLED_INTERVAL_SECONDS``).
    * Cancels have the cumulative limit **min(limit + 100000, limit * 2)**, so a limited address
      can still cancel its open orders (``cancel_cap``).
    * A batched request of **n orders (or cancels) counts as n requests** here, but as one
      request (of the weight above) against the IP limit (``address_requests``).

Wire texts
    * A WebSocket message past the message limit is refused with the error frame
      ``Cannot send more than 2000 messages per minute.``, which names no post id
      (``WS_MESSAGES_ERROR_TEMPLATE``; the venue's texts as collected in nktkas/hyperliquid
      issue #78, whose maintainer's reading is ours: every pending post is rejected, as the
      refused one cannot be told apart).
    * The address limit's error is the venue's ``AddressRateLimit`` text from the docs' "Error
      responses" page (``tests/fixtures/hyperliquid/error_messages.json``):
      ``Too many cumulative requests sent (X > Y) for cumulative volume traded $Z. Place taker
      orders to free up 1 request per USDC traded.`` (``ADDRESS_RATE_LIMIT_TEMPLATE``,
      ``parse_address_rate_limit``). Real rejections seen in the wild, e.g.
      ``(20629 > 16414) ... $6415.83``, ``(15965 > 15855) ... $5856.56`` and
      ``(2887581 > 2807233) ... $2797234.88019``, all have ``Y = 10000 + floor(Z) - 1``, one less
      than the ``nRequestsCap`` that ``userRateLimit`` reports: the venue refuses a request when
      the requests already sent ``X`` have reached the cap (``X >= cap``), which still lets
      exactly 10000 single requests through on a fresh address, as documented.
    * ``userRateLimit`` answers ``{"cumVlm": str, "nRequestsUsed": int, "nRequestsCap": int}``
      (recorded in ``tests/fixtures/hyperliquid/info_responses.json``).
    * The IP limit is enforced with HTTP **429** (no body the client can rely on).

The weight functions take their figures from a ``WeightFigures`` (default ``DOCUMENTED``): any
object with those attributes will do, e.g. the simulator's ``RateLimitConfig``.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from typing import Any, Final, Protocol

import attrs

# --------------------------------------------------------------------------------------------
# The documented figures

WINDOW_SECONDS: Final = 60.0
"""The IP weight limit is per minute."""

IP_WEIGHT_PER_MINUTE: Final = 1200
"""Aggregated REST weight per IP per minute."""

EXCHANGE_BATCH_DIVISOR: Final = 40
"""``exchange`` weight is ``1 + floor(batch_length / 40)``."""

INFO_WEIGHT_LIGHT: Final = 2
INFO_WEIGHT_DEFAULT: Final = 20
INFO_WEIGHT_USER_ROLE: Final = 60
INFO_ITEMS_PER_EXTRA_WEIGHT: Final = 20
CANDLE_ITEMS_PER_EXTRA_WEIGHT: Final = 60
EXPLORER_WEIGHT: Final = 40

WS_MAX_CONNECTIONS: Final = 10
WS_NEW_CONNECTIONS_PER_MINUTE: Final = 30
WS_MAX_SUBSCRIPTIONS: Final = 1000
WS_MAX_USERS: Final = 10
WS_MESSAGES_PER_MINUTE: Final = 2000
WS_MAX_INFLIGHT_POSTS: Final = 100

WS_MESSAGES_ERROR_TEMPLATE: Final = "Cannot send more than {limit} messages per minute."
"""The venue's error frame for a WebSocket message past the message limit (no post id)."""

_WS_MESSAGES_ERROR_RE: Final = re.compile(
    r"^Cannot send more than [0-9]+ messages per minute\.?$", re.ASCII
)

ADDRESS_INITIAL_REQUESTS: Final = 10000
"""Every address starts with this many requests."""

REQUESTS_PER_USDC: Final = 1.0
"""Each USDC of cumulative traded volume adds one request to the address's cap."""

ADDRESS_THROTTLED_INTERVAL_SECONDS: Final = 10.0
"""A rate-limited address may still send one request this often."""

CANCEL_EXTRA_REQUESTS: Final = 100000
"""Cancels may go up to ``min(cap + 100000, cap * 2)``."""

LIGHT_INFO_TYPES: Final = frozenset(
    {
        "l2Book",
        "allMids",
        "clearinghouseState",
        "orderStatus",
        "spotClearinghouseState",
        "exchangeStatus",
    }
)
"""Info requests of weight 2."""

USER_ROLE_INFO_TYPES: Final = frozenset({"userRole"})
"""Info requests of weight 60."""

PER_20_ITEMS_INFO_TYPES: Final = frozenset(
    {
        "recentTrades",
        "historicalOrders",
        "userFills",
        "userFillsByTime",
        "fundingHistory",
        "userFunding",
        "nonUserFundingUpdates",
        "twapHistory",
        "userTwapSliceFills",
        "userTwapSliceFillsByTime",
        "delegatorHistory",
        "delegatorRewards",
        "validatorStats",
    }
)
"""Info requests charged one more weight per 20 items returned."""

PER_60_ITEMS_INFO_TYPES: Final = frozenset({"candleSnapshot"})
"""Info requests charged one more weight per 60 items returned."""

MAX_ITEMS_RETURNED: Final[Mapping[str, int]] = {
    "userFills": 2000,
    "userFillsByTime": 2000,
    "historicalOrders": 2000,
    "candleSnapshot": 5000,
}
"""The most items the docs say an answer of these types lists."""

FILLS_PAGE: Final = MAX_ITEMS_RETURNED["userFillsByTime"]
"""The most fills one ``userFillsByTime`` answer lists: a full page may have more after it."""

FILLS_RETAINED: Final = 10000
"""``userFillsByTime`` reaches only the account's 10000 most recent fills."""

BATCH_FIELDS: Final[Mapping[str, str]] = {
    "order": "orders",
    "cancel": "cancels",
    "cancelByCloid": "cancels",
    "batchModify": "modifies",
}
"""For each batched action type, the field holding its array."""

CANCEL_ACTION_TYPES: Final = frozenset({"cancel", "cancelByCloid"})
"""Actions that get the larger cancel allowance of the address limit."""

ADDRESS_RATE_LIMIT_TEMPLATE: Final = (
    "Too many cumulative requests sent ({sent} > {allowed}) for cumulative volume traded "
    "${volume}. Place taker orders to free up 1 request per USDC traded."
)
"""The venue's ``AddressRateLimit`` error text (``str.format`` fields: sent, allowed, volume)."""

ADDRESS_RATE_LIMIT_PREFIX: Final = "Too many cumulative requests sent"

_ADDRESS_RATE_LIMIT_RE: Final = re.compile(
    r"Too many cumulative requests sent \((?P<sent>\d+) > (?P<allowed>-?\d+)\)"
    r"(?: for cumulative volume traded \$(?P<volume>\d+(?:\.\d*)?))?",
    re.ASCII,  # the venue's digits: \d would take any script's, and int() reads them too
)


# --------------------------------------------------------------------------------------------
# Figures as one value, so the simulator can be configured away from them


class WeightFigures(Protocol):
    """The figures the weight functions use (the simulator's config is one)."""

    @property
    def exchange_batch_divisor(self) -> int: ...
    @property
    def info_weight_light(self) -> int: ...
    @property
    def info_weight_default(self) -> int: ...
    @property
    def info_weight_user_role(self) -> int: ...
    @property
    def info_items_per_extra_weight(self) -> int: ...
    @property
    def candle_items_per_extra_weight(self) -> int: ...


class AddressFigures(Protocol):
    """The figures of the address limit."""

    @property
    def address_initial_requests(self) -> int: ...
    @property
    def requests_per_usdc(self) -> float: ...
    @property
    def cancel_extra_requests(self) -> int: ...


@attrs.frozen
class Figures:
    """The documented figures as one value (``DOCUMENTED``)."""

    exchange_batch_divisor: int = EXCHANGE_BATCH_DIVISOR
    info_weight_light: int = INFO_WEIGHT_LIGHT
    info_weight_default: int = INFO_WEIGHT_DEFAULT
    info_weight_user_role: int = INFO_WEIGHT_USER_ROLE
    info_items_per_extra_weight: int = INFO_ITEMS_PER_EXTRA_WEIGHT
    candle_items_per_extra_weight: int = CANDLE_ITEMS_PER_EXTRA_WEIGHT
    address_initial_requests: int = ADDRESS_INITIAL_REQUESTS
    requests_per_usdc: float = REQUESTS_PER_USDC
    cancel_extra_requests: int = CANCEL_EXTRA_REQUESTS


DOCUMENTED: Final = Figures()


# --------------------------------------------------------------------------------------------
# Weights


def info_weight(request: Mapping[str, Any], figures: WeightFigures = DOCUMENTED) -> int:
    """The IP weight of an ``/info`` request, before counting what it returns."""
    request_type = request.get("type")
    if not isinstance(request_type, str):  # a request the venue cannot read: default weight
        return figures.info_weight_default
    if request_type in LIGHT_INFO_TYPES:
        return figures.info_weight_light
    if request_type in USER_ROLE_INFO_TYPES:
        return figures.info_weight_user_role
    return figures.info_weight_default


def extra_info_weight(
    request_type: str, items_returned: int, figures: WeightFigures = DOCUMENTED
) -> int:
    """The weight an ``/info`` request adds for the items its response lists (0 for most)."""
    if request_type in PER_20_ITEMS_INFO_TYPES:
        return max(0, items_returned) // figures.info_items_per_extra_weight
    if request_type in PER_60_ITEMS_INFO_TYPES:
        return max(0, items_returned) // figures.candle_items_per_extra_weight
    return 0


def items_returned(answer: Any) -> int:
    """How many items an ``/info`` answer lists: the length of its list (0 for anything else)."""
    return len(answer) if isinstance(answer, list | tuple) else 0


def answered_info_weight(
    request: Mapping[str, Any], answer: Any, figures: WeightFigures = DOCUMENTED
) -> int:
    """The IP weight of an ``/info`` request once its answer is known: the request's weight
    plus the per-item weight of what the answer lists."""
    request_type = request.get("type")
    extra = (
        extra_info_weight(request_type, items_returned(answer), figures)
        if isinstance(request_type, str)
        else 0
    )
    return info_weight(request, figures) + extra


def reserved_info_weight(request: Mapping[str, Any], figures: WeightFigures = DOCUMENTED) -> int:
    """The most an ``/info`` request can weigh: its weight plus the per-item weight of the
    largest answer its type may list (``MAX_ITEMS_RETURNED``; a type of unknown size reserves
    its weight alone and is charged more once answered)."""
    request_type = request.get("type")
    most = MAX_ITEMS_RETURNED.get(request_type, 0) if isinstance(request_type, str) else 0
    extra = extra_info_weight(request_type, most, figures) if isinstance(request_type, str) else 0
    return info_weight(request, figures) + extra


def batch_length(action: Mapping[str, Any]) -> int:
    """The length of the array in a batched action; 0 for an unbatched one."""
    kind = action.get("type")
    field = BATCH_FIELDS.get(kind) if isinstance(kind, str) else None
    if field is None:
        return 0
    items = action.get(field)
    return len(items) if isinstance(items, list | tuple) else 0


def exchange_weight_for(n_items: int, figures: WeightFigures = DOCUMENTED) -> int:
    """The IP weight of an ``/exchange`` request whose batch holds ``n_items``."""
    return 1 + max(0, n_items) // figures.exchange_batch_divisor


def exchange_weight(action: Mapping[str, Any], figures: WeightFigures = DOCUMENTED) -> int:
    """The IP weight of an ``/exchange`` request: ``1 + floor(batch_length / 40)``."""
    return exchange_weight_for(batch_length(action), figures)


def address_requests(action: Mapping[str, Any]) -> int:
    """How many requests an action counts for the address limit: n for a batch of n, else 1."""
    return max(1, batch_length(action))


def is_cancel_action(action: Mapping[str, Any]) -> bool:
    """Whether an action gets the cancel allowance of the address limit."""
    return action.get("type") in CANCEL_ACTION_TYPES


# --------------------------------------------------------------------------------------------
# The address limit


def address_cap(cum_volume_usdc: float, figures: AddressFigures = DOCUMENTED) -> int:
    """``nRequestsCap``: ``10000 + floor(cum_volume * 1)``."""
    return figures.address_initial_requests + math.floor(
        abs(cum_volume_usdc) * figures.requests_per_usdc
    )


def cancel_cap(cap: int, figures: AddressFigures = DOCUMENTED) -> int:
    """The cancels' cumulative limit for an address whose cap is ``cap``."""
    return min(cap + figures.cancel_extra_requests, cap * 2)


@attrs.frozen
class AddressRateLimitError:
    """The numbers in the venue's ``AddressRateLimit`` text.

    ``sent`` is the requests the address had sent, ``allowed`` is ``nRequestsCap - 1`` and
    ``volume`` the cumulative traded volume in USDC (None if the text was cut short).
    """

    sent: int
    allowed: int
    volume: float | None

    @property
    def cap(self) -> int:
        """The ``nRequestsCap`` the text implies."""
        return self.allowed + 1


def is_ws_messages_limit(text: str) -> bool:
    """Whether a WebSocket error frame's text is the venue's message-limit refusal."""
    return _WS_MESSAGES_ERROR_RE.match(text) is not None


def is_address_rate_limit(text: str) -> bool:
    """Whether an error text is the venue's address-limit rejection."""
    return ADDRESS_RATE_LIMIT_PREFIX in text


def parse_address_rate_limit(text: str) -> AddressRateLimitError | None:
    """The numbers of an ``AddressRateLimit`` error text, or None if it is not one."""
    match = _ADDRESS_RATE_LIMIT_RE.search(text)
    if match is None:
        return None
    volume = match.group("volume")
    return AddressRateLimitError(
        sent=int(match.group("sent")),
        allowed=int(match.group("allowed")),
        volume=float(volume) if volume is not None else None,
    )
