"""Readiness: every reason mm is not trading, each alone and all at once, gravest first."""

from __future__ import annotations

from typing import Any

import attrs
import pytest

from mm.ops.autonomy import Mode
from mm.ops.readiness import TradingState, not_trading

TRADING = TradingState(
    service="running", killswitch=None, mode=Mode.NORMAL, mode_reason=None, in_sync=True
)


def test_trading_has_no_reason() -> None:
    assert not_trading(TRADING) == []


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"service": "starting"}, "mm is starting"),
        ({"service": "stopping"}, "mm is stopping"),
        ({"killswitch": "manual"}, "kill switch tripped (manual)"),
        ({"mode": Mode.QUARANTINED, "mode_reason": "margin_warning"}, "mode QUARANTINED"),
        ({"mode": Mode.REDUCE_ONLY, "mode_reason": "operator_flatten"}, "mode REDUCE_ONLY"),
        ({"mode": Mode.HALT, "mode_reason": "pnl_peak_drawdown"}, "mode HALT"),
        ({"mode": Mode.HALT}, "mode HALT"),
        ({"in_sync": False}, "not in sync with the venue"),
        ({"waiting": "metadata rate limited (HTTP 429)"}, "startup waiting: metadata"),
        ({"access": "x"}, "the venue refuses the key for the account: x"),
        ({"down": ("mm/trading/slot-0 is stopped",)}, "mm/trading/slot-0 is stopped"),
    ],
)
def test_each_reason_alone(change: dict[str, Any], reason: str) -> None:
    [said] = not_trading(attrs.evolve(TRADING, **change))
    assert said.startswith(reason)
    mode_reason = change.get("mode_reason")
    if mode_reason:
        assert said == f"{reason} ({mode_reason})"


def test_every_reason_at_once_gravest_first() -> None:
    state = TradingState(
        service="starting",
        killswitch="drawdown",
        mode=Mode.HALT,
        mode_reason="flatten_deadline_missed",
        in_sync=False,
        waiting="metadata rate limited",
        access="the venue says no",
        down=("mm/trading is restarting",),
    )
    assert not_trading(state) == [
        "mm is starting",
        "mm/trading is restarting",
        "kill switch tripped (drawdown)",
        "mode HALT (flatten_deadline_missed)",
        "the venue refuses the key for the account: the venue says no",
        "startup waiting: metadata rate limited",
        "not in sync with the venue (quoting blocked until the user stream resyncs)",
    ]
