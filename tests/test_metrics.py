"""The metrics review, as a test: every metric the issues name exists on a live service and the
whole registry follows Prometheus naming (base units, ``_total`` counters, bounded labels, help
text, latency buckets from tens of microseconds)."""

from __future__ import annotations

import re
from typing import Any

import httpx
import trio
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.metrics_core import Metric

from mm.app import Service
from mm.config import load_config, resolve_secrets
from mm.metrics import LATENCY_BUCKETS
from tests.conftest import eventually
from tests.e2e.fast import FAST

# Family names (counters without the _total that the exposition adds), by the issue naming them.
REQUIRED = {
    # 2: supervision
    "mm_child_up": "gauge",
    "mm_supervisor_restarts": "counter",
    # 4: feeds, data quality, orders, latency, headroom
    "mm_feed_messages": "counter",
    "mm_feed_state": "gauge",
    "mm_feed_reconnects": "counter",
    "mm_book_age_seconds": "gauge",
    "mm_data_quality_errors": "counter",
    "mm_orders": "counter",
    "mm_order_rejections": "counter",
    "mm_order_ack_latency_seconds": "histogram",
    "mm_ws_round_trip_seconds": "histogram",
    "mm_api_headroom_ratio": "gauge",
    # 5: the market maker
    "mm_quoted_spread_bps": "gauge",
    "mm_spread_factor_ratio": "gauge",
    "mm_quote_cycle_seconds": "histogram",
    "mm_decision_latency_seconds": "histogram",
    "mm_budget_wait_seconds": "histogram",
    "mm_plan_age_seconds": "histogram",
    "mm_fills": "counter",
    "mm_position_coins": "gauge",
    "mm_pnl_usd": "gauge",
    "mm_markout_bps": "gauge",
    "mm_quote_gate_decisions": "counter",
    # 6: risk
    "mm_risk_action": "gauge",
    "mm_risk_decision": "gauge",
    "mm_kill_switch_tripped": "gauge",
    "mm_pretrade_rejections": "counter",
    # 7: operations
    "mm_session_phase": "gauge",
    "mm_autonomy_mode": "gauge",
    "mm_autonomy_transitions": "counter",
    "mm_autonomy_trigger": "gauge",
    "mm_notifications": "counter",
    "mm_flatten_runs": "counter",
    "mm_journal_entries": "counter",
    "mm_journal_write_failures": "counter",
    # 12: the service keeps trading, and every safety path acts
    "mm_risk_monitor_judging": "gauge",
    "mm_market_signal": "gauge",
    "mm_orders_orphaned": "counter",
    "mm_orders_ghost_resolved": "counter",
    "mm_orders_stuck_resolved": "counter",
    "mm_orders_foreign": "gauge",
    "mm_order_audits": "counter",
    # 13: restarts, crashes and lost frames never cost money
    "mm_fills_recovered": "counter",
    "mm_fill_audits": "counter",
    # 14: the venue's hard cases
    "mm_deadman_switch_available": "gauge",
    "mm_deadman_switch_armed": "gauge",
    "mm_address_budget_reads": "counter",
    # 15: the fan-out channels' backlogs (fills, order events), per consumer
    "mm_fanout_backlog": "gauge",
    # 16: garbage-collection pauses in the live service
    "mm_gc_pause_seconds": "histogram",
    "mm_gc_pause_max_seconds": "gauge",
    "mm_gc_pause_cpu_max_seconds": "gauge",
}

# Every label name in use: each takes its values from a small fixed set (never ids or text).
BOUNDED_LABELS = {
    "action",
    "channel",
    "check",
    "child",
    "consumer",
    "factor",
    "feed",
    "generation",
    "horizon",
    "kind",
    "mode",
    "monitor",
    "name",
    "outcome",
    "phase",
    "queue",
    "reason",
    "result",
    "service",
    "severity",
    "side",
    "sink",
    "source",
    "state",
    "step",
    "symbol",
    "track",
    "transport",
    "trigger",
    "version",
}
MAX_SERIES_PER_METRIC = 64
UNIT_SUFFIXES = ("_seconds", "_usd", "_bps", "_ratio", "_coins", "_bytes", "_info")
NAME = re.compile(r"^mm_[a-z][a-z0-9_]*[a-z0-9]$")


def families(registry: CollectorRegistry) -> dict[str, Metric]:
    return {family.name: family for family in registry.collect()}


def check_family(family: Metric) -> list[str]:
    problems = []
    name = family.name
    if not NAME.match(name):
        problems.append(f"{name}: not a snake_case mm_ name")
    if not family.documentation or family.documentation.strip() == name:
        problems.append(f"{name}: no help text")
    if name.endswith("_total"):
        problems.append(f"{name}: _total belongs to the exposition, not the family name")
    if re.search(r"_(ms|millis|milliseconds|us|micros|minutes|hours|percent)(_|$)", name):
        problems.append(f"{name}: not in base units")
    timed = re.search(r"_(latency|duration|age|round_trip|tick_to_order|cycle)(_|$)", name)
    if timed and not name.endswith("_seconds"):
        problems.append(f"{name}: a time must be in seconds (_seconds)")
    for sample in family.samples:
        unknown = set(sample.labels) - BOUNDED_LABELS - {"le"}
        if unknown:
            problems.append(f"{name}: label(s) {sorted(unknown)} are not known to be bounded")
        if sample.name.endswith("_created"):
            problems.append(f"{name}: exports {sample.name}")
        if family.type == "counter" and not sample.name.endswith("_total"):
            problems.append(f"{name}: counter sample {sample.name} without _total")
    series = {
        tuple(sorted((k, v) for k, v in s.labels.items() if k != "le")) for s in family.samples
    }
    if len(series) > MAX_SERIES_PER_METRIC:
        problems.append(f"{name}: {len(series)} series")
    if family.type == "histogram":
        bounds = sorted(float(s.labels["le"]) for s in family.samples if s.name.endswith("_bucket"))
        if timed and bounds and bounds[0] > 5e-5:
            problems.append(f"{name}: first bucket {bounds[0]} s; latency starts at tens of µs")
    return problems


def test_latency_buckets_start_at_tens_of_microseconds() -> None:
    assert LATENCY_BUCKETS[0] <= 2.5e-5
    assert list(LATENCY_BUCKETS) == sorted(LATENCY_BUCKETS)
    assert LATENCY_BUCKETS[-1] >= 1.0


def test_the_checker_catches_bad_names() -> None:
    registry = CollectorRegistry()
    Gauge("mm_book_age_ms", "age", ["symbol"], registry=registry).labels(symbol="BTC").set(1)
    Counter("mm_things", "", ["oid"], registry=registry).labels(oid="123").inc()
    Histogram("mm_ack_latency", "slow buckets", buckets=(0.001, 1.0), registry=registry).observe(
        0.1
    )
    found = [p for family in registry.collect() for p in check_family(family)]
    assert any("mm_book_age_ms: not in base units" in p for p in found)
    assert any("mm_things: no help text" in p for p in found)
    assert any("['oid']" in p for p in found)
    assert any("mm_ack_latency: a time must be in seconds" in p for p in found)


async def test_a_live_registry_follows_the_conventions(write_config: Any) -> None:
    config = load_config(write_config(**FAST), {})
    service = Service(config, resolve_secrets(config, {}))
    with trio.fail_after(90):
        async with trio.open_nursery() as nursery:
            await nursery.start(service.run)

            def has_fills() -> bool:
                value = service.registry.get_sample_value(
                    "mm_fills_total", {"symbol": "BTC", "side": "buy"}
                ) or service.registry.get_sample_value(
                    "mm_fills_total", {"symbol": "BTC", "side": "sell"}
                )
                return bool(value)

            await eventually(has_fills, within=60)
            async with httpx.AsyncClient(base_url=str(service.admin_url)) as admin:
                text = (await admin.get("/metrics")).text
            service.request_stop("test finished")
    found = families(service.registry)
    missing = {name for name in REQUIRED if name not in found}
    assert not missing, f"metrics the issues name are missing: {sorted(missing)}"
    wrong = {name: found[name].type for name, kind in REQUIRED.items() if found[name].type != kind}
    assert not wrong, wrong
    problems = [p for name, f in found.items() if name.startswith("mm_") for p in check_family(f)]
    assert not problems, "\n".join(sorted(set(problems)))
    assert "_created" not in text
    for name, family in found.items():
        if name.startswith("mm_"):
            assert f"# HELP {name}" in text, name
            if family.type == "counter":
                assert f"# TYPE {name}_total counter" in text or f"# TYPE {name} counter" in text
