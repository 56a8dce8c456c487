"""KuCoin's account reads, pure: ``/api/v1/accounts`` as balances and an ``AccountState``,
``/api/v1/hf/fills`` as the port's fills, and the fee currency those fills reveal.

* ``parse_balances``: the ``data`` of ``GET /api/v1/accounts?type=trade``, one ``Balance`` per
  currency (``balance`` = ``available`` + ``holds``, decimal strings). Entries of another type
  (``main``, ``option``) are not the spot account's and are skipped.
* ``account_state``: a spot account has no positions and no margin. Its ``account_value`` is
  what it holds of ``value_currency`` (the followed symbols' quote, USDT): the other currencies
  are not priced here (that would take a market read the account answer does not carry), so
  the figure is the quote balance, never a guess at the rest; ``withdrawable`` is that
  currency's ``available``.
* ``parse_fills``: the ``data`` of ``GET /api/v1/hf/fills`` (``{"items": [...], "lastId"}``,
  newest first) as ``Fill``s with the venue's own ``fee`` and ``feeCurrency``, and the
  ``lastId`` to page back from.
* ``kcs_fee_fills``: fills whose fee was paid in KCS on a symbol whose quote is not KCS. The
  venue's "pay fees with KCS" setting is not readable through its API (no endpoint of the
  specification reports it), and fills are where it shows: mm's fee arithmetic is in the quote
  currency, so such an account is refused by ``mm check``.

Fails: ``CodecError`` naming what is wrong; nothing is half-read.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any, Final

import attrs

from mm.model import AccountState, Balance, Fill, Side
from mm.venues.kucoin import numbers
from mm.venues.kucoin.codec import CodecError
from mm.venues.kucoin.ids import order_id, trade_id

__all__ = [
    "FEE_TOKEN_KCS",
    "FillsPage",
    "account_state",
    "kcs_fee_fills",
    "parse_balances",
    "parse_fills",
]

FEE_TOKEN_KCS: Final = "KCS"
_SIDES: Final = {"buy": Side.BUY, "sell": Side.SELL}


def _text(entry: dict[str, Any], key: str) -> str:
    value = entry[key]
    if type(value) is not str or not value:
        raise ValueError(f"{key}: expected a non-empty string, got {value!r}")
    return value


def _amount(entry: dict[str, Any], key: str) -> float:
    return float(numbers.parse(entry[key]))


def parse_balances(data: Any) -> tuple[Balance, ...]:
    """The trade account's balances of ``GET /api/v1/accounts`` (see the module)."""
    try:
        if type(data) is not list:
            raise TypeError(f"expected a list, got {type(data).__name__}")
        balances = []
        for entry in data:
            if type(entry) is not dict:
                raise TypeError(f"expected an object, got {type(entry).__name__}")
            if _text(entry, "type") != "trade":
                continue
            balances.append(
                Balance(
                    currency=_text(entry, "currency"),
                    total=_amount(entry, "balance"),
                    available=_amount(entry, "available"),
                    hold=_amount(entry, "holds"),
                )
            )
        return tuple(balances)
    except (KeyError, TypeError, ValueError) as error:
        raise CodecError(f"malformed accounts: {type(error).__name__}: {error}") from None


def account_state(balances: Sequence[Balance], value_currency: str, time_ms: int) -> AccountState:
    """The spot account as the port's ``AccountState`` (see the module for its value)."""
    held = [b for b in balances if b.currency == value_currency]
    return AccountState(
        time_ms=time_ms,
        account_value=sum(b.total for b in held),
        margin_used=0.0,
        withdrawable=sum(b.available for b in held),
        positions=(),
        balances=tuple(balances),
    )


@attrs.frozen
class FillsPage:
    """One ``/hf/fills`` answer: its fills as listed (newest first), and the id to page back
    from (None when the answer had none)."""

    fills: tuple[Fill, ...]
    last_id: int | None


def _fill(entry: Any) -> Fill:
    if type(entry) is not dict:
        raise TypeError(f"expected an object, got {type(entry).__name__}")
    side = _SIDES.get(entry["side"])
    if side is None:
        raise ValueError(f"unknown side {entry['side']!r}")
    liquidity = entry["liquidity"]
    if liquidity not in ("maker", "taker"):
        raise ValueError(f"unknown liquidity {liquidity!r}")
    created = entry["createdAt"]
    if type(created) is not int or created <= 0:
        raise ValueError(f"createdAt: not a time: {created!r}")
    return Fill(
        coin=_text(entry, "symbol"),
        side=side,
        px=_amount(entry, "price"),
        sz=_amount(entry, "size"),
        time_ms=created,
        oid=order_id(entry["orderId"]),
        tid=trade_id(entry["tradeId"]),
        cloid=None,  # /hf/fills does not carry the order's client id
        fee=float(numbers.parse(entry["fee"], signed=True)),
        fee_token=_text(entry, "feeCurrency"),
        crossed=liquidity == "taker",
        start_position=0.0,  # spot: no position to start from
        direction="Buy" if side is Side.BUY else "Sell",
        closed_pnl=0.0,
        hash="",
    )


def parse_fills(data: Any) -> FillsPage:
    """The ``data`` of ``GET /api/v1/hf/fills`` (see the module)."""
    try:
        if type(data) is not dict:
            raise TypeError(f"expected an object, got {type(data).__name__}")
        items = data["items"]
        if type(items) is not list:
            raise TypeError(f"items: expected a list, got {type(items).__name__}")
        last_id = data.get("lastId")
        if last_id is not None and (type(last_id) is not int or last_id < 0):
            raise ValueError(f"lastId: expected an id, got {last_id!r}")
        return FillsPage(tuple(_fill(entry) for entry in items), last_id)
    except (KeyError, TypeError, ValueError) as error:
        raise CodecError(f"malformed fills: {type(error).__name__}: {error}") from None


def kcs_fee_fills(fills: Iterable[Fill], quotes: dict[str, str]) -> list[Fill]:
    """The fills that paid their fee in KCS on a symbol whose quote (``quotes``: symbol ->
    quote currency) is not KCS: the mark of an account that pays its fees with KCS."""
    return [
        fill
        for fill in fills
        if fill.fee_token == FEE_TOKEN_KCS and quotes.get(fill.coin) != FEE_TOKEN_KCS
    ]
