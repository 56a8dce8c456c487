"""Tests for mm.journal: migrations, WAL, batch writes, and the writer task's guarantees."""

from __future__ import annotations

import sqlite3
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest
import trio
import trio.lowlevel
import trio.testing
from hypothesis import given, settings
from hypothesis import strategies as st
from loguru import logger
from prometheus_client import CollectorRegistry

import mm.clock
import mm.journal
from mm.journal import (
    DATABASE_NAME,
    LOCK_WAIT_S,
    MIGRATIONS,
    Entry,
    Journal,
    JournalConfig,
    JournalSchemaError,
    checkpoint_wal,
    fills_between,
    last_fill_ms,
    latest_event,
    migrate,
    open_database,
    read_events,
    schema_version,
    take_write_lock,
    write_batch,
)

WriteBatch = Callable[[sqlite3.Connection, Sequence[Entry]], None]


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "run" / DATABASE_NAME


@pytest.fixture
def conn(db_path: Path) -> Iterator[sqlite3.Connection]:
    connection = open_database(db_path)
    yield connection
    connection.close()


@pytest.fixture
def batch_sizes(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Sizes of the batches the writer hands to write_batch, in order."""
    sizes: list[int] = []
    real: WriteBatch = mm.journal.write_batch

    def recording(connection: sqlite3.Connection, entries: Sequence[Entry]) -> None:
        sizes.append(len(entries))
        real(connection, entries)

    monkeypatch.setattr(mm.journal, "write_batch", recording)
    return sizes


def make_journal(
    path: Path, registry: CollectorRegistry | None = None, **overrides: Any
) -> Journal:
    config = JournalConfig(**{"queue_size": 10_000, "batch_max": 500, **overrides})
    return Journal(path, config, registry or CollectorRegistry())


def written(registry: CollectorRegistry) -> float:
    return registry.get_sample_value("mm_journal_entries_total") or 0.0


async def wait_written(registry: CollectorRegistry, count: int) -> None:
    with trio.fail_after(5):
        while written(registry) < count:  # noqa: ASYNC110 (the metric is the observable here)
            await trio.sleep(0.005)


# --- schema --------------------------------------------------------------------------------------


def test_migrate_fresh_in_memory_database() -> None:
    connection = sqlite3.connect(":memory:", isolation_level=None)
    try:
        assert schema_version(connection) == 0
        assert migrate(connection) == len(MIGRATIONS)
        assert schema_version(connection) == len(MIGRATIONS)
        tables = {row[0] for row in connection.execute("SELECT name FROM sqlite_master")}
        assert {"events", "events_kind_ts"} <= tables
    finally:
        connection.close()


def test_migrate_is_idempotent(conn: sqlite3.Connection) -> None:
    assert schema_version(conn) == len(MIGRATIONS)
    write_batch(conn, [Entry(1.0, "kept", {"a": 1})])
    assert migrate(conn) == len(MIGRATIONS)
    assert migrate(conn) == len(MIGRATIONS)
    assert conn.execute("SELECT count(*) FROM events").fetchone()[0] == 1


def test_migrate_applies_only_new_steps(tmp_path: Path) -> None:
    connection = sqlite3.connect(tmp_path / "x.sqlite3", isolation_level=None)
    try:
        first = ("CREATE TABLE a (x);",)
        assert migrate(connection, first) == 1
        assert migrate(connection, (*first, "CREATE TABLE b (y);")) == 2
        tables = {row[0] for row in connection.execute("SELECT name FROM sqlite_master")}
        assert tables == {"a", "b"}
    finally:
        connection.close()


def test_failed_migration_keeps_the_previous_version(tmp_path: Path) -> None:
    path = tmp_path / "x.sqlite3"
    connection = sqlite3.connect(path, isolation_level=None)
    try:
        with pytest.raises(sqlite3.OperationalError):
            migrate(connection, ("CREATE TABLE a (x);", "CREATE TABLE b (y); CREATE TABLE ("))
    finally:
        connection.close()
    other = sqlite3.connect(path)
    try:
        assert schema_version(other) == 1
        tables = {row[0] for row in other.execute("SELECT name FROM sqlite_master")}
        assert tables == {"a"}
    finally:
        other.close()


def test_newer_schema_is_refused(db_path: Path) -> None:
    db_path.parent.mkdir(parents=True)
    connection = sqlite3.connect(db_path)
    connection.execute(f"PRAGMA user_version = {len(MIGRATIONS) + 1}")
    connection.close()
    with pytest.raises(JournalSchemaError, match=rf"version {len(MIGRATIONS) + 1} is newer"):
        open_database(db_path)
    connection = sqlite3.connect(db_path)
    try:
        with pytest.raises(JournalSchemaError):
            migrate(connection)
        assert schema_version(connection) == len(MIGRATIONS) + 1
    finally:
        connection.close()


def test_open_database_creates_directories_and_enables_wal(
    conn: sqlite3.Connection, db_path: Path
) -> None:
    assert db_path.exists()
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    other = sqlite3.connect(db_path)
    try:
        assert other.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    finally:
        other.close()


def test_open_database_twice_keeps_data(db_path: Path) -> None:
    first = open_database(db_path)
    write_batch(first, [Entry(1.0, "a", {})])
    first.close()
    second = open_database(db_path)
    second.close()
    assert [entry.kind for entry in read_events(db_path)] == ["a"]


# --- write_batch and read_events -----------------------------------------------------------------


def test_write_and_read_round_trip(conn: sqlite3.Connection, db_path: Path) -> None:
    entries = [
        Entry(1.5, "order", {"id": "o1", "px": 101.25, "tags": ["a", "b"]}),
        Entry(1.0, "fill", {"id": "o1", "qty": 2}),
        Entry(2.0, "order", {"id": "o2", "nested": {"x": None}}),
    ]
    write_batch(conn, entries[:2])
    write_batch(conn, entries[2:])
    assert read_events(db_path) == entries  # write order, not timestamp order
    assert read_events(db_path, kind="order") == [entries[0], entries[2]]
    assert read_events(db_path, kind="fill") == [entries[1]]
    assert read_events(db_path, kind="nothing") == []


def test_write_batch_encodes_unknown_types_as_text(conn: sqlite3.Connection, db_path: Path) -> None:
    write_batch(conn, [Entry(1.0, "x", {"path": Path("/a/b")})])
    assert read_events(db_path)[0].data == {"path": "/a/b"}


def test_failed_batch_writes_nothing(conn: sqlite3.Connection, db_path: Path) -> None:
    write_batch(conn, [Entry(1.0, "before", {})])
    bad = [Entry(2.0, "good", {}), Entry(3.0, None, {})]  # type: ignore[arg-type]
    with pytest.raises(sqlite3.IntegrityError):
        write_batch(conn, bad)
    assert not conn.in_transaction
    write_batch(conn, [Entry(4.0, "after", {})])
    assert [entry.kind for entry in read_events(db_path)] == ["before", "after"]


@settings(max_examples=40, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.text(max_size=12),
            st.dictionaries(
                st.text(max_size=6),
                st.integers(min_value=-(2**63), max_value=2**63 - 1),
                max_size=4,
            ),
        ),
        max_size=20,
    )
)
def test_write_batch_round_trip_property(items: list[tuple[str, dict[str, int]]]) -> None:
    entries = [Entry(float(index), kind, data) for index, (kind, data) in enumerate(items)]
    with tempfile.TemporaryDirectory() as directory:
        path = Path(directory) / DATABASE_NAME
        connection = open_database(path)
        try:
            write_batch(connection, entries)
        finally:
            connection.close()
        back = read_events(path)
    assert [(entry.kind, entry.data) for entry in back] == items
    assert [entry.ts for entry in back] == [entry.ts for entry in entries]


# --- the writer task -----------------------------------------------------------------------------


async def test_recorded_entries_are_written_in_order(db_path: Path) -> None:
    registry = CollectorRegistry()
    journal = make_journal(db_path, registry)
    before = time.time()
    async with trio.open_nursery() as nursery:
        await nursery.start(journal.run)
        for index in range(50):
            await journal.record("tick", i=index)
            if index % 10 == 0:
                await trio.lowlevel.checkpoint()
        await journal.record("other", note="last")
        await wait_written(registry, 51)
        nursery.cancel_scope.cancel()
    events = read_events(db_path)
    assert [entry.data for entry in events] == [{"i": i} for i in range(50)] + [{"note": "last"}]
    assert [entry.kind for entry in read_events(db_path, kind="other")] == ["other"]
    stamps = [entry.ts for entry in events]
    assert stamps == sorted(stamps)
    assert before <= stamps[0] <= stamps[-1] <= time.time()
    assert registry.get_sample_value("mm_journal_last_write_timestamp_seconds") >= before  # type: ignore[operator]


async def test_batches_are_capped_at_batch_max(db_path: Path, batch_sizes: list[int]) -> None:
    registry = CollectorRegistry()
    journal = make_journal(db_path, registry, batch_max=100)
    for index in range(450):
        journal.record_nowait("tick", i=index)
    async with trio.open_nursery() as nursery:
        await nursery.start(journal.run)
        await wait_written(registry, 450)
        nursery.cancel_scope.cancel()
    assert batch_sizes == [100, 100, 100, 100, 50]
    assert registry.get_sample_value("mm_journal_batch_seconds_count") == 5
    assert written(registry) == 450
    assert registry.get_sample_value("mm_journal_queue_depth") == 0
    assert [entry.data["i"] for entry in read_events(db_path)] == list(range(450))


async def test_cancellation_flushes_every_queued_entry(db_path: Path) -> None:
    registry = CollectorRegistry()
    journal = make_journal(db_path, registry, batch_max=50)
    async with trio.open_nursery() as nursery:
        await nursery.start(journal.run)
        for index in range(1000):
            journal.record_nowait("tick", i=index)
        nursery.cancel_scope.cancel()
    assert [entry.data["i"] for entry in read_events(db_path)] == list(range(1000))
    assert written(registry) == 1000


async def test_cancellation_before_anything_recorded_is_clean(db_path: Path) -> None:
    journal = make_journal(db_path)
    async with trio.open_nursery() as nursery:
        await nursery.start(journal.run)
        nursery.cancel_scope.cancel()
    assert read_events(db_path) == []


async def test_failing_writes_are_retried_keeping_everything_in_order(
    db_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A locked or failing database: the writer keeps every entry, keeps draining the queue (so
    recorders never stall), reports its lag, and writes everything in order once it can."""
    real: WriteBatch = mm.journal.write_batch
    failing = [True]
    calls: list[int] = []

    def broken(connection: sqlite3.Connection, entries: Sequence[Entry]) -> None:
        calls.append(len(entries))
        if failing[0]:
            raise sqlite3.OperationalError("database is locked")
        real(connection, entries)

    monkeypatch.setattr(mm.journal, "write_batch", broken)
    registry = CollectorRegistry()
    journal = make_journal(db_path, registry, batch_max=3, queue_size=4)
    async with trio.open_nursery() as nursery:
        await nursery.start(journal.run)
        started = time.time()
        for index in range(40):  # ten times the queue: recording must not block
            with trio.fail_after(1):
                await journal.record("tick", i=index)
            await trio.sleep(0.01)
        assert len(calls) >= 2  # retried, not crashed
        assert read_events(db_path) == []
        assert journal.lag(time.time()) >= time.time() - started - 0.05
        assert registry.get_sample_value("mm_journal_write_failures_total") == len(calls)
        failing[0] = False
        await wait_written(registry, 40)
        assert journal.lag(time.time()) == 0.0
        nursery.cancel_scope.cancel()
    assert [entry.data["i"] for entry in read_events(db_path)] == list(range(40))


def hold_write_lock(path: Path) -> sqlite3.Connection:
    """Another connection holding the journal's write lock (as another process would)."""
    blocker = sqlite3.connect(path, isolation_level=None, timeout=0.1)
    blocker.execute("BEGIN EXCLUSIVE")
    return blocker


async def test_a_write_waits_for_the_lock_on_the_clock(
    db_path: Path, autojump_clock: trio.testing.MockClock
) -> None:
    """A lock held for less than LOCK_WAIT_S: the batch waits for it on the service's clock
    (never blocked in its thread, where virtual time could not pass) and is written with no
    failure counted, as SQLite's own busy timeout had it."""
    registry = CollectorRegistry()
    journal = make_journal(db_path, registry)
    async with trio.open_nursery() as nursery:
        await nursery.start(journal.run)
        blocker = hold_write_lock(db_path)
        began = trio.current_time()
        real_began = time.monotonic()
        await journal.record("tick", i=1)
        await trio.sleep(LOCK_WAIT_S - 1.0)
        assert written(registry) == 0
        assert journal.lag(mm.clock.wall()) >= LOCK_WAIT_S - 1.0 - 1e-6
        blocker.execute("ROLLBACK")
        blocker.close()
        await wait_written(registry, 1)
        assert trio.current_time() - began < LOCK_WAIT_S
        assert registry.get_sample_value("mm_journal_write_failures_total") == 0
        assert time.monotonic() - real_began < LOCK_WAIT_S - 1.0  # waited virtually
        nursery.cancel_scope.cancel()
    assert [entry.data["i"] for entry in read_events(db_path)] == [1]


async def test_a_lock_held_past_the_wait_is_a_failure_and_retried(
    db_path: Path, autojump_clock: trio.testing.MockClock
) -> None:
    registry = CollectorRegistry()
    journal = make_journal(db_path, registry)
    async with trio.open_nursery() as nursery:
        await nursery.start(journal.run)
        blocker = hold_write_lock(db_path)
        await journal.record("tick", i=1)
        await trio.sleep(LOCK_WAIT_S + 0.1)
        assert registry.get_sample_value("mm_journal_write_failures_total") == 1
        blocker.execute("ROLLBACK")
        blocker.close()
        await wait_written(registry, 1)
        nursery.cancel_scope.cancel()
    assert [entry.data["i"] for entry in read_events(db_path)] == [1]


async def test_a_failure_on_the_final_flush_is_reported_not_raised(
    db_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(connection: sqlite3.Connection, entries: Sequence[Entry]) -> None:
        raise sqlite3.OperationalError("disk I/O error")

    monkeypatch.setattr(mm.journal, "write_batch", broken)
    journal = make_journal(db_path, batch_max=3)
    for index in range(5):
        journal.record_nowait("tick", i=index)
    with trio.move_on_after(0.3):
        await journal.run()
    assert read_events(db_path) == []
    assert journal.lag(time.time()) > 0.2  # still held, for the next writer run


async def test_record_nowait_raises_when_the_queue_is_full(db_path: Path) -> None:
    journal = make_journal(db_path, queue_size=2)
    journal.record_nowait("a")
    journal.record_nowait("b")
    with pytest.raises(trio.WouldBlock):
        journal.record_nowait("c")


async def test_record_or_log_never_raises_and_says_what_was_lost(db_path: Path) -> None:
    journal = make_journal(db_path, queue_size=1)
    lines: list[str] = []
    handler = logger.add(lambda message: lines.append(str(message)), level="ERROR")
    try:
        assert journal.record_or_log("a", n=1) is True
        assert journal.record_or_log("b", n=2) is False
    finally:
        logger.remove(handler)
    assert len(lines) == 1
    assert "not journaled: b {'n': 2}" in lines[0]


async def test_record_waits_when_the_queue_is_full(db_path: Path) -> None:
    registry = CollectorRegistry()
    journal = make_journal(db_path, registry, queue_size=1)
    await journal.record("a")
    with trio.move_on_after(0.05) as scope:
        await journal.record("b")
    assert scope.cancelled_caught
    async with trio.open_nursery() as nursery:
        await nursery.start(journal.run)
        with trio.fail_after(5):
            await journal.record("c")
        await wait_written(registry, 2)
        nursery.cancel_scope.cancel()
    assert [entry.kind for entry in read_events(db_path)] == ["a", "c"]


def test_a_fill_is_journaled_once_by_trade_and_order_id(
    conn: sqlite3.Connection, db_path: Path
) -> None:
    fill = {"tid": 7, "oid": 3, "px": 1.0}
    write_batch(conn, [Entry(1.0, "fill", fill), Entry(2.0, "fill", dict(fill))])
    write_batch(conn, [Entry(3.0, "fill", dict(fill)), Entry(4.0, "fill", {"tid": 7, "oid": 4})])
    write_batch(conn, [Entry(5.0, "other", fill), Entry(6.0, "other", fill)])  # only fills
    fills = read_events(db_path, "fill")
    assert [(f.data["tid"], f.data["oid"]) for f in fills] == [(7, 3), (7, 4)]
    assert len(read_events(db_path, "other")) == 2


def test_startup_reads_only_the_latest_checkpoint_and_the_last_fill_time(
    conn: sqlite3.Connection, db_path: Path
) -> None:
    assert latest_event(db_path, "killswitch") is None
    assert last_fill_ms(db_path) is None
    write_batch(
        conn,
        [
            Entry(1.0, "killswitch", {"n": 1}),
            Entry(2.0, "fill", {"tid": 1, "oid": 1, "time_ms": 9_000}),
            Entry(3.0, "fill", {"tid": 2, "oid": 1, "time_ms": 10_000}),
            Entry(4.0, "fill", {"tid": 3, "oid": 1, "time_ms": 8_000}),  # recovered late
            Entry(5.0, "killswitch", {"n": 2}),
            Entry(6.0, "order_event", {"time_ms": 99_000}),
        ],
    )
    latest = latest_event(db_path, "killswitch")
    assert latest is not None
    assert latest.data == {"n": 2}
    assert last_fill_ms(db_path) == 10_000  # the newest venue time, not the last written


# --- the readers mm check uses --------------------------------------------------------------------


def test_fills_between_is_bounded_by_venue_time_inclusive(
    conn: sqlite3.Connection, db_path: Path
) -> None:
    fill = {"coin": "BTC", "tid": 1, "oid": 1}
    write_batch(
        conn,
        [
            Entry(1.0, "fill", {**fill, "tid": 1, "time_ms": 999}),
            Entry(1.0, "fill", {**fill, "tid": 2, "time_ms": 1000}),
            Entry(1.0, "order_event", {"time_ms": 1500}),
            Entry(1.0, "fill", {**fill, "tid": 4, "time_ms": 2000}),
            Entry(1.0, "fill", {**fill, "tid": 3, "time_ms": 1500}),  # written after tid 4
            Entry(1.0, "fill", {**fill, "tid": 5, "time_ms": 2001}),
        ],
    )
    tids = [f["tid"] for f in fills_between(db_path, 1000, 2000)]
    assert tids == [2, 4, 3]  # in write order, both ends included
    assert [f["tid"] for f in fills_between(db_path, 1500, None)] == [4, 3, 5]


def test_take_write_lock_fails_while_another_writer_holds_it(db_path: Path) -> None:
    take_write_lock(db_path, 0.1)  # creates and migrates the journal
    assert schema_version(sqlite3.connect(db_path)) == len(MIGRATIONS)
    holder = sqlite3.connect(db_path, isolation_level=None)
    try:
        holder.execute("BEGIN IMMEDIATE")
        with pytest.raises(sqlite3.OperationalError, match="locked"):
            take_write_lock(db_path, 0.1)
        holder.execute("ROLLBACK")
        take_write_lock(db_path, 0.1)
    finally:
        holder.close()


def test_checkpoint_wal_folds_the_log_into_the_database(
    conn: sqlite3.Connection, db_path: Path
) -> None:
    write_batch(conn, [Entry(1.0, "note", {"n": n}) for n in range(50)])
    wal = db_path.with_name(db_path.name + "-wal")
    assert wal.stat().st_size > 0
    assert checkpoint_wal(db_path) == (0, 0, 0)  # not busy; the log, truncated, holds nothing
    assert wal.stat().st_size == 0
    assert len(read_events(db_path, "note")) == 50
