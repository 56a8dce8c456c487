"""benchmarks/gc_census.py's census, in this process: the old generation's objects counted by
type and by the structure that holds them, and the full collections timed."""

from __future__ import annotations

import gc
import importlib
import sys
from collections.abc import Iterator
from pathlib import Path

import attrs
import pytest

# The benchmarks are scripts, not a package: imported from their directory, as when run.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "benchmarks"))
gc_census = importlib.import_module("gc_census")


@attrs.define
class Holder:
    """Built before the freeze, like the service's components; fills up after it."""

    items: list[dict[str, list[int]]] = attrs.Factory(list)
    names: list[tuple[str, int]] = attrs.Factory(list)


@pytest.fixture
def frozen() -> Iterator[Holder]:
    holder = Holder()
    gc.collect()
    gc.freeze()
    try:
        yield holder
    finally:
        gc.unfreeze()


def test_the_census_names_the_holder_and_counts_what_it_keeps(frozen: Holder) -> None:
    for i in range(3_000):
        frozen.items.append({"a": [i]})  # two tracked objects each
        frozen.names.append((f"n{i}", i))  # tuples of atomics: untracked once collected
    result = gc_census.census(sys._getframe())
    owners = {entry["owner"]: entry for entry in result["by_owner"]}
    held = owners[f"{__name__}.Holder.items"]
    assert held["objects"] == 6_000
    assert dict(held["types"]) == {"dict": 3_000, "list": 3_000}
    assert not any(owner.endswith("Holder.names") for owner in owners)
    assert result["old_after_collect"] >= 6_000
    assert result["collect_walk_ms"]["cpu"] >= 0.0
    lines = list(gc_census.render(result))
    assert any("Holder.items" in line for line in lines)


def _raise() -> None:
    raise ValueError("kept")


def _keep_the_exception() -> None:
    try:
        _raise()
    except ValueError as error:
        kept = error  # the traceback holds this frame, the frame holds the exception: a cycle
    assert kept is not None


class Ring:
    """An instance that points at itself: a cycle with no frame or exception in it."""

    def __init__(self) -> None:
        self.me = self


def test_the_garbage_census_names_what_made_each_cycle() -> None:
    debug = gc.get_debug()
    gc_census.start_garbage()
    try:
        assert gc.get_debug() & gc.DEBUG_SAVEALL
        for _ in range(3):
            _keep_the_exception()
        for _ in range(5):
            Ring()
    finally:
        result = gc_census.garbage_census()
    assert gc.get_debug() == debug
    assert gc.garbage == []
    made_by = {entry["made_by"]: entry for entry in result["by_cycle"]}
    raised = [label for label in made_by if label.startswith("exception ValueError ")]
    assert len(raised) == 1
    assert "raised in _raise (test_gc_census.py:" in raised[0]
    assert "caught in _keep_the_exception (test_gc_census.py:" in raised[0]
    assert made_by[raised[0]]["cycles"] == 3
    ring = made_by[f"objects {__name__}.Ring"]
    assert ring["cycles"] == 5
    assert result["objects"] >= 3 * 3 + 5
    assert any(name == "frame" for name, _ in result["by_type"])
    lines = list(gc_census.render_garbage(result))
    assert any("_keep_the_exception" in line for line in lines)


def test_the_garbage_window_opens_and_closes_on_the_signal(tmp_path: Path) -> None:
    out = tmp_path / "garbage.json"
    debug = gc.get_debug()
    gc_census.toggle_garbage(str(out))
    Ring()
    assert not out.exists()
    gc_census.toggle_garbage(str(out))
    assert gc.get_debug() == debug
    written = out.read_text()
    assert f"objects {__name__}.Ring" in written
