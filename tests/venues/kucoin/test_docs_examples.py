"""KuCoin's published examples (``docs_examples.json``) through the adapter's parsers: the
documented error bodies as the port's errors, a market buy by funds ending in its dust cancel,
and a maker's match, each as the port's reports and fills."""

from __future__ import annotations

import copy
import json
import re
from decimal import Decimal
from typing import Any

import pytest

from mm.model import OrderStatus, Side
from mm.venues.base import RateLimited
from mm.venues.kucoin.answers import KucoinError, unwrap
from mm.venues.kucoin.codec import CodecError
from mm.venues.kucoin.ids import order_id, trade_id
from mm.venues.kucoin.orders import fill, order_report, parse_order_change
from tests.fixture_paths import KUCOIN

EXAMPLES: dict[str, Any] = json.loads((KUCOIN / "docs_examples.json").read_text(encoding="utf-8"))
ERRORS: dict[str, str] = {k: v for k, v in EXAMPLES["error_bodies"].items() if k != "_source"}
MARKET_BUY: list[dict[str, Any]] = EXAMPLES["market_buy_by_funds"]["messages"]
MAKER, TAKER = 0.001, 0.002


def test_every_entry_names_its_source_and_says_what_was_constructed() -> None:
    for name, entry in EXAMPLES.items():
        if name != "_source":
            assert re.search(r"Kucoin/kucoin-[a-z-]+ @[0-9a-f]{8}", entry["_source"]), name
    for name in ("market_buy_by_funds", "maker_match", "maker_match_labelled_taker", "update_done"):
        assert EXAMPLES[name]["_source"].startswith("CONSTRUCTED"), name
    assert "429000 is CONSTRUCTED" in EXAMPLES["error_bodies"]["_source"]


@pytest.mark.parametrize("code", sorted(set(ERRORS) - {"429000"}))
@pytest.mark.parametrize("http_status", [200, 400])
def test_a_documented_error_body_is_the_venue_s_error_with_its_code(
    code: str, http_status: int
) -> None:
    body = ERRORS[code]
    documented = json.loads(body)
    for sent in (body, body.encode()):
        with pytest.raises(KucoinError) as refused:
            unwrap(http_status, sent)
        error = refused.value
        assert (error.code, error.msg, error.http_status) == (
            code,
            documented["msg"],
            http_status,
        )
        assert code in str(error)


@pytest.mark.parametrize("http_status", [200, 429])
def test_the_capacity_limit_429000_is_rate_limited(http_status: int) -> None:
    with pytest.raises(RateLimited, match="429000"):
        unwrap(http_status, ERRORS["429000"])


def test_a_market_buy_by_funds_takes_the_asks_and_its_dust_is_cancelled() -> None:
    changes = [parse_order_change(message) for message in MARKET_BUY]
    assert [(c.type, c.status) for c in changes] == [
        ("received", "new"),
        ("match", "match"),
        ("match", "match"),
        ("match", "match"),
        ("canceled", "done"),
    ]
    reports = [order_report(change) for change in changes]
    assert [r.status for r in reports] == [OrderStatus.OPEN] * 4 + [OrderStatus.CANCELED]
    oid = order_id("6720da3fa30a360007f5f832")
    for report in reports:
        # By funds: no price and no size of its own; it is done at once, nothing left.
        assert (report.oid, report.coin, report.side) == (oid, "BTC-USDT", Side.BUY)
        assert (report.px, report.orig_sz) == (0.0, 0.0)
        assert report.cloid == "5c52e11203aa677f33e493fc"
        assert report.time_ms == 1_730_206_271_588
    assert reports[-1].sz == 0.0
    assert reports[-1].status_time_ms == 1_730_206_271_616

    fills = [fill(change, TAKER, "USDT") for change in changes if change.type == "match"]
    assert [f.tid for f in fills] == [trade_id(11029373945659392 + n) for n in range(3)]
    assert all(f.crossed for f in fills)
    assert {(f.oid, f.side) for f in fills} == {(oid, Side.BUY)}
    assert [f.px for f in fills] == [4011.32, 4015.6, 4200.0]
    for made, change in zip(fills, (c for c in changes if c.type == "match"), strict=True):
        assert made.fee == pytest.approx(made.px * made.sz * TAKER)
        assert made.sz == change.match_size
    # The matches' sizes add up to what the order filled, as each message counts it.
    sizes = [Decimal(m["data"]["matchSize"]) for m in MARKET_BUY if m["data"]["type"] == "match"]
    totals = [Decimal(m["data"]["filledSize"]) for m in MARKET_BUY[1:]]
    assert totals == [sum(sizes[: n + 1], Decimal(0)) for n in range(3)] + [sum(sizes)]
    assert changes[-1].filled_size == pytest.approx(sum(f.sz for f in fills))


def test_the_dust_cancelled_is_less_than_one_more_increment_at_the_last_price() -> None:
    data = [message["data"] for message in MARKET_BUY]
    funds = Decimal(data[0]["originFunds"])
    spent = sum(
        (Decimal(d["matchPrice"]) * Decimal(d["matchSize"]) for d in data if d["type"] == "match"),
        Decimal(0),
    )
    dust = Decimal(data[-1]["canceledFunds"])
    assert funds - spent == dust
    assert 0 < dust < Decimal(data[-2]["matchPrice"]) * Decimal("0.00000001")


def test_a_maker_match_is_a_fill_not_crossed_and_charged_the_maker_rate() -> None:
    change = parse_order_change(EXAMPLES["maker_match"]["message"])
    assert (change.type, change.status, change.liquidity) == ("match", "open", "maker")
    made = fill(change, MAKER, "USDT")
    assert made.crossed is False
    assert made.fee == pytest.approx(0.96738 * 0.1 * MAKER)
    assert (made.px, made.sz, made.side) == (0.96738, 0.1, Side.SELL)
    assert made.tid == trade_id("5efab07a4ee4c7000a82d6d9")
    assert order_report(change).status is OrderStatus.OPEN  # its "filled" comes next


def test_an_update_that_is_done_ended_the_order() -> None:
    change = parse_order_change(EXAMPLES["update_done"]["message"])
    assert (change.type, change.status, change.filled_size) == ("update", "done", 0.06)
    report = order_report(change)
    assert (report.status, report.sz, report.venue_status) == (OrderStatus.CANCELED, 0.0, "update")
    assert report.oid == order_id("5efab13f53bdea00089971df")


def test_a_maker_match_labelled_taker_is_charged_as_its_fee_type_says() -> None:
    change = parse_order_change(EXAMPLES["maker_match_labelled_taker"]["message"])
    assert (change.liquidity, change.fee_type) == ("taker", "makerFee")
    assert change.taker_fee is False
    assert fill(change, MAKER, "USDT").crossed is True  # the liquidity, as sent
    # Without a feeType the liquidity decides; an unknown feeType is refused.
    assert parse_order_change(EXAMPLES["maker_match"]["message"]).taker_fee is False
    message = copy.deepcopy(EXAMPLES["maker_match_labelled_taker"]["message"])
    message["data"]["feeType"] = "takerFee"
    assert parse_order_change(message).taker_fee is True
    message["data"]["feeType"] = "rebate"
    with pytest.raises(CodecError, match="unknown feeType"):
        parse_order_change(message)
