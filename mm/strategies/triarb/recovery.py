"""The triangles a process's death cut off, found in the journal and reported at the next start
of the service: the shell around ``started``.

``unreported_starts`` reads the journal (blocking: at start, in a thread, before anything
runs) for the triangles whose start was journaled and whose report was not. ``recover`` then
waits for the venue client and the user stream in sync (the fills missed while down are
recovered by then), asks the venue for each triangle's orders by the client order ids its
start journaled (``order_status``: the legs in order, until one the venue does not know, then
the unwind's, when a leg left something held) and for their fills (``fills_since`` the start,
paged until every order's filled size is in), and hands each report
(``started.recovered_report``) to ``report``: the desk logs, journals and counts it as every
report. A triangle of paper mode is reported from nothing: its fills were never the venue's.

Fails: a venue that answers with an error (``VenueError``, a malformed answer) is asked again
after a pause that doubles up to ``RETRY_CAP_S``; nothing is reported until it answers, and
nothing is dropped. A start row that does not parse, or whose orders at the venue are not of
its triangle, is logged as an error and left unreported (the journal keeps it for a person).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterable, Mapping, Sequence
from decimal import Decimal
from pathlib import Path
from typing import Any, Final

import orjson
import trio
from loguru import logger

from mm import clock
from mm.model import Fill, OrderReport, OrderStatus
from mm.strategies.triarb.reports import TriangleReport
from mm.strategies.triarb.started import (
    START_KIND,
    UNWINDS,
    StartedTriangle,
    VenueOrder,
    recovered_report,
    unreported,
)
from mm.venues.base import MalformedAnswer, VenueClient, VenueError

__all__ = ["recover", "unreported_starts"]

POLL_S: Final = 0.25  # while waiting for the venue client and the user stream's sync
RETRY_INITIAL_S: Final = 0.5
RETRY_CAP_S: Final = 10.0
# The venue's fills are asked from this long before the start's own time (clocks differ).
FILLS_SLACK_MS: Final = 5_000
LEGS: Final = ("L0", "L1", "L2")


def unreported_starts(path: Path) -> list[dict[str, Any]]:
    """The journal's triangle starts without a report, in write order (none without a
    journal). Blocking."""
    if not path.exists():
        return []
    conn = sqlite3.connect(path)
    try:
        starts = conn.execute(
            "SELECT data FROM events WHERE kind = ? ORDER BY id", (START_KIND,)
        ).fetchall()
        if not starts:
            return []
        reported = conn.execute(
            "SELECT json_extract(data, '$.id') FROM events WHERE kind = 'triangle'"
        ).fetchall()
    finally:
        conn.close()
    rows = [orjson.loads(data) for (data,) in starts]
    return [dict(row) for row in unreported(rows, (i for (i,) in reported if i))]


def parse_starts(rows: Iterable[Mapping[str, Any]]) -> list[StartedTriangle]:
    """The start rows read back; one that does not parse is logged and left out."""
    parsed = []
    for row in rows:
        try:
            parsed.append(StartedTriangle.of(row))
        except (KeyError, TypeError, ValueError, ArithmeticError) as error:
            logger.error("triangle start not recoverable ({}): {}", error, row)
    return parsed


async def recover(
    starts: Sequence[StartedTriangle],
    client: Callable[[], VenueClient | None],
    in_sync: Callable[[], bool],
    report: Callable[[TriangleReport], None],
) -> None:
    """Report each of ``starts`` from what the venue knows of its orders (see the module)."""
    if not starts:
        return
    logger.warning(
        "{} triangles were in flight when the last run ended: asking the venue", len(starts)
    )
    for started in starts:
        retry = RETRY_INITIAL_S
        while True:
            venue = client()
            if venue is None or not in_sync():
                await trio.sleep(POLL_S)
                continue
            try:
                found = await _at_venue(venue, started)
            except (VenueError, MalformedAnswer) as error:
                logger.warning("triangle {}: the venue did not answer ({})", started.id, error)
                await trio.sleep(retry)
                retry = min(retry * 2, RETRY_CAP_S)
                continue
            break
        orders, fills = found
        try:
            recovered = recovered_report(started, orders, fills, clock.wall_ms())
        except ValueError as error:
            logger.error("triangle {} not recovered: {}", started.id, error)
            continue
        report(recovered)


async def _at_venue(
    venue: VenueClient, started: StartedTriangle
) -> tuple[dict[str, VenueOrder], list[Fill]]:
    """The triangle's orders the venue knows, by label, and their fills."""
    if started.paper:
        return {}, []
    cloids = started.cloids
    reports: dict[str, OrderReport] = {}
    for label in LEGS:
        answer = await venue.order_status(cloid=cloids[label])
        if answer is None:
            break
        reports[label] = answer
    legs_filled = len(reports) == 3 and all(_filled(answer) > 0 for answer in reports.values())
    if reports and not legs_filled:  # (a leg failed: an unwind may have followed)
        for label in UNWINDS:
            answer = await venue.order_status(cloid=cloids[label])
            if answer is None:
                break
            reports[label] = answer
    orders = {
        label: VenueOrder(answer.oid, answer.coin, answer.side) for label, answer in reports.items()
    }
    wanted = {answer.oid: _filled(answer) for answer in reports.values() if _filled(answer) > 0}
    return orders, await _fills(venue, started.time_ms - FILLS_SLACK_MS, wanted)


async def _fills(venue: VenueClient, since_ms: int, wanted: dict[Any, Decimal]) -> list[Fill]:
    """The fills of the orders in ``wanted`` (by id, their filled size) from ``since_ms``:
    the venue's fill history paged forward until each order's size is in, or no page is
    left."""
    found: list[Fill] = []
    seen: set[str] = set()
    got: dict[Any, Decimal] = dict.fromkeys(wanted, Decimal(0))
    while wanted and any(got[oid] < size for oid, size in wanted.items()):
        page = await venue.fills_since(since_ms)
        for fill in page:
            if fill.oid in wanted and fill.tid not in seen:
                seen.add(fill.tid)
                found.append(fill)
                got[fill.oid] += Decimal(repr(fill.sz))
        if len(page) < venue.fills_page:
            break
        last_ms = page[-1].time_ms
        since_ms = last_ms if last_ms > since_ms else since_ms + 1
    return found


def _filled(answer: OrderReport) -> Decimal:
    """What of the order filled, as the venue reports it."""
    if answer.status is OrderStatus.FILLED:
        return Decimal(repr(answer.orig_sz))
    return Decimal(repr(answer.orig_sz)) - Decimal(repr(answer.sz))
