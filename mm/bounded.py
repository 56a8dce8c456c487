"""A bounded set: remembers the last ``capacity`` keys added, forgetting the oldest first.

Used to drop duplicates (fills by trade id, replayed reports) with memory that never grows.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Hashable


class BoundedSet:
    def __init__(self, capacity: int) -> None:
        if capacity < 1:
            raise ValueError(f"capacity must be at least 1, got {capacity}")
        self.capacity = capacity
        self._order: deque[Hashable] = deque()
        self._keys: set[Hashable] = set()

    def __len__(self) -> int:
        return len(self._keys)

    def __contains__(self, key: object) -> bool:
        return key in self._keys

    def add(self, key: Hashable) -> None:
        if key in self._keys:
            return
        self._keys.add(key)
        self._order.append(key)
        if len(self._order) > self.capacity:
            self._keys.discard(self._order.popleft())

    def seen(self, key: Hashable) -> bool:
        """True if ``key`` is remembered; otherwise remember it and return False."""
        if key in self._keys:
            return True
        self.add(key)
        return False
