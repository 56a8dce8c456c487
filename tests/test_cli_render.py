"""What the operator reads: the kill, rearm and status texts the CLI renders from admin answers."""

from __future__ import annotations

import re
from decimal import Decimal
from typing import Any

import attrs
from hypothesis import given
from hypothesis import strategies as st
from prometheus_client import CollectorRegistry

from mm.cli import (
    EXIT_FAILURE,
    EXIT_OK,
    _profit,
    _triangle_line,
    render_kill,
    render_rearm,
    render_status,
)
from mm.execution.dispatch import Dispatcher
from mm.execution.permissions import PermissionBoard
from mm.portfolio import Portfolio
from mm.strategies.base import StrategyContext
from mm.strategies.triarb.config import TriarbConfig
from mm.strategies.triarb.desk import TriangleDesk
from mm.strategies.triarb.reports import LegRun, Outcome, log_line
from mm.strategies.triarb.reports import _profit as reports_profit
from mm.strategies.triarb.signals import Signal
from tests.strategies.triarb.test_reports import (
    BOOKS,
    BUY_FLUX,
    INSTRUMENTS,
    L0,
    L1,
    L2,
    SELL_FLUX,
    T_MS,
    TRIANGLE,
    UNWIND_FLUX,
    evaluation,
    fill,
    report,
    times,
)

SINCE = 1_800_000_000.0
ZERO = {
    "zero": True,
    "canceled": 6,
    "remaining": [],
    "seconds_to_zero": 0.21,
    "attempts": 1,
    "reads": 3,
    "seconds": 0.5,
}
REFUSED_BACKSTOP = {
    "armed": False,
    "detail": "not armed: the venue refused or did not answer: "
    "VenueRejected: Too many scheduled cancel triggers today.",
    "at": None,
}


def kill_answer(**changes: Any) -> dict[str, Any]:
    answer = {
        "tripped": True,
        "already_tripped": False,
        "reason": "manual",
        "tripped_for": "manual",
        "since": SINCE,
        "journal_committed": True,
        "cancel_sent": True,
        "cancel_all": ZERO,
        "backstop": {"armed": True, "detail": "armed 6s ahead", "at": SINCE + 6},
        "positions": {"BTC": 0.0, "ETH": -0.05},
    }
    return answer | changes


def test_a_kill_says_committed_canceled_backstop_and_positions() -> None:
    text, code = render_kill(200, kill_answer())
    assert code == EXIT_OK
    assert "journal: checkpoint committed" in text
    assert (
        "venue: cancel sent; 6 orders canceled, none open after 0.210s (1 cancel request)" in text
    )
    assert "backstop: dead-man's switch armed 6s ahead" in text
    assert "positions (re-read from the venue): BTC 0, ETH -0.05" in text


def test_a_kill_not_confirmed_exits_1_and_says_what_is_missing() -> None:
    left = ZERO | {
        "zero": False,
        "remaining": [{"coin": "BTC", "oid": 7}],
        "seconds_to_zero": None,
        "seconds": 10.0,
    }
    text, code = render_kill(200, kill_answer(journal_committed=False, cancel_all=left))
    assert code == EXIT_FAILURE
    assert "journal: checkpoint NOT confirmed committed" in text
    assert "STILL OPEN after 10.0s: BTC 7" in text
    text, code = render_kill(200, kill_answer(backstop=REFUSED_BACKSTOP))
    assert code == EXIT_OK  # the cancel does not depend on the backstop
    assert "backstop: NONE (not armed" in text
    assert "Too many scheduled cancel triggers today." in text


def test_a_second_kill_says_since_when_and_for_what() -> None:
    answer = kill_answer(
        already_tripped=True, tripped_for="max_drawdown", cancel_all=None, backstop=None
    )
    text, code = render_kill(200, answer)
    assert code == EXIT_OK
    assert text.startswith("kill switch already tripped since ")
    assert "for max_drawdown; this request is journaled" in text


def test_a_refused_rearm_names_the_monitor_and_its_values() -> None:
    answer = {
        "who": "alice",
        "why": "looks fine",
        "was_tripped": True,
        "rearmed": False,
        "refused": True,
        "forced": False,
        "blockers": [
            {
                "monitor": "drawdown",
                "reason": "drawdown 3.10% > 2.00%",
                "values": {"drawdown": 0.031, "limit": 0.02},
            }
        ],
        "mode": "halt",
    }
    text, code = render_rearm(409, answer)
    assert code == EXIT_FAILURE
    assert "drawdown (drawdown 3.10% > 2.00%): drawdown=0.031, limit=0.02" in text
    assert "mode unchanged (HALT)" in text
    forced = answer | {"rearmed": True, "refused": False, "forced": True, "mode": "normal"}
    text, code = render_rearm(200, forced)
    assert code == EXIT_OK
    assert "kill switch rearmed by alice (FORCED over: drawdown" in text
    assert text.endswith("mode: NORMAL")


def test_status_shows_a_trip_without_backstop() -> None:
    status = {
        "version": "0",
        "service": "mm",
        "pid": 1,
        "state": "running",
        "admin_url": "http://127.0.0.1:9400",
        "uptime_seconds": 10.0,
        "config_hash": "x",
        "healthy": True,
        "problems": [],
        "tree": {"name": "mm", "state": "running", "children": []},
        "killswitch": {
            "tripped": True,
            "reason": "manual",
            "values": {"reason": "drill"},
            "since": SINCE,
            "trips": 1,
            "last_cancel": ZERO,
            "backstop": REFUSED_BACKSTOP,
        },
    }
    text = render_status(status)
    assert "kill switch: TRIPPED: manual" in text
    assert "trips 1" in text
    assert "venue: 6 orders canceled, none open after 0.210s" in text
    assert "backstop: NONE (not armed: the venue refused" in text


def test_a_kill_that_left_orders_says_it_keeps_canceling() -> None:
    left = ZERO | {"zero": False, "remaining": [{"coin": "BTC", "oid": 7}], "seconds": 10.0}
    unavailable = {
        "armed": False,
        "detail": "not armed: the dead-man's switch is unavailable: the venue arms it only for "
        "an account that has traded $1,000,000 (traded $251.03)",
        "at": None,
    }
    text, code = render_kill(
        200, kill_answer(cancel_all=left, backstop=unavailable, cancel_retrying=True)
    )
    assert code == EXIT_FAILURE  # not at zero yet: not confirmed
    assert "STILL OPEN after 10.0s: BTC 7" in text
    assert "still canceling: the cancel-all runs again until the venue shows none" in text
    assert "backstop: NONE (not armed: the dead-man's switch is unavailable" in text


def test_status_says_whether_the_dead_mans_switch_is_available() -> None:
    status: dict[str, Any] = {
        "version": "0",
        "service": "mm",
        "pid": 1,
        "state": "running",
        "admin_url": "http://127.0.0.1:9400",
        "uptime_seconds": 10.0,
        "config_hash": "x",
        "healthy": True,
        "problems": [],
        "tree": {"name": "mm", "state": "running", "children": []},
        "deadman": {
            "state": "unavailable",
            "available": False,
            "detail": "the venue arms it only for an account that has traded $1,000,000 "
            "(traded $251.03)",
        },
    }
    text = render_status(status)
    assert (
        "dead-man's switch: UNAVAILABLE: the venue arms it only for an account that has "
        "traded $1,000,000 (traded $251.03); the kill switch retries its cancel-all" in text
    )
    status["deadman"] = {"state": "armed", "available": True, "detail": "armed 30s ahead"}
    assert "dead-man's switch: armed (armed 30s ahead)" in render_status(status)
    status["killswitch"] = {
        "tripped": True,
        "reason": "manual",
        "since": SINCE,
        "trips": 1,
        "last_cancel": ZERO,
        "cancel_rounds": 3,
        "cancel_retrying": True,
    }
    text = render_status(status)
    assert (
        "venue: 6 orders canceled, none open after 0.210s (1 cancel request) (cancel-all 3)" in text
    )
    assert "still canceling: the cancel-all runs again until none is left" in text


# --- triangular arbitrage ----------------------------------------------------------------------


def triangle_desk_status() -> dict[str, Any]:
    """/status's trading.triangles as a real desk reports it: two signals offered (one queued,
    one dropped: the queue holds one), three triangles ended (the reference's FILLED one, one
    failed at its first leg, one unwound), and the strategy's counters beside them."""
    rows: list[dict[str, Any]] = []
    context = StrategyContext(
        permissions=PermissionBoard(),
        portfolio=Portfolio((), lambda symbol: INSTRUMENTS[symbol]),
        instruments=lambda symbol: INSTRUMENTS[symbol],
        live_orders=lambda symbol: 0,
        registry=CollectorRegistry(),
    )
    desk = TriangleDesk(
        TriarbConfig(signal_queue=1, slots=2),
        TRIANGLE.symbols,
        context,
        lambda: None,
        Dispatcher(),
        rows.append,
        wall_ms=lambda: T_MS,
    )
    signal = Signal(1, TRIANGLE, BOOKS, (T_MS,) * 3, (T_MS,) * 3, T_MS, evaluation())
    assert desk.offer(signal)
    assert not desk.offer(attrs.evolve(signal, corr=2))
    failed = report(Outcome.FAILED, (LegRun(BUY_FLUX, times(0.2, None, None)),), detail="400100")
    back = LegRun(
        UNWIND_FLUX, times(162.0, 190.0, 230.0), (fill(UNWIND_FLUX, 0.0771, 64.53, 0.0, "USDT"),)
    )
    unwound = report(
        Outcome.UNWOUND,
        (L0, LegRun(SELL_FLUX, times(83.4, 120.0, None))),
        unwind=(back,),
        detail="fill timeout",
    )
    for made in (report(Outcome.FILLED, (L0, L1, L2)), failed, unwound):
        desk._on_report(made)  # what a slot's report becomes
    assert len(rows) == 3  # journaled
    strategy = {
        "triangles": 2,
        "evaluations": 1200,
        "below_min_profit": 1100,
        "prefiltered": 90,
        "refusals": {"book too old": 7},
        "signals": 2,
        "withheld": {},
    }
    return desk.status() | {"strategy": strategy}


def test_status_shows_the_triangle_desk() -> None:
    triangles = triangle_desk_status()
    status: dict[str, Any] = {
        "version": "0",
        "service": "mm-triarb",
        "pid": 1,
        "state": "running",
        "admin_url": "http://127.0.0.1:9401",
        "uptime_seconds": 10.0,
        "config_hash": "x",
        "healthy": True,
        "problems": [],
        "tree": {"name": "mm", "state": "running", "children": []},
        "trading": {
            "in_sync": True,
            "symbols": {
                symbol: {"allowed": "all", "gate": "evaluating", "orders": 0}
                for symbol in TRIANGLE.symbols
            },
            "triangles": triangles,
        },
    }
    text = render_status(status)
    start = text.index("\ntriangles (paper)")
    section = text[start + 1 :].splitlines()
    assert section[:6] == [
        "triangles (paper): 0 of 2 slots busy",
        "  signals: 1 queued, 1 dropped; first leg sent at once 0",
        "  outcomes: FILLED 1, FAILED 1, UNWOUND 1",
        "  refused: none; conflicts: none",
        # -0.0748886 (FILLED) + 0 (FAILED at leg 1) + (4.975263 - 4.994622) (UNWOUND), as the
        # triangles' lines print a profit
        "  profit: -0.0942 USDT",
        "  strategy: 2 triangles; 1200 evaluations; 1100 below min profit; 90 prefiltered;"
        " 2 signals; refusals: book too old 7",
    ]
    # The latest triangles, newest first, each in brief (its log line has every field).
    assert section[6:] == [
        "  recent (newest first; every field in --json and the log):",
        "    17:55:53.719 UNWOUND USDT > FLUX > USDC (corr tri-42): predicted 34.45 bps,"
        " effective -38.76 bps, profit -0.0194 USDT; last fill 230.0 ms; error fill timeout",
        "    17:55:53.719 FAILED USDT > FLUX > USDC (corr tri-42): predicted 34.45 bps,"
        " effective -, profit 0.0000 USDT; error 400100",
        "    17:55:53.719 FILLED USDT > FLUX > USDC (corr tri-42): predicted 34.45 bps,"
        " effective -149.94 bps, profit -0.0749 USDT; last fill 240.5 ms",
    ]
    # Busy slots name their triangles; only the latest few lines are shown.
    triangles |= {
        "busy": {"0": "USDT > FLUX > USDC"},
        "recent": triangles["recent"] * 3,
        "mode": "live",
        "refused": {"inventory": 2},
    }
    text = render_status(status)
    assert "triangles (live): 1 of 2 slots busy: slot 0 USDT > FLUX > USDC" in text
    assert "  refused: inventory 2; conflicts: none" in text
    assert "  recent (newest first, 4 more; every field in --json and the log):" in text
    assert sum(line.startswith("    17:55:53.719 ") for line in text.splitlines()) == 5


def test_status_without_triangles_has_no_triangle_section() -> None:
    status: dict[str, Any] = {
        "version": "0",
        "service": "mm",
        "pid": 1,
        "state": "running",
        "admin_url": "http://127.0.0.1:9400",
        "uptime_seconds": 10.0,
        "config_hash": "x",
        "healthy": True,
        "problems": [],
        "tree": {"name": "mm", "state": "running", "children": []},
        "trading": {"in_sync": True, "symbols": {"BTC": {"gate": "quoting"}}},
    }
    assert "triangles" not in render_status(status)


def test_a_recent_line_not_in_the_logs_format_is_shown_as_it_is() -> None:
    odd = "2026-05-26T17:55:53.719Z FILLED | corr=1 | something else"
    assert _triangle_line(odd) == odd
    assert _triangle_line("") == ""
    held = log_line(report(Outcome.ABORTED, (L0,), detail="kill switch"))
    assert _triangle_line(held).endswith(
        "; last fill 83.1 ms; reason kill switch; held [64.53 FLUX]"
    )


@given(st.decimals(allow_nan=False, allow_infinity=False, min_value=-(10**6), max_value=10**6))
def test_a_profit_is_shown_as_the_triangles_line_prints_it(profit: Decimal) -> None:
    assert _profit(str(profit)) == reports_profit(profit)


def status_of(trading: dict[str, Any]) -> dict[str, Any]:
    return {
        "version": "0",
        "service": "mm",
        "pid": 1,
        "state": "running",
        "admin_url": "http://127.0.0.1:9400",
        "uptime_seconds": 10.0,
        "config_hash": "x",
        "healthy": True,
        "problems": [],
        "tree": {"name": "mm", "state": "running", "children": []},
        "trading": trading,
    }


def table(text: str) -> list[list[str]]:
    """The per-symbol table's lines, split on the column gaps (two spaces or more)."""
    lines = text[text.index("trading: in sync") :].splitlines()[1:]
    rows = []
    for line in lines:
        if not line:
            break
        rows.append([cell for cell in re.split(r"  +", line) if cell])
    return rows


# What Trading.status gives every symbol whatever the strategy: its position and markouts.
TRADED: dict[str, Any] = {
    "orders": 0,
    "position": {"position": 0.26663, "total": 0.0, "fees": 0.00001, "fills_buy": 8},
    "markouts": {"1s": {"mean_bps": 7.3}},
}


def test_triangular_arbitrage_shows_balances_per_currency_and_pairs_without_positions() -> None:
    trading: dict[str, Any] = {
        "in_sync": True,
        "symbols": {
            "BTC-USDT": {
                "allowed": "all",
                "gate": "evaluating",
                "book": {"bid": 60016.5, "ask": 60040.6, "time_ms": 1, "age_ms": 84},
                "fills": {"buy": 8, "sell": 0},
            }
            | TRADED,
            "ETH-BTC": {
                "allowed": "all",
                "gate": "evaluating",
                "book": {"bid": 0.04978, "ask": 0.04981, "time_ms": 1, "age_ms": 12_345},
                "fills": {"buy": 8, "sell": 1},
            }
            | TRADED,
            "SOL-USDT": {"allowed": "all", "gate": "no book yet", "book": None}
            | TRADED
            | {"fills": {"buy": 0, "sell": 0}},
        },
        "balances": {
            "in": "USDT",
            "currencies": {
                "BTC": {
                    "balance": 1.0000103601808348,
                    "start": 1.0,
                    "change": 1.0360180834778632e-05,
                    "value": 59981.57141348864,
                },
                "ETH": {"balance": 10.0, "start": 10.0, "change": 1e-17, "value": 30049.65},
                "USDT": {
                    "balance": 99999.94378738,
                    "start": 100000.0,
                    "change": -0.05621262,
                    "value": 99999.94378738,
                },
                "SOL": {"balance": 3.0, "start": 3.0, "change": 0.0, "value": None},
            },
            "value": 190031.16519,
            "change_value": 0.56524,
            "unvalued": ["SOL"],
        },
    }
    text = render_status(status_of(trading))
    balances = text[text.index("balances (") :].splitlines()
    assert balances[:7] == [
        "balances (change: since the venue's balances were last read, at start or by a kill):",
        "CURRENCY          BALANCE       CHANGE  VALUE USDT",
        "BTC            1.00001036  +0.00001036   59,981.57",
        "ETH                    10            0   30,049.65",
        "USDT      99,999.94378738  -0.05621262   99,999.94",
        "SOL                     3            0           -",
        "total 190,031.17 USDT; change +0.57 USDT at current prices (not valued, no price: SOL)",
    ]
    assert table(text) == [
        ["SYMBOL", "ALLOWED", "GATE", "BEST BID", "BEST ASK", "BOOK AGE", "ORDERS", "FILLS B/S"],
        ["BTC-USDT", "all", "evaluating", "60,016.5", "60,040.6", "84 ms", "0", "8/0"],
        ["ETH-BTC", "all", "evaluating", "0.04978", "0.04981", "12 s", "0", "8/1"],
        ["SOL-USDT", "all", "no book yet", "-", "-", "-", "0", "0/0"],
    ]
    # Values in a primary worth more than a dollar get the digits they need.
    trading["balances"] |= {"in": "BTC", "value": 0.0123456, "change_value": -0.0000123}
    trading["balances"]["currencies"] = {
        "BTC": {"balance": 0.0123456, "start": 0.0123579, "change": -0.0000123, "value": 0.0123456}
    }
    assert "total 0.012346 BTC; change -0.000012 BTC at current prices" in render_status(
        status_of(trading)
    )


def test_the_market_makers_table_is_as_it_was() -> None:
    trading = {
        "in_sync": True,
        "symbols": {
            "BTC": {"allowed": "all", "gate": "quoting", "bid": 94990.5, "ask": None, "signals": {}}
            | TRADED,
        },
    }
    assert table(render_status(status_of(trading))) == [
        [
            "SYMBOL",
            "ALLOWED",
            "GATE",
            "BID",
            "ASK",
            "ORDERS",
            "POSITION",
            "PNL",
            "FEES",
            "MARKOUT 1s/5s/30s",
        ],
        ["BTC", "all", "quoting", "94,990.50", "-", "0", "0.26663", "0.00", "0.00", "7.3/-/- bps"],
    ]
