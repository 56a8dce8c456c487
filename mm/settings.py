"""Settings: attrs fields with a default and a constraint, and structuring them strictly.

Every component's config section is an attrs class built from ``setting(default, check)``.
``structure_section`` turns plain data (parsed TOML, a JSON body) into such a class: types are
strict (no "yes" for a bool), unknown keys are errors, and every problem is reported as
``key.path: reason`` in a ConfigError.
"""

from __future__ import annotations

import ipaddress
import typing
from collections.abc import Callable, Mapping
from typing import Any

import attrs
import cattrs
from cattrs.errors import ClassValidationError, ForbiddenExtraKeysError, IterableValidationError

Check = Callable[[Any], str | None]
SECRET_WORDS = ("token", "secret", "password", "private_key", "api_key", "passphrase")


T = typing.TypeVar("T")


class ConfigError(Exception):
    """The configuration cannot be used; ``errors`` are ``key.path: reason`` lines."""

    def __init__(self, errors: list[str]) -> None:
        super().__init__("\n".join(errors))
        self.errors = errors


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


def _strict(kind: type, label: str) -> Callable[[Any, type], Any]:
    def structure(value: Any, _: type) -> Any:
        if isinstance(value, bool) and kind is not bool:
            raise TypeError(f"expected {label}, got {value!r}")
        if kind is float and isinstance(value, int):
            return float(value)
        if not isinstance(value, kind):
            raise TypeError(f"expected {label}, got {value!r}")
        return value

    return structure


def _converter() -> cattrs.Converter:
    converter = cattrs.Converter(forbid_extra_keys=True, detailed_validation=True)
    converter.register_structure_hook(bool, _strict(bool, "true or false"))
    converter.register_structure_hook(int, _strict(int, "an integer"))
    converter.register_structure_hook(float, _strict(float, "a number"))
    converter.register_structure_hook(str, _strict(str, "a string"))
    return converter


CONVERTER = _converter()


def is_loopback(host: str) -> bool:
    """``localhost`` or a loopback address (IPv6 in brackets or not)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def join_path(path: str, key: str | int) -> str:
    if isinstance(key, int):
        return f"{path}[{key}]"
    return f"{path}.{key}" if path else key


def _unknown_key(path: str) -> str:
    leaf = path.rsplit(".", 1)[-1]
    if any(word in leaf.lower() for word in SECRET_WORDS):
        return (
            f"{path}: secrets are never read from the config file; "
            "name an environment variable (token_env) or a file (token_file) instead"
        )
    return f"{path}: unknown key"


def describe_structuring_error(error: BaseException, path: str) -> list[str]:
    """``key.path: reason`` lines for a cattrs structuring error."""
    if isinstance(error, ClassValidationError):
        lines: list[str] = []
        with_notes, without = error.group_exceptions()
        for inner, note in with_notes:
            lines.extend(describe_structuring_error(inner, join_path(path, note.name)))
        for inner in without:
            lines.extend(describe_structuring_error(inner, path))
        return lines
    if isinstance(error, IterableValidationError):
        lines = []
        indexed, plain = error.group_exceptions()
        for inner, index_note in indexed:
            lines.extend(describe_structuring_error(inner, join_path(path, index_note.index)))
        for inner in plain:
            lines.extend(describe_structuring_error(inner, path))
        return lines
    if isinstance(error, ForbiddenExtraKeysError):
        return [_unknown_key(join_path(path, key)) for key in sorted(error.extra_fields)]
    if isinstance(error, KeyError):
        return [f"{path}: required key missing"]
    if isinstance(error, AttributeError):
        return [f"{path or '(top level)'}: expected a table"]
    return [f"{path or '(top level)'}: {error}"]


def check_section(instance: Any, path: str) -> list[str]:
    """Run every field's constraint, depth first, naming each failure by key path."""
    problems: list[str] = []
    for field in attrs.fields(type(instance)):
        if field.metadata.get("internal"):
            continue
        value = getattr(instance, field.name)
        key = join_path(path, field.name)
        if attrs.has(type(value)):
            problems.extend(check_section(value, key))
            continue
        check = field.metadata.get("check")
        problem = check(value) if check is not None else None
        if problem:
            problems.append(f"{key}: {problem}")
    return problems


def structure_section(data: Mapping[str, Any], cls: type[T], path: str) -> T:
    """One section from plain data, with the file's strictness and checks (ConfigError)."""
    try:
        section = CONVERTER.structure(dict(data), cls)
    except Exception as error:  # cattrs groups every problem into one exception
        raise ConfigError(describe_structuring_error(error, path)) from None
    problems = check_section(section, path)
    if problems:
        raise ConfigError(problems)
    return section
