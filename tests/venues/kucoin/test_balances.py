"""KuCoin's balance pushes: the recorded message parses, and the balances kept from reads and
pushes are the latest of each currency, whatever order late pushes come in."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mm.model import Balance
from mm.venues.kucoin.balances import BalanceChange, SpotBalances, parse_balance_change
from mm.venues.kucoin.codec import CodecError
from tests.fixture_paths import KUCOIN

RECORDED: dict[str, Any] = json.loads(
    (KUCOIN / "ws_account_balance.json").read_text(encoding="utf-8")
)["message"]


def test_the_recorded_push_parses() -> None:
    change = parse_balance_change(RECORDED["data"])
    assert change.balance == Balance("USDT", 21.133773386762, 20.132773386762, 1.001)
    assert change.time_ms == 1_730_269_283_892
    assert change.event == "trade.hold"
    assert change.of_trade_account


@pytest.mark.parametrize(
    ("event", "trade"),
    [
        ("trade.setted", True),
        ("trade_hf.hold", True),
        ("main.deposit", False),
        ("margin.hold", False),
    ],
)
def test_only_the_trade_account_s_events_are_its_balances(event: str, trade: bool) -> None:
    data = RECORDED["data"] | {"relationEvent": event}
    assert parse_balance_change(data).of_trade_account is trade


@pytest.mark.parametrize(
    "broken",
    [
        {"total": 21.1},  # a number, not the venue's string
        {"total": "1e3"},
        {"hold": "-1"},
        {"time": "17302692838.92"},
        {"time": 1730269283892},
        {"currency": ""},
        {"relationEvent": None},
    ],
)
def test_a_malformed_push_is_refused_saying_why(broken: dict[str, Any]) -> None:
    data = copy.deepcopy(RECORDED["data"]) | broken
    with pytest.raises(CodecError, match="malformed balance change"):
        parse_balance_change(data)
    for key in ("available", "currency", "time"):
        missing = dict(RECORDED["data"])
        del missing[key]
        with pytest.raises(CodecError, match=key):
            parse_balance_change(missing)


def _change(currency: str, total: float, time_ms: int) -> BalanceChange:
    return BalanceChange(Balance(currency, total, total, 0.0), time_ms, "trade.setted")


def test_a_read_resets_and_a_stale_push_does_not_roll_back() -> None:
    balances = SpotBalances()
    balances.reset([Balance("USDT", 100.0, 90.0, 10.0), Balance("BTC", 1.0, 1.0, 0.0)], 1_000)
    assert balances.apply(_change("USDT", 95.0, 999)) is False  # counted by the read already
    assert balances.apply(_change("ETH", 2.0, 999)) is True  # a currency the read did not hold
    assert balances.apply(_change("USDT", 95.0, 1_001)) is True
    assert balances.balances() == (
        Balance("BTC", 1.0, 1.0, 0.0),
        Balance("ETH", 2.0, 2.0, 0.0),
        Balance("USDT", 95.0, 95.0, 0.0),
    )


@given(
    st.lists(
        st.tuples(st.sampled_from(["USDT", "BTC", "ETH"]), st.integers(0, 50)),
        min_size=1,
        max_size=30,
    ),
    st.randoms(use_true_random=False),
)
def test_pushes_in_any_order_end_at_each_currency_s_newest(
    history: list[tuple[str, int]], shuffle: Any
) -> None:
    """The venue's pushes of a currency, each its balance at its time (distinct times), delivered
    in any order: what is kept is each currency's newest."""
    changes = [
        _change(currency, float(index), 1_000 + index)
        for index, (currency, _) in enumerate(history)
    ]
    delivered = list(changes)
    shuffle.shuffle(delivered)
    balances = SpotBalances()
    for change in delivered:
        balances.apply(change)
    newest = {change.balance.currency: change.balance for change in changes}
    assert balances.balances() == tuple(newest[name] for name in sorted(newest))
