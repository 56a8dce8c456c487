"""The journal: an SQLite database (WAL) in run_dir, written in batches by one task.

Any task records an entry through ``Journal.record`` (a bounded memory channel, so a flood
applies back-pressure instead of growing without bound). The writer child drains the channel,
writes each batch in one transaction in a worker thread (``mm.world.run_blocking``), and on
cancellation flushes what is left inside a shielded, time-bounded scope. A batch that finds
the write lock taken waits for it up to ``LOCK_WAIT_S`` on the service's clock (not blocked in
its thread). A batch that fails to write (the database locked by another process past that
wait, the disk full or read-only) is kept and retried with backoff by the writer itself, which
meanwhile keeps taking entries off the queue so that the tasks recording them (the user
stream, the risk system) never stall behind the database; nothing accepted is dropped. ``lag``
says how long the oldest unwritten entry has waited: the autonomy monitor's
"journal stale" reading.
"""

from __future__ import annotations

import enum
import sqlite3
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import attrs
import orjson
import trio
from loguru import logger
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from mm import clock, world
from mm.metrics import LATENCY_BUCKETS
from mm.model import OrderId, TradeId, journaled_order_id, journaled_trade_id
from mm.settings import at_least, positive, setting

DATABASE_NAME = "mm.sqlite3"
HOLD_FACTOR = 100  # pending entries kept in memory while writes fail, x the queue size
RETRY_INITIAL_S = 0.25
RETRY_CAP_S = 5.0
# How long a batch waits for another connection's write lock before the write counts as failed:
# sqlite3's default busy timeout, which the writer used to spend blocked in its worker thread.
# It waits on the service's clock instead (the connection's own busy timeout is 0), polling
# as SQLite's busy handler does, from 1 ms doubling up to 100 ms.
LOCK_WAIT_S = 5.0
LOCK_POLL_INITIAL_S = 0.001
LOCK_POLL_CAP_S = 0.1

MIGRATIONS: tuple[str, ...] = (
    # 1: the event log every component appends to.
    """
    CREATE TABLE events (
        id INTEGER PRIMARY KEY,
        ts REAL NOT NULL,
        kind TEXT NOT NULL,
        data TEXT NOT NULL
    );
    CREATE INDEX events_kind_ts ON events (kind, ts);
    """,
    # 2: a fill is journaled once, by the venue's trade id (and order id): a fill recovered
    # after a restart, or replayed by the venue, is ignored the second time.
    """
    CREATE UNIQUE INDEX fills_once ON events (
        json_extract(data, '$.tid'), json_extract(data, '$.oid')
    ) WHERE kind = 'fill';
    """,
)


@attrs.frozen
class JournalConfig:
    """The ``[journal]`` section: the writer's queue, batch and flush deadline."""

    queue_size: int = setting(10_000, at_least(1))
    batch_max: int = setting(500, at_least(1))
    flush_timeout: float = setting(5.0, positive)


class JournalSchemaError(Exception):
    """The database was written by a newer mm than this one."""


@attrs.frozen
class Entry:
    ts: float
    kind: str
    data: dict[str, Any]
    # The row id once read back from the database (write order); not part of equality.
    id: int | None = attrs.field(default=None, eq=False)
    # Set by the writer once the entry is committed (``Journal.record_committed``).
    committed: trio.Event | None = attrs.field(default=None, eq=False, repr=False)


def entry_data(value: Any) -> dict[str, Any]:
    """An attrs value (a fill, an order, a lifecycle event) as an entry's data: its fields,
    an enum by its value."""
    return attrs.asdict(value, value_serializer=_enum_value)


def _enum_value(_instance: Any, _field: Any, value: Any) -> Any:
    return value.value if isinstance(value, enum.Enum) else value


def schema_version(conn: sqlite3.Connection) -> int:
    version: int = conn.execute("PRAGMA user_version").fetchone()[0]
    return version


def migrate(conn: sqlite3.Connection, migrations: Sequence[str] = MIGRATIONS) -> int:
    """Apply the migrations the database has not seen, each in its own transaction."""
    current = schema_version(conn)
    if current > len(migrations):
        raise JournalSchemaError(
            f"journal schema version {current} is newer than this mm knows ({len(migrations)})"
        )
    for version, script in enumerate(migrations[current:], start=current + 1):
        conn.executescript(f"BEGIN;\n{script}\nPRAGMA user_version = {version};\nCOMMIT;")
    return schema_version(conn)


def open_database(path: Path) -> sqlite3.Connection:
    """Open (creating if needed) and migrate the journal. Blocking: call from a thread."""
    path.parent.mkdir(parents=True, exist_ok=True)
    conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute("PRAGMA synchronous = NORMAL")
    migrate(conn)
    return conn


def write_batch(conn: sqlite3.Connection, entries: Sequence[Entry]) -> None:
    """Append entries in one transaction. Blocking: call from a thread."""
    rows = [(entry.ts, entry.kind, orjson.dumps(entry.data, default=str)) for entry in entries]
    conn.execute("BEGIN")
    try:
        conn.executemany(
            "INSERT INTO events (ts, kind, data) VALUES (?, ?, ?) ON CONFLICT DO NOTHING", rows
        )
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")


def read_events(path: Path, kind: str | None = None) -> list[Entry]:
    """Every entry (optionally of one kind) in write order. Blocking: for tools and tests."""
    conn = sqlite3.connect(path)
    try:
        query = "SELECT id, ts, kind, data FROM events"
        params: tuple[str, ...] = ()
        if kind is not None:
            query += " WHERE kind = ?"
            params = (kind,)
        rows = conn.execute(query + " ORDER BY id", params).fetchall()
    finally:
        conn.close()
    return [Entry(ts, kind_, orjson.loads(data), row_id) for row_id, ts, kind_, data in rows]


def latest_event(path: Path, kind: str) -> Entry | None:
    """The newest entry of one kind (None: none, or no journal yet). Blocking: for startup and
    tools."""
    if not path.exists():
        return None
    conn = sqlite3.connect(path)
    try:
        row = conn.execute(
            "SELECT id, ts, data FROM events WHERE kind = ? ORDER BY id DESC LIMIT 1", (kind,)
        ).fetchone()
    finally:
        conn.close()
    return None if row is None else Entry(row[1], kind, orjson.loads(row[2]), row[0])


def last_fill_ms(path: Path) -> int | None:
    """The venue time of the newest journaled fill, or None. Blocking: for startup."""
    conn = sqlite3.connect(path)
    try:
        row = conn.execute(
            "SELECT MAX(CAST(json_extract(data, '$.time_ms') AS INTEGER)) FROM events "
            "WHERE kind = 'fill'"
        ).fetchone()
    finally:
        conn.close()
    return None if row is None or row[0] is None else int(row[0])


def journaled_fills(path: Path, limit: int) -> list[tuple[TradeId, OrderId, int]]:
    """The newest ``limit`` journaled fills (in write order) as (tid, oid, venue time_ms),
    newest first; none without a journal. Ids journaled before they were qualified by venue
    are read as qualified (``mm.model.journaled_order_id``). Blocking: for startup (the user
    stream's history is by trade id: a fill is history iff it is journaled)."""
    if not path.exists():
        return []
    conn = sqlite3.connect(path)
    try:
        rows = conn.execute(
            "SELECT json_extract(data, '$.tid'), json_extract(data, '$.oid'), "
            "CAST(json_extract(data, '$.time_ms') AS INTEGER) "
            "FROM events WHERE kind = 'fill' ORDER BY id DESC LIMIT ?",
            (limit,),
        ).fetchall()
    finally:
        conn.close()
    return [
        (journaled_trade_id(tid), journaled_order_id(oid), int(time_ms))
        for tid, oid, time_ms in rows
    ]


def fills_between(path: Path, start_ms: int, end_ms: int | None) -> list[dict[str, Any]]:
    """Journaled fills (as journaled) whose venue time is in [start_ms, end_ms] (no end:
    to the newest), in write order. Blocking: for ``mm check``."""
    conn = sqlite3.connect(path, timeout=2.0, isolation_level=None)
    try:
        rows = conn.execute(
            "SELECT data FROM events WHERE kind = 'fill' "
            "AND CAST(json_extract(data, '$.time_ms') AS INTEGER) >= ? ORDER BY id",
            (start_ms,),
        ).fetchall()
    finally:
        conn.close()
    fills = [orjson.loads(row[0]) for row in rows]
    return [f for f in fills if end_ms is None or int(f["time_ms"]) <= end_ms]


def _busy(error: sqlite3.OperationalError) -> bool:
    """Whether ``error`` is SQLITE_BUSY (another connection holds the lock), extended or not."""
    code = getattr(error, "sqlite_errorcode", None)
    return code is not None and code & 0xFF == sqlite3.SQLITE_BUSY


def take_write_lock(path: Path, busy_timeout_s: float) -> None:
    """Open (creating, migrating) the journal and take and release its write lock:
    ``sqlite3.OperationalError`` when another writer holds it past ``busy_timeout_s``."""
    conn = open_database(path)
    try:
        conn.execute(f"PRAGMA busy_timeout = {int(busy_timeout_s * 1000)}")
        conn.execute("BEGIN IMMEDIATE")
        conn.execute("ROLLBACK")
    finally:
        conn.close()


def checkpoint_wal(path: Path) -> tuple[int, int, int]:
    """Fold the write-ahead log into the database (``PRAGMA wal_checkpoint(TRUNCATE)``):
    (busy, WAL frames, frames checkpointed)."""
    conn = sqlite3.connect(path, timeout=2.0, isolation_level=None)
    try:
        busy, log, done = conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
    finally:
        conn.close()
    return int(busy), int(log), int(done)


class JournalMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.entries = Counter("mm_journal_entries", "Journal entries written.", registry=registry)
        self.batch_seconds = Histogram(
            "mm_journal_batch_seconds",
            "Time to write one journal batch.",
            buckets=LATENCY_BUCKETS,
            registry=registry,
        )
        self.queue_depth = Gauge(
            "mm_journal_queue_depth", "Entries waiting to be written.", registry=registry
        )
        self.failures = Counter(
            "mm_journal_write_failures", "Journal batches that failed to write.", registry=registry
        )
        self.last_write = Gauge(
            "mm_journal_last_write_timestamp_seconds",
            "Wall-clock time of the last successful journal write.",
            registry=registry,
        )


class Journal:
    """The front door (``record``) and the writer child (``run``) of the journal."""

    def __init__(self, path: Path, config: JournalConfig, registry: CollectorRegistry) -> None:
        self.path = path
        self._config = config
        self._metrics = JournalMetrics(registry)
        self._send, self._receive = trio.open_memory_channel[Entry](config.queue_size)
        self._pending: list[Entry] = []  # taken from the channel, not yet committed
        # While writes fail, entries are still taken off the queue up to this many pending.
        self._hold_max = config.queue_size * HOLD_FACTOR

    async def record(self, kind: str, **data: Any) -> None:
        """Queue an entry; waits when the queue is full."""
        await self._send.send(Entry(clock.wall(), kind, data))

    async def record_committed(self, kind: str, **data: Any) -> None:
        """Queue an entry and wait until the writer has committed it to the database (what an
        acknowledgement promises must survive a crash). Waits as long as writes fail: callers
        bound the wait and say when it ran out."""
        committed = trio.Event()
        await self._send.send(Entry(clock.wall(), kind, data, committed=committed))
        await committed.wait()

    def record_nowait(self, kind: str, **data: Any) -> None:
        """Queue an entry from synchronous code; raises ``trio.WouldBlock`` when full."""
        self._send.send_nowait(Entry(clock.wall(), kind, data))

    def record_or_log(self, kind: str, **data: Any) -> bool:
        """Queue an entry without waiting (sync callbacks, a stop that must not hang); when the
        queue is full, log what was not journaled instead. True when queued."""
        try:
            self.record_nowait(kind, **data)
        except trio.WouldBlock:
            logger.error("journal queue full; not journaled: {} {}", kind, data)
            return False
        return True

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        conn = await world.run_blocking(open_database, self.path)
        conn.execute("PRAGMA busy_timeout = 0")  # the lock is waited for on the clock: _write
        try:
            task_status.started()
            retry = RETRY_INITIAL_S
            while True:
                if not self._pending:
                    self._pending.append(await self._receive.receive())
                self._take_ready(self._config.batch_max)
                try:
                    await self._flush(conn)
                except sqlite3.Error as error:
                    retry = await self._failed(error, retry)
                else:
                    retry = RETRY_INITIAL_S
        finally:
            try:
                with trio.move_on_after(self._config.flush_timeout, shield=True):
                    self._take_ready(None)
                    try:
                        await self._flush(conn)
                    except sqlite3.Error as error:  # kept pending, reported below
                        logger.error("journal final flush failed: {}", error)
            finally:
                conn.close()
                if self._pending:
                    logger.error("journal stopped with {} entries unwritten", len(self._pending))

    async def _failed(self, error: sqlite3.Error, retry: float) -> float:
        """Keep everything, keep the queue moving, wait, and say how long to wait next time."""
        self._metrics.failures.inc()
        if retry == RETRY_INITIAL_S:  # the first failure of a run of them
            logger.error("journal write failed (retrying, nothing dropped): {}", error)
        with trio.move_on_after(retry):  # the wait before the retry still drains the queue
            while len(self._pending) < self._hold_max:
                self._pending.append(await self._receive.receive())
            await trio.sleep_forever()
        return min(retry * 2, RETRY_CAP_S)

    async def _write(self, conn: sqlite3.Connection, batch: Sequence[Entry]) -> None:
        """Write ``batch``, waiting up to LOCK_WAIT_S on the clock while another connection
        holds the write lock; any other error, or the lock held past that, is raised."""
        deadline = clock.monotonic() + LOCK_WAIT_S
        pause = LOCK_POLL_INITIAL_S
        while True:
            try:
                await world.run_blocking(write_batch, conn, batch)
            except sqlite3.OperationalError as error:
                if not _busy(error) or clock.monotonic() + pause > deadline:
                    raise
            else:
                return
            await trio.sleep(pause)
            pause = min(pause * 2, LOCK_POLL_CAP_S)

    def lag(self, now: float) -> float:
        """Seconds the oldest entry taken for writing has waited (0 when none is waiting)."""
        return max(now - self._pending[0].ts, 0.0) if self._pending else 0.0

    def fill(self) -> float:
        """How full the queue is, from 0 to 1."""
        stats = self._receive.statistics()
        return stats.current_buffer_used / stats.max_buffer_size

    def _take_ready(self, limit: int | None) -> None:
        """Move queued entries into the pending batch, up to ``limit`` (None: all of them)."""
        while limit is None or len(self._pending) < limit:
            try:
                self._pending.append(self._receive.receive_nowait())
            except trio.WouldBlock:
                break

    async def _flush(self, conn: sqlite3.Connection) -> None:
        if not self._pending:
            return
        started = time.perf_counter()
        batch = list(self._pending)
        await self._write(conn, batch)
        del self._pending[: len(batch)]
        for entry in batch:
            if entry.committed is not None:
                entry.committed.set()
        self._metrics.batch_seconds.observe(time.perf_counter() - started)
        self._metrics.entries.inc(len(batch))
        self._metrics.last_write.set(clock.wall())
        self._metrics.queue_depth.set(self._receive.statistics().current_buffer_used)
