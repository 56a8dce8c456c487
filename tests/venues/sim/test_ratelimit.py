"""Tests for the simulator's Hyperliquid rate limits: weights, IP window, address cap, WebSocket."""

from __future__ import annotations

import json
import math
import re
from typing import Any

import attrs
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mm.venues.sim.ratelimit import (
    AddressLimiter,
    IpWeightLimiter,
    RateLimitConfig,
    WsLimits,
    address_requests,
    exchange_weight,
    extra_info_weight,
    format_volume,
    info_weight,
    is_cancel_action,
)
from tests.fixture_paths import HYPERLIQUID as FIXTURES

USER = "0x31ca8395cf837de08b24da3f660e77761dfb974b"
IP = "10.0.0.1"


def fixture_json(name: str) -> Any:
    return json.loads((FIXTURES / name).read_text())


def address_rate_limit_template() -> str:
    errors = fixture_json("error_messages.json")["errors"]
    (message,) = [e["message"] for e in errors if e["type"] == "AddressRateLimit"]
    assert isinstance(message, str)
    return message


def template_regex(template: str) -> re.Pattern[str]:
    """The fixture's text with X, Y as integers and Z as a decimal."""
    pattern = re.escape(template)
    pattern = pattern.replace(r"\(X\ >\ Y\)", r"\((?P<x>\d+) > (?P<y>\d+)\)")
    pattern = pattern.replace(r"\$Z", r"\$(?P<z>\d+(?:\.\d+)?)")
    assert "?P<x>" in pattern
    assert "?P<z>" in pattern
    return re.compile(pattern)


def orders(n: int) -> dict[str, Any]:
    order = {"a": 0, "b": True, "p": "100", "s": "1", "r": False, "t": {"limit": {"tif": "Gtc"}}}
    return {"type": "order", "orders": [order] * n, "grouping": "na"}


def cancels(n: int) -> dict[str, Any]:
    return {"type": "cancel", "cancels": [{"a": 0, "o": i} for i in range(n)]}


# --- config ---------------------------------------------------------------------------------


def test_config_defaults_are_the_documented_figures() -> None:
    c = RateLimitConfig()
    assert c.enabled
    assert c.ip_weight_per_minute == 1200
    assert c.window_seconds == 60.0
    assert c.exchange_batch_divisor == 40
    assert (c.info_weight_light, c.info_weight_default, c.info_weight_user_role) == (2, 20, 60)
    assert (c.info_items_per_extra_weight, c.candle_items_per_extra_weight) == (20, 60)
    assert c.explorer_weight == 40
    assert c.ws_max_connections == 10
    assert c.ws_new_connections_per_minute == 30
    assert c.ws_max_subscriptions == 1000
    assert c.ws_max_users == 10
    assert c.ws_messages_per_minute == 2000
    assert c.ws_max_inflight_posts == 100
    assert c.address_initial_requests == 10000
    assert c.requests_per_usdc == 1.0
    assert c.address_throttled_interval_seconds == 10.0
    assert c.cancel_extra_requests == 100000


def test_config_rejects_nonsense() -> None:
    with pytest.raises(ValueError, match="ip_weight_per_minute"):
        RateLimitConfig(ip_weight_per_minute=0)
    with pytest.raises(ValueError, match="requests_per_usdc"):
        RateLimitConfig(requests_per_usdc=-1.0)


# --- weights --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "request_type",
    [
        "l2Book",
        "allMids",
        "clearinghouseState",
        "orderStatus",
        "spotClearinghouseState",
        "exchangeStatus",
    ],
)
def test_light_info_requests_weigh_2(request_type: str) -> None:
    assert info_weight({"type": request_type}) == 2


def test_user_role_weighs_60() -> None:
    assert info_weight({"type": "userRole", "user": USER}) == 60


@pytest.mark.parametrize(
    "request_type",
    ["meta", "openOrders", "frontendOpenOrders", "userFills", "userRateLimit", "candleSnapshot"],
)
def test_other_info_requests_weigh_20(request_type: str) -> None:
    assert info_weight({"type": request_type}) == 20


def test_recorded_info_requests_have_their_documented_weights() -> None:
    recorded = fixture_json("info_responses.json")["info"]
    weights = {name: info_weight(entry["request"]) for name, entry in recorded.items()}
    assert weights["l2Book"] == weights["allMids"] == weights["clearinghouseState"] == 2
    assert weights["meta"] == weights["openOrders"] == weights["userRateLimit"] == 20


@pytest.mark.parametrize(
    ("request_type", "items", "extra"),
    [
        ("userFills", 0, 0),
        ("userFills", 19, 0),
        ("userFills", 20, 1),
        ("userFills", 45, 2),
        ("historicalOrders", 2000, 100),
        ("recentTrades", 40, 2),
        ("userFillsByTime", 60, 3),
        ("validatorStats", 21, 1),
        ("candleSnapshot", 59, 0),
        ("candleSnapshot", 60, 1),
        ("candleSnapshot", 5000, 83),
        ("l2Book", 1000, 0),
        ("openOrders", 1000, 0),
    ],
)
def test_extra_info_weight_per_items_returned(request_type: str, items: int, extra: int) -> None:
    assert extra_info_weight(request_type, items) == extra


@pytest.mark.parametrize(
    ("n", "weight"), [(0, 1), (1, 1), (39, 1), (40, 2), (79, 2), (80, 3), (1000, 26)]
)
def test_exchange_weight_is_one_plus_batch_over_40(n: int, weight: int) -> None:
    assert exchange_weight(orders(n)) == weight
    assert exchange_weight(cancels(n)) == weight
    assert exchange_weight({"type": "batchModify", "modifies": [{}] * n}) == weight
    assert exchange_weight({"type": "cancelByCloid", "cancels": [{}] * n}) == weight


def test_unbatched_actions_weigh_1_and_count_1() -> None:
    for action in (
        {"type": "updateLeverage", "asset": 0, "isCross": True, "leverage": 5},
        {"type": "scheduleCancel", "time": 1},
        {"type": "noop"},
    ):
        assert exchange_weight(action) == 1
        assert address_requests(action) == 1
        assert not is_cancel_action(action)


def test_a_batch_of_n_counts_n_for_the_address() -> None:
    assert address_requests(orders(79)) == 79
    assert address_requests(cancels(3)) == 3
    assert address_requests(orders(1)) == 1
    assert is_cancel_action(cancels(1))
    assert is_cancel_action({"type": "cancelByCloid", "cancels": []})
    assert not is_cancel_action(orders(1))


# --- IP weight ------------------------------------------------------------------------------


def test_600_requests_of_weight_2_pass_the_601st_is_refused_and_capacity_returns() -> None:
    limiter = IpWeightLimiter()
    for i in range(600):
        assert limiter.charge(IP, 2, now=i * 0.01), i
    assert limiter.used(IP, now=6.0) == 1200
    assert not limiter.charge(IP, 2, now=6.0)
    assert limiter.used(IP, now=6.0) == 1200  # the refusal is not charged
    # Another IP has its own budget.
    assert limiter.charge("10.0.0.2", 20, now=6.0)
    # The first charges (t=0 .. 0.99) leave the window one by one, 60 s after they were made.
    assert not limiter.charge(IP, 2, now=59.99)
    assert limiter.charge(IP, 2, now=60.0)
    assert not limiter.charge(IP, 2, now=60.0)
    assert limiter.used(IP, now=120.0) == 0
    assert limiter.charge(IP, 1200, now=120.0)


def test_ip_limit_mixes_info_and_exchange_weights() -> None:
    limiter = IpWeightLimiter()
    for _ in range(59):
        assert limiter.charge(IP, info_weight({"type": "meta"}), now=0.0)
    assert limiter.used(IP, now=0.0) == 1180
    assert limiter.charge(IP, exchange_weight(orders(79)), now=0.0)  # 1182
    for _ in range(9):
        assert limiter.charge(IP, info_weight({"type": "l2Book"}), now=0.0)  # 1200
    assert not limiter.charge(IP, exchange_weight(orders(1)), now=0.0)


def test_ip_retry_after_and_recorded_extra_weight() -> None:
    limiter = IpWeightLimiter()
    assert limiter.retry_after(IP, 20, now=0.0) == 0.0
    assert limiter.charge(IP, 600, now=0.0)
    assert limiter.charge(IP, 600, now=10.0)
    assert limiter.retry_after(IP, 20, now=15.0) == pytest.approx(45.0)
    assert limiter.retry_after(IP, 1201, now=15.0) == math.inf
    limiter.record(IP, 50, now=65.0)  # extra weight is recorded even over the limit
    assert limiter.used(IP, now=65.0) == 650
    limiter.record(IP, 600, now=65.0)
    assert limiter.used(IP, now=65.0) == 1250


def test_disabled_ip_limiter_admits_everything_but_still_counts() -> None:
    limiter = IpWeightLimiter(RateLimitConfig(enabled=False))
    for _ in range(1000):
        assert limiter.charge(IP, 20, now=0.0)
    assert limiter.used(IP, now=0.0) == 20000
    assert limiter.retry_after(IP, 20, now=0.0) == 0.0


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.floats(min_value=0.0, max_value=30.0, allow_nan=False),  # gap before the request
            st.integers(min_value=1, max_value=300),  # weight
        ),
        max_size=300,
    )
)
def test_ip_limiter_never_admits_more_than_the_limit_in_any_window(
    requests: list[tuple[float, int]],
) -> None:
    limiter = IpWeightLimiter()
    now = 0.0
    admitted: list[tuple[float, int]] = []
    for gap, weight in requests:
        now += gap
        if limiter.charge(IP, weight, now):
            admitted.append((now, weight))
            # Whenever it admits, what it reports is exactly the last 60 s of admissions (an
            # admission leaves the window once t <= now - 60, the limiter's own arithmetic).
            assert limiter.used(IP, now) == sum(w for t, w in admitted if t > now - 60.0)
        else:
            # It refuses only what would not fit.
            assert limiter.used(IP, now) + weight > 1200
    # No 60 s interval [start, start + 60) holds more than 1200 admitted weight; it suffices to
    # check the intervals starting at each admission.
    for start, _ in admitted:
        in_window = sum(w for t, w in admitted if start <= t and start > t - 60.0)
        assert in_window <= 1200


# --- address --------------------------------------------------------------------------------


def test_fresh_address_has_10000_requests_and_the_10001st_is_refused() -> None:
    limiter = AddressLimiter()
    assert limiter.cap(USER) == 10000
    for i in range(10000):
        assert limiter.charge(USER, 1, is_cancel=False) is None, i
    error = limiter.charge(USER, 1, is_cancel=False)
    assert error == (
        "Too many cumulative requests sent (10000 > 9999) for cumulative volume traded $0.0. "
        "Place taker orders to free up 1 request per USDC traded."
    )
    assert limiter.requests_used(USER) == 10000  # refusals are not counted


def test_error_text_matches_the_fixture_template() -> None:
    limiter = AddressLimiter()
    limiter.add_volume(USER, 6415.83)
    for _ in range(limiter.cap(USER)):
        assert limiter.charge(USER, 1, is_cancel=False) is None
    error = limiter.charge(USER, 1, is_cancel=False)
    assert error is not None
    match = template_regex(address_rate_limit_template()).fullmatch(error)
    assert match is not None, error
    # As in real rejections, e.g. "(20629 > 16414) for cumulative volume traded $6415.83":
    # Y is one less than the cap userRateLimit reports.
    assert match["z"] == "6415.83"
    assert int(match["y"]) == 16414 == limiter.cap(USER) - 1
    assert int(match["x"]) == 16415 == limiter.requests_used(USER)


def test_cap_grows_by_one_request_per_usdc_traded() -> None:
    limiter = AddressLimiter()
    limiter.add_volume(USER, 2500.75)
    assert limiter.cap(USER) == 12500
    limiter.add_volume(USER, -0.5)  # notional counts by size, whatever the side
    assert limiter.cap(USER) == 12501
    limiter.add_volume(USER, 0.2)
    assert limiter.cap(USER) == 12501  # floor(2501.45)
    for _ in range(12501):
        assert limiter.charge(USER, 1, is_cancel=False) is None
    assert limiter.charge(USER, 1, is_cancel=False) is not None
    # Trading frees requests: 5 USDC more buys 5 more.
    limiter.add_volume(USER, 5.0)
    for _ in range(5):
        assert limiter.charge(USER, 1, is_cancel=False) is None
    assert limiter.charge(USER, 1, is_cancel=False) is not None


def test_requests_per_usdc_scales_the_cap() -> None:
    limiter = AddressLimiter(RateLimitConfig(requests_per_usdc=0.5, address_initial_requests=100))
    limiter.add_volume(USER, 41.0)
    assert limiter.cap(USER) == 120


def test_batches_count_n_and_are_checked_against_what_was_sent_before() -> None:
    limiter = AddressLimiter()
    assert limiter.charge_action(USER, orders(79)) is None
    assert limiter.requests_used(USER) == 79
    for _ in range(9920):
        assert limiter.charge(USER, 1, is_cancel=False) is None
    assert limiter.requests_used(USER) == 9999
    assert limiter.charge_action(USER, orders(40)) is None  # started under the cap
    assert limiter.requests_used(USER) == 10039
    error = limiter.charge_action(USER, orders(1))
    assert error is not None
    assert "(10039 > 9999)" in error


def test_cancels_get_min_cap_plus_100000_or_twice_the_cap() -> None:
    limiter = AddressLimiter()
    assert limiter.cancel_cap(USER) == 20000  # min(110000, 20000)
    limiter.add_volume(USER, 200000.0)
    assert limiter.cap(USER) == 210000
    assert limiter.cancel_cap(USER) == 310000  # min(310000, 420000)

    small = AddressLimiter()
    for _ in range(10000):
        assert small.charge(USER, 1, is_cancel=False) is None
    assert small.charge(USER, 1, is_cancel=False) is not None  # orders are limited...
    for i in range(10000):
        assert small.charge(USER, 1, is_cancel=True) is None, i  # ...cancels go on to 20000
    assert small.requests_used(USER) == 20000
    error = small.charge_action(USER, cancels(1))
    assert error is not None
    assert "(20000 > 19999)" in error
    assert small.charge(USER, 1, is_cancel=False) is not None


def test_a_limited_address_may_send_one_request_every_10_seconds() -> None:
    limiter = AddressLimiter(RateLimitConfig(address_initial_requests=3))
    for t in (0.0, 1.0, 2.0):
        assert limiter.charge(USER, 1, is_cancel=False, now=t) is None
    assert limiter.charge(USER, 1, is_cancel=False, now=5.0) is not None
    assert limiter.charge(USER, 1, is_cancel=False, now=11.99) is not None
    assert limiter.charge(USER, 1, is_cancel=False, now=12.0) is None  # 10 s after t=2
    assert limiter.requests_used(USER) == 4
    assert limiter.charge(USER, 1, is_cancel=False, now=21.0) is not None
    assert limiter.charge(USER, 1, is_cancel=False, now=22.0) is None
    # Without a time, no throttled allowance.
    assert limiter.charge(USER, 1, is_cancel=False) is not None


def test_addresses_are_separate_and_case_insensitive() -> None:
    limiter = AddressLimiter(RateLimitConfig(address_initial_requests=1))
    assert limiter.charge(USER.upper().replace("0X", "0x"), 1, is_cancel=False) is None
    assert limiter.charge(USER, 1, is_cancel=False) is not None
    assert limiter.charge("0x" + "1" * 40, 1, is_cancel=False) is None


def test_user_rate_limit_shape_matches_the_recording() -> None:
    recorded = fixture_json("info_responses.json")["info"]["userRateLimit"]["response"]
    limiter = AddressLimiter()
    cum_vlm = float(recorded["cumVlm"])
    limiter.add_volume(USER, cum_vlm)
    limiter.charge(USER, 36589831368, is_cancel=False)
    state = limiter.state(USER)
    assert set(state) == set(recorded)
    assert {k: type(v) for k, v in state.items()} == {k: type(v) for k, v in recorded.items()}
    assert state == recorded  # same figures, printed the same way


@pytest.mark.parametrize(
    ("volume", "text"),
    [
        (0.0, "0.0"),
        (42.0, "42.0"),
        (58293.48, "58293.48"),
        (1807.76, "1807.76"),
        (2854574.593578, "2854574.593578"),
        (170043721737.45, "170043721737.450012207"),
    ],
)
def test_volume_is_printed_as_the_venue_prints_cum_vlm(volume: float, text: str) -> None:
    assert format_volume(volume) == text


def test_fresh_address_state() -> None:
    assert AddressLimiter().state(USER) == {
        "cumVlm": "0.0",
        "nRequestsUsed": 0,
        "nRequestsCap": 10000,
    }


def test_disabled_address_limiter_admits_everything_but_still_counts() -> None:
    limiter = AddressLimiter(RateLimitConfig(enabled=False, address_initial_requests=2))
    for _ in range(5):
        assert limiter.charge_action(USER, orders(10), now=0.0) is None
    limiter.add_volume(USER, 100.0)
    assert limiter.state(USER) == {"cumVlm": "100.0", "nRequestsUsed": 50, "nRequestsCap": 102}


# --- WebSocket ------------------------------------------------------------------------------


def test_at_most_10_connections_per_ip() -> None:
    ws = WsLimits()
    conns = []
    for i in range(10):
        assert ws.can_connect(IP, now=float(i))
        conns.append(ws.connected(IP, now=float(i)))
    assert len(set(conns)) == 10
    assert ws.connections(IP) == 10
    assert not ws.can_connect(IP, now=10.0)
    assert not ws.can_connect(IP)
    assert ws.can_connect("10.0.0.2", now=10.0)
    ws.disconnected(conns[0])
    assert ws.can_connect(IP, now=10.0)
    ws.disconnected(conns[0])  # twice is harmless
    assert ws.connections(IP) == 9


def test_at_most_30_new_connections_per_minute_per_ip() -> None:
    ws = WsLimits()
    for i in range(30):  # each closed at once: never more than one open
        assert ws.can_connect(IP, now=i * 0.5), i
        ws.disconnected(ws.connected(IP, now=i * 0.5))
    assert ws.opened(IP, now=14.5) == 30
    assert ws.connections(IP) == 0
    assert not ws.can_connect(IP, now=59.9)
    assert ws.can_connect("10.0.0.2", now=59.9)
    assert ws.can_connect(IP, now=60.0)  # the t=0 connection left the window
    ws.connected(IP, now=60.0)
    assert not ws.can_connect(IP, now=60.4)
    assert ws.opened(IP, now=200.0) == 0
    assert ws.can_connect(IP, now=200.0)


def test_connection_ids_can_be_given_and_must_be_unique() -> None:
    ws = WsLimits()
    assert ws.connected(IP, conn_id=7) == 7
    with pytest.raises(ValueError, match="already registered"):
        ws.connected(IP, conn_id=7)
    with pytest.raises(KeyError):
        ws.subscribe("nope", "k")


def test_at_most_1000_subscriptions_across_the_ips_connections() -> None:
    ws = WsLimits()
    a, b = ws.connected(IP), ws.connected(IP)
    for i in range(600):
        assert ws.subscribe(a, f"trades:{i}") is None
    for i in range(400):
        assert ws.subscribe(b, f"l2Book:{i}") is None
    assert ws.subscriptions(IP) == 1000
    assert ws.subscribe(b, "l2Book:x") == "Cannot subscribe to more than 1000 channels."
    assert ws.subscribe(a, "trades:0") is None  # already held: no-op
    assert ws.subscriptions(IP) == 1000
    other = ws.connected("10.0.0.2")
    assert ws.subscribe(other, "trades:0") is None
    assert ws.unsubscribe(a, "trades:0")
    assert not ws.unsubscribe(a, "trades:0")
    assert ws.subscribe(b, "l2Book:x") is None
    ws.disconnected(a)
    assert ws.subscriptions(IP) == 401


def test_at_most_10_unique_users_across_user_specific_subscriptions() -> None:
    ws = WsLimits()
    a, b = ws.connected(IP), ws.connected(IP)
    users = [f"0x{i:040x}" for i in range(11)]
    for user in users[:10]:
        assert ws.subscribe(a, f"userFills:{user}", user) is None
    assert ws.users(IP) == 10
    assert ws.subscribe(b, f"userFills:{users[10]}", users[10]) == (
        "Cannot track more than 10 total users."
    )
    # Another channel for a user already tracked, in any case, and non-user channels, are fine.
    assert ws.subscribe(b, f"orderUpdates:{users[0]}", users[0].upper()) is None
    assert ws.subscribe(b, "allMids", None) is None
    assert ws.users(IP) == 10
    # The user stays tracked while any subscription names it.
    assert ws.unsubscribe(a, f"userFills:{users[0]}")
    assert ws.subscribe(b, f"userFills:{users[10]}", users[10]) is not None
    ws.disconnected(b)
    assert ws.users(IP) == 9
    assert ws.subscribe(a, f"userFills:{users[10]}", users[10]) is None


def test_at_most_2000_messages_per_minute_across_the_ips_connections() -> None:
    ws = WsLimits()
    a, b = ws.connected(IP), ws.connected(IP)
    for i in range(2000):
        assert ws.message_sent(a if i % 2 else b, now=i * 0.01), i
    assert ws.messages(IP, now=20.0) == 2000
    assert not ws.message_sent(a, now=20.0)
    assert ws.messages(IP, now=20.0) == 2000
    assert ws.message_sent(ws.connected("10.0.0.2"), now=20.0)
    assert ws.message_sent(a, now=60.0)  # the t=0 message left the window
    assert not ws.message_sent(b, now=60.0)
    assert ws.messages(IP, now=200.0) == 0
    assert ws.messages_error == "Cannot send more than 2000 messages per minute."


def test_at_most_100_inflight_posts_across_the_ips_connections() -> None:
    ws = WsLimits()
    a, b = ws.connected(IP), ws.connected(IP)
    for _ in range(60):
        assert ws.post_started(a)
    for _ in range(40):
        assert ws.post_started(b)
    assert ws.inflight_posts(IP) == 100
    assert not ws.post_started(a)
    assert ws.post_error(1234) == "too many pending post requests id=1234"
    ws.post_finished(b)
    assert ws.post_started(a)
    ws.disconnected(a)  # its 61 posts will never be answered
    assert ws.inflight_posts(IP) == 39
    ws.post_finished(a)  # late finish on a closed connection is ignored
    assert ws.inflight_posts(IP) == 39


def test_disabled_ws_limits_admit_everything_but_still_count() -> None:
    config = RateLimitConfig(enabled=False)
    ws = WsLimits(config)
    conns = [ws.connected(IP) for _ in range(150)]
    assert ws.can_connect(IP)
    assert ws.connections(IP) == 150
    for i in range(1100):
        assert ws.subscribe(conns[0], f"k{i}", f"0x{i:040x}") is None
    assert ws.subscriptions(IP) == 1100
    assert ws.users(IP) == 1100
    for _ in range(2500):
        assert ws.message_sent(conns[1], now=0.0)
        assert ws.post_started(conns[1])
    assert ws.messages(IP, now=0.0) == 2500
    assert ws.inflight_posts(IP) == 2500


def test_error_texts_follow_the_config() -> None:
    config = attrs.evolve(RateLimitConfig(), ws_max_subscriptions=2, ws_max_users=1)
    ws = WsLimits(config)
    conn = ws.connected(IP)
    assert ws.subscribe(conn, "a", "0x1") is None
    assert ws.subscribe(conn, "b", "0x2") == "Cannot track more than 1 total users."
    assert ws.subscribe(conn, "b") is None
    assert ws.subscribe(conn, "c") == "Cannot subscribe to more than 2 channels."
