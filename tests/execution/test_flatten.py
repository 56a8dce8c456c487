"""The flattener: the pure pricing of each reducing order, and the shell against a fake venue
(one that fills every IOC, one that never fills) on Trio's autojump clock."""

from __future__ import annotations

import math
from typing import cast

import attrs
import pytest
import trio
import trio.testing
from hypothesis import given
from hypothesis import strategies as st
from prometheus_client import CollectorRegistry

from mm.execution.cancel_all import CancelAll, CancelVenue
from mm.execution.dispatch import Dispatcher
from mm.execution.flatten import (
    FlattenConfig,
    Flattener,
    FlattenOrder,
    FlattenResult,
    flatten_order,
)
from mm.execution.legs import LegExecutor
from mm.execution.orders import OrderRouter
from mm.execution.permissions import OPEN, Grant, Level, PermissionBoard, Source
from mm.execution.pretrade import PretradeConfig
from mm.model import (
    AccountState,
    CancelOrder,
    Instrument,
    OpenOrder,
    PlaceOrder,
    Position,
    Side,
    Tif,
)
from mm.venues.base import VenueAdapter
from mm.venues.hyperliquid.instruments import AssetMeta, instrument_of
from tests.ids import hl_oid

WIDE = PretradeConfig(max_order_notional_usd=1e9)

# --- flatten_order ---------------------------------------------------------------------------

Case = tuple[float, float | None, float | None, int, float, PretradeConfig, FlattenOrder | None]

CASES: dict[str, Case] = {
    "long_sells_at_bid_minus_slippage": (
        1.5,
        100.0,
        101.0,
        2,
        10.0,
        WIDE,
        FlattenOrder(Side.SELL, 99.9, 1.5),
    ),
    "short_buys_at_ask_plus_slippage": (
        -2.0,
        100.0,
        101.0,
        2,
        10.0,
        WIDE,
        FlattenOrder(Side.BUY, 101.101, 2.0),
    ),
    "no_slippage_hits_the_best_price": (
        -0.25,
        50.0,
        50.5,
        3,
        0.0,
        WIDE,
        FlattenOrder(Side.BUY, 50.5, 0.25),
    ),
    "large_slippage": (3.0, 200.0, 201.0, 0, 100.0, WIDE, FlattenOrder(Side.SELL, 198.0, 3.0)),
    "flat": (0.0, 100.0, 101.0, 2, 10.0, WIDE, None),
    "dust_long": (0.004, 100.0, 101.0, 2, 10.0, WIDE, None),
    "dust_short": (-0.004, 100.0, 101.0, 2, 10.0, WIDE, None),
    "less_than_a_lot": (0.009, 100.0, 101.0, 2, 10.0, WIDE, None),
    "long_without_bids": (1.0, None, 101.0, 2, 10.0, WIDE, None),
    "short_without_asks": (-1.0, 100.0, None, 2, 10.0, WIDE, None),
    "long_without_asks_still_sells": (
        1.0,
        100.0,
        None,
        2,
        0.0,
        WIDE,
        FlattenOrder(Side.SELL, 100.0, 1.0),
    ),
    "short_without_bids_still_buys": (
        -1.0,
        None,
        101.0,
        2,
        0.0,
        WIDE,
        FlattenOrder(Side.BUY, 101.0, 1.0),
    ),
    "capped_by_notional_at_the_order_price": (
        -5.0,
        99.0,
        100.0,
        2,
        0.0,
        PretradeConfig(max_order_notional_usd=250.0),
        FlattenOrder(Side.BUY, 100.0, 2.5),
    ),
    "notional_cap_rounds_down": (
        5.0,
        100.0,
        101.0,
        2,
        10.0,  # px 99.9: 250 / 99.9 = 2.5025...
        PretradeConfig(max_order_notional_usd=250.0),
        FlattenOrder(Side.SELL, 99.9, 2.5),
    ),
    "notional_cap_below_one_lot": (
        5.0,
        100.0,
        101.0,
        0,
        0.0,
        PretradeConfig(max_order_notional_usd=99.0),
        None,
    ),
    "size_rounded_down_not_to_nearest": (
        1.239,
        100.0,
        101.0,
        2,
        0.0,
        WIDE,
        FlattenOrder(Side.SELL, 100.0, 1.23),
    ),
    "size_rounded_down_whole_lots": (
        -2.7,
        100.0,
        101.0,
        0,
        0.0,
        WIDE,
        FlattenOrder(Side.BUY, 101.0, 2.0),
    ),
    "float_representation_is_not_a_lot_short": (
        0.3,
        100.0,
        101.0,
        1,
        0.0,
        WIDE,
        FlattenOrder(Side.SELL, 100.0, 0.3),
    ),
}


def perp(sz_decimals: int, coin: str = "BTC") -> Instrument:
    """A Hyperliquid perpetual's instrument, as its provider builds it from the metadata."""
    return instrument_of(AssetMeta(0, coin, sz_decimals, 50))


@pytest.mark.parametrize(
    ("position", "bid", "ask", "decimals", "slippage", "limits", "expected"),
    CASES.values(),
    ids=CASES.keys(),
)
def test_flatten_order(
    position: float,
    bid: float | None,
    ask: float | None,
    decimals: int,
    slippage: float,
    limits: PretradeConfig,
    expected: FlattenOrder | None,
) -> None:
    order = flatten_order(position, bid, ask, perp(decimals), slippage, limits)
    if expected is None:
        assert order is None
        return
    assert order is not None
    assert order.side is expected.side
    assert order.px == pytest.approx(expected.px, rel=1e-12)
    assert order.sz == expected.sz


lot_decimals = st.integers(min_value=0, max_value=5)


@given(
    position=st.floats(min_value=-1e4, max_value=1e4, allow_nan=False),
    bid=st.floats(min_value=1e-3, max_value=1e5),
    spread=st.floats(min_value=0.0, max_value=0.05),
    decimals=lot_decimals,
    slippage=st.floats(min_value=0.0, max_value=500.0),
    max_notional=st.floats(min_value=1.0, max_value=1e7),
    have_bid=st.booleans(),
    have_ask=st.booleans(),
)
def test_flatten_order_properties(
    position: float,
    bid: float,
    spread: float,
    decimals: int,
    slippage: float,
    max_notional: float,
    have_bid: bool,
    have_ask: bool,
) -> None:
    ask = bid * (1 + spread)
    best_bid, best_ask = (bid if have_bid else None), (ask if have_ask else None)
    limits = PretradeConfig(max_order_notional_usd=max_notional)
    lot = 10.0**-decimals

    order = flatten_order(position, best_bid, best_ask, perp(decimals), slippage, limits)

    opposite = best_bid if position > 0 else best_ask
    if order is None:  # flat, no price to hit, or the limits allow less than one lot
        if opposite is not None and abs(position) >= lot:
            px = opposite * (1 - slippage * 1e-4 if position > 0 else 1 + slippage * 1e-4)
            assert min(abs(position), max_notional / px) < lot * (1 + 1e-6)
        return
    # On the reducing side, marketable.
    assert opposite is not None
    if position > 0:
        assert order.side is Side.SELL
        assert order.px <= bid
    else:
        assert order.side is Side.BUY
        assert order.px >= ask
    # Never more than the position (up to float error far below a lot): it never flips.
    assert 0 < order.sz <= abs(position) + lot * 1e-6
    # Within the pre-trade limits.
    assert order.sz * order.px <= max_notional * (1 + 1e-9)
    # A whole number of lots, and no more than one lot below what the limits allow.
    lots = order.sz / lot
    assert lots == pytest.approx(round(lots), abs=1e-6)
    assert order.sz > min(abs(position), max_notional / order.px) - lot * (1 + 1e-6)


@given(
    lots=st.integers(min_value=-(10**6), max_value=10**6).filter(lambda n: n != 0),
    decimals=lot_decimals,
    bid=st.floats(min_value=1e-2, max_value=1e5),
)
def test_a_whole_lot_position_within_limits_goes_in_one_order(
    lots: int, decimals: int, bid: float
) -> None:
    position = round(lots * 10.0**-decimals, decimals)  # as the venue reports it
    order = flatten_order(position, bid, bid * 1.001, perp(decimals), 25.0, WIDE)
    if abs(position) * bid * 1.01 > 1e9:
        return
    assert order is not None
    assert order.sz == abs(position)
    assert order.side is (Side.SELL if position > 0 else Side.BUY)


# --- the shell: fakes of the adapter's parts the flattener uses -------------------------------


@attrs.define
class FakeBook:
    best_bid: float | None
    best_ask: float | None


@attrs.define
class FakeBus:
    books: dict[str, FakeBook]

    def latest(self, coin: str) -> FakeBook | None:
        return self.books.get(coin)


@attrs.define
class FakeClient:
    """The venue's account: positions, open orders, asset metadata."""

    positions: dict[str, float]
    orders: list[OpenOrder] = attrs.field(factory=list)
    decimals: dict[str, int] = attrs.field(factory=dict)
    canceled: list[CancelOrder] = attrs.field(factory=list)
    reads: int = 0
    slow_s: float = 0.0  # each request to the venue takes this long
    flat_from: float | None = None  # Trio time from which every position reads zero

    async def open_orders(self) -> list[OpenOrder]:
        await trio.sleep(self.slow_s)
        return list(self.orders)

    async def cancel(self, cancels: list[CancelOrder]) -> list[None]:
        await trio.lowlevel.checkpoint()
        self.canceled.extend(cancels)
        gone = {c.oid for c in cancels}
        self.orders = [o for o in self.orders if o.oid not in gone]
        return [None] * len(cancels)

    async def account_state(self) -> AccountState:
        await trio.sleep(self.slow_s)
        self.reads += 1
        if self.flat_from is not None and trio.current_time() >= self.flat_from:
            self.positions = dict.fromkeys(self.positions, 0.0)
        positions = tuple(
            Position(coin, szi, 100.0, 0.0, None, 0.0, 1) for coin, szi in self.positions.items()
        )
        return AccountState(0, 1e6, 0.0, 1e6, positions)

    def instrument(self, coin: str) -> Instrument:
        return perp(self.decimals.get(coin, 2), coin)


@attrs.define
class FakeRouter:
    """Sends IOCs: each fills completely when ``fills`` (the position shrinks), else nothing."""

    client: FakeClient
    bus: FakeBus
    fills: bool = True
    fail_first: int = 0
    placed: list[tuple[float, PlaceOrder]] = attrs.field(factory=list)
    active_seen: list[set[str]] = attrs.field(factory=list)
    flattener: Flattener | None = None
    bid_step: float = 0.0  # the book moves this much after each round
    client_ids: int = 0

    def new_client_id(self) -> str:
        """The venue adapter's ids, as the router hands them out."""
        self.client_ids += 1
        return f"0x{self.client_ids:032x}"

    async def place(self, orders: list[PlaceOrder]) -> None:
        await trio.lowlevel.checkpoint()
        now = trio.current_time()
        self.placed.extend((now, order) for order in orders)
        if self.flattener is not None:
            self.active_seen.append(set(self.flattener.active))
        if self.fail_first > 0:
            self.fail_first -= 1
            raise RuntimeError("venue said no")
        for coin, book in list(self.bus.books.items()):  # a new book, as the feed publishes
            if book.best_bid is not None:
                self.bus.books[coin] = FakeBook(book.best_bid + self.bid_step, book.best_ask)
        if not self.fills:
            return
        for order in orders:
            left = self.client.positions[order.coin] + order.side.sign * order.sz
            self.client.positions[order.coin] = round(left, 8)


@attrs.define
class FakeAdapter:
    client: FakeClient | None
    router: FakeRouter | None
    bus: FakeBus


def open_order(coin: str, oid: int) -> OpenOrder:
    return OpenOrder(coin, Side.BUY, 90.0, 1.0, 1.0, hl_oid(oid), None, 0)


def make(
    positions: dict[str, float],
    *,
    config: FlattenConfig | None = None,
    limits: PretradeConfig = WIDE,
    fills: bool = True,
    books: dict[str, FakeBook] | None = None,
) -> tuple[Flattener, FakeAdapter, FakeClient, FakeRouter, CollectorRegistry]:
    client = FakeClient(dict(positions))
    default = {coin: FakeBook(100.0, 101.0) for coin in positions}
    bus = FakeBus(default if books is None else books)
    router = FakeRouter(client, bus, fills)
    adapter = FakeAdapter(client, router, bus)
    registry = CollectorRegistry()
    board = PermissionBoard()
    flattener = Flattener(
        config or FlattenConfig(),
        cast(VenueAdapter, adapter),
        limits,
        registry,
        board,
        board.slot(Source.FLATTENER),
        CancelAll(lambda: cast(CancelVenue | None, adapter.client)),
        legs=LegExecutor(
            lambda: cast(OrderRouter | None, adapter.router),
            Dispatcher(),
            client.instrument,
        ),
    )
    router.flattener = flattener
    return flattener, adapter, client, router, registry


def runs(registry: CollectorRegistry, outcome: str) -> float | None:
    return registry.get_sample_value("mm_flatten_runs_total", {"outcome": outcome})


async def test_flatten_completes(autojump_clock: trio.testing.MockClock) -> None:
    flattener, _, client, router, registry = make(
        {"BTC": 0.5, "ETH": -3.0, "SOL": 2.0},
        limits=PretradeConfig(max_order_notional_usd=102.0),  # about one coin at 101
    )
    client.orders = [open_order("BTC", 1), open_order("SOL", 2), open_order("ETH", 3)]
    started = trio.current_time()

    result = await flattener.flatten(["ETH", "BTC", "ETH"], started + 60.0)

    assert result.done is True
    assert result.remaining == {}
    # Round 1: BTC 0.5 and ETH 1; rounds 2 and 3: ETH 1 (the notional limit allows 1).
    assert result.orders == 4
    assert result.seconds == pytest.approx(3 * FlattenConfig().reprice_every_s)
    assert client.positions == {"BTC": 0.0, "ETH": 0.0, "SOL": 2.0}  # SOL left alone
    assert sorted(c.oid for c in client.canceled if c.oid is not None) == [hl_oid(1), hl_oid(3)]
    assert [o.oid for o in client.orders] == [hl_oid(2)]
    placed = [order for _, order in router.placed]
    assert [(o.coin, o.side, o.sz) for o in placed] == [
        ("BTC", Side.SELL, 0.5),
        ("ETH", Side.BUY, 1.0),
        ("ETH", Side.BUY, 1.0),
        ("ETH", Side.BUY, 1.0),
    ]
    assert all(o.tif is Tif.IOC and o.reduce_only for o in placed)
    assert len({o.cloid for o in placed}) == len(placed)
    # The venue's adapter makes the client order ids (its format, its mark of mm's orders).
    assert [o.cloid for o in placed] == [f"0x{i:032x}" for i in range(1, 5)]
    assert router.active_seen == [{"BTC", "ETH"}] * 3  # the symbols, during the run
    assert flattener.active == set()
    assert flattener.last == result
    assert flattener.status() == {"active": [], "last": attrs.asdict(result)}
    assert runs(registry, "done") == 1.0
    assert runs(registry, "deadline_missed") in (None, 0.0)
    orders = registry.get_sample_value("mm_flatten_orders_total", {"symbol": "ETH"})
    assert orders == 3.0
    assert registry.get_sample_value("mm_flatten_orders_total", {"symbol": "BTC"}) == 1.0
    assert registry.get_sample_value("mm_flatten_seconds_count") == 1.0


async def test_already_flat_sends_nothing(autojump_clock: trio.testing.MockClock) -> None:
    flattener, _, client, router, registry = make({"BTC": 0.0, "ETH": 0.001})
    client.decimals["ETH"] = 2  # 0.001 ETH is dust
    result = await flattener.flatten(["BTC", "ETH"], trio.current_time() + 10.0)
    assert result == FlattenResult(True, {}, 0, 0.0)
    assert router.placed == []
    assert runs(registry, "done") == 1.0


async def test_a_venue_that_never_fills(autojump_clock: trio.testing.MockClock) -> None:
    config = FlattenConfig(
        slippage_bps=10.0, slippage_step_bps=25.0, max_slippage_bps=60.0, reprice_every_s=1.0
    )
    books = {"BTC": FakeBook(100.0, 101.0), "ETH": FakeBook(200.0, 201.0)}
    flattener, _, _, router, registry = make(
        {"BTC": 0.5, "ETH": -1.0}, config=config, fills=False, books=books
    )
    router.bid_step = -1.0  # the bids fall by 1 after every round
    started = trio.current_time()

    with trio.fail_after(60):
        result = await flattener.flatten(["BTC", "ETH"], started + 9.5)

    assert result.done is False
    assert result.remaining == {"BTC": 0.5, "ETH": -1.0}
    assert result.seconds == pytest.approx(9.5)
    assert trio.current_time() == pytest.approx(started + 9.5)
    assert result.orders == 20  # rounds at 0, 1, ..., 9 s, two symbols each
    sells = [(at - started, o.px) for at, o in router.placed if o.coin == "BTC"]
    buys = [o.px for _, o in router.placed if o.coin == "ETH"]
    bps = [10.0, 35.0, 60.0, 60.0, 60.0, 60.0, 60.0, 60.0, 60.0, 60.0]
    assert [at for at, _ in sells] == pytest.approx([float(n) for n in range(10)])
    # Re-priced from the latest book each round, with more slippage up to the cap.
    assert [px for _, px in sells] == pytest.approx(
        [(100.0 - n) * (1 - b * 1e-4) for n, b in enumerate(bps)]
    )
    assert buys == pytest.approx([201.0 * (1 + b * 1e-4) for b in bps])
    assert all(o.side is Side.SELL for _, o in router.placed if o.coin == "BTC")
    assert flattener.active == set()
    assert flattener.last == result
    assert runs(registry, "deadline_missed") == 1.0
    assert runs(registry, "done") in (None, 0.0)


async def test_positions_are_read_again_at_the_deadline(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """IOCs sent in the last round may have filled by the deadline: the venue's word decides."""
    config = FlattenConfig(reprice_every_s=1.0)
    flattener, _, client, router, registry = make({"BTC": 0.5}, config=config, fills=False)
    started = trio.current_time()
    client.flat_from = started + 9.2  # after the last read of the loop (at 9 s)
    result = await flattener.flatten(["BTC"], started + 9.5)
    assert result.done is True
    assert result.remaining == {}
    assert result.orders == 10
    assert len(router.placed) == 10
    assert runs(registry, "done") == 1.0


@pytest.mark.parametrize(
    ("slow_s", "deadline_in"),
    [(5.0, 3.0), (0.0, 0.0), (0.0, -1.0)],
    ids=["venue_slower_than_the_deadline", "deadline_now", "deadline_passed"],
)
async def test_a_deadline_before_the_first_position_read_is_not_done(
    autojump_clock: trio.testing.MockClock, slow_s: float, deadline_in: float
) -> None:
    """Positions never read are not flat: the result must not say done.

    ``remaining`` starts as ``{}``; when the deadline cuts the run before the first read (a slow
    cancel or position request, or a deadline already due), the shielded re-read is skipped
    (``if remaining:``) and the run reports done=True with nothing remaining, so the caller
    never escalates the missed deadline.
    """
    flattener, _, client, router, registry = make({"BTC": 0.5})
    client.orders = [open_order("BTC", 1)]
    client.slow_s = slow_s
    result = await flattener.flatten(["BTC"], trio.current_time() + deadline_in)
    assert router.placed == []
    assert result.done is False
    assert set(result.remaining) == {"BTC"}  # its size, or NaN when the venue did not answer
    assert runs(registry, "deadline_missed") == 1.0


async def test_a_failed_round_is_retried(autojump_clock: trio.testing.MockClock) -> None:
    flattener, _, client, router, _ = make({"BTC": 0.5})
    router.fail_first = 1
    result = await flattener.flatten(["BTC"], trio.current_time() + 30.0)
    assert result.done is True
    assert result.orders == 2
    assert client.positions["BTC"] == 0.0
    slippages = [round((1 - o.px / 100.0) / 1e-4, 6) for _, o in router.placed]
    assert slippages == [10.0, 20.0]


async def test_a_symbol_without_a_book_waits_for_one(
    autojump_clock: trio.testing.MockClock,
) -> None:
    flattener, _, _, router, _ = make({"BTC": 0.5}, books={}, fills=True)
    result = await flattener.flatten(["BTC"], trio.current_time() + 3.0)
    assert result.done is False
    assert result.remaining == {"BTC": 0.5}
    assert result.orders == 0
    assert router.placed == []


async def test_without_a_client_nothing_is_known_flat(
    autojump_clock: trio.testing.MockClock,
) -> None:
    flattener, adapter, _, _, registry = make({"BTC": 0.5})
    adapter.client = None
    result = await flattener.flatten(["BTC"], trio.current_time() + 5.0)
    assert result.done is False
    assert set(result.remaining) == {"BTC"}
    assert math.isnan(result.remaining["BTC"])
    assert result.orders == 0
    assert runs(registry, "deadline_missed") == 1.0


async def test_active_is_cleared_when_cancelled(autojump_clock: trio.testing.MockClock) -> None:
    flattener, _, _, _, _ = make({"BTC": 0.5}, fills=False)
    with trio.move_on_after(2.0):
        await flattener.flatten(["BTC"], trio.current_time() + 100.0)
    assert flattener.active == set()


async def test_two_runs_on_different_symbols(autojump_clock: trio.testing.MockClock) -> None:
    """A run ending removes only its own symbols from ``active``."""
    flattener, _, client, _, _ = make({"BTC": 0.5, "ETH": 1.0}, fills=False)
    seen: list[set[str]] = []
    async with trio.open_nursery() as nursery:
        nursery.start_soon(flattener.flatten, ["BTC"], trio.current_time() + 2.0)
        nursery.start_soon(flattener.flatten, ["ETH"], trio.current_time() + 5.0)
        await trio.sleep(3.0)
        seen.append(set(flattener.active))
    assert seen == [{"ETH"}]
    assert flattener.active == set()
    assert client.positions == {"BTC": 0.5, "ETH": 1.0}


# --- the permission board ---------------------------------------------------------------------


async def test_the_symbols_it_flattens_are_closed_to_quoting(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """While it runs, the flattener's slot closes its symbols to the strategy (not to its own
    reduce-only orders); once it ends they are open again."""
    flattener, _, _, _, _ = make({"BTC": 0.5, "ETH": 1.0}, fills=False)
    board = flattener.board
    seen: list[tuple[str | None, str | None, bool]] = []
    async with trio.open_nursery() as nursery:
        nursery.start_soon(flattener.flatten, ["BTC"], trio.current_time() + 2.0)
        await trio.sleep(1.0)
        seen.append(
            (
                board.permission("BTC").closed,
                board.permission("ETH").closed,
                board.may_send("BTC", Side.SELL, 0.5, reduce_only=True),
            )
        )
    assert seen == [("the flattener holds the symbol", None, True)]
    assert board.permission("BTC").closed is None


async def test_a_halted_board_sends_nothing(autojump_clock: trio.testing.MockClock) -> None:
    """HALT or the kill switch on the board: the rounds go on reading, but no order goes out,
    and orders go out again once the board allows them."""
    flattener, _, client, router, _ = make({"BTC": 0.5})
    killswitch = flattener.board.slot(Source.KILLSWITCH)
    killswitch.set(Grant(Level.HALTED, "the kill switch is tripped"))
    result = await flattener.flatten(["BTC"], trio.current_time() + 2.0)
    assert not result.done
    assert result.orders == 0
    assert router.placed == []
    assert client.positions == {"BTC": 0.5}
    killswitch.set(OPEN)
    assert (await flattener.flatten(["BTC"], trio.current_time() + 2.0)).done
    assert [(o.coin, o.side, o.sz) for _, o in router.placed] == [("BTC", Side.SELL, 0.5)]
