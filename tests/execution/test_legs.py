"""The multi-leg executor's refusals and timeouts, against a router that records what it is
handed (the venue's answers and fills are the e2e test's: tests/e2e/test_multi_leg.py)."""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal
from typing import cast

import attrs
import trio
import trio.testing

from mm.execution.commands import GroupState, Leg, MultiLeg
from mm.execution.dispatch import Dispatcher
from mm.execution.legs import LegExecutor
from mm.execution.orders import OrderRouter
from mm.model import Instrument, PlaceOrder, Side, Tif


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
