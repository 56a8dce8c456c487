"""The simulator's commit delay (issue 14, item 1): an action takes effect a block or two after the
venue takes it in, in the order received, and is answered only then.

The queue on its own (pure, clock-free), then a running venue on Trio's virtual clock over real
loopback sockets: until an order's block commits, orderStatus does not know it and openOrders does
not list it; the answer comes after the effect; a socket dropped first changes nothing; the
expiry and the nonce are checked at commit; actions commit in the order received. And the
random-disconnect fault that drops a connection right after it sent a message.
"""

from __future__ import annotations

import math
import weakref
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import attrs
import httpx
import outcome
import pytest
import trio
import trio.testing
from hypothesis import given
from hypothesis import strategies as st
from trio_websocket import ConnectionClosed, WebSocketConnection

from mm.model import PlaceOrder, Side, Tif
from mm.venues.hyperliquid import wire
from mm.venues.hyperliquid.signing import L1Signer
from mm.venues.sim.commits import CommitQueue
from mm.venues.sim.config import SimConfig
from mm.venues.sim.faults import FaultConfig, Faults
from mm.venues.sim.venue import SimVenue
from tests.venues.sim.test_server import (
    QUIET,
    http,
    info,
    next_frame,
    running,
    send,
    set_faults,
    sim_config,
    websocket,
)

SIGNER = L1Signer("0x" + "3c" * 32)
USER = SIGNER.address.lower()
LOW_MS, HIGH_MS = SimConfig().commit_delay_min_ms, SimConfig().commit_delay_max_ms

# --- the queue on its own ----------------------------------------------------------------------


def recorder(log: list[Any], name: Any) -> Any:
    def commit() -> Any:
        log.append(name)
        return {"committed": name}

    return commit


def ignore(_result: outcome.Outcome[Any]) -> None:
    pass


@given(
    gaps=st.lists(st.floats(0.0, 1.0), min_size=1, max_size=40),
    low=st.floats(0.0, 500.0),
    spread=st.floats(0.0, 500.0),
    seed=st.integers(0, 2**32),
)
def test_actions_commit_in_the_order_received_each_after_its_delay(
    gaps: list[float], low: float, spread: float, seed: int
) -> None:
    queue = CommitQueue((low, low + spread), seed)
    log: list[int] = []
    arrivals, dues = [], []
    now = 0.0
    for index, gap in enumerate(gaps):
        now += gap
        arrivals.append(now)
        dues.append(queue.accept(recorder(log, index), ignore, now))
    previous = -math.inf
    for arrival, due in zip(arrivals, dues, strict=True):
        assert due >= arrival + low / 1000 - 1e-9  # never before its delay
        # never later than its own delay allows, unless an earlier action holds it back
        assert due <= max(arrival + (low + spread) / 1000, previous) + 1e-9
        assert due >= previous  # blocks are sequential
        previous = due
    committed_at: dict[int, float] = {}
    for step in sorted(set(dues)):
        assert queue.commit_due(step - 1e-9) == 0 or committed_at  # nothing early
        before = len(log)
        queue.commit_due(step)
        for index in log[before:]:
            committed_at[index] = step
    assert log == list(range(len(gaps)))  # in the order received
    assert all(committed_at[i] == pytest.approx(dues[i]) for i in committed_at)
    assert len(queue) == 0


def test_nothing_commits_before_its_time_and_the_answer_follows_the_effect() -> None:
    queue = CommitQueue((200.0, 500.0), seed=7)
    effects: list[str] = []
    answers: list[tuple[list[str], Any]] = []

    def done(result: outcome.Outcome[Any]) -> None:
        answers.append((list(effects), result.unwrap()))  # what had taken effect when answered

    due = queue.accept(recorder(effects, "place"), done, now=10.0)
    assert 10.2 <= due <= 10.5
    assert queue.commit_due(due - 0.001) == 0
    assert (effects, answers, len(queue)) == ([], [], 1)
    assert queue.commit_due(due) == 1
    assert answers == [(["place"], {"committed": "place"})]


def test_a_commit_that_raises_fails_only_its_own_action() -> None:
    queue = CommitQueue((0.0, 0.0), seed=1)
    results: list[outcome.Outcome[Any]] = []
    log: list[str] = []

    def broken() -> Any:
        raise RuntimeError("a simulator bug")

    queue.accept(broken, results.append, now=0.0)
    queue.accept(recorder(log, "next"), results.append, now=0.0)
    assert queue.commit_due(0.0) == 2
    assert isinstance(results[0], outcome.Error)
    assert results[1].unwrap() == {"committed": "next"}
    assert log == ["next"]


def test_the_delays_come_from_the_seed() -> None:
    def dues(seed: int) -> list[float]:
        queue = CommitQueue((200.0, 500.0), seed)
        return [queue.accept(lambda: None, ignore, now=float(i)) for i in range(20)]

    assert dues(7) == dues(7)
    assert dues(7) != dues(8)


def test_a_bad_range_is_refused() -> None:
    with pytest.raises(ValueError, match="low <= high"):
        CommitQueue((500.0, 200.0), seed=1)


# --- on a running venue, on virtual time ---------------------------------------------------------


_NONCES: weakref.WeakKeyDictionary[SimVenue, wire.NonceSource] = weakref.WeakKeyDictionary()


def body(venue: SimVenue, action: dict[str, Any], **envelope: Any) -> dict[str, Any]:
    """A signed ``/exchange`` body; ``nonce`` (by default a fresh one, the venue's time in ms)
    and ``expires_after`` may be given."""
    nonces = _NONCES.setdefault(venue, wire.NonceSource(venue.now_ms))
    nonce = envelope.get("nonce") or nonces.next()
    expires = envelope.get("expires_after")
    signature = SIGNER.sign(action, nonce, expires_after=expires, mainnet=False)
    return {
        "action": action,
        "nonce": nonce,
        "signature": signature,
        "vaultAddress": None,
        "expiresAfter": expires,
    }


def place_action(venue: SimVenue, cloid: str) -> dict[str, Any]:
    mid = float(venue.mids()["BTC"])
    order = PlaceOrder("BTC", Side.BUY, mid * 0.9, 0.001, Tif.GTC, cloid)
    return wire.order_action([wire.order_wire(order, 0, venue.specs[0].sz_decimals)])


def cancel_action(cloid: str) -> dict[str, Any]:
    return wire.cancel_by_cloid_action([wire.cancel_by_cloid_wire(0, cloid)])


async def post(ws: WebSocketConnection, post_id: int, payload: dict[str, Any]) -> None:
    """Post an action on the socket (its answer is read by the caller)."""
    request = {"type": "action", "payload": payload}
    await send(ws, {"method": "post", "id": post_id, "request": request})


async def exchange(client: httpx.AsyncClient, payload: dict[str, Any]) -> Any:
    reply = await client.post("/exchange", json=payload)
    reply.raise_for_status()
    return reply.json()


async def order_status(client: httpx.AsyncClient, cloid: str) -> str:
    answer = await info(client, {"type": "orderStatus", "user": USER, "oid": cloid})
    return str(answer["status"] if answer["status"] == "unknownOid" else answer["order"]["status"])


async def open_cloids(client: httpx.AsyncClient) -> list[str]:
    orders = await info(client, {"type": "frontendOpenOrders", "user": USER})
    return [order["cloid"] for order in orders]


@asynccontextmanager
async def venue_on_virtual_time(
    **changes: Any,
) -> AsyncIterator[tuple[SimVenue, httpx.AsyncClient]]:
    # The shipped commit delay (SimConfig's defaults), a quiet market, the test's account funded.
    config = attrs.evolve(sim_config(market=attrs.evolve(QUIET, step_ms=100)), **changes)
    async with running(config) as venue, http(venue) as client:
        venue.fund(USER)  # the faucet: the test's account exists
        yield venue, client


async def test_an_order_is_unknown_until_its_block_commits_and_answered_only_after(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async with venue_on_virtual_time() as (venue, client):
        cloid = wire.new_cloid()
        answered: list[tuple[float, Any]] = []
        seen: list[tuple[float, str, list[str]]] = []

        async def place() -> None:
            answer = await exchange(client, body(venue, place_action(venue, cloid)))
            answered.append((trio.current_time(), answer))

        sent = trio.current_time()
        async with trio.open_nursery() as nursery:
            nursery.start_soon(place)
            while not answered:
                seen.append((trio.current_time(), await order_status(client, cloid), []))
                seen[-1][2].extend(await open_cloids(client))
                await trio.sleep(0.05)
        ((at, answer),) = answered
        assert answer["response"]["data"]["statuses"][0]["resting"]["cloid"] == cloid
        assert LOW_MS / 1000 <= at - sent <= HIGH_MS / 1000 + 0.1  # a block or two later
        before = [(status, listed) for time, status, listed in seen if time < sent + LOW_MS / 1000]
        assert before
        assert all(entry == ("unknownOid", []) for entry in before)
        # Answered once it had taken effect: it is there from the answer on.
        assert await order_status(client, cloid) == "open"
        assert await open_cloids(client) == [cloid]


async def test_an_action_takes_effect_though_its_socket_dropped_first(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async with venue_on_virtual_time() as (venue, client):
        cloid = wire.new_cloid()
        async with websocket(venue) as ws:
            await post(ws, 1, body(venue, place_action(venue, cloid)))
            await trio.sleep(0.01)
        assert await order_status(client, cloid) == "unknownOid"  # the socket is gone already
        await trio.sleep(HIGH_MS / 1000)
        assert await order_status(client, cloid) == "open"  # it landed, unanswered


async def test_a_post_is_answered_after_its_effect_and_other_messages_are_not_held_up(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async with venue_on_virtual_time() as (venue, _), websocket(venue) as ws:
        cloid = wire.new_cloid()
        await post(ws, 5, body(venue, place_action(venue, cloid)))
        await send(ws, {"method": "ping"})
        assert (await next_frame(ws, "pong"))["channel"] == "pong"  # at once, before the post
        assert venue.engine.find_record(USER, cloid) is None
        reply = await next_frame(ws, "post", within=1.0)
        assert reply["data"]["id"] == 5
        assert venue.engine.find_record(USER, cloid) is not None


async def test_the_expiry_is_checked_when_the_action_commits(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async with venue_on_virtual_time() as (venue, client):
        # Unexpired when it arrives, expired by its commit (below the shortest delay): refused.
        late, in_time = wire.new_cloid(), wire.new_cloid()
        expires = venue.now_ms() + round(LOW_MS) - 50
        payload = body(venue, place_action(venue, late), expires_after=expires)
        answer = await exchange(client, payload)
        assert answer["status"] == "err"
        assert answer["response"].startswith(f"Action expired at {expires}, now ")
        assert await order_status(client, late) == "unknownOid"
        expires = venue.now_ms() + round(HIGH_MS) + 50
        answer = await exchange(
            client, body(venue, place_action(venue, in_time), expires_after=expires)
        )
        assert answer["status"] == "ok"
        assert await order_status(client, in_time) == "open"


async def test_the_nonce_is_checked_when_the_action_commits(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async with venue_on_virtual_time() as (venue, client):
        nonce = venue.now_ms()
        first, second = wire.new_cloid(), wire.new_cloid()
        answers: dict[str, Any] = {}

        async def send_one(cloid: str) -> None:
            answers[cloid] = await exchange(
                client, body(venue, place_action(venue, cloid), nonce=nonce)
            )

        async with trio.open_nursery() as nursery:  # both in flight at once, one nonce
            nursery.start_soon(send_one, first)
            await trio.sleep(0.01)
            nursery.start_soon(send_one, second)
        assert answers[first]["status"] == "ok"
        assert answers[second] == {
            "status": "err",
            "response": f"Invalid nonce: duplicate nonce {nonce}.",
        }
        assert await open_cloids(client) == [first]


async def test_actions_commit_in_the_order_received(
    autojump_clock: trio.testing.MockClock,
) -> None:
    # A cancel sent right behind its order, before the order is answered, cancels it: it
    # commits after the order (had it committed first, there would be nothing to cancel).
    async with venue_on_virtual_time() as (venue, client), websocket(venue) as ws:
        for _ in range(10):  # random delays: drawn ten times over
            cloid = wire.new_cloid()
            for post_id, action in ((1, place_action(venue, cloid)), (2, cancel_action(cloid))):
                await post(ws, post_id, body(venue, action))
            replies: dict[int, Any] = {}
            while len(replies) < 2:
                frame = await next_frame(ws, "post", within=2.0)
                replies[frame["data"]["id"]] = frame["data"]["response"]["payload"]
            assert "resting" in replies[1]["response"]["data"]["statuses"][0]
            assert replies[2]["response"]["data"]["statuses"] == ["success"]
            assert await order_status(client, cloid) == "canceled"


# --- random disconnects --------------------------------------------------------------------------


def drop_times(seed: int, mean: float, messages: list[float]) -> list[float]:
    faults = Faults(FaultConfig(ws_disconnect_mean_s=mean), seed)
    return [now for now in messages if faults.disconnect_now(now)]


def test_random_disconnects_come_from_the_seed_a_drawn_wait_apart() -> None:
    messages = [i * 0.5 for i in range(2000)]  # a message every half second for 1000 s
    drops = drop_times(3, 60.0, messages)
    assert drops == drop_times(3, 60.0, messages)
    assert drops != drop_times(4, 60.0, messages)
    assert 5 <= len(drops) <= 40  # about one a minute
    assert drop_times(3, 0.0, messages) == []  # off


def test_random_disconnects_do_not_depend_on_the_other_faults() -> None:
    messages = [i * 0.5 for i in range(600)]
    quiet = Faults(FaultConfig(ws_disconnect_mean_s=30.0), 5)
    busy = Faults(FaultConfig(ws_disconnect_mean_s=30.0, ws_drop=0.5), 5)
    drops = []
    for now in messages:
        busy.frame_fate("l2Book")  # draws of the frame faults in between
        drops.append((quiet.disconnect_now(now), busy.disconnect_now(now)))
    assert all(a == b for a, b in drops)


async def test_a_random_disconnect_drops_the_sender_and_its_post_still_acts(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async with venue_on_virtual_time() as (venue, client):
        await set_faults(client, ws_disconnect_mean_s=5.0)
        cloids: list[str] = []
        closed_after: list[str] = []
        with trio.fail_after(600):
            while not closed_after:
                async with websocket(venue) as ws:
                    try:
                        while True:
                            cloid = wire.new_cloid()
                            await post(ws, len(cloids), body(venue, place_action(venue, cloid)))
                            cloids.append(cloid)
                            frame = await next_frame(ws, "post", within=2.0)
                            assert frame["data"]["id"] == len(cloids) - 1
                            await trio.sleep(1.0)
                    except ConnectionClosed:
                        closed_after.append(cloids[-1])
        await trio.sleep(HIGH_MS / 1000)
        # The post the venue took in before dropping the socket was never answered, and acted.
        assert await order_status(client, closed_after[0]) == "open"
        assert sorted(await open_cloids(client)) == sorted(cloids)
