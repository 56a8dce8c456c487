"""The eight risk monitors: pure ``(state, config) -> Assessment`` functions.

Thresholds (``[risk]``, ``RiskConfig``) follow the reference risk system. Limits described as
"exceeds" trip strictly above the limit (loss, drawdown, position value, data age); levels
described as "at" trip at the level and above (position velocity, cascade, price velocity, API
errors). Per-symbol and per-feed monitors report the worst symbol or feed.
"""

from __future__ import annotations

import enum
from collections.abc import Callable
from typing import Any

import attrs

from mm.risk.state import FAILED, RECONNECTING, RiskState
from mm.settings import at_least, non_negative, positive, setting


class Action(enum.IntEnum):
    """What a monitor asks for, ordered by severity (a larger value is more severe)."""

    NONE = 0
    WARN = 1
    WIDEN = 2
    REDUCE_ONLY = 3
    PULL = 4
    KILL = 5


@attrs.frozen
class Assessment:
    """One monitor's verdict: the action, a severity (value / its limit) and the evidence."""

    monitor: str
    action: Action
    severity: float = 0.0
    spread_factor: float = 1.0
    reason: str = ""
    values: dict[str, Any] = attrs.field(factory=dict)
    # False when the monitor lacks an input it needs (e.g. the account value) and so cannot
    # judge: it then asks for nothing, and says so (status, mm_risk_monitor_judging).
    judging: bool = True


@attrs.frozen
class RiskConfig:
    """The ``[risk]`` section: every monitor threshold."""

    # Loss: KILL when the day's loss (USD) exceeds this.
    max_daily_loss: float = setting(500.0, positive)
    # Drawdown: KILL when (peak - current) / account value exceeds this; skipped while the peak
    # PnL is below min_peak_for_drawdown (USD).
    max_drawdown: float = setting(0.02, positive)
    min_peak_for_drawdown: float = setting(1.0, non_negative)
    # Position: a symbol's |USD value| in [1x, 2x] the soft limit -> REDUCE_ONLY, above 2x -> KILL.
    soft_position_limit_usd: float = setting(1000.0, positive)
    # Position velocity, as a fraction of the maximum position per minute.
    position_velocity_warn: float = setting(0.5, positive)
    position_velocity_pull: float = setting(1.0, positive)
    position_velocity_kill: float = setting(2.0, positive)
    # Data staleness: KILL when a feed's data is older than stale_threshold_s, but only PULL
    # while it is reconnecting, for up to reconnect_grace_attempts attempts; FAILED -> KILL.
    stale_threshold_s: float = setting(30.0, positive)
    reconnect_grace_attempts: int = setting(5, at_least(0))
    # Cascade severity: WIDEN (by cascade_widen_factor) from cascade_widen, PULL, KILL.
    cascade_widen: float = setting(0.4, non_negative)
    cascade_widen_factor: float = setting(1.5, at_least(1.0))
    cascade_pull: float = setting(0.8, positive)
    cascade_kill: float = setting(5.0, positive)
    # Price velocity, relative change per second (flash crash).
    price_velocity_pull: float = setting(0.05, positive)
    price_velocity_kill: float = setting(0.15, positive)
    # API errors: KILL at max_api_errors errors within api_error_window_s seconds.
    max_api_errors: int = setting(3, at_least(1))
    api_error_window_s: float = setting(60.0, positive)
    # Liquidation: a position change > liquidation_fraction of the max position (contracts)
    # with no matching fill within liquidation_fill_window_s seconds (longer than the fill
    # audit takes to recover a fill the stream dropped: mm.config checks it).
    liquidation_fraction: float = setting(0.2, positive)
    liquidation_fill_window_s: float = setting(10.0, positive)


Monitor = Callable[[RiskState, RiskConfig], Assessment]


def _ok(monitor: str, **values: Any) -> Assessment:
    return Assessment(monitor, Action.NONE, values=values)


def loss(state: RiskState, config: RiskConfig) -> Assessment:
    """KILL when the day's loss exceeds ``max_daily_loss``."""
    value = state.daily_loss
    values = {"loss": value, "limit": config.max_daily_loss}
    severity = value / config.max_daily_loss
    if value > config.max_daily_loss:
        reason = f"daily loss {value:.2f} exceeds {config.max_daily_loss:.2f}"
        return Assessment("loss", Action.KILL, severity, reason=reason, values=values)
    return Assessment("loss", Action.NONE, severity, values=values)


def drawdown(state: RiskState, config: RiskConfig) -> Assessment:
    """KILL when the drawdown against account value exceeds ``max_drawdown``.

    Skipped while the peak PnL is below ``min_peak_for_drawdown``; cannot judge (and asks for
    nothing) while the account value is unknown.
    """
    peak = max(state.peak_pnl, state.daily_pnl)
    if peak < config.min_peak_for_drawdown:
        return _ok("drawdown", peak=peak, min_peak=config.min_peak_for_drawdown)
    value = state.drawdown
    if value is None:
        reason = "cannot judge: the account value is not known yet"
        values = {"drawdown_usd": state.drawdown_usd, "peak": peak}
        return Assessment("drawdown", Action.NONE, reason=reason, values=values, judging=False)
    values = {"drawdown": value, "limit": config.max_drawdown, "peak": peak}
    severity = value / config.max_drawdown
    if value > config.max_drawdown:
        reason = f"drawdown {value:.2%} of account value exceeds {config.max_drawdown:.2%}"
        return Assessment("drawdown", Action.KILL, severity, reason=reason, values=values)
    return Assessment("drawdown", Action.NONE, severity, values=values)


def position(state: RiskState, config: RiskConfig) -> Assessment:
    """A symbol's |value| above 2x the soft limit -> KILL; from 1x to 2x -> REDUCE_ONLY."""
    limit = config.soft_position_limit_usd
    worst = _ok("position", limit=limit)
    for symbol, risk in state.symbols.items():
        value = abs(risk.value_usd)
        values = {"symbol": symbol, "value": value, "limit": limit}
        if value > 2.0 * limit:
            action, reason = Action.KILL, f"{symbol} position {value:.2f} exceeds 2x {limit:.2f}"
        elif value >= limit:
            action, reason = Action.REDUCE_ONLY, f"{symbol} position {value:.2f} >= {limit:.2f}"
        else:
            continue
        found = Assessment("position", action, value / limit, reason=reason, values=values)
        if found.action > worst.action:
            worst = found
    return worst


def _leveled(
    monitor: str, what: str, state_values: dict[str, float], levels: list[tuple[Action, float]]
) -> Assessment:
    """The worst of ``state_values`` against ascending ``(action, level)``s (trip at level)."""
    worst = _ok(monitor)
    for key, value in state_values.items():
        for action, level in reversed(levels):
            if value >= level and action > worst.action:
                reason = f"{key} {what} {value:g} >= {level:g}"
                values = {"key": key, "value": value, "level": level}
                worst = Assessment(monitor, action, value / level, reason=reason, values=values)
                break
    return worst


def position_velocity(state: RiskState, config: RiskConfig) -> Assessment:
    """Position change per minute (fraction of max position): WARN 0.5, PULL 1.0, KILL 2.0."""
    levels = [
        (Action.WARN, config.position_velocity_warn),
        (Action.PULL, config.position_velocity_pull),
        (Action.KILL, config.position_velocity_kill),
    ]
    rates = {s: abs(r.position_velocity) for s, r in state.symbols.items()}
    return _leveled("position_velocity", "position velocity /min", rates, levels)


def data_staleness(state: RiskState, config: RiskConfig) -> Assessment:
    """Per feed: FAILED -> KILL; age > threshold -> KILL, but PULL while reconnecting (grace).

    A reconnecting feed pulls quotes whatever its age; once its attempts exceed
    ``reconnect_grace_attempts`` and its data is stale, it kills.
    """
    threshold = config.stale_threshold_s
    grace = config.reconnect_grace_attempts
    worst = _ok("data_staleness", threshold=threshold)
    for feed, health in state.feeds.items():
        values = {
            "feed": feed,
            "age_s": health.age_s,
            "threshold": threshold,
            "connection": health.connection,
            "attempts": health.reconnect_attempts,
        }
        stale = health.age_s > threshold
        if health.connection == FAILED:
            action, reason = Action.KILL, f"{feed} connection failed"
        elif health.connection == RECONNECTING and health.reconnect_attempts <= grace:
            action = Action.PULL
            reason = f"{feed} reconnecting (attempt {health.reconnect_attempts}/{grace})"
        elif stale:
            action = Action.KILL
            reason = f"{feed} data {health.age_s:g}s old exceeds {threshold:g}s"
            if health.connection == RECONNECTING:
                reason += f" after {health.reconnect_attempts} reconnect attempts"
        elif health.connection == RECONNECTING:
            action, reason = Action.PULL, f"{feed} reconnecting beyond grace, data still fresh"
        else:
            continue
        found = Assessment(
            "data_staleness", action, health.age_s / threshold, reason=reason, values=values
        )
        if found.action > worst.action:
            worst = found
    return worst


def cascade(state: RiskState, config: RiskConfig) -> Assessment:
    """Liquidation cascade severity: WIDEN from ``cascade_widen``, PULL 0.8, KILL 5.0."""
    value = state.cascade_severity
    found = _leveled(
        "cascade",
        "cascade severity",
        {"cascade": value},
        [
            (Action.WIDEN, config.cascade_widen),
            (Action.PULL, config.cascade_pull),
            (Action.KILL, config.cascade_kill),
        ],
    )
    if found.action is Action.WIDEN:
        return attrs.evolve(found, spread_factor=config.cascade_widen_factor)
    return found


def price_velocity(state: RiskState, config: RiskConfig) -> Assessment:
    """Flash crash: relative price change per second, PULL at 5 %/s, KILL at 15 %/s."""
    levels = [
        (Action.PULL, config.price_velocity_pull),
        (Action.KILL, config.price_velocity_kill),
    ]
    rates = {s: abs(r.price_velocity) for s, r in state.symbols.items()}
    return _leveled("price_velocity", "price velocity /s", rates, levels)


def rate_limit(state: RiskState, config: RiskConfig) -> Assessment:
    """KILL at ``max_api_errors`` API errors within the window (the state carries the count)."""
    count, limit = state.api_errors, config.max_api_errors
    values = {"count": count, "limit": limit, "window_s": config.api_error_window_s}
    if count >= limit:
        reason = f"{count} API errors in {config.api_error_window_s:g}s (limit {limit})"
        return Assessment("rate_limit", Action.KILL, count / limit, reason=reason, values=values)
    return Assessment("rate_limit", Action.NONE, count / limit, values=values)


# The fixed evaluation order; on equal actions the first one wins.
MONITORS: tuple[Monitor, ...] = (
    loss,
    drawdown,
    position,
    position_velocity,
    data_staleness,
    cascade,
    price_velocity,
    rate_limit,
)
