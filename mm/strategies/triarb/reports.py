"""How a triangle ended, pure: its report, the one log line the reference prints for it, and
the journal's row.

Every triangle a slot takes ends in one ``Outcome``: FILLED (three legs filled), FAILED (the
venue refused or did not fill a leg; ``detail`` is its error), ABORTED (stopped between legs:
a kill switch, a stop, a leg refused before it was sent; ``detail`` is the reason) or UNWOUND
(a leg failed and what was held was traded back to the primary; ``detail`` is the failure).

A :class:`TriangleReport` holds the ``Evaluation`` the signal carried (the triangle, the
predicted bps), the three books as evaluated (``BookView``: their levels and times), and each
leg as run (:class:`LegRun`: the leg, its timings and its fills), then the unwind's legs.
Timings are monotonic nanoseconds (``time.monotonic_ns`` or the service clock's), all on the
same clock as the report's ``signal_ns``; the line prints them as milliseconds after the
signal. ``time_ms`` is the wall-clock millisecond the report was made (the line's timestamp).

What the legs yielded and spent comes from their fills through ``cascade.leg_output`` and
``cascade.leg_spent`` (fees in the currency received are taken off, fees in the currency spent
are added, a fee in a third currency, KCS, touches neither). From them:

- ``profit``: what came back to the primary (the last leg's output, or the unwind's) less what
  the first leg spent; ``None`` while capital is still out (FAILED or ABORTED after the first
  leg spent something: ``held`` says what is held instead);
- ``effective_bps``: that final amount of the primary against the amount leg 1 spent, in bps
  (``None`` when there is no profit, or nothing was spent);
- ``held``: every other currency's net amount left by the legs and the unwind (dust left by
  the increment floors included), zeros left out.

``log_line`` prints the reference's fields in its order (``<time> <OUTCOME> | corr= |
triangle= | predicted_bps= | effective_bps= | book_ts= | profit= | timings= | fills= |
books=``) and then, when they apply, ``error=`` (FAILED, UNWOUND), ``reason=`` (ABORTED) and
``held=``. ``journal_row`` is the same report as plain JSON-able data: amounts as exact decimal
strings, the fills as the venue reported them.

Fails: ``ValueError`` when a report does not hang together (legs not the triangle's in order,
a fill of another leg, FILLED without three filled legs or with an unwind, FAILED or ABORTED
without a detail, UNWOUND without an unwind back to the primary, timings before the signal).
"""

from __future__ import annotations

import datetime
import enum
from collections.abc import Iterable
from decimal import Context, Decimal, Inexact, InvalidOperation
from typing import Any, Final

import attrs

from mm.model import Fill
from mm.strategies.triarb.cascade import leg_output, leg_spent
from mm.strategies.triarb.legs import Leg, Triangle
from mm.strategies.triarb.triangles import BookView, Evaluation

__all__ = [
    "LegRun",
    "LegTimes",
    "Outcome",
    "TriangleReport",
    "journal_row",
    "log_line",
]

_ZERO: Final = Decimal(0)
_BPS: Final = Decimal(10_000)
# Sums, differences and products are exact (as in the cascade); quotients (bps, average prices)
# are rounded to 28 digits.
_EXACT: Final = Context(prec=400, traps=[Inexact, InvalidOperation])
_QUOTIENT: Final = Context(prec=28)
_NS_PER_MS: Final = 1_000_000
_EPOCH: Final = datetime.datetime(1970, 1, 1, tzinfo=datetime.UTC)


class Outcome(enum.Enum):
    """How a triangle ended."""

    FILLED = "FILLED"
    FAILED = "FAILED"
    ABORTED = "ABORTED"
    UNWOUND = "UNWOUND"


@attrs.frozen(slots=True)
class LegTimes:
    """When a leg's order was fired, acknowledged by the venue and filled (its fills all in,
    or the IOC's end seen): monotonic ns, ``None`` for what did not happen."""

    fired_ns: int
    acked_ns: int | None = None
    filled_ns: int | None = None

    @property
    def latency_ns(self) -> int | None:
        """From the order fired to the leg filled."""
        return None if self.filled_ns is None else self.filled_ns - self.fired_ns


@attrs.frozen(slots=True)
class LegRun:
    """A leg as run: the order sent for ``leg`` at ``times``, and the ``fills`` it got (none:
    rejected, or nothing filled before the IOC ended or the timeout)."""

    leg: Leg
    times: LegTimes
    fills: tuple[Fill, ...] = ()

    def __attrs_post_init__(self) -> None:
        leg_output(self.leg, self.fills)  # a fill of another leg raises ValueError

    @property
    def received(self) -> Decimal:
        """What the leg yielded, in its target currency (``cascade.leg_output``)."""
        return leg_output(self.leg, self.fills)

    @property
    def spent(self) -> Decimal:
        """What the leg spent, in its source currency (``cascade.leg_spent``)."""
        return leg_spent(self.leg, self.fills)

    @property
    def size(self) -> Decimal:
        """The base filled."""
        return _sum(_exact(fill.sz) for fill in self.fills)

    @property
    def avg_px(self) -> Decimal | None:
        """The fills' average price, weighted by size (``None`` without fills)."""
        size = self.size
        if size == 0:
            return None
        notional = _sum(_EXACT.multiply(_exact(fill.px), _exact(fill.sz)) for fill in self.fills)
        return _QUOTIENT.divide(notional, size)

    @property
    def fees(self) -> dict[str, Decimal]:
        """The fees charged, by currency, in the order first met."""
        fees: dict[str, Decimal] = {}
        for fill in self.fills:
            fees[fill.fee_token] = _EXACT.add(fees.get(fill.fee_token, _ZERO), _exact(fill.fee))
        return fees


@attrs.frozen(slots=True)
class TriangleReport:
    """How one triangle ended (see the module). ``corr`` is the signal's correlation id;
    ``legs`` the triangle's legs that were sent, in order; ``unwind`` the trades back to the
    primary after a failure."""

    corr: str
    outcome: Outcome
    evaluation: Evaluation
    books: tuple[BookView, BookView, BookView]
    signal_ns: int
    time_ms: int
    legs: tuple[LegRun, ...] = ()
    unwind: tuple[LegRun, ...] = ()
    detail: str = ""

    def __attrs_post_init__(self) -> None:
        triangle = self.triangle
        if len(self.legs) > 3 or any(
            run.leg != leg for run, leg in zip(self.legs, triangle.legs, strict=False)
        ):
            raise ValueError(f"{self.corr}: legs not {triangle.name}'s in order")
        for run in (*self.legs, *self.unwind):
            times = run.times
            stamps = (times.fired_ns, times.acked_ns, times.filled_ns)
            if any(stamp is not None and stamp < self.signal_ns for stamp in stamps):
                raise ValueError(f"{self.corr}: {run.leg} timed before its signal")
        if self.outcome is Outcome.FILLED:
            if len(self.legs) != 3 or not all(run.fills for run in self.legs) or self.unwind:
                raise ValueError(f"{self.corr}: FILLED is three filled legs and no unwind")
        elif not self.detail:
            raise ValueError(f"{self.corr}: {self.outcome.value} says why")
        if self.outcome is Outcome.UNWOUND and (
            not self.unwind or self.unwind[-1].leg.target != triangle.primary
        ):
            raise ValueError(f"{self.corr}: UNWOUND trades back to {triangle.primary}")

    @property
    def triangle(self) -> Triangle:
        return self.evaluation.triangle

    @property
    def predicted_bps(self) -> float:
        return self.evaluation.profit_bps

    @property
    def runs(self) -> tuple[tuple[str, LegRun], ...]:
        """Every leg run with its label: ``L0``..``L2`` for the triangle's, ``U0``.. for the
        unwind's."""
        return (
            *((f"L{n}", run) for n, run in enumerate(self.legs)),
            *((f"U{n}", run) for n, run in enumerate(self.unwind)),
        )

    @property
    def spent(self) -> Decimal:
        """What the first leg spent of the primary (0 when it was not sent)."""
        return self.legs[0].spent if self.legs else _ZERO

    @property
    def returned(self) -> Decimal:
        """What came back to the primary: every leg's output into it."""
        primary = self.triangle.primary
        return _sum(run.received for _, run in self.runs if run.leg.target == primary)

    @property
    def closed(self) -> bool:
        """Whether the capital is back in the primary (or never left it)."""
        return self.outcome in (Outcome.FILLED, Outcome.UNWOUND) or self.spent == 0

    @property
    def profit(self) -> Decimal | None:
        """In the primary: what came back less what leg 1 spent (``None`` while not closed)."""
        return _EXACT.subtract(self.returned, self.spent) if self.closed else None

    @property
    def effective_bps(self) -> float | None:
        """The final amount of the primary against what leg 1 spent, in bps."""
        profit = self.profit
        if profit is None or self.spent == 0:
            return None
        return float(_QUOTIENT.multiply(_QUOTIENT.divide(profit, self.spent), _BPS))

    @property
    def held(self) -> dict[str, Decimal]:
        """Each currency other than the primary the legs left: received less spent, in the
        order the triangle holds them (zeros left out)."""
        net: dict[str, Decimal] = {}
        for _, run in self.runs:
            leg = run.leg
            net[leg.target] = _EXACT.add(net.get(leg.target, _ZERO), run.received)
            net[leg.source] = _EXACT.subtract(net.get(leg.source, _ZERO), run.spent)
        net.pop(self.triangle.primary, None)
        return {currency: amount for currency, amount in net.items() if amount != 0}


# --- the log line ------------------------------------------------------------------------------


def log_line(report: TriangleReport) -> str:
    """The report as the reference's one line (see the module)."""
    evaluation, runs = report.evaluation, report.runs
    fields = [
        f"{_timestamp(report.time_ms)} {report.outcome.value}",
        f"corr={report.corr}",
        f"triangle=[{','.join(repr(c) for c in report.triangle.currencies)}]",
        f"predicted_bps={evaluation.profit_bps:.2f}",
        f"effective_bps={_bps(report.effective_bps)}",
        f"book_ts=[{','.join(str(book.time_ms) for book in report.books)}]",
        f"profit={_profit(report.profit)}",
        f"timings=[{', '.join(_timings(label, run, report.signal_ns) for label, run in runs)}]",
        f"fills=[{', '.join(_fills(label, run) for label, run in runs)}]",
        f"books=[{' | '.join(_book(book) for book in report.books)}]",
    ]
    if report.outcome in (Outcome.FAILED, Outcome.UNWOUND):
        fields.append(f"error={report.detail}")
    elif report.outcome is Outcome.ABORTED:
        fields.append(f"reason={report.detail}")
    held = report.held
    if held:
        fields.append(f"held=[{', '.join(f'{_num(a)} {c}' for c, a in held.items())}]")
    return " | ".join(fields)


def _timestamp(time_ms: int) -> str:
    """``2026-05-26T17:55:53.719Z``: UTC, to the millisecond (integer arithmetic, no float)."""
    moment = _EPOCH + datetime.timedelta(milliseconds=time_ms)
    return f"{moment:%Y-%m-%dT%H:%M:%S}.{moment.microsecond // 1000:03d}Z"


def _bps(bps: float | None) -> str:
    return "-" if bps is None else f"{bps:.2f}"


def _profit(profit: Decimal | None) -> str:
    """Four decimals as the reference prints, more when needed to show three significant
    digits (a BTC primary's profits are small numbers)."""
    if profit is None:
        return "-"
    places = 4
    if profit != 0:
        places = max(places, 2 - profit.adjusted())
    return f"{profit:.{places}f}"


def _ms(ns: int | None, since_ns: int) -> str:
    return "-" if ns is None else f"{(ns - since_ns) / _NS_PER_MS:.1f}ms"


def _timings(label: str, run: LegRun, signal_ns: int) -> str:
    times = run.times
    return (
        f"{label}:fired={_ms(times.fired_ns, signal_ns)} ack={_ms(times.acked_ns, signal_ns)}"
        f" filled={_ms(times.filled_ns, signal_ns)}"
    )


def _fills(label: str, run: LegRun) -> str:
    """``L0:buy FLUX-USDT USDT->FLUX 64.53@0.0774(fee=0 USDT lat=82.9ms)``: the base filled
    at its average price, the fees by currency, from fired to filled."""
    latency = run.times.latency_ns
    lat = "-" if latency is None else f"{latency / _NS_PER_MS:.1f}ms"
    avg_px = run.avg_px
    if avg_px is None:
        return f"{label}:{run.leg} unfilled(lat={lat})"
    fees = "+".join(f"{_num(fee)} {currency}" for currency, fee in run.fees.items())
    return f"{label}:{run.leg} {_num(run.size)}@{_num(avg_px)}(fee={fees} lat={lat})"


def _book(book: BookView) -> str:
    """The best ask and the best bid as evaluated (``-`` for an empty side)."""
    ask = _num(book.asks[0][0]) if book.asks else "-"
    bid = _num(book.bids[0][0]) if book.bids else "-"
    return f"{ask}/{bid}"


def _num(value: float | Decimal) -> str:
    """A number in its shortest plain form: ``0.0774``, ``64.53``, ``0``, ``100``."""
    exact = _exact(value).normalize()
    return f"{exact:f}" if exact != 0 else "0"


# --- the journal's row -------------------------------------------------------------------------


def journal_row(report: TriangleReport) -> dict[str, Any]:
    """The report as plain JSON-able data: exact amounts as decimal strings (``None`` where
    the line prints ``-``), times as integers, the fills as reported."""
    evaluation = report.evaluation
    profit = report.profit
    return {
        "corr": report.corr,
        "time_ms": report.time_ms,
        "outcome": report.outcome.value,
        "detail": report.detail,
        "primary": report.triangle.primary,
        "triangle": list(report.triangle.currencies),
        "symbols": list(report.triangle.symbols),
        "predicted_bps": evaluation.profit_bps,
        "predicted_volume": str(evaluation.volume),
        "predicted_final": str(evaluation.final),
        "effective_bps": report.effective_bps,
        "spent": str(report.spent),
        "returned": str(report.returned),
        "profit": None if profit is None else str(profit),
        "held": {currency: str(amount) for currency, amount in report.held.items()},
        "signal_ns": report.signal_ns,
        "legs": [_run_row(label, run) for label, run in report.runs],
        "books": [
            _book_row(symbol, book)
            for symbol, book in zip(report.triangle.symbols, report.books, strict=True)
        ],
    }


def _run_row(label: str, run: LegRun) -> dict[str, Any]:
    leg, times, avg_px = run.leg, run.times, run.avg_px
    return {
        "label": label,
        "symbol": leg.symbol,
        "side": leg.side.value,
        "source": leg.source,
        "target": leg.target,
        "fired_ns": times.fired_ns,
        "acked_ns": times.acked_ns,
        "filled_ns": times.filled_ns,
        "latency_ns": times.latency_ns,
        "size": str(run.size),
        "avg_px": None if avg_px is None else str(avg_px),
        "spent": str(run.spent),
        "received": str(run.received),
        "fees": {currency: str(fee) for currency, fee in run.fees.items()},
        "fills": [_fill_row(fill) for fill in run.fills],
    }


def _fill_row(fill: Fill) -> dict[str, Any]:
    return {
        "oid": fill.oid,
        "tid": fill.tid,
        "cloid": fill.cloid,
        "time_ms": fill.time_ms,
        "px": fill.px,
        "sz": fill.sz,
        "fee": fill.fee,
        "fee_token": fill.fee_token,
    }


def _book_row(symbol: str, book: BookView) -> dict[str, Any]:
    return {
        "symbol": symbol,
        "time_ms": book.time_ms,
        "continuous": book.continuous,
        "ask": list(book.asks[0][:2]) if book.asks else None,
        "bid": list(book.bids[0][:2]) if book.bids else None,
    }


# --- numbers -----------------------------------------------------------------------------------


def _exact(value: float | Decimal | int) -> Decimal:
    return Decimal(repr(value)) if isinstance(value, float) else Decimal(value)


def _sum(values: Iterable[Decimal]) -> Decimal:
    total = _ZERO
    for value in values:
        total = _EXACT.add(total, value)
    return total
