"""The run directory is its owner's alone (issue 13, item 13): a real ``mm start``.

Started from a shell whose umask is the usual 022, mm used to leave its journal, the WAL and
SHM files, the JSON logs, incident dumps and the run file readable by every user (0644, the
directories 0755). Now every directory under the run directory is 0700 and every file 0600,
including those created while it runs: the WAL and SHM files, rotated logs, a dump, a backup.
"""

from __future__ import annotations

import os
import stat
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from mm.journal import DATABASE_NAME
from tests.conftest import ConfigWriter
from tests.e2e.mmproc import MMProcess, run_mm


@pytest.fixture
def usual_umask() -> Iterator[None]:
    """The test process (and so the mm it starts) under umask 022, as from a login shell."""
    previous = os.umask(0o022)
    try:
        yield
    finally:
        os.umask(previous)


def modes(run_dir: Path) -> dict[str, tuple[int, bool]]:
    """Every path under ``run_dir`` (itself included): its permission bits, and whether it is
    a directory."""
    found = {".": (stat.S_IMODE(run_dir.stat().st_mode), True)}
    for path in run_dir.rglob("*"):
        try:
            mode = path.lstat().st_mode
        except FileNotFoundError:  # a temporary file gone meanwhile
            continue
        found[str(path.relative_to(run_dir))] = (stat.S_IMODE(mode), stat.S_ISDIR(mode))
    return found


def not_private(found: dict[str, tuple[int, bool]]) -> dict[str, str]:
    """Paths others may read or enter: files not 0600 or narrower, directories not 0700."""
    return {
        path: f"{mode:o}"
        for path, (mode, directory) in found.items()
        if mode & 0o077 or (directory and mode != 0o700)
    }


def test_everything_mm_writes_in_its_run_dir_is_owner_only(
    write_config: ConfigWriter, usual_umask: None
) -> None:
    # Logs rotated every 1 KB, so that rotated files exist within seconds.
    config = write_config(service={"json_logs": True, "log_rotation": "1 KB"})
    mm = MMProcess(config)
    try:
        mm.wait_ready()
        dump = run_mm("dump", "-c", str(config))
        assert dump.returncode == 0, dump.stdout + dump.stderr
        backup = run_mm("backup", "-c", str(config))
        assert backup.returncode == 0, backup.stdout + backup.stderr
        logs = mm.run_dir / "logs"
        deadline = time.monotonic() + 20.0
        while len(list(logs.glob("mm*.jsonl"))) < 2:  # the first rotation
            assert time.monotonic() < deadline, sorted(p.name for p in logs.iterdir())
            time.sleep(0.1)
        running = modes(mm.run_dir)
    finally:
        stop = run_mm("stop", "-c", str(config))
        mm.kill()
    assert stop.returncode == 0, stop.stdout + stop.stderr

    # Everything the issue names was there while mm ran, and none of it was readable by others.
    for name in (
        ".",
        DATABASE_NAME,
        f"{DATABASE_NAME}-wal",
        f"{DATABASE_NAME}-shm",
        "mm.json",
        "mm.lock",
        "logs",
        "logs/mm.jsonl",
        "incidents",
        "backups",
    ):
        assert name in running, (name, sorted(running))
    assert any(name.startswith("incidents/") for name in running)
    assert any(name.startswith("backups/") for name in running)
    assert not_private(running) == {}
    assert not_private(modes(mm.run_dir)) == {}  # and after the stop
