"""Triangular arbitrage behind the Strategy protocol: books in, perishable signals out.

At each run of the strategy task (``open``) it reads its symbols' instruments and the
account's taker fees and funds increments (the venue client's ``SpotTerms``), finds every
triangle from a primary quote back to it among them (``triangles.discover``) and builds the
``Evaluator`` over them. Each new book (``on_book``) re-evaluates the triangles it is in, on the
service's wall clock in milliseconds (the clock the venue stamps books with: the book-age gate
compares the two); the signals found wait in a list until the task asks ``decide``, which hands
them out as commands. The task gives each to the triangle desk (``mm.strategies.triarb.desk``),
which starts it for a waiting slot or queues it only when there is room: the perishable rule
is applied there, never by waiting here. A signal whose triangle trades a symbol the feed
flags as stale, or made while the user stream is out of sync, is not handed out
(``withheld``, counted): the books it was evaluated on are not the venue's. Nor is one whose
books are no longer the latest: the task hands over every new book before deciding, so a
signal made on the first of a batch, with a pair's older book, is superseded by the
evaluation of that pair's newer one (which signals again if the triangle still pays).

Plain logic: no I/O, nothing sent. Fails: ``open`` raises ``RuntimeError`` when the venue client
offers no spot terms (not a spot venue) or when no triangle can be made from the symbols and
primaries (the config is checked for both at start, so this is a venue listing fewer symbols
than configured); the supervisor restarts the task.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from mm import clock
from mm.book import Book
from mm.model import Fill, Instrument, Trade
from mm.portfolio import Portfolio
from mm.strategies.base import Decision, MarketView, StrategyContext
from mm.strategies.market_maker.engine import StrategyConfig
from mm.strategies.triarb.config import TriarbConfig
from mm.strategies.triarb.signals import Evaluator, Signal
from mm.strategies.triarb.triangles import BookView, Terms, discover

__all__ = ["TriangularArbitrage", "balances_view", "spot_terms"]

# Nothing to do on a timer: every decision is driven by a book.
WAKE_S = 1.0


class _Pending:
    """The evaluator's signal sink: keeps what it is sent until ``decide`` takes it (never
    full: the desk's channel is where a signal is dropped)."""

    def __init__(self) -> None:
        self.signals: list[Signal] = []

    def send_nowait(self, value: Signal, /) -> None:
        self.signals.append(value)

    def take(self) -> list[Signal]:
        taken, self.signals = self.signals, []
        return taken


def spot_terms(
    config: TriarbConfig, instruments: Mapping[str, Instrument], context: StrategyContext
) -> Terms:
    """The evaluation's terms: the section's with the venue's taker fee and funds increment of
    each symbol. ``RuntimeError`` when the venue client has none (not a spot venue)."""
    spot = context.spot()
    if spot is None:
        raise RuntimeError("the venue client offers no spot terms (taker fees): not a spot venue")
    return config.terms(
        {symbol: spot.taker_fee(symbol) for symbol in instruments},
        {symbol: spot.funds_increment(symbol) for symbol in instruments},
    )


def balances_view(portfolio: Portfolio, primary: str, marks: Mapping[str, float]) -> dict[str, Any]:
    """The portfolio's balances for ``/status``: per currency held or moved, its ``balance``,
    its ``start`` (the venue's balance as last read: at start, or re-read by a kill switch),
    the ``change`` since, and its ``value`` in ``primary`` at ``marks`` (``None`` where no mark
    says); and over them the ``value`` and the ``change_value`` (what the changes are worth at
    ``marks``: the trading's result at today's prices) of the currencies valued, ``unvalued``
    naming the others. Currencies with nothing held and nothing moved are left out."""
    balances = portfolio.balances
    unit = portfolio.currency_mark(primary, marks)
    currencies: dict[str, dict[str, Any]] = {}
    total = change_total = 0.0
    unvalued: list[str] = []
    for currency, balance in balances.snapshot().items():
        change = balances.since_seeded(currency)
        if balance == 0 and change == 0:
            continue
        mark = portfolio.currency_mark(currency, marks)
        rate = None if mark is None or not unit else mark / unit
        value = None if rate is None else balance * rate
        currencies[currency] = {
            "balance": balance,
            "start": balance - change,
            "change": change,
            "value": value,
        }
        if rate is None:
            unvalued.append(currency)
        else:
            total += balance * rate
            change_total += change * rate
    return {
        "in": primary,
        "currencies": currencies,
        "value": total,
        "change_value": change_total,
        "unvalued": unvalued,
    }


class TriangularArbitrage:
    """The ``triarb`` strategy (see the module)."""

    def __init__(
        self,
        strategy: StrategyConfig,
        config: TriarbConfig,
        context: StrategyContext,
        *,
        wall_ms: Callable[[], int] = clock.wall_ms,
    ) -> None:
        self.config = config
        self.context = context
        self._symbols = strategy.symbols
        self._max_position_usd = strategy.max_position_usd
        self._wall_ms = wall_ms
        self._pending = _Pending()
        self.evaluator: Evaluator | None = None
        self.triangles = 0
        self.withheld: Counter[str] = Counter()  # signals not handed out, by why

    @property
    def symbols(self) -> tuple[str, ...]:
        return self._symbols

    @property
    def max_position_usd(self) -> float:
        return self._max_position_usd

    def open(self, now: float) -> None:
        instruments = {symbol: self.context.instruments(symbol) for symbol in self._symbols}
        triangles = discover(instruments.values(), self.config.primaries)
        if not triangles:
            raise RuntimeError(
                f"no triangle from {list(self.config.primaries)} among {list(self._symbols)}"
            )
        self.triangles = len(triangles)
        self._pending = _Pending()
        self.evaluator = Evaluator(
            triangles,
            instruments,
            spot_terms(self.config, instruments, self.context),
            self.config.min_profit_bps,
            self._pending,
        )

    def on_book(self, book: Book, now: float) -> None:
        if self.evaluator is not None:
            self.evaluator.on_book(book.coin, BookView.of(book), self._wall_ms())

    def on_trade(self, trade: Trade, now: float) -> None:
        return None

    def on_fill(self, fill: Fill, now: float) -> None:
        return None  # the desk's slots hear their own fills

    def on_markout(self, coin: str, horizon_ms: int, bps: float, now: float) -> None:
        return None

    def decide(self, now: float, view: MarketView) -> Sequence[Decision]:
        signals = self._pending.take()
        if not signals:
            return ()
        if not view.in_sync:
            self.withheld["out of sync"] += len(signals)
            return ()
        stale = view.stale
        evaluator = self.evaluator
        assert evaluator is not None  # signals come from it
        handed: list[Decision] = []
        for signal in signals:
            symbols = signal.triangle.symbols
            if stale and any(symbol in stale for symbol in symbols):
                self.withheld["stale book"] += 1
            elif not evaluator.is_latest(signal):
                # A newer book of one of its pairs came in the same batch: the triangle was
                # evaluated again on it (and signalled again if it still pays).
                self.withheld["superseded"] += 1
            else:
                handed.append(signal)
        return handed

    def wake_in(self, now: float) -> float:
        return WAKE_S

    def cascade_severity(self, now: float) -> float:
        return 0.0  # no market-making risk to read: every leg takes

    def holding(self, coin: str) -> str | None:
        return None

    def status(self, coin: str, now: float) -> Mapping[str, Any]:
        """The pair as the triangles see it: its book's best bid and ask as last evaluated and
        how old that book is (by the venue's stamp, against the service's wall clock: what the
        book-age gate compares), and the fills on it by side. No position: a spot pair's
        position is no holding (``balances`` says what is held)."""
        evaluator = self.evaluator
        book = evaluator.latest(coin) if evaluator is not None else None
        if evaluator is None:
            gate = "not open"
        elif book is None:
            gate = "no book yet"
        else:
            gate = "evaluating"
        traded = self.context.portfolio.positions.get(coin)
        return {
            "gate": gate,
            "book": None
            if book is None
            else {
                "bid": book.bids[0][0] if book.bids else None,
                "ask": book.asks[0][0] if book.asks else None,
                "time_ms": book.time_ms,
                "age_ms": self._wall_ms() - book.time_ms,
            },
            "fills": {"buy": traded.fills_buy, "sell": traded.fills_sell},
        }

    def balances(self, marks: Mapping[str, float]) -> dict[str, Any]:
        """What the account holds, per currency (``view.balances``, from the portfolio: the
        venue's balances as last read, moved by every fill since), valued in the first primary
        at ``marks`` (the portfolio's valuation; ``None`` where no mark says)."""
        primary = self.config.primaries[0]
        return balances_view(self.context.portfolio, primary, marks)

    def decisions(self) -> Mapping[str, Any]:
        evaluator = self.evaluator
        if evaluator is None:
            return {"triangles": self.triangles}
        return {
            "triangles": self.triangles,
            "evaluations": evaluator.evaluations,
            "below_min_profit": evaluator.below_min_profit,
            "prefiltered": evaluator.prefiltered,
            "refusals": {reason.value: n for reason, n in evaluator.refusals.items()},
            "signals": evaluator.sent,
            "withheld": dict(self.withheld),
        }
