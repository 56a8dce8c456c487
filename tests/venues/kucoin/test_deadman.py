"""KuCoin's dead-man's switch, pure: the timeout a wall time asks for, within the venue's
bounds, and the query's answer (the specification's example)."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mm.venues.base import MalformedAnswer
from mm.venues.kucoin.deadman import (
    DISARM,
    MAX_TIMEOUT_S,
    MIN_TIMEOUT_S,
    DcpSetting,
    parse_setting,
    timeout_for,
)
from tests.fixture_paths import KUCOIN

ANSWERS: dict[str, Any] = json.loads((KUCOIN / "rest_orders.json").read_text(encoding="utf-8"))
NOW_MS = 1_729_241_305_000


def test_disarming_is_minus_one() -> None:
    assert timeout_for(None, NOW_MS) == DISARM == -1


@given(st.integers(min_value=-10_000, max_value=MAX_TIMEOUT_S * 1000))
def test_the_switch_fires_no_sooner_than_asked_nor_before_the_venues_minimum(
    ahead_ms: int,
) -> None:
    timeout = timeout_for(NOW_MS + ahead_ms, NOW_MS)
    assert MIN_TIMEOUT_S <= timeout <= MAX_TIMEOUT_S
    assert timeout * 1000 >= ahead_ms  # never sooner than asked
    if ahead_ms >= MIN_TIMEOUT_S * 1000:
        assert timeout * 1000 - ahead_ms < 1000  # and later by under a second


def test_more_than_a_day_ahead_is_refused() -> None:
    with pytest.raises(ValueError, match="at most 86400 s ahead"):
        timeout_for(NOW_MS + MAX_TIMEOUT_S * 1000 + 1, NOW_MS)


def test_the_query_answer() -> None:
    assert parse_setting(ANSWERS["get_dcp"]["data"]) == DcpSetting(
        5, ("BTC-USDT", "ETH-USDT"), 1729241308
    )
    assert parse_setting(None) is None
    assert parse_setting({"timeout": -1}) is None
    with pytest.raises(MalformedAnswer):
        parse_setting({"timeout": 5, "triggerTime": "soon"})
