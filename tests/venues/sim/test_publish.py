"""The simulator's event frames reach their subscribers as before, built only for them.

``SimVenue.publish_events`` once turned every engine event into its wire entry (a trade, a
user fill, an order update, a non-user cancel) whether or not anyone was subscribed to its
channel: a trading user's every order says its status, and in the simulated day of the address
budget nobody listens to ``orderUpdates``. It now builds an entry only for a channel with a
subscriber. The reference below is the earlier code, kept verbatim but for its name: whatever
the subscriptions, every session gets the same frames, in the same order, and the address
limiter counts every fill's volume all the same.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

import attrs
import trio
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mm.venues.sim.assets import AssetSpec
from mm.venues.sim.config import SimConfig
from mm.venues.sim.engine import OrderRequest
from mm.venues.sim.events import (
    BookChanged,
    Event,
    FundingPayment,
    NonUserCancel,
    OrderUpdate,
    Trade,
    UserFill,
)
from mm.venues.sim.hub import Hub, Key, Session
from mm.venues.sim.hyperliquid import wire
from mm.venues.sim.venue import SimVenue
from tests.venues.sim.test_server import QUIET

ALICE = "0x" + "a1" * 20
BOB = "0x" + "b2" * 20
CAROL = "0x" + "c3" * 20  # funded, never trades: her channels stay silent
USERS = (ALICE, BOB, CAROL)
USER_CHANNELS = ("userFills", "userEvents", "orderUpdates")
KEYS: list[Key] = [
    *((channel, user) for user in USERS for channel in USER_CHANNELS),
    ("trades", "BTC"),
    ("trades", "ETH"),
]
T0 = 1_700_000_000_000


def reference_publish(hub: Hub, specs: list[AssetSpec], events: list[Event]) -> None:
    """``publish_events`` as it was (its frames; the dirty books and the volume aside)."""
    trades: dict[int, list[dict[str, Any]]] = defaultdict(list)
    fills: dict[str, list[dict[str, Any]]] = defaultdict(list)
    updates: dict[str, list[dict[str, Any]]] = defaultdict(list)
    cancels: dict[str, list[dict[str, Any]]] = defaultdict(list)
    fundings: list[FundingPayment] = []
    for event in events:
        if isinstance(event, BookChanged):
            pass
        elif isinstance(event, Trade):
            trades[event.asset].append(wire.trade(event, specs[event.asset]))
        elif isinstance(event, UserFill):
            spec = specs[event.asset]
            fills[event.user].append(wire.user_fill(event, spec))
        elif isinstance(event, OrderUpdate):
            spec = specs[event.order.asset]
            updates[event.user].append(
                wire.order_update(event.order, event.status, event.time, spec)
            )
        elif isinstance(event, NonUserCancel):
            cancels[event.user].append({"coin": specs[event.asset].name, "oid": event.oid})
        elif isinstance(event, FundingPayment):
            fundings.append(event)
    for asset, batch in trades.items():
        hub.publish(("trades", specs[asset].name), "trades", batch)
    for user, batch in fills.items():
        hub.publish(("userFills", user), "userFills", {"user": user, "fills": batch})
        hub.publish(("userEvents", user), "user", {"fills": batch})
    for user, batch in updates.items():
        hub.publish(("orderUpdates", user), "orderUpdates", batch)
    for user, batch in cancels.items():
        hub.publish(("userEvents", user), "user", {"nonUserCancel": batch})
    for payment in fundings:
        funding = wire.user_funding(payment, specs[payment.asset])
        hub.publish(("userEvents", payment.user), "user", {"funding": funding})


def a_busy_stretch(venue: SimVenue) -> None:
    """Every kind of event for ALICE and BOB: resting orders, trades on both coins (fills,
    statuses), a self-trade cancel and a reduce-only cancel (non-user cancels), funding."""
    engine = venue.engine
    for user in USERS:
        engine.fund(user, 1_000_000.0)
    btc, eth = 0, 1
    engine.place(ALICE, OrderRequest(btc, True, "95000", "0.01"), T0)
    engine.place(ALICE, OrderRequest(btc, False, "96000", "0.01"), T0)
    engine.place(BOB, OrderRequest(btc, False, "94000", "0.004", tif="Ioc"), T0 + 1)
    engine.place(BOB, OrderRequest(eth, False, "3500", "0.5"), T0 + 2)
    engine.place(ALICE, OrderRequest(eth, True, "3600", "0.2", tif="Ioc"), T0 + 3)
    engine.place(ALICE, OrderRequest(btc, True, "96500", "0.002"), T0 + 4)  # self-trade
    engine.place(BOB, OrderRequest(btc, True, "90000", "0.004", reduce_only=True), T0 + 5)
    engine.place(ALICE, OrderRequest(btc, False, "89000", "0.006", tif="Ioc"), T0 + 6)
    engine.pay_funding(0.0001, T0 + 7)


def received(sessions: dict[Key, Session]) -> dict[Key, list[tuple[str, str]]]:
    got: dict[Key, list[tuple[str, str]]] = {}
    for key, session in sessions.items():
        frames = []
        while True:
            try:
                channel, text, _ = session.receive_channel.receive_nowait()
            except trio.WouldBlock:
                break
            frames.append((channel, text))
        got[key] = frames
    return got


async def test_subscribers_get_the_frames_they_got_before() -> None:
    config = attrs.evolve(SimConfig(coins=("BTC", "ETH"), market=QUIET), rate_limits=False)

    @settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(st.sets(st.sampled_from(range(len(KEYS)))), st.booleans())
    def check(chosen: set[int], shared: bool) -> None:
        venue = SimVenue(config, epoch_ms=T0)
        a_busy_stretch(venue)
        events = list(venue.engine.events)
        kinds = {type(event) for event in events}
        assert {Trade, UserFill, OrderUpdate, NonUserCancel, FundingPayment} <= kinds, kinds
        reference = Hub()
        mine: dict[Key, Session] = {}
        theirs: dict[Key, Session] = {}
        for index in sorted(chosen):
            key = KEYS[index]
            # One session for all keys, or one per key: the frames are the same either way.
            mine[key] = Session(key, 1_000) if not shared or not mine else next(iter(mine.values()))
            theirs[key] = (
                Session(key, 1_000) if not shared or not theirs else next(iter(theirs.values()))
            )
            venue.hub.add(mine[key], key)
            reference.add(theirs[key], key)
        reference_publish(reference, venue.specs, events)
        venue.publish_events()
        assert received(mine) == received(theirs)
        volume = sum(
            venue.specs[fill.asset].notional(fill.px, fill.sz)
            for fill in events
            if isinstance(fill, UserFill)
        )
        counted = sum(venue.address_limits.cum_volume_usdc(user) for user in USERS)
        assert counted == volume > 0
        assert venue.engine.events == []

    check()


async def test_no_frame_is_built_for_a_channel_without_subscribers(monkeypatch: Any) -> None:
    built: list[str] = []
    for name in ("trade", "user_fill", "order_update"):
        original = getattr(wire, name)

        def counted(*args: Any, _name: str = name, _original: Any = original) -> Any:
            built.append(_name)
            return _original(*args)

        monkeypatch.setattr(wire, name, counted)
    config = attrs.evolve(SimConfig(coins=("BTC", "ETH"), market=QUIET), rate_limits=False)
    venue = SimVenue(config, epoch_ms=T0)
    a_busy_stretch(venue)
    venue.publish_events()
    assert built == []
    assert venue.address_limits.cum_volume_usdc(ALICE) > 0  # the volume is counted all the same
    venue.hub.add(Session("bob", 100), ("orderUpdates", BOB))
    engine = venue.engine
    engine.place(BOB, OrderRequest(0, True, "90000", "0.001"), T0 + 10)
    engine.place(ALICE, OrderRequest(0, False, "89000", "0.001", tif="Ioc"), T0 + 11)
    venue.publish_events()
    assert built == ["order_update"] * 2  # BOB's two statuses; no fill, trade or ALICE entry
