"""mm's Grafana dashboards, as code: built with the Grafana Foundation SDK, written as JSON.

    python deploy/grafana/generate.py          # (re)writes deploy/grafana/dashboards/*.json
    python deploy/grafana/generate.py --check  # exit 1 if the checked-in JSON is out of date

The JSON files are checked in (Grafana provisions them from deploy/grafana/dashboards) and
``tests/deploy/test_dashboards.py`` fails when they differ from what this script generates, so
change the dashboards here, never in Grafana or in the JSON.

Five dashboards, each with a fixed uid: ``mm-overview`` (mode, kill switch, phases, PnL,
positions, fills, spreads, markouts), ``mm-execution`` (orders, rejections, latencies, API
headroom, journal), ``mm-feeds`` (feed state, book age, message rates, data quality),
``mm-supervision`` (children, restarts, process, operations) and ``mm-triarb`` (triangular
arbitrage's desk: signals, outcomes and hit rate, refusals, profit per primary, slots, first-leg
and leg latency, slippage).

Every panel and query reads the Prometheus datasource of
``deploy/grafana/provisioning/datasources/datasource.yml`` by its fixed uid. Queries use only
the ``$__rate_interval`` and ``$__range`` built-ins and the ``$symbol`` variable, and every
query returns data on a service that has just started trading without incidents: counters
whose series only appear with their first event (rejections, reconnects, flattens...) fall
back to 0 with ``or on() vector(0)``. ``queries()`` lists them all for a test against a live
Prometheus. A dashboard of one strategy's metrics (``STRATEGY_DASHBOARDS``: the triangle desk's
are only exported by a service whose ``strategy.kind`` is ``triarb``) is tested against a
service running that strategy, and its queries return data once that service has filled a
triangle (profit per primary and leg latency are labelled series that a closed triangle makes).

The value mappings come from the service's own enums (autonomy modes, session phases, risk
actions, feed states), so a new state shows up here as a failing regeneration check; run the
script with the project's virtualenv (it imports ``mm``).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any, cast

from grafana_foundation_sdk.builders import common as common_builders
from grafana_foundation_sdk.builders import dashboard as dashboard_builders
from grafana_foundation_sdk.builders import prometheus, stat, statetimeline, table, timeseries
from grafana_foundation_sdk.cog import builder as cog_builder
from grafana_foundation_sdk.cog import variants
from grafana_foundation_sdk.cog.encoder import JSONEncoder
from grafana_foundation_sdk.models import common
from grafana_foundation_sdk.models import dashboard as model
from grafana_foundation_sdk.models import prometheus as prometheus_model

from mm.feeds.metrics import FEED_STATES
from mm.ops.autonomy import Mode
from mm.ops.session import Phase
from mm.risk.monitors import Action

__all__ = [
    "DASHBOARD_DIR",
    "DATASOURCE_UID",
    "STRATEGY_DASHBOARDS",
    "dashboards",
    "main",
    "queries",
    "render",
]

DASHBOARD_DIR = Path(__file__).resolve().parent / "dashboards"
DATASOURCE_UID = "mm-prometheus"
DATASOURCE_TYPE = "prometheus"
TAG = "mm"
RATE = "$__rate_interval"
SYMBOL = 'symbol=~"$symbol"'
GRID_WIDTH = 24

# Value mappings: (value, text, color) in the order Grafana lists them.
State = tuple[int, str, str]

MODE_COLORS = {
    Mode.NORMAL: "green",
    Mode.QUARANTINED: "yellow",
    Mode.REDUCE_ONLY: "orange",
    Mode.HALT: "red",
}
PHASE_COLORS = {
    Phase.INIT: "blue",
    Phase.PRE_OPEN: "purple",
    Phase.OPEN: "green",
    Phase.CLOSE_ONLY: "yellow",
    Phase.FORCE_FLAT: "red",
    Phase.CLOSED: "text",
}
ACTION_COLORS = {
    Action.NONE: "green",
    Action.WARN: "yellow",
    Action.WIDEN: "light-orange",
    Action.REDUCE_ONLY: "orange",
    Action.PULL: "red",
    Action.KILL: "dark-red",
}
FEED_STATE_COLORS = {
    "connecting": "blue",
    "healthy": "green",
    "stale": "yellow",
    "reconnecting": "orange",
    "failed": "red",
}

MODES: list[State] = [(m.value, m.name, MODE_COLORS[m]) for m in Mode]
PHASES: list[State] = [(p.value, p.name, PHASE_COLORS[p]) for p in Phase]
ACTIONS: list[State] = [(a.value, a.name, ACTION_COLORS[a]) for a in Action]
KILL_SWITCH: list[State] = [(0, "ARMED", "green"), (1, "TRIPPED", "red")]
TRIGGER: list[State] = [(0, "clear", "green"), (1, "ACTIVE", "red")]
CHILD: list[State] = [(0, "DOWN", "red"), (1, "UP", "green")]
# mm_feed_state is one series per (feed, state), 1 for the current state: the panels fold it
# into one code per feed, 0 when no state is set yet.
FEED_STATE_CODES: list[State] = [(0, "UNKNOWN", "text")] + [
    (code, state.upper(), FEED_STATE_COLORS[state])
    for code, state in enumerate(FEED_STATES, start=1)
]

# Units (Grafana unit ids).
USD = "currencyUSD"
SECONDS = "s"
RATIO = "percentunit"
SHORT = "short"
BYTES = "bytes"
PER_SECOND = "cps"  # counts per second: messages, fills, decisions
REQUESTS_PER_SECOND = "reqps"
BPS = "suffix: bps"


# --- queries -----------------------------------------------------------------------------------


def or_zero(expr: str) -> str:
    """``expr``, or a single 0 when it has no series (a counter before its first event)."""
    return f"{expr} or on() vector(0)"


def rate_sum(metric: str, by: str = "", selector: str = "", window: str = RATE) -> str:
    """The per-second rate of a counter, summed (``by`` labels), 0 when it has no series."""
    grouping = f" by ({by}) " if by else ""
    matchers = f"{{{selector}}}" if selector else ""
    return or_zero(f"sum{grouping}(rate({metric}{matchers}[{window}]))")


def increase_sum(metric: str, by: str = "", window: str = "$__range") -> str:
    """The increase of a counter over ``window``, summed (``by`` labels), 0 without series."""
    grouping = f" by ({by}) " if by else ""
    return or_zero(f"sum{grouping}(increase({metric}[{window}]))")


def quantile(q: float, histogram: str, by: str = "") -> str:
    """The ``q`` quantile of a histogram (``<histogram>_bucket``) over the rate window."""
    labels = f"le, {by}" if by else "le"
    return f"histogram_quantile({q}, sum by ({labels}) (rate({histogram}_bucket[{RATE}])))"


def feed_state_code() -> str:
    """One code per feed (see ``FEED_STATE_CODES``), from the feed's current-state series."""
    parts = " or ".join(
        f'mm_feed_state{{state="{state}"}} * {code}'
        for code, state in enumerate(FEED_STATES, start=1)
    )
    return f"max by (feed) ({parts})"


def _datasource() -> model.DataSourceRef:
    return model.DataSourceRef(type_val=DATASOURCE_TYPE, uid=DATASOURCE_UID)


class Query:
    """A PromQL query and its legend; ``instant`` for tables of the whole range."""

    # Not a dataclass: tests load this script with importlib, outside sys.modules, and
    # dataclasses look their module up there.

    def __init__(self, expr: str, legend: str = "", *, instant: bool = False) -> None:
        self.expr = expr
        self.legend = legend
        self.instant = instant

    def build(self, ref_id: str) -> prometheus.Dataquery:
        query = (
            prometheus.Dataquery()
            .expr(self.expr)
            .ref_id(ref_id)
            .datasource(_datasource())
            .editor_mode(prometheus_model.QueryEditorMode.CODE)
            .legend_format(self.legend or "__auto")
        )
        if self.instant:
            query = query.instant().format(prometheus_model.PromQueryFormat.TABLE)
        else:
            query = query.range()
        return query


def _targets(queries: Sequence[Query]) -> list[cog_builder.Builder[variants.Dataquery]]:
    return [q.build(chr(ord("A") + i)) for i, q in enumerate(queries)]


def _quantile_queries(histogram: str, by: str = "") -> list[Query]:
    suffix = f" {{{{{by}}}}}" if by else ""
    return [
        Query(quantile(0.5, histogram, by), f"p50{suffix}"),
        Query(quantile(0.99, histogram, by), f"p99{suffix}"),
    ]


# --- panels ------------------------------------------------------------------------------------


def _mappings(states: Sequence[State]) -> list[model.ValueMapping]:
    return [
        model.ValueMap(
            {
                str(value): model.ValueMappingResult(text=text, color=color, index=index)
                for index, (value, text, color) in enumerate(states)
            }
        )
    ]


def _thresholds(base: str, *steps: tuple[float, str]) -> dashboard_builders.ThresholdsConfig:
    return (
        dashboard_builders.ThresholdsConfig()
        .mode(model.ThresholdsMode.ABSOLUTE)
        .steps(
            [model.Threshold(value=None, color=base)]
            + [model.Threshold(value=value, color=color) for value, color in steps]
        )
    )


def _legend() -> common_builders.VizLegendOptions:
    return (
        common_builders.VizLegendOptions()
        .show_legend(True)
        .display_mode(common.LegendDisplayMode.LIST)
        .placement(common.LegendPlacement.BOTTOM)
    )


def _tooltip() -> common_builders.VizTooltipOptions:
    return (
        common_builders.VizTooltipOptions()
        .mode(common.TooltipDisplayMode.MULTI)
        .sort(common.SortOrder.DESCENDING)
    )


def stat_panel(
    title: str,
    queries: Sequence[Query],
    *,
    unit: str = SHORT,
    states: Sequence[State] = (),
    thresholds: dashboard_builders.ThresholdsConfig | None = None,
    description: str = "",
    width: int = 6,
    height: int = 4,
) -> stat.Panel:
    """The latest value; states (value mappings) color the background."""
    panel = (
        stat.Panel()
        .title(title)
        .datasource(_datasource())
        .targets(_targets(queries))
        .unit(unit)
        .span(width)
        .height(height)
        .reduce_options(common_builders.ReduceDataOptions().calcs(["lastNotNull"]).values(False))
        .graph_mode(common.BigValueGraphMode.NONE if states else common.BigValueGraphMode.AREA)
        .color_mode(
            common.BigValueColorMode.BACKGROUND if states else common.BigValueColorMode.VALUE
        )
        .text_mode(common.BigValueTextMode.AUTO)
        .thresholds(thresholds or _thresholds("green"))
    )
    if states:
        panel = panel.mappings(_mappings(states))
    return panel.description(description) if description else panel


def text_stat_panel(
    title: str, queries: Sequence[Query], *, description: str = "", width: int = 6, height: int = 4
) -> stat.Panel:
    """The legend of the latest series, as text (an info metric's labels)."""
    panel = (
        stat.Panel()
        .title(title)
        .datasource(_datasource())
        .targets(_targets(queries))
        .span(width)
        .height(height)
        .reduce_options(common_builders.ReduceDataOptions().calcs(["lastNotNull"]).values(False))
        .graph_mode(common.BigValueGraphMode.NONE)
        .color_mode(common.BigValueColorMode.NONE)
        .text_mode(common.BigValueTextMode.NAME)
    )
    return panel.description(description) if description else panel


def timeseries_panel(
    title: str,
    queries: Sequence[Query],
    *,
    unit: str = SHORT,
    description: str = "",
    width: int = 12,
    height: int = 8,
    min_value: float | None = None,
    max_value: float | None = None,
) -> timeseries.Panel:
    panel = (
        timeseries.Panel()
        .title(title)
        .datasource(_datasource())
        .targets(_targets(queries))
        .unit(unit)
        .span(width)
        .height(height)
        .line_width(1)
        .fill_opacity(10)
        .show_points(common.VisibilityMode.NEVER)
        .legend(_legend())
        .tooltip(_tooltip())
    )
    if min_value is not None:
        panel = panel.min(min_value)
    if max_value is not None:
        panel = panel.max(max_value)
    return panel.description(description) if description else panel


def timeline_panel(
    title: str,
    queries: Sequence[Query],
    states: Sequence[State],
    *,
    description: str = "",
    width: int = 12,
    height: int = 8,
) -> statetimeline.Panel:
    """States over time, one lane per series, colored by the value mappings."""
    panel = (
        statetimeline.Panel()
        .title(title)
        .datasource(_datasource())
        .targets(_targets(queries))
        .span(width)
        .height(height)
        .mappings(_mappings(states))
        .thresholds(_thresholds("green"))
        .color_scheme(dashboard_builders.FieldColor().mode(model.FieldColorModeId.THRESHOLDS))
        .show_value(common.VisibilityMode.AUTO)
        .merge_values(True)
        .row_height(0.9)
        .fill_opacity(80)
        .legend(_legend().show_legend(False))
        .tooltip(_tooltip())
    )
    return panel.description(description) if description else panel


def table_panel(
    title: str,
    queries: Sequence[Query],
    *,
    value_name: str,
    unit: str = SHORT,
    description: str = "",
    width: int = 12,
    height: int = 8,
) -> table.Panel:
    """Instant queries as a table, without the time column."""
    panel = (
        table.Panel()
        .title(title)
        .datasource(_datasource())
        .targets(_targets(queries))
        .unit(unit)
        .span(width)
        .height(height)
        .with_transformation(
            model.DataTransformerConfig(
                id_val="organize",
                options={"excludeByName": {"Time": True}, "renameByName": {"Value": value_name}},
            )
        )
        .sort_by([common_builders.TableSortByFieldState().display_name(value_name).desc(True)])
    )
    return panel.description(description) if description else panel


PanelBuilder = stat.Panel | timeseries.Panel | statetimeline.Panel | table.Panel


# --- dashboards --------------------------------------------------------------------------------


class Board:
    """A dashboard under construction: rows and panels laid out left to right, numbered."""

    def __init__(self, uid: str, title: str, description: str) -> None:
        self.uid = uid
        self._next_id = 1
        self._line_width = 0
        self.builder = (
            dashboard_builders.Dashboard(title)
            .uid(uid)
            .description(description)
            .tags([TAG])
            .readonly()
            .timezone("browser")
            .time("now-1h", "now")
            .refresh("10s")
            .annotations([])  # Grafana adds its built-in annotations
            .tooltip(model.DashboardCursorSync.CROSSHAIR)
            .link(
                dashboard_builders.DashboardLink("mm dashboards")
                .type(model.DashboardLinkType.DASHBOARDS)
                .tags([TAG])
                .as_dropdown(True)
                .include_vars(True)
                .keep_time(True)
            )
        )

    def _id(self) -> int:
        value = self._next_id
        self._next_id += 1
        return value

    def symbol_variable(self) -> Board:
        """``$symbol``: the quoted symbols, several or all at once."""
        self.builder = self.builder.with_variable(
            dashboard_builders.QueryVariable("symbol")
            .label("Symbol")
            .datasource(_datasource())
            .query("label_values(mm_quoted_spread_bps, symbol)")
            .refresh(model.VariableRefresh.ON_TIME_RANGE_CHANGED)
            .sort(model.VariableSort.ALPHABETICAL_ASC)
            .multi(True)
            .include_all(True)
            .current(model.VariableOption(selected=True, text=["All"], value=["$__all"]))
        )
        return self

    def row(self, title: str) -> Board:
        if self._line_width:
            raise ValueError(f"{self.uid}: the line before row {title!r} is not full")
        self.builder = self.builder.with_row(dashboard_builders.Row(title).id(self._id()))
        return self

    def line(self, *panels: PanelBuilder) -> Board:
        """Panels side by side, filling the grid's width exactly (the SDK places them)."""
        width = 0
        for panel in panels:
            grid = panel.id(self._id()).build().grid_pos
            width += grid.w if grid is not None else 0
            self.builder = self.builder.with_panel(panel)
        if width != GRID_WIDTH:
            raise ValueError(f"{self.uid}: a line of panels is {width} wide, not {GRID_WIDTH}")
        return self

    def build(self) -> dict[str, Any]:
        encoded = json.dumps(self.builder.build(), cls=JSONEncoder, sort_keys=True)
        return cast(dict[str, Any], json.loads(encoded))


def overview() -> Board:
    board = Board(
        "mm-overview",
        "mm / Overview",
        "Autonomy mode, kill switch, session phases, PnL, positions, fills, spreads, markouts.",
    ).symbol_variable()
    board.row("State").line(
        stat_panel(
            "Autonomy mode",
            [Query("mm_autonomy_mode", "mode")],
            states=MODES,
            description="What the service is allowed to do: quote, reduce only, or nothing.",
            width=5,
        ),
        stat_panel(
            "Kill switch",
            [Query("max(mm_kill_switch_tripped)", "kill switch")],
            states=KILL_SWITCH,
            description="TRIPPED when any kill-switch reason has tripped.",
            width=4,
        ),
        stat_panel(
            "Risk decision",
            [Query("mm_risk_decision", "risk")],
            states=ACTIONS,
            description="The most severe action any risk monitor asks for.",
            width=5,
        ),
        stat_panel(
            "Session phase",
            [Query("mm_session_phase", "{{track}}")],
            states=PHASES,
            description="The trading phase of each session track.",
            width=5,
        ),
        stat_panel(
            "Total PnL",
            [Query(or_zero(f'sum(mm_pnl_usd{{kind="total", {SYMBOL}}})'), "total")],
            unit=USD,
            thresholds=_thresholds("red", (0, "green")),
            description="Realized + unrealized - fees, over the selected symbols.",
            width=5,
        ),
    )
    board.row("Trading").line(
        timeseries_panel(
            "PnL",
            [Query(f"mm_pnl_usd{{{SYMBOL}}}", "{{symbol}} {{kind}}")],
            unit=USD,
            description="PnL by symbol and kind (realized, unrealized, fees, total).",
        ),
        timeseries_panel(
            "Position",
            [Query(f"mm_position_coins{{{SYMBOL}}}", "{{symbol}}")],
            description="Signed position in coin units.",
        ),
    ).line(
        timeseries_panel(
            "Fills",
            [Query(rate_sum("mm_fills_total", "symbol, side", SYMBOL), "{{symbol}} {{side}}")],
            unit=PER_SECOND,
            description="Our fills per second, by symbol and side.",
            width=8,
        ),
        timeseries_panel(
            "Quoted spread",
            [Query(f"mm_quoted_spread_bps{{{SYMBOL}}}", "{{symbol}}")],
            unit=BPS,
            description="The spread we quote, in basis points of the mid.",
            width=8,
        ),
        timeseries_panel(
            "Markouts",
            [Query(f"mm_markout_bps{{{SYMBOL}}}", "{{symbol}} {{horizon}}")],
            unit=BPS,
            description="Mean fill markout by horizon (positive: the fills earned the spread).",
            width=8,
        ),
    )
    board.row("Quoting").line(
        timeseries_panel(
            "Spread factors",
            [Query(f"mm_spread_factor_ratio{{{SYMBOL}}}", "{{symbol}} {{factor}}")],
            description="Multipliers applied to the spread, by factor (1 = no change).",
        ),
        timeseries_panel(
            "Quote gate decisions",
            [
                Query(
                    rate_sum("mm_quote_gate_decisions_total", "symbol, reason", SYMBOL),
                    "{{symbol}} {{reason}}",
                )
            ],
            unit=PER_SECOND,
            description="Why each quote cycle quoted or not, per second.",
        ),
    )
    board.row("Risk and autonomy").line(
        timeline_panel(
            "Autonomy mode history",
            [Query("mm_autonomy_mode", "mode")],
            MODES,
            height=5,
        ),
        timeline_panel(
            "Session phase history",
            [Query("mm_session_phase", "{{track}}")],
            PHASES,
            height=5,
        ),
    ).line(
        timeline_panel(
            "Risk monitor actions",
            [Query("mm_risk_action", "{{monitor}}")],
            ACTIONS,
            description="The action each risk monitor asks for.",
            width=8,
            height=10,
        ),
        timeline_panel(
            "Autonomy triggers",
            [Query("mm_autonomy_trigger", "{{reason}}")],
            TRIGGER,
            description="The conditions that change the autonomy mode, ACTIVE while they hold.",
            width=8,
            height=10,
        ),
        timeline_panel(
            "Kill switch by reason",
            [Query("mm_kill_switch_tripped", "{{reason}}")],
            KILL_SWITCH,
            width=8,
            height=10,
        ),
    )
    return board


def execution() -> Board:
    board = Board(
        "mm-execution",
        "mm / Execution",
        "Orders by kind, rejections, order ack and tick-to-order latency, API headroom, journal.",
    )
    orders = "sum(rate(mm_orders_total[$__rate_interval]))"
    rejections = or_zero("sum(rate(mm_order_rejections_total[$__rate_interval]))")
    board.row("Orders").line(
        stat_panel(
            "Order rate",
            [Query(or_zero(orders), "orders")],
            unit=REQUESTS_PER_SECOND,
            description="Order requests (place, cancel, modify) per second.",
        ),
        stat_panel(
            "Rejected orders",
            [Query(or_zero(f"({rejections}) / ({orders} > 0)"), "rejected")],
            unit=RATIO,
            thresholds=_thresholds("green", (0.01, "orange"), (0.05, "red")),
            description="The share of order requests the venue rejected.",
        ),
        stat_panel(
            "API headroom (lowest)",
            [Query("min(mm_api_headroom_ratio)", "headroom")],
            unit=RATIO,
            thresholds=_thresholds("red", (0.1, "orange"), (0.25, "green")),
            description="The smallest remaining share of any API rate limit.",
        ),
        stat_panel(
            "Journal queue depth",
            [Query("sum(mm_journal_queue_depth)", "queue")],
            thresholds=_thresholds("green", (100, "orange"), (1000, "red")),
            description="Journal entries waiting to be written.",
        ),
    ).line(
        timeseries_panel(
            "Orders by kind",
            [Query(rate_sum("mm_orders_total", "action, result"), "{{action}} {{result}}")],
            unit=REQUESTS_PER_SECOND,
            description="Order requests per second, by action and result.",
        ),
        timeseries_panel(
            "Order rejections by reason",
            [Query(rate_sum("mm_order_rejections_total", "reason"), "{{reason}}")],
            unit=REQUESTS_PER_SECOND,
            description="Orders the venue rejected, per second, by reason.",
        ),
    )
    board.row("Latency").line(
        timeseries_panel(
            "Order ack latency",
            _quantile_queries("mm_order_ack_latency_seconds", "transport"),
            unit=SECONDS,
            description="From sending an order request to the venue's answer, by transport.",
            width=6,
        ),
        timeseries_panel(
            "Decision latency",
            _quantile_queries("mm_decision_latency_seconds"),
            unit=SECONDS,
            description="From a book frame's arrival (or the order budget's tokens, when later) "
            "to its orders going to the client: the CPU path.",
            width=6,
        ),
        timeseries_panel(
            "Order budget wait",
            _quantile_queries("mm_budget_wait_seconds"),
            unit=SECONDS,
            description="How long a symbol's orders waited for the order budget's tokens.",
            width=6,
        ),
        timeseries_panel(
            "Quote cycle",
            _quantile_queries("mm_quote_cycle_seconds"),
            unit=SECONDS,
            description="The duration of one quoting cycle.",
            width=6,
        ),
    )
    board.row("Limits and journal").line(
        timeseries_panel(
            "API headroom",
            [Query("mm_api_headroom_ratio", "{{kind}}")],
            unit=RATIO,
            min_value=0,
            max_value=1,
            description="The remaining share of each API rate limit.",
            width=8,
        ),
        timeseries_panel(
            "Pre-trade rejections by check",
            [Query(rate_sum("mm_pretrade_rejections_total", "check"), "{{check}}")],
            unit=PER_SECOND,
            description="Order intents refused by a pre-trade check, per second.",
            width=8,
        ),
        timeseries_panel(
            "Journal batch latency",
            _quantile_queries("mm_journal_batch_seconds"),
            unit=SECONDS,
            description="The time to write one journal batch.",
            width=8,
        ),
    ).line(
        timeseries_panel(
            "Journal queue depth",
            [Query("mm_journal_queue_depth", "queue")],
            description="Journal entries waiting to be written.",
        ),
        timeseries_panel(
            "Journal write failures",
            [Query(rate_sum("mm_journal_write_failures_total"), "failures")],
            unit=PER_SECOND,
            description="Failed journal writes per second.",
        ),
    )
    return board


def feeds() -> Board:
    board = Board(
        "mm-feeds",
        "mm / Feeds",
        "Feed state, book age, message rates, reconnects and data quality.",
    ).symbol_variable()
    board.row("State").line(
        stat_panel(
            "Feed state",
            [Query(feed_state_code(), "{{feed}}")],
            states=FEED_STATE_CODES,
            description="The current state of each websocket feed.",
            width=12,
        ),
        stat_panel(
            "Reconnects",
            [Query(increase_sum("mm_feed_reconnects_total"), "reconnects")],
            thresholds=_thresholds("green", (1, "orange")),
            description="Feed reconnections over the dashboard's time range.",
        ),
        stat_panel(
            "Data quality errors",
            [Query(increase_sum("mm_data_quality_errors_total"), "errors")],
            thresholds=_thresholds("green", (1, "orange")),
            description="Book updates flagged by the data-quality checks over the time range.",
        ),
    ).line(
        timeline_panel(
            "Feed state history",
            [Query(feed_state_code(), "{{feed}}")],
            FEED_STATE_CODES,
            width=24,
            height=5,
        ),
    )
    board.row("Books and messages").line(
        timeseries_panel(
            "Book age",
            [Query(f"mm_book_age_seconds{{{SYMBOL}}}", "{{symbol}}")],
            unit=SECONDS,
            description="The age of each symbol's latest book when it was published.",
        ),
        timeseries_panel(
            "Messages by channel",
            [Query(rate_sum("mm_feed_messages_total", "feed, channel"), "{{feed}} {{channel}}")],
            unit=PER_SECOND,
            description="Websocket messages received per second, by feed and channel.",
        ),
    ).line(
        timeseries_panel(
            "Websocket round trip",
            _quantile_queries("mm_ws_round_trip_seconds", "feed"),
            unit=SECONDS,
            description="Round trip of websocket requests (posts and pings), by feed.",
            width=8,
        ),
        timeseries_panel(
            "Data quality errors by kind",
            [
                Query(
                    rate_sum("mm_data_quality_errors_total", "symbol, kind", SYMBOL),
                    "{{symbol}} {{kind}}",
                )
            ],
            unit=PER_SECOND,
            description="Book updates flagged by the data-quality checks, per second.",
            width=8,
        ),
        timeseries_panel(
            "Reconnects, malformed and dropped messages",
            [
                Query(rate_sum("mm_feed_reconnects_total", "feed"), "reconnects {{feed}}"),
                Query(rate_sum("mm_feed_malformed_messages_total", "feed"), "malformed {{feed}}"),
                Query(rate_sum("mm_feed_dropped_messages_total", "feed"), "dropped {{feed}}"),
            ],
            unit=PER_SECOND,
            description="Per second, by feed.",
            width=8,
        ),
    )
    return board


def supervision() -> Board:
    board = Board(
        "mm-supervision",
        "mm / Supervision",
        "Supervised children, restarts, the process, and operational events.",
    )
    # Process metrics of mm only (Prometheus exports its own too): joined on mm_build_info.
    of_mm = "* on (job, instance) group_left () mm_build_info"
    board.row("Service").line(
        stat_panel(
            "Children up",
            [Query("sum(mm_child_up)", "up")],
            description="Supervised children running.",
            width=5,
        ),
        stat_panel(
            "Children down",
            [Query(or_zero("count(mm_child_up == 0)"), "down")],
            thresholds=_thresholds("green", (1, "red")),
            description="Supervised children not running (restarting or failed).",
            width=5,
        ),
        stat_panel(
            "Restarts",
            [Query(increase_sum("mm_supervisor_restarts_total"), "restarts")],
            thresholds=_thresholds("green", (1, "orange")),
            description="Child restarts over the dashboard's time range.",
            width=5,
        ),
        stat_panel(
            "Uptime",
            [Query("time() - max(mm_start_time_seconds)", "uptime")],
            unit=SECONDS,
            width=4,
        ),
        text_stat_panel(
            "Version",
            [Query("mm_build_info", "{{service}} {{version}}")],
            width=5,
        ),
    )
    board.row("Children").line(
        timeline_panel(
            "Child state",
            [Query("mm_child_up", "{{child}}")],
            CHILD,
            description="Each supervised child, UP while it runs.",
            width=24,
            height=12,
        ),
    ).line(
        timeseries_panel(
            "Restarts by child",
            [Query(increase_sum("mm_supervisor_restarts_total", "child", RATE), "{{child}}")],
            description="Child restarts per rate window.",
        ),
        table_panel(
            "Restarts over the time range",
            [Query(increase_sum("mm_supervisor_restarts_total", "child"), instant=True)],
            value_name="restarts",
            description="Child restarts over the dashboard's time range, most first.",
        ),
    )
    board.row("Process and operations").line(
        timeseries_panel(
            "Resident memory",
            [Query(f"process_resident_memory_bytes {of_mm}", "{{instance}}")],
            unit=BYTES,
            width=8,
        ),
        timeseries_panel(
            "CPU",
            [Query(f"rate(process_cpu_seconds_total[{RATE}]) {of_mm}", "{{instance}}")],
            unit=RATIO,
            description="CPU time per second (1 = one core).",
            width=8,
        ),
        timeseries_panel(
            "Notifications",
            [
                Query(
                    rate_sum("mm_notifications_total", "sink, kind, severity"),
                    "{{sink}} {{kind}} {{severity}}",
                )
            ],
            unit=PER_SECOND,
            description="Operator notifications sent per second, by sink, kind and severity.",
            width=8,
        ),
    ).line(
        timeseries_panel(
            "Autonomy transitions",
            [
                Query(
                    increase_sum("mm_autonomy_transitions_total", "mode, reason", RATE),
                    "{{mode}} {{reason}}",
                )
            ],
            description="Autonomy mode changes per rate window, by mode entered and reason.",
            width=8,
        ),
        timeseries_panel(
            "Session phase changes",
            [
                Query(
                    increase_sum("mm_session_phase_changes_total", "track, phase", RATE),
                    "{{track}} {{phase}}",
                )
            ],
            description="Phase changes per rate window, by track and phase entered.",
            width=8,
        ),
        timeseries_panel(
            "Flatten runs",
            [Query(increase_sum("mm_flatten_runs_total", "outcome", RATE), "{{outcome}}")],
            description="Flatten runs per rate window, by outcome.",
            width=8,
        ),
    )
    return board


def triarb() -> Board:
    board = Board(
        "mm-triarb",
        "mm / Triangular arbitrage",
        "The triangle desk: signals, outcomes and hit rate, refusals, profit per primary, "
        "slots, first-leg and leg latency, slippage (strategy.kind = triarb).",
    )
    triangles = "sum(increase(mm_triarb_triangles_total[$__range]))"
    filled = 'sum(increase(mm_triarb_triangles_total{outcome="FILLED"}[$__range]))'
    board.row("Desk").line(
        stat_panel(
            "Triangles",
            [Query(or_zero(triangles), "triangles")],
            description="Triangles started over the dashboard's time range, whatever their end.",
        ),
        stat_panel(
            "Hit rate",
            [Query(or_zero(f"({filled} or on() vector(0)) / ({triangles} > 0)"), "filled")],
            unit=RATIO,
            thresholds=_thresholds("red", (0.5, "orange"), (0.8, "green")),
            description="The share of the triangles over the time range that filled all three "
            "legs (the others failed, were aborted or unwound).",
        ),
        stat_panel(
            "Profit",
            [Query("sum by (primary) (mm_triarb_profit)", "{{primary}}")],
            thresholds=_thresholds("red", (0, "green")),
            description="This run's closed triangles' profit, in each primary quote currency.",
        ),
        stat_panel(
            "Slots busy",
            [Query("sum(mm_triarb_slots_busy)", "busy")],
            description="Executor slots with a triangle in flight.",
        ),
    )
    board.row("Signals and outcomes").line(
        timeseries_panel(
            "Signals",
            [Query(rate_sum("mm_triarb_signals_total", "fate"), "{{fate}}")],
            unit=PER_SECOND,
            description="Signals per second: queued for a slot, or dropped because every slot "
            "was busy and the queue full.",
            width=8,
        ),
        timeseries_panel(
            "Triangles by outcome",
            [Query(increase_sum("mm_triarb_triangles_total", "outcome", RATE), "{{outcome}}")],
            description="Triangles ended per rate window: filled, failed, aborted, unwound.",
            width=8,
        ),
        timeseries_panel(
            "Refusals by reason",
            [Query(rate_sum("mm_triarb_refused_total", "reason"), "{{reason}}")],
            unit=PER_SECOND,
            description="Claimed triangles a risk limit or the permission board refused, per "
            "second, by reason.",
            width=8,
        ),
    )
    board.row("Latency, slippage and profit").line(
        timeseries_panel(
            "First leg latency",
            _quantile_queries("mm_triarb_first_leg_seconds"),
            unit=SECONDS,
            description="From a slot taking a signal to its first leg's order handed to the "
            "venue client.",
            width=6,
        ),
        timeseries_panel(
            "Leg latency",
            _quantile_queries("mm_triarb_leg_seconds", "leg"),
            unit=SECONDS,
            description="From a leg's order fired to its fills all in, by leg (L0..L2 the "
            "triangle's, U0.. an unwind's).",
            width=6,
        ),
        timeseries_panel(
            "Slippage",
            # No mean: a histogram with negative buckets exports no _sum.
            _quantile_queries("mm_triarb_slippage_bps"),
            unit=BPS,
            description="Effective minus predicted profit of the closed triangles, in bps of "
            "their start volume (negative: worse than predicted).",
            width=6,
        ),
        timeseries_panel(
            "Profit by primary",
            [Query("mm_triarb_profit", "{{primary}}")],
            description="This run's closed triangles' profit, in each primary quote currency.",
            width=6,
        ),
    )
    return board


BOARDS: dict[str, Callable[[], Board]] = {
    "overview": overview,
    "execution": execution,
    "feeds": feeds,
    "supervision": supervision,
    "triarb": triarb,
}
# Dashboards whose metrics only a service running one strategy exports: name -> strategy.kind.
STRATEGY_DASHBOARDS: dict[str, str] = {"triarb": "triarb"}


def dashboards() -> dict[str, dict[str, Any]]:
    """File name (``overview.json``...) -> the dashboard's JSON model."""
    return {f"{name}.json": make().build() for name, make in BOARDS.items()}


def render(dashboard: dict[str, Any]) -> str:
    """A dashboard's file content: sorted keys, 2-space indent, trailing newline."""
    return json.dumps(dashboard, sort_keys=True, indent=2) + "\n"


def _panels(panels: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    for panel in panels:
        yield panel
        yield from _panels(panel.get("panels", []))


def queries() -> list[tuple[str, str, str]]:
    """Every panel query: (dashboard name, e.g. ``overview``; panel title; PromQL expr)."""
    found = []
    for file_name, dashboard in dashboards().items():
        name = file_name.removesuffix(".json")
        for panel in _panels(dashboard.get("panels", [])):
            for target in panel.get("targets", []):
                found.append((name, panel["title"], target["expr"]))
    return found


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument(
        "--check", action="store_true", help="only check that the JSON files are up to date"
    )
    parser.add_argument("--out", type=Path, default=DASHBOARD_DIR, help="output directory")
    args = parser.parse_args(argv)
    out: Path = args.out
    wanted = {name: render(dashboard) for name, dashboard in dashboards().items()}
    present = {path.name for path in out.glob("*.json")} if out.is_dir() else set()
    stale = sorted(present - wanted.keys())
    changed = sorted(
        name
        for name, text in wanted.items()
        if not (out / name).is_file() or (out / name).read_text(encoding="utf-8") != text
    )
    if args.check:
        for name in changed:
            print(f"out of date: {out / name}", file=sys.stderr)
        for name in stale:
            print(f"not generated: {out / name}", file=sys.stderr)
        return 1 if changed or stale else 0
    out.mkdir(parents=True, exist_ok=True)
    for name in changed:
        (out / name).write_text(wanted[name], encoding="utf-8")
        print(f"wrote {out / name}")
    for name in stale:
        (out / name).unlink()
        print(f"removed {out / name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
