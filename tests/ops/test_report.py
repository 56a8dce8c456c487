"""Tests of mm.ops.report: one UTC day of fills and markouts read from a real journal.

The figures are worked out by hand from the entries below. Real recorded Hyperliquid fills go
through the venue codec and the journal the way the service writes them. Properties: totals
agree with the per-symbol rows, net = realized - fees, and the report does not change when a
fill is duplicated or the entries are reordered. Triangles are the triarb desk's own journal
rows (``journal_row`` of real ``TriangleReport``s: the reference triangle of
tests/strategies/triarb/test_reports.py in each outcome, and its rotation to a USDC primary);
their section is worked out by hand too, and does not change with their order.
"""

from __future__ import annotations

import argparse
import datetime
import enum
import json
import math
import sqlite3
from decimal import Decimal
from pathlib import Path
from typing import Any

import attrs
import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mm.cli import cmd_report
from mm.journal import DATABASE_NAME, Entry, open_database, write_batch
from mm.model import Fill, Funding, Side
from mm.ops.report import (
    DailyReport,
    MarkoutStat,
    PrimaryStat,
    build_report,
    day_bounds_ms,
    parse_fill,
    read_day,
    render_text,
    to_json,
)
from mm.strategies.triarb.legs import Leg, Triangle
from mm.strategies.triarb.reports import LegRun, Outcome, TriangleReport, journal_row
from mm.strategies.triarb.triangles import Evaluation, Terms, evaluate
from mm.venues.hyperliquid.codec import UserEventsFrame, decode_frame, parse_fills
from tests.conftest import ConfigWriter
from tests.fixture_paths import HYPERLIQUID as FIXTURES
from tests.ids import hl_oid, hl_tid
from tests.strategies.triarb.test_reports import (
    BOOKS,
    BUY_FLUX,
    INSTRUMENTS,
    L0,
    L1,
    L2,
    SELL_FLUX,
    T_MS,
    UNWIND_FLUX,
    report,
    times,
)
from tests.strategies.triarb.test_reports import fill as leg_fill

DAY = datetime.date(2024, 3, 1)
START_MS = 1_709_251_200_000  # 2024-03-01T00:00:00Z
END_MS = START_MS + 86_400_000  # 2024-03-02T00:00:00Z


def fill(
    coin: str,
    side: str,
    px: float,
    sz: float,
    *,
    time_ms: int,
    tid: int,
    fee: float,
    closed_pnl: float = 0.0,
    crossed: bool = False,
) -> dict[str, Any]:
    """A fill entry as the service journals it: attrs.asdict(Fill) with plain enum values."""
    return {
        "coin": coin,
        "side": side,
        "px": px,
        "sz": sz,
        "time_ms": time_ms,
        "oid": 1000 + tid,
        "tid": tid,
        "cloid": None,
        "fee": fee,
        "fee_token": "USDC",
        "crossed": crossed,
        "start_position": 0.0,
        "direction": "Open Long" if side == "B" else "Open Short",
        "closed_pnl": closed_pnl,
        "hash": f"0x{tid:064x}",
    }


def markout(coin: str, fill_time_ms: int, horizon_ms: int, bps: float) -> dict[str, Any]:
    return {"coin": coin, "horizon_ms": horizon_ms, "bps": bps, "fill_time_ms": fill_time_ms}


T0 = START_MS  # the first millisecond of the day belongs to it
T1 = START_MS + 3_600_000
T2 = START_MS + 7_200_000
T_LAST = END_MS - 1  # so does the last

FILLS_OF_THE_DAY = [
    fill("BTC", "B", 50_000.0, 0.1, time_ms=T0, tid=1, fee=0.5),
    fill("BTC", "A", 50_100.0, 0.05, time_ms=T1, tid=2, fee=0.25, closed_pnl=5.0),
    fill("BTC", "A", 49_900.0, 0.02, time_ms=T2, tid=3, fee=0.4, closed_pnl=-2.0, crossed=True),
    fill("ETH", "B", 3_000.0, 1.5, time_ms=T1, tid=4, fee=1.2, crossed=True),
    fill("ETH", "B", 2_990.0, 0.5, time_ms=T2, tid=5, fee=-0.1),  # a maker rebate
    fill("ETH", "A", 3_010.0, 1.0, time_ms=T_LAST, tid=6, fee=0.3, closed_pnl=10.0),
]
FILLS_OF_OTHER_DAYS = [
    fill("BTC", "B", 1.0, 100.0, time_ms=START_MS - 1, tid=7, fee=9.0, closed_pnl=99.0),
    fill("ETH", "A", 1.0, 100.0, time_ms=END_MS, tid=8, fee=9.0, closed_pnl=99.0),
    fill("SOL", "B", 1.0, 100.0, time_ms=END_MS + 5, tid=9, fee=9.0, closed_pnl=99.0),
]
MARKOUTS = [
    markout("BTC", T0, 1_000, 2.0),
    markout("BTC", T0, 5_000, 1.0),
    markout("BTC", T0, 30_000, -3.0),
    markout("BTC", T1, 1_000, 4.0),
    markout("BTC", T1, 5_000, -1.0),
    markout("ETH", T1, 1_000, -5.0),
    markout("ETH", END_MS, 1_000, 100.0),  # a fill of the next day
]


def journal(path: Path, entries: list[Entry]) -> None:
    conn = open_database(path)
    try:
        write_batch(conn, entries)
    finally:
        conn.close()


@pytest.fixture
def journal_path(tmp_path: Path) -> Path:
    """The day's fills, journaled late or early (ts is wall time, not venue time)."""
    path = tmp_path / "mm.sqlite3"
    entries = [Entry(f["time_ms"] / 1000 + 0.05, "fill", f) for f in FILLS_OF_THE_DAY]
    # The fill just before the day was recovered after a restart, journaled inside the day;
    # the last fill of the day was journaled after midnight.
    entries += [Entry(T1 / 1000, "fill", f) for f in FILLS_OF_OTHER_DAYS]
    entries.append(Entry(END_MS / 1000 + 1, "fill", FILLS_OF_THE_DAY[1]))  # replayed: ignored
    entries += [Entry(m["fill_time_ms"] / 1000 + 31, "markout", m) for m in MARKOUTS]
    entries.append(Entry(T1 / 1000, "order", {"coin": "BTC", "time_ms": T1}))
    journal(path, entries)
    return path


def test_day_bounds() -> None:
    assert day_bounds_ms(DAY) == (START_MS, END_MS)


def test_read_day_takes_the_day_by_venue_time(journal_path: Path) -> None:
    fills, markouts, fundings, triangles = read_day(journal_path, DAY)
    assert fundings == triangles == []
    assert sorted(f["tid"] for f in fills) == [1, 2, 3, 4, 5, 6]
    assert len(markouts) == 6
    assert all(START_MS <= m["fill_time_ms"] < END_MS for m in markouts)
    assert fills[0] == FILLS_OF_THE_DAY[0]


def test_read_day_is_read_only(journal_path: Path, tmp_path: Path) -> None:
    before = journal_path.read_bytes()
    read_day(journal_path, DAY)
    assert journal_path.read_bytes() == before
    with pytest.raises(FileNotFoundError, match=r"nowhere\.sqlite3"):
        read_day(tmp_path / "nowhere.sqlite3", DAY)
    assert not (tmp_path / "nowhere.sqlite3").exists()


def test_report_figures(journal_path: Path) -> None:
    report = build_report(DAY, *read_day(journal_path, DAY))
    assert report.day == DAY
    assert [s.coin for s in report.symbols] == ["BTC", "ETH"]
    btc, eth = report.symbols

    assert (btc.fills, btc.maker_fills, btc.taker_fills) == (3, 2, 1)
    assert btc.buy_sz == pytest.approx(0.1)
    assert btc.sell_sz == pytest.approx(0.07)
    assert btc.buy_notional == pytest.approx(5_000.0)
    assert btc.sell_notional == pytest.approx(2_505.0 + 998.0)
    assert btc.fees == pytest.approx(1.15)
    assert btc.realized_pnl == pytest.approx(3.0)
    assert btc.net_pnl == pytest.approx(1.85)
    assert btc.position_change == pytest.approx(0.03)
    assert btc.vwap_buy == pytest.approx(50_000.0)
    assert btc.vwap_sell == pytest.approx(3_503.0 / 0.07)
    assert btc.markouts == (
        MarkoutStat(1_000, 2, 3.0),
        MarkoutStat(5_000, 2, 0.0),
        MarkoutStat(30_000, 1, -3.0),
    )

    assert (eth.fills, eth.maker_fills, eth.taker_fills) == (3, 2, 1)
    assert eth.buy_sz == pytest.approx(2.0)
    assert eth.sell_sz == pytest.approx(1.0)
    assert eth.buy_notional == pytest.approx(4_500.0 + 1_495.0)
    assert eth.sell_notional == pytest.approx(3_010.0)
    assert eth.fees == pytest.approx(1.4)
    assert eth.realized_pnl == pytest.approx(10.0)
    assert eth.net_pnl == pytest.approx(8.6)
    assert eth.position_change == pytest.approx(1.0)
    assert eth.vwap_buy == pytest.approx(2_997.5)
    assert eth.vwap_sell == pytest.approx(3_010.0)
    assert eth.markouts == (MarkoutStat(1_000, 1, -5.0),)

    total = report.total
    assert (total.fills, total.maker_fills, total.taker_fills) == (6, 4, 2)
    assert total.buy_notional == pytest.approx(10_995.0)
    assert total.sell_notional == pytest.approx(6_513.0)
    assert total.fees == pytest.approx(2.55)
    assert total.realized_pnl == pytest.approx(13.0)
    assert total.net_pnl == pytest.approx(10.45)
    assert total.markouts[0].horizon_ms == 1_000
    assert total.markouts[0].count == 3
    assert total.markouts[0].mean_bps == pytest.approx(1 / 3)
    assert total.markouts[1:] == (MarkoutStat(5_000, 2, 0.0), MarkoutStat(30_000, 1, -3.0))

    assert (report.duplicates, report.malformed) == (0, 0)  # the journal kept one copy
    assert report.fee_tokens == ("USDC",)


# Journals written before the model had its own words for sides hold the venue's letters.
NEW_SIDES = {"B": "buy", "A": "sell"}


def in_todays_words(fill: dict[str, Any]) -> dict[str, Any]:
    """As the service journals the fill today: mm's side words, ids qualified by venue."""
    ids = {"oid": hl_oid(fill["oid"]), "tid": hl_tid(fill["tid"])}
    return {**fill, "side": NEW_SIDES[fill["side"]], **ids}


def test_a_journal_written_before_reads_as_one_written_now(tmp_path: Path) -> None:
    # FILLS_OF_THE_DAY hold "B" and "A", as the service journaled sides before, and Hyperliquid's
    # bare integer ids; today it writes "buy" and "sell" and ids qualified by venue
    # ("hyperliquid:1"). Both, and a day upgraded halfway (both kinds in one journal), report
    # the same figures, and nothing of either is taken for malformed.
    old, new, upgraded = (tmp_path / f"{name}.sqlite3" for name in ("old", "new", "upgraded"))
    todays = [in_todays_words(f) for f in FILLS_OF_THE_DAY]
    journal(old, [Entry(f["time_ms"] / 1000, "fill", f) for f in FILLS_OF_THE_DAY])
    journal(new, [Entry(f["time_ms"] / 1000, "fill", f) for f in todays])
    halves = FILLS_OF_THE_DAY[:3] + todays[3:]
    journal(upgraded, [Entry(f["time_ms"] / 1000, "fill", f) for f in halves])
    reports = [build_report(DAY, *read_day(path, DAY)) for path in (old, new, upgraded)]
    assert reports[0].total.fills == 6
    assert reports[0].malformed == 0
    assert reports[0] == reports[1] == reports[2]
    # A fill journaled today carries mm's words.
    fill = parse_fill(todays[0])
    assert as_journaled(fill)["side"] == "buy"
    assert (fill.oid, fill.tid) == (hl_oid(1001), hl_tid(1))
    assert parse_fill(FILLS_OF_THE_DAY[0]) == fill
    with pytest.raises(ValueError, match="side 'b'"):
        parse_fill({**todays[0], "side": "b"})
    # A fill journaled both before and after the upgrade is one fill; so is a markout's.
    again = build_report(DAY, [*FILLS_OF_THE_DAY, *todays[:2]], [])
    assert (again.duplicates, again.total) == (2, reports[0].total)
    old_markout = {**markout("BTC", T0, 1_000, 2.0), "tid": 1}
    twice = build_report(DAY, [], [old_markout, {**old_markout, "tid": hl_tid(1)}])
    assert twice.duplicates == 1


def test_duplicates_are_counted_once_and_reported() -> None:
    fills = [*FILLS_OF_THE_DAY, FILLS_OF_THE_DAY[1], dict(FILLS_OF_THE_DAY[4])]
    report = build_report(DAY, fills, MARKOUTS)
    assert report.duplicates == 2
    assert report.total.fills == 6
    assert report.symbols == build_report(DAY, FILLS_OF_THE_DAY, MARKOUTS).symbols
    assert "skipped: 2 duplicate, 0 malformed entries" in render_text(report)


def test_markouts_with_a_tid_are_deduplicated() -> None:
    with_tid = {**markout("BTC", T0, 1_000, 2.0), "tid": 1}
    later = {**markout("BTC", T0, 5_000, 6.0), "tid": 1}  # the same fill, another horizon
    no_tid = markout("BTC", T0, 1_000, 4.0)
    report = build_report(DAY, [], [with_tid, with_tid, later, no_tid, no_tid])
    assert report.symbols[0].markouts == (
        MarkoutStat(1_000, 3, 10.0 / 3),
        MarkoutStat(5_000, 1, 6.0),
    )
    assert report.duplicates == 1


def test_build_report_keeps_to_its_day() -> None:
    """Given entries of other days (not through read_day), the report still covers its day."""
    report = build_report(DAY, FILLS_OF_OTHER_DAYS + FILLS_OF_THE_DAY, MARKOUTS)
    assert report == build_report(DAY, FILLS_OF_THE_DAY, MARKOUTS[:-1])
    assert build_report(DAY, FILLS_OF_OTHER_DAYS, MARKOUTS[-1:]).total.fills == 0


def test_malformed_entries_are_counted_and_skipped() -> None:
    broken = [
        {k: v for k, v in FILLS_OF_THE_DAY[0].items() if k != "px"},
        {**FILLS_OF_THE_DAY[0], "side": "X", "tid": 77},
        {**FILLS_OF_THE_DAY[0], "crossed": "yes", "tid": 78},
    ]
    report = build_report(DAY, [*broken, *FILLS_OF_THE_DAY], [{"coin": "BTC"}, *MARKOUTS])
    assert report.malformed == 4
    assert report.total.fills == 6


def test_render_text_layout(journal_path: Path) -> None:
    text = render_text(build_report(DAY, *read_day(journal_path, DAY)))
    assert text == (
        "mm daily report 2024-03-01 (UTC)\n"
        "fills 6 (maker 4, taker 2)  volume 17,508.00 USD  net pnl 10.4500 USD\n"
        "\n"
        "coin   fills  maker  taker  buy sz  vwap buy    buy USD  sell sz        vwap sell"
        "  sell USD  net pos\n"
        "-----  -----  -----  -----  ------  --------  ---------  -------  ---------------"
        "  --------  -------\n"
        "BTC        3      2      1     0.1    50,000   5,000.00     0.07  50,042.85714286"
        "  3,503.00     0.03\n"
        "ETH        3      2      1       2   2,997.5   5,995.00        1            3,010"
        "  3,010.00        1\n"
        "-----  -----  -----  -----  ------  --------  ---------  -------  ---------------"
        "  --------  -------\n"
        "TOTAL      6      4      2       -         -  10,995.00        -                -"
        "  6,513.00        -\n"
        "\n"
        "pnl in USD; markouts: mean bps (count), positive = in our favour\n"
        "coin     fees  funding  realized      net  markout 1s  markout 5s  markout 30s\n"
        "-----  ------  -------  --------  -------  ----------  ----------  -----------\n"
        "BTC    1.1500   0.0000    3.0000   1.8500   +3.00 (2)    0.00 (2)    -3.00 (1)\n"
        "ETH    1.4000   0.0000   10.0000   8.6000   -5.00 (1)           -            -\n"
        "-----  ------  -------  --------  -------  ----------  ----------  -----------\n"
        "TOTAL  2.5500   0.0000   13.0000  10.4500   +0.33 (3)    0.00 (2)    -3.00 (1)\n"
    )


def test_empty_day(journal_path: Path) -> None:
    day = datetime.date(2024, 2, 1)
    report = build_report(day, *read_day(journal_path, day))
    assert report.symbols == ()
    assert report.total.fills == 0
    assert report.total.net_pnl == 0.0
    assert render_text(report) == "mm daily report 2024-02-01 (UTC)\nno fills\n"
    assert to_json(report)["total"]["fills"] == 0


def test_to_json_is_plain_json(journal_path: Path) -> None:
    data = to_json(build_report(DAY, *read_day(journal_path, DAY)))
    assert json.loads(json.dumps(data)) == data
    assert data["day"] == "2024-03-01"
    assert [s["coin"] for s in data["symbols"]] == ["BTC", "ETH"]
    eth = data["symbols"][1]
    assert eth["vwap_buy"] == pytest.approx(2_997.5)
    assert eth["markouts"] == [{"horizon_ms": 1_000, "count": 1, "mean_bps": -5.0}]
    assert data["total"]["net_pnl"] == pytest.approx(10.45)
    assert data["fee_tokens"] == ["USDC"]
    only_buys = to_json(build_report(DAY, FILLS_OF_THE_DAY[:1], []))
    assert only_buys["symbols"][0]["vwap_sell"] is None


def test_fees_in_other_tokens_are_flagged() -> None:
    hype = {**FILLS_OF_THE_DAY[0], "fee_token": "HYPE"}
    report = build_report(DAY, [hype, *FILLS_OF_THE_DAY[1:]], [])
    assert report.fee_tokens == ("HYPE", "USDC")
    assert "note: fees are charged in HYPE, USDC" in render_text(report)


# --- real recorded fills ---------------------------------------------------------------------


def as_journaled(fill: Fill) -> dict[str, Any]:
    """What the service journals for a fill: attrs.asdict with enum values as plain values."""

    def plain(_inst: Any, _field: Any, value: Any) -> Any:
        return value.value if isinstance(value, enum.Enum) else value

    data: dict[str, Any] = attrs.asdict(fill, value_serializer=plain)
    return data


def journal_fills(path: Path, fills: list[Fill]) -> None:
    journal(path, [Entry(f.time_ms / 1000 + 0.2, "fill", as_journaled(f)) for f in fills])


def test_recorded_user_fills(tmp_path: Path) -> None:
    """The recorded ``userFills`` answer: 25 taker fills closing positions on 2023-05-05."""
    recorded = json.loads((FIXTURES / "info_responses.json").read_text())["info"]["userFills"]
    fills = parse_fills(recorded["response"])
    assert len(fills) == 25
    path = tmp_path / "mm.sqlite3"
    journal_fills(path, fills)

    report = build_report(datetime.date(2023, 5, 5), *read_day(path, datetime.date(2023, 5, 5)))
    coins = ["APE", "ARB", "AVAX", "BNB", "DOGE", "DYDX", "INJ", "LTC", "OP", "SOL", "SUI"]
    assert [s.coin for s in report.symbols] == coins
    # Three SUI fills share an order, a hash and a time (and have no tid): all three count.
    assert (report.total.fills, report.total.taker_fills, report.total.maker_fills) == (25, 25, 0)
    symbols = {s.coin: s for s in report.symbols}
    sui = symbols["SUI"]
    assert sui.fills == 3
    assert sui.sell_sz == pytest.approx(142.7 + 3749.1 + 731.7)  # = startPosition: a full close
    assert sui.position_change == pytest.approx(-4623.5)
    assert sui.sell_notional == pytest.approx(1.3189 * 142.7 + 1.3167 * 3749.1 + 1.3093 * 731.7)
    assert sui.realized_pnl == pytest.approx(-0.25686 - 14.771454 - 6.980418)
    assert sui.vwap_buy is None
    arb = symbols["ARB"]
    assert arb.buy_sz == pytest.approx(11_243.6)  # closes the -11243.6 short
    assert arb.realized_pnl == pytest.approx(0.53789 - 0.33 - 3.012908 - 10.22 - 12.789472)
    assert report.total.fees == 0.0
    assert report.total.net_pnl == pytest.approx(
        math.fsum(float(entry["closedPnl"]) for entry in recorded["response"])
    )
    assert report.total.sell_notional + report.total.buy_notional == pytest.approx(
        math.fsum(float(e["px"]) * float(e["sz"]) for e in recorded["response"])
    )
    text = render_text(report)
    for coin in coins:
        assert any(line.startswith(f"{coin} ") for line in text.splitlines())
    assert report == build_report(datetime.date(2023, 5, 5), [as_journaled(f) for f in fills], [])
    assert build_report(datetime.date(2023, 5, 4), *read_day(path, datetime.date(2023, 5, 4))) == (
        build_report(datetime.date(2023, 5, 4), [], [])
    )


def test_recorded_maker_fill_from_the_user_stream(tmp_path: Path) -> None:
    """A recorded ``user`` frame: one maker BTC sell with a fee and a venue tid."""
    line = next(
        line
        for line in (FIXTURES / "ws_frames.jsonl").read_text().splitlines()
        if '"channel": "user"' in line and "404237815023429" in line
    )
    frame = decode_frame(line)
    assert isinstance(frame, UserEventsFrame)
    path = tmp_path / "mm.sqlite3"
    journal_fills(path, frame.fills)
    journal_fills(path, frame.fills)  # replayed after a reconnect: journaled once

    day = datetime.date(2026, 2, 1)  # time 1769940855551
    report = build_report(day, *read_day(path, day))
    (btc,) = report.symbols
    assert (btc.coin, btc.fills, btc.maker_fills, btc.taker_fills) == ("BTC", 1, 1, 0)
    assert btc.sell_sz == pytest.approx(0.001)
    assert btc.sell_notional == pytest.approx(79.146)
    assert btc.vwap_sell == pytest.approx(79_146.0)
    assert btc.fees == pytest.approx(0.019785)
    assert btc.realized_pnl == pytest.approx(0.046128)
    assert btc.net_pnl == pytest.approx(0.046128 - 0.019785)
    assert btc.position_change == pytest.approx(-0.001)
    rows = sqlite3.connect(path).execute("SELECT count(*) FROM events").fetchone()
    assert rows == (1,)


def test_recorded_funding_payments(tmp_path: Path) -> None:
    """The recorded ``userFunding`` answer (13 coins paid at 2023-04-20 00:00 UTC) and the
    ``user`` channel's event for its BTC payment, journaled as the service journals a Funding:
    the report has each coin's funding, the total, and net PnL = realized - fees + funding."""
    recorded = json.loads((FIXTURES / "user_funding.json").read_text())
    payments = [
        Funding(
            coin=e["delta"]["coin"],
            usdc=float(e["delta"]["usdc"]),
            szi=float(e["delta"]["szi"]),
            funding_rate=float(e["delta"]["fundingRate"]),
            time_ms=e["time"],
        )
        for e in recorded["info"]["userFunding"]["response"]
    ]
    frame = decode_frame(orjson.dumps(recorded["ws_user_frame"]))
    assert isinstance(frame, UserEventsFrame)
    assert frame.funding in payments
    day = datetime.date(2023, 4, 20)
    path = tmp_path / "mm.sqlite3"
    entries = [Entry(p.time_ms / 1000 + 0.1, "funding", attrs.asdict(p)) for p in payments]
    entries.append(Entry(1681948801.0, "funding", attrs.asdict(frame.funding)))  # seen twice
    # A closing BTC fill the same day: realized 3.0, fee 0.5.
    entries.append(
        Entry(
            1681952400.0,
            "fill",
            fill("BTC", "B", 29_000.0, 0.1, time_ms=1681952400000, tid=77, fee=0.5, closed_pnl=3.0),
        )
    )
    journal(path, entries)

    report = build_report(day, *read_day(path, day))
    symbols = {s.coin: s for s in report.symbols}
    assert sorted(symbols) == sorted(p.coin for p in payments)
    assert report.duplicates == 1
    assert report.total.funding_payments == 13
    expected = math.fsum(
        float(e["delta"]["usdc"]) for e in recorded["info"]["userFunding"]["response"]
    )
    assert report.total.funding == pytest.approx(expected)
    assert expected == pytest.approx(11.897859, abs=1e-9)  # summed by hand from the recording
    btc = symbols["BTC"]
    assert btc.funding == pytest.approx(5.950454)
    assert btc.net_pnl == pytest.approx(3.0 - 0.5 + 5.950454)
    assert symbols["AVAX"].funding == pytest.approx(-0.572915)  # a long paying at a positive rate
    assert symbols["AVAX"].fills == 0
    assert report.total.net_pnl == pytest.approx(3.0 - 0.5 + expected)
    text = render_text(report)
    assert "funding 11.8979 USD (13 payments)" in text
    assert any(line.startswith("BTC ") and "5.9505" in line for line in text.splitlines())
    data = to_json(report)
    assert data["total"]["funding"] == pytest.approx(expected)
    assert data["symbols"][0]["funding"] == pytest.approx(0.145796)  # APE
    # A day with funding and no fills still reports it.
    only_funding = build_report(day, [], [], [attrs.asdict(p) for p in payments])
    assert render_text(only_funding).splitlines()[1:3] == [
        "no fills",
        f"funding 11.8979 USD (13 payments)  net pnl {expected:.4f} USD",
    ]


def test_malformed_funding_entries_are_counted_and_skipped() -> None:
    good = funding("BTC", -1.25, time_ms=T1)
    bad = [
        {**good, "usdc": "NaN"},
        {k: v for k, v in good.items() if k != "coin"},
        {**good, "time_ms": "soon"},
    ]
    report = build_report(DAY, [], [], [*bad, good, funding("BTC", 9.0, time_ms=END_MS)])
    assert report.malformed == 3
    assert report.total.funding == -1.25
    assert report.total.net_pnl == -1.25


# --- properties --------------------------------------------------------------------------------

fill_dicts = st.lists(
    st.builds(
        fill,
        st.sampled_from(["BTC", "ETH", "SOL"]),
        st.sampled_from(["B", "A"]),
        st.floats(0.01, 100_000.0),
        st.floats(0.000_001, 1_000.0),
        time_ms=st.integers(START_MS, END_MS - 1),
        tid=st.integers(1, 10_000),
        fee=st.floats(-1.0, 10.0),
        closed_pnl=st.floats(-1_000.0, 1_000.0),
        crossed=st.booleans(),
    ),
    max_size=30,
    unique_by=lambda f: (f["tid"], f["oid"]),
)


def funding(coin: str, usdc: float, *, time_ms: int, szi: float = 1.0) -> dict[str, Any]:
    """A funding entry as the service journals it: attrs.asdict(Funding)."""
    return {"coin": coin, "usdc": usdc, "szi": szi, "funding_rate": 0.0000125, "time_ms": time_ms}


funding_dicts = st.lists(
    st.builds(
        funding,
        st.sampled_from(["BTC", "ETH", "DOGE"]),
        st.floats(-100.0, 100.0),
        time_ms=st.integers(0, 23).map(lambda hour: START_MS + hour * 3_600_000),
    ),
    max_size=20,
    unique_by=lambda f: (f["coin"], f["time_ms"]),
)


def figures(report: DailyReport) -> DailyReport:
    """The report without its duplicate count, to compare reports over the same fills."""
    return attrs.evolve(report, duplicates=0)


@settings(max_examples=150, deadline=None)
@given(fill_dicts, funding_dicts)
def test_totals_agree_with_symbols(
    fills: list[dict[str, Any]], fundings: list[dict[str, Any]]
) -> None:
    report = build_report(DAY, fills, [], fundings)
    total = report.total
    assert total.funding_payments == len(fundings)
    assert total.funding == pytest.approx(
        math.fsum(f["usdc"] for f in fundings), rel=1e-9, abs=1e-9
    )
    assert total.fills == len(fills) == sum(s.fills for s in report.symbols)
    assert total.maker_fills + total.taker_fills == total.fills
    assert total.maker_fills == sum(s.maker_fills for s in report.symbols)
    for name in ("buy_notional", "sell_notional", "fees", "funding", "realized_pnl"):
        per_symbol = math.fsum(getattr(s, name) for s in report.symbols)
        assert getattr(total, name) == pytest.approx(per_symbol, rel=1e-9, abs=1e-9)
    assert total.net_pnl == total.realized_pnl - total.fees + total.funding
    for s in report.symbols:
        assert s.net_pnl == s.realized_pnl - s.fees + s.funding
        assert s.maker_fills + s.taker_fills == s.fills
        assert s.position_change == pytest.approx(s.buy_sz - s.sell_sz, rel=1e-9, abs=1e-9)
        if s.vwap_buy is not None:
            buys = [f["px"] for f in fills if f["coin"] == s.coin and f["side"] == "B"]
            assert min(buys) * (1 - 1e-12) <= s.vwap_buy <= max(buys) * (1 + 1e-12)


@settings(max_examples=150, deadline=None)
@given(fill_dicts, funding_dicts, st.data())
def test_duplicating_or_reordering_fills_changes_nothing(
    fills: list[dict[str, Any]], fundings: list[dict[str, Any]], data: st.DataObject
) -> None:
    report = build_report(DAY, fills, [], fundings)
    assert report.duplicates == 0
    shuffled = data.draw(st.permutations(fills))
    assert build_report(DAY, shuffled, [], data.draw(st.permutations(fundings))) == report
    if fills:
        copy = dict(data.draw(st.sampled_from(fills)))
        at = data.draw(st.integers(0, len(fills)))
        duplicated = build_report(DAY, [*fills[:at], copy, *fills[at:]], [], fundings)
        assert duplicated.duplicates == 1
        assert figures(duplicated) == report
    if fundings:  # a payment journaled twice (a replayed frame) counts once
        again = dict(data.draw(st.sampled_from(fundings)))
        duplicated = build_report(DAY, fills, [], [*fundings, again])
        assert duplicated.duplicates == 1
        assert figures(duplicated) == report


# --- triangles ---------------------------------------------------------------------------------

TRI_DAY = datetime.date(2026, 5, 26)  # the reference triangle's day (T_MS is 17:55:53.719Z)
TRI_START_MS, _ = day_bounds_ms(TRI_DAY)

# The reference triangle turned to start and end in USDC: 5 USDC sold at 0.999 for 4.990005
# USDT (fee 0.004995), 64.40 FLUX bought at 0.0774 for 4.9895446 USDT (fee 0.0049846, so
# 0.0004604 USDT is left), sold at 0.07783 for 5.007239748 USDC (fee 0.005012252): a profit of
# 0.007239748 USDC, 14.479496 bps of 5, as predicted.
SELL_USDC_FOR_USDT = Leg("USDC-USDT", Side.SELL, "USDC", "USDT")
USDC_TRIANGLE = Triangle("USDC", (SELL_USDC_FOR_USDT, BUY_FLUX, SELL_FLUX))


def usdc_filled() -> TriangleReport:
    terms = Terms(Decimal(5), 1000, dict.fromkeys(INSTRUMENTS, Decimal("0.001")))
    books = dict(zip(USDC_TRIANGLE.symbols, (BOOKS[2], BOOKS[0], BOOKS[1]), strict=True))
    evaluation = evaluate(USDC_TRIANGLE, books, INSTRUMENTS, terms, T_MS)
    assert isinstance(evaluation, Evaluation), evaluation
    assert evaluation.profit_bps == 14.479496
    legs = (
        LegRun(
            SELL_USDC_FOR_USDT,
            times(0.2, 30.0, 40.0),
            (leg_fill(SELL_USDC_FOR_USDT, 0.999, 5.0, 0.004995, "USDT"),),
        ),
        LegRun(
            BUY_FLUX,
            times(40.2, 70.0, 80.0),
            (leg_fill(BUY_FLUX, 0.0774, 64.4, 0.0049846, "USDT"),),
        ),
        LegRun(
            SELL_FLUX,
            times(80.2, 110.0, 120.0),
            (leg_fill(SELL_FLUX, 0.07783, 64.4, 0.005012252, "USDC"),),
        ),
    )
    return TriangleReport(
        corr="7",
        outcome=Outcome.FILLED,
        evaluation=evaluation,
        books=(BOOKS[2], BOOKS[0], BOOKS[1]),
        signal_ns=L0.times.fired_ns,
        time_ms=T_MS,
        legs=legs,
    )


def day_triangles() -> list[TriangleReport]:
    """One of each outcome of the reference triangle (USDT), and the USDC one, a second apart."""
    made = [
        report(Outcome.FILLED, (L0, L1, L2)),  # -0.0748886 USDT, -149.938... bps
        report(Outcome.FAILED, (LegRun(BUY_FLUX, times(0.2, None, None)),), detail="400100"),
        report(Outcome.FAILED, (L0, LegRun(SELL_FLUX, times(83.4, None, None))), detail="400600"),
        report(Outcome.ABORTED, (L0, L1), detail="kill switch"),  # holds 4.9296 USDC
        report(
            Outcome.UNWOUND,
            (L0, LegRun(SELL_FLUX, times(83.4, 120.0, 161.7))),
            unwind=(
                LegRun(
                    UNWIND_FLUX,
                    times(162.0, 190.0, 230.0),
                    (leg_fill(UNWIND_FLUX, 0.0771, 64.53, 0.004975, "USDT"),),
                ),
            ),
            detail="fill timeout",
        ),  # -0.024334 USDT, -48.720... bps
        usdc_filled(),
    ]
    return [
        attrs.evolve(r, corr=str(n), time_ms=T_MS + n * 1000) for n, r in enumerate(made, start=1)
    ]


def triangle_entries() -> list[Entry]:
    return [Entry(r.time_ms / 1000 + 0.01, "triangle", journal_row(r)) for r in day_triangles()]


@pytest.fixture
def triangle_journal(tmp_path: Path) -> Path:
    """The day's triangles; one of the day before (journaled inside the day), one journaled
    twice, and a fill of the first leg (fills are the fills section's)."""
    path = tmp_path / "mm.sqlite3"
    entries = triangle_entries()
    before = attrs.evolve(day_triangles()[0], time_ms=TRI_START_MS - 1)
    entries.append(Entry(TRI_START_MS / 1000 + 5, "triangle", journal_row(before)))
    entries.append(attrs.evolve(entries[0], ts=entries[0].ts + 1))  # the same row again
    (leg_fill_0,) = L0.fills
    entries.append(Entry(T_MS / 1000, "fill", as_journaled(leg_fill_0)))
    journal(path, entries)
    return path


def test_the_days_triangles_by_hand(triangle_journal: Path) -> None:
    fills, markouts, fundings, triangles = read_day(triangle_journal, TRI_DAY)
    assert len(fills) == 1
    assert len(triangles) == 7  # six and the one journaled twice; not the day before's
    assert triangles[0] == journal_row(day_triangles()[0])
    report = build_report(TRI_DAY, fills, markouts, fundings, triangles)
    assert (report.duplicates, report.malformed) == (1, 0)
    assert report.total.fills == 1
    stats = report.triangles
    assert stats is not None
    assert stats.count == 6
    assert dict(stats.outcomes) == {"FILLED": 2, "FAILED": 2, "ABORTED": 1, "UNWOUND": 1}
    assert [outcome for outcome, _ in stats.outcomes] == [o.value for o in Outcome]
    assert stats.hit_rate == pytest.approx(2 / 6)
    assert stats.mean_predicted_bps == pytest.approx((5 * 34.45 + 14.479496) / 6)
    # Measured: the two FILLED and the UNWOUND one (the others brought nothing back).
    effective = (-149.9384738224434, -48.72040366618335, 14.479496)
    assert stats.measured == 3
    assert stats.mean_effective_bps == pytest.approx(sum(effective) / 3)
    slippage = (effective[0] - 34.45, effective[1] - 34.45, 0.0)
    assert stats.mean_slippage_bps == pytest.approx(sum(slippage) / 3)
    # USDT: the FILLED one, the one failed at its first leg (0) and the UNWOUND one closed.
    assert stats.primaries == (
        PrimaryStat("USDC", 1, 1, Decimal("0.007239748")),
        PrimaryStat("USDT", 5, 3, Decimal("-0.0748886") + Decimal("-0.024334")),
    )
    assert stats.held_triangles == 3  # failed at leg 2, aborted, and the USDC one's dust
    assert stats.held == (
        ("FLUX", Decimal("64.53")),
        ("USDC", Decimal("4.9296")),
        ("USDT", Decimal("0.0004604")),
    )


def test_the_triangles_section_text_and_json(triangle_journal: Path) -> None:
    report = build_report(TRI_DAY, *read_day(triangle_journal, TRI_DAY))
    text = render_text(report)
    section = text[text.index("\ntriangles ") + 1 :]
    assert section == (
        "triangles 6: FILLED 2, FAILED 2, ABORTED 1, UNWOUND 1  hit rate 33.3%\n"
        "bps: predicted +31.12 mean; effective -61.39 and slippage -89.19 mean of 3 measured\n"
        "held: 3 triangles left 64.53 FLUX, 4.9296 USDC, 0.0004604 USDT\n"
        "primary  triangles  closed       profit\n"
        "-------  ---------  ------  -----------\n"
        "USDC             1       1  0.007239748\n"
        "USDT             5       3   -0.0992226\n"
    )
    data = to_json(report)
    assert json.loads(json.dumps(data)) == data
    triangles = data["triangles"]
    assert triangles["outcomes"] == {"FILLED": 2, "FAILED": 2, "ABORTED": 1, "UNWOUND": 1}
    assert triangles["primaries"] == [
        {"primary": "USDC", "triangles": 1, "closed": 1, "profit": "0.007239748"},
        {"primary": "USDT", "triangles": 5, "closed": 3, "profit": "-0.0992226"},
    ]
    assert triangles["held"] == {"FLUX": "64.53", "USDC": "4.9296", "USDT": "0.0004604"}
    assert triangles["held_triangles"] == 3
    assert triangles["mean_effective_bps"] == pytest.approx(-61.39312716287558)


def test_mm_report_prints_the_triangles(
    write_config: ConfigWriter, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """``mm report`` over the service's journal (run_dir/mm.sqlite3): the section in the text,
    the figures in the JSON."""
    config = write_config()
    (tmp_path / "run").mkdir()
    journal(tmp_path / "run" / DATABASE_NAME, triangle_entries())
    args = argparse.Namespace(config=str(config), date=TRI_DAY.isoformat(), json=False)
    assert cmd_report(args, {}) == 0
    text = capsys.readouterr().out
    assert "triangles 6: FILLED 2, FAILED 2, ABORTED 1, UNWOUND 1  hit rate 33.3%\n" in text
    assert "\nUSDT             5       3   -0.0992226\n" in text
    assert cmd_report(argparse.Namespace(**{**vars(args), "json": True}), {}) == 0
    printed = orjson.loads(capsys.readouterr().out)
    assert printed["triangles"]["count"] == 6
    assert printed["triangles"]["primaries"][1]["profit"] == "-0.0992226"


def test_a_day_without_triangles_has_no_section(journal_path: Path) -> None:
    report = build_report(DAY, *read_day(journal_path, DAY))
    assert report.triangles is None
    assert "triangles" not in render_text(report)
    assert to_json(report)["triangles"] is None
    only_failed = [journal_row(day_triangles()[1])]  # nothing came back to measure
    stats = build_report(TRI_DAY, [], [], [], only_failed).triangles
    assert stats is not None
    assert (stats.count, stats.hit_rate, stats.measured) == (1, 0.0, 0)
    assert (stats.mean_effective_bps, stats.mean_slippage_bps) == (None, None)
    text = render_text(build_report(TRI_DAY, [], [], [], only_failed))
    assert text.splitlines()[1:] == [
        "no fills",
        "",
        "triangles 1: FILLED 0, FAILED 1, ABORTED 0, UNWOUND 0  hit rate 0.0%",
        "bps: predicted +34.45 mean; effective - and slippage - mean of 0 measured",
        "held: none left",
        "primary  triangles  closed  profit",
        "-------  ---------  ------  ------",
        "USDT             1       1       0",
    ]


def test_malformed_triangles_are_counted_and_skipped() -> None:
    good = journal_row(day_triangles()[0])
    broken = [
        {**good, "outcome": "LOST"},
        {**good, "profit": None},  # a FILLED triangle always closes
        {**good, "profit": "NaN"},
        {**good, "profit": 0.5},  # amounts are decimal strings
        {**good, "held": ["FLUX"]},
        {**good, "predicted_bps": "fast"},
        {k: v for k, v in good.items() if k != "primary"},
    ]
    report = build_report(TRI_DAY, [], [], [], [*broken, good])
    assert report.malformed == len(broken)
    assert report.triangles is not None
    assert report.triangles.count == 1
    assert "skipped: 0 duplicate, 7 malformed entries" in render_text(report)


def test_the_same_corr_in_another_run_is_another_triangle() -> None:
    """The correlation id starts again at each run: only corr, time and signal time together
    say a row was journaled twice."""
    first = day_triangles()[0]
    again = attrs.evolve(first, time_ms=first.time_ms + 60_000, signal_ns=first.signal_ns)
    report = build_report(TRI_DAY, [], [], [], [journal_row(first), journal_row(again)])
    assert report.duplicates == 0
    assert report.triangles is not None
    assert report.triangles.count == 2


@settings(max_examples=40, deadline=None)
@given(st.data())
def test_the_triangles_section_does_not_depend_on_order(data: st.DataObject) -> None:
    rows = [journal_row(r) for r in day_triangles()]
    chosen = data.draw(st.lists(st.sampled_from(range(len(rows))), unique=True, min_size=1))
    picked = [rows[i] for i in chosen]
    stats = build_report(TRI_DAY, [], [], [], picked).triangles
    assert stats is not None
    shuffled = data.draw(st.permutations(picked))
    assert build_report(TRI_DAY, [], [], [], shuffled).triangles == stats
    assert stats.count == len(picked) == sum(n for _, n in stats.outcomes)
    assert sum(p.triangles for p in stats.primaries) == stats.count
    closed = [row for row in picked if row["profit"] is not None]
    assert sum(p.closed for p in stats.primaries) == len(closed)
    for primary in stats.primaries:
        assert primary.profit == sum(
            (Decimal(row["profit"]) for row in closed if row["primary"] == primary.primary),
            Decimal(0),
        )
    assert stats.held_triangles == sum(1 for row in picked if row["held"])
