"""The KuCoin face's outside takers: orders at the configured rate and sizes, sent through the
exchange as a client's, that make the tape, fill other accounts' best orders, conserve every
currency, and replay from their seed."""

from __future__ import annotations

import math
import random
from decimal import Decimal

import pytest
import trio
from hypothesis import given, settings
from hypothesis import strategies as st

from mm.venues.sim.kucoin.ledger import FEES, SpotLedger
from mm.venues.sim.kucoin.spot import Placed, SpotExchange, SpotOrder, SpotOrderRequest
from mm.venues.sim.kucoin.triangle import (
    PROVIDER,
    SYMBOLS,
    TAKER,
    TriangleConfig,
    TriangleMarket,
)
from tests.venues.sim.kucoin.wsclient import GUARD_S, next_message, running, subscribe, websocket

FEE = Decimal("0.001")
CURRENCIES = ("USDT", "BTC", "ETH")


def exchange() -> SpotExchange:
    return SpotExchange(SYMBOLS, SpotLedger(), lambda user, symbol: (FEE, FEE))


def run(
    config: TriangleConfig, seed: int, steps: int, dt_s: float
) -> tuple[SpotExchange, TriangleMarket, list[Placed]]:
    """The market stepped ``steps`` times ``dt_s`` apart, the provider re-quoting and the
    takers taking each step; what the takers' orders did."""
    ex = exchange()
    market = TriangleMarket(config, random.Random(seed))
    market.fund_provider(ex)
    taken: list[Placed] = []
    for step in range(steps):
        now_ns = int(step * dt_s * 1e9)
        market.step(dt_s)
        market.quote(ex, now_ns)
        taken.extend(market.take(ex, now_ns, dt_s))
    return ex, market, taken


def tape(taken: list[Placed]) -> list[tuple[str, str, Decimal, Decimal, str]]:
    """The trades the takers made, as /market/match shows them: symbol, taker side, price,
    size, maker order."""
    return [
        (c.symbol, c.side, c.match_price, c.match_size, c.oid)
        for placed in taken
        for c in placed.changes
        if c.type == "match" and c.liquidity == "maker" and c.match_price and c.match_size
    ]


def notional_usdt(order: SpotOrder, btc_usdt: float) -> float:
    """What a taker's order asked, in USDT: its funds, or its size at its price (a market
    sell's: at the average price it traded, all of it)."""
    if order.funds is not None:
        quote = float(order.funds)
    else:
        assert order.size is not None
        price = order.price if order.price is not None else order.deal_funds / order.filled
        quote = float(order.size * price)
    return quote * (btc_usdt if order.symbol.quote == "BTC" else 1.0)


def test_takers_arrive_at_the_configured_rate_with_the_configured_sizes() -> None:
    # 30 virtual minutes in 10 s steps, over a ladder deep enough for ten seconds of takers
    # (re-quoting every 0.1 s, as the face does, would only make the test slower).
    config = TriangleConfig(level_usdt=50_000.0)  # the defaults: 60 a minute, 1,000 USDT
    ex, market, taken = run(config, seed=11, steps=180, dt_s=10.0)
    orders = [ex.orders[placed.oid] for placed in taken]
    assert all(order.user == TAKER for order in orders)
    expected = 60.0 * 30  # per symbol
    for spec in SYMBOLS:
        count = sum(order.symbol.name == spec.name for order in orders)
        assert abs(count - expected) < 5 * math.sqrt(expected)  # Poisson: 5 sigma
    n = len(orders)
    buys = sum(order.request.side == "buy" for order in orders)
    markets = sum(order.request.type == "market" for order in orders)
    for share in (buys, markets):  # even odds each: 5 sigma of a binomial
        assert abs(share - n / 2) < 5 * math.sqrt(n / 4)
    limits = [order for order in orders if order.request.type == "limit"]
    assert all(order.request.time_in_force == "IOC" for order in limits)
    # Sizes: log-normal around the median (the ETH-BTC ones at about the BTC-USDT mid, which
    # moved a little over the run), and within the bounds up to the grids' rounding.
    btc_usdt = market.btc_usdt
    sizes = sorted(notional_usdt(order, btc_usdt) for order in orders)
    below = sum(size < 1_000.0 for size in sizes)
    assert abs(below - n / 2) < 5 * math.sqrt(n / 4)
    logs = [math.log(size / 1_000.0) for size in sizes if 20.0 < size < 4_000.0]  # unclipped
    spread = math.sqrt(sum(x * x for x in logs) / len(logs))
    assert 0.7 < spread < 0.9  # sigma 1, its tails clipped off (the upper one at 1.4 sigma)
    assert sizes[0] >= 10.0 * 0.97
    assert sizes[-1] <= 5_000.0 * 1.03
    assert any(size > 4_900.0 for size in sizes)  # the clip is reached, and holds
    # The tape: every order traded (the books never emptied), about one trade each.
    trades = tape(taken)
    assert all(any(c.type == "match" for c in placed.changes) for placed in taken)
    assert len(trades) < 1.5 * n


def test_the_default_tape_has_trades_at_several_depths() -> None:
    # What a market maker's intensity estimate fits a decay to: most trades at the touch, some
    # a level or two deeper (the provider's levels are 2 bps apart, the first 2 bps out).
    ex = exchange()
    market = TriangleMarket(TriangleConfig(), random.Random(2))
    market.fund_provider(ex)
    depths: list[float] = []  # of BTC-USDT's trades, in bps of the mid when they were made
    for step in range(200):
        market.step(1.0)
        market.quote(ex, step)
        mid = market.btc_usdt
        for symbol, _, price, _, _ in tape(market.take(ex, step, 1.0)):
            if symbol == "BTC-USDT":
                depths.append(abs(float(price) / mid - 1) / 1e-4)
    assert len(depths) > 150
    assert all(depth > 1.9 for depth in depths)  # nothing inside the provider's spread
    deeper = sum(depth > 3.0 for depth in depths)
    assert 0.1 * len(depths) < deeper < 0.5 * len(depths)
    assert any(depth > 5.0 for depth in depths)


def test_the_takers_fill_another_accounts_order_at_the_best_price() -> None:
    # A still market: the provider quotes the same prices every step, and a trader's bid one
    # tick better than its best bid is the best; only takers can fill it.
    config = TriangleConfig(
        volatility_bps=0.0, dislocation_bps=0.0, shocks_per_minute=0.0, levels=2
    )
    ex = exchange()
    market = TriangleMarket(config, random.Random(5))
    market.fund_provider(ex)
    ex.ledger.fund("trader", "USDT", Decimal(100_000))
    market.quote(ex, now_ns=0)
    spec = SYMBOLS[0]
    best_bid = ex.books[spec.name].best_bid()
    assert best_bid is not None
    price = spec.price(best_bid + 1)
    request = SpotOrderRequest(spec.name, "buy", "limit", f"{price:f}", "0.05")
    resting = ex.place("trader", request, 1)
    assert isinstance(resting, Placed)
    assert ex.live[resting.oid].in_book
    dt_s = 0.1
    # 0.05 BTC is 3,000 USDT; the sellers bring about 15,000 USDT a minute (30 of them, of
    # 500 USDT on average): two minutes is ten times what it takes on average.
    for step in range(1, 1200):
        now_ns = int(step * dt_s * 1e9)
        market.step(dt_s)
        quoted = market.quote(ex, now_ns)
        assert not any(c.oid == resting.oid for p in quoted for c in p.changes)
        for placed in market.take(ex, now_ns, dt_s):
            if any(c.oid == resting.oid and c.type == "match" for c in placed.changes):
                assert ex.orders[placed.oid].user == TAKER
                assert ex.orders[placed.oid].request.side == "sell"
        if resting.oid not in ex.live:
            break
    order = ex.orders[resting.oid]
    assert order.end == "filled"
    assert order.filled == Decimal("0.05")
    fills = ex.fills["trader"]
    assert {fill.liquidity for fill in fills} == {"maker"}
    assert {ex.orders[fill.counter_oid].user for fill in fills} == {TAKER}
    assert all(fill.price == price for fill in fills)


@settings(max_examples=15, deadline=None)
@given(
    seed=st.integers(0, 2**32 - 1),
    market_share=st.floats(0.0, 1.0),
    sigma=st.floats(0.0, 2.0),
    reach=st.floats(0.0, 20.0),
)
def test_no_money_is_made_or_lost(
    seed: int, market_share: float, sigma: float, reach: float
) -> None:
    # Fast, big takers against a thin one-level ladder and a trader's resting orders.
    config = TriangleConfig(
        volatility_bps=20.0,
        levels=1,
        takers_per_minute=600.0,
        taker_median_usdt=1_000.0,
        taker_size_sigma=sigma,
        taker_market_share=market_share,
        taker_reach_bps=reach,
    )
    ex = exchange()
    rng = random.Random(seed)
    market = TriangleMarket(config, rng)
    market.fund_provider(ex)
    for currency, amount in (("USDT", 50_000), ("BTC", 1), ("ETH", 10)):
        ex.ledger.fund("trader", currency, Decimal(amount))
    totals = {currency: ex.ledger.total(currency) for currency in CURRENCIES}
    traded = 0
    for step in range(40):
        now_ns = step * 500_000_000
        market.step(0.5)
        market.quote(ex, now_ns)
        for spec in SYMBOLS[:2]:
            book = ex.books[spec.name]
            best = book.best_bid() if step % 2 else book.best_ask()
            if best is not None:
                side = "buy" if step % 2 else "sell"
                size = spec.base_min_size * 100
                request = SpotOrderRequest(
                    spec.name, side, "limit", f"{spec.price(best)}", f"{size}"
                )
                ex.place("trader", request, now_ns)
        traded += len(tape(market.take(ex, now_ns, 0.5)))
        for currency, total in totals.items():
            assert ex.ledger.total(currency) == total
            for account in (PROVIDER, TAKER, "trader", FEES):
                balance = ex.ledger.balance(account, currency)
                assert balance.balance >= 0
                assert 0 <= balance.holds <= balance.balance
    assert traded > 0
    assert ex.ledger.balance(FEES, "USDT").balance > 0


def test_the_same_seed_gives_the_same_tape_and_the_takers_leave_the_prices_alone() -> None:
    config = TriangleConfig(takers_per_minute=240.0)
    first = run(config, seed=3, steps=120, dt_s=0.25)
    again = run(config, seed=3, steps=120, dt_s=0.25)
    other = run(config, seed=4, steps=120, dt_s=0.25)
    quiet = run(TriangleConfig(takers_per_minute=0.0), seed=3, steps=120, dt_s=0.25)
    assert len(tape(first[2])) > 100
    assert tape(first[2]) == tape(again[2])
    assert tape(first[2]) != tape(other[2])
    assert tape(quiet[2]) == []
    assert first[1].mids() == again[1].mids() == quiet[1].mids()


def test_a_config_of_takers_out_of_range_is_refused_naming_the_key() -> None:
    with pytest.raises(ValueError, match="takers_per_minute: must be at least 0"):
        TriangleConfig(takers_per_minute=-1.0)
    with pytest.raises(ValueError, match=r"taker_market_share: must be within 0\.\.1"):
        TriangleConfig(taker_market_share=1.5)
    with pytest.raises(ValueError, match="taker_max_usdt: must be at least taker_min_usdt"):
        TriangleConfig(taker_min_usdt=100.0, taker_max_usdt=50.0)


async def test_the_face_publishes_the_takers_trades_on_the_match_channel_and_the_ticker(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async with running(step_s=0.1) as (venue, client), websocket(client) as ws:
        await subscribe(ws, "/market/match:BTC-USDT,ETH-USDT")
        await subscribe(ws, "/market/ticker:BTC-USDT")
        start = trio.current_time()
        seen: dict[str, int] = {}
        trades: set[tuple[str, str]] = set()
        tickers: list[tuple[str, str]] = []
        with trio.fail_after(GUARD_S):
            while min(seen.get("BTC-USDT", 0), seen.get("ETH-USDT", 0)) < 20:
                message = await next_message(ws, "/market/")
                if message["topic"].startswith("/market/ticker:"):
                    tickers.append((message["data"]["price"], message["data"]["size"]))
                    continue
                trade = message["data"]
                assert venue.exchange.orders[trade["takerOrderId"]].user == TAKER
                seen[trade["symbol"]] = seen.get(trade["symbol"], 0) + 1
                if trade["symbol"] == "BTC-USDT":
                    trades.add((trade["price"], trade["size"]))
        # Twenty trades a symbol, what mm's intensity estimator waits for, within a minute.
        assert trio.current_time() - start < 60.0
        # The ticker's last trade is the takers' (the first tickers, before any trade, are not).
        assert trades & set(tickers)
