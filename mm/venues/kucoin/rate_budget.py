"""The adapter's budget of KuCoin's resource pools: pure state on the caller's clock.

KuCoin counts each pool's weight in fixed 30-second windows and says, on every answer, the
pool's quota, what is left of it and when the window resets (``limits.HEADER_*``). The budget
spends locally (``take``: the weight of a request about to be sent, or how long to wait for it)
and trusts the venue's word over its own count (``observe``): other clients of the same account
and IP spend the same pools, and a window's start is the venue's, not ours. A 429 (``refused``)
empties the pool until its reset.

What an answer says is its own moment's count: requests sent since, still unanswered, are not
in it. So within a window the budget keeps the smaller of the venue's remaining and its own
(it never takes the venue's word as leave to spend what it already spent); a later reset than
the one known is a new window, and the venue's figures replace the budget's.

Fails: ``ValueError`` for a weight below 1 or above the pool's quota (it could never be sent);
headers that do not parse are ignored (counted in ``bad_headers``), the local count going on.
"""

from __future__ import annotations

from collections.abc import Mapping

from mm.venues.kucoin.limits import (
    HEADER_LIMIT,
    HEADER_REMAINING,
    HEADER_RESET,
    POOL_QUOTAS,
    WINDOW_S,
)

__all__ = ["RESET_MARGIN_S", "PoolBudget", "RateBudget"]

# Reset times closer than this are one window (the venue's reset, read from answers that left
# at different moments, moves by their transit time).
SAME_WINDOW_S = 1.0
# The venue's reset is taken as this much later than an answer says: the header counts whole
# milliseconds, and the answer took time to arrive. A request sent at the very edge of a window
# would otherwise be counted in the one that is ending.
RESET_MARGIN_S = 0.05


class PoolBudget:
    """One pool's window: its quota, what is left, and when the window ends."""

    def __init__(self, quota: int, window_s: float = WINDOW_S) -> None:
        if quota < 1:
            raise ValueError(f"a pool's quota must be at least 1, got {quota}")
        self.quota = quota
        self.window_s = window_s
        self.remaining = quota
        self.resets_at: float | None = None  # None: no window open yet
        self.known = False  # resets_at is the venue's (an answer said it), not our guess

    def _roll(self, now: float) -> None:
        if self.resets_at is not None and now >= self.resets_at:
            self.remaining = self.quota
            self.resets_at = None
            self.known = False

    def wait(self, weight: int, now: float) -> float:
        """Seconds until ``weight`` can be spent (0: now)."""
        self._check(weight)
        self._roll(now)
        if self.remaining >= weight:
            return 0.0
        assert self.resets_at is not None  # spent below the quota: a window is open
        return self.resets_at - now

    def take(self, weight: int, now: float) -> float:
        """Spend ``weight`` now and answer 0, or spend nothing and answer how long to wait."""
        wait = self.wait(weight, now)
        if wait > 0:
            return wait
        if self.resets_at is None:
            self.resets_at = now + self.window_s
        self.remaining -= weight
        return 0.0

    def observe(self, limit: int, remaining: int, reset_s: float, now: float) -> None:
        """What an answer said: the pool's quota, what was left, and seconds to its reset."""
        self._roll(now)
        resets_at = now + reset_s + RESET_MARGIN_S
        self.remaining += limit - self.quota  # a quota the venue says is other than ours
        self.quota = limit
        if self.known and self.resets_at is not None and resets_at > self.resets_at + SAME_WINDOW_S:
            self.remaining = min(remaining, limit)  # the venue's next window: its figures
        else:
            # The window we count in (or, at the first answer, the one our own count guessed
            # at): the smaller remaining, and the venue's reset, which is the truth.
            self.remaining = min(self.remaining, remaining, limit)
        self.resets_at = resets_at
        self.known = True

    def refused(self, now: float) -> None:
        """A 429: nothing left until the window resets (a full window when none is known)."""
        self._roll(now)
        self.remaining = 0
        if self.resets_at is None:
            self.resets_at = now + self.window_s

    def _check(self, weight: int) -> None:
        if not 1 <= weight <= self.quota:
            raise ValueError(f"a request's weight must be within 1..{self.quota}, got {weight}")


class RateBudget:
    """Every pool's budget; a pool first met is given its documented quota, or the one its
    first answer states (until then, the smallest documented)."""

    def __init__(self, quotas: Mapping[str, int] = POOL_QUOTAS) -> None:
        self._quotas = dict(quotas)
        self.pools: dict[str, PoolBudget] = {}
        self.bad_headers = 0
        self.refusals = 0

    def pool(self, name: str) -> PoolBudget:
        budget = self.pools.get(name)
        if budget is None:
            quota = self._quotas.get(name, min(self._quotas.values()))
            budget = self.pools[name] = PoolBudget(quota)
        return budget

    def take(self, pool: str, weight: int, now: float) -> float:
        return self.pool(pool).take(weight, now)

    def observe(self, pool: str, headers: Mapping[str, str], now: float) -> None:
        """An answer's ``gw-ratelimit-*`` headers (names without regard to case)."""
        lowered = {name.lower(): value for name, value in headers.items()}
        texts = [lowered.get(name) for name in (HEADER_LIMIT, HEADER_REMAINING, HEADER_RESET)]
        if all(text is None for text in texts):
            return  # an answer without them (an error page): nothing said
        if not all(text is not None and text.isascii() and text.isdigit() for text in texts):
            self.bad_headers += 1
            return
        limit, remaining, reset_ms = (int(text) for text in texts if text is not None)
        if limit < 1:
            self.bad_headers += 1
            return
        self.pool(pool).observe(limit, remaining, reset_ms / 1000, now)

    def refused(self, pool: str, now: float) -> None:
        self.refusals += 1
        self.pool(pool).refused(now)
