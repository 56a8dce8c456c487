"""The venue's real recordings, and comparisons of the simulator's answers with them.

``info_responses.json`` and ``ws_frames.jsonl`` in ``tests/fixtures/hyperliquid`` hold real
Hyperliquid answers. ``shape_problems`` compares a live value with recorded samples of the same
thing: every object must have the recording's keys (a key absent from some recorded sample is
optional; anything else must be listed as an allowed extra, with its kinds), and every value must
be of a kind seen in the recording: a decimal string, an int, a bool, a hash, a cloid, ...
``format_problems`` checks the venue's number style on every decimal string.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping, Sequence
from functools import cache
from typing import Any

from tests.fixture_paths import HYPERLIQUID as FIXTURES

DECIMAL = re.compile(r"-?\d+\.\d+")
CANONICAL_DECIMAL = re.compile(r"-?(0|[1-9]\d*)\.(0|\d*[1-9])")
FIXED_8 = re.compile(r"-?\d+\.\d{8}")
HASH = re.compile(r"0x[0-9a-f]{64}")
ADDRESS = re.compile(r"0x[0-9a-fA-F]{40}")
CLOID = re.compile(r"0x[0-9a-f]{32}")

# Decimal strings the venue prints with a fixed number of decimals rather than trimmed.
FIXED_8_KEYS = frozenset({"returnOnEquity"})

Extras = Mapping[str, Mapping[str, frozenset[str]]]
"""Allowed keys absent from the recording: path of the object -> {key: allowed kinds}."""

OptionalKeys = Mapping[str, frozenset[str]]
"""Recorded keys the venue leaves out when unset (a cloid): path of the object -> keys."""


@cache
def info_recordings() -> dict[str, Any]:
    """``{request type: {"request": ..., "response": ...}}`` from ``info_responses.json``."""
    data: dict[str, Any] = json.loads((FIXTURES / "info_responses.json").read_text())
    return dict(data["info"])


def recorded_info(kind: str) -> Any:
    """The recorded response to the info request of type ``kind``."""
    return info_recordings()[kind]["response"]


@cache
def ws_recordings() -> tuple[dict[str, Any], ...]:
    lines = (FIXTURES / "ws_frames.jsonl").read_text().splitlines()
    return tuple(json.loads(line) for line in lines if line.strip())


def recorded_frames(channel: str) -> list[dict[str, Any]]:
    """Every recorded WebSocket frame of ``channel``."""
    frames = [frame for frame in ws_recordings() if frame["channel"] == channel]
    assert frames, f"no recorded frame on channel {channel!r}"
    return frames


@cache
def recorded_error_texts() -> dict[str, str]:
    """The venue's documented error texts by error type (``error_messages.json``)."""
    data = json.loads((FIXTURES / "error_messages.json").read_text())
    return {entry["type"]: entry["message"] for entry in data["errors"]}


def kind_of(value: Any) -> str:
    """The kind of a JSON value, telling apart the string formats the venue uses."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int):
        return "int"
    if isinstance(value, float):
        return "float"
    if isinstance(value, list):
        return "list"
    if isinstance(value, dict):
        return "dict"
    assert isinstance(value, str), f"not a JSON value: {value!r}"
    for kind, pattern in (
        ("decimal", DECIMAL),
        ("hash", HASH),
        ("address", ADDRESS),
        ("cloid", CLOID),
    ):
        if pattern.fullmatch(value):
            return kind
    return "str"


def shape_problems(
    actual: Any,
    samples: Sequence[Any],
    *,
    extras: Extras | None = None,
    optional: OptionalKeys | None = None,
    maps: Iterable[str] = (),
    path: str = "",
    also: frozenset[str] = frozenset(),
) -> list[str]:
    """How ``actual`` differs from recorded ``samples`` of the same value (empty if it does not).

    Paths name object keys with ``.key`` and list elements with ``[]``, from ``""`` at the top.
    An extra naming a recorded key adds kinds to the recorded ones (a cloid where the
    recording only shows null). Keys in ``optional`` may be absent though every recorded
    sample has them. Objects at a path in ``maps`` are maps (allMids): any keys,
    values like the recorded ones. ``also``: kinds allowed here besides the recorded ones.
    """
    extras = extras or {}
    optional = optional or {}
    maps = frozenset(maps)
    where = path or "<top>"
    kinds = {kind_of(sample) for sample in samples} | also
    if not kinds:
        return [f"{where}: nothing recorded to compare {actual!r} with"]
    kind = kind_of(actual)
    if kind not in kinds:
        return [f"{where}: {kind} {actual!r}, recorded {sorted(kinds)}"]
    problems: list[str] = []
    if kind == "list":
        elements = [element for sample in samples if isinstance(sample, list) for element in sample]
        for element in actual:
            problems += shape_problems(
                element, elements, extras=extras, optional=optional, maps=maps, path=f"{path}[]"
            )
    elif kind == "dict" and path in maps:
        values = [
            value for sample in samples if isinstance(sample, dict) for value in sample.values()
        ]
        for key, value in actual.items():
            problems += shape_problems(
                value, values, extras=extras, optional=optional, maps=maps, path=f"{path}.{key}"
            )
    elif kind == "dict":
        records = [sample for sample in samples if isinstance(sample, dict)]
        required = set.intersection(*(set(record) for record in records))
        known = set.union(*(set(record) for record in records))
        allowed_extra = extras.get(path, {})
        missing = required - set(actual) - optional.get(path, frozenset())
        if missing:
            problems.append(f"{where}: missing keys {sorted(missing)}")
        for key, value in actual.items():
            if key in known:
                problems += shape_problems(
                    value,
                    [record[key] for record in records if key in record],
                    extras=extras,
                    optional=optional,
                    maps=maps,
                    path=f"{path}.{key}",
                    also=allowed_extra.get(key, frozenset()),
                )
            elif key in allowed_extra:
                if kind_of(value) not in allowed_extra[key]:
                    problems.append(
                        f"{where}.{key}: {kind_of(value)} {value!r}, "
                        f"allowed {sorted(allowed_extra[key])}"
                    )
            else:
                problems.append(f"{where}: unexpected key {key!r} = {value!r}")
    return problems


def assert_shape(
    actual: Any,
    samples: Sequence[Any],
    *,
    extras: Extras | None = None,
    optional: OptionalKeys | None = None,
    maps: Iterable[str] = (),
) -> None:
    """Fail with every difference between ``actual`` and the recorded ``samples``."""
    problems = shape_problems(actual, samples, extras=extras, optional=optional, maps=maps)
    problems += format_problems(actual)
    assert not problems, "differs from the recording:\n  " + "\n  ".join(problems)


def format_problems(value: Any, key: str = "", path: str = "") -> list[str]:
    """Decimal strings not printed as the venue prints them.

    Prices, sizes and amounts have no exponent and no trailing zeros beyond one decimal
    ("30135.0", "0.00022"); ``returnOnEquity`` has exactly 8 decimals.
    """
    problems: list[str] = []
    if isinstance(value, dict):
        for name, item in value.items():
            problems += format_problems(item, name, f"{path}.{name}")
    elif isinstance(value, list):
        for item in value:
            problems += format_problems(item, key, f"{path}[]")
    elif (
        isinstance(value, str)
        and re.fullmatch(r"-?[\d.eE+-]+", value)
        and any(char.isdigit() for char in value)
    ) and not value.startswith("0x"):
        pattern = FIXED_8 if key in FIXED_8_KEYS else CANONICAL_DECIMAL
        if not pattern.fullmatch(value):
            problems.append(f"{path or '<top>'}: badly formatted number {value!r}")
    return problems


def is_decimal(value: Any) -> bool:
    """A decimal string in the venue's style ("30135.0", "0.069277", "-0.39")."""
    return isinstance(value, str) and CANONICAL_DECIMAL.fullmatch(value) is not None
