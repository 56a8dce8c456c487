"""The dead-man's switch keeper, on the virtual clock: refreshes, triggers, failures, and a
venue that refuses the switch until the account has traded enough."""

from __future__ import annotations

import trio
import trio.testing
from prometheus_client import CollectorRegistry

from mm.execution.deadman import DeadmanConfig, DeadmanKeeper
from mm.venues.base import SwitchNeedsVolume
from mm.venues.hyperliquid.schedule_cancel import volume_refusal

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

    async def traded_volume(self) -> float:
        raise AssertionError("only asked while the venue refuses the switch for volume")

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


REQUIRED = 1_000_000.0


class GatedSwitch(FakeSwitch):
    """A venue that arms the switch only for an account that has traded ``REQUIRED``, in its
    words; ``traded`` grows as the test says (fills, or trades made elsewhere)."""

    def __init__(self, traded: float = 0.0, *, says_traded: bool = True) -> None:
        super().__init__()
        self.traded = traded
        self.says_traded = says_traded
        self.refused: list[float] = []  # trio times of the refused requests
        self.volume_reads: list[float] = []

    async def schedule_cancel(self, at_ms: int | None) -> None:
        if at_ms is not None and self.traded < REQUIRED:
            self.refused.append(trio.current_time())
            text = volume_refusal(REQUIRED, self.traded)
            traded = self.traded if self.says_traded else None
            raise SwitchNeedsVolume(text, REQUIRED, traded)
        await super().schedule_cancel(at_ms)

    async def traded_volume(self) -> float:
        self.volume_reads.append(trio.current_time())
        return self.traded


def keeper_for(switch: FakeSwitch) -> DeadmanKeeper:
    settings = DeadmanConfig(lead_s=30, refresh_s=10, volume_check_s=300)
    return DeadmanKeeper(switch, settings, healthy=lambda: True, now_ms=switch.now_ms)


async def test_refused_for_volume_it_asks_no_more_until_fills_could_suffice(
    autojump_clock: trio.testing.MockClock,
) -> None:
    switch = GatedSwitch(traded=999_000.0)
    keeper = keeper_for(switch)
    async with trio.open_nursery() as nursery:
        await nursery.start(keeper.run)
        await trio.sleep(255)  # 26 refreshes (at 0, 10, ... s): one request, refused
        assert len(switch.refused) == 1
        assert switch.calls == []
        assert keeper.unavailable() == (
            "the venue arms it only for an account that has traded $1,000,000 (traded $999,000.00)"
        )
        assert keeper.status()["state"] == "unavailable"
        assert keeper.status()["available"] is False
        # Fills: $900 traded, still short; then $100 more reach what the venue requires.
        switch.traded += 900
        keeper.on_fill(900)
        await trio.sleep(30)
        assert len(switch.refused) == 1
        switch.traded += 100
        keeper.on_fill(-100)  # a notional counts whatever its sign
        await trio.sleep(10)
        assert len(switch.refused) == 1
        assert len(switch.calls) == 1  # asked again at the next refresh, and armed
        assert keeper.gate is None
        assert keeper.status()["state"] == "armed"
        assert switch.volume_reads == []  # the fills told it: the venue's figure never needed
        nursery.cancel_scope.cancel()


async def test_volume_traded_elsewhere_is_read_from_the_venue(
    autojump_clock: trio.testing.MockClock,
) -> None:
    switch = GatedSwitch(traded=0.0)
    keeper = keeper_for(switch)
    async with trio.open_nursery() as nursery:
        await nursery.start(keeper.run)
        await trio.sleep(1)
        refused_at = switch.refused[0]
        switch.traded = 2_000_000.0  # traded through another front end: no fill seen here
        await trio.sleep(1_000)
        # Read every volume_check_s after the refusal, then asked once: armed.
        assert switch.volume_reads == [refused_at + 300]
        assert len(switch.refused) == 1
        assert switch.calls[0][0] == refused_at + 300  # asked as soon as it was read
        assert keeper.status()["state"] == "armed"
        nursery.cancel_scope.cancel()


async def test_a_refusal_without_its_figure_reads_the_venues_at_once(
    autojump_clock: trio.testing.MockClock,
) -> None:
    switch = GatedSwitch(traded=10.0, says_traded=False)
    keeper = keeper_for(switch)
    async with trio.open_nursery() as nursery:
        await nursery.start(keeper.run)
        await trio.sleep(15)
        assert len(switch.refused) == 1
        assert switch.volume_reads == [switch.refused[0] + 10]  # the next refresh
        assert keeper.gate is not None
        assert keeper.gate.traded == 10.0
        keeper.on_fill(5.0)
        assert keeper.gate.traded == 15.0
        nursery.cancel_scope.cancel()


async def test_a_refusal_met_by_the_kill_switch_stops_the_keeper_too(
    autojump_clock: trio.testing.MockClock,
) -> None:
    switch = GatedSwitch(traded=5.0)
    keeper = keeper_for(switch)
    keeper.refused(SwitchNeedsVolume(volume_refusal(REQUIRED, 5.0), REQUIRED, 5.0))
    assert keeper.would_refuse() is not None
    async with trio.open_nursery() as nursery:
        await nursery.start(keeper.run)
        await trio.sleep(200)
        nursery.cancel_scope.cancel()
    assert switch.refused == []


async def test_status_and_metrics_say_whether_the_switch_is_available(
    autojump_clock: trio.testing.MockClock,
) -> None:
    registry = CollectorRegistry()
    switch = GatedSwitch(traded=0.0)
    keeper = DeadmanKeeper(
        switch,
        DeadmanConfig(lead_s=30, refresh_s=10),
        healthy=lambda: True,
        now_ms=switch.now_ms,
        registry=registry,
    )

    def gauge(name: str) -> float | None:
        return registry.get_sample_value(name)

    assert (gauge("mm_deadman_switch_available"), gauge("mm_deadman_switch_armed")) == (1, 0)
    async with trio.open_nursery() as nursery:
        await nursery.start(keeper.run)
        await trio.sleep(5)
        assert (gauge("mm_deadman_switch_available"), gauge("mm_deadman_switch_armed")) == (0, 0)
        status = keeper.status()
        assert status["required_volume"] == REQUIRED
        assert status["traded_volume"] == 0.0
        assert status["refusals"] == 1
        switch.traded = REQUIRED
        keeper.on_fill(REQUIRED)
        await trio.sleep(10)
        assert (gauge("mm_deadman_switch_available"), gauge("mm_deadman_switch_armed")) == (1, 1)
        nursery.cancel_scope.cancel()
    disabled = DeadmanKeeper(
        switch,
        DeadmanConfig(enabled=False),
        healthy=lambda: True,
        now_ms=switch.now_ms,
        registry=CollectorRegistry(),
    )
    assert disabled.status()["state"] == "unavailable"
    assert "disabled" in disabled.status()["detail"]
    assert disabled.would_refuse() is None  # the kill switch's backstop may still ask
