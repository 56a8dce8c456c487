"""A campaign's ledger: what it keeps of each run, what it takes back on the same code and
config, what it sets aside otherwise, and a line cut off mid-write."""

from __future__ import annotations

from pathlib import Path

from mm.simulation.ledger import LEDGER_NAME, Ledger, Recorded, code_digest, heading
from tests.e2e.virtual import SHIPPED_CONFIG


def _record(seed: int, invocation: int, campaign_wall_s: float) -> Recorded:
    return Recorded(
        seed=seed,
        violations=(("no fill lost or counted twice", "1 never journaled: hyperliquid:7"),),
        fills=12,
        triangles=0,
        wall_s=3.5,
        error=None,
        invocation=invocation,
        campaign_wall_s=campaign_wall_s,
    )


def test_a_ledger_on_the_same_code_and_config_takes_back_every_run_it_recorded(
    tmp_path: Path,
) -> None:
    head = heading(SHIPPED_CONFIG, "market_maker", 3600.0)
    first = Ledger(tmp_path, head)
    assert (first.recorded, first.invocation, first.set_aside) == ({}, 1, False)
    first.record(_record(1, first.invocation, 40.0))
    first.record(_record(2, first.invocation, 75.0))
    second = Ledger(tmp_path, head)
    assert second.recorded == {1: _record(1, 1, 40.0), 2: _record(2, 1, 75.0)}
    assert second.invocation == 2
    second.record(_record(3, second.invocation, 30.0))
    # each invocation up to its last run's end
    assert Ledger(tmp_path, head).earlier_wall_s() == 75.0 + 30.0


def test_a_ledger_of_other_code_config_or_length_is_set_aside(tmp_path: Path) -> None:
    head = heading(SHIPPED_CONFIG, "market_maker", 3600.0)
    Ledger(tmp_path, head).record(_record(1, 1, 40.0))
    for other in (
        {**head, "code": "0" * 16},
        {**head, "config": "1" * 16},
        {**head, "seconds": 60.0},
    ):
        ledger = Ledger(tmp_path, other)
        assert ledger.set_aside
        assert ledger.recorded == {}
        assert (tmp_path / f"{LEDGER_NAME}.old").exists()
        ledger.record(_record(1, 1, 40.0))  # for the next to set aside


def test_a_line_cut_off_mid_write_is_skipped_and_its_seed_runs_again(tmp_path: Path) -> None:
    head = heading(SHIPPED_CONFIG, "market_maker", 60.0)
    Ledger(tmp_path, head).record(_record(1, 1, 4.0))
    with (tmp_path / LEDGER_NAME).open("ab") as ledger:
        ledger.write(b'{"seed": 2, "violations": [], "fil')
    assert set(Ledger(tmp_path, head).recorded) == {1}


def test_the_code_digest_changes_with_any_source_of_the_package(tmp_path: Path) -> None:
    package = tmp_path / "pkg"
    (package / "sub").mkdir(parents=True)
    (package / "a.py").write_text("A = 1\n")
    (package / "sub" / "b.py").write_text("B = 2\n")
    before = code_digest(package)
    assert code_digest(package) == before
    (package / "sub" / "b.py").write_text("B = 3\n")
    assert code_digest(package) != before
