"""Log files are the owner's alone (issue 13, item 13): the log directory 0700, the JSON log
and every file its rotation opens 0600, under the usual umask 022."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest
from loguru import logger

from mm.logs import configure
from mm.secrets import Redactor


@pytest.fixture
def usual_umask() -> Iterator[None]:
    previous = os.umask(0o022)
    try:
        yield
    finally:
        os.umask(previous)


def test_log_dir_and_every_rotated_log_file_are_owner_only(
    tmp_path: Path, usual_umask: None
) -> None:
    log_dir = tmp_path / "run" / "logs"
    with configure(
        level="INFO",
        redact=Redactor(),
        log_dir=log_dir,
        rotation="1 KB",
        retention=50,
        console=None,
    ):
        for n in range(40):
            logger.info("line {} {}", n, "x" * 100)
        logger.complete()
    files = sorted(log_dir.iterdir())
    assert len(files) >= 3, files  # the first file and at least two rotations
    assert stat.S_IMODE(log_dir.stat().st_mode) == 0o700
    assert {path.name: stat.S_IMODE(path.stat().st_mode) for path in files} == {
        path.name: 0o600 for path in files
    }
