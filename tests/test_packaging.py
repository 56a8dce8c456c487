"""pyproject.toml uses the current packaging forms, so an install prints no deprecation.

setuptools deprecated ``license = { text = ... }`` (a TOML table) for an SPDX expression string
(PEP 639), which it reads from 77.0.0 on (77.0.3 fixed its first bugs): the build requirement
must be at least that, or an older setuptools would reject the string.
"""

from __future__ import annotations

import re
import tomllib
from pathlib import Path
from typing import Any

PYPROJECT = Path(__file__).resolve().parents[1] / "pyproject.toml"
SPDX_FIRST = (77, 0, 3)


def pyproject() -> dict[str, Any]:
    with PYPROJECT.open("rb") as file:
        return tomllib.load(file)


def setuptools_minimum(requires: list[str]) -> tuple[int, ...] | None:
    for requirement in requires:
        match = re.fullmatch(r"setuptools\s*>=\s*([0-9.]+)", requirement.strip())
        if match:
            return tuple(int(part) for part in match.group(1).split("."))
    return None


def test_the_license_is_an_spdx_expression() -> None:
    project = pyproject()["project"]
    assert project["license"] == "MIT"
    # PEP 639: with a license expression, license classifiers are an error.
    assert not [c for c in project.get("classifiers", []) if c.startswith("License ::")]


def test_the_build_requires_a_setuptools_that_reads_it() -> None:
    minimum = setuptools_minimum(pyproject()["build-system"]["requires"])
    assert minimum is not None, "setuptools has no lower bound"
    assert minimum >= SPDX_FIRST


def test_setuptools_minimum_reads_the_bound() -> None:
    assert setuptools_minimum(["setuptools>=68", "wheel"]) == (68,)
    assert setuptools_minimum(["wheel", "setuptools >= 77.0.3"]) == (77, 0, 3)
    assert setuptools_minimum(["setuptools"]) is None
