"""The dead-man's switch keeper, on the virtual clock."""

from __future__ import annotations

import trio
import trio.testing

from mm.execution.deadman import DeadmanConfig, DeadmanKeeper

EPOCH_MS = 1_800_000_000_000


class FakeSwitch:
    """Records calls; fires (cancels everything) when an armed time passes."""

    def __init__(self) -> None:
        self.calls: list[tuple[float, int | None]] = []
        self.armed: int | None = None
        self.fired: list[int] = []
        self.fail = False

    def now_ms(self) -> int:
        return EPOCH_MS + int(trio.current_time() * 1000)

    async def schedule_cancel(self, at_ms: int | None) -> None:
        if self.fail:
            raise RuntimeError("venue unavailable")
        self.calls.append((trio.current_time(), at_ms))
        self.armed = at_ms

    async def watch(self) -> None:
        while True:
            await trio.sleep(0.5)
            if self.armed is not None and self.now_ms() >= self.armed:
                self.fired.append(self.armed)
                self.armed = None


async def test_refreshes_keep_it_from_firing_while_healthy(
    autojump_clock: trio.testing.MockClock,
) -> None:
    switch = FakeSwitch()
    keeper = DeadmanKeeper(
        switch, DeadmanConfig(lead_s=30, refresh_s=10), healthy=lambda: True, now_ms=switch.now_ms
    )
    async with trio.open_nursery() as nursery:
        nursery.start_soon(switch.watch)
        await nursery.start(keeper.run)
        await trio.sleep(3_600)
        nursery.cancel_scope.cancel()
    assert switch.fired == []
    armed = [(t, at) for t, at in switch.calls if at is not None]
    assert len(armed) >= 360
    for sent_at, at_ms in armed:  # always armed a full lead ahead of when it was sent
        assert at_ms - (EPOCH_MS + int(sent_at * 1000)) == 30_000
    assert switch.calls[-1][1] is None  # disarmed on a clean stop


async def test_it_fires_when_health_is_lost(autojump_clock: trio.testing.MockClock) -> None:
    switch = FakeSwitch()
    health = {"ok": True}
    keeper = DeadmanKeeper(
        switch,
        DeadmanConfig(lead_s=30, refresh_s=10),
        healthy=lambda: health["ok"],
        now_ms=switch.now_ms,
    )
    async with trio.open_nursery() as nursery:
        nursery.start_soon(switch.watch)
        await nursery.start(keeper.run)
        await trio.sleep(100)
        health["ok"] = False
        lost_at = trio.current_time()
        await trio.sleep(60)
        assert len(switch.fired) == 1
        assert switch.fired[0] - (EPOCH_MS + int(lost_at * 1000)) <= 30_000
        assert len(keeper.triggers) == 1
        nursery.cancel_scope.cancel()


async def test_the_daily_trigger_budget_is_respected(
    autojump_clock: trio.testing.MockClock,
) -> None:
    switch = FakeSwitch()
    health = {"ok": True}
    keeper = DeadmanKeeper(
        switch,
        DeadmanConfig(lead_s=10, refresh_s=5, reserve_triggers=1),
        healthy=lambda: health["ok"],
        now_ms=switch.now_ms,
    )
    async with trio.open_nursery() as nursery:
        nursery.start_soon(switch.watch)
        await nursery.start(keeper.run)
        for _ in range(12):  # flap: healthy long enough to arm, then lose health until it fires
            health["ok"] = True
            await trio.sleep(6)
            health["ok"] = False
            await trio.sleep(20)
        nursery.cancel_scope.cancel()
    assert len(switch.fired) == 9  # 10 a day, one kept in reserve
    assert keeper.triggers_left() == 0


async def test_failed_requests_do_not_stop_the_keeper(
    autojump_clock: trio.testing.MockClock,
) -> None:
    switch = FakeSwitch()
    keeper = DeadmanKeeper(
        switch, DeadmanConfig(lead_s=30, refresh_s=10), healthy=lambda: True, now_ms=switch.now_ms
    )
    async with trio.open_nursery() as nursery:
        await nursery.start(keeper.run)
        switch.fail = True
        await trio.sleep(25)
        assert keeper.errors >= 2
        switch.fail = False
        await trio.sleep(15)
        assert switch.armed is not None
        nursery.cancel_scope.cancel()


async def test_disabled_never_calls_the_venue(autojump_clock: trio.testing.MockClock) -> None:
    switch = FakeSwitch()
    keeper = DeadmanKeeper(
        switch, DeadmanConfig(enabled=False), healthy=lambda: True, now_ms=switch.now_ms
    )
    async with trio.open_nursery() as nursery:
        await nursery.start(keeper.run)
        await trio.sleep(600)
        nursery.cancel_scope.cancel()
    assert switch.calls == []
