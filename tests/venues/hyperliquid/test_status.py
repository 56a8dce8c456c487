"""Hyperliquid's order status words: every one the venue uses maps to mm's ``OrderStatus`` (the
codec's reports keep the word beside it: test_codec)."""

from __future__ import annotations

import pytest

from mm.model import OrderStatus
from mm.venues.hyperliquid.status import STATUS_WORDS, order_status

CANCEL_WORDS = [
    "canceled",
    "marginCanceled",
    "vaultWithdrawalCanceled",
    "openInterestCapCanceled",
    "selfTradeCanceled",
    "reduceOnlyCanceled",
    "siblingFilledCanceled",
    "delistedCanceled",
    "liquidatedCanceled",
    "outcomeSettledCanceled",
    "scheduledCancel",
]
REJECT_WORDS = [
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
]
LIVE_WORDS = ["open", "triggered"]
ALL_WORDS = [*LIVE_WORDS, "filled", *CANCEL_WORDS, *REJECT_WORDS]


def test_every_word_is_classified() -> None:
    assert set(STATUS_WORDS) == set(ALL_WORDS)
    for word in LIVE_WORDS:
        assert order_status(word) is OrderStatus.OPEN
    assert order_status("filled") is OrderStatus.FILLED
    # Canceled at our request (a cancel, a modify's replaced oid) apart from the venue's rules.
    assert order_status("canceled") is OrderStatus.CANCELED
    for word in CANCEL_WORDS[1:]:
        assert order_status(word) is OrderStatus.CANCELED_BY_VENUE
    for word in REJECT_WORDS:
        assert order_status(word) is OrderStatus.REJECTED
    assert order_status("somethingNew") is OrderStatus.UNRECOGNIZED


@pytest.mark.parametrize("word", ALL_WORDS)
def test_an_ended_word_ends_the_order(word: str) -> None:
    assert order_status(word).ended is (word not in LIVE_WORDS)
