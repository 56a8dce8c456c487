"""The strategy task's pre-trade gate: a batch of intents is checked as the same intents one
at a time are (same orders through, same refusals counted, same trackers after); the notional
limit holds in USD on a pair quoted in BTC, valued from the fresh BTC-USDT book, and refuses
while that book is missing or stale."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import trio
import trio.testing
from hypothesis import given
from hypothesis import strategies as st
from prometheus_client import CollectorRegistry

from mm.book import Book
from mm.execution.permissions import Level, Permission
from mm.execution.pretrade import PretradeConfig
from mm.model import Instrument, PlaceOrder, Side, Tif
from mm.model import Level as BookLevel
from mm.portfolio import Portfolio
from mm.strategies.runner import PretradeGate
from tests.strategies.triarb.spot import instrument

MIDS = {"BTC": 100.0, "ETH": 10.0}


def trading(reduce_only: bool) -> Any:
    """What the gate reads of the strategy task: books, the board, live orders, positions."""
    books = {
        coin: Book(coin, 0, (BookLevel(mid - 0.5, 1.0),), (BookLevel(mid + 0.5, 1.0),))
        for coin, mid in MIDS.items()
    }
    level = Level.REDUCE_ONLY if reduce_only else Level.OPEN
    return SimpleNamespace(
        registry=CollectorRegistry(),
        adapter=SimpleNamespace(
            bus=SimpleNamespace(latest=books.get), coins=tuple(MIDS), stale_coins=list
        ),
        # Perpetuals quoted in USDC, as on Hyperliquid: their quote is only ever a quote.
        portfolio=Portfolio(MIDS, lambda coin: instrument(f"{coin}-USDC")),
        permission=lambda coin: Permission(level, "test" if reduce_only else None),
        dispatcher=SimpleNamespace(registry=SimpleNamespace(live_count=lambda: 3)),
        positions=SimpleNamespace(position=lambda coin: 0.5 if coin == "BTC" else -2.0),
    )


ORDER = st.builds(
    lambda coin, side, away, sz, n: PlaceOrder(
        coin, side, MIDS[coin] * (1 + away), sz, Tif.ALO, f"0x{n:032x}"
    ),
    st.sampled_from(["BTC", "ETH"]),
    st.sampled_from(list(Side)),
    st.sampled_from([-0.2, -0.01, 0.0, 0.01, 0.2]),
    st.sampled_from([0.1, 1.0, 5.0]),
    st.integers(0, 3),
)


@given(
    batches=st.lists(st.tuples(st.lists(ORDER, max_size=5), st.integers(0, 3)), max_size=6),
    reduce_only=st.booleans(),
    burst=st.integers(1, 6),
)
def test_a_batch_is_checked_as_its_orders_one_at_a_time(
    batches: list[tuple[list[PlaceOrder], int]], reduce_only: bool, burst: int
) -> None:
    config = PretradeConfig(
        orders_per_second=2.0, burst=burst, duplicate_window_s=0.5, max_open_orders=6
    )

    async def main() -> None:
        batched = PretradeGate(config, trading(reduce_only))
        single = PretradeGate(config, trading(reduce_only))
        for orders, later in batches:
            await trio.sleep(later * 0.2)
            one_by_one = [order for order in orders if single.allow(order)]
            assert batched.allowed(orders) == one_by_one
            assert batched.log.counts == single.log.counts
            assert len(batched.recent) == len(single.recent)
            if single.throttle is None:  # nothing checked yet
                assert batched.throttle is None
            else:
                assert batched.throttle is not None
                assert batched.throttle.tokens == single.throttle.tokens

    trio.run(main, clock=trio.testing.MockClock(autojump_threshold=0))


# --- the notional limit in USD on a pair quoted in BTC ---------------------------------------

SPOT = ("BTC-USDT", "ETH-USDT", "ETH-BTC")  # config.triarb.toml's pairs
SPOT_MIDS = {"BTC-USDT": 60_000.0, "ETH-USDT": 3_000.0, "ETH-BTC": 0.05}


def spot_trading(mids: dict[str, float], stale: tuple[str, ...] = ()) -> Any:
    """The gate's view of a spot account trading the triangle's pairs: books at ``mids`` (a
    pair missing has no book), ``stale`` flagged by the feed."""
    books = {
        coin: Book(coin, 0, (BookLevel(mid * 0.9999, 1.0),), (BookLevel(mid * 1.0001, 1.0),))
        for coin, mid in mids.items()
    }
    return SimpleNamespace(
        registry=CollectorRegistry(),
        adapter=SimpleNamespace(
            bus=SimpleNamespace(latest=books.get), coins=SPOT, stale_coins=lambda: list(stale)
        ),
        portfolio=Portfolio(SPOT, instrument),
        permission=lambda coin: Permission(Level.OPEN, None),
        dispatcher=SimpleNamespace(registry=SimpleNamespace(live_count=lambda: 0)),
        positions=SimpleNamespace(position=lambda coin: 0.0),
    )


def eth_btc(sz: float, n: int = 0) -> PlaceOrder:
    return PlaceOrder("ETH-BTC", Side.BUY, 0.05, sz, Tif.IOC, f"0x{n:032x}")


def refusals(mids: dict[str, float], stale: tuple[str, ...], *orders: PlaceOrder) -> list[Any]:
    async def main() -> list[Any]:
        gate = PretradeGate(PretradeConfig(), spot_trading(mids, stale))
        return [gate.refusal(order) for order in orders]

    return trio.run(main, clock=trio.testing.MockClock())


def test_a_btc_quoted_order_is_held_to_the_limit_in_usd() -> None:
    # The shipped 10,000 USD: 3.3 ETH at 0.05 BTC is 0.165 BTC, 9,900 USD at 60,000; 3.4 ETH
    # is 10,200 USD (as 0.17 "USD" in the quote it passed).
    small, large = refusals(SPOT_MIDS, (), eth_btc(3.3, 1), eth_btc(3.4, 2))
    assert small is None
    assert large is not None
    assert large.startswith("pre-trade check max_notional: notional 102")
    assert "BTC at 60000.0 USD" in large
    # The USDT pairs as they were: price x size.
    (usdt,) = refusals(
        SPOT_MIDS, (), PlaceOrder("ETH-USDT", Side.BUY, 3_000.0, 3.4, Tif.IOC, "0x" + "3" * 32)
    )
    assert usdt == "pre-trade check max_notional: notional 10200.0 > 10000.0"


def test_a_btc_quoted_order_is_refused_while_btc_has_no_fresh_value() -> None:
    without_btc_usdt = {coin: mid for coin, mid in SPOT_MIDS.items() if coin != "BTC-USDT"}
    for mids, stale in ((without_btc_usdt, ()), (SPOT_MIDS, ("BTC-USDT",))):
        (refusal,) = refusals(mids, stale, eth_btc(0.01))
        assert refusal is not None
        assert "the USD value of BTC is not known" in refusal
    # A stale pair that does not value BTC changes nothing.
    assert refusals(SPOT_MIDS, ("ETH-USDT",), eth_btc(0.01)) == [None]


def test_an_order_of_a_symbol_whose_instrument_is_not_read_is_refused() -> None:
    trading = spot_trading(SPOT_MIDS)

    def unlisted(coin: str) -> Instrument:
        raise KeyError(coin)

    trading.portfolio = Portfolio(SPOT, unlisted)

    async def main() -> str | None:
        return PretradeGate(PretradeConfig(), trading).refusal(eth_btc(0.01))

    refusal = trio.run(main, clock=trio.testing.MockClock())
    assert refusal is not None
    assert "the USD value of the quote of ETH-BTC (its instrument not read) is not" in refusal
