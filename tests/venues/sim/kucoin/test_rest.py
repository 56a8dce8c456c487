"""The KuCoin face's REST endpoints, called as a client would (signed with the adapter's own
signing), read back with the adapter's own parsers: the two sides agree on the wire."""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mm.secrets import Secret
from mm.venues.kucoin.answers import KucoinError, unwrap
from mm.venues.kucoin.instruments import parse_symbols, parse_trade_fees
from mm.venues.kucoin.signing import Credentials, endpoint, sign_request
from mm.venues.sim.kucoin.ledger import SpotLedger
from mm.venues.sim.kucoin.rest import KucoinRest, Response
from mm.venues.sim.kucoin.spot import SpotExchange
from tests.venues.sim.kucoin.test_spot import BTC_USDT, MAKER, TAKER

D = Decimal
KEY = Credentials(Secret("mm-sim-key"), Secret("mm-sim-secret"), Secret("mm-sim-passphrase"))
OTHER = Credentials(Secret("other-key"), Secret("other-secret"), Secret("other-pass"), "3")
NOW_NS = 1_729_577_515_444_000_000
NOW_MS = NOW_NS // 1_000_000


def face() -> KucoinRest:
    ledger = SpotLedger()
    for user in ("trader", "other"):
        ledger.fund(user, "USDT", D(100_000))
        ledger.fund(user, "BTC", D(1))
    exchange = SpotExchange([BTC_USDT], ledger, lambda user, symbol: (MAKER, TAKER))
    keys = {"mm-sim-key": KEY, "other-key": OTHER}
    return KucoinRest(exchange, keys, {"mm-sim-key": "trader", "other-key": "other"})


def call(
    rest: KucoinRest,
    method: str,
    path: str,
    query: dict[str, str] | None = None,
    body: dict[str, Any] | None = None,
    *,
    credentials: Credentials | None = KEY,
    signed_ms: int = NOW_MS,
) -> Response:
    text = json.dumps(body, separators=(",", ":")) if body is not None else ""
    headers = {}
    if credentials is not None:
        headers = sign_request(credentials, signed_ms, method, endpoint(path, query), text)
    query_text = "&".join(f"{k}={v}" for k, v in (query or {}).items())
    return rest.handle(method, path, query_text, headers, text.encode(), NOW_NS)


def data(response: Response) -> Any:
    return unwrap(response.status, response.body)


def test_public_endpoints_read_back_with_the_adapters_parsers() -> None:
    rest = face()
    assert data(call(rest, "GET", "/api/v1/timestamp", credentials=None)) == NOW_MS
    (spec,) = parse_symbols(data(call(rest, "GET", "/api/v2/symbols", credentials=None)))
    assert spec.instrument.price_increment == BTC_USDT.price_increment
    assert spec.instrument.size_increment == BTC_USDT.base_increment
    assert spec.quote_increment == BTC_USDT.quote_increment
    assert spec.fee_currency == "USDT"


def test_an_order_s_life_over_rest() -> None:
    rest = face()
    order = {
        "symbol": "BTC-USDT",
        "side": "buy",
        "type": "limit",
        "price": "50000",
        "size": "0.1",
        "clientOid": "mm-1",
    }
    placed = data(call(rest, "POST", "/api/v1/hf/orders", body=order))
    oid = placed["orderId"]
    assert placed["clientOid"] == "mm-1"
    (active,) = data(call(rest, "GET", "/api/v1/hf/orders/active", {"symbol": "BTC-USDT"}))
    assert (active["id"], active["price"], active["size"], active["active"]) == (
        oid,
        "50000",
        "0.1",
        True,
    )
    assert active["inOrderBook"] is True
    by_id = data(call(rest, "GET", f"/api/v1/hf/orders/{oid}", {"symbol": "BTC-USDT"}))
    by_client = data(
        call(rest, "GET", "/api/v1/hf/orders/client-order/mm-1", {"symbol": "BTC-USDT"})
    )
    assert by_id == by_client == active
    accounts = {a["currency"]: a for a in data(call(rest, "GET", "/api/v1/accounts"))}
    assert accounts["USDT"]["holds"] == "5005"  # 5,000 and the most it can pay in fees
    assert accounts["USDT"]["available"] == "94995"
    cancelled = data(
        call(rest, "DELETE", "/api/v1/hf/orders/client-order/mm-1", {"symbol": "BTC-USDT"})
    )
    assert cancelled == {"clientOid": "mm-1"}
    done = data(call(rest, "GET", f"/api/v1/hf/orders/{oid}", {"symbol": "BTC-USDT"}))
    assert (done["active"], done["cancelledSize"], done["inOrderBook"]) == (False, "0.1", False)
    assert [c.type for c in rest.changes] == ["received", "open", "canceled"]
    with pytest.raises(KucoinError, match="400100: order not exist"):
        data(call(rest, "DELETE", f"/api/v1/hf/orders/{oid}", {"symbol": "BTC-USDT"}))


def test_a_trade_between_two_accounts_and_cancel_all() -> None:
    rest = face()
    ask = {"symbol": "BTC-USDT", "side": "sell", "price": "60000", "size": "0.5"}
    data(call(rest, "POST", "/api/v1/hf/orders", body=ask, credentials=OTHER))
    bid = {"symbol": "BTC-USDT", "side": "buy", "type": "market", "funds": "6006"}
    oid = data(call(rest, "POST", "/api/v1/hf/orders", body=bid))["orderId"]
    bought = data(call(rest, "GET", f"/api/v1/hf/orders/{oid}", {"symbol": "BTC-USDT"}))
    assert (bought["dealSize"], bought["dealFunds"], bought["fee"]) == ("0.1", "6000", "6")
    accounts = {
        a["currency"]: a for a in data(call(rest, "GET", "/api/v1/accounts", {"type": "trade"}))
    }
    assert accounts["BTC"]["balance"] == "1.1"
    assert accounts["USDT"]["balance"] == "93994"
    assert (
        data(call(rest, "DELETE", "/api/v1/hf/orders", {"symbol": "BTC-USDT"}, credentials=OTHER))
        == "success"
    )
    assert (
        data(
            call(rest, "GET", "/api/v1/hf/orders/active", {"symbol": "BTC-USDT"}, credentials=OTHER)
        )
        == []
    )
    fees = parse_trade_fees(data(call(rest, "GET", "/api/v1/trade-fees", {"symbols": "BTC-USDT"})))
    assert (fees["BTC-USDT"].maker, fees["BTC-USDT"].taker) == (MAKER, TAKER)


def test_the_query_is_verified_as_it_reads_not_as_encoded() -> None:
    """A client signs ``symbols=BTC-USDT`` and sends it URL-encoded (the official SDK encodes
    what it sends and signs it as it reads; here the dash as ``%2D``): the signature holds."""
    rest = face()
    query = {"symbols": "BTC-USDT"}
    headers = sign_request(KEY, NOW_MS, "GET", endpoint("/api/v1/trade-fees", query), "")
    sent = rest.handle("GET", "/api/v1/trade-fees", "symbols=BTC%2DUSDT", headers, b"", NOW_NS)
    assert sent.status == 200, sent.body


def test_a_test_order_is_checked_and_never_placed() -> None:
    rest = face()
    good = {"symbol": "BTC-USDT", "side": "buy", "price": "50000", "size": "0.1"}
    assert data(call(rest, "POST", "/api/v1/hf/orders/test", body=good))["orderId"]
    assert not rest.exchange.live
    with pytest.raises(KucoinError, match="Order size increment invalid"):
        data(
            call(rest, "POST", "/api/v1/hf/orders/test", body=good | {"size": "0.6930000000000001"})
        )


@pytest.mark.parametrize(
    ("kwargs", "status", "code"),
    [
        ({"credentials": None}, 401, "400001"),
        ({"signed_ms": NOW_MS - 5_001}, 401, "400002"),
        ({"credentials": Credentials(Secret("nobody"), Secret("s"), Secret("p"))}, 401, "400003"),
        ({"credentials": Credentials(KEY.key, KEY.secret, Secret("wrong"))}, 401, "400004"),
        # Another secret signs the passphrase wrong too: that is checked first.
        ({"credentials": Credentials(KEY.key, Secret("wrong"), KEY.passphrase)}, 401, "400004"),
    ],
)
def test_authentication_refusals(kwargs: dict[str, Any], status: int, code: str) -> None:
    response = call(face(), "GET", "/api/v1/accounts", **kwargs)
    assert response.status == status
    assert response.json()["code"] == code


def test_a_body_other_than_the_one_signed_is_a_wrong_signature() -> None:
    rest = face()
    signed = '{"symbol":"BTC-USDT","side":"buy","price":"50000","size":"0.1"}'
    headers = sign_request(KEY, NOW_MS, "POST", "/api/v1/hf/orders", signed)
    sent = signed.replace("0.1", "0.2").encode()
    response = rest.handle("POST", "/api/v1/hf/orders", "", headers, sent, NOW_NS)
    assert (response.status, response.json()) == (
        401,
        {"code": "400005", "msg": "Invalid KC-API-SIGN"},
    )
    assert not rest.exchange.live


@pytest.mark.parametrize(
    ("method", "path", "body", "status", "code"),
    [
        ("GET", "/api/v1/nothing", None, 404, "404000"),
        ("POST", "/api/v1/hf/orders", {"symbol": "DOGE-USDT", "side": "buy"}, 400, "400100"),
        (
            "POST",
            "/api/v1/hf/orders",
            {"symbol": "BTC-USDT", "side": "buy", "price": 5, "size": "1"},
            400,
            "400100",
        ),
        (
            "POST",
            "/api/v1/hf/orders",
            {"symbol": "BTC-USDT", "side": "buy", "price": "60000", "size": "2"},
            200,
            "200004",
        ),
        (
            "POST",
            "/api/v1/hf/orders",
            {"symbol": "BTC-USDT", "side": "buy", "price": "6", "size": "1", "clientOid": "x" * 41},
            400,
            "400100",
        ),
        ("GET", "/api/v1/trade-fees", None, 400, "400100"),
    ],
)
def test_request_refusals(
    method: str, path: str, body: dict[str, Any] | None, status: int, code: str
) -> None:
    response = call(face(), method, path, body=body)
    assert (response.status, response.json()["code"]) == (status, code)


@given(
    method=st.sampled_from(["GET", "POST", "DELETE", "PUT"]),
    path=st.sampled_from(
        [
            "/api/v1/hf/orders",
            "/api/v1/hf/orders/test",
            "/api/v1/accounts",
            f"/api/v1/hf/orders/{'a' * 24}",
            "/api/v1/hf/orders/client-order/x",
            "/api/v1/hf/orders/sync",
            "/api/v1/hf/orders/multi",
            "/api/v1/hf/orders/multi/sync",
            "/api/v1/hf/orders/alter",
            "/api/v1/hf/orders/cancelAll",
            f"/api/v1/hf/orders/sync/{'a' * 24}",
            "/api/v1/hf/orders/sync/client-order/x",
            "/api/v1/hf/orders/done",
            "/api/v1/hf/fills",
            "/api/v1/hf/orders/dead-cancel-all",
            "/api/v1/hf/orders/dead-cancel-all/query",
        ]
    )
    | st.text(max_size=40),
    body=st.binary(max_size=200)
    | st.dictionaries(
        st.sampled_from(
            [
                "symbol",
                "side",
                "type",
                "price",
                "size",
                "funds",
                "timeInForce",
                "postOnly",
                "clientOid",
                "orderList",
                "orderId",
                "newPrice",
                "newSize",
                "timeout",
                "symbols",
            ]
        ),
        st.none()
        | st.booleans()
        | st.integers()
        | st.text(max_size=12)
        | st.sampled_from(["BTC-USDT", "buy", "sell", "limit", "market", "60000", "0.1", "IOC"])
        | st.lists(
            st.dictionaries(
                st.sampled_from(["symbol", "side", "price", "size", "type"]),
                st.sampled_from(["BTC-USDT", "buy", "limit", "60000", "0.1"])
                | st.integers()
                | st.lists(st.integers(), max_size=2),
            )
            | st.integers(),
            max_size=7,
        ),
    ).map(lambda d: json.dumps(d).encode()),
    query=st.text(max_size=30)
    | st.sampled_from(
        [
            "symbol=BTC-USDT",
            "symbol=BTC-USDT&limit=500",
            "symbol=BTC-USDT&lastId=-1&side=buy",
            "symbol=BTC-USDT&startAt=99999999999999999999999",
            "symbol=BTC-USDT&orderId=x&type=market",
            "symbol=BTC-USDT&limit=%C2%B2",
        ]
    ),
)
def test_no_request_makes_the_face_raise(method: str, path: str, body: bytes, query: str) -> None:
    rest = face()
    text = body.decode(errors="replace")
    headers = sign_request(KEY, NOW_MS, method, f"{path}?{query}" if query else path, text)
    response = rest.handle(method, path, query, headers, body, NOW_NS)
    answer = response.json()
    assert type(answer["code"]) is str
    assert response.status in (200, 400, 401, 404)
