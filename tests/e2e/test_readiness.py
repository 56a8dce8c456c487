"""Liveness is not readiness (issue 13, item 10), on the shipped config.toml in virtual time.

``/healthz`` stays 200 while mm is alive, whatever it decided (a container runtime must not
restart a service that stopped trading on purpose); ``/readyz`` is 200 only while it trades and
503 with the reason while the kill switch is tripped or the mode is REDUCE_ONLY or HALT; and
``mm status`` says "NOT TRADING" with the reason and exits 1. All three used to say healthy.
"""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
import trio

from mm.app import Service
from mm.cli import EXIT_FAILURE, EXIT_OK, build_parser
from mm.ops.autonomy import Mode, Reason, Trigger
from tests.e2e.virtual import (
    SHIPPED_CONFIG,
    admin_client,
    resting_sides,
    shipped_env,
    shipped_service,
    wait_for,
)


def quoting(service: Service) -> bool:
    sides = resting_sides(service)
    return all(sides.get(coin) == {"B", "A"} for coin in service.config.strategy.symbols)


async def mm_status(run_dir: Path, capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    """``mm status -c config.toml`` against the in-process service, as the operator runs it
    (the command is synchronous: it runs in a thread while the service serves it)."""
    args = build_parser().parse_args(["status", "-c", str(SHIPPED_CONFIG)])
    capsys.readouterr()
    code: int = await trio.to_thread.run_sync(args.command, args, shipped_env(run_dir))
    return code, capsys.readouterr().out


async def probes(admin: httpx.AsyncClient) -> tuple[int, int, list[str]]:
    """(/healthz status, /readyz status, /readyz reasons)."""
    health = await admin.get("/healthz")
    ready = await admin.get("/readyz")
    return health.status_code, ready.status_code, ready.json().get("reasons", [])


async def test_healthz_stays_alive_while_readyz_and_mm_status_say_not_trading(
    tmp_path: Path, autojump_clock: trio.abc.Clock, capsys: pytest.CaptureFixture[str]
) -> None:
    run_dir = tmp_path / "run"
    async with shipped_service(run_dir) as service, admin_client(service) as admin:
        await wait_for(lambda: quoting(service), within=90.0)
        assert await probes(admin) == (200, 200, [])
        assert (await admin.get("/readyz")).json() == {"status": "trading"}
        code, shown = await mm_status(run_dir, capsys)
        assert code == EXIT_OK, shown
        assert "trading: yes" in shown

        # The kill switch: alive, not trading.
        assert (await admin.post("/kill", json={"reason": "drill"})).status_code == 200
        health, ready, reasons = await probes(admin)
        assert (health, ready) == (200, 503)
        assert reasons == ["kill switch tripped (manual)"]
        code, shown = await mm_status(run_dir, capsys)
        assert code == EXIT_FAILURE
        assert "health: ok" in shown
        assert "NOT TRADING:\n  - kill switch tripped (manual)" in shown

        # Rearmed: trading again once back in sync.
        rearm = await admin.post("/rearm", json={"reason": "drill over", "who": "test"})
        assert rearm.status_code == 200
        await wait_for(lambda: not service.not_trading(), within=30.0)
        assert await probes(admin) == (200, 200, [])

        # REDUCE_ONLY (mm flatten moves there first): alive, not trading.
        assert (await admin.post("/flatten", json={"reason": "eod"})).status_code == 202
        health, ready, reasons = await probes(admin)
        assert (health, ready) == (200, 503)
        assert reasons == ["mode REDUCE_ONLY (operator_flatten)"]
        code, shown = await mm_status(run_dir, capsys)
        assert code == EXIT_FAILURE
        assert "mode REDUCE_ONLY (operator_flatten)" in shown

        # HALT: alive, not trading.
        await service.coordinator.escalate(
            Trigger(Reason.FLATTEN_DEADLINE_MISSED, Mode.HALT, {"seconds": 1.0})
        )
        health, ready, reasons = await probes(admin)
        assert (health, ready) == (200, 503)
        assert reasons == ["mode HALT (flatten_deadline_missed)"]
        code, shown = await mm_status(run_dir, capsys)
        assert code == EXIT_FAILURE
        assert "mode HALT (flatten_deadline_missed)" in shown
