"""The simulator's WebSocket, through the SDK's ``Info.subscribe`` and over a raw connection.

Frames are compared with the venue's recorded frames of the same channel
(``ws_frames.jsonl``): keys of every object, kinds of every value, number formats; book
frames with the recorded ``l2Book`` info response. The raw connection checks what the SDK hides:
the greeting, subscription acks, pong, errors and ``post`` requests (info and signed actions).
"""

from __future__ import annotations

import copy
import secrets
from collections.abc import Iterator
from typing import Any

import pytest
from hyperliquid.utils.signing import float_to_wire

from mm.venues.hyperliquid.signing import address_from_private_key, sign_l1_action
from tests.venues.sim.sdk.helpers import (
    ALO,
    COINS,
    GTC,
    IOC,
    Inbox,
    RawSocket,
    Sim,
    far_bid,
    filled,
    fund,
    new_cloid,
    now_ms,
    on_channel,
    order_error,
    resting_oid,
    through_px,
)
from tests.venues.sim.sdk.recordings import (
    OptionalKeys,
    assert_shape,
    recorded_frames,
    recorded_info,
)

GREETING = "Websocket connection established."
# Every recorded order update and user fill had a cloid; the venue leaves it out when unset.
ORDER_UPDATE_OPTIONAL: OptionalKeys = {".data[].order": frozenset({"cloid"})}
USER_FILL_OPTIONAL: OptionalKeys = {".data.fills[]": frozenset({"cloid"})}
RECORDED_USER = "0x31ca8395cf837de08b24da3f660e77761dfb974b"


def recorded_book_frame() -> dict[str, Any]:
    """An ``l2Book`` frame as the venue sends it: the ``l2Book`` info response as data."""
    return {"channel": "l2Book", "data": recorded_info("l2Book")}


def live_user_fills_frames() -> list[dict[str, Any]]:
    """Recorded ``userFills`` frames, also without ``isSnapshot`` (absent after the first)."""
    frames = recorded_frames("userFills")
    live = copy.deepcopy(frames)
    for frame in live:
        del frame["data"]["isSnapshot"]
    return frames + live


# --- through the SDK ---------------------------------------------------------------------------


def test_l2_book(ws_info: Any) -> None:
    inbox = Inbox()
    ws_info.subscribe({"type": "l2Book", "coin": "BTC"}, inbox)

    snapshot = inbox.first("the l2Book snapshot")
    update = inbox.wait(
        lambda message: message["data"]["time"] > snapshot["data"]["time"], "an l2Book update"
    )

    for frame in (snapshot, update):
        assert_shape(frame, [recorded_book_frame()])
        assert frame["channel"] == "l2Book"
        assert frame["data"]["coin"] == "BTC"
        bids, asks = frame["data"]["levels"]
        assert float(bids[0]["px"]) < float(asks[0]["px"])
    assert abs(update["data"]["time"] - now_ms()) < 10_000


def test_trades(ws_info: Any, info: Any, exchange: Any, wallet: Any) -> None:
    inbox = Inbox()
    ws_info.subscribe({"type": "trades", "coin": "BTC"}, inbox)
    me = wallet.address.lower()

    fill = filled(exchange.order("BTC", True, 0.01, through_px(info, "BTC", True), IOC))

    frame = inbox.wait(
        lambda message: any(me in trade["users"] for trade in message["data"]),
        "a trade of ours on the trades channel",
    )
    assert_shape(frame, recorded_frames("trades"))
    assert frame["channel"] == "trades"
    mine = [trade for trade in frame["data"] if me in trade["users"]]
    for trade in mine:
        assert trade["coin"] == "BTC"
        assert trade["side"] == "B"
        assert trade["users"][0] == me  # [buyer, seller]
        assert trade["users"][1] != me
    total = sum(float(trade["sz"]) for trade in mine)
    assert total == pytest.approx(0.01)
    notional = sum(float(trade["px"]) * float(trade["sz"]) for trade in mine)
    assert notional / total == pytest.approx(float(fill["avgPx"]))
    assert len({trade["tid"] for trade in mine}) == len(mine)


def test_all_mids(ws_info: Any) -> None:
    inbox = Inbox()
    ws_info.subscribe({"type": "allMids"}, inbox)

    first = inbox.first("allMids")
    frames = [first, inbox.wait(lambda message: message is not first, "a second allMids")]

    for frame in frames:
        assert_shape(frame, recorded_frames("allMids"), maps=[".data.mids"])
        assert set(frame["data"]) == {"mids"}
        assert set(frame["data"]["mids"]) == set(COINS)


def test_bbo(ws_info: Any, info: Any) -> None:
    inbox = Inbox()
    ws_info.subscribe({"type": "bbo", "coin": "ETH"}, inbox)

    frame = inbox.first("the bbo snapshot")

    assert_shape(frame, recorded_frames("bbo"))
    assert frame["data"]["coin"] == "ETH"
    bid, ask = frame["data"]["bbo"]
    assert float(bid["px"]) < float(ask["px"])
    assert bid["n"] >= 1
    assert ask["n"] >= 1
    assert abs(frame["data"]["time"] - now_ms()) < 10_000
    mid = float(info.all_mids()["ETH"])
    assert float(bid["px"]) == pytest.approx(mid, rel=0.01)


def test_user_fills(ws_info: Any, info: Any, exchange: Any, wallet: Any) -> None:
    opened = filled(exchange.market_open("BTC", True, 0.01))
    inbox = Inbox()
    ws_info.subscribe({"type": "userFills", "user": wallet.address}, inbox)

    snapshot = inbox.first("the userFills snapshot")

    assert_shape(snapshot, recorded_frames("userFills"))
    assert snapshot["data"]["isSnapshot"] is True
    assert snapshot["data"]["user"] == wallet.address.lower()
    assert {fill["oid"] for fill in snapshot["data"]["fills"]} == {opened["oid"]}
    assert snapshot["data"]["fills"] == info.user_fills(wallet.address)

    closed = filled(exchange.market_close("BTC"))
    live = inbox.wait(lambda message: message is not snapshot, "a live userFills message")

    assert_shape(live, live_user_fills_frames())
    assert live["data"].get("isSnapshot") is not True
    fills = live["data"]["fills"]
    assert {(f["oid"], f["dir"], f["side"]) for f in fills} == {(closed["oid"], "Close Long", "A")}
    assert fills == info.user_fills(wallet.address)[: len(fills)][::-1]


def test_user_fills_snapshot_of_a_new_user(ws_info: Any) -> None:
    user = "0x" + secrets.token_hex(20)
    inbox = Inbox()
    ws_info.subscribe({"type": "userFills", "user": user}, inbox)

    snapshot = inbox.first("the userFills snapshot")

    assert snapshot == {
        "channel": "userFills",
        "data": {"isSnapshot": True, "user": user, "fills": []},
    }


def test_order_updates(ws_info: Any, info: Any, exchange: Any, wallet: Any) -> None:
    inbox = Inbox()
    ws_info.subscribe({"type": "orderUpdates", "user": wallet.address}, inbox)
    px = far_bid(info, "BTC")

    def status_of(oid: int, status: str) -> dict[str, Any]:
        frame = inbox.wait(
            lambda message: any(
                update["order"]["oid"] == oid and update["status"] == status
                for update in message["data"]
            ),
            f"order {oid} {status}",
        )
        assert_shape(frame, recorded_frames("orderUpdates"), optional=ORDER_UPDATE_OPTIONAL)
        (update,) = (u for u in frame["data"] if u["order"]["oid"] == oid)
        return dict(update)

    cloid = new_cloid()
    oid = resting_oid(exchange.order("BTC", True, 0.002, px, GTC, cloid=cloid))
    opened = status_of(oid, "open")
    assert opened["order"]["cloid"] == cloid.to_raw()
    assert opened["order"]["coin"] == "BTC"
    assert opened["order"]["side"] == "B"
    assert opened["order"]["sz"] == opened["order"]["origSz"] == "0.002"
    assert float(opened["order"]["limitPx"]) == px

    exchange.cancel("BTC", oid)
    canceled = status_of(oid, "canceled")
    assert canceled["statusTimestamp"] >= opened["statusTimestamp"]

    taken = filled(exchange.order("BTC", True, 0.001, through_px(info, "BTC", True), IOC))
    done = status_of(taken["oid"], "filled")
    assert (done["order"]["sz"], done["order"]["origSz"]) == ("0.0", "0.001")
    assert "cloid" not in done["order"]

    order_error(exchange.order("BTC", True, 0.001, through_px(info, "BTC", True), ALO))
    inbox.wait(
        lambda message: any(u["status"] == "badAloPxRejected" for u in message["data"]),
        "the rejected post-only order",
    )
    order_error(exchange.order("BTC", True, 0.001, px, IOC))
    inbox.wait(
        lambda message: any(u["status"] == "iocCancelRejected" for u in message["data"]),
        "the rejected IOC order",
    )


def test_user_events_carry_fills(ws_info: Any, info: Any, exchange: Any, wallet: Any) -> None:
    inbox = Inbox()
    ws_info.subscribe({"type": "userEvents", "user": wallet.address}, inbox)
    resting_oid(exchange.order("BTC", True, 0.001, far_bid(info, "BTC"), GTC))  # no event

    fill = filled(exchange.market_open("ETH", False, 0.05))

    frame = inbox.wait(lambda message: "fills" in message["data"], "fills on the user channel")
    assert frame["channel"] == "user"
    assert_shape(frame, recorded_frames("user"), optional=USER_FILL_OPTIONAL)
    assert {entry["oid"] for entry in frame["data"]["fills"]} == {fill["oid"]}
    assert all(entry["dir"] == "Open Short" for entry in frame["data"]["fills"])
    assert frame["data"]["fills"] == info.user_fills(wallet.address)[::-1]


# --- raw connection ----------------------------------------------------------------------------


@pytest.fixture
def raw(sim: Sim) -> Iterator[RawSocket]:
    socket = RawSocket(sim.ws_url)
    try:
        yield socket
    finally:
        socket.close()


def test_greeting_and_ping(raw: RawSocket) -> None:
    assert raw.recv_text() == GREETING

    raw.send({"method": "ping"})

    assert raw.recv_until(on_channel("pong"), "pong") == {"channel": "pong"}


def test_subscription_acks_match_the_recording(raw: RawSocket) -> None:
    assert raw.recv_text() == GREETING
    recorded = recorded_frames("subscriptionResponse")
    requests = [
        {"type": "trades", "coin": "SOL"},
        {"type": "l2Book", "coin": "BTC"},
        {"type": "userFills", "user": RECORDED_USER},
    ]

    acks = []
    for subscription in requests:
        raw.send({"method": "subscribe", "subscription": subscription})
        acks.append(raw.recv_until(on_channel("subscriptionResponse"), f"ack of {subscription}"))

    assert acks == recorded
    raw.send({"method": "unsubscribe", "subscription": {"type": "trades", "coin": "SOL"}})
    ack = raw.recv_until(on_channel("subscriptionResponse"), "the unsubscribe ack")
    assert ack == {
        "channel": "subscriptionResponse",
        "data": {"method": "unsubscribe", "subscription": {"type": "trades", "coin": "SOL"}},
    }


def test_unsubscribe_of_what_is_not_subscribed(raw: RawSocket) -> None:
    assert raw.recv_text() == GREETING

    raw.send({"method": "unsubscribe", "subscription": {"type": "trades", "coin": "ETH"}})

    error = raw.recv_until(on_channel("error"), "the error")
    assert error == recorded_frames("error")[0]
    assert error["data"] == 'Already unsubscribed: {"type":"trades","coin":"ETH"}'


def test_post_info_order_status_of_unknown_oid(raw: RawSocket) -> None:
    assert raw.recv_text() == GREETING
    recorded = next(
        frame for frame in recorded_frames("post") if frame["data"]["response"]["type"] == "info"
    )
    user = "0x" + secrets.token_hex(20)

    raw.send(
        {
            "method": "post",
            "id": 7,
            "request": {
                "type": "info",
                "payload": {"type": "orderStatus", "user": user, "oid": 123456789},
            },
        }
    )

    assert raw.recv_until(on_channel("post"), "the post answer") == recorded


def test_post_info_l2_book(raw: RawSocket) -> None:
    assert raw.recv_text() == GREETING

    raw.send(
        {
            "method": "post",
            "id": 8,
            "request": {"type": "info", "payload": {"type": "l2Book", "coin": "BTC"}},
        }
    )

    frame = raw.recv_until(on_channel("post"), "the post answer")
    assert frame["data"]["id"] == 8
    response = frame["data"]["response"]
    assert set(response) == {"type", "payload"}
    assert response["type"] == "info"
    assert set(response["payload"]) == {"type", "data"}
    assert response["payload"]["type"] == "l2Book"
    assert_shape(response["payload"]["data"], [recorded_info("l2Book")])


def signed_order(key: str, order: dict[str, Any], nonce: int) -> dict[str, Any]:
    """An order action signed as the SDK signs it off mainnet, ready for ``/exchange``."""
    action = {"type": "order", "orders": [order], "grouping": "na"}
    signature = sign_l1_action(key, action, nonce, mainnet=False)
    return {"action": action, "nonce": nonce, "signature": signature, "vaultAddress": None}


def test_post_action_order(raw: RawSocket, info: Any, sim: Sim) -> None:
    assert raw.recv_text() == GREETING
    key = secrets.token_hex(32)
    address = address_from_private_key(key)
    fund(sim, address)
    recorded = [
        frame for frame in recorded_frames("post") if frame["data"]["response"]["type"] == "action"
    ]
    px = float_to_wire(far_bid(info, "BTC"))
    order = {"a": 0, "b": True, "p": px, "s": "0.001", "r": False, "t": GTC}
    nonce = now_ms()

    raw.send(
        {
            "method": "post",
            "id": 256,
            "request": {"type": "action", "payload": signed_order(key, order, nonce)},
        }
    )
    resting = raw.recv_until(on_channel("post"), "the order's answer")

    assert_shape(resting, recorded)
    oid = resting_oid(resting["data"]["response"]["payload"])
    assert resting == {
        "channel": "post",
        "data": {
            "id": 256,
            "response": {
                "type": "action",
                "payload": {
                    "status": "ok",
                    "response": {
                        "type": "order",
                        "data": {"statuses": [{"resting": {"oid": oid}}]},
                    },
                },
            },
        },
    }
    assert [o["oid"] for o in info.open_orders(address)] == [oid]

    big_id = 9785759392619777167  # recorded: ids are echoed as sent, up to 64 bits
    bad_tick = {**order, "p": f"{int(float(px))}.5"}  # six significant figures
    raw.send(
        {
            "method": "post",
            "id": big_id,
            "request": {"type": "action", "payload": signed_order(key, bad_tick, nonce + 1)},
        }
    )
    rejected = raw.recv_until(on_channel("post"), "the bad order's answer")

    expected = copy.deepcopy(next(f for f in recorded if f["data"]["id"] == big_id))
    statuses = expected["data"]["response"]["payload"]["response"]["data"]["statuses"]
    statuses[0]["error"] = statuses[0]["error"].replace("asset=13", "asset=0")
    assert rejected == expected
    assert_shape(rejected, recorded)
