"""The commands a strategy hands the executor, and the multi-leg command's state machine.

Two kinds, with opposite delivery rules:

- ``QuoteLadder``: the orders a symbol should have resting, in any time in force the venue
  offers (post-only for the market maker). Conflated: a symbol's mailbox keeps only the latest
  ladder, and a slot reconciles it with the symbol's live orders (keep, modify, cancel, place).
- ``MultiLeg``: an ordered group of immediate legs (IOC at a limit price, or market), under a
  group id. Never conflated and never reordered: leg ``i + 1`` is sent only once leg ``i``'s
  fills are in, scaled by the fraction of leg ``i``'s planned size that filled, and a leg
  that is refused, fills nothing or times out stops the group, which says why.

``LegGroup`` is the multi-leg command's state machine, pure (no I/O, no clock): the executor
feeds it the venue's answers and sends what it asks. A bad command (no legs, a non-positive
size or price, a post-only leg) is refused when it is built, naming the field.
"""

from __future__ import annotations

import enum

import attrs

from mm.model import DesiredOrder, Side, Tif


@attrs.frozen
class QuoteLadder:
    """The orders ``coin`` should have resting now; an empty ladder cancels them all."""

    coin: str
    desired: tuple[DesiredOrder, ...]
    tick: float = 0.0  # the symbol's price increment, for tolerance in ticks
    # Wall clock (ms) when the book behind it arrived, when that book moved the strategy (a
    # tick: its decision latency is measured); 0: a requote on a timer, not measured.
    book_received_ms: int = 0
    tif: Tif = Tif.ALO  # post-only unless the strategy asks for another
    # When the book it was planned from arrived (the monotonic clock's seconds, from the book's
    # received_ns), set by the strategy task: a slot sends no order from a plan much older than
    # its symbol's latest book, and the decision latency of a tick is measured from it (0:
    # unknown, neither).
    planned_from_s: float = 0.0

    def planned_from(self, at_s: float) -> QuoteLadder:
        """This ladder, planned from the book that arrived at ``at_s`` (``planned_from_s``):
        what ``attrs.evolve`` gives, built directly (the strategy task does it at every tick,
        and ``evolve`` walks the class's fields each time)."""
        return QuoteLadder(
            self.coin, self.desired, self.tick, self.book_received_ms, self.tif, at_s
        )


def _positive(_: object, attribute: attrs.Attribute[float], value: float) -> None:
    if not value > 0:
        raise ValueError(f"{attribute.name}: must be positive, got {value!r}")


def _price(_: object, attribute: attrs.Attribute[float | None], value: float | None) -> None:
    if value is not None and not value > 0:
        raise ValueError(f"{attribute.name}: must be positive or None (market), got {value!r}")


def _immediate(_: object, attribute: attrs.Attribute[Tif], value: Tif) -> None:
    if value is not Tif.IOC:
        raise ValueError(f"{attribute.name}: a leg is immediate (IOC), got {value.name}")


@attrs.frozen
class Leg:
    """One leg: ``sz`` is its size as planned, sent whole when the leg before it filled its own
    planned size, else scaled by the fraction of it that filled; ``px`` is the IOC's limit
    price, None for a market order."""

    coin: str
    side: Side
    sz: float = attrs.field(validator=_positive)
    px: float | None = attrs.field(default=None, validator=_price)
    tif: Tif = attrs.field(default=Tif.IOC, validator=_immediate)
    reduce_only: bool = False


def _legs(_: object, attribute: attrs.Attribute[tuple[Leg, ...]], value: tuple[Leg, ...]) -> None:
    if not value:
        raise ValueError(f"{attribute.name}: a multi-leg command needs at least one leg")


@attrs.frozen
class MultiLeg:
    """Legs sent one after another under ``group_id``, each from the previous leg's fills."""

    group_id: str
    legs: tuple[Leg, ...] = attrs.field(validator=_legs)


Command = QuoteLadder | MultiLeg


class GroupState(enum.Enum):
    READY = "ready"  # the current leg is to be sent
    WORKING = "working"  # the current leg is at the venue, its fills coming in
    DONE = "done"  # every leg ended with a fill
    STOPPED = "stopped"  # a leg was refused, filled nothing or timed out


@attrs.frozen
class LegOrder:
    """What the executor sends for leg ``index``: the leg at ``sz``."""

    index: int
    leg: Leg
    sz: float


class LegGroup:
    """One multi-leg command's progress.

    ``next_order`` gives the leg to send (once); ``on_fill`` counts the current leg's fills;
    ``on_ended`` says the venue ended the leg (an IOC's remainder canceled, or filled whole) with
    ``filled`` in total, and the leg is over once that much has been seen as fills, whichever of
    the two arrives first; ``on_refused`` and ``on_timeout`` stop the group. Fills for another
    leg, or after the group ended, are ignored (they cannot size anything any more).
    """

    def __init__(self, command: MultiLeg) -> None:
        self.command = command
        self.index = 0
        self.state = GroupState.READY
        self.reason: str | None = None
        self.filled: list[float] = [0.0] * len(command.legs)
        self.sent: list[float] = [0.0] * len(command.legs)
        self._size = command.legs[0].sz  # the current leg's size, once sized
        self._ended_at: float | None = None  # the venue's total for the current leg

    @property
    def finished(self) -> bool:
        return self.state in (GroupState.DONE, GroupState.STOPPED)

    def next_order(self) -> LegOrder | None:
        """The leg to send now (None: nothing to send until the venue answers, or ended)."""
        if self.state is not GroupState.READY:
            return None
        self.state = GroupState.WORKING
        self.sent[self.index] = self._size
        return LegOrder(self.index, self.command.legs[self.index], self._size)

    def on_fill(self, index: int, sz: float) -> None:
        if self.state is not GroupState.WORKING or index != self.index or not sz > 0:
            return
        self.filled[index] += sz
        self._settle()

    def on_ended(self, index: int, filled: float) -> None:
        """The venue ended leg ``index`` having filled ``filled`` of it in total."""
        if self.state is not GroupState.WORKING or index != self.index:
            return
        self._ended_at = max(filled, 0.0)
        self._settle()

    def on_refused(self, index: int, reason: str) -> None:
        if not self.finished and index == self.index:
            self._stop(f"leg {index} ({self._describe(index)}) refused: {reason}")

    def on_timeout(self, index: int, fate: str | None = None) -> None:
        """Leg ``index`` did not end in time; ``fate`` says what is known of its order."""
        if not self.finished and index == self.index:
            known = f": {fate}" if fate else ""
            self._stop(f"leg {index} ({self._describe(index)}) timed out{known}")

    def _describe(self, index: int) -> str:
        leg = self.command.legs[index]
        return f"{leg.side.name.lower()} {leg.coin}"

    def _stop(self, reason: str) -> None:
        self.state = GroupState.STOPPED
        self.reason = reason

    def _settle(self) -> None:
        """The leg is over when the venue ended it and its fills are all in (or it filled whole):
        then the next leg is sized from them, or the group ends."""
        index, filled = self.index, self.filled[self.index]
        whole = filled >= self.sent[index] * (1 - 1e-9)
        if not whole and (self._ended_at is None or filled < self._ended_at * (1 - 1e-9)):
            return
        if not filled > 0:
            self._stop(f"leg {index} ({self._describe(index)}) filled nothing")
            return
        self._ended_at = None
        if index + 1 == len(self.command.legs):
            self.state = GroupState.DONE
            return
        fraction = min(filled / self.command.legs[index].sz, 1.0)  # of the leg as planned
        self.index += 1
        self._size = self.command.legs[self.index].sz * fraction
        self.state = GroupState.READY
