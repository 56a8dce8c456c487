"""The run invariants, each shown to hold on a run's records that keep it and to fail, by
name, on records that break it (a fill dropped or doubled, a balance off, a triangle without
its report or with an outcome not of the four, a move no fill explains, an order sent while
the kill switch was tripped)."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from mm.simulation.invariants import (
    BALANCES_AGREE,
    FILLS_ONCE,
    FLAT_AFTER_FLATTEN,
    NEVER_CRASHES,
    ORDERS_KNOWN,
    QUIET_AFTER_KILL,
    STALE_FILLS,
    STALE_PULLED,
    TRIANGLE_MOVES,
    TRIANGLES_END,
    TRIPS_HAVE_CAUSE,
    Cause,
    Violation,
    balances_agree,
    fills_once,
    flat_after_flatten,
    never_crashed,
    orders_known,
    pulled_when_stale,
    quiet_after_kill,
    reported_moves,
    stale_fills,
    triangle_moves,
    triangles_end,
    trips_have_cause,
)

SYMBOLS = {"BTC-USDT": ("BTC", "USDT"), "ETH-BTC": ("ETH", "BTC"), "ETH-USDT": ("ETH", "USDT")}


def fill(px: float, sz: float, fee: float, token: str) -> dict[str, Any]:
    return {"px": px, "sz": sz, "fee": fee, "fee_token": token}


def row(corr: str = "1", outcome: str = "FILLED") -> dict[str, Any]:
    """A triangle's journal row, USDT > BTC > ETH > USDT, its fills as mm reports them."""
    return {
        "corr": corr,
        "outcome": outcome,
        "legs": [
            {"symbol": "BTC-USDT", "side": "buy", "fills": [fill(50000.0, 0.002, 0.1, "USDT")]},
            {"symbol": "ETH-BTC", "side": "buy", "fills": [fill(0.05, 0.04, 0.000002, "BTC")]},
            {"symbol": "ETH-USDT", "side": "sell", "fills": [fill(2600.0, 0.04, 0.104, "USDT")]},
        ],
    }


# --- fills ---------------------------------------------------------------------------------


def test_every_venue_fill_journaled_once_holds() -> None:
    assert fills_once(["3", "1", "2"], ["1", "2", "3"]) == []


def test_a_fill_lost_doubled_or_invented_is_each_named() -> None:
    found = fills_once(["1", "2", "2", "9"], ["1", "2", "3"])
    assert [v.invariant for v in found] == [FILLS_ONCE] * 3
    assert [v.detail for v in found] == [
        "1 never journaled: 3",
        "1 journaled more than once: 2",
        "1 not the venue's: 9",
    ]


def test_a_listener_that_drops_every_hundredth_fill_is_caught() -> None:
    venue = [str(n) for n in range(1, 1001)]
    journaled = [tid for n, tid in enumerate(venue, 1) if n % 100]
    (violation,) = fills_once(journaled, venue)
    assert violation.detail.startswith("10 never journaled: 100, 1000, 200, 300, 400")


def test_a_fill_journaled_that_never_reached_the_portfolio_is_named() -> None:
    assert fills_once(["1", "2"], ["1", "2"], heard=["2", "1"]) == []
    (violation,) = fills_once(["1", "2"], ["1", "2"], heard=["1"])
    assert violation == Violation(FILLS_ONCE, "1 never reached the portfolio: 2")
    assert fills_once(["1", "2"], ["1", "2"], heard=None) == []  # (a portfolio that forgot some)


@given(
    venue=st.sets(st.integers(1, 50), max_size=30),
    dropped=st.sets(st.integers(1, 50)),
    doubled=st.sets(st.integers(1, 50)),
)
def test_fills_hold_exactly_when_the_journal_is_the_venues_each_once(
    venue: set[int], dropped: set[int], doubled: set[int]
) -> None:
    journaled = [str(t) for t in venue - dropped] + [str(t) for t in (venue - dropped) & doubled]
    holds = not (venue & dropped) and not ((venue - dropped) & doubled)
    assert (fills_once(journaled, map(str, venue)) == []) is holds


# --- balances ------------------------------------------------------------------------------


def test_balances_equal_to_a_floats_precision_hold_and_one_off_is_named() -> None:
    venue = {"BTC": Decimal("1.00166255"), "USDT": Decimal("99900.0999833")}
    assert balances_agree({"BTC": 1.00166255, "USDT": 99900.0999833}, venue) == []
    (violation,) = balances_agree({"BTC": 1.0, "USDT": 99900.0999833, "ETH": 0.0}, venue)
    assert violation.invariant == BALANCES_AGREE
    assert violation.detail == "1 differ: BTC 1.0 against 1.00166255"


# --- triangles -----------------------------------------------------------------------------


def test_each_started_triangle_reported_in_one_of_four_outcomes_holds() -> None:
    rows = [row("1", "FILLED"), row("2", "UNWOUND"), row("3", "ABORTED"), row("4", "FAILED")]
    assert triangles_end(rows, started=4) == []


def test_a_triangle_without_a_report_or_with_another_outcome_is_named() -> None:
    found = triangles_end([row("1", "FILLED"), row("2", "PENDING")], started=3)
    assert [v.invariant for v in found] == [TRIANGLES_END, TRIANGLES_END]
    assert [v.detail for v in found] == [
        "outcomes not of the four: 2 PENDING",
        "3 triangles started, 2 reported",
    ]


def test_the_venues_moves_equal_to_the_reported_fills_and_fees_hold() -> None:
    before = {"BTC": Decimal(1), "ETH": Decimal(10), "USDT": Decimal(100000)}
    reported = reported_moves([row()], SYMBOLS)
    assert reported == {
        "BTC": Decimal("0.002") - Decimal("0.0020") - Decimal("0.000002"),
        "ETH": Decimal("0.04") - Decimal("0.04"),
        "USDT": Decimal("-100.000") - Decimal("0.1") + Decimal("104.000") - Decimal("0.104"),
    }
    after = {c: before[c] + reported[c] for c in before}
    assert triangle_moves(reported, before, after) == []


def test_a_move_no_fill_explains_is_named() -> None:
    before = {"BTC": Decimal(1), "ETH": Decimal(10), "USDT": Decimal(100000)}
    reported = reported_moves([row()], SYMBOLS)
    after = {c: before[c] + reported[c] for c in before}
    after["BTC"] += Decimal("0.00166255")  # a leg's fill that no report carries
    (violation,) = triangle_moves(reported, before, after)
    assert violation.invariant == TRIANGLE_MOVES
    assert violation.detail.startswith("1 currencies differ: BTC moved 0.00166055 against")


# --- the kill switch -----------------------------------------------------------------------


def test_orders_outside_the_tripped_spans_hold_and_one_inside_is_named() -> None:
    orders = [("a", 1000), ("b", 2000), ("c", 4000), ("d", 6000)]
    assert quiet_after_kill(orders, [(2500, 3500), (5000, 5500)]) == []
    (violation,) = quiet_after_kill(orders, [(1500, 2500), (3000, None)])
    assert violation.invariant == QUIET_AFTER_KILL
    assert violation.detail == "3 orders while tripped: b at 2000, c at 4000, d at 6000"
    assert quiet_after_kill(orders, [(2000, 2000)]) == []  # (rearmed the same instant)


# --- orders --------------------------------------------------------------------------------


def test_open_orders_mm_tracks_hold_and_one_it_does_not_is_named() -> None:
    tracked = {"mm-1", "mm-2", "mm-3"}
    assert orders_known(["mm-1", "mm-3"], tracked.__contains__) == []
    (violation,) = orders_known(["mm-1", "mm-9", None], tracked.__contains__)
    assert violation.invariant == ORDERS_KNOWN
    assert violation.detail == "2 open at the venue, unknown: (no client id), mm-9"


# --- stale data ----------------------------------------------------------------------------


def test_no_quote_resting_while_stale_holds_and_one_resting_is_named() -> None:
    assert pulled_when_stale([(1000, []), (9000, [])]) == []
    (violation,) = pulled_when_stale([(1000, []), (9000, ["7", "8"])])
    assert violation.invariant == STALE_PULLED
    assert violation.detail == "quotes resting in 1 samples: 2 at 9000 (7, 8)"


# --- crashes -------------------------------------------------------------------------------


def test_a_tree_without_errors_holds_and_a_child_that_crashed_is_named() -> None:
    tree: dict[str, Any] = {
        "name": "mm",
        "restarts": None,
        "last_error": None,
        "children": [
            {"name": "feeds", "path": "mm/feeds", "restarts": 0, "last_error": None},
            {"name": "execution", "path": "mm/execution", "restarts": 0, "last_error": None},
        ],
    }
    assert never_crashed(tree) == []
    tree["children"][1] |= {"restarts": 1, "last_error": "ExceptionGroup: ... RateLimited"}
    (violation,) = never_crashed(tree)
    assert violation.invariant == NEVER_CRASHES
    assert violation.detail == "1 children crashed: mm/execution: ExceptionGroup: ... RateLimited"


# --- trips and their causes --------------------------------------------------------------


STALL = Cause(100.0, 160.0, frozenset({"stale_data", "feed_gap_majority"}), "a stall")
KILL = Cause(50.0, 55.0, frozenset({"manual"}), "the operator's kill")


def test_a_trip_within_its_causes_span_and_reasons_holds() -> None:
    assert trips_have_cause([(52.0, "manual"), (130.0, "feed_gap_majority")], [STALL, KILL]) == []
    assert trips_have_cause([], []) == []


def test_a_trip_outside_every_span_or_of_another_reason_is_named() -> None:
    found = trips_have_cause(
        [(99.0, "stale_data"), (120.0, "max_drawdown"), (130.0, "stale_data")], [STALL, KILL]
    )
    assert found == [
        Violation(
            TRIPS_HAVE_CAUSE,
            "2 with nothing in the venue's data to explain it: "
            "max_drawdown at 120.000, stale_data at 99.000",
        )
    ]


# --- stale fills -------------------------------------------------------------------------


def test_a_quote_filled_within_a_stale_span_is_named_a_taker_or_outside_one_is_not() -> None:
    spans = [(1_000, 2_000)]
    fills = [(999, "a", False), (1_500, "b", True), (2_001, "c", False)]
    assert stale_fills(fills, spans) == []
    (violation,) = stale_fills([*fills, (1_000, "d", False), (2_000, "e", False)], spans)
    assert violation == Violation(
        STALE_FILLS, "2 quotes filled on stale data: d at 1000, e at 2000"
    )


def test_a_position_held_after_a_flatten_is_named_unless_a_kill_halt_or_rearm_came_between() -> (
    None
):
    flat = (1_000, 122_000, {"BTC": 0.0, "ETH": 0.0})
    assert flat_after_flatten([flat], []) == []
    held = (1_000, 122_000, {"BTC": 0.0, "ETH": -0.0286})
    (violation,) = flat_after_flatten([flat, held], [])
    assert violation == Violation(
        FLAT_AFTER_FLATTEN, "1 positions held: ETH -0.0286 at 122000 (flatten asked at 1000)"
    )
    # a kill switch trip, HALT or the operator's rearm between the flatten and the sample
    assert flat_after_flatten([held], [60_000]) == []
    # ... but not one before the flatten, nor after the sample
    assert len(flat_after_flatten([held], [999, 122_001])) == 1
