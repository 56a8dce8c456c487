"""Every recorded KuCoin message the adapter reads parses with the adapter's own parser.

Each entry of the fixture files is routed to the parser of its kind; a message the adapter
sends (a request), or does not subscribe to, is listed as such, so that an entry added to a
fixture file without a parser here fails this test instead of passing unread.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest

from mm.venues.kucoin import account, order_answers
from mm.venues.kucoin.answers import unwrap
from mm.venues.kucoin.codec import (
    parse_depth5,
    parse_level2_increment,
    parse_level2_snapshot,
    parse_match,
    parse_ticker,
)
from mm.venues.kucoin.deadman import parse_armed, parse_setting
from mm.venues.kucoin.instruments import parse_symbols, parse_trade_fees
from mm.venues.kucoin.orders import parse_order_change
from mm.venues.kucoin.ws_protocol import Kind, classify, parse_bullet
from tests.fixture_paths import KUCOIN


def _load(name: str) -> dict[str, Any]:
    entries: dict[str, Any] = json.loads((KUCOIN / f"{name}.json").read_text(encoding="utf-8"))
    return {key: value for key, value in entries.items() if key != "_source"}


def _answer(parse: Callable[[Any], Any]) -> Callable[[Any], Any]:
    """A REST answer: its envelope opened, then its data parsed."""
    return lambda message: parse(unwrap(200, json.dumps(message)))


def _ticker(message: Any) -> Any:
    return parse_ticker(message["topic"], message["subject"], message["data"])


def _control(message: Any) -> Any:
    received = classify(json.dumps(message))
    assert received.kind in (Kind.WELCOME, Kind.PONG, Kind.ACK) or message["type"] in (
        "ping",
        "subscribe",
    )
    return received


PARSERS: dict[str, dict[str, Callable[[Any], Any]]] = {
    "messages": {
        **{
            key: parse_order_change
            for key in (
                "tradeOrdersV2_received",
                "tradeOrdersV2_open",
                "tradeOrdersV2_match_taker",
                "tradeOrdersV2_filled",
                "tradeOrdersV2_canceled",
                "tradeOrdersV2_update",
                "new_spec_tradeOrdersV2_received",
            )
        },
        "new_spec_ticker": _ticker,
        "new_spec_level2Depth5": parse_depth5,
        "new_spec_level2_increment": lambda message: parse_level2_increment(message["data"]),
        "legacy_level2_increment": lambda message: parse_level2_increment(message["data"]),
        **{key: _control for key in ("ws_welcome", "ws_ping", "ws_pong", "ws_subscribe", "ws_ack")},
        "bullet_private_response": _answer(parse_bullet),
        "rest_add_order_sync_response": _answer(order_answers.parse_sync),
        "rest_modify_response": _answer(order_answers.parse_alter),
        "rest_dcp_response": _answer(parse_armed),
        "rest_symbol_BTC-USDT": lambda entry: parse_symbols([entry]),
        "rest_hf_fill": lambda entry: account.parse_fills({"items": [entry], "lastId": 1}),
    },
    "rest_orders": {
        "accounts": _answer(account.parse_balances),
        "hf_fills": _answer(account.parse_fills),
        "add_order_sync": _answer(order_answers.parse_sync),
        "batch_add_orders_sync": _answer(lambda data: order_answers.parse_multi_sync(data, 2)),
        "modify_order": _answer(order_answers.parse_alter),
        "get_order_by_order_id": _answer(order_answers.parse_order),
        "get_open_orders": _answer(order_answers.parse_orders),
        "set_dcp": _answer(parse_armed),
        "get_dcp": _answer(parse_setting),
    },
    "ws_market": {
        "ticker": _ticker,
        "all_tickers": _ticker,
        "match": lambda message: parse_match(message["data"]),
    },
    "rest_level2": {
        "full_orderbook_response": _answer(lambda data: parse_level2_snapshot(data, "BTC-USDT")),
    },
    "rest_trade_fees": {"trade_fees_response": _answer(parse_trade_fees)},
}
# What the adapter sends, or never reads, and where else an entry is checked.
NOT_READ: dict[str, set[str]] = {
    "messages": {
        "rest_add_order_request",  # requests mm sends (tests/venues/kucoin/test_client.py)
        "rest_modify_request",
        "rest_dcp_request",
        "rest_add_order_response",  # the asynchronous place's answer: mm places by /sync
        "new_spec_level1",  # /spotMarket/level1: mm reads level 2 and tickers
        "signature_vectors",  # tests/venues/kucoin/test_signing.py
    },
}


@pytest.mark.parametrize("name", sorted(PARSERS))
def test_every_entry_has_its_parser_or_says_why_not(name: str) -> None:
    assert set(_load(name)) == set(PARSERS[name]) | NOT_READ.get(name, set())


@pytest.mark.parametrize(
    ("name", "key"), [(name, key) for name, parsers in PARSERS.items() for key in parsers]
)
def test_every_recorded_message_parses(name: str, key: str) -> None:
    assert PARSERS[name][key](_load(name)[key]) is not None
