"""Guéant-Lehalle-Fernandez-Tapia (GLFT) optimal market-making quotes.

Pure: every input (mid, book top, sigma, A, k, inventory) is passed in. Units:

- ``sigma``: price units per square root of a second (sigma ≥ 0);
- ``A``: trades reaching the touch per second; ``k``: per price unit, so a quote at depth δ
  (price units) from the mid is hit at rate ``A * exp(-k * δ)``;
- ``gamma`` / ``xi``: risk aversion; ``order_size`` (Δ): units of the asset;
- ``q``: inventory in units of the order size (position / Δ); ``max_position`` is in the same
  units.

With ``c1 = ln(1 + ξΔ/k) / (ξΔ)`` and ``c2 = sqrt(gamma / (2AΔk) * (1 + ξΔ/k) ** (k/(ξΔ) + 1))``:
half spread ``= c1 + Δ/2 * sigma * c2``, skew ``= sigma * c2``, reservation ``= mid - skew * q``,
bid/ask ``= reservation ∓ half spread``. Quotes are post-only (never at or through the opposite
side of the book) and the side that would grow an inventory already at its limit is suppressed.
"""

from __future__ import annotations

import math

import attrs

from mm.settings import non_negative, positive, setting


def _positive_or_none(value: float | None) -> str | None:
    return None if value is None else positive(value)


@attrs.frozen
class GlftParams:
    """The GLFT model's settings; ``xi`` of None means ``xi = gamma``."""

    gamma: float = setting(0.05, positive)
    xi: float | None = setting(None, _positive_or_none)
    order_size: float = setting(1.0, positive)
    max_position: float = setting(10.0, non_negative)

    @property
    def xi_value(self) -> float:
        return self.gamma if self.xi is None else self.xi


GlftConfig = GlftParams


@attrs.frozen
class Quotes:
    """A two-sided quote; a side is None when suppressed (inventory limit, non-positive price)."""

    bid: float | None
    ask: float | None
    half_spread: float
    skew: float
    reservation: float


def glft_coefficients(A: float, k: float, params: GlftParams) -> tuple[float, float]:  # noqa: N803
    """``(c1, c2)`` of the GLFT closed form (c1 in price units, c2 in √s per price unit)."""
    if not A > 0:
        raise ValueError(f"GLFT needs A > 0 (trade intensity per second), got {A!r}")
    if not k > 0:
        raise ValueError(f"GLFT needs k > 0 (intensity decay per price unit), got {k!r}")
    xi_delta = params.xi_value * params.order_size
    ratio = xi_delta / k
    c1 = math.log1p(ratio) / xi_delta
    growth = math.exp((k / xi_delta + 1.0) * math.log1p(ratio))
    c2 = math.sqrt(params.gamma / (2.0 * A * params.order_size * k) * growth)
    return c1, c2


def _inside(price: float, limit: float, tick: float | None, *, below: bool) -> float:
    """``price`` kept strictly on its side of ``limit`` (one tick inside when it is not)."""
    if below:
        if price < limit:
            return price
        return limit - tick if tick else math.nextafter(limit, -math.inf)
    if price > limit:
        return price
    return limit + tick if tick else math.nextafter(limit, math.inf)


def glft_quotes(
    mid: float,
    best_bid: float | None,
    best_ask: float | None,
    sigma: float,
    A: float,  # noqa: N803
    k: float,
    q: float,
    params: GlftParams,
    *,
    tick: float | None = None,
    coefficients: tuple[float, float] | None = None,
) -> Quotes:
    """The GLFT bid and ask around ``mid`` for inventory ``q`` (in order sizes).

    ``best_bid``/``best_ask`` (None when that side of the book is empty) make the quotes
    post-only: a bid at or above the best ask is moved to one ``tick`` below it, an ask at or
    below the best bid to one tick above it (without a tick, the next float inside). No bid
    when ``q >= max_position``, no ask when ``q <= -max_position``; a side whose price would
    not be positive is dropped too. ``coefficients``: ``glft_coefficients(A, k, params)``
    worked out already (they change only with the intensity fit).
    """
    if not sigma >= 0:
        raise ValueError(f"GLFT needs sigma >= 0 (price units per sqrt(second)), got {sigma!r}")
    if not math.isfinite(mid):
        raise ValueError(f"GLFT needs a finite mid, got {mid!r}")
    if tick is not None and not tick >= 0:
        raise ValueError(f"tick must be >= 0, got {tick!r}")
    c1, c2 = glft_coefficients(A, k, params) if coefficients is None else coefficients
    skew = sigma * c2
    half_spread = c1 + params.order_size / 2.0 * skew
    reservation = mid - skew * q
    bid: float | None = reservation - half_spread
    ask: float | None = reservation + half_spread
    if best_ask is not None and bid is not None:
        bid = _inside(bid, best_ask, tick, below=True)
    if best_bid is not None and ask is not None:
        ask = _inside(ask, best_bid, tick, below=False)
    if q >= params.max_position or (bid is not None and bid <= 0):
        bid = None
    if q <= -params.max_position or (ask is not None and ask <= 0):
        ask = None
    return Quotes(bid, ask, half_spread, skew, reservation)
