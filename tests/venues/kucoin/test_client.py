"""The KuCoin client against the simulator's KuCoin face, over loopback on virtual time: the
port's order side, reads, the dead-man's switch and the streams' REST."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import attrs
import pytest
import trio

from mm import clock
from mm.model import (
    CancelOrder,
    Filled,
    ModifyOrder,
    OrderStatus,
    PlaceOrder,
    Rejected,
    Resting,
    Side,
    Tif,
)
from mm.venues.base import RateLimited, UnknownInstrument, VenueClient
from mm.venues.kucoin.client import CAPABILITIES, KucoinClient
from mm.venues.kucoin.rate_budget import RateBudget
from mm.venues.kucoin.rest import KucoinRestTransport
from mm.venues.sim.kucoin.server import DEV_KEY, KucoinSimVenue

SYMBOL = "BTC-USDT"
FOLLOWED = ("BTC-USDT", "ETH-USDT")
DEADLINE_S = 60.0  # virtual: a hang guard for one loopback exchange


@attrs.frozen
class Face:
    venue: KucoinSimVenue
    client: KucoinClient

    def mid(self, symbol: str = SYMBOL) -> float:
        return self.venue.market.mids()[symbol]

    def order(
        self,
        side: Side,
        px: float,
        tif: Tif,
        *,
        notional: float = 50.0,
        symbol: str = SYMBOL,
    ) -> PlaceOrder:
        instrument = self.client.instrument(symbol)
        px = instrument.round_price(px, up=side is Side.SELL)
        sz = instrument.round_size(notional / px, up=True)
        return PlaceOrder(symbol, side, px, sz, tif, self.client.new_client_id())

    def passive(self, side: Side, symbol: str = SYMBOL) -> float:
        return self.mid(symbol) * (0.8 if side is Side.BUY else 1.2)

    def crossing(self, side: Side) -> float:
        return self.mid() * (1.02 if side is Side.BUY else 0.98)


@asynccontextmanager
async def face_client() -> AsyncIterator[Face]:
    venue = KucoinSimVenue(seed=5)
    async with trio.open_nursery() as nursery:
        url = await nursery.start(venue.run)
        async with KucoinRestTransport(
            url, DEV_KEY, budget=RateBudget(), now_ms=clock.wall_ms, deadline_s=DEADLINE_S
        ) as rest:
            client = KucoinClient(rest, FOLLOWED)
            await client.instruments()
            yield Face(venue, client)
        nursery.cancel_scope.cancel()


@pytest.fixture
async def face() -> AsyncIterator[Face]:
    async with face_client() as face:
        yield face


# Each test names autojump_clock itself: pytest-trio runs on the clock among the test's own
# arguments, not on one a fixture asks for.


async def test_it_is_the_ports_venue_client(face: Face, autojump_clock: trio.abc.Clock) -> None:
    client: VenueClient = face.client  # (mypy checks the protocol)
    assert client.capabilities == CAPABILITIES
    assert client.capabilities.max_batch == 5
    cloid = client.new_client_id()
    assert len(cloid) <= 40
    assert client.is_own_client_id(cloid)
    assert len({client.new_client_id() for _ in range(1_000)} | {cloid}) == 1_001
    assert not client.is_own_client_id(None)
    assert not client.is_own_client_id("5c52e11203aa677f33e493fb")


async def test_instruments_fees_and_the_account(face: Face, autojump_clock: trio.abc.Clock) -> None:
    client = face.client
    instrument = client.instrument(SYMBOL)
    assert (instrument.venue, instrument.base, instrument.quote) == ("kucoin", "BTC", "USDT")
    assert "ETH-BTC" in {i.symbol for i in await client.instruments()}
    assert client.fee(SYMBOL, taker=True) == (0.001, "USDT")
    with pytest.raises(UnknownInstrument):
        client.instrument("DOGE-USDT")
    with pytest.raises(UnknownInstrument):
        client.fee("ETH-BTC", taker=False)  # listed, not followed: no rates read
    state = await client.account_state()
    assert state.account_value == 100_000  # the face's USDT: the quote the account is valued in
    assert {b.currency: b.total for b in state.balances} == {
        "USDT": 100_000,
        "BTC": 1,
        "ETH": 10,
    }
    assert state.positions == ()


async def test_the_account_read_is_as_of_before_it_was_asked_for(
    face: Face, autojump_clock: trio.abc.Clock
) -> None:
    """A fill made before the read is in the state's time; one of an order placed after its
    answer is newer, though the face answers at once: on a virtual clock the read and that
    fill share a millisecond (the fill of a multi-leg group sent as the service got ready was
    dropped from the positions as part of the startup's read)."""
    client = face.client
    since_ms = clock.wall_ms()
    (before,) = await client.place([face.order(Side.BUY, face.crossing(Side.BUY), Tif.IOC)])
    await trio.sleep(0.01)
    state = await client.account_state()
    (after,) = await client.place([face.order(Side.SELL, face.crossing(Side.SELL), Tif.IOC)])
    assert isinstance(before, Filled)
    assert isinstance(after, Filled)
    fills = await client.fills_since(since_ms)
    made_before = [f.time_ms for f in fills if f.oid == before.oid]
    made_after = [f.time_ms for f in fills if f.oid == after.oid]
    assert made_before
    assert made_after
    assert max(made_before) <= state.time_ms < min(made_after)


async def test_post_only_rests_is_modified_to_a_new_id_then_cancelled(
    face: Face, autojump_clock: trio.abc.Clock
) -> None:
    client = face.client
    resting = face.order(Side.BUY, face.passive(Side.BUY), Tif.ALO)
    (placed,) = await client.place([resting])
    assert isinstance(placed, Resting)
    assert placed.cloid == resting.cloid
    (listed,) = [o for o in await client.open_orders() if o.oid == placed.oid]
    assert (listed.cloid, listed.side, listed.px, listed.sz, listed.tif) == (
        resting.cloid,
        Side.BUY,
        resting.px,
        resting.sz,
        Tif.ALO,
    )
    for status in (
        await client.order_status(oid=placed.oid),
        await client.order_status(cloid=resting.cloid),
    ):
        assert status is not None
        assert (status.oid, status.status) == (placed.oid, OrderStatus.OPEN)
    lower = attrs.evolve(face.order(Side.BUY, resting.px * 0.99, Tif.ALO), cloid=resting.cloid)
    (modified,) = await client.modify([ModifyOrder(lower, oid=placed.oid)])
    assert isinstance(modified, Resting)
    assert modified.oid != placed.oid  # cancel-replace: a new order id
    assert modified.cloid == resting.cloid
    (listed,) = [o for o in await client.open_orders() if o.cloid == resting.cloid]
    assert (listed.oid, listed.px) == (modified.oid, lower.px)
    replaced = await client.order_status(oid=placed.oid)
    assert replaced is not None
    assert replaced.status is OrderStatus.CANCELED
    assert await client.cancel([CancelOrder(SYMBOL, oid=modified.oid)]) == [None]
    assert not [o for o in await client.open_orders() if o.oid == modified.oid]
    status = await client.order_status(oid=modified.oid)
    assert status is not None
    assert status.status is OrderStatus.CANCELED
    assert status.sz == status.orig_sz  # ended unfilled
    (again,) = await client.cancel([CancelOrder(SYMBOL, oid=modified.oid)])
    assert isinstance(again, Rejected)
    assert "400100" in again.reason
    (gone,) = await client.modify([ModifyOrder(lower, oid=modified.oid)])
    assert isinstance(gone, Rejected)


async def test_a_post_only_that_would_take_is_rejected_and_an_ioc_fills(
    face: Face, autojump_clock: trio.abc.Clock
) -> None:
    client = face.client
    before = await client.open_orders()
    (refused,) = await client.place([face.order(Side.BUY, face.crossing(Side.BUY), Tif.ALO)])
    assert isinstance(refused, Rejected)
    assert "post-only" in refused.reason
    assert await client.open_orders() == before
    since_ms = clock.wall_ms()
    taking = face.order(Side.BUY, face.crossing(Side.BUY), Tif.IOC)
    (result,) = await client.place([taking])
    assert isinstance(result, Filled)
    assert result.total_sz == pytest.approx(taking.sz)
    assert 0 < result.avg_px <= taking.px
    fills = [f for f in await client.fills_since(since_ms) if f.oid == result.oid]
    assert fills
    assert sum(f.sz for f in fills) == pytest.approx(taking.sz)
    assert all(f.crossed and f.fee > 0 and f.fee_token == "USDT" for f in fills)
    assert all(f.side is Side.BUY and f.coin == SYMBOL for f in fills)
    assert await client.fills_since(clock.wall_ms() + 1_000) == []
    status = await client.order_status(cloid=taking.cloid)
    assert status is not None
    assert status.status is OrderStatus.FILLED


async def test_a_batch_is_answered_in_request_order(
    face: Face, autojump_clock: trio.abc.Clock
) -> None:
    client = face.client
    batch = [
        face.order(Side.BUY, face.passive(Side.BUY), Tif.ALO),
        face.order(Side.BUY, face.crossing(Side.BUY), Tif.ALO),  # would take: rejected
        face.order(Side.SELL, face.passive(Side.SELL), Tif.GTC),
        face.order(Side.BUY, face.passive(Side.BUY), Tif.GTC, notional=10**9),  # the balance
        face.order(Side.BUY, face.passive(Side.BUY, "ETH-USDT"), Tif.GTC, symbol="ETH-USDT"),
        face.order(Side.BUY, face.passive(Side.BUY) * 0.9, Tif.ALO),
        face.order(Side.BUY, face.passive(Side.BUY) * 0.8, Tif.ALO),  # a second chunk of 5
    ]
    results = await client.place(batch)
    assert [type(r) for r in results] == [
        Resting,
        Rejected,
        Resting,
        Rejected,
        Resting,
        Resting,
        Resting,
    ]
    rested = [(o, r) for o, r in zip(batch, results, strict=True) if isinstance(r, Resting)]
    assert all(r.cloid == o.cloid for o, r in rested)
    open_now = {o.cloid for o in await client.open_orders()}
    assert open_now >= {o.cloid for o, _ in rested}
    cancels = [CancelOrder(o.coin, cloid=o.cloid) for o, _ in rested]
    assert await client.cancel(cancels) == [None] * len(rested)
    assert not {o.cloid for o in await client.open_orders()} & open_now


async def test_the_dead_mans_switch_arms_and_disarms(
    face: Face, autojump_clock: trio.abc.Clock
) -> None:
    switch = face.client.dead_mans_switch
    assert await switch.setting() is None
    await switch.schedule_cancel(clock.wall_ms() + 30_000)
    setting = await switch.setting()
    assert setting is not None
    assert setting.timeout == 30
    assert setting.symbols == ()  # every symbol: the port's "every order of the account"
    await switch.schedule_cancel(None)
    assert await switch.setting() is None
    assert await switch.traded_volume() == 0.0


async def test_the_streams_rest_and_the_rate_limit(
    face: Face, autojump_clock: trio.abc.Clock
) -> None:
    client = face.client
    snapshot = await client.level2_snapshot(SYMBOL)
    assert snapshot.symbol == SYMBOL
    assert snapshot.bids
    assert snapshot.asks
    assert snapshot.bids[0][0] < snapshot.asks[0][0]
    for private in (False, True):
        bullet = await client.bullet(private)
        assert bullet.endpoint.startswith("ws")
        assert bullet.token
    state = await client.rate_limit()
    assert 0 < state.requests_used <= state.requests_cap
    assert state.cum_volume == 0.0


async def test_a_market_buy_by_funds_and_a_test_order(
    face: Face, autojump_clock: trio.abc.Clock
) -> None:
    client = face.client
    assert client.capabilities.market_by_quote
    assert client.capabilities.test_orders
    cloid = client.new_client_id()
    result = await client.market_by_funds(SYMBOL, Side.BUY, 100.0, cloid)
    assert isinstance(result, Filled)
    assert result.cloid == cloid
    # The average is the venue's, read back from the order's dealFunds (the funds paid the fees
    # too): not the fallback, the funds over the size, which the order's read once fell to when
    # the face answered it a negative cancelledSize.
    fills = [fill for fill in await client.fills_since(0) if fill.oid == result.oid]
    assert sum(fill.sz for fill in fills) == pytest.approx(result.total_sz)
    traded = sum(fill.px * fill.sz for fill in fills)
    assert result.avg_px == pytest.approx(traded / result.total_sz, rel=1e-12)
    assert result.total_sz * result.avg_px == pytest.approx(100.0 / 1.001, rel=1e-3)
    assert result.avg_px < 100.0 / result.total_sz
    valid = face.order(Side.BUY, face.passive(Side.BUY), Tif.GTC)
    assert await client.test_order(valid) is None
    assert await client.order_status(cloid=valid.cloid) is None  # validated, never placed
    tiny = attrs.evolve(valid, sz=float(client.instrument(SYMBOL).size_increment))
    refused = await client.test_order(tiny)
    assert isinstance(refused, Rejected)
    assert refused.reason


async def test_the_armed_switch_cancels_the_orders_when_not_pushed_forward(
    face: Face, autojump_clock: trio.abc.Clock
) -> None:
    client = face.client
    (placed,) = await client.place([face.order(Side.BUY, face.passive(Side.BUY), Tif.ALO)])
    assert isinstance(placed, Resting)
    await client.dead_mans_switch.schedule_cancel(clock.wall_ms() + 5_000)
    await trio.sleep(4.0)  # virtual time: not yet
    assert [o.oid for o in await client.open_orders()] == [placed.oid]
    await trio.sleep(3.0)  # past the armed time, with no push forward
    assert await client.open_orders() == []
    status = await client.order_status(oid=placed.oid)
    assert status is not None
    assert status.status is OrderStatus.CANCELED


async def test_a_read_of_every_symbol_fails_as_one_read_does(
    face: Face, autojump_clock: trio.abc.Clock
) -> None:
    """open_orders and fills_since read each followed symbol at once: one refused (a 429)
    raises the port's RateLimited itself, never a group of errors the callers (the order
    auditor, the fill audit) do not catch. (Found by mm simulate: the auditor's child crashed
    on the group and restarted mid-triangle.)"""
    face.venue.faults.update({"http_429": 1.0})
    with pytest.raises(RateLimited):
        await face.client.open_orders()
    with pytest.raises(RateLimited):
        await face.client.fills_since(clock.wall_ms() - 60_000)
