"""A simulated run is a function of (code, config, seed): ``mm simulate`` run twice on the same
seed, each time a new process as a user starts it, writes the same journal byte for byte; a
different seed writes another. With each shipped config (both venues, both strategies)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from mm.journal import DATABASE_NAME, read_events
from tests.e2e.virtual import SHIPPED_CONFIG, SHIPPED_TRIARB_CONFIG

RUNS = {
    # config: (seed, simulated seconds): the market maker's with a kill and a rearm drawn, the
    # triangles' with the shock that opens them
    SHIPPED_CONFIG: (2, 60),
    SHIPPED_TRIARB_CONFIG: (3, 20),
}


def _journal(config: Path, seed: int, seconds: int, work: Path) -> Path:
    """The journal of one ``mm simulate`` run in ``work`` (emptied first: a run directory's
    path is in the journal's config row), copied out of it."""
    shutil.rmtree(work, ignore_errors=True)
    env = {key: value for key, value in os.environ.items() if key != "PYTHONHASHSEED"}
    command = [sys.executable, "-m", "mm", "simulate", "-c", str(config), "--seeds", str(seed)]
    command += ["--seconds", str(seconds), "--jobs", "1", "--dir", str(work), "--keep"]
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
    kept = work.with_name(f"{work.name}-{seed}-{len(list(work.parent.iterdir()))}.sqlite3")
    shutil.copyfile(work / f"seed-{seed}" / DATABASE_NAME, kept)
    return kept


def _fills(journal: Path) -> list[object]:
    return [event.data for event in read_events(journal, "fill")]


@pytest.mark.parametrize("config", RUNS, ids=lambda config: config.name)
def test_the_same_seed_writes_the_same_journal_byte_for_byte(config: Path, tmp_path: Path) -> None:
    seed, seconds = RUNS[config]
    first = _journal(config, seed, seconds, tmp_path / "run")
    again = _journal(config, seed, seconds, tmp_path / "run")
    assert len(_fills(first)) > 3
    assert first.read_bytes() == again.read_bytes()
    other = _journal(config, seed + 1, seconds, tmp_path / "run")
    assert _fills(other) != _fills(first)
