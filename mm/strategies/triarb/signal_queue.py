"""The signals between the strategy and the executor slots: handed to a slot that waits, or
queued while there is room, else dropped (a signal is perishable; the strategy never waits).

Each slot receives through its own ``Inbox`` (``SignalQueue.inbox``): ``receive`` takes the
oldest queued item, or waits to be handed one. ``idle`` names the slot that has waited
longest and still waits (its task parked in ``receive``), so that the strategy's task can
start a triangle for that very slot (claim it, send its first leg) before it hands the slot
what it started (``hand``): the slot's task goes on from there. An item handed to a waiting
slot is delivered with its wake-up, as a Trio memory channel delivers to a waiting receiver:
a cancel that comes after cannot lose it (the slot's task gets it, and the cancel at its next
checkpoint).

Fails: ``hand`` raises ``RuntimeError`` for a slot that does not wait (``idle`` did not name
it in this same step: a bug of the caller).
"""

from __future__ import annotations

from collections import deque
from typing import Generic, TypeVar

import trio

__all__ = ["Inbox", "SignalQueue"]

Item = TypeVar("Item")


class SignalQueue(Generic[Item]):
    """Items to the slots that wait, or queued up to ``capacity`` (see the module)."""

    def __init__(self, capacity: int) -> None:
        if capacity < 0:
            raise ValueError(f"a queue's capacity is 0 or more, not {capacity}")
        self._capacity = capacity
        self._queued: deque[Item] = deque()
        # The slots that wait, in the order they began waiting: each one's inbox (send end).
        self._waiting: dict[int, trio.MemorySendChannel[Item]] = {}
        self._inboxes: dict[int, Inbox[Item]] = {}

    def __len__(self) -> int:
        """Items queued (not handed to a slot yet)."""
        return len(self._queued)

    def inbox(self, slot: int) -> Inbox[Item]:
        """Slot ``slot``'s way to receive: the same one for each run of the slot."""
        inbox = self._inboxes.get(slot)
        if inbox is None:
            inbox = self._inboxes[slot] = Inbox(self, slot)
        return inbox

    def idle(self) -> int | None:
        """The slot that has waited longest and still waits, None when every slot is busy."""
        waiting = self._waiting
        for slot, send in waiting.items():
            if send.statistics().tasks_waiting_receive:
                return slot
        return None

    def hand(self, slot: int, item: Item) -> None:
        """``item`` to ``slot``, which waits (``idle`` named it, nothing has run since)."""
        send = self._waiting.pop(slot, None)
        if send is None:
            raise RuntimeError(f"slot {slot} is not waiting for a signal")
        try:
            send.send_nowait(item)
        except trio.WouldBlock:
            raise RuntimeError(f"slot {slot} is not waiting for a signal") from None

    def put_nowait(self, item: Item) -> bool:
        """``item`` to the slot that has waited longest, else queued if there is room: False
        when it was dropped (every slot busy and the queue full)."""
        slot = self.idle()
        if slot is not None:
            self.hand(slot, item)
            return True
        if len(self._queued) < self._capacity:
            self._queued.append(item)
            return True
        return False

    def _take(self) -> Item | None:
        return self._queued.popleft() if self._queued else None

    def _wait(self, slot: int, send: trio.MemorySendChannel[Item]) -> None:
        self._waiting[slot] = send

    def _done_waiting(self, slot: int) -> None:
        self._waiting.pop(slot, None)


class Inbox(Generic[Item]):
    """One slot's end of a ``SignalQueue``: ``receive`` the next item (see the module)."""

    def __init__(self, queue: SignalQueue[Item], slot: int) -> None:
        self._queue = queue
        self._slot = slot
        # Unbuffered: an item goes only to this slot's task waiting in ``receive``.
        self._send, self._receive = trio.open_memory_channel[Item](0)

    async def receive(self) -> Item:
        """The oldest queued item, else the next one handed to this slot (waits for it)."""
        queue = self._queue
        await trio.lowlevel.checkpoint_if_cancelled()
        item = queue._take()
        if item is not None:
            await trio.lowlevel.cancel_shielded_checkpoint()
            return item
        queue._wait(self._slot, self._send)
        try:
            return await self._receive.receive()
        finally:
            queue._done_waiting(self._slot)
