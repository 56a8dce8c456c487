"""l2Book's nSigFigs and mantissa, as the venue honours them: the pure aggregation, the info
request and the WebSocket subscription on the simulator (which used to ignore both)."""

from __future__ import annotations

import math
from typing import Any

import httpx
import orjson
import pytest
import trio
from hypothesis import given
from hypothesis import strategies as st

from mm.venues.sim import aggregate
from mm.venues.sim.hyperliquid.info import DESERIALIZE_ERROR
from tests.venues.sim.test_server import (
    L2_BOOK_BTC,
    http,
    next_frame,
    running,
    send,
    subscribe,
    websocket,
)

# BTC on the simulator: szDecimals 5, so prices have 1 decimal (ticks of 0.1).
BTC_PX_DECIMALS = 1


def sig_figs(px: str) -> int:
    """Significant figures of a decimal string, trailing zeros of the integer part not counted."""
    digits = px.replace(".", "").lstrip("0")
    if "." in px:
        whole, fraction = px.split(".")
        digits = (whole + fraction.rstrip("0")).lstrip("0")
    return len(digits.rstrip("0")) or 1


def test_buckets() -> None:
    assert aggregate.bucket_ticks(670123, 5) == 10  # 67012.3 to 5 figures: steps of 1.0
    assert aggregate.bucket_ticks(670123, 3) == 1000  # 67000: steps of 100
    assert aggregate.bucket_ticks(670123, 5, 2) == 20  # steps of 2
    assert aggregate.bucket_ticks(670123, 5, 5) == 50
    assert aggregate.bucket_ticks(123, 5) == 1  # finer than the tick: the tick
    levels = [(670123, 5, 1), (670119, 7, 2), (670001, 1, 1), (669999, 2, 1)]
    assert aggregate.aggregate(levels, is_buy=True, n_sig_figs=4, depth=20) == [
        (670100, 12, 3),
        (670000, 1, 1),
        (669900, 2, 1),
    ]
    asks = [(670101, 5, 1), (670150, 7, 2), (670210, 1, 1)]
    assert aggregate.aggregate(asks, is_buy=False, n_sig_figs=4, depth=20) == [
        (670200, 12, 3),
        (670300, 1, 1),
    ]
    assert aggregate.aggregate(asks, is_buy=False, n_sig_figs=4, depth=1) == [(670200, 12, 3)]
    assert aggregate.aggregate(asks, is_buy=False, n_sig_figs=None, depth=2) == asks[:2]


@pytest.mark.parametrize(
    ("n_sig_figs", "mantissa", "problem"),
    [
        (None, None, None),
        (2, None, None),
        (5, 2, None),
        (5, 1, None),
        (1, None, "nSigFigs: expected 2, 3, 4, 5 or null"),
        (6, None, "nSigFigs: expected 2, 3, 4, 5 or null"),
        (True, None, "nSigFigs: expected 2, 3, 4, 5 or null"),
        (5, 3, "mantissa: expected 1, 2, 5 or null"),
        (4, 2, "mantissa: only allowed when nSigFigs is 5"),
        (None, 5, "mantissa: only allowed when nSigFigs is 5"),
    ],
)
def test_the_accepted_values(n_sig_figs: Any, mantissa: Any, problem: str | None) -> None:
    assert aggregate.check(n_sig_figs, mantissa) == problem


side = st.lists(
    st.tuples(st.integers(1, 10**9), st.integers(1, 10**6), st.integers(1, 5)),
    min_size=1,
    max_size=60,
    unique_by=lambda level: level[0],
)


@given(side, st.booleans(), st.sampled_from([2, 3, 4, 5]), st.sampled_from([None, 2, 5]))
def test_aggregation_keeps_sizes_order_and_side(
    raw: list[tuple[int, int, int]], is_buy: bool, n_sig_figs: int, mantissa: int | None
) -> None:
    if n_sig_figs != 5:
        mantissa = None
    levels = sorted(raw, reverse=is_buy)  # best first
    out = aggregate.aggregate(
        levels, is_buy=is_buy, n_sig_figs=n_sig_figs, mantissa=mantissa, depth=10**6
    )
    assert sum(s for _, s, _ in out) == sum(s for _, s, _ in levels)
    assert sum(n for _, _, n in out) == sum(n for _, _, n in levels)
    prices = [px for px, _, _ in out]
    assert prices == sorted(prices, reverse=is_buy)
    assert len(set(prices)) == len(prices)
    for px, _, _ in levels:  # every level moved away from the touch, to its bucket
        step = aggregate.bucket_ticks(px, n_sig_figs, mantissa)
        bucket = px // step * step if is_buy else math.ceil(px / step) * step
        assert bucket in prices
        assert (bucket <= px) if is_buy else (bucket >= px)
    limited = aggregate.aggregate(
        levels, is_buy=is_buy, n_sig_figs=n_sig_figs, mantissa=mantissa, depth=3
    )
    assert limited == out[:3]


# --- on the simulator ---------------------------------------------------------------------------


async def l2(client: httpx.AsyncClient, **fields: Any) -> httpx.Response:
    return await client.post("/info", json={"type": "l2Book", "coin": "BTC", **fields})


async def test_info_l2book_aggregates_as_asked() -> None:
    with trio.fail_after(10):
        async with running() as venue, http(venue) as client:
            for n_sig_figs in (2, 3, 4, 5):
                answer = await l2(client, nSigFigs=n_sig_figs)
                assert answer.status_code == 200
                bids, asks = answer.json()["levels"]
                assert bids
                assert asks
                for level in bids + asks:
                    assert sig_figs(level["px"]) <= n_sig_figs, (n_sig_figs, level)
                assert float(bids[0]["px"]) < float(asks[0]["px"])
                assert len(bids) <= 20
                assert len(asks) <= 20
            stepped = (await l2(client, nSigFigs=5, mantissa=5)).json()["levels"]
            for level in stepped[0] + stepped[1]:
                assert round(float(level["px"])) % 5 == 0, level
            for bad in ({"nSigFigs": 7}, {"nSigFigs": 4, "mantissa": 2}, {"mantissa": 5}):
                refused = await l2(client, **bad)
                assert refused.status_code == 422
                assert refused.text.startswith(DESERIALIZE_ERROR)
            # In-process, on one state of the book: the 2-figure book holds every resting size
            # in fewer levels, its touch at or beyond the full book's.
            book = venue.engine.books[0]
            full, coarse = venue.l2_snapshot(0), venue.l2_snapshot(0, 2)
            for index, is_buy in ((0, True), (1, False)):
                everything = book.levels(is_buy, len(book.orders))
                lots = sum(size for _, size, _ in everything)
                total = sum(float(level["sz"]) for level in coarse["levels"][index])
                assert total == pytest.approx(lots / 10**5)
                assert len(coarse["levels"][index]) < len(full["levels"][index])
                touch = float(coarse["levels"][index][0]["px"])
                best = float(full["levels"][index][0]["px"])
                assert touch <= best if is_buy else touch >= best


async def test_an_aggregated_subscription_gets_aggregated_frames_beside_the_full_one() -> None:
    with trio.fail_after(10):
        async with running() as venue, websocket(venue) as full, websocket(venue) as coarse:
            await subscribe(full, L2_BOOK_BTC)
            await subscribe(coarse, {**L2_BOOK_BTC, "nSigFigs": 3})
            ack = await next_frame(coarse, "subscriptionResponse")
            assert ack["data"]["subscription"] == {
                "type": "l2Book",
                "coin": "BTC",
                "nSigFigs": 3,
                "mantissa": None,
            }
            for _ in range(3):  # the snapshot, then pushes as the book changes
                frame = await next_frame(coarse, "l2Book")
                for level in frame["data"]["levels"][0] + frame["data"]["levels"][1]:
                    assert sig_figs(level["px"]) <= 3, level
            detailed = await next_frame(full, "l2Book")
            assert any(sig_figs(lv["px"]) > 3 for lv in detailed["data"]["levels"][0])
            # An invalid combination is refused as the venue refuses a bad subscription.
            bad = {**L2_BOOK_BTC, "nSigFigs": 4, "mantissa": 2}
            await send(coarse, {"method": "subscribe", "subscription": bad})
            error = await next_frame(coarse, "error")
            assert error["data"] == f"Invalid subscription {orjson.dumps(bad).decode()}"
            await subscribe(coarse, {**L2_BOOK_BTC, "nSigFigs": 3})  # twice: already
            again = await next_frame(coarse, "error")
            assert again["data"].startswith("Already subscribed")
