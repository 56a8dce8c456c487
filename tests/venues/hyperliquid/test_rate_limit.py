"""Tests for the client-side rate limiter: IP window, address budget, backoff, bucket, headroom."""

from __future__ import annotations

import json
import math
import random

import attrs
import pytest
import trio
import trio.testing
from hypothesis import given, settings
from hypothesis import strategies as st

from mm.model import RateLimitState
from mm.settings import ConfigError, structure_section
from mm.venues.base import RequestBudget
from mm.venues.hyperliquid import limits
from mm.venues.hyperliquid.rate_limit import (
    Cost,
    RateLimitConfig,
    RateLimiter,
    RateLimitError,
    acquire,
    as_cost,
)
from tests.fixture_paths import HYPERLIQUID as FIXTURES

# A bucket and an address budget too large to matter, for tests of the other tiers.
ROOMY = RateLimitConfig(order_tokens_per_second=1e6, order_burst=1e6)


class FixedRandom(random.Random):
    """A random source whose ``random()`` is always ``value`` (for the jitter's bounds)."""

    def __init__(self, value: float) -> None:
        super().__init__(0)
        self.value = value

    def random(self) -> float:
        return self.value


def address_error_text(sent: int, allowed: int, volume: str) -> str:
    errors = json.loads((FIXTURES / "error_messages.json").read_text())["errors"]
    (template,) = [e["message"] for e in errors if e["type"] == "AddressRateLimit"]
    assert isinstance(template, str)
    return (
        template.replace("X", str(sent), 1)
        .replace("Y", str(allowed), 1)
        .replace("$Z", f"${volume}", 1)
    )


# --- config and costs -----------------------------------------------------------------------


def test_config_defaults() -> None:
    c = RateLimitConfig()
    assert c.enabled
    assert c.ip_weight_per_minute == 1200
    assert c.window_seconds == 60.0
    assert c.ip_safety_margin == 0.9
    assert c.ip_budget == 1080
    assert c.address_throttled_interval_seconds == 10.0
    assert attrs.evolve(c, ip_safety_margin=1.0).ip_budget == 1200
    assert attrs.evolve(c, ip_safety_margin=0.5).ip_budget == 600


def test_config_is_a_settings_section_with_key_paths() -> None:
    section = structure_section(
        {"ip_safety_margin": 0.8, "backoff_cap_seconds": 10}, RateLimitConfig, "hl.rate_limit"
    )
    assert section.ip_budget == 960
    assert section.backoff_cap_seconds == 10.0
    with pytest.raises(ConfigError) as error:
        structure_section(
            {"ip_safety_margin": 1.5, "budget_cut_factor": 1.0, "order_burst": 0.0},
            RateLimitConfig,
            "hl.rate_limit",
        )
    assert sorted(error.value.errors) == [
        "hl.rate_limit.budget_cut_factor: must be > 0 and < 1, got 1.0",
        "hl.rate_limit.ip_safety_margin: must be > 0 and <= 1, got 1.5",
        "hl.rate_limit.order_burst: must be > 0, got 0.0",
    ]
    with pytest.raises(ConfigError, match=r"hl\.rate_limit\.nope: unknown key"):
        structure_section({"nope": 1}, RateLimitConfig, "hl.rate_limit")


def test_costs_use_the_venue_weights() -> None:
    assert Cost.orders(1) == Cost("order", 1, 1)
    assert Cost.orders(39) == Cost("order", 1, 39)
    assert Cost.orders(79) == Cost("order", 2, 79)
    assert Cost.cancels(80) == Cost("cancel", 3, 80)
    assert Cost.info("l2Book") == Cost("info", 2)
    assert Cost.info("meta") == Cost("info", 20)
    assert Cost.info("userRole") == Cost("info", 60)
    assert Cost.info("userFills", items=45) == Cost("info", 22)
    assert Cost.of_info({"type": "allMids"}) == Cost("info", 2)
    order = {"a": 0, "b": True, "p": "1", "s": "1", "r": False, "t": {"limit": {"tif": "Gtc"}}}
    assert Cost.of_action({"type": "order", "orders": [order] * 40}) == Cost("order", 2, 40)
    assert Cost.of_action({"type": "batchModify", "modifies": [{}] * 3}) == Cost("order", 1, 3)
    assert Cost.of_action({"type": "cancelByCloid", "cancels": [{}] * 2}) == Cost("cancel", 1, 2)
    assert Cost.of_action({"type": "updateLeverage", "asset": 0}) == Cost("action", 1, 1)
    assert as_cost(7) == Cost("info", 7)


# --- proactive: the IP window ---------------------------------------------------------------


def test_540_sends_of_weight_2_pass_and_the_next_waits_for_the_oldest_to_leave() -> None:
    limiter = RateLimiter(ROOMY)
    dt = 0.0625  # exact in binary, so the times below are exact
    for i in range(540):
        now = i * dt
        assert limiter.can_send(2, now), i
        assert limiter.wait_time(2, now) == 0.0
        limiter.record(2, now)
    now = 540 * dt  # 33.75
    assert limiter.ip_used(now) == 1080
    assert not limiter.can_send(2, now)
    # The oldest charge (t=0) leaves the window at 60.0.
    assert limiter.wait_time(2, now) == 60.0 - now == 26.25
    # Weight 20 needs ten charges gone: the tenth (t=9*dt) leaves at 60.5625.
    assert limiter.wait_time(20, now) == 60.0 + 9 * dt - now
    assert not limiter.can_send(2, 59.9375)
    assert limiter.can_send(2, 60.0)
    assert limiter.try_acquire(2, 60.0)
    assert not limiter.try_acquire(2, 60.0)  # refused, and not recorded
    assert limiter.ip_used(60.0) == 1080


def test_everything_sent_at_once_waits_a_full_window() -> None:
    limiter = RateLimiter(ROOMY)
    limiter.record(1080, 5.0)
    assert limiter.wait_time(1, 5.0) == 60.0
    assert limiter.wait_time(Cost.cancels(1), 30.0) == 35.0
    assert limiter.can_send(1080, 65.0)


def test_a_request_heavier_than_the_budget_never_fits() -> None:
    limiter = RateLimiter(ROOMY)
    assert limiter.wait_time(1081, 0.0) == math.inf
    assert limiter.can_send(1080, 0.0)


def test_orders_and_info_share_the_ip_window() -> None:
    limiter = RateLimiter(ROOMY)
    for _ in range(53):
        limiter.record(Cost.info("meta"), 0.0)  # 1060
    limiter.record(Cost.orders(79), 0.0)  # 1062
    assert limiter.can_send(Cost.cancels(39), 0.0)  # weight 1
    assert limiter.can_send(Cost.info("l2Book"), 0.0)
    assert not limiter.can_send(Cost.info("meta"), 0.0)


def test_a_reservation_settles_on_what_the_answer_weighed() -> None:
    limiter = RateLimiter(ROOMY)
    page = {"type": "userFillsByTime", "user": "0x" + "ab" * 20, "startTime": 0}
    reserved = Cost.reserved_info(page)
    assert reserved == Cost("info", 120)
    limiter.record(reserved, 1.0)
    limiter.record(Cost.info("l2Book"), 2.0)
    assert limiter.ip_used(2.0) == 122
    limiter.settle(1.0, 120, 22, 3.0)  # 45 fills came back
    assert limiter.ip_used(3.0) == 24
    assert limiter.weight_total == 24  # what the venue was sent, as settled
    # What it weighs leaves the window when its reservation would have.
    assert limiter.ip_used(60.5) == 24
    assert limiter.ip_used(61.0) == 2
    assert limiter.ip_used(62.0) == 0


def test_an_answer_heavier_than_reserved_is_charged_when_it_comes() -> None:
    limiter = RateLimiter(ROOMY)
    limiter.record(20, 1.0)  # a listing whose largest answer is unknown reserves its weight
    limiter.settle(1.0, 20, 25, 4.0)
    assert limiter.ip_used(4.0) == 25
    assert limiter.weight_total == 25
    assert limiter.ip_used(61.0) == 5  # the rest counts from when it was known
    assert limiter.ip_used(64.0) == 0


def test_a_reservation_settled_after_it_left_the_window_changes_nothing() -> None:
    limiter = RateLimiter(ROOMY)
    limiter.record(120, 1.0)
    limiter.record(20, 30.0)
    limiter.settle(1.0, 120, 20, 62.0)  # an answer that took a minute
    assert limiter.ip_used(62.0) == 20
    limiter.settle(30.0, 20, 20, 62.0)
    assert limiter.ip_used(62.0) == 20


def test_twin_reservations_settle_one_each() -> None:
    limiter = RateLimiter(ROOMY)
    limiter.record(120, 1.0)
    limiter.record(120, 1.0)
    limiter.settle(1.0, 120, 20, 2.0)
    assert limiter.ip_used(2.0) == 140
    limiter.settle(1.0, 120, 120, 2.0)
    assert limiter.ip_used(2.0) == 140
    limiter.settle(1.0, 120, 21, 2.0)
    assert limiter.ip_used(2.0) == 41


@settings(max_examples=150, deadline=None)
@given(
    pages=st.lists(
        st.tuples(st.floats(0.0, 3.0), st.integers(0, 2000), st.floats(0.0, 2.0)), max_size=60
    )
)
def test_pages_in_flight_together_never_exceed_the_budget(
    pages: list[tuple[float, int, float]],
) -> None:
    # Fill pages sent as soon as the limiter admits their reservation, each answered (with
    # any number of fills) some time later, several in flight at once: the weight the venue
    # charges them as it answers them on arrival (20 and 1 per 20 fills) never exceeds the
    # budget in any window, though the limiter learns each page's weight only once answered.
    limiter = RateLimiter(ROOMY)
    request = {"type": "userFillsByTime", "user": "0x" + "ab" * 20, "startTime": 0}
    reserved = Cost.reserved_info(request)
    in_flight: list[tuple[float, float, int]] = []  # (answered at, sent at, fills)
    charged: list[tuple[float, int]] = []
    now = 0.0

    def answer_until(until: float) -> None:
        for done in sorted(f for f in in_flight if f[0] <= until):
            in_flight.remove(done)
            at, sent, fills = done
            weight = limits.answered_info_weight(request, [{}] * fills)
            limiter.settle(sent, reserved.weight, weight, at)
            charged.append((sent, weight))

    for gap, fills, latency in pages:
        now += gap
        answer_until(now)
        # Time only moves forward: wait for admission, settling each answer that comes in
        # meanwhile at its own instant (it may shorten the wait).
        while (wait := limiter.wait_time(reserved, now)) > 0:
            due = [answered for answered, _, _ in in_flight if answered <= now + wait]
            now = min(due) if due else now + wait
            answer_until(now)
        limiter.record(reserved, now)
        in_flight.append((now + latency, now, fills))
    answer_until(math.inf)
    assert max_weight_in_any_window(charged, 60.0) <= ROOMY.ip_budget


def test_disabled_admits_everything_but_still_counts() -> None:
    limiter = RateLimiter(attrs.evolve(ROOMY, enabled=False))
    limiter.record(1200, 0.0)
    assert limiter.wait_time(5000, 0.0) == 0.0
    assert limiter.ip_used(0.0) == 1200
    assert limiter.headroom(0.0) == 1.0


# --- proactive: the address budget ----------------------------------------------------------


def test_a_fresh_address_is_assumed_until_the_venue_says_otherwise() -> None:
    limiter = RateLimiter(ROOMY)
    known = [limiter.address_known]
    assert (limiter.address_used(), limiter.address_cap()) == (0, 10000)
    assert limiter.address_remaining() == 9900  # the reserve of 100 is kept back
    limiter.observe(RateLimitState(cum_volume=500.4, requests_used=7000, requests_cap=10500), 1.0)
    known.append(limiter.address_known)
    assert known == [False, True]
    assert (limiter.address_used(), limiter.address_cap()) == (7000, 10500)


def test_address_budget_is_the_venue_count_plus_our_sends() -> None:
    limiter = RateLimiter(ROOMY)
    limiter.observe(RateLimitState(cum_volume=500.4, requests_used=10000, requests_cap=10500), 0.0)
    assert limiter.address_remaining() == 400
    limiter.record(Cost.orders(39), 1.0)  # a batch of 39 counts 39 (weight 1)
    limiter.record(Cost.orders(1), 2.0)
    limiter.record(Cost.info("l2Book"), 2.0)  # info requests are not actions
    assert limiter.address_used() == 10040
    assert limiter.ip_used(2.0) == 4
    for i in range(9):
        limiter.record(Cost.orders(39), 3.0 + i)  # 10391
    assert limiter.address_used() == 10391
    assert limiter.can_send(Cost.orders(9), 12.0)
    assert not limiter.can_send(Cost.orders(10), 12.0)
    # Past the reserve: one action per 10 s (the venue's pace) + 1 s margin since the last one.
    assert limiter.wait_time(Cost.orders(10), 12.0) == 11.0 + 11.0 - 12.0
    assert limiter.wait_time(Cost("action", 1, 10), 12.0) == 10.0
    limiter.record(Cost.orders(10), 22.0)
    assert limiter.wait_time(Cost.orders(1), 22.0) == 11.0
    assert limiter.can_send(Cost.orders(1), 33.0)


def test_a_snapshot_keeps_our_sends_made_after_it_was_asked_for() -> None:
    limiter = RateLimiter(ROOMY)
    limiter.record(Cost.orders(5), 1.0)
    limiter.record(Cost.orders(7), 2.0)
    limiter.record(Cost.cancels(3), 3.0)
    # The query went out at t=1.5 and came back at t=4: it saw the first batch, maybe not the
    # next two, so those stay counted on top (over-counting is the safe side).
    snapshot = RateLimitState(cum_volume=0.0, requests_used=205, requests_cap=10000)
    limiter.observe(snapshot, 4.0, sent_at=1.5)
    assert limiter.address_used() == 215
    limiter.observe(RateLimitState(cum_volume=0.0, requests_used=215, requests_cap=10000), 5.0)
    assert limiter.address_used() == 215


def test_fills_raise_the_cap_until_the_next_snapshot() -> None:
    limiter = RateLimiter(ROOMY)
    limiter.observe(RateLimitState(cum_volume=500.4, requests_used=0, requests_cap=10500), 0.0)
    limiter.add_volume(0.5)
    assert limiter.address_cap() == 10500
    limiter.add_volume(-0.2)  # notional counts as its absolute value: 501.1
    assert limiter.address_cap() == 10501
    limiter.add_volume(1000.0)
    assert limiter.address_cap() == 11501
    limiter.observe(RateLimitState(cum_volume=1501.1, requests_used=0, requests_cap=11501), 1.0)
    assert limiter.address_cap() == 11501


def test_a_fill_the_venue_counted_already_is_not_credited_twice() -> None:
    limiter = RateLimiter(ROOMY)
    state = RateLimitState(cum_volume=2000.0, requests_used=50, requests_cap=12000)
    limiter.observe(state, 5.0, sent_at=4.0, volume_as_of_ms=1_000_000)
    # Fills told after the answer: one made before it (in the venue's volume already), one
    # made since.
    limiter.add_volume(700.0, time_ms=999_990)
    assert limiter.address_cap() == 12000
    limiter.add_volume(700.0, time_ms=1_000_000)
    assert limiter.address_cap() == 12700
    # The next answer counts that one: only fills after it raise the cap again.
    state = RateLimitState(cum_volume=2700.0, requests_used=60, requests_cap=12700)
    limiter.observe(state, 9.0, sent_at=8.0, volume_as_of_ms=1_004_000)
    limiter.add_volume(300.0, time_ms=1_003_999)
    limiter.add_volume(300.5, time_ms=1_004_001)
    assert limiter.address_cap() == 13000
    # The address-limit text carries the venue's volume as of when it came.
    text = address_error_text(13500, 12999, "3000.5")
    limiter.on_rejection(20.0, text=text, wall_ms=1_010_000)
    assert limiter.address_cap() == 13000
    limiter.add_volume(1000.0, time_ms=1_009_000)
    assert limiter.address_cap() == 13000
    limiter.add_volume(1000.0, time_ms=1_010_000)
    assert limiter.address_cap() == 14000


def test_cancels_have_the_larger_allowance() -> None:
    limiter = RateLimiter(ROOMY)
    limiter.observe(RateLimitState(cum_volume=500.0, requests_used=10500, requests_cap=10500), 0.0)
    limiter.record(Cost.orders(1), 0.0)
    # Orders are at the cap: one per 11 s. Cancels go up to min(cap + 100000, 2 * cap) = 21000,
    # less the reserve.
    assert limiter.address_cancel_cap() == 21000 == limits.cancel_cap(10500)
    assert limiter.address_remaining() == 0
    assert limiter.address_remaining(cancel=True) == 21000 - 100 - 10501
    assert limiter.wait_time(Cost.orders(1), 1.0) == 10.0
    assert limiter.can_send(Cost.cancels(39), 1.0)
    assert limiter.can_send(Cost.cancels(10399), 1.0)
    assert not limiter.can_send(Cost.cancels(10400), 1.0)
    # A big account: cap + 100000 is the smaller.
    limiter.observe(RateLimitState(cum_volume=1e6, requests_used=0, requests_cap=1010000), 2.0)
    assert limiter.address_cancel_cap() == 1110000


# --- reactive -------------------------------------------------------------------------------


def test_backoff_doubles_up_to_the_cap_within_the_jitter_bounds() -> None:
    config = attrs.evolve(ROOMY, backoff_initial_seconds=0.5, backoff_cap_seconds=30.0)
    bases = [0.5, 1.0, 2.0, 4.0, 8.0, 16.0, 30.0, 30.0]
    for value, scale in ((0.0, 1.0), (0.5, 0.75), (0.999999, 0.5000005)):
        limiter = RateLimiter(config, FixedRandom(value))
        now = 0.0
        for base in bases:
            delay = limiter.on_http_429(now)
            assert delay == pytest.approx(base * scale)
            assert limiter.blocked_until("info") == now + delay
            now += delay  # the next rejection comes once the block is over
    # A seeded source stays within [base / 2, base].
    limiter = RateLimiter(config, random.Random(7))
    now = 0.0
    for base in bases:
        delay = limiter.on_http_429(now)
        assert base / 2 <= delay <= base
        now += delay


def test_a_429_blocks_everything_and_the_address_text_blocks_orders_only() -> None:
    limiter = RateLimiter(ROOMY, FixedRandom(0.0))
    assert limiter.on_rejection(0.0, status=429) == 0.5
    for cost in (Cost.info("l2Book"), Cost.cancels(1), Cost.orders(1)):
        assert limiter.wait_time(cost, 0.1) == pytest.approx(0.4)
    assert limiter.on_rejection(1.0, status=500) is None
    assert limiter.on_rejection(1.0, text="Order has invalid price.") is None
    text = address_error_text(20629, 16414, "6415.83")
    assert text.startswith("Too many cumulative requests sent (20629 > 16414) for cumulative")
    assert limiter.on_rejection(1.0, text=text) == 1.0  # the streak goes on: 2 * 0.5
    assert limiter.wait_time(Cost.orders(1), 1.5) == 0.5
    assert limiter.wait_time(Cost("action", 1, 1), 1.5) == 0.5
    assert limiter.wait_time(Cost.info("l2Book"), 1.5) == 0.0
    assert limiter.wait_time(Cost.cancels(1), 1.5) == 0.0


def test_a_refused_read_waits_out_the_backoff_it_is_in() -> None:
    # The port's read_retry_wait: what the startup sequence waits after a 429.
    budget: RequestBudget = RateLimiter(ROOMY, FixedRandom(0.0))
    assert budget.read_retry_wait(0.0, counted=False) == 0.5  # not told yet: backoff starts
    assert budget.rejections == 1
    assert budget.read_retry_wait(0.2, counted=True) == pytest.approx(0.3)  # the block's rest
    assert budget.read_retry_wait(0.6, counted=True) == 0.5  # told, block over: initial
    assert budget.read_retry_wait(0.6, counted=False) == 1.0  # a second refusal: doubled
    assert budget.rejections == 2


def test_the_address_text_replaces_our_estimate() -> None:
    limiter = RateLimiter(ROOMY, FixedRandom(0.0))
    limiter.record(Cost.orders(1), 0.5)
    limiter.on_rejection(1.0, text=address_error_text(20629, 16414, "6415.83"))
    assert limiter.address_known
    assert limiter.address_used() == 20629
    assert limiter.address_cap() == 16415 == limits.address_cap(6415.83)
    assert limiter.address_cancel_cap() == 32830
    assert limiter.headroom_by_kind(2.0)["address"] == 0.0
    # Past the block, orders go at the throttled pace, measured from our last action (t=0.5).
    assert limiter.wait_time(Cost.orders(1), 2.0) == 9.5
    # Cancels: up to 32830 - 100 reserve - 20629 used = 12101 more, then the throttled pace.
    assert limiter.address_remaining(cancel=True) == 12101
    assert limiter.can_send(Cost.cancels(12101), 2.0)
    assert limiter.wait_time(Cost.cancels(12102), 2.0) == 9.5


def test_rejections_during_a_block_are_one_episode() -> None:
    limiter = RateLimiter(ROOMY, FixedRandom(0.0))
    assert limiter.on_http_429(0.0) == 0.5
    assert limiter.on_http_429(0.2) == pytest.approx(0.3)  # requests already in flight
    assert limiter.backoff_streak == 1
    assert limiter.budget_factor(0.2) == 0.5
    assert limiter.rejections == 2


def test_the_streak_resets_after_a_success_or_a_quiet_spell() -> None:
    limiter = RateLimiter(ROOMY, FixedRandom(0.0))
    assert limiter.on_http_429(0.0) == 0.5
    assert limiter.on_http_429(1.0) == 1.0
    limiter.on_success(3.0)
    assert limiter.on_http_429(4.0) == 0.5
    assert limiter.on_http_429(5.0) == 1.0
    assert limiter.on_http_429(125.0) == 0.5  # 120 s after the last one


def test_the_budget_is_cut_then_recovers_linearly() -> None:
    limiter = RateLimiter(ROOMY, FixedRandom(0.0))
    assert limiter.budget_factor(0.0) == 1.0
    limiter.on_http_429(0.0)  # blocked until 0.5, budget halved
    assert limiter.budget_factor(0.4) == 0.5
    assert limiter.ip_allowance(0.5) == 540.0
    # From 0 to full in 300 s: +0.25 every 75 s once the block is over.
    assert limiter.budget_factor(75.5) == pytest.approx(0.75)
    assert limiter.budget_factor(150.5) == 1.0
    assert limiter.budget_factor(1000.0) == 1.0
    # Each rejection cuts what is left; never below the floor.
    now = 150.5
    expected = 1.0
    for _ in range(6):
        limiter.on_success(now)
        expected = max(0.1, expected * 0.5)
        delay = limiter.on_http_429(now)
        now += delay
        assert limiter.budget_factor(now) == pytest.approx(expected)
    assert limiter.budget_factor(now) == 0.1


def test_an_essential_request_waits_out_the_block_then_spends_the_full_budget() -> None:
    limiter = RateLimiter(ROOMY, FixedRandom(0.0))
    limiter.record(700, 0.0)
    limiter.on_http_429(1.0)  # blocked 0.5 s, then the budget is cut to half (540)
    page = Cost.reserved_info({"type": "userFillsByTime"}, essential=True)
    assert page == Cost("info", 120, essential=True)
    assert limiter.wait_time(page, 1.0) == 0.5
    assert limiter.wait_time(page, 1.5) == 0.0  # 700 + 120 fit the full 1080
    assert limiter.wait_time(Cost("info", 120), 1.5) > 50.0  # the rest is paced by the cut
    limiter.record(page, 1.5)
    assert limiter.wait_time(Cost("info", 300, essential=True), 1.5) == 60.0 - 1.5


def test_a_cut_budget_delays_sends_until_it_has_recovered_enough() -> None:
    limiter = RateLimiter(ROOMY, FixedRandom(0.0))
    for _ in range(300):
        limiter.record(2, 0.0)  # 600 of 1080
    limiter.on_http_429(0.0)  # blocked until 0.5; then 540, climbing 3.6 a second
    assert limiter.wait_time(2, 0.0) == 0.5 + (602 / 1080 - 0.5) * 300
    assert limiter.wait_time(2, 0.5) == pytest.approx((602 / 1080 - 0.5) * 300)
    assert not limiter.can_send(2, 17.0)
    assert limiter.can_send(2, 17.75)
    # A request the recovered budget could never fit waits for the window to empty instead.
    assert limiter.wait_time(600, 1.0) == 59.0


# --- budget: the order bucket ---------------------------------------------------------------


def test_the_order_bucket_spreads_orders_over_time() -> None:
    config = RateLimitConfig(order_tokens_per_second=2.0, order_burst=10.0)
    limiter = RateLimiter(config)
    assert limiter.order_budget(0.0) == 10
    for i in range(10):
        assert limiter.try_acquire(Cost.orders(1), 0.0), i
    assert limiter.order_budget(0.0) == 0
    assert limiter.wait_time(Cost.orders(1), 0.0) == 0.5
    assert limiter.wait_time(Cost.orders(4), 0.0) == 2.0
    # Cancels and info requests spend no tokens.
    assert limiter.try_acquire(Cost.cancels(5), 0.0)
    assert limiter.try_acquire(Cost.info("l2Book"), 0.0)
    assert limiter.order_tokens(1.0) == 2.0
    assert limiter.order_budget(1.25) == 2
    assert limiter.try_acquire(Cost.orders(2), 1.25)
    assert limiter.order_tokens(1.25) == 0.5
    # The bucket holds at most the burst.
    assert limiter.order_tokens(100.0) == 10.0


def test_a_batch_larger_than_the_burst_waits_for_a_full_bucket_and_leaves_a_debt() -> None:
    limiter = RateLimiter(RateLimitConfig(order_tokens_per_second=2.0, order_burst=10.0))
    limiter.record(Cost.orders(10), 0.0)
    assert limiter.wait_time(Cost.orders(25), 0.0) == 5.0
    limiter.record(Cost.orders(25), 5.0)
    assert limiter.order_tokens(5.0) == -15.0
    assert limiter.wait_time(Cost.orders(1), 5.0) == 8.0
    assert limiter.order_budget(5.0) == 0


def test_the_order_budget_is_bounded_by_the_address_and_the_block() -> None:
    limiter = RateLimiter(RateLimitConfig(order_burst=50.0), FixedRandom(0.0))
    limiter.observe(RateLimitState(cum_volume=0.0, requests_used=9870, requests_cap=10000), 0.0)
    assert limiter.order_budget(0.0) == 30
    limiter.on_http_429(0.0)
    assert limiter.order_budget(0.25) == 0
    assert limiter.order_budget(0.5) == 30


# --- headroom -------------------------------------------------------------------------------


def test_headroom_at_each_stage() -> None:
    limiter = RateLimiter(ROOMY, FixedRandom(0.0))
    assert limiter.headroom_by_kind(0.0) == {"ip": 1.0, "address": 1.0, "reactive": 1.0}
    assert limiter.headroom(0.0) == 1.0
    for _ in range(135):
        limiter.record(2, 0.0)  # 270 of 1080
    assert limiter.headroom_by_kind(0.0)["ip"] == 0.75
    limiter.observe(RateLimitState(cum_volume=100.0, requests_used=6000, requests_cap=10100), 1.0)
    # (10100 - 100 reserve - 6000) / (10100 - 100)
    assert limiter.headroom_by_kind(1.0) == {"ip": 0.75, "address": 0.4, "reactive": 1.0}
    assert limiter.headroom(1.0) == 0.4
    limiter.on_http_429(2.0)  # blocked until 2.5; IP budget halved to 540, 270 used
    assert limiter.headroom_by_kind(2.0) == {"ip": 0.25, "address": 0.4, "reactive": 0.0}
    assert limiter.headroom(2.0) == 0.0
    assert limiter.headroom_by_kind(2.5) == {"ip": 0.25, "address": 0.4, "reactive": 0.5}
    assert limiter.headroom(2.5) == 0.25
    # The window empties at 60 s; the budget is back to full at 152.5.
    assert limiter.headroom_by_kind(60.0)["ip"] == pytest.approx(0.5 + 57.5 / 300)
    assert limiter.headroom_by_kind(152.5) == {"ip": 1.0, "address": 0.4, "reactive": 1.0}
    limiter.observe(RateLimitState(cum_volume=100.0, requests_used=10050, requests_cap=10100), 153)
    assert limiter.headroom(153.0) == 0.0


# --- the property: never more than the budget in any window ---------------------------------

event = st.one_of(
    st.tuples(st.just("send"), st.floats(0.0, 20.0), st.integers(0, 200)),
    st.tuples(st.just("429"), st.floats(0.0, 20.0), st.just(0)),
)


def max_weight_in_any_window(sends: list[tuple[float, int]], length: float) -> int:
    best = 0
    for start, _ in sends:
        best = max(best, sum(w for t, w in sends if start <= t < start + length))
    return best


@settings(max_examples=200, deadline=None)
@given(
    events=st.lists(event, max_size=400),
    margin=st.sampled_from([0.5, 0.9, 1.0]),
    seed=st.integers(0, 2**32 - 1),
)
def test_never_admits_more_than_the_budget_within_any_window(
    events: list[tuple[str, float, int]], margin: float, seed: int
) -> None:
    config = attrs.evolve(ROOMY, ip_safety_margin=margin)
    limiter = RateLimiter(config, random.Random(seed))
    admitted: list[tuple[float, int]] = []
    now = 0.0
    for what, dt, weight in events:
        now += dt
        if what == "429":
            limiter.on_http_429(now)
        elif limiter.try_acquire(weight, now):
            admitted.append((now, weight))
    assert max_weight_in_any_window(admitted, 60.0) <= config.ip_budget


@settings(max_examples=150, deadline=None)
@given(
    costs=st.lists(
        st.one_of(
            st.integers(1, 300).map(as_cost),
            st.integers(1, 90).map(Cost.orders),
            st.integers(1, 90).map(Cost.cancels),
        ),
        max_size=150,
    ),
    origin=st.sampled_from([0.0, 0.1, 12345.678, 1e6 + 0.1, 3e9 + 0.7]),
    seed=st.integers(0, 2**32 - 1),
)
def test_waiting_the_wait_time_always_admits_and_stays_within_budget(
    costs: list[Cost], origin: float, seed: int
) -> None:
    rng = random.Random(seed)
    config = RateLimitConfig(order_burst=30.0, address_reserve_requests=9000)
    limiter = RateLimiter(config, FixedRandom(0.3))
    admitted: list[tuple[float, int]] = []
    now = origin
    for cost in costs:
        now += rng.choice([0.0, 0.01, 0.5, 3.0])
        if rng.random() < 0.05:
            limiter.on_rejection(now, status=429)
        if rng.random() < 0.02:
            limiter.on_rejection(
                now,
                text=limits.ADDRESS_RATE_LIMIT_TEMPLATE.format(
                    sent=limiter.address_used(), allowed=limiter.address_cap() - 1, volume="0.0"
                ),
            )
        now += limiter.wait_time(cost, now)
        assert limiter.try_acquire(cost, now)
        admitted.append((now, cost.weight))
    assert max_weight_in_any_window(admitted, 60.0) <= 1080


# --- acquire, on Trio's clock ---------------------------------------------------------------


async def test_acquire_sleeps_the_computed_time(autojump_clock: trio.testing.MockClock) -> None:
    limiter = RateLimiter(ROOMY)
    start = trio.current_time()
    for _ in range(540):
        assert await acquire(limiter, 2) == 0.0
        await trio.sleep(0.0625)
    now = trio.current_time()
    assert now - start == 33.75
    expected = limiter.wait_time(2, now)
    assert expected == 26.25
    assert await acquire(limiter, 2) == expected
    assert trio.current_time() == start + 60.0
    assert limiter.ip_used(trio.current_time()) == 1080


async def test_a_batch_waiting_for_its_tokens_is_not_starved_by_budget_readers(
    autojump_clock: trio.testing.MockClock,
) -> None:
    # Quote cycles send what order_budget allows now; a batch that waits in acquire for five
    # tokens would never get them if each token went to a cycle as it refilled. It is held back
    # from the budget while it waits: it goes first, then the budget is the readers' again.
    limiter = RateLimiter(RateLimitConfig(order_tokens_per_second=2.0, order_burst=10.0))
    limiter.record(Cost.orders(10), trio.current_time())  # the bucket is empty
    taken_by_readers = 0
    acquired: list[float] = []

    async def batch() -> None:
        await acquire(limiter, Cost.orders(5))
        acquired.append(trio.current_time())

    async with trio.open_nursery() as nursery:
        nursery.start_soon(batch)
        start = trio.current_time()
        while not acquired:
            budget = limiter.order_budget(trio.current_time())
            if budget:  # a cycle takes what it is allowed, as soon as it is
                limiter.record(Cost.orders(budget), trio.current_time())
                taken_by_readers += budget
            await trio.sleep(0.1)
        assert taken_by_readers == 0  # nothing was given away while the batch waited
        assert acquired[0] - start == pytest.approx(2.5)  # five tokens at two a second
        await trio.sleep(1.0)
        assert limiter.order_budget(trio.current_time()) == 2  # the readers' again


async def test_acquire_waits_out_a_backoff(autojump_clock: trio.testing.MockClock) -> None:
    limiter = RateLimiter(ROOMY, FixedRandom(0.0))
    start = trio.current_time()
    limiter.on_http_429(start)
    assert await acquire(limiter, Cost.cancels(1)) == 0.5
    assert trio.current_time() == start + 0.5


async def test_acquire_takes_an_injected_clock(autojump_clock: trio.testing.MockClock) -> None:
    limiter = RateLimiter(ROOMY)
    offset = 1000.0
    limiter.record(1080, offset + trio.current_time())
    waited = await acquire(limiter, 1, clock=lambda: offset + trio.current_time())
    assert waited == 60.0


async def test_acquire_refuses_what_can_never_fit(autojump_clock: trio.testing.MockClock) -> None:
    limiter = RateLimiter(ROOMY)
    start = trio.current_time()
    with pytest.raises(RateLimitError, match="weight 1081 exceeds the IP budget of 1080"):
        await acquire(limiter, 1081)
    assert trio.current_time() == start


# --- the venue's address-limit text ---------------------------------------------------------


@pytest.mark.parametrize(
    ("sent", "allowed", "volume"),
    [(20629, 16414, "6415.83"), (15965, 15855, "5856.56"), (2887581, 2807233, "2797234.88019")],
)
def test_real_address_limit_texts_parse_and_imply_the_documented_cap(
    sent: int, allowed: int, volume: str
) -> None:
    parsed = limits.parse_address_rate_limit(address_error_text(sent, allowed, volume))
    assert parsed == limits.AddressRateLimitError(sent, allowed, float(volume))
    assert parsed.cap == limits.address_cap(float(volume))
    assert limits.is_address_rate_limit(address_error_text(sent, allowed, volume))


def test_other_texts_are_not_the_address_limit() -> None:
    assert limits.parse_address_rate_limit("Order has invalid price.") is None
    assert not limits.is_address_rate_limit("Cannot send more than 2000 messages per minute.")
