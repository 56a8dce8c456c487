"""A feed going down reaches risk and autonomy through the one health snapshot's feed states
(issue 15 item 4), with the shipped config.toml on virtual time: risk pulls at once, not on its
next half-second evaluation, and autonomy counts the disconnect when it happened."""

from __future__ import annotations

from pathlib import Path

import trio

from mm.execution.permissions import Level, Source
from mm.risk.runner import EVALUATE_EVERY_S
from tests.e2e.virtual import shipped_service, sim_client, wait_for


async def test_the_market_feed_dropping_pulls_risk_at_once_and_counts_once(
    tmp_path: Path, autojump_clock: trio.abc.Clock
) -> None:
    async with shipped_service(tmp_path / "run") as service, sim_client(service) as sim:
        await wait_for(service.adapter.healthy, within=60.0)
        await wait_for(lambda: service.monitor.readings.book_ages_s != {}, within=5.0)
        assert service.permissions.grant(Source.RISK).level is Level.OPEN
        assert service.monitor.readings.reconnects == 0

        def market_state() -> str | None:
            status = service.feed_states.statuses().get("market")
            return status.state if status is not None else None

        assert (await sim.post("/sim/disconnect")).json()["closed"] == 2
        await wait_for(lambda: market_state() == "reconnecting", within=30.0, poll=0.001)
        down_at = service.feed_states.statuses()["market"].since
        # Within milliseconds of virtual time: the evaluation the change itself asked for, not
        # risk's next timer (every 0.5 s).
        await wait_for(
            lambda: service.permissions.grant(Source.RISK).level is Level.PULLED,
            within=0.002,
            poll=0.0005,
        )
        assert trio.current_time() - down_at < EVALUATE_EVERY_S / 100
        decision = service.risk.decision
        assert decision is not None
        assert any("market reconnecting" in reason for reason in decision.reasons)
        # Autonomy counted the drop (the market and user feeds together: one disconnect), and
        # both judge the same snapshot: the account reading risk values is autonomy's.
        await trio.sleep(2 * service.config.autonomy.check_every_s)
        assert service.monitor.readings.reconnects == 1
        snapshot = service.health.snapshot()
        assert snapshot.feeds["market"].reconnects == 1
        assert snapshot.account_value == service.risk.state(trio.current_time()).account_value
        # The account reading's age, as autonomy read it: within a poll period or two.
        age = service.status()["mode"]["health"]["account_age_s"]
        assert isinstance(age, float)
        assert 0.0 <= age < 2 * service.config.autonomy.venue_poll_s
