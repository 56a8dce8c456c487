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

A ledger built with ``record=True`` keeps a ``BalanceChange`` for every change of an account's
currency (what ``/account/balance`` pushes: the balance and hold after it, and by how much each
moved), in the order they happened, until ``drain`` takes them: one per account and currency an
operation moved (a trade's fee and proceeds are one change of the seller's quote), tagged
with the venue's relation event: ``trade.hold`` for an order's hold and its release,
``trade.setted`` for a trade (with the ledger's settlement number, in the order trades were
settled), ``trade.transfer`` for funding. Replaying them over the balances before gives the
balances after (the property tests hold it to that).

Fails: ``LedgerError`` for a hold on a key already holding, a settle or release of an unknown
order, or a trade that would spend more than an order holds (a bug of the caller's matching,
never the user's); ``ValueError`` for a negative amount.
"""

from __future__ import annotations

from collections.abc import Hashable
from decimal import Decimal

import attrs

__all__ = ["FEES", "Balance", "BalanceChange", "LedgerError", "OrderHold", "SpotLedger"]

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


@attrs.frozen
class BalanceChange:
    """One change of an account's currency: its balance and hold after it, and the moves."""

    user: str
    currency: str
    event: str  # trade.hold | trade.setted | trade.transfer
    order: Hashable | None  # the order it is for (None: a transfer)
    settlement: int | None  # the ledger's trade number, for a trade.setted
    balance: Decimal
    holds: Decimal
    balance_change: Decimal
    hold_change: Decimal

    @property
    def available(self) -> Decimal:
        return self.balance - self.holds

    @property
    def available_change(self) -> Decimal:
        return self.balance_change - self.hold_change


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

    def __init__(self, *, record: bool = False) -> None:
        self._balances: dict[tuple[str, str], Decimal] = {}
        self._holds: dict[tuple[str, str], Decimal] = {}
        self._orders: dict[Hashable, OrderHold] = {}
        self._record = record
        self._changes: list[BalanceChange] = []
        # What the operation under way moved: (user, currency) -> (balance, hold) deltas.
        self._moved: dict[tuple[str, str], tuple[Decimal, Decimal]] = {}
        self._settlements = 0

    def drain(self) -> list[BalanceChange]:
        """The changes recorded since the last drain, oldest first (none unless recording)."""
        changes, self._changes = self._changes, []
        return changes

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
        self._move(user, currency, _non_negative(amount, "a funding"))
        self._emit("trade.transfer", {(user, currency): None})

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
        self._unhold(user, currency, -amount)
        self._orders[order] = OrderHold(user, currency, amount, per_unit)
        self._emit("trade.hold", {(user, currency): order})
        return True

    def release(self, order: Hashable) -> Decimal:
        """Free what ``order`` still holds (it ended); the amount freed."""
        hold = self._orders.pop(order, None)
        if hold is None:
            raise LedgerError(f"order {order!r} holds nothing")
        self._unhold(hold.user, hold.currency, hold.remaining)
        self._emit("trade.hold", {(hold.user, hold.currency): order})
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
        self._settlements += 1
        self._emit(
            "trade.setted",
            {
                (buyer.user, quote): buy,
                (buyer.user, base): buy,
                (seller.user, base): sell,
                (seller.user, quote): sell,
                (FEES, quote): buy,
            },
            self._settlements,
        )
        return buy_fee, sell_fee

    def _unhold(self, user: str, currency: str, amount: Decimal) -> None:
        key = (user, currency)
        self._holds[key] = self._holds.get(key, ZERO) - amount
        moved, held = self._moved.get(key, (ZERO, ZERO))
        self._moved[key] = (moved, held - amount)

    def _move(self, user: str, currency: str, amount: Decimal) -> None:
        key = (user, currency)
        self._balances[key] = self._balances.get(key, ZERO) + amount
        moved, held = self._moved.get(key, (ZERO, ZERO))
        self._moved[key] = (moved + amount, held)

    def _emit(
        self, event: str, orders: dict[tuple[str, str], Hashable], settlement: int | None = None
    ) -> None:
        """Record what the operation moved, a change per account and currency (the order each
        is for from ``orders``), in the order of ``orders``."""
        moved, self._moved = self._moved, {}
        if not self._record:
            return
        for key, order in orders.items():
            if key not in moved:
                continue  # (a key listed twice, as a self-trade's, was recorded once)
            balance_change, hold_change = moved.pop(key)
            if not balance_change and not hold_change:
                continue  # nothing moved (a fee of 0, a hold of nothing)
            user, currency = key
            self._changes.append(
                BalanceChange(
                    user,
                    currency,
                    event,
                    order,
                    settlement,
                    self._balances.get(key, ZERO),
                    self._holds.get(key, ZERO),
                    balance_change,
                    hold_change,
                )
            )
