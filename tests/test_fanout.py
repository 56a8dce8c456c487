"""The fan-out of fills and order events: every consumer sees every item, in order, never
dropped; a consumer that raises keeps none of the others from theirs, and carries on from the
next item once restarted."""

from __future__ import annotations

import pytest
import trio
import trio.testing
from hypothesis import given, settings
from hypothesis import strategies as st
from prometheus_client import CollectorRegistry

from mm.fanout import Fanout, consume, export_backlogs, queue_fills
from mm.ops.autonomy import AutonomyConfig, Reason
from mm.ops.health import Readings, assess


@settings(deadline=None)
@given(
    st.lists(st.integers(), max_size=200),
    st.lists(st.text(min_size=1, max_size=5), min_size=1, max_size=4, unique=True),
)
def test_every_consumer_sees_every_item_in_order(items: list[int], names: list[str]) -> None:
    async def main() -> dict[str, list[int]]:
        fanout = Fanout[int](names)
        seen: dict[str, list[int]] = {name: [] for name in names}
        async with trio.open_nursery() as nursery:
            for name in names:
                await nursery.start(consume, fanout.receiver(name), seen[name].append)
            for item in items:
                fanout.publish(item)  # never blocks, however many wait unread
            # At most the items not yet handed to a consumer already waiting for one.
            assert all(count <= len(items) for count in fanout.backlog().values())
            await trio.testing.wait_all_tasks_blocked()
            assert set(fanout.backlog().values()) == {0}
            nursery.cancel_scope.cancel()
        return seen

    assert trio.run(main) == {name: items for name in names}


async def test_a_consumer_that_raises_stops_none_of_the_others() -> None:
    """Risk sees the fill the portfolio failed on, and the portfolio, restarted as its
    supervisor would, carries on from the next one."""
    fanout = Fanout[int](("portfolio", "risk"))
    portfolio, risk = fanout.receiver("portfolio"), fanout.receiver("risk")
    applied: list[int] = []
    judged: list[int] = []

    def apply(fill: int) -> None:
        if fill == 2:
            raise ValueError("a bug in the portfolio")
        applied.append(fill)

    failures: list[BaseException] = []

    async def supervised_portfolio() -> None:
        while True:  # restarted after each crash, on the same channel
            try:
                await consume(portfolio, apply)
            except ValueError as error:
                failures.append(error)

    async with trio.open_nursery() as nursery:
        nursery.start_soon(supervised_portfolio)
        await nursery.start(consume, risk, judged.append)
        for fill in (1, 2, 3, 4):
            fanout.publish(fill)
        await trio.testing.wait_all_tasks_blocked()
        nursery.cancel_scope.cancel()
    assert judged == [1, 2, 3, 4]
    assert applied == [1, 3, 4]
    assert [str(error) for error in failures] == ["a bug in the portfolio"]


def test_each_consumer_has_one_reader_and_one_name() -> None:
    fanout = Fanout[int](("journal",))
    fanout.receiver("journal")
    with pytest.raises(KeyError, match="no consumer 'journal' left"):
        fanout.receiver("journal")
    with pytest.raises(ValueError, match="named twice"):
        Fanout[int](("risk", "risk"))
    with pytest.raises(ValueError, match="at least one consumer"):
        Fanout[int](())


def test_a_consumer_that_falls_behind_shows_in_its_backlog_fill_and_metric() -> None:
    """Unread items per consumer, against full_at, and as mm_fanout_backlog when scraped; the
    queue-depth reading autonomy takes names the consumer that is behind."""
    registry = CollectorRegistry()
    fills = Fanout[int](("portfolio", "risk"), full_at=4)
    events = Fanout[int](("journal",))
    export_backlogs(registry, {"fills": fills, "order_events": events})
    risk = fills.receiver("risk")
    for item in range(4):
        fills.publish(item)
    risk.receive_nowait()  # risk keeps up (one read), the portfolio reads nothing
    assert fills.backlog() == {"portfolio": 4, "risk": 3}
    assert fills.fill() == {"portfolio": 1.0, "risk": 0.75}

    def sample(channel: str, consumer: str) -> float | None:
        labels = {"channel": channel, "consumer": consumer}
        return registry.get_sample_value("mm_fanout_backlog", labels)

    assert sample("fills", "portfolio") == 4
    assert sample("fills", "risk") == 3
    assert sample("order_events", "journal") == 0
    readings = {name: read() for name, read in queue_fills({"fills": fills}).items()}
    assert readings == {"fills.portfolio": 1.0, "fills.risk": 0.75}
    triggers = assess(Readings(queue_fill=readings), AutonomyConfig())
    assert [(t.reason, t.values["queue"]) for t in triggers] == [
        (Reason.QUEUE_DEPTH_EXCEEDED, "fills.portfolio")
    ]
    with pytest.raises(ValueError, match="full_at"):
        Fanout[int](("journal",), full_at=0)
