"""The multi-leg executor's refusals and timeouts, against a router that records what it is
handed, or one that has the dispatcher hear the venue fill it whole while its fills never
reach the executor (the venue's answers and fills are the e2e tests':
tests/e2e/test_multi_leg.py and test_multi_leg_kucoin.py)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from decimal import Decimal
from typing import cast

import attrs
import trio
import trio.testing

from mm.execution.commands import GroupState, Leg, MultiLeg
from mm.execution.dispatch import Dispatcher
from mm.execution.legs import LegExecutor
from mm.execution.orders import OrderRouter
from mm.model import Fill, Filled, Instrument, OrderId, PlaceOrder, Side, Tif, TradeId


def instrument(coin: str) -> Instrument:
    lot = Decimal("0.01")
    return Instrument("fake", coin, coin, "USD", Decimal("0.1"), lot, lot, 0.0)


@attrs.define
class Router:
    """Records each request and answers it (the fills never come); ``fail`` raises."""

    requests: list[list[PlaceOrder]] = attrs.field(factory=list)
    fail: bool = False
    ids: int = 0

    def new_client_id(self) -> str:
        self.ids += 1
        return f"0x{self.ids:032x}"

    async def place(self, orders: Sequence[PlaceOrder]) -> None:
        self.requests.append(list(orders))
        if self.fail:
            raise RuntimeError("connection reset")
        await trio.lowlevel.checkpoint()


def executor(router: Router | None) -> LegExecutor:
    return LegExecutor(lambda: cast(OrderRouter | None, router), Dispatcher(), instrument)


def allow_all(order: PlaceOrder) -> str | None:
    return None


async def test_legs_that_cannot_go_stop_their_group_and_say_why(
    autojump_clock: trio.testing.MockClock,
) -> None:
    router = Router()
    legs = executor(router)
    market = MultiLeg("m", (Leg("BTC", Side.BUY, 1.0),))
    tiny = MultiLeg("t", (Leg("BTC", Side.BUY, 0.004, 100.0),))
    groups = await legs.execute(market, tiny, allow=allow_all, leg_timeout_s=1.0)
    assert [g.reason for g in groups] == [
        "leg 0 (buy BTC) refused: a market leg needs a price: this executor sends IOC legs only",
        "leg 0 (buy BTC) refused: 0.004 is below the instrument's lot or minimum size",
    ]
    assert router.requests == []
    (refused,) = await legs.execute(
        MultiLeg("r", (Leg("BTC", Side.BUY, 1.0, 100.0),)),
        allow=lambda order: "closed: session phase init",
        leg_timeout_s=1.0,
    )
    assert refused.reason == "leg 0 (buy BTC) refused: closed: session phase init"
    assert router.requests == []
    (down,) = await executor(None).execute(
        MultiLeg("d", (Leg("BTC", Side.BUY, 1.0, 100.0),)), allow=allow_all, leg_timeout_s=1.0
    )
    assert down.reason == "leg 0 (buy BTC) refused: the venue client is not up"


async def test_independent_groups_share_a_request_and_time_out_without_fills(
    autojump_clock: trio.testing.MockClock,
) -> None:
    router = Router()
    legs = executor(router)
    btc = MultiLeg("a", (Leg("BTC", Side.SELL, 0.5, 100.0, reduce_only=True),))
    eth = MultiLeg("b", (Leg("ETH", Side.BUY, 1.25, 200.0), Leg("SOL", Side.SELL, 3.0, 20.0)))
    started = trio.current_time()
    groups = await legs.execute(btc, eth, allow=allow_all, leg_timeout_s=2.0)
    assert trio.current_time() - started == 2.0
    (request,) = router.requests  # both first legs, one request; the SOL leg never left
    assert [(o.coin, o.side, o.px, o.sz, o.tif, o.reduce_only) for o in request] == [
        ("BTC", Side.SELL, 100.0, 0.5, Tif.IOC, True),
        ("ETH", Side.BUY, 200.0, 1.25, Tif.IOC, False),
    ]
    assert [g.state for g in groups] == [GroupState.STOPPED, GroupState.STOPPED]
    assert [g.reason for g in groups] == [
        "leg 0 (sell BTC) timed out",
        "leg 0 (buy ETH) timed out",
    ]


async def test_a_failed_request_stops_the_group(autojump_clock: trio.testing.MockClock) -> None:
    router = Router(fail=True)
    (group,) = await executor(router).execute(
        MultiLeg("f", (Leg("BTC", Side.BUY, 1.0, 100.0), Leg("ETH", Side.BUY, 1.0, 100.0))),
        allow=allow_all,
        leg_timeout_s=1.0,
    )
    assert group.reason == "leg 0 (buy BTC) refused: the request failed: connection reset"
    assert len(router.requests) == 1


@attrs.define
class FillingRouter:
    """The venue fills each order whole, and the dispatcher hears so from the answer; each
    fill then goes to ``heard`` (None: it never reaches the executor, as when the positions
    dropped one as part of the startup's account read)."""

    dispatcher: Dispatcher
    heard: Callable[[Fill], None] | None = None
    ids: int = 0
    # The fill audit's copy (no client id) is heard before the answer is applied.
    early: Callable[[Fill], None] | None = None

    def new_client_id(self) -> str:
        self.ids += 1
        return f"0x{self.ids:032x}"

    async def place(self, orders: Sequence[PlaceOrder]) -> None:
        for order in orders:
            self.dispatcher.submit(order, 0)
            if self.early is not None:
                self.early(attrs.evolve(fill_of(order), cloid=None))
            answer = Filled(OrderId(f"fake:{order.cloid}"), order.cloid, order.sz, order.px)
            self.dispatcher.on_place_ack(order.cloid, answer, 0)
        await trio.lowlevel.checkpoint()
        heard = self.heard
        if heard is not None:
            for order in orders:
                heard(fill_of(order))


def fill_of(order: PlaceOrder) -> Fill:
    """The whole of ``order`` filled at its price."""
    oid, tid = OrderId(f"fake:{order.cloid}"), TradeId(f"fake:t{order.cloid}")
    direction = "Buy" if order.side is Side.BUY else "Sell"
    return Fill(
        coin=order.coin,
        side=order.side,
        px=order.px,
        sz=order.sz,
        time_ms=0,
        oid=oid,
        tid=tid,
        cloid=order.cloid,
        fee=0.0,
        fee_token="USD",
        crossed=True,
        start_position=0.0,
        direction=direction,
        closed_pnl=0.0,
        hash="",
    )


async def test_a_leg_the_venue_filled_whose_fills_never_came_times_out_saying_so(
    autojump_clock: trio.testing.MockClock,
) -> None:
    dispatcher = Dispatcher()
    router = FillingRouter(dispatcher)
    legs = LegExecutor(lambda: cast(OrderRouter, router), dispatcher, instrument)
    group = MultiLeg("g", (Leg("BTC", Side.BUY, 0.5, 100.0), Leg("ETH", Side.SELL, 1.0, 10.0)))
    started = trio.current_time()
    (stopped,) = await legs.execute(group, allow=allow_all, leg_timeout_s=2.0)
    assert trio.current_time() - started == 2.0
    assert stopped.state is GroupState.STOPPED
    assert stopped.reason == (
        "leg 0 (buy BTC) timed out: the venue ended its order filled with 0.5 filled, "
        "0 of it heard as fills"
    )
    assert router.ids == 1  # the second leg never left
    # Heard, the same fills end each leg: the group is done.
    router.heard = legs.on_fill
    (done,) = await legs.execute(group, allow=allow_all, leg_timeout_s=2.0)
    assert done.state is GroupState.DONE, done.reason
    assert (done.filled, router.ids) == ([0.5, 1.0], 3)


async def test_a_fill_from_the_history_heard_before_the_answer_ends_its_leg(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """The fill audit's copy of a leg's fill (no client id: KuCoin's history has none) comes
    before the request's answer told the order's id, and the user stream's own copy is then
    dropped as a duplicate: held, it is heard once the answer comes, and the group goes on."""
    dispatcher = Dispatcher()
    router = FillingRouter(dispatcher)
    legs = LegExecutor(lambda: cast(OrderRouter, router), dispatcher, instrument)
    router.early = legs.on_fill
    group = MultiLeg("h", (Leg("BTC", Side.BUY, 0.5, 100.0), Leg("ETH", Side.SELL, 1.0, 10.0)))
    started = trio.current_time()
    (done,) = await legs.execute(group, allow=allow_all, leg_timeout_s=2.0)
    assert done.state is GroupState.DONE, done.reason
    assert done.filled == [0.5, 1.0]
    assert trio.current_time() - started < 2.0  # no leg waited for its timeout
