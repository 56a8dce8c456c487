"""The shipped config.toml on a fresh simulator with a new key trades for minutes, untripped.

Runs the whole service in-process on virtual time (``tests/e2e/virtual.py``). Issue 12, item 1:
the drawdown was measured against the account value read once at startup (0 for a new account),
so a $0.03 dip after a $1 peak tripped the kill switch about a minute after every start.
"""

from __future__ import annotations

import secrets
from pathlib import Path

import trio

from mm.app import Service
from mm.venues.sim.universe import UNIVERSE
from tests.e2e.virtual import resting_sides, shipped_service


def judging(service: Service, monitor: str) -> float | None:
    labels = {"monitor": monitor}
    return service.registry.get_sample_value("mm_risk_monitor_judging", labels)


async def test_fresh_account_trades_five_minutes_without_a_trip(
    tmp_path: Path, autojump_clock: trio.abc.Clock
) -> None:
    key = "0x" + secrets.token_hex(32)  # a new account: the simulator funds it on first use
    async with shipped_service(tmp_path / "run", secrets={"MM_HL_PRIVATE_KEY": key}) as service:
        await trio.sleep(300.0)
        status = service.status()
        assert status["killswitch"]["tripped"] is False, status["killswitch"]
        assert status["mode"]["mode"] == "normal", status["mode"]
        # The account value is the venue's, current, and the drawdown monitor judges with it.
        assert status["risk"]["account_value"] > 90_000.0
        assert status["risk"]["cannot_judge"] == {}
        assert judging(service, "drawdown") == 1.0
        positions = service.trading.positions.snapshot({})
        for coin in service.config.strategy.symbols:
            assert positions[coin]["fills_buy"] > 0, coin
            assert positions[coin]["fills_sell"] > 0, coin
        # Still quoting both sides of every coin at the venue (a fill or a requote under the
        # order budget leaves a side empty for a moment: look for up to 15 s).
        symbols = set(service.config.strategy.symbols)
        quoted: set[str] = set()
        with trio.move_on_after(15.0):
            while quoted != symbols:
                sides = resting_sides(service)
                quoted |= {coin for coin in symbols if sides.get(coin) == {"B", "A"}}
                await trio.sleep(0.1)
        assert quoted == symbols


async def test_drawdown_cannot_be_judged_before_the_account_value_is_known(
    tmp_path: Path, autojump_clock: trio.abc.Clock
) -> None:
    # The service built from the shipped config, not started: no account reading yet.
    from mm.config import load_config, resolve_secrets
    from tests.e2e.virtual import SHIPPED_CONFIG, shipped_env

    env = shipped_env(tmp_path / "run")
    config = load_config(SHIPPED_CONFIG, env)
    service = Service(config, resolve_secrets(config, env))
    service.risk.peak_pnl = 5.0  # PnL was $5 up and is back to 0: a drawdown to judge
    decision = service.risk.evaluate_now()
    assert not decision.kill
    status = service.risk.status()
    assert status["account_value"] is None
    assert "cannot judge" in status["cannot_judge"]["drawdown"]
    assert judging(service, "drawdown") == 0.0
    assert judging(service, "loss") == 1.0


def spanning_listings() -> list[str]:
    """The simulator's first four coins, and for every size step (szDecimals) it lists, its
    cheapest and its dearest coin: every price scale and lot size the simulator can list, in a
    handful of coins (all hundred would wait minutes on the shipped order budget)."""
    chosen = list(UNIVERSE)[:4]
    for sz_decimals in sorted({listing.sz_decimals for listing in UNIVERSE.values()}):
        step = [coin for coin, listing in UNIVERSE.items() if listing.sz_decimals == sz_decimals]
        step.sort(key=lambda coin: UNIVERSE[coin].start_px)
        chosen += [coin for coin in (step[0], step[-1]) if coin not in chosen]
    return chosen


async def test_the_shipped_limits_quote_every_price_scale_the_simulator_lists(
    tmp_path: Path, autojump_clock: trio.abc.Clock
) -> None:
    # Only the list of coins changes: every limit is the shipped one. A size limit in coin
    # units (pretrade.max_order_sz = 1.0) refused every order of DOGE at the $50 order size.
    coins = spanning_listings()
    listed = ", ".join(f'"{coin}"' for coin in coins)
    env = {
        "MM_SIM__COINS": f"[{listed}]",
        "MM_FEEDS__COINS": f"[{listed}]",
        "MM_STRATEGY__SYMBOLS": f"[{listed}]",
        "MM_SESSION__TRACKS": f'[{{name = "crypto", symbols = [{listed}], always_open = true}}]',
    }
    async with shipped_service(tmp_path / "run", secrets=env) as service:
        quoted: set[str] = set()
        with trio.move_on_after(120.0):
            while quoted != set(coins):
                sides = resting_sides(service)
                quoted |= {coin for coin in coins if sides.get(coin) == {"B", "A"}}
                await trio.sleep(0.1)
        assert quoted == set(coins)
        refused = {
            sample.labels["check"]: sample.value
            for metric in service.registry.collect()
            if metric.name == "mm_pretrade_rejections"
            for sample in metric.samples
            if sample.name.endswith("_total")
        }
        assert refused.get("max_notional", 0.0) == 0.0
