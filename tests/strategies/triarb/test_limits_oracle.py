"""The limiter against the one it replaced (kept here as the oracle): the desk built a dict of
the triangle's currencies' balances as decimals before every triangle and the limiter read it;
now the limiter reads a currency's balance only when it has an inventory limit, and converts
it itself. Same answers (reason, subject and words) and the same count in the rate window, on
any balances, limits, recorded outcomes and board."""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Mapping
from decimal import Decimal

from hypothesis import given, settings
from hypothesis import strategies as st

from mm.execution.permissions import ALLOWED, Level, Permission
from mm.strategies.triarb.limits import (
    DAY_MS,
    WINDOW_MS,
    Breach,
    Limiter,
    Reason,
    TriangleLimits,
)
from mm.strategies.triarb.triangles import Evaluation
from tests.strategies.triarb.test_limits import NOON_MS, TRIANGLE, hand

_ZERO = Decimal(0)


class OldLimiter:
    """``Limiter`` as it was (a7a688d), fed the balances as the desk made them then."""

    def __init__(self, limits: TriangleLimits) -> None:
        self._inventory = {c: Decimal(repr(a)) for c, a in limits.inventory.items()}
        self._loss_limits = {c: Decimal(repr(a)) for c, a in limits.max_daily_loss.items()}
        self._max_rate = limits.max_triangles_per_minute
        self._day: int | None = None
        self._profit: dict[str, Decimal] = {}
        self._started: deque[int] = deque()

    @staticmethod
    def desk_balances(
        evaluation: Evaluation, held: Callable[[str], float], limited: bool
    ) -> Mapping[str, Decimal]:
        """The old desk's ``_admit``: the triangle's currencies held, as decimals, when an
        inventory limit reads them."""
        if not limited:
            return {}
        return {
            currency: Decimal(repr(amount))
            for currency in evaluation.triangle.currencies
            if (amount := held(currency)) != 0.0
        }

    def record(self, primary: str, profit: Decimal, now_ms: int) -> None:
        day = now_ms // DAY_MS
        if self._day is not None and day < self._day:
            return
        self._roll(day)
        self._profit[primary] = self._profit.get(primary, Decimal(0)) + profit

    def daily_loss(self, primary: str, now_ms: int) -> Decimal:
        self._roll(now_ms // DAY_MS)
        return max(_ZERO, -self._profit.get(primary, _ZERO))

    def started_in_window(self, now_ms: int) -> int:
        started = self._started
        while started and started[0] <= now_ms - WINDOW_MS:
            started.popleft()
        return len(started)

    def admit(
        self,
        evaluation: Evaluation,
        balances: Mapping[str, Decimal],
        now_ms: int,
        permission: Callable[[str], Permission] | None = None,
    ) -> Breach | None:
        breach = self.check(evaluation, balances, now_ms, permission)
        if breach is None:
            self._started.append(now_ms)
        return breach

    def check(
        self,
        evaluation: Evaluation,
        balances: Mapping[str, Decimal],
        now_ms: int,
        permission: Callable[[str], Permission] | None = None,
    ) -> Breach | None:
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
        if not self._inventory:
            return None
        first = evaluation.legs[0]
        for number, result in enumerate(evaluation.legs, 1):
            currency = result.leg.target
            limit = self._inventory.get(currency)
            if limit is None:
                continue
            held = balances.get(currency, Decimal(0)) + result.received
            if number == 3:
                held -= first.spent
            if held > limit:
                return Breach(Reason.INVENTORY, currency, f"would hold {held} > {limit}")
        return None

    def _roll(self, day: int) -> None:
        if self._day is None or day > self._day:
            self._day = day
            self._profit.clear()


CURRENCIES = ("USDT", "BTC", "ETH", "SOL")
# Balances as the portfolio keeps them: floats moved by fills, so of any digits, zero and
# negative zero included (the old desk left a zero out; the limiter reads it as 0).
floats = st.one_of(
    st.sampled_from([0.0, -0.0, 1e-9, 0.001, 0.002, 999.5, 1e6]),
    st.floats(-5.0, 5.0, allow_nan=False),
    st.floats(0.0, 2_000.0, allow_nan=False).map(lambda x: round(x, 3)),
)
# Of any number of places, whole ones included: a sum's exponent shows in a breach's words.
amounts = st.one_of(
    st.decimals(Decimal("0.0001"), Decimal("200"), places=4),
    st.decimals(Decimal("0.1"), Decimal("200"), places=1),
    st.integers(1, 200).map(Decimal),
).map(str)
limits_of = st.dictionaries(
    st.sampled_from(CURRENCIES), st.floats(0.0001, 1_000.0, allow_nan=False), max_size=4
)


@st.composite
def evaluations(draw: st.DrawFn) -> Evaluation:
    spent = (draw(amounts), draw(amounts), draw(amounts))
    received = (draw(amounts), draw(amounts), draw(amounts))
    return hand(TRIANGLE, spent, received)


@st.composite
def steps(draw: st.DrawFn) -> tuple[Evaluation, dict[str, float], int, Decimal | None, str]:
    """One triangle: its evaluation, the balances then, ms since the last step, an outcome to
    record before it (a profit or loss in USDT, or none), and a symbol the board holds."""
    balances = draw(st.fixed_dictionaries({c: floats for c in CURRENCIES}))
    profit = draw(st.none() | st.decimals(Decimal("-20"), Decimal("20"), places=2))
    closed = draw(st.sampled_from(["", "", "", *TRIANGLE.symbols]))
    return draw(evaluations()), balances, draw(st.integers(0, 40_000)), profit, closed


@settings(max_examples=400, deadline=None)
@given(
    limits_of,
    st.sampled_from([{"USDT": 25.0}, {"USDT": 5.0}, {"USDC": 10.0}]),
    st.integers(1, 6),
    st.lists(steps(), min_size=1, max_size=25),
)
def test_the_limiter_answers_as_the_old_one_on_any_balances_and_state(
    inventory: dict[str, float],
    max_daily_loss: dict[str, float],
    rate: int,
    sequence: list[tuple[Evaluation, dict[str, float], int, Decimal | None, str]],
) -> None:
    limits = TriangleLimits(
        inventory=inventory, max_daily_loss=max_daily_loss, max_triangles_per_minute=rate
    )
    new, old = Limiter(limits), OldLimiter(limits)
    now = NOON_MS
    for evaluation, balances, step, profit, closed in sequence:
        now += step
        if profit is not None:
            new.record("USDT", profit, now)
            old.record("USDT", profit, now)

        def permission(symbol: str, closed: str = closed) -> Permission:
            return Permission(Level.PULLED, "pulled") if symbol == closed else ALLOWED

        held = balances.__getitem__
        expected = old.admit(
            evaluation, OldLimiter.desk_balances(evaluation, held, bool(inventory)), now, permission
        )
        assert new.admit(evaluation, held, now, permission) == expected
        assert new.started_in_window(now) == old.started_in_window(now)
        assert new.daily_loss("USDT", now) == old.daily_loss("USDT", now)
