"""The permission board: one answer to "may I send this order?", written by those who decide.

Six owners decide whether orders may go out, each in its own slot: the kill switch, risk (its
decision and its widen factor), the autonomy mode, the session gate (per symbol, by phase), the
flattener (the symbols it holds) and the service's stop. Each owner is handed its ``Slot`` when
it is built and is the only writer of it; the strategy, the pre-trade checks and the flattener
only read the board. A slot holds a ``Grant`` for every symbol and, where its owner decides per
symbol, a grant for that symbol instead.

A grant is a ``Level`` (the strictest wins), why, and how much wider to quote:

- ``OPEN``: anything may be sent.
- ``REDUCE_ONLY``: only an order that shrinks the position (its opposite side, a position to
  shrink). Never one that increases it, whether it is flagged reduce-only or not.
- ``PULLED``: no quoting: the strategy's orders are refused and its resting quotes go. A
  reduce-only order that reduces the position (the flattener's) may still go.
- ``HALTED``: no new order of any kind (the kill switch, HALT, the service stopping).

``combine`` is the pure core: the strictest level of the grants, the reason of the first source
(in ``SOURCES`` order) at that level, and the widest factor. ``allows`` judges one order against
a permission. The board itself only keeps the slots; it never blocks and never fails (a grant is
a value, checked when it is made).
"""

from __future__ import annotations

import enum
import math
from collections.abc import Iterable, Mapping

import attrs
import trio

from mm.model import Side


class Level(enum.IntEnum):
    """How far orders are restricted; a higher level is stricter."""

    OPEN = 0
    REDUCE_ONLY = 1
    PULLED = 2
    HALTED = 3


class Source(enum.StrEnum):
    """The owners of the board's slots, in the order their reasons are told when tied."""

    KILLSWITCH = "killswitch"
    SERVICE = "service"
    AUTONOMY = "autonomy"
    FLATTENER = "flattener"
    SESSION = "session"
    RISK = "risk"


SOURCES: tuple[Source, ...] = tuple(Source)


def _widen(_instance: object, _attribute: object, value: float) -> None:
    if not (math.isfinite(value) and value >= 1.0):
        raise ValueError(f"a widen factor must be finite and >= 1, got {value!r}")


@attrs.frozen
class Grant:
    """One owner's word: the level, why (None only when OPEN), and a spread factor (>= 1)."""

    level: Level = Level.OPEN
    reason: str | None = None
    widen: float = attrs.field(default=1.0, validator=_widen)

    def __attrs_post_init__(self) -> None:
        if self.level is not Level.OPEN and not self.reason:
            raise ValueError(f"a {self.level.name} grant must say why")


OPEN = Grant()


@attrs.frozen
class Permission:
    """What may be sent for a symbol now, all slots combined."""

    level: Level = Level.OPEN
    reason: str | None = None  # the strictest owner's reason (None when OPEN)
    widen: float = 1.0  # how much wider to quote (the widest of the grants)

    @property
    def closed(self) -> str | None:
        """Why the strategy may send nothing (PULLED or HALTED), else None."""
        return self.reason if self.level >= Level.PULLED else None

    @property
    def reduce_only(self) -> bool:
        return self.level is Level.REDUCE_ONLY

    @property
    def halted(self) -> str | None:
        """Why no order of any kind may go out (HALTED), else None."""
        return self.reason if self.level is Level.HALTED else None


ALLOWED = Permission()


def combine(grants: Mapping[Source, Grant]) -> Permission:
    """The strictest grant wins; ties are told by the first source in ``SOURCES`` order, and
    the widest factor applies whatever the level."""
    level, reason, widen = Level.OPEN, None, 1.0
    for source in SOURCES:
        grant = grants.get(source)
        if grant is None:
            continue
        widen = max(widen, grant.widen)
        if grant.level > level:
            level, reason = grant.level, grant.reason
    return Permission(level, reason, widen)


def reduces(side: Side, position: float) -> bool:
    """An order on ``side`` shrinks ``position``: there is one, and the order is against it."""
    return position != 0 and side.sign * position < 0


def allows(permission: Permission, side: Side, position: float, *, reduce_only: bool) -> bool:
    """May an order on ``side`` go out (``reduce_only``: flagged so at the venue), with the
    signed ``position`` in its symbol: HALTED nothing; PULLED only a reduce-only order that
    reduces; REDUCE_ONLY only an order that reduces; OPEN anything."""
    level = permission.level
    if level is Level.OPEN:
        return True
    if level is Level.HALTED:
        return False
    if level is Level.PULLED and not reduce_only:
        return False
    return reduces(side, position)


class Slot:
    """One owner's slot: a grant for every symbol, and grants for single symbols over it."""

    def __init__(self, board: PermissionBoard, source: Source) -> None:
        self._board = board
        self.source = source
        self.grant: Grant = OPEN  # for every symbol without its own
        self.symbols: dict[str, Grant] = {}

    def set(self, grant: Grant) -> None:
        """The grant for every symbol (those with their own keep theirs)."""
        if grant != self.grant:
            self.grant = grant
            self._board.changed()

    def set_symbol(self, symbol: str, grant: Grant) -> None:
        if self.symbols.get(symbol) != grant:
            self.symbols[symbol] = grant
            self._board.changed()

    def clear_symbol(self, symbol: str) -> None:
        """The symbol follows the slot's grant for every symbol again."""
        if self.symbols.pop(symbol, None) is not None:
            self._board.changed()

    def of(self, symbol: str) -> Grant:
        return self.symbols.get(symbol, self.grant)


class PermissionBoard:
    """The slots, one per ``Source``, each handed once to its owner (``slot``), and the reads:
    ``permission`` (a symbol's), ``may_send`` (one order), ``halted`` (nothing may go out)."""

    def __init__(self) -> None:
        self._slots = {source: Slot(self, source) for source in SOURCES}
        self._handed: set[Source] = set()
        self._changed = trio.Event()
        # Each symbol's combined permission, made once until a slot is written: the strategy
        # and the pre-trade checks read it several times a tick (it is frozen, safe to share).
        self._permissions: dict[str, Permission] = {}

    def slot(self, source: Source) -> Slot:
        """The owner's slot; each is handed out once, so it has one writer."""
        if source in self._handed:
            raise RuntimeError(f"the {source.value} slot of the permission board has an owner")
        self._handed.add(source)
        return self._slots[source]

    def changed(self) -> None:
        """A slot was written: wake whoever waits for a change."""
        self._permissions.clear()
        self._changed.set()
        self._changed = trio.Event()

    async def wait_changed(self) -> None:
        """Until the next write to any slot."""
        await self._changed.wait()

    def grant(self, source: Source, symbol: str | None = None) -> Grant:
        """One owner's grant (for ``symbol``, or for every symbol)."""
        slot = self._slots[source]
        return slot.grant if symbol is None else slot.of(symbol)

    def permission(self, symbol: str) -> Permission:
        permission = self._permissions.get(symbol)
        if permission is None:
            permission = combine({source: slot.of(symbol) for source, slot in self._slots.items()})
            self._permissions[symbol] = permission
        return permission

    def may_send(
        self, symbol: str, side: Side, position: float, *, reduce_only: bool = False
    ) -> bool:
        return allows(self.permission(symbol), side, position, reduce_only=reduce_only)

    def halted(self, symbols: Iterable[str] = ()) -> str | None:
        """Why no order of any kind may go out, for every symbol or one of ``symbols``; None
        when some may."""
        grants = {source: slot.grant for source, slot in self._slots.items()}
        halted = combine(grants).halted
        if halted is not None:
            return halted
        for symbol in symbols:
            halted = self.permission(symbol).halted
            if halted is not None:
                return halted
        return None
