"""KuCoin's balance pushes (``/account/balance``), pure: each change as the port's ``Balance``,
and the account's balances kept from them.

Each ``account.balance`` message is one currency of one account after a change: ``total``,
``available`` and ``hold`` as they now are, with the changes that led there and the event that
made them (``relationEvent``: ``trade.hold``, ``trade.setted``, ``main.deposit``...). mm trades
from the trade account: an event of another account (not ``trade…``) is not its balance.

``SpotBalances`` keeps the trade account's balances: a read of the accounts (``reset``) sets
them all, a push (``apply``) replaces its currency's. Pushes are not sequenced: one older than
the balance held (by its ``time``) is stale and ignored, so that a push delivered after the read
that already counted it does not roll the balance back.

Fails: ``CodecError`` naming what is wrong for a message that is not what the venue documents.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, Final

import attrs

from mm.model import Balance
from mm.venues.kucoin import numbers
from mm.venues.kucoin.codec import CodecError

__all__ = ["BalanceChange", "SpotBalances", "parse_balance_change"]

TOPIC: Final = "/account/balance"
TRADE_EVENTS: Final = "trade"  # the prefix of the trade account's events


@attrs.frozen(slots=True)
class BalanceChange:
    """One push: the currency's balance after the change, when, and what made it."""

    balance: Balance
    time_ms: int
    event: str

    @property
    def of_trade_account(self) -> bool:
        return self.event.split(".", 1)[0].startswith(TRADE_EVENTS)


def _amount(data: dict[str, Any], key: str) -> float:
    return float(numbers.parse(data[key]))


def parse_balance_change(data: Any) -> BalanceChange:
    """The ``data`` of an ``account.balance`` message."""
    try:
        currency, event, time_text = data["currency"], data["relationEvent"], data["time"]
        if not all(type(text) is str and text for text in (currency, event, time_text)):
            raise ValueError("currency, relationEvent and time are non-empty strings")
        if not time_text.isascii() or not time_text.isdigit():
            raise ValueError(f"time {time_text!r} is not milliseconds")
        total, available, hold = (_amount(data, key) for key in ("total", "available", "hold"))
        return BalanceChange(Balance(currency, total, available, hold), int(time_text), event)
    except (KeyError, TypeError, ValueError) as error:
        raise CodecError(f"malformed balance change: {type(error).__name__}: {error}") from None


class SpotBalances:
    """The trade account's balances by currency, from reads and pushes (see the module)."""

    def __init__(self) -> None:
        self._balances: dict[str, Balance] = {}
        self._times: dict[str, int] = {}

    def reset(self, balances: Iterable[Balance], time_ms: int) -> None:
        """The account as a read found it at ``time_ms``: every currency's balance."""
        self._balances = {balance.currency: balance for balance in balances}
        self._times = dict.fromkeys(self._balances, time_ms)

    def apply(self, change: BalanceChange) -> bool:
        """Take a push of the trade account; False (ignored) when older than what is held."""
        currency = change.balance.currency
        if change.time_ms < self._times.get(currency, -1):
            return False
        self._balances[currency] = change.balance
        self._times[currency] = change.time_ms
        return True

    def balances(self) -> tuple[Balance, ...]:
        """Every currency held, sorted by name."""
        return tuple(self._balances[name] for name in sorted(self._balances))
