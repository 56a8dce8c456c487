"""Session governor on Trio's autojump clock: phase changes at the schedule's exact instants."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
import trio
import trio.testing
from prometheus_client import CollectorRegistry

from mm.ops.governor import MAX_SLEEP_S, PhaseChange, SessionGovernor, WallClock
from mm.ops.session import Phase, SessionConfig, TrackGate
from mm.settings import structure_section

C = Phase.CLOSED
P = Phase.PRE_OPEN
O = Phase.OPEN  # noqa: E741
CO = Phase.CLOSE_ONLY
FF = Phase.FORCE_FLAT


def schedule(*changes: tuple[str, str]) -> list[dict[str, str]]:
    return [{"phase": phase, "at": at} for phase, at in changes]


TAIPEI: dict[str, Any] = {
    "name": "tw_stock",
    "symbols": ["2330", "2317"],
    "timezone": "Asia/Taipei",
    "days": ["mon", "tue", "wed", "thu", "fri"],
    "schedule": schedule(
        ("pre_open", "08:30"),
        ("open", "09:00"),
        ("close_only", "13:25"),
        ("force_flat", "13:29"),
        ("closed", "13:30"),
    ),
}
CHICAGO: dict[str, Any] = {
    "name": "cme",
    "symbols": ["ES"],
    "timezone": "America/Chicago",
    "days": ["sun", "mon", "tue", "wed", "thu"],
    "schedule": schedule(
        ("pre_open", "16:45"),
        ("open", "17:00"),
        ("close_only", "15:55"),
        ("force_flat", "15:58"),
        ("closed", "16:00"),
    ),
}
CRYPTO: dict[str, Any] = {
    "name": "crypto",
    "symbols": ["BTC", "ETH"],
    "always_open": True,
    "maintenance": [{"start": "23:50", "end": "00:10"}],
}


def utc(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=UTC)


def epoch(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> float:
    return utc(year, month, day, hour, minute).timestamp()


class Harness:
    """A governor with its gate, registry and the changes it reported."""

    def __init__(self, clock: WallClock, *tracks: dict[str, Any]) -> None:
        self.config = structure_section({"tracks": list(tracks)}, SessionConfig, "session")
        assert self.config.problems() == []
        self.gate = TrackGate(self.config)
        self.registry = CollectorRegistry()
        self.clock = clock
        self.changes: list[PhaseChange] = []
        self.governor = SessionGovernor(self.config, self.gate, clock, self.record, self.registry)

    async def record(self, change: PhaseChange) -> None:
        self.changes.append(change)

    def gauge(self, track: str) -> float | None:
        return self.registry.get_sample_value("mm_session_phase", {"track": track})

    def counted(self, track: str, phase: Phase) -> float | None:
        return self.registry.get_sample_value(
            "mm_session_phase_changes_total", {"track": track, "phase": phase.label}
        )

    def seen(self, track: str) -> list[tuple[Phase, Phase, float]]:
        return [(c.previous, c.phase, c.at) for c in self.changes if c.track == track]

    async def sleep_until_wall(self, when: datetime) -> None:
        await trio.sleep_until(self.clock.deadline(when))


def assert_sequence(
    seen: list[tuple[Phase, Phase, float]], expected: list[tuple[Phase, float]]
) -> None:
    assert [phase for _, phase, _ in seen] == [phase for phase, _ in expected]
    for (_, _, at), (_, want) in zip(seen, expected, strict=True):
        assert at == pytest.approx(want, abs=1e-3)
    previous = [Phase.INIT] + [phase for phase, _ in expected[:-1]]
    assert [before for before, _, _ in seen] == previous


async def test_wall_clock_follows_trio_time(autojump_clock: trio.testing.MockClock) -> None:
    clock = WallClock.start(epoch(2026, 3, 8, 6, 0))
    assert clock.now() == utc(2026, 3, 8, 6, 0)
    await trio.sleep(90.5)
    assert clock.time() == pytest.approx(epoch(2026, 3, 8, 6, 1) + 30.5)
    target = utc(2026, 3, 9)
    await trio.sleep_until(clock.deadline(target))
    assert clock.time() == pytest.approx(target.timestamp())
    clock.resync()  # fixed clocks do not follow the system clock
    assert clock.time() == pytest.approx(target.timestamp())


async def test_day_schedule(autojump_clock: trio.testing.MockClock) -> None:
    clock = WallClock.start(epoch(2026, 3, 9, 0, 0))  # Monday 08:00 in Taipei
    harness = Harness(clock, TAIPEI)
    async with trio.open_nursery() as nursery:
        await nursery.start(harness.governor.run)
        assert harness.gate.phase("2330") is C
        await harness.sleep_until_wall(utc(2026, 3, 10, 0, 45))
        nursery.cancel_scope.cancel()
    assert_sequence(
        harness.seen("tw_stock"),
        [
            (C, epoch(2026, 3, 9, 0, 0)),
            (P, epoch(2026, 3, 9, 0, 30)),
            (O, epoch(2026, 3, 9, 1, 0)),
            (CO, epoch(2026, 3, 9, 5, 25)),
            (FF, epoch(2026, 3, 9, 5, 29)),
            (C, epoch(2026, 3, 9, 5, 30)),
            (P, epoch(2026, 3, 10, 0, 30)),
        ],
    )
    assert harness.changes[-1].symbols == ("2330", "2317")
    assert harness.gate.phase("2317") is P
    assert harness.gauge("tw_stock") == float(P)
    assert harness.counted("tw_stock", C) == 2
    assert harness.counted("tw_stock", O) == 1


async def test_night_session_across_midnight_and_dst(
    autojump_clock: trio.testing.MockClock,
) -> None:
    # Sunday 2026-03-08 00:00 CST; DST starts at 02:00, so Sunday's session opens on CDT.
    clock = WallClock.start(epoch(2026, 3, 8, 6, 0))
    harness = Harness(clock, CHICAGO, CRYPTO)
    async with trio.open_nursery() as nursery:
        await nursery.start(harness.governor.run)
        await harness.sleep_until_wall(utc(2026, 3, 9, 21, 30))
        nursery.cancel_scope.cancel()
    assert_sequence(
        harness.seen("cme"),
        [
            (C, epoch(2026, 3, 8, 6, 0)),
            (P, epoch(2026, 3, 8, 21, 45)),
            (O, epoch(2026, 3, 8, 22, 0)),
            (CO, epoch(2026, 3, 9, 20, 55)),
            (FF, epoch(2026, 3, 9, 20, 58)),
            (C, epoch(2026, 3, 9, 21, 0)),
        ],
    )
    assert_sequence(
        harness.seen("crypto"),
        [
            (O, epoch(2026, 3, 8, 6, 0)),
            (C, epoch(2026, 3, 8, 23, 50)),
            (O, epoch(2026, 3, 9, 0, 10)),
        ],
    )
    # Reported in time order across tracks.
    assert [change.at for change in harness.changes] == sorted(c.at for c in harness.changes)


async def test_start_mid_session_reports_the_current_phase_first(
    autojump_clock: trio.testing.MockClock,
) -> None:
    start = epoch(2026, 3, 9, 3, 0)  # 11:00 in Taipei, Sunday 22:00 in Chicago
    harness = Harness(WallClock.start(start), TAIPEI, CHICAGO, CRYPTO)
    async with trio.open_nursery() as nursery:
        await nursery.start(harness.governor.run)
        assert [(c.track, c.previous, c.phase, c.at) for c in harness.changes] == [
            ("tw_stock", Phase.INIT, O, start),
            ("cme", Phase.INIT, O, start),
            ("crypto", Phase.INIT, O, start),
        ]
        assert harness.gate.quoting("2330")
        assert harness.gate.snapshot() == {"tw_stock": "open", "cme": "open", "crypto": "open"}
        assert harness.gauge("tw_stock") == float(O)
        assert harness.governor.status() == {
            "tw_stock": {
                "phase": "open",
                "symbols": ["2330", "2317"],
                "next_change": "2026-03-09T05:25:00+00:00",
            },
            "cme": {
                "phase": "open",
                "symbols": ["ES"],
                "next_change": "2026-03-09T20:55:00+00:00",
            },
            "crypto": {
                "phase": "open",
                "symbols": ["BTC", "ETH"],
                "next_change": "2026-03-09T23:50:00+00:00",
            },
        }
        nursery.cancel_scope.cancel()


async def test_gate_flips_at_the_boundary(autojump_clock: trio.testing.MockClock) -> None:
    harness = Harness(WallClock.start(epoch(2026, 3, 9, 5, 0)), TAIPEI)
    boundary = harness.clock.deadline(utc(2026, 3, 9, 5, 25))
    async with trio.open_nursery() as nursery:
        await nursery.start(harness.governor.run)
        await trio.sleep_until(boundary - 0.001)
        assert harness.gate.allows("2330", reduces=False)
        assert harness.gauge("tw_stock") == float(O)
        await trio.sleep_until(boundary + 0.001)
        assert not harness.gate.allows("2330", reduces=False)
        assert harness.gate.allows("2330", reduces=True)
        assert not harness.gate.quoting("2330")
        assert harness.gauge("tw_stock") == float(CO)
        assert harness.counted("tw_stock", CO) == 1
        await trio.sleep_until(boundary + 4 * 60 + 0.001)
        assert harness.gate.flattening() == {"2330", "2317"}
        nursery.cancel_scope.cancel()


async def test_clock_step_gives_one_change(autojump_clock: trio.testing.MockClock) -> None:
    """After a jump from OPEN to CLOSED, one change is reported, none invented between."""
    harness = Harness(WallClock.start(epoch(2026, 3, 9, 3, 0)), TAIPEI)
    async with trio.open_nursery() as nursery:
        await nursery.start(harness.governor.run)
        await trio.sleep(1.0)
        harness.clock.set(epoch(2026, 3, 9, 6, 0))  # past close_only, force_flat and closed
        await trio.sleep(MAX_SLEEP_S)
        nursery.cancel_scope.cancel()
    assert harness.seen("tw_stock") == [
        (Phase.INIT, O, epoch(2026, 3, 9, 3, 0)),
        (O, C, pytest.approx(epoch(2026, 3, 9, 6, 0) + MAX_SLEEP_S - 1.0, abs=1e-3)),
    ]


async def test_restart_reports_from_the_gate_phase(
    autojump_clock: trio.testing.MockClock,
) -> None:
    harness = Harness(WallClock.start(epoch(2026, 3, 9, 3, 0)), TAIPEI)
    harness.gate.set_phase("tw_stock", Phase.CLOSE_ONLY)  # as left by a previous run
    async with trio.open_nursery() as nursery:
        await nursery.start(harness.governor.run)
        nursery.cancel_scope.cancel()
    assert [(c.previous, c.phase) for c in harness.changes] == [(CO, O)]
