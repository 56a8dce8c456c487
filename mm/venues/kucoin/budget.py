"""The KuCoin adapter's request budget as the port reads it (``mm.venues.base.RequestBudget``):
a view of the transport's ``RateBudget`` on the run's clock.

* ``headroom_by_kind``: each pool's share left (``Spot``, ``Public`` and any other pool an
  answer named, ``Management`` for the account reads), a pool whose window has passed reading
  full;
* ``headroom``: the tightest of them (the quota tiers slow down on whichever runs out first);
* ``order_budget``: the orders that may be placed or modified now. Orders draw on the ``Spot``
  pool at weight 1 each at most (a place, an alter; a batch of up to 5 weighs 1 too, so this
  counts low), and ``order_reserve`` of the pool is kept back for what must never wait on a
  quote cycle: cancels (weight 1), the dead-man's switch (2) and the resync's reads;
* ``rejections``: the venue's 429s the transport met;
* ``read_retry_wait``: a refused read waits for its pool's window to reset, which the venue's
  ``gw-ratelimit-reset`` header (or a full window) set on the pool when the 429 came; a
  refusal the budget was not told of (``counted`` False: another path than the transport's)
  is taken as the longest wait, a full window.

Pure state, no I/O; never raises for a time.
"""

from __future__ import annotations

import math
from typing import Final

from mm.venues.kucoin.limits import WINDOW_S
from mm.venues.kucoin.rate_budget import PoolBudget, RateBudget

__all__ = ["ORDER_POOL", "KucoinBudget"]

ORDER_POOL: Final = "Spot"
PUBLIC_POOL: Final = "Public"
RETRY_FLOOR_S: Final = 0.5  # a refused read never goes again at once


def _left(pool: PoolBudget, now: float) -> int:
    """What the pool may spend now (its quota once its window has passed)."""
    if pool.resets_at is not None and now >= pool.resets_at:
        return pool.quota
    return pool.remaining


class KucoinBudget:
    """The port's ``RequestBudget`` over a ``RateBudget`` (see the module)."""

    def __init__(self, budget: RateBudget, *, order_reserve: float = 0.1) -> None:
        if not 0 <= order_reserve < 1:
            raise ValueError(f"order_reserve must be within [0, 1), got {order_reserve}")
        self.budget = budget
        self.order_reserve = order_reserve
        self._uncounted = 0
        budget.pool(ORDER_POOL)  # (the pools mm always spends: shown before the first request)
        budget.pool(PUBLIC_POOL)

    def headroom_by_kind(self, now: float) -> dict[str, float]:
        return {
            name: min(1.0, max(0.0, _left(pool, now) / pool.quota))
            for name, pool in self.budget.pools.items()
        }

    def headroom(self, now: float) -> float:
        """The least of ``headroom_by_kind``, without its dict: the strategy reads it on every
        book, in the feed's task, ahead of any signal's slot."""
        least = 1.0
        for pool in self.budget.pools.values():
            share = _left(pool, now) / pool.quota
            if share < least:
                least = share if share > 0.0 else 0.0
        return least

    def order_budget(self, now: float) -> int:
        pool = self.budget.pool(ORDER_POOL)
        reserve = math.ceil(self.order_reserve * pool.quota)
        return max(0, _left(pool, now) - reserve)

    @property
    def rejections(self) -> int:
        return self.budget.refusals + self._uncounted

    def read_retry_wait(self, now: float, *, counted: bool) -> float:
        if not counted:
            self._uncounted += 1
            return WINDOW_S
        waits = [
            pool.resets_at - now
            for pool in self.budget.pools.values()
            if pool.resets_at is not None and pool.remaining <= 0 and pool.resets_at > now
        ]
        return max([RETRY_FLOOR_S, *waits])
