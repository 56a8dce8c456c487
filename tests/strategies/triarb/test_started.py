"""A triangle's journaled start read back, and the report of one a crash cut off
(``started``): made from the venue's orders and fills as the slot would have made it from the
same fills (three filled legs: FILLED, the same amounts), else ABORTED with what is held; a
start without a report found by its id; a row or an order that is not the triangle's refused.
Then the shell (``recovery``): the journal's unreported starts, and the venue asked for each
triangle's orders and fills, again after an error, once the user stream is in sync."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from decimal import Decimal
from pathlib import Path
from typing import Any

import attrs
import pytest
import trio
import trio.testing

from mm.journal import Entry, open_database, write_batch
from mm.model import Fill, OrderId, OrderReport, OrderStatus, Side, TradeId
from mm.strategies.triarb.recovery import parse_starts, recover, unreported_starts
from mm.strategies.triarb.reports import Outcome, TriangleReport, journal_row
from mm.strategies.triarb.started import (
    LABELS,
    PROCESS_ENDED,
    START_KIND,
    StartedTriangle,
    VenueOrder,
    recovered_report,
    start_row,
    unreported,
)
from mm.venues.base import VenueError
from tests.strategies.triarb.test_slot import NOW_MS, Reply, scripted, signal

SIGNAL_NS = 7_000
CLOIDS = {label: f"mm-{label.lower()}" for label in LABELS}
LATER_MS = NOW_MS + 60_000


def started(corr: int = 1, *, paper: bool = False) -> StartedTriangle:
    return StartedTriangle.of(
        start_row(f"t-{corr}", 0, signal(corr), SIGNAL_NS, CLOIDS, NOW_MS, paper=paper)
    )


async def slot_report(*replies: Reply) -> TriangleReport:
    """The report a slot makes of the first signal with the venue answering ``replies``."""
    slot, _ = scripted(*replies)
    report = await slot.take(signal())
    assert report is not None
    return report


def at_venue(
    report: TriangleReport, labels: Sequence[str] = LABELS
) -> tuple[dict[str, VenueOrder], list[Fill]]:
    """The venue's orders (by label) and fills of what ``report``'s slot sent (those of
    ``labels``: the process died before the others), the fills as the venue's history lists
    them: without a client order id."""
    orders, fills = {}, []
    for label, run in report.runs:
        if label not in labels:
            continue
        oid = OrderId(f"kucoin:{label}")
        orders[label] = VenueOrder(oid, run.leg.symbol, run.leg.side)
        fills += [attrs.evolve(fill, oid=oid, cloid=None) for fill in run.fills]
    return orders, fills


def test_a_start_row_reads_back_as_the_signal_was_evaluated() -> None:
    the_signal = signal()
    row = start_row("t-1", 3, the_signal, SIGNAL_NS, CLOIDS, NOW_MS, paper=False)
    back = StartedTriangle.of(row)
    assert back.evaluation == the_signal.evaluation
    assert (back.id, back.corr, back.slot, back.time_ms, back.signal_ns) == (
        "t-1",
        "1",
        3,
        NOW_MS,
        SIGNAL_NS,
    )
    assert back.cloids == CLOIDS
    for book, signalled in zip(back.books, the_signal.books, strict=True):
        assert (book.time_ms, book.asks[:1], book.bids[:1]) == (
            signalled.time_ms,
            signalled.asks[:1],
            signalled.bids[:1],
        )


@pytest.mark.parametrize(
    "broken",
    [
        {"cloids": {"L0": "x"}},
        {"legs": [["BTC-USDT", "buy", "USDT", "BTC"]]},
        {"evaluation": {"volume": "a lot"}},
    ],
)
def test_a_start_row_that_is_not_one_is_refused(broken: dict[str, Any]) -> None:
    row = {**start_row("t-1", 0, signal(), SIGNAL_NS, CLOIDS, NOW_MS, paper=False), **broken}
    with pytest.raises((KeyError, ValueError, ArithmeticError)):
        StartedTriangle.of(row)
    assert parse_starts([row]) == []  # (logged, left out)


def test_the_starts_without_a_report_are_found_by_id_once_each() -> None:
    starts = [{"id": "a"}, {"id": "b"}, {"id": "c"}, {"id": "b"}]
    assert unreported(starts, ["a", "x"]) == [{"id": "b"}, {"id": "c"}]


async def test_three_filled_legs_are_the_report_the_slot_would_have_made(
    autojump_clock: trio.testing.MockClock,
) -> None:
    made = await slot_report(
        Reply(fills=(("50000", "0.00199"),)),
        Reply(fills=(("0.05", "0.0397"),)),
        Reply(fills=(("2600", "0.0397"),)),
    )
    orders, fills = at_venue(made)
    report = recovered_report(started(), orders, fills, LATER_MS)
    assert report.outcome is Outcome.FILLED
    assert (report.spent, report.returned, report.profit, report.held) == (
        made.spent,
        made.returned,
        made.profit,
        made.held,
    )
    assert report.id == journal_row(report)["id"] == "t-1"
    # Each fill under the client order id its order was sent with; no timing made up.
    assert [fill.cloid for _, run in report.runs for fill in run.fills] == [
        CLOIDS["L0"],
        CLOIDS["L1"],
        CLOIDS["L2"],
    ]
    assert all(run.times.latency_ns is None for _, run in report.runs)


async def test_a_triangle_cut_off_after_its_first_leg_is_aborted_holding_what_it_bought(
    autojump_clock: trio.testing.MockClock,
) -> None:
    made = await slot_report(
        Reply(fills=(("50000", "0.00199"),)), Reply(error="no"), Reply(error="no")
    )
    orders, fills = at_venue(made, ("L0", "L1"))
    another = OrderId("kucoin:another")
    others = [attrs.evolve(fill, oid=another, tid=TradeId("t9")) for fill in fills]
    report = recovered_report(started(), orders, [*fills, *others], LATER_MS)
    assert report.outcome is Outcome.ABORTED
    assert report.detail == f"{PROCESS_ENDED}: holding"
    assert [label for label, _ in report.runs] == ["L0", "L1"]
    assert report.held == {"BTC": Decimal("0.00199")}
    assert report.profit is None  # capital is out


def test_a_triangle_cut_off_before_anything_reached_the_venue_is_aborted_with_no_leg() -> None:
    report = recovered_report(started(), {}, [], LATER_MS)
    assert (report.outcome, report.detail, report.runs, report.held) == (
        Outcome.ABORTED,
        PROCESS_ENDED,
        (),
        {},
    )
    assert report.profit == 0


async def test_a_triangle_cut_off_in_its_unwind_reports_the_unwinds_fills(
    autojump_clock: trio.testing.MockClock,
) -> None:
    made = await slot_report(
        Reply(fills=(("50000", "0.00199"),)),
        Reply(error="200004 Balance insufficient!"),
        Reply(fills=(("49990", "all"),)),
    )
    assert made.outcome is Outcome.UNWOUND
    orders, fills = at_venue(made)
    report = recovered_report(started(), orders, fills, LATER_MS)
    assert report.outcome is Outcome.ABORTED
    assert [label for label, _ in report.runs] == ["L0", "L1", "U0"]
    assert report.held == made.held
    assert report.returned == made.returned


def test_an_order_of_another_pair_is_no_leg_of_the_triangle() -> None:
    wrong = {"L0": VenueOrder(OrderId("kucoin:1"), "ETH-USDT", Side.BUY)}
    with pytest.raises(ValueError, match="L0"):
        recovered_report(started(), wrong, [], LATER_MS)
    no_way_back = {
        "L0": VenueOrder(OrderId("kucoin:1"), "BTC-USDT", Side.BUY),
        "U0": VenueOrder(OrderId("kucoin:2"), "ETH-BTC", Side.SELL),
    }
    with pytest.raises(ValueError, match="no way back"):
        recovered_report(started(), no_way_back, [], LATER_MS)


# --- the shell -------------------------------------------------------------------------------


def test_the_journals_starts_without_a_report_are_read_back(tmp_path: Path) -> None:
    path = tmp_path / "mm.sqlite3"
    assert unreported_starts(path) == []
    rows = [
        start_row(f"t-{n}", 0, signal(n), SIGNAL_NS, CLOIDS, NOW_MS, paper=False) for n in (1, 2)
    ]
    conn = open_database(path)
    write_batch(
        conn,
        [
            Entry(0.0, START_KIND, rows[0]),
            Entry(0.0, START_KIND, rows[1]),
            Entry(0.0, "triangle", {"id": "t-1"}),
            Entry(0.0, "triangle", {"corr": "9"}),  # (a row of a build before ids)
        ],
    )
    conn.close()
    assert unreported_starts(path) == [rows[1]]


class Venue:
    """A venue client's order reads: its orders by client id, its fill history paged
    ``page`` at a time; ``errors`` raised first, one a call."""

    fills_page = 2

    def __init__(self, orders: dict[str, OrderReport], fills: Sequence[Fill]) -> None:
        self._orders = orders
        self._fills = sorted(fills, key=lambda fill: fill.time_ms)
        self.errors: list[Exception] = []
        self.asked: list[str] = []
        self.pages = 0

    async def order_status(
        self, *, oid: OrderId | None = None, cloid: str | None = None
    ) -> OrderReport | None:
        await trio.lowlevel.checkpoint()
        if self.errors:
            raise self.errors.pop(0)
        assert cloid is not None
        self.asked.append(cloid)
        return self._orders.get(cloid)

    async def fills_since(self, time_ms: int) -> list[Fill]:
        await trio.lowlevel.checkpoint()
        self.pages += 1
        return [fill for fill in self._fills if fill.time_ms >= time_ms][: self.fills_page]


def order(label: str, symbol: str, side: Side, size: float, filled: float) -> OrderReport:
    return OrderReport(
        coin=symbol,
        side=side,
        px=1.0,
        sz=size - filled,
        orig_sz=size,
        oid=OrderId(f"kucoin:{label}"),
        cloid=CLOIDS[label],
        time_ms=NOW_MS,
        status=OrderStatus.CANCELED,
        status_time_ms=NOW_MS,
        venue_status="canceled",
    )


def spread(fills: Iterable[Fill]) -> list[Fill]:
    """The fills a millisecond apart each (the history pages by time)."""
    return [attrs.evolve(fill, time_ms=NOW_MS + n) for n, fill in enumerate(fills)]


async def test_recover_asks_the_venue_once_in_sync_and_again_after_an_error(
    autojump_clock: trio.testing.MockClock,
) -> None:
    made = await slot_report(
        Reply(fills=(("50000", "0.001"), ("50000", "0.00099"))),
        Reply(error="no"),
        Reply(error="no"),
    )
    _, fills = at_venue(made, ("L0",))
    other = attrs.evolve(fills[0], oid=OrderId("kucoin:other"), tid=TradeId("other"))
    venue = Venue(
        {
            CLOIDS["L0"]: order("L0", "BTC-USDT", Side.BUY, 0.002, 0.00199),
            CLOIDS["L1"]: order("L1", "ETH-BTC", Side.BUY, 0.04, 0.0),
        },
        spread([fills[0], other, fills[1]]),
    )
    venue.errors.append(VenueError("429000 Too many requests"))
    synced = trio.Event()
    reports: list[TriangleReport] = []
    async with trio.open_nursery() as nursery:
        nursery.start_soon(
            recover,  # type: ignore[arg-type]
            [started()],
            lambda: venue,
            synced.is_set,
            reports.append,
        )
        await trio.sleep(5)
        assert (venue.asked, reports) == ([], [])  # the user stream is not in sync yet
        synced.set()
    (report,) = reports
    # L0, L1 known, L2 not; an unwind asked for (a leg failed) and not found.
    assert venue.asked == [CLOIDS[label] for label in ("L0", "L1", "L2", "U0")]
    assert report.outcome is Outcome.ABORTED
    assert [len(run.fills) for _, run in report.runs] == [2, 0]
    assert report.held == made.held
    assert venue.pages == 2  # the second page had the rest of L0's fills


async def test_a_paper_triangle_is_reported_without_asking_the_venue() -> None:
    venue = Venue({}, [])
    reports: list[TriangleReport] = []
    await recover([started(paper=True)], lambda: venue, lambda: True, reports.append)  # type: ignore[arg-type, return-value]
    assert venue.asked == []
    assert [(r.outcome, r.runs) for r in reports] == [(Outcome.ABORTED, ())]
