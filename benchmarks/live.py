"""Runs the live service for the benchmarks: ``mm sim`` and ``mm start`` as two processes.

The soak (``soak.py``) and the scaling benchmark (``bench_scaling.py``) measure mm the way it
runs in production: its own process, trading against a venue in another process (here the
simulator, ``mm sim``), so that the venue's work is never counted as mm's. Both processes take
the shipped ``config.toml`` with only what a run must change overridden from the environment
(``MM_<SECTION>__<KEY>``): the coins listed, followed and quoted (and in the shipped
session track), the run directory, a free
admin port, the venue's URL. Their output goes to files in the run's directory.

Every process started here runs from this checkout (``PYTHONPATH`` is the repository), so a
frozen worktree measures its own code. How it fails: a process that exits early or does not
come up in time raises ``RuntimeError`` with the tail of its output; ``Live.stop`` stops both
(SIGTERM, then SIGKILL), and is safe to call twice.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import IO, Any

import httpx
import psutil

REPO = Path(__file__).resolve().parents[1]
SHIPPED_CONFIG = REPO / "config.toml"
ANNOUNCEMENT = re.compile(r"mm sim: Hyperliquid-compatible venue at (http://\S+) \(WebSocket")
START_TIMEOUT_S = 60.0
STOP_TIMEOUT_S = 20.0
LOCAL = httpx.Client(timeout=10.0)


def coins(count: int) -> list[str]:
    """The first ``count`` perpetuals of the simulator's universe."""
    sys.path.insert(0, str(REPO))
    from mm.venues.sim.universe import UNIVERSE

    listed = list(UNIVERSE)
    if count > len(listed):
        raise ValueError(f"the simulator lists {len(listed)} perpetuals, not {count}")
    return listed[:count]


def _toml_list(values: Sequence[str]) -> str:
    return "[" + ", ".join(f'"{value}"' for value in values) + "]"


def _environment(overrides: Mapping[str, str]) -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if not key.startswith("MM_")}
    env["PYTHONPATH"] = str(REPO)
    env.update(overrides)
    return env


def _tail(path: Path, lines: int = 30) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no output)"


def _stop(process: subprocess.Popen[Any]) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(STOP_TIMEOUT_S)


class Live:
    """``mm sim`` listing ``symbols`` and ``mm start`` quoting them, under ``directory``."""

    def __init__(
        self,
        directory: Path,
        symbols: Sequence[str],
        *,
        mm_env: Mapping[str, str] | None = None,
        sim_env: Mapping[str, str] | None = None,
        mm_command: Sequence[str] | None = None,
    ) -> None:
        self.directory = directory
        self.symbols = list(symbols)
        self._mm_env = dict(mm_env or {})
        self._sim_env = dict(sim_env or {})
        self._mm_command = list(mm_command or [sys.executable, "-m", "mm", "start"])
        self.sim: subprocess.Popen[str] | None = None
        self.mm: subprocess.Popen[str] | None = None
        self.sim_url = ""
        self.admin_url = ""
        self._files: list[IO[str]] = []

    def start(self) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        listed = _toml_list(self.symbols)
        try:
            self._start_sim(listed)
            self._start_mm(listed)
        except BaseException:
            self.stop()  # no process left behind by a start that failed
            raise

    def _start_sim(self, listed: str) -> None:
        sys.path.insert(0, str(REPO))
        from mm.venues.config import DEV_PRIVATE_KEY
        from mm.venues.hyperliquid.signing import address_from_private_key

        account = address_from_private_key(DEV_PRIVATE_KEY).lower()
        out = self.directory / "sim.out"
        stdout = out.open("w")
        self._files.append(stdout)
        env = _environment(
            {"MM_SIM__COINS": listed, "MM_SERVICE__LOG_LEVEL": '"WARNING"', **self._sim_env}
        )
        command = [sys.executable, "-m", "mm", "sim", "-c", str(SHIPPED_CONFIG), "--port", "0"]
        self.sim = subprocess.Popen(
            [*command, "--fund", account],
            stdout=stdout,
            stderr=subprocess.STDOUT,
            text=True,
            env=env,
            cwd=self.directory,
        )
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            match = ANNOUNCEMENT.search(out.read_text(errors="replace"))
            if match:
                self.sim_url = match.group(1)
                return
            if self.sim.poll() is not None:
                raise RuntimeError(f"mm sim exited ({self.sim.returncode}):\n{_tail(out)}")
            time.sleep(0.1)
        raise RuntimeError(f"mm sim did not announce its URL:\n{_tail(out)}")

    def _start_mm(self, listed: str) -> None:
        run_dir = self.directory / "run"
        out = self.directory / "mm.out"
        stdout = out.open("w")
        self._files.append(stdout)
        overrides = {
            "MM_SERVICE__RUN_DIR": f'"{run_dir}"',
            "MM_ADMIN__PORT": "0",
            "MM_VENUE__URL": f'"{self.sim_url}"',
            "MM_FEEDS__COINS": listed,
            "MM_STRATEGY__SYMBOLS": listed,
            # The shipped track, always open, holding every symbol quoted.
            "MM_SESSION__TRACKS": f'[{{name = "crypto", symbols = {listed}, always_open = true}}]',
            **self._mm_env,
        }
        self.mm = subprocess.Popen(
            [*self._mm_command, "-c", str(SHIPPED_CONFIG)],
            stdout=stdout,
            stderr=subprocess.STDOUT,
            text=True,
            env=_environment(overrides),
            cwd=self.directory,
        )
        run_file = run_dir / "mm.json"
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            if self.mm.poll() is not None:
                raise RuntimeError(f"mm start exited ({self.mm.returncode}):\n{_tail(out)}")
            try:
                info = json.loads(run_file.read_text())
                if info.get("pid") == self.mm.pid:
                    url = str(info["admin_url"])
                    if LOCAL.get(f"{url}/healthz").status_code == 200:
                        self.admin_url = url
                        return
            except (OSError, ValueError, KeyError, httpx.HTTPError):
                pass
            time.sleep(0.2)
        raise RuntimeError(f"mm start did not become healthy:\n{_tail(out)}")

    def metrics(self) -> dict[str, float]:
        """The service's /metrics as {"name{labels}": value} (labels as exposed)."""
        text = LOCAL.get(f"{self.admin_url}/metrics").text
        values: dict[str, float] = {}
        for line in text.splitlines():
            if not line or line.startswith("#"):
                continue
            name, _, value = line.rpartition(" ")
            try:
                values[name] = float(value)
            except ValueError:
                continue
        return values

    def status(self) -> dict[str, Any]:
        answer: dict[str, Any] = LOCAL.get(f"{self.admin_url}/status").json()
        return answer

    def stop(self) -> None:
        for process in (self.mm, self.sim):  # mm first: it cancels its orders at the venue
            if process is not None:
                _stop(process)
        for file in self._files:
            file.close()
        self._files.clear()


def rss_bytes(pid: int) -> int:
    """The resident set of process ``pid``, in bytes."""
    return int(psutil.Process(pid).memory_info().rss)


def cpu_seconds(pid: int) -> float:
    """User plus system CPU time of process ``pid`` so far, in seconds."""
    times = psutil.Process(pid).cpu_times()
    return float(times.user + times.system)


def load_average() -> float:
    return os.getloadavg()[0]
