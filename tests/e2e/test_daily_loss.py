"""The daily loss limit holds for the UTC day, not for the process (issue 13, item 3).

End to end on the shipped config.toml (``risk.max_daily_loss = 500``) on virtual time, with the
venue outliving the service (``tests/e2e/outside.py``). The account loses more than the limit
on BTC while mm is down; at the restart those fills reach the journal and the day's PnL, and
the loss limit trips the kill switch. "Daily" PnL used to be PnL since the process started, so
that restart saw none of it, and a restart after a loss-limit trip cleared the day's loss: the
rearm it refused is refused after another restart too. At 00:00 UTC the day's PnL and its
peak start again, and the rearm is allowed.
"""

from __future__ import annotations

import datetime
from pathlib import Path

import trio

from mm import clock
from mm.app import Service
from mm.venues.sim.venue import SimVenue
from tests.e2e.outside import in_sync, journaled_keys, lose, outside_venue, take
from tests.e2e.virtual import shipped_service, wait_for

NOON = datetime.datetime(2026, 6, 1, 12, 0, tzinfo=datetime.UTC).timestamp()
MIDNIGHT = datetime.datetime(2026, 6, 2, 0, 0, tzinfo=datetime.UTC).timestamp()


def loss_monitor(service: Service) -> str | None:
    monitors: dict[str, str] = service.risk.status().get("monitors", {})
    return monitors.get("loss")


async def journal_a_fill(service: Service, venue: SimVenue) -> None:
    """A first run that journals a fill (one made behind its back, at once): the journal then
    says where the history ends."""
    await in_sync(service)
    user = service.adapter.account
    take(venue, user, "ETH", True, 0.01)
    await wait_for(lambda: len(journaled_keys(service)) >= 1, within=5)


async def test_a_restart_does_not_wipe_the_days_loss(
    tmp_path: Path, autojump_clock: trio.abc.Clock
) -> None:
    clock.pin(NOON)
    run_dir = tmp_path / "run"
    async with outside_venue(tmp_path) as venue:
        overrides = {"venue.url": venue.url}
        async with shipped_service(run_dir, overrides) as service:
            user = service.adapter.account
            limit = service.config.risk.max_daily_loss
            await journal_a_fill(service, venue)
        await lose(venue, user, limit * 1.2)  # while mm is down

        # The fills made while down count for the day: the loss limit trips at the restart.
        async with shipped_service(run_dir, overrides) as service:
            await wait_for(lambda: service.killswitch.switch.tripped, within=10)
            assert service.killswitch.status()["reason"] == "max_loss"
            assert service.risk.status()["daily_pnl"] < -limit

        # Restarted again the same day: the loss is still the day's; the rearm stays refused.
        async with shipped_service(run_dir, overrides) as service:
            await in_sync(service)
            await wait_for(lambda: loss_monitor(service) == "kill", within=5)
            status = service.risk.status()
            assert status["day"] == "2026-06-01"
            assert status["daily_pnl"] < -limit
            assert "loss" in [blocker.monitor for blocker in service.risk.rearm_blockers()]
            outcome = await service.killswitch.rearm_request("test", "a restart clears nothing")
            assert outcome.refused
            assert service.killswitch.switch.tripped


async def test_the_day_rolls_at_midnight_utc(
    tmp_path: Path, autojump_clock: trio.abc.Clock
) -> None:
    clock.pin(MIDNIGHT - 300)  # 23:55 UTC
    run_dir = tmp_path / "run"
    async with outside_venue(tmp_path) as venue:
        overrides = {"venue.url": venue.url}
        async with shipped_service(run_dir, overrides) as service:
            user = service.adapter.account
            limit = service.config.risk.max_daily_loss
            await journal_a_fill(service, venue)
        await lose(venue, user, limit * 1.2)

        async with shipped_service(run_dir, overrides) as service:
            await wait_for(lambda: service.killswitch.switch.tripped, within=10)
            assert service.killswitch.status()["reason"] == "max_loss"
            assert service.risk.status()["day"] == "2026-06-01"
            assert clock.wall() < MIDNIGHT - 30, MIDNIGHT - clock.wall()
            refused = await service.killswitch.rearm_request("test", "before midnight")
            assert refused.refused
            # 00:00 UTC: the day's PnL and its peak start again, on the one clock.
            await trio.sleep(MIDNIGHT - clock.wall() - 1)
            assert service.risk.status()["day"] == "2026-06-01"
            await wait_for(lambda: service.risk.status()["day"] == "2026-06-02", within=2)
            assert clock.wall() >= MIDNIGHT
            status = service.risk.status()
            assert status["daily_pnl"] > -limit
            assert status["peak_pnl"] == max(status["daily_pnl"], 0.0)
            assert loss_monitor(service) == "none"
            rearmed = await service.killswitch.rearm_request("test", "a new day")
            assert not rearmed.refused
            assert not service.killswitch.switch.tripped
