"""A triangle's start as the journal keeps it, and the report of one a process's death cut off,
pure.

Before a slot sends a triangle's first leg it journals the start (``start_row``), committed:
the triangle, its evaluation and books as the signal carried them, and the client order id of
every order it may send (``L0``..``L2``, then ``U0``, ``U1`` for an unwind), drawn before the
first is sent. Its report's row (``reports.journal_row``) carries the same ``id``. A start
whose id no report row carries is a triangle the process died in: the next start of the
service reads it back (``StartedTriangle.of``), asks the venue which of those orders it knows
and their fills, and reports it (``recovered_report``):

- FILLED when the venue has all three legs filled (the process died after the last leg, before
  its report): the same report the slot would have made, but for the timings;
- else ABORTED, ``detail`` ``PROCESS_ENDED``, with the legs and unwind orders the venue knows
  and their fills, and what they left held. It is not unwound at the next start: the books it
  was evaluated on are gone, the service may start under a tripped kill switch or a mode that
  refuses new risk, and what is held shows in the balances and counts against the inventory
  limits (the operator's flatten, or the triangles' own legs, move it).

The legs' timings are not known: each leg recovered is stamped as fired at the signal, with no
ack or fill time (``LegTimes``), so no latency is made up.

Fails: ``ValueError`` (``KeyError`` for a missing field) for a start row that is not one, or an
order of the venue that is not of the triangle's pairs; ``reports``' ``ValueError`` for fills
that are not their leg's.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from decimal import Decimal
from typing import Any, Final

import attrs

from mm.model import Fill, OrderId, Side
from mm.strategies.triarb.legs import Leg, Triangle
from mm.strategies.triarb.reports import LegRun, LegTimes, Outcome, TriangleReport, book_row
from mm.strategies.triarb.signals import Signal
from mm.strategies.triarb.triangles import BookView, Evaluation, LegResult

__all__ = [
    "LABELS",
    "PROCESS_ENDED",
    "START_KIND",
    "StartedTriangle",
    "VenueOrder",
    "recovered_report",
    "start_row",
    "unreported",
]

START_KIND: Final = "triangle_started"  # the journal's kind of a start row
LEGS: Final = ("L0", "L1", "L2")
UNWINDS: Final = ("U0", "U1")  # at most one per currency held: the two between the legs
LABELS: Final = (*LEGS, *UNWINDS)
PROCESS_ENDED: Final = "the process ended mid-triangle"


@attrs.frozen(slots=True)
class VenueOrder:
    """What the venue knows of one of a triangle's orders: its id, pair and side."""

    oid: OrderId
    symbol: str
    side: Side


@attrs.frozen(slots=True)
class StartedTriangle:
    """A start row read back: what a report of it needs."""

    id: str
    corr: str
    slot: int
    time_ms: int
    signal_ns: int
    evaluation: Evaluation
    books: tuple[BookView, BookView, BookView]
    cloids: Mapping[str, str]  # by label, L0..U1
    paper: bool

    @property
    def triangle(self) -> Triangle:
        return self.evaluation.triangle

    @classmethod
    def of(cls, row: Mapping[str, Any]) -> StartedTriangle:
        triangle = Triangle(
            row["primary"],
            tuple(_leg(leg) for leg in row["legs"]),  # type: ignore[arg-type]
        )
        evaluation = row["evaluation"]
        results = tuple(
            LegResult(
                leg,
                Decimal(result["spent"]),
                Decimal(result["size"]),
                Decimal(result["notional"]),
                Decimal(result["fee"]),
                Decimal(result["received"]),
                Decimal(result["worst_px"]),
            )
            for leg, result in zip(triangle.legs, evaluation["legs"], strict=True)
        )
        cloids = row["cloids"]
        if set(cloids) != set(LABELS) or not all(isinstance(c, str) for c in cloids.values()):
            raise ValueError(f"start {row['id']}: client order ids {cloids!r}")
        return cls(
            str(row["id"]),
            str(row["corr"]),
            int(row["slot"]),
            int(row["time_ms"]),
            int(row["signal_ns"]),
            Evaluation(
                triangle,
                Decimal(evaluation["volume"]),
                Decimal(evaluation["final"]),
                float(evaluation["profit_bps"]),
                results,  # type: ignore[arg-type]
                bool(evaluation["depth_limited"]),
                int(evaluation["oldest_ms"]),
            ),
            tuple(_book(book) for book in row["books"]),  # type: ignore[arg-type]
            dict(cloids),
            bool(row["paper"]),
        )


def start_row(
    id_: str,
    slot: int,
    signal: Signal,
    signal_ns: int,
    cloids: Mapping[str, str],
    time_ms: int,
    *,
    paper: bool,
) -> dict[str, Any]:
    """The journal's row of a triangle about to send its first leg (see the module)."""
    evaluation = signal.evaluation
    triangle = evaluation.triangle
    return {
        "id": id_,
        "corr": str(signal.corr),
        "slot": slot,
        "time_ms": time_ms,
        "signal_ns": signal_ns,
        "primary": triangle.primary,
        "legs": [[leg.symbol, leg.side.value, leg.source, leg.target] for leg in triangle.legs],
        "evaluation": {
            "volume": str(evaluation.volume),
            "final": str(evaluation.final),
            "profit_bps": evaluation.profit_bps,
            "depth_limited": evaluation.depth_limited,
            "oldest_ms": evaluation.oldest_ms,
            "legs": [
                {
                    "spent": str(result.spent),
                    "size": str(result.size),
                    "notional": str(result.notional),
                    "fee": str(result.fee),
                    "received": str(result.received),
                    "worst_px": str(result.worst_px),
                }
                for result in evaluation.legs
            ],
        },
        "books": [
            book_row(symbol, book)
            for symbol, book in zip(triangle.symbols, signal.books, strict=True)
        ],
        "cloids": dict(cloids),
        "paper": paper,
    }


def unreported(
    starts: Iterable[Mapping[str, Any]], reported: Iterable[str]
) -> list[Mapping[str, Any]]:
    """The start rows whose id no report carries, in the order given (once each)."""
    done = set(reported)
    found: list[Mapping[str, Any]] = []
    for row in starts:
        if row["id"] not in done:
            done.add(row["id"])
            found.append(row)
    return found


def recovered_report(
    started: StartedTriangle,
    orders: Mapping[str, VenueOrder],
    fills: Iterable[Fill],
    time_ms: int,
) -> TriangleReport:
    """The report of ``started``, cut off by the process's death, from the orders the venue
    knows of it (by label) and their fills (others' are left out; see the module)."""
    by_oid: dict[OrderId, list[Fill]] = {}
    for fill in fills:
        by_oid.setdefault(fill.oid, []).append(fill)
    triangle = started.triangle
    times = LegTimes(started.signal_ns)
    legs: list[LegRun] = []
    for label, leg in zip(LEGS, triangle.legs, strict=True):
        order = orders.get(label)
        if order is None:
            break  # (a leg is sent only after the one before it: none after it either)
        if (order.symbol, order.side) != (leg.symbol, leg.side):
            raise ValueError(f"{started.id}: the venue's {label} is not {leg}")
        legs.append(LegRun(leg, times, _fills_of(order, label, started, by_oid)))
    unwind: list[LegRun] = []
    for label in UNWINDS:
        order = orders.get(label)
        if order is None:
            break
        leg = _way_back(triangle, order)
        unwind.append(LegRun(leg, times, _fills_of(order, label, started, by_oid)))
    filled = len(legs) == 3 and all(run.fills for run in legs) and not unwind
    report = TriangleReport(
        started.corr,
        Outcome.FILLED if filled else Outcome.ABORTED,
        started.evaluation,
        started.books,
        started.signal_ns,
        time_ms,
        tuple(legs),
        tuple(unwind),
        "" if filled else PROCESS_ENDED,
        id=started.id,
    )
    if not filled and report.held:
        return attrs.evolve(report, detail=f"{PROCESS_ENDED}: holding")
    return report


def _fills_of(
    order: VenueOrder, label: str, started: StartedTriangle, by_oid: Mapping[OrderId, list[Fill]]
) -> tuple[Fill, ...]:
    """The order's fills, oldest first, under the client order id it was sent with (the
    venue's fill history may not carry it)."""
    cloid = started.cloids[label]
    found = sorted(by_oid.get(order.oid, ()), key=lambda fill: (fill.time_ms, fill.tid))
    return tuple(fill if fill.cloid == cloid else attrs.evolve(fill, cloid=cloid) for fill in found)


def _way_back(triangle: Triangle, order: VenueOrder) -> Leg:
    """The unwind leg an order of the venue is: the first leg's pair the other way (the first
    currency held back to the primary), or the last leg (the second)."""
    first, _, last = triangle.legs
    if order.symbol == first.symbol and order.side is first.side.opposite:
        return Leg(first.symbol, order.side, first.target, triangle.primary)
    if order.symbol == last.symbol and order.side is last.side:
        return last
    raise ValueError(f"{order.symbol} {order.side.value} is no way back to {triangle.primary}")


def _leg(fields: Sequence[str]) -> Leg:
    symbol, side, source, target = fields
    return Leg(symbol, Side(side), source, target)


def _book(row: Mapping[str, Any]) -> BookView:
    """The book as its row keeps it: the best level of each side (what a report prints)."""
    ask, bid = row["ask"], row["bid"]
    asks = () if ask is None else ((float(ask[0]), float(ask[1]), 1),)
    bids = () if bid is None else ((float(bid[0]), float(bid[1]), 1),)
    return BookView(bids, asks, int(row["time_ms"]), bool(row["continuous"]))
