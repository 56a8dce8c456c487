"""What the dispatcher tests feed it, built one way: an order to place and the venue's reports
and fills of it (Hyperliquid's ids, through ``tests.ids``), for one BTC buy order under
``CLOID`` unless told otherwise; and a dispatcher holding that order open."""

from __future__ import annotations

from typing import Any

from mm.execution.dispatch import DispatchConfig, Dispatcher
from mm.model import Fill, OrderReport, PlaceOrder, Resting, Side, Tif
from mm.venues.hyperliquid.status import order_status
from tests.ids import hl_oid, hl_tid

CLOID = "0x" + "1" * 32


def place(cloid: str = CLOID, sz: float = 3.0, px: float = 100.0, tif: Tif = Tif.GTC) -> PlaceOrder:
    return PlaceOrder(coin="BTC", side=Side.BUY, px=px, sz=sz, tif=tif, cloid=cloid)


def report(
    oid: int,
    status: str,
    *,
    cloid: str | None = CLOID,
    px: float = 100.0,
    sz: float = 3.0,
    orig_sz: float = 3.0,
    coin: str = "BTC",
    time_ms: int = 0,
) -> OrderReport:
    """The venue's report of its order ``oid`` in the venue's word ``status``."""
    return OrderReport(
        coin=coin,
        side=Side.BUY,
        px=px,
        sz=sz,
        orig_sz=orig_sz,
        oid=hl_oid(oid),
        cloid=cloid,
        time_ms=time_ms,
        status=order_status(status),
        status_time_ms=time_ms,
        venue_status=status,
    )


def fill(
    oid: int, tid: int, sz: float = 1.0, *, cloid: str | None = CLOID, px: float = 100.0
) -> Fill:
    """A fill of the venue's order ``oid`` in its trade ``tid``."""
    return Fill(
        coin="BTC",
        side=Side.BUY,
        px=px,
        sz=sz,
        time_ms=0,
        oid=hl_oid(oid),
        tid=hl_tid(tid),
        cloid=cloid,
        fee=0.0,
        fee_token="USDC",
        crossed=False,
        start_position=0.0,
        direction="Open Long",
        closed_pnl=0.0,
        hash="0x0",
    )


def opened(oid: int = 11, **config: Any) -> Dispatcher:
    """A dispatcher whose order ``CLOID`` was placed and answered resting as ``oid``."""
    d = Dispatcher(DispatchConfig(**config))
    d.submit(place(), 1)
    d.on_place_ack(CLOID, Resting(hl_oid(oid), CLOID), 2)
    return d
