"""Which triangles are in flight, one per executor slot, under the isolation rule. Pure.

The reference's ``concurrent_slots`` run N executors at once; before a slot starts a triangle
it claims it (``try_acquire_slot``: check and mark in one step), and it releases it when the
triangle has ended, whatever the ending (``release_slot``). ``Claims`` is that in-flight table
for slots ``0 .. slots - 1``. A claim is granted only when none of these holds, checked in this
order (the first that holds is the answer):

1. ``SLOT_BUSY``: the claiming slot already holds a triangle (a slot holds at most one);
2. ``SAME_TRIANGLE``: another slot holds this very triangle (same primary, same legs);
3. ``SHARED_PAIR``: another slot's triangle trades one of this triangle's symbols;
4. ``SHARED_PRIMARY``: another slot's triangle has the same primary quote currency, unless
   ``share_primary`` is configured.

Where the reference is silent, chosen here:

* "the same triangle" is the same value: the same cycle in the other direction, or from another
  primary, is another triangle, but it trades the same three pairs and so is refused as
  ``SHARED_PAIR`` anyway; rule 2 is rule 3's special case, kept to name it in the answer;
* the primary rule compares primaries only (the reference's in-flight entry keeps one
  ``primary_quote``): a BTC-primary triangle through USDT does not conflict on its primary
  with a USDT-primary one (only its pairs can);
* among several conflicting slots, the lowest-numbered one is named;
* releasing a slot that holds nothing is not an error (a slot releases in its ``finally``
  whatever happened before); it says what it released, if anything.

Claims never awaits: on Trio a claim's check and mark are one step, as the reference's
spinlock made them.

Fails: ``ValueError`` for fewer than one slot, or a slot number out of range. A refused claim
is an answer, not an error: a :class:`Conflict`, which is falsy, where a grant is ``True``.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from typing import Literal

import attrs

from mm.strategies.triarb.legs import Triangle

__all__ = ["Claims", "Conflict", "Reason"]


class Reason(enum.Enum):
    """Why a slot may not claim a triangle now."""

    SLOT_BUSY = "slot already holds a triangle"
    SAME_TRIANGLE = "triangle already in flight"
    SHARED_PAIR = "shares a pair with a triangle in flight"
    SHARED_PRIMARY = "shares its primary with a triangle in flight"


@attrs.frozen(slots=True)
class Conflict:
    """A claim refused: the ``reason``, the ``slot`` whose ``held`` triangle it conflicts with
    (the claiming slot itself for ``SLOT_BUSY``) and what they share (``on``: a symbol, a
    currency, or the triangle's name). Falsy, so that ``if claims.claim(...)`` reads as
    granted."""

    reason: Reason
    slot: int
    held: Triangle
    on: str

    def __bool__(self) -> bool:
        return False

    def __str__(self) -> str:
        return f"{self.reason.value}: {self.on} (slot {self.slot}, {self.held.name})"


class Claims:
    """The in-flight table of ``slots`` executor slots (see the module)."""

    __slots__ = ("_held", "_traded_ms", "share_primary", "slots")

    def __init__(self, slots: int, *, share_primary: bool = False) -> None:
        if slots < 1:
            raise ValueError(f"at least one slot: {slots}")
        self.slots = slots
        self.share_primary = share_primary
        self._held: dict[int, Triangle] = {}
        self._traded_ms: dict[str, int] = {}  # per pair, the venue's time of our last fill

    def __repr__(self) -> str:
        held = ", ".join(f"{slot}: {t.name}" for slot, t in self.busy().items())
        return f"Claims(slots={self.slots}, share_primary={self.share_primary}, {{{held}}})"

    def claim(self, slot: int, triangle: Triangle) -> Literal[True] | Conflict:
        """Grant ``triangle`` to ``slot`` and mark it in flight (``True``), or say why not and
        change nothing (a :class:`Conflict`)."""
        conflict = self.conflict(slot, triangle)
        if conflict is not None:
            return conflict
        self._held[slot] = triangle
        return True

    def conflict(self, slot: int, triangle: Triangle) -> Conflict | None:
        """Why ``slot`` may not claim ``triangle`` now (None when it may); changes nothing."""
        self._check(slot)
        held_now = self._held
        own = held_now.get(slot)
        if own is not None:
            return Conflict(Reason.SLOT_BUSY, slot, own, own.name)
        if not held_now:
            return None  # nothing in flight: nothing to conflict with
        others = sorted(held_now.items())
        for other, held in others:
            if held == triangle:
                return Conflict(Reason.SAME_TRIANGLE, other, held, triangle.name)
        for other, held in others:
            shared = [symbol for symbol in triangle.symbols if symbol in held.symbols]
            if shared:
                return Conflict(Reason.SHARED_PAIR, other, held, shared[0])
        if not self.share_primary:
            for other, held in others:
                if held.primary == triangle.primary:
                    return Conflict(Reason.SHARED_PRIMARY, other, held, triangle.primary)
        return None

    def release(self, slot: int, traded_ms: int | None = None) -> Triangle | None:
        """Free ``slot``: the triangle it held, or None when it held none. ``traded_ms``: the
        venue's time of the triangle's last fill (None: it traded nothing), kept per pair
        (``traded_ms``)."""
        self._check(slot)
        triangle = self._held.pop(slot, None)
        if triangle is not None and traded_ms is not None:
            for symbol in triangle.symbols:
                self._traded_ms[symbol] = max(self._traded_ms.get(symbol, traded_ms), traded_ms)
        return triangle

    def traded_ms(self, symbol: str) -> int:
        """The venue's time of the last fill of a triangle that traded ``symbol`` (-1: none):
        a book of the pair stamped before it does not show that trade."""
        return self._traded_ms.get(symbol, -1)

    def held(self, slot: int) -> Triangle | None:
        """The triangle ``slot`` holds, if any."""
        self._check(slot)
        return self._held.get(slot)

    def busy_count(self) -> int:
        """How many slots hold a triangle (``len(busy())`` without the copy)."""
        return len(self._held)

    def busy(self) -> Mapping[int, Triangle]:
        """The busy slots and their triangles, by slot (a copy: ``len`` is how many)."""
        return dict(sorted(self._held.items()))

    def _check(self, slot: int) -> None:
        if not 0 <= slot < self.slots:
            raise ValueError(f"no slot {slot}: slots are 0..{self.slots - 1}")
