"""What each ``mm`` command imports before it does anything: only what it needs.

Every operator command (and every subprocess drill of the e2e folder) pays its imports: the
service tree, the venue clients and the config's sections take most of a second, which
``mm --version``, ``mm stop`` or ``mm kill`` spent before doing anything. The command line
imports them inside the commands that use them, and the service never imports
``trio.testing`` (it pulls in pytest) to recognise a MockClock.
"""

from __future__ import annotations

import subprocess
import sys

import pytest


def imported_after(code: str) -> set[str]:
    """The modules a fresh interpreter holds after running ``code``."""
    probe = f"{code}\nimport sys\nprint('\\n'.join(sorted(sys.modules)))"
    result = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, timeout=60, check=True
    )
    return set(result.stdout.split())


def test_the_command_line_parses_without_the_service_or_its_config() -> None:
    modules = imported_after("from mm.cli import build_parser\nbuild_parser()")
    for heavy in ("mm.app", "mm.config", "mm.ops.checks", "mm.venues.sim.venue", "mm.journal"):
        assert heavy not in modules, heavy


@pytest.mark.parametrize("module", ["mm.app", "mm.cli"])
def test_the_service_does_not_import_pytest(module: str) -> None:
    modules = imported_after(f"import {module}")
    assert "trio.testing" not in modules
    assert "pytest" not in modules
