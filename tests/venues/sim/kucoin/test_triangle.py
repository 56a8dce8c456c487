"""The KuCoin face's synthetic market: the cross rate drifts from the direct one and snaps
back (triangles appear, briefly), and the provider's quotes make books a strategy can trade."""

from __future__ import annotations

import math
import random
from decimal import Decimal

import pytest

from mm.venues.sim.kucoin.ledger import SpotLedger
from mm.venues.sim.kucoin.spot import Placed, SpotExchange, SpotOrderRequest
from mm.venues.sim.kucoin.triangle import PROVIDER, SYMBOLS, TriangleConfig, TriangleMarket

FEE = Decimal("0.001")
ROUND_TRIP_BPS = 30.0  # three taker fees of 10 bps: a triangle pays only past this


def exchange() -> SpotExchange:
    return SpotExchange(SYMBOLS, SpotLedger(), lambda user, symbol: (FEE, FEE))


def dislocations(config: TriangleConfig, seconds: int, seed: int) -> list[float]:
    market = TriangleMarket(config, random.Random(seed))
    path = []
    for _ in range(seconds * 10):
        market.step(0.1)
        implied = market.eth_usdt / market.btc_usdt
        path.append(math.log(market.eth_btc / implied) / 1e-4)  # in bps
    return path


def test_without_shocks_the_cross_rate_stays_with_the_direct_one() -> None:
    path = dislocations(TriangleConfig(shocks_per_minute=0.0), seconds=600, seed=3)
    assert max(abs(bps) for bps in path) < 10.0  # its stationary deviation is 1.5 bps


def test_shocks_open_triangles_that_close_within_seconds() -> None:
    path = dislocations(TriangleConfig(), seconds=600, seed=3)
    episodes: list[int] = []  # how many 0.1 s steps each triangle stayed open
    length = 0
    for bps in path:
        if abs(bps) > ROUND_TRIP_BPS:
            length += 1
        elif length:
            episodes.append(length)
            length = 0
    assert len(episodes) >= 30  # about 6 shocks a minute, some stacked on others
    assert sorted(episodes)[len(episodes) // 2] * 0.1 <= 3.0  # most close within 3 s
    assert max(episodes) * 0.1 <= 10.0  # shocks that stack take longer, but close too


def test_a_forced_shock_opens_a_triangle_the_pull_closes_and_draws_nothing() -> None:
    shocked, plain = (TriangleMarket(TriangleConfig(), random.Random(5)) for _ in range(2))
    shocked.shock(60.0)
    assert shocked.dislocation == pytest.approx(60e-4)
    assert (shocked.forced_shocks, shocked.shocks) == (1, 0)
    for _ in range(100):  # 10 s: three half-lives and more
        shocked.step(0.1)
        plain.step(0.1)
    assert (shocked.btc_usdt, shocked.eth_usdt) == (plain.btc_usdt, plain.eth_usdt)
    assert abs(shocked.dislocation - plain.dislocation) < 60e-4 / 8
    with pytest.raises(ValueError, match="finite"):
        shocked.shock(math.nan)


def test_the_provider_quotes_two_sided_uncrossed_books() -> None:
    ex = exchange()
    market = TriangleMarket(TriangleConfig(), random.Random(1))
    market.fund_provider(ex)
    placed = market.quote(ex, now_ns=1)
    assert len(placed) == 3 * 5 * 2
    for spec in SYMBOLS:
        book = ex.books[spec.name]
        bid, ask = book.best_bid(), book.best_ask()
        assert bid is not None
        assert ask is not None
        assert bid < ask
        mid = market.mids()[spec.name]
        spread_bps = float(spec.price(ask) - spec.price(bid)) / mid / 1e-4
        tick_bps = float(spec.price_increment) / mid / 1e-4
        assert 4.0 - 1e-9 <= spread_bps < 4.0 + 2 * tick_bps + 1e-9  # rounded outwards
        assert len(book.levels(True, 100)) == len(book.levels(False, 100)) == 5


def test_a_requote_trades_the_orders_it_crosses_and_money_is_conserved() -> None:
    ex = exchange()
    # (A seed whose path comes back down within the 400 s: about 1 in 15 drifts up for good.)
    market = TriangleMarket(TriangleConfig(volatility_bps=50.0), random.Random(8))
    market.fund_provider(ex)
    ex.ledger.fund("trader", "USDT", Decimal(100_000))
    totals = {c: ex.ledger.total(c) for c in ("USDT", "BTC", "ETH")}
    market.quote(ex, now_ns=0)
    best_ask = ex.books["BTC-USDT"].best_ask()
    assert best_ask is not None
    # A trader's bid just under the ask: the next ladder, after a move up, crosses it.
    bid_px = SYMBOLS[0].price(best_ask - 1)
    request = SpotOrderRequest("BTC-USDT", "buy", "limit", f"{bid_px:f}", "0.01")
    resting = ex.place("trader", request, 1)
    assert isinstance(resting, Placed)
    traded = False
    for now in range(2, 400):
        market.step(1.0)
        for result in market.quote(ex, now_ns=now):
            traded |= any(c.oid == resting.oid and c.type == "match" for c in result.changes)
        for currency, total in totals.items():
            assert ex.ledger.total(currency) == total
        if traded:
            break
    assert traded
    assert ex.ledger.balance("trader", "BTC").balance == Decimal("0.01")


def test_a_config_out_of_range_is_refused_naming_the_key() -> None:
    with pytest.raises(ValueError, match="half_life_s: must be positive"):
        TriangleConfig(half_life_s=0.0)
    with pytest.raises(ValueError, match="correlation: must be within"):
        TriangleConfig(correlation=1.5)
    assert PROVIDER
