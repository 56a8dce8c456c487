"""Online backups of the journal database, with retention.

``backup`` copies a live SQLite database (WAL: the service may keep writing) through SQLite's
online backup API into ``mm-YYYYmmddTHHMMSSZ.sqlite3``, under a temporary name until the copy
has passed ``PRAGMA integrity_check``, then keeps the newest ``keep`` backups. Only files named
like a backup are ever deleted. Blocking: call from a thread (``trio.to_thread.run_sync``).
"""

from __future__ import annotations

import contextlib
import datetime
import os
import re
import sqlite3
import tempfile
from pathlib import Path

BACKUP_NAME = re.compile(r"mm-(\d{8}T\d{6}Z)\.sqlite3")
_STAMP = "%Y%m%dT%H%M%SZ"


class BackupError(Exception):
    """A backup could not be made; the message names the path and the reason."""


def backup_name(now: datetime.datetime) -> str:
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    return f"mm-{now.astimezone(datetime.UTC).strftime(_STAMP)}.sqlite3"


def list_backups(backup_dir: Path) -> list[Path]:
    """The backups in ``backup_dir`` (files named like one), newest first."""
    if not backup_dir.is_dir():
        return []
    found = [
        path for path in backup_dir.iterdir() if BACKUP_NAME.fullmatch(path.name) and path.is_file()
    ]
    return sorted(found, key=lambda path: path.name, reverse=True)  # the stamp sorts by time


def prune(backup_dir: Path, keep: int, *, protect: Path | None = None) -> list[Path]:
    """Delete all but the newest ``keep`` backups (never ``protect``); returns the deleted."""
    if keep < 1:
        raise ValueError(f"keep must be at least 1, not {keep}")
    backups = list_backups(backup_dir)
    kept = [protect] if protect is not None and protect in backups else []
    kept += [path for path in backups if path != protect][: keep - len(kept)]
    deleted = [path for path in backups if path not in kept]
    for path in deleted:
        try:
            path.unlink(missing_ok=True)
        except OSError as exc:
            raise BackupError(f"cannot delete old backup {path}: {exc}") from exc
    return deleted


def backup(database: Path, backup_dir: Path, *, keep: int, now: datetime.datetime) -> Path:
    """Copy ``database`` into ``backup_dir``, verify the copy, apply retention; the new path.

    The copy is one consistent snapshot of what was committed when it started: other
    connections keep writing meanwhile (WAL). The new backup is never pruned, even when the
    clock has gone back behind older backups.
    """
    if keep < 1:
        raise ValueError(f"keep must be at least 1, not {keep}")
    target = backup_dir / backup_name(now)
    if not database.is_file():
        raise BackupError(f"cannot back up {database}: database not found")
    if target.exists():
        raise BackupError(f"cannot back up {database}: backup {target} already exists")
    try:
        backup_dir.mkdir(parents=True, exist_ok=True)
        fd, temp_name = tempfile.mkstemp(
            prefix=f".{target.name}.", suffix=".partial", dir=backup_dir
        )
        os.close(fd)
    except OSError as exc:
        raise BackupError(
            f"cannot back up {database}: cannot write in {backup_dir}: {exc}"
        ) from exc
    temp = Path(temp_name)
    try:
        _copy(database, temp)
        _sync(temp)
        os.replace(temp, target)
        _sync(backup_dir)
    except BackupError:
        raise
    except (sqlite3.Error, OSError) as exc:
        raise BackupError(f"cannot back up {database} to {target}: {exc}") from exc
    finally:
        for leftover in (temp, Path(f"{temp}-journal"), Path(f"{temp}-wal"), Path(f"{temp}-shm")):
            with contextlib.suppress(OSError):
                leftover.unlink(missing_ok=True)
    prune(backup_dir, keep, protect=target)
    return target


def _copy(database: Path, temp: Path) -> None:
    """Snapshot ``database`` into ``temp`` as one self-contained file, and check it."""
    source = sqlite3.connect(f"{database.resolve().as_uri()}?mode=ro", uri=True)
    try:
        copy = sqlite3.connect(temp)
        try:
            source.backup(copy)  # all pages in one step: one read transaction, one snapshot
            copy.execute("PRAGMA journal_mode = DELETE")  # no -wal/-shm beside a backup
            try:
                result = [row[0] for row in copy.execute("PRAGMA integrity_check")]
            except sqlite3.DatabaseError as exc:
                result = [str(exc)]
        finally:
            copy.close()
    finally:
        source.close()
    if result != ["ok"]:
        problems = [
            line
            for row in result
            for line in row.splitlines()
            if line.strip() and not line.startswith("***")
        ]
        raise BackupError(
            f"the copy of {database} failed its integrity check, so the database itself is"
            f" likely damaged ({len(problems)} problems): {'; '.join(problems[:3])}"
        )


def _sync(path: Path) -> None:
    """fsync a file or a directory, so that a completed backup survives a crash."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
