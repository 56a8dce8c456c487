"""Hyperliquid's order status words, and what each means in mm's terms (``OrderStatus``).

The words are the venue's (``orderUpdates``, ``orderStatus``, ``historicalOrders``; the SDK and
the docs list them). A word this build does not know is ``OrderStatus.UNRECOGNIZED``: the
lifecycle keeps the order where it is and flags the word, rather than guess. Pure.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Final

from mm.model import OrderStatus

LIVE_WORDS: Final = ("open", "triggered")  # triggered: a trigger order went live
# Canceled at the account's request: a cancel, or the replaced order of a modify.
OWN_CANCEL_WORDS: Final = ("canceled",)
VENUE_CANCEL_WORDS: Final = (
    "marginCanceled",
    "vaultWithdrawalCanceled",
    "openInterestCapCanceled",
    "selfTradeCanceled",
    "reduceOnlyCanceled",
    "siblingFilledCanceled",
    "delistedCanceled",
    "liquidatedCanceled",
    "outcomeSettledCanceled",
    "scheduledCancel",  # the dead-man's switch fired
)
REJECT_WORDS: Final = (
    "rejected",
    "tickRejected",
    "minTradeNtlRejected",
    "minTradeSpotNtlRejected",
    "perpMarginRejected",
    "reduceOnlyRejected",
    "badAloPxRejected",
    "iocCancelRejected",
    "badTriggerPxRejected",
    "marketOrderNoLiquidityRejected",
    "positionIncreaseAtOpenInterestCapRejected",
    "positionFlipAtOpenInterestCapRejected",
    "tooAggressiveAtOpenInterestCapRejected",
    "openInterestIncreaseRejected",
    "insufficientSpotBalanceRejected",
    "oracleRejected",
    "perpMaxPositionRejected",
)

#: Every Hyperliquid order status word, and what it means.
STATUS_WORDS: Final[Mapping[str, OrderStatus]] = {
    **dict.fromkeys(LIVE_WORDS, OrderStatus.OPEN),
    "filled": OrderStatus.FILLED,
    **dict.fromkeys(OWN_CANCEL_WORDS, OrderStatus.CANCELED),
    **dict.fromkeys(VENUE_CANCEL_WORDS, OrderStatus.CANCELED_BY_VENUE),
    **dict.fromkeys(REJECT_WORDS, OrderStatus.REJECTED),
}


def order_status(word: str) -> OrderStatus:
    """The meaning of a status word; ``UNRECOGNIZED`` for one this build does not know."""
    return STATUS_WORDS.get(word, OrderStatus.UNRECOGNIZED)
