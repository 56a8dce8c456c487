"""The one poller of the venue's account, which risk and autonomy share.

``AccountWatch.run`` (inside the ``health`` child) reads the venue's account state (account
value, margin, positions) every ``every_s`` seconds, and takes the account snapshot of every
user-stream resync as soon as it lands. Each reading is stamped with the Trio time its request
was *sent*, so a comparison with fills (liquidation detection) is made against the fills known
by then. A reading asked for out of turn (``read_now``: the kill switch's, after its cancel, over
every path to the venue) is stamped and published the same way. Readers get the latest reading
(the health snapshot carries it, with its age); risk's liquidation detector gets every reading,
in order, through a memory channel. A failed poll is
logged at DEBUG and retried on the next period: the last reading stays (with its age), and no
value is invented while none has been read.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import trio
from loguru import logger

from mm.health.snapshot import AccountReading
from mm.model import AccountState
from mm.venues.base import VenueAdapter


class AccountWatch:
    """Keeps the venue's account state current (see the module docstring)."""

    def __init__(self, adapter: VenueAdapter, every_s: float) -> None:
        self._adapter = adapter
        self._every_s = every_s
        self.latest: AccountReading | None = None
        self._send, self.readings = trio.open_memory_channel[AccountReading](64)
        self._resync_seen: object = None

    def _publish(self, reading: AccountReading) -> None:
        if self.latest is None or reading.requested_at >= self.latest.requested_at:
            self.latest = reading
        try:
            self._send.send_nowait(reading)
        except trio.WouldBlock:  # the detector is behind: it only needs the newest ones
            logger.debug("account readings queue full; reading dropped for the detector")

    async def read_now(
        self, read: Callable[[], Awaitable[AccountState | None]]
    ) -> AccountState | None:
        """A reading out of turn, by ``read`` (None: it got no answer, and nothing is
        published); stamped with the time it was asked for and published as a poll's is. It
        fails as ``read`` fails."""
        sent = trio.current_time()
        account = await read()
        if account is not None:
            self._publish(AccountReading(account, sent))
        return account

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        task_status.started()
        next_poll = trio.current_time()
        while True:
            self._take_resync()
            if trio.current_time() >= next_poll:
                next_poll = trio.current_time() + self._every_s
                await self._poll()
            await trio.sleep(min(0.25, self._every_s))

    def _take_resync(self) -> None:
        """A resync's account snapshot, once per resync."""
        snapshot = self._adapter.resync_snapshot
        if snapshot is None or snapshot is self._resync_seen:
            return
        self._resync_seen = snapshot
        self._publish(AccountReading(snapshot.account, trio.current_time() - snapshot.duration_s))

    async def _poll(self) -> None:
        client = self._adapter.client
        if client is None:
            return
        sent = trio.current_time()
        try:
            account = await client.account_state()
        except Exception as error:  # a failed poll is retried next period
            logger.debug("account poll failed: {}", error)
            return
        self._publish(AccountReading(account, sent))
