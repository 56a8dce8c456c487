"""The ``mm`` command line: start, stop, status, check, kill, rearm, flatten, dump, report,
backup, sim.

Exit statuses: 0 success; 1 failure (already running, did not stop, unhealthy or not trading,
crashed); 2 bad configuration; 3 not running (``status``).
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import gc
import math
import os
import re
import signal
import sqlite3
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from decimal import Decimal
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

import attrs
import httpx
import orjson
import trio
from loguru import logger

from mm import __version__, clock
from mm.logs import configure
from mm.runfile import AlreadyRunning, RunInfo, is_locked, read_info
from mm.secrets import Redactor
from mm.settings import ConfigError

if TYPE_CHECKING:
    from mm.config import Config, Secrets

# Each command imports what it alone needs, inside it: the service, the checks' venue client,
# the simulator and the config's sections take most of a second to import, which every
# `mm status`, `mm kill` or `mm --help` paid before doing anything.

EXIT_OK = 0
EXIT_FAILURE = 1
EXIT_CONFIG = 2
EXIT_NOT_RUNNING = 3
DEFAULT_CONFIG = "config.toml"
PRIVATE_UMASK = 0o077
POLL_SECONDS = 0.1


def _load(path: str, environ: Mapping[str, str]) -> tuple[Config, Secrets]:
    from mm.config import load_config, resolve_secrets

    config = load_config(Path(path), environ)
    return config, resolve_secrets(config, environ)


def _print_errors(path: str, error: ConfigError) -> None:
    print(f"mm: invalid configuration ({path}):", file=sys.stderr)
    for line in error.errors:
        print(f"  {line}", file=sys.stderr)


def cmd_start(args: argparse.Namespace, environ: Mapping[str, str]) -> int:
    from mm.app import Service, StartupError
    from supervisors import SupervisorEscalation

    config, secrets = _load(args.config, environ)
    if is_locked(config.run_dir):
        info = read_info(config.run_dir)
        where = f" (pid {info.pid}, admin {info.admin_url})" if info else ""
        print(f"mm: already running in {config.run_dir}{where}", file=sys.stderr)
        return EXIT_FAILURE
    service_config = config.service
    log_dir = config.run_dir / "logs" if service_config.json_logs else None
    with configure(
        level=service_config.log_level,
        redact=Redactor(secrets.all()),
        log_dir=log_dir,
        rotation=service_config.log_rotation,
        retention=service_config.log_retention,
    ):
        service = Service(config, secrets, handle_signals=True, tune_gc=True)
        try:
            trio.run(service.run)
        except AlreadyRunning as error:
            logger.error("{}", error)
            return EXIT_FAILURE
        except StartupError as error:
            logger.error("cannot start: {}", error)
            return EXIT_FAILURE
        except SupervisorEscalation as error:
            logger.opt(exception=error).critical("mm stopped: the supervision tree gave up")
            return EXIT_FAILURE
    return EXIT_OK


def _running(config: Config) -> RunInfo | None:
    """The running instance's run file, or None when no mm holds the run_dir."""
    if not is_locked(config.run_dir):
        return None
    return read_info(config.run_dir)


def _wait_gone(config: Config, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not is_locked(config.run_dir):
            return True
        time.sleep(POLL_SECONDS)
    return not is_locked(config.run_dir)


def cmd_stop(args: argparse.Namespace, environ: Mapping[str, str]) -> int:
    config, secrets = _load(args.config, environ)
    info = _running(config)
    if info is None:
        if is_locked(config.run_dir):
            print("mm: an instance holds the run_dir but has not written its run file yet")
            return EXIT_FAILURE
        print("mm is not running")
        return EXIT_OK
    timeout = args.timeout if args.timeout is not None else config.service.shutdown_timeout
    headers = {}
    if secrets.admin_token is not None:
        headers["authorization"] = f"Bearer {secrets.admin_token.reveal()}"
    try:
        reply = httpx.post(f"{info.admin_url}/stop", headers=headers, timeout=5.0)
        if reply.status_code >= 300:
            print(f"mm: POST /stop answered {reply.status_code}: {reply.text.strip()}")
    except httpx.HTTPError as error:
        print(f"mm: POST /stop failed ({error}); falling back to SIGTERM")
        timeout = 0.0
    if _wait_gone(config, timeout):
        print(f"mm stopped (pid {info.pid})")
        return EXIT_OK
    print(f"mm: pid {info.pid} still running after {timeout:g}s; sending SIGTERM")
    with contextlib.suppress(ProcessLookupError):
        os.kill(info.pid, signal.SIGTERM)
    if _wait_gone(config, config.service.shutdown_timeout):
        print(f"mm stopped (pid {info.pid})")
        return EXIT_OK
    print(f"mm: pid {info.pid} did not stop after SIGTERM", file=sys.stderr)
    return EXIT_FAILURE


def _format_since(since: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(since))


def _tree_rows(node: dict[str, Any], prefix: str, last: bool, top: bool) -> list[list[str]]:
    branch = "" if top else ("└── " if last else "├── ")
    label = prefix + branch + node["name"]
    rows = [
        [
            label,
            node["state"],
            str(node.get("restarts", "")),
            _format_since(node["since"]) if "since" in node else "",
            node.get("last_error") or "",
        ]
    ]
    children = node.get("children", [])
    extension = "" if top else ("    " if last else "│   ")
    for index, child in enumerate(children):
        rows.extend(_tree_rows(child, prefix + extension, index == len(children) - 1, False))
    return rows


def render_status(status: dict[str, Any]) -> str:
    """The /status document as a readable report."""
    lines = [
        f"mm {status['version']}  service {status['service']}  pid {status['pid']}  "
        f"state {status['state']}",
        f"admin {status['admin_url']}  uptime {status['uptime_seconds']:.0f}s  "
        f"config {status['config_hash']}",
        "health: ok" if status["healthy"] else "health: UNHEALTHY",
    ]
    lines.extend(f"  - {problem}" for problem in status["problems"])
    not_trading = status.get("not_trading")
    if not_trading is not None:
        lines.append("trading: yes" if not not_trading else "NOT TRADING:")
        lines.extend(f"  - {reason}" for reason in not_trading)
    rows = [["CHILD", "STATE", "RESTARTS", "SINCE", "LAST ERROR"]]
    rows.extend(_tree_rows(status["tree"], "", True, True))
    widths = [max(len(row[column]) for row in rows) for column in range(4)]
    lines.append("")
    for row in rows:
        cells = [cell.ljust(width) for cell, width in zip(row[:4], widths, strict=True)]
        lines.append("  ".join([*cells, row[4]]).rstrip())
    killswitch = status.get("killswitch")
    if killswitch is not None:
        state = "TRIPPED: " + str(killswitch["reason"]) if killswitch["tripped"] else "armed"
        lines.extend(["", f"kill switch: {state}"])
        if killswitch["tripped"] and killswitch.get("values"):
            lines.append(f"  {killswitch['values']}")
        lines.extend(_killswitch_details(killswitch))
    deadman = status.get("deadman")
    if deadman is not None:
        lines.append(f"dead-man's switch: {_describe_deadman(deadman)}")
    mode = status.get("mode")
    if mode is not None:
        reason = f" ({mode['reason']})" if mode.get("reason") else ""
        lines.append(f"mode: {str(mode['mode']).upper()}{reason}")
        for trigger, values in (mode.get("triggers") or {}).items():
            lines.append(f"  trigger {trigger}: {values}")
    session = status.get("session")
    if session and session.get("tracks"):
        phases = [
            f"{name} {track['phase']}"
            + (f" (next {track['next_change']})" if track.get("next_change") else "")
            for name, track in session["tracks"].items()
        ]
        lines.append("session: " + "; ".join(phases))
        active = (session.get("flatten") or {}).get("active")
        if active:
            lines.append(f"  flattening: {', '.join(active)}")
    risk = status.get("risk")
    if risk and risk.get("action"):
        reasons = "; ".join(risk.get("reasons") or []) or "-"
        lines.append(f"risk decision: {risk['action']} ({reasons})")
        for monitor, why in (risk.get("cannot_judge") or {}).items():
            lines.append(f"  {monitor}: {why}")
    gc_status = status.get("gc")
    if gc_status is not None:
        lines.append(_describe_gc(gc_status))
    trading = status.get("trading")
    if trading and trading.get("balances"):
        lines.extend(["", *_balance_lines(trading["balances"])])
    if trading and trading.get("symbols"):
        lines.extend(["", _trading_table(trading)])
    if trading and trading.get("triangles"):
        lines.extend(["", *_triangle_lines(trading["triangles"])])
    return "\n".join(lines)


RECENT_TRIANGLES_SHOWN = 5


def _counts(counts: dict[str, Any]) -> str:
    """``FILLED 4, FAILED 1``; ``none`` when empty."""
    return ", ".join(f"{name} {n}" for name, n in counts.items()) or "none"


def _triangle_lines(triangles: dict[str, Any]) -> list[str]:
    """Triangular arbitrage's desk: its mode and slots, signals, outcomes, refusals, profit per
    primary, the strategy's counters and the latest triangles' lines (newest first)."""
    busy = triangles.get("busy") or {}
    in_flight = "; ".join(f"slot {slot} {triangle}" for slot, triangle in busy.items())
    signals = triangles.get("signals") or {}
    lines = [
        f"triangles ({triangles['mode']}): {len(busy)} of {triangles['slots']} slots busy"
        + (f": {in_flight}" if in_flight else ""),
        f"  signals: {signals.get('queued', 0)} queued, {signals.get('dropped', 0)} dropped;"
        f" first leg sent at once {signals.get('at_once', 0)}",
        f"  outcomes: {_counts(triangles.get('outcomes') or {})}",
        f"  refused: {_counts(triangles.get('refused') or {})};"
        f" conflicts: {_counts(triangles.get('conflicts') or {})}",
        "  profit: "
        + (
            ", ".join(
                f"{_profit(amount)} {primary}" for primary, amount in triangles["profit"].items()
            )
            if triangles.get("profit")
            else "none closed"
        ),
    ]
    strategy = triangles.get("strategy") or {}
    if strategy:
        counters = [
            f"{value} {name.replace('_', ' ')}"
            for name, value in strategy.items()
            if not isinstance(value, dict)
        ]
        counters += [
            f"{name.replace('_', ' ')}: {_counts(value)}"
            for name, value in strategy.items()
            if isinstance(value, dict) and value
        ]
        lines.append(f"  strategy: {'; '.join(counters)}")
    recent = triangles.get("recent") or []
    if recent:
        shown = recent[:RECENT_TRIANGLES_SHOWN]
        more = len(recent) - len(shown)
        lines.append(
            f"  recent (newest first{f', {more} more' if more else ''}; every field in"
            " --json and the log):"
        )
        lines.extend(f"    {_triangle_line(line)}" for line in shown)
    return lines


def _profit(amount: str | None) -> str:
    """A profit in its primary as the triangle's log line prints it: four decimals, more when
    needed to show three significant digits (a BTC primary's profits are small numbers)."""
    if amount is None or amount == "-":
        return "-"
    profit = Decimal(amount)
    places = 4 if profit == 0 else max(4, 2 - profit.adjusted())
    return f"{profit:.{places}f}"


_LATEST_FILL = re.compile(r"filled=([0-9.]+)ms")


def _triangle_line(line: str) -> str:
    """A triangle's log line in brief: when (UTC), how it ended, its currencies, predicted and
    effective bps, the profit, when its last fill came (after the signal), and why it did not
    fill or what it left held. A line not in the log's format is shown as it is."""
    first, *rest = line.split(" | ")
    fields = dict(field.partition("=")[::2] for field in rest)
    head = first.split()
    if len(head) != 2 or not {"triangle", "predicted_bps", "effective_bps", "profit"} <= set(
        fields
    ):
        return line
    moment, outcome = head
    currencies = [c.strip("'") for c in fields["triangle"].strip("[]").split(",")]
    filled = [float(ms) for ms in _LATEST_FILL.findall(fields.get("timings", ""))]
    effective = fields["effective_bps"]
    parts = [
        f"{moment[11:23] if len(moment) >= 23 else moment} {outcome} {' > '.join(currencies)}"
        f" (corr {fields.get('corr', '-')}): predicted {fields['predicted_bps']} bps, effective"
        f" {effective}{'' if effective == '-' else ' bps'}, profit {fields['profit']}"
        f" {currencies[0]}",
    ]
    if filled:
        parts.append(f"last fill {max(filled):.1f} ms")
    for why in ("error", "reason", "held"):
        if fields.get(why):
            parts.append(f"{why} {fields[why]}")
    return "; ".join(parts)


def _describe_gc(gc_status: dict[str, Any]) -> str:
    """The garbage collector's longest pause so far, its collections and what is frozen."""
    counts = "/".join(str(count) for count in gc_status["collections"])
    return (
        f"gc: longest pause {gc_status['longest_pause_ms']:.1f} ms "
        f"(costliest {gc_status['longest_pause_cpu_ms']:.1f} ms of CPU); collections {counts} "
        f"(gen 0/1/2); {gc_status['frozen_objects']} objects frozen"
    )


def _killswitch_details(killswitch: dict[str, Any]) -> list[str]:
    """Since when and how often it tripped, the last cancel-all and the backstop."""
    lines = []
    if killswitch.get("tripped") and killswitch.get("since"):
        lines.append(
            f"  since {_format_since(killswitch['since'])}; trips {killswitch.get('trips', 0)}"
        )
    cancel = killswitch.get("last_cancel")
    if killswitch.get("tripped") and cancel:
        rounds = killswitch.get("cancel_rounds") or 1
        after = f" (cancel-all {rounds})" if rounds > 1 else ""
        lines.append(f"  venue: {_describe_cancel(cancel)}{after}")
        if killswitch.get("cancel_retrying"):
            lines.append("  still canceling: the cancel-all runs again until none is left")
    backstop = killswitch.get("backstop")
    if killswitch.get("tripped") and backstop:
        lines.append(f"  backstop: {_describe_backstop(backstop)}")
    return lines


def _describe_deadman(deadman: dict[str, Any]) -> str:
    """The venue's dead-man's switch as the keeper sees it."""
    if deadman.get("available"):
        return f"{deadman['state']} ({deadman['detail']})"
    return (
        f"UNAVAILABLE: {deadman['detail']}; the kill switch retries its cancel-all until "
        "no order is left instead"
    )


def _describe_cancel(report: dict[str, Any]) -> str:
    """The kill's cancel-all report, in words."""
    requests = f"{report['attempts']} cancel request{'s' if report['attempts'] != 1 else ''}"
    if report.get("zero"):
        return (
            f"{report['canceled']} orders canceled, none open after "
            f"{report['seconds_to_zero']:.3f}s ({requests})"
        )
    if not report.get("reads"):
        return f"NOT CONFIRMED: the open orders could not be read within {report['seconds']:.1f}s"
    left = ", ".join(f"{o['coin']} {o['oid']}" for o in report["remaining"])
    return f"{report['canceled']} canceled, STILL OPEN after {report['seconds']:.1f}s: {left}"


def _describe_backstop(backstop: dict[str, Any]) -> str:
    if backstop.get("armed"):
        return f"dead-man's switch {backstop['detail']}"
    return f"NONE ({backstop['detail']})"


def _number(value: Any, digits: int = 2) -> str:
    return "-" if value is None else f"{value:,.{digits}f}"


# The per-symbol table's columns: (header, shown, cell). A column is shown when a row carries
# what it reads, so each strategy's rows make their own table: the market maker's quotes,
# positions and markouts; triangular arbitrage's pairs, their books and fills. Where the status
# shows balances per currency, those are what is held: a pair's position and PnL are not (on a
# spot account they are the base traded through it, one leg of triangles that net out).
Row = dict[str, Any]
Column = tuple[str, Callable[[Row, bool], bool], Callable[[Row], str]]


def _has(key: str) -> Callable[[Row, bool], bool]:
    return lambda row, balances: key in row


def _holds(key: str) -> Callable[[Row, bool], bool]:
    return lambda row, balances: key in row and not balances


def _always(row: Row, balances: bool) -> bool:
    return True


def _book(row: Row, side: str) -> str:
    book = row.get("book") or {}
    return _price(book.get(side))


def _position(row: Row, figure: str, digits: int) -> str:
    return _number((row.get("position") or {}).get(figure), digits)


def _markouts(row: Row) -> str:
    markouts = row.get("markouts") or {}
    marks = "/".join(_number(markouts.get(h, {}).get("mean_bps"), 1) for h in ("1s", "5s", "30s"))
    return marks + " bps"


def _fills(row: Row) -> str:
    fills = row.get("fills") or {}
    return f"{fills.get('buy', 0)}/{fills.get('sell', 0)}"


SYMBOL_COLUMNS: tuple[Column, ...] = (
    ("ALLOWED", _always, lambda row: str(row.get("allowed", "-"))),
    ("GATE", _always, lambda row: str(row["gate"])),
    ("BID", _has("bid"), lambda row: _number(row.get("bid"))),
    ("ASK", _has("ask"), lambda row: _number(row.get("ask"))),
    ("BEST BID", _has("book"), lambda row: _book(row, "bid")),
    ("BEST ASK", _has("book"), lambda row: _book(row, "ask")),
    ("BOOK AGE", _has("book"), lambda row: _age((row.get("book") or {}).get("age_ms"))),
    ("ORDERS", _always, lambda row: str(row.get("orders", 0))),
    ("FILLS B/S", _has("fills"), _fills),
    ("POSITION", _holds("position"), lambda row: _position(row, "position", 5)),
    ("PNL", _holds("position"), lambda row: _position(row, "total", 2)),
    ("FEES", _holds("position"), lambda row: _position(row, "fees", 2)),
    ("MARKOUT 1s/5s/30s", _holds("markouts"), _markouts),
)


def _price(value: Any) -> str:
    """A price as the book has it (``0.04978``, ``60,016.5``): no digit added or lost."""
    if value is None:
        return "-"
    return f"{Decimal(repr(value)):,f}"


def _age(age_ms: Any) -> str:
    if age_ms is None:
        return "-"
    return f"{age_ms:,.0f} ms" if age_ms < 10_000 else f"{age_ms / 1000:,.0f} s"


def _trading_table(trading: dict[str, Any]) -> str:
    """Per symbol what may be sent, the gate and open orders, and the columns its rows carry
    (``SYMBOL_COLUMNS``): the market maker's quotes, position, PnL and markouts; triangular
    arbitrage's best bid and ask, book age and fills."""
    symbols: dict[str, Row] = trading["symbols"]
    balances = bool(trading.get("balances"))
    columns = [
        (header, cell)
        for header, shown, cell in SYMBOL_COLUMNS
        if any(shown(row, balances) for row in symbols.values())
    ]
    rows = [["SYMBOL", *(header for header, _ in columns)]]
    rows.extend([coin, *(cell(row) for _, cell in columns)] for coin, row in symbols.items())
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    sync = "in sync" if trading.get("in_sync") else "NOT IN SYNC (quoting blocked)"
    lines = [f"trading: {sync}"]
    lines += [
        "  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip() for row in rows
    ]
    return "\n".join(lines)


def _amount(value: float, *, signed: bool = False, places: int = 8) -> str:
    """An amount to ``places`` decimals, trailing zeros dropped (``1.0133``, ``+0.0133``);
    ``0`` for what rounds to nothing."""
    if round(value, places) == 0:
        return "0"
    text = f"{value:{'+' if signed else ''},.{places}f}"
    return text.rstrip("0").rstrip(".") if "." in text else text


def _value_places(total: float) -> int:
    """Decimals for values in the primary: cents for thousands of it, more for less (a BTC
    primary's values are small numbers)."""
    size = abs(total)
    if size >= 100:
        return 2
    return 8 if size == 0 else min(8, 4 - math.floor(math.log10(size)))


def _balance_lines(balances: dict[str, Any]) -> list[str]:
    """Per currency the balance, its change since the venue's balances were read (at start, or
    by a kill switch) and its value in the primary; then the total and what the changes are
    worth at today's prices."""
    primary = balances["in"]
    currencies: dict[str, dict[str, Any]] = balances.get("currencies") or {}
    places = _value_places(balances.get("value") or 0.0)
    rows = [["CURRENCY", "BALANCE", "CHANGE", f"VALUE {primary}"]]
    for currency, held in currencies.items():
        value = held.get("value")
        rows.append(
            [
                currency,
                _amount(held["balance"]),
                _amount(held["change"], signed=True),
                "-" if value is None else _amount(value, places=places),
            ]
        )
    widths = [max(len(row[i]) for row in rows) for i in range(4)]
    lines = ["balances (change: since the venue's balances were last read, at start or by a kill):"]
    for row in rows:
        cells = [c.rjust(w) for c, w in zip(row[1:], widths[1:], strict=True)]
        lines.append("  ".join([row[0].ljust(widths[0]), *cells]))
    unvalued = balances.get("unvalued") or []
    total = (
        f"total {_amount(balances['value'], places=places)} {primary}; change"
        f" {_amount(balances['change_value'], signed=True, places=places)} {primary}"
        " at current prices"
    )
    if unvalued:
        total += f" (not valued, no price: {', '.join(unvalued)})"
    lines.append(total)
    return lines


def cmd_status(args: argparse.Namespace, environ: Mapping[str, str]) -> int:
    from mm.config import load_config

    config = load_config(Path(args.config), environ)
    info = _running(config)
    if info is None:
        print("mm is not running")
        return EXIT_NOT_RUNNING
    try:
        reply = httpx.get(f"{info.admin_url}/status", timeout=5.0)
        reply.raise_for_status()
    except httpx.HTTPError as error:
        print(f"mm: pid {info.pid} is running but {info.admin_url} did not answer: {error}")
        return EXIT_FAILURE
    status: dict[str, Any] = reply.json()
    if args.json:
        print(reply.text.strip())
    else:
        print(render_status(status))
    return status_exit_code(status)


def status_exit_code(status: dict[str, Any]) -> int:
    """0 when mm is healthy and trading; 1 when it is unhealthy or not trading (a tripped
    kill switch, a mode other than NORMAL, out of sync, starting: ``not_trading`` says why)."""
    trading = not status.get("not_trading", [])
    return EXIT_OK if status["healthy"] and trading else EXIT_FAILURE


def cmd_check(args: argparse.Namespace, environ: Mapping[str, str]) -> int:
    """Pre-flight checks (or, with --post, the post-session ones); 1 when any fails."""
    from mm.config import config_hash
    from mm.ops.checks import exit_code as checks_exit_code
    from mm.ops.checks import render as render_checks
    from mm.ops.checks import run_checks

    config, secrets = _load(args.config, environ)
    token = "configured" if secrets.admin_token is not None else "none"
    print(f"config OK: {args.config} (hash {config_hash(config)})")
    print(f"  run_dir   {config.run_dir}")
    print(f"  admin     {config.admin.host}:{config.admin.port} (token: {token})")
    info = _running(config)
    admin_url = info.admin_url if info is not None else None
    where = f"the running instance ({admin_url})" if admin_url else "no running instance"
    print(f"{'post-session' if args.post else 'pre-flight'} checks against {where}:")
    redact = Redactor(secrets.all())
    with configure(level="WARNING", redact=redact, log_dir=None):
        results = trio.run(
            partial(run_checks, config, secrets, post=args.post, admin_url=admin_url)
        )
    print(redact(render_checks(results)))
    return checks_exit_code(results)


def cmd_flatten(args: argparse.Namespace, environ: Mapping[str, str]) -> int:
    who = environ.get("USER") or environ.get("LOGNAME") or "cli"
    body = {"reason": args.reason, "who": who}
    return _admin_post(args, environ, "/flatten", body, render=render_flatten)


def _database(config: Config) -> Path:
    from mm.journal import DATABASE_NAME

    return config.run_dir / DATABASE_NAME


def cmd_report(args: argparse.Namespace, environ: Mapping[str, str]) -> int:
    """The daily report from the journal (UTC days; today by default)."""
    from mm.config import load_config
    from mm.ops.report import build_report, read_day
    from mm.ops.report import render_text as render_report
    from mm.ops.report import to_json as report_json

    config = load_config(Path(args.config), environ)
    try:
        day = dt.date.fromisoformat(args.date) if args.date else dt.datetime.now(dt.UTC).date()
    except ValueError:
        print(f"mm: --date must be YYYY-MM-DD, got {args.date!r}", file=sys.stderr)
        return EXIT_FAILURE
    database = _database(config)
    try:
        entries = read_day(database, day)
    except (FileNotFoundError, sqlite3.Error) as error:
        print(f"mm: cannot read the journal {database}: {error}", file=sys.stderr)
        return EXIT_FAILURE
    report = build_report(day, *entries)
    if args.json:
        print(orjson.dumps(report_json(report), option=orjson.OPT_INDENT_2).decode())
    else:
        print(render_report(report), end="")
    return EXIT_OK


def cmd_simulate(args: argparse.Namespace, environ: Mapping[str, str]) -> int:
    """Seeded runs of the service on its embedded venue, on virtual time, each checked against
    the run invariants (mm.simulation): a line per run as it ends, then the campaign's table;
    exit 1 when any run broke an invariant or crashed."""
    import tempfile
    import time

    from mm.simulation.campaign import (
        Outcome,
        campaign,
        parse_seeds,
        render,
        strategy_kind,
        summary,
    )
    from mm.simulation.ledger import Ledger, heading

    try:
        seeds = parse_seeds(args.seeds)
    except ValueError as error:
        print(f"mm: {error}", file=sys.stderr)
        return EXIT_FAILURE
    config_path = Path(args.config)
    work_dir = Path(args.dir) if args.dir else Path(tempfile.mkdtemp(prefix="mm-simulate-"))
    work_dir.mkdir(parents=True, exist_ok=True)
    seconds = args.seconds if args.hours is None else args.hours * 3600
    if seconds <= 0:
        print("mm: --seconds / --hours: a run must last some time", file=sys.stderr)
        return EXIT_FAILURE

    def replay(seed: int) -> str:
        return f"mm simulate -c {config_path} --seeds {seed} --seconds {seconds:g} --keep"

    done: list[Outcome] = []
    resumed = 0

    def heard(outcome: Outcome) -> None:
        done.append(outcome)
        verdict = "ok" if outcome.passed else "FAILED"
        elapsed = time.perf_counter() - started
        ended = resumed + len(done)
        left = elapsed / len(done) * (len(seeds) - ended)
        print(
            f"[{ended}/{len(seeds)} {_bar(ended, len(seeds))} about {left:.0f} s left] "
            f"seed {outcome.run.seed}: {verdict}, {outcome.fills} fills, "
            f"{outcome.triangles} triangles, {outcome.wall_s:.1f} s",
            flush=True,
        )

    started = time.perf_counter()
    try:
        kind = strategy_kind(config_path)
    except ValueError as error:
        print(f"mm: {error}", file=sys.stderr)
        return EXIT_FAILURE
    print(f"{len(seeds)} runs of {kind}, {seconds:g} simulated seconds each", flush=True)
    ledger = Ledger(work_dir, heading(config_path, kind, seconds))
    if ledger.set_aside:
        print(f"the runs recorded in {work_dir} were of other code or config: set aside")
    resumed = len(set(seeds) & ledger.recorded.keys())
    earlier_wall_s = ledger.earlier_wall_s()
    if resumed:
        print(
            f"going on from {ledger.path}: {resumed} of the {len(seeds)} runs ended before, "
            f"in {earlier_wall_s:.0f} s of wall",
            flush=True,
        )
    outcomes = campaign(
        config_path,
        seeds,
        seconds,
        jobs=args.jobs,
        work_dir=work_dir,
        keep=args.keep,
        on_outcome=heard,
        ledger=ledger,
    )
    figures = summary(outcomes, earlier_wall_s + time.perf_counter() - started)
    print(render(figures, replay), end="")
    if not all(outcome.passed for outcome in outcomes) or args.keep:
        print(f"run directories (journal, simulate.log) under {work_dir}")
    if args.json:
        Path(args.json).write_bytes(orjson.dumps(figures, option=orjson.OPT_INDENT_2))
    return EXIT_OK if all(outcome.passed for outcome in outcomes) else EXIT_FAILURE


def _bar(done: int, total: int, width: int = 20) -> str:
    """A progress bar: ``done`` of ``total`` as ``width`` cells."""
    filled = width * done // max(1, total)
    return "#" * filled + "." * (width - filled)


def cmd_backup(args: argparse.Namespace, environ: Mapping[str, str]) -> int:
    """An online backup of the journal into <run_dir>/backups, keeping the newest --keep."""
    from mm.config import load_config
    from mm.ops.backup import BackupError, backup, list_backups

    config = load_config(Path(args.config), environ)
    target = Path(args.dir) if args.dir else config.run_dir / "backups"
    try:
        path = backup(_database(config), target, keep=args.keep, now=dt.datetime.now(dt.UTC))
    except BackupError as error:
        print(f"mm: backup failed: {error}", file=sys.stderr)
        return EXIT_FAILURE
    kept = list_backups(target)
    print(f"backup written: {path} ({path.stat().st_size:,} bytes; {len(kept)} kept)")
    return EXIT_OK


def _address_argument(value: str) -> str:
    if re.fullmatch(r"0x[0-9a-fA-F]{40}", value) is None:
        raise argparse.ArgumentTypeError(f"not an address (0x and 40 hex digits): {value!r}")
    return value.lower()


def cmd_sim(args: argparse.Namespace, environ: Mapping[str, str]) -> int:
    from mm.config import load_config
    from mm.venues.sim.venue import SimVenue

    config = load_config(Path(args.config), environ)
    sim_config = config.sim
    overrides: dict[str, Any] = {}
    if args.port is not None:
        overrides["port"] = args.port
    if args.seed is not None:
        overrides["seed"] = args.seed
    sim_config = attrs.evolve(sim_config, **overrides)

    if args.venue == "kucoin" and args.fund:
        print(
            "mm sim: --fund is the Hyperliquid face's faucet; KuCoin's development account "
            "starts funded",
            file=sys.stderr,
        )
        return EXIT_CONFIG

    # Ids from the wall clock's ms, as the embedded simulators': a service's journal remembers
    # the fills of a simulator restarted under it, and ids from 1 again would be taken for them.
    first_id = clock.wall_ms()

    async def announce(url: str) -> None:
        ws_url = url.replace("http", "ws", 1) + "/ws"
        print(f"mm sim: Hyperliquid-compatible venue at {url} (WebSocket {ws_url})", flush=True)

    async def serve(task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        if args.venue == "kucoin":
            from mm.venues.sim.kucoin.server import KucoinSimVenue

            kucoin = KucoinSimVenue(
                host=sim_config.host,
                port=sim_config.port,
                seed=sim_config.seed,
                first_id=first_id,
            )
            async with trio.open_nursery() as inner:
                url = await inner.start(kucoin.run)
                print(
                    f"mm sim: KuCoin-compatible venue at {url} (WebSocket by "
                    "POST /api/v1/bullet-public or bullet-private; development key mm-sim-key)",
                    flush=True,
                )
                task_status.started()
            return
        venue = SimVenue(
            sim_config, on_bound=announce, fund_at_start=args.fund or (), first_id=first_id
        )
        await venue.run(task_status=task_status)

    async def run() -> None:
        with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
            async with trio.open_nursery() as nursery:
                await nursery.start(serve)
                async for _ in signals:
                    nursery.cancel_scope.cancel()
                    break

    with configure(level=config.service.log_level, redact=Redactor(), log_dir=None):
        trio.run(run)
    return EXIT_OK


Render = Callable[[int, dict[str, Any]], tuple[str, int]]


def _admin_post(
    args: argparse.Namespace,
    environ: Mapping[str, str],
    path: str,
    body: dict[str, Any],
    *,
    render: Render | None = None,
    timeout: float = 5.0,
) -> int:
    """POST to the running instance's admin server, with the token when one is configured;
    ``render`` turns its answer into the text printed and the exit status."""
    config, secrets = _load(args.config, environ)
    info = _running(config)
    if info is None:
        print("mm is not running")
        return EXIT_NOT_RUNNING
    headers = {}
    if secrets.admin_token is not None:
        headers["authorization"] = f"Bearer {secrets.admin_token.reveal()}"
    try:
        reply = httpx.post(f"{info.admin_url}{path}", json=body, headers=headers, timeout=timeout)
    except httpx.HTTPError as error:
        print(f"mm: POST {path} failed: {error}", file=sys.stderr)
        return EXIT_FAILURE
    try:
        document = reply.json()
    except ValueError:
        document = None
    if render is None or not isinstance(document, dict):
        print(reply.text.strip())
        return EXIT_OK if reply.status_code < 300 else EXIT_FAILURE
    if reply.status_code >= 300 and "error" in document:
        print(f"mm: POST {path} answered {reply.status_code}: {document['error']}")
        return EXIT_FAILURE
    text, code = render(reply.status_code, document)
    print(text)
    return code


COMMAND_TIMEOUT_S = 75.0  # the admin server waits up to 60 s for a command's outcome


def render_kill(status: int, answer: dict[str, Any]) -> tuple[str, int]:
    """``mm kill``: the checkpoint in the journal, the venue's cancel, the backstop; exit 1
    when the kill is not confirmed on both."""
    since = _format_since(answer["since"])
    committed = answer.get("journal_committed")
    journal = (
        "journal: checkpoint committed (a restart comes back tripped)"
        if committed
        else "journal: checkpoint NOT confirmed committed"
    )
    if answer.get("already_tripped"):
        lines = [
            f"kill switch already tripped since {since} for {answer['tripped_for']}; "
            "this request is journaled",
            f"  {journal}",
        ]
        return "\n".join(lines), EXIT_OK
    cancel = answer.get("cancel_all")
    venue = (
        f"venue: cancel sent; {_describe_cancel(cancel)}"
        if answer.get("cancel_sent") and cancel
        else "venue: cancel NOT sent (no venue client)"
    )
    lines = [f"kill switch tripped at {since} ({answer['reason']})", f"  {journal}", f"  {venue}"]
    if answer.get("cancel_retrying"):
        lines.append(
            "  still canceling: the cancel-all runs again until the venue shows none "
            "(`mm status` follows it)"
        )
    backstop = answer.get("backstop")
    if backstop:
        lines.append(f"  backstop: {_describe_backstop(backstop)}")
    positions = answer.get("positions")
    if positions is not None:
        held = ", ".join(f"{coin} {size:g}" for coin, size in positions.items()) or "none"
        lines.append(f"  positions (re-read from the venue): {held}")
    confirmed = committed and cancel is not None and cancel.get("zero")
    return "\n".join(lines), EXIT_OK if confirmed else EXIT_FAILURE


def _blocker(blocker: dict[str, Any]) -> str:
    values = ", ".join(f"{key}={value}" for key, value in blocker.get("values", {}).items())
    reason = f" ({blocker['reason']})" if blocker.get("reason") else ""
    return f"{blocker['monitor']}{reason}: {values}" if values else f"{blocker['monitor']}{reason}"


def render_rearm(status: int, answer: dict[str, Any]) -> tuple[str, int]:
    """``mm rearm``: rearmed (forced or not), refused (which monitor, which value), or armed."""
    mode = str(answer.get("mode", "?")).upper()
    if status == 409 or answer.get("refused"):
        lines = ["mm: rearm refused: the kill switch would trip again now:"]
        lines += [f"  {_blocker(b)}" for b in answer.get("blockers", [])]
        lines.append(f"mode unchanged ({mode}); `mm rearm --force` overrides (journaled as forced)")
        return "\n".join(lines), EXIT_FAILURE
    if answer.get("rearmed"):
        first = f"kill switch rearmed by {answer['who']}"
        if answer.get("forced") and answer.get("blockers"):
            first += " (FORCED over: " + "; ".join(_blocker(b) for b in answer["blockers"]) + ")"
        elif answer.get("forced"):
            first += " (forced)"
    else:
        first = "kill switch was not tripped"
    return f"{first}\nmode: {mode}", EXIT_OK


def render_flatten(status: int, answer: dict[str, Any]) -> tuple[str, int]:
    if status == 409:
        mode = str(answer.get("mode", "?")).upper()
        return f"mm: flatten refused: {answer['refused']}; mode unchanged ({mode})", EXIT_FAILURE
    return f"flattening every position ({answer['who']}: {answer['reason']})", EXIT_OK


def render_dump(status: int, answer: dict[str, Any]) -> tuple[str, int]:
    return f"incident dump written: {answer['path']}", EXIT_OK


def cmd_kill(args: argparse.Namespace, environ: Mapping[str, str]) -> int:
    body = {"reason": args.reason}
    return _admin_post(args, environ, "/kill", body, render=render_kill, timeout=COMMAND_TIMEOUT_S)


def cmd_rearm(args: argparse.Namespace, environ: Mapping[str, str]) -> int:
    who = environ.get("USER") or environ.get("LOGNAME") or "cli"
    body = {"reason": args.reason, "who": who, "force": args.force}
    return _admin_post(
        args, environ, "/rearm", body, render=render_rearm, timeout=COMMAND_TIMEOUT_S
    )


def cmd_dump(args: argparse.Namespace, environ: Mapping[str, str]) -> int:
    body = {"reason": "mm dump"}
    return _admin_post(args, environ, "/dump", body, render=render_dump, timeout=COMMAND_TIMEOUT_S)


Command = Callable[[argparse.Namespace, Mapping[str, str]], int]


def _at_least_one(text: str) -> int:
    """An argument that is a whole number of at least 1 (argparse says which and why)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a whole number, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="mm",
        description="mm: market-making and execution service for crypto venues.",
    )
    parser.add_argument("--version", action="version", version=f"mm {__version__}")
    verbs = parser.add_subparsers(dest="verb", metavar="COMMAND", required=True)

    def verb(name: str, command: Command, summary: str) -> argparse.ArgumentParser:
        sub = verbs.add_parser(name, help=summary, description=summary)
        sub.add_argument(
            "-c",
            "--config",
            default=DEFAULT_CONFIG,
            metavar="FILE",
            help=f"configuration file (default: {DEFAULT_CONFIG}); "
            "MM_<SECTION>__<KEY> environment variables override it",
        )
        sub.set_defaults(command=command)
        return sub

    verb("start", cmd_start, "Run the service in the foreground until stopped.")
    stop = verb("stop", cmd_stop, "Stop the running instance gracefully and wait until it exits.")
    stop.add_argument(
        "--timeout",
        type=float,
        default=None,
        metavar="SECONDS",
        help="how long to wait before falling back to SIGTERM (default: service.shutdown_timeout)",
    )
    status = verb(
        "status",
        cmd_status,
        "Show the running instance's tree, health and whether it trades "
        "(exit 1 when unhealthy or not trading, saying why).",
    )
    status.add_argument("--json", action="store_true", help="print the raw /status JSON")
    check = verb(
        "check",
        cmd_check,
        "Validate the configuration and run the pre-flight checks; non-zero exit on a failure.",
    )
    check.add_argument(
        "--post",
        action="store_true",
        help="run the post-session checks instead: no open orders, journal flushed, "
        "PnL reconciled with the venue's fills",
    )
    kill = verb("kill", cmd_kill, "Trip the kill switch: stop trading and cancel every order.")
    kill.add_argument("--reason", required=True, help="why (journaled with the trip)")
    rearm = verb(
        "rearm",
        cmd_rearm,
        "Reset a tripped kill switch and the autonomy mode (HALT, REDUCE_ONLY); resume trading.",
    )
    rearm.add_argument("--reason", required=True, help="why it is safe (journaled)")
    rearm.add_argument(
        "--force",
        action="store_true",
        help="rearm even while a monitor would trip the switch again now (journaled as forced)",
    )
    flatten = verb("flatten", cmd_flatten, "Flatten every position now, under the deadline.")
    flatten.add_argument("--reason", default="mm flatten", help="why (journaled)")
    verb("dump", cmd_dump, "Write an incident dump to <run_dir>/incidents.")
    report = verb(
        "report", cmd_report, "The daily report (PnL, volume, fees, markouts, triangles)."
    )
    report.add_argument("--date", default=None, help="the UTC day, YYYY-MM-DD (default: today)")
    report.add_argument("--json", action="store_true", help="print JSON instead of tables")
    backup_verb = verb("backup", cmd_backup, "Back up the journal online, with retention.")
    backup_verb.add_argument(
        "--keep",
        type=_at_least_one,
        default=30,
        help="backups to keep, newest first, at least 1 (default: 30)",
    )
    backup_verb.add_argument(
        "--dir", default=None, help="where to write them (default: <run_dir>/backups)"
    )
    simulate = verb(
        "simulate",
        cmd_simulate,
        "Seeded runs of the service on its embedded venue on virtual time, each checked "
        "against the run invariants.",
    )
    simulate.add_argument("--seeds", default="1-20", help="N, N-M or a list of them (1-20)")
    length = simulate.add_mutually_exclusive_group()
    length.add_argument(
        "--seconds", type=float, default=60.0, help="simulated seconds a run (default: 60)"
    )
    length.add_argument(
        "--hours", type=float, default=None, help="simulated hours a run (instead of --seconds)"
    )
    simulate.add_argument(
        "--jobs",
        type=_at_least_one,
        default=os.cpu_count() or 1,
        help="runs at once, each in a process (default: one a core)",
    )
    simulate.add_argument("--dir", default=None, help="where runs keep their files (a temp dir)")
    simulate.add_argument(
        "--keep", action="store_true", help="keep every run's files (default: a failed run's)"
    )
    simulate.add_argument("--json", default=None, metavar="FILE", help="write the table as JSON")
    sim = verb("sim", cmd_sim, "Run the embedded venue simulator on its own (config [sim]).")
    sim.add_argument(
        "--venue",
        choices=("hyperliquid", "kucoin"),
        default="hyperliquid",
        help="which venue's face to serve (default: hyperliquid; kucoin: spot, with the "
        "development key mm-sim-key / mm-sim-secret / mm-sim-passphrase)",
    )
    sim.add_argument("--port", type=int, default=None, help="port to listen on (default: sim.port)")
    sim.add_argument("--seed", type=int, default=None, help="random seed (default: sim.seed)")
    sim.add_argument(
        "--fund",
        action="append",
        type=_address_argument,
        metavar="0x…",
        help="credit this address sim.faucet_usdc USDC at start (repeatable); nobody else is "
        "funded until POST /sim/fund",
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    # Whatever mm creates (the run directory, the journal and its WAL and SHM files, logs and
    # rotated logs, incident dumps, backups, the run file) is its owner's alone: files 0600,
    # directories 0700, by the process umask, so no part needs to remember it.
    os.umask(PRIVATE_UMASK)
    args = build_parser().parse_args(argv)
    command: Command = args.command
    if argv is None and command is cmd_simulate and os.environ.get("PYTHONHASHSEED") != "0":
        # A campaign's runs replay byte for byte only if strings hash alike in every process
        # (the order a set of them iterates in): the command runs itself again with hashing
        # fixed. (Called with arguments, from a test, it runs in the caller's interpreter.)
        environ = {**os.environ, "PYTHONHASHSEED": "0"}
        os.execve(sys.executable, [sys.executable, "-m", "mm", *sys.argv[1:]], environ)
    code = EXIT_FAILURE
    try:
        try:
            code = command(args, os.environ)
        except ConfigError as error:
            _print_errors(args.config, error)
            code = EXIT_CONFIG
        sys.stdout.flush()
    except BrokenPipeError:
        # The reader went away (`mm check | head -1`): no traceback, and exit 1 (the output
        # was not all delivered), as a tool stopped by SIGPIPE would. Point stdout at
        # /dev/null so the interpreter's own flush at exit stays quiet.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
        code = EXIT_FAILURE
    # The process ends with this answer: what it built stays to the end, so the interpreter's
    # collections at exit would only walk every object to find no garbage (0.3 s after a
    # service's run, which `mm stop` and every restart waited for). Frozen objects are still
    # freed, and their finalizers run, as the interpreter tears the modules down.
    gc.freeze()
    return code
