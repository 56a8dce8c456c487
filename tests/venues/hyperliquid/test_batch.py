"""The venue's statuses laid onto a batch's requests (issue 14, item 4): one error status for a
batch of N is each request's error; N statuses are each their own; any other count is a
mismatch, which the client turns into an unknown fate for the batch's orders, never a crash.

Properties over batch sizes and answer shapes: the pure rule (``batch.per_request``), then the
real client's place, modify and cancel fed each shape of answer (its action stubbed), which
give one result per request or raise only the errors their callers handle.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any, cast

import pytest
import trio
from hypothesis import given, settings
from hypothesis import strategies as st

from mm.model import (
    CancelOrder,
    CancelResult,
    Filled,
    ModifyOrder,
    PlaceOrder,
    PlaceResult,
    Rejected,
    Resting,
    Side,
    Tif,
)
from mm.venues.base import OrderFateUnknown
from mm.venues.hyperliquid import codec
from mm.venues.hyperliquid.batch import StatusCountMismatch, per_request
from mm.venues.hyperliquid.client import HyperliquidClient
from mm.venues.hyperliquid.rate_limit import RateLimiter
from mm.venues.hyperliquid.rest import RestTransport
from mm.venues.hyperliquid.signing import L1Signer
from mm.venues.hyperliquid.wire import new_cloid
from tests.ids import hl_number, hl_oid

KEY = "0x" + "5d" * 32
UPGRADE = "Only post-only orders allowed immediately after network upgrade"
META = {
    "universe": [
        {"name": "BTC", "szDecimals": 5, "maxLeverage": 40},
        {"name": "ETH", "szDecimals": 4, "maxLeverage": 25},
    ]
}

PLACE_RESULTS = st.one_of(
    st.builds(Resting, st.integers(1, 10**9).map(hl_oid), st.none()),
    st.builds(
        Filled, st.integers(1, 10**9).map(hl_oid), st.none(), st.just(0.001), st.just(95_000.0)
    ),
    st.builds(Rejected, st.text(min_size=1, max_size=30)),
)
CANCEL_RESULTS = st.one_of(st.none(), st.builds(Rejected, st.text(min_size=1, max_size=30)))


# --- the pure rule ----------------------------------------------------------------------------


@given(st.integers(1, 60), st.lists(PLACE_RESULTS, max_size=64))
def test_statuses_for_each_request_or_a_mismatch(
    requests: int, statuses: list[PlaceResult]
) -> None:
    fits = len(statuses) == requests
    refused_whole = len(statuses) == 1 and isinstance(statuses[0], Rejected)
    if not (fits or refused_whole):
        expected = f"{len(statuses)} status(es) for a batch of {requests}"
        with pytest.raises(StatusCountMismatch, match=re.escape(expected)) as raised:
            per_request(statuses, requests)
        assert (raised.value.statuses, raised.value.requests) == (len(statuses), requests)
        return
    laid = per_request(statuses, requests)
    assert len(laid) == requests
    if fits:
        assert laid == statuses
    else:  # one error refused the whole batch: it is every request's
        assert laid == [statuses[0]] * requests


@given(st.integers(2, 60), st.text(min_size=1, max_size=40))
def test_one_error_for_a_batch_is_each_requests_error(requests: int, text: str) -> None:
    assert per_request([Rejected(text)], requests) == [Rejected(text)] * requests
    cancels: list[CancelResult] = [Rejected(text)]
    assert per_request(cancels, requests) == [Rejected(text)] * requests


@given(st.integers(2, 60), PLACE_RESULTS.filter(lambda r: not isinstance(r, Rejected)))
def test_one_success_for_a_batch_of_several_is_a_mismatch(requests: int, only: Any) -> None:
    with pytest.raises(StatusCountMismatch):
        per_request([only], requests)
    with pytest.raises(StatusCountMismatch):
        per_request(cast(list[CancelResult], [None]), requests)


# --- the client, fed every shape of answer ------------------------------------------------------


def wire_place(result: PlaceResult) -> dict[str, Any]:
    if isinstance(result, Resting):
        return {"resting": {"oid": hl_number(result.oid)}}
    if isinstance(result, Filled):
        return {"filled": {"oid": hl_number(result.oid), "totalSz": "0.001", "avgPx": "95000.0"}}
    return {"error": result.reason}


def wire_cancel(result: CancelResult) -> Any:
    return "success" if result is None else {"error": result.reason}


def ok(kind: str, statuses: list[Any]) -> dict[str, Any]:
    return {"status": "ok", "response": {"type": kind, "data": {"statuses": statuses}}}


# An answer: (shape, statuses) -> the venue's JSON; "statuses" in request order when it fits.
SHAPES = st.sampled_from(["each", "one_error", "one_success", "count", "err", "unreadable"])


def answer_for(
    shape: str, count: int, extra: int, results: list[Any], wire: Callable[[Any], Any], kind: str
) -> Any:
    if shape == "each":
        return ok(kind, [wire(r) for r in results])
    if shape == "one_error":
        return ok(kind, [{"error": UPGRADE}])
    if shape == "one_success":
        return ok(kind, ["success" if kind == "cancel" else {"resting": {"oid": 1}}])
    if shape == "count":
        return ok(kind, [wire(results[0])] * (count + extra))  # never count statuses
    if shape == "err":
        return {"status": "err", "response": UPGRADE}
    return ok(kind, [{"unknown": True}] * count)


def stubbed_client(answer: Any, sent: list[dict[str, Any]]) -> HyperliquidClient:
    signer = L1Signer(KEY)
    client = HyperliquidClient(
        rest=cast(RestTransport, None),  # never used: the action and info are stubbed
        signer=signer,
        account=signer.address,
        mainnet=False,
        limiter=RateLimiter(),
    )

    async def info(request: Any) -> Any:
        return META

    async def action(action: dict[str, Any], **kwargs: Any) -> Any:
        sent.append(action)
        return answer

    client._info = info  # type: ignore[method-assign]
    client._action = action  # type: ignore[method-assign]
    return client


def expect(
    shape: str, count: int, extra: int, results: list[Any], outcome: Any, cloids: list[str]
) -> None:
    """What the client must give for a shape of answer to a batch of ``count``."""
    if shape == "one_error":
        assert outcome == [Rejected(UPGRADE)] * count
    elif shape == "each":
        assert outcome == results
    elif shape == "one_success" and count == 1:
        assert outcome in ([Resting(hl_oid(1), None)], [None])
    elif shape == "err":
        assert isinstance(outcome, codec.VenueRejected)
        assert outcome.text == UPGRADE
    elif shape == "count" and extra == 1 - count and isinstance(results[0], Rejected):
        assert outcome == [results[0]] * count  # one error status: the batch refused whole
    else:  # statuses that fit no request, or unreadable: each order is to be asked about
        assert isinstance(outcome, OrderFateUnknown), outcome
        assert outcome.cloids == tuple(cloids)


async def run(call: Callable[[], Any]) -> Any:
    try:
        return await call()
    except (OrderFateUnknown, codec.VenueRejected) as error:
        return error


@settings(max_examples=150, deadline=None)
@given(st.data(), st.integers(1, 25), SHAPES, st.integers(-30, 3).filter(lambda n: n != 0))
def test_place_gives_each_order_a_result_or_an_unknown_fate(
    data: st.DataObject, count: int, shape: str, extra: int
) -> None:
    results = data.draw(st.lists(PLACE_RESULTS, min_size=count, max_size=count))
    extra = max(extra, -count)
    answer = answer_for(shape, count, extra, results, wire_place, "order")
    orders = [
        PlaceOrder("BTC", Side.BUY, 90_000.0 - i, 0.001, Tif.ALO, new_cloid()) for i in range(count)
    ]
    sent: list[dict[str, Any]] = []
    client = stubbed_client(answer, sent)

    async def scenario() -> Any:
        await client.metadata()
        return await run(lambda: client.place(orders))

    outcome = trio.run(scenario)
    assert len(sent) == 1  # one batch, sent once whatever the answer
    expect(shape, count, extra, results, outcome, [o.cloid for o in orders])


@settings(max_examples=100, deadline=None)
@given(st.data(), st.integers(1, 25), SHAPES, st.integers(-30, 3).filter(lambda n: n != 0))
def test_modify_gives_each_modify_a_result_or_an_unknown_fate(
    data: st.DataObject, count: int, shape: str, extra: int
) -> None:
    results = data.draw(st.lists(PLACE_RESULTS, min_size=count, max_size=count))
    extra = max(extra, -count)
    answer = answer_for(shape, count, extra, results, wire_place, "order")
    modifies = [
        ModifyOrder(PlaceOrder("ETH", Side.SELL, 3_600.0 + i, 0.01, Tif.ALO, cloid))
        for i, cloid in enumerate(new_cloid() for _ in range(count))
    ]
    sent: list[dict[str, Any]] = []
    client = stubbed_client(answer, sent)

    async def scenario() -> Any:
        await client.metadata()
        return await run(lambda: client.modify(modifies))

    outcome = trio.run(scenario)
    assert [action["type"] for action in sent] == ["batchModify"]
    expect(shape, count, extra, results, outcome, [m.order.cloid for m in modifies])


@settings(max_examples=100, deadline=None)
@given(st.data(), st.integers(1, 25), SHAPES, st.integers(-30, 3).filter(lambda n: n != 0))
def test_cancel_gives_each_cancel_a_result_or_an_unknown_fate(
    data: st.DataObject, count: int, shape: str, extra: int
) -> None:
    results = data.draw(st.lists(CANCEL_RESULTS, min_size=count, max_size=count))
    extra = max(extra, -count)
    answer = answer_for(shape, count, extra, results, wire_cancel, "cancel")
    cancels = [CancelOrder("BTC", cloid=new_cloid()) for _ in range(count)]
    sent: list[dict[str, Any]] = []
    client = stubbed_client(answer, sent)

    async def scenario() -> Any:
        await client.metadata()
        return await run(lambda: client.cancel(cancels))

    outcome = trio.run(scenario)
    assert [action["type"] for action in sent] == ["cancelByCloid"]
    expect(shape, count, extra, results, outcome, [str(c.cloid) for c in cancels])
