"""KuCoin's account reads, pure: balances, the spot AccountState, /hf/fills and the KCS fee
mark, on the specification's example answers."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mm.model import Balance, Side
from mm.venues.kucoin.account import (
    account_state,
    kcs_fee_fills,
    parse_balances,
    parse_fills,
)
from mm.venues.kucoin.codec import CodecError
from mm.venues.kucoin.ids import order_id, trade_id
from tests.fixture_paths import KUCOIN

ANSWERS: dict[str, Any] = json.loads((KUCOIN / "rest_orders.json").read_text(encoding="utf-8"))


def test_the_trade_account_is_read_and_the_funding_account_skipped() -> None:
    balances = parse_balances(ANSWERS["accounts"]["data"])
    assert balances == (Balance("USDT", 26.66759503, 26.66759503, 0.0),)


def test_the_spot_account_is_valued_in_its_quote_currency_only() -> None:
    balances = (Balance("USDT", 120.0, 100.0, 20.0), Balance("BTC", 1.0, 1.0, 0.0))
    state = account_state(balances, "USDT", 1_000)
    assert (state.account_value, state.withdrawable, state.margin_used) == (120.0, 100.0, 0.0)
    assert state.positions == ()
    assert state.balances == balances
    assert account_state(balances, "EUR", 1_000).account_value == 0.0


@pytest.mark.parametrize(
    "change",
    [
        {"balance": "1e3"},
        {"balance": 26.6},
        {"type": None},
        {"currency": ""},
    ],
)
def test_a_malformed_account_is_refused(change: dict[str, Any]) -> None:
    entry = ANSWERS["accounts"]["data"][0] | change
    with pytest.raises(CodecError, match="malformed accounts"):
        parse_balances([entry])


def test_the_fills_answer_reads_as_the_ports_fills_with_the_venues_fee() -> None:
    page = parse_fills(ANSWERS["hf_fills"]["data"])
    assert page.last_id == 19814995255305
    (fill,) = page.fills
    assert (fill.coin, fill.side, fill.px, fill.sz) == ("BTC-USDT", Side.BUY, 67717.6, 0.00001)
    assert fill.oid == order_id("6717422bd51c29000775ea03")
    assert fill.tid == trade_id(11029373945659392)
    assert (fill.fee, fill.fee_token, fill.crossed) == (0.000677176, "USDT", True)
    assert fill.time_ms == 1729577515473
    assert fill.cloid is None


@pytest.mark.parametrize(
    "change",
    [{"side": "long"}, {"liquidity": "both"}, {"createdAt": "1729577515473"}, {"tradeId": -1}],
)
def test_a_malformed_fill_is_refused(change: dict[str, Any]) -> None:
    data = copy.deepcopy(ANSWERS["hf_fills"]["data"])
    data["items"][0] |= change
    with pytest.raises(CodecError, match="malformed fills"):
        parse_fills(data)


def test_a_fee_paid_in_kcs_on_a_symbol_not_quoted_in_kcs_is_marked() -> None:
    (usdt,) = parse_fills(ANSWERS["hf_fills"]["data"]).fills
    in_kcs = copy.deepcopy(ANSWERS["hf_fills"]["data"])
    in_kcs["items"][0]["feeCurrency"] = "KCS"
    (kcs,) = parse_fills(in_kcs).fills
    quotes = {"BTC-USDT": "USDT", "BTC-KCS": "KCS"}
    assert kcs_fee_fills([usdt, kcs], quotes) == [kcs]
    # On a symbol quoted in KCS the fee is in KCS anyway: no mark.
    quoted_in_kcs = copy.deepcopy(in_kcs)
    quoted_in_kcs["items"][0]["symbol"] = "BTC-KCS"
    assert kcs_fee_fills(parse_fills(quoted_in_kcs).fills, quotes) == []


@given(
    st.lists(
        st.tuples(
            st.sampled_from(["USDT", "BTC", "ETH"]),
            st.decimals(min_value=0, max_value=10**9, places=8),
            st.decimals(min_value=0, max_value=10**9, places=8),
        ),
        max_size=6,
    )
)
def test_balances_total_available_plus_holds(entries: list[Any]) -> None:
    data = [
        {
            "id": str(i),
            "currency": currency,
            "type": "trade",
            "balance": f"{available + holds:f}",
            "available": f"{available:f}",
            "holds": f"{holds:f}",
        }
        for i, (currency, available, holds) in enumerate(entries)
    ]
    balances = parse_balances(data)
    assert [b.currency for b in balances] == [e[0] for e in entries]
    for balance, (_, available, holds) in zip(balances, entries, strict=True):
        assert balance.total == float(available + holds)
        assert (balance.available, balance.hold) == (float(available), float(holds))
