"""Ten minutes of trading with a fifth of the WebSocket post replies lost (issue 12, item 6).

With the shipped config.toml on virtual time. Lost acks leave orders (and the account polls sent
over the same socket) unanswered for the post timeout before REST answers; the liquidation
detector compared the venue's position, stamped when a slow reply finally arrived, with fills
that had already left its 5 s window, and tripped the kill switch ("liquidation_detected") with
no liquidation on the venue. Readings are now stamped with the time their request was sent.
"""

from __future__ import annotations

from pathlib import Path

import trio

from tests.e2e.virtual import positions_at_venue, shipped_service, wait_for


async def test_lost_post_replies_never_look_like_a_liquidation(
    tmp_path: Path, autojump_clock: trio.abc.Clock
) -> None:
    faults = {"sim.faults.ws_drop_post_replies": 0.2}
    async with shipped_service(tmp_path / "run", faults) as service:
        await trio.sleep(600.0)
        status = service.status()
        assert status["killswitch"]["tripped"] is False, status["killswitch"]
        assert status["killswitch"]["trips"] == 0
        positions = service.trading.positions
        fills = sum(
            positions.get(coin).fills_buy + positions.get(coin).fills_sell
            for coin in service.config.strategy.symbols
        )
        assert fills >= 20  # the detector had fills to explain, acks lost among them

        def agree() -> bool:
            venue = positions_at_venue(service)
            return all(
                abs(positions.position(coin) - venue.get(coin, 0.0)) < 1e-9
                for coin in service.config.strategy.symbols
            )

        await wait_for(agree, within=10.0)
