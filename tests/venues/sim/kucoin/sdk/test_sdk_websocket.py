"""KuCoin's official SDK, unchanged, against the face's WebSocket: the token handshake, the
level-2 increments and depth-5 books, and the account's order changes."""

from __future__ import annotations

import itertools
from typing import Any

from kucoin_universal_sdk.generate.spot.order import AddOrderReq, AddOrderReqBuilder

from tests.venues.sim.sdk.helpers import wait_for


def test_public_books_arrive_in_sequence(client: Any) -> None:
    public = client.ws_service().new_spot_public_ws()
    public.start()
    increments: list[Any] = []
    depth5: list[Any] = []
    try:
        public.orderbook_increment(
            ["BTC-USDT"], lambda topic, subject, data: increments.append(data)
        )
        public.orderbook_level5(["ETH-USDT"], lambda topic, subject, data: depth5.append(data))
        wait_for(lambda: len(increments) >= 5 and len(depth5) >= 2, "books over the SDK's socket")
    finally:
        public.stop()
    for before, after in itertools.pairwise(increments):
        assert after.sequence_start == before.sequence_end + 1  # none lost on loopback
    assert len(depth5[0].bids) == len(depth5[0].asks) == 5


def test_the_accounts_order_changes(client: Any) -> None:
    private = client.ws_service().new_spot_private_ws()
    private.start()
    changes: list[Any] = []
    try:
        private.order_v2(lambda topic, subject, data: changes.append(data))
        request = (
            AddOrderReqBuilder()
            .set_client_oid("sdk-ws-1")
            .set_side(AddOrderReq.SideEnum.BUY)
            .set_symbol("BTC-USDT")
            .set_type(AddOrderReq.TypeEnum.LIMIT)
            .set_price("10000")
            .set_size("0.001")
            .build()
        )
        placed = client.rest_service().get_spot_service().get_order_api().add_order(request)

        def mine() -> list[Any]:
            return [change for change in changes if change.order_id == placed.order_id]

        wait_for(lambda: len(mine()) >= 2, "the order's changes over the SDK's socket")
    finally:
        private.stop()
    assert [c.type.value for c in mine()][:2] == ["received", "open"]
    assert mine()[1].client_oid == "sdk-ws-1"
