"""A strategy's multi-leg command on the shipped service and the simulator (virtual time).

A two-leg group (buy BTC, then buy ETH, both IOC through the book) is decided by a strategy of
the test's own, registered under the shipped kind: the ETH leg leaves only after the BTC leg's
fill reached the service, sized by the fraction of the BTC leg that filled, and the group ends
done. A group whose first leg cannot match is refused by the venue in its own words and stops
there: no ETH order is ever sent.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pytest
import trio

from mm import clock
from mm.app import Service
from mm.book import Book
from mm.execution.commands import Command, GroupState, Leg, MultiLeg
from mm.model import Fill, Side, Tif, Trade
from mm.strategies import registry
from mm.strategies.base import MarketView, StrategyContext
from mm.strategies.market_maker.engine import StrategyConfig
from mm.strategies.triarb.config import TriarbConfig
from tests.e2e.virtual import shipped_service, wait_for

IOC_CANCEL = "Order could not immediately match against any resting orders."


class TwoLegs:
    """Decides one group, BTC then ETH, once ``armed``; ``through`` says how far past the
    opposite best price the legs go (negative: far from it, so that nothing matches)."""

    def __init__(self, config: StrategyConfig, context: StrategyContext) -> None:
        self.config = config
        self.context = context
        self.books: dict[str, Book] = {}
        self.fills: list[tuple[Fill, int]] = []  # each fill and the wall time it reached us
        self.armed = False
        self.through = 0.003
        self.decided: MultiLeg | None = None

    @property
    def symbols(self) -> tuple[str, ...]:
        return ("BTC", "ETH")

    @property
    def max_position_usd(self) -> float:
        return self.config.max_position_usd

    def open(self, now: float) -> None:
        pass

    def on_book(self, book: Book, now: float) -> None:
        self.books[book.coin] = book

    def on_trade(self, trade: Trade, now: float) -> None:
        pass

    def on_fill(self, fill: Fill, now: float) -> None:
        self.fills.append((fill, clock.wall_ms()))

    def on_markout(self, coin: str, horizon_ms: int, bps: float, now: float) -> None:
        pass

    def decide(self, now: float, view: MarketView) -> Sequence[Command]:
        if not self.armed or self.decided is not None or not view.in_sync:
            return []
        legs = []
        for coin, sz in (("BTC", 0.0004), ("ETH", 0.01)):
            book = self.books.get(coin)
            if book is None or book.best_ask is None:
                return []
            instrument = self.context.instruments(coin)
            px = instrument.round_price(book.best_ask * (1 + self.through), up=True)
            legs.append(Leg(coin, Side.BUY, sz, px))
        self.decided = MultiLeg("two-legs", tuple(legs))
        return [self.decided]

    def wake_in(self, now: float) -> float:
        return 0.5

    def cascade_severity(self, now: float) -> float:
        return 0.0

    def holding(self, coin: str) -> str | None:
        return None

    def status(self, coin: str, now: float) -> Mapping[str, Any]:
        return {}

    def decisions(self) -> Mapping[str, Any]:
        return {}


async def armed(service: Service, through: float) -> TwoLegs:
    strategy = service.trading.strategy
    assert isinstance(strategy, TwoLegs)
    # The session opens the symbols a little after start; until then the checks refuse.
    await wait_for(
        lambda: (
            all(service.permissions.permission(c).closed is None for c in ("BTC", "ETH"))
            and service.adapter.in_sync()
        ),
        within=60,
    )
    strategy.through = through
    strategy.armed = True
    return strategy


def two_legs(config: StrategyConfig, _triarb: TriarbConfig, context: StrategyContext) -> TwoLegs:
    return TwoLegs(config, context)


def ioc_orders(service: Service, coin: str) -> list[Any]:
    orders = service.adapter.dispatcher.registry
    return [order for order in orders if order.coin == coin and order.tif is Tif.IOC]


@pytest.mark.trio
async def test_the_second_leg_is_sent_only_from_the_first_legs_fill(
    tmp_path: Path, autojump_clock: trio.testing.MockClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(
        registry.STRATEGIES,
        "market_maker",
        lambda config, _triarb, context: TwoLegs(config, context),
    )
    async with shipped_service(tmp_path / "run") as service:
        strategy = await armed(service, 0.003)
        with trio.fail_after(60):
            await wait_for(lambda: bool(service.trading.groups), within=60)
        (group,) = service.trading.groups
        assert group.state is GroupState.DONE, group.reason
        (btc,) = ioc_orders(service, "BTC")
        (eth,) = ioc_orders(service, "ETH")
        btc_fills = [(fill, at) for fill, at in strategy.fills if fill.coin == "BTC"]
        assert btc_fills, "the first leg filled"
        # The ETH leg was created after the BTC fill had reached the service, never before.
        assert eth.created_ms >= max(at for _, at in btc_fills)
        filled = sum(fill.sz for fill, _ in btc_fills)
        assert filled == pytest.approx(btc.filled_sz)
        assert eth.orig_sz == pytest.approx(min(filled / 0.0004, 1.0) * 0.01, abs=1e-4)
        await wait_for(lambda: any(f.coin == "ETH" for f, _ in strategy.fills), within=10)


@pytest.mark.trio
async def test_a_refused_first_leg_stops_the_group_and_the_second_never_leaves(
    tmp_path: Path, autojump_clock: trio.testing.MockClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(
        registry.STRATEGIES,
        "market_maker",
        lambda config, _triarb, context: TwoLegs(config, context),
    )
    async with shipped_service(tmp_path / "run") as service:
        await armed(service, -0.05)  # 5% below the best ask: nothing to match
        with trio.fail_after(60):
            await wait_for(lambda: bool(service.trading.groups), within=60)
        (group,) = service.trading.groups
        assert group.state is GroupState.STOPPED
        # The venue's words: its answer's text, or its report's status word, whichever the
        # service had first.
        assert group.reason in {
            f"leg 0 (buy BTC) refused: {IOC_CANCEL}",
            "leg 0 (buy BTC) refused: iocCancelRejected",
        }
        assert len(ioc_orders(service, "BTC")) == 1
        assert ioc_orders(service, "ETH") == []
