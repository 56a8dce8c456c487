"""The KuCoin face's REST rate limits: which pool an endpoint draws on, its weight, and each
owner's quota in a window of 30 seconds. Pure (the caller passes the time).

KuCoin (its docs, "Rate Limit", and the ``x-api-rate-limit-pool`` and ``-weight`` of every
endpoint in its OpenAPI specification) gives each pool a quota per 30 s window: at VIP0, Spot
4000, Public 2000, Management 2000 (``VIP0_QUOTAS``). Private pools are counted per account,
the Public pool per IP. Every answer carries the pool's ``gw-ratelimit-limit``, what is left
(``gw-ratelimit-remaining``) and the milliseconds until the window resets
(``gw-ratelimit-reset``); a request whose weight does not fit in what is left is answered HTTP
429 with ``{"code":"429000","msg":"Too Many Requests"}`` and does not act (nothing charged).

``WEIGHTS`` is this face's own table of the figures (the adapter keeps its own: the simulator
checks it, so it may not share it), for the spot endpoints of the specification; an endpoint
it does not list weighs 1 in Public. A window opens with an owner's first request in a pool
and resets ``WINDOW_S`` later (fixed windows, as the venue's reset header implies).

Fails: never; an unknown pool name in ``Quotas.charge`` is a KeyError (a bug of the caller).
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from typing import Final

import attrs

__all__ = [
    "PUBLIC",
    "VIP0_QUOTAS",
    "WEIGHTS",
    "WINDOW_S",
    "Charge",
    "Quotas",
    "weigh",
]

WINDOW_S: Final = 30.0
PUBLIC: Final = "Public"
VIP0_QUOTAS: Final[Mapping[str, int]] = {"Spot": 4000, PUBLIC: 2000, "Management": 2000}

WEIGHTS: Final[Mapping[tuple[str, str], tuple[str, int]]] = {
    # (method, path as the specification writes it): (pool, weight)
    ("GET", "/api/v3/announcements"): (PUBLIC, 20),
    ("GET", "/api/v3/currencies/{currency}"): (PUBLIC, 3),
    ("GET", "/api/v3/currencies"): (PUBLIC, 3),
    ("GET", "/api/v2/symbols/{symbol}"): (PUBLIC, 4),
    ("GET", "/api/v2/symbols"): (PUBLIC, 4),
    ("GET", "/api/v1/market/orderbook/level1"): (PUBLIC, 2),
    ("GET", "/api/v1/market/allTickers"): (PUBLIC, 15),
    ("GET", "/api/v1/market/histories"): (PUBLIC, 3),
    ("GET", "/api/v1/market/candles"): (PUBLIC, 3),
    ("GET", "/api/v1/market/orderbook/level2_{size}"): (PUBLIC, 2),
    ("GET", "/api/v3/market/orderbook/level2"): ("Spot", 3),
    ("GET", "/api/v1/prices"): (PUBLIC, 3),
    ("GET", "/api/v1/market/stats"): (PUBLIC, 15),
    ("GET", "/api/v1/markets"): (PUBLIC, 3),
    ("GET", "/api/v1/my-ip"): (PUBLIC, 0),
    ("GET", "/api/v1/timestamp"): (PUBLIC, 3),
    ("GET", "/api/v1/status"): (PUBLIC, 3),
    ("POST", "/api/v1/bullet-public"): (PUBLIC, 10),
    ("POST", "/api/v1/bullet-private"): ("Spot", 10),
    ("POST", "/api/v1/hf/orders"): ("Spot", 1),
    ("DELETE", "/api/v1/hf/orders"): ("Spot", 2),
    ("POST", "/api/v1/hf/orders/sync"): ("Spot", 1),
    ("POST", "/api/v1/hf/orders/test"): ("Spot", 1),
    ("POST", "/api/v1/hf/orders/multi"): ("Spot", 1),
    ("POST", "/api/v1/hf/orders/multi/sync"): ("Spot", 1),
    ("DELETE", "/api/v1/hf/orders/{orderId}"): ("Spot", 1),
    ("GET", "/api/v1/hf/orders/{orderId}"): ("Spot", 2),
    ("DELETE", "/api/v1/hf/orders/sync/{orderId}"): ("Spot", 1),
    ("DELETE", "/api/v1/hf/orders/client-order/{clientOid}"): ("Spot", 1),
    ("GET", "/api/v1/hf/orders/client-order/{clientOid}"): ("Spot", 2),
    ("DELETE", "/api/v1/hf/orders/sync/client-order/{clientOid}"): ("Spot", 1),
    ("DELETE", "/api/v1/hf/orders/cancel/{orderId}"): ("Spot", 2),
    ("DELETE", "/api/v1/hf/orders/cancelAll"): ("Spot", 30),
    ("POST", "/api/v1/hf/orders/alter"): ("Spot", 1),
    ("GET", "/api/v1/hf/orders/active/symbols"): ("Spot", 2),
    ("GET", "/api/v1/hf/orders/active"): ("Spot", 2),
    ("GET", "/api/v1/hf/orders/active/page"): ("Spot", 2),
    ("GET", "/api/v1/hf/orders/done"): ("Spot", 2),
    ("GET", "/api/v1/hf/fills"): ("Spot", 2),
    ("GET", "/api/v1/hf/orders/dead-cancel-all/query"): ("Spot", 2),
    ("POST", "/api/v1/hf/orders/dead-cancel-all"): ("Spot", 2),
    ("GET", "/api/v2/user-info"): ("Management", 20),
    ("GET", "/api/v1/user/api-key"): ("Management", 20),
    ("GET", "/api/v1/hf/accounts/opened"): ("Spot", 30),
    ("GET", "/api/v1/accounts"): ("Management", 5),
    ("GET", "/api/v1/accounts/{accountId}"): ("Management", 5),
    ("GET", "/api/v1/accounts/ledgers"): ("Management", 2),
    ("GET", "/api/v1/hf/accounts/ledgers"): ("Spot", 2),
    ("GET", "/api/v1/base-fee"): ("Spot", 3),
    ("GET", "/api/v1/trade-fees"): ("Spot", 3),
}


def _pattern(template: str) -> re.Pattern[str]:
    parts = re.split(r"(\{[^}]+\})", template)
    return re.compile(
        "".join("[^/]+" if part.startswith("{") else re.escape(part) for part in parts)
    )


# A literal path wins over a template (``/hf/orders/active`` is not an order id).
_EXACT: Final = {key: value for key, value in WEIGHTS.items() if "{" not in key[1]}
_TEMPLATES: Final = [
    (method, _pattern(path), value) for (method, path), value in WEIGHTS.items() if "{" in path
]


def weigh(method: str, path: str) -> tuple[str, int]:
    """The pool an HTTP request draws on and its weight (Public and 1 when not listed)."""
    exact = _EXACT.get((method, path))
    if exact is not None:
        return exact
    for listed, pattern, value in _TEMPLATES:
        if listed == method and pattern.fullmatch(path):
            return value
    return PUBLIC, 1


@attrs.frozen
class Charge:
    """A request's charge: whether it fits, and the headers of its answer."""

    allowed: bool
    limit: int
    remaining: int
    reset_ms: int

    def headers(self) -> list[tuple[bytes, bytes]]:
        return [
            (b"gw-ratelimit-limit", str(self.limit).encode()),
            (b"gw-ratelimit-remaining", str(self.remaining).encode()),
            (b"gw-ratelimit-reset", str(self.reset_ms).encode()),
        ]


class Quotas:
    """Every (pool, owner)'s window: when it opened and what it has used."""

    def __init__(self, quotas: Mapping[str, int] = VIP0_QUOTAS, window_s: float = WINDOW_S) -> None:
        self.quotas = dict(quotas)
        self.window_s = window_s
        self._windows: dict[tuple[str, str], tuple[float, int]] = {}  # -> (opened, used)

    def charge(self, pool: str, owner: str, weight: int, now: float) -> Charge:
        """Charge ``weight`` to ``owner``'s window of ``pool`` at ``now`` (seconds), unless
        it does not fit (then nothing is charged)."""
        limit = self.quotas[pool]
        opened, used = self._windows.get((pool, owner), (now, 0))
        if now >= opened + self.window_s:
            opened, used = now, 0
        allowed = used + weight <= limit
        if allowed:
            used += weight
        self._windows[(pool, owner)] = (opened, used)
        left_s = self.window_s - (now - opened)
        reset_ms = max(0, math.ceil(left_s * 1000 - 1e-6))  # (not 30001 for a float's error)
        return Charge(allowed, limit, limit - used, reset_ms)

    def forget(self, now: float) -> None:
        """Drop the windows that have reset (they would open afresh anyway)."""
        self._windows = {
            key: window for key, window in self._windows.items() if now < window[0] + self.window_s
        }
