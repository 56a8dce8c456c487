"""The user events' road through the execution child: each event to whoever acts on it.

A fill is journaled, credited to the venue's account budget, routed through the dispatcher
(lifecycle events out), counted by the dead-man's keeper and published to the portfolio and
risk; an order report goes through the dispatcher; a resync is journaled and hands its
snapshot of open orders to the order auditor (judged next) and has the account budget read
again; anything else is journaled by its kind, and an account state the stream pushed (a spot
venue's balances) is handed to ``on_account`` too. Any venue: the events are the generic user
feed's (``mm.feeds.user``).

How it fails: a journal write that fails raises out of ``route`` (the execution child restarts,
and the user feed's resync brings back what it had not routed); the callbacks are the
service's fan-out channels, which never drop.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from mm import clock
from mm.execution.auditor import OrderAuditor
from mm.execution.deadman import DeadmanKeeper
from mm.execution.dispatch import Dispatcher, DispatchOutput
from mm.feeds.user import Resynced, UserStreamEvent
from mm.journal import entry_data
from mm.model import AccountState, Fill, OrderReport
from mm.venues.base import AccountBudget

Record = Callable[[str, dict[str, Any]], Awaitable[None]]


class UserEventRouter:
    """Routes each user event (see the module); built once per run of the execution child."""

    def __init__(
        self,
        *,
        dispatcher: Dispatcher,
        record: Record,
        auditor: OrderAuditor,
        deadman: DeadmanKeeper,
        emit: Callable[[Sequence[DispatchOutput]], None],
        on_fill: Callable[[Fill], None],
        budget: AccountBudget | None = None,
        on_account: Callable[[AccountState], None] | None = None,
    ) -> None:
        self._dispatcher = dispatcher
        self._record = record
        self._auditor = auditor
        self._deadman = deadman
        self._emit = emit
        self._on_fill = on_fill
        self._budget = budget
        self._on_account = on_account

    async def route(self, event: UserStreamEvent) -> None:
        now_ms = clock.wall_ms()
        if isinstance(event, Fill):
            await self._record("fill", entry_data(event))
            if self._budget is not None:
                self._budget.on_fill(event)
            self._emit(self._dispatcher.on_fill(event, now_ms))
            self._deadman.on_fill(event.px * event.sz)
            self._on_fill(event)
        elif isinstance(event, OrderReport):
            self._emit(self._dispatcher.on_order_report(event, now_ms))
        elif isinstance(event, Resynced):
            await self._record(
                "resync",
                {"reason": event.reason, "fills_recovered": event.fills_recovered},
            )
            # Audited next (orphans, ghosts), dated when the resync's reads were sent.
            asked_ms = event.time_ms - round(event.duration_s * 1000)
            self._auditor.resynced(event.open_orders, asked_ms)
            if self._budget is not None:
                self._budget.resynced(clock.monotonic() - event.duration_s)
        else:
            await self._record(type(event).__name__.lower(), entry_data(event))
            if isinstance(event, AccountState) and self._on_account is not None:
                self._on_account(event)
