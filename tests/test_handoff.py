"""A handed value is read at once or waited for, and a newer one replaces it."""

from __future__ import annotations

import trio

from mm.handoff import Handoff


def latest(handoff: Handoff[str]) -> str | None:
    return handoff.latest  # read afresh each time (mypy would keep a narrowed property)


async def test_a_value_is_none_until_handed_then_the_latest() -> None:
    handoff = Handoff[str]()
    assert latest(handoff) is None
    handoff.hand("first")
    assert latest(handoff) == "first"
    assert await handoff.wait() == "first"
    handoff.hand("second")  # a restarted child hands its new one
    assert latest(handoff) == "second"
    assert await handoff.wait() == "second"


async def test_a_waiter_gets_the_value_once_it_is_handed(autojump_clock: trio.abc.Clock) -> None:
    handoff = Handoff[int]()
    got: list[int] = []

    async def waiter() -> None:
        got.append(await handoff.wait())

    async with trio.open_nursery() as nursery:
        nursery.start_soon(waiter)
        await trio.sleep(5)
        assert got == []  # nothing handed yet: still waiting
        handoff.hand(7)
    assert got == [7]
