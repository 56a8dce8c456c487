"""Fresh orders under the order budget, end to end on the simulator with the shipped config.

The shipped budget (2 orders/s, burst 20, one bucket for every symbol) cannot follow every
requote of two symbols with three levels a side: slots send what it allows and the rest waits
at the budget desk. Over a few virtual minutes of trading: no place or modify is handed to the
client from a plan older than its symbol's latest book by more than one budget interval
(``executor.budget.max_plan_age_s``; ``mm_plan_age_seconds`` shows it), a plan cut by the
budget sends its top-of-book levels before the ones behind them, the waits are measured
(``mm_budget_wait_seconds``) apart from the decision latency, and the strategy decides only
on the symbols with news. Virtual time (autojump).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest
import trio

from mm.execution.commands import Command, QuoteLadder
from mm.execution.reconcile import Plan
from mm.execution.slots import ExecutorSlot, Handover
from mm.strategies.base import MarketView
from mm.strategies.market_maker.strategy import MarketMaker
from mm.strategies.runner import Trading
from tests.e2e.virtual import shipped_service, wait_for

TRADING_S = 180.0  # virtual seconds of trading watched


async def test_orders_under_budget_pressure_are_fresh_and_top_of_book_first(
    tmp_path: Path, autojump_clock: trio.testing.MockClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    handovers: list[Handover] = []
    cut: list[tuple[str, list[int], list[int]]] = []  # coin, levels sent, levels left waiting
    decisions: list[tuple[tuple[str, ...] | None, set[str]]] = []

    sending = Trading._sending

    def record_handover(self: Trading, handover: Handover) -> None:
        handovers.append(handover)
        sending(self, handover)

    send = ExecutorSlot._send

    async def record_send(
        self: ExecutorSlot, router: Any, ladder: Any, plan: Plan, *a: Any
    ) -> Plan:
        if plan.deferred and (plan.place or plan.modify):
            sent = [d.level for d in plan.place] + [d.level for _, d in plan.modify]
            cut.append((ladder.coin, sent, [d.level for d in plan.deferred]))
        return await send(self, router, ladder, plan, *a)

    decide = MarketMaker.decide

    def record_decide(self: MarketMaker, now: float, view: MarketView) -> Sequence[Command]:
        commands = decide(self, now, view)
        coins = {c.coin for c in commands if isinstance(c, QuoteLadder)}
        decisions.append((view.changed, coins))
        return commands

    monkeypatch.setattr(Trading, "_sending", record_handover)
    monkeypatch.setattr(ExecutorSlot, "_send", record_send)
    monkeypatch.setattr(MarketMaker, "decide", record_decide)

    async with shipped_service(tmp_path / "run") as service:
        registry = service.registry
        config = service.config.executor.budget

        def sample(name: str, **labels: str) -> float:
            return registry.get_sample_value(name, labels) or 0.0

        def pressed() -> bool:
            return sample("mm_budget_wait_seconds_count") >= 20 and len(cut) >= 20

        await wait_for(pressed, within=TRADING_S * 3, poll=1.0)
        await trio.sleep(30.0)  # and trading goes on under it

        # Under budget pressure (the desk held orders back, and they waited for tokens)...
        assert sample("mm_budget_wait_seconds_count") >= 20
        # ... no place or modify went from a plan older than the symbol's latest book by more
        # than one budget interval, as the metric shows and as each hand-over measured it.
        ages = [h.plan_age_s for h in handovers if h.plan_age_s is not None]
        assert len(ages) >= 20
        assert max(ages) <= config.max_plan_age_s
        interval = f"{config.max_plan_age_s}"
        assert sample("mm_plan_age_seconds_bucket", le=interval) == sample(
            "mm_plan_age_seconds_count"
        )
        # A plan the budget cut sent its top levels first: nothing it sent lies behind a level
        # it left waiting (the reducing side first at one level while inventory is high).
        for coin, sent, waiting in cut:
            assert max(sent) <= min(waiting), (coin, sent, waiting)
        assert any(0 in sent for _, sent, _ in cut)
        # The decision latency is measured apart from the waits, and stays the CPU's.
        assert sample("mm_decision_latency_seconds_count") > 0
        # The strategy decided on the symbols with news: most decisions on one symbol, and
        # never a command for a symbol it was not asked about.
        partial = [(changed, coins) for changed, coins in decisions if changed is not None]
        assert len(partial) > len(decisions) / 2
        assert sum(1 for changed, _ in partial if len(changed) == 1) > len(partial) / 2
        assert all(coins <= set(changed) for changed, coins in partial)
