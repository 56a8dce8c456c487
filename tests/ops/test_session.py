"""Session core: phases at wall-clock instants, next changes, the track gate, config checks."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mm.ops.session import (
    Phase,
    SessionConfig,
    TrackConfig,
    TrackGate,
    next_change,
    phase_at,
)
from mm.settings import ConfigError, structure_section

WEEKDAYS = ["mon", "tue", "wed", "thu", "fri"]
C = Phase.CLOSED
P = Phase.PRE_OPEN
O = Phase.OPEN  # noqa: E741
CO = Phase.CLOSE_ONLY
FF = Phase.FORCE_FLAT


def utc(
    year: int, month: int, day: int, hour: int = 0, minute: int = 0, second: int = 0
) -> datetime:
    return datetime(year, month, day, hour, minute, second, tzinfo=UTC)


def schedule(*changes: tuple[str, str]) -> list[dict[str, str]]:
    return [{"phase": phase, "at": at} for phase, at in changes]


TAIPEI: dict[str, Any] = {
    "name": "tw_stock",
    "symbols": ["2330", "2317"],
    "timezone": "Asia/Taipei",
    "days": WEEKDAYS,
    "schedule": schedule(
        ("pre_open", "08:30"),
        ("open", "09:00"),
        ("close_only", "13:25"),
        ("force_flat", "13:29"),
        ("closed", "13:30"),
    ),
}
# CME-like: Sunday 17:00 to Friday 16:00 with a daily break; a session belongs to the day it opens.
CHICAGO: dict[str, Any] = {
    "name": "cme",
    "symbols": ["ES", "NQ"],
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
SUNDAY_MAINTENANCE: dict[str, Any] = {
    "name": "weekly",
    "symbols": ["SOL"],
    "always_open": True,
    "maintenance": [{"start": "23:50", "end": "00:10", "days": ["sun"]}],
}
NIGHT_UTC: dict[str, Any] = {
    "name": "night",
    "symbols": ["X"],
    "days": WEEKDAYS,
    "schedule": schedule(
        ("open", "22:00"), ("close_only", "04:55"), ("force_flat", "04:58"), ("closed", "05:00")
    ),
}
# Changes at local times that DST skips (02:30 on 2026-03-08) or repeats (01:30 on 2026-11-01).
DST_GAP: dict[str, Any] = {
    "name": "gap",
    "symbols": ["G"],
    "timezone": "America/Chicago",
    "schedule": schedule(("open", "02:30"), ("closed", "20:00")),
}
DST_FOLD: dict[str, Any] = {
    "name": "fold",
    "symbols": ["F"],
    "timezone": "America/Chicago",
    "schedule": schedule(("open", "01:30"), ("closed", "20:00")),
}
ALWAYS: dict[str, Any] = {"name": "always", "symbols": ["A"], "always_open": True}


def session(*tracks: dict[str, Any], **fields: Any) -> SessionConfig:
    config = structure_section({**fields, "tracks": list(tracks)}, SessionConfig, "session")
    assert config.problems() == []
    return config


def track(data: dict[str, Any]) -> TrackConfig:
    return session(data).tracks[0]


PHASE_CASES: list[tuple[dict[str, Any], datetime, Phase]] = [
    # Taipei (UTC+8), Monday 2026-03-09: one second before each change, and the change itself.
    (TAIPEI, utc(2026, 3, 8, 16, 0), C),  # Monday 00:00 local
    (TAIPEI, utc(2026, 3, 9, 0, 29, 59), C),
    (TAIPEI, utc(2026, 3, 9, 0, 30), P),
    (TAIPEI, utc(2026, 3, 9, 0, 59, 59), P),
    (TAIPEI, utc(2026, 3, 9, 1, 0), O),
    (TAIPEI, utc(2026, 3, 9, 5, 24, 59), O),
    (TAIPEI, utc(2026, 3, 9, 5, 25), CO),
    (TAIPEI, utc(2026, 3, 9, 5, 28, 59), CO),
    (TAIPEI, utc(2026, 3, 9, 5, 29), FF),
    (TAIPEI, utc(2026, 3, 9, 5, 29, 59), FF),
    (TAIPEI, utc(2026, 3, 9, 5, 30), C),
    (TAIPEI, utc(2026, 3, 9, 15, 59, 59), C),
    (TAIPEI, utc(2026, 3, 13, 2, 0), O),  # Friday
    (TAIPEI, utc(2026, 3, 14, 2, 0), C),  # Saturday
    (TAIPEI, utc(2026, 3, 15, 2, 0), C),  # Sunday
    # Chicago night session, before DST (CST, UTC-6): Sunday's session opens Sunday 17:00.
    (CHICAGO, utc(2026, 3, 1, 22, 44, 59), C),
    (CHICAGO, utc(2026, 3, 1, 22, 45), P),
    (CHICAGO, utc(2026, 3, 1, 22, 59, 59), P),
    (CHICAGO, utc(2026, 3, 1, 23, 0), O),
    (CHICAGO, utc(2026, 3, 2, 6, 0), O),  # Monday 00:00 local, across midnight
    (CHICAGO, utc(2026, 3, 2, 21, 54, 59), O),
    (CHICAGO, utc(2026, 3, 2, 21, 55), CO),
    (CHICAGO, utc(2026, 3, 2, 21, 58), FF),
    (CHICAGO, utc(2026, 3, 2, 21, 59, 59), FF),
    (CHICAGO, utc(2026, 3, 2, 22, 0), C),
    (CHICAGO, utc(2026, 3, 2, 22, 45), P),  # Monday's session
    # Thursday's session ends Friday 16:00; Friday and Saturday have none.
    (CHICAGO, utc(2026, 3, 6, 21, 59, 59), FF),
    (CHICAGO, utc(2026, 3, 6, 22, 0), C),
    (CHICAGO, utc(2026, 3, 6, 23, 0), C),  # Friday 17:00 local
    (CHICAGO, utc(2026, 3, 7, 23, 0), C),  # Saturday 17:00 local
    # DST starts Sunday 2026-03-08 02:00: Sunday's session runs on CDT (UTC-5).
    (CHICAGO, utc(2026, 3, 8, 7, 59, 59), C),
    (CHICAGO, utc(2026, 3, 8, 21, 44, 59), C),
    (CHICAGO, utc(2026, 3, 8, 21, 45), P),
    (CHICAGO, utc(2026, 3, 8, 21, 59, 59), P),
    (CHICAGO, utc(2026, 3, 8, 22, 0), O),
    (CHICAGO, utc(2026, 3, 8, 23, 0), O),
    (CHICAGO, utc(2026, 3, 9, 20, 54, 59), O),
    (CHICAGO, utc(2026, 3, 9, 20, 55), CO),
    (CHICAGO, utc(2026, 3, 9, 20, 58), FF),
    (CHICAGO, utc(2026, 3, 9, 21, 0), C),
    # DST ends Sunday 2026-11-01: Thursday's session closes on CDT, Sunday's opens on CST.
    (CHICAGO, utc(2026, 10, 30, 20, 59, 59), FF),
    (CHICAGO, utc(2026, 10, 30, 21, 0), C),
    (CHICAGO, utc(2026, 11, 1, 22, 44, 59), C),
    (CHICAGO, utc(2026, 11, 1, 22, 45), P),
    # Always open, maintenance 23:50-00:10 every day.
    (CRYPTO, utc(2026, 3, 9, 12, 0), O),
    (CRYPTO, utc(2026, 3, 9, 23, 49, 59), O),
    (CRYPTO, utc(2026, 3, 9, 23, 50), C),
    (CRYPTO, utc(2026, 3, 10, 0, 0), C),
    (CRYPTO, utc(2026, 3, 10, 0, 9, 59), C),
    (CRYPTO, utc(2026, 3, 10, 0, 10), O),
    # A window starting Sundays only: it runs into Monday; Saturday's night has none.
    (SUNDAY_MAINTENANCE, utc(2026, 3, 7, 23, 55), O),
    (SUNDAY_MAINTENANCE, utc(2026, 3, 8, 0, 5), O),
    (SUNDAY_MAINTENANCE, utc(2026, 3, 8, 23, 55), C),
    (SUNDAY_MAINTENANCE, utc(2026, 3, 9, 0, 5), C),
    (SUNDAY_MAINTENANCE, utc(2026, 3, 9, 0, 10), O),
    (ALWAYS, utc(2026, 3, 8, 8, 0), O),
    # Crossing midnight on weekdays: Sunday night is closed, Friday's session ends on Saturday.
    (NIGHT_UTC, utc(2026, 3, 8, 22, 30), C),
    (NIGHT_UTC, utc(2026, 3, 9, 2, 0), C),
    (NIGHT_UTC, utc(2026, 3, 9, 21, 59, 59), C),
    (NIGHT_UTC, utc(2026, 3, 9, 22, 0), O),
    (NIGHT_UTC, utc(2026, 3, 10, 2, 0), O),
    (NIGHT_UTC, utc(2026, 3, 10, 4, 56), CO),
    (NIGHT_UTC, utc(2026, 3, 10, 4, 59), FF),
    (NIGHT_UTC, utc(2026, 3, 10, 5, 0), C),
    (NIGHT_UTC, utc(2026, 3, 13, 23, 0), O),  # Friday night
    (NIGHT_UTC, utc(2026, 3, 14, 4, 59), FF),  # Saturday morning
    (NIGHT_UTC, utc(2026, 3, 14, 5, 0), C),
    (NIGHT_UTC, utc(2026, 3, 14, 22, 0), C),  # Saturday night
    # 02:30 does not exist on 2026-03-08: the change happens at 03:00 CDT = 08:00 UTC.
    (DST_GAP, utc(2026, 3, 7, 8, 29, 59), C),
    (DST_GAP, utc(2026, 3, 7, 8, 30), O),
    (DST_GAP, utc(2026, 3, 8, 7, 59, 59), C),
    (DST_GAP, utc(2026, 3, 8, 8, 0), O),
    (DST_GAP, utc(2026, 3, 9, 7, 29, 59), C),
    (DST_GAP, utc(2026, 3, 9, 7, 30), O),
    # 01:30 happens twice on 2026-11-01: the first (CDT, 06:30 UTC) counts.
    (DST_FOLD, utc(2026, 11, 1, 6, 29, 59), C),
    (DST_FOLD, utc(2026, 11, 1, 6, 30), O),
    (DST_FOLD, utc(2026, 11, 1, 7, 30), O),
]


@pytest.mark.parametrize(
    ("data", "when", "expected"),
    PHASE_CASES,
    ids=[f"{data['name']}-{when:%m%d-%H%M%S}" for data, when, _ in PHASE_CASES],
)
def test_phase_at(data: dict[str, Any], when: datetime, expected: Phase) -> None:
    assert phase_at(track(data), when) is expected


def test_phase_at_takes_any_aware_instant() -> None:
    taipei_open = datetime.fromisoformat("2026-03-09T09:00:00+08:00")
    assert phase_at(track(TAIPEI), taipei_open) is Phase.OPEN
    assert phase_at(track(TAIPEI), taipei_open - timedelta(microseconds=1)) is Phase.PRE_OPEN


def test_phase_at_rejects_naive_instants() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        phase_at(track(TAIPEI), datetime(2026, 3, 9, 1, 0))


NEXT_CASES: list[tuple[dict[str, Any], datetime, datetime | None]] = [
    (TAIPEI, utc(2026, 3, 9, 0, 0), utc(2026, 3, 9, 0, 30)),
    (TAIPEI, utc(2026, 3, 9, 0, 30), utc(2026, 3, 9, 1, 0)),
    (TAIPEI, utc(2026, 3, 9, 5, 29, 59), utc(2026, 3, 9, 5, 30)),
    (TAIPEI, utc(2026, 3, 13, 5, 30), utc(2026, 3, 16, 0, 30)),  # Friday close -> Monday
    (CHICAGO, utc(2026, 3, 6, 22, 0), utc(2026, 3, 8, 21, 45)),  # over the weekend and DST
    (CHICAGO, utc(2026, 3, 8, 22, 0), utc(2026, 3, 9, 20, 55)),
    (CRYPTO, utc(2026, 3, 9, 12, 0), utc(2026, 3, 9, 23, 50)),
    (CRYPTO, utc(2026, 3, 9, 23, 55), utc(2026, 3, 10, 0, 10)),
    (SUNDAY_MAINTENANCE, utc(2026, 3, 9, 0, 10), utc(2026, 3, 15, 23, 50)),
    (ALWAYS, utc(2026, 3, 9, 12, 0), None),
    (NIGHT_UTC, utc(2026, 3, 14, 5, 0), utc(2026, 3, 16, 22, 0)),
    (DST_GAP, utc(2026, 3, 8, 2, 0), utc(2026, 3, 8, 8, 0)),
]


@pytest.mark.parametrize(("data", "when", "expected"), NEXT_CASES)
def test_next_change(data: dict[str, Any], when: datetime, expected: datetime | None) -> None:
    found = next_change(track(data), when)
    assert found == expected
    if found is not None:
        assert found.tzinfo is UTC


SCHEDULED = [TAIPEI, CHICAGO, CRYPTO, SUNDAY_MAINTENANCE, NIGHT_UTC, DST_GAP, DST_FOLD]
DST_DAYS = [date(2026, 3, 8), date(2026, 11, 1)]
instants = st.one_of(
    st.datetimes(
        min_value=datetime(2026, 1, 1), max_value=datetime(2027, 12, 31), timezones=st.just(UTC)
    ),
    st.builds(
        lambda day, offset: datetime.combine(day, datetime.min.time(), UTC) + offset,
        st.sampled_from(DST_DAYS),
        st.timedeltas(min_value=timedelta(hours=-24), max_value=timedelta(hours=48)),
    ),
)


@settings(max_examples=300, deadline=None)
@given(
    data=st.sampled_from(SCHEDULED),
    when=instants,
    fraction=st.floats(min_value=0.0, max_value=1.0, exclude_max=True),
)
def test_next_change_is_the_first_change(
    data: dict[str, Any], when: datetime, fraction: float
) -> None:
    config = track(data)
    current = phase_at(config, when)
    found = next_change(config, when)
    assert found is not None
    assert when < found <= when + timedelta(days=8)
    assert phase_at(config, found) != current
    assert phase_at(config, found - timedelta(microseconds=1)) == current
    between = min(when + (found - when) * fraction, found - timedelta(microseconds=1))
    assert phase_at(config, between) == current


def test_no_change_for_an_always_open_track() -> None:
    assert next_change(track(ALWAYS), utc(2026, 3, 8, 8, 0)) is None


# --- the gate -----------------------------------------------------------------------------------


def gate_config(**fields: Any) -> SessionConfig:
    return session(TAIPEI, CRYPTO, **fields)


def test_gate_unknown_symbols_closed_unless_default_open() -> None:
    assert TrackGate(gate_config()).phase("DOGE") is Phase.CLOSED
    assert not TrackGate(gate_config()).allows("DOGE", reduces=True)
    opened = TrackGate(gate_config(default_open=True))
    assert opened.phase("DOGE") is Phase.OPEN
    assert opened.allows("DOGE", reduces=False)
    assert opened.quoting("DOGE")


def test_gate_tracked_symbols_start_in_init() -> None:
    gate = TrackGate(gate_config(default_open=True))
    assert gate.phase("2330") is Phase.INIT
    assert not gate.allows("2330", reduces=True)
    assert gate.snapshot() == {"tw_stock": "init", "crypto": "init"}


ALLOWS = [
    (Phase.INIT, False, False),
    (Phase.PRE_OPEN, False, False),
    (Phase.OPEN, True, True),
    (Phase.CLOSE_ONLY, False, True),
    (Phase.FORCE_FLAT, False, False),
    (Phase.CLOSED, False, False),
]


@pytest.mark.parametrize(("phase", "increasing", "reducing"), ALLOWS)
def test_gate_allows(phase: Phase, increasing: bool, reducing: bool) -> None:
    gate = TrackGate(gate_config())
    gate.set_phase("tw_stock", phase)
    gate.set_phase("crypto", Phase.OPEN)
    assert gate.phase("2317") is phase
    assert gate.allows("2317", reduces=False) is increasing
    assert gate.allows("2317", reduces=True) is reducing
    assert gate.quoting("2317") is (phase is Phase.OPEN)
    assert gate.allows("BTC", reduces=False)  # the other track is untouched


def test_gate_flattening_and_snapshot() -> None:
    gate = TrackGate(gate_config())
    assert gate.flattening() == set()
    gate.set_phase("tw_stock", Phase.FORCE_FLAT)
    gate.set_phase("crypto", Phase.OPEN)
    assert gate.flattening() == {"2330", "2317"}
    assert gate.snapshot() == {"tw_stock": "force_flat", "crypto": "open"}
    gate.set_phase("tw_stock", Phase.CLOSED)
    assert gate.flattening() == set()


def test_gate_rejects_unknown_track() -> None:
    with pytest.raises(KeyError):
        TrackGate(gate_config()).set_phase("nope", Phase.OPEN)


def test_phase_labels() -> None:
    assert [phase.label for phase in Phase] == [
        "init",
        "pre_open",
        "open",
        "close_only",
        "force_flat",
        "closed",
    ]


# --- config -------------------------------------------------------------------------------------


def problems(*tracks: dict[str, Any]) -> list[str]:
    config = structure_section({"tracks": list(tracks)}, SessionConfig, "session")
    return config.problems()


def with_schedule(*changes: tuple[str, str], **fields: Any) -> dict[str, Any]:
    return {"name": "t", "symbols": ["S"], "schedule": schedule(*changes), **fields}


def test_default_config() -> None:
    config = structure_section({}, SessionConfig, "session")
    assert config.problems() == []
    assert not config.default_open
    assert config.flatten_deadline_s == 120.0
    [crypto] = config.tracks
    assert (crypto.name, crypto.symbols, crypto.always_open) == ("crypto", ["BTC", "ETH"], True)
    assert phase_at(crypto, utc(2026, 3, 8, 8, 0)) is Phase.OPEN


def test_examples_are_valid() -> None:
    assert problems(TAIPEI, CHICAGO, CRYPTO, NIGHT_UTC | {"symbols": ["Y"]}) == []


def test_bad_time() -> None:
    bad = with_schedule(("pre_open", "08:30"), ("open", "09:00"), ("closed", "25:00"))
    assert problems(CRYPTO, bad) == [
        "session.tracks[1].schedule[2].at: must be HH:MM or HH:MM:SS, got '25:00'"
    ]


def test_bad_phase_name() -> None:
    [problem] = problems(with_schedule(("trading", "09:00")))
    assert problem.startswith("session.tracks[0].schedule[0].phase: must be one of pre_open,")


def test_phases_out_of_order() -> None:
    bad = with_schedule(("open", "09:00"), ("pre_open", "09:30"), ("closed", "13:30"))
    [problem] = problems(bad)
    assert problem.startswith("session.tracks[0].schedule[1].phase: 'pre_open' after 'open'")


def test_repeated_phase() -> None:
    bad = with_schedule(("open", "09:00"), ("open", "10:00"))
    [problem] = problems(bad)
    assert problem.startswith("session.tracks[0].schedule[1].phase: 'open' after 'open'")


def test_times_cross_midnight_twice() -> None:
    bad = with_schedule(("pre_open", "22:00"), ("open", "04:00"), ("closed", "03:00"))
    [problem] = problems(bad)
    assert problem.startswith("session.tracks[0].schedule[2].at: '03:00' goes back in time")


def test_times_wrap_past_the_first_change() -> None:
    bad = with_schedule(("open", "09:00"), ("close_only", "13:00"), ("closed", "09:30"))
    [problem] = problems(bad)
    assert problem.startswith("session.tracks[0].schedule[2].at: '09:30' must be before")


def test_same_time_twice() -> None:
    bad = with_schedule(("open", "09:00"), ("closed", "09:00"))
    assert problems(bad) == [
        "session.tracks[0].schedule[1].at: same time as the change before it (09:00)"
    ]


def test_symbol_in_two_tracks() -> None:
    other = with_schedule(("open", "09:00"), ("closed", "13:30"), symbols=["X", "BTC"])
    [problem] = problems(CRYPTO, other)
    assert problem.startswith("session.tracks[1].symbols[1]: 'BTC' is already in track 'crypto'")


def test_duplicate_track_names() -> None:
    [problem] = problems(CRYPTO, CRYPTO | {"symbols": ["SOL"]})
    assert problem == "session.tracks[1].name: 'crypto' is already the name of session.tracks[0]"


def test_always_open_with_schedule() -> None:
    bad = CRYPTO | {"schedule": schedule(("open", "09:00"))}
    assert problems(bad) == ["session.tracks[0].schedule: must be empty for an always_open track"]


def test_always_open_on_some_days() -> None:
    [problem] = problems(CRYPTO | {"days": WEEKDAYS})
    assert problem.startswith("session.tracks[0].days: an always_open track trades every day")


def test_scheduled_track_needs_a_schedule() -> None:
    assert problems({"name": "t", "symbols": ["S"]}) == [
        "session.tracks[0].schedule: must not be empty unless always_open = true"
    ]


def test_unknown_timezone() -> None:
    assert problems(CRYPTO | {"timezone": "Mars/Olympus"}) == [
        "session.tracks[0].timezone: unknown time zone 'Mars/Olympus'"
    ]


def test_bad_days() -> None:
    assert problems(TAIPEI | {"days": ["mon", "funday"]}) == [
        "session.tracks[0].days: must be among mon, tue, wed, thu, fri, sat, sun, got 'funday'"
    ]
    assert problems(TAIPEI | {"days": []}) == ["session.tracks[0].days: must name at least one day"]


def test_bad_maintenance_window() -> None:
    bad = CRYPTO | {
        "maintenance": [
            {"start": "23:50", "end": "00:10"},
            {"start": "12:00", "end": "12:00"},
            {"start": "1:00", "end": "02:00", "days": ["sun", "sun"]},
        ]
    }
    assert problems(bad) == [
        "session.tracks[0].maintenance[2].start: must be HH:MM or HH:MM:SS, got '1:00'",
        "session.tracks[0].maintenance[2].days: lists a day twice",
        "session.tracks[0].maintenance[1].end: must differ from start (12:00)",
    ]


def test_structuring_errors_name_the_key() -> None:
    with pytest.raises(ConfigError) as caught:
        structure_section(
            {"flatten_deadline_s": 120.0, "tracks": [{"name": "t", "symbol": ["S"]}]},
            SessionConfig,
            "session",
        )
    assert caught.value.errors == ["session.tracks[0].symbol: unknown key"]
    with pytest.raises(ConfigError) as caught:
        structure_section({"flatten_deadline_s": 0.0}, SessionConfig, "session")
    assert caught.value.errors == ["session.flatten_deadline_s: must be > 0, got 0.0"]
