"""Tests for the pre-trade checks: each check's boundaries, throttle, duplicates, logging."""

from __future__ import annotations

import math
from functools import partial

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mm.execution.pretrade import (
    CHECKS,
    CheckName,
    PretradeConfig,
    PretradeContext,
    RecentOrders,
    Rejection,
    RejectionLog,
    TokenBucket,
    check,
)
from mm.model import PlaceOrder, Side, Tif
from mm.settings import ConfigError, structure_section

CONFIG = PretradeConfig(
    max_order_notional_usd=150.0,
    price_collar=0.05,
    max_open_orders=3,
    duplicate_window_s=1.0,
    orders_per_second=1e6,
    burst=1_000_000,
    log_quiet_s=10.0,
)


def order(
    px: float = 100.0, sz: float = 1.0, side: Side = Side.BUY, coin: str = "ETH", n: int = 0
) -> PlaceOrder:
    return PlaceOrder(coin, side, px, sz, Tif.ALO, f"0x{n:032x}")


def context(
    config: PretradeConfig = CONFIG,
    *,
    mid: float | None = 100.0,
    open_orders: int = 0,
    reduce_only: bool = False,
    position: float = 0.0,
    now: float = 0.0,
    quote: str = "USDC",
    quote_usd: float | None = 1.0,
) -> PretradeContext:
    return PretradeContext(
        mid=mid,
        open_orders=open_orders,
        reduce_only=reduce_only,
        position=position,
        recent=RecentOrders(config.duplicate_window_s),
        throttle=TokenBucket.from_config(config, now),
        now=now,
        quote=quote,
        quote_usd=quote_usd,
    )


def rejected(o: PlaceOrder, ctx: PretradeContext, config: PretradeConfig = CONFIG) -> str | None:
    result = check(o, ctx, config)
    return None if result is None else result.check.value


def test_defaults_and_config_section() -> None:
    default = structure_section({}, PretradeConfig, "pretrade")
    assert default == PretradeConfig()
    parsed = structure_section(
        {"max_order_notional_usd": 300, "burst": 5}, PretradeConfig, "pretrade"
    )
    assert parsed.max_order_notional_usd == 300.0
    assert parsed.burst == 5
    with pytest.raises(ConfigError, match=r"pretrade\.price_collar"):
        structure_section({"price_collar": 1.5}, PretradeConfig, "pretrade")
    with pytest.raises(ConfigError, match=r"pretrade\.max_open_orders"):
        structure_section({"max_open_orders": 0}, PretradeConfig, "pretrade")
    assert [c.value for c in CHECKS] == [
        "closed",
        "invalid",
        "max_notional",
        "price_collar",
        "max_open_orders",
        "reduce_only",
        "duplicate",
        "throttle",
    ]


def test_a_plain_order_passes() -> None:
    assert check(order(), context(), CONFIG) is None


@pytest.mark.parametrize(
    ("px", "sz"), [(0.0, 1.0), (-1.0, 1.0), (100.0, 0.0), (math.nan, 1.0), (100.0, math.inf)]
)
def test_invalid_price_or_size(px: float, sz: float) -> None:
    assert rejected(order(px=px, sz=sz), context()) == "invalid"


def test_size_is_limited_by_notional_whatever_the_price() -> None:
    # 200 coins of a $0.5 coin are $100 (passes); 2.001 coins of a $100 coin are not.
    assert rejected(order(px=0.5, sz=200.0), context(mid=0.5)) is None
    assert rejected(order(px=100.0, sz=1.51), context(mid=100.0)) == "max_notional"


def test_max_notional_boundary() -> None:
    assert rejected(order(px=100.0, sz=1.5), context()) is None  # exactly 150
    assert rejected(order(px=100.0, sz=1.51), context()) == "max_notional"


# ETH-BTC at 0.05 BTC with BTC at 60,000 USD: one ETH is 3,000 USD, so 0.05 ETH is the 150.
BTC_USD = 60_000.0


def btc_quoted() -> PretradeContext:
    return context(mid=0.05, quote="BTC", quote_usd=BTC_USD)


def test_a_btc_quoted_notional_is_limited_in_usd() -> None:
    assert rejected(order(px=0.05, sz=0.049, coin="ETH-BTC"), btc_quoted()) is None  # 147 USD
    over = check(order(px=0.05, sz=0.051, coin="ETH-BTC"), btc_quoted(), CONFIG)
    assert over is not None
    assert over.check is CheckName.MAX_NOTIONAL
    assert "BTC at 60000.0 USD" in over.detail
    assert "> 150.0" in over.detail
    # Read as if the quote were USD, 0.1 BTC of notional (6,000 USD) would pass a 150 limit.
    assert rejected(order(px=0.05, sz=2.0, coin="ETH-BTC"), btc_quoted()) == "max_notional"


def test_a_quote_worth_less_than_a_dollar_passes_what_its_usd_value_allows() -> None:
    # 200 KCS of notional at 0.5 USD are 100 USD: under the 150 (in KCS it is 200, over).
    kcs = partial(context, quote="KCS", quote_usd=0.5)
    assert rejected(order(px=100.0, sz=2.0, coin="X-KCS"), kcs()) is None
    assert rejected(order(px=100.0, sz=3.01, coin="X-KCS"), kcs()) == "max_notional"


@pytest.mark.parametrize("quote_usd", [None, 0.0, -1.0, math.nan, math.inf])
def test_an_unknown_quote_value_refuses_the_order_naming_the_quote(
    quote_usd: float | None,
) -> None:
    # Even a notional far under the limit whatever BTC is worth: it cannot be checked.
    ctx = context(mid=0.05, quote="BTC", quote_usd=quote_usd)
    result = check(order(px=0.05, sz=1e-6, coin="ETH-BTC"), ctx, CONFIG)
    assert result is not None
    assert result.check is CheckName.MAX_NOTIONAL
    assert "USD value of BTC is not known" in result.detail
    assert len(ctx.recent) == 0
    assert ctx.throttle.tokens == CONFIG.burst


@given(
    px=st.floats(1e-6, 1e6),
    sz=st.floats(1e-6, 1e6),
    quote_usd=st.one_of(st.just(1.0), st.floats(1e-4, 1e5)),
)
def test_the_notional_check_is_price_times_size_times_the_quote_value(
    px: float, sz: float, quote_usd: float
) -> None:
    ctx = context(mid=px, quote="Q", quote_usd=quote_usd)
    over = px * sz * quote_usd > CONFIG.max_order_notional_usd
    assert (rejected(order(px=px, sz=sz), ctx) == "max_notional") is over
    if quote_usd == 1.0:  # a USD quote: the check as it was, on price x size alone
        assert over is (px * sz > CONFIG.max_order_notional_usd)


def test_price_collar_boundary() -> None:
    assert rejected(order(px=105.0, sz=1.0), context()) is None
    assert rejected(order(px=95.0, sz=1.0, side=Side.SELL), context()) is None
    assert rejected(order(px=105.01, sz=1.0), context()) == "price_collar"
    assert rejected(order(px=94.99, sz=1.0), context()) == "price_collar"


@pytest.mark.parametrize("mid", [None, 0.0, math.nan])
def test_price_collar_without_a_mid(mid: float | None) -> None:
    result = check(order(), context(mid=mid), CONFIG)
    assert result is not None
    assert result.check is CheckName.PRICE_COLLAR
    assert "no usable mid" in result.detail


def test_max_open_orders_boundary() -> None:
    assert rejected(order(), context(open_orders=2)) is None
    assert rejected(order(), context(open_orders=3)) == "max_open_orders"


@pytest.mark.parametrize(
    ("position", "side", "sz", "expected"),
    [
        (1.5, Side.SELL, 1.0, None),  # reduces a long
        (1.5, Side.SELL, 1.5, None),  # closes it exactly
        (1.5, Side.SELL, 1.6, "reduce_only"),  # would flip it
        (1.5, Side.BUY, 0.1, "reduce_only"),  # would grow it
        (-1.5, Side.BUY, 1.0, None),  # reduces a short
        (-1.5, Side.SELL, 0.1, "reduce_only"),
        (0.0, Side.BUY, 0.1, "reduce_only"),  # flat: nothing to reduce
        (0.0, Side.SELL, 0.1, "reduce_only"),
    ],
)
def test_reduce_only_mode(position: float, side: Side, sz: float, expected: str | None) -> None:
    ctx = context(reduce_only=True, position=position, mid=50.0)
    assert rejected(order(px=50.0, side=side, sz=sz), ctx) == expected


def test_reduce_only_off_allows_growth() -> None:
    assert rejected(order(side=Side.BUY, sz=1.0), context(position=1.5)) is None


def test_duplicate_window() -> None:
    ctx = context()
    assert check(order(n=1), ctx, CONFIG) is None
    ctx.now = 0.999
    assert rejected(order(n=2), ctx) == "duplicate"  # same coin/side/px/sz, new cloid
    # Any difference is not a duplicate.
    assert rejected(order(n=3, px=100.5), ctx) is None
    assert rejected(order(n=4, sz=0.5), ctx) is None
    assert rejected(order(n=5, side=Side.SELL), ctx) is None
    assert rejected(order(n=6, coin="BTC"), ctx) is None
    ctx.now = 1.0  # exactly the window after the first: no longer a duplicate
    assert rejected(order(n=7), ctx) is None
    ctx.now = 1.5
    assert rejected(order(n=8), ctx) == "duplicate"  # of the one just passed at 1.0


def test_rejected_orders_are_not_recorded() -> None:
    ctx = context()
    assert rejected(order(sz=1.6), ctx) == "max_notional"
    assert len(ctx.recent) == 0
    assert ctx.throttle.tokens == CONFIG.burst
    assert rejected(order(sz=1.0), ctx) is None
    assert len(ctx.recent) == 1


def test_throttle_burst_then_rate() -> None:
    config = PretradeConfig(orders_per_second=2.0, burst=3, duplicate_window_s=0.0)
    ctx = context(config)
    results = [rejected(order(n=i), ctx, config) for i in range(4)]
    assert results == [None, None, None, "throttle"]  # the burst, then empty
    ctx.now = 0.49
    assert rejected(order(), ctx, config) == "throttle"  # 0.98 tokens
    ctx.now = 0.5
    assert rejected(order(), ctx, config) is None  # one token at 2/s
    assert rejected(order(), ctx, config) == "throttle"
    ctx.now = 100.0  # refill caps at the burst
    assert [rejected(order(), ctx, config) for _ in range(4)] == [None, None, None, "throttle"]


def test_throttle_rejection_detail() -> None:
    config = PretradeConfig(orders_per_second=1.0, burst=1, duplicate_window_s=0.0)
    ctx = context(config)
    assert check(order(), ctx, config) is None
    result = check(order(), ctx, config)
    assert result == Rejection(CheckName.THROTTLE, "over 1.0/s (burst 1)")


def test_token_bucket() -> None:
    bucket = TokenBucket(rate=4.0, burst=2, now=10.0)
    assert bucket.try_take(10.0)
    assert bucket.try_take(10.0)
    assert not bucket.try_take(10.0)
    assert bucket.available(10.125) == pytest.approx(0.5)
    assert bucket.try_take(10.25)
    assert bucket.available(9.0) == pytest.approx(0.0)  # time going back adds nothing
    assert bucket.available(1000.0) == 2
    with pytest.raises(ValueError, match="token bucket"):
        TokenBucket(rate=0.0, burst=1, now=0.0)


def test_check_order_is_first_failure() -> None:
    # Too large in notional and outside the collar: the notional check names it.
    assert rejected(order(px=200.0, sz=5.0), context(open_orders=10)) == "max_notional"


def test_rejection_log_once_per_burst() -> None:
    log = RejectionLog(quiet_s=10.0)
    collar = Rejection(CheckName.PRICE_COLLAR, "x")
    throttle = Rejection(CheckName.THROTTLE, "y")
    assert log.record(collar, 0.0) is True  # first ever
    assert log.record(collar, 1.0) is False
    assert log.record(collar, 10.5) is False  # 9.5 s after the previous one: same burst
    assert log.suppressed(CheckName.PRICE_COLLAR) == 2
    assert log.record(throttle, 11.0) is True  # per check
    assert log.record(collar, 20.5) is True  # exactly the quiet period after the last
    assert log.suppressed(CheckName.PRICE_COLLAR) == 0
    assert log.record(collar, 20.6) is False
    assert log.counts[CheckName.PRICE_COLLAR] == 5
    assert log.counts[CheckName.THROTTLE] == 1
    assert log.counts[CheckName.DUPLICATE] == 0


def test_closed_refuses_every_intent_before_any_other_check() -> None:
    """A closed session phase or HALT refuses even an order that would pass everything else,
    and spends nothing: no throttle token, no duplicate record."""
    shared = context()
    shared.closed = "session phase closed"
    good = order()
    result = check(good, shared, CONFIG)
    assert result == Rejection(CheckName.CLOSED, "session phase closed")
    assert check(order(px=math.nan), shared, CONFIG) == result
    assert shared.throttle.tokens == CONFIG.burst  # nothing spent
    shared.closed = None
    assert rejected(good, shared) is None  # the same order passes once open
    assert rejected(good, shared) == "duplicate"  # and only now was it recorded
