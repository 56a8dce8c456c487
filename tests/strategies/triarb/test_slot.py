"""The executor slot on the virtual clock: legs cascaded from actual fills through a scripted
venue and the paper venue, stranded legs unwound or held, timeouts, cancels and claims."""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from decimal import Decimal
from typing import TypeVar

import attrs
import pytest
import trio
import trio.testing
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from mm.model import AccountState, Fill, OrderId, PriceLevel, Side, TradeId
from mm.strategies.triarb.balances import BalanceBoard
from mm.strategies.triarb.cascade import LegOrder
from mm.strategies.triarb.claims import Claims
from mm.strategies.triarb.claims import Reason as ClaimReason
from mm.strategies.triarb.config import TriarbConfig
from mm.strategies.triarb.legs import Triangle
from mm.strategies.triarb.reports import Outcome, TriangleReport
from mm.strategies.triarb.signals import Signal
from mm.strategies.triarb.slot import (
    BALANCE_WAIT_S,
    BEFORE_OUR_TRADE,
    STALE_BOOKS,
    ExecutorSlot,
    LegAck,
    LegDone,
    LegEvent,
    PaperVenue,
)
from mm.strategies.triarb.triangles import BookView, Evaluation, Terms, discover, evaluate
from tests.strategies.triarb.spot import instrument
from tests.strategies.triarb.test_balances import pushed

INSTRUMENTS = {
    i.symbol: i
    for i in (
        instrument("BTC-USDT", "0.1", "0.00001", "0.00001", 0.1),
        instrument("ETH-BTC", "0.00001", "0.0001", "0.0001", 0.00001),
        instrument("ETH-USDT", "0.01", "0.0001", "0.0001", 0.1),
    )
}
FEE = Decimal("0.001")
TERMS = Terms(Decimal(100), 500, dict.fromkeys(INSTRUMENTS, FEE), {})
FORWARD, BACKWARD = discover(INSTRUMENTS.values(), ["USDT"])
assert FORWARD.name == "USDT>BTC>ETH>USDT"
BOOKS = {
    "BTC-USDT": BookView(((49990.0, 1.0, 1),), ((50000.0, 1.0, 1),), 1_748_282_153_719),
    "ETH-BTC": BookView(((0.04999, 10.0, 1),), ((0.05, 10.0, 1),), 1_748_282_153_719),
    "ETH-USDT": BookView(
        ((2600.0, 10.0, 1), (2590.0, 10.0, 1)), ((2601.0, 10.0, 1),), 1_748_282_153_719
    ),
}
CONFIG = TriarbConfig(fill_timeout_s=5.0, max_slippage_bps=10.0)
NOW_MS = 1_748_282_153_719  # the books' stamp, the fills' and the slots' wall clock


def signal(
    corr: int = 1, triangle: Triangle = FORWARD, on: Mapping[str, BookView] = BOOKS
) -> Signal:
    """A signal of ``triangle`` as the evaluator makes it, on the books ``on``."""
    evaluation = evaluate(triangle, on, INSTRUMENTS, TERMS, NOW_MS)
    assert isinstance(evaluation, Evaluation)
    books = tuple(on[symbol] for symbol in evaluation.triangle.symbols)
    assert len(books) == 3
    return Signal(
        corr,
        evaluation.triangle,
        (books[0], books[1], books[2]),
        (NOW_MS, NOW_MS, NOW_MS),
        (NOW_MS, NOW_MS, NOW_MS),
        NOW_MS,
        evaluation,
    )


def fill(order: LegOrder, cloid: str, px: str, sz: str, n: int) -> Fill:
    """A taker fill of ``order`` as an adapter reports it, the fee in the quote."""
    fee = Decimal(px) * Decimal(sz) * FEE
    return Fill(
        coin=order.symbol,
        side=order.side,
        px=float(px),
        sz=float(sz),
        time_ms=NOW_MS,
        oid=OrderId(f"kucoin:{cloid}"),
        tid=TradeId(f"kucoin:{cloid}/{n}"),
        cloid=cloid,
        fee=float(fee),
        fee_token=INSTRUMENTS[order.symbol].quote,
        crossed=True,
        start_position=0.0,
        direction="Buy" if order.side is Side.BUY else "Sell",
        closed_pnl=0.0,
        hash="",
    )


@attrs.frozen
class Reply:
    """What the scripted venue does with one order: refuse it (``error``), or accept it and
    deliver ``fills`` (price, size: "all" for the order's size) then, when ``done``, its end.
    ``gate`` holds the ack until it is set; ``stale`` first delivers an event of another id.
    ``venue_cloid``: the order is known at the venue by that client id (its events carry it
    and the ack says so). ``push``: the balances the venue's user stream pushes once the
    fills are in (to ``ScriptedVenue.board``)."""

    error: str = ""
    fills: tuple[tuple[str, str], ...] = ()
    done: bool = True
    gate: trio.Event | None = None
    stale: bool = False
    venue_cloid: str | None = None
    push: AccountState | None = None


class ScriptedVenue:
    """A live venue's stand-in: answers each order with the next scripted reply."""

    def __init__(self, replies: Sequence[Reply], fills: trio.MemorySendChannel[LegEvent]) -> None:
        self._replies = list(replies)
        self._fills = fills
        self.placed: list[tuple[LegOrder, str]] = []
        self.board: BalanceBoard | None = None

    async def place(self, order: LegOrder, cloid: str, book: BookView) -> LegAck:
        reply = self._replies.pop(0)
        self.placed.append((order, cloid))
        if reply.gate is not None:
            await reply.gate.wait()
        await trio.lowlevel.checkpoint()
        if reply.error:
            return LegAck(None, reply.error)
        if reply.stale:
            self._fills.send_nowait(LegDone("old", Decimal(0)))
        cloid = reply.venue_cloid or cloid
        sizes = []
        for n, (px, sz) in enumerate(reply.fills):
            size = str(order.size) if sz == "all" else sz
            sizes.append(Decimal(size))
            self._fills.send_nowait(fill(order, cloid, px, size, n))
        if reply.done:
            self._fills.send_nowait(LegDone(cloid, sum(sizes, Decimal(0))))
        if reply.push is not None:
            assert self.board is not None
            self.board.on_account(reply.push)
        return LegAck(OrderId(f"kucoin:{cloid}"), "", reply.venue_cloid)


V = TypeVar("V", ScriptedVenue, PaperVenue)


def harness(
    venue_of: Callable[[trio.MemorySendChannel[LegEvent]], V],
    *,
    config: TriarbConfig = CONFIG,
    claims: Claims | None = None,
    slot: int = 0,
    signals: trio.MemoryReceiveChannel[Signal] | None = None,
    outcomes: trio.MemorySendChannel[TriangleReport] | None = None,
    admit: Callable[[Signal], str | None] | None = None,
    balances: BalanceBoard | None = None,
) -> tuple[ExecutorSlot, V]:
    """A slot and its venue: ``venue_of`` builds the venue on the slot's fill channel."""
    fills_in, fills_out = trio.open_memory_channel[LegEvent](math.inf)
    venue = venue_of(fills_in)
    if signals is None:
        _, signals = trio.open_memory_channel[Signal](0)
    if outcomes is None:
        outcomes, _ = trio.open_memory_channel[TriangleReport](10)
    slot_ = ExecutorSlot(
        slot,
        claims or Claims(2),
        config,
        INSTRUMENTS,
        TERMS,
        venue,
        signals,
        fills_out,
        outcomes,
        admit=admit,
        balances=balances,
        wall_ms=lambda: NOW_MS,
    )
    return slot_, venue


def scripted(
    *replies: Reply,
    config: TriarbConfig = CONFIG,
    claims: Claims | None = None,
    slot: int = 0,
    signals: trio.MemoryReceiveChannel[Signal] | None = None,
    outcomes: trio.MemorySendChannel[TriangleReport] | None = None,
    admit: Callable[[Signal], str | None] | None = None,
    balances: BalanceBoard | None = None,
) -> tuple[ExecutorSlot, ScriptedVenue]:
    """A slot whose venue answers with ``replies``, in order."""
    return harness(
        lambda fills: ScriptedVenue(replies, fills),
        config=config,
        claims=claims,
        slot=slot,
        signals=signals,
        outcomes=outcomes,
        admit=admit,
        balances=balances,
    )


def sizes(venue: ScriptedVenue | PaperVenue) -> list[tuple[str, Side, Decimal | None]]:
    return [(order.symbol, order.side, order.size) for order, _ in venue.placed]


FULL = Reply(fills=(("50000", "all"),))


async def test_a_triangle_fills_end_to_end_each_leg_from_the_last_ones_fills(
    autojump_clock: trio.testing.MockClock,
) -> None:
    # 100 USDT at 50050 (50000 + 10 bps) with the fee held: 0.00199 BTC; 0.00199 BTC at 0.05005
    # with the fee held: 0.0397 ETH; all of it sold.
    slot, venue = scripted(
        Reply(fills=(("50000", "0.00199"),)),
        Reply(fills=(("0.05", "0.0397"),)),
        Reply(fills=(("2600", "0.0397"),)),
    )
    report = await slot.take(signal())
    assert report is not None
    assert sizes(venue) == [
        ("BTC-USDT", Side.BUY, Decimal("0.00199")),
        ("ETH-BTC", Side.BUY, Decimal("0.0397")),
        ("ETH-USDT", Side.SELL, Decimal("0.0397")),
    ]
    assert [cloid for _, cloid in venue.placed] == ["tri0-1-L0", "tri0-1-L1", "tri0-1-L2"]
    assert [order.px for order, _ in venue.placed] == [
        Decimal("50050.0"),
        Decimal("0.05005"),
        Decimal("2597.40"),
    ]
    assert report.outcome is Outcome.FILLED
    assert report.spent == Decimal("99.5995")  # 99.5 plus its 0.0995 fee
    assert report.returned == Decimal("103.11678")  # 103.22 less its fee
    assert report.held == {"BTC": Decimal("0.000003015")}  # 0.00199 less 0.0397 * 0.05 * 1.001
    assert slot.outcomes == {Outcome.FILLED: 1}
    assert slot._claims.busy() == {}


async def test_a_partial_fill_cascades_what_was_filled(
    autojump_clock: trio.testing.MockClock,
) -> None:
    slot, venue = scripted(
        Reply(fills=(("50000", "0.001"), ("50010", "0.0005"))),
        Reply(fills=(("0.05", "0.02"),)),  # of 0.0299: 0.0015 / (0.05005 * 1.001) floored
        FULL,
    )
    report = await slot.take(signal())
    assert report is not None
    assert report.outcome is Outcome.FILLED
    assert sizes(venue) == [
        ("BTC-USDT", Side.BUY, Decimal("0.00199")),
        ("ETH-BTC", Side.BUY, Decimal("0.0299")),
        ("ETH-USDT", Side.SELL, Decimal("0.0200")),
    ]


async def test_late_events_of_another_order_are_skipped(
    autojump_clock: trio.testing.MockClock,
) -> None:
    slot, venue = scripted(FULL, attrs.evolve(FULL, stale=True), FULL)
    report = await slot.take(signal())
    assert report is not None
    assert report.outcome is Outcome.FILLED
    assert len(venue.placed) == 3


async def test_a_refused_leg_2_is_unwound_to_the_primary(
    autojump_clock: trio.testing.MockClock,
) -> None:
    slot, venue = scripted(
        Reply(fills=(("50000", "0.00199"),)),
        Reply(error="200004 Balance insufficient!"),
        Reply(fills=(("49990", "all"),)),
    )
    report = await slot.take(signal())
    assert report is not None
    unwind_order, unwind_cloid = venue.placed[2]
    # BTC back to USDT on leg 1's pair, IOC at the deepest bid as evaluated less 10 bps.
    assert (unwind_order.symbol, unwind_order.side) == ("BTC-USDT", Side.SELL)
    assert unwind_order.size == Decimal("0.00199")
    assert unwind_order.px == Decimal("49940.1")
    assert unwind_cloid == "tri0-1-U0"
    assert report.outcome is Outcome.UNWOUND
    assert report.detail == "L1 ETH-BTC rejected: 200004 Balance insufficient!"
    assert [run.fills for run in report.legs[1:]] == [()]
    assert report.held == {}
    # 0.00199 * 49990 = 99.4801 less its 0.0994801 fee, against 99.5995 spent
    assert report.profit == Decimal("99.3806199") - Decimal("99.5995")


async def test_the_hold_policy_keeps_what_a_refused_leg_2_stranded_and_reports_it(
    autojump_clock: trio.testing.MockClock,
) -> None:
    slot, venue = scripted(
        Reply(fills=(("50000", "0.00199"),)),
        Reply(error="200004 Balance insufficient!"),
        config=attrs.evolve(CONFIG, unwind="hold"),
    )
    report = await slot.take(signal())
    assert report is not None
    assert len(venue.placed) == 2
    assert report.outcome is Outcome.FAILED
    assert report.detail == "L1 ETH-BTC rejected: 200004 Balance insufficient!; holding"
    assert report.held == {"BTC": Decimal("0.00199")}
    assert report.profit is None


async def test_a_leg_that_never_ends_times_out_on_the_fill_timeout(
    autojump_clock: trio.testing.MockClock,
) -> None:
    slot, venue = scripted(
        FULL,
        Reply(fills=(("0.05", "0.01"),), done=False),
        Reply(fills=(("2600", "all"),)),  # unwinds the ETH bought
        Reply(fills=(("49990", "all"),)),  # then the BTC left
    )
    start = trio.current_time()
    report = await slot.take(signal())
    assert trio.current_time() - start == CONFIG.fill_timeout_s
    assert report is not None
    assert report.detail == "L1 ETH-BTC timed out after 5s with 1 fills"
    assert report.legs[1].times.filled_ns is None
    assert [(o.symbol, o.side, o.size) for o, _ in venue.placed[2:]] == [
        ("ETH-USDT", Side.SELL, Decimal("0.0100")),
        ("BTC-USDT", Side.SELL, Decimal("0.00148")),  # 0.00199 less 0.01 * 0.05 * 1.001
    ]
    assert report.outcome is Outcome.UNWOUND
    assert set(report.held) == {"BTC"}  # the dust below one lot


async def test_an_unacknowledged_leg_1_times_out_and_fails_holding_nothing(
    autojump_clock: trio.testing.MockClock,
) -> None:
    slot, venue = scripted(Reply(gate=trio.Event()))
    report = await slot.take(signal())
    assert report is not None
    assert report.outcome is Outcome.FAILED
    assert report.detail == "L0 BTC-USDT timed out after 5s unacknowledged"
    assert report.profit == 0
    assert len(venue.placed) == 1


async def test_a_leg_refused_before_it_is_sent_is_unwound_or_aborts(
    autojump_clock: trio.testing.MockClock,
) -> None:
    # Leg 1 fills one lot: 0.00001 BTC buys one lot of ETH at most, below min notional.
    one_lot = Reply(fills=(("50000", "0.00001"),))
    slot, venue = scripted(one_lot, Reply(fills=(("49990", "all"),)))
    report = await slot.take(signal())
    assert report is not None
    assert report.outcome is Outcome.UNWOUND
    assert report.detail.startswith("L1 ETH-BTC not sent: min_notional")
    assert [(o.symbol, o.side, o.size) for o, _ in venue.placed] == [
        ("BTC-USDT", Side.BUY, Decimal("0.00199")),
        ("BTC-USDT", Side.SELL, Decimal("0.00001")),
    ]
    slot, venue = scripted(one_lot, config=attrs.evolve(CONFIG, unwind="hold"))
    report = await slot.take(signal())
    assert report is not None
    assert report.outcome is Outcome.ABORTED
    assert report.held == {"BTC": Decimal("0.00001")}
    assert len(venue.placed) == 1


async def test_a_cancel_sends_no_further_leg_and_reports_what_is_held(
    autojump_clock: trio.testing.MockClock,
) -> None:
    gate = trio.Event()
    outcomes_in, outcomes_out = trio.open_memory_channel[TriangleReport](1)
    signals_in, signals_out = trio.open_memory_channel[Signal](1)
    slot, venue = scripted(
        Reply(fills=(("50000", "0.00199"),), gate=gate),
        FULL,
        FULL,
        outcomes=outcomes_in,
        signals=signals_out,
    )
    signals_in.send_nowait(signal())
    scope = trio.CancelScope()

    async def trading() -> None:
        with scope:
            await slot.run()

    async with trio.open_nursery() as nursery:
        nursery.start_soon(trading)
        await trio.testing.wait_all_tasks_blocked()
        assert len(venue.placed) == 1  # leg 1 in flight
        scope.cancel()
        await trio.sleep(1)  # the slot awaits leg 1's ack through the cancel
        gate.set()
    assert len(venue.placed) == 1
    report = outcomes_out.receive_nowait()
    assert report.outcome is Outcome.ABORTED
    assert report.detail == "cancelled before L1: holding"
    times = report.legs[0].times
    assert times.acked_ns is not None
    assert times.acked_ns - times.fired_ns == 1_000_000_000
    assert report.held == {"BTC": Decimal("0.00199")}
    assert slot._claims.busy() == {}


async def test_a_cancelled_slot_never_waits_to_report(
    autojump_clock: trio.testing.MockClock,
) -> None:
    outcomes_in, outcomes_out = trio.open_memory_channel[TriangleReport](0)
    slot, venue = scripted(FULL, FULL, FULL, outcomes=outcomes_in)
    with trio.CancelScope() as scope:
        scope.cancel()
        report = await slot.take(signal())
    assert report is not None
    assert report.outcome is Outcome.ABORTED
    assert report.detail == "cancelled before L0"
    assert venue.placed == []
    assert slot.unsent == 1  # nobody was receiving: logged instead
    with pytest.raises(trio.WouldBlock):
        outcomes_out.receive_nowait()


async def test_two_slots_never_hold_the_same_pair(
    autojump_clock: trio.testing.MockClock,
) -> None:
    claims = Claims(2, share_primary=True)
    gate = trio.Event()
    signals_in, signals_out = trio.open_memory_channel[Signal](0)
    outcomes_in, outcomes_out = trio.open_memory_channel[TriangleReport](10)
    first, _ = scripted(
        Reply(fills=(("50000", "0.00199"),), gate=gate),
        FULL,
        FULL,
        claims=claims,
        signals=signals_out,
        outcomes=outcomes_in,
    )
    second, other = scripted(
        claims=claims, slot=1, signals=signals_out.clone(), outcomes=outcomes_in.clone()
    )
    async with trio.open_nursery() as nursery:
        nursery.start_soon(first.run)
        await signals_in.send(signal(1))
        nursery.start_soon(second.run)
        await trio.testing.wait_all_tasks_blocked()
        assert claims.held(0) == FORWARD  # leg 1 in flight
        await signals_in.send(signal(2, BACKWARD))  # the same three pairs the other way
        await signals_in.send(signal(3))
        await trio.testing.wait_all_tasks_blocked()
        assert second.dropped == {ClaimReason.SHARED_PAIR: 1, ClaimReason.SAME_TRIANGLE: 1}
        assert other.placed == []
        gate.set()
        await signals_in.aclose()
    assert [outcomes_out.receive_nowait().corr] == ["1"]
    assert claims.busy() == {}


async def test_paper_and_live_give_the_same_amounts_from_the_same_fills(
    autojump_clock: trio.testing.MockClock,
) -> None:
    paper_slot, paper = harness(lambda fills: PaperVenue(INSTRUMENTS, TERMS, fills))
    paper_report = await paper_slot.take(signal())
    assert paper_report is not None
    assert paper_report.outcome is Outcome.FILLED
    replies = [
        Reply(fills=tuple((repr(f.px), repr(f.sz)) for f in run.fills)) for run in paper_report.legs
    ]
    live_slot, live = scripted(*replies)
    live_report = await live_slot.take(signal())
    assert live_report is not None
    assert sizes(live) == sizes(paper)
    assert [o for o, _ in live.placed] == [o for o, _ in paper.placed]
    for paper_run, live_run in zip(paper_report.legs, live_report.legs, strict=True):
        assert (live_run.spent, live_run.received) == (paper_run.spent, paper_run.received)
    assert live_report.profit == paper_report.profit == Decimal("103.11678") - Decimal("99.5995")


LEVELS = st.lists(
    st.tuples(st.integers(0, 30), st.sampled_from(["0.0005", "0.003", "0.05", "2"])),
    min_size=1,
    max_size=4,
)


def side(
    mid: Decimal, tick: Decimal, levels: list[tuple[int, str]], sign: int
) -> tuple[PriceLevel, ...]:
    """A side of a book: the levels ``ticks`` away from ``mid``, best first, sizes as drawn."""
    prices = sorted({mid + sign * (ticks + 1) * tick for ticks, _ in levels}, reverse=sign < 0)
    return tuple((float(px), float(size), 1) for px, (_, size) in zip(prices, levels, strict=False))


@settings(max_examples=60, deadline=None)
@given(
    btc=LEVELS,
    eth_btc=LEVELS,
    eth=LEVELS,
    slippage=st.sampled_from([0.0, 10.0, 80.0]),
    forward=st.booleans(),
)
async def test_paper_and_live_runs_agree_and_no_leg_spends_more_than_it_was_given(
    btc: list[tuple[int, str]],
    eth_btc: list[tuple[int, str]],
    eth: list[tuple[int, str]],
    slippage: float,
    forward: bool,
) -> None:
    books = {
        symbol: BookView(side(mid, tick, levels, -1), side(mid, tick, levels, 1), NOW_MS)
        for symbol, mid, tick, levels in (
            ("BTC-USDT", Decimal(50000), Decimal("0.1"), btc),
            ("ETH-BTC", Decimal("0.05"), Decimal("0.00001"), eth_btc),
            ("ETH-USDT", Decimal(2500), Decimal("0.01"), eth),
        )
    }
    triangle = FORWARD if forward else BACKWARD
    assume(isinstance(evaluate(triangle, books, INSTRUMENTS, TERMS, NOW_MS), Evaluation))
    config = attrs.evolve(CONFIG, max_slippage_bps=slippage, unwind="hold")
    paper_slot, paper = harness(lambda fills: PaperVenue(INSTRUMENTS, TERMS, fills), config=config)
    paper_report = await paper_slot.take(signal(7, triangle, books))
    assert paper_report is not None
    given_ = [signal(7, triangle, books).volume, *(run.received for run in paper_report.legs)]
    for (order, _), held in zip(paper.placed, given_, strict=False):
        assert order.cost <= held
    replies = [
        Reply(fills=tuple((repr(f.px), repr(f.sz)) for f in run.fills)) for run in paper_report.legs
    ]
    live_slot, live = scripted(*replies, config=config)
    live_report = await live_slot.take(signal(7, triangle, books))
    assert live_report is not None
    assert [o for o, _ in live.placed] == [o for o, _ in paper.placed]
    assert live_report.outcome is paper_report.outcome
    assert live_report.held == paper_report.held
    assert live_report.profit == paper_report.profit


async def test_paper_fills_walk_the_book_as_evaluated(
    autojump_clock: trio.testing.MockClock,
) -> None:
    fills_in, fills_out = trio.open_memory_channel[LegEvent](math.inf)
    venue = PaperVenue(INSTRUMENTS, TERMS, fills_in)
    order = LegOrder("ETH-USDT", Side.SELL, Decimal("2580"), Decimal("15"), None, Decimal("15"))
    ack = await venue.place(order, "c1", BOOKS["ETH-USDT"])
    assert ack == LegAck(OrderId("paper:c1"))
    events = [fills_out.receive_nowait() for _ in range(3)]
    assert [(e.px, e.sz) for e in events if isinstance(e, Fill)] == [(2600.0, 10.0), (2590.0, 5.0)]
    assert events[-1] == LegDone("c1", Decimal(15))


async def test_the_claim_is_released_when_the_venue_raises(
    autojump_clock: trio.testing.MockClock,
) -> None:
    class Broken(ScriptedVenue):
        async def place(self, order: LegOrder, cloid: str, book: BookView) -> LegAck:
            raise RuntimeError("bug")

    slot, _ = harness(lambda fills: Broken((), fills))
    with pytest.raises(RuntimeError, match="bug"):
        await slot.take(signal())
    assert slot._claims.busy() == {}


# --- the balance override (await_balance) ------------------------------------------------------

FILL_MS = 1_748_282_153_719  # when the scripted venue's fills happened
AWAIT = attrs.evolve(CONFIG, await_balance=True)


def balanced(*replies: Reply, config: TriarbConfig = AWAIT) -> tuple[ExecutorSlot, ScriptedVenue]:
    """A slot with the balance override on, its venue pushing to the slot's board."""
    board = BalanceBoard()
    slot, venue = scripted(*replies, config=config, balances=board)
    venue.board = board
    return slot, venue


async def test_the_next_legs_input_is_capped_by_the_venues_available_balance(
    autojump_clock: trio.testing.MockClock,
) -> None:
    # Leg 1's fills say 0.00199 BTC; the venue says 0.0015 BTC is available (a fee taken
    # otherwise than computed): leg 2 buys what 0.0015 BTC buys, as the partial fill's does.
    slot, venue = balanced(
        Reply(fills=(("50000", "0.00199"),), push=pushed(FILL_MS, BTC=0.0015, USDT=900.0)),
        Reply(fills=(("0.05", "all"),), push=pushed(FILL_MS, ETH=1.0, BTC=0.0)),
        FULL,
    )
    report = await slot.take(signal())
    assert report is not None
    assert report.outcome is Outcome.FILLED
    assert sizes(venue) == [
        ("BTC-USDT", Side.BUY, Decimal("0.00199")),
        ("ETH-BTC", Side.BUY, Decimal("0.0299")),  # 0.0397 from the fills' 0.00199 BTC
        ("ETH-USDT", Side.SELL, Decimal("0.0299")),  # the balance of ETH is more: the fills'
    ]
    assert slot.balance_waits_missed == 0
    assert trio.current_time() == 0  # each push was in: no wait


async def test_a_balance_the_fills_output_fits_in_changes_nothing(
    autojump_clock: trio.testing.MockClock,
) -> None:
    slot, venue = balanced(
        Reply(fills=(("50000", "0.00199"),), push=pushed(FILL_MS, BTC=0.00199)),
        Reply(fills=(("0.05", "0.0397"),), push=pushed(FILL_MS + 1, ETH=0.0397)),
        FULL,
    )
    report = await slot.take(signal())
    assert report is not None
    assert [size for _, _, size in sizes(venue)] == [
        Decimal("0.00199"),
        Decimal("0.0397"),
        Decimal("0.0397"),
    ]


async def test_no_push_in_time_leaves_the_fills_figure_and_is_counted(
    autojump_clock: trio.testing.MockClock,
) -> None:
    # Leg 1's push is stamped before its fill: not the venue's word on it.
    slot, venue = balanced(
        Reply(fills=(("50000", "0.00199"),), push=pushed(FILL_MS - 1, BTC=0.0001)),
        Reply(fills=(("0.05", "0.0397"),)),
        FULL,
    )
    start = trio.current_time()
    report = await slot.take(signal())
    assert report is not None
    assert report.outcome is Outcome.FILLED
    assert [size for _, _, size in sizes(venue)] == [
        Decimal("0.00199"),
        Decimal("0.0397"),
        Decimal("0.0397"),
    ]
    assert slot.balance_waits_missed == 2  # after legs 1 and 2; none after the last
    assert trio.current_time() - start == 2 * BALANCE_WAIT_S


async def test_without_await_balance_the_board_is_not_read(
    autojump_clock: trio.testing.MockClock,
) -> None:
    slot, venue = balanced(
        Reply(fills=(("50000", "0.00199"),), push=pushed(FILL_MS, BTC=0.0015)),
        Reply(fills=(("0.05", "0.0397"),)),
        FULL,
        config=CONFIG,
    )
    report = await slot.take(signal())
    assert report is not None
    assert sizes(venue)[1] == ("ETH-BTC", Side.BUY, Decimal("0.0397"))
    assert slot.balance_waits_missed == 0
    assert trio.current_time() == 0


# --- admission and the venue's client ids ------------------------------------------------------


async def test_a_claimed_triangle_admit_refuses_is_released_counted_and_never_sent(
    autojump_clock: trio.testing.MockClock,
) -> None:
    asked: list[Signal] = []

    def admit(signal: Signal) -> str | None:
        asked.append(signal)
        assert slot._claims.held(0) == signal.triangle  # asked once the claim is granted
        return "daily loss limit reached"

    outcomes_in, outcomes_out = trio.open_memory_channel[TriangleReport](1)
    slot, venue = scripted(FULL, FULL, FULL, admit=admit, outcomes=outcomes_in)
    assert await slot.take(signal()) is None
    assert len(asked) == 1
    assert slot.refused == {"daily loss limit reached": 1}
    assert (slot.taken, slot.outcomes) == (0, {})
    assert slot._claims.busy() == {}
    assert venue.placed == []
    with pytest.raises(trio.WouldBlock):
        outcomes_out.receive_nowait()


async def test_the_slot_listens_for_the_client_id_the_ack_names(
    autojump_clock: trio.testing.MockClock,
) -> None:
    # A live venue knows each leg by its own client id: the events carry that one.
    slot, venue = scripted(
        attrs.evolve(FULL, venue_cloid="kc-1", stale=True),
        attrs.evolve(FULL, venue_cloid="kc-2"),
        attrs.evolve(FULL, venue_cloid="kc-3"),
    )
    report = await slot.take(signal())
    assert report is not None
    assert report.outcome is Outcome.FILLED
    assert [cloid for _, cloid in venue.placed] == ["tri0-1-L0", "tri0-1-L1", "tri0-1-L2"]
    assert [run.fills[0].cloid for run in report.legs] == ["kc-1", "kc-2", "kc-3"]
    assert trio.current_time() == 0  # no leg waited for its timeout


# --- stale signals -------------------------------------------------------------------------------


async def test_a_signal_past_the_book_age_when_taken_is_dropped_and_sends_nothing(
    autojump_clock: trio.testing.MockClock,
) -> None:
    slot, venue = scripted(Reply(fills=(("50000", "0.00199"),)))
    age = CONFIG.max_book_age_ms
    waited = attrs.evolve(signal(), book_times_ms=(NOW_MS - age - 1, NOW_MS, NOW_MS))
    assert await slot.take(waited) is None
    assert slot.refused == {STALE_BOOKS: 1}
    assert venue.placed == []
    assert slot._claims.busy() == {}
    just_in_age = attrs.evolve(signal(), book_times_ms=(NOW_MS - age, NOW_MS, NOW_MS))
    slot_2, venue_2 = scripted(Reply(error="no"))
    assert await slot_2.take(just_in_age) is not None  # at the limit: taken
    assert len(venue_2.placed) == 1


async def test_books_from_before_our_last_trade_on_a_pair_are_not_traded_again(
    autojump_clock: trio.testing.MockClock,
) -> None:
    claims = Claims(2)
    first, _ = scripted(
        Reply(fills=(("50000", "0.00199"),)),
        Reply(fills=(("0.05", "0.0397"),)),
        Reply(fills=(("2600", "0.0397"),)),
        claims=claims,
    )
    report = await first.take(signal())  # its fills are stamped NOW_MS
    assert report is not None
    assert report.outcome is Outcome.FILLED
    assert [claims.traded_ms(symbol) for symbol in FORWARD.symbols] == [NOW_MS] * 3
    second, venue = scripted(Reply(error="no"), claims=claims, slot=1)
    before = attrs.evolve(signal(2), book_times_ms=(NOW_MS, NOW_MS - 1, NOW_MS))
    assert await second.take(before) is None  # ETH-BTC's book predates the fill on it
    assert second.refused == {BEFORE_OUR_TRADE: 1}
    assert venue.placed == []
    assert await second.take(signal(3)) is not None  # books stamped with the fills: taken
    assert len(venue.placed) == 1


def test_claims_keep_each_pairs_latest_fill() -> None:
    claims = Claims(2)
    assert claims.claim(0, FORWARD) is True
    claims.release(0, 5_000)
    assert claims.claim(1, BACKWARD) is True
    claims.release(1, 4_000)  # an older fill does not move the mark back
    claims.claim(0, FORWARD)
    claims.release(0)  # traded nothing
    assert {symbol: claims.traded_ms(symbol) for symbol in FORWARD.symbols} == dict.fromkeys(
        FORWARD.symbols, 5_000
    )
    assert claims.traded_ms("SOL-USDT") == -1
