"""What risk and ops read of the trading subtree.

The trading subtree (``mm.strategies.runner.Trading``, around whichever strategy
``strategy.kind`` selects) sits beside risk and ops, which must not import it: strategies never
know risk or ops, and risk and ops never know a strategy's code. They need a narrow view of it
instead: the marks of its books, the strategy's symbols, position limit, market stress and
last decisions, and the status it shows. ``Trading`` satisfies these protocols structurally.
A strategy whose holdings are the account's balances per currency, not a position per symbol
(triangular arbitrage on spot pairs), is also a ``HoldsBalances``: the service's status shows
those balances beside its trading status.
Positions, and adopting the venue's, are the portfolio's (``mm.portfolio.Portfolio``), which
risk and ops are handed themselves.

Pure declarations: no state, no I/O, nothing that can fail.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol, runtime_checkable


class StrategyView(Protocol):
    """What risk and ops read of the running strategy."""

    @property
    def symbols(self) -> tuple[str, ...]: ...

    @property
    def max_position_usd(self) -> float: ...

    def cascade_severity(self, now: float) -> float: ...

    def decisions(self) -> Mapping[str, Any]: ...


class TradingView(Protocol):
    """What risk and ops read of the trading subtree."""

    @property
    def strategy(self) -> StrategyView: ...

    def marks(self) -> dict[str, float]:
        """The latest mark per traded symbol (those with a book)."""
        ...

    def status(self, stopped: str | None = None) -> dict[str, Any]: ...


@runtime_checkable
class HoldsBalances(Protocol):
    """A strategy that holds balances per currency rather than a position per symbol."""

    def balances(self, marks: Mapping[str, float]) -> Mapping[str, Any]:
        """Its balances per currency, valued at ``marks`` (the traded symbols' mids)."""
        ...
