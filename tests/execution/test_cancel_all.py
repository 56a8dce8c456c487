"""The one cancel-all: re-read until the venue shows none, every path, lost replies, the report."""

from __future__ import annotations

import math
from collections.abc import Sequence

import attrs
import pytest
import trio
import trio.testing

from mm.execution.cancel_all import (
    KILL,
    POLICIES,
    CancelAll,
    CancelAllPolicy,
    Purpose,
    cancel_all,
    first_answer,
    paths_of,
)
from mm.model import CancelOrder, CancelResult, OpenOrder, OrderId, Rejected, Side
from mm.venues.sim.faults import FaultConfig
from tests.ids import hl_oid
from tests.venues.hyperliquid.harness import order, passive, setup

POLICY = CancelAllPolicy(deadline_s=5.0, hedge_s=0.25, request_timeout_s=2.0, settle_s=0.2)


def resting(coin: str, oid: int) -> OpenOrder:
    return OpenOrder(coin, Side.BUY, 90.0, 1.0, 1.0, hl_oid(oid), None, 0)


@attrs.define
class Book:
    """The venue's open orders, shared by every path to it."""

    orders: dict[OrderId, OpenOrder] = attrs.field(factory=dict)
    stuck: bool = False  # cancels are acknowledged but nothing goes
    late: list[OpenOrder] = attrs.field(factory=list)  # land after the first read showing none
    reads_empty: int = 0

    def read(self) -> list[OpenOrder]:
        if not self.orders and self.late:
            self.reads_empty += 1
            if self.reads_empty == 1:
                return []
            for landed in self.late:
                self.orders[landed.oid] = landed
            self.late.clear()
        return list(self.orders.values())

    def cancel(self, cancels: Sequence[CancelOrder]) -> list[CancelResult]:
        results: list[CancelResult] = []
        for cancel in cancels:
            assert cancel.oid is not None
            if cancel.oid in self.orders and not self.stuck:
                del self.orders[cancel.oid]
                results.append(None)
            elif self.stuck:
                results.append(None)
            else:
                results.append(Rejected("Order was never placed, already canceled, or filled."))
        return results


@attrs.define
class Path:
    """One way to the venue: it may lose every reply (the request still acts) or fail fast."""

    book: Book
    name: str
    loses_replies: bool = False
    fails: bool = False
    calls: list[str] = attrs.field(factory=list)

    async def open_orders(self) -> list[OpenOrder]:
        self.calls.append("open_orders")
        await self._reach()
        return self.book.read()

    async def cancel(self, cancels: Sequence[CancelOrder]) -> list[CancelResult]:
        self.calls.append("cancel")
        await self._reach()
        return self.book.cancel(cancels)

    async def _reach(self) -> None:
        await trio.sleep(0.001)
        if self.fails:  # refused before it acted (a socket down, a 5xx)
            raise ConnectionError(f"{self.name}: refused")


class LosingPath(Path):
    """Acts on every request but its reply never comes (a lost WebSocket ack)."""

    async def open_orders(self) -> list[OpenOrder]:
        self.calls.append("open_orders")
        self.book.read()
        await trio.sleep_forever()
        raise AssertionError("unreachable")

    async def cancel(self, cancels: Sequence[CancelOrder]) -> list[CancelResult]:
        self.calls.append("cancel")
        self.book.cancel(cancels)
        await trio.sleep_forever()
        raise AssertionError("unreachable")


def venue_with(*oids: int, coin: str = "BTC") -> Book:
    return Book({hl_oid(oid): resting(coin, oid) for oid in oids})


async def test_cancels_everything_and_confirms_zero(autojump_clock: trio.testing.MockClock) -> None:
    book = venue_with(1, 2, 3)
    path = Path(book, "ws")
    report = await cancel_all([path], POLICY)
    assert report.zero
    assert report.canceled == 3
    assert report.remaining == ()
    assert report.attempts == 1
    # read, cancel, read (none), and the confirming read confirm_s later
    assert path.calls == ["open_orders", "cancel", "open_orders", "open_orders"]
    assert report.seconds_to_zero == pytest.approx(POLICY.settle_s, abs=0.01)
    assert report.seconds == pytest.approx(POLICY.settle_s + POLICY.confirm_s, abs=0.01)
    assert "3 canceled, none open" in report.describe()


async def test_a_lost_reply_costs_the_hedge_not_the_cancel(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """Every reply on the first path is lost (the requests act): the second path answers."""
    book = venue_with(1, 2)
    websocket = LosingPath(book, "ws")
    rest = Path(book, "rest")
    report = await cancel_all([websocket, rest], POLICY)
    assert report.zero
    assert report.remaining == ()
    assert book.orders == {}
    assert "cancel" in rest.calls
    assert "cancel" in websocket.calls
    # each of the three reads before zero, and the cancel, waited one hedge for the socket
    assert report.seconds_to_zero is not None
    assert report.seconds_to_zero < 3 * POLICY.hedge_s + POLICY.settle_s + 0.05
    assert report.seconds < POLICY.deadline_s / 2


async def test_a_path_failing_fast_hands_over_at_once(
    autojump_clock: trio.testing.MockClock,
) -> None:
    book = venue_with(7)
    report = await cancel_all([Path(book, "ws", fails=True), Path(book, "rest")], POLICY)
    assert report.zero
    assert report.canceled == 1
    assert report.seconds_to_zero == pytest.approx(POLICY.settle_s, abs=0.02)


async def test_an_order_landing_after_the_first_zero_is_caught_by_the_confirming_read(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """A slot's order in flight when trading stopped lands after the venue first showed none."""
    book = venue_with(1)
    book.late.append(resting("ETH", 9))
    report = await cancel_all([Path(book, "ws")], POLICY)
    assert report.zero
    assert report.canceled == 2
    assert book.orders == {}
    assert report.attempts == 2


async def test_what_is_left_at_the_deadline_is_reported_by_coin_and_oid(
    autojump_clock: trio.testing.MockClock,
) -> None:
    book = venue_with(4, 5)
    book.stuck = True
    report = await cancel_all([Path(book, "ws")], POLICY)
    assert not report.zero
    assert report.remaining == (("BTC", hl_oid(4)), ("BTC", hl_oid(5)))
    assert report.seconds_to_zero is None
    assert report.attempts > 2
    assert report.seconds == pytest.approx(POLICY.deadline_s, abs=0.01)
    assert "2 still open" in report.describe()
    assert f"BTC {hl_oid(4)}, BTC {hl_oid(5)}" in report.describe()
    assert report.to_json()["remaining"] == [
        {"coin": "BTC", "oid": hl_oid(4)},
        {"coin": "BTC", "oid": hl_oid(5)},
    ]


async def test_a_venue_nobody_can_read_is_said_so(autojump_clock: trio.testing.MockClock) -> None:
    book = venue_with(1)
    sent = trio.Event()
    report = await cancel_all(
        [LosingPath(book, "ws"), Path(book, "rest", fails=True)], POLICY, cancel_sent=sent
    )
    assert not report.zero
    assert report.reads == 0
    assert report.attempts == 0
    assert "could not be read" in report.describe()
    assert sent.is_set()  # nothing will be sent: whoever waits to arm a backstop goes ahead


async def test_only_the_coins_asked_for(autojump_clock: trio.testing.MockClock) -> None:
    book = venue_with(1, 2)
    book.orders[hl_oid(3)] = resting("ETH", 3)
    report = await cancel_all([Path(book, "ws")], POLICY, coins=["ETH"])
    assert report.zero
    assert report.canceled == 1
    assert sorted(book.orders) == [hl_oid(1), hl_oid(2)]


async def test_spared_orders_are_left_and_the_canceled_ones_are_named(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """Another client's orders (``spare``) are neither canceled nor waited for; the report
    names what was canceled, even when a reply was lost (gone at the next read)."""
    book = venue_with(1, 2, 3)
    theirs = attrs.evolve(resting("BTC", 4), cloid="0x" + "ab" * 16)
    book.orders[hl_oid(4)] = theirs
    report = await cancel_all(
        [LosingPath(book, "ws"), Path(book, "rest", fails=True), Path(book, "rest2")],
        POLICY,
        spare=lambda o: o.cloid is not None,
    )
    assert report.zero
    assert sorted(book.orders) == [hl_oid(4)]
    assert report.canceled == 3
    assert [o.oid for o in report.canceled_orders] == [hl_oid(1), hl_oid(2), hl_oid(3)]
    assert report.canceled_orders[0] == resting("BTC", 1)
    assert report.spared == (theirs,)
    assert report.remaining == ()
    assert "3 canceled, none open" in report.describe()
    assert report.describe().endswith(", 1 left alone")


async def test_max_rounds_bounds_the_cancel_requests(
    autojump_clock: trio.testing.MockClock,
) -> None:
    book = venue_with(1)
    book.stuck = True
    path = Path(book, "ws")
    report = await cancel_all([path], attrs.evolve(POLICY, max_rounds=3))
    assert path.calls.count("cancel") == 3
    assert report.attempts == 3
    assert report.remaining == (("BTC", hl_oid(1)),)


async def test_cancel_sent_is_set_once_the_first_cancel_is_answered(
    autojump_clock: trio.testing.MockClock,
) -> None:
    book = venue_with(1)
    sent = trio.Event()
    seen: list[int] = []

    async def watch() -> None:
        await sent.wait()
        seen.append(len(book.orders))

    async with trio.open_nursery() as nursery:
        nursery.start_soon(watch)
        await cancel_all([Path(book, "ws")], POLICY, cancel_sent=sent)
    assert seen == [0]  # set after the cancel acted, not before


async def test_first_answer_collects_the_errors_of_every_path(
    autojump_clock: trio.testing.MockClock,
) -> None:
    errors: list[str] = []

    async def fail(name: str) -> None:
        raise RuntimeError(f"{name} says no")

    answered, answer = await first_answer(["a", "b"], fail, POLICY, errors)
    assert (answered, answer) == (False, None)
    assert errors == ["RuntimeError: a says no", "RuntimeError: b says no"]


async def test_against_the_simulator_with_every_websocket_reply_lost() -> None:
    """The real client: its socket loses every post reply, so only REST alone can answer."""
    with trio.fail_after(30):
        async with setup(faults=FaultConfig(ws_drop_post_replies=1.0)) as (venue, client):
            rest = client.over_rest()
            assert rest.ws is None
            assert client.ws is not None
            px = passive(venue, Side.BUY, away=0.05)
            await rest.place([order(px), order(px * 0.99)])
            assert len(venue.engine.open_orders(client.account)) == 2
            first, second = paths_of(client)
            assert first is client
            assert second.ws is None
            report = await cancel_all(paths_of(client), KILL)
            assert report.zero, report
            assert venue.engine.open_orders(client.account) == []
            assert report.canceled == 2
            # The socket's own timeout is 5 s; the hedge answered well before.
            assert report.seconds_to_zero is not None
            assert report.seconds_to_zero < client.post_timeout_s / 2
            assert not math.isnan(report.seconds)


# --- CancelAll: the one entry point, its deadline policy ------------------------------------


def test_every_purpose_has_its_deadline() -> None:
    assert set(POLICIES) == set(Purpose)
    assert POLICIES[Purpose.KILL].deadline_s == 10.0
    assert {POLICIES[p].deadline_s for p in (Purpose.STOP, Purpose.HALT, Purpose.CRASH)} == {5.0}
    assert POLICIES[Purpose.FLATTEN].deadline_s == 2.0


@pytest.mark.parametrize("purpose", list(Purpose))
async def test_a_stuck_venue_is_given_up_at_the_purposes_deadline(
    autojump_clock: trio.testing.MockClock, purpose: Purpose
) -> None:
    book = venue_with(1, 2)
    book.stuck = True
    canceller = CancelAll(lambda: Path(book, "ws"))
    started = trio.current_time()
    report = await canceller(purpose)
    assert report is not None
    assert not report.zero
    assert report.remaining == (("BTC", hl_oid(1)), ("BTC", hl_oid(2)))
    assert trio.current_time() - started == pytest.approx(POLICIES[purpose].deadline_s, abs=0.5)


async def test_only_the_coins_asked_for_and_cancel_sent(
    autojump_clock: trio.testing.MockClock,
) -> None:
    book = Book({hl_oid(1): resting("BTC", 1), hl_oid(2): resting("ETH", 2)})
    sent = trio.Event()
    report = await CancelAll(lambda: Path(book, "ws"))(
        Purpose.FLATTEN, coins=["ETH"], cancel_sent=sent
    )
    assert report is not None
    assert report.zero
    assert sent.is_set()
    assert list(book.orders) == [hl_oid(1)]


async def test_without_a_venue_client_nothing_is_canceled_and_it_says_so(
    autojump_clock: trio.testing.MockClock,
) -> None:
    sent = trio.Event()
    assert await CancelAll(lambda: None)(Purpose.KILL, cancel_sent=sent) is None
    assert sent.is_set()  # a kill's backstop is not left waiting for a cancel that never comes


@pytest.mark.parametrize(
    ("purpose", "finishes"),
    [
        (Purpose.STOP, True),
        (Purpose.HALT, True),
        (Purpose.CRASH, True),
        (Purpose.KILL, False),
        (Purpose.FLATTEN, False),
    ],
)
async def test_stop_halt_and_crash_run_to_the_end_when_their_caller_is_cancelled(
    autojump_clock: trio.testing.MockClock, purpose: Purpose, finishes: bool
) -> None:
    """The stop, HALT and a crash cancel everything whoever is cancelled meanwhile; a rearm ends
    the kill switch's sweep and a HALT or its deadline the flattener's at once."""
    book = venue_with(1, 2)
    book.stuck = True
    canceller = CancelAll(lambda: Path(book, "ws"))
    started = trio.current_time()
    with trio.move_on_after(1.0):
        await canceller(purpose)
    elapsed = trio.current_time() - started
    if finishes:
        assert elapsed == pytest.approx(POLICIES[purpose].deadline_s, abs=0.5)
    else:
        assert elapsed == pytest.approx(1.0)
