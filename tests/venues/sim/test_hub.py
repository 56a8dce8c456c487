"""Unit tests for the simulator's WebSocket fan-out: subscriptions, publishing, slow consumers."""

from __future__ import annotations

import orjson
import trio

from mm.venues.sim.hub import Hub, Key, Session

BOOK: Key = ("l2Book", "BTC")
TRADES: Key = ("trades", "BTC")
MIDS: Key = ("allMids", "")


def drain(session: Session) -> list[tuple[str, str]]:
    frames: list[tuple[str, str]] = []
    while True:
        try:
            channel, text, _queued_at = session.receive_channel.receive_nowait()
            frames.append((channel, text))
        except trio.WouldBlock:
            return frames


async def test_add_remove_has() -> None:
    hub = Hub()
    session = Session("a", 10)
    assert not hub.has(BOOK)
    assert hub.add(session, BOOK) is True
    assert hub.add(session, BOOK) is False  # already subscribed
    assert hub.has(BOOK)
    assert session.keys == {BOOK}
    assert list(hub.keys()) == [BOOK]
    assert hub.remove(session, BOOK) is True
    assert hub.remove(session, BOOK) is False  # already unsubscribed
    assert not hub.has(BOOK)
    assert list(hub.keys()) == []
    assert session.keys == set()


async def test_a_key_stays_while_any_session_has_it() -> None:
    hub = Hub()
    first, second = Session(1, 10), Session(2, 10)
    hub.add(first, BOOK)
    hub.add(second, BOOK)
    hub.remove(first, BOOK)
    assert hub.has(BOOK)
    assert hub.remove(first, BOOK) is False
    hub.remove(second, BOOK)
    assert not hub.has(BOOK)


async def test_drop_removes_all_of_a_sessions_subscriptions() -> None:
    hub = Hub()
    leaving, staying = Session(1, 10), Session(2, 10)
    for key in (BOOK, TRADES, MIDS):
        hub.add(leaving, key)
    hub.add(staying, TRADES)
    hub.drop(leaving)
    assert leaving.keys == set()
    assert not hub.has(BOOK)
    assert not hub.has(MIDS)
    assert hub.has(TRADES)
    assert set(hub.keys()) == {TRADES}
    assert hub.publish(TRADES, "trades", []) == 1


async def test_publish_reaches_exactly_the_subscribers() -> None:
    hub = Hub()
    sessions = [Session(index, 10) for index in range(3)]
    hub.add(sessions[0], BOOK)
    hub.add(sessions[1], BOOK)
    hub.add(sessions[2], TRADES)
    assert hub.publish(BOOK, "l2Book", {"coin": "BTC", "levels": [[], []]}) == 2
    assert hub.publish(("l2Book", "ETH"), "l2Book", {}) == 0
    expected = ("l2Book", '{"channel":"l2Book","data":{"coin":"BTC","levels":[[],[]]}}')
    assert drain(sessions[0]) == [expected]
    assert drain(sessions[1]) == [expected]
    assert drain(sessions[2]) == []


async def test_publish_frames_are_channel_and_data() -> None:
    hub = Hub()
    session = Session("x", 10)
    hub.add(session, ("userFills", "0xabc"))
    hub.publish(("userFills", "0xabc"), "userFills", {"user": "0xabc", "fills": [1, 2]})
    ((channel, text),) = drain(session)
    assert channel == "userFills"
    assert orjson.loads(text) == {
        "channel": "userFills",
        "data": {"user": "0xabc", "fills": [1, 2]},
    }


async def test_publish_lazy_builds_only_when_someone_listens() -> None:
    hub = Hub()
    built: list[int] = []

    def payload() -> object:
        built.append(1)
        return {"mids": {"BTC": "1.0"}}

    assert hub.publish_lazy(MIDS, "allMids", payload) == 0
    assert built == []
    first, second = Session(1, 10), Session(2, 10)
    hub.add(first, MIDS)
    hub.add(second, MIDS)
    assert hub.publish_lazy(MIDS, "allMids", payload) == 2
    assert built == [1]  # built once, sent to both
    assert (
        drain(first)
        == drain(second)
        == [("allMids", '{"channel":"allMids","data":{"mids":{"BTC":"1.0"}}}')]
    )
    hub.remove(first, MIDS)
    hub.remove(second, MIDS)
    assert hub.publish_lazy(MIDS, "allMids", payload) == 0
    assert built == [1]


async def test_push_queues_in_order() -> None:
    session = Session("a", 10)
    assert session.push("hello")
    assert session.push("frame", "trades")
    assert drain(session) == [("", "hello"), ("trades", "frame")]


async def test_a_full_outbox_closes_the_session_as_a_slow_consumer() -> None:
    hub = Hub()
    slow, fast = Session("slow", 2), Session("fast", 100)
    hub.add(slow, TRADES)
    hub.add(fast, TRADES)
    assert hub.publish(TRADES, "trades", [1]) == 2
    assert hub.publish(TRADES, "trades", [2]) == 2
    assert not slow.closed.is_set()
    assert hub.publish(TRADES, "trades", [3]) == 1  # the slow one's outbox is full
    assert slow.closed.is_set()
    assert slow.close_reason == "slow consumer"
    assert slow.push("more") is False
    drain(slow)  # even with room again, a closed session takes nothing more
    assert slow.push("more") is False
    assert hub.publish(TRADES, "trades", [4]) == 1
    assert drain(slow) == []
    assert len(drain(fast)) == 4


async def test_close_keeps_the_first_reason() -> None:
    session = Session("a", 1)
    session.close("idle timeout")
    session.close("slow consumer")
    assert session.closed.is_set()
    assert session.close_reason == "idle timeout"
    assert session.push("x") is False
