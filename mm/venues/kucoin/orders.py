"""KuCoin's order changes (``/spotMarket/tradeOrdersV2``) as the port's events, pure.

Each ``orderChange`` message is one step of an order's life, its ``type`` the step:
``received`` (the matching engine has it), ``open`` (resting), ``match`` (a trade: ``matchPrice``,
``matchSize``, ``tradeId``, ``liquidity``), ``update`` (its size changed), ``filled`` and
``canceled`` (done; ``status`` is then ``done``). ``parse_order_change`` reads one strictly into
an ``OrderChange``; ``order_report`` makes the port's ``OrderReport`` of it, ``fill`` the port's
``Fill`` of a match.

Times: ``orderTime`` is in milliseconds in the current specification and in nanoseconds in older
recordings, ``ts`` in nanoseconds in both; each is read by its magnitude (``to_millis``). A
market buy by funds has no ``price`` and no ``originSize`` (its size is what the funds buy):
they read 0.

Statuses, in mm's terms: ``received``, ``open``, ``match`` and ``update`` leave the order live
(``OPEN``; the venue's own word is kept as ``venue_status``); ``filled`` is ``FILLED``;
``canceled`` is ``CANCELED`` (the venue does not say who cancelled: a cancel, an IOC's or a
market order's remainder, the dead-man's switch). An ``update`` whose ``status`` is ``done``
ended the order too: the specification's schema (``Spot_spot_private_orderV2``) says it is sent
when part of the order filled and the rest was cancelled, or self-trade prevention struck; it is
``CANCELED``.

A match's fee is not in the message: ``fill`` charges ``fee_rate`` (the account's maker or taker
rate for the symbol, from ``/api/v1/trade-fees``) on the match's notional, in
``fee_currency`` (the symbol's ``feeCurrency``). Which rate is ``OrderChange.taker_fee``: the
match's ``feeType`` (``takerFee`` or ``makerFee``, the current specification's "Actual Fee
Type") where it says, else its ``liquidity``; the specification warns that ``liquidity`` reads
``taker`` for a maker whose counterparty is a hidden or iceberg order. ``crossed`` is the
``liquidity`` as sent. Fails: ``CodecError`` naming what is wrong for
a message that is not what the venue documents; ``ValueError`` for a ``fill`` of a change that
is not a match.
"""

from __future__ import annotations

from typing import Any, Final

import attrs

from mm.model import Fill, OrderReport, OrderStatus, Side
from mm.venues.kucoin import numbers
from mm.venues.kucoin.codec import CodecError
from mm.venues.kucoin.ids import order_id, trade_id

__all__ = ["OrderChange", "fill", "order_report", "parse_order_change", "to_millis"]

TYPES: Final = ("received", "open", "match", "update", "filled", "canceled")
_STATUS: Final = {"filled": OrderStatus.FILLED, "canceled": OrderStatus.CANCELED}
_SIDES: Final = {"buy": Side.BUY, "sell": Side.SELL}


@attrs.frozen(slots=True)
class OrderChange:
    """One ``orderChange`` message's data, typed (numbers as floats, times in milliseconds)."""

    type: str
    status: str
    symbol: str
    side: Side
    order_type: str
    oid: str
    cloid: str | None
    order_time_ms: int
    ts_ms: int
    price: float  # 0: a market order
    origin_size: float  # 0: a market buy by funds
    remain_size: float | None  # None where the message does not say (received)
    filled_size: float | None
    match_price: float | None = None
    match_size: float | None = None
    trade_id: str | None = None
    liquidity: str | None = None
    fee_type: str | None = None  # a match's feeType, where the message has one

    @property
    def taker_fee(self) -> bool:
        """The match is charged the taker rate (see the module)."""
        if self.fee_type is not None:
            return self.fee_type == "takerFee"
        return self.liquidity == "taker"


def to_millis(value: Any) -> int:
    """A venue time in milliseconds, microseconds or nanoseconds since the epoch, in
    milliseconds (by its magnitude: any of them is after 2001 and before 2286)."""
    if type(value) is not int or value < 0:
        raise ValueError(f"not a time: {value!r}")
    if value >= 10**17:
        return value // 1_000_000
    if value >= 10**14:
        return value // 1_000
    return value


def _number(data: dict[str, Any], key: str, default: float | None = None) -> float | None:
    text = data.get(key)
    if text is None:
        return default
    return float(numbers.parse(text))


def parse_order_change(message: Any) -> OrderChange:
    """A ``/spotMarket/tradeOrdersV2`` message (see the module)."""
    try:
        if message["topic"] != "/spotMarket/tradeOrdersV2" or message["subject"] != "orderChange":
            raise ValueError(f"not an order change: {message['topic']!r} {message['subject']!r}")
        data = message["data"]
        kind, status = data["type"], data["status"]
        if kind not in TYPES:
            raise ValueError(f"unknown change type {kind!r}")
        side = _SIDES.get(data["side"])
        if side is None:
            raise ValueError(f"unknown side {data['side']!r}")
        strings = (data["symbol"], data["orderType"], status, data.get("clientOid", ""))
        if not all(type(text) is str for text in strings):
            raise ValueError("symbol, orderType, status and clientOid are strings")
        order_id(data["orderId"])  # (an id of the venue's form, or ValueError)
        match = kind == "match"
        tid = data["tradeId"] if match else None
        if tid is not None:
            trade_id(tid)
        liquidity = data["liquidity"] if match else None
        if match and liquidity not in ("maker", "taker"):
            raise ValueError(f"unknown liquidity {liquidity!r}")
        fee_type = data.get("feeType") if match else None
        if fee_type not in (None, "takerFee", "makerFee"):
            raise ValueError(f"unknown feeType {fee_type!r}")
        return OrderChange(
            type=kind,
            status=status,
            symbol=data["symbol"],
            side=side,
            order_type=data["orderType"],
            oid=data["orderId"],
            cloid=data.get("clientOid") or None,
            order_time_ms=to_millis(data["orderTime"]),
            ts_ms=to_millis(data["ts"]),
            price=_number(data, "price", 0.0) or 0.0,
            origin_size=_number(data, "originSize", 0.0) or 0.0,
            remain_size=_number(data, "remainSize"),
            filled_size=_number(data, "filledSize"),
            match_price=float(numbers.parse(data["matchPrice"])) if match else None,
            match_size=float(numbers.parse(data["matchSize"])) if match else None,
            trade_id=tid,
            liquidity=liquidity,
            fee_type=fee_type,
        )
    except (KeyError, TypeError, ValueError) as error:
        raise CodecError(f"malformed order change: {type(error).__name__}: {error}") from None


def order_report(change: OrderChange) -> OrderReport:
    """The port's report of the order as this change leaves it."""
    remaining = change.remain_size if change.remain_size is not None else change.origin_size
    status = _STATUS.get(change.type, OrderStatus.OPEN)
    if change.type == "update" and change.status == "done":
        status = OrderStatus.CANCELED  # part filled, the rest cancelled (see the module)
    return OrderReport(
        coin=change.symbol,
        side=change.side,
        px=change.price,
        sz=0.0 if status.ended else remaining,
        orig_sz=change.origin_size,
        oid=order_id(change.oid),
        cloid=change.cloid,
        time_ms=change.order_time_ms,
        status=status,
        status_time_ms=change.ts_ms,
        venue_status=change.type,
    )


def fill(change: OrderChange, fee_rate: float, fee_currency: str) -> Fill:
    """The port's fill of a ``match``: its fee ``fee_rate`` of the notional, in
    ``fee_currency``."""
    if change.type != "match" or change.match_price is None or change.match_size is None:
        raise ValueError(f"a fill is made of a match, not of a {change.type!r} change")
    if change.trade_id is None:
        raise ValueError("a match without its trade id")
    notional = change.match_price * change.match_size
    return Fill(
        coin=change.symbol,
        side=change.side,
        px=change.match_price,
        sz=change.match_size,
        time_ms=change.ts_ms,
        oid=order_id(change.oid),
        tid=trade_id(change.trade_id),
        cloid=change.cloid,
        fee=notional * fee_rate,
        fee_token=fee_currency,
        crossed=change.liquidity == "taker",
        start_position=0.0,  # spot: no position to start from
        direction="Buy" if change.side is Side.BUY else "Sell",
        closed_pnl=0.0,
        hash="",
    )
