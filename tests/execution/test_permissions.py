"""The permission board: slot combinations (the strictest wins, its owner's reason, the widest
factor), one order judged (reduce-only never lets an increasing order through), slots with one
owner each, symbol grants over the slot's grant, and a wake-up on every write."""

from __future__ import annotations

import pytest
import trio
import trio.testing
from hypothesis import given, settings
from hypothesis import strategies as st

from mm.execution.permissions import (
    OPEN,
    SOURCES,
    Grant,
    Level,
    Permission,
    PermissionBoard,
    Source,
    allows,
    combine,
    reduces,
)
from mm.model import Side

levels = st.sampled_from(list(Level))
sides = st.sampled_from(list(Side))
positions = st.one_of(st.just(0.0), st.floats(-1e6, 1e6, allow_nan=False, allow_infinity=False))


@st.composite
def grants(draw: st.DrawFn) -> Grant:
    level = draw(levels)
    reason = None if level is Level.OPEN else draw(st.text(min_size=1, max_size=8))
    return Grant(level, reason, draw(st.floats(1.0, 5.0)))


slot_grants = st.dictionaries(st.sampled_from(SOURCES), grants())


@settings(deadline=None)
@given(slot_grants)
def test_the_strictest_grant_wins_with_its_owners_reason(found: dict[Source, Grant]) -> None:
    permission = combine(found)
    strictest = max((grant.level for grant in found.values()), default=Level.OPEN)
    assert permission.level is strictest
    # The reason is the first owner's (in SOURCES order) among those at the strictest level.
    winners = [found[s] for s in SOURCES if s in found and found[s].level is strictest]
    assert permission.reason == (winners[0].reason if strictest is not Level.OPEN else None)
    assert permission.widen == max((g.widen for g in found.values()), default=1.0)
    # Adding an OPEN slot never loosens nor tightens anything.
    for source in SOURCES:
        if source not in found:
            assert combine({**found, source: OPEN}) == permission


@settings(deadline=None)
@given(slot_grants, slot_grants)
def test_more_restriction_never_allows_more(
    first: dict[Source, Grant], second: dict[Source, Grant]
) -> None:
    """Combining two boards' slots is at least as strict as either alone."""
    merged = {**first}
    for source, grant in second.items():
        if source not in merged or grant.level > merged[source].level:
            merged[source] = grant
    both = combine(merged)
    assert both.level >= combine(first).level
    assert both.level >= combine(second).level


@settings(deadline=None)
@given(slot_grants, sides, positions, st.booleans())
def test_one_order_judged(
    found: dict[Source, Grant], side: Side, position: float, reduce_only: bool
) -> None:
    permission = combine(found)
    allowed = allows(permission, side, position, reduce_only=reduce_only)
    if permission.level is not Level.OPEN and not reduces(side, position):
        assert not allowed  # never an increasing order (nor any order when flat)
    if permission.level is Level.HALTED:
        assert not allowed
    if permission.level is Level.PULLED:
        assert allowed == (reduce_only and reduces(side, position))
    if permission.level is Level.REDUCE_ONLY:
        assert allowed == reduces(side, position)
    if permission.level is Level.OPEN:
        assert allowed


def test_reduces() -> None:
    assert reduces(Side.SELL, 2.0)
    assert reduces(Side.BUY, -2.0)
    assert not reduces(Side.BUY, 2.0)
    assert not reduces(Side.SELL, -2.0)
    assert not reduces(Side.BUY, 0.0)
    assert not reduces(Side.SELL, 0.0)


def test_the_permissions_words() -> None:
    assert Permission().closed is None
    assert not Permission().reduce_only
    reduce = Permission(Level.REDUCE_ONLY, "risk: reduce only")
    assert reduce.reduce_only
    assert reduce.closed is None
    assert reduce.halted is None
    pulled = Permission(Level.PULLED, "session phase force_flat")
    assert pulled.closed == "session phase force_flat"
    assert pulled.halted is None
    halted = Permission(Level.HALTED, "the kill switch is tripped")
    assert halted.closed == halted.halted == "the kill switch is tripped"


def test_a_grant_says_why_and_widens_only() -> None:
    with pytest.raises(ValueError, match="must say why"):
        Grant(Level.PULLED)
    with pytest.raises(ValueError, match="widen factor"):
        Grant(widen=0.5)
    with pytest.raises(ValueError, match="widen factor"):
        Grant(widen=float("nan"))


def test_each_slot_has_one_owner() -> None:
    board = PermissionBoard()
    board.slot(Source.RISK)
    with pytest.raises(RuntimeError, match="risk slot"):
        board.slot(Source.RISK)


def test_symbol_grants_over_the_slots_grant() -> None:
    board = PermissionBoard()
    session = board.slot(Source.SESSION)
    flattener = board.slot(Source.FLATTENER)
    risk = board.slot(Source.RISK)
    session.set(Grant(Level.PULLED, "session phase closed"))  # untracked symbols
    session.set_symbol("BTC", OPEN)
    session.set_symbol("ETH", Grant(Level.REDUCE_ONLY, "session phase close_only"))
    assert board.permission("DOGE").closed == "session phase closed"
    assert board.permission("BTC") == Permission()
    assert board.permission("ETH").reduce_only
    assert board.may_send("ETH", Side.SELL, 1.0)
    assert not board.may_send("ETH", Side.BUY, 1.0)
    flattener.set_symbol("BTC", Grant(Level.PULLED, "the flattener holds the symbol"))
    assert board.permission("BTC").closed == "the flattener holds the symbol"
    assert board.may_send("BTC", Side.SELL, 1.0, reduce_only=True)  # the flattener's own
    assert not board.may_send("BTC", Side.SELL, 1.0)  # the strategy's
    flattener.clear_symbol("BTC")
    assert board.permission("BTC") == Permission()
    risk.set(Grant(widen=1.5))
    assert board.permission("BTC") == Permission(widen=1.5)
    assert board.halted(["BTC", "ETH"]) is None


def test_halted_names_the_first_owner() -> None:
    board = PermissionBoard()
    autonomy = board.slot(Source.AUTONOMY)
    killswitch = board.slot(Source.KILLSWITCH)
    autonomy.set(Grant(Level.HALTED, "the mode is HALT"))
    assert board.halted() == "the mode is HALT"
    killswitch.set(Grant(Level.HALTED, "the kill switch is tripped"))
    assert board.halted() == "the kill switch is tripped"
    assert board.permission("BTC").closed == "the kill switch is tripped"
    assert board.grant(Source.KILLSWITCH).level is Level.HALTED
    assert board.grant(Source.RISK) == OPEN
    killswitch.set(OPEN)
    autonomy.set(OPEN)
    assert board.halted() is None


async def test_a_write_wakes_the_waiters_and_only_a_change_does() -> None:
    board = PermissionBoard()
    risk = board.slot(Source.RISK)
    woken: list[Permission] = []

    async def wait() -> None:
        await board.wait_changed()
        woken.append(board.permission("BTC"))

    async with trio.open_nursery() as nursery:
        nursery.start_soon(wait)
        await trio.testing.wait_all_tasks_blocked()
        risk.set(OPEN)  # the same grant: no change
        await trio.testing.wait_all_tasks_blocked()
        assert woken == []
        risk.set(Grant(Level.PULLED, "risk: no new orders"))
        await trio.testing.wait_all_tasks_blocked()
    assert woken == [Permission(Level.PULLED, "risk: no new orders")]


symbols = st.sampled_from(["BTC", "ETH"])
writes = st.one_of(
    st.tuples(st.just("set"), st.sampled_from(SOURCES), st.none(), grants()),
    st.tuples(st.just("set_symbol"), st.sampled_from(SOURCES), symbols, grants()),
    st.tuples(st.just("clear_symbol"), st.sampled_from(SOURCES), symbols, st.none()),
)


@settings(max_examples=200)
@given(st.lists(st.tuples(writes, symbols), max_size=12))
def test_a_read_after_any_write_is_the_slots_combined(
    steps: list[tuple[tuple[str, Source, str | None, Grant | None], str]],
) -> None:
    """The board remembers each symbol's permission between writes: every read, before and
    after any write, is what combining the slots' grants gives at that moment."""
    board = PermissionBoard()
    slots = {source: board.slot(source) for source in SOURCES}
    for (op, source, symbol, grant), read in steps:
        for coin in ("BTC", "ETH"):
            assert board.permission(coin) == combine({s: slots[s].of(coin) for s in SOURCES})
        if op == "set":
            assert grant is not None
            slots[source].set(grant)
        elif op == "set_symbol":
            assert symbol is not None
            assert grant is not None
            slots[source].set_symbol(symbol, grant)
        else:
            assert symbol is not None
            slots[source].clear_symbol(symbol)
        assert board.permission(read) == combine({s: slots[s].of(read) for s in SOURCES})
