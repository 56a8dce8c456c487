"""Fills reach the portfolio and risk through channels of their own (issue 15 item 4), with the
shipped config.toml on virtual time: the portfolio failing on a fill keeps risk from none of
them, and the portfolio, restarted by its supervisor, goes on with the fills after it.

On the synchronous listeners this replaced, the portfolio's raise ended the routing of that fill:
risk never saw it and the execution child restarted.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import trio

from mm.model import Fill, TradeId
from mm.portfolio import PositionBook
from mm.risk.daily import DailyPnl
from tests.e2e.virtual import shipped_service, wait_for


async def test_a_portfolio_failing_on_a_fill_keeps_it_from_no_other_consumer(
    tmp_path: Path, autojump_clock: trio.abc.Clock, monkeypatch: pytest.MonkeyPatch
) -> None:
    failed: list[Fill] = []
    applied: list[Fill] = []
    judged: list[TradeId] = []
    apply, on_fill = PositionBook.apply, DailyPnl.on_fill

    def portfolio_failing_once(self: PositionBook, fill: Fill) -> bool:
        if not failed:
            failed.append(fill)
            raise RuntimeError("a bug in the portfolio")
        applied.append(fill)
        return apply(self, fill)

    def risk_seeing(self: DailyPnl, fill: Fill, **values: float) -> bool:
        judged.append(fill.tid)
        return on_fill(self, fill, **values)

    async with shipped_service(tmp_path / "run") as service:
        monkeypatch.setattr(PositionBook, "apply", portfolio_failing_once)
        monkeypatch.setattr(DailyPnl, "on_fill", risk_seeing)
        await wait_for(lambda: bool(failed), within=900.0)
        [lost] = failed
        await wait_for(lambda: lost.tid in judged, within=30.0)  # risk saw it all the same
        await wait_for(lambda: bool(applied), within=900.0)  # and the portfolio goes on
        assert applied[0].tid != lost.tid
        children = {child.name: child for child in service.root.status()}
        assert children["portfolio"].restarts == 1
        assert children["execution"].restarts == 0  # the routing never noticed
