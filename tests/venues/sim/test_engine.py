"""Tests of the simulator's matching engine: rejections, order lifecycle, modify, dead-man's
switch, history and the events it emits.

The engine returns reason codes (``Reject``) with details; the protocol faces word them, so
only codes and details are checked here.
"""

from __future__ import annotations

from typing import TypeVar

import pytest

from mm.venues.sim.assets import AssetSpec
from mm.venues.sim.engine import (
    DAY_MS,
    MAX_SCHEDULED_CANCEL_TRIGGERS_PER_DAY,
    Engine,
    Fees,
    Filled,
    OrderRequest,
    Reject,
    Rejected,
    Resting,
)
from mm.venues.sim.events import (
    BookChanged,
    Event,
    FundingPayment,
    NonUserCancel,
    OrderUpdate,
    Trade,
    UserFill,
)
from mm.venues.sim.hyperliquid import wire

BTC = AssetSpec(0, "BTC", 5)
ETH = AssetSpec(1, "ETH", 4)
MKT = "mkt"  # a system user: the synthetic market
MKT2 = "mkt2"
T0 = 1_700_000_000_000
C1 = "0x00000000000000000000000000000001"
C2 = "0x00000000000000000000000000000002"

E = TypeVar("E", bound=Event)


def req(
    is_buy: bool,
    px: str,
    sz: str,
    *,
    asset: int = 0,
    tif: str = "Gtc",
    reduce_only: bool = False,
    cloid: str | None = None,
) -> OrderRequest:
    return OrderRequest(asset, is_buy, px, sz, reduce_only=reduce_only, tif=tif, cloid=cloid)


def new_engine(fees: Fees | None = None) -> Engine:
    engine = Engine([BTC, ETH], fees, system_users={MKT, MKT2})
    engine.fund("alice", 100_000.0)
    engine.fund("bob", 100_000.0)
    return engine


@pytest.fixture
def engine() -> Engine:
    return new_engine()


def seed(engine: Engine) -> None:
    """BTC: bids 0.1@49990, 0.2@49980; asks 0.01@50010, 0.02@50020, 0.05@50030 (all MKT)."""
    for is_buy, px, sz in [
        (True, "49990", "0.1"),
        (True, "49980", "0.2"),
        (False, "50010", "0.01"),
        (False, "50020", "0.02"),
        (False, "50030", "0.05"),
    ]:
        assert isinstance(engine.place(MKT, req(is_buy, px, sz), T0), Resting)
    engine.events.clear()


def of_type(engine: Engine, kind: type[E]) -> list[E]:
    return [event for event in engine.events if isinstance(event, kind)]


def statuses(engine: Engine) -> list[tuple[int, str]]:
    return [(update.order.oid, update.status) for update in of_type(engine, OrderUpdate)]


def rests(engine: Engine, user: str, request: OrderRequest, now: int = T0) -> int:
    result = engine.place(user, request, now)
    assert isinstance(result, Resting), result
    return result.oid


def fills(engine: Engine, user: str, request: OrderRequest, now: int = T0) -> Filled:
    result = engine.place(user, request, now)
    assert isinstance(result, Filled), result
    return result


def assert_rejected_without_trace(
    engine: Engine, user: str, request: OrderRequest, reason: Reject, detail: str = ""
) -> None:
    """The rejection's code and detail, and no order, event or book change left behind."""
    book_before = [(b.levels(True, 100), b.levels(False, 100)) for b in engine.books]
    records_before = dict(engine.records)
    events_before = list(engine.events)
    assert engine.place(user, request, T0) == Rejected(reason, request.asset, detail)
    assert [(b.levels(True, 100), b.levels(False, 100)) for b in engine.books] == book_before
    assert engine.records == records_before
    assert engine.events == events_before


# --- rejections ----------------------------------------------------------------------------------


@pytest.mark.parametrize("asset", [2, -1, 99])
def test_bad_asset(engine: Engine, asset: int) -> None:
    assert_rejected_without_trace(
        engine, "alice", req(True, "50000", "1", asset=asset), Reject.BAD_ASSET
    )


@pytest.mark.parametrize("tif", ["Fok", "gtc", "", "FrontendMarket"])
def test_bad_tif_names_the_tif(engine: Engine, tif: str) -> None:
    assert_rejected_without_trace(
        engine, "alice", req(True, "50000", "0.001", tif=tif), Reject.BAD_TIF, tif
    )


@pytest.mark.parametrize("px", ["50000.5", "5000.05", "0", "-50000", "abc", ""])
def test_tick(engine: Engine, px: str) -> None:
    assert_rejected_without_trace(engine, "alice", req(True, px, "0.001"), Reject.TICK)


def test_tick_on_eth_uses_its_own_decimals(engine: Engine) -> None:
    assert_rejected_without_trace(engine, "alice", req(True, "312.555", "1", asset=1), Reject.TICK)
    assert isinstance(engine.place("alice", req(True, "312.55", "1", asset=1), T0), Resting)


@pytest.mark.parametrize("sz", ["0", "0.0", "0.00000"])
def test_zero_size(engine: Engine, sz: str) -> None:
    assert_rejected_without_trace(engine, "alice", req(True, "50000", sz), Reject.ZERO_SIZE)


@pytest.mark.parametrize("sz", ["0.000004", "0.001001", "0.0010001", "1.000001", "abc", "-1"])
def test_a_size_finer_than_the_lot_is_invalid_never_rounded(engine: Engine, sz: str) -> None:
    """BTC has szDecimals 5: the venue refuses a size with a sixth decimal ("Order has
    invalid size."), where the simulator used to round it to the lot."""
    assert_rejected_without_trace(engine, "alice", req(True, "50000", sz), Reject.INVALID_SIZE)


def test_trailing_zeros_past_the_lot_are_fine(engine: Engine) -> None:
    result = engine.place("alice", req(True, "40000", "0.0010000"), T0)
    assert isinstance(result, Resting)
    assert engine.records[result.oid].order.sz == 100


def test_min_notional_is_ten_dollars(engine: Engine) -> None:
    assert_rejected_without_trace(
        engine, "alice", req(True, "50000", "0.0001"), Reject.MIN_NOTIONAL
    )
    assert_rejected_without_trace(
        engine, "alice", req(True, "49000", "0.0002"), Reject.MIN_NOTIONAL
    )
    rests(engine, "alice", req(True, "50000", "0.0002"))  # exactly $10 is enough


def test_reduce_only_is_exempt_from_min_notional(engine: Engine) -> None:
    seed(engine)
    fills(engine, "alice", req(True, "50010", "0.001", tif="Ioc"))
    assert_rejected_without_trace(
        engine, "alice", req(False, "50000", "0.0001"), Reject.MIN_NOTIONAL
    )
    rests(engine, "alice", req(False, "50000", "0.0001", reduce_only=True))  # $5


def test_unfunded_user_has_no_margin(engine: Engine) -> None:
    assert_rejected_without_trace(engine, "carol", req(True, "50000", "0.001"), Reject.MARGIN)


def test_insufficient_margin_counts_positions_and_resting_orders(engine: Engine) -> None:
    seed(engine)  # mark 50000
    engine.fund("dave", 100.0)  # 2,000 of notional at the default 20x
    assert_rejected_without_trace(engine, "dave", req(True, "49000", "0.05"), Reject.MARGIN)
    rests(engine, "dave", req(True, "49000", "0.03"))  # 73.5 of margin
    assert engine.order_margin("dave") == pytest.approx(73.5)
    rests(engine, "dave", req(True, "49000", "0.01"))  # 24.5 of the 26.5 left
    assert_rejected_without_trace(engine, "dave", req(True, "49000", "0.001"), Reject.MARGIN)
    # Reduce-only orders need no margin, but a position to reduce.
    assert_rejected_without_trace(
        engine, "dave", req(False, "51000", "0.001", reduce_only=True), Reject.REDUCE_ONLY
    )


def test_leverage_changes_the_margin_needed(engine: Engine) -> None:
    engine.fund("dave", 100.0)
    engine.accounts["dave"].leverage[0] = 50  # 5,000 of notional
    rests(engine, "dave", req(True, "49000", "0.1"))


def test_reduce_only_needs_a_position_to_reduce(engine: Engine) -> None:
    seed(engine)
    assert_rejected_without_trace(
        engine, "alice", req(False, "51000", "0.001", reduce_only=True), Reject.REDUCE_ONLY
    )
    fills(engine, "alice", req(True, "50010", "0.002", tif="Ioc"))  # long 0.002
    assert_rejected_without_trace(
        engine, "alice", req(True, "49000", "0.001", reduce_only=True), Reject.REDUCE_ONLY
    )
    # A reduce-only order larger than the position is cut to the position.
    oid = rests(engine, "alice", req(False, "51000", "0.5", reduce_only=True))
    assert engine.books[0].orders[oid].sz == 200
    record = engine.find_record("alice", oid)
    assert record is not None
    assert record.order.orig_sz == 200


def test_reduce_only_short_is_reduced_by_buys(engine: Engine) -> None:
    seed(engine)
    fills(engine, "alice", req(False, "49990", "0.002", tif="Ioc"))  # short 0.002
    assert_rejected_without_trace(
        engine, "alice", req(False, "51000", "0.001", reduce_only=True), Reject.REDUCE_ONLY
    )
    result = fills(engine, "alice", req(True, "50010", "0.01", tif="Ioc", reduce_only=True))
    assert result.total_sz == 200
    assert engine.accounts["alice"].position(0).szi == 0


def test_bad_alo_gives_bbo_and_records_the_rejected_order(engine: Engine) -> None:
    seed(engine)
    result = engine.place("alice", req(True, "50010", "0.001", tif="Alo", cloid=C1), T0 + 1)
    assert result == Rejected(Reject.BAD_ALO, 0, "49990.0@50010.0")
    (update,) = of_type(engine, OrderUpdate)
    assert update.status == "badAloPxRejected"
    assert update.user == "alice"
    assert update.time == T0 + 1
    assert update.order.oid >= 1
    assert update.order.cloid == C1
    assert update.order.px == 500100
    assert update.order.sz == update.order.orig_sz == 100
    record = engine.find_record("alice", update.order.oid)
    assert record is not None
    assert record.status == "badAloPxRejected"
    assert engine.books[0].best_ask() == 500100
    assert engine.open_orders("alice") == []
    assert not of_type(engine, Trade)
    # The rejected order never rested, so its cloid is free.
    rests(engine, "alice", req(True, "50000", "0.001", tif="Alo", cloid=C1))


def test_bad_alo_on_the_sell_side(engine: Engine) -> None:
    seed(engine)
    result = engine.place("alice", req(False, "49000", "0.001", tif="Alo"), T0)
    assert result == Rejected(Reject.BAD_ALO, 0, "49990.0@50010.0")
    assert statuses(engine)[-1][1] == "badAloPxRejected"


def test_alo_that_does_not_cross_rests(engine: Engine) -> None:
    seed(engine)
    oid = rests(engine, "alice", req(True, "50000", "0.001", tif="Alo"))
    assert engine.books[0].best_bid() == 500000
    assert statuses(engine) == [(oid, "open")]


def test_ioc_that_cannot_match_is_rejected(engine: Engine) -> None:
    seed(engine)
    result = engine.place("alice", req(True, "50000", "0.001", tif="Ioc"), T0)
    assert result == Rejected(Reject.IOC_CANCEL, 0)
    ((oid, status),) = statuses(engine)
    assert status == "iocCancelRejected"
    assert oid not in engine.books[0].orders
    record = engine.find_record("alice", oid)
    assert record is not None
    assert record.status == "iocCancelRejected"
    assert engine.books[0].best_bid() == 499900


def test_duplicate_cloid_among_open_orders(engine: Engine) -> None:
    first = rests(engine, "alice", req(True, "49000", "0.001", cloid=C1))
    assert_rejected_without_trace(
        engine, "alice", req(True, "48000", "0.001", cloid=C1), Reject.DUPLICATE_CLOID
    )
    # Another asset is no escape; another user may use the same cloid.
    assert_rejected_without_trace(
        engine, "alice", req(True, "3000", "0.01", asset=1, cloid=C1), Reject.DUPLICATE_CLOID
    )
    rests(engine, "bob", req(True, "49000", "0.001", cloid=C1))
    assert engine.cancel("alice", 0, first, T0) is None
    second = rests(engine, "alice", req(True, "48000", "0.001", cloid=C1))
    assert second > first


def test_cloid_is_free_again_after_a_fill(engine: Engine) -> None:
    rests(engine, "alice", req(False, "50000", "0.001", cloid=C1))
    fills(engine, "bob", req(True, "50000", "0.001"))
    rests(engine, "alice", req(False, "50000", "0.001", cloid=C1))


# --- placing and matching ------------------------------------------------------------------------


def test_gtc_rests_when_it_does_not_cross(engine: Engine) -> None:
    seed(engine)
    result = engine.place("alice", req(True, "50000", "0.001", cloid=C1), T0)
    assert isinstance(result, Resting)
    assert result.cloid == C1
    assert engine.books[0].orders[result.oid].sz == 100
    assert engine.open_orders("alice")[0].oid == result.oid
    assert statuses(engine) == [(result.oid, "open")]
    assert of_type(engine, BookChanged) == [BookChanged(0)]


def test_gtc_sweeping_several_levels_is_filled_at_the_average_price(engine: Engine) -> None:
    seed(engine)
    result = fills(engine, "alice", req(True, "50030", "0.04", cloid=C1))
    assert result.oid >= 1
    assert result.cloid == C1
    assert result.asset == 0
    assert result.total_sz == 4000
    assert result.avg_px == pytest.approx((50010 * 1 + 50020 * 2 + 50030 * 1) / 4)
    trades = of_type(engine, Trade)
    assert [(t.px, t.sz) for t in trades] == [(500100, 1000), (500200, 2000), (500300, 1000)]
    assert engine.books[0].levels(False, 5) == [(500300, 4000, 1)]
    assert statuses(engine) == [(result.oid, "filled")]
    assert engine.accounts["alice"].position(0).szi == 4000


def test_gtc_partly_filled_rests_the_remainder(engine: Engine) -> None:
    seed(engine)
    result = engine.place("alice", req(True, "50020", "0.1"), T0)
    assert isinstance(result, Resting)
    order = engine.books[0].orders[result.oid]
    assert (order.sz, order.orig_sz) == (7000, 10000)
    assert engine.books[0].best_bid() == 500200
    assert engine.books[0].best_ask() == 500300
    record = engine.find_record("alice", result.oid)
    assert record is not None
    assert (record.status, record.order.sz) == ("open", 7000)


def test_ioc_partial_fill_is_filled_with_the_rest_canceled(engine: Engine) -> None:
    seed(engine)
    result = fills(engine, "alice", req(True, "50020", "0.1", tif="Ioc"))
    assert result.total_sz == 3000
    assert result.avg_px == pytest.approx((50010 + 2 * 50020) / 3)
    assert result.oid not in engine.books[0].orders
    (update,) = of_type(engine, OrderUpdate)
    assert update.status == "canceled"
    assert (update.order.sz, update.order.orig_sz) == (7000, 10000)
    assert engine.books[0].best_bid() == 499900


def test_sell_sweep_walks_bids_from_the_top(engine: Engine) -> None:
    seed(engine)
    result = fills(engine, "alice", req(False, "49980", "0.15", tif="Ioc"))
    assert result.total_sz == 15000
    assert [(t.px, t.sz) for t in of_type(engine, Trade)] == [(499900, 10000), (499800, 5000)]
    assert result.avg_px == pytest.approx((49990 * 10 + 49980 * 5) / 15)


def test_time_priority_within_a_level(engine: Engine) -> None:
    first = rests(engine, "alice", req(False, "50000", "0.001"))
    rests(engine, "bob", req(False, "50000", "0.001"))
    engine.place(MKT, req(True, "50000", "0.001"), T0)
    (fill,) = of_type(engine, UserFill)
    assert (fill.user, fill.oid) == ("alice", first)


def test_trade_and_fill_events_for_two_users(engine: Engine) -> None:
    maker = rests(engine, "alice", req(False, "50005", "0.002", cloid=C1), T0)
    engine.events.clear()
    taker = fills(engine, "bob", req(True, "50005", "0.002", tif="Ioc", cloid=C2), T0 + 7)
    assert [type(e) for e in engine.events] == [
        Trade,
        UserFill,
        UserFill,
        OrderUpdate,
        BookChanged,
        OrderUpdate,
    ]
    (trade,) = of_type(engine, Trade)
    assert trade == Trade(0, True, 500050, 200, T0 + 7, trade.tid, "bob", "alice")
    maker_fill, taker_fill = of_type(engine, UserFill)
    notional = 50005 * 0.002
    assert maker_fill == UserFill(
        user="alice",
        asset=0,
        is_buy=False,
        px=500050,
        sz=200,
        time=T0 + 7,
        start_position=0,
        direction="Open Short",
        closed_pnl=0.0,
        fee=pytest.approx(notional * Fees().maker),  # type: ignore[arg-type]
        oid=maker,
        tid=trade.tid,
        crossed=False,
        cloid=C1,
    )
    assert (taker_fill.user, taker_fill.is_buy, taker_fill.oid, taker_fill.cloid) == (
        "bob",
        True,
        taker.oid,
        C2,
    )
    assert taker_fill.crossed
    assert taker_fill.direction == "Open Long"
    assert taker_fill.fee == pytest.approx(notional * Fees().taker)
    assert taker_fill.tid == trade.tid
    assert statuses(engine) == [(maker, "filled"), (taker.oid, "filled")]
    assert list(engine.fills["alice"]) == [maker_fill]
    assert list(engine.fills["bob"]) == [taker_fill]
    # A second trade closes both: start positions and directions follow.
    rests(engine, "bob", req(False, "50100", "0.002"), T0 + 8)
    fills(engine, "alice", req(True, "50100", "0.002"), T0 + 9)
    closing = {fill.user: fill for fill in of_type(engine, UserFill)[2:]}
    assert (closing["bob"].start_position, closing["bob"].direction) == (200, "Close Long")
    assert (closing["alice"].start_position, closing["alice"].direction) == (-200, "Close Short")
    assert closing["alice"].closed_pnl == pytest.approx((50005 - 50100) * 0.002)
    assert closing["bob"].closed_pnl == pytest.approx((50100 - 50005) * 0.002)
    assert of_type(engine, Trade)[1].tid > trade.tid


def test_maker_rebate_increases_usdc() -> None:
    engine = new_engine(Fees(maker=-0.0001, taker=0.0005))
    rests(engine, "alice", req(False, "50000", "0.01"))
    fills(engine, "bob", req(True, "50000", "0.01"))
    maker_fill, taker_fill = of_type(engine, UserFill)
    assert maker_fill.fee == pytest.approx(-0.05)
    assert taker_fill.fee == pytest.approx(0.25)
    assert engine.accounts["alice"].usdc == pytest.approx(100_000.05)
    assert engine.accounts["bob"].usdc == pytest.approx(100_000.0 - 0.25)


def test_self_trade_expires_the_resting_order(engine: Engine) -> None:
    seed(engine)
    own = rests(engine, "alice", req(False, "50005", "0.001", cloid=C1))
    engine.events.clear()
    result = fills(engine, "alice", req(True, "50010", "0.005"))
    assert [(t.px, t.sz, t.seller) for t in of_type(engine, Trade)] == [(500100, 500, MKT)]
    assert own not in engine.books[0].orders
    assert (own, "selfTradeCanceled") in statuses(engine)
    assert NonUserCancel("alice", 0, own) in engine.events
    assert statuses(engine)[-1] == (result.oid, "filled")
    rests(engine, "alice", req(False, "51000", "0.001", cloid=C1))  # the cloid is free


def test_system_users_trade_without_accounts_or_history(engine: Engine) -> None:
    seed(engine)
    # Below the minimum notional and with no account: fine for the market.
    tiny = engine.place(MKT, req(False, "60000", "0.00001"), T0)
    assert isinstance(tiny, Resting)
    fills(engine, "alice", req(False, "49990", "0.01", tif="Ioc"))
    (trade,) = of_type(engine, Trade)
    assert (trade.buyer, trade.seller, trade.taker_is_buy) == (MKT, "alice", False)
    assert [fill.user for fill in of_type(engine, UserFill)] == ["alice"]
    assert all(update.user == "alice" for update in of_type(engine, OrderUpdate))
    engine.events.clear()
    result = engine.place(MKT2, req(True, "50010", "0.005"), T0)  # market against market
    assert isinstance(result, Filled)
    assert [(t.buyer, t.seller) for t in of_type(engine, Trade)] == [(MKT2, MKT)]
    assert not of_type(engine, UserFill)
    assert not of_type(engine, OrderUpdate)
    assert MKT not in engine.accounts
    assert MKT2 not in engine.accounts
    assert MKT not in engine.history
    assert MKT not in engine.fills
    assert all(record.order.user not in {MKT, MKT2} for record in engine.records.values())
    assert engine.order_margin(MKT) == 0.0
    assert engine.cancel(MKT, 0, tiny.oid, T0) is None
    assert not of_type(engine, OrderUpdate)


def test_mark_is_mid_else_last_trade(engine: Engine) -> None:
    assert engine.mark(0) is None
    seed(engine)
    assert engine.mark(0) == pytest.approx(50000.0)
    assert engine.marks() == {0: pytest.approx(50000.0)}
    engine.place(MKT2, req(False, "49980", "0.3", tif="Ioc"), T0)  # empties the bids
    assert engine.mark(0) == pytest.approx(49980.0)


# --- cancel --------------------------------------------------------------------------------------


def test_cancel(engine: Engine) -> None:
    oid = rests(engine, "alice", req(True, "49000", "0.001"))
    engine.events.clear()
    assert engine.cancel("alice", 0, oid, T0 + 5) is None
    assert engine.books[0].best_bid() is None
    assert statuses(engine) == [(oid, "canceled")]
    assert BookChanged(0) in engine.events
    assert not of_type(engine, NonUserCancel)
    record = engine.find_record("alice", oid)
    assert record is not None
    assert (record.status, record.status_time) == ("canceled", T0 + 5)
    assert engine.cancel("alice", 0, oid, T0) == Rejected(Reject.MISSING_ORDER, 0)


def test_cancel_of_missing_or_foreign_orders(engine: Engine) -> None:
    oid = rests(engine, "alice", req(True, "49000", "0.001"))
    assert engine.cancel("bob", 0, oid, T0) == Rejected(Reject.MISSING_ORDER, 0)
    assert engine.cancel("alice", 0, 12345, T0) == Rejected(Reject.MISSING_ORDER, 0)
    assert engine.cancel("alice", 1, oid, T0) == Rejected(Reject.MISSING_ORDER, 1)
    assert engine.cancel("alice", 7, oid, T0) == Rejected(Reject.BAD_ASSET, 7)
    assert oid in engine.books[0].orders


def test_cancel_of_a_filled_order_is_missing(engine: Engine) -> None:
    oid = rests(engine, "alice", req(False, "50000", "0.001"))
    fills(engine, "bob", req(True, "50000", "0.001"))
    assert engine.cancel("alice", 0, oid, T0) == Rejected(Reject.MISSING_ORDER, 0)


def test_cancel_by_cloid(engine: Engine) -> None:
    oid = rests(engine, "alice", req(True, "49000", "0.001", cloid=C1))
    assert engine.cancel_by_cloid("bob", 0, C1, T0) == Rejected(Reject.MISSING_ORDER, 0)
    assert engine.cancel_by_cloid("alice", 0, C2, T0) == Rejected(Reject.MISSING_ORDER, 0)
    assert engine.cancel_by_cloid("alice", 0, C1, T0) is None
    assert statuses(engine)[-1] == (oid, "canceled")
    assert engine.cancel_by_cloid("alice", 0, C1, T0) == Rejected(Reject.MISSING_ORDER, 0)


# --- modify --------------------------------------------------------------------------------------


def test_modify_by_oid_is_cancel_and_replace(engine: Engine) -> None:
    old = rests(engine, "alice", req(True, "49000", "0.001", cloid=C1))
    engine.events.clear()
    result = engine.modify("alice", old, req(True, "49500", "0.002"), T0 + 3)
    assert isinstance(result, Resting)
    assert result.oid > old
    assert result.cloid == C1
    assert statuses(engine) == [(old, "canceled"), (result.oid, "open")]
    new_update = of_type(engine, OrderUpdate)[-1]
    assert (new_update.order.cloid, new_update.order.px, new_update.order.sz) == (C1, 495000, 200)
    assert list(engine.books[0].orders) == [result.oid]
    old_record = engine.find_record("alice", old)
    assert old_record is not None
    assert old_record.status == "canceled"
    by_cloid = engine.find_record("alice", C1)
    assert by_cloid is not None
    assert by_cloid.order.oid == result.oid


def test_modify_by_cloid(engine: Engine) -> None:
    first = rests(engine, "alice", req(True, "49000", "0.001", cloid=C1))
    second = engine.modify("alice", C1, req(True, "49100", "0.001"), T0)
    assert isinstance(second, Resting)
    third = engine.modify("alice", C1, req(True, "49200", "0.001"), T0)
    assert isinstance(third, Resting)
    assert first < second.oid < third.oid
    assert third.cloid == C1
    assert [o.oid for o in engine.open_orders("alice")] == [third.oid]
    assert engine.books[0].best_bid() == 492000


def test_modify_can_set_a_new_cloid(engine: Engine) -> None:
    old = rests(engine, "alice", req(True, "49000", "0.001", cloid=C1))
    result = engine.modify("alice", old, req(True, "49000", "0.001", cloid=C2), T0)
    assert isinstance(result, Resting)
    assert result.cloid == C2
    rests(engine, "alice", req(True, "48000", "0.001", cloid=C1))


def test_modify_into_a_cross_fills(engine: Engine) -> None:
    seed(engine)
    old = rests(engine, "alice", req(True, "49000", "0.001", cloid=C1))
    result = engine.modify("alice", old, req(True, "50010", "0.001"), T0)
    assert isinstance(result, Filled)
    assert (result.cloid, result.total_sz) == (C1, 100)


def test_cannot_modify_filled_canceled_foreign_or_unknown_orders(engine: Engine) -> None:
    filled = rests(engine, "alice", req(False, "50000", "0.001", cloid=C1))
    fills(engine, "bob", req(True, "50000", "0.001"))
    canceled = rests(engine, "alice", req(True, "49000", "0.001", cloid=C2))
    assert engine.cancel("alice", 0, canceled, T0) is None
    foreign = rests(engine, "bob", req(True, "49000", "0.001"))
    new = req(True, "49500", "0.001")
    for target in (filled, canceled, C1, C2, foreign, 999, "0xdeadbeef"):
        assert engine.modify("alice", target, new, T0) == Rejected(Reject.CANNOT_MODIFY, 0)
    assert list(engine.books[0].orders) == [foreign]


# --- the dead-man's switch -----------------------------------------------------------------------


def test_schedule_cancel_must_be_five_seconds_ahead(engine: Engine) -> None:
    assert engine.schedule_cancel("alice", T0 + 4_999, T0) is not None
    assert engine.scheduled_time("alice") is None
    assert engine.schedule_cancel("alice", T0 + 5_000, T0) is None
    assert engine.scheduled_time("alice") == T0 + 5_000
    assert engine.schedule_cancel("alice", None, T0) is None
    assert engine.scheduled_time("alice") is None
    assert engine.scheduled_time("nobody") is None


def test_run_schedules_cancels_everything_at_the_time(engine: Engine) -> None:
    btc = rests(engine, "alice", req(True, "49000", "0.001", cloid=C1))
    eth = rests(engine, "alice", req(False, "3000", "0.01", asset=1))
    bobs = rests(engine, "bob", req(True, "49000", "0.001"))
    assert engine.schedule_cancel("alice", T0 + 10_000, T0) is None
    engine.events.clear()
    engine.run_schedules(T0 + 9_999)
    assert engine.events == []
    engine.run_schedules(T0 + 10_000)
    assert sorted(statuses(engine)) == [(btc, "scheduledCancel"), (eth, "scheduledCancel")]
    assert sorted(of_type(engine, NonUserCancel), key=lambda e: e.oid) == [
        NonUserCancel("alice", 0, btc),
        NonUserCancel("alice", 1, eth),
    ]
    assert engine.open_orders("alice") == []
    assert [o.oid for o in engine.open_orders("bob")] == [bobs]
    assert engine.scheduled_time("alice") is None
    record = engine.find_record("alice", C1)
    assert record is not None
    assert record.status == "scheduledCancel"
    engine.events.clear()
    engine.run_schedules(T0 + 20_000)  # fired once only
    assert engine.events == []


def test_at_most_ten_scheduled_cancel_triggers_per_utc_day(engine: Engine) -> None:
    """The count resets at 00:00 UTC, not 24 hours after each trigger."""
    midnight = (T0 // DAY_MS + 1) * DAY_MS
    now = midnight - 3_600_000  # the ten triggers fire in the last hour of a UTC day
    for _ in range(MAX_SCHEDULED_CANCEL_TRIGGERS_PER_DAY):
        assert engine.schedule_cancel("alice", now + 5_000, now) is None
        now += 5_000
        engine.run_schedules(now)
        now += 1_000
    refused = engine.schedule_cancel("alice", now + 5_000, now)
    assert refused == "Too many scheduled cancel triggers today."
    assert engine.schedule_cancel("bob", now + 5_000, now) is None  # per user
    assert engine.schedule_cancel("alice", None, now) is None  # clearing is always allowed
    last = midnight - 1
    assert engine.schedule_cancel("alice", last + 5_000, last) == refused
    # Past midnight the day is new: a rolling 24 h window would refuse until 23:00 tomorrow.
    assert engine.schedule_cancel("alice", midnight + 5_000, midnight) is None
    engine.run_schedules(midnight + 5_000)  # one trigger of the new day
    for step in range(MAX_SCHEDULED_CANCEL_TRIGGERS_PER_DAY - 1):
        at = midnight + 10_000 * (step + 1)
        assert engine.schedule_cancel("alice", at + 5_000, at) is None
        engine.run_schedules(at + 5_000)
    at = midnight + 600_000
    assert engine.schedule_cancel("alice", at + 5_000, at) == refused


def test_setting_a_schedule_without_firing_it_is_not_a_trigger(engine: Engine) -> None:
    for step in range(3 * MAX_SCHEDULED_CANCEL_TRIGGERS_PER_DAY):
        assert engine.schedule_cancel("alice", T0 + 60_000, T0 + step) is None
        assert engine.schedule_cancel("alice", None, T0 + step) is None


# --- history -------------------------------------------------------------------------------------


def test_find_record_by_oid_and_cloid_after_close(engine: Engine) -> None:
    oid = rests(engine, "alice", req(False, "50000", "0.003", cloid=C1), T0)
    fills(engine, "bob", req(True, "50000", "0.003"), T0 + 9)
    by_oid = engine.find_record("alice", oid)
    by_cloid = engine.find_record("alice", C1)
    assert by_oid is not None
    assert by_oid is by_cloid
    assert (by_oid.status, by_oid.status_time) == ("filled", T0 + 9)
    assert (by_oid.order.sz, by_oid.order.orig_sz, by_oid.order.cloid) == (0, 300, C1)
    assert engine.find_record("bob", oid) is None
    assert engine.find_record("bob", C1) is None
    assert engine.find_record("alice", 999) is None
    assert engine.find_record("alice", C2) is None
    assert list(engine.history["alice"]) == [oid]


def test_record_follows_partial_fills_of_a_resting_order(engine: Engine) -> None:
    oid = rests(engine, "alice", req(False, "50000", "0.003"))
    fills(engine, "bob", req(True, "50000", "0.001"))
    assert engine.cancel("alice", 0, oid, T0 + 1) is None
    record = engine.find_record("alice", oid)
    assert record is not None
    assert (record.status, record.order.sz, record.order.orig_sz) == ("canceled", 200, 300)


# --- reduce-only orders after a position change --------------------------------------------------


def test_resting_reduce_only_orders_are_canceled_when_the_position_closes(engine: Engine) -> None:
    seed(engine)
    assert isinstance(engine.place("alice", req(True, "50010", "0.01", tif="Ioc"), T0), Filled)
    exit_order = engine.place("alice", req(False, "60000", "0.01", reduce_only=True), T0)
    assert isinstance(exit_order, Resting)
    # Alice closes the long another way: the resting reduce-only sell would now open a short.
    assert isinstance(engine.place("alice", req(False, "49990", "0.01", tif="Ioc"), T0 + 1), Filled)
    assert exit_order.oid not in engine.books[0].orders
    statuses = [(u.order.oid, u.status) for u in of_type(engine, OrderUpdate)]
    assert (exit_order.oid, "reduceOnlyCanceled") in statuses
    assert engine.accounts["alice"].position(0).szi == 0


def test_reduce_only_orders_made_wrong_by_a_fill_are_canceled_in_the_order_they_rested(
    engine: Engine,
) -> None:
    seed(engine)
    assert isinstance(engine.place("alice", req(True, "50010", "0.01", tif="Ioc"), T0), Filled)
    prices = ("61000", "60000", "62000")  # rested in this order, none at the best price first
    exits = [engine.place("alice", req(False, px, "0.01", reduce_only=True), T0) for px in prices]
    oids = [getattr(order, "oid", None) for order in exits]
    engine.events.clear()
    assert isinstance(engine.place("alice", req(False, "49990", "0.01", tif="Ioc"), T0 + 1), Filled)
    updates = of_type(engine, OrderUpdate)
    canceled = [u.order.oid for u in updates if u.status == "reduceOnlyCanceled"]
    assert canceled == oids
    assert engine.open_order_count("alice") == 0
    assert engine.order_margin("alice") == 0.0


def test_reduce_only_orders_larger_than_a_shrunk_position_are_canceled(engine: Engine) -> None:
    seed(engine)
    assert isinstance(engine.place("alice", req(True, "50020", "0.03", tif="Ioc"), T0), Filled)
    small = engine.place("alice", req(False, "60000", "0.01", reduce_only=True), T0)
    large = engine.place("alice", req(False, "61000", "0.03", reduce_only=True), T0)
    assert isinstance(small, Resting)
    assert isinstance(large, Resting)
    # Selling 0.02 leaves 0.01 long: the 0.03 reduce-only sell could flip it, the 0.01 cannot.
    assert isinstance(engine.place("alice", req(False, "49990", "0.02", tif="Ioc"), T0 + 1), Filled)
    assert small.oid in engine.books[0].orders
    assert large.oid not in engine.books[0].orders
    record = engine.find_record("alice", large.oid)
    assert record is not None
    assert record.status == "reduceOnlyCanceled"


def test_cloid_history_is_forgotten_with_its_record(
    engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("mm.venues.sim.engine.HISTORY_PER_USER", 2)
    first = engine.place("alice", req(True, "40000", "0.01", cloid=C1), T0)
    assert isinstance(first, Resting)
    assert engine.cancel("alice", 0, first.oid, T0) is None
    for _ in range(2):
        engine.place("alice", req(True, "40000", "0.01"), T0)
    assert engine.find_record("alice", C1) is None
    assert C1 not in engine._cloid_history.get("alice", {})


# --- funding -------------------------------------------------------------------------------------


def test_funding_is_paid_on_every_open_position_at_the_mark() -> None:
    engine = new_engine()
    seed(engine)  # BTC mark (49990 + 50010) / 2 = 50000
    fills(engine, "alice", req(True, "50010", "0.01", tif="Ioc"))  # long 0.01 BTC
    fills(engine, "bob", req(False, "49990", "0.02", tif="Ioc"))  # short 0.02 BTC
    engine.events.clear()
    alice, bob = engine.accounts["alice"].usdc, engine.accounts["bob"].usdc
    hour = T0 - T0 % 3_600_000 + 3_600_000
    engine.pay_funding(0.0000125, hour)
    mark = engine.mark(0)
    assert mark is not None
    payments = of_type(engine, FundingPayment)
    assert [(p.user, p.asset, p.szi, p.rate, p.time) for p in payments] == [
        ("alice", 0, 1_000, 0.0000125, hour),
        ("bob", 0, -2_000, 0.0000125, hour),
    ]
    # A positive rate: the long pays, the short receives; rounded to USDC's 6 decimals.
    assert payments[0].usdc == round(-0.01 * mark * 0.0000125, 6) < 0
    assert payments[1].usdc == round(0.02 * mark * 0.0000125, 6) > 0
    assert engine.accounts["alice"].usdc == pytest.approx(alice + payments[0].usdc)
    assert engine.accounts["bob"].usdc == pytest.approx(bob + payments[1].usdc)
    assert list(engine.fundings["alice"]) == [payments[0]]
    assert "mkt" not in engine.fundings  # the synthetic market pays nothing
    engine.events.clear()
    engine.pay_funding(-0.0001, hour + 3_600_000)  # negative: shorts pay longs
    assert [p.usdc > 0 for p in of_type(engine, FundingPayment)] == [True, False]
    engine.events.clear()
    engine.pay_funding(0.0, hour + 7_200_000)  # no rate: nothing
    assert engine.events == []


# --- the open-order limit ------------------------------------------------------------------------


def test_an_account_holds_at_most_1000_open_orders_reduce_only_refused_from_1000() -> None:
    """The venue's user limit: 1000 open orders, one more per 5M USDC traded (at most 5000);
    with 1000 or more open a reduce-only order is refused whatever the limit."""
    engine = new_engine()
    seed(engine)
    fills(engine, "alice", req(True, "50010", "0.01", tif="Ioc"))  # a long to reduce
    for i in range(1000):
        rests(engine, "alice", req(True, str(40000 - i), "0.001"))
    assert engine.open_order_count("alice") == 1000
    assert engine.open_order_limit("alice") == 1000
    assert_rejected_without_trace(
        engine, "alice", req(True, "30000", "0.001"), Reject.OPEN_ORDER_LIMIT
    )
    assert_rejected_without_trace(
        engine, "alice", req(False, "60000", "0.001", reduce_only=True), Reject.OPEN_ORDER_LIMIT
    )
    assert wire.error_text(Rejected(Reject.OPEN_ORDER_LIMIT, 0)) == "Too many open orders. asset=0"
    # Another account is not affected; a canceled order frees a place.
    rests(engine, "bob", req(True, "30000", "0.001"))
    oid = engine.open_orders("alice")[0].oid
    assert engine.cancel("alice", 0, oid, T0) is None
    rests(engine, "alice", req(True, "30000", "0.001"))
    # 5M USDC traded: one more order, but reduce-only stays refused at 1000 open.
    engine.accounts["alice"].cum_volume = 5_000_000.0
    assert engine.open_order_limit("alice") == 1001
    rests(engine, "alice", req(True, "30001", "0.001"))
    assert engine.open_order_count("alice") == 1001
    assert_rejected_without_trace(
        engine, "alice", req(True, "30002", "0.001"), Reject.OPEN_ORDER_LIMIT
    )
    engine.accounts["alice"].cum_volume = 1e12
    assert engine.open_order_limit("alice") == 5000
    assert_rejected_without_trace(
        engine, "alice", req(False, "60000", "0.001", reduce_only=True), Reject.OPEN_ORDER_LIMIT
    )


def test_order_and_trade_ids_start_where_they_are_told() -> None:
    # An embedded simulator started again in the same run_dir must not give a previous run's
    # ids again: the service's journal remembers its fills by (tid, oid) and drops repeats.
    engine = Engine([BTC, ETH], system_users={MKT, MKT2}, first_id=1_796_000_000_000)
    engine.fund("alice", 100_000.0)
    seed(engine)
    filled = fills(engine, "alice", req(True, "50010", "0.01", tif="Ioc"))
    assert filled.oid > 1_796_000_000_000
    (fill,) = engine.fills["alice"]
    assert fill.tid >= 1_796_000_000_000
    assert fill.oid == filled.oid
