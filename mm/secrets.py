"""Secrets: values read from the environment or a file, that print as ``***`` everywhere."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import attrs

REDACTED = "***"


@attrs.frozen(repr=False)
class Secret:
    """A secret string. ``str()`` and ``repr()`` never show it; ``reveal()`` does."""

    _value: str = attrs.field(alias="value")

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return f"Secret({REDACTED})"

    __str__ = __repr__


class Redactor:
    """Replaces every known secret value in a text with ``***``."""

    def __init__(self, secrets: Iterable[Secret] = ()) -> None:
        values = {secret.reveal() for secret in secrets if secret.reveal()}
        # Longest first, so a secret that contains another is replaced whole.
        self._values = sorted(values, key=len, reverse=True)

    def __call__(self, text: str) -> str:
        for value in self._values:
            if value in text:
                text = text.replace(value, REDACTED)
        return text

    def __bool__(self) -> bool:
        return bool(self._values)

    def scrub(self, value: Any) -> Any:
        """Every string in plain data (keys too) passed through the redactor."""
        if isinstance(value, str):
            return self(value)
        if isinstance(value, list | tuple):
            return [self.scrub(item) for item in value]
        if isinstance(value, dict):
            return {self(str(key)): self.scrub(item) for key, item in value.items()}
        return value
