"""Batches the venue refuses as a whole, end to end on the simulator with the shipped
config.toml, on virtual time (issue 14, item 4).

The venue answers one error status for a batch of N orders, modifies or cancels that its
pre-validation refuses. mm laid the statuses onto the batch with ``zip(strict=True)``: the
ValueError escaped the slot (which crashed, was restarted, crashed again until the trading
subtree escalated to the kill switch) or the flattener (which logged it), and the batch's
orders stayed PENDING_NEW with no caller to answer them. Now each order takes the batch's
error: no order is left pending, a refused cancel or modify leaves its order live and tracked,
and the symbol quotes again as soon as the venue accepts its batches.

- A coin whose asset the venue takes for invalid (``sim.faults.invalid_assets``, as a client
  with stale metadata would send it): its quotes are refused, the other coin trades on, and it
  quotes both sides once the venue accepts it again; refused again while it rests, its orders
  stay live and tracked.
- The post-only period after a network upgrade (``sim.faults.post_only_period``): the quotes
  (post-only) rest throughout; the flattener's IOC batch is refused whole with the venue's
  words, each order rejected, and the flatten completes once the period ends.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

import httpx
import trio

from mm import clock
from mm.app import Service
from mm.execution.lifecycle import OrderState, TrackedOrder
from mm.model import PlaceOrder, Side, Tif
from mm.venues.hyperliquid.wire import new_cloid
from tests.e2e.virtual import (
    admin_client,
    positions_at_venue,
    resting_sides,
    shipped_service,
    sim_client,
    venue,
    wait_for,
)

S = OrderState
BOTH = {"B", "A"}
INVALID_ASSET = "Invalid asset."
UPGRADE = "Only post-only orders allowed immediately after network upgrade"
PENDING = (S.PENDING_NEW, S.PENDING_CANCEL, S.PENDING_MODIFY)


def orders(service: Service, coin: str | None = None) -> list[TrackedOrder]:
    every = list(service.adapter.dispatcher.registry)
    return [order for order in every if coin is None or order.coin == coin]


def stuck(service: Service) -> list[TrackedOrder]:
    """Orders waiting for an answer that no caller is waiting for any more."""
    awaited = service.adapter.dispatcher.awaited()
    return [o for o in orders(service) if o.state in PENDING and o.cloid not in awaited]


def rejected(service: Service, coin: str, reason: str) -> list[TrackedOrder]:
    return [o for o in orders(service, coin) if o.state is S.REJECTED and o.reason == reason]


def venue_cloids(service: Service, coin: str) -> set[str | None]:
    sim = venue(service)
    index = sim.engine.by_name[coin].index
    account = service.adapter.account
    return {o.cloid for o in sim.engine.open_orders(account) if o.asset == index}


def tracked_live(service: Service, coin: str) -> set[str]:
    """The coin's orders mm holds for resting at the venue (working, or a request on them)."""
    working = (S.OPEN, S.PARTIALLY_FILLED, S.PENDING_CANCEL, S.PENDING_MODIFY)
    return {o.cloid for o in orders(service, coin) if o.state in working}


def refusals(service: Service) -> float:
    """Requests (orders, modifies, cancels) the venue refused for an invalid asset."""
    labels = {"reason": "invalid_asset"}
    return service.registry.get_sample_value("mm_order_rejections_total", labels) or 0.0


async def set_faults(sim: httpx.AsyncClient, **faults: Any) -> None:
    (await sim.post("/sim/faults", json=faults)).raise_for_status()


async def watch(service: Service, seconds: float, checks: Iterable[Any] = ()) -> None:
    """Hold for ``seconds`` (virtual), checking every half second that no order is stuck,
    the kill switch never tripped, and each of ``checks`` holds."""
    steps = int(seconds / 0.5)
    for _ in range(steps):
        await trio.sleep(0.5)
        assert stuck(service) == []
        assert not service.killswitch.switch.tripped, service.status()["killswitch"]
        for check in checks:
            check()


async def test_a_coin_refused_as_a_batch_leaves_no_order_pending_and_quotes_again(
    tmp_path: Path, autojump_clock: trio.abc.Clock
) -> None:
    faults = {"sim.faults.invalid_assets": ["ETH"]}
    async with shipped_service(tmp_path / "run", faults) as service:
        # ETH's quotes (a bid and an ask in one batch) are refused whole, batch after batch.
        await wait_for(lambda: len(rejected(service, "ETH", INVALID_ASSET)) >= 6, within=120)
        await wait_for(lambda: resting_sides(service).get("BTC") == BOTH, within=60)
        await watch(service, 30.0, [lambda: venue_cloids(service, "ETH") == set()])
        # Every ETH order was refused, but for a batch still on its way (its caller awaits it).
        awaited = service.adapter.dispatcher.awaited()
        in_flight = [o for o in orders(service, "ETH") if o.state is S.PENDING_NEW]
        assert all(o.cloid in awaited for o in in_flight)
        assert all(o.state is S.REJECTED for o in orders(service, "ETH") if o not in in_flight)
        refused = len(rejected(service, "ETH", INVALID_ASSET))
        assert refused >= 10
        # BTC traded on throughout (a filled quote's replacement lands a block or two later).
        await wait_for(lambda: resting_sides(service).get("BTC") == BOTH, within=5)
        async with sim_client(service) as sim:
            # The venue takes ETH again: it quotes both sides.
            await set_faults(sim, invalid_assets=[])
            await wait_for(lambda: resting_sides(service).get("ETH") == BOTH, within=30)
            # Refused again while it rests: its modifies and cancels are refused whole, and its
            # orders stay live and tracked, never stuck, never unknown to mm.
            await set_faults(sim, invalid_assets=["ETH"])
            resting = venue_cloids(service, "ETH")
            assert resting
            before = refusals(service)

            def known() -> None:
                at_venue = venue_cloids(service, "ETH")
                assert at_venue <= resting  # nothing new placed, nothing moved (fills may come)
                assert at_venue <= tracked_live(service, "ETH")  # and mm knows each of them

            await watch(service, 60.0, [known])
            assert refusals(service) > before  # it tried to move them, and was refused
            await set_faults(sim, invalid_assets=[])
        await watch(service, 20.0)
        await wait_for(lambda: resting_sides(service).get("ETH") == BOTH, within=30)
        await wait_for(
            lambda: venue_cloids(service, "ETH") == tracked_live(service, "ETH"), within=10
        )
        assert service.status()["killswitch"]["trips"] == 0


async def buy(service: Service, coin: str, size: float) -> None:
    """A marketable order of our own, as an operator would send: a real fill on the account."""
    router, book = service.adapter.router, service.adapter.bus.latest(coin)
    assert router is not None
    assert book is not None
    assert book.best_ask is not None
    await router.place(
        [PlaceOrder(coin, Side.BUY, book.best_ask * 1.002, size, Tif.IOC, new_cloid())]
    )


async def test_the_post_only_period_refuses_the_flatten_batch_whole_and_it_completes_after(
    tmp_path: Path, autojump_clock: trio.abc.Clock
) -> None:
    async with shipped_service(tmp_path / "run") as service:
        await wait_for(lambda: service.adapter.router is not None, within=30)
        await wait_for(
            lambda: all(resting_sides(service).get(coin) == BOTH for coin in ("BTC", "ETH")),
            within=60,
        )
        await buy(service, "BTC", 0.003)
        await buy(service, "ETH", 0.08)
        await wait_for(
            lambda: all(positions_at_venue(service).get(c) for c in ("BTC", "ETH")), within=10
        )
        async with sim_client(service) as sim:
            await set_faults(sim, post_only_period=True)
            began = clock.wall_ms()
            await watch(service, 20.0)
            # Post-only quotes are what the period allows: each side of each coin was quoted
            # anew and accepted, and no quote was refused for the period.
            quotes = [o for o in orders(service) if o.tif is Tif.ALO and o.created_ms >= began]
            accepted = {(o.coin, o.side) for o in quotes if o.accepted}
            assert accepted == {(c, s) for c in ("BTC", "ETH") for s in (Side.BUY, Side.SELL)}
            assert not [o for o in quotes if o.reason == UPGRADE]
            held = positions_at_venue(service)
            assert held.get("BTC")
            assert held.get("ETH")
            async with admin_client(service) as admin:
                reply = await admin.post("/flatten", json={"reason": "post-only drill"})
                assert reply.status_code == 202, reply.text

            def flatten_orders() -> list[TrackedOrder]:
                return [o for o in orders(service) if o.tif is Tif.IOC and o.reduce_only]

            # Each round's batch (an IOC per coin) is refused whole: each order is rejected
            # with the venue's words, none is left pending.
            await wait_for(
                lambda: len([o for o in flatten_orders() if o.reason == UPGRADE]) >= 6, within=30
            )
            await watch(service, 5.0)
            awaited = service.adapter.dispatcher.awaited()
            for order in flatten_orders():
                if order.cloid in awaited:
                    continue  # the current round's, its answer a block or two on its way
                assert order.state is S.REJECTED
                assert order.reason == UPGRADE
            assert {o.coin for o in flatten_orders()} == {"BTC", "ETH"}
            assert positions_at_venue(service) == held  # nothing could trade
            await set_faults(sim, post_only_period=False)  # the period ends
        await wait_for(lambda: service.flattener.last is not None, within=60)
        last = service.flattener.last
        assert last is not None
        assert last.done, last
        assert not any(positions_at_venue(service).values())
        assert stuck(service) == []
        assert not service.killswitch.switch.tripped
