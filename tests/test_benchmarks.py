"""Every benchmark still runs: each script in ``benchmarks/`` is imported and run once in its
smallest configuration (``--quick``), so that a refactor cannot leave one broken, as it left
``bench_tick_to_order.py`` importing a name that had moved.

Nothing here judges a figure or a wall time: the scripts print their figures beside a baseline
of the same run, and this asks only that they run to the end, exit cleanly and print them. A
new script joins by being in ``benchmarks/`` and accepting ``--quick`` (a few seconds at most);
a module without ``main`` is a helper the scripts share and is only imported. The scripts that
start the live service (``mm sim`` and ``mm start`` as processes, through ``live.py``) run for
minutes by design: they are imported and their command line is built (``--help``).
"""

from __future__ import annotations

import importlib
import sys
from pathlib import Path
from types import ModuleType

import pytest

BENCHMARKS = Path(__file__).resolve().parent.parent / "benchmarks"
SCRIPTS = sorted(BENCHMARKS.glob("*.py"))
# A script whose smallest run is set by flags of its own rather than --quick.
SMALLEST = {"bench_quote": ["--cycles", "20"]}


def _runs_live_service(module: ModuleType) -> bool:
    live = sys.modules.get("live")
    return live is not None and getattr(module, "Live", None) is getattr(live, "Live", object())


def test_every_benchmark_is_collected() -> None:
    names = {script.stem for script in SCRIPTS}
    assert {
        "bench_tick_to_order",
        "bench_fanout",
        "bench_engine",
        "bench_signing",
        "bench_triarb",
    } <= names


@pytest.mark.parametrize("script", SCRIPTS, ids=lambda script: script.stem)
def test_benchmark_runs(
    script: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.syspath_prepend(str(BENCHMARKS))  # as when run: their directory is on the path
    module = importlib.import_module(script.stem)
    assert module.__doc__, f"{script.name} says nowhere what it measures"
    main = getattr(module, "main", None)
    if main is None:
        return  # a helper of the scripts (live.py): importing it is its check
    live = _runs_live_service(module)
    args = ["--help"] if live else SMALLEST.get(script.stem, ["--quick"])
    monkeypatch.setattr(sys, "argv", [str(script), *args])
    try:
        status = main()
    except SystemExit as exit:
        status = exit.code
    out = capsys.readouterr().out
    assert status in (None, 0), f"{script.name} {' '.join(args)} exited with {status}:\n{out}"
    if live:
        assert "usage:" in out
    else:
        assert any(char.isdigit() for char in out), f"{script.name} printed no figure:\n{out}"
