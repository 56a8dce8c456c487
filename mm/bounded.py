"""A bounded set: remembers the last ``capacity`` keys added, forgetting the oldest first.

Used to drop duplicates (fills by trade id, replayed reports) with memory that never grows.

A set that is full keeps ``capacity`` keys for as long as the service runs, so every key it
holds is walked by each full garbage collection if the collector tracks it (``mm.gc_pauses``).
Strings, numbers and tuples of them are not tracked once they have survived a collection; a
record is (an attrs instance: the user feed's order reports, 2,000 of them with 12 references
each). So a value record (attrs, compared by value) is remembered as its *compact key*: a tuple
of its class's qualified name and its fields' values, an enum member by its value and a nested
record or tuple alike. Two records are equal exactly when their compact keys are (same class,
fields equal one by one, as attrs compares them; a field holds members of one enum), so
membership is unchanged. Pure: no I/O.
Fails only on a key that is not hashable (``TypeError``, as a set would).
"""

from __future__ import annotations

import enum
from collections import deque
from collections.abc import Hashable
from typing import Any

import attrs


def compact_key(key: Hashable) -> Hashable:
    """``key`` as the set remembers it: a value record as a flat tuple of atomics, anything
    else as it is (see the module)."""
    kind = type(key)
    if kind in _ATOMIC:
        return key
    if kind is tuple:
        items: tuple[Hashable, ...] = key  # type: ignore[assignment]
        if all(type(item) in _ATOMIC for item in items):
            return items  # the dispatcher's (oid, tid): as it is
        return tuple(_value(item) for item in items)
    if attrs.has(kind) and kind.__eq__ is not object.__eq__:
        return _record(key)
    return key


def _record(key: Any) -> tuple[Hashable, ...]:
    kind = type(key)
    values = [
        _value(getattr(key, f.name) if f.eq_key is None else f.eq_key(getattr(key, f.name)))
        for f in attrs.fields(kind)
        if f.eq
    ]
    return (f"{kind.__module__}.{kind.__qualname__}", *values)


def _value(value: Hashable) -> Hashable:
    """A field's value: an enum member by its value (a field holds members of one enum, whose
    values tell them apart), in line, so that the record's tuple holds no tuple the collector
    would have to untrack first; a nested record or tuple as its own compact key."""
    kind = type(value)
    if kind in _ATOMIC:
        return value
    if isinstance(value, enum.Enum) and type(value.value) in _ATOMIC:
        member_value: Hashable = value.value
        return member_value
    return compact_key(value)


# Kept as they are: not tracked by the collector.
_ATOMIC = frozenset({str, int, float, bool, bytes, type(None)})


class BoundedSet:
    """The last ``capacity`` keys added (see the module)."""

    def __init__(self, capacity: int) -> None:
        if capacity < 1:
            raise ValueError(f"capacity must be at least 1, got {capacity}")
        self.capacity = capacity
        self._order: deque[Hashable] = deque()
        self._keys: set[Hashable] = set()

    def __len__(self) -> int:
        return len(self._keys)

    def __contains__(self, key: object) -> bool:
        return compact_key(key) in self._keys

    def add(self, key: Hashable) -> None:
        self._add(compact_key(key))

    def _add(self, key: Hashable) -> None:
        if key in self._keys:
            return
        self._keys.add(key)
        self._order.append(key)
        if len(self._order) > self.capacity:
            self._keys.discard(self._order.popleft())

    def seen(self, key: Hashable) -> bool:
        """True if ``key`` is remembered; otherwise remember it and return False."""
        key = compact_key(key)
        if key in self._keys:
            return True
        self._add(key)
        return False
