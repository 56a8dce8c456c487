"""The market maker at work on the embedded simulator, end to end in-process.

Within 60 seconds of start both symbols are quoted on both sides, fills happen on both sides,
inventory stays within the maximum position, markouts and PnL are reported; stopping leaves no
open order at the venue.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import trio

from mm.app import Service
from mm.config import Config, Secrets, load_config, resolve_secrets
from tests.conftest import eventually
from tests.e2e.virtual import market_maker

Loader = Callable[..., tuple[Config, Secrets]]
MAX_POSITION_USD = 300.0
ORDER_USD = 50.0  # strategy.order_size_usd


def quoted_both_sides(service: Service, coin: str) -> bool:
    plan = market_maker(service).last_plans.get(coin)
    return plan is not None and plan.bid is not None and plan.ask is not None and bool(plan.orders)


def filled_both_sides(service: Service, coin: str) -> bool:
    position = service.trading.positions.get(coin)
    return position is not None and position.fills_buy > 0 and position.fills_sell > 0


async def test_the_market_maker_at_work(write_config: Any, autojump_clock: trio.abc.Clock) -> None:
    # Faster warmup and livelier flow than the defaults: the test takes seconds, not a minute.
    fast = {
        "strategy.volatility": {"sample_interval_s": 0.5, "min_samples": 5},
        "strategy.intensity": {"min_trades": 10, "recalibrate_s": 2.0},
        "sim.market": {"taker_a": 4.0},
    }
    path = write_config(strategy={"max_position_usd": MAX_POSITION_USD}, **fast)
    config = load_config(path, {})
    secrets = resolve_secrets(config, {})
    service = Service(config, secrets)
    coins = ("BTC", "ETH")
    async with trio.open_nursery() as nursery:
        await nursery.start(service.run)
        with trio.fail_after(90):
            await eventually(lambda: all(quoted_both_sides(service, c) for c in coins), within=60)
            await eventually(lambda: all(filled_both_sides(service, c) for c in coins), within=60)
            markouts = service.trading.markouts
            await eventually(lambda: all(markouts.count(c, 1_000) > 0 for c in coins), within=10)
            status = service.status()["trading"]
            for coin in coins:
                symbol = status["symbols"][coin]
                assert symbol["gate"] == "quoting"
                position = symbol["position"]
                assert (
                    abs(position["position"]) * position["mark"] <= 300.0 + 60.0
                )  # one order over
                assert "total" in position
                assert symbol["markouts"]["1s"]["count"] > 0
            assert service.venue is not None
            engine = service.venue.engine
            account = service.adapter.account
            assert engine.open_orders(account)  # quotes are resting before the stop
            service.request_stop("test finished")
    assert engine.open_orders(account) == []  # the stop pulled every order


def test_mm_status_shows_the_trading_table() -> None:
    from mm.cli import render_status

    status = {
        "version": "0.1.0",
        "service": "mm",
        "pid": 1,
        "state": "running",
        "admin_url": "http://127.0.0.1:9400",
        "uptime_seconds": 12.0,
        "config_hash": "abc",
        "healthy": True,
        "problems": [],
        "tree": {"name": "mm", "state": "running", "children": []},
        "trading": {
            "in_sync": True,
            "symbols": {
                "BTC": {
                    "allowed": "session phase force_flat",
                    "gate": "quoting",
                    "bid": 94990.5,
                    "ask": 95010.0,
                    "orders": 6,
                    "position": {"position": -0.0016, "total": 0.56, "fees": 0.17},
                    "markouts": {"1s": {"mean_bps": 5.6}, "5s": {"mean_bps": 5.4}},
                }
            },
        },
    }
    text = render_status(status)
    assert "trading: in sync" in text
    row = next(line for line in text.splitlines() if line.startswith("BTC"))
    for expected in ("quoting", "94,990.50", "95,010.00", "-0.00160", "0.56", "5.6/5.4/- bps"):
        assert expected in row
    assert "session phase force_flat" in row
    assert "ALLOWED" in text


async def test_pnl_and_position_gauges_follow_without_anyone_reading_status(
    write_config: Any, autojump_clock: trio.abc.Clock
) -> None:
    fast = {
        "strategy.volatility": {"sample_interval_s": 0.5, "min_samples": 5},
        "strategy.intensity": {"min_trades": 10, "recalibrate_s": 2.0},
        "sim.market": {"taker_a": 4.0},
    }
    config = load_config(write_config(**fast), {})
    service = Service(config, resolve_secrets(config, {}))
    registry = service.registry

    def gauges_exported() -> bool:
        labels = {"symbol": "BTC", "kind": "total"}
        fills = registry.get_sample_value("mm_fills_total", {"symbol": "BTC", "side": "buy"})
        return bool(fills) and registry.get_sample_value("mm_pnl_usd", labels) is not None

    async with trio.open_nursery() as nursery:
        await nursery.start(service.run)
        with trio.fail_after(60):
            await eventually(gauges_exported, within=45)
            assert registry.get_sample_value("mm_position_coins", {"symbol": "BTC"}) is not None
            sent = registry.get_sample_value("mm_decision_latency_seconds_count")
            assert sent is not None
            assert sent > 0
            service.request_stop("test finished")


def test_mm_status_shows_the_kill_switch_and_the_risk_decision() -> None:
    from mm.cli import render_status

    status = {
        "version": "0.1.0",
        "service": "mm",
        "pid": 1,
        "state": "running",
        "admin_url": "http://127.0.0.1:9400",
        "uptime_seconds": 12.0,
        "config_hash": "abc",
        "healthy": True,
        "problems": [],
        "tree": {"name": "mm", "state": "running", "children": []},
        "killswitch": {"tripped": True, "reason": "stale_data", "values": {"age_s": 31.0}},
        "risk": {"action": "kill", "reasons": ["market data 31 s old"]},
    }
    text = render_status(status)
    assert "kill switch: TRIPPED: stale_data" in text
    assert "risk decision: kill (market data 31 s old)" in text
