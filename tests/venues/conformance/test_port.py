"""Every operation of the venue port, on every venue kind, against its simulator.

Each kind's adapter is built by the factory from ``venue.kind`` and run as the service runs it
(its market and user feeds as children); the assertions are about the port (mm.venues.base and
mm.model's values), never about a venue's wire, so that a new kind passes the same suite.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any

import attrs
import pytest
import trio

from mm import clock
from mm.model import (
    AccountState,
    CancelOrder,
    Fill,
    Filled,
    ModifyOrder,
    OrderReport,
    OrderStatus,
    PlaceOrder,
    Rejected,
    Resting,
    Side,
    Tif,
    Trade,
)
from mm.venues.base import SwitchNeedsVolume, UnknownInstrument, VenueClient
from mm.venues.config import KINDS
from mm.venues.factory import open_probe
from mm.venues.hyperliquid.rate_limit import RateLimitConfig
from tests.venues.conformance.rig import API, KEY, Rig, venue_rig

WAIT_S = 30.0  # virtual seconds for what the venue does a block or two later


@pytest.fixture(params=KINDS)
async def rig(request: pytest.FixtureRequest, autojump_clock: trio.abc.Clock) -> AsyncIterator[Rig]:
    async with venue_rig(request.param) as rig:
        yield rig


def client_of(rig: Rig) -> VenueClient:
    client = rig.adapter.client
    assert client is not None  # the rig waits for the user feed
    return client


def order(rig: Rig, side: Side, px: float, tif: Tif, *, notional: float = 20.0) -> PlaceOrder:
    """An order of about ``notional`` (USD) on the venue's grid (a buy's price rounded down,
    a sell's up), with a client id the venue's adapter made."""
    client = client_of(rig)
    instrument = client.instrument(rig.coin)
    px = instrument.round_price(px, up=side is Side.SELL)
    sz = instrument.round_size(notional / px, up=True)
    return PlaceOrder(rig.coin, side, px, sz, tif, client.new_client_id())


def passive(rig: Rig, side: Side) -> float:
    """A price 20% away from the mid, on the side's own side of the book: it rests."""
    mid = rig.sim.mid(rig.coin)
    return mid * 0.8 if side is Side.BUY else mid * 1.2


def crossing(rig: Rig, side: Side) -> float:
    """A price 2% through the mid: it takes the resting liquidity on the other side."""
    mid = rig.sim.mid(rig.coin)
    return mid * 1.02 if side is Side.BUY else mid * 0.98


async def next_event(rig: Rig, wanted: Callable[[Any], bool]) -> Any:
    """The first user-stream event ``wanted`` accepts (the ones before it are passed over)."""
    with trio.fail_after(WAIT_S):
        async for event in rig.adapter.user_events:
            if wanted(event):
                return event
    raise AssertionError("the user stream ended")


async def test_instruments_and_reference_data(rig: Rig) -> None:
    client = client_of(rig)
    listed = {instrument.symbol: instrument for instrument in await client.instruments()}
    assert set(rig.coins) <= set(listed)
    for coin in rig.coins:
        instrument = client.instrument(coin)
        assert instrument == listed[coin]
        assert instrument.price_increment > 0
        assert instrument.size_increment > 0
        mid = rig.sim.mid(coin)
        down, up = instrument.round_price(mid, up=False), instrument.round_price(mid, up=True)
        assert down <= mid <= up
        assert instrument.round_price(down, up=True) == down  # on the grid: rounds to itself
        assert instrument.symbol == coin
    assert {instrument.symbol for instrument in await client.instruments()} >= set(rig.coins)
    with pytest.raises(UnknownInstrument):
        client.instrument("NOT-LISTED")


async def test_book_snapshots_and_market_health(rig: Rig) -> None:
    adapter = rig.adapter
    assert tuple(adapter.coins) == rig.coins
    for coin in rig.coins:
        book = adapter.bus.latest(coin)
        assert book is not None
        assert book.best_bid is not None
        assert book.best_ask is not None
        assert book.best_bid < rig.sim.mid(coin) < book.best_ask
        last = adapter.last_book_ms(coin)
        assert last is not None
        assert last <= clock.wall_ms()
    assert adapter.last_book_ms("NOT-LISTED") is None
    assert adapter.stale_coins() == []
    connection = adapter.market_connection()
    assert connection is not None
    state, attempts = connection
    assert state == "healthy"
    assert attempts >= 0


async def test_the_user_stream_starts_from_a_snapshot(rig: Rig) -> None:
    adapter = rig.adapter
    assert adapter.in_sync()
    assert adapter.healthy()
    snapshot = adapter.resync_snapshot
    assert snapshot is not None
    assert isinstance(snapshot.account, AccountState)
    assert snapshot.account.account_value > 0  # the simulator funded the account
    assert snapshot.duration_s >= 0
    assert adapter.startup_waiting() is None
    assert adapter.access_refused() is None


async def test_post_only_rests_then_modify_then_cancel(rig: Rig) -> None:
    client = client_of(rig)
    assert client.capabilities.post_only
    resting = order(rig, Side.BUY, passive(rig, Side.BUY), Tif.ALO)
    assert client.is_own_client_id(resting.cloid)
    assert not client.is_own_client_id(None)
    (placed,) = await client.place([resting])
    assert isinstance(placed, Resting)
    assert placed.cloid == resting.cloid
    # The user stream reports it, and the venue lists it and knows it by either id.
    report = await next_event(
        rig, lambda e: isinstance(e, OrderReport) and e.cloid == resting.cloid
    )
    assert (report.oid, report.side, report.px) == (placed.oid, Side.BUY, resting.px)
    assert report.status is OrderStatus.OPEN
    (listed,) = [o for o in await client.open_orders() if o.oid == placed.oid]
    assert (listed.cloid, listed.side, listed.px, listed.sz) == (
        resting.cloid,
        Side.BUY,
        resting.px,
        resting.sz,
    )
    for status in (
        await client.order_status(oid=placed.oid),
        await client.order_status(cloid=resting.cloid),
    ):
        assert status is not None
        assert status.oid == placed.oid
        assert status.status is OrderStatus.OPEN
    current = placed.oid
    if client.capabilities.modify:
        lower = attrs.evolve(order(rig, Side.BUY, resting.px * 0.99, Tif.ALO), cloid=resting.cloid)
        (modified,) = await client.modify([ModifyOrder(lower)])
        assert isinstance(modified, Resting)
        (listed,) = [o for o in await client.open_orders() if o.cloid == lower.cloid]
        assert listed.px == lower.px
        current = modified.oid
    canceled = await client.cancel([CancelOrder(rig.coin, oid=current)])
    assert canceled == [None]
    await next_event(
        rig,
        lambda e: (
            isinstance(e, OrderReport) and e.oid == current and e.status is OrderStatus.CANCELED
        ),
    )
    assert not [o for o in await client.open_orders() if o.oid == current]
    status = await client.order_status(oid=current)
    assert status is not None
    assert status.status is OrderStatus.CANCELED
    assert status.sz == status.orig_sz  # ended unfilled
    (again,) = await client.cancel([CancelOrder(rig.coin, oid=current)])
    assert isinstance(again, Rejected)
    assert again.reason


async def test_a_post_only_order_that_would_take_is_rejected(rig: Rig) -> None:
    client = client_of(rig)
    before = await client.open_orders()
    (result,) = await client.place([order(rig, Side.BUY, crossing(rig, Side.BUY), Tif.ALO)])
    assert isinstance(result, Rejected)
    assert result.reason
    assert await client.open_orders() == before


async def test_an_ioc_order_fills_and_is_reported_everywhere(rig: Rig) -> None:
    client, adapter = client_of(rig), rig.adapter
    assert client.capabilities.ioc
    since_ms = clock.wall_ms()
    before = await client.account_state()
    taking = order(rig, Side.BUY, crossing(rig, Side.BUY), Tif.IOC)
    (result,) = await client.place([taking])
    assert isinstance(result, Filled)
    assert result.total_sz == pytest.approx(taking.sz)
    assert 0 < result.avg_px <= taking.px
    fill = await next_event(rig, lambda e: isinstance(e, Fill) and e.oid == result.oid)
    assert (fill.coin, fill.side, fill.cloid) == (rig.coin, Side.BUY, taking.cloid)
    assert fill.sz == pytest.approx(taking.sz)
    assert fill.crossed
    assert fill.fee >= 0
    assert fill.fee_token
    with trio.fail_after(WAIT_S):
        trade = await adapter.trades.receive()
        while trade.coin != rig.coin:
            trade = await adapter.trades.receive()
    assert isinstance(trade, Trade)
    assert trade.side is Side.BUY
    assert {(f.oid, f.tid) for f in await client.fills_since(since_ms)} >= {(fill.oid, fill.tid)}
    after = await client.account_state()
    assert rig.sim.holding(after, rig.coin) - rig.sim.holding(before, rig.coin) == pytest.approx(
        taking.sz
    )
    assert not [o for o in await client.open_orders() if o.oid == result.oid]


async def test_a_batch_is_answered_in_request_order(rig: Rig) -> None:
    client = client_of(rig)
    max_batch = client.capabilities.max_batch
    assert max_batch is None or max_batch >= 3
    px = passive(rig, Side.BUY)
    batch = [
        order(rig, Side.BUY, px, Tif.ALO),
        order(rig, Side.BUY, crossing(rig, Side.BUY), Tif.ALO),  # would take: rejected
        order(rig, Side.SELL, passive(rig, Side.SELL), Tif.GTC),
    ]
    results = await client.place(batch)
    assert [type(r) for r in results] == [Resting, Rejected, Resting]
    rested = [r for r in results if isinstance(r, Resting)]
    assert [r.cloid for r in rested] == [batch[0].cloid, batch[2].cloid]
    open_now = {o.cloid for o in await client.open_orders()}
    assert open_now >= {batch[0].cloid, batch[2].cloid}
    canceled = await client.cancel([CancelOrder(rig.coin, cloid=r.cloid) for r in rested])
    assert canceled == [None, None]
    assert not {o.cloid for o in await client.open_orders()} & open_now


async def test_headroom(rig: Rig) -> None:
    adapter, client = rig.adapter, client_of(rig)
    now = trio.current_time()
    assert 0 < adapter.limiter.headroom(now) <= 1
    assert adapter.limiter.order_budget(now) >= 1
    assert all(0 <= share <= 1 for share in adapter.limiter.headroom_by_kind(now).values())
    assert adapter.limiter.rejections == 0
    assert adapter.rate_limit_waits() == 0
    state = await client.rate_limit()
    assert 0 <= state.requests_used <= state.requests_cap
    assert state.cum_volume >= 0
    status = adapter.status()
    assert status["api_headroom"] == adapter.limiter.headroom_by_kind(clock.monotonic())


async def test_the_dead_mans_switch_armed_and_disarmed(rig: Rig) -> None:
    """Armed at once where the venue allows any account; where it waits for traded volume
    (``SwitchNeedsVolume``), refused to a new account, then armed once it has traded."""
    client = client_of(rig)
    switch = client.dead_mans_switch
    if switch is None:
        pytest.skip(f"{rig.kind} has no dead-man's switch")
    assert await switch.traded_volume() == 0
    if rig.sim.credit_volume is not None:
        with pytest.raises(SwitchNeedsVolume) as refused:
            await switch.schedule_cancel(clock.wall_ms() + 60_000)
        assert refused.value.required > 0
        rig.sim.credit_volume(rig.adapter.account, refused.value.required)
        assert await switch.traded_volume() >= refused.value.required
    await switch.schedule_cancel(clock.wall_ms() + 60_000)
    await switch.schedule_cancel(None)


async def test_the_probe_mm_check_asks(rig: Rig) -> None:
    async with open_probe(
        rig.venue,
        rig.sim.url,
        signing_key=KEY,
        rate_limit=RateLimitConfig(),
        request_timeout_s=5.0,
        symbols=rig.coins,
        api_credentials=API,
    ) as probe:
        assert probe.account == rig.adapter.account
        access = await probe.access()
        assert access.allowed
        assert access.detail
        seen, errors = await probe.books(list(rig.coins), 10.0)
        assert seen == set(rig.coins)
        assert errors == []
        state = await probe.client.rate_limit()
        assert all(0 <= share <= 1 for share in probe.headroom_by_kind(state).values())
        assert probe.fills_page >= 1
        volume = probe.dead_mans_switch_volume
        assert volume is None or volume >= 0  # 0: armed for any account
