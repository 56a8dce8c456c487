"""The Grafana dashboards: ``deploy/grafana/generate.py`` builds them with the Grafana Foundation
SDK, the checked-in JSON is exactly what it generates, and every dashboard is well formed (fixed
uids, the provisioned Prometheus datasource, no overlapping panels, the subjects issue 8 names,
queries that only use Grafana's rate/range variables and ``$symbol``).

That every query returns data from a live mm is ``test_prometheus.py``'s job; here each query
is only checked to be balanced PromQL text naming mm's own metrics, and the triangular
arbitrage dashboard's to name exactly what the triangle desk exports.
"""

from __future__ import annotations

import importlib.util
import itertools
import json
import re
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from prometheus_client import CollectorRegistry

from mm.ops.autonomy import Mode
from mm.ops.session import Phase
from mm.strategies.kinds import KINDS
from mm.strategies.triarb.desk import TriarbMetrics

ROOT = Path(__file__).resolve().parents[2]
GENERATOR = ROOT / "deploy" / "grafana" / "generate.py"
DASHBOARD_DIR = ROOT / "deploy" / "grafana" / "dashboards"
REGENERATE = "run `python deploy/grafana/generate.py` and check in deploy/grafana/dashboards"
DATASOURCE = {"type": "prometheus", "uid": "mm-prometheus"}
GRID_WIDTH = 24

# The subjects issue 8 asks for: metrics each dashboard must query.
REQUIRED = {
    "overview.json": {
        "mm_autonomy_mode",
        "mm_kill_switch_tripped",
        "mm_session_phase",
        "mm_pnl_usd",
        "mm_position_coins",
        "mm_fills_total",
        "mm_quoted_spread_bps",
        "mm_markout_bps",
    },
    "execution.json": {
        "mm_orders_total",
        "mm_order_rejections_total",
        "mm_order_ack_latency_seconds_bucket",
        "mm_decision_latency_seconds_bucket",
        "mm_budget_wait_seconds_bucket",
        "mm_api_headroom_ratio",
    },
    "feeds.json": {
        "mm_feed_state",
        "mm_book_age_seconds",
        "mm_feed_messages_total",
        "mm_data_quality_errors_total",
    },
    "supervision.json": {"mm_child_up", "mm_supervisor_restarts_total"},
    # Issue 18: the triangle desk's signals, refusals, outcomes, profit, slots and latencies.
    "triarb.json": {
        "mm_triarb_signals_total",
        "mm_triarb_refused_total",
        "mm_triarb_triangles_total",
        "mm_triarb_profit",
        "mm_triarb_slots_busy",
        "mm_triarb_first_leg_seconds_bucket",
        "mm_triarb_leg_seconds_bucket",
        "mm_triarb_slippage_bps_bucket",
    },
}
# Counters without series until their first event: their queries must fall back to 0.
LAZY_COUNTERS = {
    "mm_order_rejections_total",
    "mm_pretrade_rejections_total",
    "mm_flatten_runs_total",
    "mm_data_quality_errors_total",
    "mm_autonomy_transitions_total",
    "mm_feed_reconnects_total",
    "mm_triarb_signals_total",
    "mm_triarb_refused_total",
    "mm_triarb_triangles_total",
}
VARIABLES = {"__rate_interval", "__interval", "__range", "symbol"}
METRIC_NAME = re.compile(r"^(mm_|process_|up$)")

# PromQL words that look like metric names: keywords and aggregation modifiers.
KEYWORDS = {
    "and",
    "or",
    "unless",
    "by",
    "without",
    "on",
    "ignoring",
    "group_left",
    "group_right",
    "bool",
    "offset",
    "atan2",
    "inf",
    "nan",
}
GROUPING = re.compile(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^()]*\)")
IDENTIFIER = re.compile(r"(?<![\w.$])([A-Za-z_:][A-Za-z0-9_:]*)(?![\w:]|\s*\()")
STRING = re.compile(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'|`[^`]*`')


def load_generator() -> ModuleType:
    # deploy/ is not a package: load the script from its path.
    spec = importlib.util.spec_from_file_location("mm_grafana_generate", GENERATOR)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def generator() -> ModuleType:
    return load_generator()


@pytest.fixture(scope="module")
def generated(generator: ModuleType) -> dict[str, dict[str, Any]]:
    dashboards: dict[str, dict[str, Any]] = generator.dashboards()
    return dashboards


def all_panels(dashboard: dict[str, Any]) -> Iterator[dict[str, Any]]:
    def walk(panels: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
        for panel in panels:
            yield panel
            yield from walk(panel.get("panels", []))

    yield from walk(dashboard.get("panels", []))


def data_panels(dashboard: dict[str, Any]) -> Iterator[dict[str, Any]]:
    return (panel for panel in all_panels(dashboard) if panel["type"] != "row")


def exprs(dashboard: dict[str, Any]) -> list[str]:
    return [target["expr"] for panel in data_panels(dashboard) for target in panel["targets"]]


def balanced(expr: str) -> str | None:
    """None when brackets pair up and quotes close; otherwise what is wrong."""
    pairs = {")": "(", "]": "[", "}": "{"}
    stack: list[str] = []
    quote: str | None = None
    escaped = False
    for char in expr:
        if quote is not None:
            if escaped:
                escaped = False
            elif char == "\\" and quote != "`":
                escaped = True
            elif char == quote:
                quote = None
        elif char in "\"'`":
            quote = char
        elif char in "([{":
            stack.append(char)
        elif char in pairs and (not stack or stack.pop() != pairs[char]):
            return f"unmatched {char!r}"
    if quote is not None:
        return f"unclosed {quote}"
    if stack:
        return f"unclosed {stack[-1]!r}"
    return None


def metric_names(expr: str) -> set[str]:
    """The metric names a PromQL expression selects (not functions, labels or keywords)."""
    text = STRING.sub('""', expr)
    text = re.sub(r"\[[^\]]*\]", "", text)  # range windows
    text = re.sub(r"\{[^}]*\}", "", text)  # label matchers
    text = GROUPING.sub(" ", text)  # by/on/... and their label lists
    return {
        name
        for name in IDENTIFIER.findall(text)
        if name.lower() not in KEYWORDS and not re.fullmatch(r"\d+(e\d+)?", name)
    }


# --- the generated files ------------------------------------------------------------------------


def test_checked_in_dashboards_are_what_the_generator_writes(
    generator: ModuleType, generated: dict[str, dict[str, Any]]
) -> None:
    present = sorted(path.name for path in DASHBOARD_DIR.glob("*.json"))
    assert present == sorted(generated), (
        f"dashboard files differ from the generator's: {REGENERATE}"
    )
    for name, dashboard in generated.items():
        text = (DASHBOARD_DIR / name).read_text(encoding="utf-8")
        assert text == generator.render(dashboard), f"{name} is out of date: {REGENERATE}"


def test_generation_is_deterministic_json(
    generator: ModuleType, generated: dict[str, dict[str, Any]]
) -> None:
    again: dict[str, dict[str, Any]] = generator.dashboards()
    for name, dashboard in generated.items():
        text: str = generator.render(dashboard)
        assert text == generator.render(again[name])
        assert text.endswith("}\n")
        assert text.startswith('{\n  "')  # indent 2
        assert json.loads(text) == dashboard
        assert text == json.dumps(json.loads(text), sort_keys=True, indent=2) + "\n"


def test_the_dashboards_have_fixed_unique_uids_and_titles(
    generated: dict[str, dict[str, Any]],
) -> None:
    assert set(generated) == set(REQUIRED)
    uids = [dashboard["uid"] for dashboard in generated.values()]
    assert len(set(uids)) == len(uids)
    for name, dashboard in generated.items():
        assert dashboard["uid"] == f"mm-{name.removesuffix('.json')}"
        assert dashboard["title"].startswith("mm / ")
        assert "mm" in dashboard["tags"]
        assert "id" not in dashboard or dashboard["id"] is None


def test_queries_lists_every_panel_query(
    generator: ModuleType, generated: dict[str, dict[str, Any]]
) -> None:
    listed: list[tuple[str, str, str]] = generator.queries()
    expected = [
        (name.removesuffix(".json"), panel["title"], target["expr"])
        for name, dashboard in generated.items()
        for panel in data_panels(dashboard)
        for target in panel["targets"]
    ]
    assert listed == expected
    assert all(isinstance(item, tuple) and len(item) == 3 for item in listed)


# --- panels -------------------------------------------------------------------------------------


def test_every_panel_and_query_uses_the_provisioned_prometheus(
    generated: dict[str, dict[str, Any]],
) -> None:
    for name, dashboard in generated.items():
        for panel in data_panels(dashboard):
            where = f"{name} / {panel['title']}"
            assert panel["datasource"] == DATASOURCE, where
            assert panel["targets"], f"{where}: no query"
            ref_ids = [target["refId"] for target in panel["targets"]]
            assert all(ref_ids), where
            assert len(set(ref_ids)) == len(ref_ids), where
            for target in panel["targets"]:
                assert target["datasource"] == DATASOURCE, where
                assert isinstance(target["expr"], str), where
                assert target["expr"].strip(), where
        for variable in dashboard.get("templating", {}).get("list", []):
            assert variable["datasource"] == DATASOURCE, f"{name} / ${variable['name']}"


def test_panels_have_titles_unique_ids_and_do_not_overlap(
    generated: dict[str, dict[str, Any]],
) -> None:
    for name, dashboard in generated.items():
        panels = list(all_panels(dashboard))
        assert panels, name
        ids = [panel["id"] for panel in panels]
        assert len(set(ids)) == len(ids), f"{name}: duplicate panel ids"
        for panel in panels:
            assert panel["title"], name
            assert panel["type"] in {"row", "stat", "timeseries", "state-timeline", "table"}
            grid = panel["gridPos"]
            assert min(grid["w"], grid["h"]) > 0, f"{name} / {panel['title']}"
            assert min(grid["x"], grid["y"]) >= 0, f"{name} / {panel['title']}"
            assert grid["x"] + grid["w"] <= GRID_WIDTH, f"{name} / {panel['title']}: too wide"
        for a, b in itertools.combinations(panels, 2):
            ga, gb = a["gridPos"], b["gridPos"]
            apart = (
                ga["x"] + ga["w"] <= gb["x"]
                or gb["x"] + gb["w"] <= ga["x"]
                or ga["y"] + ga["h"] <= gb["y"]
                or gb["y"] + gb["h"] <= ga["y"]
            )
            assert apart, f"{name}: {a['title']!r} overlaps {b['title']!r}"


def test_each_dashboard_covers_its_subjects(generated: dict[str, dict[str, Any]]) -> None:
    for name, required in REQUIRED.items():
        queried = set().union(*(metric_names(expr) for expr in exprs(generated[name])))
        assert required <= queried, f"{name} does not query {sorted(required - queried)}"


def panel(dashboard: dict[str, Any], title: str) -> dict[str, Any]:
    found = [p for p in all_panels(dashboard) if p["title"] == title]
    assert len(found) == 1, title
    return found[0]


def mapping(panel: dict[str, Any]) -> dict[str, tuple[str, str]]:
    """Value -> (text, color) of a panel's value mappings."""
    options: dict[str, tuple[str, str]] = {}
    for value_map in panel["fieldConfig"]["defaults"]["mappings"]:
        assert value_map["type"] == "value"
        for value, result in value_map["options"].items():
            options[value] = (result["text"], result["color"])
    return options


def test_state_panels_map_values_to_names_and_colors(
    generated: dict[str, dict[str, Any]],
) -> None:
    overview = generated["overview.json"]
    mode = panel(overview, "Autonomy mode")
    assert mode["type"] == "stat"
    assert mapping(mode) == {
        "0": ("NORMAL", "green"),
        "1": ("QUARANTINED", "yellow"),
        "2": ("REDUCE_ONLY", "orange"),
        "3": ("HALT", "red"),
    }
    assert {m.name for m in Mode} == {text for text, _ in mapping(mode).values()}
    kill = panel(overview, "Kill switch")
    assert kill["type"] == "stat"
    assert mapping(kill) == {"0": ("ARMED", "green"), "1": ("TRIPPED", "red")}
    phase = panel(overview, "Session phase")
    assert phase["type"] == "stat"
    assert {value: text for value, (text, _) in mapping(phase).items()} == {
        str(p.value): p.name for p in Phase
    }
    child = panel(generated["supervision.json"], "Child state")
    assert mapping(child) == {"0": ("DOWN", "red"), "1": ("UP", "green")}
    feed = panel(generated["feeds.json"], "Feed state")
    assert "HEALTHY" in {text for text, _ in mapping(feed).values()}


def test_units_follow_the_metrics(generated: dict[str, dict[str, Any]]) -> None:
    for name, dashboard in generated.items():
        for p in data_panels(dashboard):
            metrics = set().union(*(metric_names(t["expr"]) for t in p["targets"]))
            defaults = p.get("fieldConfig", {}).get("defaults", {})
            unit = defaults.get("unit")
            where = f"{name} / {p['title']}"
            if "mm_pnl_usd" in metrics:
                assert unit == "currencyUSD", where
            if any(m.endswith("_seconds_bucket") for m in metrics):
                assert unit == "s", where
            if "mm_api_headroom_ratio" in metrics:
                assert unit == "percentunit", where
            if p["type"] in {"timeseries", "stat"} and "mappings" not in defaults:
                assert unit or p["options"].get("textMode") == "name", f"{where}: no unit"


# --- queries ------------------------------------------------------------------------------------


def test_metric_names_finds_only_metrics() -> None:
    assert metric_names(
        'histogram_quantile(0.99, sum by (le, transport) (rate(mm_a_bucket{x=~"$symbol"}'
        "[$__rate_interval]))) or on() vector(0)"
    ) == {"mm_a_bucket"}
    assert metric_names(
        "process_resident_memory_bytes * on (job, instance) group_left () mm_build_info"
    ) == {"process_resident_memory_bytes", "mm_build_info"}
    assert metric_names("time() - max(mm_start_time_seconds) > 1e3 and up") == {
        "mm_start_time_seconds",
        "up",
    }
    assert balanced('sum(rate(x{a="(}"}[1m]))') is None
    assert balanced("sum(rate(x[1m])") == "unclosed '('"
    assert balanced('x{a="b}') == 'unclosed "'


def test_every_query_is_balanced_and_names_mm_metrics(generator: ModuleType) -> None:
    problems = []
    for dashboard, title, expr in generator.queries():
        where = f"{dashboard} / {title}: {expr}"
        wrong = balanced(expr)
        if wrong is not None:
            problems.append(f"{where}: {wrong}")
        names = metric_names(expr)
        if not names:
            problems.append(f"{where}: no metric")
        problems += [f"{where}: {n} is not mm's" for n in names if not METRIC_NAME.match(n)]
    assert not problems, "\n".join(problems)


def test_queries_use_only_grafanas_rate_variables_and_symbol(
    generated: dict[str, dict[str, Any]],
) -> None:
    for name, dashboard in generated.items():
        variables = {v["name"] for v in dashboard.get("templating", {}).get("list", [])}
        for expr in exprs(dashboard):
            used = set(re.findall(r"\$\{?(\w+)", expr))
            assert used <= VARIABLES, f"{name}: {expr} uses {sorted(used - VARIABLES)}"
            if "symbol" in used:
                assert "symbol" in variables, f"{name}: $symbol is not a variable of it"
                assert expr.count('symbol=~"$symbol"') == expr.count("$symbol"), expr
            # Rate windows come from Grafana, never fixed.
            for window in re.findall(r"\[([^\]]*)\]", expr):
                assert window in {"$__rate_interval", "$__range", "$__interval"}, expr


def test_symbol_variable(generated: dict[str, dict[str, Any]]) -> None:
    with_symbol = []
    for name, dashboard in generated.items():
        for variable in dashboard.get("templating", {}).get("list", []):
            assert variable["name"] == "symbol", name
            assert variable["type"] == "query"
            assert variable["query"] == "label_values(mm_quoted_spread_bps, symbol)"
            assert variable["multi"] is True
            assert variable["includeAll"] is True
            with_symbol.append(name)
    assert "overview.json" in with_symbol


def desk_exports() -> set[str]:
    """The sample names the triangle desk's metrics export once each labelled one has a series
    (a histogram with negative buckets, the slippage's, has no ``_sum``)."""
    registry = CollectorRegistry()
    metrics = TriarbMetrics(registry)
    metrics.signals.labels(fate="queued")
    metrics.refused.labels(reason="inventory")
    metrics.triangles.labels(outcome="FILLED")
    metrics.profit.labels(primary="USDT")
    metrics.leg_latency.labels(leg="L0")
    return {sample.name for family in registry.collect() for sample in family.samples}


def test_the_triarb_dashboard_queries_what_the_triangle_desk_exports(
    generator: ModuleType, generated: dict[str, dict[str, Any]]
) -> None:
    desk = desk_exports()
    assert "mm_triarb_leg_seconds_bucket" in desk
    assert "mm_triarb_slippage_bps_sum" not in desk
    queried = set().union(*(metric_names(expr) for expr in exprs(generated["triarb.json"])))
    assert queried <= desk, f"not exported by the desk: {sorted(queried - desk)}"
    assert REQUIRED["triarb.json"] <= queried
    # Every other dashboard stays off the desk's metrics (a market maker exports none of them).
    for name, dashboard in generated.items():
        if name != "triarb.json":
            others = set().union(*(metric_names(expr) for expr in exprs(dashboard)))
            assert not others & desk, name
    # Its queries are tested against a live mm running triangular arbitrage.
    strategies: dict[str, str] = generator.STRATEGY_DASHBOARDS
    assert strategies == {"triarb": "triarb"}
    assert set(strategies.values()) <= set(KINDS)


def test_counters_that_start_without_series_fall_back_to_zero(
    generated: dict[str, dict[str, Any]],
) -> None:
    for name, dashboard in generated.items():
        for expr in exprs(dashboard):
            if metric_names(expr) & LAZY_COUNTERS:
                assert "or on() vector(0)" in expr, f"{name}: {expr} has no series at first"
