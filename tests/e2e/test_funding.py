"""Hourly funding end to end on the shipped config.toml, on virtual time (``tests/e2e/virtual.py``):
the simulator settles funding on the hour on the positions mm holds and pushes it on the ``user``
channel, as the venue does; mm journals every payment (it used to drop the event), and
``mm report`` counts it in the day's PnL. Issue 14, item 7.

mm trades from the start, but whether it holds a position on the hour is up to its fills (it was
flat then about one run in ten, so the venue paid nothing). Just before the hour the test gives
the account a position that no fill can undo before the venue settles (see `hold_through_the_hour`).
"""

from __future__ import annotations

import argparse
import datetime
import math
import secrets
from pathlib import Path

import orjson
import pytest
import trio

from mm import clock
from mm.cli import cmd_report
from mm.journal import DATABASE_NAME, read_events
from mm.ops.report import build_report, read_day, render_text
from mm.venues.sim.venue import SimVenue
from tests.e2e.outside import take
from tests.e2e.virtual import SHIPPED_CONFIG, shipped_env, shipped_service, venue, wait_for

HOUR = datetime.datetime(2026, 3, 2, 12, 0, tzinfo=datetime.UTC)  # a UTC hour: funding time
HOUR_MS = int(HOUR.timestamp() * 1000)
HELD_COIN = "BTC"
MARGIN_USD = 100.0  # two of the shipped order size (50 USD) beyond what mm rests against it


def hold_through_the_hour(sim: SimVenue, user: str) -> str:
    """Give ``user`` a ``HELD_COIN`` position that lasts until the venue settles the hour: one
    taking IOC (as another client of the account would send) makes it larger, by ``MARGIN_USD``,
    than every order of the account resting against it. Called less than a market step before
    the hour, only those resting orders can fill before the settlement: an order mm places now
    commits after the venue's commit delay (at least 200 ms), past the hour's step."""
    spec = sim.engine.by_name[HELD_COIN]
    account = sim.engine.account(user)
    assert account is not None
    for _ in range(10):  # a buy may also meet the account's own asks: look again
        lots = account.position(spec.index).szi
        longs = lots >= 0
        against = sum(
            order.sz
            for order in sim.engine.open_orders(user)
            if order.asset == spec.index and order.is_buy != longs
        )
        mark = sim.engine.mark(spec.index)
        assert mark is not None
        margin = math.ceil(MARGIN_USD / mark * 10**spec.sz_decimals)
        if abs(lots) >= against + margin:
            return HELD_COIN
        missing = against + margin - abs(lots)
        take(sim, user, HELD_COIN, longs, missing / 10**spec.sz_decimals)
    raise AssertionError(f"could not hold a {HELD_COIN} position through the hour")


async def test_hourly_funding_is_journaled_and_counted_in_the_report(
    tmp_path: Path, autojump_clock: trio.abc.Clock, capsys: pytest.CaptureFixture[str]
) -> None:
    clock.pin(HOUR.timestamp() - 240.0)  # four minutes of trading before the hour
    run_dir = tmp_path / "run"
    key = "0x" + secrets.token_hex(32)
    async with shipped_service(run_dir, secrets={"MM_HL_PRIVATE_KEY": key}) as service:
        sim = venue(service)
        account = service.adapter.account
        # mm trades from the start; half a market step before the hour the account is made to
        # hold a position through it, whatever mm's fills did to it.
        step = sim.config.market.step_ms / 1000
        await trio.sleep(HOUR.timestamp() - step / 2 - clock.wall())
        assert sim.now_ms() < HOUR_MS
        assert not sim.engine.fundings.get(account)
        held = hold_through_the_hour(sim, account)
        # The venue settles the hour on what the account holds then.
        await wait_for(lambda: bool(sim.engine.fundings.get(account)), within=60)
        paid = list(sim.engine.fundings[account])
        assert {payment.time for payment in paid} == {HOUR_MS}
        assert held in {sim.specs[payment.asset].name for payment in paid}
        assert all(payment.rate == sim.config.funding_rate == 0.0000125 for payment in paid)
        stream = service.adapter.user_stream
        assert stream is not None
        await wait_for(lambda: stream.forwarded["funding"] == len(paid), within=30)
    # Stopped: the journal is flushed. Every payment is there once, as the venue made it.
    journaled = [entry.data for entry in read_events(run_dir / DATABASE_NAME, "funding")]
    venue_side = {
        (sim.specs[p.asset].name, p.usdc, sim.specs[p.asset].sz_float(p.szi)) for p in paid
    }
    assert {(e["coin"], e["usdc"], e["szi"]) for e in journaled} == venue_side
    assert len(journaled) == len(paid)
    assert all(e["time_ms"] == HOUR_MS and e["funding_rate"] == 0.0000125 for e in journaled)

    day = HOUR.date()
    report = build_report(day, *read_day(run_dir / DATABASE_NAME, day))
    funding = math.fsum(p.usdc for p in paid)
    assert report.total.funding_payments == len(paid)
    assert report.total.funding == pytest.approx(funding)
    assert report.total.net_pnl == pytest.approx(
        report.total.realized_pnl - report.total.fees + funding
    )
    assert f"({len(paid)} payments)" in render_text(report)
    # What `mm report --json` prints for that day says the same.
    capsys.readouterr()
    args = argparse.Namespace(config=str(SHIPPED_CONFIG), date=day.isoformat(), json=True)
    assert cmd_report(args, shipped_env(run_dir)) == 0
    printed = orjson.loads(capsys.readouterr().out)
    assert printed["total"]["funding"] == pytest.approx(funding)
    assert printed["total"]["net_pnl"] == pytest.approx(report.total.net_pnl)
