"""The kill switch in the running service: the trading scope, the trip and the rearm.

``KillSwitchController.run`` is the ``trading`` child of the tree. It runs the trading subtree
inside a cancel scope while the switch is armed. A trip (a monitor, ``mm kill``, ``POST
/kill``) latches the switch, cancels that scope (feeds, admin and journal keep running), then,
shielded and within a deadline, cancels every open order at the venue and arms a short
dead-man's switch as a backstop, writes an incident dump to ``<run_dir>/incidents`` and
checkpoints the switch in the journal. On start the latest checkpoint is restored (younger
than 24 hours; transient reasons dropped): a tripped switch keeps trading stopped. Only a
rearm, with who and why journaled, starts the trading subtree again.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from pathlib import Path
from typing import Any

import attrs
import orjson
import trio
from loguru import logger
from prometheus_client import CollectorRegistry, Gauge

from mm import clock
from mm.journal import Journal
from mm.model import CancelOrder
from mm.ops.notify import Notification, Severity
from mm.risk.killswitch import KillReason, KillSwitch, Value
from mm.secrets import Redactor
from mm.strategy.runner import Trading
from mm.venues.hyperliquid.adapter import HyperliquidAdapter

CANCEL_DEADLINE_S = 1.0
BACKSTOP_S = 6.0  # the venue accepts a dead-man's switch at least 5 s ahead


@attrs.frozen
class Kill:
    reason: KillReason
    values: Mapping[str, Value]


@attrs.frozen
class Rearm:
    who: str
    why: str


@attrs.frozen
class Dump:
    why: str


Command = Kill | Rearm | Dump


class KillSwitchController:
    def __init__(
        self,
        run_trading: Callable[..., Awaitable[None]],
        trading: Trading,
        adapter: HyperliquidAdapter,
        journal: Journal,
        run_dir: Path,
        redact: Redactor | None = None,
    ) -> None:
        self.redact = redact or Redactor()
        self._run_trading = run_trading
        self.trading = trading
        self.adapter = adapter
        self.journal = journal
        self.incident_dir = run_dir / "incidents"
        self.switch = KillSwitch()
        self._send, self._commands = trio.open_memory_channel[Command](64)
        self._rearmed = trio.Event()
        self._scope: trio.CancelScope | None = None
        self.incidents: list[Path] = []
        self.last_rearm: dict[str, Any] | None = None
        self.state_gauge: Gauge | None = None
        # Set by the service: the risk decision and recent errors, for incident dumps.
        self.risk_status: Callable[[], dict[str, Any]] | None = None
        self.recent_errors: Callable[[], list[str]] | None = None
        self.notify: Callable[[Notification], None] | None = None  # set by the service
        self.tripped_listeners: list[Callable[[], None]] = []  # told the moment it trips

    def export(self, registry: CollectorRegistry) -> None:
        """mm_kill_switch_tripped{reason}: 1 for the reason it is tripped for, else 0."""
        self.state_gauge = Gauge(
            "mm_kill_switch_tripped",
            "1 while the kill switch is tripped, labelled by its reason.",
            ["reason"],
            registry=registry,
        )
        self._export()

    def _export(self) -> None:
        if self.state_gauge is None:
            return
        original = self.switch.original
        for reason in KillReason:
            tripped = original is not None and original.reason is reason
            self.state_gauge.labels(reason=reason.value).set(1.0 if tripped else 0.0)

    # --- commands (sync, for the admin server and the risk aggregator) --------------------

    def request(self, command: Command) -> None:
        self._send.send_nowait(command)

    def restore(self, checkpoint: Mapping[str, Any] | None) -> None:
        """Before start: the journal's latest checkpoint (young enough) keeps trading stopped."""
        self.switch = KillSwitch.restore(checkpoint, clock.wall())
        self._export()
        if self.switch.tripped:
            self.adapter.halted = True
            logger.warning("kill switch restored tripped: {}", self.switch.reason)

    def status(self) -> dict[str, Any]:
        original = self.switch.original
        return {
            "tripped": self.switch.tripped,
            "reason": original.reason.value if original else None,
            "values": dict(original.values) if original else None,
            "since": original.at if original else None,
            "trips": len(self.switch.trips),
            "last_rearm": self.last_rearm,
            "incidents": [str(path) for path in self.incidents[-5:]],
        }

    # --- the child --------------------------------------------------------------------------

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(self._serve_commands)
            reported = False
            while True:
                if self.switch.tripped:
                    if not reported:
                        task_status.started()
                        reported = True
                    self._rearmed = trio.Event()
                    await self._rearmed.wait()
                with trio.CancelScope() as scope:
                    self._scope = scope
                    async with trio.open_nursery() as trading:
                        await trading.start(self._run_trading)
                        if not reported:
                            task_status.started()
                            reported = True
                        await trio.sleep_forever()

    async def _serve_commands(self) -> None:
        async for command in self._commands:
            if isinstance(command, Kill):
                await self.trip(command.reason, command.values)
            elif isinstance(command, Rearm):
                await self.rearm(command.who, command.why)
            else:
                await self.dump(command.why)

    async def trip(self, reason: KillReason, values: Mapping[str, Value]) -> None:
        if not self.switch.trip(reason, values, clock.wall()):
            return  # already tripped: recorded, nothing more to do
        logger.critical("KILL SWITCH tripped: {} {}", reason.value, dict(values))
        self._export()
        if self.notify is not None:  # critical: bypasses the notification rate limit
            kind = "daily_loss" if reason is KillReason.MAX_LOSS else "kill_switch"
            self.notify(
                Notification(
                    kind,
                    Severity.CRITICAL,
                    f"mm KILL SWITCH ({reason.value})",
                    f"kill switch tripped: {reason.value}; trading stopped, orders canceled",
                    clock.wall(),
                    dict(values),
                )
            )
        self.adapter.halted = True  # no dead-man's switch refresh, no quoting
        if self._scope is not None:
            self._scope.cancel()
        for listener in self.tripped_listeners:
            listener()
        with trio.move_on_after(CANCEL_DEADLINE_S + 2, shield=True):
            await self._cancel_everything()
        await self.journal.record("killswitch", **self.switch.checkpoint(clock.wall()))
        await self.dump(f"kill switch: {reason.value}")

    async def _cancel_everything(self) -> None:
        client = self.adapter.client
        if client is None:
            return
        try:
            with trio.fail_after(CANCEL_DEADLINE_S):
                orders = await client.open_orders()
                if orders:
                    await client.cancel([CancelOrder(o.coin, oid=o.oid) for o in orders])
            await client.schedule_cancel(clock.wall_ms() + int(BACKSTOP_S * 1000))
            logger.warning("kill switch: canceled {} open orders; backstop armed", len(orders))
        except Exception as error:  # the dead-man's switch remains the backstop
            logger.error("kill switch: cancel-all failed: {}", error)

    async def rearm(self, who: str, why: str) -> None:
        if not self.switch.tripped:
            return
        record = self.switch.rearm(who, why, clock.wall())
        self.last_rearm = record.to_json()
        await self.journal.record("rearm", **record.to_json())
        await self.journal.record("killswitch", **self.switch.checkpoint(clock.wall()))
        logger.warning("kill switch rearmed by {}: {}", who, why)
        self._export()
        self.adapter.halted = False
        self._rearmed.set()

    async def dump(self, why: str) -> Path:
        """An incident dump: the switch, positions, PnL, quotes, open orders, counters."""
        open_orders: list[Any] = []
        client = self.adapter.client
        if client is not None:
            try:
                with trio.fail_after(2):
                    open_orders = [attrs.asdict(o) for o in await client.open_orders()]
            except Exception as error:
                open_orders = [f"unavailable: {error}"]
        dump = {
            "why": why,
            "time": clock.wall(),
            "killswitch": self.switch.checkpoint(clock.wall()),
            "trading": self.trading.status(),
            "quotes": {coin: plan.status() for coin, plan in self.trading.last_plans.items()},
            "risk": self.risk_status() if self.risk_status is not None else None,
            "recent_errors": list(self.recent_errors()) if self.recent_errors else [],
            "open_orders": open_orders,
            "dispatcher": attrs.asdict(self.adapter.dispatcher.stats),
            "limiter_headroom": self.adapter.limiter.headroom(trio.current_time()),
        }
        self.incident_dir.mkdir(parents=True, exist_ok=True)
        path = self.incident_dir / f"incident-{clock.wall_ms()}.json"
        plain = orjson.loads(orjson.dumps(dump, default=str))
        data = orjson.dumps(self.redact.scrub(plain), option=orjson.OPT_INDENT_2)
        await trio.to_thread.run_sync(path.write_bytes, data)
        self.incidents.append(path)
        await self.journal.record("incident", path=str(path), why=why)
        return path
