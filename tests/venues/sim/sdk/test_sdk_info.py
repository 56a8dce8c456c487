"""The SDK's ``Info`` against the simulator: every read compared with the venue's recordings.

Each response is compared field by field with the real response to the same request type in
``info_responses.json`` (keys of every object, kinds of every value, number formats). Keys the
2023 recordings predate but the current venue sends are allowed explicitly, per path, below;
anything else the simulator adds fails.
"""

from __future__ import annotations

import math
import secrets
from typing import Any

import pytest
from hyperliquid.info import Info

from tests.venues.sim.sdk.helpers import (
    ASSET,
    COINS,
    FAUCET_USDC,
    GTC,
    IOC,
    SZ_DECIMALS,
    Sim,
    average_px,
    far_bid,
    filled,
    filled_size,
    fills_of,
    new_cloid,
    now_ms,
    order_error,
    resting_oid,
    statuses,
    through_px,
    valid_px,
)
from tests.venues.sim.sdk.recordings import (
    HASH,
    Extras,
    assert_shape,
    is_decimal,
    recorded_info,
)

# Newer keys the current venue sends that the recordings predate (kinds allowed for each).
FILL_EXTRAS: Extras = {
    "[]": {
        "tid": frozenset({"int"}),
        "feeToken": frozenset({"str"}),
        "cloid": frozenset({"cloid"}),
        "twapId": frozenset({"null"}),
    }
}
OPEN_ORDER_EXTRAS: Extras = {"[]": {"cloid": frozenset({"cloid"})}}
FRONTEND_ORDER_EXTRAS: Extras = {"[]": {"cloid": frozenset({"cloid", "null"})}}
# Historical orders: recorded with ``"cloid": null`` only; an order placed with one shows it.
HISTORY_EXTRAS: Extras = {"[].order": {"cloid": frozenset({"cloid"})}}
ORDER_STATUS_EXTRAS: Extras = {".order": {"cloid": frozenset({"cloid"})}}
CLEARINGHOUSE_EXTRAS: Extras = {
    "": {"time": frozenset({"int"}), "crossMaintenanceMarginUsed": frozenset({"decimal"})}
}
RECENT_MS = 60_000


def frontend_samples() -> list[Any]:
    """Recorded frontend orders: the open ones and their children, and historical orders'."""
    orders = list(recorded_info("frontendOpenOrders"))
    orders += [child for order in orders for child in order["children"]]
    orders += [entry["order"] for entry in recorded_info("historicalOrders")]
    return orders


def test_construction_reads_spot_meta_and_meta(sim: Sim) -> None:
    info = Info(sim.url, skip_ws=True)

    assert info.coin_to_asset == ASSET
    assert info.name_to_coin == {coin: coin for coin in COINS}
    assert info.asset_to_sz_decimals == {ASSET[coin]: SZ_DECIMALS[coin] for coin in COINS}
    spot = info.spot_meta()
    assert spot["universe"] == []
    assert [token["name"] for token in spot["tokens"]] == ["USDC"]


def test_meta(info: Any) -> None:
    meta = info.meta()

    assert_shape(meta, [recorded_info("meta")])
    assert [asset["name"] for asset in meta["universe"]] == list(COINS)
    assert {asset["name"]: asset["szDecimals"] for asset in meta["universe"]} == SZ_DECIMALS
    assert all(asset["maxLeverage"] >= 1 for asset in meta["universe"])


def test_all_mids(info: Any) -> None:
    mids = info.all_mids()

    assert_shape(mids, [recorded_info("allMids")], maps=[""])
    assert set(mids) == set(COINS)
    for coin in COINS:
        book = info.l2_snapshot(coin)
        bid, ask = float(book["levels"][0][0]["px"]), float(book["levels"][1][0]["px"])
        assert math.isclose(float(mids[coin]), (bid + ask) / 2, rel_tol=0.01)


def test_l2_snapshot(info: Any) -> None:
    for coin in COINS:
        book = info.l2_snapshot(coin)

        assert_shape(book, [recorded_info("l2Book")])
        assert book["coin"] == coin
        assert abs(book["time"] - now_ms()) < RECENT_MS
        bids, asks = book["levels"]
        assert bids
        assert asks
        assert len(bids) <= 20
        assert len(asks) <= 20
        bid_pxs = [float(level["px"]) for level in bids]
        ask_pxs = [float(level["px"]) for level in asks]
        assert bid_pxs == sorted(bid_pxs, reverse=True)
        assert len(set(bid_pxs)) == len(bid_pxs)
        assert ask_pxs == sorted(ask_pxs)
        assert len(set(ask_pxs)) == len(ask_pxs)
        assert bid_pxs[0] < ask_pxs[0]
        assert all(level["n"] >= 1 and float(level["sz"]) > 0 for level in bids + asks)


def test_open_orders(info: Any, exchange: Any, wallet: Any) -> None:
    cloid = new_cloid()
    bid_px = far_bid(info, "BTC")
    ask_px = valid_px(float(info.all_mids()["ETH"]) * 1.25, "ETH")
    with_cloid = resting_oid(exchange.order("BTC", True, 0.001, bid_px, GTC, cloid=cloid))
    without = resting_oid(exchange.order("ETH", False, 0.01, ask_px, GTC))

    orders = info.open_orders(wallet.address)

    assert_shape(orders, [recorded_info("openOrders")], extras=OPEN_ORDER_EXTRAS)
    assert [order["oid"] for order in orders] == [without, with_cloid]  # newest first
    eth, btc = orders
    assert btc == {
        "coin": "BTC",
        "limitPx": f"{bid_px:.1f}",
        "oid": with_cloid,
        "side": "B",
        "sz": "0.001",
        "timestamp": btc["timestamp"],
        "cloid": cloid.to_raw(),
    }
    assert abs(btc["timestamp"] - now_ms()) < RECENT_MS
    assert eth["side"] == "A"
    assert eth["sz"] == "0.01"
    assert "cloid" not in eth
    assert float(eth["limitPx"]) == ask_px
    assert info.open_orders(wallet.address.lower()) == orders


def test_frontend_open_orders(info: Any, exchange: Any, wallet: Any) -> None:
    cloid = new_cloid()
    px = far_bid(info, "BTC")
    oid = resting_oid(exchange.order("BTC", True, 0.002, px, GTC, cloid=cloid))
    plain = resting_oid(exchange.order("BTC", True, 0.001, px, GTC))

    orders = info.frontend_open_orders(wallet.address)

    assert_shape(orders, [frontend_samples()], extras=FRONTEND_ORDER_EXTRAS)
    assert [order["oid"] for order in orders] == [plain, oid]
    order = orders[1]
    assert order == {
        "coin": "BTC",
        "side": "B",
        "limitPx": f"{px:.1f}",
        "sz": "0.002",
        "oid": oid,
        "timestamp": order["timestamp"],
        "triggerCondition": "N/A",
        "isTrigger": False,
        "triggerPx": "0.0",
        "children": [],
        "isPositionTpsl": False,
        "reduceOnly": False,
        "orderType": "Limit",
        "origSz": "0.002",
        "tif": "Gtc",
        "cloid": cloid.to_raw(),
    }
    assert orders[0]["cloid"] is None


def test_user_state_of_unknown_and_of_a_trader(info: Any, exchange: Any, wallet: Any) -> None:
    stranger = "0x" + secrets.token_hex(20)
    empty = info.user_state(stranger)
    assert_shape(empty, [recorded_info("clearinghouseState")], extras=CLEARINGHOUSE_EXTRAS)
    assert empty["assetPositions"] == []
    assert empty["marginSummary"]["accountValue"] == "0.0"

    fill = filled(exchange.market_open("BTC", True, 0.01))
    state = info.user_state(wallet.address)

    assert_shape(state, [recorded_info("clearinghouseState")], extras=CLEARINGHOUSE_EXTRAS)
    assert abs(state["time"] - now_ms()) < RECENT_MS
    (entry,) = state["assetPositions"]
    position = entry["position"]
    assert entry["type"] == "oneWay"
    assert position["coin"] == "BTC"
    assert position["szi"] == "0.01"
    assert position["leverage"] == {"type": "cross", "value": 20}
    # entryPx has 5 significant figures; avgPx more when the order took several levels.
    assert float(position["entryPx"]) == pytest.approx(float(fill["avgPx"]), rel=1e-4)
    assert math.isclose(
        float(position["marginUsed"]), float(position["positionValue"]) / 20, rel_tol=1e-4
    )
    assert state["marginSummary"] == state["crossMarginSummary"]
    account_value = float(state["marginSummary"]["accountValue"])
    assert FAUCET_USDC - 10 < account_value < FAUCET_USDC + 10
    assert float(state["withdrawable"]) <= account_value


def test_user_fills_and_by_time(info: Any, exchange: Any, wallet: Any) -> None:
    start = now_ms() - 1
    assert info.user_fills(wallet.address) == []
    opened = filled(exchange.market_open("BTC", True, 0.01))
    closed = filled(exchange.market_close("BTC"))

    fills = info.user_fills(wallet.address)

    assert_shape(fills, [recorded_info("userFills")], extras=FILL_EXTRAS)
    opens, closes = fills_of(fills, opened["oid"]), fills_of(fills, closed["oid"])
    assert fills == closes + opens  # newest first
    assert {(fill["dir"], fill["side"]) for fill in opens} == {("Open Long", "B")}
    assert {(fill["dir"], fill["side"]) for fill in closes} == {("Close Long", "A")}
    assert (opens[-1]["startPosition"], closes[-1]["startPosition"]) == ("0.0", "0.01")
    assert {fill["closedPnl"] for fill in opens} == {"0.0"}
    assert filled_size(opens) == pytest.approx(0.01)
    assert filled_size(closes) == pytest.approx(0.01)
    assert average_px(opens) == pytest.approx(float(opened["avgPx"]))
    for fill in fills:
        assert fill["coin"] == "BTC"
        assert fill["side"] in ("A", "B")
        assert fill["crossed"] is True
        assert HASH.fullmatch(fill["hash"])
        assert is_decimal(fill["fee"])
        assert float(fill["fee"]) > 0
        assert fill["feeToken"] == "USDC"
        assert fill["twapId"] is None
        assert start <= fill["time"] <= now_ms()
    tids = [fill["tid"] for fill in fills]
    assert tids == sorted(tids, reverse=True)
    assert len(set(tids)) == len(tids)

    by_time = info.user_fills_by_time(wallet.address, start)
    assert_shape(by_time, [recorded_info("userFills")], extras=FILL_EXTRAS)
    assert by_time == fills[::-1]  # oldest first, as the venue pages by time
    opened_at = opens[0]["time"]
    until_open = info.user_fills_by_time(wallet.address, start, opened_at)
    assert until_open == [fill for fill in by_time if fill["time"] <= opened_at]
    assert info.user_fills_by_time(wallet.address, closes[0]["time"] + 1) == []
    assert info.user_fills_by_time(wallet.address, 0, start - 1) == []


def test_query_order_by_oid_and_cloid(info: Any, exchange: Any, wallet: Any) -> None:
    cloid = new_cloid()
    oid = resting_oid(exchange.order("BTC", True, 0.001, far_bid(info, "BTC"), GTC, cloid=cloid))
    history = recorded_info("historicalOrders")

    by_oid = info.query_order_by_oid(wallet.address, oid)
    by_cloid = info.query_order_by_cloid(wallet.address, cloid)

    assert set(by_oid) == {"status", "order"}
    assert by_oid["status"] == "order"
    assert_shape(by_oid["order"], history, extras=ORDER_STATUS_EXTRAS)
    assert by_oid["order"]["status"] == "open"
    assert by_oid["order"]["order"]["oid"] == oid
    assert by_oid["order"]["order"]["cloid"] == cloid.to_raw()
    assert by_cloid == by_oid

    assert statuses(exchange.cancel("BTC", oid), "cancel") == ["success"]
    canceled = info.query_order_by_oid(wallet.address, oid)
    assert_shape(canceled["order"], history, extras=ORDER_STATUS_EXTRAS)
    assert canceled["order"]["status"] == "canceled"
    assert canceled["order"]["statusTimestamp"] >= by_oid["order"]["statusTimestamp"]
    assert info.query_order_by_cloid(wallet.address, cloid) == canceled

    assert info.query_order_by_oid(wallet.address, oid + 10_000_000) == {"status": "unknownOid"}
    assert info.query_order_by_cloid(wallet.address, new_cloid()) == {"status": "unknownOid"}
    stranger = "0x" + secrets.token_hex(20)
    assert info.query_order_by_oid(stranger, oid) == {"status": "unknownOid"}


def test_user_rate_limit(info: Any, exchange: Any, wallet: Any) -> None:
    resting_oid(exchange.order("BTC", True, 0.001, far_bid(info, "BTC"), GTC))
    before = info.user_rate_limit(wallet.address)
    assert_shape(before, [recorded_info("userRateLimit")])
    assert before == {"cumVlm": "0.0", "nRequestsUsed": 1, "nRequestsCap": 10_000}

    fill = filled(exchange.market_open("BTC", True, 0.01))
    after = info.user_rate_limit(wallet.address)

    assert_shape(after, [recorded_info("userRateLimit")])
    volume = float(after["cumVlm"])
    assert volume == pytest.approx(float(fill["avgPx"]) * 0.01, rel=1e-6)
    assert after["nRequestsUsed"] == 2
    assert after["nRequestsCap"] == 10_000 + math.floor(volume)


def test_historical_orders(info: Any, exchange: Any, wallet: Any) -> None:
    bid_px = far_bid(info, "BTC")
    canceled = resting_oid(exchange.order("BTC", True, 0.001, bid_px, GTC))
    exchange.cancel("BTC", canceled)
    open_ = resting_oid(exchange.order("BTC", True, 0.001, bid_px, GTC))
    taken = filled(exchange.order("BTC", True, 0.001, through_px(info, "BTC", True), IOC))
    order_error(exchange.order("BTC", True, 0.001, bid_px, IOC))  # nothing to match

    history = info.historical_orders(wallet.address)

    assert_shape(history, [recorded_info("historicalOrders")], extras=HISTORY_EXTRAS)
    assert info.post("/info", {"type": "historicalOrders", "user": wallet.address}) == history
    assert [(entry["order"]["oid"], entry["status"]) for entry in history[1:]] == [
        (taken["oid"], "filled"),
        (open_, "open"),
        (canceled, "canceled"),
    ]
    rejected = history[0]
    assert rejected["status"] == "iocCancelRejected"
    assert rejected["order"]["tif"] == "Ioc"
    assert rejected["order"]["sz"] == "0.001"
    done = history[1]["order"]
    assert (done["sz"], done["origSz"], done["tif"]) == ("0.0", "0.001", "Ioc")
