"""Quote ladder: several valid levels per side from a top bid and ask.

Prices are worked in the instrument's integer ticks and rounded passively (bids down, asks up)
to its price grid (``mm.model.Instrument``: the venue's rules). Sizes are rounded to its lot and
a level whose notional falls below the instrument's minimum (or the config's, if higher) is
dropped. A bid never reaches the lowest ask limit (our top ask and the market's best ask) and an
ask never reaches the highest bid limit; prices on a side are strictly monotone, so no two
levels share a price.
"""

from __future__ import annotations

from collections.abc import Collection

import attrs

from mm.model import DesiredOrder as DesiredOrder  # the ladder's output type
from mm.model import Instrument, Side
from mm.settings import at_least, non_negative, one_of, positive, setting

SPACING_MODES = ("bps", "ticks")
SIZE_SCHEDULES = ("constant", "linear", "geometric")
_INF = float("inf")
# The sides as module names: an enum member read through its class is a Python-level lookup.
_BUY = Side.BUY
_SELL = Side.SELL


@attrs.frozen
class LadderConfig:
    """How many levels, how far apart, and how big each one is."""

    levels: int = setting(3, at_least(1))
    spacing_mode: str = setting("bps", one_of(*SPACING_MODES))
    spacing: float = setting(5.0, positive)  # bps of the top price, or ticks of the top price
    base_size: float = setting(0.01, positive)  # coin units at level 0
    size_schedule: str = setting("constant", one_of(*SIZE_SCHEDULES))
    size_step: float = setting(0.5, non_negative)  # linear: level i is base * (1 + step * i)
    size_ratio: float = setting(1.5, positive)  # geometric: level i is base * ratio ** i
    # A floor of mm's own on a level's notional; the instrument's minimum applies as well.
    min_notional: float = setting(10.0, non_negative)


class LimitTicks:
    """``instrument.price_ticks`` of the prices a ladder is capped by, remembered: the market's
    best bid and ask lie on the price grid and stay put over many books (their sizes change far
    more often than their prices), so the quoter asks for the same few again and again. Keeps
    at most ``size`` prices (then starts afresh); a pure function of its inputs, so a
    remembered answer is the answer."""

    def __init__(self, instrument: Instrument, size: int = 64) -> None:
        self.instrument = instrument
        self._size = size
        self._known: dict[tuple[float, bool], int] = {}

    def price_ticks(self, px: float, *, up: bool) -> int:
        key = (px, up)
        known = self._known.get(key)
        if known is None:
            if len(self._known) >= self._size:
                self._known.clear()
            known = self._known[key] = self.instrument.price_ticks(px, up=up)
        return known


def level_size(config: LadderConfig, level: int, base_size: float | None = None) -> float:
    """The schedule's size for ``level`` (before rounding to szDecimals), from ``base_size``
    (the config's when None)."""
    base = config.base_size if base_size is None else base_size
    if config.size_schedule == "linear":
        return base * (1.0 + config.size_step * level)
    if config.size_schedule == "geometric":
        return base * config.size_ratio**level
    return base


def _side_ticks(
    top: float,
    limit: int | None,
    up: bool,
    config: LadderConfig,
    levels: int,
    instrument: Instrument,
) -> list[int | None]:
    """Valid tick prices per level (None where no valid price exists), strictly monotone: the
    asks' (``up``) or the bids'.

    In bps, level 0's price is ``top * 1.0``, which is ``top``: its ticks are the top's, rounded
    once (``top`` is positive and finite, the caller's check)."""
    direction = 1 if up else -1
    price_ticks = instrument.price_ticks
    round_ticks = instrument.round_ticks
    top_ticks = price_ticks(top, up=up)
    spacing = config.spacing
    if config.spacing_mode == "ticks":
        step = instrument.tick_step(top_ticks)
        raws = [top_ticks + direction * round(spacing * level) * step for level in range(levels)]
        candidates = [round_ticks(raw, up=up) if raw > 0 else 0 for raw in raws]
    else:
        candidates = [top_ticks]
        for level in range(1, levels):
            raw_px = top * (1.0 + direction * spacing * level / 10_000.0)
            candidates.append(price_ticks(raw_px, up=up) if raw_px > 0 else 0)
    out: list[int | None] = []
    previous: int | None = None
    for level, ticks in enumerate(candidates):
        if limit is not None:  # never at or through the opposite best
            if up:
                if ticks <= limit:
                    ticks = round_ticks(limit + 1, up=True)
            elif ticks >= limit:
                ticks = round_ticks(limit - 1, up=False)
        if previous is not None:  # strictly away from the previous level
            if up:
                if ticks <= previous:
                    ticks = round_ticks(previous + 1, up=True)
            elif ticks >= previous:
                ticks = round_ticks(previous - 1, up=False)
        if ticks <= 0:
            out.extend([None] * (levels - level))
            break
        out.append(ticks)
        previous = ticks
    return out


def build_ladder(
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
    limit_ticks: LimitTicks | None = None,
) -> list[DesiredOrder]:
    """The desired orders, bids first (top down) then asks (top up).

    ``bid``/``ask`` are the top prices wanted (None skips a side); ``levels`` overrides the
    config's count (the quota tier's ladder density); ``sides`` restricts to e.g. the
    inventory-reducing side. ``market_bid``/``market_ask`` are the book's best prices, which our
    levels must not cross either. ``base_size`` overrides the config's level-0 size (the
    strategy's order size at the current mid), without a new config per quote.
    ``limit_ticks`` (the same instrument's) rounds the limits, remembering them.
    """
    count = config.levels if levels is None else levels
    if count <= 0:
        return []
    min_notional = max(config.min_notional, instrument.min_notional)
    # Limits in ticks: a bid stays strictly below the exact lowest ask, an ask strictly above
    # the exact highest bid (ceil / floor of the exact value keeps the strict inequality).
    rounds = instrument.price_ticks if limit_ticks is None else limit_ticks.price_ticks
    low_ask = _lowest(ask, market_ask)
    high_bid = _highest(bid, market_bid)
    bid_limit = None if low_ask is None else rounds(low_ask, up=True)
    ask_limit = None if high_bid is None else rounds(high_bid, up=False)
    # Each level's size on the lot grid, worked out once for both sides: None when it rounds
    # to nothing or below the instrument's minimum size.
    # Equal raw sizes round alike: a constant schedule rounds once.
    sizes: list[float | None] = []
    last_raw: float | None = None
    size: float | None = None
    for level in range(count):
        raw = level_size(config, level, base_size)
        if raw != last_raw:
            lots = instrument.size_lots(raw) if 0.0 < raw < _INF else 0
            rounded = instrument.lots_size(lots) if lots > 0 else 0.0
            size = None if lots <= 0 or instrument.size_below_minimum(rounded) else rounded
            last_raw = raw
        sizes.append(size)
    orders: list[DesiredOrder] = []
    ticks_price = instrument.ticks_price
    if bid is not None and _BUY in sides and 0.0 < bid < _INF:
        for level, ticks in enumerate(
            _side_ticks(bid, bid_limit, False, config, count, instrument)
        ):
            if ticks is None or (bid_limit is not None and ticks >= bid_limit):
                break
            sz = sizes[level]
            if sz is None:
                continue
            px = ticks_price(ticks)
            if px * sz >= min_notional:
                orders.append(DesiredOrder(_BUY, px, sz, level))
    if ask is not None and _SELL in sides and 0.0 < ask < _INF:
        for level, ticks in enumerate(_side_ticks(ask, ask_limit, True, config, count, instrument)):
            if ticks is None:
                break
            sz = sizes[level]
            if sz is None:
                continue
            px = ticks_price(ticks)
            if px * sz >= min_notional:
                orders.append(DesiredOrder(_SELL, px, sz, level))
    return orders


def _lowest(a: float | None, b: float | None) -> float | None:
    """The lower of the positive ones (None: neither is), as ``min`` of them picks it."""
    a = a if a is not None and a > 0 else None
    b = b if b is not None and b > 0 else None
    if a is None:
        return b
    if b is None:
        return a
    return min(a, b)


def _highest(a: float | None, b: float | None) -> float | None:
    """The higher of the positive ones (None: neither is), as ``max`` of them picks it."""
    a = a if a is not None and a > 0 else None
    b = b if b is not None and b > 0 else None
    if a is None:
        return b
    if b is None:
        return a
    return max(a, b)
