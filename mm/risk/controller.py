"""The kill switch in the running service: the trading scope, the trip and the rearm.

``KillSwitchController.run`` is the ``trading`` child of the tree. It runs the trading subtree
inside a cancel scope while the switch is armed; a trading subtree that keeps crashing past its
restart intensity (``SupervisorEscalation``) trips the switch (reason ``escalation``) instead of
taking the service down with orders left at the venue. A trip (a monitor, ``mm kill``, ``POST
/kill``, an escalation) latches the switch and cancels that scope (feeds, admin and journal keep
running); then, shielded, at the same time: the checkpoint is committed to the journal, and the
one cancel-all (``mm.execution.cancel_all``) cancels every open order over every path to the
venue until it shows none. The venue's dead-man's switch is armed as a backstop once the cancel
is sent, independently: a venue that refuses it (10 triggers a day, or an account that has not
traded enough, which the dead-man's keeper already knows and then no request is sent) or a
used-up daily budget never stands in the way of the cancel, and the outcome says there is no
backstop. Positions are then re-read from the venue and adopted (a forced liquidation, fills
missed). The caller of ``kill`` hears the outcome (checkpoint committed, cancel sent, the
cancel-all's report, the backstop) only when all that is done; an incident dump follows. The
kill switch never counts on the backstop: a cancel-all that did not reach zero (the venue
losing cancels, say) is run again and again, in the background, until the venue shows no
order (``cancel_retrying`` in the outcome and in ``status``), or a rearm.

While tripped, a monitor repeating its request is not a trip (``trips`` counts trips); an
operator's second kill is journaled and answered "already tripped". On start the latest
checkpoint is restored (younger than 24 hours; transient reasons dropped): a tripped switch
keeps trading stopped. Only a rearm starts the trading subtree again, and a rearm is refused
while a monitor would trip the switch again right now (``rearm_blockers``) unless forced; who,
why, and whether it was forced are journaled.

Failures: nothing here raises into the tree for the venue's or the journal's failures; a cancel
that could not reach zero, a checkpoint not committed in time or a missing backstop are logged
and reported to the caller and in ``status``.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any, Generic, Protocol, TypeVar

import attrs
import orjson
import trio
from loguru import logger
from prometheus_client import CollectorRegistry, Gauge

from mm import clock, world
from mm.execution.cancel_all import (
    KILL,
    CancelAll,
    CancelAllReport,
    Purpose,
    first_answer,
    paths_of,
)
from mm.execution.deadman import DeadmanKeeper
from mm.execution.dispatch import Dispatcher
from mm.execution.permissions import OPEN, Grant, Level, Slot
from mm.health.account import AccountWatch
from mm.journal import Journal
from mm.model import AccountState
from mm.ops.notify import Notification, Severity
from mm.portfolio import Portfolio
from mm.risk.killswitch import KillReason, KillSwitch, Value
from mm.risk.monitors import Assessment
from mm.secrets import Redactor
from mm.trading_view import TradingView
from mm.venues.base import SwitchNeedsVolume, VenueAdapter, VenueClient, VenueError
from supervisors import SupervisorEscalation

BACKSTOP_S = 6.0  # the venue accepts a dead-man's switch at least 5 s ahead
SWEEP_PAUSE_S = 1.0  # a trip's cancel-all left orders: the next one this much later,
SWEEP_PAUSE_MAX_S = 15.0  # doubling up to this
TRIPPED = Grant(Level.HALTED, "the kill switch is tripped")
COMMIT_WAIT_S = 5.0  # how long a trip waits for its checkpoint to be committed
DUMP_READ_S = 2.0

T = TypeVar("T")


class Reply(Generic[T]):
    """One answer from the controller's task to the caller waiting for it."""

    def __init__(self) -> None:
        self._done = trio.Event()
        self._value: T | None = None

    def send(self, value: T) -> None:
        self._value = value
        self._done.set()

    async def receive(self) -> T:
        await self._done.wait()
        assert self._value is not None
        return self._value


@attrs.frozen
class Backstop:
    """The venue's dead-man's switch after a trip: armed (until ``at``, epoch seconds) or why
    not."""

    armed: bool
    detail: str
    at: float | None = None

    def to_json(self) -> dict[str, Any]:
        return {"armed": self.armed, "detail": self.detail, "at": self.at}


@attrs.frozen
class TripOutcome:
    """What a kill request did."""

    reason: KillReason  # this request's reason
    already: bool  # the switch was tripped before: recorded and journaled, nothing more
    since: float  # when the switch tripped (epoch seconds)
    tripped_for: KillReason  # the reason it tripped for
    committed: bool  # this request's checkpoint is committed to the journal
    cancel_sent: bool  # a cancel-all reached the venue client (or found nothing to cancel)
    cancel: CancelAllReport | None = None  # None: already tripped, or no venue client
    backstop: Backstop | None = None
    positions: Mapping[str, float] | None = None  # re-read from the venue after the cancel
    # The cancel-all left orders at the venue: it is run again until the venue shows none.
    cancel_retrying: bool = False

    def to_json(self) -> dict[str, Any]:
        return {
            "tripped": True,
            "already_tripped": self.already,
            "reason": self.reason.value,
            "tripped_for": self.tripped_for.value,
            "since": self.since,
            "journal_committed": self.committed,
            "cancel_sent": self.cancel_sent,
            "cancel_all": self.cancel.to_json() if self.cancel is not None else None,
            "backstop": self.backstop.to_json() if self.backstop is not None else None,
            "positions": dict(self.positions) if self.positions is not None else None,
            "cancel_retrying": self.cancel_retrying,
        }


def _assessment_json(assessment: Assessment) -> dict[str, Any]:
    return {
        "monitor": assessment.monitor,
        "reason": assessment.reason,
        "values": orjson.loads(orjson.dumps(assessment.values, default=str)),
    }


@attrs.frozen
class RearmOutcome:
    """What a rearm request did: rearmed, refused (with the monitors that would trip the switch
    again now), or nothing to do (the switch was armed)."""

    who: str
    why: str
    was_tripped: bool
    rearmed: bool
    forced: bool
    blockers: tuple[Assessment, ...] = ()

    @property
    def refused(self) -> bool:
        return self.was_tripped and not self.rearmed

    def to_json(self) -> dict[str, Any]:
        return {
            "who": self.who,
            "why": self.why,
            "was_tripped": self.was_tripped,
            "rearmed": self.rearmed,
            "refused": self.refused,
            "forced": self.forced,
            "blockers": [_assessment_json(b) for b in self.blockers],
        }


@attrs.frozen
class Kill:
    reason: KillReason
    values: Mapping[str, Value]
    reply: Reply[TripOutcome] | None = attrs.field(default=None, eq=False, repr=False)


@attrs.frozen
class Rearm:
    who: str
    why: str
    force: bool = False
    reply: Reply[RearmOutcome] | None = attrs.field(default=None, eq=False, repr=False)


Command = Kill | Rearm


class RiskReport(Protocol):
    """What the kill switch reads of risk: the monitors that would trip it again now (a rearm
    waits for them), and risk's decision and recent errors for incident dumps."""

    @property
    def recent_errors(self) -> Iterable[str]: ...

    def rearm_blockers(self) -> Sequence[Assessment]: ...

    def status(self) -> dict[str, Any]: ...


class KillSwitchController:
    """The ``trading`` child and the kill switch's shell (see the module): runs the trading
    subtree while armed, trips, rearms and dumps. Commands come from risk's channel of kill
    requests (built before it, with risk, which it reads for rearm blockers and dumps), from
    sync code (``request``) or from the admin server, which waits for their outcome (``kill``,
    ``rearm_request``).
    It never raises into the tree for a venue or journal failure: the outcome says what is
    missing."""

    def __init__(
        self,
        run_trading: Callable[..., Awaitable[None]],
        trading: TradingView,
        adapter: VenueAdapter,
        journal: Journal,
        run_dir: Path,
        redact: Redactor | None = None,
        *,
        permission: Slot,
        cancel_all: CancelAll,
        dispatcher: Dispatcher,
        deadman: DeadmanKeeper,
        portfolio: Portfolio,
        account: AccountWatch,
        registry: CollectorRegistry,
        risk: RiskReport,
        requests: trio.MemoryReceiveChannel[Kill],
        notify: Callable[[Notification], None] | None = None,
    ) -> None:
        self.redact = redact or Redactor()
        self._run_trading = run_trading
        self.trading = trading
        self.adapter = adapter
        self.dispatcher = dispatcher  # the executor's orders, for incident dumps
        self.deadman = deadman  # keeps the venue's dead-man's switch: the backstop asks it
        self.portfolio = portfolio  # adopts the venue's positions after a trip's cancel
        self.account = account  # the one account poller: the re-read after a trip goes through it
        self.journal = journal
        self.permission = permission  # its slot of the permission board: HALTED while tripped
        self.cancel_all = cancel_all
        self.incident_dir = run_dir / "incidents"
        self.switch = KillSwitch()
        self._send, self._commands = trio.open_memory_channel[Command](64)
        self._rearmed = trio.Event()
        self._scope: trio.CancelScope | None = None
        self.incidents: list[Path] = []
        self.last_rearm: dict[str, Any] | None = None
        self.last_trip: TripOutcome | None = None
        self.repeats = 0  # monitor requests that only repeated a recorded trip
        # mm_kill_switch_tripped{reason}: 1 for the reason it is tripped for, else 0.
        self.state_gauge = Gauge(
            "mm_kill_switch_tripped",
            "1 while the kill switch is tripped, labelled by its reason.",
            ["reason"],
            registry=registry,
        )
        self._risk = risk  # rearm blockers; its decision and recent errors for incident dumps
        self._requests = requests  # the risk aggregator's kill requests
        self._notify = notify
        # The latest trip's cancel-alls: the first, then those run until the venue shows none.
        self.last_cancel: CancelAllReport | None = None
        self.cancel_rounds = 0
        self.sweeping = False
        self._sweep_wanted = trio.Event()
        self._sweep_scope: trio.CancelScope | None = None
        self._export()

    def _export(self) -> None:
        """mm_kill_switch_tripped: 1 for the reason the switch is tripped for, else 0."""
        original = self.switch.original
        for reason in KillReason:
            tripped = original is not None and original.reason is reason
            self.state_gauge.labels(reason=reason.value).set(1.0 if tripped else 0.0)

    # --- commands ---------------------------------------------------------------------------

    def request(self, command: Command) -> None:
        """Queue a command from sync code (the risk aggregator); never raises. A monitor's kill
        that only repeats a recorded trip is counted, not queued."""
        if (
            isinstance(command, Kill)
            and command.reply is None
            and self.switch.repeats(command.reason)
        ):
            self.repeats += 1
            return
        try:
            self._send.send_nowait(command)
        except trio.WouldBlock:
            logger.error("kill switch command queue full; dropped {}", command)

    async def kill(self, reason: str) -> TripOutcome:
        """An operator's kill (``mm kill``): the outcome once the trip is done (see the module)."""
        reply: Reply[TripOutcome] = Reply()
        await self._send.send(Kill(KillReason.MANUAL, {"reason": reason}, reply))
        return await reply.receive()

    async def rearm_request(self, who: str, why: str, *, force: bool = False) -> RearmOutcome:
        """An operator's rearm (``mm rearm [--force]``): rearmed, refused or nothing to do."""
        reply: Reply[RearmOutcome] = Reply()
        await self._send.send(Rearm(who, why, force, reply))
        return await reply.receive()

    def restore(self, checkpoint: Mapping[str, Any] | None) -> None:
        """Before start: the journal's latest checkpoint (young enough) keeps trading stopped."""
        self.switch = KillSwitch.restore(checkpoint, clock.wall())
        self._export()
        if self.switch.tripped:
            self.permission.set(TRIPPED)
            logger.warning("kill switch restored tripped: {}", self.switch.reason)

    def status(self) -> dict[str, Any]:
        original = self.switch.original
        last = self.last_trip
        return {
            "tripped": self.switch.tripped,
            "reason": original.reason.value if original else None,
            "values": dict(original.values) if original else None,
            "since": original.at if original else None,
            "trips": self.switch.latches,
            "requests_while_tripped": max(len(self.switch.trips) - 1, 0) + self.switch.dropped,
            "repeats": self.repeats,
            "last_cancel": self.last_cancel.to_json() if self.last_cancel else None,
            "cancel_rounds": self.cancel_rounds,
            "cancel_retrying": self.sweeping,
            "backstop": last.backstop.to_json() if last and last.backstop else None,
            "last_rearm": self.last_rearm,
            "incidents": [str(path) for path in self.incidents[-5:]],
        }

    # --- the child --------------------------------------------------------------------------

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(self._serve_commands)
            nursery.start_soon(self._take_requests)
            nursery.start_soon(self._sweep_when_asked)
            reported = False
            while True:
                if self.switch.tripped:
                    if not reported:
                        task_status.started()
                        reported = True
                    self._rearmed = trio.Event()
                    await self._rearmed.wait()
                escalation: SupervisorEscalation | None = None
                try:
                    with trio.CancelScope() as scope:
                        self._scope = scope
                        async with trio.open_nursery() as trading:
                            await trading.start(self._run_trading)
                            if not reported:
                                task_status.started()
                                reported = True
                            await trio.sleep_forever()
                except* SupervisorEscalation as group:
                    escalation = _first_escalation(group)
                if escalation is not None:
                    logger.critical("the trading subtree gave up: {}", escalation)
                    outcome = await self.trip(KillReason.ESCALATION, {"error": str(escalation)})
                    if not outcome.already:
                        await self.dump(f"kill switch: {KillReason.ESCALATION.value}")

    async def _take_requests(self) -> None:
        """Risk's kill requests, from its channel, each queued as ``request`` queues it."""
        async for kill in self._requests:
            self.request(kill)

    async def _serve_commands(self) -> None:
        async for command in self._commands:
            if isinstance(command, Kill):
                if command.reply is None and self.switch.repeats(command.reason):
                    self.repeats += 1  # queued before the first of them latched the switch
                    continue
                outcome = await self.trip(command.reason, command.values)
                if command.reply is not None:
                    command.reply.send(outcome)
                if not outcome.already:
                    await self.dump(f"kill switch: {command.reason.value}")
            else:
                result = await self.rearm(command.who, command.why, force=command.force)
                if command.reply is not None:
                    command.reply.send(result)

    # --- the trip ---------------------------------------------------------------------------

    async def trip(self, reason: KillReason, values: Mapping[str, Value]) -> TripOutcome:
        """Trip the switch (or record a request while tripped) and act, as the module says."""
        latched = self.switch.trip(reason, values, clock.wall())
        original = self.switch.original
        assert original is not None
        if not latched:
            logger.warning(
                "kill switch already tripped since {} for {}; recorded {} {}",
                original.at,
                original.reason.value,
                reason.value,
                dict(values),
            )
            with trio.CancelScope(shield=True):
                committed = await self._checkpoint(request=reason.value, values=dict(values))
                positions = await self._adopt_venue_positions()
            return TripOutcome(
                reason,
                True,
                original.at,
                original.reason,
                committed,
                False,
                positions=positions,
            )
        logger.critical("KILL SWITCH tripped: {} {}", reason.value, dict(values))
        self._export()
        if self._notify is not None:  # critical: bypasses the notification rate limit
            kind = "daily_loss" if reason is KillReason.MAX_LOSS else "kill_switch"
            self._notify(
                Notification(
                    kind,
                    Severity.CRITICAL,
                    f"mm KILL SWITCH ({reason.value})",
                    f"kill switch tripped: {reason.value}; trading stopped, orders canceled",
                    clock.wall(),
                    dict(values),
                )
            )
        self.permission.set(TRIPPED)  # no order of any kind, no dead-man's switch refresh
        if self._scope is not None:
            self._scope.cancel()
        with trio.CancelScope(shield=True):
            outcome = await self._act(reason, original.at)
        self.last_trip = outcome
        self.last_cancel = outcome.cancel
        self.cancel_rounds = 1 if outcome.cancel is not None else 0
        if outcome.cancel_retrying:
            self._sweep_wanted.set()
        return outcome

    # --- until the venue shows none ---------------------------------------------------------

    async def _sweep_when_asked(self) -> None:
        while True:
            await self._sweep_wanted.wait()
            self._sweep_wanted = trio.Event()
            await self._sweep()

    async def _sweep(self) -> None:
        """A trip's cancel-all left orders at the venue: cancel-all again, ``SWEEP_PAUSE_S``
        apart (doubling up to ``SWEEP_PAUSE_MAX_S``), until the venue shows none. Whether the
        venue's dead-man's switch was armed or not, nothing is left to it. A rearm (or the
        service's stop, which cancels everything itself) ends it."""
        if self.adapter.client is None:
            return
        pause = SWEEP_PAUSE_S
        self.sweeping = True
        try:
            with trio.CancelScope() as scope:
                self._sweep_scope = scope
                while self.switch.tripped:
                    await trio.sleep(pause)
                    report = await self.cancel_all(Purpose.KILL)
                    if report is None:  # the venue client is gone: the service is stopping
                        return
                    self.cancel_rounds += 1
                    self.last_cancel = report
                    if report.zero:
                        logger.warning(
                            "kill switch: none left at the venue after {} cancel-alls: {}",
                            self.cancel_rounds,
                            report.describe(),
                        )
                        self.journal.record_or_log(
                            "kill_switch_cancel",
                            rounds=self.cancel_rounds,
                            cancel_all=report.to_json(),
                        )
                        return
                    logger.error(
                        "kill switch: cancel-all {} left orders at the venue: {}; again in {:g}s",
                        self.cancel_rounds,
                        report.describe(),
                        pause,
                    )
                    pause = min(pause * 2, SWEEP_PAUSE_MAX_S)
        finally:
            self.sweeping = False
            self._sweep_scope = None

    async def _act(self, reason: KillReason, since: float) -> TripOutcome:
        """Checkpoint (committed) and cancel-all at once; the backstop once the cancel is sent;
        then the venue's positions."""
        committed = False
        report: CancelAllReport | None = None
        backstop = Backstop(False, "no venue client: the cancel could not be sent")
        client = self.adapter.client

        async def checkpoint() -> None:
            nonlocal committed
            committed = await self._checkpoint()

        async def cancel_and_backstop() -> None:
            nonlocal report, backstop
            if client is None:
                logger.error("kill switch: no venue client; nothing could be canceled")
                return
            sent = trio.Event()
            async with trio.open_nursery() as nursery:

                async def arm_when_sent() -> None:
                    nonlocal backstop
                    await sent.wait()
                    backstop = await self._arm_backstop()

                nursery.start_soon(arm_when_sent)
                report = await self.cancel_all(Purpose.KILL, cancel_sent=sent)

        async with trio.open_nursery() as nursery:
            nursery.start_soon(checkpoint)
            nursery.start_soon(cancel_and_backstop)
        positions = await self._adopt_venue_positions()
        return TripOutcome(
            reason,
            False,
            since,
            reason,
            committed,
            report is not None and (report.attempts > 0 or report.zero),
            report,
            backstop,
            positions,
            cancel_retrying=report is not None and not report.zero,
        )

    async def _checkpoint(self, **request: Any) -> bool:
        """The switch's checkpoint (and the request that led to it), committed; False when the
        journal did not commit it within ``COMMIT_WAIT_S``."""
        data = self.switch.checkpoint(clock.wall())
        if request:
            data["request"] = request
        with trio.move_on_after(COMMIT_WAIT_S):
            await self.journal.record_committed("killswitch", **data)
            return True
        logger.error("kill switch: checkpoint not committed within {}s", COMMIT_WAIT_S)
        return False

    async def _arm_backstop(self) -> Backstop:
        """The venue's dead-man's switch ``BACKSTOP_S`` ahead, unless the dead-man's keeper
        knows the venue would refuse it (the day's budget used, an account that has not traded
        enough) or the venue refuses; the result says which."""
        client = self.adapter.client
        if client is None:
            return Backstop(False, "no venue client")
        keeper = self.deadman
        refusal = keeper.would_refuse()
        if refusal is not None:  # known without asking: no request the venue would refuse
            backstop = Backstop(
                False, f"not armed: the dead-man's switch is unavailable: {refusal}"
            )
        else:
            at_ms = clock.wall_ms() + int(BACKSTOP_S * 1000)
            errors: list[str] = []

            async def arm(path: VenueClient) -> None:
                switch = path.dead_mans_switch
                if switch is None:
                    raise VenueError("the venue has no dead-man's switch")
                try:
                    await switch.schedule_cancel(at_ms)
                except SwitchNeedsVolume as refusal:
                    keeper.refused(refusal)  # the keeper asks no more either
                    raise

            answered, _ = await first_answer(paths_of(client), arm, KILL, errors)
            if answered:
                return Backstop(True, f"armed {BACKSTOP_S:g}s ahead", at_ms / 1000)
            why = errors[-1] if errors else "no answer"
            backstop = Backstop(False, f"not armed: the venue refused or did not answer: {why}")
        logger.error("kill switch: no dead-man's backstop: {}", backstop.detail)
        return backstop

    async def _adopt_venue_positions(self) -> dict[str, float] | None:
        """Re-read the account and make its positions ours (a liquidation, fills missed). The
        reading goes through the one account poller, so risk and autonomy see it too."""
        client = self.adapter.client
        if client is None:
            return None

        async def read() -> AccountState | None:
            errors: list[str] = []
            answered, account = await first_answer(
                paths_of(client), lambda path: path.account_state(), KILL, errors
            )
            if not answered:
                logger.error("kill switch: could not re-read positions: {}", "; ".join(errors[-3:]))
                return None
            assert isinstance(account, AccountState)
            return account

        account = await self.account.read_now(read)
        if account is None:
            return None
        self.portfolio.adopt_venue_positions(account)
        positions = {coin: self.portfolio.position(coin) for coin in self.symbols()}
        logger.warning("kill switch: positions re-read from the venue: {}", positions)
        return positions

    def symbols(self) -> tuple[str, ...]:
        return tuple(self.trading.strategy.symbols)

    # --- the rearm --------------------------------------------------------------------------

    async def rearm(self, who: str, why: str, *, force: bool = False) -> RearmOutcome:
        """Rearm the switch, unless a monitor would trip it again now (then refused, unless
        ``force``); journaled either way."""
        if not self.switch.tripped:
            return RearmOutcome(who, why, was_tripped=False, rearmed=False, forced=force)
        blockers = tuple(self._risk.rearm_blockers())
        if blockers and not force:
            refused = RearmOutcome(who, why, True, False, False, blockers)
            logger.warning(
                "rearm by {} refused: {}",
                who,
                "; ".join(f"{b.monitor}: {b.reason} {b.values}" for b in blockers),
            )
            await self.journal.record("rearm_refused", **refused.to_json())
            return refused
        record = self.switch.rearm(who, why, clock.wall())
        outcome = RearmOutcome(who, why, True, True, force, blockers)
        self.last_rearm = {**record.to_json(), "forced": force}
        overridden = [_assessment_json(b) for b in blockers]
        await self.journal.record("rearm", **record.to_json(), forced=force, overridden=overridden)
        await self.journal.record("killswitch", **self.switch.checkpoint(clock.wall()))
        if force and blockers:
            logger.warning("kill switch rearmed by {} (FORCED over {}): {}", who, overridden, why)
        else:
            logger.warning("kill switch rearmed by {}: {}", who, why)
        self._export()
        if self._sweep_scope is not None:  # trading resumes: its orders are its own again
            self._sweep_scope.cancel()
        self.permission.set(OPEN)
        self._rearmed.set()
        return outcome

    # --- incident dumps ---------------------------------------------------------------------

    async def dump(self, why: str) -> Path:
        """An incident dump: the switch, positions, PnL, quotes, open orders, counters."""
        open_orders: list[Any] = []
        client = self.adapter.client
        if client is not None:
            try:
                with trio.fail_after(DUMP_READ_S):
                    open_orders = [attrs.asdict(o) for o in await client.open_orders()]
            except Exception as error:
                open_orders = [f"unavailable: {error}"]
        last = self.last_trip
        dump = {
            "why": why,
            "time": clock.wall(),
            "killswitch": self.switch.checkpoint(clock.wall()),
            "last_trip": last.to_json() if last is not None else None,
            "trading": self.trading.status(),
            "quotes": dict(self.trading.strategy.decisions()),
            "risk": self._risk.status(),
            "recent_errors": list(self._risk.recent_errors),
            "open_orders": open_orders,
            "dispatcher": attrs.asdict(self.dispatcher.stats),
            "limiter_headroom": self.adapter.limiter.headroom(trio.current_time()),
        }
        self.incident_dir.mkdir(parents=True, exist_ok=True)
        path = self.incident_dir / f"incident-{clock.wall_ms()}.json"
        plain = orjson.loads(orjson.dumps(dump, default=str))
        data = orjson.dumps(self.redact.scrub(plain), option=orjson.OPT_INDENT_2)
        await world.run_blocking(path.write_bytes, data)
        self.incidents.append(path)
        await self.journal.record("incident", path=str(path), why=why)
        return path


def _first_escalation(group: BaseExceptionGroup[SupervisorEscalation]) -> SupervisorEscalation:
    first = group.exceptions[0]
    return _first_escalation(first) if isinstance(first, BaseExceptionGroup) else first
