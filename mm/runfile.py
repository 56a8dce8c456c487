"""The run file: ``<run_dir>/mm.json`` (pid, admin URL) guarded by a lock on ``mm.lock``.

The lock (``flock``) is held for the life of the process and released by the kernel when it
exits, however it exits. So "running" means "the lock is held", which survives pid reuse and
zombie processes; an ``mm.json`` whose lock is free is stale and is removed.

The run directory holds the journal, the logs, incident dumps and backups: it is the owner's
alone. ``acquire`` creates it 0700, or narrows an existing one to 0700 (one left 0755 by an
older mm; when it cannot, say because another user owns it, it says so and goes on), and the
lock and the run file are written 0600 whatever the umask. ``mm``'s entry point also sets the
process umask to 077, so that every file created later, by any part (the journal's WAL and
SHM files, rotated logs, dumps), is owner-only too.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import stat
from pathlib import Path
from typing import Any

import attrs
import orjson
from loguru import logger

RUN_FILE_NAME = "mm.json"
LOCK_FILE_NAME = "mm.lock"
PRIVATE_DIR = 0o700  # the run directory and everything mm creates as a directory in it
PRIVATE_FILE = 0o600  # every file mm writes there


class AlreadyRunning(Exception):
    """Another mm holds this run_dir."""


@attrs.frozen
class RunInfo:
    pid: int
    admin_url: str
    started_at: float
    service: str

    def to_json(self) -> bytes:
        return orjson.dumps(attrs.asdict(self), option=orjson.OPT_INDENT_2)

    @classmethod
    def from_json(cls, raw: bytes) -> RunInfo:
        data: dict[str, Any] = orjson.loads(raw)
        return cls(
            pid=int(data["pid"]),
            admin_url=str(data["admin_url"]),
            started_at=float(data["started_at"]),
            service=str(data["service"]),
        )


def read_info(run_dir: Path) -> RunInfo | None:
    """The run file's content, or None if it is missing or unreadable."""
    try:
        return RunInfo.from_json((run_dir / RUN_FILE_NAME).read_bytes())
    except (OSError, ValueError, KeyError, TypeError):
        return None


def is_locked(run_dir: Path) -> bool:
    """True while some process holds the run_dir lock (an mm is running there)."""
    lock_path = run_dir / LOCK_FILE_NAME
    if not lock_path.exists():
        return False
    fd = os.open(lock_path, os.O_RDWR)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    else:
        fcntl.flock(fd, fcntl.LOCK_UN)
        return False
    finally:
        os.close(fd)


def private_dir(path: Path) -> None:
    """``path`` as a directory only its owner can enter: created 0700 (parents as the umask
    says), or narrowed to 0700 when it exists wider. A directory mm cannot narrow (another
    user's) is left as it is, with a warning: refusing to start would help no one."""
    path.mkdir(mode=PRIVATE_DIR, parents=True, exist_ok=True)
    mode = stat.S_IMODE(path.stat().st_mode)
    if mode & ~PRIVATE_DIR:
        try:
            path.chmod(PRIVATE_DIR)
        except OSError as error:
            logger.warning("{} is mode {:o} and cannot be made private: {}", path, mode, error)


class RunFile:
    """Held by a running service: the lock, and the run file it writes and removes.

    How it fails: ``acquire`` raises ``AlreadyRunning`` naming the instance that holds the
    lock, and ``OSError`` when the run directory cannot be created; nothing is left locked.
    """

    def __init__(self, run_dir: Path) -> None:
        self.run_dir = run_dir
        self.path = run_dir / RUN_FILE_NAME
        self._fd: int | None = None
        self.removed_stale = False

    def acquire(self) -> None:
        """Take the run_dir lock, or raise AlreadyRunning naming the running instance."""
        private_dir(self.run_dir)
        fd = os.open(self.run_dir / LOCK_FILE_NAME, os.O_RDWR | os.O_CREAT, PRIVATE_FILE)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            info = read_info(self.run_dir)
            where = f" (pid {info.pid}, admin {info.admin_url})" if info else ""
            raise AlreadyRunning(f"mm is already running in {self.run_dir}{where}") from None
        self._fd = fd
        with contextlib.suppress(PermissionError):  # another user's: leave it
            os.fchmod(fd, PRIVATE_FILE)  # a lock file left by an older mm with a wider mode
        if self.path.exists():
            self.path.unlink()
            self.removed_stale = True

    def write(self, info: RunInfo) -> None:
        temporary = self.path.with_suffix(".json.tmp")
        temporary.unlink(missing_ok=True)  # created afresh below with the private mode
        fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, PRIVATE_FILE)
        with os.fdopen(fd, "wb") as file:
            file.write(info.to_json())
        temporary.replace(self.path)

    def release(self) -> None:
        """Remove the run file, then drop the lock; does nothing unless ``acquire`` succeeded."""
        if self._fd is None:
            return
        self.path.unlink(missing_ok=True)
        os.close(self._fd)
        self._fd = None
