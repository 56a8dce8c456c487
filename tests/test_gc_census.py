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
