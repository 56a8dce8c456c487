"""The tests' check that a unit of work makes no cyclic garbage (issue 16: the costliest
collections in the live service are those that free cycles).

``no_cyclic_garbage()`` collects and disables the collector, runs the block, then collects with
``gc.DEBUG_SAVEALL`` so that whatever the block left in cycles is kept and named in the
assertion message (by ``benchmarks/gc_census.py``'s census of garbage: what made each cycle).
The collector's thresholds and debug flags are restored in every case. Only what the block
leaves unreachable counts: an object it keeps alive, in a cycle or not, is not garbage.
"""

from __future__ import annotations

import gc
import importlib
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "benchmarks"))
gc_census = importlib.import_module("gc_census")


@contextmanager
def no_cyclic_garbage() -> Iterator[None]:
    """Fails (AssertionError naming the cycles) when the block leaves any cyclic garbage."""
    enabled, debug = gc.isenabled(), gc.get_debug()
    gc.collect()
    gc.disable()
    kept = len(gc.garbage)
    try:
        yield
        gc.set_debug(debug | gc.DEBUG_SAVEALL)
        gc.collect()
        garbage = gc.garbage[kept:]
        del gc.garbage[kept:]
    finally:
        gc.set_debug(debug)
        if enabled:
            gc.enable()
    found = gc_census.count_garbage(garbage)
    garbage.clear()
    assert found["objects"] == 0, "\n".join(gc_census.render_garbage(found))
