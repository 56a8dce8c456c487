"""``mm simulate``: seeds read from the command line, the runs' outcomes summed into the
campaign's table (faults drawn, violations by invariant, the command that runs a failed seed
again), and the command itself on the shipped config: two seeds in two processes that pass,
and the same seeds failing, with exit 1, on a build whose fill listener drops fills."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest

from mm.app import Service
from mm.cli import main
from mm.simulation.campaign import Outcome, draw, parse_seeds, render, summary
from mm.simulation.invariants import BALANCES_AGREE, FILLS_ONCE, Violation
from mm.simulation.ledger import LEDGER_NAME
from tests.e2e.virtual import SHIPPED_CONFIG
from tests.simulation.broken import dropping_every


def test_seeds_read_as_ranges_and_lists_each_once() -> None:
    assert parse_seeds("3") == [3]
    assert parse_seeds("1-4") == [1, 2, 3, 4]
    assert parse_seeds("1,3, 10-12,3") == [1, 3, 10, 11, 12]
    for bad in ("x", "5-2", "-1", "1-"):
        with pytest.raises(ValueError, match="--seeds"):
            parse_seeds(bad)


def test_the_table_counts_faults_and_violations_and_says_how_to_run_a_failure_again() -> None:
    passed = Outcome(draw("triarb", 1, 30.0), (), 12, 4, 1.5)
    broken = Outcome(
        draw("triarb", 2, 30.0),
        (Violation(FILLS_ONCE, "1 never journaled: kucoin:7"), Violation(BALANCES_AGREE, "x")),
        9,
        3,
        2.5,
    )
    crashed = Outcome(draw("triarb", 3, 30.0), (), 0, 0, 0.5, "RuntimeError: boom")
    figures = summary([passed, broken, crashed], wall_s=3.0)
    assert (figures["seeds"], figures["passed"]) == (3, 1)
    assert figures["simulated_s"] == 90.0
    assert figures["simulated_per_wall_s"] == 30.0
    assert figures["violations"] == {BALANCES_AGREE: 1, FILLS_ONCE: 1}
    assert figures["faults"]["shock"] == 3  # every triarb run shocks its cross rate
    assert figures["slowest"] == {"seed": 2, "wall_s": 2.5}
    assert (figures["fills"], figures["triangles"]) == (21, 7)
    text = render(figures, lambda seed: f"mm simulate --seeds {seed}")
    assert "seeds run: 3, passed: 1" in text
    assert f"FAILED seed 2: {FILLS_ONCE}: 1 never journaled: kucoin:7; " in text
    assert "FAILED seed 3: RuntimeError: boom\n  run it again: mm simulate --seeds 3\n" in text


def test_a_seed_draws_the_same_run_each_time() -> None:
    assert draw("market_maker", 7, 60.0) == draw("market_maker", 7, 60.0)
    assert draw("market_maker", 7, 60.0) != draw("market_maker", 8, 60.0)


def test_mm_simulate_runs_seeds_in_processes_and_writes_the_table(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    table = tmp_path / "table.json"
    args = ["simulate", "-c", str(SHIPPED_CONFIG), "--seeds", "1-2", "--seconds", "20"]
    code = main([*args, "--jobs", "2", "--dir", str(tmp_path / "runs"), "--json", str(table)])
    out = capsys.readouterr().out
    assert code == 0, out
    assert "seeds run: 2, passed: 2" in out
    figures = orjson.loads(table.read_bytes())
    assert figures["seeds"] == 2
    assert figures["violations"] == {}
    assert figures["fills"] > 0
    # a passed run's files are not kept: only the campaign's ledger is
    assert [path.name for path in (tmp_path / "runs").iterdir()] == [LEDGER_NAME]


def test_mm_simulate_goes_on_where_a_campaign_in_its_directory_stopped(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    runs = tmp_path / "runs"
    args = ["simulate", "-c", str(SHIPPED_CONFIG), "--seconds", "20", "--dir", str(runs)]
    assert main([*args, "--seeds", "1-2", "--jobs", "2"]) == 0
    capsys.readouterr()
    # what a run cut off part way leaves: a directory its seed's run must not start from
    (runs / "seed-3").mkdir()
    (runs / "seed-3" / "left-behind").write_text("a cut-off run's files")
    table = tmp_path / "table.json"
    code = main([*args, "--seeds", "1-3", "--jobs", "1", "--keep", "--json", str(table)])
    out = capsys.readouterr().out
    assert code == 0, out
    assert "2 of the 3 runs ended before" in out
    assert "seed 3: ok" in out
    assert "seed 1:" not in out  # not run again
    assert "seed 2:" not in out
    figures = orjson.loads(table.read_bytes())
    assert (figures["seeds"], figures["passed"]) == (3, 3)
    assert not (runs / "seed-3" / "left-behind").exists()
    # other code: the ledger's outcomes say nothing about it, and every seed runs again
    monkeypatch.setattr("mm.simulation.ledger.code_digest", lambda: "other code")
    assert main([*args, "--seeds", "1", "--jobs", "1"]) == 0
    out = capsys.readouterr().out
    assert "were of other code or config: set aside" in out
    assert "seed 1: ok" in out
    assert (runs / f"{LEDGER_NAME}.old").exists()


def test_mm_simulate_fails_on_a_build_that_drops_fills_and_keeps_the_runs(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    dropping, _ = dropping_every(5)  # (the forked runs inherit it)
    monkeypatch.setattr(Service, "_on_fill", dropping)
    runs = tmp_path / "runs"
    args = ["simulate", "-c", str(SHIPPED_CONFIG), "--seeds", "1", "--seconds", "60"]
    code = main([*args, "--jobs", "1", "--dir", str(runs)])
    out = capsys.readouterr().out
    assert code == 1, out
    assert f"{FILLS_ONCE}: 1" in out
    assert "--seeds 1 --seconds 60 --keep" in out
    assert (runs / "seed-1" / "simulate.log").exists()
    trace = orjson.loads((runs / "seed-1" / "trace.json").read_bytes())
    assert trace["run"]["seed"] == 1
    assert trace["run"]["faults"]
    assert FILLS_ONCE in {violation["invariant"] for violation in trace["violations"]}
    assert trace["state"]["killswitch"]["tripped"] in (True, False)  # (mm status, as it ended)


def test_mm_simulate_refuses_a_config_whose_venue_is_not_the_simulator(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    text = SHIPPED_CONFIG.read_text()
    assert 'url = "embedded"' in text
    config = tmp_path / "real.toml"
    config.write_text(text.replace('url = "embedded"', 'url = "https://api.hyperliquid.xyz"'))
    code = main(["simulate", "-c", str(config), "--seeds", "1", "--seconds", "5"])
    assert code == 1
    assert "a simulated run needs the embedded venue" in capsys.readouterr().err
