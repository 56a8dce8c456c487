"""The simulator's KuCoin spot accounts: what orders freeze, what trades move, and that no
currency is ever made or lost."""

from __future__ import annotations

from collections.abc import Callable, Hashable
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mm.venues.sim.kucoin.ledger import FEES, Balance, LedgerError, SpotLedger

D = Decimal
TAKER = D("0.001")
MAKER = D("0.0008")


def btc_trade(
    ledger: SpotLedger,
    buy: Hashable,
    sell: Hashable,
    price: Decimal,
    size: Decimal,
    buy_rate: Decimal = TAKER,
    sell_rate: Decimal = MAKER,
) -> tuple[Decimal, Decimal]:
    """A BTC-USDT trade between two orders."""
    return ledger.settle(
        buy=buy,
        sell=sell,
        base="BTC",
        quote="USDT",
        price=price,
        size=size,
        buy_fee_rate=buy_rate,
        sell_fee_rate=sell_rate,
    )


def funded() -> SpotLedger:
    ledger = SpotLedger()
    for user in ("alice", "bob"):
        ledger.fund(user, "USDT", D(100_000))
        ledger.fund(user, "BTC", D(1))
    return ledger


def test_a_limit_buy_freezes_its_notional_and_fee_and_a_better_price_comes_back() -> None:
    ledger = funded()
    per_unit = D(60_000) * (1 + TAKER)
    assert ledger.hold("buy-1", "alice", "USDT", per_unit * D("0.5"), per_unit)
    assert ledger.balance("alice", "USDT").holds == D("30030")
    assert ledger.balance("alice", "USDT").available == D("69970")
    assert ledger.hold("sell-1", "bob", "BTC", D("0.2"))
    fees = btc_trade(ledger, "buy-1", "sell-1", D(59_000), D("0.2"), TAKER, MAKER)
    assert fees == (D("11.8"), D("9.44"))
    alice, bob = ledger.balance("alice", "USDT"), ledger.balance("bob", "USDT")
    assert alice.balance == D(100_000) - D(11_800) - D("11.8")
    assert alice.holds == per_unit * D("0.3")  # the rest of the order, still frozen
    assert ledger.balance("alice", "BTC").balance == D("1.2")
    assert bob.balance == D(100_000) + D(11_800) - D("9.44")
    assert ledger.balance("bob", "BTC") == Balance(D("0.8"), D(0))
    assert ledger.balance(FEES, "USDT").balance == D("21.24")
    assert ledger.release("buy-1") == per_unit * D("0.3")  # cancelled: all of it freed
    assert ledger.balance("alice", "USDT").holds == 0


def test_what_the_available_balance_cannot_cover_is_refused_and_frees_nothing() -> None:
    ledger = funded()
    assert not ledger.hold("sell-big", "alice", "BTC", D("1.0001"))
    assert ledger.holding("sell-big") is None
    assert ledger.hold("sell-all", "alice", "BTC", D(1))
    assert not ledger.hold("sell-more", "alice", "BTC", D("0.00000001"))
    assert ledger.balance("alice", "BTC").available == 0


def test_a_market_buy_by_funds_spends_at_most_its_funds_and_the_dust_is_freed() -> None:
    ledger = funded()
    assert ledger.hold("mkt", "alice", "USDT", D(1_000))
    assert ledger.hold("ask", "bob", "BTC", D(1))
    btc_trade(ledger, "mkt", "ask", D(60_000), D("0.0166"), TAKER, MAKER)
    spent = D(60_000) * D("0.0166") * (1 + TAKER)
    assert ledger.release("mkt") == D(1_000) - spent  # the dust cancel
    assert ledger.hold("mkt-2", "alice", "USDT", D(10))
    with pytest.raises(LedgerError, match="spends more than its orders hold"):
        btc_trade(ledger, "mkt-2", "ask", D(60_000), D("0.001"), TAKER, MAKER)


def test_bugs_of_the_caller_fail_loudly() -> None:
    ledger = funded()
    assert ledger.hold("a", "alice", "USDT", D(1))
    with pytest.raises(LedgerError, match="holds already"):
        ledger.hold("a", "alice", "USDT", D(1))
    with pytest.raises(LedgerError, match="holds nothing"):
        ledger.release("b")
    with pytest.raises(LedgerError, match="hold nothing"):
        btc_trade(ledger, "a", "b", D(1), D(1), TAKER, TAKER)
    assert ledger.hold("b", "bob", "USDT", D(1))
    with pytest.raises(LedgerError, match="wrong currencies"):
        btc_trade(ledger, "a", "b", D(1), D(1), TAKER, TAKER)
    # A buy traded above its limit (matching that ignored the price) spends more than the
    # unit it freed: refused, not taken from the account's other money.
    per_unit = D(59_000) * (1 + TAKER)
    assert ledger.hold("limit", "alice", "USDT", per_unit, per_unit)
    assert ledger.hold("ask", "bob", "BTC", D(1))
    with pytest.raises(LedgerError, match="spends more than its orders hold"):
        btc_trade(ledger, "limit", "ask", D(60_000), D("0.5"), TAKER, TAKER)
    with pytest.raises(ValueError, match="non-negative"):
        ledger.fund("alice", "USDT", D(-1))
    with pytest.raises(ValueError, match="non-negative"):
        ledger.hold("c", "alice", "USDT", D("NaN"))


USERS = ("alice", "bob", "carol")
PRICES = st.integers(55_000, 65_000).map(lambda p: D(p) / 10)
SIZES = st.integers(1, 5_000).map(lambda n: D(n) / 10_000)
ACTION = st.one_of(
    st.tuples(st.just("buy"), st.sampled_from(USERS), PRICES, SIZES),
    st.tuples(st.just("sell"), st.sampled_from(USERS), PRICES, SIZES),
    st.tuples(st.just("trade"), st.integers(0, 50), st.integers(0, 50), SIZES),
    st.tuples(st.just("cancel"), st.integers(0, 50), st.just(D(0)), st.just(D(0))),
)


def play(
    ledger: SpotLedger,
    actions: list[tuple[str, object, object, object]],
    check: Callable[[], None] = lambda: None,
) -> None:
    """Play the actions on a funded ledger (``check`` after each), then cancel what is left."""
    orders: dict[int, tuple[str, str, Decimal, Decimal]] = {}  # id -> (side, user, px, left)
    for number, (kind, first, second, third) in enumerate(actions):
        if kind in ("buy", "sell"):
            user, price, size = str(first), D(str(second)), D(str(third))
            if kind == "buy":
                per_unit = price * (1 + TAKER)
                placed = ledger.hold(number, user, "USDT", per_unit * size, per_unit)
            else:
                placed = ledger.hold(number, user, "BTC", size)
            if placed:
                orders[number] = (kind, user, price, size)
        elif kind == "trade" and orders:
            ids = sorted(orders)
            buy = [i for i in ids if orders[i][0] == "buy"]
            sell = [i for i in ids if orders[i][0] == "sell"]
            if not buy or not sell:
                continue
            b, s = buy[int(str(first)) % len(buy)], sell[int(str(second)) % len(sell)]
            if orders[b][1] == orders[s][1] or orders[b][2] < orders[s][2]:
                continue  # self-trade prevented, or the prices do not cross
            size = min(D(str(third)), orders[b][3], orders[s][3])
            btc_trade(ledger, b, s, orders[s][2], size, TAKER, MAKER)
            for i in (b, s):
                side, user, price, left = orders[i]
                orders[i] = (side, user, price, left - size)
        elif kind == "cancel" and orders:
            victim = sorted(orders)[int(str(first)) % len(orders)]
            ledger.release(victim)
            del orders[victim]
        check()
    for order in list(orders):
        ledger.release(order)


def fund(ledger: SpotLedger) -> None:
    for user in USERS:
        ledger.fund(user, "USDT", D(50_000))
        ledger.fund(user, "BTC", D(2))


@given(st.lists(ACTION, max_size=60))
def test_no_currency_is_made_or_lost_and_nothing_is_overdrawn(
    actions: list[tuple[str, object, object, object]],
) -> None:
    ledger = SpotLedger()
    fund(ledger)
    totals = {currency: ledger.total(currency) for currency in ("USDT", "BTC")}

    def check() -> None:
        for currency in ("USDT", "BTC"):
            assert ledger.total(currency) == totals[currency]
            for user in USERS:
                balance = ledger.balance(user, currency)
                assert 0 <= balance.holds <= balance.balance

    play(ledger, actions, check)
    assert ledger.drain() == []  # not recording: nothing kept
    for user in USERS:
        for currency in ("USDT", "BTC"):
            assert ledger.balance(user, currency).holds == 0


@given(st.lists(ACTION, max_size=60))
def test_the_balance_changes_replayed_over_the_start_give_the_balances(
    actions: list[tuple[str, object, object, object]],
) -> None:
    ledger = SpotLedger(record=True)
    fund(ledger)
    play(ledger, actions)
    replayed: dict[tuple[str, str], Balance] = {}
    for change in ledger.drain():
        key = (change.user, change.currency)
        before = replayed.get(key, Balance(D(0), D(0)))
        after = Balance(before.balance + change.balance_change, before.holds + change.hold_change)
        assert after == Balance(change.balance, change.holds)  # each says what it left
        assert change.available_change == after.available - before.available
        assert change.event in ("trade.hold", "trade.setted", "trade.transfer")
        assert (change.settlement is not None) == (change.event == "trade.setted")
        replayed[key] = after
    for user in (*USERS, FEES):
        for currency in ("USDT", "BTC"):
            assert replayed.get((user, currency), Balance(D(0), D(0))) == ledger.balance(
                user, currency
            )
    assert ledger.drain() == []  # taken once


def test_a_trade_is_one_change_per_account_and_currency_with_its_settlement() -> None:
    ledger = SpotLedger(record=True)
    ledger.fund("alice", "USDT", D(100_000))
    ledger.fund("bob", "BTC", D(1))
    per_unit = D(60_000) * (1 + TAKER)
    assert ledger.hold("buy-1", "alice", "USDT", per_unit, per_unit)
    assert ledger.hold("sell-1", "bob", "BTC", D(1))
    assert [(c.event, c.user, c.currency) for c in ledger.drain()] == [
        ("trade.transfer", "alice", "USDT"),
        ("trade.transfer", "bob", "BTC"),
        ("trade.hold", "alice", "USDT"),
        ("trade.hold", "bob", "BTC"),
    ]
    btc_trade(ledger, "buy-1", "sell-1", D(60_000), D("0.5"))
    changes = ledger.drain()
    assert [(c.user, c.currency, c.order) for c in changes] == [
        ("alice", "USDT", "buy-1"),
        ("alice", "BTC", "buy-1"),
        ("bob", "BTC", "sell-1"),
        ("bob", "USDT", "sell-1"),
        (FEES, "USDT", "buy-1"),
    ]
    assert {c.settlement for c in changes} == {1}
    bob_usdt = changes[3]
    assert (bob_usdt.balance_change, bob_usdt.hold_change) == (D(30_000) - D(24), D(0))
    alice_usdt = changes[0]
    assert alice_usdt.balance_change == -D(30_030)
    assert alice_usdt.hold_change == -per_unit / 2
