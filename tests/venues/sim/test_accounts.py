"""Tests of the simulator's accounts: positions, entry prices, closed PnL, fees and margin."""

from __future__ import annotations

import attrs
import pytest

from mm.venues.sim.accounts import DEFAULT_LEVERAGE, Account, FillOutcome, Position
from mm.venues.sim.assets import AssetSpec

BTC = AssetSpec(0, "BTC", 5)
ETH = AssetSpec(1, "ETH", 4)
SPECS = [BTC, ETH]
RATE = 0.0005


def px(price: float) -> int:
    """ETH price ticks."""
    return round(price * 100)


def lots(size: float) -> int:
    """ETH size lots."""
    return round(size * 10_000)


def fill(
    account: Account, is_buy: bool, price: float, size: float, rate: float = RATE
) -> FillOutcome:
    return account.apply_fill(ETH, is_buy, px(price), lots(size), rate)


def position(account: Account) -> Position:
    return account.positions[ETH.index]


def test_open_long() -> None:
    account = Account("a", usdc=1000.0)
    outcome = fill(account, True, 3000.0, 1.0)
    assert attrs.evolve(outcome, fee=0.0) == FillOutcome(0, "Open Long", 0.0, 0.0)
    assert outcome.fee == pytest.approx(1.5)
    assert position(account).szi == lots(1.0)
    assert position(account).entry_px(ETH) == pytest.approx(3000.0)
    assert account.usdc == pytest.approx(1000.0 - 1.5)
    assert account.cum_volume == pytest.approx(3000.0)


def test_increase_long_averages_the_entry() -> None:
    account = Account("a")
    fill(account, True, 3000.0, 1.0)
    outcome = fill(account, True, 3100.0, 1.0)
    assert outcome.start_position == lots(1.0)
    assert outcome.direction == "Open Long"
    assert outcome.closed_pnl == 0.0
    assert position(account).szi == lots(2.0)
    assert position(account).entry_px(ETH) == pytest.approx(3050.0)


def test_reduce_and_close_long() -> None:
    account = Account("a")
    fill(account, True, 3000.0, 1.0)
    fill(account, True, 3100.0, 1.0)
    usdc = account.usdc
    reduce = fill(account, False, 3200.0, 0.5)
    assert reduce.start_position == lots(2.0)
    assert reduce.direction == "Close Long"
    assert reduce.closed_pnl == pytest.approx(75.0)  # (3200 - 3050) x 0.5
    assert reduce.fee == pytest.approx(3200.0 * 0.5 * RATE)
    assert account.usdc == pytest.approx(usdc + 75.0 - reduce.fee)
    assert position(account).szi == lots(1.5)
    assert position(account).entry_px(ETH) == pytest.approx(3050.0)  # unchanged by a reduction
    close = fill(account, False, 3000.0, 1.5)
    assert close.start_position == lots(1.5)
    assert close.direction == "Close Long"
    assert close.closed_pnl == pytest.approx(-75.0)  # (3000 - 3050) x 1.5
    assert position(account).szi == 0
    assert position(account).entry_ntl == 0.0
    assert position(account).entry_px(ETH) == 0.0


def test_open_increase_reduce_and_close_short() -> None:
    account = Account("a")
    opened = fill(account, False, 3000.0, 1.0)
    assert (opened.start_position, opened.direction) == (0, "Open Short")
    increased = fill(account, False, 2900.0, 1.0)
    assert (increased.start_position, increased.direction) == (-lots(1.0), "Open Short")
    assert position(account).szi == -lots(2.0)
    assert position(account).entry_px(ETH) == pytest.approx(2950.0)
    reduced = fill(account, True, 2850.0, 0.5)
    assert (reduced.start_position, reduced.direction) == (-lots(2.0), "Close Short")
    assert reduced.closed_pnl == pytest.approx(50.0)  # (2950 - 2850) x 0.5
    assert position(account).entry_px(ETH) == pytest.approx(2950.0)
    closed = fill(account, True, 3050.0, 1.5)
    assert (closed.start_position, closed.direction) == (-lots(1.5), "Close Short")
    assert closed.closed_pnl == pytest.approx(-150.0)  # (2950 - 3050) x 1.5
    assert position(account).szi == 0


def test_flip_long_to_short() -> None:
    account = Account("a")
    fill(account, True, 3000.0, 1.0)
    outcome = fill(account, False, 3100.0, 3.0)
    assert outcome.start_position == lots(1.0)
    assert outcome.direction == "Long > Short"
    assert outcome.closed_pnl == pytest.approx(100.0)  # only the closed 1.0 realizes
    assert outcome.fee == pytest.approx(3100.0 * 3.0 * RATE)  # the fee is on the whole fill
    assert position(account).szi == -lots(2.0)
    assert position(account).entry_px(ETH) == pytest.approx(3100.0)  # opens at the fill price


def test_flip_short_to_long() -> None:
    account = Account("a")
    fill(account, False, 3000.0, 2.0)
    outcome = fill(account, True, 2900.0, 2.5)
    assert outcome.start_position == -lots(2.0)
    assert outcome.direction == "Short > Long"
    assert outcome.closed_pnl == pytest.approx(200.0)
    assert position(account).szi == lots(0.5)
    assert position(account).entry_px(ETH) == pytest.approx(2900.0)
    back = fill(account, False, 2950.0, 0.5)
    assert back.direction == "Close Long"
    assert back.closed_pnl == pytest.approx(25.0)


def test_taker_fee_is_paid() -> None:
    account = Account("a", usdc=100.0)
    outcome = fill(account, True, 3000.0, 1.0, rate=0.00045)
    assert outcome.fee == pytest.approx(1.35)
    assert outcome.fee > 0
    assert account.usdc == pytest.approx(98.65)


def test_negative_maker_rate_is_a_rebate() -> None:
    account = Account("a", usdc=100.0)
    outcome = fill(account, True, 3000.0, 1.0, rate=-0.0001)
    assert outcome.fee == pytest.approx(-0.3)
    assert account.usdc == pytest.approx(100.3)


def test_positions_are_per_asset() -> None:
    account = Account("a")
    account.apply_fill(BTC, True, 500000, 100, RATE)  # 0.001 BTC at 50000
    fill(account, False, 3000.0, 1.0)
    assert account.positions[BTC.index].szi == 100
    assert account.positions[BTC.index].entry_px(BTC) == pytest.approx(50000.0)
    assert position(account).szi == -lots(1.0)
    assert account.position(7).szi == 0  # created on demand, flat


def test_account_value_includes_unrealized_pnl_at_the_marks() -> None:
    account = Account("a", usdc=10_000.0)
    account.apply_fill(BTC, True, 500000, 10_000, 0.0)  # long 0.1 BTC at 50000
    fill(account, False, 3000.0, 2.0, rate=0.0)  # short 2 ETH at 3000
    marks = {BTC.index: 51000.0, ETH.index: 2900.0}
    assert position(account).unrealized(ETH, 2900.0) == pytest.approx(200.0)
    assert account.positions[BTC.index].unrealized(BTC, 51000.0) == pytest.approx(100.0)
    assert account.account_value(SPECS, marks) == pytest.approx(10_000.0 + 100.0 + 200.0)
    # An asset without a mark adds nothing.
    assert account.account_value(SPECS, {ETH.index: 3100.0}) == pytest.approx(10_000.0 - 200.0)
    assert account.account_value(SPECS, {}) == pytest.approx(10_000.0)


def test_margin_used_at_the_marks_and_leverage() -> None:
    account = Account("a", usdc=10_000.0)
    account.apply_fill(BTC, True, 500000, 10_000, 0.0)  # long 0.1 BTC
    fill(account, False, 3000.0, 2.0, rate=0.0)  # short 2 ETH
    marks = {BTC.index: 51000.0, ETH.index: 2900.0}
    assert account.leverage_for(BTC.index) == DEFAULT_LEVERAGE
    expected = 0.1 * 51000.0 / DEFAULT_LEVERAGE + 2.0 * 2900.0 / DEFAULT_LEVERAGE
    assert account.margin_used(SPECS, marks) == pytest.approx(expected)
    account.leverage[ETH.index] = 5
    expected = 0.1 * 51000.0 / DEFAULT_LEVERAGE + 2.0 * 2900.0 / 5
    assert account.margin_used(SPECS, marks) == pytest.approx(expected)
    assert account.margin_used(SPECS, {}) == 0.0
    fill(account, True, 2900.0, 2.0, rate=0.0)  # flat ETH uses no margin
    assert account.margin_used(SPECS, marks) == pytest.approx(0.1 * 51000.0 / DEFAULT_LEVERAGE)
