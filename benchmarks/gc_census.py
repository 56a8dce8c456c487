"""Census of the live service's long-lived objects: what a full garbage collection walks.

A collection of the oldest generation walks every object the collector tracks that is not
frozen: after :func:`mm.gc_pauses.tune_after_startup`, what the service built since start and
kept (issue 16: the longest GC pause under 20 ms). This counts those objects
(``gc.get_objects(generation=2)``) by type and by owner, the structure that holds them, and
times full collections of that heap in the process (the collector's CPU, ``time.thread_time``).

Runs ``mm sim`` (10 coins) and ``mm start`` quoting them out of process, as ``live.py`` starts
them for the soak, with ``mm start`` under a driver that installs a SIGUSR1 handler; after
``--minutes`` of trading the handler takes the census inside the service and writes it as JSON
(``--out``), which this prints. The census is taken at the end of the drive, once: it allocates,
collects and walks the whole heap for seconds, the service standing still meanwhile.

Owner: the objects are walked breadth first from the roots (every module, every thread's
frames, the frame the signal interrupted), which gives each object its shortest chain of
references from a root. An object's owner is the nearest named object above it on that chain
that a full collection does not walk (frozen at startup, or young): an instance of a class
(``Class.attribute`` by the attribute that leads down), a module (``module.name``), a function,
a frame or a coroutine (Trio's tasks). Containers (dicts, lists, tuples, sets, deques, cells)
and the old generation's own instances are see-through: an order kept in the registry counts
under ``OrderRegistry._by_cloid``, with its attributes. An object of the old generation that no
chain from the roots reaches is ``(unreached)``: garbage awaiting the collection (there is none
left: a collection runs before the census), or held only from C.

Collections: ``collect_first`` is one full collection of the heap as it stood (it also frees
the garbage awaiting it), ``collect_walk`` the least of three more (the walk alone, no garbage):
the service's costliest collection is about the first, its floor the second.

Garbage (``--garbage SECONDS``, off by default): what the service's collections free, the
cyclic garbage it makes while it trades. Before the heap census, a window of ``SECONDS``: a
first SIGUSR2 collects and sets ``gc.DEBUG_SAVEALL``, so every collection in the window keeps
what it found unreachable in ``gc.garbage`` instead of freeing it; a second SIGUSR2 collects
once more, counts ``gc.garbage`` (:func:`garbage_census`), clears it and restores the debug
flags. The garbage is counted by type, and by cycle: the objects are split into the groups
that reference one another, and each group is named by what made it (an exception: its type,
the function that raised it and the one that caught it; else a frame: its function and file;
else a coroutine or Trio task: its function; else its most common class). Meanwhile nothing is
freed by the collector: the window's garbage stays in memory until its end (seconds of it are
megabytes), and the service's own collection figures in the window are not its usual ones.

How it fails: a process that does not start raises with its output's tail (``live.py``); a
census that is not written within ``CENSUS_TIMEOUT_S`` raises; the processes are stopped in
every case. Run: ``python benchmarks/gc_census.py [--minutes 15] [--garbage 60]
[--out census.json]``, or ``--report census.json`` to print a census written earlier.
"""

from __future__ import annotations

import argparse
import collections
import gc
import json
import os
import signal
import sys
import tempfile
import time
from collections.abc import Iterable
from pathlib import Path
from types import FrameType, FunctionType, MethodType, ModuleType, TracebackType
from typing import Any

from live import Live, coins

SYMBOLS = 10
CENSUS_TIMEOUT_S = 120.0
BENCHMARKS = Path(__file__).resolve().parent
# Seen through when looking for an owner: they hold, they do not name.
_CONTAINERS = (dict, list, tuple, set, frozenset, collections.deque, collections.OrderedDict)
DRIVER = """
import signal, sys
sys.path.insert(0, sys.argv.pop(1))
import gc_census
out = sys.argv.pop(1)
signal.signal(signal.SIGUSR1, lambda signum, frame: gc_census.write_census(out, frame))
signal.signal(signal.SIGUSR2, lambda signum, frame: gc_census.toggle_garbage(out + ".garbage"))
from mm.cli import main
sys.exit(main(sys.argv[1:]))
"""


def _type_name(obj: object) -> str:
    kind = type(obj)
    module = kind.__module__
    return kind.__qualname__ if module == "builtins" else f"{module}.{kind.__qualname__}"


def _timed_collect() -> tuple[float, float]:
    """One full collection: (the collector's CPU, wall), in milliseconds."""
    cpu, wall = time.thread_time(), time.perf_counter()
    gc.collect()
    return (time.thread_time() - cpu) * 1000, (time.perf_counter() - wall) * 1000


def _attribute(owner: object, child: object) -> str:
    """The name under which ``owner`` holds ``child`` (``?`` when not an attribute)."""
    names: list[str] = []
    for kind in type(owner).__mro__:
        slots = kind.__dict__.get("__slots__", ())
        names.extend([slots] if isinstance(slots, str) else slots)
    values = getattr(owner, "__dict__", None)
    if isinstance(values, dict):
        if values is child:
            return "__dict__"
        names.extend(name for name in values if isinstance(name, str))
    for name in names:
        try:
            if getattr(owner, name) is child:
                return name
        except AttributeError:
            continue
    return "?"


def _label(owner: object, child: object, parent_of: dict[int, object]) -> str:
    if isinstance(owner, ModuleType):
        return f"module {owner.__name__}"
    if isinstance(owner, dict):
        module = parent_of.get(id(owner))
        if isinstance(module, ModuleType) and module.__dict__ is owner:
            names = [key for key, value in owner.items() if value is child]
            return f"{module.__name__}.{names[0] if names else '?'}"
    if isinstance(owner, FrameType):
        return f"frame {owner.f_code.co_qualname}"
    if isinstance(owner, FunctionType):
        return f"function {owner.__module__}.{owner.__qualname__}"
    qualname = getattr(owner, "__qualname__", None)
    if hasattr(owner, "cr_frame") or hasattr(owner, "gi_frame"):
        return f"coroutine {qualname}"
    if isinstance(owner, type):
        return f"class {owner.__module__}.{owner.__qualname__}"
    return f"{_type_name(owner)}.{_attribute(owner, child)}"


def _named(obj: object) -> bool:
    return not isinstance(obj, _CONTAINERS) and type(obj).__name__ not in ("cell", "method")


def census(frame: FrameType | None = None, top: int = 40) -> dict[str, Any]:
    """The census of this process (see the module's docstring); ``frame`` is where the signal
    interrupted the main thread (a root besides the modules and the other threads' frames)."""
    before = collections.Counter(_type_name(o) for o in gc.get_objects(generation=2))
    counts = [len(gc.get_objects(generation=g)) for g in range(3)]
    collect_first = _timed_collect()
    walks = [_timed_collect() for _ in range(3)]
    old = gc.get_objects(generation=2)
    old_ids = {id(o) for o in old}
    # Breadth first from the roots; the census's own objects are not among the roots.
    roots: list[object] = [sys.modules]
    threads = sys._current_frames()
    roots.extend(f for ident, f in threads.items() if ident != _main_ident())
    if frame is not None:
        roots.append(frame)
    parent_of: dict[int, object] = {}
    seen = {id(r) for r in roots} | {id(old), id(parent_of), id(old_ids), id(roots)}
    queue: collections.deque[object] = collections.deque(roots)
    while queue:
        obj = queue.popleft()
        for child in gc.get_referents(obj):
            key = id(child)
            if key in seen:
                continue
            seen.add(key)
            parent_of[key] = obj
            if gc.is_tracked(child) or isinstance(child, type):
                queue.append(child)
    owners: collections.Counter[str] = collections.Counter()
    owner_refs: collections.Counter[str] = collections.Counter()
    owner_types: dict[str, collections.Counter[str]] = collections.defaultdict(collections.Counter)
    by_type: collections.Counter[str] = collections.Counter()
    largest: list[tuple[int, str, str]] = []
    for obj in old:
        name = _type_name(obj)
        by_type[name] += 1
        owner = _owner(obj, old_ids, parent_of)
        owners[owner] += 1
        owner_types[owner][name] += 1
        # A collection visits every reference of every object it walks, tracked or not.
        refs = len(gc.get_referents(obj))
        owner_refs[owner] += refs
        largest.append((refs, name, owner))
    largest.sort(reverse=True)
    del old, old_ids, parent_of, seen, queue
    return {
        "pid": os.getpid(),
        "tracked_by_generation": counts,
        "frozen": gc.get_freeze_count(),
        "old_before_collect": sum(before.values()),
        "old_after_collect": sum(by_type.values()),
        "collect_first_ms": {"cpu": round(collect_first[0], 3), "wall": round(collect_first[1], 3)},
        "collect_walk_ms": {
            "cpu": round(min(w[0] for w in walks), 3),
            "wall": round(min(w[1] for w in walks), 3),
        },
        "references": sum(owner_refs.values()),
        "largest": [
            {"references": refs, "type": name, "owner": owner} for refs, name, owner in largest[:10]
        ],
        "by_type": by_type.most_common(top),
        "by_owner": [
            {
                "owner": owner,
                "objects": count,
                "references": owner_refs[owner],
                "types": owner_types[owner].most_common(4),
            }
            for owner, count in owners.most_common(top)
        ],
    }


def _main_ident() -> int:
    import threading

    return threading.main_thread().ident or 0


def _owner(obj: object, old_ids: set[int], parent_of: dict[int, object]) -> str:
    """The nearest named object above ``obj`` that is not in the old generation."""
    child, key = obj, id(obj)
    if key not in parent_of:
        return "(unreached)"
    for _ in range(10_000):
        parent = parent_of.get(key)
        if parent is None:
            return "(root)"
        if id(parent) not in old_ids and _named_or_module_dict(parent, parent_of):
            return _label(parent, child, parent_of)
        child, key = parent, id(parent)
    return "(too deep)"


def _named_or_module_dict(obj: object, parent_of: dict[int, object]) -> bool:
    if _named(obj):
        return True
    module = parent_of.get(id(obj))
    return isinstance(module, ModuleType) and module.__dict__ is obj


def write_census(path: str, frame: FrameType | None) -> None:
    """The SIGUSR1 handler's work: the census, written to ``path`` (then renamed into place)."""
    result = census(frame)
    partial = f"{path}.partial"
    with open(partial, "w") as file:
        json.dump(result, file, indent=1)
    os.replace(partial, path)


# --- the garbage census ---------------------------------------------------------------------

_saved_debug: list[int] = []


def start_garbage() -> None:
    """Open a garbage window: collect what is garbage already, then keep what is found."""
    gc.collect()
    gc.garbage.clear()
    _saved_debug.append(gc.get_debug())
    gc.set_debug(gc.get_debug() | gc.DEBUG_SAVEALL)


def _code_site(code: Any, line: int | None = None) -> str:
    where = Path(code.co_filename)
    short = "/".join(where.parts[-3:]) if "site-packages" in where.parts else where.name
    shown = f"{short}:{line}" if line is not None else short
    return f"{code.co_qualname} ({shown})"


def _traceback_ends(tb: Any) -> tuple[str, str]:
    """The frame a traceback was caught in (its first entry) and raised in (its last)."""
    caught = _code_site(tb.tb_frame.f_code, tb.tb_lineno)
    while tb.tb_next is not None:
        tb = tb.tb_next
    return caught, _code_site(tb.tb_frame.f_code, tb.tb_lineno)


def _describe(obj: object) -> tuple[int, str] | None:
    """How telling an object of the garbage is about what made it (lower: more) and its name;
    ``None`` for the objects that say nothing alone (containers, cells, plain instances)."""
    if isinstance(obj, BaseException):
        name = _type_name(obj)
        if obj.__traceback__ is None:
            return 0, f"exception {name} (no traceback)"
        caught, raised = _traceback_ends(obj.__traceback__)
        return 0, f"exception {name} raised in {raised}, caught in {caught}"
    if isinstance(obj, TracebackType):
        caught, raised = _traceback_ends(obj)
        return 1, f"traceback raised in {raised}, caught in {caught}"
    if isinstance(obj, FrameType):
        return 2, f"frame {_code_site(obj.f_code)}"
    code = getattr(obj, "cr_code", None) or getattr(obj, "gi_code", None)
    if code is not None:
        return 3, f"{type(obj).__name__} {_code_site(code)}"
    coro = getattr(obj, "coro", None)
    if type(obj).__name__ == "Task" and coro is not None:
        return 3, f"trio task {getattr(obj, 'name', '?')}"
    if isinstance(obj, FunctionType):
        return 4, f"function {obj.__module__}.{obj.__qualname__}"
    if isinstance(obj, MethodType):
        return 5, f"bound method {_type_name(obj.__self__)}.{obj.__func__.__name__}"
    return None


def garbage_census(top: int = 40) -> dict[str, Any]:
    """Collect, count ``gc.garbage`` (the module's docstring), clear it, restore the flags."""
    gc.collect()
    garbage = list(gc.garbage)
    gc.garbage.clear()
    gc.set_debug(_saved_debug.pop() if _saved_debug else 0)
    try:
        return count_garbage(garbage, top)
    finally:
        garbage.clear()


def count_garbage(garbage: list[object], top: int = 40) -> dict[str, Any]:
    """The census of ``garbage``: by type, and by the groups that reference one another."""
    index = {id(obj): i for i, obj in enumerate(garbage)}
    group = list(range(len(garbage)))

    def find(i: int) -> int:
        while group[i] != i:
            group[i] = group[group[i]]
            i = group[i]
        return i

    for i, obj in enumerate(garbage):
        for child in gc.get_referents(obj):
            j = index.get(id(child))
            if j is not None:
                a, b = find(i), find(j)
                if a != b:
                    group[a] = b
    members: dict[int, list[int]] = collections.defaultdict(list)
    for i in range(len(garbage)):
        members[find(i)].append(i)
    by_type = collections.Counter(_type_name(obj) for obj in garbage)
    cycles: collections.Counter[str] = collections.Counter()
    cycle_objects: collections.Counter[str] = collections.Counter()
    cycle_types: dict[str, collections.Counter[str]] = collections.defaultdict(collections.Counter)
    for indices in members.values():
        named = [d for d in (_describe(garbage[i]) for i in indices) if d is not None]
        if named:
            label = min(named)[1]
        else:
            kinds = collections.Counter(_type_name(garbage[i]) for i in indices)
            label = f"objects {kinds.most_common(1)[0][0]}"
        cycles[label] += 1
        cycle_objects[label] += len(indices)
        cycle_types[label].update(_type_name(garbage[i]) for i in indices)
    return {
        "pid": os.getpid(),
        "objects": len(garbage),
        "cycles": len(members),
        "by_type": by_type.most_common(top),
        "by_cycle": [
            {
                "made_by": label,
                "cycles": count,
                "objects": cycle_objects[label],
                "types": cycle_types[label].most_common(5),
            }
            for label, count in cycles.most_common(top)
        ],
    }


def toggle_garbage(path: str) -> None:
    """The SIGUSR2 handler's work: open a garbage window, or close it and write its census to
    ``path`` (then renamed into place)."""
    if not _saved_debug:
        start_garbage()
        return
    result = garbage_census()
    partial = f"{path}.partial"
    with open(partial, "w") as file:
        json.dump(result, file, indent=1)
    os.replace(partial, path)


def render_garbage(result: dict[str, Any], rows: int = 25) -> Iterable[str]:
    seconds = result.get("seconds")
    window = f" in {seconds} s" if seconds else ""
    yield (
        f"cyclic garbage{window}: {result['objects']:,} objects in {result['cycles']:,} "
        "groups that reference one another"
    )
    yield "\ngarbage by type:"
    for name, count in result["by_type"][:rows]:
        yield f"{count:>9,}  {name}"
    yield "\ngarbage by what made it (groups, objects, top types):"
    for entry in result["by_cycle"][:rows]:
        types = ", ".join(f"{name} {count:,}" for name, count in entry["types"])
        yield f"{entry['cycles']:>7,} {entry['objects']:>8,}  {entry['made_by']}  [{types}]"


def render(result: dict[str, Any], rows: int = 25) -> Iterable[str]:
    yield (
        f"tracked objects by generation {result['tracked_by_generation']}, frozen "
        f"{result['frozen']:,}; old generation {result['old_before_collect']:,} before the "
        f"census's collections, {result['old_after_collect']:,} after"
    )
    first, walk = result["collect_first_ms"], result["collect_walk_ms"]
    yield (
        f"full collection: first {first['cpu']:.2f} ms CPU ({first['wall']:.2f} ms wall), "
        f"walk alone {walk['cpu']:.2f} ms CPU ({walk['wall']:.2f} ms wall)"
    )
    if "references" in result:
        yield f"references from the old generation's objects: {result['references']:,}; largest:"
        for entry in result["largest"]:
            yield f"{entry['references']:>9,}  {entry['type']} in {entry['owner']}"
    yield "\nold generation by type:"
    for name, count in result["by_type"][:rows]:
        yield f"{count:>9,}  {name}"
    yield "\nold generation by owner (top types):"
    for entry in result["by_owner"][:rows]:
        types = ", ".join(f"{name} {count:,}" for name, count in entry["types"])
        refs = f" ({entry['references']:,} references)" if "references" in entry else ""
        yield f"{entry['objects']:>9,}  {entry['owner']}{refs}  [{types}]"


def _wait_for(path: Path, live: Live) -> dict[str, Any]:
    assert live.mm is not None
    deadline = time.monotonic() + CENSUS_TIMEOUT_S
    while not path.exists():
        if live.mm.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError(f"the service wrote no {path.name}")
        time.sleep(0.5)
    result: dict[str, Any] = json.loads(path.read_text())
    return result


def drive(minutes: float, out: Path, symbols: int, garbage: float = 0.0) -> dict[str, Any]:
    """Trade for ``minutes`` (the last ``garbage`` seconds of them a garbage window, when
    given), then take the census in the service and read it."""
    with tempfile.TemporaryDirectory(prefix="mm-gc-census-") as directory:
        written = Path(directory) / "census.json"
        live = Live(
            Path(directory) / "live",
            coins(symbols),
            mm_command=[sys.executable, "-c", DRIVER, str(BENCHMARKS), str(written), "start"],
        )
        live.start()
        try:
            assert live.mm is not None
            print(f"gc_census: mm pid {live.mm.pid}, {symbols} symbols, {minutes} min", flush=True)
            time.sleep(max(minutes * 60 - garbage, 0.0))
            metrics = live.metrics()
            fills = sum(v for k, v in metrics.items() if k.startswith("mm_fills_total"))
            orders = sum(v for k, v in metrics.items() if k.startswith("mm_orders_total"))
            status = live.status().get("gc") or {}
            found: dict[str, Any] | None = None
            if garbage > 0:
                live.mm.send_signal(signal.SIGUSR2)
                time.sleep(garbage)
                live.mm.send_signal(signal.SIGUSR2)
                found = _wait_for(Path(f"{written}.garbage"), live)
                found["seconds"] = garbage
            live.mm.send_signal(signal.SIGUSR1)
            result = _wait_for(written, live)
        finally:
            live.stop()
    result.update(minutes=minutes, fills=fills, orders=orders, service_gc=status)
    if found is not None:
        result["garbage"] = found
    out.write_text(json.dumps(result, indent=1))
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=15.0)
    parser.add_argument("--symbols", type=int, default=SYMBOLS)
    parser.add_argument("--out", type=Path, default=Path("gc-census.json"))
    parser.add_argument("--rows", type=int, default=25)
    parser.add_argument(
        "--garbage",
        type=float,
        default=0.0,
        help="seconds at the end of the drive in which to count the cyclic garbage (0: none)",
    )
    parser.add_argument("--report", type=Path, help="only print a census written earlier")
    args = parser.parse_args()
    if args.report is not None:
        result = json.loads(args.report.read_text())
    else:
        result = drive(args.minutes, args.out, args.symbols, args.garbage)
    if "minutes" in result:
        service = result.get("service_gc") or {}
        print(
            f"after {result['minutes']} min: fills {result['fills']:.0f}, orders "
            f"{result['orders']:.0f}; the service's costliest collection "
            f"{service.get('costliest_collection')}, longest pause "
            f"{service.get('longest_pause_ms')} ms, collections {service.get('collections')}"
        )
    for line in render(result, args.rows):
        print(line)
    if "garbage" in result:
        print()
        for line in render_garbage(result["garbage"], args.rows):
            print(line)
    return 0


if __name__ == "__main__":
    sys.exit(main())
