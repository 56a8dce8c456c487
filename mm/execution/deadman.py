"""The dead-man's switch: keep the venue's ``scheduleCancel`` a set time ahead while healthy.

While the service is healthy the keeper re-arms the switch every ``refresh_s`` for ``lead_s``
ahead, so it never fires. When the service stops being healthy (or the keeper is cancelled, or
the process dies) the refreshes stop and the venue cancels every order at the armed time. The
venue allows 10 triggers a day; a trigger is counted when an armed time passes without a
refresh, and the keeper stops arming (and says so) before the venue would refuse. On a clean
stop it disarms the switch.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from typing import Protocol

import attrs
import trio
from loguru import logger

from mm.settings import at_least, positive, setting

DAY_S = 86_400.0
VENUE_TRIGGERS_PER_DAY = 10


class Switch(Protocol):
    async def schedule_cancel(self, at_ms: int | None) -> None: ...


@attrs.frozen
class DeadmanConfig:
    enabled: bool = setting(True)
    # How far ahead the switch is armed, and how often it is pushed forward.
    lead_s: float = setting(30.0, at_least(5))
    refresh_s: float = setting(10.0, positive)
    # Triggers a day to leave unused, of the venue's 10.
    reserve_triggers: int = setting(1, at_least(0))


class DeadmanKeeper:
    def __init__(
        self,
        switch: Switch,
        config: DeadmanConfig,
        *,
        healthy: Callable[[], bool],
        now_ms: Callable[[], int],
    ) -> None:
        self.switch = switch
        self.config = config
        self.healthy = healthy
        self.now_ms = now_ms
        self.armed_until_ms: int | None = None
        self.triggers: deque[float] = deque()  # trio times when an armed switch fired
        self.errors = 0
        self.stopping = False  # set by disarm_for_stop

    def triggers_left(self) -> int:
        horizon = trio.current_time() - DAY_S
        while self.triggers and self.triggers[0] <= horizon:
            self.triggers.popleft()
        return VENUE_TRIGGERS_PER_DAY - self.config.reserve_triggers - len(self.triggers)

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        task_status.started()
        if not self.config.enabled:
            await trio.sleep_forever()
        try:
            while True:
                self._count_fired()
                if self.stopping:
                    pass  # disarmed for a stop: never armed again
                elif self.healthy() and self.triggers_left() > 0:
                    await self._arm()
                elif self.triggers_left() <= 0:
                    logger.warning("dead-man's switch not armed: daily trigger budget used")
                await trio.sleep(self.config.refresh_s)
        finally:
            with trio.move_on_after(5, shield=True):
                await self._disarm()

    def _count_fired(self) -> None:
        if self.armed_until_ms is not None and self.now_ms() >= self.armed_until_ms:
            self.triggers.append(trio.current_time())
            self.armed_until_ms = None
            logger.warning("dead-man's switch fired: the venue canceled every order")

    async def _arm(self) -> None:
        at_ms = self.now_ms() + int(self.config.lead_s * 1000)
        if await self._call(at_ms):
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
        except Exception as error:  # a failed refresh must not kill the keeper
            self.errors += 1
            logger.warning("dead-man's switch request failed: {}", error)
            return False
        return True
