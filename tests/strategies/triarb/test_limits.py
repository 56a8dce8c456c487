"""Triangle risk limits: inventory per currency, the day's loss per primary (reset at 00:00 UTC
on the injected clock), triangles per rolling minute and the permission board."""

from __future__ import annotations

import datetime
from collections.abc import Callable, Mapping
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mm.execution.permissions import ALLOWED, Level, Permission
from mm.model import Instrument, Side
from mm.settings import ConfigError, structure_section
from mm.strategies.triarb.legs import Leg, Triangle
from mm.strategies.triarb.limits import (
    DAY_MS,
    WINDOW_MS,
    Breach,
    Limiter,
    Reason,
    TriangleLimits,
)
from mm.strategies.triarb.triangles import BookView, Evaluation, LegResult, Terms, evaluate

D = Decimal
BUY_BTC = Leg("BTC-USDT", Side.BUY, "USDT", "BTC")
BUY_ETH = Leg("ETH-BTC", Side.BUY, "BTC", "ETH")
SELL_ETH = Leg("ETH-USDT", Side.SELL, "ETH", "USDT")
TRIANGLE = Triangle("USDT", (BUY_BTC, BUY_ETH, SELL_ETH))
USDC_TRIANGLE = Triangle(
    "USDC",
    (
        Leg("BTC-USDC", Side.BUY, "USDC", "BTC"),
        BUY_ETH,
        Leg("ETH-USDC", Side.SELL, "ETH", "USDC"),
    ),
)
# 2026-12-03T12:00:00Z: noon, half a day from either midnight.
NOON_MS = int(datetime.datetime(2026, 12, 3, 12, tzinfo=datetime.UTC).timestamp() * 1000)
MIDNIGHT_MS = int(datetime.datetime(2026, 12, 4, tzinfo=datetime.UTC).timestamp() * 1000)


def legs_of(
    triangle: Triangle, spent: tuple[str, str, str], received: tuple[str, str, str]
) -> tuple[LegResult, LegResult, LegResult]:
    first, second, third = (
        LegResult(leg, D(out), D(out), D(out), D(0), D(into), D(1))
        for leg, out, into in zip(triangle.legs, spent, received, strict=True)
    )
    return first, second, third


def hand(
    triangle: Triangle = TRIANGLE,
    spent: tuple[str, str, str] = ("100", "0.001", "0.03"),
    received: tuple[str, str, str] = ("0.001", "0.03", "101"),
) -> Evaluation:
    """USDT>BTC>ETH>USDT: 100 USDT buys 0.001 BTC, which buys 0.03 ETH, sold for 101 USDT."""
    legs = legs_of(triangle, spent, received)
    volume, final = legs[0].spent, legs[2].received
    bps = float((final - volume) / volume * 10_000)
    return Evaluation(triangle, volume, final, bps, legs, False, NOON_MS)


def limiter(**settings: Any) -> Limiter:
    return Limiter(TriangleLimits(**settings))


def holding(**amounts: float) -> Callable[[str], float]:
    """The portfolio's balances as the desk hands them to the limiter: 0.0 when not held."""
    return lambda currency: amounts.get(currency, 0.0)


NOTHING = holding()


def reason(answer: Breach | None) -> Reason:
    assert isinstance(answer, Breach), answer
    return answer.reason


# --- configuration -----------------------------------------------------------------------------


def parse(data: dict[str, Any]) -> TriangleLimits:
    return structure_section(data, TriangleLimits, "triarb.limits")


def test_an_empty_section_gives_the_documented_defaults() -> None:
    limits = parse({})
    assert limits == TriangleLimits()
    assert limits.inventory == {}
    assert limits.max_daily_loss == {"USDT": 50.0}
    assert limits.max_triangles_per_minute == 30
    assert limits.problems(["USDT"]) == []  # the [triarb] defaults' primary is limited


def test_a_full_section_is_read_as_given() -> None:
    limits = parse(
        {
            "inventory": {"BTC": 0.01, "ETH": 1},
            "max_daily_loss": {"USDT": 20, "BTC": 0.0005},
            "max_triangles_per_minute": 5,
        }
    )
    assert limits.inventory == {"BTC": 0.01, "ETH": 1.0}
    assert limits.max_daily_loss == {"USDT": 20.0, "BTC": 0.0005}
    assert limits.max_triangles_per_minute == 5


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"max_triangles_per_minute": 0}, "triarb.limits.max_triangles_per_minute: must be >= 1"),
        ({"inventory": {"BTC": 0}}, "triarb.limits.inventory: each amount must be a finite"),
        ({"inventory": {"BTC": -1.0}}, "triarb.limits.inventory: each amount must be a finite"),
        ({"inventory": {"": 1.0}}, "triarb.limits.inventory: currencies must not be empty"),
        ({"max_daily_loss": {"USDT": float("inf")}}, "triarb.limits.max_daily_loss: each"),
        ({"max_daily_loss": {"USDT": float("nan")}}, "triarb.limits.max_daily_loss: each"),
        ({"max_daily_loss": {"USDT": "50"}}, "triarb.limits.max_daily_loss"),
        ({"max_triangles_per_minute": 2.5}, "triarb.limits.max_triangles_per_minute"),
        ({"max_rate": 3}, "triarb.limits.max_rate: unknown key"),
    ],
)
def test_a_bad_setting_names_its_key(data: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError) as raised:
        parse(data)
    assert any(line.startswith(message) for line in raised.value.errors), raised.value.errors


def test_a_primary_without_a_loss_limit_is_named() -> None:
    limits = TriangleLimits(max_daily_loss={"USDT": 10.0})
    assert limits.problems(["USDT", "BTC"]) == [
        "triarb.limits.max_daily_loss: no limit for the primary 'BTC'"
        " (its triangles would never start)"
    ]


# --- inventory ---------------------------------------------------------------------------------


def test_a_triangle_within_every_limit_is_admitted() -> None:
    limits = limiter(inventory={"BTC": 0.002, "ETH": 0.05, "USDT": 1000.0})
    balances = holding(BTC=0.001, ETH=0.02, USDT=999.0)
    # BTC 0.001 + 0.001 = 0.002; ETH 0.02 + 0.03 = 0.05; USDT 999 - 100 + 101 = 1000.
    assert limits.admit(hand(), balances, NOON_MS) is None


@pytest.mark.parametrize(
    ("currency", "held", "limit", "would"),
    [
        ("BTC", 0.0011, 0.002, "0.0021"),  # the first leg's target
        ("ETH", 0.0201, 0.05, "0.0501"),  # the second leg's
        ("USDT", 999.5, 1000.0, "1000.5"),  # the primary: 999.5 - 100 + 101
    ],
)
def test_a_leg_that_would_hold_past_its_currencys_limit_refuses_the_triangle(
    currency: str, held: float, limit: float, would: str
) -> None:
    limits = limiter(inventory={currency: limit})
    breach = limits.admit(hand(), holding(**{currency: held}), NOON_MS)
    assert breach == Breach(Reason.INVENTORY, currency, f"would hold {would} > {D(repr(limit))}")
    assert limits.started_in_window(NOON_MS) == 0  # a refusal counts nothing


def test_a_currency_missing_from_the_balances_is_held_at_zero() -> None:
    assert limiter(inventory={"BTC": 0.001}).admit(hand(), NOTHING, NOON_MS) is None
    assert reason(limiter(inventory={"BTC": 0.0009}).admit(hand(), NOTHING, NOON_MS)) is (
        Reason.INVENTORY
    )


def test_a_currency_without_a_limit_is_not_limited() -> None:
    balances = holding(BTC=1e6, ETH=1e6, USDT=1e6)
    assert limiter(inventory={"SOL": 1.0}).admit(hand(), balances, NOON_MS) is None


def test_a_balance_is_read_only_for_a_limited_currency_once_the_other_limits_pass() -> None:
    read: list[str] = []

    def balances(currency: str) -> float:
        read.append(currency)
        return 0.0

    assert limiter().admit(hand(), balances, NOON_MS) is None
    assert read == []  # no inventory limit: no balance read
    assert limiter(inventory={"ETH": 1.0, "SOL": 1.0}).admit(hand(), balances, NOON_MS) is None
    assert read == ["ETH"]
    limits = limiter(inventory={"ETH": 1.0}, max_triangles_per_minute=1)
    assert limits.admit(hand(), balances, NOON_MS) is None
    assert reason(limits.admit(hand(), balances, NOON_MS)) is Reason.RATE
    assert read == ["ETH", "ETH"]  # the refused triangle read none


def test_the_first_leg_in_order_is_named_when_several_would_breach() -> None:
    limits = limiter(inventory={"ETH": 0.01, "BTC": 0.0001})
    assert limits.admit(hand(), NOTHING, NOON_MS) == Breach(
        Reason.INVENTORY, "BTC", "would hold 0.001 > 0.0001"
    )


def test_an_evaluated_triangle_is_limited_on_its_evaluated_amounts() -> None:
    instruments = {
        "BTC-USDT": Instrument(
            "kucoin", "BTC-USDT", "BTC", "USDT", D("0.1"), D("0.00001"), D(0), 0
        ),
        "ETH-BTC": Instrument(
            "kucoin", "ETH-BTC", "ETH", "BTC", D("0.00001"), D("0.0001"), D(0), 0
        ),
        "ETH-USDT": Instrument(
            "kucoin", "ETH-USDT", "ETH", "USDT", D("0.01"), D("0.0001"), D(0), 0
        ),
    }
    books = {
        "BTC-USDT": BookView(((49_990.0, 1.0, 1),), ((50_000.0, 1.0, 1),), NOON_MS),
        "ETH-BTC": BookView(((0.0399, 10.0, 1),), ((0.04, 10.0, 1),), NOON_MS),
        "ETH-USDT": BookView(((2_100.0, 10.0, 1),), ((2_101.0, 10.0, 1),), NOON_MS),
    }
    evaluated = evaluate(TRIANGLE, books, instruments, Terms(D(100), 500), NOON_MS)
    assert isinstance(evaluated, Evaluation), evaluated
    # 100 USDT buys 0.002 BTC at 50,000, which buys 0.05 ETH at 0.04.
    assert [leg.received for leg in evaluated.legs[:2]] == [D("0.002"), D("0.05")]
    assert limiter(inventory={"ETH": 0.05}).admit(evaluated, NOTHING, NOON_MS) is None
    assert limiter(inventory={"ETH": 0.0499}).admit(evaluated, NOTHING, NOON_MS) == Breach(
        Reason.INVENTORY, "ETH", "would hold 0.0500 > 0.0499"
    )


# --- the day's loss ----------------------------------------------------------------------------


def test_the_day_s_loss_refuses_once_it_reaches_the_limit() -> None:
    limits = limiter(max_daily_loss={"USDT": 10.0})
    limits.record("USDT", D("-6"), NOON_MS)
    assert limits.admit(hand(), NOTHING, NOON_MS + 1) is None
    limits.record("USDT", D("-3.99"), NOON_MS + 2)
    assert limits.daily_loss("USDT", NOON_MS + 2) == D("9.99")
    assert limits.admit(hand(), NOTHING, NOON_MS + 3) is None
    limits.record("USDT", D("-0.01"), NOON_MS + 4)  # exactly the limit: reached
    assert limits.admit(hand(), NOTHING, NOON_MS + 5) == Breach(
        Reason.DAILY_LOSS, "USDT", "lost 10.00 >= 10.0"
    )


def test_a_gain_offsets_the_day_s_losses() -> None:
    limits = limiter(max_daily_loss={"USDT": 10.0})
    limits.record("USDT", D("-12"), NOON_MS)
    assert reason(limits.admit(hand(), NOTHING, NOON_MS)) is Reason.DAILY_LOSS
    limits.record("USDT", D("3"), NOON_MS + 1)
    assert limits.daily_loss("USDT", NOON_MS + 1) == D(9)
    assert limits.admit(hand(), NOTHING, NOON_MS + 1) is None
    limits.record("USDT", D("50"), NOON_MS + 2)
    assert limits.daily_loss("USDT", NOON_MS + 2) == 0  # a day in profit has lost nothing


def test_losses_are_kept_per_primary() -> None:
    limits = limiter(max_daily_loss={"USDT": 10.0, "USDC": 10.0})
    limits.record("USDC", D("-10"), NOON_MS)
    assert limits.admit(hand(), NOTHING, NOON_MS) is None
    assert limits.admit(hand(USDC_TRIANGLE), NOTHING, NOON_MS) == Breach(
        Reason.DAILY_LOSS, "USDC", "lost 10 >= 10.0"
    )


def test_a_primary_without_a_loss_limit_never_starts() -> None:
    limits = limiter(max_daily_loss={"USDC": 10.0})
    assert limits.admit(hand(), NOTHING, NOON_MS) == Breach(Reason.NO_LOSS_LIMIT, "USDT")


def test_the_day_ends_at_utc_midnight() -> None:
    limits = limiter(max_daily_loss={"USDT": 10.0})
    limits.record("USDT", D("-10"), NOON_MS)
    assert reason(limits.admit(hand(), NOTHING, MIDNIGHT_MS - 1)) is Reason.DAILY_LOSS
    assert limits.admit(hand(), NOTHING, MIDNIGHT_MS) is None  # a new day, a new budget
    assert limits.daily_loss("USDT", MIDNIGHT_MS) == 0


def test_an_outcome_of_an_earlier_day_does_not_count_on_the_new_one() -> None:
    limits = limiter(max_daily_loss={"USDT": 10.0})
    assert limits.admit(hand(), NOTHING, MIDNIGHT_MS) is None
    limits.record("USDT", D("-10"), MIDNIGHT_MS - 1)  # ended yesterday, told late
    assert limits.daily_loss("USDT", MIDNIGHT_MS) == 0
    assert limits.admit(hand(), NOTHING, MIDNIGHT_MS + 1) is None


def test_an_outcome_of_a_later_day_starts_it() -> None:
    limits = limiter(max_daily_loss={"USDT": 10.0})
    limits.record("USDT", D("-9"), NOON_MS)
    limits.record("USDT", D("-9"), MIDNIGHT_MS + 5)  # the day before is forgotten
    assert limits.daily_loss("USDT", MIDNIGHT_MS + 5) == D(9)
    assert limits.admit(hand(), NOTHING, MIDNIGHT_MS + 6) is None


def test_midnight_is_a_whole_number_of_days_since_the_epoch() -> None:
    assert MIDNIGHT_MS % DAY_MS == 0
    assert MIDNIGHT_MS - NOON_MS == DAY_MS // 2


# --- the rate ----------------------------------------------------------------------------------


def test_the_rate_refuses_the_triangle_past_the_maximum_in_60_s() -> None:
    limits = limiter(max_triangles_per_minute=3)
    for offset in (0, 10_000, 20_000):
        assert limits.admit(hand(), NOTHING, NOON_MS + offset) is None
    assert limits.admit(hand(), NOTHING, NOON_MS + 59_999) == Breach(
        Reason.RATE, "USDT", "3 in 60 s >= 3"
    )
    # 60 s after the first start it has left the window: one more may start.
    assert limits.admit(hand(), NOTHING, NOON_MS + WINDOW_MS) is None
    assert reason(limits.admit(hand(), NOTHING, NOON_MS + WINDOW_MS)) is Reason.RATE
    assert limits.started_in_window(NOON_MS + WINDOW_MS) == 3


def test_a_check_counts_nothing() -> None:
    limits = limiter(max_triangles_per_minute=1)
    assert limits.check(hand(), NOTHING, NOON_MS) is None
    assert limits.check(hand(), NOTHING, NOON_MS) is None
    assert limits.started_in_window(NOON_MS) == 0
    assert limits.admit(hand(), NOTHING, NOON_MS) is None
    assert reason(limits.check(hand(), NOTHING, NOON_MS)) is Reason.RATE


def test_triangles_refused_for_another_reason_do_not_use_the_rate() -> None:
    limits = limiter(max_triangles_per_minute=1, inventory={"BTC": 0.0001})
    for offset in range(5):
        assert reason(limits.admit(hand(), NOTHING, NOON_MS + offset)) is Reason.INVENTORY
    assert reason(limits.admit(hand(USDC_TRIANGLE), NOTHING, NOON_MS + 5)) is Reason.NO_LOSS_LIMIT
    assert limits.started_in_window(NOON_MS + 5) == 0
    smaller = hand(received=("0.0001", "0.003", "101"))  # holds no more BTC than its limit
    assert limits.admit(smaller, NOTHING, NOON_MS + 6) is None
    assert reason(limits.admit(smaller, NOTHING, NOON_MS + 7)) is Reason.RATE


# --- the permission board ----------------------------------------------------------------------


@pytest.mark.parametrize("level", [Level.REDUCE_ONLY, Level.PULLED, Level.HALTED])
def test_a_symbol_the_board_does_not_leave_open_refuses_the_triangle(level: Level) -> None:
    closed = {"ETH-BTC": Permission(level, "session closed")}

    def permission(symbol: str) -> Permission:
        return closed.get(symbol, ALLOWED)

    limits = limiter(max_daily_loss={"USDC": 1.0})  # the board is asked first
    assert limits.admit(hand(), NOTHING, NOON_MS, permission) == Breach(
        Reason.BOARD, "ETH-BTC", f"{level.name}: session closed"
    )
    assert limits.started_in_window(NOON_MS) == 0


def test_an_open_board_admits() -> None:
    asked: list[str] = []

    def permission(symbol: str) -> Permission:
        asked.append(symbol)
        return ALLOWED

    assert limiter().admit(hand(), NOTHING, NOON_MS, permission) is None
    assert asked == list(TRIANGLE.symbols)


# --- properties --------------------------------------------------------------------------------


@given(
    st.integers(1, 5),
    st.lists(st.integers(0, 150_000), min_size=1, max_size=60),
)
def test_admitted_triangles_never_exceed_the_rate_in_any_60_s(
    maximum: int, steps: list[int]
) -> None:
    limits = limiter(max_triangles_per_minute=maximum)
    now, admitted = NOON_MS, list[int]()
    for step in steps:
        now += step
        earlier = sum(1 for t in admitted if t > now - WINDOW_MS)
        answer = limits.admit(hand(), NOTHING, now)
        assert (answer is None) == (earlier < maximum)  # refused only when the window is full
        if answer is None:
            admitted.append(now)
    for start in admitted:
        assert sum(1 for t in admitted if start <= t < start + WINDOW_MS) <= maximum


CURRENCIES = ("USDT", "BTC", "ETH")
amounts = st.decimals(D("0.001"), D("2"), places=3)


@st.composite
def triangles_amounts(draw: st.DrawFn) -> Evaluation:
    spent = (str(draw(amounts)), str(draw(amounts)), str(draw(amounts)))
    received = (str(draw(amounts)), str(draw(amounts)), str(draw(amounts)))
    return hand(TRIANGLE, spent, received)


def apply(balances: dict[str, Decimal], evaluation: Evaluation) -> list[tuple[str, Decimal]]:
    """Run the triangle's legs as evaluated on ``balances``: each leg's target currency and
    what is held of it after the leg."""
    after = []
    for result in evaluation.legs:
        balances[result.leg.source] -= result.spent
        balances[result.leg.target] += result.received
        after.append((result.leg.target, balances[result.leg.target]))
    return after


@given(
    st.fixed_dictionaries({c: st.decimals(D("0.5"), D("5"), places=2) for c in CURRENCIES}),
    st.lists(triangles_amounts(), min_size=1, max_size=20),
)
def test_admitted_triangles_never_push_a_currency_past_its_limit(
    inventory: Mapping[str, Decimal], evaluations: list[Evaluation]
) -> None:
    limits = limiter(
        inventory={c: float(limit) for c, limit in inventory.items()},
        max_triangles_per_minute=1_000,
    )
    balances = dict.fromkeys(CURRENCIES, D(0))
    balances["USDT"] = D(3)  # funds to start from: within the USDT limit or past it
    for evaluation in evaluations:
        answer = limits.admit(evaluation, lambda c: float(balances[c]), NOON_MS)
        held = apply(dict(balances), evaluation)
        past = [c for c, amount in held if amount > inventory[c]]
        assert (answer is None) == (not past), (answer, held)
        if answer is None:
            apply(balances, evaluation)
