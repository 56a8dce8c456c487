"""Runs ``mm`` as a real subprocess for end-to-end tests, and waits for it to be ready."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Mapping
from pathlib import Path

import httpx

from mm.runfile import RUN_FILE_NAME, RunInfo, read_info

STARTED_TIMEOUT = 60.0
"""From the spawn to mm's run file: the interpreter's start and mm's imports, about 1.5 s of CPU
that took 8 to 16 s of wall time at a load of 7 on 2 cores (CI runs ``pytest -n auto`` there). A
guard against a start that hangs, not a judgement of mm: the wait ends when the file appears."""
READY_TIMEOUT = 15.0
"""From the run file to a healthy ``/healthz``: mm's own startup (journal recovery, feeds, the
user stream's resync, the startup sequence's cancel-all), 1.3 to 4 s at that load."""
MM = [sys.executable, "-m", "mm"]
LOCAL = httpx.Client(timeout=5.0, limits=httpx.Limits(max_keepalive_connections=0))
"""The drills' HTTP client for mm's admin API and the simulator on loopback. ``httpx.get`` and
``httpx.post`` build a client per call, TLS context included: about 30 ms of CPU each, which
the drills' polling loops spent by the hundred beside the processes they watch. A fresh
connection per request still (no keep-alive), as before."""


def mm_env(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """The test process's environment without MM_ variables, plus ``extra``."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("MM_")}
    env.update(extra or {})
    return env


def run_mm(
    *args: str, env: Mapping[str, str] | None = None, timeout: float = 30.0
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*MM, *args], env=mm_env(env), capture_output=True, text=True, timeout=timeout
    )


class MMProcess:
    """``mm start -c CONFIG`` in the background."""

    def __init__(self, config: Path, env: Mapping[str, str] | None = None) -> None:
        self.config = config
        self.run_dir = config.parent / "run"
        self.env = mm_env(env)
        self.spawned = time.monotonic()
        self.proc = subprocess.Popen(
            [*MM, "start", "-c", str(config)],
            env=self.env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )

    def wait_ready(self) -> RunInfo:
        """Wait for mm to start (its run file names this process) and then for a healthy
        /healthz; fail with where it stood and the process output.

        Two deadlines, because only the second is mm's: ``STARTED_TIMEOUT`` covers the
        interpreter's own start, its imports above all, which on a loaded machine take many
        times their CPU time and say nothing of mm's recovery; ``READY_TIMEOUT`` covers mm's
        startup from the moment its admin API is bound and its run file written.
        """
        started = self._wait_started()
        deadline = time.monotonic() + READY_TIMEOUT
        while time.monotonic() < deadline:
            self._check_alive()
            try:
                if LOCAL.get(f"{started.admin_url}/healthz", timeout=1.0).status_code == 200:
                    return started
            except httpx.HTTPError:
                pass
            time.sleep(0.05)
        where = self._status(started)
        self.kill()
        raise AssertionError(
            f"mm did not become ready within {READY_TIMEOUT:g}s of writing its run file "
            f"({time.monotonic() - self.spawned:.1f}s after it was spawned); "
            f"status: {where}\n{self.output()}"
        )

    def _wait_started(self) -> RunInfo:
        """The run file this process wrote (its admin API bound), within ``STARTED_TIMEOUT``."""
        deadline = self.spawned + STARTED_TIMEOUT
        while time.monotonic() < deadline:
            self._check_alive()
            info = read_info(self.run_dir)
            if info is not None and info.pid == self.proc.pid:
                return info
            time.sleep(0.05)
        self.kill()
        raise AssertionError(
            f"mm did not write its run file within {STARTED_TIMEOUT:g}s of being spawned: "
            f"{self.output()}"
        )

    def _check_alive(self) -> None:
        if self.proc.poll() is not None:
            raise AssertionError(f"mm exited early ({self.proc.returncode}): {self.output()}")

    @staticmethod
    def _status(info: RunInfo) -> str:
        """What mm said of itself: its problems and why it is not trading."""
        try:
            document = LOCAL.get(f"{info.admin_url}/status", timeout=5.0).json()
        except (httpx.HTTPError, ValueError) as error:
            return f"unreadable ({error!r})"
        return f"problems {document.get('problems')}, not trading {document.get('not_trading')}"

    def wait(self, timeout: float) -> int:
        return self.proc.wait(timeout=timeout)

    def output(self) -> str:
        if self.proc.poll() is None:
            return "(still running)"
        stdout, stderr = self.proc.communicate()
        return f"stdout:\n{stdout}\nstderr:\n{stderr}"

    def communicate(self) -> tuple[str, str]:
        return self.proc.communicate(timeout=10)

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=10)

    @property
    def run_file(self) -> Path:
        return self.run_dir / RUN_FILE_NAME
