"""The daily report: what the journal says we traded on one UTC day, per symbol and in total.

``read_day`` (blocking, read-only) takes one day's ``fill``, ``markout``, ``funding`` and
``triangle`` entries out of the journal; ``build_report`` (pure) turns them into figures;
``render_text`` and ``to_json`` show them to an operator and to tools. A fill and a funding
payment belong to the day of their venue time (``time_ms``), a markout to the day of its fill
(``fill_time_ms``), a triangle to the day its report was made (``time_ms``). Realized PnL is
the venue's own figure (``closed_pnl``); funding is what the hourly funding payments brought in
(negative: paid); net PnL is realized PnL less fees plus funding.

Triangular arbitrage's triangles (the rows its triangle desk journals, read here as plain JSON:
ops does not import the strategies) make a section of their own when the day has any
(``TriangleStats``): how many ended in each outcome, the hit rate (FILLED of all), predicted
against realised bps (the mean predicted bps of all; the mean effective bps and the mean
slippage, effective less predicted, of those that brought capital back, ``measured``), the
profit per primary quote currency (exact decimals, as journaled), and what was left held.

Fails: ``read_day`` raises ``FileNotFoundError`` for a missing journal and ``sqlite3.Error``
for an unreadable one; ``build_report`` never raises on an entry: one it cannot read is counted
as malformed and skipped.
"""

from __future__ import annotations

import datetime
import math
import sqlite3
from collections.abc import Iterable, Mapping, Sequence
from decimal import Context, Decimal, InvalidOperation
from pathlib import Path
from typing import Any

import attr
import attrs
import orjson

from mm.model import (
    Fill,
    Funding,
    OrderId,
    Side,
    TradeId,
    journaled_order_id,
    journaled_trade_id,
)

DEFAULT_HORIZONS_MS: tuple[int, ...] = (1_000, 5_000, 30_000)
TOTAL = "TOTAL"
# How a triangle ends (mm.strategies.triarb.reports.Outcome's values, in its order).
TRIANGLE_OUTCOMES: tuple[str, ...] = ("FILLED", "FAILED", "ABORTED", "UNWOUND")
_DAY_MS = 86_400_000
_EPOCH = datetime.date(1970, 1, 1)

_DAY_QUERY = """
    SELECT data FROM events
    WHERE kind = ? AND json_extract(data, ?) >= ? AND json_extract(data, ?) < ?
    ORDER BY id
"""


@attrs.frozen
class Markout:
    """One journaled markout: ``bps`` is signed so that positive is in our favour."""

    coin: str
    horizon_ms: int
    bps: float
    fill_time_ms: int
    tid: TradeId | None = None  # when the journal carries it, duplicates are dropped by it


@attrs.frozen
class MarkoutStat:
    horizon_ms: int
    count: int
    mean_bps: float


@attrs.frozen
class SymbolReport:
    coin: str
    fills: int
    maker_fills: int
    taker_fills: int
    buy_sz: float
    sell_sz: float
    buy_notional: float  # USD: sum of px * sz
    sell_notional: float
    fees: float
    funding: float  # USD received from funding payments (negative: paid)
    realized_pnl: float  # sum of the venue's closed_pnl
    net_pnl: float  # realized_pnl - fees + funding
    position_change: float  # buy_sz - sell_sz
    vwap_buy: float | None  # None when nothing was bought
    vwap_sell: float | None
    markouts: tuple[MarkoutStat, ...]  # by horizon


@attrs.frozen
class Totals:
    """All symbols together: only figures in USD or counts (coin sizes do not add up)."""

    fills: int
    maker_fills: int
    taker_fills: int
    buy_notional: float
    sell_notional: float
    fees: float
    funding: float
    realized_pnl: float
    net_pnl: float
    markouts: tuple[MarkoutStat, ...]  # pooled over symbols
    funding_payments: int = 0


@attrs.frozen
class Triangle:
    """One journaled triangle, the figures the report takes from its row."""

    corr: str
    time_ms: int
    signal_ns: int
    outcome: str  # one of TRIANGLE_OUTCOMES
    primary: str
    predicted_bps: float
    effective_bps: float | None  # None: no capital came back to measure (see the module)
    profit: Decimal | None  # in the primary; None while capital is still out
    held: tuple[tuple[str, Decimal], ...]  # currency, amount left (nonzero), as journaled


@attrs.frozen
class PrimaryStat:
    """A primary quote currency's triangles: how many, how many closed, and their profit."""

    primary: str
    triangles: int
    closed: int  # with a profit (the capital back in the primary)
    profit: Decimal  # the sum of the closed ones' profits, exact


@attrs.frozen
class TriangleStats:
    """The day's triangles (see the module)."""

    count: int
    outcomes: tuple[tuple[str, int], ...]  # every outcome in TRIANGLE_OUTCOMES' order
    hit_rate: float  # FILLED / count
    mean_predicted_bps: float
    measured: int  # triangles with an effective bps
    mean_effective_bps: float | None  # None when none was measured
    mean_slippage_bps: float | None  # effective - predicted, of the measured ones
    primaries: tuple[PrimaryStat, ...]  # by primary
    held_triangles: int  # triangles that left something held
    held: tuple[tuple[str, Decimal], ...]  # what they left, summed by currency (nonzero)


@attrs.frozen
class DailyReport:
    day: datetime.date
    symbols: tuple[SymbolReport, ...]  # by coin
    total: Totals
    duplicates: int  # fills, fundings (and markouts with a tid) seen more than once, counted once
    malformed: int  # entries that are not a fill, markout, funding or triangle, skipped
    fee_tokens: tuple[str, ...]  # tokens the fees were charged in
    triangles: TriangleStats | None = None  # None: the day has no triangle


def day_bounds_ms(day: datetime.date) -> tuple[int, int]:
    """The UTC day as [start, end) in epoch milliseconds."""
    start = (day - _EPOCH).days * _DAY_MS
    return start, start + _DAY_MS


Entries = list[dict[str, Any]]


def read_day(path: Path, day: datetime.date) -> tuple[Entries, Entries, Entries, Entries]:
    """The fill, markout, funding and triangle entries of one UTC day, in journal order.
    Blocking, read-only."""
    if not path.is_file():
        raise FileNotFoundError(f"journal {path} not found")
    start, end = day_bounds_ms(day)
    conn = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)
    try:
        fills = _query(conn, "fill", "$.time_ms", start, end)
        markouts = _query(conn, "markout", "$.fill_time_ms", start, end)
        fundings = _query(conn, "funding", "$.time_ms", start, end)
        triangles = _query(conn, "triangle", "$.time_ms", start, end)
    finally:
        conn.close()
    return fills, markouts, fundings, triangles


def _query(
    conn: sqlite3.Connection, kind: str, time_path: str, start: int, end: int
) -> list[dict[str, Any]]:
    rows = conn.execute(_DAY_QUERY, (kind, time_path, start, time_path, end))
    return [orjson.loads(data) for (data,) in rows]


# A side as journaled: mm's word, or the venue's letter that journals written before the model
# had its own words hold (Hyperliquid's "B" and "A": mm traded there only).
JOURNALED_SIDES: Mapping[str, Side] = {
    **{side.value: side for side in Side},
    "B": Side.BUY,
    "A": Side.SELL,
}


def parse_side(value: Any) -> Side:
    """A journaled side; ``ValueError`` naming it when it is none of ``JOURNALED_SIDES``."""
    side = JOURNALED_SIDES.get(value) if isinstance(value, str) else None
    if side is None:
        raise ValueError(f"side {value!r} is not one of {sorted(JOURNALED_SIDES)}")
    return side


def parse_fill(data: Mapping[str, Any]) -> Fill:
    """A journaled fill (``attrs.asdict(Fill)`` with plain enum values) back into a Fill; a
    journal written before sides had mm's own words reads as well."""
    crossed = data["crossed"]
    if not isinstance(crossed, bool):
        raise TypeError(f"crossed is {type(crossed).__name__}, not bool")
    cloid = data.get("cloid")
    return Fill(
        coin=str(data["coin"]),
        side=parse_side(data["side"]),
        px=float(data["px"]),
        sz=float(data["sz"]),
        time_ms=int(data["time_ms"]),
        oid=journaled_order_id(data["oid"]),
        tid=journaled_trade_id(data["tid"]),
        cloid=None if cloid is None else str(cloid),
        fee=float(data["fee"]),
        fee_token=str(data.get("fee_token", "USDC")),
        crossed=crossed,
        start_position=float(data.get("start_position", 0.0)),
        direction=str(data.get("direction", "")),
        closed_pnl=float(data["closed_pnl"]),
        hash=str(data.get("hash", "")),
    )


def parse_funding(data: Mapping[str, Any]) -> Funding:
    """A journaled funding payment (``attrs.asdict(Funding)``) back into a Funding."""
    return Funding(
        coin=str(data["coin"]),
        usdc=_finite(data["usdc"]),
        szi=_finite(data["szi"]),
        funding_rate=_finite(data["funding_rate"]),
        time_ms=int(data["time_ms"]),
    )


def _finite(value: Any) -> float:
    number = float(value)
    if not math.isfinite(number):
        raise ValueError(f"not a finite number: {value!r}")
    return number


def parse_markout(data: Mapping[str, Any]) -> Markout:
    tid = data.get("tid")
    return Markout(
        coin=str(data["coin"]),
        horizon_ms=int(data["horizon_ms"]),
        bps=float(data["bps"]),
        fill_time_ms=int(data["fill_time_ms"]),
        tid=None if tid is None else journaled_trade_id(tid),
    )


_MALFORMED = (KeyError, TypeError, ValueError, InvalidOperation)
# Sums of journaled decimal amounts, exact (they have a few dozen digits at most).
_EXACT = Context(prec=400)


def _decimal(value: Any) -> Decimal:
    """A journaled amount: a decimal string (or an integer), finite."""
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise TypeError(f"amount {value!r} is not a decimal string")
    number = Decimal(value)
    if not number.is_finite():
        raise ValueError(f"not a finite amount: {value!r}")
    return number


def parse_triangle(data: Mapping[str, Any]) -> Triangle:
    """A journaled triangle (``mm.strategies.triarb.reports.journal_row``'s row), the figures
    the report takes from it; ``ValueError``/``TypeError``/``KeyError`` when it is not one (an
    unknown outcome, a FILLED or UNWOUND one without a profit, an effective bps without one)."""
    outcome = data["outcome"]
    if outcome not in TRIANGLE_OUTCOMES:
        raise ValueError(f"outcome {outcome!r} is not one of {TRIANGLE_OUTCOMES}")
    primary = data["primary"]
    if not isinstance(primary, str) or not primary:
        raise TypeError(f"primary {primary!r} is not a currency")
    raw_profit, raw_effective, raw_held = data["profit"], data["effective_bps"], data["held"]
    profit = None if raw_profit is None else _decimal(raw_profit)
    effective = None if raw_effective is None else _finite(raw_effective)
    if profit is None and (outcome in ("FILLED", "UNWOUND") or effective is not None):
        raise ValueError(f"a {outcome} triangle without a profit")
    if not isinstance(raw_held, Mapping):
        raise TypeError(f"held is {type(raw_held).__name__}, not a mapping")
    held = tuple((str(currency), _decimal(amount)) for currency, amount in raw_held.items())
    return Triangle(
        corr=str(data["corr"]),
        time_ms=int(data["time_ms"]),
        signal_ns=int(data["signal_ns"]),
        outcome=outcome,
        primary=primary,
        predicted_bps=_finite(data["predicted_bps"]),
        effective_bps=effective,
        profit=profit,
        held=tuple((currency, amount) for currency, amount in held if amount != 0),
    )


def _exact_sum(amounts: Iterable[Decimal]) -> Decimal:
    total = Decimal(0)
    for amount in amounts:
        total = _EXACT.add(total, amount)
    return total


def _decimal_sums(pairs: Iterable[tuple[str, Decimal]]) -> dict[str, Decimal]:
    sums: dict[str, Decimal] = {}
    for key, amount in pairs:
        sums[key] = _EXACT.add(sums.get(key, Decimal(0)), amount)
    return sums


def triangle_stats(triangles: Sequence[Triangle]) -> TriangleStats | None:
    """The figures of ``triangles`` (None when there are none): sums are exact (``math.fsum``,
    decimals), so they do not depend on the triangles' order."""
    if not triangles:
        return None
    count = len(triangles)
    outcomes = tuple((o, sum(1 for t in triangles if t.outcome == o)) for o in TRIANGLE_OUTCOMES)
    measured = [
        (t.effective_bps, t.predicted_bps) for t in triangles if t.effective_bps is not None
    ]
    by_primary: dict[str, list[Triangle]] = {}
    for triangle in triangles:
        by_primary.setdefault(triangle.primary, []).append(triangle)
    primaries = tuple(
        PrimaryStat(
            primary=primary,
            triangles=len(group),
            closed=sum(1 for t in group if t.profit is not None),
            profit=_exact_sum(t.profit for t in group if t.profit is not None),
        )
        for primary, group in sorted(by_primary.items())
    )
    left = [t for t in triangles if t.held]
    held = _decimal_sums(pair for t in left for pair in t.held)
    return TriangleStats(
        count=count,
        outcomes=outcomes,
        hit_rate=dict(outcomes)["FILLED"] / count,
        mean_predicted_bps=math.fsum(t.predicted_bps for t in triangles) / count,
        measured=len(measured),
        mean_effective_bps=(
            math.fsum(effective for effective, _ in measured) / len(measured) if measured else None
        ),
        mean_slippage_bps=(
            math.fsum(effective - predicted for effective, predicted in measured) / len(measured)
            if measured
            else None
        ),
        primaries=primaries,
        held_triangles=len(left),
        held=tuple(sorted((c, amount) for c, amount in held.items() if amount != 0)),
    )


def build_report(
    day: datetime.date,
    fills: Iterable[Mapping[str, Any]],
    markouts: Iterable[Mapping[str, Any]],
    fundings: Iterable[Mapping[str, Any]] = (),
    triangles: Iterable[Mapping[str, Any]] = (),
) -> DailyReport:
    """Per-symbol and total figures of the entries whose venue time falls on ``day`` (UTC),
    and the figures of the day's triangles.

    Fills are counted once per (tid, oid); funding payments once per (coin, time) (the venue
    pays a position once an hour); markouts once per (coin, tid, horizon) when they carry a
    tid; triangles once per (corr, time, signal time) (a correlation id alone starts again at
    each run). Entries of other days are ignored; malformed entries are counted and skipped.
    Sums are exact-rounded (``math.fsum``) or exact (decimals), so the report does not depend
    on entry order.
    """
    start, end = day_bounds_ms(day)
    malformed = 0
    duplicates = 0
    seen_fills: set[tuple[TradeId, OrderId]] = set()
    fills_by_coin: dict[str, list[Fill]] = {}
    for data in fills:
        try:
            fill = parse_fill(data)
        except _MALFORMED:
            malformed += 1
            continue
        if not start <= fill.time_ms < end:
            continue
        if (fill.tid, fill.oid) in seen_fills:
            duplicates += 1
            continue
        seen_fills.add((fill.tid, fill.oid))
        fills_by_coin.setdefault(fill.coin, []).append(fill)

    seen_markouts: set[tuple[str, TradeId, int]] = set()
    markouts_by_coin: dict[str, list[Markout]] = {}
    for data in markouts:
        try:
            markout = parse_markout(data)
        except _MALFORMED:
            malformed += 1
            continue
        if not start <= markout.fill_time_ms < end:
            continue
        if markout.tid is not None:
            key = (markout.coin, markout.tid, markout.horizon_ms)
            if key in seen_markouts:
                duplicates += 1
                continue
            seen_markouts.add(key)
        markouts_by_coin.setdefault(markout.coin, []).append(markout)

    seen_fundings: set[tuple[str, int]] = set()
    fundings_by_coin: dict[str, list[Funding]] = {}
    for data in fundings:
        try:
            funding = parse_funding(data)
        except _MALFORMED:
            malformed += 1
            continue
        if not start <= funding.time_ms < end:
            continue
        if (funding.coin, funding.time_ms) in seen_fundings:
            duplicates += 1
            continue
        seen_fundings.add((funding.coin, funding.time_ms))
        fundings_by_coin.setdefault(funding.coin, []).append(funding)

    seen_triangles: set[tuple[str, int, int]] = set()
    day_triangles: list[Triangle] = []
    for data in triangles:
        try:
            triangle = parse_triangle(data)
        except _MALFORMED:
            malformed += 1
            continue
        if not start <= triangle.time_ms < end:
            continue
        identity = (triangle.corr, triangle.time_ms, triangle.signal_ns)
        if identity in seen_triangles:
            duplicates += 1
            continue
        seen_triangles.add(identity)
        day_triangles.append(triangle)

    coins = sorted(fills_by_coin.keys() | markouts_by_coin.keys() | fundings_by_coin.keys())
    symbols = tuple(
        _symbol(
            coin,
            fills_by_coin.get(coin, []),
            markouts_by_coin.get(coin, []),
            fundings_by_coin.get(coin, []),
        )
        for coin in coins
    )
    all_fills = [fill for coin in coins for fill in fills_by_coin.get(coin, [])]
    all_markouts = [m for coin in coins for m in markouts_by_coin.get(coin, [])]
    all_fundings = [f for coin in coins for f in fundings_by_coin.get(coin, [])]
    return DailyReport(
        day=day,
        symbols=symbols,
        total=_totals(all_fills, all_markouts, all_fundings),
        duplicates=duplicates,
        malformed=malformed,
        fee_tokens=tuple(sorted({fill.fee_token for fill in all_fills})),
        triangles=triangle_stats(day_triangles),
    )


def _markout_stats(markouts: Sequence[Markout]) -> tuple[MarkoutStat, ...]:
    by_horizon: dict[int, list[float]] = {}
    for markout in markouts:
        by_horizon.setdefault(markout.horizon_ms, []).append(markout.bps)
    return tuple(
        MarkoutStat(horizon, len(values), math.fsum(values) / len(values))
        for horizon, values in sorted(by_horizon.items())
    )


def _fsum(fills: Iterable[Fill], field: str) -> float:
    return math.fsum(getattr(fill, field) for fill in fills)


def _symbol(
    coin: str, fills: Sequence[Fill], markouts: Sequence[Markout], fundings: Sequence[Funding]
) -> SymbolReport:
    buys = [fill for fill in fills if fill.side is Side.BUY]
    sells = [fill for fill in fills if fill.side is Side.SELL]
    buy_sz, sell_sz = _fsum(buys, "sz"), _fsum(sells, "sz")
    buy_notional = math.fsum(fill.px * fill.sz for fill in buys)
    sell_notional = math.fsum(fill.px * fill.sz for fill in sells)
    fees, realized = _fsum(fills, "fee"), _fsum(fills, "closed_pnl")
    funding = math.fsum(payment.usdc for payment in fundings)
    taker = sum(1 for fill in fills if fill.crossed)
    return SymbolReport(
        coin=coin,
        fills=len(fills),
        maker_fills=len(fills) - taker,
        taker_fills=taker,
        buy_sz=buy_sz,
        sell_sz=sell_sz,
        buy_notional=buy_notional,
        sell_notional=sell_notional,
        fees=fees,
        funding=funding,
        realized_pnl=realized,
        net_pnl=realized - fees + funding,
        position_change=math.fsum(fill.side.sign * fill.sz for fill in fills),
        vwap_buy=buy_notional / buy_sz if buy_sz > 0 else None,
        vwap_sell=sell_notional / sell_sz if sell_sz > 0 else None,
        markouts=_markout_stats(markouts),
    )


def _totals(
    fills: Sequence[Fill], markouts: Sequence[Markout], fundings: Sequence[Funding]
) -> Totals:
    taker = sum(1 for fill in fills if fill.crossed)
    fees, realized = _fsum(fills, "fee"), _fsum(fills, "closed_pnl")
    funding = math.fsum(payment.usdc for payment in fundings)
    return Totals(
        fills=len(fills),
        maker_fills=len(fills) - taker,
        taker_fills=taker,
        buy_notional=math.fsum(f.px * f.sz for f in fills if f.side is Side.BUY),
        sell_notional=math.fsum(f.px * f.sz for f in fills if f.side is Side.SELL),
        fees=fees,
        funding=funding,
        realized_pnl=realized,
        net_pnl=realized - fees + funding,
        markouts=_markout_stats(markouts),
        funding_payments=len(fundings),
    )


# --- presentation --------------------------------------------------------------------------------


def to_json(report: DailyReport) -> dict[str, Any]:
    """Plain JSON-ready data: the report's fields, the day as ISO text, None where no value."""

    def serialize(_inst: Any, _field: Any, value: Any) -> Any:
        if isinstance(value, datetime.date):
            return value.isoformat()
        if isinstance(value, Decimal):  # exact amounts stay exact: plain decimal strings
            return _amount(value)
        return value

    data: dict[str, Any] = attr.asdict(
        report, retain_collection_types=False, value_serializer=serialize
    )
    triangles = data["triangles"]
    if triangles is not None:  # (name, value) pairs read as objects
        for name in ("outcomes", "held"):
            triangles[name] = dict(triangles[name])
    return data


def horizon_label(horizon_ms: int) -> str:
    return f"{horizon_ms // 1000}s" if horizon_ms % 1000 == 0 else f"{horizon_ms}ms"


def _plain(text: str) -> str:
    """Drop the sign of a figure that rounds to zero ("-0.00" -> "0.00")."""
    return text.lstrip("+-") if not text.strip("+-0.,") else text


def _qty(value: float | None) -> str:
    """Sizes and prices: as many decimals as they have (up to 8), thousands separated."""
    if value is None:
        return "-"
    text = f"{value:,.8f}".rstrip("0").rstrip(".")
    return _plain(text)


def _usd(value: float, digits: int) -> str:
    return _plain(f"{value:,.{digits}f}")


def _markout_cell(stats: Sequence[MarkoutStat], horizon_ms: int) -> str:
    for stat in stats:
        if stat.horizon_ms == horizon_ms:
            return f"{_plain(f'{stat.mean_bps:+.2f}')} ({stat.count})"
    return "-"


def _table(
    header: Sequence[str], rows: Sequence[Sequence[str]], total: Sequence[str] | None = None
) -> list[str]:
    """First column left-aligned, the rest right-aligned; a rule under the header and over
    total (when there is one)."""
    totals = [] if total is None else [total]
    widths = [max(len(row[i]) for row in [header, *rows, *totals]) for i in range(len(header))]

    def line(cells: Sequence[str]) -> str:
        first = cells[0].ljust(widths[0])
        rest = (cell.rjust(width) for cell, width in zip(cells[1:], widths[1:], strict=True))
        return "  ".join([first, *rest]).rstrip()

    rule = "  ".join("-" * width for width in widths)
    lines = [line(header), rule, *(line(row) for row in rows)]
    return lines if total is None else [*lines, rule, line(total)]


def render_text(report: DailyReport) -> str:
    """Aligned tables for a terminal: volume, then PnL (USD: fees, funding, realized, net) with
    markouts (mean bps, count); then the triangles, when the day has any."""
    total = report.total
    lines = [f"mm daily report {report.day.isoformat()} (UTC)"]
    if total.fills == 0:
        lines.append("no fills")
    else:
        lines.append(
            f"fills {total.fills} (maker {total.maker_fills}, taker {total.taker_fills})"
            f"  volume {_usd(total.buy_notional + total.sell_notional, 2)} USD"
            f"  net pnl {_usd(total.net_pnl, 4)} USD"
        )
    if total.funding_payments:
        lines.append(
            f"funding {_usd(total.funding, 4)} USD ({total.funding_payments} payments)"
            + ("" if total.fills else f"  net pnl {_usd(total.net_pnl, 4)} USD")
        )
    if report.duplicates or report.malformed:
        lines.append(
            f"skipped: {report.duplicates} duplicate, {report.malformed} malformed entries"
        )
    if len(report.fee_tokens) > 1 or any(token != "USDC" for token in report.fee_tokens):
        lines.append(
            f"note: fees are charged in {', '.join(report.fee_tokens)}; "
            "fee and net figures add them as if they were USD"
        )
    if report.symbols:
        lines += _symbol_tables(report)
    if report.triangles is not None:
        lines += ["", *_triangle_lines(report.triangles)]
    return "\n".join(lines) + "\n"


def _symbol_tables(report: DailyReport) -> list[str]:
    total = report.total
    volume_header = [
        "coin", "fills", "maker", "taker", "buy sz", "vwap buy", "buy USD",
        "sell sz", "vwap sell", "sell USD", "net pos",
    ]  # fmt: skip
    volume_rows = [
        [
            s.coin,
            str(s.fills),
            str(s.maker_fills),
            str(s.taker_fills),
            _qty(s.buy_sz),
            _qty(s.vwap_buy),
            _usd(s.buy_notional, 2),
            _qty(s.sell_sz),
            _qty(s.vwap_sell),
            _usd(s.sell_notional, 2),
            _qty(s.position_change),
        ]
        for s in report.symbols
    ]
    volume_total = [
        TOTAL,
        str(total.fills),
        str(total.maker_fills),
        str(total.taker_fills),
        "-",
        "-",
        _usd(total.buy_notional, 2),
        "-",
        "-",
        _usd(total.sell_notional, 2),
        "-",
    ]
    horizons = sorted(set(DEFAULT_HORIZONS_MS) | {stat.horizon_ms for stat in total.markouts})
    pnl_header = [
        "coin", "fees", "funding", "realized", "net",
        *(f"markout {horizon_label(h)}" for h in horizons),
    ]  # fmt: skip

    def pnl_row(coin: str, figures: SymbolReport | Totals) -> list[str]:
        return [
            coin,
            _usd(figures.fees, 4),
            _usd(figures.funding, 4),
            _usd(figures.realized_pnl, 4),
            _usd(figures.net_pnl, 4),
            *(_markout_cell(figures.markouts, h) for h in horizons),
        ]

    lines = ["", *_table(volume_header, volume_rows, volume_total), ""]
    lines.append("pnl in USD; markouts: mean bps (count), positive = in our favour")
    lines += _table(pnl_header, [pnl_row(s.coin, s) for s in report.symbols], pnl_row(TOTAL, total))
    return lines


def _bps(value: float | None) -> str:
    return "-" if value is None else _plain(f"{value:+.2f}")


def _amount(value: Decimal) -> str:
    """An exact amount in its plain form: ``0.0699``, ``-0.0243``, ``0``."""
    return f"{value.normalize():f}" if value != 0 else "0"


def _triangle_lines(stats: TriangleStats) -> list[str]:
    """The triangles section: outcomes and hit rate, predicted against realised bps, profit per
    primary, what was left held."""
    outcomes = ", ".join(f"{outcome} {n}" for outcome, n in stats.outcomes)
    lines = [
        f"triangles {stats.count}: {outcomes}  hit rate {stats.hit_rate:.1%}",
        f"bps: predicted {_bps(stats.mean_predicted_bps)} mean;"
        f" effective {_bps(stats.mean_effective_bps)} and slippage"
        f" {_bps(stats.mean_slippage_bps)} mean of {stats.measured} measured",
    ]
    if stats.held_triangles:
        held = ", ".join(f"{_amount(amount)} {currency}" for currency, amount in stats.held)
        lines.append(
            f"held: {stats.held_triangles} triangle{'s' if stats.held_triangles != 1 else ''}"
            f" left {held or 'nothing net'}"
        )
    else:
        lines.append("held: none left")
    rows = [
        [p.primary, str(p.triangles), str(p.closed), _amount(p.profit)] for p in stats.primaries
    ]
    return [*lines, *_table(["primary", "triangles", "closed", "profit"], rows)]
