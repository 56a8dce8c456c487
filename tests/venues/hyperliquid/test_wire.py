"""Tests of mm.venues.hyperliquid.wire: passive price rounding, sizes, wires, actions, nonces.

The official SDK is the oracle for the bytes that get signed: for the same orders, cancels,
modifies and schedules, our actions must msgpack (and so hash) exactly like the SDK's, key
order included. The simulator's AssetSpec is a second judge of the prices we send.
"""

from __future__ import annotations

import itertools
import re
from decimal import Decimal
from typing import Any

import pytest
from eth_account import Account
from hyperliquid.exchange import Exchange
from hyperliquid.utils import signing as sdk
from hyperliquid.utils.types import Cloid
from hypothesis import given, settings
from hypothesis import strategies as st

from mm.model import ModifyOrder, PlaceOrder, Side, Tif
from mm.venues.hyperliquid import numbers
from mm.venues.hyperliquid.signing import action_hash, pack_action
from mm.venues.hyperliquid.wire import (
    TIF_WIRE,
    NonceSource,
    batch_modify_action,
    cancel_action,
    cancel_by_cloid_action,
    cancel_by_cloid_wire,
    cancel_wire,
    format_px,
    format_sz,
    modify_action,
    modify_wire,
    new_cloid,
    order_action,
    order_wire,
    schedule_cancel_action,
)
from mm.venues.sim.assets import AssetSpec
from tests.ids import hl_oid

KEY = "0x0123456789012345678901234567890123456789012345678901234567890123"
NONCE = 1_717_171_717_171
CLOID = "0x0000000000000000000000000000abcd"
UNIVERSE = [("BTC", 5), ("ETH", 4), ("SOL", 2), ("DOGE", 0), ("HYPE", 2), ("ZERO", 6)]
SZ_DECIMALS = {name: decimals for name, decimals in UNIVERSE}
ASSET = {name: index for index, (name, _) in enumerate(UNIVERSE)}
WIRE_NUMBER = re.compile(r"^(0|[1-9]\d*)(\.\d*[1-9])?$")

sz_decimals_st = st.integers(min_value=0, max_value=6)
sides = st.sampled_from(list(Side))
tifs = st.sampled_from(list(Tif))
cloids = st.binary(min_size=16, max_size=16).map(lambda raw: "0x" + raw.hex())


def exact(value: float, decimals: int) -> Decimal:
    return Decimal(repr(value)).scaleb(decimals)


# --- format_px -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("px", "sz_decimals", "side", "text"),
    [
        (30135.0, 5, Side.BUY, "30135"),  # valid prices go out unchanged, SDK style
        (30135.0, 5, Side.SELL, "30135"),
        (79146.04, 5, Side.BUY, "79146"),
        (79146.04, 5, Side.SELL, "79147"),  # 79146.1 has 6 figures
        (3120.55, 4, Side.BUY, "3120.5"),
        (3120.55, 4, Side.SELL, "3120.6"),
        (0.0123456, 0, Side.BUY, "0.012345"),
        (0.0123456, 0, Side.SELL, "0.012346"),
        (2.11305, 1, Side.BUY, "2.113"),  # the allMids value is not a valid order price
        (2.11305, 1, Side.SELL, "2.1131"),
        (0.07, 4, Side.SELL, "0.07"),
        (4.35, 4, Side.BUY, "4.35"),
        (123456.7, 5, Side.BUY, "123456"),
        (99999.95, 5, Side.SELL, "100000"),
        (0.001, 4, Side.SELL, "0.01"),
    ],
)
def test_format_px_examples(px: float, sz_decimals: int, side: Side, text: str) -> None:
    assert format_px(px, sz_decimals, side) == text


@pytest.mark.parametrize("px", [0.0, -1.0, float("nan"), float("inf"), float("-inf")])
@pytest.mark.parametrize("side", list(Side))
def test_format_px_rejects_unusable_prices(px: float, side: Side) -> None:
    with pytest.raises(ValueError, match="positive finite"):
        format_px(px, 2, side)


def test_format_px_buy_below_one_tick_has_no_passive_price() -> None:
    with pytest.raises(ValueError, match="no valid buy price"):
        format_px(0.001, 4, Side.BUY)


def test_format_px_rejects_bad_sz_decimals() -> None:
    with pytest.raises(ValueError, match="szDecimals"):
        format_px(1.0, 7, Side.BUY)


@given(sz_decimals_st, sides, st.data())
def test_format_px_is_valid_passive_and_nearest(
    sz_decimals: int, side: Side, data: st.DataObject
) -> None:
    decimals = numbers.px_decimals(sz_decimals)
    one_tick = 10.0**-decimals
    # Below 10**8 ticks the gap between valid prices stays under 1,000 ticks (cheap to scan).
    px = data.draw(st.floats(min_value=one_tick, max_value=10.0 ** (8 - decimals)))
    text = format_px(px, sz_decimals, side)

    assert WIRE_NUMBER.match(text), text
    assert numbers.is_valid_px(text, sz_decimals)
    spec = AssetSpec(0, "X", sz_decimals)
    ticks = spec.parse_px(text)
    assert ticks is not None
    assert numbers.wire_str(ticks, decimals) == text

    asked = exact(px, decimals)
    if side is Side.BUY:
        assert ticks <= asked
        assert float(text) <= px
        between = range(ticks + 1, int(asked.to_integral_value(rounding="ROUND_FLOOR")) + 1)
    else:
        assert ticks >= asked
        assert float(text) >= px
        between = range(int(asked.to_integral_value(rounding="ROUND_CEILING")), ticks)
    assert not any(numbers.is_valid_ticks(t, decimals) for t in between)


@given(sz_decimals_st, sides, st.floats(min_value=1e-6, max_value=1e15))
def test_format_px_is_valid_at_any_magnitude(sz_decimals: int, side: Side, px: float) -> None:
    try:
        text = format_px(px, sz_decimals, side)
    except ValueError:
        assert side is Side.BUY
        assert px < 10.0 ** -numbers.px_decimals(sz_decimals)
        return
    assert AssetSpec(0, "X", sz_decimals).parse_px(text) is not None
    assert (float(text) <= px) if side is Side.BUY else (float(text) >= px)
    assert format_px(float(text), sz_decimals, side) == text  # idempotent


# --- format_sz -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("sz", "sz_decimals", "text"),
    [
        (0.001, 5, "0.001"),
        (1.5, 1, "1.5"),
        (2.0, 0, "2"),
        (0.000224, 5, "0.00022"),
        (0.000226, 5, "0.00023"),
        (208.7, 1, "208.7"),
        (1e-5, 5, "0.00001"),
        (1234567.0, 2, "1234567"),
    ],
)
def test_format_sz_examples(sz: float, sz_decimals: int, text: str) -> None:
    assert format_sz(sz, sz_decimals) == text


@pytest.mark.parametrize("sz", [0.0, -0.1, float("nan"), float("inf")])
def test_format_sz_rejects_unusable_sizes(sz: float) -> None:
    with pytest.raises(ValueError, match="positive finite"):
        format_sz(sz, 2)


def test_sdk_float_to_wire_shows_noise_on_large_sizes() -> None:
    """Why the SDK comparisons stay below 10**7: our wire form is exact where the SDK's is not."""
    assert sdk.float_to_wire(97546066.4) == "97546066.40000001"
    assert format_sz(97546066.4, 1) == "97546066.4"


@pytest.mark.parametrize(("sz", "sz_decimals"), [(0.004, 2), (0.4, 0), (1e-9, 5)])
def test_format_sz_never_rounds_a_size_to_zero(sz: float, sz_decimals: int) -> None:
    with pytest.raises(ValueError, match="rounds to zero"):
        format_sz(sz, sz_decimals)


@given(sz_decimals_st, st.integers(min_value=1, max_value=10**12))
def test_format_sz_round_trips_lots(sz_decimals: int, lots: int) -> None:
    sz = lots / 10**sz_decimals
    text = format_sz(sz, sz_decimals)
    assert WIRE_NUMBER.match(text), text
    assert numbers.sz_lots(text, sz_decimals) == lots
    assert AssetSpec(0, "X", sz_decimals).parse_sz(text) == lots
    assert float(text) == sz
    if sz < 1e7:  # above ~9e7 the SDK's 8-decimal formatting shows float noise; ours is exact
        assert text == sdk.float_to_wire(sz)


@given(sz_decimals_st, st.floats(min_value=1e-6, max_value=1e9))
def test_format_sz_rounds_to_nearest_and_is_stable(sz_decimals: int, sz: float) -> None:
    try:
        text = format_sz(sz, sz_decimals)
    except ValueError:
        assert sz < 10.0**-sz_decimals
        return
    unit = Decimal(1).scaleb(-sz_decimals)
    assert abs(Decimal(text) - Decimal(repr(sz))) <= unit / 2
    assert format_sz(float(text), sz_decimals) == text


# --- wires and actions ---------------------------------------------------------------------------


def test_order_wire_shape_and_key_order() -> None:
    order = PlaceOrder("ETH", Side.BUY, 3120.5, 0.25, Tif.ALO, CLOID)
    wire = order_wire(order, 4, 4)
    assert wire == {
        "a": 4,
        "b": True,
        "p": "3120.5",
        "s": "0.25",
        "r": False,
        "t": {"limit": {"tif": "Alo"}},
        "c": CLOID,
    }
    assert list(wire) == ["a", "b", "p", "s", "r", "t", "c"]
    sell = order_wire(PlaceOrder("BTC", Side.SELL, 79146.04, 0.001, Tif.IOC, CLOID, True), 0, 5)
    assert (sell["b"], sell["p"], sell["s"], sell["r"]) == (False, "79147", "0.001", True)
    assert sell["t"] == {"limit": {"tif": "Ioc"}}


@pytest.mark.parametrize("cloid", ["0x123", "abcd" * 8, "0x" + "g" * 32, "0x" + "0" * 34])
def test_order_wire_rejects_bad_cloids(cloid: str) -> None:
    with pytest.raises(ValueError, match="cloid"):
        order_wire(PlaceOrder("ETH", Side.BUY, 3120.5, 0.25, Tif.GTC, cloid), 1, 4)
    with pytest.raises(ValueError, match="cloid"):
        cancel_by_cloid_wire(1, cloid)


def test_order_wire_rejects_bad_numbers() -> None:
    with pytest.raises(ValueError, match="rounds to zero"):
        order_wire(PlaceOrder("ETH", Side.BUY, 3120.5, 0.00001, Tif.GTC, CLOID), 1, 4)
    with pytest.raises(ValueError, match="positive finite"):
        order_wire(PlaceOrder("ETH", Side.BUY, float("nan"), 1.0, Tif.GTC, CLOID), 1, 4)


def test_actions_shapes() -> None:
    wire = order_wire(PlaceOrder("ETH", Side.BUY, 3120.5, 0.25, Tif.GTC, CLOID), 1, 4)
    assert order_action([wire]) == {"type": "order", "orders": [wire], "grouping": "na"}
    assert list(order_action([wire], "normalTpsl")) == ["type", "orders", "grouping"]
    assert cancel_action([cancel_wire(1, 42)]) == {
        "type": "cancel",
        "cancels": [{"a": 1, "o": 42}],
    }
    assert cancel_by_cloid_action([cancel_by_cloid_wire(1, CLOID)]) == {
        "type": "cancelByCloid",
        "cancels": [{"asset": 1, "cloid": CLOID}],
    }
    modify = modify_wire(
        ModifyOrder(PlaceOrder("ETH", Side.BUY, 3120.5, 1, Tif.GTC, CLOID), oid=hl_oid(42)), 1, 4
    )
    assert list(modify) == ["oid", "order"]
    assert batch_modify_action([modify]) == {"type": "batchModify", "modifies": [modify]}
    assert modify_action(modify) == {"type": "modify", "oid": 42, "order": modify["order"]}
    assert schedule_cancel_action(None) == {"type": "scheduleCancel"}
    assert schedule_cancel_action(1_700_000_000_000) == {
        "type": "scheduleCancel",
        "time": 1_700_000_000_000,
    }


# --- the SDK as the oracle of signed bytes -------------------------------------------------------


@st.composite
def valid_ticks(draw: st.DrawFn, decimals: int) -> int:
    """A valid price in ticks: up to 5 figures at any scale, or an integer of any size."""
    if draw(st.booleans()):
        mantissa = draw(st.integers(min_value=1, max_value=99_999))
        scale: int = 10 ** draw(st.integers(min_value=0, max_value=decimals + 2))
        return mantissa * scale
    whole: int = 10**decimals
    return draw(st.integers(min_value=1, max_value=10**7)) * whole


@st.composite
def place_orders(draw: st.DrawFn) -> tuple[str, PlaceOrder]:
    coin = draw(st.sampled_from([name for name, _ in UNIVERSE]))
    sz_decimals = SZ_DECIMALS[coin]
    decimals = numbers.px_decimals(sz_decimals)
    ticks = draw(valid_ticks(decimals))
    # Sizes below 10**7: above ~9e7 the SDK's float_to_wire prints float noise ("...40000001").
    lots = draw(st.integers(min_value=1, max_value=10 ** (7 + sz_decimals) - 1))
    order = PlaceOrder(
        coin=coin,
        side=draw(sides),
        px=ticks / 10**decimals,
        sz=lots / 10**sz_decimals,
        tif=draw(tifs),
        cloid=draw(cloids),
        reduce_only=draw(st.booleans()),
    )
    return coin, order


def sdk_request(order: PlaceOrder) -> Any:
    return {
        "coin": order.coin,
        "is_buy": order.side is Side.BUY,
        "sz": order.sz,
        "limit_px": order.px,
        "order_type": {"limit": {"tif": TIF_WIRE[order.tif]}},
        "reduce_only": order.reduce_only,
        "cloid": Cloid(order.cloid),
    }


def ours(order: PlaceOrder) -> dict[str, Any]:
    return order_wire(order, ASSET[order.coin], SZ_DECIMALS[order.coin])


@settings(max_examples=200)
@given(st.lists(place_orders(), min_size=1, max_size=5), st.integers(0, 2**63))
def test_order_action_signs_like_the_sdk(orders: list[tuple[str, PlaceOrder]], nonce: int) -> None:
    action = order_action([ours(order) for _, order in orders])
    sdk_wires = [
        sdk.order_request_to_order_wire(sdk_request(order), ASSET[coin]) for coin, order in orders
    ]
    sdk_action = sdk.order_wires_to_order_action(sdk_wires)
    assert action == sdk_action
    assert pack_action(action) == pack_action(sdk_action)
    assert action_hash(action, None, nonce, None) == sdk.action_hash(sdk_action, None, nonce, None)


class CapturingExchange(Exchange):  # type: ignore[misc]
    """The SDK's Exchange with the network cut: actions it would post are recorded."""

    def __init__(self) -> None:
        meta = {"universe": [{"name": name, "szDecimals": d} for name, d in UNIVERSE]}
        super().__init__(
            Account.from_key(KEY),
            "http://127.0.0.1:9",
            meta=meta,
            spot_meta={"universe": [], "tokens": []},
        )
        self.actions: list[Any] = []

    def _post_action(self, action: Any, signature: Any, nonce: int) -> Any:
        self.actions.append(action)
        return {"status": "ok"}


@pytest.fixture(scope="module")
def exchange() -> CapturingExchange:
    return CapturingExchange()


def assert_same_signed_bytes(ours_action: dict[str, Any], sdk_action: Any) -> None:
    assert pack_action(ours_action) == pack_action(sdk_action)
    assert action_hash(ours_action, None, NONCE, None) == sdk.action_hash(
        sdk_action, None, NONCE, None
    )


def test_bulk_orders_sign_like_the_sdk_exchange(exchange: CapturingExchange) -> None:
    orders = [
        PlaceOrder("BTC", Side.BUY, 79146.0, 0.001, Tif.ALO, CLOID),
        PlaceOrder("DOGE", Side.SELL, 0.069277, 1000.0, Tif.IOC, new_cloid(), True),
    ]
    exchange.bulk_orders([sdk_request(order) for order in orders])
    assert_same_signed_bytes(order_action([ours(order) for order in orders]), exchange.actions[-1])


def test_cancels_sign_like_the_sdk_exchange(exchange: CapturingExchange) -> None:
    exchange.bulk_cancel([{"coin": "ETH", "oid": 42}, {"coin": "SOL", "oid": 2**40}])
    ours_action = cancel_action([cancel_wire(ASSET["ETH"], 42), cancel_wire(ASSET["SOL"], 2**40)])
    assert_same_signed_bytes(ours_action, exchange.actions[-1])

    exchange.bulk_cancel_by_cloid([{"coin": "HYPE", "cloid": Cloid(CLOID)}])
    ours_action = cancel_by_cloid_action([cancel_by_cloid_wire(ASSET["HYPE"], CLOID)])
    assert_same_signed_bytes(ours_action, exchange.actions[-1])


@pytest.mark.parametrize("target", [42, CLOID])
def test_batch_modify_signs_like_the_sdk_exchange(
    exchange: CapturingExchange, target: int | str
) -> None:
    # By cloid, the order keeps it (mm's modify); by oid, it may carry another.
    cloid = target if isinstance(target, str) else new_cloid()
    order = PlaceOrder("ETH", Side.SELL, 3120.5, 0.25, Tif.GTC, cloid)
    sdk_target = Cloid(target) if isinstance(target, str) else target
    exchange.bulk_modify_orders_new([{"oid": sdk_target, "order": sdk_request(order)}])
    modify = (
        ModifyOrder(order) if isinstance(target, str) else ModifyOrder(order, oid=hl_oid(target))
    )
    wire = modify_wire(modify, ASSET["ETH"], SZ_DECIMALS["ETH"])
    assert_same_signed_bytes(batch_modify_action([wire]), exchange.actions[-1])


@pytest.mark.parametrize("time_ms", [None, 1_700_000_005_000])
def test_schedule_cancel_signs_like_the_sdk_exchange(
    exchange: CapturingExchange, time_ms: int | None
) -> None:
    exchange.schedule_cancel(time_ms)
    assert_same_signed_bytes(schedule_cancel_action(time_ms), exchange.actions[-1])


# --- cloids and nonces ---------------------------------------------------------------------------


def test_new_cloid() -> None:
    cloids_made = {new_cloid() for _ in range(1000)}
    assert len(cloids_made) == 1000
    for cloid in cloids_made:
        assert re.fullmatch(r"0x[0-9a-f]{32}", cloid)
        assert Cloid(cloid).to_raw() == cloid


def test_nonce_source_follows_the_clock() -> None:
    now = [1_000]
    nonces = NonceSource(lambda: now[0])
    assert nonces.last == 0
    assert nonces.next() == 1_000
    now[0] = 2_000
    assert nonces() == 2_000
    assert nonces.last == 2_000


@given(st.lists(st.integers(min_value=0, max_value=2**50), min_size=1, max_size=200))
def test_nonce_source_strictly_increases(clock_readings: list[int]) -> None:
    readings = iter(clock_readings)
    nonces = NonceSource(lambda: next(readings))
    issued = [nonces.next() for _ in clock_readings]
    assert all(b > a for a, b in itertools.pairwise(issued))
    assert all(n >= r for n, r in zip(issued, clock_readings, strict=True))


def test_nonce_source_when_the_clock_stands_still_or_goes_back() -> None:
    now = [5_000]
    nonces = NonceSource(lambda: now[0])
    assert [nonces.next() for _ in range(3)] == [5_000, 5_001, 5_002]
    now[0] = 4_000  # the clock steps back
    assert nonces.next() == 5_003
    now[0] = 9_000
    assert nonces.next() == 9_000
    assert NonceSource(lambda: 10, last=100).next() == 101


def test_nonce_source_default_clock_is_milliseconds() -> None:
    import time

    before = time.time_ns() // 1_000_000
    nonce = NonceSource().next()
    assert before <= nonce <= time.time_ns() // 1_000_000 + 1
