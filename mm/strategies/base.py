"""The strategy plug-in's contract: what a strategy is given, what it is told, what it returns.

A strategy is plain logic driven by the generic strategy task (``mm.strategies.runner``): it is
told of books, trades, its fills and their markouts, and asked to ``decide`` the executor's
commands (``mm.execution.commands``: quote ladders, multi-leg groups). It reads the permission
board, the portfolio and the instruments it was built with, and the ``MarketView`` the task
hands each decision; it never writes them, sends nothing itself and does no I/O, so an
exception in it is a crash of the strategy task (the supervisor restarts it, and its orders
are canceled on the way out).
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping, Sequence
from typing import Any, Protocol, TypeAlias, runtime_checkable

import attrs
from prometheus_client import CollectorRegistry

from mm.book import Book
from mm.execution.commands import Command
from mm.execution.permissions import PermissionBoard
from mm.model import Fill, Instrument, Trade
from mm.portfolio import Portfolio
from mm.strategies.triarb.signals import Signal
from mm.venues.base import SpotTerms

# What a strategy's decision hands out: commands for the executor (quote ladders, multi-leg
# groups), and the triangles triangular arbitrage found, for its executor slots.
Decision: TypeAlias = Command | Signal


def _no_spot_terms() -> SpotTerms | None:
    return None


@attrs.frozen
class StrategyContext:
    """What a strategy reads, handed to it when it is built (it writes none of it)."""

    permissions: PermissionBoard  # "may I send?": its owners write it
    portfolio: Portfolio  # positions, PnL and balances from every fill (read only)
    instruments: Callable[[str], Instrument]  # a symbol's order grid (the venue must be up)
    live_orders: Callable[[str], int]  # how many of a symbol's orders are live at the venue
    registry: CollectorRegistry  # for the strategy's own metrics
    # The venue client's taker fees, funds increments and test orders, when it is a spot
    # venue's and it is up (None: not one, or not up).
    spot: Callable[[], SpotTerms | None] = _no_spot_terms


@attrs.frozen
class MarketView:
    """The venue's state as the task sees it at one decision. ``headroom`` (the API budget
    left, 0..1) may be given as a function, asked once when a strategy first reads it: a
    strategy that never reads it (triangular arbitrage) costs the task no reading of the
    limiter."""

    in_sync: bool  # the user stream agrees with the venue (else nothing may rest)
    stale: Collection[str]  # symbols whose book the feed flags as stale
    # The API budget left, 0..1, or the function that reads it (``headroom`` reads it once).
    _headroom: float | Callable[[], float] = attrs.field(alias="headroom")
    # The symbols with news since the last decision (a new book, a trade, a fill, the executor
    # asking), in the order of ``symbols``: only these need evaluating. None: every symbol (the
    # timer of ``wake_in``, a change of the permission board, of sync or of the stale set).
    changed: tuple[str, ...] | None = None
    # Symbols to quote afresh now even if no requote is due: their orders wait for the order
    # budget (a plan is made again on every book of theirs, so that the one sent when tokens
    # come is fresh), or the executor found the plan it held too old to send.
    requote: frozenset[str] = frozenset()

    @property
    def headroom(self) -> float:
        """The API budget left, 0..1 (the function given is asked once, at the first read)."""
        headroom = self._headroom
        if callable(headroom):
            headroom = headroom()
            object.__setattr__(self, "_headroom", headroom)  # the same value from now on
        return headroom


class Strategy(Protocol):
    """A trading strategy, selected by ``strategy.kind`` (``mm.strategies.registry``)."""

    @property
    def symbols(self) -> tuple[str, ...]:
        """The symbols it trades (the task follows their books and routes their fills)."""
        ...

    @property
    def max_position_usd(self) -> float:
        """Its inventory limit as notional, which risk's velocity and liquidation checks scale."""
        ...

    def open(self, now: float) -> None:
        """The venue is up (its instruments readable): start afresh, at each run of the task."""

    def on_book(self, book: Book, now: float) -> None:
        """A new book of one of its symbols (only a book it has not seen)."""

    def on_trade(self, trade: Trade, now: float) -> None:
        """A trade on the tape of one of its symbols."""

    def on_fill(self, fill: Fill, now: float) -> None:
        """One of its fills, after the portfolio applied it."""

    def on_markout(self, coin: str, horizon_ms: int, bps: float, now: float) -> None:
        """A fill's markout at ``horizon_ms`` completed (the portfolio measures it)."""

    def decide(self, now: float, view: MarketView) -> Sequence[Decision]:
        """The commands to hand the executor now (none: nothing to change). Only the symbols
        of ``view.changed`` need evaluating (all when None); those of ``view.requote`` get a
        fresh ladder whatever their requote timers say."""
        ...

    def wake_in(self, now: float) -> float:
        """Seconds until it must decide again on every symbol even if no book arrives (asked
        after each decision)."""
        ...

    def cascade_severity(self, now: float) -> float:
        """The worst market stress it reads (0 calm; risk's cascade monitor judges it)."""
        ...

    def holding(self, coin: str) -> str | None:
        """Why ``coin`` is not traded now (stale data, out of sync), None when it is."""
        ...

    def status(self, coin: str, now: float) -> Mapping[str, Any]:
        """Its view of ``coin`` for ``/status``: gate, prices, signals."""
        ...

    def decisions(self) -> Mapping[str, Any]:
        """What it last decided, per symbol, for incident dumps."""
        ...


@runtime_checkable
class AfterDecision(Protocol):
    """A strategy with bookkeeping of its decisions (gauges, counters, log lines) that delays no
    order: the strategy task calls ``after_decision`` once what ``decide`` returned is handed to
    the executor and the executor's slots have had their turn to send it. Nothing it does may
    feed the next decision's values but what ``decide`` would have computed itself."""

    def after_decision(self, now: float) -> None:
        """The bookkeeping of the decision made at ``now``."""
