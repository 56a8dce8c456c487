"""The UTC day's PnL: restored from the journal's fills of the day as the daily report counts
them, each fill once, rolled at 00:00 UTC."""

from __future__ import annotations

import datetime

import attrs
import pytest
from hypothesis import given
from hypothesis import strategies as st

from mm.model import Fill, Side
from mm.ops.report import build_report, day_bounds_ms
from mm.risk.daily import DailyPnl, utc_day
from tests.ids import hl_oid, hl_tid

DAY = datetime.date(2026, 12, 1)
START_MS, END_MS = day_bounds_ms(DAY)


def fill(tid: int, time_ms: int, closed_pnl: float, fee: float = 0.5, oid: int = 7) -> Fill:
    return Fill(
        coin="BTC",
        side=Side.SELL,
        px=95_000.0,
        sz=0.01,
        time_ms=time_ms,
        oid=hl_oid(oid),
        tid=hl_tid(tid),
        cloid=None,
        fee=fee,
        fee_token="USDC",
        crossed=True,
        start_position=0.01,
        direction="Close Long",
        closed_pnl=closed_pnl,
        hash="0x0",
    )


def test_the_day_is_restored_from_its_fills_with_its_peak() -> None:
    fills = [
        fill(3, START_MS + 3_000, -100.0),
        fill(1, START_MS + 1_000, 20.0),  # out of journal order: the curve is in venue time
        fill(2, START_MS + 2_000, 10.0),
        fill(2, START_MS + 2_000, 10.0),  # journaled twice somehow: counted once
        fill(0, START_MS - 1, -1_000.0),  # yesterday
        fill(9, END_MS, -1_000.0),  # tomorrow: not part of this day
    ]
    daily = DailyPnl.restore(DAY, fills[:5])
    assert daily.day == DAY
    assert daily.fills == 3
    assert daily.realized == (20 - 0.5) + (10 - 0.5) + (-100 - 0.5)
    assert daily.peak == (20 - 0.5) + (10 - 0.5)  # the realised curve's highest point
    # The same figure as the daily report's net PnL.
    report = build_report(DAY, [_plain(f) for f in fills], [])
    assert report.total.net_pnl == daily.realized
    pnl, peak = daily.observe(unrealized=12.0)
    assert pnl == daily.realized + 12.0
    assert peak == daily.peak


def _plain(f: Fill) -> dict[str, object]:
    data = attrs.asdict(f)
    data["side"] = f.side.value
    return data


def test_fills_count_once_and_the_day_rolls_at_midnight() -> None:
    daily = DailyPnl(DAY)
    assert daily.on_fill(fill(1, START_MS + 10, -300.0))
    assert not daily.on_fill(fill(1, START_MS + 10, -300.0))  # the same fill again
    assert daily.on_fill(fill(1, START_MS + 10, -300.0, oid=8))  # the other side of a trade
    assert not daily.on_fill(fill(5, START_MS - 10, -50.0))  # a late fill of yesterday
    assert daily.realized == -601.0
    assert daily.observe(unrealized=-10.0) == (-611.0, 0.0)
    assert daily.observe(unrealized=+700.0) == (99.0, 99.0)
    assert not daily.roll(END_MS - 1)
    assert daily.roll(END_MS)  # 00:00 UTC
    assert daily.day == DAY + datetime.timedelta(days=1)
    assert (daily.realized, daily.peak, daily.fills) == (0.0, 0.0, 0)
    assert not daily.on_fill(fill(6, END_MS - 1, -50.0))  # still yesterday's
    assert daily.on_fill(fill(7, END_MS + 5, 4.0, fee=1.0))
    assert daily.realized == 3.0
    # A fill of a later day starts that day even before the clock says so.
    later = END_MS + 86_400_000 + 1
    assert daily.on_fill(fill(8, later, -2.0, fee=0.0))
    assert daily.day == utc_day(later)
    assert daily.realized == -2.0


@given(st.lists(st.tuples(st.integers(0, 20), st.floats(-100, 100)), max_size=40))
def test_the_peak_is_the_highest_running_sum_from_zero(
    events: list[tuple[int, float]],
) -> None:
    fills = [fill(tid, START_MS + i, pnl, fee=0.0) for i, (tid, pnl) in enumerate(events)]
    daily = DailyPnl.restore(DAY, fills)
    running, peak, seen = 0.0, 0.0, set()
    for f in fills:
        if (f.tid, f.oid) in seen:
            continue
        seen.add((f.tid, f.oid))
        running += f.closed_pnl
        peak = max(peak, running)
    assert daily.realized == running
    assert daily.peak == peak


def test_the_fills_remembered_are_bounded_and_a_recent_replay_still_counts_once() -> None:
    daily = DailyPnl(DAY, capacity=100)
    for tid in range(1, 1001):
        assert daily.on_fill(fill(tid, START_MS + tid, -1.0))
    assert daily.fills == 1000
    assert len(daily._seen) == 100
    assert not daily.on_fill(fill(1000, START_MS + 1000, -1.0))  # a recent one again
    assert daily.realized == -1000 * 1.5
    assert daily.roll(END_MS)
    assert daily.capacity == 100
    assert len(daily._seen) == 0


def test_a_restored_day_keeps_the_bound() -> None:
    fills = [fill(tid, START_MS + tid, -1.0) for tid in range(1, 51)]
    daily = DailyPnl.restore(DAY, fills, capacity=10)
    assert daily.fills == 50
    assert len(daily._seen) == 10
    assert not daily.on_fill(fills[-1])


def test_a_fill_in_another_currency_counts_at_its_value() -> None:
    # ETH-BTC: a closed PnL of 0.001 BTC and a fee of 0.0001 BTC, BTC at 60,000.
    daily = DailyPnl(DAY)
    assert daily.on_fill(fill(1, START_MS, 0.001, fee=0.0001), quote_usd=60_000.0, fee_usd=60_000.0)
    assert daily.realized == pytest.approx(60.0 - 6.0)
    assert daily.on_fill(fill(2, START_MS, 1.0, fee=0.5))  # in the account's currency: as is
    assert daily.realized == pytest.approx(54.0 + 0.5)
