"""The KuCoin face's fault settings: what each acts on, seeded, and checked when updated."""

from __future__ import annotations

import pytest

from mm.venues.sim.faults import FaultUpdateError, FrameFate, HttpFate
from mm.venues.sim.kucoin.faults import DATA_CHANNELS, KucoinFaultConfig, KucoinFaults


def test_answers_always_go_out_whatever_the_faults() -> None:
    faults = KucoinFaults(KucoinFaultConfig(ws_drop=1.0, stall_market=True, drop_level2=1.0), 1)
    assert faults.frame_fate("") is FrameFate.SEND  # welcome, pong, ack, error


def test_a_stall_and_dropped_increments_act_on_their_channels_only() -> None:
    stalled = KucoinFaults(KucoinFaultConfig(stall_market=True), 1)
    fates = {channel: stalled.frame_fate(channel) for channel in sorted(DATA_CHANNELS)}
    assert fates == {
        "balance": FrameFate.SEND,
        "depth5": FrameFate.DROP,
        "level2": FrameFate.DROP,
        "match": FrameFate.DROP,
        "orders": FrameFate.SEND,
        "ticker": FrameFate.DROP,
    }
    gappy = KucoinFaults(KucoinFaultConfig(drop_level2=1.0), 1)
    assert {c for c in DATA_CHANNELS if gappy.frame_fate(c) is FrameFate.DROP} == {"level2"}


def test_the_same_seed_draws_the_same_fates() -> None:
    config = KucoinFaultConfig(ws_drop=0.3, ws_duplicate=0.3, drop_level2=0.3, http_429=0.5)

    def draws(seed: int) -> list[object]:
        faults = KucoinFaults(config, seed)
        return [faults.frame_fate("level2") for _ in range(50)] + [
            faults.http_fate() for _ in range(20)
        ]

    assert draws(3) == draws(3)
    assert draws(3) != draws(4)
    assert HttpFate.TOO_MANY in draws(3)


def test_an_update_is_partial_and_checked() -> None:
    faults = KucoinFaults(KucoinFaultConfig(ws_latency_ms=5), 1)
    assert faults.update({"http_429": 0.5}) == KucoinFaultConfig(ws_latency_ms=5, http_429=0.5)
    with pytest.raises(FaultUpdateError, match="http_429"):
        faults.update({"http_429": 1.5})
    with pytest.raises(FaultUpdateError, match="nothing"):
        faults.update({"nothing": 1})
    assert faults.config.http_429 == 0.5  # a refused update changes nothing


def test_what_the_fates_did_is_counted_per_channel() -> None:
    faults = KucoinFaults(KucoinFaultConfig(drop_level2=0.5, ws_duplicate=0.5), 2)
    fates = {channel: [faults.frame_fate(channel) for _ in range(200)] for channel in DATA_CHANNELS}
    faults.frame_fate("")  # an answer: never dropped, never counted
    for channel, drawn in fates.items():
        assert faults.dropped[channel] == drawn.count(FrameFate.DROP)
        assert faults.duplicated[channel] == drawn.count(FrameFate.DUPLICATE)
    assert faults.dropped["level2"] > 0
    assert set(faults.dropped) == {"level2"}  # only increments are dropped by drop_level2
    assert faults.duplicated["balance"] > 0
    assert "" not in faults.dropped + faults.duplicated
