"""The one account poller: a reading asked for out of turn (the kill switch's) is stamped with
the time it was asked for and published as a poll's is, to the latest reading and to risk's
detector; a read that got no answer publishes nothing."""

from __future__ import annotations

from typing import cast

import trio

from mm.health.account import AccountWatch
from mm.health.snapshot import AccountReading
from mm.model import AccountState, Position
from mm.venues.base import VenueAdapter


def account(time_ms: int, eth: float) -> AccountState:
    position = Position("ETH", eth, 2_000.0, 0.0, None, 0.0, 1)
    return AccountState(time_ms, 10_000.0, 100.0, 9_900.0, (position,))


async def test_a_reading_out_of_turn_is_published_with_the_time_it_was_asked_for(
    autojump_clock: trio.abc.Clock,
) -> None:
    watch = AccountWatch(cast(VenueAdapter, None), every_s=2.0)  # the adapter is for run()
    asked = trio.current_time()

    async def read() -> AccountState:
        await trio.sleep(0.3)  # the venue takes its time to answer
        return account(1_000, 0.5)

    assert await watch.read_now(read) == account(1_000, 0.5)
    expected = AccountReading(account(1_000, 0.5), asked)
    assert watch.latest == expected
    assert watch.readings.receive_nowait() == expected  # risk's detector hears it too

    async def nothing() -> AccountState | None:
        return None

    assert await watch.read_now(nothing) is None
    assert watch.latest == expected  # no answer: nothing invented, the last reading stays
    assert watch.readings.statistics().current_buffer_used == 0
