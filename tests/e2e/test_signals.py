"""Decisions that are computed act (issue 12, item 3), with the shipped config.toml on virtual
time and the simulator's market regimes.

- A liquidation cascade (``POST /sim/cascade``) is seen by the cascade severity computed from the
  tape and the book: the quote gate pulls on ``cascade`` and the risk cascade monitor (not the
  price-velocity one) asks for PULL; its WIDEN decision reaches the quotes as the ``risk`` factor.
- A slow one-sided (informed) trend makes the flow toxic: the gate's ``toxic_flow`` reason acts.
- With ``strategy.gate.require_edge`` switched on (the shipped min_edge_bps), a flat book with no
  directional edge is not quoted: ``no_edge_flat``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import trio

from mm.app import Service
from mm.risk.monitors import Action
from mm.strategies.market_maker.spread import SpreadFactor
from tests.e2e.virtual import market_maker, resting_sides, shipped_service, sim_client, wait_for


def gate_count(service: Service, coin: str, reason: str) -> float:
    labels = {"symbol": coin, "reason": reason}
    return service.registry.get_sample_value("mm_quote_gate_decisions_total", labels) or 0.0


def quoting(service: Service) -> bool:
    sides = resting_sides(service)
    return all(sides.get(coin) == {"B", "A"} for coin in service.config.strategy.symbols)


async def start_cascade(service: Service, **cascade: Any) -> None:
    async with sim_client(service) as sim:
        reply = await sim.post("/sim/cascade", json=cascade)
        assert reply.status_code == 200, reply.text


async def test_a_cascade_pulls_quotes_through_the_gate_and_the_cascade_monitor(
    tmp_path: Path, autojump_clock: trio.abc.Clock
) -> None:
    async with shipped_service(tmp_path / "run") as service:
        await wait_for(lambda: quoting(service), within=90.0)
        assert service.risk.last_state is not None
        assert service.risk.last_state.cascade_severity < service.config.risk.cascade_widen
        await start_cascade(service, coin="BTC", move=-0.05, duration_s=10.0)
        pulled = service.config.risk.cascade_pull

        def cascade_monitor_pulls() -> bool:
            decision = service.risk.decision
            return decision is not None and any(
                a.monitor == "cascade" and a.action is Action.PULL for a in decision.assessments
            )

        await wait_for(cascade_monitor_pulls, within=10.0, poll=0.05)
        assert service.risk.last_state is not None
        assert service.risk.last_state.cascade_severity >= pulled
        assert gate_count(service, "BTC", "cascade") > 0
        await wait_for(lambda: not resting_sides(service), within=2.0, poll=0.05)
        signals = service.status()["trading"]["symbols"]["BTC"]["signals"]
        assert signals["cascade_severity"] >= pulled
        assert not service.killswitch.switch.tripped  # a 5% cascade pulls, it does not kill


async def test_the_risk_widen_decision_widens_the_quotes(
    tmp_path: Path, autojump_clock: trio.abc.Clock
) -> None:
    async with shipped_service(tmp_path / "run") as service:
        await wait_for(lambda: quoting(service), within=90.0)
        # A fast move with the flow unchanged: a milder severity, in the monitor's WIDEN band.
        await start_cascade(
            service, coin="BTC", move=-0.06, duration_s=10.0, intensity=1.0, one_sided=0.0
        )
        widen = service.config.risk.cascade_widen_factor
        widened = []

        def a_widened_quote_went_out() -> bool:
            plan = market_maker(service).last_plans.get("BTC")
            if plan is None or plan.spread is None or not plan.orders:
                return False
            if plan.spread.factors.get(SpreadFactor.RISK) == widen:
                widened.append(plan)
            return bool(widened)

        await wait_for(a_widened_quote_went_out, within=15.0, poll=0.01)
        spread = widened[0].spread
        assert spread is not None
        assert spread.multiplier >= widen
        assert spread.half_spread_bps >= spread.base_bps * widen


async def test_informed_flow_is_toxic_and_the_gate_acts_on_it(
    tmp_path: Path, autojump_clock: trio.abc.Clock
) -> None:
    async with shipped_service(tmp_path / "run") as service:
        await wait_for(lambda: quoting(service), within=90.0)
        before = gate_count(service, "ETH", "toxic_flow")
        await start_cascade(
            service,
            coin="ETH",
            move=-0.01,
            duration_s=120.0,
            intensity=2.0,
            one_sided=1.0,
            thinning=0.0,
        )
        threshold = service.config.strategy.gate.toxicity_one_sided
        await wait_for(
            lambda: gate_count(service, "ETH", "toxic_flow") > before, within=130.0, poll=0.5
        )
        quoter = market_maker(service).quoters["ETH"]
        now = trio.current_time()
        assert quoter.toxicity.score(now) >= threshold
        assert quoter.cascade_severity(now) < service.config.strategy.gate.cascade_one_sided
        plan = market_maker(service).last_plans["ETH"]
        assert len({order.side for order in plan.orders}) < 2  # one side at most, or none


async def test_no_edge_and_flat_means_no_quote_when_the_gate_requires_an_edge(
    tmp_path: Path, autojump_clock: trio.abc.Clock
) -> None:
    async with shipped_service(tmp_path / "run", {"strategy.gate.require_edge": True}) as service:
        await wait_for(
            lambda: any(
                gate_count(service, coin, "no_edge_flat") > 0
                for coin in service.config.strategy.symbols
            ),
            within=180.0,
            poll=0.5,
        )
        minimum = service.config.strategy.gate.min_edge_bps
        assert minimum > 0
