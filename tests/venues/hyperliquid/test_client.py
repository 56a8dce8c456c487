"""The adapter's requests against the simulator over loopback: queries, batches, fallbacks,
and the rule that a request whose answer never came is resolved, never re-sent."""

from __future__ import annotations

from typing import Any

import attrs
import httpx
import pytest
import trio
from eth_account import Account
from hyperliquid.utils import signing as sdk_signing

from mm import clock
from mm.model import (
    CancelOrder,
    Filled,
    ModifyOrder,
    Rejected,
    Resting,
    Side,
    Tif,
)
from mm.venues.base import OrderFateUnknown, SwitchNeedsVolume
from mm.venues.hyperliquid.client import HyperliquidClient
from mm.venues.hyperliquid.codec import VenueRejected
from mm.venues.hyperliquid.rate_limit import RateLimiter
from mm.venues.hyperliquid.rest import RestTransport, TooManyRequests, VenueUnavailable
from mm.venues.hyperliquid.signing import L1Signer
from mm.venues.hyperliquid.wire import new_cloid
from mm.venues.hyperliquid.ws import WsConnection, ws_url
from mm.venues.sim.config import SimConfig
from mm.venues.sim.engine import Filled as SimFilled
from mm.venues.sim.engine import OrderRequest
from mm.venues.sim.faults import FaultConfig
from mm.websocket import open_websocket_url
from tests.venues.hyperliquid.harness import KEY, order, passive, setup


@pytest.mark.parametrize("websocket", [True, False], ids=["ws-post", "rest"])
async def test_queries(websocket: bool) -> None:
    with trio.fail_after(15):
        async with setup(websocket=websocket) as (venue, client):
            assert [a.coin for a in await client.metadata()] == ["BTC", "ETH"]
            resting = order(passive(venue, Side.BUY))
            (result,) = await client.place([resting])
            assert isinstance(result, Resting)
            (open_order,) = await client.open_orders()
            assert (open_order.oid, open_order.cloid) == (result.oid, resting.cloid)
            report = await client.order_status(cloid=resting.cloid)
            assert report is not None
            assert report.venue_status == "open"
            assert await client.order_status(cloid=new_cloid()) is None
            state = await client.account_state()
            assert state.account_value == pytest.approx(venue.config.faucet_usdc)
            limits = await client.rate_limit()
            assert limits.requests_used >= 1
            assert await client.fills_since(0) == []


async def test_a_mixed_batch_sends_post_only_apart_and_keeps_request_order() -> None:
    with trio.fail_after(15):
        async with setup() as (venue, client):
            sent: list[list[str]] = []
            real = client._action

            async def spy(action: dict[str, Any], **kwargs: Any) -> Any:
                if action["type"] == "order":
                    sent.append([o["t"]["limit"]["tif"] for o in action["orders"]])
                return await real(action, **kwargs)

            client._action = spy  # type: ignore[method-assign]
            buy_px = passive(venue, Side.BUY)
            crossing = float(venue.mids()["BTC"]) * 1.01
            batch = [
                order(buy_px, tif=Tif.ALO),
                order(crossing, tif=Tif.IOC),
                order(buy_px * 0.99, tif=Tif.GTC),
                order(crossing, tif=Tif.ALO),  # would cross: the venue rejects it
            ]
            results = await client.place(batch)
            assert sorted(map(sorted, sent)) == [["Alo", "Alo"], ["Gtc", "Ioc"]]
            assert isinstance(results[0], Resting)
            assert isinstance(results[1], Filled)
            assert isinstance(results[2], Resting)
            assert isinstance(results[3], Rejected)
            assert results[3].reason.startswith("Post only order would have immediately matched")


async def test_cancel_by_oid_and_by_cloid_and_modify() -> None:
    with trio.fail_after(15):
        async with setup() as (venue, client):
            px = passive(venue, Side.BUY)
            a, b, c = order(px), order(px * 0.99), order(px * 0.98)
            placed = await client.place([a, b, c])
            assert all(isinstance(r, Resting) for r in placed)
            first = placed[0]
            assert isinstance(first, Resting)
            new_px = px * 0.97
            (modified,) = await client.modify([ModifyOrder(order(new_px), oid=first.oid)])
            assert isinstance(modified, Resting)
            assert modified.oid != first.oid
            canceled = await client.cancel(
                [CancelOrder("BTC", oid=modified.oid), CancelOrder("BTC", cloid=b.cloid)]
            )
            assert canceled == [None, None]
            (again,) = await client.cancel([CancelOrder("BTC", cloid=b.cloid)])
            assert isinstance(again, Rejected)
            remaining = await client.open_orders()
            assert [o.cloid for o in remaining] == [c.cloid]


async def test_schedule_cancel_set_clear_and_refused() -> None:
    with trio.fail_after(15):
        async with setup() as (venue, client):
            venue.credit_volume(client.account, 1_000_000)  # past the venue's volume gate
            await client.schedule_cancel(venue.now_ms() + 60_000)
            await client.schedule_cancel(None)
            with pytest.raises(VenueRejected, match="at least 5 seconds"):
                await client.schedule_cancel(venue.now_ms() + 1_000)


async def test_schedule_cancel_refused_for_volume_is_told_apart() -> None:
    # The venue's volume gate (issue 14, item 3): a refusal worth no retry until the account
    # has traded enough, with the venue's figures, over the WebSocket post and REST alike.
    with trio.fail_after(15):
        async with setup() as (venue, client):
            venue.credit_volume(client.account, 129_582.4)
            for path in (client, client.over_rest()):
                with pytest.raises(SwitchNeedsVolume) as refused:
                    await path.schedule_cancel(venue.now_ms() + 60_000)
                assert refused.value.text == (
                    "Cannot set scheduled cancel time until enough volume traded. "
                    "Required: $1000000. Traded: $129582.4."
                )
                assert (refused.value.required, refused.value.traded) == (1_000_000, 129_582.4)
            assert venue.engine.scheduled_time(client.account) is None
            await client.schedule_cancel(None)  # clearing is not refused


async def test_a_post_timeout_never_produces_a_duplicate_order() -> None:
    # The venue acts on the post but its answer is lost: the client must not send it again.
    with trio.fail_after(20):
        faults = FaultConfig(ws_drop_post_replies=1.0)
        async with setup(faults=faults, post_timeout_s=0.3) as (venue, client):
            slow = order(passive(venue, Side.BUY))
            with pytest.raises(OrderFateUnknown) as caught:
                await client.place([slow])
            assert caught.value.cloids == (slow.cloid,)
            # Resolve, never re-send: the venue has exactly one order under that cloid. Asked
            # once the action can no longer land (the venue commits it a block or two after
            # taking it in, possibly after the post timed out).
            lands_by = caught.value.lands_by_ms
            assert lands_by is not None
            await trio.sleep(max(0, lands_by - clock.wall_ms()) / 1000)
            assert client.ws is not None
            client.ws = None  # ask over REST: every post answer is being dropped
            report = await client.order_status(cloid=slow.cloid)
            assert report is not None
            assert report.venue_status == "open"
            mine = [o for o in await client.open_orders() if o.cloid == slow.cloid]
            assert len(mine) == 1


async def test_a_cancel_the_venue_loses_neither_acts_nor_answers() -> None:
    # The simulator's lose_cancels fault: the post gets no reply, the REST retry a 500, and
    # the order rests on; other actions and reads go through.
    with trio.fail_after(20):
        faults = FaultConfig(lose_cancels=1.0)
        # A post timeout above the venue's commit delay: the place is answered, the cancel not.
        timeout = SimConfig().commit_delay_max_ms / 1000 + 0.3
        async with setup(faults=faults, post_timeout_s=timeout) as (venue, client):
            (placed,) = await client.place([order(passive(venue, Side.BUY))])
            assert isinstance(placed, Resting)
            with pytest.raises(VenueUnavailable):
                await client.cancel([CancelOrder("BTC", oid=placed.oid)])
            assert [o.oid for o in await client.open_orders()] == [placed.oid]
            venue.faults.update({"lose_cancels": 0.0})
            assert await client.cancel([CancelOrder("BTC", oid=placed.oid)]) == [None]
            assert await client.open_orders() == []


async def test_a_socket_that_is_down_before_sending_falls_back_to_rest() -> None:
    with trio.fail_after(20):
        async with setup(websocket=False) as (venue, client):
            assert venue.url is not None
            exchanges: list[int] = []
            client.rest._observer = lambda endpoint, seconds, status: (
                exchanges.append(status) if endpoint == "/exchange" else None
            )
            client.ws = WsConnection(venue.url)  # never started: down before anything is sent
            assert not client.ws.connected
            placed = order(passive(venue, Side.BUY))
            (result,) = await client.place([placed])
            assert isinstance(result, Resting)
            assert exchanges == [200]
            assert [o.cloid for o in await client.open_orders()] == [placed.cloid]


async def test_http_429_raises_rate_limited_and_backs_off() -> None:
    with trio.fail_after(15):
        async with setup(websocket=False) as (venue, client):
            assert venue.url is not None
            async with httpx.AsyncClient(base_url=venue.url) as control:
                await control.post("/sim/faults", json={"http_429": 1.0})
            with pytest.raises(TooManyRequests):
                await client.open_orders()
            assert client.limiter.rejections == 1
            assert client.limiter.headroom(trio.current_time()) < 1.0


async def test_the_address_limit_error_lowers_the_budget() -> None:
    limiter = RateLimiter()
    signer = L1Signer(KEY)
    async with RestTransport("http://127.0.0.1:1") as rest:
        client = HyperliquidClient(
            rest=rest, signer=signer, account=signer.address, mainnet=False, limiter=limiter
        )
        text = (
            "Too many cumulative requests sent (10500 > 10499) for cumulative volume traded "
            "$500.0. Place taker orders to free up 1 request per USDC traded."
        )
        client._checked({"status": "err", "response": text})
    assert limiter.rejections == 1
    assert limiter.address_cap() == 10500


async def test_the_websocket_message_limit_fails_posts_at_once_as_a_failed_send() -> None:
    """Past the IP's 2,000 WebSocket messages a minute the venue refuses a post with an error
    that names none: an order's fate is then unknown and says why (resolved with orderStatus,
    never re-sent), a cancel goes again over REST, a query is asked over REST, all at once."""
    with trio.fail_after(30):
        async with setup(address_initial_requests=10_000) as (venue, client):
            assert venue.url is not None
            assert client.ws is not None
            resting = order(passive(venue, Side.BUY))
            (placed,) = await client.place([resting])
            assert isinstance(placed, Resting)

            def spent() -> int:  # the IP's WebSocket messages in the venue's window
                return venue.ws_limits.messages("127.0.0.1", venue.now_ms() / 1000)

            async with open_websocket_url(ws_url(venue.url)) as other:  # the same IP
                for _ in range(2000 - spent()):
                    await other.send_message('{"method":"ping"}')
                while spent() < 2000:  # noqa: ASYNC110 -- the venue's own count
                    await trio.sleep(0.01)
                refused = order(passive(venue, Side.BUY))
                with pytest.raises(OrderFateUnknown) as caught:
                    await client.place([refused])
                assert caught.value.cloids == (refused.cloid,)
                assert "Cannot send more than 2000 messages per minute." in caught.value.cause
                assert client.ws.posts_failed == 1
                assert client.ws.post_timeouts == 0
                assert await client.order_status(cloid=refused.cloid) is None  # it never acted
                (canceled,) = await client.cancel([CancelOrder("BTC", cloid=resting.cloid)])
                assert canceled is None
                assert await client.open_orders() == []
                assert client.ws.post_timeouts == 0


async def test_every_order_action_carries_an_expiry_signed_as_the_sdk_signs_it() -> None:
    with trio.fail_after(20):
        async with setup(websocket=False) as (venue, client):
            bodies: list[dict[str, Any]] = []
            real = client.rest.exchange

            async def spy(body: Any, **kwargs: Any) -> Any:
                bodies.append(dict(body))
                return await real(body, **kwargs)

            client.rest.exchange = spy  # type: ignore[method-assign]
            px = passive(venue, Side.BUY)
            a, b = order(px), order(px * 0.99)
            before = clock.wall_ms()
            await client.place([a, b])
            await client.modify([ModifyOrder(attrs.evolve(a, px=px * 0.98))])
            await client.cancel([CancelOrder("BTC", cloid=a.cloid)])
            (resting,) = await client.open_orders()
            await client.cancel([CancelOrder("BTC", oid=resting.oid)])
            with pytest.raises(SwitchNeedsVolume):  # a new account: signed and sent all the same
                await client.schedule_cancel(venue.now_ms() + 60_000)
            after = clock.wall_ms()
            wallet = Account.from_key(KEY)
            kinds = []
            for body in bodies:
                action, nonce = body["action"], body["nonce"]
                kinds.append(action["type"])
                expires = body.get("expiresAfter")
                if action["type"] == "scheduleCancel":
                    assert expires is None  # its own time says when it acts
                    continue
                # Signed now, 3 s to land.
                assert isinstance(expires, int)
                assert before + 3_000 <= expires <= after + client.action_expiry_ms
                sdk = sdk_signing.sign_l1_action(wallet, action, None, nonce, expires, False)
                assert body["signature"] == sdk
            assert kinds == ["order", "batchModify", "cancelByCloid", "cancel", "scheduleCancel"]
            assert await client.open_orders() == []  # every one acted, for this account


async def test_a_lost_answer_says_until_when_the_action_may_still_land() -> None:
    with trio.fail_after(20):
        faults = FaultConfig(ws_drop_post_replies=1.0)
        async with setup(faults=faults, post_timeout_s=0.3) as (venue, client):
            assert client.ws is not None
            posted: list[dict[str, Any]] = []
            real = client.ws.post

            async def spy(request: Any, *limit: float | None) -> Any:
                posted.append(request)
                return await real(request, *limit)

            client.ws.post = spy  # type: ignore[method-assign, assignment]
            lost = order(passive(venue, Side.BUY))
            with pytest.raises(OrderFateUnknown) as caught:
                await client.place([lost])
            (request,) = posted
            expires = request["payload"]["expiresAfter"]
            assert caught.value.lands_by_ms == expires + client.expiry_allowance_ms
            assert client.landing_window_ms == 3_500  # the shipped 3 s and 0.5 s


def trade(venue: Any, user: str, count: int) -> None:
    """``count`` fills for ``user`` in-process: small IOCs taking the book, in turn."""
    for i in range(count):
        buy = i % 2 == 0
        px = "99000" if buy else "90000"
        request = OrderRequest(0, buy, px, "0.0003", tif="Ioc")
        assert isinstance(venue.engine.place(user, request, venue.now_ms()), SimFilled)


@pytest.mark.parametrize("websocket", [True, False], ids=["ws-post", "rest"])
async def test_queries_are_charged_what_the_venue_charges(websocket: bool) -> None:
    # Issue 14, item 6: the per-item weight of a listing of fills was charged nowhere.
    with trio.fail_after(15):
        async with setup(websocket=websocket) as (venue, client):
            venue.engine.fund(client.account, 100_000)
            trade(venue, client.account, 45)
            assert len(await client.fills_since(0)) == 45  # 20 + 2
            await client.open_orders()
            await client.account_state()
            await client.order_status(cloid=new_cloid())
            await client.rate_limit()
            venue_used = venue.ip_limits.used("127.0.0.1", venue.now_ms() / 1000)
            assert client.limiter.ip_used(trio.current_time()) == venue_used == 20 + 22 + 44


async def test_a_429_answered_to_a_post_backs_off_as_over_rest() -> None:
    with trio.fail_after(15):
        async with setup(address_initial_requests=10_000) as (venue, client):
            assert client.ws is not None
            assert client.ws.connected
            venue.ip_limits.record("127.0.0.1", 1200, venue.now_ms() / 1000)  # spent elsewhere
            with pytest.raises(TooManyRequests):
                await client.open_orders()
            assert client.limiter.rejections == 1
            assert client.limiter.blocked_until("info") > trio.current_time()
