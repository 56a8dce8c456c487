"""``mm`` over its command line, as an operator runs it: start, status, stop, signals, errors."""

from __future__ import annotations

import json
import signal
import subprocess
from collections.abc import Callable, Iterator

import httpx
import orjson
import pytest

from mm.journal import DATABASE_NAME, read_events
from mm.runfile import RunInfo
from tests.conftest import ConfigWriter
from tests.e2e.mmproc import MM, STARTED_TIMEOUT, MMProcess, mm_env, run_mm

STOP_WITHIN = 5.0
STOP_CLI_TIMEOUT = STARTED_TIMEOUT + STOP_WITHIN
"""``mm stop`` as a subprocess: a hang guard only. What is judged is the CLI's own wait (it says
"mm stopped" once the run_dir is free, waiting from its POST /stop) and ``mm.wait(STOP_WITHIN)``;
the subprocess's time also holds the CLI's interpreter start, seconds of imports under load
(``STOP_WITHIN + 5`` timed out once in a ``-n 2`` run at a load of 12)."""
TOKEN = "e2e-admin-token-0123456789abcdef"

Starter = Callable[..., MMProcess]


@pytest.fixture
def start(write_config: ConfigWriter) -> Iterator[Starter]:
    started: list[MMProcess] = []

    def start_mm(env: dict[str, str] | None = None, **sections: dict[str, object]) -> MMProcess:
        process = MMProcess(write_config(**sections), env)
        started.append(process)
        return process

    yield start_mm
    for process in started:
        process.kill()


def test_start_status_stop(start: Starter) -> None:
    mm = start()
    mm.wait_ready()
    config = str(mm.config)

    status = run_mm("status", "-c", config)
    assert status.returncode == 0, status.stderr
    assert "health: ok" in status.stdout
    for child in ("├── admin", "├── journal", "├── venue", "├── feeds", "│   ├── market"):
        assert child in status.stdout
    assert status.stdout.count("running") >= 3

    as_json = run_mm("status", "--json", "-c", config)
    document = json.loads(as_json.stdout)
    assert document["pid"] == mm.proc.pid
    assert [child["state"] for child in document["tree"]["children"]] == ["running"] * 13

    stop = run_mm("stop", "-c", config, timeout=STOP_CLI_TIMEOUT)
    assert stop.returncode == 0, stop.stdout + stop.stderr
    assert f"mm stopped (pid {mm.proc.pid})" in stop.stdout
    assert mm.wait(timeout=STOP_WITHIN) == 0
    assert not mm.run_file.exists()
    kinds = [entry.kind for entry in read_events(mm.run_dir / DATABASE_NAME)]
    assert kinds[-1] == "service_stopping"

    after = run_mm("status", "-c", config)
    assert after.returncode == 3
    assert "not running" in after.stdout


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_signals_stop_gracefully(start: Starter, signum: signal.Signals) -> None:
    mm = start()
    mm.wait_ready()
    mm.proc.send_signal(signum)
    assert mm.wait(timeout=STOP_WITHIN) == 0
    assert not mm.run_file.exists()
    stopping = read_events(mm.run_dir / DATABASE_NAME, "service_stopping")
    assert [entry.data["reason"] for entry in stopping] == [f"signal {signum.name}"]


def test_stop_falls_back_to_sigterm_when_the_admin_url_is_dead(start: Starter) -> None:
    mm = start()
    info = mm.wait_ready()
    dead = RunInfo(info.pid, "http://127.0.0.1:9", info.started_at, info.service)
    mm.run_file.write_bytes(dead.to_json())
    stop = run_mm("stop", "-c", str(mm.config), timeout=STOP_CLI_TIMEOUT)
    assert stop.returncode == 0, stop.stdout + stop.stderr
    assert "falling back to SIGTERM" in stop.stdout
    assert mm.wait(timeout=STOP_WITHIN) == 0


def test_stop_and_status_when_not_running(write_config: ConfigWriter) -> None:
    config = str(write_config())
    stop = run_mm("stop", "-c", config)
    assert (stop.returncode, stop.stdout.strip()) == (0, "mm is not running")
    status = run_mm("status", "-c", config)
    assert status.returncode == 3


def test_bad_config_exits_2_naming_the_key(write_config: ConfigWriter) -> None:
    config = write_config(admin={"port": 70000}, service={"log_level": "LOUD"})
    result = run_mm("start", "-c", str(config))
    assert result.returncode == 2
    assert "admin.port: must be between 0 and 65535, got 70000" in result.stderr
    assert "service.log_level: must be one of" in result.stderr
    assert not (config.parent / "run").exists()  # nothing was started


def test_bad_environment_override_names_the_variable(write_config: ConfigWriter) -> None:
    config = write_config()
    result = run_mm("start", "-c", str(config), env={"MM_ADMIN__PORT": '"abc"'})
    assert result.returncode == 2
    assert "admin.port (from MM_ADMIN__PORT): expected an integer, got 'abc'" in result.stderr


def test_unknown_key_exits_2(write_config: ConfigWriter) -> None:
    config = write_config(no_such_section={"max_daily_loss": -5})
    result = run_mm("start", "-c", str(config))
    assert result.returncode == 2
    assert "no_such_section: unknown key" in result.stderr


def test_non_loopback_admin_without_token_refuses(write_config: ConfigWriter) -> None:
    config = write_config(admin={"host": "0.0.0.0"})
    result = run_mm("start", "-c", str(config))
    assert result.returncode == 2
    assert "admin.host: 0.0.0.0 is not a loopback address" in result.stderr
    assert not (config.parent / "run").exists()


def test_post_without_the_token_gets_401(start: Starter) -> None:
    env = {"MM_ADMIN_TOKEN": TOKEN}
    mm = start(env)
    info = mm.wait_ready()
    refused = httpx.post(f"{info.admin_url}/stop")
    assert refused.status_code == 401
    wrong = httpx.post(f"{info.admin_url}/stop", headers={"authorization": "Bearer nope"})
    assert wrong.status_code == 401
    assert httpx.get(f"{info.admin_url}/healthz").status_code == 200  # still running
    stop = run_mm("stop", "-c", str(mm.config), env=env, timeout=STOP_CLI_TIMEOUT)
    assert stop.returncode == 0, stop.stdout + stop.stderr
    assert mm.wait(timeout=STOP_WITHIN) == 0


def test_second_start_refuses_while_the_first_runs(start: Starter) -> None:
    first = start()
    info = first.wait_ready()
    second = run_mm("start", "-c", str(first.config))
    assert second.returncode == 1
    assert f"already running in {first.run_dir} (pid {info.pid}" in second.stderr
    assert httpx.get(f"{info.admin_url}/healthz").status_code == 200


def test_stale_run_file_is_cleaned_up(start: Starter, write_config: ConfigWriter) -> None:
    run_dir = write_config().parent / "run"
    run_dir.mkdir()
    stale = RunInfo(pid=999_999, admin_url="http://127.0.0.1:1", started_at=0.0, service="old")
    (run_dir / "mm.json").write_bytes(stale.to_json())
    mm = start()
    info = mm.wait_ready()
    assert info.pid == mm.proc.pid
    _, stderr = stop_with_sigterm(mm)
    assert "removed a stale run file" in stderr


def stop_with_sigterm(mm: MMProcess) -> tuple[str, str]:
    mm.proc.send_signal(signal.SIGTERM)
    assert mm.wait(timeout=STOP_WITHIN) == 0
    return mm.communicate()


def test_check_and_version(write_config: ConfigWriter) -> None:
    good = run_mm("check", "-c", str(write_config()))
    assert good.returncode == 0
    assert "config OK" in good.stdout
    bad = run_mm("check", "-c", str(write_config(journal={"batch_max": 0})))
    assert bad.returncode == 2
    assert "journal.batch_max: must be >= 1, got 0" in bad.stderr
    version = run_mm("--version")
    assert version.returncode == 0
    assert version.stdout.startswith("mm ")
    for verb in ("start", "stop", "status", "check"):
        helped = run_mm(verb, "--help")
        assert helped.returncode == 0
        assert "--config" in helped.stdout


def test_secret_from_the_environment_never_leaks(start: Starter) -> None:
    # The token is placed in the environment and also echoed into a config value that is
    # logged, shown in /status and exported as a metric label: it must be redacted everywhere.
    env = {"MM_ADMIN_TOKEN": TOKEN, "MM_SERVICE__NAME": f'"desk-{TOKEN}"'}
    mm = start(env)
    info = mm.wait_ready()
    surfaces = {
        "status": httpx.get(f"{info.admin_url}/status").text,
        "healthz": httpx.get(f"{info.admin_url}/healthz").text,
        "metrics": httpx.get(f"{info.admin_url}/metrics").text,
        "run file": mm.run_file.read_text(),
        "mm status": run_mm("status", "--json", "-c", str(mm.config), env=env).stdout,
    }
    stdout, stderr = stop_with_sigterm(mm)
    surfaces["console"] = stdout + stderr
    log_files = sorted((mm.run_dir / "logs").iterdir())
    assert log_files
    surfaces["log files"] = "".join(path.read_text() for path in log_files)
    for name, text in surfaces.items():
        assert TOKEN not in text, f"secret leaked into {name}"
    assert "desk-***" in surfaces["log files"]
    assert "desk-***" in surfaces["status"]
    assert orjson.loads(surfaces["status"])["service"] == "desk-***"
    journal = (mm.run_dir / DATABASE_NAME).read_bytes()
    assert TOKEN.encode() not in journal


def test_a_reader_that_goes_away_gets_no_broken_pipe_traceback(
    write_config: ConfigWriter,
) -> None:
    """`mm check | head -1`: the reader leaves before mm writes; mm says nothing about it."""
    proc = subprocess.Popen(
        [*MM, "check", "-c", str(write_config())],
        env=mm_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    proc.stdout.close()  # the reader is gone before mm's output is flushed
    _, stderr = proc.communicate(timeout=30)
    assert "BrokenPipeError" not in stderr
    assert "Exception ignored" not in stderr
    assert proc.returncode == 1  # its output was not delivered


def test_backup_keep_zero_is_a_clear_error(write_config: ConfigWriter) -> None:
    result = run_mm("backup", "-c", str(write_config()), "--keep", "0")
    assert result.returncode == 2
    assert "argument --keep: must be at least 1, got 0" in result.stderr
    assert "Traceback" not in result.stderr
