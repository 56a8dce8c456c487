"""The venue boundary and the import layers hold (issue 15).

Nothing outside ``mm/venues/hyperliquid`` imports it but the factory (and the simulator, for
the venue's published rules alone: ``SHARED_RULES``): every other such import found in mm/ must
be one of ``REMAINING``, today's list, which shrinks as the port takes their place. A new
one fails here, and so does one that is gone but still listed (delete its line, and its line in
pyproject.toml's contracts, which lint-imports also refuses to keep once the import is gone).
The contracts themselves run here too, so that a run of the suite alone catches a layer broken.
"""

from __future__ import annotations

import ast
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = "mm.venues.hyperliquid"
ALLOWED = {"mm.venues.factory"}

# The simulator's Hyperliquid face shares the venue's published rules (price and size rules,
# request weights, the signature scheme, the dead-man's volume rule) and nothing else of the
# adapter: pyproject.toml's contracts say why. Not to be removed.
SHARED_RULES = {
    "mm.venues.sim.assets -> mm.venues.hyperliquid.numbers",
    "mm.venues.sim.faults -> mm.venues.hyperliquid.limits",
    "mm.venues.sim.hyperliquid.exchange -> mm.venues.hyperliquid.signing",
    "mm.venues.sim.ratelimit -> mm.venues.hyperliquid.limits",
    "mm.venues.sim.venue -> mm.venues.hyperliquid.schedule_cancel",
}

# importer -> imported module; the owner named is who removes it (issue 15's helpers). None
# is left: outside the package, only the factory (and the simulator's shared rules) import it.
REMAINING: set[str] = set()


def module_name(root: Path, path: Path) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def imported_modules(source: str, module: str, is_package: bool) -> set[str]:
    """Every name an ``import`` or ``from ... import`` statement anywhere in ``source`` names,
    in full (``from a.b import c`` gives ``a.b.c``, a module or an attribute of ``a.b``);
    relative imports resolve against ``module``."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = module.split(".")
                drop = node.level - 1 if is_package else node.level
                anchor = anchor[: len(anchor) - drop]
                base = ".".join([*anchor, base] if base else anchor)
            found.update(f"{base}.{alias.name}" for alias in node.names)
    return found


def _within(name: str, package: str) -> bool:
    return name == package or name.startswith(package + ".")


def venue_imports(root: Path) -> set[str]:
    """``importer -> module`` for each import of mm.venues.hyperliquid in ``root``/mm from
    outside the package, naming the deepest module of the package the statement names."""
    files = sorted((root / "mm").rglob("*.py"))
    modules = {module_name(root, path) for path in files}
    found: set[str] = set()
    for path in files:
        importer = module_name(root, path)
        if _within(importer, PACKAGE) or importer in ALLOWED:
            continue
        source = path.read_text(encoding="utf-8")
        for name in imported_modules(source, importer, path.name == "__init__.py"):
            if not _within(name, PACKAGE):
                continue
            while name not in modules and name != PACKAGE:
                name = name.rsplit(".", 1)[0]  # an attribute: the module that holds it
            found.add(f"{importer} -> {name}")
    return found


def test_only_the_listed_modules_import_the_hyperliquid_package() -> None:
    found = venue_imports(ROOT)
    new = sorted(found - REMAINING - SHARED_RULES)
    gone = sorted((REMAINING | SHARED_RULES) - found)
    assert not new, f"new imports of {PACKAGE} from outside it (go through the port): {new}"
    assert not gone, f"these imports are gone: delete them from REMAINING and pyproject: {gone}"


def test_the_scan_sees_every_form_of_import(tmp_path: Path) -> None:
    """The scan is what keeps the boundary: it must see lazy, aliased, package and relative
    imports, and leave out the package itself, the factory and other venue modules."""
    files = {
        "mm/venues/__init__.py": "",
        "mm/venues/hyperliquid/__init__.py": "",
        "mm/venues/hyperliquid/wire.py": "import mm.venues.hyperliquid.codec\n",
        "mm/venues/hyperliquid/codec.py": "",
        "mm/venues/factory.py": "from mm.venues.hyperliquid import wire\n",
        "mm/a.py": "from mm.venues.hyperliquid.wire import new_cloid as cloid\n",
        "mm/b.py": "def f():\n    import mm.venues.hyperliquid.codec as codec\n",
        "mm/c.py": "from mm.venues import hyperliquid\n",
        "mm/venues/d.py": "from .hyperliquid import codec\n",
        "mm/e.py": "from mm.venues.base import VenueAdapter\nimport mm.venues.hyperliquidish\n",
    }
    for name, text in files.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text, encoding="utf-8")
    assert venue_imports(tmp_path) == {
        "mm.a -> mm.venues.hyperliquid.wire",
        "mm.b -> mm.venues.hyperliquid.codec",
        "mm.c -> mm.venues.hyperliquid",
        "mm.venues.d -> mm.venues.hyperliquid.codec",
    }


def test_the_import_contracts_hold() -> None:
    lint_imports = shutil.which("lint-imports", path=str(Path(sys.executable).parent))
    if lint_imports is None:
        pytest.fail("lint-imports is not installed: pip install -e '.[test]'")
    # The tree this test is in, not whichever mm an editable install points at.
    path = os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))
    result = subprocess.run(
        [lint_imports, "--no-cache"],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": path},
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
