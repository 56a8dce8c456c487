"""The order budget shared by every symbol: which orders go first, and who gets the next tokens.

The venue's order budget (a token bucket: ``rate_limit.order_tokens_per_second``, burst
``rate_limit.order_burst``; a place or a modify spends one token, a cancel none) is one for
the account, shared by every symbol. When a symbol's plan wants more places and modifies than
the tokens there are, the policy here says which of its orders go now and which wait, and when
several symbols wait, which of them gets the tokens as they come.

The policy (the ``[executor.budget]`` section of config.toml):

- **Within a symbol** (``rank``): the top of the book first, level by level; at one level the
  side that reduces the position first when the symbol's inventory is high (at least
  ``high_inventory_ratio`` of the strategy's position limit), then the other side; at one level
  and side a missing order (a place) before moving one that rests (a modify).
- **Across symbols** (``divide``): ``T`` tokens for ``n`` symbols waiting are given in two
  passes. First the share: each symbol gets ``min(its demand, T // n)`` of its own top orders,
  so no symbol is starved by another's deep ladder. Then what is left, one token at a time, to
  the best order left of any symbol: the lower level first (top of book before depth, whoever's
  book it is), then the symbol given fewer tokens in this division, then the one served longest
  ago (never served: first), then the symbol's name. With fewer tokens than symbols waiting
  (the steady state under budget pressure: one token every half second at the shipped rate),
  every token goes to a top-of-book order, and the symbols take turns.
- A symbol that has to wait does not hold the plan it made: when its tokens come it plans
  again from its latest ladder and book (``mm.execution.slots``), and a plan older than the
  symbol's latest book by more than ``max_plan_age_s`` (one budget interval at the shipped
  rate) is never sent: the strategy is asked for a fresh one.

Pure: no I/O, no clock; ``BudgetDesk`` in ``mm.execution.slots`` is the shell around it.
Nothing here raises on any input: a negative budget grants nothing.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import attrs

from mm.model import DesiredOrder, Side
from mm.settings import non_negative, positive, setting


def _ratio(value: float) -> str | None:
    return None if 0 < value <= 1 else f"must be > 0 and <= 1, got {value!r}"


@attrs.frozen
class BudgetConfig:
    """The ``[executor.budget]`` section: how the shared order budget is divided."""

    # Inventory (|position| x mid) at or above this fraction of the strategy's position limit
    # is high: the reducing side's orders go first at each level.
    high_inventory_ratio: float = setting(0.5, _ratio)
    # How often (seconds) the budget is looked at again while a symbol waits for tokens.
    poll_s: float = setting(0.05, positive)
    # A plan older than its symbol's latest book by more than this (seconds) is not sent: the
    # strategy is asked to plan again (one budget interval at the shipped 2 orders/s).
    max_plan_age_s: float = setting(0.5, non_negative)


@attrs.frozen(slots=True, order=True)
class Want:
    """One place or modify a symbol wants, as the policy ranks it (lower sorts first)."""

    level: int
    side_rank: int  # 0: the reducing side while inventory is high, else 1
    kind: int  # 0: a place (a missing order), 1: a modify (moving one that rests)


def want(desired: DesiredOrder, *, modify: bool, reducing: Side | None) -> Want:
    """How ``desired`` ranks; ``reducing`` is the side that reduces a high inventory (None:
    inventory is not high, both sides rank alike)."""
    side_rank = 0 if reducing is None or desired.side is reducing else 1
    return Want(max(desired.level, 0), side_rank, 1 if modify else 0)


def reducing_side(position: float, notional: float, limit: float, ratio: float) -> Side | None:
    """The side that reduces ``position`` when its ``notional`` (USD) is at least ``ratio`` of
    ``limit``; None when inventory is not high (or there is no limit)."""
    if position == 0 or limit <= 0 or abs(notional) < ratio * limit:
        return None
    return Side.SELL if position > 0 else Side.BUY


def rank(wants: Sequence[Want]) -> list[int]:
    """The indices of ``wants`` in the order they get tokens (stable for equal ranks)."""
    return sorted(range(len(wants)), key=lambda i: wants[i])


def divide(
    tokens: int, demands: Mapping[str, Sequence[Want]], last_served: Mapping[str, float]
) -> dict[str, int]:
    """How many of its top orders each symbol may send of ``tokens``; ``demands`` holds each
    waiting symbol's wants, best first (as ``rank`` orders them), ``last_served`` when each was
    last given tokens. Every symbol of ``demands`` is in the answer (0: it waits)."""
    grants = dict.fromkeys(demands, 0)
    left = max(tokens, 0)
    waiting = [coin for coin, wants in demands.items() if wants]
    if not waiting or not left:
        return grants
    share = left // len(waiting)
    for coin in waiting:
        grants[coin] = min(len(demands[coin]), share)
        left -= grants[coin]
    while left > 0:
        best: tuple[int, int, float, str] | None = None
        for coin in waiting:
            wants, given = demands[coin], grants[coin]
            if given < len(wants):
                key = (wants[given].level, given, last_served.get(coin, -math.inf), coin)
                if best is None or key < best:
                    best = key
        if best is None:
            break
        grants[best[3]] += 1
        left -= 1
    return grants
