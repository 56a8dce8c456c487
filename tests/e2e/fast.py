"""Config sections that make the market maker warm up and trade within seconds in tests."""

from __future__ import annotations

from typing import Any

FAST: dict[str, dict[str, Any]] = {
    "strategy.volatility": {"sample_interval_s": 0.5, "min_samples": 5},
    "strategy.intensity": {"min_trades": 10, "recalibrate_s": 2.0},
    "sim.market": {"taker_a": 4.0},
}
