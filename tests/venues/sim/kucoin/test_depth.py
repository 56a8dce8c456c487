"""The KuCoin face's level-2 increments and snapshots, read by the adapter's own level-2 book:
whatever increments are lost on the way, the adapter's book equals the face's at its sequence,
or the adapter has seen the gap and resynced from a snapshot."""

from __future__ import annotations

from decimal import Decimal

from hypothesis import given, settings
from hypothesis import strategies as st

from mm.venues.kucoin.codec import parse_level2_increment, parse_level2_snapshot
from mm.venues.kucoin.level2 import Level2Book, Outcome
from mm.venues.sim.kucoin.depth import DepthFeed
from mm.venues.sim.kucoin.spot import SpotOrderRequest
from tests.venues.sim.kucoin.test_spot import BTC_USDT, ORDERS, exchange, limit, placed

D = Decimal


def test_increments_number_each_changed_level_and_the_snapshot_carries_the_sequence() -> None:
    ex = exchange()
    depth = DepthFeed([BTC_USDT], first_sequence=100)
    book = ex.books["BTC-USDT"]
    assert depth.step("BTC-USDT", book, 1) is None  # nothing changed
    placed(ex.place("alice", limit("sell", "60000", "0.5"), 1))
    placed(ex.place("alice", limit("sell", "60001.5", "0.25"), 2))
    first = depth.step("BTC-USDT", book, 2)
    assert first == {
        "changes": {"asks": [["60000", "0.5", "100"], ["60001.5", "0.25", "101"]], "bids": []},
        "sequenceEnd": 101,
        "sequenceStart": 100,
        "symbol": "BTC-USDT",
        "time": 2,
    }
    placed(ex.place("bob", limit("buy", "60000", "0.5"), 3))  # takes the whole level
    placed(ex.place("bob", limit("buy", "59000", "0.1"), 4))
    second = depth.step("BTC-USDT", book, 4)
    assert second is not None
    assert second["changes"] == {"asks": [["60000", "0", "103"]], "bids": [["59000", "0.1", "102"]]}
    assert (second["sequenceStart"], second["sequenceEnd"]) == (102, 103)
    snapshot = depth.snapshot("BTC-USDT", 5)
    assert snapshot == {
        "time": 5,
        "sequence": "103",
        "bids": [["59000", "0.1"]],
        "asks": [["60001.5", "0.25"]],
    }
    assert depth.snapshot("BTC-USDT", 5, depth=0)["asks"] == []
    # The adapter reads both as they are.
    increment = parse_level2_increment(second)
    assert increment.sequence_start == 102
    assert parse_level2_snapshot(snapshot, "BTC-USDT").sequence == 103


@settings(max_examples=120)
@given(
    actions=st.lists(ORDERS, min_size=1, max_size=30),
    delivered=st.lists(st.booleans(), min_size=30, max_size=30),
    snapshot_after=st.integers(0, 30),
)
def test_the_adapters_book_is_the_faces_at_its_sequence_or_it_resyncs(
    actions: list[tuple[str, object]], delivered: list[bool], snapshot_after: int
) -> None:
    ex = exchange()
    depth = DepthFeed([BTC_USDT])
    book = ex.books["BTC-USDT"]
    published: dict[int, tuple[tuple[tuple[float, float, int], ...], ...]] = {0: ((), ())}
    client = Level2Book("BTC-USDT")
    for now, (first, second) in enumerate(actions):
        if first == "cancel":
            if ex.live:
                oid = sorted(ex.live)[int(str(second)) % len(ex.live)]
                ex.cancel(ex.live[oid].user, oid, now)
        else:
            assert isinstance(second, SpotOrderRequest)
            ex.place(first, second, now)
        if now == snapshot_after:  # the client's first snapshot: what it buffered is older
            first_book = parse_level2_snapshot(depth.snapshot("BTC-USDT", now), "BTC-USDT")
            assert client.snapshot(first_book) is Outcome.SYNCED
        data = depth.step("BTC-USDT", book, now)
        if data is None:
            continue
        snap = parse_level2_snapshot(depth.snapshot("BTC-USDT", now), "BTC-USDT")
        published[snap.sequence] = (
            tuple((px, sz, 0) for px, sz in snap.bids),
            tuple((px, sz, 0) for px, sz in snap.asks),
        )
        if not delivered[now]:
            continue  # the venue dropped it for this client
        outcome = client.increment(parse_level2_increment(data))
        if outcome is Outcome.GAP:
            resynced = client.snapshot(snap)
            assert resynced is Outcome.SYNCED
        if client.synced:
            assert client.sequence is not None
            assert client.top(1_000) == published[client.sequence]
