"""Shared value types: what adapters report and what strategies and executors send.

Frozen, slotted attrs classes. Venue wire formats are parsed into these at the adapter's edge;
nothing past an adapter sees venue JSON. Prices and sizes are floats in the venue's units (the
adapters format them by the venue's rules when sending); times are milliseconds since the epoch.
"""

from __future__ import annotations

import enum

import attrs


class Side(enum.Enum):
    BUY = "B"
    SELL = "A"

    @property
    def sign(self) -> int:
        return 1 if self is Side.BUY else -1

    @property
    def opposite(self) -> Side:
        return Side.SELL if self is Side.BUY else Side.BUY


class Tif(enum.Enum):
    GTC = "Gtc"
    IOC = "Ioc"
    ALO = "Alo"  # post-only


# --- reference data ----------------------------------------------------------------------------


@attrs.frozen(slots=True)
class AssetMeta:
    index: int
    coin: str
    sz_decimals: int
    max_leverage: int


# --- market data -------------------------------------------------------------------------------


@attrs.frozen(slots=True)
class Level:
    px: float
    sz: float
    n: int = 1


@attrs.frozen(slots=True)
class BookSnapshot:
    """A full L2 snapshot, best levels first on each side. ``seq``: the venue's sequence number
    of the book, where its books are sequenced (the deltas that follow continue from it)."""

    coin: str
    time_ms: int
    bids: tuple[Level, ...]
    asks: tuple[Level, ...]
    seq: int | None = None


@attrs.frozen(slots=True)
class BookDelta:
    """Changes to an L2 book, sequence numbers ``first_seq`` to ``seq`` of the venue's book: each
    level given replaces the size at its price, a size of 0 removes the price. It applies to a
    book at sequence ``first_seq - 1`` (or later, up to ``seq``: a venue's sequences may overlap
    a snapshot)."""

    coin: str
    time_ms: int
    first_seq: int
    seq: int
    bids: tuple[Level, ...] = ()
    asks: tuple[Level, ...] = ()


@attrs.frozen(slots=True)
class Bbo:
    coin: str
    time_ms: int
    bid: Level | None
    ask: Level | None


@attrs.frozen(slots=True)
class Trade:
    coin: str
    side: Side  # the taker's side
    px: float
    sz: float
    time_ms: int
    tid: int


@attrs.frozen(slots=True)
class Mids:
    mids: dict[str, float]


# --- orders and fills --------------------------------------------------------------------------


@attrs.frozen(slots=True)
class OpenOrder:
    coin: str
    side: Side
    px: float
    sz: float  # remaining
    orig_sz: float
    oid: int
    cloid: str | None
    time_ms: int
    reduce_only: bool = False
    tif: Tif | None = None


@attrs.frozen(slots=True)
class OrderReport:
    """A venue report of an order's status (orderUpdates, orderStatus, historicalOrders)."""

    coin: str
    side: Side
    px: float
    sz: float  # remaining
    orig_sz: float
    oid: int
    cloid: str | None
    time_ms: int
    status: str  # the venue's word: open, filled, canceled, rejected, badAloPxRejected, ...
    status_time_ms: int


@attrs.frozen(slots=True)
class Fill:
    coin: str
    side: Side
    px: float
    sz: float
    time_ms: int
    oid: int
    tid: int
    cloid: str | None
    fee: float
    fee_token: str
    crossed: bool  # True when we were the taker
    start_position: float
    direction: str
    closed_pnl: float
    hash: str


@attrs.frozen(slots=True)
class NonUserCancel:
    coin: str
    oid: int


@attrs.frozen(slots=True)
class Funding:
    """A funding payment on a perpetual position, settled on the hour.

    ``usdc`` is what the account received (negative: it paid); ``szi`` the signed position it
    was paid on and ``funding_rate`` the hour's rate (positive: longs pay shorts).
    """

    coin: str
    usdc: float
    szi: float
    funding_rate: float
    time_ms: int


@attrs.frozen(slots=True)
class Liquidation:
    lid: int
    liquidator: str
    liquidated_user: str
    liquidated_ntl_pos: float
    liquidated_account_value: float


# --- account -----------------------------------------------------------------------------------


@attrs.frozen(slots=True)
class Position:
    coin: str
    szi: float  # signed size
    entry_px: float
    unrealized_pnl: float
    liquidation_px: float | None
    margin_used: float
    leverage: int


@attrs.frozen(slots=True)
class AccountState:
    time_ms: int
    account_value: float
    margin_used: float
    withdrawable: float
    positions: tuple[Position, ...]


@attrs.frozen(slots=True)
class RateLimitState:
    cum_volume: float
    requests_used: int
    requests_cap: int


# --- commands and their results ----------------------------------------------------------------


@attrs.frozen(slots=True)
class DesiredOrder:
    """One order the strategy wants resting: ``level`` is its ladder level (0 = top)."""

    side: Side
    px: float
    sz: float
    level: int = 0


@attrs.frozen(slots=True)
class PlaceOrder:
    coin: str
    side: Side
    px: float
    sz: float
    tif: Tif
    cloid: str
    reduce_only: bool = False


@attrs.frozen(slots=True)
class CancelOrder:
    """Cancel by venue oid or by our cloid (exactly one is set)."""

    coin: str
    oid: int | None = None
    cloid: str | None = None

    def __attrs_post_init__(self) -> None:
        if (self.oid is None) == (self.cloid is None):
            raise ValueError("CancelOrder needs exactly one of oid and cloid")


@attrs.frozen(slots=True)
class ModifyOrder:
    """Replace a resting order (found by oid or cloid) with ``order`` (which keeps its cloid)."""

    target: int | str
    order: PlaceOrder


@attrs.frozen(slots=True)
class Resting:
    oid: int
    cloid: str | None


@attrs.frozen(slots=True)
class Filled:
    oid: int
    cloid: str | None
    total_sz: float
    avg_px: float


@attrs.frozen(slots=True)
class Rejected:
    reason: str


PlaceResult = Resting | Filled | Rejected
CancelResult = None | Rejected  # None: canceled


MarketEvent = BookSnapshot | BookDelta | Bbo | Trade | Mids
UserEvent = OrderReport | Fill | NonUserCancel | Liquidation | Funding
