"""Triangle risk limits: whether a triangle may start now. Pure.

``TriangleLimits`` is the configuration (``setting(default, check)`` fields, each check naming
its key: ``triarb.limits.max_triangles_per_minute: must be >= 1, got 0``):

- ``inventory``: per currency, the most of it that may be held (in that currency). A currency
  not named is not limited here (a triangle's holdings are bounded by its start volume anyway);
- ``max_daily_loss``: per primary quote currency, the most the day's triangles may lose in it.
  A loss is kept per primary (a loss in BTC and one in USDT do not add up), and a triangle whose
  primary has no limit never starts (``NO_LOSS_LIMIT``): an unbounded loss is not a default.
  ``problems(primaries)`` finds such a primary when the configuration is loaded;
- ``max_triangles_per_minute``: the most triangles started in any rolling 60 s.

The defaults are safe to start from with the ``[triarb]`` defaults (primary USDT): no
inventory limit beyond the start volume, 50 USDT of daily loss, 30 triangles a minute.

``Limiter`` is the checker over that configuration. ``admit(evaluation, held, now_ms)``
grants a triangle (``None``) and counts it as started in the rate window, or returns the
``Breach`` that refuses it and changes nothing; ``check`` is the same answer without counting.
Checked in this order, the first that holds is the answer:

1. ``BOARD``: with a ``permission`` reader (the permission board's ``permission``), a symbol of
   the triangle that is not ``OPEN`` (the kill switch, the autonomy mode, the session gate, the
   service's stop, risk: a triangle's legs open new holdings, so reduce-only refuses it too);
2. ``NO_LOSS_LIMIT`` and ``DAILY_LOSS``: the day's realised loss in the triangle's primary has
   reached its limit (``>=``). The loss is fed from outcomes: ``record(primary, profit, now_ms)``
   with each ended triangle's profit in its primary (a gain offsets a loss: the day's loss is
   the negative of the day's net profit, when negative). The day is the UTC calendar day of the
   injected clock (``now_ms``, epoch ms): at 00:00 UTC every primary's figure starts again at
   zero; an outcome recorded with a time of an earlier day changes nothing;
3. ``RATE``: the triangles admitted in the last 60 s (``(now - 60 s, now]``) have reached the
   maximum, so no 60 s window ever holds more than the maximum;
4. ``INVENTORY``: a leg would leave more of its target currency held than its limit: what the
   balances hold of it, plus what the leg receives (the evaluation's ``received``), less what
   an earlier leg spends of it (only the primary is spent before it is received: the last leg's
   target is the balance of the primary less the first leg's ``spent`` plus the last leg's
   ``received``). ``held`` reads a currency's balance (the portfolio's: held now, in-flight
   triangles' holdings included; 0.0 for one not held), read as its shortest decimal form and
   only for a currency with a limit, once the checks before it have passed.

Call ``admit`` once a slot's claim on the triangle is granted and right before its first leg:
an admitted triangle counts toward the rate whether it fills or not.

Fails: ``ConfigError`` (through ``structure_section``) for a setting its check refuses.
``Limiter`` never raises on an evaluation or a finite balance: a limit reached is a
``Breach``.
"""

from __future__ import annotations

import enum
import math
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from decimal import Decimal

import attrs

from mm.execution.permissions import Level, Permission
from mm.settings import at_least, setting
from mm.strategies.triarb.triangles import Evaluation

__all__ = ["DAY_MS", "WINDOW_MS", "Breach", "Limiter", "Reason", "TriangleLimits"]

# The rate's rolling window, and a UTC day: epoch time has no leap seconds, so every UTC
# midnight is a whole multiple of a day's milliseconds.
WINDOW_MS = 60_000
DAY_MS = 86_400_000
_ZERO = Decimal(0)


def _amounts(value: Mapping[str, float]) -> str | None:
    """Each currency named, each amount finite and positive."""
    blank = sorted(currency for currency in value if not currency.strip())
    if blank:
        return f"currencies must not be empty, got {blank}"
    bad = {currency: amount for currency, amount in value.items() if not _positive(amount)}
    if bad:
        return f"each amount must be a finite number > 0, got {bad}"
    return None


def _positive(amount: float) -> bool:
    return math.isfinite(amount) and amount > 0


@attrs.frozen
class TriangleLimits:
    """The ``[triarb.limits]`` section (see the module)."""

    # The most of each currency that may be held, in that currency ({BTC = 0.01, ETH = 0.5});
    # a currency not named is not limited here.
    # (A table's default is made for each section, so these are ``setting``'s fields with a
    # factory: the same check metadata.)
    inventory: dict[str, float] = attrs.field(factory=dict, metadata={"check": _amounts})
    # The most the day's triangles may lose, per primary quote, in it ({USDT = 50}); a triangle
    # whose primary is not named never starts.
    max_daily_loss: dict[str, float] = attrs.field(
        factory=lambda: {"USDT": 50.0}, metadata={"check": _amounts}
    )
    # The most triangles started in any rolling 60 s.
    max_triangles_per_minute: int = setting(30, at_least(1))

    def problems(self, primaries: Iterable[str], path: str = "triarb.limits") -> list[str]:
        """``key: reason`` lines for each of ``primaries`` (the ``[triarb]`` section's) without
        a daily loss limit: its triangles would never start."""
        return [
            f"{path}.max_daily_loss: no limit for the primary {primary!r}"
            f" (its triangles would never start)"
            for primary in primaries
            if primary not in self.max_daily_loss
        ]


class Reason(enum.Enum):
    """Why a triangle may not start now."""

    BOARD = "permission board"
    NO_LOSS_LIMIT = "no daily loss limit for its primary"
    DAILY_LOSS = "daily loss limit reached"
    RATE = "triangle rate limit reached"
    INVENTORY = "inventory limit"


@attrs.frozen(slots=True)
class Breach:
    """A triangle refused: the ``reason``, what it is on (a symbol for ``BOARD``, a currency
    otherwise) and the figures (for people). A grant is ``None``: compare with it."""

    reason: Reason
    on: str
    detail: str = ""

    def __str__(self) -> str:
        detail = f" ({self.detail})" if self.detail else ""
        return f"{self.reason.value}: {self.on}{detail}"


class Limiter:
    """The limits' state: the day's profit per primary and the starts in the rate window (see
    the module)."""

    __slots__ = ("_day", "_inventory", "_loss_limits", "_max_rate", "_profit", "_started")

    def __init__(self, limits: TriangleLimits) -> None:
        self._inventory = {c: Decimal(repr(a)) for c, a in limits.inventory.items()}
        self._loss_limits = {c: Decimal(repr(a)) for c, a in limits.max_daily_loss.items()}
        self._max_rate = limits.max_triangles_per_minute
        self._day: int | None = None  # the UTC day (days since the epoch) the profits are of
        self._profit: dict[str, Decimal] = {}
        self._started: deque[int] = deque()

    def __repr__(self) -> str:
        return (
            f"Limiter(day={self._day}, profit={self._profit}, "
            f"started_in_window={len(self._started)})"
        )

    # --- outcomes ------------------------------------------------------------------------------

    def record(self, primary: str, profit: Decimal, now_ms: int) -> None:
        """An ended triangle's ``profit`` in its ``primary`` (negative: a loss) at ``now_ms``;
        one of an earlier day than the one kept changes nothing."""
        day = now_ms // DAY_MS
        if self._day is not None and day < self._day:
            return
        self._roll(day)
        self._profit[primary] = self._profit.get(primary, Decimal(0)) + profit

    def daily_loss(self, primary: str, now_ms: int) -> Decimal:
        """The day's realised loss in ``primary`` as of ``now_ms`` (0 when it made money)."""
        self._roll(now_ms // DAY_MS)
        return max(_ZERO, -self._profit.get(primary, _ZERO))

    def started_in_window(self, now_ms: int) -> int:
        """The triangles admitted in ``(now_ms - 60 s, now_ms]`` (and any after it)."""
        self._prune(now_ms)
        return len(self._started)

    # --- admission -----------------------------------------------------------------------------

    def admit(
        self,
        evaluation: Evaluation,
        held: Callable[[str], float],
        now_ms: int,
        permission: Callable[[str], Permission] | None = None,
    ) -> Breach | None:
        """Grant the triangle and count it as started (``None``), or the ``Breach`` that refuses
        it (counting nothing)."""
        breach = self.check(evaluation, held, now_ms, permission)
        if breach is None:
            self._started.append(now_ms)
        return breach

    def check(
        self,
        evaluation: Evaluation,
        held: Callable[[str], float],
        now_ms: int,
        permission: Callable[[str], Permission] | None = None,
    ) -> Breach | None:
        """What ``admit`` would answer, counting nothing."""
        triangle = evaluation.triangle
        if permission is not None:
            for symbol in triangle.symbols:
                granted = permission(symbol)
                if granted.level is not Level.OPEN:
                    return Breach(Reason.BOARD, symbol, f"{granted.level.name}: {granted.reason}")
        primary = triangle.primary
        limit = self._loss_limits.get(primary)
        if limit is None:
            return Breach(Reason.NO_LOSS_LIMIT, primary)
        loss = self.daily_loss(primary, now_ms)
        if loss >= limit:
            return Breach(Reason.DAILY_LOSS, primary, f"lost {loss} >= {limit}")
        started = self.started_in_window(now_ms)
        if started >= self._max_rate:
            return Breach(Reason.RATE, primary, f"{started} in 60 s >= {self._max_rate}")
        return self._inventory_breach(evaluation, held)

    def _inventory_breach(
        self, evaluation: Evaluation, held: Callable[[str], float]
    ) -> Breach | None:
        if not self._inventory:
            return None
        first = evaluation.legs[0]
        for number, result in enumerate(evaluation.legs, 1):
            currency = result.leg.target
            limit = self._inventory.get(currency)
            if limit is None:
                continue
            amount = held(currency)
            holding = (_ZERO if amount == 0.0 else Decimal(repr(amount))) + result.received
            if number == 3:  # the primary: the first leg spent some of it before
                holding -= first.spent
            if holding > limit:
                return Breach(Reason.INVENTORY, currency, f"would hold {holding} > {limit}")
        return None

    def _roll(self, day: int) -> None:
        if self._day is None or day > self._day:
            self._day = day
            self._profit.clear()

    def _prune(self, now_ms: int) -> None:
        started = self._started
        while started and started[0] <= now_ms - WINDOW_MS:
            started.popleft()
