"""What the simulator's engine tells its protocol faces: trades, fills, order updates, funding."""

from __future__ import annotations

import attrs

from mm.venues.sim.book import Order


@attrs.frozen(slots=True)
class Trade:
    asset: int
    taker_is_buy: bool
    px: int
    sz: int
    time: int
    tid: int
    buyer: str
    seller: str


@attrs.frozen(slots=True)
class UserFill:
    user: str
    asset: int
    is_buy: bool
    px: int
    sz: int
    time: int
    start_position: int
    direction: str
    closed_pnl: float
    fee: float
    oid: int
    tid: int
    crossed: bool
    cloid: str | None


@attrs.frozen(slots=True)
class OrderUpdate:
    """An order's new status; ``order`` is a snapshot (its ``sz`` is what remained)."""

    user: str
    order: Order
    status: str
    time: int


@attrs.frozen(slots=True)
class NonUserCancel:
    user: str
    asset: int
    oid: int


@attrs.frozen(slots=True)
class FundingPayment:
    """One position's funding for an hour: ``usdc`` received (negative: paid) on ``szi`` lots at
    ``rate``."""

    user: str
    asset: int
    usdc: float
    szi: int
    rate: float
    time: int


@attrs.frozen(slots=True)
class BookChanged:
    asset: int


Event = Trade | UserFill | OrderUpdate | NonUserCancel | FundingPayment | BookChanged
