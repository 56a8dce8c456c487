"""The operator's commands on a real run: mm check, mm flatten, mm kill, mm check --post,
mm report and mm backup against a live ``mm start`` on the embedded simulator, then again after
it stopped."""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Callable
from typing import Any

from mm.journal import DATABASE_NAME, read_events
from tests.e2e.fast import FAST
from tests.e2e.mmproc import LOCAL, MMProcess, run_mm


def wait_for(condition: Callable[[], bool], within: float, what: str) -> None:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


def test_operator_commands_on_a_real_run(write_config: Any) -> None:
    config = write_config(**FAST)
    database = config.parent / "run" / DATABASE_NAME
    mm = MMProcess(config)
    try:
        info = mm.wait_ready()

        def status() -> dict[str, Any]:
            reply: dict[str, Any] = LOCAL.get(f"{info.admin_url}/status", timeout=5).json()
            return reply

        wait_for(lambda: status()["trading"]["in_sync"], 20, "in sync")
        wait_for(lambda: len(read_events(database, "fill")) >= 4, 60, "a few fills")

        check = run_mm("check", "-c", str(config))
        assert check.returncode == 0, check.stdout + check.stderr
        for name in ("journal_writable", "disk_space", "kill_switch", "venue_reachable"):
            assert f"PASS  {name}" in check.stdout or f"PASS {name}" in check.stdout, name

        # mm flatten: reduce-only from now on, and every position closed at the venue.
        flatten = run_mm("flatten", "-c", str(config), "--reason", "end of day")
        assert flatten.returncode == 0, flatten.stdout + flatten.stderr
        wait_for(lambda: status()["mode"]["mode"] == "reduce_only", 5, "reduce only")
        wait_for(
            lambda: (status()["session"]["flatten"]["last"] or {}).get("done") is True,
            60,
            "the flatten to finish",
        )
        kill = run_mm("kill", "-c", str(config), "--reason", "end of session")
        assert kill.returncode == 0, kill.stderr
        wait_for(lambda: status()["killswitch"]["tripped"], 5, "the kill switch")
        time.sleep(1.0)  # let the last fills reach the journal

        post = run_mm("check", "-c", str(config), "--post")
        assert post.returncode == 0, post.stdout + post.stderr
        assert "FAIL" not in post.stdout

        report = run_mm("report", "-c", str(config), "--json")
        assert report.returncode == 0, report.stderr
        figures = json.loads(report.stdout)
        fills_today = read_events(database, "fill")
        unique = {(fill.data["tid"], fill.data["oid"]) for fill in fills_today}
        assert figures["total"]["fills"] == len(unique)
        # The tables are checked once, after the stop, on this run's journal: they differ from
        # the JSON only in how the same report is printed (mm.cli.cmd_report).

        backup = run_mm("backup", "-c", str(config), "--keep", "2")
        assert backup.returncode == 0, backup.stderr
        [copy] = sorted((config.parent / "run" / "backups").glob("mm-*.sqlite3"))
        with sqlite3.connect(copy) as conn:
            copied = conn.execute("SELECT count(*) FROM events WHERE kind = 'fill'").fetchone()[0]
        assert copied == len(fills_today)

        stop = run_mm("stop", "-c", str(config))
        assert stop.returncode == 0, stop.stderr
        assert mm.wait(timeout=20) == 0
    finally:
        mm.kill()

    # After the stop: the journal is flushed; the venue checks need the (embedded) venue.
    post = run_mm("check", "-c", str(config), "--post")
    assert post.returncode == 0, post.stdout + post.stderr
    assert "journal_flushed" in post.stdout
    assert "SKIP" in post.stdout
    # The kill switch is still tripped: the pre-flight says so and fails.
    check = run_mm("check", "-c", str(config))
    assert check.returncode == 1
    assert "FAIL" in check.stdout
    assert "kill_switch" in check.stdout
    report = run_mm("report", "-c", str(config))
    assert report.returncode == 0
    assert "TOTAL" in report.stdout
