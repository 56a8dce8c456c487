"""The SDK's ``Exchange`` against the simulator: orders, fills, modifies, cancels, errors.

Every response is checked in the venue's exact envelope
(``{"status": "ok", "response": {"type": "order", "data": {"statuses": [...]}}}``, the
``cancel`` and ``default`` ones), order statuses against the recorded WebSocket ``post``
action answers, and rejections word for word against the venue's documented error texts with
their `` asset=N`` suffix.
"""

from __future__ import annotations

import math
import time
from typing import Any

import eth_account
import httpx
import pytest
from hyperliquid.exchange import Exchange

from mm.venues.sim.config import SimConfig
from tests.venues.sim.sdk.helpers import (
    ALO,
    ASSET,
    DEFAULT_OK,
    GTC,
    IOC,
    Sim,
    average_px,
    far_ask,
    far_bid,
    filled,
    filled_size,
    fills_of,
    fund,
    new_cloid,
    now_ms,
    order_error,
    resting_oid,
    statuses,
    through_px,
    valid_px,
    wait_for,
)
from tests.venues.sim.sdk.recordings import (
    assert_shape,
    is_decimal,
    recorded_error_texts,
    recorded_frames,
)

MISSING_ORDER = recorded_error_texts()["MissingOrder"]
SCHEDULE_TOO_EARLY = "Scheduled cancel time too early, must be at least 5 seconds from now."
SCHEDULE_NEEDS_VOLUME = (  # the venue's text, its figures as it prints them
    "Cannot set scheduled cancel time until enough volume traded. "
    "Required: $1000000. Traded: ${traded}."
)


def recorded_action_answers() -> list[Any]:
    """The recorded payloads of WebSocket ``post`` actions: ok order responses."""
    return [
        frame["data"]["response"]["payload"]
        for frame in recorded_frames("post")
        if frame["data"]["response"]["type"] == "action"
    ]


def error_text(kind: str, asset: int, **fields: str) -> str:
    """The venue's documented text for an order error of ``kind``, with its asset suffix."""
    return recorded_error_texts()[kind].format(**fields) + f" asset={asset}"


def open_oids(info: Any, wallet: Any) -> list[int]:
    return [order["oid"] for order in info.open_orders(wallet.address)]


def test_gtc_rests_and_is_open(info: Any, exchange: Any, wallet: Any) -> None:
    px = far_bid(info, "BTC")

    response = exchange.order("BTC", True, 0.001, px, GTC)

    assert_shape(response, recorded_action_answers())
    oid = resting_oid(response)
    assert response == {
        "status": "ok",
        "response": {"type": "order", "data": {"statuses": [{"resting": {"oid": oid}}]}},
    }
    (order,) = info.open_orders(wallet.address)
    assert (order["oid"], order["coin"], order["side"]) == (oid, "BTC", "B")
    assert (float(order["limitPx"]), order["sz"]) == (px, "0.001")


def test_gtc_with_cloid_reports_it(info: Any, exchange: Any, wallet: Any) -> None:
    cloid = new_cloid()

    response = exchange.order("ETH", False, 0.01, far_ask(info, "ETH"), GTC, cloid=cloid)

    (status,) = statuses(response)
    assert status == {"resting": {"oid": status["resting"]["oid"], "cloid": cloid.to_raw()}}
    assert info.open_orders(wallet.address)[0]["cloid"] == cloid.to_raw()


def test_ioc_fills_against_the_market(info: Any, exchange: Any, wallet: Any) -> None:
    response = exchange.order("BTC", True, 0.01, through_px(info, "BTC", True), IOC)

    fill = filled(response)
    assert set(fill) == {"totalSz", "avgPx", "oid"}
    assert fill["totalSz"] == "0.01"
    assert is_decimal(fill["avgPx"])
    assert type(fill["oid"]) is int
    assert math.isclose(float(fill["avgPx"]), float(info.all_mids()["BTC"]), rel_tol=0.01)
    assert info.open_orders(wallet.address) == []
    fills = fills_of(info.user_fills(wallet.address), fill["oid"])
    assert {(entry["side"], entry["crossed"]) for entry in fills} == {("B", True)}
    assert filled_size(fills) == pytest.approx(0.01)
    assert average_px(fills) == pytest.approx(float(fill["avgPx"]))


@pytest.mark.parametrize("coin", ["BTC", "ETH"])
def test_ioc_priced_away_is_canceled(info: Any, exchange: Any, wallet: Any, coin: str) -> None:
    size = 0.001 if coin == "BTC" else 0.01

    response = exchange.order(coin, True, size, far_bid(info, coin), IOC)

    assert order_error(response) == error_text("IocCancel", ASSET[coin])
    assert info.open_orders(wallet.address) == []
    assert info.user_fills(wallet.address) == []


def test_alo_rests_when_passive(info: Any, exchange: Any, wallet: Any) -> None:
    oid = resting_oid(exchange.order("BTC", False, 0.001, far_ask(info, "BTC"), ALO))

    assert open_oids(info, wallet) == [oid]


def test_alo_that_would_cross_reports_the_bbo(info: Any, exchange: Any, wallet: Any) -> None:
    # The market requotes every 100 ms, and the venue takes the order a block or two (up to
    # commit_delay_max_ms) after it is sent: retry until the best prices are the same before it
    # was sent and after it was answered, so the bbo the venue reports is known exactly.
    for _ in range(60):
        before = info.l2_snapshot("BTC")["levels"]
        response = exchange.order("BTC", True, 0.001, through_px(info, "BTC", True), ALO)
        after = info.l2_snapshot("BTC")["levels"]
        text = order_error(response)
        if all(before[side][0]["px"] == after[side][0]["px"] for side in (0, 1)):
            break
    else:
        pytest.fail("the book never held still around the order")
    bbo = f"{before[0][0]['px']}@{before[1][0]['px']}"

    assert text == error_text("BadAloPx", 0, bbo=bbo)
    assert text == f"Post only order would have immediately matched, bbo was {bbo}. asset=0"
    assert info.open_orders(wallet.address) == []
    assert info.user_fills(wallet.address) == []
    assert info.historical_orders(wallet.address)[0]["status"] == "badAloPxRejected"


def order_request(coin: str, is_buy: bool, sz: float, px: float, tif: Any) -> dict[str, Any]:
    """An SDK ``OrderRequest``."""
    return {
        "coin": coin,
        "is_buy": is_buy,
        "sz": sz,
        "limit_px": px,
        "order_type": tif,
        "reduce_only": False,
    }


def test_bulk_orders_answer_in_order(info: Any, exchange: Any, wallet: Any) -> None:
    bid_px = far_bid(info, "BTC")
    requests = [
        order_request("BTC", True, 0.001, bid_px, GTC),
        order_request("BTC", True, 0.002, through_px(info, "BTC", True), IOC),
        order_request("BTC", True, 0.001, bid_px + 0.5, GTC),  # six significant figures
        order_request("ETH", True, 0.01, far_bid(info, "ETH"), IOC),
        order_request("ETH", True, 0.001, far_bid(info, "ETH"), GTC),  # under $10
        order_request("SOL", False, 0.5, far_ask(info, "SOL"), ALO),
        order_request("BTC", True, 0.001, bid_px, GTC),
    ]

    response = exchange.bulk_orders(requests)

    found = statuses(response)
    assert len(found) == len(requests)
    assert [next(iter(status)) for status in found] == [
        "resting",
        "filled",
        "error",
        "error",
        "error",
        "resting",
        "resting",
    ]
    assert found[1]["filled"]["totalSz"] == "0.002"
    assert found[2] == {"error": error_text("Tick", 0)}
    assert found[3] == {"error": error_text("IocCancel", 1)}
    assert found[4] == {"error": error_text("MinTradeNtl", 1)}
    oids = [found[i]["resting"]["oid"] for i in (0, 5, 6)]
    assert oids == sorted(oids)
    assert found[1]["filled"]["oid"] in range(oids[0], oids[1])
    assert sorted(open_oids(info, wallet)) == oids


def test_market_open_and_close(info: Any, exchange: Any, wallet: Any) -> None:
    opened = filled(exchange.market_open("BTC", True, 0.01))
    state = info.user_state(wallet.address)
    (entry,) = state["assetPositions"]
    assert (entry["position"]["coin"], entry["position"]["szi"]) == ("BTC", "0.01")
    assert float(entry["position"]["entryPx"]) == pytest.approx(float(opened["avgPx"]), rel=1e-4)

    closed = filled(exchange.market_close("BTC"))

    assert closed["totalSz"] == "0.01"
    assert info.user_state(wallet.address)["assetPositions"] == []
    fills = info.user_fills(wallet.address)
    opens, closes = fills_of(fills, opened["oid"]), fills_of(fills, closed["oid"])
    assert fills == closes + opens
    assert {(fill["dir"], fill["side"]) for fill in opens} == {("Open Long", "B")}
    assert {(fill["dir"], fill["side"]) for fill in closes} == {("Close Long", "A")}
    pnl = (float(closed["avgPx"]) - float(opened["avgPx"])) * 0.01
    assert sum(float(fill["closedPnl"]) for fill in closes) == pytest.approx(pnl, abs=1e-4)
    assert exchange.market_close("BTC") is None  # the SDK finds no position left to close


def test_market_open_short_and_close(info: Any, exchange: Any, wallet: Any) -> None:
    opened = filled(exchange.market_open("ETH", False, 0.05))
    (entry,) = info.user_state(wallet.address)["assetPositions"]
    assert (entry["position"]["coin"], entry["position"]["szi"]) == ("ETH", "-0.05")

    closed = filled(exchange.market_close("ETH"))

    assert info.user_state(wallet.address)["assetPositions"] == []
    fills = info.user_fills(wallet.address)
    assert {fill["dir"] for fill in fills_of(fills, opened["oid"])} == {"Open Short"}
    assert {fill["dir"] for fill in fills_of(fills, closed["oid"])} == {"Close Short"}


def test_modify_order_replaces_it(info: Any, exchange: Any, wallet: Any) -> None:
    cloid = new_cloid()
    px = far_bid(info, "BTC")
    old = resting_oid(exchange.order("BTC", True, 0.001, px, GTC, cloid=cloid))
    new_px = valid_px(px * 0.99, "BTC")

    response = exchange.modify_order(old, "BTC", True, 0.002, new_px, GTC)

    (status,) = statuses(response)
    new = status["resting"]["oid"]
    assert status == {"resting": {"oid": new, "cloid": cloid.to_raw()}}
    assert new != old
    (order,) = info.open_orders(wallet.address)
    assert (order["oid"], float(order["limitPx"]), order["sz"]) == (new, new_px, "0.002")
    assert order["cloid"] == cloid.to_raw()
    old_status = info.query_order_by_oid(wallet.address, old)
    assert old_status["order"]["status"] == "canceled"
    assert info.query_order_by_cloid(wallet.address, cloid)["order"]["order"]["oid"] == new

    by_cloid = exchange.modify_order(cloid, "BTC", True, 0.003, new_px, GTC)

    (status,) = statuses(by_cloid)
    assert status["resting"]["cloid"] == cloid.to_raw()
    assert open_oids(info, wallet) == [status["resting"]["oid"]]
    assert info.open_orders(wallet.address)[0]["sz"] == "0.003"


def test_modify_of_unknown_order_is_an_error_status(info: Any, exchange: Any) -> None:
    response = exchange.modify_order(10**12, "BTC", True, 0.001, far_bid(info, "BTC"), GTC)

    (status,) = statuses(response)
    assert set(status) == {"error"}
    assert status["error"].endswith(" asset=0")


def test_bulk_modify_orders_new(info: Any, exchange: Any, wallet: Any) -> None:
    bid_px, ask_px = far_bid(info, "BTC"), far_ask(info, "ETH")
    bid = resting_oid(exchange.order("BTC", True, 0.001, bid_px, GTC))
    ask = resting_oid(exchange.order("ETH", False, 0.01, ask_px, GTC))
    new_bid_px, new_ask_px = valid_px(bid_px * 0.99, "BTC"), valid_px(ask_px * 1.01, "ETH")

    response = exchange.bulk_modify_orders_new(
        [
            {
                "oid": ask,
                "order": {
                    "coin": "ETH",
                    "is_buy": False,
                    "sz": 0.02,
                    "limit_px": new_ask_px,
                    "order_type": GTC,
                    "reduce_only": False,
                    "cloid": None,
                },
            },
            {
                "oid": bid,
                "order": {
                    "coin": "BTC",
                    "is_buy": True,
                    "sz": 0.001,
                    "limit_px": new_bid_px,
                    "order_type": GTC,
                    "reduce_only": False,
                    "cloid": None,
                },
            },
        ]
    )

    new_ask, new_bid = (status["resting"]["oid"] for status in statuses(response))
    assert new_bid > new_ask > ask > bid
    orders = {order["oid"]: order for order in info.open_orders(wallet.address)}
    assert set(orders) == {new_ask, new_bid}
    assert (orders[new_ask]["coin"], float(orders[new_ask]["limitPx"])) == ("ETH", new_ask_px)
    assert orders[new_ask]["sz"] == "0.02"
    assert (orders[new_bid]["coin"], float(orders[new_bid]["limitPx"])) == ("BTC", new_bid_px)


def test_cancel(info: Any, exchange: Any, wallet: Any) -> None:
    oid = resting_oid(exchange.order("BTC", True, 0.001, far_bid(info, "BTC"), GTC))

    response = exchange.cancel("BTC", oid)

    assert response == {
        "status": "ok",
        "response": {"type": "cancel", "data": {"statuses": ["success"]}},
    }
    assert info.open_orders(wallet.address) == []
    assert info.query_order_by_oid(wallet.address, oid)["order"]["status"] == "canceled"
    again = exchange.cancel("BTC", oid)
    assert statuses(again, "cancel") == [{"error": f"{MISSING_ORDER} asset=0"}]


def test_cancel_by_cloid(info: Any, exchange: Any, wallet: Any) -> None:
    cloid = new_cloid()
    kept = resting_oid(exchange.order("ETH", True, 0.01, far_bid(info, "ETH"), GTC))
    resting_oid(exchange.order("ETH", True, 0.01, far_bid(info, "ETH"), GTC, cloid=cloid))

    response = exchange.cancel_by_cloid("ETH", cloid)

    assert response == {
        "status": "ok",
        "response": {"type": "cancel", "data": {"statuses": ["success"]}},
    }
    assert open_oids(info, wallet) == [kept]
    assert info.query_order_by_cloid(wallet.address, cloid)["order"]["status"] == "canceled"
    again = exchange.cancel_by_cloid("ETH", cloid)
    assert statuses(again, "cancel") == [{"error": f"{MISSING_ORDER} asset=1"}]


@pytest.mark.parametrize("coin", ["BTC", "ETH", "SOL"])
def test_cancel_of_unknown_oid(exchange: Any, coin: str) -> None:
    response = exchange.cancel(coin, 10**12)

    assert response == {
        "status": "ok",
        "response": {
            "type": "cancel",
            "data": {"statuses": [{"error": f"{MISSING_ORDER} asset={ASSET[coin]}"}]},
        },
    }
    assert MISSING_ORDER == "Order was never placed, already canceled, or filled."


def test_cancel_of_another_users_order(info: Any, exchange: Any, sim: Sim) -> None:
    other = Exchange(eth_account.Account.create(), sim.url)
    fund(sim, other.wallet.address)
    oid = resting_oid(other.order("BTC", True, 0.001, far_bid(info, "BTC"), GTC))

    response = exchange.cancel("BTC", oid)

    assert statuses(response, "cancel") == [{"error": f"{MISSING_ORDER} asset=0"}]
    assert open_oids(info, other.wallet) == [oid]


def traded(sim: Sim, wallet: Any, usdc: float) -> None:
    """Count ``usdc`` as traded by ``wallet`` (the simulator's ``POST /sim/volume``)."""
    body = {"user": wallet.address, "usdc": usdc}
    reply = httpx.post(f"{sim.url}/sim/volume", json=body, timeout=5.0)
    assert reply.status_code == 200, reply.text


def test_schedule_cancel_is_refused_until_the_account_has_traded_enough(
    exchange: Any, sim: Sim, wallet: Any
) -> None:
    assert exchange.schedule_cancel(now_ms() + 60_000) == {
        "status": "err",
        "response": SCHEDULE_NEEDS_VOLUME.format(traded="0"),
    }
    traded(sim, wallet, 999_999.5)
    assert exchange.schedule_cancel(now_ms() + 60_000) == {
        "status": "err",
        "response": SCHEDULE_NEEDS_VOLUME.format(traded="999999.5"),
    }
    assert exchange.schedule_cancel(None) == DEFAULT_OK  # clearing is not refused
    traded(sim, wallet, 0.5)
    assert exchange.schedule_cancel(now_ms() + 60_000) == DEFAULT_OK


def test_schedule_cancel_set_clear_and_too_early(exchange: Any, sim: Sim, wallet: Any) -> None:
    traded(sim, wallet, 1_000_000)
    assert exchange.schedule_cancel(now_ms() + 1_000) == {
        "status": "err",
        "response": SCHEDULE_TOO_EARLY,
    }
    assert exchange.schedule_cancel(now_ms() + 60_000) == DEFAULT_OK
    assert exchange.schedule_cancel(None) == DEFAULT_OK


def test_schedule_cancel_fires(info: Any, exchange: Any, wallet: Any, sim: Sim) -> None:
    traded(sim, wallet, 1_000_000)
    oids = [
        resting_oid(exchange.order("BTC", True, 0.001, far_bid(info, "BTC"), GTC)),
        resting_oid(exchange.order("ETH", False, 0.01, far_ask(info, "ETH"), GTC)),
    ]
    # The venue checks the time when the action commits, up to commit_delay_max_ms after it
    # is sent: at least 5 s from then.
    fire_at = now_ms() + 5_300 + round(SimConfig().commit_delay_max_ms)

    assert exchange.schedule_cancel(fire_at) == DEFAULT_OK

    assert sorted(open_oids(info, wallet)) == oids
    wait_for(lambda: not info.open_orders(wallet.address), "the scheduled cancel", timeout=10.0)
    assert now_ms() >= fire_at
    for oid in oids:
        record = info.query_order_by_oid(wallet.address, oid)["order"]
        assert record["status"] == "scheduledCancel"
        assert record["statusTimestamp"] >= fire_at
    # Fired: a new order stays.
    time.sleep(0.2)
    oid = resting_oid(exchange.order("BTC", True, 0.001, far_bid(info, "BTC"), GTC))
    time.sleep(0.3)
    assert open_oids(info, wallet) == [oid]


@pytest.mark.parametrize(
    ("coin", "extra"),
    [("BTC", 0.5), ("ETH", 0.001), ("SOL", 0.00001)],  # a sixth significant figure
)
def test_tick_size_error(info: Any, exchange: Any, wallet: Any, coin: str, extra: float) -> None:
    size = {"BTC": 0.001, "ETH": 0.01, "SOL": 1.0}[coin]

    response = exchange.order(coin, True, size, far_bid(info, coin) + extra, GTC)

    assert order_error(response) == error_text("Tick", ASSET[coin])
    assert order_error(response) == f"Price must be divisible by tick size. asset={ASSET[coin]}"
    assert info.open_orders(wallet.address) == []


@pytest.mark.parametrize("coin", ["BTC", "ETH"])
def test_min_notional_error(info: Any, exchange: Any, wallet: Any, coin: str) -> None:
    px = far_bid(info, coin)
    size = {"BTC": 0.0001, "ETH": 0.001}[coin]  # $7.6 and $2.8 at 80% of the start prices

    response = exchange.order(coin, True, size, px, GTC)

    assert order_error(response) == error_text("MinTradeNtl", ASSET[coin])
    assert order_error(response) == f"Order must have minimum value of $10. asset={ASSET[coin]}"
    assert info.open_orders(wallet.address) == []


def test_reduce_only_error(info: Any, exchange: Any, wallet: Any) -> None:
    no_position = exchange.order("BTC", False, 0.001, far_ask(info, "BTC"), GTC, reduce_only=True)
    assert order_error(no_position) == error_text("ReduceOnly", 0)

    filled(exchange.market_open("BTC", True, 0.01))
    increase = exchange.order("BTC", True, 0.001, far_bid(info, "BTC"), GTC, reduce_only=True)

    assert order_error(increase) == "Reduce only order would increase position. asset=0"
    reduce = exchange.order("BTC", False, 0.001, far_ask(info, "BTC"), GTC, reduce_only=True)
    resting_oid(reduce)


def test_insufficient_margin_error(info: Any, exchange: Any, wallet: Any) -> None:
    response = exchange.order("BTC", True, 50.0, far_bid(info, "BTC"), GTC)  # $3.8M at 20x

    assert order_error(response) == error_text("PerpMargin", 0)
    assert info.open_orders(wallet.address) == []
