"""What risk and ops read of the trading subtree, and the one thing they do to it.

The trading subtree (``mm.strategies.runner.Trading``, around whichever strategy
``strategy.kind`` selects) sits beside risk and ops, which must not import it: strategies never
know risk or ops, and risk and ops never know a strategy's code. They need a narrow view of it
instead: the positions and marks the portfolio keeps, the strategy's symbols, position limit,
market stress and last decisions, the status it shows, and, for the kill switch's recovery,
adopting the venue's positions. ``Trading`` satisfies these protocols structurally.

Pure declarations: no state, no I/O, nothing that can fail.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol

from mm.model import AccountState
from mm.portfolio import PositionBook


class StrategyView(Protocol):
    """What risk and ops read of the running strategy."""

    @property
    def symbols(self) -> tuple[str, ...]: ...

    @property
    def max_position_usd(self) -> float: ...

    def cascade_severity(self, now: float) -> float: ...

    def decisions(self) -> Mapping[str, Any]: ...


class TradingView(Protocol):
    """What risk and ops read of the trading subtree, and the positions they may reset."""

    @property
    def strategy(self) -> StrategyView: ...

    @property
    def positions(self) -> PositionBook: ...

    def marks(self) -> dict[str, float]:
        """The latest mark per traded symbol (those with a book)."""
        ...

    def status(self, stopped: str | None = None) -> dict[str, Any]: ...

    def adopt_venue_positions(self, account: AccountState) -> None:
        """Every traded symbol's position becomes the venue's (after a kill switch's cancel)."""
        ...
