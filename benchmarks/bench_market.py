"""Benchmark: the synthetic market's step (mid move, the liquidity provider's re-quote, takers).

Run with ``python benchmarks/bench_market.py [--seconds S] [--repeat R] [--seed S] [--quick]``
(``--quick``: 2 s of market once, to check it runs). It steps
a four-coin market (the shipped market config but for ``taker_a = 4``, the tests' pace) every
100 ms for ``--seconds`` of market time and prints the median real time per market second, next
to a baseline measured in the same run: the same market with its takers' orders sent the way
they were before the engine took ticks and lots (each price and size printed to the venue's
strings and parsed back, each price rounded through its exact decimal form). Both runs must
produce the same tape, which it checks. Since the liquidity provider's ladder rests through
``Engine.rest_system`` (cf4b57e), it takes neither path: the baseline differs from the typed
run only in the takers' orders, so the speed-up reads smaller than it did before that change.
"""

from __future__ import annotations

import argparse
import random
import statistics
import time
from collections.abc import Sequence
from decimal import Decimal
from typing import Any

from mm.venues.hyperliquid import numbers
from mm.venues.sim.assets import AssetSpec
from mm.venues.sim.config import MarketConfig
from mm.venues.sim.engine import Engine, PlaceResult
from mm.venues.sim.market import FLOW_USER, LIQUIDITY_USER, SyntheticMarket
from mm.venues.sim.universe import UNIVERSE, specs_for

COINS = ("BTC", "ETH", "SOL", "DOGE")
STEP_MS = 100


class StringRoundTrip(Engine):
    """The baseline: every order's price and size through the wire's strings, as before."""

    def place_ticks(
        self, user: str, asset: int, is_buy: bool, px: int, lots: int, now: int, **kw: Any
    ) -> PlaceResult:
        spec = self.specs[asset]
        parsed_px = spec.parse_px(spec.px_str(px))
        parsed_lots = spec.parse_sz(spec.sz_str(lots))
        assert parsed_px is not None
        assert parsed_lots is not None
        return super().place_ticks(user, asset, is_buy, parsed_px, parsed_lots, now, **kw)


def exact_round_px(spec: Any, price: float, *, up: bool) -> int:
    exact: Decimal = numbers.exact_units(price, spec.px_decimals)
    return max(numbers.round_ticks(exact, spec.px_decimals, up=up), 1)


def run(engine_type: type[Engine], seconds: float, seed: int) -> tuple[float, str]:
    fast_round_px = AssetSpec.round_px
    if engine_type is StringRoundTrip:  # the baseline rounds through the exact decimal
        AssetSpec.round_px = exact_round_px  # type: ignore[method-assign,assignment]
    try:
        return _run(engine_type, seconds, seed)
    finally:
        AssetSpec.round_px = fast_round_px  # type: ignore[method-assign]


def _run(engine_type: type[Engine], seconds: float, seed: int) -> tuple[float, str]:
    engine = engine_type(specs_for(COINS), system_users=(LIQUIDITY_USER, FLOW_USER))
    start = {spec.index: UNIVERSE[spec.name].start_px for spec in engine.specs}
    market = SyntheticMarket(engine, MarketConfig(taker_a=4.0), start, random.Random(seed))
    market.seed_liquidity(0)
    steps = round(seconds * 1000 / STEP_MS)
    began = time.perf_counter()
    for index in range(1, steps + 1):
        market.step(index * STEP_MS, STEP_MS / 1000)
        if index % 10 == 0:
            engine.events.clear()
    elapsed = time.perf_counter() - began
    tape = repr([(book.levels(True, 30), book.levels(False, 30)) for book in engine.books])
    return elapsed / seconds, tape + repr(engine.last_trade_px) + str(engine._next_oid)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--quick", action="store_true", help="2 s of market once")
    args = parser.parse_args(argv)
    if args.quick:
        args.seconds, args.repeat = 2.0, 1
    figures: dict[str, list[float]] = {"typed": [], "baseline": []}
    tapes = set()
    for _ in range(args.repeat):
        for name, engine_type in (("baseline", StringRoundTrip), ("typed", Engine)):
            per_second, tape = run(engine_type, args.seconds, args.seed)
            figures[name].append(per_second)
            tapes.add(tape)
    assert len(tapes) == 1, "the typed path changed the market's tape"
    baseline = statistics.median(figures["baseline"])
    typed = statistics.median(figures["typed"])
    print(f"{len(COINS)} coins, {args.seconds:g} s of market per run, median of {args.repeat}")
    print(f"  baseline (takers' strings, exact):  {baseline * 1000:7.2f} ms per market second")
    print(f"  typed (ticks and lots):             {typed * 1000:7.2f} ms per market second")
    print(f"  speed-up: {baseline / typed:.2f}x (same tape)")


if __name__ == "__main__":
    main()
