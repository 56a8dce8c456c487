"""The balance board: the venue's pushed balances, older pushes ignored, and a wait for a push
stamped at or after a time (on the virtual clock)."""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal

import trio
import trio.testing
from hypothesis import given, settings
from hypothesis import strategies as st

from mm.model import AccountState, Balance
from mm.strategies.triarb.balances import BalanceBoard


def pushed(time_ms: int, **available: float) -> AccountState:
    """A spot account's state as the user stream pushes it: ``available`` of each currency,
    nothing on hold."""
    balances = tuple(Balance(c, amount, amount, 0.0) for c, amount in available.items())
    return AccountState(time_ms, 0.0, 0.0, 0.0, (), balances)


async def test_a_push_gives_the_available_balances_as_exact_decimals() -> None:
    board = BalanceBoard()
    board.on_account(
        AccountState(
            1_000,
            0.0,
            0.0,
            0.0,
            (),
            (Balance("BTC", 0.3, 0.1, 0.2), Balance("USDT", 99.7, 99.7, 0)),
        )
    )
    available = await board.after(1_000)
    # 0.1 as it reads, not the binary float's 0.1000000000000000055511151231257827...
    assert available == {"BTC": Decimal("0.1"), "USDT": Decimal("99.7")}
    assert board.pushes == 1


async def test_an_older_push_and_a_push_without_balances_are_ignored() -> None:
    board = BalanceBoard()
    board.on_account(pushed(2_000, BTC=1.0))
    board.on_account(pushed(1_999, BTC=5.0))  # older than the one held
    board.on_account(AccountState(3_000, 1e6, 0.0, 1e6, ()))  # a venue of positions
    assert board.pushes == 1
    assert await board.after(2_000) == {"BTC": Decimal("1.0")}
    board.on_account(pushed(2_000, BTC=2.0))  # as new as the one held: taken
    assert await board.after(1_500) == {"BTC": Decimal("2.0")}
    assert board.pushes == 2


async def test_after_waits_for_a_push_stamped_at_or_after_the_time(
    autojump_clock: trio.testing.MockClock,
) -> None:
    board = BalanceBoard()
    board.on_account(pushed(1_000, ETH=1.0))
    got: list[Mapping[str, Decimal]] = []

    async def wait() -> None:
        got.append(await board.after(1_500))

    async with trio.open_nursery() as nursery:
        nursery.start_soon(wait)
        await trio.testing.wait_all_tasks_blocked()
        board.on_account(pushed(1_499, ETH=2.0))  # newer, still before the fill it waits for
        await trio.sleep(1)
        assert got == []
        board.on_account(pushed(1_500, ETH=3.0))
    assert got == [{"ETH": Decimal("3.0")}]


async def test_a_wait_never_answered_is_bounded_by_its_caller(
    autojump_clock: trio.testing.MockClock,
) -> None:
    board = BalanceBoard()
    start = trio.current_time()
    with trio.move_on_after(1.0) as scope:
        await board.after(0)  # no push ever held: even time 0 waits
    assert scope.cancelled_caught
    assert trio.current_time() - start == 1.0


@settings(max_examples=50, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 20), st.integers(0, 1_000)), min_size=1, max_size=12))
async def test_the_board_holds_the_newest_push_whatever_their_order(
    pushes: list[tuple[int, int]],
) -> None:
    board = BalanceBoard()
    newest: tuple[int, int] | None = None
    for time_ms, units in pushes:
        board.on_account(pushed(time_ms, USDT=units / 100))
        if newest is None or time_ms >= newest[0]:
            newest = (time_ms, units)
    assert newest is not None
    assert await board.after(newest[0]) == {"USDT": Decimal(repr(newest[1] / 100))}
