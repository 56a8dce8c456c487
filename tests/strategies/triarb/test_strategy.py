"""Triangular arbitrage behind the Strategy protocol: the triangles found at open with the
venue's spot terms, the books evaluated on the service's wall clock, and the signals handed out
once, or withheld while the books are not the venue's."""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal

import attrs
import pytest
from prometheus_client import CollectorRegistry

from mm.book import Book
from mm.execution.permissions import PermissionBoard
from mm.model import (
    AccountState,
    Balance,
    Fill,
    Instrument,
    OrderId,
    PlaceOrder,
    Rejected,
    Side,
    TradeId,
)
from mm.portfolio import Portfolio
from mm.strategies.base import MarketView, StrategyContext
from mm.strategies.market_maker.engine import StrategyConfig
from mm.strategies.triarb.config import TriarbConfig
from mm.strategies.triarb.signals import Signal
from mm.strategies.triarb.strategy import TriangularArbitrage, balances_view, spot_terms
from mm.strategies.triarb.triangles import BookView, Terms
from mm.venues.base import SpotTerms
from tests.strategies.triarb.test_signals import (
    BTC_USDT,
    ETH_BTC,
    ETH_USDT,
    ETH_USDT_FAIR,
    FEE,
    FORWARD,
    INSTRUMENTS,
)

SYMBOLS = ("BTC-USDT", "ETH-BTC", "ETH-USDT", "XRP-USDT")  # XRP-USDT is in no triangle
INCREMENTS = {
    "BTC-USDT": Decimal("0.000001"),
    "ETH-BTC": Decimal("0.00000001"),
    "ETH-USDT": Decimal("0.0001"),
    "XRP-USDT": Decimal("0.01"),
}
# The evaluator's terms of tests/strategies/triarb/test_signals.py: 1000 USDT, books 250 ms old.
CONFIG = TriarbConfig(start_volume=1000.0, max_book_age_ms=250, min_profit_bps=4.0)
IN_SYNC = MarketView(in_sync=True, stale=(), headroom=1.0)


@attrs.define
class Spot:
    """The venue client's spot terms: each symbol's taker fee and funds increment; test
    orders are taken."""

    fees: Mapping[str, Decimal]
    increments: Mapping[str, Decimal] = INCREMENTS
    tested: list[PlaceOrder] = attrs.Factory(list)

    def taker_fee(self, symbol: str) -> Decimal:
        return self.fees[symbol]

    def funds_increment(self, symbol: str) -> Decimal:
        return self.increments[symbol]

    async def test_order(self, order: PlaceOrder) -> Rejected | None:
        self.tested.append(order)
        return None


def context(
    spot: SpotTerms | None, instruments: Mapping[str, Instrument] = INSTRUMENTS
) -> StrategyContext:
    return StrategyContext(
        permissions=PermissionBoard(),
        portfolio=Portfolio((), instruments.__getitem__),
        instruments=instruments.__getitem__,
        live_orders=lambda symbol: 0,
        registry=CollectorRegistry(),
        spot=lambda: spot,
    )


class Wall:
    """The service's wall clock in ms, set by the test."""

    def __init__(self, ms: int = 1_100) -> None:
        self.ms = ms

    def __call__(self) -> int:
        return self.ms


def strategy(
    symbols: tuple[str, ...] = SYMBOLS,
    spot: SpotTerms | None = None,
    config: TriarbConfig = CONFIG,
    wall: Wall | None = None,
) -> TriangularArbitrage:
    fees = dict.fromkeys(INSTRUMENTS, FEE)
    return TriangularArbitrage(
        StrategyConfig(symbols=symbols, max_position_usd=250.0),
        config,
        context(Spot(fees) if spot is None else spot),
        wall_ms=wall or Wall(),
    )


def book(symbol: str, view: BookView) -> Book:
    return Book(symbol, view.time_ms, view.bids, view.asks)


def feed(arb: TriangularArbitrage, wall: Wall, eth_usdt: BookView = ETH_USDT) -> None:
    """The three books of test_signals, arriving 10 ms apart (at 1100, 1110, 1120)."""
    for at, symbol, view in (
        (1_100, "BTC-USDT", BTC_USDT),
        (1_110, "ETH-BTC", ETH_BTC),
        (1_120, "ETH-USDT", eth_usdt),
    ):
        wall.ms = at
        arb.on_book(book(symbol, view), 0.0)


def test_open_finds_the_triangles_and_takes_the_venues_fees_and_funds_increments() -> None:
    fees = {s: Decimal("0.001") + Decimal(n) / 10_000 for n, s in enumerate(INSTRUMENTS)}
    arb = strategy(spot=Spot(fees))
    assert (arb.symbols, arb.max_position_usd) == (SYMBOLS, 250.0)
    assert arb.decisions() == {"triangles": 0}
    assert arb.status("BTC-USDT", 0.0)["gate"] == "not open"
    arb.open(0.0)
    assert arb.triangles == 2  # USDT>BTC>ETH>USDT and back; XRP-USDT closes none
    assert arb.evaluator is not None
    assert arb.evaluator._terms == Terms(
        Decimal(1000),
        250,
        {s: fees[s] for s in SYMBOLS},
        INCREMENTS,
    )
    assert arb.status("BTC-USDT", 0.0)["gate"] == "no book yet"
    assert spot_terms(CONFIG, {s: INSTRUMENTS[s] for s in SYMBOLS}, arb.context) == (
        arb.evaluator._terms
    )


def test_open_fails_without_a_triangle_or_without_spot_terms() -> None:
    lonely = strategy(symbols=("BTC-USDT", "XRP-USDT"))
    with pytest.raises(RuntimeError, match=r"^no triangle from \['USDT'\] among"):
        lonely.open(0.0)
    assert lonely.evaluator is None
    not_spot = TriangularArbitrage(
        StrategyConfig(symbols=SYMBOLS), CONFIG, context(None), wall_ms=Wall()
    )
    with pytest.raises(RuntimeError, match="offers no spot terms"):
        not_spot.open(0.0)
    assert not_spot.evaluator is None
    assert not_spot.decide(0.0, IN_SYNC) == ()


def test_a_signal_is_handed_out_once() -> None:
    wall = Wall()
    arb = strategy(wall=wall)
    arb.on_book(book("BTC-USDT", BTC_USDT), 0.0)  # before open: nothing to evaluate with
    arb.open(0.0)
    feed(arb, wall)
    decided = arb.decide(0.0, IN_SYNC)
    assert len(decided) == 1
    (signal,) = decided
    assert isinstance(signal, Signal)
    assert signal.triangle == FORWARD
    assert signal.arrived_ms == (1_100, 1_110, 1_120)  # the service's wall clock
    assert signal.signalled_ms == 1_120
    assert signal.predicted_final == Decimal("1000.48851")
    assert arb.decide(0.0, IN_SYNC) == ()
    assert arb.decisions() == {
        "triangles": 2,
        "evaluations": 6,
        "below_min_profit": 1,
        "prefiltered": 1,
        "refusals": {"no book": 4},
        "signals": 1,
        "withheld": {},
    }


def test_no_signal_when_the_books_do_not_pay() -> None:
    wall = Wall()
    arb = strategy(wall=wall)
    arb.open(0.0)
    feed(arb, wall, ETH_USDT_FAIR)
    assert arb.decide(0.0, IN_SYNC) == ()


def test_books_are_aged_on_the_services_wall_clock() -> None:
    # The same books evaluated 300 ms later than they were stamped: older than 250 ms.
    wall = Wall()
    arb = strategy(wall=wall)
    arb.open(0.0)
    for symbol, view in (("BTC-USDT", BTC_USDT), ("ETH-BTC", ETH_BTC), ("ETH-USDT", ETH_USDT)):
        wall.ms = 1_300
        arb.on_book(book(symbol, view), 0.0)
    assert arb.decide(0.0, IN_SYNC) == ()
    assert arb.decisions()["refusals"] == {"no book": 4, "book too old": 2}


def test_signals_made_out_of_sync_are_withheld_and_not_handed_out_later() -> None:
    wall = Wall()
    arb = strategy(wall=wall)
    arb.open(0.0)
    feed(arb, wall)
    assert arb.decide(0.0, attrs.evolve(IN_SYNC, in_sync=False)) == ()
    assert arb.withheld == {"out of sync": 1}
    assert arb.decide(0.0, IN_SYNC) == ()
    assert arb.decisions()["withheld"] == {"out of sync": 1}


def test_a_signal_trading_a_stale_book_is_withheld() -> None:
    wall = Wall()
    arb = strategy(wall=wall)
    arb.open(0.0)
    feed(arb, wall)
    # A stale symbol the triangle does not trade holds nothing back.
    assert len(arb.decide(0.0, attrs.evolve(IN_SYNC, stale=frozenset({"XRP-USDT"})))) == 1
    wall.ms = 1_130
    arb.on_book(book("ETH-USDT", ETH_USDT), 0.0)  # the same book again: the triangle signals
    assert list(arb.decide(0.0, attrs.evolve(IN_SYNC, stale=frozenset({"ETH-BTC"})))) == []
    assert arb.withheld == {"stale book": 1}
    assert arb.decisions()["signals"] == 2


def test_a_new_open_starts_afresh_without_the_signals_of_the_last_run() -> None:
    wall = Wall()
    arb = strategy(wall=wall)
    arb.open(0.0)
    feed(arb, wall)
    arb.open(0.0)  # the task restarted before it decided
    assert arb.decide(0.0, IN_SYNC) == ()
    assert arb.decisions()["evaluations"] == 0


def test_the_rest_of_the_protocol_does_nothing() -> None:
    arb = strategy()
    arb.open(0.0)
    assert arb.wake_in(0.0) == 1.0
    assert arb.cascade_severity(0.0) == 0.0
    assert arb.holding("BTC-USDT") is None


def test_a_signal_whose_pair_has_a_newer_book_in_the_same_batch_is_superseded() -> None:
    # The task hands over every new book before deciding: ETH-USDT's paying book, then its
    # fair one. The signal made on the first is not the venue's any more; the second is
    # evaluated on its own (and pays nothing).
    wall = Wall()
    arb = strategy(wall=wall)
    arb.open(0.0)
    feed(arb, wall)  # a signal on the paying ETH-USDT book
    arb.on_book(book("ETH-USDT", ETH_USDT_FAIR), 0.0)
    assert list(arb.decide(0.0, IN_SYNC)) == []
    assert arb.decisions()["withheld"] == {"superseded": 1}
    # Paying again on a newer book: that signal is handed out (it is on the latest books).
    arb.on_book(book("ETH-USDT", attrs.evolve(ETH_USDT, time_ms=1_020)), 0.0)
    (signal,) = arb.decide(0.0, IN_SYNC)
    assert isinstance(signal, Signal)
    assert signal.book_times_ms[-1] == 1_020


# --- status ------------------------------------------------------------------------------------


def leg_fill(symbol: str, side: Side, px: float, sz: float, fee: float, n: int) -> Fill:
    """A taker fill of one leg, its fee in the pair's quote (as KuCoin charges it)."""
    return Fill(
        coin=symbol,
        side=side,
        px=px,
        sz=sz,
        time_ms=1_000 + n,
        oid=OrderId(f"kucoin:{n}"),
        tid=TradeId(f"kucoin:{n}"),
        cloid=None,
        fee=fee,
        fee_token=INSTRUMENTS[symbol].quote,
        crossed=True,
        start_position=0.0,
        direction="",
        closed_pnl=0.0,
        hash="",
    )


def spot_account(symbols: tuple[str, ...] = ("BTC-USDT", "ETH-BTC", "ETH-USDT")) -> Portfolio:
    """A spot account of 1 BTC, 10 ETH and 100,000 USDT as the venue read it at start."""
    portfolio = Portfolio(symbols, INSTRUMENTS.__getitem__)
    balances = (
        Balance("USDT", 100_000.0, 100_000.0, 0.0),
        Balance("BTC", 1.0, 1.0, 0.0),
        Balance("ETH", 10.0, 10.0, 0.0),
        Balance("KCS", 0.0, 0.0, 0.0),  # listed, never held: left out
    )
    portfolio.adopt_venue_positions(AccountState(0, 100_000.0, 0.0, 100_000.0, (), balances))
    return portfolio


# One triangle USDT > BTC > ETH > USDT: 0.002 BTC for 100 USDT, 0.04 ETH for it, sold for
# 100.4 USDT; each leg's fee 0.1% of its notional, in the quote.
TRIANGLE_FILLS = (
    leg_fill("BTC-USDT", Side.BUY, 50_000.0, 0.002, 0.1, 1),
    leg_fill("ETH-BTC", Side.BUY, 0.05, 0.04, 0.000002, 2),
    leg_fill("ETH-USDT", Side.SELL, 2_510.0, 0.04, 0.1004, 3),
)
STATUS_MARKS = {"BTC-USDT": 50_000.0, "ETH-USDT": 2_500.0, "ETH-BTC": 0.05}


def test_status_is_each_pairs_book_and_fills_and_balances_per_currency() -> None:
    wall = Wall()
    arb = TriangularArbitrage(
        StrategyConfig(symbols=SYMBOLS, max_position_usd=250.0),
        CONFIG,
        attrs.evolve(context(Spot(dict.fromkeys(INSTRUMENTS, FEE))), portfolio=spot_account()),
        wall_ms=wall,
    )
    arb.open(0.0)
    feed(arb, wall)
    wall.ms = 1_200
    for made in TRIANGLE_FILLS:
        assert arb.context.portfolio.apply(made)
    # The book as evaluated: its best bid and ask, and its age on the service's clock.
    assert arb.status("BTC-USDT", 0.0) == {
        "gate": "evaluating",
        "book": {"bid": 49_990.0, "ask": 50_000.0, "time_ms": 1_000, "age_ms": 200},
        "fills": {"buy": 1, "sell": 0},
    }
    assert arb.status("ETH-USDT", 0.0)["fills"] == {"buy": 0, "sell": 1}
    assert arb.status("XRP-USDT", 0.0) == {  # in no triangle: never evaluated
        "gate": "no book yet",
        "book": None,
        "fills": {"buy": 0, "sell": 0},
    }
    found = arb.balances(STATUS_MARKS)
    assert found["in"] == "USDT"
    assert found["unvalued"] == []
    held = found["currencies"]
    assert list(held) == ["BTC", "ETH", "USDT"]  # KCS: nothing held, nothing moved
    # USDT: -100 - 0.1 (leg 1's fee) + 100.4 - 0.1004 (leg 3's) = +0.1996; BTC: leg 2's fee
    # of 0.000002 BTC; ETH: in by leg 2, out by leg 3.
    assert held["USDT"] == pytest.approx(
        {"balance": 100_000.1996, "start": 100_000.0, "change": 0.1996, "value": 100_000.1996}
    )
    assert held["BTC"] == pytest.approx(
        {"balance": 0.999998, "start": 1.0, "change": -0.000002, "value": 49_999.9}, abs=1e-9
    )
    assert held["ETH"] == pytest.approx(
        {"balance": 10.0, "start": 10.0, "change": 0.0, "value": 25_000.0}, abs=1e-9
    )
    assert found["change_value"] == pytest.approx(0.1996 - 0.000002 * 50_000.0)
    assert found["value"] == pytest.approx(sum(h["value"] for h in held.values()))


def test_balances_are_valued_in_the_first_primary_where_a_mark_says() -> None:
    portfolio = spot_account()
    in_btc = balances_view(portfolio, "BTC", STATUS_MARKS)
    assert in_btc["currencies"]["USDT"]["value"] == pytest.approx(100_000.0 / 50_000.0)
    assert in_btc["currencies"]["ETH"]["value"] == pytest.approx(10 * 0.05)
    assert in_btc["currencies"]["BTC"]["value"] == pytest.approx(1.0)
    # No BTC-USDT mark: BTC and ETH (through ETH-BTC) cannot be valued in USDT; the total is
    # of what can be, and names the rest.
    partial = balances_view(portfolio, "USDT", {"ETH-BTC": 0.05})
    assert partial["unvalued"] == ["BTC", "ETH"]
    assert [partial["currencies"][c]["value"] for c in ("BTC", "ETH")] == [None, None]
    assert partial["value"] == 100_000.0
    # Nor anything in BTC.
    assert balances_view(portfolio, "BTC", {})["unvalued"] == ["BTC", "ETH", "USDT"]
