"""The generic strategy task runs whatever strategy the registry builds, on the shipped service.

A strategy of the test's own (not the market maker) is registered under the shipped kind: the
task tells it of books, trades and fills, its quote ladders reach the venue in the time in
force it asks for (a post-only bid rests, a GTC bid that crosses fills), and its fill comes to
it after the portfolio counted it. A book is decided on as the bus publishes it, with no task
switch before its ladder waits for the slot. Virtual time (autojump).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import attrs
import pytest
import trio

from mm.book import Book
from mm.execution.commands import Command, QuoteLadder
from mm.model import DesiredOrder, Fill, Side, Tif, Trade
from mm.strategies import registry
from mm.strategies.base import MarketView, StrategyContext
from mm.strategies.market_maker.engine import StrategyConfig
from tests.e2e.virtual import positions_at_venue, shipped_service, venue, wait_for


class Probe:
    """Buys BTC once with a crossing GTC order and rests one far post-only ETH bid."""

    def __init__(self, config: StrategyConfig, context: StrategyContext) -> None:
        self.context = context
        self.config = config
        self.books: dict[str, int] = {}  # books told of, per symbol
        self.last: dict[str, Book] = {}
        self.trades = 0
        self.fills: list[tuple[Fill, float]] = []  # the fill and the portfolio's position then
        self.ladders: dict[str, QuoteLadder] = {}
        self.views: list[MarketView] = []  # what each decision was handed

    @property
    def symbols(self) -> tuple[str, ...]:
        return ("BTC", "ETH")

    @property
    def max_position_usd(self) -> float:
        return self.config.max_position_usd

    def open(self, now: float) -> None:
        self.ladders.clear()

    def on_book(self, book: Book, now: float) -> None:
        self.books[book.coin] = self.books.get(book.coin, 0) + 1
        self.last[book.coin] = book

    def on_trade(self, trade: Trade, now: float) -> None:
        self.trades += 1

    def on_fill(self, fill: Fill, now: float) -> None:
        self.fills.append((fill, self.context.portfolio.position(fill.coin)))

    def on_markout(self, coin: str, horizon_ms: int, bps: float, now: float) -> None:
        pass

    def decide(self, now: float, view: MarketView) -> Sequence[Command]:
        """Each ladder once built stays the same (the slot keeps what rests), sent on every
        decision until it is wanted no more: the session may refuse the first ones."""
        self.views.append(view)
        commands: list[Command] = []
        for coin, book in self.last.items():
            if not view.in_sync or book.mid is None or book.best_ask is None:
                continue
            if coin == "BTC" and self.fills:
                commands.append(QuoteLadder(coin, ()))  # bought: nothing more
                continue
            if coin not in self.ladders:
                instrument = self.context.instruments(coin)
                if coin == "BTC":
                    px = instrument.round_price(book.best_ask * 1.0005, up=True)
                    tif = Tif.GTC
                else:
                    px = instrument.round_price(book.mid * 0.97, up=False)
                    tif = Tif.ALO
                sz = instrument.round_size(12.0 / px, up=True)
                desired = (DesiredOrder(Side.BUY, px, sz),)
                tick = float(instrument.price_increment)
                self.ladders[coin] = QuoteLadder(coin, desired, tick, 0, tif)
            commands.append(self.ladders[coin])
        return commands

    def wake_in(self, now: float) -> float:
        return 1.0

    def cascade_severity(self, now: float) -> float:
        return 0.0

    def holding(self, coin: str) -> str | None:
        return None

    def status(self, coin: str, now: float) -> Mapping[str, Any]:
        return {"gate": "probe"}

    def decisions(self) -> Mapping[str, Any]:
        return {}


@pytest.mark.trio
async def test_the_task_runs_a_registered_strategy_end_to_end(
    tmp_path: Path, autojump_clock: trio.testing.MockClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(
        registry.STRATEGIES, "market_maker", lambda config, _triarb, context: Probe(config, context)
    )
    async with shipped_service(tmp_path / "run") as service:
        probe = service.trading.strategy
        assert isinstance(probe, Probe)
        with trio.fail_after(120):
            await wait_for(lambda: bool(probe.fills), within=120)
            sim = venue(service)
            await wait_for(
                lambda: any(True for _ in sim.engine.open_orders(service.adapter.account)),
                within=30,
            )
        assert probe.books.get("BTC", 0) > 0
        assert probe.books.get("ETH", 0) > 0
        assert probe.trades > 0
        fill, position_then = probe.fills[0]
        assert fill.coin == "BTC"
        assert fill.side is Side.BUY
        assert position_then == pytest.approx(fill.sz)  # the portfolio counted it first
        assert positions_at_venue(service)["BTC"] == pytest.approx(fill.sz)
        resting = [
            (sim.specs[order.asset].name, order.is_buy)
            for order in sim.engine.open_orders(service.adapter.account)
        ]
        assert resting == [("ETH", True)]  # the far post-only bid, and nothing else
        assert service.status()["trading"]["symbols"]["BTC"]["gate"] == "probe"


@pytest.mark.trio
async def test_a_book_is_decided_on_as_the_bus_publishes_it(
    tmp_path: Path, autojump_clock: trio.testing.MockClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    """When ``publish`` returns, the strategy was told of the book, decided on it and its
    ladder waits in the slot's mailbox: no task ran meanwhile. The strategy task's timer
    (``wake_in``) decides on its own when no book comes."""
    monkeypatch.setitem(
        registry.STRATEGIES, "market_maker", lambda config, _triarb, context: Probe(config, context)
    )
    async with shipped_service(tmp_path / "run") as service:
        probe = service.trading.strategy
        assert isinstance(probe, Probe)
        with trio.fail_after(120):
            await wait_for(lambda: "BTC" in probe.ladders, within=120)
        mailboxes = service.trading.mailboxes
        await wait_for(lambda: not any(len(box) for box in mailboxes), within=30)
        bus = service.adapter.bus
        latest = bus.latest("BTC")
        assert latest is not None
        book = attrs.evolve(latest, time_ms=latest.time_ms + 1)
        told, decided = probe.books["BTC"], len(probe.views)
        bus.publish(book)
        assert probe.books["BTC"] == told + 1
        assert probe.last["BTC"] is book
        assert len(probe.views) == decided + 1
        assert probe.views[-1].changed in {("BTC",), None}  # None: every symbol was due
        assert any(len(box) for box in mailboxes)  # the ladder, for the slot's next pass
        # No book for a while (the market's are held back): the timer decides on its own.
        decided = len(probe.views)
        monkeypatch.setattr(bus, "publish", lambda book: None)
        await trio.sleep(2.5)  # wake_in is 1 s
        assert len(probe.views) >= decided + 2
        assert probe.views[-1].changed is None
