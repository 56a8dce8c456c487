"""The strategy registry: ``strategy.kind`` -> the strategy the service runs.

One builder per kind in ``mm.strategies.kinds.KINDS``, each taking the ``[strategy]`` section,
the ``[triarb]`` section and the ``StrategyContext`` (what the strategy reads). The market
maker's keys are the ``[strategy]`` section itself; triangular arbitrage reads its symbols
there and the rest from ``[triarb]``. An unknown kind cannot reach here: the config check
refuses it at start, naming ``strategy.kind``; ``build_strategy`` says so all the same if one
is built by hand.
"""

from __future__ import annotations

from collections.abc import Callable

from mm.strategies.base import Strategy, StrategyContext
from mm.strategies.market_maker.engine import StrategyConfig
from mm.strategies.market_maker.strategy import MarketMaker
from mm.strategies.triarb.config import TriarbConfig
from mm.strategies.triarb.strategy import TriangularArbitrage

Builder = Callable[[StrategyConfig, TriarbConfig, StrategyContext], Strategy]


def _market_maker(
    config: StrategyConfig, _triarb: TriarbConfig, context: StrategyContext
) -> Strategy:
    return MarketMaker(config, context)


STRATEGIES: dict[str, Builder] = {
    "market_maker": _market_maker,
    "triarb": TriangularArbitrage,
}


def build_strategy(
    config: StrategyConfig, context: StrategyContext, triarb: TriarbConfig | None = None
) -> Strategy:
    """The strategy ``config.kind`` names, built with what it reads."""
    builder = STRATEGIES.get(config.kind)
    if builder is None:
        raise ValueError(
            f"strategy.kind: must be one of {', '.join(STRATEGIES)}, got {config.kind!r}"
        )
    return builder(config, triarb if triarb is not None else TriarbConfig(), context)
