"""The strategy task's pre-trade gate: a batch of intents is checked as the same intents one
at a time are (same orders through, same refusals counted, same trackers after)."""

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
from mm.model import Level as BookLevel
from mm.model import PlaceOrder, Side, Tif
from mm.strategies.runner import PretradeGate

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
        adapter=SimpleNamespace(bus=SimpleNamespace(latest=books.get)),
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
