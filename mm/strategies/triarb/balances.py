"""The venue's balances as its user stream pushes them, for a slot that takes a leg's input
from the venue's word (``triarb.await_balance``, the reference's balance override).

``BalanceBoard.on_account`` is told each ``AccountState`` the user stream pushes (a spot
venue's balances, every currency as now known, stamped with the venue's time); a state older
than the one held is ignored. ``after(time_ms)`` waits for a push stamped at or after
``time_ms`` (a leg's last fill: the venue has then booked it) and gives the available balance of
each currency in it, as exact decimals. The caller bounds the wait (a push may never come: the
venue pushes only what changed, and a stream may be down).

Fails: nothing raises on a push; ``after`` only waits.
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal

import trio

from mm.model import AccountState

__all__ = ["BalanceBoard"]


class BalanceBoard:
    """The latest pushed balances and a wait for a newer push (see the module)."""

    def __init__(self) -> None:
        self._time_ms = -1
        self._available: dict[str, Decimal] = {}
        self._changed = trio.Event()
        self.pushes = 0

    def on_account(self, state: AccountState) -> None:
        if not state.balances or state.time_ms < self._time_ms:
            return
        self._time_ms = state.time_ms
        self._available = {
            balance.currency: Decimal(repr(balance.available)) for balance in state.balances
        }
        self.pushes += 1
        self._changed.set()
        self._changed = trio.Event()

    async def after(self, time_ms: int) -> Mapping[str, Decimal]:
        """The available balances of the first push stamped at or after ``time_ms``."""
        while self._time_ms < time_ms:
            await self._changed.wait()
        return dict(self._available)
