"""What must hold after any run of the service against a simulated venue, whatever faults the
run met: each invariant a pure function of what the run left (the journal's rows, the venue's
own records), answering the ``Violation``s it finds, each under the invariant's name.

- ``FILLS_ONCE``: no fill lost or counted twice. The journal's fills equal the venue's fills
  of the account, by trade id: each of the venue's journaled exactly once, and none journaled
  that the venue does not have; and each of the venue's reached the portfolio (``fills_once``).
  A fill the portfolio never heard can leave positions right by chance (the lost fills of a
  market maker's equal sizes cancel out) or mended by a later re-read of the venue, so
  positions alone do not show it.
- ``BALANCES_AGREE``: the positions or balances mm holds equal the venue's, symbol by symbol or
  currency by currency, once in sync (``balances_agree``; ``tolerance``: the relative error a
  float sum of decimal amounts may carry).
- ``TRIANGLES_END``: every triangle started ends in one of its four outcomes, with one journal
  row each (``triangles_end``).
- ``TRIANGLE_MOVES``: what the account's balances moved by equals what the triangles' reported
  fills and fees say, currency by currency (``reported_moves`` sums the rows;
  ``triangle_moves`` compares).
- ``QUIET_AFTER_KILL``: nothing reaches the venue after a kill until a rearm, nor while the
  mode is HALT (``quiet_after_kill``: the venue's orders against the times the switch was
  tripped or the mode HALT).
- ``STALE_PULLED``: no resting quote on stale data past the pull limit (``pulled_when_stale``:
  the account's open orders at the venue, sampled while the market data has been stalled for
  longer than the limit and the cancels' way to the venue).
- ``STALE_FILLS``: no quote of mm's fills while its market data has been stale for longer
  than the pull limit (``stale_fills``: the account's maker fills at the venue against the
  spans when the data was stale past the limit and a cancel's way): the quotes that kept
  filling on stale data. The limit (``strategy.max_book_age_s``, the time a cancel takes to
  land) is the tolerance: within it a fill is a fill on fresh-enough data.
- ``FLAT_AFTER_FLATTEN``: an operator's flatten leaves the account flat at the venue by its
  deadline (``session.flatten_deadline_s``), and flat until the operator rearms
  (``flat_after_flatten``: the account's positions at the venue sampled at the deadline and
  at the rearm, unless the kill switch or HALT stopped the flatten, as they must).
- ``NEVER_CRASHES``: the service never crashes on the venue's input (``never_crashed``: no
  child of the supervision tree ended with an error, restarted or not, all run long).
- ``ORDERS_KNOWN``: every open order of the account at the venue is known to mm, once the
  orders on their way have landed (``orders_known``: by client order id, which mm gives an
  order before it is sent).
- ``TRIPS_HAVE_CAUSE``: the kill switch trips, and the autonomy mode escalates, only for a
  reason that something done to the venue explains (``trips_have_cause``: each trip's or
  escalation's reason and time against the causes the run put into the venue's data, each a
  span of time and the reasons it may give: the operator's kill, a stalled feed, a market
  move, lost messages). A kill switch that trips by itself in a calm market breaks it.

Pure: no I/O, no clock. Fails: ``KeyError`` for a journal row without the fields a row of its
kind has, ``ValueError`` (``decimal``'s) for an amount that does not parse: a run's records
that are not the service's.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from decimal import Decimal
from typing import Any, Final

import attrs

__all__ = [
    "BALANCES_AGREE",
    "FILLS_ONCE",
    "FLAT_AFTER_FLATTEN",
    "NEVER_CRASHES",
    "ORDERS_KNOWN",
    "OUTCOMES",
    "QUIET_AFTER_KILL",
    "STALE_FILLS",
    "STALE_PULLED",
    "TRIANGLES_END",
    "TRIANGLE_MOVES",
    "TRIPS_HAVE_CAUSE",
    "Cause",
    "Violation",
    "balances_agree",
    "fills_once",
    "flat_after_flatten",
    "never_crashed",
    "orders_known",
    "pulled_when_stale",
    "quiet_after_kill",
    "reported_moves",
    "stale_fills",
    "triangle_moves",
    "triangles_end",
    "trips_have_cause",
]

FILLS_ONCE: Final = "no fill lost or counted twice"
BALANCES_AGREE: Final = "local positions and balances equal the venue's once in sync"
TRIANGLES_END: Final = "every triangle ends in one of its four outcomes"
TRIANGLE_MOVES: Final = "balance changes equal the reported fills and fees"
QUIET_AFTER_KILL: Final = "nothing is sent after a kill until a rearm, nor in HALT"
ORDERS_KNOWN: Final = "every open order on the venue is known to mm"
STALE_PULLED: Final = "no resting quote on stale data past the pull limit"
NEVER_CRASHES: Final = "the service never crashes on the venue's input"
STALE_FILLS: Final = "no quote fills on data stale past the pull limit"
FLAT_AFTER_FLATTEN: Final = "an operator's flatten leaves the account flat until a rearm"
TRIPS_HAVE_CAUSE: Final = "the kill switch and the autonomy modes trip only with a cause"
OUTCOMES: Final = frozenset({"FILLED", "FAILED", "ABORTED", "UNWOUND"})
# Shown of a long list in a violation's detail.
SHOWN: Final = 5


@attrs.frozen
class Violation:
    """An invariant that did not hold: its name, and what was found."""

    invariant: str
    detail: str

    def __str__(self) -> str:
        return f"{self.invariant}: {self.detail}"


def _some(items: Iterable[object]) -> str:
    listed = sorted(map(str, items))
    more = f" and {len(listed) - SHOWN} more" if len(listed) > SHOWN else ""
    return ", ".join(listed[:SHOWN]) + more


def fills_once(
    journaled: Iterable[str], venue: Iterable[str], heard: Iterable[str] | None = None
) -> list[Violation]:
    """The journal's fills (their trade ids, as many times as journaled) against the venue's
    fills of the account (its trade ids); ``heard``: the trade ids the portfolio applied (None:
    not known, it has forgotten some)."""
    counted = Counter(journaled)
    held = set(venue)
    violations = []
    lost = held - counted.keys()
    if lost:
        violations.append(Violation(FILLS_ONCE, f"{len(lost)} never journaled: {_some(lost)}"))
    unheard = held - set(heard) if heard is not None else set()
    if unheard:
        violations.append(
            Violation(FILLS_ONCE, f"{len(unheard)} never reached the portfolio: {_some(unheard)}")
        )
    twice = [tid for tid, n in counted.items() if n > 1]
    if twice:
        violations.append(
            Violation(FILLS_ONCE, f"{len(twice)} journaled more than once: {_some(twice)}")
        )
    invented = counted.keys() - held
    if invented:
        violations.append(
            Violation(FILLS_ONCE, f"{len(invented)} not the venue's: {_some(invented)}")
        )
    return violations


def balances_agree(
    local: Mapping[str, float],
    venue: Mapping[str, Decimal] | Mapping[str, float],
    *,
    tolerance: float = 1e-9,
) -> list[Violation]:
    """mm's position of each symbol, or balance of each currency, against the venue's (one
    missing on a side is zero there)."""
    off = []
    for currency in sorted(local.keys() | venue.keys()):
        mine, theirs = local.get(currency, 0.0), float(venue.get(currency, 0.0))
        if abs(mine - theirs) > tolerance * max(1.0, abs(theirs)):
            off.append(f"{currency} {mine!r} against {theirs!r}")
    if not off:
        return []
    return [Violation(BALANCES_AGREE, f"{len(off)} differ: {'; '.join(off)}")]


def triangles_end(rows: Sequence[Mapping[str, Any]], started: int) -> list[Violation]:
    """The journal's ``triangle`` rows against the number of triangles the slots started."""
    violations = []
    odd = [f"{row['corr']} {row['outcome']}" for row in rows if row["outcome"] not in OUTCOMES]
    if odd:
        violations.append(Violation(TRIANGLES_END, f"outcomes not of the four: {_some(odd)}"))
    if len(rows) != started:
        violations.append(
            Violation(TRIANGLES_END, f"{started} triangles started, {len(rows)} reported")
        )
    return violations


def reported_moves(
    rows: Iterable[Mapping[str, Any]], symbols: Mapping[str, tuple[str, str]]
) -> dict[str, Decimal]:
    """What the rows' fills moved the account by, per currency: each leg's base and quote by
    its side, and each fill's fee in its fee currency. ``symbols``: each pair's base and
    quote."""
    moves: defaultdict[str, Decimal] = defaultdict(Decimal)
    for row in rows:
        for leg in row["legs"]:  # (an unwind's legs among them)
            base, quote = symbols[leg["symbol"]]
            sign = 1 if leg["side"] == "buy" else -1
            for fill in leg["fills"]:
                size = Decimal(repr(fill["sz"]))
                moves[base] += sign * size
                moves[quote] -= sign * size * Decimal(repr(fill["px"]))
                moves[fill["fee_token"]] -= Decimal(repr(fill["fee"]))
    return dict(moves)


def triangle_moves(
    reported: Mapping[str, Decimal],
    before: Mapping[str, Decimal],
    after: Mapping[str, Decimal],
    *,
    tolerance: Decimal = Decimal("1e-12"),
) -> list[Violation]:
    """The venue's balances after the run less before, against the moves the reports say
    (``reported_moves``), each within ``tolerance`` (a fill's price and size, and its fee,
    are carried as floats in the rows)."""
    off = []
    for currency in sorted(reported.keys() | before.keys() | after.keys()):
        moved = after.get(currency, Decimal(0)) - before.get(currency, Decimal(0))
        said = reported.get(currency, Decimal(0))
        if abs(moved - said) > tolerance * max(Decimal(1), abs(moved)):
            off.append(f"{currency} moved {moved} against {said} reported")
    if not off:
        return []
    return [Violation(TRIANGLE_MOVES, f"{len(off)} currencies differ: {'; '.join(off)}")]


def quiet_after_kill(
    orders: Iterable[tuple[str, int]], tripped: Iterable[tuple[int, int | None]]
) -> list[Violation]:
    """The venue's orders of the account (id, when the venue took it, ms) against the spans
    the kill switch was tripped (from, until a rearm: None while it still is)."""
    spans = list(tripped)
    sent = [
        f"{oid} at {at}"
        for oid, at in orders
        if any(start <= at and (end is None or at < end) for start, end in spans)
    ]
    if not sent:
        return []
    return [Violation(QUIET_AFTER_KILL, f"{len(sent)} orders while tripped: {_some(sent)}")]


def orders_known(venue_open: Iterable[str | None], known: Callable[[str], bool]) -> list[Violation]:
    """The client order ids of the account's open orders at the venue (None: an order placed
    without one, which mm never does) against ``known``: whether mm tracks an order by that
    id (live, or ended: an order mm takes for ended while the venue holds it open is found by
    the positions and the audit, not here)."""
    unknown = [
        cloid or "(no client id)" for cloid in venue_open if cloid is None or not known(cloid)
    ]
    if not unknown:
        return []
    return [Violation(ORDERS_KNOWN, f"{len(unknown)} open at the venue, unknown: {_some(unknown)}")]


def pulled_when_stale(samples: Iterable[tuple[int, Sequence[str]]]) -> list[Violation]:
    """Each sample: when it was taken (ms), and the ids of the account's orders open at the
    venue then, the market data having been stale for longer than the pull limit."""
    resting = [f"{len(oids)} at {at} ({_some(oids)})" for at, oids in samples if oids]
    if not resting:
        return []
    return [
        Violation(STALE_PULLED, f"quotes resting in {len(resting)} samples: {'; '.join(resting)}")
    ]


def stale_fills(
    fills: Iterable[tuple[int, str, bool]], spans: Iterable[tuple[int, int]]
) -> list[Violation]:
    """The account's fills at the venue (time in ms, trade id, whether it was the taker)
    against the spans (ms) when its market data had been stale past the pull limit: a fill of
    a resting quote (not the taker) within one."""
    stale = list(spans)
    filled = [
        f"{tid} at {at}"
        for at, tid, taker in fills
        if not taker and any(start <= at <= end for start, end in stale)
    ]
    if not filled:
        return []
    return [Violation(STALE_FILLS, f"{len(filled)} quotes filled on stale data: {_some(filled)}")]


def flat_after_flatten(
    samples: Iterable[tuple[int, int, Mapping[str, float]]], stops: Iterable[int]
) -> list[Violation]:
    """The account's positions at the venue (symbol: size), each sampled at ``at`` ms after a
    flatten asked for at ``asked`` ms, as ``(asked, at, positions)``, against the times (ms)
    the kill switch tripped or the mode went to HALT (either stops a flatten, as it must): a
    position held at a sample with no stop since its flatten."""
    halts = sorted(stops)
    held = [
        f"{symbol} {size:g} at {at} (flatten asked at {asked})"
        for asked, at, positions in samples
        if not any(asked <= stop <= at for stop in halts)
        for symbol, size in sorted(positions.items())
        if size
    ]
    if not held:
        return []
    return [Violation(FLAT_AFTER_FLATTEN, f"{len(held)} positions held: {_some(held)}")]


def never_crashed(tree: Mapping[str, Any]) -> list[Violation]:
    """The supervision tree as ``mm status`` shows it (``name``, ``path``, ``restarts``,
    ``last_error``, ``children``): each child that ended with an error during the run."""
    crashed: list[str] = []

    def walk(node: Mapping[str, Any]) -> None:
        if node.get("last_error") is not None:
            crashed.append(f"{node.get('path', node.get('name'))}: {node['last_error']}")
        for child in node.get("children", ()):
            walk(child)

    walk(tree)
    if not crashed:
        return []
    return [Violation(NEVER_CRASHES, f"{len(crashed)} children crashed: {'; '.join(crashed)}")]


@attrs.frozen
class Cause:
    """Something the run did to the venue, from ``start`` to ``end`` (wall seconds), and the
    reasons (kill switch trips, autonomy escalations) it may give."""

    start: float
    end: float
    reasons: frozenset[str]
    what: str


def trips_have_cause(
    trips: Iterable[tuple[float, str]], causes: Iterable[Cause]
) -> list[Violation]:
    """Each trip (its wall time, its reason) against the causes: one whose span holds the trip's
    time and whose reasons hold the trip's."""
    held = list(causes)
    unexplained = [
        f"{reason} at {at:.3f}"
        for at, reason in trips
        if not any(c.start <= at <= c.end and reason in c.reasons for c in held)
    ]
    if not unexplained:
        return []
    return [
        Violation(
            TRIPS_HAVE_CAUSE,
            f"{len(unexplained)} with nothing in the venue's data to explain it: "
            + _some(unexplained),
        )
    ]
