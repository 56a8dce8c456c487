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

READY_TIMEOUT = 15.0
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
        self.proc = subprocess.Popen(
            [*MM, "start", "-c", str(config)],
            env=self.env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )

    def wait_ready(self) -> RunInfo:
        """Wait for the run file and a healthy /healthz, or fail with the process output."""
        deadline = time.monotonic() + READY_TIMEOUT
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"mm exited early ({self.proc.returncode}): {self.output()}")
            info = read_info(self.run_dir)
            if info is not None and info.pid == self.proc.pid:
                try:
                    if LOCAL.get(f"{info.admin_url}/healthz", timeout=1.0).status_code == 200:
                        return info
                except httpx.HTTPError:
                    pass
            time.sleep(0.05)
        self.kill()
        raise AssertionError(f"mm did not become ready: {self.output()}")

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
