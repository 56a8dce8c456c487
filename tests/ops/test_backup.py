"""Tests of mm.ops.backup: online copies of a live journal, retention, and failures.

A backup taken while another connection writes is a valid, self-contained copy holding every
row committed before it started; retention keeps the newest ``keep`` and touches nothing else;
a failed backup leaves no temporary file and never a file that looks complete.
"""

from __future__ import annotations

import datetime
import os
import sqlite3
import threading
from pathlib import Path

import pytest

from mm.journal import Entry, open_database, read_events, write_batch
from mm.ops.backup import BackupError, backup, backup_name, list_backups, prune

NOW = datetime.datetime(2024, 3, 1, 12, 30, 45, tzinfo=datetime.UTC)


def at(seconds: float) -> datetime.datetime:
    return NOW + datetime.timedelta(seconds=seconds)


def entries(start: int, count: int) -> list[Entry]:
    return [Entry(float(i), "tick", {"seq": i}) for i in range(start, start + count)]


@pytest.fixture
def database(tmp_path: Path) -> Path:
    path = tmp_path / "run" / "mm.sqlite3"
    conn = open_database(path)
    write_batch(conn, entries(0, 100))
    conn.close()
    return path


def seqs(path: Path) -> list[int]:
    return [entry.data["seq"] for entry in read_events(path, "tick")]


def test_backup_name_is_utc() -> None:
    east = datetime.timezone(datetime.timedelta(hours=8))
    assert backup_name(NOW) == "mm-20240301T123045Z.sqlite3"
    assert backup_name(NOW.astimezone(east)) == "mm-20240301T123045Z.sqlite3"
    with pytest.raises(ValueError, match="timezone-aware"):
        backup_name(NOW.replace(tzinfo=None))


def test_backup_is_a_valid_self_contained_copy(database: Path, tmp_path: Path) -> None:
    backup_dir = tmp_path / "backups"
    path = backup(database, backup_dir, keep=3, now=NOW)
    assert path == backup_dir / "mm-20240301T123045Z.sqlite3"
    assert sorted(p.name for p in backup_dir.iterdir()) == [path.name]  # no -wal, no temp
    assert seqs(path) == list(range(100))
    conn = sqlite3.connect(path)
    try:
        assert conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        assert conn.execute("PRAGMA journal_mode").fetchone() == ("delete",)
        assert conn.execute("PRAGMA user_version").fetchone()[0] >= 2  # the journal's schema
    finally:
        conn.close()


def test_backup_while_another_connection_writes(database: Path, tmp_path: Path) -> None:
    stop = threading.Event()
    written: list[int] = []

    def writer() -> None:
        conn = open_database(database)
        try:
            seq = 100
            while not stop.is_set():
                write_batch(conn, entries(seq, 50))
                seq += 50
                written.append(seq)
        finally:
            conn.close()

    thread = threading.Thread(target=writer)
    thread.start()
    try:
        while len(written) < 5 and thread.is_alive():
            stop.wait(0.001)
        committed = written[-1]  # every row below this seq was committed before the backup
        path = backup(database, tmp_path / "backups", keep=3, now=NOW)
        while len(written) < 10 and thread.is_alive():  # the writer goes on meanwhile
            stop.wait(0.001)
        assert thread.is_alive()
    finally:
        stop.set()
        thread.join()
    copied = seqs(path)
    assert len(copied) >= committed
    assert copied == list(range(len(copied)))  # a whole prefix: one consistent snapshot
    assert len(copied) % 50 == 0  # whole transactions only
    assert len(seqs(database)) == written[-1]


def test_backup_does_not_wait_for_nor_copy_an_open_transaction(
    database: Path, tmp_path: Path
) -> None:
    conn = open_database(database)
    try:
        conn.execute("BEGIN IMMEDIATE")
        conn.execute("INSERT INTO events (ts, kind, data) VALUES (1, 'tick', '{\"seq\": -1}')")
        path = backup(database, tmp_path / "backups", keep=3, now=NOW)
        conn.execute("COMMIT")
    finally:
        conn.close()
    assert seqs(path) == list(range(100))
    assert seqs(database)[-1] == -1


def test_retention_keeps_the_newest_and_nothing_foreign(database: Path, tmp_path: Path) -> None:
    backup_dir = tmp_path / "backups"
    backup_dir.mkdir()
    foreign = [
        backup_dir / "notes.txt",
        backup_dir / "mm-latest.sqlite3",
        backup_dir / "mm-20000101T000000Z.sqlite3.bak",
        backup_dir / "old-mm-20000101T000000Z.sqlite3",
        backup_dir / "mm-20000101T000000Z.sqlite3-wal",
    ]
    for path in foreign:
        path.write_text("not a backup of ours")
    a_directory = backup_dir / "mm-20000101T000000Z.sqlite3"
    a_directory.mkdir()

    made = [backup(database, backup_dir, keep=3, now=at(hours * 3600)) for hours in range(5)]
    assert list_backups(backup_dir) == made[:1:-1]  # the newest three, newest first
    assert [p.name for p in list_backups(backup_dir)] == [
        "mm-20240301T163045Z.sqlite3",
        "mm-20240301T153045Z.sqlite3",
        "mm-20240301T143045Z.sqlite3",
    ]
    for path in foreign:
        assert path.read_text() == "not a backup of ours"
    assert a_directory.is_dir()
    assert not list(backup_dir.glob("*.partial"))


def test_retention_never_deletes_the_new_backup(database: Path, tmp_path: Path) -> None:
    """After the clock went back, the new backup is the oldest by name: it is kept anyway."""
    backup_dir = tmp_path / "backups"
    later = [backup(database, backup_dir, keep=2, now=at(3600 * h)) for h in (1, 2)]
    earlier = backup(database, backup_dir, keep=2, now=at(0))
    assert list_backups(backup_dir) == [later[1], earlier]


def test_prune(tmp_path: Path) -> None:
    for hour in range(4):
        (tmp_path / backup_name(at(hour * 3600))).write_text("")
    deleted = prune(tmp_path, 1)
    assert [p.name for p in deleted] == [backup_name(at(h * 3600)) for h in (2, 1, 0)]
    assert list_backups(tmp_path) == [tmp_path / backup_name(at(3 * 3600))]
    assert list_backups(tmp_path / "missing") == []
    with pytest.raises(ValueError, match="keep"):
        prune(tmp_path, 0)


def test_missing_database(tmp_path: Path) -> None:
    missing = tmp_path / "run" / "mm.sqlite3"
    with pytest.raises(BackupError, match=r"mm\.sqlite3: database not found") as info:
        backup(missing, tmp_path / "backups", keep=3, now=NOW)
    assert str(missing) in str(info.value)
    assert not (tmp_path / "backups").exists()
    assert not missing.exists()  # not created by opening it


def test_bad_arguments(database: Path, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="keep"):
        backup(database, tmp_path, keep=0, now=NOW)
    with pytest.raises(ValueError, match="timezone-aware"):
        backup(database, tmp_path, keep=1, now=NOW.replace(tzinfo=None))


def test_existing_backup_is_not_overwritten(database: Path, tmp_path: Path) -> None:
    first = backup(database, tmp_path, keep=3, now=NOW)
    before = first.read_bytes()
    with pytest.raises(BackupError, match="already exists"):
        backup(database, tmp_path, keep=3, now=NOW)
    assert first.read_bytes() == before


def test_failure_leaves_no_temporary_file(
    database: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    backup_dir = tmp_path / "backups"
    kept = backup(database, backup_dir, keep=3, now=NOW)

    def fail(src: object, dst: object) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", fail)
    with pytest.raises(BackupError, match="No space left on device") as info:
        backup(database, backup_dir, keep=3, now=at(60))
    assert str(database) in str(info.value)
    assert list(backup_dir.iterdir()) == [kept]


def test_damaged_database_fails_the_integrity_check(tmp_path: Path) -> None:
    database = tmp_path / "damaged.sqlite3"
    conn = sqlite3.connect(database)
    conn.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT)")
    conn.execute("CREATE INDEX t_v ON t (v)")
    conn.executemany("INSERT INTO t (v) VALUES (?)", [(f"value {i:06d}" * 4,) for i in range(3000)])
    conn.commit()
    page_size = conn.execute("PRAGMA page_size").fetchone()[0]
    conn.close()
    with database.open("r+b") as file:  # scribble over the middle of a b-tree page
        file.seek(page_size * 20 + 100)
        file.write(b"\x5a" * 900)

    backup_dir = tmp_path / "backups"
    with pytest.raises(BackupError, match="failed its integrity check") as info:
        backup(database, backup_dir, keep=3, now=NOW)
    assert str(database) in str(info.value)
    assert list(backup_dir.iterdir()) == []


def test_backups_of_a_journal_are_readable_while_it_is_open(database: Path, tmp_path: Path) -> None:
    """The journal writer keeps its connection open (WAL, uncheckpointed) during the backup."""
    conn = open_database(database)
    try:
        conn.execute("PRAGMA wal_autocheckpoint = 0")
        write_batch(conn, entries(100, 10))
        assert os.path.getsize(f"{database}-wal") > 0  # the new rows live in the WAL only
        path = backup(database, tmp_path / "backups", keep=1, now=NOW)
    finally:
        conn.close()
    assert seqs(path) == list(range(110))
