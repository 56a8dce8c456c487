"""Drive the simulator's pure core over virtual time and hand its tape to detectors.

``MarketDrive`` builds the engine and the synthetic market as ``SimVenue`` does, from the
shipped ``config.toml`` (its ``[sim.market]`` section and seed unless told otherwise), steps the
market every ``step_ms`` and turns what comes out into the service's own types: each engine trade
an ``mm.model.Trade`` (taker's side), and every ``book_interval_ms`` an ``mm.book.Book`` of the
engine's top ``L2_DEPTH`` levels, as the venue publishes them. Times are seconds from the start.
"""

from __future__ import annotations

import random
import tomllib
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import attrs

from mm.book import Book
from mm.model import Level, Side, Trade
from mm.settings import structure_section
from mm.venues.sim.config import CascadeConfig, MarketConfig, SimConfig
from mm.venues.sim.engine import Engine
from mm.venues.sim.events import Trade as SimTrade
from mm.venues.sim.market import FLOW_USER, LIQUIDITY_USER, SyntheticMarket
from mm.venues.sim.universe import UNIVERSE, specs_for
from mm.venues.sim.venue import L2_DEPTH
from tests.ids import hl_tid

SHIPPED_CONFIG = Path(__file__).resolve().parents[3] / "config.toml"
EPOCH_MS = 1_800_000_000_000


def shipped_sim() -> SimConfig:
    """The ``[sim]`` section of the shipped config.toml, checked as ``mm start`` checks it."""
    with SHIPPED_CONFIG.open("rb") as file:
        data = tomllib.load(file)
    return structure_section(data.get("sim", {}), SimConfig, "sim")


@attrs.frozen
class Tick:
    """What one market step produced: its time (s), its trades, and a book when one is due."""

    now: float
    trades: tuple[Trade, ...]
    book: Book | None


class MarketDrive:
    def __init__(
        self,
        coins: Sequence[str] = ("BTC",),
        *,
        market: MarketConfig | None = None,
        seed: int | None = None,
        book_interval_ms: int | None = None,
    ) -> None:
        sim = shipped_sim()
        self.config = market or sim.market
        self.book_interval_ms = book_interval_ms or sim.book_interval_ms
        self.specs = specs_for(coins)
        self.engine = Engine(self.specs, system_users=(LIQUIDITY_USER, FLOW_USER))
        start = {spec.index: UNIVERSE[spec.name].start_px for spec in self.specs}
        self.market = SyntheticMarket(
            self.engine, self.config, start, random.Random(sim.seed if seed is None else seed)
        )
        self.elapsed_ms = 0
        self._next_book_ms = 0
        self.market.seed_liquidity(EPOCH_MS)
        self.engine.events.clear()

    @property
    def now(self) -> float:
        return self.elapsed_ms / 1000

    def cascade(self, coin: str, cascade: CascadeConfig) -> None:
        """Start ``cascade`` on ``coin`` now, as ``SimVenue.start_cascade`` does."""
        spec = self.engine.by_name[coin]
        self.market.start_cascade(
            spec.index,
            cascade.move,
            cascade.duration_s,
            EPOCH_MS + self.elapsed_ms,
            intensity=cascade.intensity,
            one_sided=cascade.one_sided,
            thinning=cascade.thinning,
        )

    def book(self, asset: int) -> Book:
        spec = self.specs[asset]
        book = self.engine.books[asset]

        def levels(is_buy: bool) -> tuple[Level, ...]:
            return tuple(
                Level(spec.px_float(px), spec.sz_float(sz), n)
                for px, sz, n in book.levels(is_buy, L2_DEPTH)
            )

        time_ms = EPOCH_MS + self.elapsed_ms
        return Book(spec.name, time_ms, levels(True), levels(False), time_ms)

    def _trades(self, asset: int) -> tuple[Trade, ...]:
        spec = self.specs[asset]
        found = tuple(
            Trade(
                spec.name,
                Side.BUY if event.taker_is_buy else Side.SELL,
                spec.px_float(event.px),
                spec.sz_float(event.sz),
                event.time,
                hl_tid(event.tid),
            )
            for event in self.engine.events
            if isinstance(event, SimTrade) and event.asset == asset
        )
        return found

    def ticks(self, seconds: float, asset: int = 0) -> Iterator[Tick]:
        """Step the market for ``seconds``; one Tick per step for ``asset``."""
        step_ms = self.config.step_ms
        end_ms = self.elapsed_ms + round(seconds * 1000)
        while self.elapsed_ms < end_ms:
            self.elapsed_ms += step_ms
            self.market.step(EPOCH_MS + self.elapsed_ms, step_ms / 1000)
            trades = self._trades(asset)
            self.engine.events.clear()
            book = None
            if self.elapsed_ms >= self._next_book_ms:
                self._next_book_ms = self.elapsed_ms + self.book_interval_ms
                book = self.book(asset)
            yield Tick(self.now, trades, book)

    def feed(
        self,
        seconds: float,
        on_trade: Callable[[Trade, float], None],
        on_book: Callable[[Book, float], None],
        asset: int = 0,
    ) -> Iterator[float]:
        """Step for ``seconds``, feeding every trade and due book; yields each step's time."""
        for tick in self.ticks(seconds, asset):
            for trade in tick.trades:
                on_trade(trade, tick.now)
            if tick.book is not None:
                on_book(tick.book, tick.now)
            yield tick.now
