"""The quote ladder before issue 16's per-tick cuts, verbatim but for names: the reference that
``tests/strategies/market_maker/test_ladder.py`` holds ``build_ladder`` to."""

from __future__ import annotations

from collections.abc import Collection

from mm.model import DesiredOrder, Instrument, Side
from mm.strategies.market_maker.ladder import LadderConfig, level_size


def _reference_side_ticks(
    top: float,
    limit: int | None,
    side: Side,
    config: LadderConfig,
    levels: int,
    instrument: Instrument,
) -> list[int | None]:
    """Valid tick prices per level (None where no valid price exists), strictly monotone."""
    up = side is Side.SELL
    direction = 1 if up else -1
    top_ticks = instrument.price_ticks(top, up=up)
    step = instrument.tick_step(top_ticks)
    out: list[int | None] = []
    previous: int | None = None
    for level in range(levels):
        if config.spacing_mode == "ticks":
            raw = top_ticks + direction * round(config.spacing * level) * step
            ticks = instrument.round_ticks(raw, up=up) if raw > 0 else 0
        else:
            raw_px = top * (1.0 + direction * config.spacing * level / 10_000.0)
            ticks = instrument.price_ticks(raw_px, up=up) if raw_px > 0 else 0
        if limit is not None:  # never at or through the opposite best
            if up and ticks <= limit:
                ticks = instrument.round_ticks(limit + 1, up=True)
            elif not up and ticks >= limit:
                ticks = instrument.round_ticks(limit - 1, up=False)
        if previous is not None:  # strictly away from the previous level
            if up and ticks <= previous:
                ticks = instrument.round_ticks(previous + 1, up=True)
            elif not up and ticks >= previous:
                ticks = instrument.round_ticks(previous - 1, up=False)
        if ticks <= 0:
            out.extend([None] * (levels - level))
            break
        out.append(ticks)
        previous = ticks
    return out


def reference_build_ladder(
    bid: float | None,
    ask: float | None,
    instrument: Instrument,
    config: LadderConfig,
    *,
    levels: int | None = None,
    sides: Collection[Side] = (Side.BUY, Side.SELL),
    market_bid: float | None = None,
    market_ask: float | None = None,
    base_size: float | None = None,
) -> list[DesiredOrder]:
    """The desired orders, bids first (top down) then asks (top up).

    ``bid``/``ask`` are the top prices wanted (None skips a side); ``levels`` overrides the
    config's count (the quota tier's ladder density); ``sides`` restricts to e.g. the
    inventory-reducing side. ``market_bid``/``market_ask`` are the book's best prices, which our
    levels must not cross either. ``base_size`` overrides the config's level-0 size (the
    strategy's order size at the current mid), without a new config per quote.
    """
    count = config.levels if levels is None else levels
    if count <= 0:
        return []
    min_notional = max(config.min_notional, instrument.min_notional)
    ask_caps = [p for p in (ask, market_ask) if p is not None and p > 0]
    bid_caps = [p for p in (bid, market_bid) if p is not None and p > 0]
    # Limits in ticks: a bid stays strictly below the exact lowest ask, an ask strictly above
    # the exact highest bid (ceil / floor of the exact value keeps the strict inequality).
    bid_limit = instrument.price_ticks(min(ask_caps), up=True) if ask_caps else None
    ask_limit = instrument.price_ticks(max(bid_caps), up=False) if bid_caps else None
    # Each level's size on the lot grid, worked out once for both sides: None when it rounds
    # to nothing or below the instrument's minimum size.
    sizes: list[float | None] = []
    for level in range(count):
        raw = level_size(config, level, base_size)
        lots = instrument.size_lots(raw) if 0.0 < raw < float("inf") else 0
        rounded = instrument.lots_size(lots) if lots > 0 else 0.0
        sizes.append(None if lots <= 0 or instrument.size_below_minimum(rounded) else rounded)
    orders: list[DesiredOrder] = []
    for side, top, limit in ((Side.BUY, bid, bid_limit), (Side.SELL, ask, ask_limit)):
        if side not in sides or top is None or not 0.0 < top < float("inf"):
            continue
        for level, ticks in enumerate(
            _reference_side_ticks(top, limit, side, config, count, instrument)
        ):
            if ticks is None:
                break
            if side is Side.BUY and limit is not None and ticks >= limit:
                break
            sz = sizes[level]
            if sz is None:
                continue
            px = instrument.ticks_price(ticks)
            if px * sz < min_notional:
                continue
            orders.append(DesiredOrder(side=side, px=px, sz=sz, level=level))
    return orders
