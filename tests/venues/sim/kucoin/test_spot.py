"""The simulator's KuCoin spot matching: each kind of order as the venue documents it, and
under hypothesis no money made or lost, no crossed book, and every order's life well formed."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mm.venues.sim.kucoin import spot
from mm.venues.sim.kucoin.ledger import SpotLedger
from mm.venues.sim.kucoin.spot import (
    Altered,
    OrderChange,
    Placed,
    Refusal,
    SpotExchange,
    SpotOrderRequest,
    SpotSymbol,
)

D = Decimal
MAKER, TAKER = D("0.0008"), D("0.001")
BTC_USDT = SpotSymbol(
    "BTC-USDT",
    "BTC",
    "USDT",
    D("0.1"),
    D("0.00000001"),
    D("0.000001"),
    D("0.00001"),
    D("0.1"),
    D("0.1"),
)
USERS = ("alice", "bob", "carol")


def exchange() -> SpotExchange:
    ledger = SpotLedger()
    for user in USERS:
        ledger.fund(user, "USDT", D(100_000))
        ledger.fund(user, "BTC", D(1))
    return SpotExchange([BTC_USDT], ledger, lambda user, symbol: (MAKER, TAKER))


def limit(side: str, price: str, size: str, **kw: object) -> SpotOrderRequest:
    return SpotOrderRequest("BTC-USDT", side, "limit", price=price, size=size, **kw)  # type: ignore[arg-type]


def placed(result: Placed | Refusal) -> Placed:
    assert isinstance(result, Placed), result
    return result


def kinds(changes: tuple[OrderChange, ...], oid: str) -> list[str]:
    return [change.type for change in changes if change.oid == oid]


def test_a_resting_order_is_taken_and_both_sides_see_the_match() -> None:
    ex = exchange()
    ask = placed(ex.place("alice", limit("sell", "60000", "0.5"), 1))
    assert kinds(ask.changes, ask.oid) == ["received", "open"]
    buy = placed(ex.place("bob", limit("buy", "60100", "0.2"), 2))
    assert kinds(buy.changes, buy.oid) == ["received", "match", "filled"]
    assert kinds(buy.changes, ask.oid) == ["match"]
    taker, maker = (c for c in buy.changes if c.type == "match")
    assert (taker.liquidity, maker.liquidity) == ("taker", "maker")
    assert taker.match_price == D(60_000)  # the maker's price
    assert taker.trade_id == maker.trade_id
    assert taker.fee == D(12_000) * TAKER
    assert maker.fee == D(12_000) * MAKER
    assert maker.remain_size == D("0.3")
    ledger = ex.ledger
    assert ledger.balance("bob", "BTC").balance == D("1.2")
    assert ledger.balance("bob", "USDT").holds == 0  # filled: nothing left frozen
    assert ledger.balance("alice", "BTC").holds == D("0.3")
    (cancel,) = ex.cancel("alice", ask.oid, 3)  # type: ignore[misc]
    assert cancel.type == "canceled"
    assert ledger.balance("alice", "BTC").holds == 0
    assert ex.cancel("alice", ask.oid, 4) == Refusal("400100", "order not exist.")
    # Done orders are kept for queries, with what they did.
    bought, sold = ex.orders[buy.oid], ex.orders[ask.oid]
    assert (bought.end, bought.filled, bought.deal_funds) == ("filled", D("0.2"), D(12_000))
    assert (bought.fee, bought.created_ns, bought.updated_ns) == (D(12), 2, 2)
    assert (sold.end, sold.filled, sold.fee, sold.in_book) == (
        "canceled",
        D("0.2"),
        D("9.6"),
        False,
    )


def test_ioc_fok_and_post_only() -> None:
    ex = exchange()
    ask = placed(ex.place("alice", limit("sell", "60000", "0.1"), 1))
    ioc = placed(ex.place("bob", limit("buy", "60000", "0.3", time_in_force="IOC"), 2))
    assert kinds(ioc.changes, ioc.oid) == ["received", "match", "canceled"]
    assert not ex.live.get(ioc.oid)
    assert kinds(ioc.changes, ask.oid) == ["match", "filled"]
    placed(ex.place("alice", limit("sell", "60000", "0.1"), 3))
    fok = placed(ex.place("bob", limit("buy", "60000", "0.3", time_in_force="FOK"), 4))
    assert kinds(fok.changes, fok.oid) == ["received", "canceled"]  # not all there: nothing
    post = placed(ex.place("bob", limit("buy", "60000", "0.05", post_only=True), 5))
    assert kinds(post.changes, post.oid) == ["received", "canceled"]  # it would have taken
    rests = placed(ex.place("bob", limit("buy", "59999.9", "0.05", post_only=True), 6))
    assert kinds(rests.changes, rests.oid) == ["received", "open"]


def test_a_market_buy_by_funds_ends_in_a_dust_cancel() -> None:
    ex = exchange()
    placed(ex.place("alice", limit("sell", "60000", "0.01"), 1))
    placed(ex.place("alice", limit("sell", "60001", "0.5"), 2))
    buy = placed(ex.place("bob", SpotOrderRequest("BTC-USDT", "buy", "market", funds="1000"), 3))
    matches = [c for c in buy.changes if c.oid == buy.oid and c.type == "match"]
    assert [m.match_price for m in matches] == [D(60_000), D(60_001)]
    assert kinds(buy.changes, buy.oid)[-1] == "canceled"  # the funds left buy no whole lot
    spent = sum((D(str(m.match_price)) * D(str(m.match_size)) * (1 + TAKER) for m in matches), D(0))
    assert D(1_000) - spent < D(60_001) * D("0.00000001") * (1 + TAKER)
    assert ex.ledger.balance("bob", "USDT").balance == D(100_000) - spent
    assert ex.ledger.balance("bob", "USDT").holds == 0


def test_market_sells_and_buys_by_size() -> None:
    ex = exchange()
    placed(ex.place("alice", limit("buy", "59000", "0.1"), 1))
    sell = placed(ex.place("bob", SpotOrderRequest("BTC-USDT", "sell", "market", size="0.3"), 2))
    assert kinds(sell.changes, sell.oid) == ["received", "match", "canceled"]  # book ran out
    placed(ex.place("alice", limit("sell", "61000", "0.2"), 3))
    buy = placed(ex.place("carol", SpotOrderRequest("BTC-USDT", "buy", "market", size="0.2"), 4))
    assert kinds(buy.changes, buy.oid) == ["received", "match", "filled"]
    assert ex.ledger.balance("carol", "USDT").holds == 0
    assert ex.ledger.balance("carol", "BTC").balance == D("1.2")


@pytest.mark.parametrize(
    ("request_", "refusal"),
    [
        (limit("buy", "60000.05", "0.1"), Refusal("400100", "Price increment invalid.")),
        (
            limit("buy", "60000", "0.6930000000000001"),
            Refusal("400100", "Order size increment invalid."),
        ),
        (limit("buy", "60000", "0.000001"), Refusal("400100", "size: at least 0.00001")),
        (limit("buy", "1", "0.00001"), Refusal("400100", "the order's value: at least 0.1")),
        (limit("buy", "60000", "2"), Refusal("200004", "Balance insufficient!")),
        (limit("sell", "60000", "1.5"), Refusal("200004", "Balance insufficient!")),
        (limit("buy", "NaN", "1"), Refusal("400100", "Price increment invalid.")),
        (
            limit("buy", "60000", "0.1", time_in_force="GTT"),
            Refusal("400100", "timeInForce: must be GTC, IOC or FOK"),
        ),
        (
            SpotOrderRequest("BTC-USDT", "sell", "market", funds="100"),
            Refusal("400100", "funds: only a market buy is by funds"),
        ),
        (
            SpotOrderRequest("BTC-USDT", "buy", "market", funds="100.0000001"),
            Refusal("400100", "Order funds increment invalid."),
        ),
        (
            SpotOrderRequest("BTC-USDT", "buy", "market", size="1", funds="1"),
            Refusal("400100", "a market order takes size or funds, and no price"),
        ),
    ],
)
def test_refusals_carry_the_venues_code_and_change_nothing(
    request_: SpotOrderRequest, refusal: Refusal
) -> None:
    ex = exchange()
    assert ex.place("alice", request_, 1) == refusal
    assert not ex.live
    assert ex.ledger.balance("alice", "USDT").holds == 0
    assert ex.ledger.balance("alice", "BTC").holds == 0


ORDERS = st.one_of(
    st.builds(
        lambda user, side, ticks, lots, tif, post: (
            user,
            limit(
                side, str(D(ticks) / 10), str(D(lots) / 10_000), time_in_force=tif, post_only=post
            ),
        ),
        st.sampled_from(USERS),
        st.sampled_from(["buy", "sell"]),
        st.integers(599_900, 600_100),
        st.integers(1, 3_000),
        st.sampled_from(["GTC", "GTC", "IOC", "FOK"]),
        st.booleans(),
    ),
    st.builds(
        lambda user, funds: (user, SpotOrderRequest("BTC-USDT", "buy", "market", funds=str(funds))),
        st.sampled_from(USERS),
        st.integers(1, 20_000),
    ),
    st.builds(
        lambda user, side, lots: (
            user,
            SpotOrderRequest("BTC-USDT", side, "market", size=str(D(lots) / 10_000)),
        ),
        st.sampled_from(USERS),
        st.sampled_from(["buy", "sell"]),
        st.integers(1, 3_000),
    ),
    st.builds(lambda pick: ("cancel", pick), st.integers(0, 100)),
)


@settings(max_examples=150)
@given(st.lists(ORDERS, max_size=40))
def test_no_money_is_made_or_lost_and_every_order_lives_as_documented(
    actions: list[tuple[str, object]],
) -> None:
    ex = exchange()
    totals = {c: ex.ledger.total(c) for c in ("USDT", "BTC")}
    for now, (first, second) in enumerate(actions):
        if first == "cancel":
            if ex.live:
                oid = sorted(ex.live)[int(str(second)) % len(ex.live)]
                cancelled = ex.cancel(ex.live[oid].user, oid, now)
                assert not isinstance(cancelled, Refusal)
            continue
        request = second
        assert isinstance(request, SpotOrderRequest)
        result = ex.place(first, request, now)
        if isinstance(result, Placed):
            own = kinds(result.changes, result.oid)
            assert own[0] == "received"
            assert own[-1] in ("open", "filled", "canceled")
            assert own.count("open") + own.count("filled") + own.count("canceled") == 1
            rests = own[-1] == "open"
            assert rests == (result.oid in ex.live)
            assert not rests or (request.type == "limit" and request.time_in_force == "GTC")
            if request.post_only:
                assert "match" not in own
            if request.time_in_force == "FOK" and own[-1] != "filled":
                assert "match" not in own
            for change in result.changes:
                if change.type == "match":
                    rate = TAKER if change.liquidity == "taker" else MAKER
                    assert change.fee == change.match_price * change.match_size * rate  # type: ignore[operator]
        book = ex.books["BTC-USDT"]
        bid, ask = book.best_bid(), book.best_ask()
        assert bid is None or ask is None or bid < ask
        for currency in ("USDT", "BTC"):
            assert ex.ledger.total(currency) == totals[currency]
            for user in USERS:
                balance = ex.ledger.balance(user, currency)
                assert 0 <= balance.holds <= balance.balance
    # Every order's fills, in its account's trade history, add up to what it traded.
    for order in ex.orders.values():
        own_fills = [f for f in ex.fills.get(order.user, ()) if f.oid == order.oid]
        assert sum((f.size for f in own_fills), D(0)) == order.filled
        assert sum((f.funds for f in own_fills), D(0)) == order.deal_funds
        assert sum((f.fee for f in own_fills), D(0)) == order.fee
    for user in USERS:
        ids = [f.id for f in ex.fills.get(user, ())]
        assert ids == sorted(set(ids))
    for oid in list(ex.live):
        ex.cancel(ex.live[oid].user, oid, 10_000)
    for user in USERS:
        assert ex.ledger.balance(user, "USDT").holds == 0
        assert ex.ledger.balance(user, "BTC").holds == 0


def test_a_client_oid_is_unique_among_the_accounts_active_orders() -> None:
    ex = exchange()
    first = placed(ex.place("alice", limit("buy", "50000", "0.1", client_oid="c-1"), 1))
    again = ex.place("alice", limit("buy", "50000", "0.1", client_oid="c-1"), 2)
    assert again == Refusal("400100", "clientOid duplicated")
    assert ex.ledger.balance("alice", "USDT").holds == D("5005")  # the first one's alone
    placed(ex.place("bob", limit("buy", "50000", "0.1", client_oid="c-1"), 3))  # another's
    assert ex.active_by_client_oid("alice", "c-1") is ex.live[first.oid]
    ex.cancel("alice", first.oid, 4)
    assert ex.active_by_client_oid("alice", "c-1") is None
    reused = placed(ex.place("alice", limit("buy", "50000", "0.1", client_oid="c-1"), 5))
    assert ex.active_by_client_oid("alice", "c-1") is ex.live[reused.oid]


def test_cancel_all_of_some_symbols_or_all() -> None:
    ex = exchange()
    mine = [placed(ex.place("alice", limit("buy", "5000", "0.1"), n)).oid for n in (1, 2)]
    theirs = placed(ex.place("bob", limit("buy", "5000", "0.1"), 3)).oid
    assert ex.cancel_all("alice", ["ETH-USDT"], 4) == ()
    changes = ex.cancel_all("alice", None, 5)
    assert [(c.oid, c.type) for c in changes] == [(oid, "canceled") for oid in mine]
    assert list(ex.live) == [theirs]


def test_an_altered_order_is_cancelled_and_replaced() -> None:
    ex = exchange()
    bid = placed(ex.place("alice", limit("buy", "60000", "0.5", client_oid="a-1"), 1))
    placed(ex.place("bob", limit("sell", "60000", "0.2"), 2))  # fills 0.2 of it
    altered = ex.alter("alice", bid.oid, "59000", "0.6", 3)
    assert isinstance(altered, Altered)
    assert [(c.oid, c.type) for c in altered.cancelled] == [(bid.oid, "canceled")]
    assert altered.placed is not None
    new = ex.live[altered.placed.oid]
    assert new.oid != bid.oid
    assert (new.price, new.size, new.request.client_oid) == (D(59_000), D("0.4"), "a-1")
    assert kinds(altered.placed.changes, new.oid) == ["received", "open"]
    # The hold is the new order's alone: 59,000 x 0.4 and the most it can pay in fees.
    assert ex.ledger.balance("alice", "USDT").holds == D(59_000) * D("0.4") * (1 + TAKER)
    # A new size no more than the old order filled: only the cancel.
    placed(ex.place("bob", limit("sell", "59000", "0.1"), 4))
    only_cancel = ex.alter("alice", new.oid, None, "0.1", 5)
    assert only_cancel == Altered(only_cancel.cancelled, None)  # type: ignore[union-attr]
    assert not ex.live
    # A done order cannot be altered; a refused new price leaves the order as it was.
    assert ex.alter("alice", new.oid, "1", None, 6) == Refusal("400100", "order not exist.")
    kept = placed(ex.place("alice", limit("buy", "100", "0.1"), 7))
    assert ex.alter("alice", kept.oid, "100.05", None, 8) == Refusal(
        "400100", "Price increment invalid."
    )
    assert ex.alter("bob", kept.oid, "101", None, 9) == Refusal("400100", "order not exist.")
    assert kept.oid in ex.live


def test_an_altered_order_the_balance_cannot_cover_is_cancelled_and_refused() -> None:
    ex = exchange()
    bid = placed(ex.place("alice", limit("buy", "50000", "1"), 1))
    altered = ex.alter("alice", bid.oid, None, "3", 2)  # 150,000 USDT: more than it has
    assert isinstance(altered, Altered)
    assert altered.refusal == Refusal("200004", "Balance insufficient!")
    assert [c.type for c in altered.cancelled] == ["canceled"]
    assert not ex.live


def test_each_trade_is_a_fill_for_both_accounts() -> None:
    ex = exchange()
    ask = placed(ex.place("alice", limit("sell", "60000", "0.5"), 1_000_000))
    buy = placed(ex.place("bob", limit("buy", "60000", "0.2"), 2_000_000))
    (sold,), (bought,) = ex.fills["alice"], ex.fills["bob"]
    assert (bought.oid, bought.counter_oid, bought.liquidity) == (buy.oid, ask.oid, "taker")
    assert (sold.oid, sold.counter_oid, sold.liquidity) == (ask.oid, buy.oid, "maker")
    assert bought.trade_id == sold.trade_id
    assert (bought.price, bought.size, bought.funds) == (D(60_000), D("0.2"), D(12_000))
    assert (bought.fee, bought.fee_rate, bought.fee_currency) == (D(12), TAKER, "USDT")
    assert (sold.fee, sold.fee_rate, sold.side, sold.order_type) == (
        D("9.6"),
        MAKER,
        "sell",
        "limit",
    )
    assert bought.ts_ns == 2_000_000


def test_an_accounts_fills_are_kept_to_a_bound(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(spot, "FILLS_KEPT", 3)
    ex = exchange()
    placed(ex.place("alice", limit("sell", "60000", "0.5"), 1))
    for n in range(5):
        placed(ex.place("bob", limit("buy", "60000", "0.01"), 2 + n))
    kept = list(ex.fills["bob"])
    assert len(kept) == 3
    assert [f.trade_id for f in kept] == [3, 4, 5]  # the latest, the oldest forgotten


def test_done_orders_are_kept_per_account(monkeypatch: pytest.MonkeyPatch) -> None:
    """Another account's churn (the liquidity provider re-quotes every step) never pushes an
    account's done orders out: each keeps its latest ``DONE_KEPT``."""
    monkeypatch.setattr(spot, "DONE_KEPT", 3)
    ex = exchange()
    mine = placed(ex.place("alice", limit("buy", "50000", "0.01"), 1)).oid
    ex.cancel("alice", mine, 2)
    for n in range(10):  # bob's churn: far more done orders than the bound
        theirs = placed(ex.place("bob", limit("buy", "50000", "0.01"), 3 + n)).oid
        ex.cancel("bob", theirs, 3 + n)
    assert ex.orders[mine].end == "canceled"
    assert [order.oid for order in ex.done_orders("alice", "BTC-USDT")] == [mine]
    assert len(list(ex.done_orders("bob", "BTC-USDT"))) == 3
    for n in range(3):  # alice's own churn does push her oldest out
        later = placed(ex.place("alice", limit("buy", "50000", "0.01"), 20 + n)).oid
        ex.cancel("alice", later, 20 + n)
    assert mine not in ex.orders
