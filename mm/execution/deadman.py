"""The dead-man's switch: keep the venue's ``scheduleCancel`` a set time ahead while healthy.

While the service is healthy the keeper re-arms the switch every ``refresh_s`` for ``lead_s``
ahead, so it never fires. When the service stops being healthy (or the keeper is cancelled, or
the process dies) the refreshes stop and the venue cancels every order at the armed time. The
venue allows 10 triggers a day; a trigger is counted when an armed time passes without a
refresh, and the keeper stops arming (and says so) before the venue would refuse. On a clean
stop it disarms the switch.

The venue may refuse the switch outright to an account that has not traded enough
(``SwitchNeedsVolume``: Hyperliquid sets it only once an account has traded $1,000,000). The
keeper then stops asking (``VolumeGate``): it counts the volume the account trades from the
refusal's figure, adding every fill since, reads the venue's own figure every
``volume_check_s`` (volume traded outside mm counts too), and asks again only once that volume
reaches what the venue requires. Meanwhile the switch is unavailable, and says so (``status``,
``mm status``, ``mm check``, ``mm_deadman_switch_available``): the kill switch does not count on
it, and retries its cancel-all until the venue shows no order instead.

Failures: a request that fails is counted, logged and asked again at the next refresh; a
refusal for volume is logged once; nothing raises out of the keeper.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from typing import Any

import attrs
import trio
from loguru import logger
from prometheus_client import CollectorRegistry, Gauge

from mm.settings import at_least, positive, setting
from mm.venues.base import DeadMansSwitch, SwitchNeedsVolume

DAY_S = 86_400.0
VENUE_TRIGGERS_PER_DAY = 10


@attrs.frozen
class DeadmanConfig:
    enabled: bool = setting(True)
    # How far ahead the switch is armed, and how often it is pushed forward.
    lead_s: float = setting(30.0, at_least(5))
    refresh_s: float = setting(10.0, positive)
    # Triggers a day to leave unused, of the venue's 10.
    reserve_triggers: int = setting(1, at_least(0))
    # While the venue refuses the switch until the account has traded enough: how often the
    # venue's figure of the account's traded volume is read (volume traded outside mm).
    volume_check_s: float = setting(300.0, positive)


@attrs.frozen
class VolumeGate:
    """The venue refuses the switch until the account has traded ``required`` (USD).
    ``traded`` is what it has traded as far as mm knows: the venue's latest figure plus the
    fills since (None: unknown until the venue's figure is read)."""

    required: float
    traded: float | None

    def may_suffice(self) -> bool:
        """Enough volume traded for the venue to be asked again."""
        return self.traded is not None and self.traded >= self.required

    def plus(self, usd: float) -> VolumeGate:
        """After a fill of ``usd`` notional."""
        if self.traded is None:
            return self
        return attrs.evolve(self, traded=self.traded + abs(usd))

    def describe(self) -> str:
        traded = "unknown" if self.traded is None else f"${self.traded:,.2f}"
        return (
            f"the venue arms it only for an account that has traded ${self.required:,.0f} "
            f"(traded {traded})"
        )


class DeadmanKeeper:
    """The shell that keeps the switch armed (see the module). Told of fills (``on_fill``) and
    of refusals met elsewhere (``refused``, the kill switch's backstop); read by status, the
    kill switch (``unavailable``) and the metrics."""

    def __init__(
        self,
        switch: DeadMansSwitch,
        config: DeadmanConfig,
        *,
        healthy: Callable[[], bool],
        now_ms: Callable[[], int],
        registry: CollectorRegistry | None = None,
    ) -> None:
        self.switch = switch
        self.config = config
        self.healthy = healthy
        self.now_ms = now_ms
        self.armed_until_ms: int | None = None
        self.triggers: deque[float] = deque()  # trio times when an armed switch fired
        self.errors = 0
        self.last_error: str | None = None
        self.stopping = False  # set by disarm_for_stop
        self.gate: VolumeGate | None = None  # the venue refuses the switch for volume
        self.refusals = 0  # the venue's refusals for volume
        self._volume_read_at: float | None = None  # trio time the venue's figure was last asked
        self._available: Gauge | None = None
        self._armed: Gauge | None = None
        if registry is not None:
            self._available = Gauge(
                "mm_deadman_switch_available",
                "1 when the venue's dead-man's switch can be armed for the account; 0 when it "
                "is unavailable (refused until enough volume is traded, the day's triggers "
                "used, or disabled).",
                registry=registry,
            )
            self._armed = Gauge(
                "mm_deadman_switch_armed",
                "1 while the venue's dead-man's switch is armed.",
                registry=registry,
            )
            self._available.set(1.0 if config.enabled else 0.0)  # no trio clock to read yet

    # --- what others read and tell ---------------------------------------------------------

    def triggers_left(self) -> int:
        horizon = trio.current_time() - DAY_S
        while self.triggers and self.triggers[0] <= horizon:
            self.triggers.popleft()
        return VENUE_TRIGGERS_PER_DAY - self.config.reserve_triggers - len(self.triggers)

    def unavailable(self) -> str | None:
        """Why the switch is not kept armed, known without asking the venue: disabled, or
        the venue would refuse it (``would_refuse``); None when it is kept armed."""
        if not self.config.enabled:
            return "disabled (feeds.deadman.enabled = false)"
        return self.would_refuse()

    def would_refuse(self) -> str | None:
        """Why the venue would refuse the switch now, known without asking it (the account
        has not traded enough, the day's triggers are used); None: ask."""
        if self.gate is not None and not self.gate.may_suffice():
            return self.gate.describe()
        if self.triggers_left() <= 0:
            return "the day's trigger budget is used"
        return None

    def on_fill(self, notional_usd: float) -> None:
        """A fill of the account: its volume counts toward the venue's gate."""
        if self.gate is not None:
            self.gate = self.gate.plus(notional_usd)

    def refused(self, refusal: SwitchNeedsVolume) -> None:
        """The venue refused the switch for volume (here, or to the kill switch's backstop):
        ask no more until the account has traded what the venue requires."""
        first = self.gate is None
        asked_again = self.gate is not None and self.gate.may_suffice()
        self.refusals += 1
        self.gate = VolumeGate(refusal.required, refusal.traded)
        # The refusal's figure is fresh; the venue's own is read at once only when it is not.
        self._volume_read_at = trio.current_time() if refusal.traded is not None else None
        self.armed_until_ms = None
        if first:
            logger.warning(
                "dead-man's switch unavailable: the venue says {!r}; not asked again until the "
                "account has traded ${:,.0f} (fills counted, the venue's figure read every {:g}s);"
                " the kill switch retries its cancel-all until no order is left instead",
                refusal.text,
                refusal.required,
                self.config.volume_check_s,
            )
        elif asked_again:
            logger.warning("dead-man's switch refused again: {!r}", refusal.text)
        self._export()

    def status(self) -> dict[str, Any]:
        """For ``/status`` and ``mm status``: available or why not, armed until when."""
        why = self.unavailable()
        armed = self.armed_until_ms is not None and self.now_ms() < self.armed_until_ms
        if why is not None:
            state, detail = "unavailable", why
        elif armed:
            state, detail = "armed", f"armed {self.config.lead_s:g}s ahead, refreshed while healthy"
        else:
            state = "not armed"
            detail = "armed while in sync with fresh books" + (
                f"; the last request failed: {self.last_error}" if self.last_error else ""
            )
        gate = self.gate
        return {
            "state": state,
            "available": why is None,
            "detail": detail,
            "armed_until": self.armed_until_ms / 1000 if armed and self.armed_until_ms else None,
            "required_volume": gate.required if gate is not None else None,
            "traded_volume": gate.traded if gate is not None else None,
            "refusals": self.refusals,
            "triggers_left": self.triggers_left(),
            "errors": self.errors,
        }

    def _export(self) -> None:
        if self._available is not None and self._armed is not None:
            self._available.set(0.0 if self.unavailable() is not None else 1.0)
            self._armed.set(1.0 if self.armed_until_ms is not None else 0.0)

    # --- the child --------------------------------------------------------------------------

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        task_status.started()
        if not self.config.enabled:
            await trio.sleep_forever()
        try:
            while True:
                self._count_fired()
                if not self.stopping:  # disarmed for a stop: never armed again
                    await self._refresh()
                self._export()
                await trio.sleep(self.config.refresh_s)
        finally:
            with trio.move_on_after(5, shield=True):
                await self._disarm()

    async def _refresh(self) -> None:
        """Arm the switch again, unless the venue would refuse it for volume (its figure is
        read then, every ``volume_check_s``), the service is not healthy, or the day's triggers
        are used."""
        if self.gate is not None and not self.gate.may_suffice():
            await self._check_volume()
            if not self.gate.may_suffice():
                return
        if self.healthy() and self.triggers_left() > 0:
            await self._arm()
        elif self.triggers_left() <= 0:
            logger.warning("dead-man's switch not armed: daily trigger budget used")

    def _count_fired(self) -> None:
        if self.armed_until_ms is not None and self.now_ms() >= self.armed_until_ms:
            self.triggers.append(trio.current_time())
            self.armed_until_ms = None
            logger.warning("dead-man's switch fired: the venue canceled every order")

    async def _check_volume(self) -> None:
        """While refused for volume: the venue's figure of the account's volume, every
        ``volume_check_s``."""
        now = trio.current_time()
        read_at = self._volume_read_at
        if read_at is not None and now - read_at < self.config.volume_check_s:
            return
        self._volume_read_at = now
        try:
            traded = await self.switch.traded_volume()
        except Exception as error:  # asked again at the next check
            logger.warning("dead-man's switch: the account's traded volume unread: {}", error)
            return
        gate = self.gate
        if gate is not None:
            self.gate = attrs.evolve(gate, traded=traded)
            if self.gate.may_suffice():
                logger.info(
                    "dead-man's switch: the account has traded ${:,.2f}; asking the venue again",
                    traded,
                )

    async def _arm(self) -> None:
        at_ms = self.now_ms() + int(self.config.lead_s * 1000)
        if await self._call(at_ms):
            if self.gate is not None:
                logger.info("dead-man's switch available: the venue armed it")
            self.gate = None
            self.armed_until_ms = at_ms

    async def disarm_for_stop(self) -> None:
        """A graceful stop: disarm now, while the connection still runs, and never arm again
        (a switch left armed fires after the stop and spends one of the day's triggers)."""
        self.stopping = True
        await self._disarm()

    async def _disarm(self) -> None:
        if self.armed_until_ms is not None and await self._call(None):
            self.armed_until_ms = None

    async def _call(self, at_ms: int | None) -> bool:
        try:
            await self.switch.schedule_cancel(at_ms)
        except SwitchNeedsVolume as refusal:
            self.refused(refusal)
            return False
        except Exception as error:  # a failed refresh must not kill the keeper
            self.errors += 1
            self.last_error = str(error)
            logger.warning("dead-man's switch request failed: {}", error)
            return False
        self.last_error = None
        return True
