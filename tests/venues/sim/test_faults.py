"""Unit tests for the simulator's fault settings and the seeded decisions they drive.

``Faults`` is pure: these tests call it directly, with no sockets and no clock.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

import attrs
import pytest

from mm.venues.sim.config import MarketConfig, SimConfig
from mm.venues.sim.events import Trade
from mm.venues.sim.faults import (
    DATA_CHANNELS,
    FaultConfig,
    Faults,
    FaultUpdateError,
    FrameFate,
    HttpFate,
)
from mm.venues.sim.venue import SimVenue

CONTROL_CHANNELS = ("subscriptionResponse", "pong", "post", "error", "")
EVERYTHING_ON = FaultConfig(
    ws_latency_ms=5.0,
    ws_jitter_ms=5.0,
    http_latency_ms=5.0,
    http_jitter_ms=5.0,
    ws_drop=1.0,
    ws_duplicate=1.0,
    ws_reorder=1.0,
    ws_disconnect_after=1,
    stall_books=True,
    crossed_book=1.0,
    http_429=1.0,
    http_5xx=1.0,
)


# --- update ----------------------------------------------------------------------------------


def test_update_changes_only_the_named_faults() -> None:
    faults = Faults(FaultConfig(ws_latency_ms=10.0, http_429=0.25), seed=1)
    updated = faults.update({"ws_drop": 0.5, "stall_books": True})
    assert updated is faults.config
    assert updated == FaultConfig(ws_latency_ms=10.0, http_429=0.25, ws_drop=0.5, stall_books=True)
    faults.update({"ws_drop": 0})
    assert faults.config.ws_drop == 0.0
    assert isinstance(faults.config.ws_drop, float)
    assert faults.config.stall_books is True
    assert faults.config.ws_latency_ms == 10.0


def test_empty_update_keeps_everything() -> None:
    faults = Faults(EVERYTHING_ON, seed=1)
    assert faults.update({}) == EVERYTHING_ON


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"bogus": 1}, "faults.bogus: unknown key"),
        ({"ws_drop": 1.5}, "faults.ws_drop: must be between 0 and 1, got 1.5"),
        ({"http_5xx": -0.1}, "faults.http_5xx: must be between 0 and 1, got -0.1"),
        ({"crossed_book": 2}, "faults.crossed_book: must be between 0 and 1, got 2.0"),
        ({"ws_latency_ms": -1}, "faults.ws_latency_ms: must be >= 0, got -1.0"),
        ({"ws_disconnect_after": -3}, "faults.ws_disconnect_after: must be >= 0, got -3"),
        ({"ws_disconnect_after": 1.5}, "faults.ws_disconnect_after: expected an integer"),
        ({"stall_books": "yes"}, "faults.stall_books: expected true or false"),
        ({"ws_drop": True}, "faults.ws_drop: expected a number"),
        ({"http_latency_ms": "300"}, "faults.http_latency_ms: expected a number"),
    ],
)
def test_bad_updates_are_rejected_with_the_key_path(changes: dict[str, Any], message: str) -> None:
    before = FaultConfig(ws_drop=0.1, http_latency_ms=3.0)
    faults = Faults(before, seed=1)
    with pytest.raises(FaultUpdateError) as caught:
        faults.update(changes)
    assert message in str(caught.value)
    assert faults.config == before


def test_every_problem_of_an_update_is_reported_and_nothing_applied() -> None:
    faults = Faults(FaultConfig(), seed=1)
    with pytest.raises(FaultUpdateError) as caught:
        faults.update({"ws_drop": 0.5, "ws_duplicate": 7, "http_429": -1})
    text = str(caught.value)
    assert "faults.ws_duplicate: must be between 0 and 1" in text
    assert "faults.http_429: must be between 0 and 1" in text
    with pytest.raises(FaultUpdateError) as caught:
        faults.update({"ws_drop": 0.5, "nope": True, "also_nope": 1})
    assert "faults.also_nope: unknown key" in str(caught.value)
    assert "faults.nope: unknown key" in str(caught.value)
    assert faults.config == FaultConfig()
    assert faults.config.ws_drop == 0.0


# --- WebSocket frames ------------------------------------------------------------------------


@pytest.mark.parametrize("channel", CONTROL_CHANNELS)
def test_control_frames_are_always_sent(channel: str) -> None:
    faults = Faults(EVERYTHING_ON, seed=3)
    assert all(faults.frame_fate(channel) is FrameFate.SEND for _ in range(200))


@pytest.mark.parametrize("channel", sorted(DATA_CHANNELS))
def test_data_channels_are_subject_to_faults(channel: str) -> None:
    assert Faults(FaultConfig(ws_drop=1.0), seed=3).frame_fate(channel) is FrameFate.DROP
    assert Faults(FaultConfig(ws_duplicate=1.0), seed=3).frame_fate(channel) is FrameFate.DUPLICATE
    assert Faults(FaultConfig(ws_reorder=1.0), seed=3).frame_fate(channel) is FrameFate.HOLD
    assert Faults(FaultConfig(), seed=3).frame_fate(channel) is FrameFate.SEND


def test_data_channels_are_the_venue_feeds() -> None:
    assert {"l2Book", "trades", "allMids", "bbo", "orderUpdates", "userFills", "user"} == set(
        DATA_CHANNELS
    )


def test_drop_wins_over_duplicate_and_reorder() -> None:
    faults = Faults(attrs.evolve(FaultConfig(), ws_drop=1.0, ws_duplicate=1.0, ws_reorder=1.0), 9)
    assert {faults.frame_fate("trades") for _ in range(100)} == {FrameFate.DROP}


def test_fates_are_reproducible_from_the_seed() -> None:
    config = FaultConfig(ws_drop=0.2, ws_duplicate=0.3, ws_reorder=0.3)

    def fates(seed: int) -> list[FrameFate]:
        faults = Faults(config, seed)
        return [faults.frame_fate("l2Book") for _ in range(500)]

    assert fates(11) == fates(11)
    assert fates(11) != fates(12)
    assert len(set(fates(11))) == 4


def test_fate_frequencies_follow_the_probabilities() -> None:
    faults = Faults(FaultConfig(ws_drop=0.2, ws_duplicate=0.3, ws_reorder=0.4), seed=5)
    draws = 20_000
    counts = Counter(faults.frame_fate("trades") for _ in range(draws))
    # Checked in order: drop, then duplicate, then hold; the rest are sent.
    expected = {
        FrameFate.DROP: 0.2,
        FrameFate.DUPLICATE: 0.8 * 0.3,
        FrameFate.HOLD: 0.8 * 0.7 * 0.4,
        FrameFate.SEND: 0.8 * 0.7 * 0.6,
    }
    for fate, probability in expected.items():
        assert counts[fate] / draws == pytest.approx(probability, abs=0.02), fate


# --- HTTP ------------------------------------------------------------------------------------


def test_http_fates() -> None:
    assert Faults(FaultConfig(http_429=1.0), seed=1).http_fate() is HttpFate.TOO_MANY
    assert Faults(FaultConfig(http_5xx=1.0), seed=1).http_fate() is HttpFate.SERVER_ERROR
    assert Faults(FaultConfig(http_429=1.0, http_5xx=1.0), 1).http_fate() is HttpFate.TOO_MANY
    quiet = Faults(FaultConfig(ws_drop=1.0, crossed_book=1.0), seed=1)
    assert all(quiet.http_fate() is HttpFate.ANSWER for _ in range(100))


def test_http_faults_on_the_paths_named_and_counted() -> None:
    faults = Faults(FaultConfig(http_429=1.0, http_paths=("/info",)), seed=1)
    assert faults.http_fate("/exchange") is HttpFate.ANSWER
    assert faults.http_fate("/info") is HttpFate.TOO_MANY
    assert faults.http_fate("/info") is HttpFate.TOO_MANY
    assert faults.too_many == 2
    faults.update({"http_info_types": ["userFillsByTime"]})
    assert faults.http_fate("/info", "clearinghouseState") is HttpFate.ANSWER
    assert faults.http_fate("/info", "userFillsByTime") is HttpFate.TOO_MANY
    assert faults.http_fate("/info", None) is HttpFate.ANSWER
    with pytest.raises(FaultUpdateError, match=r"faults.http_paths: unknown paths \['/ws'\]"):
        faults.update({"http_paths": ["/ws"]})


def test_http_fate_frequencies() -> None:
    faults = Faults(FaultConfig(http_429=0.1, http_5xx=0.25), seed=8)
    draws = 20_000
    counts = Counter(faults.http_fate() for _ in range(draws))
    assert counts[HttpFate.TOO_MANY] / draws == pytest.approx(0.1, abs=0.015)
    assert counts[HttpFate.SERVER_ERROR] / draws == pytest.approx(0.9 * 0.25, abs=0.02)


# --- delays and crossed books ----------------------------------------------------------------


def test_no_delay_by_default() -> None:
    faults = Faults(FaultConfig(), seed=1)
    assert faults.ws_delay() == 0.0
    assert faults.http_delay() == 0.0


def test_ws_delay_is_latency_plus_jitter_in_seconds() -> None:
    faults = Faults(FaultConfig(ws_latency_ms=40.0, ws_jitter_ms=20.0, http_latency_ms=900), 2)
    delays = [faults.ws_delay() for _ in range(2000)]
    assert all(0.040 <= delay <= 0.060 for delay in delays)
    assert max(delays) - min(delays) > 0.015  # the jitter is spread over its range
    assert Faults(FaultConfig(ws_latency_ms=25.0), seed=2).ws_delay() == pytest.approx(0.025)
    jitter_only = Faults(FaultConfig(ws_jitter_ms=10.0), seed=2)
    assert all(0 <= jitter_only.ws_delay() <= 0.010 for _ in range(200))


def test_http_delay_is_latency_plus_jitter_in_seconds() -> None:
    faults = Faults(FaultConfig(http_latency_ms=300.0, http_jitter_ms=100.0, ws_latency_ms=1), 2)
    delays = [faults.http_delay() for _ in range(2000)]
    assert all(0.300 <= delay <= 0.400 for delay in delays)
    assert max(delays) - min(delays) > 0.08
    assert Faults(FaultConfig(http_latency_ms=300.0), seed=2).http_delay() == pytest.approx(0.3)


def test_cross_this_book() -> None:
    assert not any(Faults(FaultConfig(), seed=4).cross_this_book() for _ in range(100))
    assert all(Faults(FaultConfig(crossed_book=1.0), seed=4).cross_this_book() for _ in range(100))
    half = Faults(FaultConfig(crossed_book=0.5), seed=4)
    crossed = sum(half.cross_this_book() for _ in range(10_000))
    assert 4_700 <= crossed <= 5_300


# --- independence from the market -----------------------------------------------------------


def _tape(faults: FaultConfig, *, draw_faults: bool) -> list[Trade]:
    """The market's trades over 30 simulated seconds, drawing fault decisions as we go."""
    venue = SimVenue(SimConfig(seed=21, market=MarketConfig(taker_a=3.0), faults=faults))
    now = 1_800_000_000_000
    venue.market.seed_liquidity(now)
    tape: list[Trade] = []
    for _ in range(300):
        now += 100
        venue.market.step(now, 0.1)
        tape.extend(event for event in venue.engine.events if isinstance(event, Trade))
        venue.engine.events.clear()
        if draw_faults:
            venue.faults.frame_fate("trades")
            venue.faults.http_fate()
            venue.faults.ws_delay()
            venue.faults.cross_this_book()
    return tape


def test_faults_never_change_the_market_tape() -> None:
    faulty = FaultConfig(ws_drop=0.3, ws_jitter_ms=5.0, http_5xx=0.5, crossed_book=0.5)
    quiet = _tape(FaultConfig(), draw_faults=False)
    assert quiet
    assert _tape(faulty, draw_faults=True) == quiet


def test_post_replies_are_dropped_only_by_their_own_fault() -> None:
    data_faults = Faults(FaultConfig(ws_drop=1.0, ws_duplicate=1.0, ws_reorder=1.0), seed=3)
    assert {data_faults.frame_fate("post") for _ in range(100)} == {FrameFate.SEND}
    lost_acks = Faults(FaultConfig(ws_drop_post_replies=1.0), seed=3)
    assert {lost_acks.frame_fate("post") for _ in range(100)} == {FrameFate.DROP}
    assert lost_acks.frame_fate("l2Book") is FrameFate.SEND


def test_latency_can_be_limited_to_some_channels() -> None:
    faults = Faults(FaultConfig(ws_latency_ms=100.0, ws_latency_channels=("trades",)), seed=1)
    assert faults.ws_delay("trades") == 0.1
    assert faults.ws_delay("l2Book") == 0.0
    everywhere = Faults(FaultConfig(ws_latency_ms=100.0), seed=1)
    assert everywhere.ws_delay("l2Book") == 0.1


def test_latency_channels_must_be_data_channels() -> None:
    faults = Faults(FaultConfig(), seed=1)
    with pytest.raises(FaultUpdateError, match="unknown channels"):
        faults.update({"ws_latency_channels": ["pong"]})


def cancel_body(kind: str) -> dict[str, Any]:
    return {"action": {"type": kind, "cancels": []}, "nonce": 1, "signature": {}}


def test_only_cancels_are_lost_and_only_by_their_own_fault() -> None:
    assert not Faults(EVERYTHING_ON, seed=1).lose_this_cancel(cancel_body("cancel"))
    faults = Faults(FaultConfig(lose_cancels=1.0), seed=1)
    assert faults.lose_this_cancel(cancel_body("cancel"))
    assert faults.lose_this_cancel(cancel_body("cancelByCloid"))
    for kind in ("order", "modify", "batchModify", "scheduleCancel", "noop"):
        assert not faults.lose_this_cancel(cancel_body(kind)), kind
    bodies: list[Any] = [None, [], "cancel", {"action": "cancel"}, {"action": {"type": ["c"]}}]
    for body in bodies:
        assert not faults.lose_this_cancel(body)


def test_lost_cancels_follow_the_probability_from_the_seed() -> None:
    def losses(seed: int) -> list[bool]:
        faults = Faults(FaultConfig(lose_cancels=0.3), seed=seed)
        return [faults.lose_this_cancel(cancel_body("cancel")) for _ in range(2_000)]

    assert losses(5) == losses(5)
    assert 0.25 < sum(losses(5)) / 2_000 < 0.35
