"""Trading sessions: the phase of each track at a wall-clock instant, and the per-symbol gate.

A track is a set of symbols that trade on one timetable. Its phase runs
``PRE_OPEN -> OPEN -> CLOSE_ONLY -> FORCE_FLAT -> CLOSED`` (``INIT`` until first computed).

Always-open tracks are ``OPEN`` except inside a maintenance window, where they are ``CLOSED``.

A scheduled track has a list of phase changes at local times in its time zone. The list runs once
around the day and may cross midnight once: ``open 22:00, close_only 04:55, force_flat 04:58,
closed 05:00`` is one session, and every change after the midnight crossing happens on the next
calendar day. Trading days:

- A session belongs to the local calendar day of its first change: a session opening Sunday 22:00
  and closing Monday 05:00 is Sunday's. ``days`` names the days whose sessions run.
- Each day's cycle lasts from its first change to the next day's first change. On a day not in
  ``days`` the cycle is a single change to ``CLOSED`` at the first change's time, so before a day's
  first change the phase is the last phase of the previous day's cycle.

Maintenance windows (``start`` to ``end`` local, crossing midnight when ``end < start``, starting on
the listed ``days``) force ``CLOSED`` on any track, scheduled or not, and give the underlying
phase back at their end. A window is ``[start, end)``; a phase change is ``[at, next)``: the exact
instant of a change already has the new phase.

Time zones (zoneinfo): a change at a local time skipped by a DST gap happens at the first instant
after the gap; a local time that occurs twice (DST end) means its first occurrence.

Pure: no I/O and no clock reads. Instants are timezone-aware datetimes; results are in UTC.
``SessionConfig.problems`` checks what ``mm.settings.check_section`` cannot reach (the lists).
"""

from __future__ import annotations

import bisect
import enum
import re
from collections.abc import Iterable, Sequence
from datetime import UTC, date, datetime, time, timedelta
from typing import Final
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import attrs

from mm.settings import check_section, join_path, non_empty, one_of, positive, setting


class Phase(enum.IntEnum):
    INIT = 0
    PRE_OPEN = 1
    OPEN = 2
    CLOSE_ONLY = 3
    FORCE_FLAT = 4
    CLOSED = 5

    @property
    def label(self) -> str:
        """The lower-case name, for metrics, logs and the journal."""
        return self.name.lower()


DAYS: Final[tuple[str, ...]] = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
SCHEDULED_PHASES: Final[tuple[str, ...]] = (
    "pre_open",
    "open",
    "close_only",
    "force_flat",
    "closed",
)
_CLOCK = re.compile(r"([01]\d|2[0-3]):([0-5]\d)(?::([0-5]\d))?")
# next_change looks this many local days past the day of ``when``: more than the weekly period.
_LOOKAHEAD_DAYS: Final = 8


# --- config --------------------------------------------------------------------------------------


def clock_time(value: str) -> str | None:
    if isinstance(value, str) and _CLOCK.fullmatch(value):
        return None
    return f"must be HH:MM or HH:MM:SS, got {value!r}"


def parse_clock(value: str) -> time:
    """``"HH:MM"`` or ``"HH:MM:SS"`` as a time (ValueError if malformed)."""
    match = _CLOCK.fullmatch(value)
    if match is None:
        raise ValueError(f"must be HH:MM or HH:MM:SS, got {value!r}")
    hour, minute, second = match.groups()
    return time(int(hour), int(minute), int(second or 0))


def time_zone(value: str) -> str | None:
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError):
        return f"unknown time zone {value!r}"
    return None


def weekdays(value: list[str]) -> str | None:
    unknown = [day for day in value if day not in DAYS]
    if unknown:
        return f"must be among {', '.join(DAYS)}, got {unknown[0]!r}"
    if len(set(value)) != len(value):
        return "lists a day twice"
    if not value:
        return "must name at least one day"
    return None


def symbol_list(value: list[str]) -> str | None:
    if any(not symbol.strip() for symbol in value):
        return "symbols must not be empty"
    if len(set(value)) != len(value):
        return "lists a symbol twice"
    return None


def _all_days() -> list[str]:
    return list(DAYS)


# List fields use attrs.field(factory=...) with the check in metadata, as ``setting`` would: a
# list default must not be shared between instances. ``problems`` runs these checks.


@attrs.frozen
class PhaseAt:
    """One change of a schedule: ``{phase = "open", at = "09:00"}`` (local time)."""

    phase: str = setting("closed", one_of(*SCHEDULED_PHASES))
    at: str = setting("00:00", clock_time)


@attrs.frozen
class MaintenanceWindow:
    """``CLOSED`` from ``start`` to ``end`` (local; crosses midnight when end < start)."""

    start: str = setting("00:00", clock_time)
    end: str = setting("00:00", clock_time)
    # The days on which the window starts.
    days: list[str] = attrs.field(factory=_all_days, metadata={"check": weekdays})


@attrs.frozen
class TrackConfig:
    """One ``[[session.tracks]]`` table: symbols trading on one timetable."""

    name: str = setting("", non_empty)
    symbols: list[str] = attrs.field(factory=list, metadata={"check": symbol_list})
    timezone: str = setting("UTC", time_zone)
    always_open: bool = setting(False)
    schedule: list[PhaseAt] = attrs.field(factory=list)
    maintenance: list[MaintenanceWindow] = attrs.field(factory=list)
    # Days whose sessions run (a session belongs to the day of its first change).
    days: list[str] = attrs.field(factory=_all_days, metadata={"check": weekdays})


def _default_tracks() -> list[TrackConfig]:
    return [TrackConfig(name="crypto", symbols=["BTC", "ETH"], always_open=True)]


@attrs.frozen
class SessionConfig:
    """The ``[session]`` section with its ``[[session.tracks]]``."""

    # Symbols in no track: OPEN when true, else CLOSED.
    default_open: bool = setting(False)
    # The flattener's deadline once a track enters FORCE_FLAT; missing it escalates to HALT.
    flatten_deadline_s: float = setting(120.0, positive)
    tracks: list[TrackConfig] = attrs.field(factory=_default_tracks)

    def problems(self, path: str = "session") -> list[str]:
        """``key.path: reason`` for the tracks: their fields, schedules and cross-checks.

        The section's own scalar fields are checked by ``check_section`` (``structure_section``).
        """
        problems: list[str] = []
        owner: dict[str, int] = {}
        names: dict[str, int] = {}
        for index, track in enumerate(self.tracks):
            key = join_path(join_path(path, "tracks"), index)
            problems.extend(_track_problems(track, key))
            if track.name in names:
                other = join_path(join_path(path, "tracks"), names[track.name])
                problems.append(f"{key}.name: {track.name!r} is already the name of {other}")
            names.setdefault(track.name, index)
            for position, symbol in enumerate(track.symbols):
                first = owner.setdefault(symbol, index)
                if first != index:
                    problems.append(
                        f"{key}.symbols[{position}]: {symbol!r} is already in track "
                        f"{self.tracks[first].name!r}; a symbol may be in one track only"
                    )
        return problems


def _track_problems(track: TrackConfig, key: str) -> list[str]:
    problems = check_section(track, key)
    entries = [
        check_section(entry, join_path(join_path(key, "schedule"), i))
        for i, entry in enumerate(track.schedule)
    ]
    windows = [
        check_section(window, join_path(join_path(key, "maintenance"), i))
        for i, window in enumerate(track.maintenance)
    ]
    problems.extend(line for lines in entries for line in lines)
    problems.extend(line for lines in windows for line in lines)
    for i, window in enumerate(track.maintenance):
        if not windows[i] and parse_clock(window.start) == parse_clock(window.end):
            problems.append(f"{key}.maintenance[{i}].end: must differ from start ({window.start})")
    if track.always_open:
        if track.schedule:
            problems.append(f"{key}.schedule: must be empty for an always_open track")
        if sorted(track.days, key=_day_order) != list(DAYS):
            problems.append(
                f"{key}.days: an always_open track trades every day; "
                "give it a schedule (e.g. open at 00:00) to trade on some days only"
            )
        return problems
    if not track.schedule:
        problems.append(f"{key}.schedule: must not be empty unless always_open = true")
    elif not any(entries):
        problems.extend(_schedule_problems(track.schedule, join_path(key, "schedule")))
    return problems


def _day_order(day: str) -> int:
    return DAYS.index(day) if day in DAYS else len(DAYS)


def _schedule_problems(schedule: Sequence[PhaseAt], key: str) -> list[str]:
    problems: list[str] = []
    for i in range(1, len(schedule)):
        before, entry = schedule[i - 1], schedule[i]
        if SCHEDULED_PHASES.index(entry.phase) <= SCHEDULED_PHASES.index(before.phase):
            problems.append(
                f"{key}[{i}].phase: {entry.phase!r} after {before.phase!r}; phases go "
                f"{' -> '.join(SCHEDULED_PHASES)}, each at most once (some may be left out)"
            )
    times = [parse_clock(entry.at) for entry in schedule]
    crossings = 0
    for i in range(1, len(times)):
        if times[i] == times[i - 1]:
            problems.append(f"{key}[{i}].at: same time as the change before it ({schedule[i].at})")
        elif times[i] < times[i - 1]:
            crossings += 1
            if crossings > 1:
                problems.append(
                    f"{key}[{i}].at: {schedule[i].at!r} goes back in time a second time; "
                    "a schedule runs once around the day and crosses midnight at most once"
                )
    if crossings == 1 and times[-1] >= times[0]:
        problems.append(
            f"{key}[{len(times) - 1}].at: {schedule[-1].at!r} must be before the first change "
            f"({schedule[0].at}): a schedule that crosses midnight must fit in 24 hours"
        )
    return problems


# --- the phase at an instant --------------------------------------------------------------------


def local_to_utc(day: date, at: time, zone: ZoneInfo) -> datetime:
    """The UTC instant of local ``day`` ``at`` in ``zone``.

    A time skipped by a DST gap gives the first instant after the gap; a repeated time gives its
    first occurrence.
    """
    naive = datetime.combine(day, at)
    utc = naive.replace(tzinfo=zone).astimezone(UTC)
    if utc.astimezone(zone).replace(tzinfo=None) == naive:
        return utc
    # In a gap: the offsets before and after bracket the transition; find its first second.
    other = naive.replace(tzinfo=zone, fold=1).astimezone(UTC)
    low = int(min(utc, other).timestamp())
    high = int(max(utc, other).timestamp()) + 1
    while low < high:  # the smallest second whose local time is at or after ``naive``
        middle = (low + high) // 2
        if datetime.fromtimestamp(middle, zone).replace(tzinfo=None) >= naive:
            high = middle
        else:
            low = middle + 1
    return datetime.fromtimestamp(low, UTC)


def _local_day(when: datetime, zone: ZoneInfo) -> date:
    if when.tzinfo is None or when.utcoffset() is None:
        raise ValueError(f"a session instant must be timezone-aware, got {when!r}")
    return when.astimezone(zone).date()


def _cycle(track: TrackConfig, zone: ZoneInfo, day: date) -> list[tuple[datetime, Phase]]:
    """The changes of ``day``'s cycle, in order (a scheduled track)."""
    first = parse_clock(track.schedule[0].at)
    if DAYS[day.weekday()] not in track.days:
        return [(local_to_utc(day, first, zone), Phase.CLOSED)]
    changes: list[tuple[datetime, Phase]] = []
    offset = 0
    previous = first
    for entry in track.schedule:
        at = parse_clock(entry.at)
        if at < previous:
            offset = 1
        previous = at
        moment = local_to_utc(day + timedelta(days=offset), at, zone)
        changes.append((moment, Phase[entry.phase.upper()]))
    return changes


def _changes(
    track: TrackConfig, zone: ZoneInfo, days: Iterable[date]
) -> list[tuple[datetime, Phase]]:
    changes = [change for day in days for change in _cycle(track, zone, day)]
    changes.sort(key=lambda change: change[0])  # stable: ties keep schedule order
    return changes


def _windows(
    track: TrackConfig, zone: ZoneInfo, days: Iterable[date]
) -> list[tuple[datetime, datetime]]:
    windows: list[tuple[datetime, datetime]] = []
    for day in days:
        weekday = DAYS[day.weekday()]
        for window in track.maintenance:
            if weekday not in window.days:
                continue
            start, end = parse_clock(window.start), parse_clock(window.end)
            end_day = day + timedelta(days=1) if end <= start else day
            windows.append((local_to_utc(day, start, zone), local_to_utc(end_day, end, zone)))
    return windows


def _span(first: date, count: int) -> list[date]:
    return [first + timedelta(days=i) for i in range(count)]


def _in_window(windows: Sequence[tuple[datetime, datetime]], when: datetime) -> bool:
    return any(start <= when < end for start, end in windows)


def phase_at(track: TrackConfig, when: datetime) -> Phase:
    """The track's phase at ``when`` (timezone-aware)."""
    zone = ZoneInfo(track.timezone)
    day = _local_day(when, zone)
    # Windows starting two days back or earlier have ended; so have cycles three days back.
    if _in_window(_windows(track, zone, _span(day - timedelta(days=2), 3)), when):
        return Phase.CLOSED
    if track.always_open:
        return Phase.OPEN
    phase = Phase.CLOSED
    for moment, changed in _changes(track, zone, _span(day - timedelta(days=2), 3)):
        if moment > when:
            break
        phase = changed
    return phase


def next_change(track: TrackConfig, when: datetime) -> datetime | None:
    """The first instant after ``when`` whose phase differs from ``phase_at(track, when)``.

    None when the phase never changes (an always-open track without maintenance).
    """
    zone = ZoneInfo(track.timezone)
    day = _local_day(when, zone)
    days = _span(day - timedelta(days=1), _LOOKAHEAD_DAYS + 2)
    # Before the horizon every window and cycle that matters is generated, so the walk is exact.
    horizon = local_to_utc(day + timedelta(days=_LOOKAHEAD_DAYS), time(0), zone)
    windows = _windows(track, zone, days)
    changes = [] if track.always_open else _changes(track, zone, days)
    candidates = sorted(
        {moment for moment, _ in changes}
        | {start for start, _ in windows}
        | {end for _, end in windows}
    )
    moments = [moment for moment, _ in changes]
    current = phase_at(track, when)
    for candidate in candidates[bisect.bisect_right(candidates, when) :]:
        if candidate >= horizon:
            break
        if _in_window(windows, candidate):
            phase = Phase.CLOSED
        elif track.always_open:
            phase = Phase.OPEN
        else:
            phase = changes[bisect.bisect_right(moments, candidate) - 1][1]
        if phase != current:
            return candidate
    return None


# --- the gate ----------------------------------------------------------------------------------


class TrackGate:
    """Per-symbol phase, O(1): what the strategy and executors may do with a symbol now.

    A symbol in no track is CLOSED (OPEN with ``default_open``); a tracked symbol is INIT until
    the governor sets its track's phase.
    """

    def __init__(self, config: SessionConfig) -> None:
        self._default = Phase.OPEN if config.default_open else Phase.CLOSED
        self._track_of: dict[str, str] = {}
        self._symbols: dict[str, tuple[str, ...]] = {}
        self._phases: dict[str, Phase] = {}
        for track in config.tracks:
            self._symbols[track.name] = tuple(track.symbols)
            self._phases[track.name] = Phase.INIT
            for symbol in track.symbols:
                self._track_of.setdefault(symbol, track.name)

    @property
    def default(self) -> Phase:
        """The phase of a symbol in no track."""
        return self._default

    def phase(self, symbol: str) -> Phase:
        track = self._track_of.get(symbol)
        return self._default if track is None else self._phases[track]

    def track_phase(self, track: str) -> Phase:
        return self._phases[track]

    def symbols(self, track: str) -> tuple[str, ...]:
        return self._symbols[track]

    def set_phase(self, track: str, phase: Phase) -> None:
        if track not in self._phases:
            raise KeyError(f"unknown track {track!r}")
        self._phases[track] = phase

    def allows(self, symbol: str, reduces: bool) -> bool:
        """May an order be sent: OPEN yes, CLOSE_ONLY only if it reduces, otherwise no.

        The flattener under FORCE_FLAT does not ask this gate.
        """
        phase = self.phase(symbol)
        return phase is Phase.OPEN or (phase is Phase.CLOSE_ONLY and reduces)

    def quoting(self, symbol: str) -> bool:
        """May the strategy quote the symbol (OPEN only)."""
        return self.phase(symbol) is Phase.OPEN

    def flattening(self) -> set[str]:
        """Symbols whose track is in FORCE_FLAT."""
        return {
            symbol
            for track, phase in self._phases.items()
            if phase is Phase.FORCE_FLAT
            for symbol in self._symbols[track]
        }

    def snapshot(self) -> dict[str, str]:
        return {track: phase.label for track, phase in self._phases.items()}
