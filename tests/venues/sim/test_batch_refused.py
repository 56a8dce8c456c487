"""A batch refused as a whole (issue 14, item 4): the simulator answers ONE error status for a
batch of orders, modifies or cancels that its pre-validation refuses, as the venue does ("Error
responses": errors that are a deterministic function of the payload come back as one error for
the entire payload), and nothing of the batch acts.

The cases: a batch naming an invalid asset (always: an index the venue does not list, or a coin
the ``invalid_assets`` fault makes invalid, as a client with stale metadata sends it), and a
batch with an order that is not post-only during the post-only period after a network upgrade
(the ``post_only_period`` fault), refused in the venue's words. The face is driven in-process.
"""

from __future__ import annotations

import itertools
from typing import Any

import attrs
import orjson
import trio
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mm.venues.hyperliquid.signing import L1Signer
from mm.venues.sim.faults import FaultConfig
from mm.venues.sim.hyperliquid.exchange import ExchangeHandler
from mm.venues.sim.hyperliquid.prevalidate import INVALID_ASSET, POST_ONLY_PERIOD
from mm.venues.sim.server import SimApp
from mm.venues.sim.venue import SimVenue
from tests.venues.sim.test_server import sim_config

SIGNER = L1Signer("0x" + "5c" * 32)
USER = SIGNER.address.lower()
TEXT = "Only post-only orders allowed immediately after network upgrade"
TIFS = ("Alo", "Gtc", "Ioc")


class Face:
    """The simulator's /exchange face without sockets, for one funded user."""

    def __init__(self, faults: FaultConfig | None = None) -> None:
        config = attrs.evolve(sim_config(), rate_limits=False, faults=faults or FaultConfig())
        self.venue = venue = SimVenue(config, epoch_ms=1_800_000_000_000)
        venue.market.seed_liquidity(venue.now_ms())
        venue.engine.fund(USER, 1_000_000.0)
        self.handler = ExchangeHandler(venue)
        self.nonces = itertools.count(venue.now_ms())

    def send(self, action: dict[str, Any]) -> dict[str, Any]:
        nonce = next(self.nonces)
        signature = SIGNER.sign(action, nonce, mainnet=False)
        return self.handler.handle({"action": action, "nonce": nonce, "signature": signature})

    def open_oids(self) -> set[int]:
        return {order.oid for order in self.venue.engine.open_orders(USER)}

    def passive_px(self, asset: int, is_buy: bool, away: float) -> str:
        """A price ``away`` (a fraction) from the mark on the passive side, on the tick."""
        spec = self.venue.specs[asset]
        mark = self.venue.engine.mark(asset)
        assert mark is not None
        px = mark * (1 - away) if is_buy else mark * (1 + away)
        return spec.px_str(spec.round_px(px, up=not is_buy))

    def order(self, asset: int, is_buy: bool, tif: str, away: float = 0.05) -> dict[str, Any]:
        spec = self.venue.specs[min(asset, len(self.venue.specs) - 1)]
        sz = "0.01" if spec.name == "BTC" else "0.2"
        return {
            "a": asset,
            "b": is_buy,
            "p": self.passive_px(min(asset, len(self.venue.specs) - 1), is_buy, away),
            "s": sz,
            "r": False,
            "t": {"limit": {"tif": tif}},
        }


def statuses(answer: dict[str, Any]) -> list[Any]:
    assert answer["status"] == "ok", answer
    result: list[Any] = answer["response"]["data"]["statuses"]
    return result


def rest(face: Face, count: int, asset: int = 0) -> list[int]:
    """``count`` resting post-only bids of the user on ``asset``; their oids."""
    orders = [face.order(asset, True, "Alo", away=0.05 + i / 1000) for i in range(count)]
    answer = face.send({"type": "order", "orders": orders, "grouping": "na"})
    return [status["resting"]["oid"] for status in statuses(answer)]


async def test_an_order_batch_naming_an_invalid_asset_gets_one_status_and_places_nothing() -> None:
    face = Face()
    orders = [face.order(0, True, "Alo"), face.order(1, False, "Alo"), face.order(7, True, "Gtc")]
    answer = face.send({"type": "order", "orders": orders, "grouping": "na"})
    assert statuses(answer) == [{"error": INVALID_ASSET}]
    assert face.open_oids() == set()


async def test_cancels_and_modifies_naming_an_invalid_asset_are_refused_whole() -> None:
    face = Face()
    oids = rest(face, 2)
    cancels = [{"a": 0, "o": oids[0]}, {"a": 9, "o": oids[1]}]
    answer = face.send({"type": "cancel", "cancels": cancels})
    assert statuses(answer) == [{"error": INVALID_ASSET}]
    by_cloid = [{"asset": 9, "cloid": "0x" + "ee" * 16}, {"asset": 0, "cloid": "0x" + "ef" * 16}]
    answer = face.send({"type": "cancelByCloid", "cancels": by_cloid})
    assert statuses(answer) == [{"error": INVALID_ASSET}]
    modifies = [
        {"oid": oids[0], "order": face.order(0, True, "Alo", away=0.06)},
        {"oid": oids[1], "order": {**face.order(0, True, "Alo", away=0.07), "a": 5}},
    ]
    answer = face.send({"type": "batchModify", "modifies": modifies})
    assert statuses(answer) == [{"error": INVALID_ASSET}]
    assert face.open_oids() == set(oids)  # nothing canceled, nothing moved
    answer = face.send({"type": "cancel", "cancels": [{"a": 0, "o": oid} for oid in oids]})
    assert statuses(answer) == ["success", "success"]


async def test_the_invalid_assets_fault_makes_a_listed_coin_invalid_until_cleared() -> None:
    face = Face(FaultConfig(invalid_assets=("ETH",)))
    eth = face.venue.engine.by_name["ETH"].index
    orders = [face.order(eth, True, "Alo"), face.order(eth, False, "Alo")]
    answer = face.send({"type": "order", "orders": orders, "grouping": "na"})
    assert statuses(answer) == [{"error": INVALID_ASSET}]
    assert len(rest(face, 2, asset=0)) == 2  # BTC trades on
    face.venue.faults.update({"invalid_assets": []})
    answer = face.send({"type": "order", "orders": orders, "grouping": "na"})
    assert [next(iter(status)) for status in statuses(answer)] == ["resting", "resting"]


async def test_the_post_only_period_refuses_a_batch_with_any_other_order_whole() -> None:
    face = Face(FaultConfig(post_only_period=True))
    mixed = [face.order(0, True, "Alo"), face.order(0, False, "Ioc", away=-0.01)]
    answer = face.send({"type": "order", "orders": mixed, "grouping": "na"})
    assert statuses(answer) == [{"error": TEXT}]
    assert face.open_oids() == set()
    assert POST_ONLY_PERIOD == TEXT  # the venue's words
    oids = rest(face, 2)  # post-only orders are what the period allows
    modifies = [
        {"oid": oids[0], "order": face.order(0, True, "Alo", away=0.06)},
        {"oid": oids[1], "order": face.order(0, True, "Gtc", away=0.07)},
    ]
    answer = face.send({"type": "batchModify", "modifies": modifies})
    assert statuses(answer) == [{"error": TEXT}]
    assert face.open_oids() == set(oids)
    single = {"type": "modify", "oid": oids[0], "order": face.order(0, True, "Gtc", away=0.08)}
    assert face.send(single) == {"status": "err", "response": TEXT}
    answer = face.send({"type": "cancel", "cancels": [{"a": 0, "o": oid} for oid in oids]})
    assert statuses(answer) == ["success", "success"]  # cancels are never refused for it
    face.venue.faults.update({"post_only_period": False})  # the period ends
    answer = face.send({"type": "order", "orders": mixed, "grouping": "na"})
    assert [next(iter(status)) for status in statuses(answer)] == ["resting", "filled"]


async def test_a_batch_the_venue_does_not_refuse_gets_a_status_per_order() -> None:
    """The property over batch sizes and contents: one status when refused (and nothing
    placed), else exactly one status per order, whatever the faults."""
    face = Face()
    listed = len(face.venue.specs)

    @settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
    @given(
        st.lists(
            st.tuples(st.integers(0, listed + 2), st.booleans(), st.sampled_from(TIFS)),
            min_size=1,
            max_size=12,
        ),
        st.booleans(),
        st.sets(st.sampled_from(["BTC", "ETH"])),
    )
    def check(specs: list[tuple[int, bool, str]], period: bool, invalid: set[str]) -> None:
        face.venue.faults.update({"post_only_period": period, "invalid_assets": sorted(invalid)})
        before = face.open_oids()
        orders = [face.order(a, b, tif) for a, b, tif in specs]
        answer = statuses(face.send({"type": "order", "orders": orders, "grouping": "na"}))
        bad_asset = any(a >= listed or face.venue.specs[a].name in invalid for a, _, _ in specs)
        not_alo = any(tif != "Alo" for _, _, tif in specs)
        if bad_asset:
            assert answer == [{"error": INVALID_ASSET}]
        elif period and not_alo:
            assert answer == [{"error": TEXT}]
        else:
            assert len(answer) == len(orders)
            assert not any(status == {"error": INVALID_ASSET} for status in answer)
        if bad_asset or (period and not_alo):
            assert face.open_oids() == before  # refused whole: nothing of it acted
        live = face.venue.engine.open_orders(USER)
        if live:
            cancels = [{"a": order.asset, "o": order.oid} for order in live]
            face.venue.faults.update({"invalid_assets": []})
            assert statuses(face.send({"type": "cancel", "cancels": cancels})) == ["success"] * len(
                cancels
            )

    check()
    await trio.lowlevel.checkpoint()


async def test_the_faults_are_switched_by_post_sim_faults() -> None:
    face = Face()
    app = SimApp(face.venue)
    scope = {"path": "/sim/faults", "method": "POST", "client": ("127.0.0.1", 1)}
    body = orjson.dumps({"post_only_period": True, "invalid_assets": ["ETH"]})
    status, config = app.control(scope, body)
    assert status == 200
    assert (config["post_only_period"], config["invalid_assets"]) == (True, ("ETH",))
    status, error = app.control(scope, orjson.dumps({"invalid_assets": ["XYZ"]}))
    assert status == 400
    assert "invalid_assets" in error["error"]
    assert "XYZ" in error["error"]
    assert face.venue.faults.config.invalid_assets == ("ETH",)  # a bad update changes nothing
