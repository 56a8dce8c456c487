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
from mm.model import Instrument, PlaceOrder, Rejected
from mm.portfolio import Portfolio
from mm.strategies.base import MarketView, StrategyContext
from mm.strategies.market_maker.engine import StrategyConfig
from mm.strategies.triarb.config import TriarbConfig
from mm.strategies.triarb.signals import Signal
from mm.strategies.triarb.strategy import TriangularArbitrage, spot_terms
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
    assert arb.status("BTC-USDT", 0.0) == {"gate": "not open"}
    arb.open(0.0)
    assert arb.triangles == 2  # USDT>BTC>ETH>USDT and back; XRP-USDT closes none
    assert arb.evaluator is not None
    assert arb.evaluator._terms == Terms(
        Decimal(1000),
        250,
        {s: fees[s] for s in SYMBOLS},
        INCREMENTS,
    )
    assert arb.status("BTC-USDT", 0.0) == {"gate": "evaluating"}
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
