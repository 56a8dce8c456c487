"""Declaring settings: an attrs field with a default and a constraint checked with its key path.

Every component's config section is an attrs class built from ``setting(default, check)``;
``mm.config`` structures the TOML into them and runs the checks, naming each failure by path.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import attrs

Check = Callable[[Any], str | None]


def positive(value: float) -> str | None:
    return None if value > 0 else f"must be > 0, got {value!r}"


def non_negative(value: float) -> str | None:
    return None if value >= 0 else f"must be >= 0, got {value!r}"


def at_least(minimum: float) -> Check:
    def check(value: float) -> str | None:
        return None if value >= minimum else f"must be >= {minimum}, got {value!r}"

    return check


def one_of(*choices: str) -> Check:
    def check(value: str) -> str | None:
        return None if value in choices else f"must be one of {', '.join(choices)}, got {value!r}"

    return check


def non_empty(value: str) -> str | None:
    return None if value.strip() else "must not be empty"


def port(value: int) -> str | None:
    return None if 0 <= value <= 65535 else f"must be between 0 and 65535, got {value}"


def setting(default: Any, check: Check | None = None) -> Any:
    """An attrs field with a default and a constraint checked with its key path."""
    return attrs.field(default=default, metadata={"check": check})
