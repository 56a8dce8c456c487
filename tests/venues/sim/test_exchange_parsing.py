"""The ``/exchange`` body checks give the same answers since they build a reason only on failure.

``mm.venues.sim.hyperliquid.exchange`` once formatted every check's reason (the JSON type of
what was sent, through ``_got``) before making the check, for each field of each order of a
batch. It now formats a reason only for the check that fails. The reference below is the
earlier code, kept verbatim but for its names: hypothesis holds the parsers to it, result for
result and reason for reason, on order wires, cancels and modify targets with fields deleted
or replaced by JSON values of every type.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any, cast

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mm.venues.sim.engine import OrderRequest
from mm.venues.sim.hyperliquid import exchange
from mm.venues.sim.hyperliquid.exchange import ExchangeError
from mm.venues.sim.hyperliquid.info import deserialize_error, json_type
from tests.venues.hyperliquid.test_parsers_fuzz import JSON, mutated

CLOID = re.compile(r"^0x[0-9a-fA-F]{32}$")
_MISSING: Any = exchange._MISSING  # the sentinel both sides compare with
CHECKS = settings(
    max_examples=400,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


# --- the reference: the checks as they were, each reason formatted before its check --------------


def _require(condition: bool, reason: str) -> None:
    if not condition:
        raise ExchangeError(deserialize_error(reason))


def _got(value: Any) -> str:
    return "missing" if value is _MISSING else f"got {json_type(value)}"


def _object(value: Any, path: str) -> Mapping[str, Any]:
    _require(isinstance(value, Mapping), f"{path}: expected an object, {_got(value)}")
    return cast(Mapping[str, Any], value)


def _cloid(value: Any, path: str) -> str | None:
    if value is None or value is _MISSING:
        return None
    _require(
        isinstance(value, str) and CLOID.match(value) is not None,
        f"{path}: expected a cloid, 0x and 32 hex digits",
    )
    return str(value).lower()


def reference_parse_order(wire_order: Any, path: str = "order") -> OrderRequest:
    order = _object(wire_order, path)
    asset, is_buy = order.get("a", _MISSING), order.get("b", _MISSING)
    px, sz = order.get("p", _MISSING), order.get("s", _MISSING)
    reduce_only = order.get("r", False)
    order_type = order.get("t", _MISSING)
    _require(type(asset) is int, f"{path}.a: expected an asset index (integer), {_got(asset)}")
    _require(type(is_buy) is bool, f"{path}.b: expected a boolean, {_got(is_buy)}")
    _require(isinstance(px, str), f"{path}.p: expected a decimal string, {_got(px)}")
    _require(isinstance(sz, str), f"{path}.s: expected a decimal string, {_got(sz)}")
    _require(type(reduce_only) is bool, f"{path}.r: expected a boolean, {_got(reduce_only)}")
    _require(
        isinstance(order_type, Mapping) and len(order_type) == 1,
        f"{path}.t: expected an object with one of limit or trigger",
    )
    limit = order_type.get("limit")
    if limit is None:
        _require("trigger" in order_type, f"{path}.t: expected one of limit or trigger")
        tif = "Trigger"
    else:
        _require(
            isinstance(limit, Mapping) and isinstance(limit.get("tif"), str),
            f"{path}.t.limit.tif: expected a string",
        )
        tif = limit["tif"]
    return OrderRequest(
        asset=asset,
        is_buy=is_buy,
        px=px,
        sz=sz,
        reduce_only=reduce_only,
        tif=tif,
        cloid=_cloid(order.get("c"), f"{path}.c"),
    )


def reference_cancel(entry: Any, index: int) -> tuple[int, int]:
    path = f"cancels[{index}]"
    cancel = _object(entry, path)
    asset, oid = cancel.get("a", _MISSING), cancel.get("o", _MISSING)
    _require(type(asset) is int, f"{path}.a: expected an integer, {_got(asset)}")
    _require(type(oid) is int, f"{path}.o: expected an integer, {_got(oid)}")
    return asset, oid


def reference_cancel_by_cloid(entry: Any, index: int) -> tuple[int, str]:
    path = f"cancels[{index}]"
    cancel = _object(entry, path)
    asset = cancel.get("asset", _MISSING)
    _require(type(asset) is int, f"{path}.asset: expected an integer, {_got(asset)}")
    cloid = _cloid(cancel.get("cloid", _MISSING), f"{path}.cloid")
    _require(cloid is not None, f"{path}.cloid: missing")
    assert cloid is not None
    return asset, cloid


def reference_target(value: Any, path: str) -> int | str:
    if type(value) is int:
        return value
    _require(
        isinstance(value, str) and CLOID.match(value) is not None,
        f"{path}: expected an order id (integer) or a cloid (0x and 32 hex digits), {_got(value)}",
    )
    return str(value).lower()


# --- the comparison ------------------------------------------------------------------------------


def outcome(parse: Callable[[], Any]) -> tuple[str, Any]:
    """What a parser gives: ("ok", its result) or ("422", the reason)."""
    try:
        return "ok", parse()
    except ExchangeError as error:
        return "422", str(error)


ORDER = {
    "a": 0,
    "b": True,
    "p": "3000.5",
    "s": "0.01",
    "r": False,
    "t": {"limit": {"tif": "Ioc"}},
    "c": "0x" + "Ab" * 16,
}
ORDERS = [ORDER, {**ORDER, "t": {"trigger": {"isMarket": True}}}, {**ORDER, "c": None}]
VALUES = JSON | st.sampled_from([_MISSING, "0x" + "cd" * 16, "0x12", "Gtc", 7, True, None])


@CHECKS
@given(st.data(), st.integers(min_value=0, max_value=99))
def test_an_order_parses_as_it_did(data: st.DataObject, index: int) -> None:
    wire = data.draw(mutated(ORDERS, JSON) | st.sampled_from(ORDERS) | JSON)
    path = f"orders[{index}]"
    expected = outcome(lambda: reference_parse_order(wire, path))
    assert outcome(lambda: exchange.parse_order(wire, path)) == expected
    assert outcome(lambda: exchange.parse_order(wire)) == outcome(
        lambda: reference_parse_order(wire)
    )


@CHECKS
@given(st.data(), st.integers(min_value=0, max_value=99))
def test_cancels_and_targets_parse_as_they_did(data: st.DataObject, index: int) -> None:
    by_oid = data.draw(mutated([{"a": 0, "o": 12}], JSON) | JSON)
    assert outcome(lambda: exchange._cancel(by_oid, index)) == outcome(
        lambda: reference_cancel(by_oid, index)
    )
    by_cloid = data.draw(mutated([{"asset": 1, "cloid": "0x" + "eF" * 16}], JSON) | JSON)
    assert outcome(lambda: exchange._cancel_by_cloid(by_cloid, index)) == outcome(
        lambda: reference_cancel_by_cloid(by_cloid, index)
    )
    target = data.draw(VALUES)
    assert outcome(lambda: exchange._target(target, "oid")) == outcome(
        lambda: reference_target(target, "oid")
    )


def test_each_order_check_fails_with_its_reason() -> None:
    """The comparison above is not vacuous: every check can fail, each with its own reason."""
    broken = {
        "a": ({**ORDER, "a": "0"}, "orders[3].a: expected an asset index (integer), got string"),
        "b": ({**ORDER, "b": 1}, "orders[3].b: expected a boolean, got number"),
        "p": ({**ORDER, "p": 3000}, "orders[3].p: expected a decimal string, got number"),
        "s": (
            {k: v for k, v in ORDER.items() if k != "s"},
            "orders[3].s: expected a decimal string, missing",
        ),
        "r": ({**ORDER, "r": None}, "orders[3].r: expected a boolean, got null"),
        "t": ({**ORDER, "t": {}}, "orders[3].t: expected an object with one of limit or trigger"),
        "t.x": ({**ORDER, "t": {"x": 1}}, "orders[3].t: expected one of limit or trigger"),
        "tif": ({**ORDER, "t": {"limit": {}}}, "orders[3].t.limit.tif: expected a string"),
        "c": ({**ORDER, "c": "0x1"}, "orders[3].c: expected a cloid, 0x and 32 hex digits"),
        "order": ([ORDER], "orders[3]: expected an object, got array"),
    }
    for wire, reason in broken.values():
        with pytest.raises(ExchangeError) as raised:
            exchange.parse_order(wire, "orders[3]")
        assert str(raised.value) == deserialize_error(reason)
    parsed = exchange.parse_order(ORDER)
    assert parsed == OrderRequest(0, True, "3000.5", "0.01", False, "Ioc", "0x" + "ab" * 16)
