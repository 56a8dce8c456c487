"""Adapter metrics: names, units and bounded labels."""

from __future__ import annotations

import json

import pytest
from prometheus_client import CollectorRegistry

from mm.metrics import LATENCY_BUCKETS
from mm.venues.hyperliquid.metrics import AdapterMetrics, rejection_reason
from tests.fixture_paths import HYPERLIQUID as FIXTURES


def test_metric_names_follow_the_conventions() -> None:
    registry = CollectorRegistry()
    AdapterMetrics(registry)
    names = [metric.name for metric in registry.collect()]
    assert names
    for name in names:
        assert name.startswith("mm_")
        assert "_ms" not in name
    for metric in registry.collect():
        assert metric.documentation
        if metric.type == "counter":
            assert not metric.name.endswith("_total")  # the client adds _total on exposition


def test_latency_buckets_start_at_tens_of_microseconds() -> None:
    assert LATENCY_BUCKETS[0] <= 0.0001
    assert list(LATENCY_BUCKETS) == sorted(LATENCY_BUCKETS)


def error_texts() -> list[str]:
    data = json.loads((FIXTURES / "error_messages.json").read_text())
    return [entry["message"] for entry in data["errors"]]


@pytest.mark.parametrize("text", error_texts())
def test_rejection_reasons_are_a_bounded_set(text: str) -> None:
    reason = rejection_reason(text + " asset=0")
    assert reason in {
        "tick",
        "min_notional",
        "margin",
        "reduce_only",
        "post_only_cross",
        "ioc_no_match",
        "missing_order",
        "address_rate_limit",
        "cannot_modify",
        "invalid_asset",
        "post_only_period",
        "invalid_size",
        "open_order_limit",
        "other",
    }


def test_known_rejections_get_their_own_reason() -> None:
    assert rejection_reason("Price must be divisible by tick size. asset=13") == "tick"
    assert rejection_reason("Post only order would have immediately matched, bbo was 1@2.") == (
        "post_only_cross"
    )
    assert rejection_reason("Invalid asset.") == "invalid_asset"
    upgrade = "Only post-only orders allowed immediately after network upgrade"
    assert rejection_reason(upgrade) == "post_only_period"
    assert rejection_reason("Order has invalid size. asset=0") == "invalid_size"
    assert rejection_reason("Too many open orders. asset=1") == "open_order_limit"
    assert rejection_reason("Something new") == "other"
