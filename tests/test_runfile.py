"""Tests for mm.runfile: the run_dir lock, the run file, stale files and AlreadyRunning."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest
from loguru import logger

from mm.runfile import (
    LOCK_FILE_NAME,
    PRIVATE_DIR,
    PRIVATE_FILE,
    RUN_FILE_NAME,
    AlreadyRunning,
    RunFile,
    RunInfo,
    is_locked,
    private_dir,
    read_info,
)

INFO = RunInfo(pid=4242, admin_url="http://127.0.0.1:9400", started_at=1700000000.5, service="mm")

HOLDER = """
import fcntl, os, sys
fd = os.open(sys.argv[1], os.O_RDWR | os.O_CREAT, 0o600)
fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
print("locked", flush=True)
sys.stdin.read()
"""


@pytest.fixture
def run_dir(tmp_path: Path) -> Path:
    return tmp_path / "state" / "run"


@pytest.fixture
def held(run_dir: Path) -> Iterator[RunFile]:
    runfile = RunFile(run_dir)
    runfile.acquire()
    yield runfile
    runfile.release()


@pytest.fixture
def other_process(run_dir: Path) -> Iterator[subprocess.Popen[str]]:
    """Another process holding the run_dir lock until its stdin is closed."""
    run_dir.mkdir(parents=True)
    process = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(run_dir / LOCK_FILE_NAME)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert process.stdout is not None
    assert process.stdout.readline() == "locked\n"
    yield process
    if process.poll() is None:
        process.kill()
        process.wait()
    assert process.stdout is not None
    process.stdout.close()
    if process.stdin is not None:
        process.stdin.close()


def stop(process: subprocess.Popen[str]) -> None:
    assert process.stdin is not None
    process.stdin.close()
    assert process.wait(timeout=5) == 0


def test_acquire_creates_run_dir_and_lock(run_dir: Path) -> None:
    assert not is_locked(run_dir)
    runfile = RunFile(run_dir)
    runfile.acquire()
    try:
        assert run_dir.is_dir()
        assert (run_dir / LOCK_FILE_NAME).exists()
        assert not (run_dir / RUN_FILE_NAME).exists()
        assert runfile.path == run_dir / RUN_FILE_NAME
        assert runfile.removed_stale is False
        assert is_locked(run_dir)
    finally:
        runfile.release()


def test_second_runfile_in_this_process_is_refused(held: RunFile, run_dir: Path) -> None:
    # flock locks belong to open file descriptions: a second open() conflicts even here.
    held.write(INFO)
    with pytest.raises(AlreadyRunning) as caught:
        RunFile(run_dir).acquire()
    assert str(caught.value) == (
        f"mm is already running in {run_dir} (pid 4242, admin http://127.0.0.1:9400)"
    )
    # The refused attempt must not disturb the holder.
    assert is_locked(run_dir)
    assert read_info(run_dir) == INFO


def test_already_running_without_run_file(held: RunFile, run_dir: Path) -> None:
    with pytest.raises(AlreadyRunning) as caught:
        RunFile(run_dir).acquire()
    assert str(caught.value) == f"mm is already running in {run_dir}"


def test_lock_held_by_another_process(other_process: subprocess.Popen[str], run_dir: Path) -> None:
    (run_dir / RUN_FILE_NAME).write_bytes(INFO.to_json())
    assert is_locked(run_dir)
    runfile = RunFile(run_dir)
    with pytest.raises(AlreadyRunning, match=r"\(pid 4242, admin http://127\.0\.0\.1:9400\)"):
        runfile.acquire()
    assert (run_dir / RUN_FILE_NAME).exists()  # the running instance's file is left alone

    stop(other_process)  # the kernel drops the lock when the holder exits
    assert not is_locked(run_dir)
    runfile.acquire()
    try:
        assert runfile.removed_stale is True
        assert not (run_dir / RUN_FILE_NAME).exists()
    finally:
        runfile.release()


def test_our_lock_is_seen_by_another_process(held: RunFile, run_dir: Path) -> None:
    probe = (
        "import fcntl, os, sys\n"
        "fd = os.open(sys.argv[1], os.O_RDWR)\n"
        "try:\n"
        "    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)\n"
        "except BlockingIOError:\n"
        "    sys.exit(3)\n"
    )
    lock = str(run_dir / LOCK_FILE_NAME)
    assert subprocess.run([sys.executable, "-c", probe, lock], check=False).returncode == 3
    held.release()
    assert subprocess.run([sys.executable, "-c", probe, lock], check=False).returncode == 0


def test_stale_run_file_is_removed_on_acquire(run_dir: Path) -> None:
    run_dir.mkdir(parents=True)
    (run_dir / RUN_FILE_NAME).write_bytes(INFO.to_json())
    (run_dir / LOCK_FILE_NAME).touch()  # a lock file left behind, but nobody holds it
    assert not is_locked(run_dir)
    runfile = RunFile(run_dir)
    runfile.acquire()
    try:
        assert runfile.removed_stale is True
        assert not (run_dir / RUN_FILE_NAME).exists()
        assert read_info(run_dir) is None
    finally:
        runfile.release()


def test_write_and_read_info_round_trip(held: RunFile, run_dir: Path) -> None:
    info = RunInfo(
        pid=os.getpid(), admin_url="http://[::1]:1234", started_at=time.time(), service="x"
    )
    held.write(info)
    assert read_info(run_dir) == info
    assert orjson.loads((run_dir / RUN_FILE_NAME).read_bytes()) == {
        "pid": info.pid,
        "admin_url": info.admin_url,
        "started_at": info.started_at,
        "service": "x",
    }
    held.write(INFO)  # rewriting replaces the file whole
    assert read_info(run_dir) == INFO
    assert sorted(path.name for path in run_dir.iterdir()) == sorted(
        [LOCK_FILE_NAME, RUN_FILE_NAME]
    )


def test_run_info_json_round_trip() -> None:
    assert RunInfo.from_json(INFO.to_json()) == INFO


def test_release_removes_run_file_and_frees_the_lock(held: RunFile, run_dir: Path) -> None:
    held.write(INFO)
    held.release()
    assert not (run_dir / RUN_FILE_NAME).exists()
    assert not is_locked(run_dir)
    assert read_info(run_dir) is None
    held.release()  # twice is harmless
    again = RunFile(run_dir)
    again.acquire()
    try:
        assert again.removed_stale is False
        assert is_locked(run_dir)
    finally:
        again.release()
    assert not is_locked(run_dir)


def test_is_locked_without_lock_file(tmp_path: Path) -> None:
    assert not is_locked(tmp_path / "missing")
    assert not is_locked(tmp_path)


def test_is_locked_does_not_take_the_lock(run_dir: Path) -> None:
    run_dir.mkdir(parents=True)
    (run_dir / LOCK_FILE_NAME).touch()
    assert not is_locked(run_dir)
    assert not is_locked(run_dir)
    runfile = RunFile(run_dir)
    runfile.acquire()
    runfile.release()


@pytest.mark.parametrize(
    "content",
    [
        b"",
        b"not json at all",
        b"\xff\xfe\x00garbage",
        b"[1, 2, 3]",
        b'"a string"',
        b"{}",
        b'{"pid": 1, "admin_url": "x", "started_at": 1.0}',
        b'{"pid": "abc", "admin_url": "x", "started_at": 1.0, "service": "mm"}',
        b'{"pid": null, "admin_url": "x", "started_at": 1.0, "service": "mm"}',
        b'{"pid": 1, "admin_url": "x", "started_at": "later", "service": "mm"}',
    ],
)
def test_read_info_on_garbage_returns_none(run_dir: Path, content: bytes) -> None:
    run_dir.mkdir(parents=True)
    (run_dir / RUN_FILE_NAME).write_bytes(content)
    assert read_info(run_dir) is None


def test_read_info_missing(tmp_path: Path) -> None:
    assert read_info(tmp_path) is None
    assert read_info(tmp_path / "absent") is None


def test_release_without_acquire_leaves_another_instances_file(
    held: RunFile, run_dir: Path
) -> None:
    info = RunInfo(pid=os.getpid(), admin_url="http://127.0.0.1:1", started_at=1.0, service="mm")
    held.write(info)
    RunFile(run_dir).release()  # never acquired: must not touch the holder's file
    assert read_info(run_dir) == info
    assert is_locked(run_dir)


# --- owner-only (issue 13, item 13) -------------------------------------------------------------


@pytest.fixture
def usual_umask() -> Iterator[None]:
    """Umask 022, as from a login shell: what mm must not rely on."""
    previous = os.umask(0o022)
    try:
        yield
    finally:
        os.umask(previous)


def mode_of(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_the_run_dir_lock_and_run_file_are_owner_only(run_dir: Path, usual_umask: None) -> None:
    runfile = RunFile(run_dir)
    runfile.acquire()
    try:
        runfile.write(INFO)
        assert mode_of(run_dir) == PRIVATE_DIR == 0o700
        assert mode_of(run_dir / LOCK_FILE_NAME) == PRIVATE_FILE == 0o600
        assert mode_of(run_dir / RUN_FILE_NAME) == 0o600
        runfile.write(INFO)  # rewritten in place of the old one: still private
        assert mode_of(run_dir / RUN_FILE_NAME) == 0o600
    finally:
        runfile.release()


def test_a_run_dir_left_open_by_an_older_mm_is_narrowed(run_dir: Path, usual_umask: None) -> None:
    run_dir.mkdir(parents=True, mode=0o755)
    (run_dir / LOCK_FILE_NAME).touch(mode=0o644)
    run_dir.chmod(0o755)
    runfile = RunFile(run_dir)
    runfile.acquire()
    try:
        assert mode_of(run_dir) == 0o700
        assert mode_of(run_dir / LOCK_FILE_NAME) == 0o600
    finally:
        runfile.release()


def test_private_dir_leaves_a_directory_it_cannot_narrow_and_says_so(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    wide = tmp_path / "wide"
    wide.mkdir(mode=0o755)
    wide.chmod(0o755)

    def refuse(self: Path, mode: int) -> None:
        raise PermissionError(1, "Operation not permitted")

    monkeypatch.setattr(Path, "chmod", refuse)
    warnings: list[str] = []
    handler = logger.add(warnings.append, level="WARNING", format="{message}")
    try:
        private_dir(wide)
    finally:
        logger.remove(handler)
    assert mode_of(wide) == 0o755
    assert len(warnings) == 1
    assert "is mode 755 and cannot be made private" in warnings[0]
