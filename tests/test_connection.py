"""The connection-health state machine, driven by hand with explicit times (no I/O, no clock)."""

from __future__ import annotations

import random

import pytest

from mm.connection import ConnectionConfig, ConnectionHealth, State, Transition
from mm.settings import ConfigError, structure_section


class MaxRng(random.Random):
    """Always the upper bound: every delay is its backoff ceiling."""

    def uniform(self, a: float, b: float) -> float:
        return b


def machine(
    rng: random.Random | None = None, **changes: float
) -> tuple[ConnectionHealth, list[Transition]]:
    seen: list[Transition] = []
    config = ConnectionConfig(**changes)  # type: ignore[arg-type]
    health = ConnectionHealth(
        config, name="feed", rng=rng or random.Random(1), on_change=seen.append
    )
    health.start(0.0)
    return health, seen


def state(health: ConnectionHealth) -> State:
    """The state now (a call, so that the type checker does not narrow it across events)."""
    return health.state


def states(seen: list[Transition]) -> list[State]:
    return [transition.new for transition in seen]


def test_defaults_follow_the_reference() -> None:
    config = ConnectionConfig()
    assert (config.backoff_initial_s, config.backoff_multiplier, config.backoff_cap_s) == (
        1.0,
        2.0,
        60.0,
    )
    assert config.max_attempts == 10
    assert config.ping_interval_s == 50.0
    assert config.post_timeout_s == 5.0
    assert config.connect_timeout_s == 10.0
    assert config.stale_after_s == 10.0  # the reference: stale after 10 s
    assert config.backoff.ceiling(0) == 1.0


def test_config_is_structured_strictly_with_key_paths() -> None:
    config = structure_section({"stale_after_s": 10, "max_attempts": 3}, ConnectionConfig, "ws")
    assert config.stale_after_s == 10.0
    assert config.max_attempts == 3
    with pytest.raises(ConfigError) as raised:
        structure_section(
            {"stale_after_s": 0, "max_attempts": 0, "backoff_multiplier": 0.5},
            ConnectionConfig,
            "ws",
        )
    errors = "\n".join(raised.value.errors)
    assert "ws.stale_after_s: must be > 0" in errors
    assert "ws.max_attempts: must be >= 1" in errors
    assert "ws.backoff_multiplier: must be >= 1" in errors
    with pytest.raises(ConfigError, match=r"ws\.bogus: unknown key"):
        structure_section({"bogus": 1}, ConnectionConfig, "ws")


def test_first_connect_then_healthy() -> None:
    health, seen = machine()
    assert state(health) is State.CONNECTING
    assert health.reason == "starting"
    health.connected(2.0)
    assert state(health) is State.HEALTHY
    assert (health.since, health.attempts, health.connects) == (2.0, 0, 1)
    assert health.last_message_at == 2.0
    assert seen[-1] == Transition("feed", State.CONNECTING, State.HEALTHY, 2.0, "connected", 0)
    assert health.state.up


def test_silence_makes_it_stale_and_a_message_heals_it() -> None:
    health, seen = machine(stale_after_s=10.0)
    health.connected(0.0)
    health.message(5.0)
    assert health.next_check(5.0) == 15.0
    assert not health.tick(14.9)
    assert state(health) is State.HEALTHY
    assert not health.tick(15.0)  # one stale period: STALE, no reconnect yet
    assert state(health) is State.STALE
    assert health.since == 15.0
    assert health.reason == "no message for 10.0s"
    assert health.next_check(15.0) == 25.0  # the second reading
    health.message(20.0)
    assert state(health) is State.HEALTHY
    assert health.reason == "message received"
    assert states(seen) == [State.HEALTHY, State.STALE, State.HEALTHY]


def test_two_stale_readings_in_a_row_recommend_a_reconnect() -> None:
    health, _ = machine(stale_after_s=10.0)
    health.connected(0.0)
    assert not health.tick(10.0)
    assert not health.tick(19.9)
    assert health.tick(20.0)
    assert state(health) is State.STALE
    quiet, _ = machine(stale_after_s=10.0, stale_readings_to_reconnect=0)
    quiet.connected(0.0)
    assert not quiet.tick(1000.0)
    assert state(quiet) is State.STALE


def test_tick_does_nothing_while_not_up() -> None:
    health, seen = machine(stale_after_s=1.0)
    assert not health.tick(100.0)
    assert state(health) is State.CONNECTING
    assert health.next_check(100.0) == 101.0
    assert states(seen) == []  # no change of state


def test_disconnect_backs_off_with_full_jitter_growing_to_the_cap() -> None:
    health, seen = machine(rng=MaxRng())
    health.connected(0.0)
    delays = [health.disconnected(1.0, "closed by the venue")]
    assert state(health) is State.RECONNECTING
    assert health.reason == "closed by the venue"
    for attempt in range(1, 10):
        delays.append(health.attempt_failed(1.0 + attempt, f"refused {attempt}"))
        assert health.attempts == attempt
        assert state(health) is State.RECONNECTING
    assert delays == [1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 60.0, 60.0, 60.0, 60.0]
    assert health.attempt_failed(20.0, "refused 10") is None  # the tenth attempt failed
    assert state(health) is State.FAILED
    assert health.attempts == 10
    assert health.reason == "gave up after 10 attempts; last: refused 10"
    assert seen[-1].new is State.FAILED
    assert seen[-1].attempts == 10
    assert health.attempt_failed(21.0, "again") is None
    assert health.disconnected(21.0, "again") is None
    assert state(health) is State.FAILED


def test_jittered_delays_stay_within_their_ceilings_and_spread_over_them() -> None:
    health, _ = machine(rng=random.Random(7))
    ceilings = [1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 60.0, 60.0, 60.0, 60.0]
    samples: list[list[float]] = [[] for _ in ceilings]
    for _ in range(300):
        health.connected(0.0)
        first = health.disconnected(0.0, "lost")
        assert first is not None
        samples[0].append(first)
        for attempt in range(1, 10):
            delay = health.attempt_failed(0.0, "refused")
            assert delay is not None
            samples[attempt].append(delay)
    for ceiling, drawn in zip(ceilings, samples, strict=True):
        assert all(0.0 <= delay <= ceiling for delay in drawn)
        assert min(drawn) < 0.1 * ceiling  # full jitter: from zero ...
        assert max(drawn) > 0.9 * ceiling  # ... up to the ceiling


def test_a_successful_connect_resets_the_attempts() -> None:
    health, _ = machine(rng=MaxRng())
    health.connected(0.0)
    health.disconnected(1.0, "lost")
    for attempt in range(1, 6):
        health.attempt_failed(float(attempt), "refused")
    assert health.attempts == 5
    health.connected(10.0)
    assert state(health) is State.HEALTHY
    assert health.attempts == 0
    assert health.reason == "reconnected"
    assert health.connects == 2
    assert health.disconnected(11.0, "lost again") == 1.0  # back to the first ceiling


def test_first_connect_failures_stay_connecting_until_failed() -> None:
    health, seen = machine(rng=MaxRng(), max_attempts=3)
    assert health.attempt_failed(0.0, "refused") == 2.0  # attempt 2 waits ceiling(1)
    assert state(health) is State.CONNECTING
    assert health.reason == "refused"
    # A socket that broke before coming up is a failed attempt too.
    assert health.disconnected(2.0, "closed before the greeting") == 4.0
    assert state(health) is State.CONNECTING
    assert health.attempt_failed(6.0, "refused") is None
    assert state(health) is State.FAILED
    assert states(seen) == [State.FAILED]


def test_disconnect_while_stale_reconnects() -> None:
    health, seen = machine(stale_after_s=1.0, rng=MaxRng())
    health.connected(0.0)
    health.tick(5.0)
    assert health.disconnected(5.0, "stale") == 1.0
    assert state(health) is State.RECONNECTING
    assert states(seen)[-2:] == [State.STALE, State.RECONNECTING]


def test_start_resets_a_failed_feed() -> None:
    health, _ = machine(max_attempts=1)
    assert health.attempt_failed(0.0, "refused") is None
    assert state(health) is State.FAILED
    seen: list[Transition] = []
    health.on_change = seen.append
    health.start(10.0)
    assert state(health) is State.CONNECTING
    assert states(seen) == [State.CONNECTING]
    assert health.attempts == 0
    assert health.since == 10.0


def test_snapshot_is_plain_data() -> None:
    health, _ = machine()
    health.connected(3.0)
    assert health.snapshot() == {
        "name": "feed",
        "state": "healthy",
        "attempts": 0,
        "since": 3.0,
        "reason": "connected",
        "last_message_at": 3.0,
        "connects": 1,
    }
    assert health.delay_ceiling(20) == 60.0
