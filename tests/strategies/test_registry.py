"""strategy.kind selects the strategy: the registry builds each kind the config accepts, a bad
kind fails at start naming the key, and the market maker keeps its keys in [strategy]."""

from __future__ import annotations

import attrs
import pytest
from prometheus_client import CollectorRegistry

from mm.config import Config, ConfigError, structure
from mm.execution.permissions import PermissionBoard
from mm.model import Instrument
from mm.portfolio import Portfolio
from mm.strategies.base import Strategy, StrategyContext
from mm.strategies.kinds import KINDS
from mm.strategies.market_maker.engine import StrategyConfig
from mm.strategies.market_maker.strategy import MarketMaker
from mm.strategies.registry import STRATEGIES, build_strategy


def context() -> StrategyContext:
    def instrument(coin: str) -> Instrument:
        raise AssertionError("not read before the strategy task opens it")

    return StrategyContext(
        permissions=PermissionBoard(),
        portfolio=Portfolio((), instrument),
        instruments=instrument,
        live_orders=lambda coin: 0,
        registry=CollectorRegistry(),
    )


def test_every_kind_the_config_accepts_has_a_strategy() -> None:
    assert tuple(STRATEGIES) == KINDS


def test_the_default_kind_is_the_market_maker_with_its_section() -> None:
    config = structure({"strategy": {"symbols": ["ETH"], "gamma": 0.1}})
    assert config.strategy.kind == "market_maker"
    strategy: Strategy = build_strategy(config.strategy, context())
    assert isinstance(strategy, MarketMaker)
    assert strategy.symbols == ("ETH",)
    assert strategy.config.gamma == 0.1
    assert Config().strategy.model == "glft"


def test_a_bad_kind_fails_at_start_naming_the_key() -> None:
    with pytest.raises(ConfigError) as caught:
        structure({"strategy": {"kind": "arbitrage"}})
    assert any(
        line.startswith("strategy.kind: must be one of market_maker, triarb, got 'arbitrage'")
        for line in caught.value.errors
    )


def test_a_strategy_built_by_hand_with_a_bad_kind_is_refused() -> None:
    config = attrs.evolve(StrategyConfig(), kind="nonesuch")  # bypasses the section's check
    with pytest.raises(ValueError, match=r"^strategy\.kind: must be one of market_maker"):
        build_strategy(config, context())
