"""KuCoin's documented rate limits: which resource pool each endpoint draws on, and its weight.

Pure: constants and a lookup, no I/O and no clock. The adapter's budget
(``mm.venues.kucoin.rate_budget``) spends against them, and the simulator's KuCoin face will
charge them.

Figures, and where they come from
=================================

* Every REST endpoint draws a **weight** from one **resource pool** (``Spot``, ``Public``,
  ``Management``, ...), each pool a quota per **30-second** window (``WINDOW_S``). The pool and
  weight of each endpoint are those of KuCoin's API specification, the OpenAPI files of the
  official SDK (``Kucoin/kucoin-universal-sdk`` @78c90c77, ``spec/rest/api/openapi-spot-order``,
  ``-spot-market``, ``-account-account``, ``-account-fee``: each operation's
  ``x-api-rate-limit-pool`` and ``x-api-rate-limit-weight``), for the endpoints mm uses
  (``ENDPOINTS``). Placing an order weighs 1, a cancel 1 (2 by the ``cancel`` path), cancelling
  a symbol's orders 30, an order query 2, a bullet token 10.
* The quotas at VIP0 (KuCoin's docs, "Rate Limit"): **Spot 4,000** and **Public 2,000** per
  30 s (``POOL_QUOTAS``). Other pools' quotas (``Management``) and any VIP level's are read from
  the answers: every answer carries ``gw-ratelimit-limit`` (the pool's quota),
  ``gw-ratelimit-remaining`` and ``gw-ratelimit-reset`` (milliseconds until the window resets;
  ``HEADER_LIMIT`` and the others), which the budget trusts over its own count.
* Past the quota the venue answers HTTP 429 with code ``429000`` (``TOO_MANY_REQUESTS``).

Fails: ``KeyError`` naming the request for an endpoint not in ``ENDPOINTS`` (a request mm makes
must have its weight known before it is sent).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Final

__all__ = [
    "ENDPOINTS",
    "FILLS_PAGE",
    "HEADER_LIMIT",
    "HEADER_REMAINING",
    "HEADER_RESET",
    "POOL_QUOTAS",
    "TOO_MANY_REQUESTS",
    "WINDOW_S",
    "limit_of",
]

WINDOW_S: Final = 30.0
FILLS_PAGE: Final = 100  # the most fills one GET /api/v1/hf/fills lists (its limit's maximum)
POOL_QUOTAS: Final[Mapping[str, int]] = {"Spot": 4_000, "Public": 2_000}
TOO_MANY_REQUESTS: Final = "429000"
HEADER_LIMIT: Final = "gw-ratelimit-limit"
HEADER_REMAINING: Final = "gw-ratelimit-remaining"
HEADER_RESET: Final = "gw-ratelimit-reset"

# (method, path template) -> (pool, weight), from the official SDK's specification.
ENDPOINTS: Final[Mapping[tuple[str, str], tuple[str, int]]] = {
    ("POST", "/api/v1/hf/orders"): ("Spot", 1),
    ("POST", "/api/v1/hf/orders/sync"): ("Spot", 1),
    ("POST", "/api/v1/hf/orders/test"): ("Spot", 1),
    ("POST", "/api/v1/hf/orders/multi"): ("Spot", 1),
    ("POST", "/api/v1/hf/orders/multi/sync"): ("Spot", 1),
    ("POST", "/api/v1/hf/orders/alter"): ("Spot", 1),
    ("DELETE", "/api/v1/hf/orders"): ("Spot", 2),
    ("DELETE", "/api/v1/hf/orders/{orderId}"): ("Spot", 1),
    ("DELETE", "/api/v1/hf/orders/sync/{orderId}"): ("Spot", 1),
    ("DELETE", "/api/v1/hf/orders/client-order/{clientOid}"): ("Spot", 1),
    ("DELETE", "/api/v1/hf/orders/sync/client-order/{clientOid}"): ("Spot", 1),
    ("DELETE", "/api/v1/hf/orders/cancel/{orderId}"): ("Spot", 2),
    ("DELETE", "/api/v1/hf/orders/cancelAll"): ("Spot", 30),
    ("GET", "/api/v1/hf/orders/{orderId}"): ("Spot", 2),
    ("GET", "/api/v1/hf/orders/client-order/{clientOid}"): ("Spot", 2),
    ("GET", "/api/v1/hf/orders/active"): ("Spot", 2),
    ("GET", "/api/v1/hf/orders/active/symbols"): ("Spot", 2),
    ("GET", "/api/v1/hf/orders/done"): ("Spot", 2),
    ("GET", "/api/v1/hf/fills"): ("Spot", 2),
    ("GET", "/api/v1/hf/orders/dead-cancel-all/query"): ("Spot", 2),
    ("POST", "/api/v1/hf/orders/dead-cancel-all"): ("Spot", 2),
    ("GET", "/api/v2/symbols"): ("Public", 4),
    ("GET", "/api/v1/market/orderbook/level2_{size}"): ("Public", 2),
    ("GET", "/api/v3/market/orderbook/level2"): ("Spot", 3),
    ("GET", "/api/v1/timestamp"): ("Public", 3),
    ("POST", "/api/v1/bullet-public"): ("Public", 10),
    ("POST", "/api/v1/bullet-private"): ("Spot", 10),
    ("GET", "/api/v1/accounts"): ("Management", 5),
    ("GET", "/api/v1/trade-fees"): ("Spot", 3),
}


def _pattern(template: str) -> re.Pattern[str]:
    parts = re.split(r"(\{[A-Za-z]+\})", template)
    body = "".join("[^/?]+" if part.startswith("{") else re.escape(part) for part in parts)
    return re.compile(body)


# Templates with a parameter, matched after the exact paths (an exact path wins: "/active" is
# not an order id).
_TEMPLATES: Final = tuple(
    (method, _pattern(template), limit)
    for (method, template), limit in ENDPOINTS.items()
    if "{" in template
)


def limit_of(method: str, path: str) -> tuple[str, int]:
    """The pool and weight of a request (``path`` without its query string)."""
    exact = ENDPOINTS.get((method, path))
    if exact is not None:
        return exact
    for template_method, pattern, limit in _TEMPLATES:
        if template_method == method and pattern.fullmatch(path):
            return limit
    raise KeyError(f"no known rate limit for {method} {path}")
