"""A malformed frame on the user stream is counted and skipped; trading goes on (issue 13, 9).

With the shipped config.toml on virtual time. The simulator pushes, on the service's own user
connection, a ``user`` frame of about 2 KB whose fill has no ``tid`` and whose ``hash`` is an
array nested 1,000 deep (orjson accepts up to 1,024 levels). Computing the fill's surrogate id
stringified that value and raised ``RecursionError``, which crashed the user feed child (and
with it the order client on the same connection). Now the frame is one malformed frame: counted
by the user stream and in ``mm_feed_malformed_messages_total{feed="user"}``, and skipped, with
no restart, no resync and the service still quoting and filling.
"""

from __future__ import annotations

from pathlib import Path

import orjson
import trio

from mm.app import Service
from supervisors.status import walk
from tests.e2e.virtual import resting_sides, shipped_service, venue, wait_for

DEPTH = 1_000
NESTED = "[" * DEPTH + "]" * DEPTH
HASH = "hash goes here"


def nested_fill_frame(coin: str) -> str:
    """A ``user`` frame with one fill without ``tid`` whose ``hash`` nests DEPTH arrays."""
    fill = {
        "coin": coin, "px": "100.0", "sz": "0.001", "side": "B", "time": 1,
        "startPosition": "0.0", "dir": "Open Long", "closedPnl": "0.0", "hash": HASH, "oid": 1,
        "crossed": False, "fee": "0.0",
    }  # fmt: skip
    frame = orjson.dumps({"channel": "user", "data": {"fills": [fill]}}).decode()
    text = frame.replace(orjson.dumps(HASH).decode(), NESTED)
    orjson.loads(text)  # a frame orjson accepts, as the service's socket reader does
    return text


def fills(service: Service) -> int:
    positions = service.trading.positions.snapshot({})
    return sum(
        positions[coin]["fills_buy"] + positions[coin]["fills_sell"]
        for coin in service.config.strategy.symbols
    )


def quoting_both_sides(service: Service) -> bool:
    sides = resting_sides(service)
    return all(sides.get(coin) == {"B", "A"} for coin in service.config.strategy.symbols)


def restarts(service: Service) -> dict[str, int]:
    return {status.path: status.restarts for status in walk(service.root.status())}


def malformed_metric(service: Service, feed: str) -> float:
    value = service.registry.get_sample_value("mm_feed_malformed_messages_total", {"feed": feed})
    return value or 0.0


async def test_a_deeply_nested_user_frame_is_counted_and_skipped_while_trading_goes_on(
    tmp_path: Path, autojump_clock: trio.abc.Clock
) -> None:
    async with shipped_service(tmp_path / "run") as service:
        await wait_for(lambda: quoting_both_sides(service) and fills(service) > 0, within=120.0)
        stream = service.adapter.user_stream
        assert stream is not None
        before = restarts(service)
        resyncs = stream.resyncs
        sim = venue(service)
        account = service.adapter.account.lower()
        sessions = [s for s in sim.sessions if ("userEvents", account) in s.keys]
        assert len(sessions) == 1, "the service's user connection, subscribed to its events"
        frame = nested_fill_frame(service.config.strategy.symbols[0])
        assert sessions[0].push(frame, "user")

        await wait_for(lambda: stream.malformed_frames == 1, within=5.0, poll=0.01)
        filled = fills(service)
        await wait_for(lambda: fills(service) > filled, within=120.0)
        await wait_for(lambda: quoting_both_sides(service), within=15.0)

        assert service.adapter.user_stream is stream  # the same child: it never restarted
        assert restarts(service) == before
        assert stream.resyncs == resyncs
        assert stream.synced.is_set()
        await wait_for(lambda: malformed_metric(service, "user") == 1.0, within=3.0)
        status = service.status()
        assert status["healthy"], status["problems"]
        assert status["killswitch"]["tripped"] is False
