"""A triangle's report: the reference's log line reproduced from the values it shows, each
outcome, effective against predicted bps by hand, profit as leg 3's output less leg 1's input,
and the journal row through JSON."""

from __future__ import annotations

import json
from decimal import Decimal

import attrs
import pytest
from hypothesis import given
from hypothesis import strategies as st

from mm.model import Fill, Instrument, OrderId, Side, TradeId
from mm.strategies.triarb.legs import Leg, Triangle
from mm.strategies.triarb.reports import (
    LegRun,
    LegTimes,
    Outcome,
    TriangleReport,
    journal_row,
    log_line,
)
from mm.strategies.triarb.triangles import BookView, Evaluation, Terms, evaluate

# The reference's triangle: USDT -> FLUX -> USDC -> USDT.
FLUX_USDT = Instrument(
    "kucoin", "FLUX-USDT", "FLUX", "USDT", Decimal("0.0001"), Decimal("0.01"), Decimal("0.1"), 0.1
)
FLUX_USDC = Instrument(
    "kucoin", "FLUX-USDC", "FLUX", "USDC", Decimal("0.00001"), Decimal("0.01"), Decimal("0.1"), 0.1
)
USDC_USDT = Instrument(
    "kucoin", "USDC-USDT", "USDC", "USDT", Decimal("0.0001"), Decimal("0.0001"), Decimal("0.1"), 0.1
)
INSTRUMENTS = {i.symbol: i for i in (FLUX_USDT, FLUX_USDC, USDC_USDT)}
BUY_FLUX = Leg("FLUX-USDT", Side.BUY, "USDT", "FLUX")
SELL_FLUX = Leg("FLUX-USDC", Side.SELL, "FLUX", "USDC")
SELL_USDC = Leg("USDC-USDT", Side.SELL, "USDC", "USDT")
TRIANGLE = Triangle("USDT", (BUY_FLUX, SELL_FLUX, SELL_USDC))
UNWIND_FLUX = Leg("FLUX-USDT", Side.SELL, "FLUX", "USDT")

T_MS = 1_779_818_153_719  # 2026-05-26T17:55:53.719Z, the reference's line's time
# The books as the reference's line shows them (ask/bid), a few ms before it.
BOOKS = (
    BookView(((0.0772, 1000.0, 1),), ((0.0774, 1000.0, 1),), T_MS - 29),
    BookView(((0.07783, 1000.0, 1),), ((0.07796, 1000.0, 1),), T_MS - 17),
    BookView(((0.999, 10000.0, 1),), ((0.9991, 10000.0, 1),), T_MS - 24),
)
SIGNAL_NS = 5_000_000_000
MS = 1_000_000


def evaluation(predicted_bps: float = 34.45) -> Evaluation:
    """The triangle evaluated on the reference's books: 5 USDT at a 0.1 % taker fee buys the
    64.53 FLUX of its first fill. The predicted bps is the reference's (its books moved on)."""
    terms = Terms(Decimal(5), 1000, dict.fromkeys(INSTRUMENTS, Decimal("0.001")))
    result = evaluate(
        TRIANGLE, dict(zip(TRIANGLE.symbols, BOOKS, strict=True)), INSTRUMENTS, terms, T_MS
    )
    assert isinstance(result, Evaluation), result
    assert result.legs[0].size == Decimal("64.53")
    return attrs.evolve(result, profit_bps=predicted_bps)


def fill(leg: Leg, px: float, sz: float, fee: float, fee_token: str, n: int = 0) -> Fill:
    return Fill(
        coin=leg.symbol,
        side=leg.side,
        px=px,
        sz=sz,
        time_ms=T_MS - 100 + n,
        oid=OrderId(f"kucoin:{leg.symbol}"),
        tid=TradeId(f"kucoin:{leg.symbol}:{n}"),
        cloid=f"tri-42-{leg.symbol}",
        fee=fee,
        fee_token=fee_token,
        crossed=True,
        start_position=0.0,
        direction="Buy" if leg.side is Side.BUY else "Sell",
        closed_pnl=0.0,
        hash="",
    )


def times(fired_ms: float, acked_ms: float | None, filled_ms: float | None) -> LegTimes:
    def ns(ms: float | None) -> int | None:
        return None if ms is None else SIGNAL_NS + round(ms * MS)

    fired = ns(fired_ms)
    assert fired is not None
    return LegTimes(fired, ns(acked_ms), ns(filled_ms))


# The reference's legs: 64.53 FLUX bought at 0.0774 for 4.994622 USDT (fee 0: paid in KCS),
# sold at 0.07647 for 4.9346091 USDC less 0.0050091, and those 4.9296 USDC sold at 0.999 for
# 4.9246704 USDT less 0.004937: 4.9197334 USDT back.
L0 = LegRun(BUY_FLUX, times(0.2, 41.3, 83.1), (fill(BUY_FLUX, 0.0774, 64.53, 0.0, "USDT"),))
L1 = LegRun(
    SELL_FLUX, times(83.4, 120.0, 161.7), (fill(SELL_FLUX, 0.07647, 64.53, 0.0050091, "USDC"),)
)
L2 = LegRun(
    SELL_USDC, times(162.0, 201.9, 240.5), (fill(SELL_USDC, 0.999, 4.9296, 0.004937, "USDT"),)
)


def report(
    outcome: Outcome,
    legs: tuple[LegRun, ...],
    *,
    unwind: tuple[LegRun, ...] = (),
    detail: str = "",
) -> TriangleReport:
    return TriangleReport(
        corr="tri-42",
        outcome=outcome,
        evaluation=evaluation(),
        books=BOOKS,
        signal_ns=SIGNAL_NS,
        time_ms=T_MS,
        legs=legs,
        unwind=unwind,
        detail=detail,
    )


REFERENCE_HEAD = (
    "2026-05-26T17:55:53.719Z FILLED | corr=tri-42 | triangle=['USDT','FLUX','USDC'] | "
    "predicted_bps=34.45 | effective_bps=-149.94 | "
)
BOOK_TS = "book_ts=[1779818153690,1779818153702,1779818153695]"
BOOKS_FIELD = "books=[0.0774/0.0772 | 0.07796/0.07783 | 0.9991/0.999]"


def test_the_reference_line_is_reproduced_from_the_values_it_shows() -> None:
    line = log_line(report(Outcome.FILLED, (L0, L1, L2)))
    assert line == (
        REFERENCE_HEAD + BOOK_TS + " | profit=-0.0749 | "
        "timings=[L0:fired=0.2ms ack=41.3ms filled=83.1ms, "
        "L1:fired=83.4ms ack=120.0ms filled=161.7ms, "
        "L2:fired=162.0ms ack=201.9ms filled=240.5ms] | "
        "fills=[L0:buy FLUX-USDT USDT->FLUX 64.53@0.0774(fee=0 USDT lat=82.9ms), "
        "L1:sell FLUX-USDC FLUX->USDC 64.53@0.07647(fee=0.0050091 USDC lat=78.3ms), "
        "L2:sell USDC-USDT USDC->USDT 4.9296@0.999(fee=0.004937 USDT lat=78.5ms)] | " + BOOKS_FIELD
    )
    # Every fragment the reference prints, verbatim.
    for shown in (
        "2026-05-26T17:55:53.719Z FILLED | corr=",
        " | triangle=['USDT','FLUX','USDC'] |",
        " | predicted_bps=34.45 | effective_bps=-149.94 | book_ts=",
        " | profit=-0.0749 | timings=[",
        " | fills=[L0:buy FLUX-USDT USDT->FLUX 64.53@0.0774(fee=0 USDT lat=82.9ms), ",
        " | books=[0.0774/0.0772 | 0.07796/0.07783 | 0.9991/0.999]",
    ):
        assert shown in line


def test_effective_against_predicted_bps_by_hand() -> None:
    filled = report(Outcome.FILLED, (L0, L1, L2))
    # Spent on leg 1: 64.53 * 0.0774 = 4.994622 USDT (no USDT fee). Back from leg 3:
    # 4.9296 * 0.999 - 0.004937 = 4.9197334. Profit -0.0748886: -149.93847... bps.
    assert filled.spent == Decimal("4.994622")
    assert filled.returned == Decimal("4.9197334")
    assert filled.profit == Decimal("-0.0748886")
    assert filled.effective_bps == pytest.approx(-149.9384738224434)
    assert filled.predicted_bps == 34.45
    assert filled.held == {}  # leg 3 sold all of leg 2's 4.9296 USDC, leg 2 all 64.53 FLUX


def test_a_small_profit_keeps_three_significant_digits() -> None:
    # Leg 3 brings back 4.9296 * 1.0132 - 0.00004072 = 4.99463 USDT for 4.994622: a profit
    # of 0.000008 shows as 0.00000800, not 0.0000.
    last = LegRun(SELL_USDC, L2.times, (fill(SELL_USDC, 1.0132, 4.9296, 0.00004072, "USDT"),))
    line = log_line(report(Outcome.FILLED, (L0, L1, last)))
    assert "| profit=0.00000800 |" in line
    assert "| effective_bps=0.02 |" in line


def test_failed_at_the_first_leg_lost_nothing() -> None:
    rejected = LegRun(BUY_FLUX, times(0.2, None, None))
    failed = report(Outcome.FAILED, (rejected,), detail="400100 Balance insufficient!")
    assert (failed.profit, failed.effective_bps, failed.held) == (Decimal(0), None, {})
    assert log_line(failed) == (
        "2026-05-26T17:55:53.719Z FAILED | corr=tri-42 | triangle=['USDT','FLUX','USDC'] | "
        "predicted_bps=34.45 | effective_bps=- | " + BOOK_TS + " | profit=0.0000 | "
        "timings=[L0:fired=0.2ms ack=- filled=-] | "
        "fills=[L0:buy FLUX-USDT USDT->FLUX unfilled(lat=-)] | " + BOOKS_FIELD + " | "
        "error=400100 Balance insufficient!"
    )


def test_failed_at_the_second_leg_holds_what_the_first_bought() -> None:
    refused = LegRun(SELL_FLUX, times(83.4, None, None))
    failed = report(Outcome.FAILED, (L0, refused), detail="400600 increment invalid")
    assert failed.profit is None
    assert failed.effective_bps is None
    assert failed.held == {"FLUX": Decimal("64.53")}
    line = log_line(failed)
    assert line.startswith("2026-05-26T17:55:53.719Z FAILED | corr=tri-42 | ")
    assert "| effective_bps=- |" in line
    assert "| profit=- |" in line
    assert line.endswith(
        "fills=[L0:buy FLUX-USDT USDT->FLUX 64.53@0.0774(fee=0 USDT lat=82.9ms), "
        "L1:sell FLUX-USDC FLUX->USDC unfilled(lat=-)] | " + BOOKS_FIELD + " | "
        "error=400600 increment invalid | held=[64.53 FLUX]"
    )


def test_aborted_between_legs_says_why_and_what_is_held() -> None:
    aborted = report(Outcome.ABORTED, (L0, L1), detail="kill switch")
    assert aborted.profit is None
    assert aborted.held == {"USDC": Decimal("4.9296")}  # 64.53 FLUX sold in full
    assert log_line(aborted).endswith(" | reason=kill switch | held=[4.9296 USDC]")
    assert "error=" not in log_line(aborted)


def test_unwound_trades_back_to_the_primary_and_counts_it() -> None:
    failed_leg = LegRun(SELL_FLUX, times(83.4, 120.0, 161.7))
    back = LegRun(
        UNWIND_FLUX,
        times(162.0, 190.0, 230.0),
        (fill(UNWIND_FLUX, 0.0771, 64.53, 0.004975, "USDT"),),
    )
    unwound = report(Outcome.UNWOUND, (L0, failed_leg), unwind=(back,), detail="fill timeout")
    # Back: 64.53 * 0.0771 - 0.004975 = 4.970288 USDT for 4.994622: -0.024334, -48.72... bps.
    assert unwound.returned == Decimal("4.970288")
    assert unwound.profit == Decimal("-0.024334")
    assert unwound.effective_bps == pytest.approx(-48.72040366618335)
    assert unwound.held == {}
    line = log_line(unwound)
    assert line.startswith("2026-05-26T17:55:53.719Z UNWOUND | ")
    assert "| effective_bps=-48.72 |" in line
    assert "| profit=-0.0243 |" in line
    assert "U0:fired=162.0ms ack=190.0ms filled=230.0ms]" in line
    assert "U0:sell FLUX-USDT FLUX->USDT 64.53@0.0771(fee=0.004975 USDT lat=68.0ms)]" in line
    assert line.endswith(" | error=fill timeout")


def test_a_leg_filled_in_parts_shows_its_total_at_the_average_price() -> None:
    parts = (
        fill(BUY_FLUX, 0.0774, 30.0, 0.0, "USDT"),
        fill(BUY_FLUX, 0.0776, 10.0, 0.01, "KCS", 1),
    )
    first = LegRun(BUY_FLUX, times(0.2, 41.3, 83.1), parts)
    aborted = report(Outcome.ABORTED, (first,), detail="stop")
    # (30 * 0.0774 + 10 * 0.0776) / 40 = 0.07745; fees by currency, KCS from neither leg side.
    assert "L0:buy FLUX-USDT USDT->FLUX 40@0.07745(fee=0 USDT+0.01 KCS lat=82.9ms)" in log_line(
        aborted
    )
    assert aborted.held == {"FLUX": Decimal(40)}


@pytest.mark.parametrize(
    ("outcome", "legs", "unwind", "detail"),
    [
        (Outcome.FILLED, (L0, L1), (), ""),  # two legs are not a filled triangle
        (Outcome.FILLED, (L0, L1, attrs.evolve(L2, fills=())), (), ""),  # nor an unfilled one
        (Outcome.FILLED, (L0, L1, L2), (LegRun(UNWIND_FLUX, L2.times),), ""),
        (Outcome.FAILED, (L0,), (), ""),  # without the venue's error
        (Outcome.ABORTED, (L0,), (), ""),  # without a reason
        (Outcome.UNWOUND, (L0,), (), "timeout"),  # without an unwind
        (Outcome.UNWOUND, (L0,), (LegRun(BUY_FLUX, L2.times),), "timeout"),  # not to USDT
        (Outcome.FAILED, (L1,), (), "x"),  # legs out of order
        (Outcome.FAILED, (L0, L1, L2, L2), (), "x"),  # four legs
    ],
)
def test_a_report_that_does_not_hang_together_is_refused(
    outcome: Outcome, legs: tuple[LegRun, ...], unwind: tuple[LegRun, ...], detail: str
) -> None:
    with pytest.raises(ValueError, match="tri-42"):
        report(outcome, legs, unwind=unwind, detail=detail)


def test_timings_before_the_signal_are_refused() -> None:
    early = attrs.evolve(L0, times=LegTimes(SIGNAL_NS - 1))
    with pytest.raises(ValueError, match="before its signal"):
        report(Outcome.ABORTED, (early,), detail="stop")


def test_a_fill_of_another_leg_is_refused() -> None:
    with pytest.raises(ValueError, match="another leg"):
        LegRun(BUY_FLUX, L0.times, (fill(SELL_FLUX, 0.0774, 1.0, 0.0, "USDT"),))


# --- properties --------------------------------------------------------------------------------

prices = st.decimals(Decimal("0.0001"), Decimal(1000), places=4)
sizes = st.decimals(Decimal("0.01"), Decimal(100_000), places=2)
fee_rates = st.sampled_from((Decimal(0), Decimal("0.001"), Decimal("0.002")))


@st.composite
def leg_fills(draw: st.DrawFn, leg: Leg, fee_token: str) -> tuple[Fill, ...]:
    count = draw(st.integers(1, 3))
    fills = []
    for n in range(count):
        px, sz, rate = draw(prices), draw(sizes), draw(fee_rates)
        fee = (px * sz * rate).quantize(Decimal("0.00000001"))
        fills.append(fill(leg, float(px), float(sz), float(fee), fee_token, n))
    return tuple(fills)


@given(
    leg_fills(BUY_FLUX, "USDT"),
    leg_fills(SELL_FLUX, "USDC"),
    leg_fills(SELL_USDC, "USDT"),
)
def test_profit_is_what_leg_3_yielded_less_what_leg_1_took(
    first: tuple[Fill, ...], second: tuple[Fill, ...], third: tuple[Fill, ...]
) -> None:
    def d(value: float) -> Decimal:
        return Decimal(repr(value))

    # Leg 1 buys: it took the quote paid plus its USDT fees; leg 3 sells: it yielded the quote
    # received less its USDT fees.
    took = sum((d(f.px) * d(f.sz) + d(f.fee) for f in first), Decimal(0))
    yielded = sum((d(f.px) * d(f.sz) - d(f.fee) for f in third), Decimal(0))
    legs = tuple(
        LegRun(leg, times(n, n + 0.5, n + 1), fills)
        for n, (leg, fills) in enumerate(zip(TRIANGLE.legs, (first, second, third), strict=True))
    )
    filled = report(Outcome.FILLED, legs)
    assert filled.profit == yielded - took
    assert filled.effective_bps == pytest.approx(float((yielded - took) / took * 10_000))


# --- the journal's row -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "made",
    [
        report(Outcome.FILLED, (L0, L1, L2)),
        report(Outcome.FAILED, (LegRun(BUY_FLUX, times(0.2, None, None)),), detail="400100"),
        report(Outcome.ABORTED, (L0, L1), detail="kill switch"),
        report(
            Outcome.UNWOUND,
            (L0, LegRun(SELL_FLUX, times(83.4, 120.0, None))),
            unwind=(
                LegRun(UNWIND_FLUX, L2.times, (fill(UNWIND_FLUX, 0.0771, 64.53, 0.0, "USDT"),)),
            ),
            detail="fill timeout",
        ),
    ],
    ids=lambda made: made.outcome.value,
)
def test_the_journal_row_round_trips_through_json(made: TriangleReport) -> None:
    row = journal_row(made)
    assert json.loads(json.dumps(row, allow_nan=False)) == row
    assert row["outcome"] == made.outcome.value
    assert row["corr"] == "tri-42"
    assert row["triangle"] == ["USDT", "FLUX", "USDC"]
    assert row["predicted_bps"] == 34.45
    assert row["effective_bps"] == made.effective_bps
    assert (None if row["profit"] is None else Decimal(row["profit"])) == made.profit
    assert {c: Decimal(a) for c, a in row["held"].items()} == made.held
    assert [leg["label"] for leg in row["legs"]] == [label for label, _ in made.runs]
    for leg, (_, run) in zip(row["legs"], made.runs, strict=True):
        assert Decimal(leg["received"]) == run.received
        assert Decimal(leg["spent"]) == run.spent
        assert leg["fired_ns"] == run.times.fired_ns
        assert [(f["px"], f["sz"], f["fee"]) for f in leg["fills"]] == [
            (f.px, f.sz, f.fee) for f in run.fills
        ]
    assert [book["time_ms"] for book in row["books"]] == [book.time_ms for book in BOOKS]
    assert row["books"][0] == {
        "symbol": "FLUX-USDT",
        "time_ms": T_MS - 29,
        "continuous": True,
        "ask": [0.0774, 1000.0],
        "bid": [0.0772, 1000.0],
    }


def test_the_journal_row_of_the_reference_line() -> None:
    row = journal_row(report(Outcome.FILLED, (L0, L1, L2)))
    assert (row["spent"], row["returned"], row["profit"]) == ("4.994622", "4.9197334", "-0.0748886")
    assert row["legs"][0]["latency_ns"] == 82_900_000
    assert row["legs"][2]["fees"] == {"USDT": "0.004937"}
