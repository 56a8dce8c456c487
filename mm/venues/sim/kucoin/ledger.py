"""Spot accounts for the simulator's KuCoin face: balances and holds per user and currency, in
exact decimals. Pure.

KuCoin's trade account (its docs, "Account" and "Orders"): each currency has a balance, of
which ``holds`` are frozen by open orders and the rest is ``available``; an order that its
currency's available amount cannot cover is refused (``200004``, "Balance insufficient!").
What an order freezes (``hold``):

* a limit buy: its price times its size, plus the most it can pay in fees (the taker rate on
  that notional): released proportionally as it fills (at a better price, the difference comes
  back) and whole when it ends;
* a market buy by funds: the funds (fees included: what it spends never exceeds them);
* a sell (limit, or market by size): its size in the base currency.

A trade (``settle``) moves the base from seller to buyer and the notional from buyer to seller,
each side paying its fee rate on the notional in the quote currency (the symbol's
``feeCurrency``) to the venue's fee account (``FEES``), so every currency's total across the
ledger is conserved exactly (the property tests hold it to that). ``release`` frees what an
order still holds (a cancel, an IOC's or a market order's remainder: the "dust cancel").

Fails: ``LedgerError`` for a hold on a key already holding, a settle or release of an unknown
order, or a trade that would spend more than an order holds (a bug of the caller's matching,
never the user's); ``ValueError`` for a negative amount.
"""

from __future__ import annotations

from collections.abc import Hashable
from decimal import Decimal

import attrs

__all__ = ["FEES", "Balance", "LedgerError", "OrderHold", "SpotLedger"]

FEES = "kucoin-sim-fees"  # the venue's own account, where fees go
ZERO = Decimal(0)


class LedgerError(Exception):
    """A request the ledger cannot have been asked by correct matching."""


@attrs.frozen
class Balance:
    """A currency of an account, as ``/api/v1/accounts`` shows it."""

    balance: Decimal
    holds: Decimal

    @property
    def available(self) -> Decimal:
        return self.balance - self.holds


@attrs.define
class OrderHold:
    """What one order holds: of which currency, how much is left, and how much each unit of
    base it trades releases (None: a market buy by funds, which spends what it trades)."""

    user: str
    currency: str
    remaining: Decimal
    per_unit: Decimal | None


def _non_negative(amount: Decimal, what: str) -> Decimal:
    if not amount.is_finite() or amount < 0:
        raise ValueError(f"{what} must be a non-negative amount, got {amount}")
    return amount


class SpotLedger:
    """Every account's balances and holds (see the module)."""

    def __init__(self) -> None:
        self._balances: dict[tuple[str, str], Decimal] = {}
        self._holds: dict[tuple[str, str], Decimal] = {}
        self._orders: dict[Hashable, OrderHold] = {}

    # --- reading ------------------------------------------------------------------------------

    def balance(self, user: str, currency: str) -> Balance:
        key = (user, currency)
        return Balance(self._balances.get(key, ZERO), self._holds.get(key, ZERO))

    def currencies(self, user: str) -> list[str]:
        return sorted({currency for owner, currency in self._balances if owner == user})

    def total(self, currency: str) -> Decimal:
        """Every account's balance of ``currency``, the fee account's included."""
        return sum(
            (amount for (_, held), amount in self._balances.items() if held == currency), ZERO
        )

    def holding(self, order: Hashable) -> OrderHold | None:
        return self._orders.get(order)

    # --- changes ------------------------------------------------------------------------------

    def fund(self, user: str, currency: str, amount: Decimal) -> None:
        """Credit ``amount`` (the faucet, a new account's starting balances)."""
        key = (user, currency)
        self._balances[key] = self._balances.get(key, ZERO) + _non_negative(amount, "a funding")

    def hold(
        self,
        order: Hashable,
        user: str,
        currency: str,
        amount: Decimal,
        per_unit: Decimal | None = None,
    ) -> bool:
        """Freeze ``amount`` of ``currency`` for ``order``; False (nothing frozen) when the
        available balance cannot cover it: the venue's 200004."""
        if order in self._orders:
            raise LedgerError(f"order {order!r} holds already")
        _non_negative(amount, "a hold")
        if per_unit is not None:
            _non_negative(per_unit, "a hold per unit")
        if self.balance(user, currency).available < amount:
            return False
        key = (user, currency)
        self._holds[key] = self._holds.get(key, ZERO) + amount
        self._orders[order] = OrderHold(user, currency, amount, per_unit)
        return True

    def release(self, order: Hashable) -> Decimal:
        """Free what ``order`` still holds (it ended); the amount freed."""
        hold = self._orders.pop(order, None)
        if hold is None:
            raise LedgerError(f"order {order!r} holds nothing")
        self._unhold(hold.user, hold.currency, hold.remaining)
        return hold.remaining

    def settle(
        self,
        *,
        buy: Hashable,
        sell: Hashable,
        base: str,
        quote: str,
        price: Decimal,
        size: Decimal,
        buy_fee_rate: Decimal,
        sell_fee_rate: Decimal,
    ) -> tuple[Decimal, Decimal]:
        """One trade of ``size`` base at ``price`` between the orders ``buy`` and ``sell``; the
        fees (buyer's, seller's) charged in ``quote``."""
        buyer, seller = self._orders.get(buy), self._orders.get(sell)
        if buyer is None or seller is None:
            raise LedgerError(f"a trade between orders that hold nothing: {buy!r}, {sell!r}")
        if buyer.currency != quote or seller.currency != base:
            raise LedgerError(f"a {base}-{quote} trade of orders holding the wrong currencies")
        _non_negative(size, "a trade's size")
        notional = price * size
        buy_fee = notional * _non_negative(buy_fee_rate, "a fee rate")
        sell_fee = notional * _non_negative(sell_fee_rate, "a fee rate")
        spent = notional + buy_fee
        freed = spent if buyer.per_unit is None else buyer.per_unit * size
        if spent > freed or freed > buyer.remaining or size > seller.remaining:
            raise LedgerError(
                f"a trade of {size} at {price} spends more than its orders hold "
                f"(buy {buyer.remaining}, sell {seller.remaining})"
            )
        buyer.remaining -= freed
        seller.remaining -= size
        self._unhold(buyer.user, quote, freed)
        self._unhold(seller.user, base, size)
        self._move(buyer.user, quote, -spent)
        self._move(buyer.user, base, size)
        self._move(seller.user, base, -size)
        self._move(seller.user, quote, notional - sell_fee)
        self._move(FEES, quote, buy_fee + sell_fee)
        return buy_fee, sell_fee

    def _unhold(self, user: str, currency: str, amount: Decimal) -> None:
        key = (user, currency)
        self._holds[key] = self._holds.get(key, ZERO) - amount

    def _move(self, user: str, currency: str, amount: Decimal) -> None:
        key = (user, currency)
        self._balances[key] = self._balances.get(key, ZERO) + amount
