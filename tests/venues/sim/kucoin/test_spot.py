"""The simulator's KuCoin spot matching: each kind of order as the venue documents it, and
under hypothesis no money made or lost, no crossed book, and every order's life well formed."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mm.venues.sim.kucoin.ledger import SpotLedger
from mm.venues.sim.kucoin.spot import (
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
    for oid in list(ex.live):
        ex.cancel(ex.live[oid].user, oid, 10_000)
    for user in USERS:
        assert ex.ledger.balance(user, "USDT").holds == 0
        assert ex.ledger.balance(user, "BTC").holds == 0
