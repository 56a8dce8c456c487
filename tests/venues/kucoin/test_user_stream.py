"""KuCoin's user stream: the recorded order changes and balance pushes as the port's events,
and the resync's reads through the client."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from typing import Any

import attrs
import pytest
import trio

from mm.model import AccountState, Balance, Fill, OpenOrder, OrderReport, OrderStatus, Side
from mm.venues.base import Foreign, Gap, Malformed
from mm.venues.kucoin.ids import order_id, trade_id
from mm.venues.kucoin.user_stream import ORDERS_TOPIC, KucoinUserStream
from mm.venues.kucoin.ws import Frame, TopicSubscription
from tests.fixture_paths import KUCOIN

MESSAGES: dict[str, Any] = json.loads((KUCOIN / "messages.json").read_text(encoding="utf-8"))
BALANCE: dict[str, Any] = json.loads(
    (KUCOIN / "ws_account_balance.json").read_text(encoding="utf-8")
)["message"]
DOCS: dict[str, Any] = json.loads((KUCOIN / "docs_examples.json").read_text(encoding="utf-8"))


def frame(message: dict[str, Any]) -> Frame:
    return Frame(1, message["topic"], message.get("subject"), message["data"])


@attrs.define
class FakeConnection:
    """The private socket, as the stream uses it: subscriptions handed to the test."""

    reconnects: int = 0
    connected: bool = True
    subs: list[TopicSubscription] = attrs.Factory(list)
    unsubscribed: list[TopicSubscription] = attrs.Factory(list)

    def watching(self, on_change: Callable[[bool, str], None]) -> AbstractContextManager[None]:
        @contextmanager
        def hold() -> Iterator[None]:
            yield

        return hold()

    async def subscribe(self, topic: str, *, private: bool, buffer: int) -> TopicSubscription:
        assert private
        sub = TopicSubscription(topic, private=True, buffer=buffer)
        self.subs.append(sub)
        return sub

    async def unsubscribe(self, sub: TopicSubscription) -> None:
        self.unsubscribed.append(sub)
        sub.close()


def fill(symbol: str, time_ms: int, tid: str) -> Fill:
    return Fill(
        symbol, Side.BUY, 1.0, 1.0, time_ms, order_id("0" * 24), trade_id(tid), None,
        0.001, "USDT", True, 0.0, "Buy", 0.0, "",
    )  # fmt: skip


@attrs.define
class FakeReads:
    """The client's reads: what the stream asks of the REST."""

    balances: tuple[Balance, ...] = (Balance("USDT", 100.0, 100.0, 0.0),)
    fills_page: int = 100
    symbols: tuple[str, ...] = ("KCS-USDT", "BTC-USDT")
    value_currency: str = "USDT"
    asked_fees: list[tuple[str, bool]] = attrs.Factory(list)

    async def recent_fills(self, symbol: str) -> list[Fill]:
        newest = {"KCS-USDT": [3, 1], "BTC-USDT": [2]}[symbol]  # newest first, as listed
        return [fill(symbol, 1_000 + n, str(n)) for n in newest]

    async def fills_since(self, time_ms: int) -> list[Fill]:
        return [fill("KCS-USDT", time_ms, "9")]

    async def open_orders(self) -> list[OpenOrder]:
        return []

    async def account_state(self) -> AccountState:
        return AccountState(1_730_269_283_000, 100.0, 0.0, 100.0, (), self.balances)

    def fee(self, symbol: str, *, taker: bool) -> tuple[float, str]:
        self.asked_fees.append((symbol, taker))
        return (0.002 if taker else 0.001), "USDT"


async def streams() -> tuple[KucoinUserStream, FakeConnection, FakeReads, list[Any]]:
    connection, reads = FakeConnection(), FakeReads()
    stream = KucoinUserStream("kucoin-key-abc", connection, reads)
    return stream, connection, reads, await stream.subscribe(buffer=10)


async def test_order_changes_are_reports_and_a_match_is_also_a_fill() -> None:
    _, connection, reads, (orders, _) = await streams()
    assert [sub.topic for sub in connection.subs] == [ORDERS_TOPIC, "/account/balance"]
    orders_sub = connection.subs[0]
    orders_sub.offer(frame(MESSAGES["tradeOrdersV2_open"]))
    orders_sub.offer(frame(MESSAGES["tradeOrdersV2_match_taker"]))
    orders_sub.offer(frame(MESSAGES["tradeOrdersV2_filled"]))
    events = [await orders.__anext__() for _ in range(4)]
    assert [type(e) for e in events] == [OrderReport, OrderReport, Fill, OrderReport]
    match_report, made = events[1], events[2]
    assert match_report.status is OrderStatus.OPEN
    assert made.tid == trade_id("5efab07a4ee4c7000a82d6d9")
    assert made.fee == pytest.approx(0.96738 * 0.1 * 0.002)  # the taker rate the client read
    assert made.fee_token == "USDT"
    assert reads.asked_fees == [("KCS-USDT", True)]
    assert events[3].status is OrderStatus.FILLED


async def test_a_maker_s_match_is_charged_the_maker_rate() -> None:
    _, connection, reads, (orders, _) = await streams()
    connection.subs[0].offer(frame(DOCS["maker_match"]["message"]))
    report, made = [await orders.__anext__() for _ in range(2)]
    assert isinstance(report, OrderReport)
    assert isinstance(made, Fill)
    assert reads.asked_fees == [("KCS-USDT", False)]
    assert made.fee == pytest.approx(0.96738 * 0.1 * 0.001)  # the maker rate the client read
    assert made.crossed is False
    # A maker's match the venue labels taker: its feeType says the maker rate.
    connection.subs[0].offer(frame(DOCS["maker_match_labelled_taker"]["message"]))
    _, labelled = [await orders.__anext__() for _ in range(2)]
    assert reads.asked_fees[-1] == ("KCS-USDT", False)
    assert isinstance(labelled, Fill)
    assert labelled.fee == made.fee


async def test_malformed_frames_and_gaps_pass_as_markers() -> None:
    _, connection, _, (orders, _) = await streams()
    orders_sub = connection.subs[0]
    orders_sub.offer(Frame(1, ORDERS_TOPIC, "orderChange", {"type": "match"}))
    orders_sub.mark_gap()
    orders_sub.offer(frame(MESSAGES["tradeOrdersV2_open"]))
    malformed, gap, report = [await orders.__anext__() for _ in range(3)]
    assert isinstance(malformed, Malformed)
    assert "malformed order change" in malformed.why
    assert isinstance(gap, Gap)
    assert isinstance(report, OrderReport)
    assert orders.gaps == 1


async def test_balance_pushes_update_the_balances_the_read_set() -> None:
    stream, connection, _, (_, balances) = await streams()
    balance_sub = connection.subs[1]
    balance_sub.offer(frame(BALANCE))  # before the account was read: not yet a state
    assert isinstance(await balances.__anext__(), Foreign)
    state = await stream.account_state()
    assert state.balances == (Balance("USDT", 100.0, 100.0, 0.0),)
    balance_sub.offer(frame(BALANCE))  # pushed at ...892, after the read at ...000
    pushed = await balances.__anext__()
    assert isinstance(pushed, AccountState)
    assert pushed.balances == (Balance("USDT", 21.133773386762, 20.132773386762, 1.001),)
    assert pushed.account_value == 21.133773386762  # valued as the client values it
    assert pushed.time_ms == 1_730_269_283_892
    older = BALANCE | {"data": BALANCE["data"] | {"time": "1730269283001", "total": "5"}}
    main = BALANCE | {"data": BALANCE["data"] | {"relationEvent": "main.deposit"}}
    balance_sub.offer(frame(older))
    balance_sub.offer(frame(main))
    assert [type(await balances.__anext__()) for _ in range(2)] == [Foreign, Foreign]
    btc = BALANCE | {"data": BALANCE["data"] | {"currency": "BTC", "total": "1", "hold": "0"}}
    balance_sub.offer(frame(btc))
    both = await balances.__anext__()
    assert [b.currency for b in both.balances] == ["BTC", "USDT"]


async def test_reads_go_to_the_client_and_recent_fills_are_merged_oldest_first() -> None:
    stream, connection, _, subscribed = await streams()
    recent = await stream.recent_fills()
    assert [(f.coin, f.time_ms) for f in recent] == [
        ("KCS-USDT", 1_001),
        ("BTC-USDT", 1_002),
        ("KCS-USDT", 1_003),
    ]
    assert [f.time_ms for f in await stream.fills_since(5_000)] == [5_000]
    assert await stream.open_orders() == []
    assert stream.fills_page == 100
    assert stream.account == "kucoin-key-abc"
    for sub in subscribed:
        await stream.unsubscribe(sub)
    assert connection.unsubscribed == connection.subs
    with pytest.raises(TypeError):
        await stream.unsubscribe(object())  # type: ignore[arg-type]
    with trio.fail_after(1):
        assert [item async for item in subscribed[0]] == []  # ended
