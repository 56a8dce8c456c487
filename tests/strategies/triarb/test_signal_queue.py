"""The signal queue between the strategy and the slots: an item goes to the slot that has
waited longest, else into the queue while there is room, else it is dropped; a slot that a
cancel reached no longer waits; an item handed to a waiting slot is never lost to a cancel
that comes after it."""

from __future__ import annotations

import pytest
import trio
import trio.testing
from hypothesis import given, settings
from hypothesis import strategies as st

from mm.strategies.triarb.signal_queue import Inbox, SignalQueue


async def _receive_into(inbox: Inbox[str], got: list[str]) -> None:
    got.append(await inbox.receive())


async def test_an_item_goes_to_the_slot_that_has_waited_longest() -> None:
    queue = SignalQueue[str](1)
    got: dict[int, list[str]] = {0: [], 1: []}
    async with trio.open_nursery() as nursery:
        nursery.start_soon(_receive_into, queue.inbox(1), got[1])
        await trio.testing.wait_all_tasks_blocked()
        nursery.start_soon(_receive_into, queue.inbox(0), got[0])
        await trio.testing.wait_all_tasks_blocked()
        assert queue.idle() == 1
        assert queue.put_nowait("a")
        assert queue.idle() == 0  # at once: 1 is no longer waiting
        assert queue.put_nowait("b")
        assert queue.idle() is None
    assert got == {0: ["b"], 1: ["a"]}


async def test_with_every_slot_busy_items_queue_up_to_the_capacity_then_are_dropped() -> None:
    queue = SignalQueue[str](2)
    assert queue.idle() is None
    assert queue.put_nowait("a")
    assert queue.put_nowait("b")
    assert not queue.put_nowait("c")
    assert len(queue) == 2
    inbox = queue.inbox(0)
    assert [await inbox.receive(), await inbox.receive()] == ["a", "b"]  # oldest first
    assert len(queue) == 0


async def test_a_queue_of_no_capacity_hands_only_to_a_slot_that_waits() -> None:
    queue = SignalQueue[str](0)
    assert not queue.put_nowait("a")
    got: list[str] = []
    async with trio.open_nursery() as nursery:
        nursery.start_soon(_receive_into, queue.inbox(0), got)
        await trio.testing.wait_all_tasks_blocked()
        assert queue.put_nowait("b")
    assert got == ["b"]


async def test_a_slot_is_handed_what_was_started_for_it_and_no_other_slot_is() -> None:
    queue = SignalQueue[str](1)
    got: dict[int, list[str]] = {0: [], 1: []}
    async with trio.open_nursery() as nursery:
        for slot in (0, 1):
            nursery.start_soon(_receive_into, queue.inbox(slot), got[slot])
            await trio.testing.wait_all_tasks_blocked()
        idle = queue.idle()
        assert idle == 0
        queue.hand(idle, "started for 0")
        with pytest.raises(RuntimeError, match="slot 0 is not waiting"):
            queue.hand(0, "again")  # it no longer waits
        queue.hand(1, "started for 1")
    assert got == {0: ["started for 0"], 1: ["started for 1"]}


async def test_a_slot_a_cancel_reached_no_longer_waits_at_once() -> None:
    queue = SignalQueue[str](1)
    got: list[str] = []
    with trio.CancelScope() as scope:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(_receive_into, queue.inbox(0), got)
            await trio.testing.wait_all_tasks_blocked()
            assert queue.idle() == 0
            scope.cancel()
            # Before the slot's task has run again: the cancel took it off the waiting.
            assert queue.idle() is None
            with pytest.raises(RuntimeError):
                queue.hand(0, "too late")
            assert queue.put_nowait("queued")  # (queued, not lost)
    assert got == []
    assert len(queue) == 1


async def test_an_item_handed_before_a_cancel_is_received_all_the_same() -> None:
    queue = SignalQueue[str](1)
    got: list[str] = []
    inbox = queue.inbox(0)

    async def slot() -> None:
        try:
            await _receive_into(inbox, got)
            await trio.sleep_forever()  # the cancel lands here, after the item
        except trio.Cancelled:
            got.append("cancelled after")
            raise

    async with trio.open_nursery() as nursery:
        nursery.start_soon(slot)
        await trio.testing.wait_all_tasks_blocked()
        queue.hand(0, "started")
        nursery.cancel_scope.cancel()
    assert got == ["started", "cancelled after"]


async def test_an_inbox_is_the_same_for_each_run_of_a_slot() -> None:
    queue = SignalQueue[str](1)
    assert queue.inbox(3) is queue.inbox(3)
    with pytest.raises(ValueError, match="capacity"):
        SignalQueue[str](-1)


@settings(max_examples=60, deadline=None)
@given(
    slots=st.integers(1, 3),
    capacity=st.integers(0, 3),
    script=st.lists(st.one_of(st.just("offer"), st.integers(0, 2)), max_size=40),
)
def test_no_item_is_lost_or_given_twice_and_drops_only_when_all_is_full(
    slots: int, capacity: int, script: list[str | int]
) -> None:
    """Random offers, and slots that finish (an int: that slot is done with its item): each
    item offered is dropped (only when no slot waits and the queue is full) or received
    exactly once. (In which order two slots woken together append what they took is the
    scheduler's: the queue's own order is ``test_with_every_slot_busy...``'s.)"""

    async def main() -> None:
        queue = SignalQueue[int](capacity)
        received: list[int] = []
        done = [trio.Event() for _ in range(slots)]
        busy = [False] * slots

        async def slot(index: int) -> None:
            inbox = queue.inbox(index)
            while True:
                item = await inbox.receive()
                received.append(item)
                busy[index] = True
                await done[index].wait()
                done[index] = trio.Event()
                busy[index] = False

        offered: list[int] = []
        async with trio.open_nursery() as nursery:
            for index in range(slots):
                nursery.start_soon(slot, index)
            await trio.testing.wait_all_tasks_blocked()
            for step in script:
                if step == "offer":
                    item = len(offered)
                    full = len(queue) >= capacity
                    any_waiting = queue.idle() is not None
                    accepted = queue.put_nowait(item)
                    assert accepted == (any_waiting or not full)
                    if accepted:
                        offered.append(item)
                else:
                    assert isinstance(step, int)
                    done[step % slots].set()
                await trio.testing.wait_all_tasks_blocked()
            while len(received) < len(offered):  # every slot done: the queue drains
                for event in done:
                    event.set()
                await trio.testing.wait_all_tasks_blocked()
            nursery.cancel_scope.cancel()
        assert sorted(received) == offered

    trio.run(main)
