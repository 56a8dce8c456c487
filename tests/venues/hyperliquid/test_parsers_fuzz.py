"""Every parser of the venue adapter raises only its declared errors, on any input (issue 13, 9).

The venue's JSON is untrusted input, and orjson accepts values nested up to 1,024 levels in a
frame of 2 KB. A parser that took the ``repr`` (or ``str``) of such a value raised
``RecursionError``, which no caller expects: a fill without ``tid`` (its surrogate id) crashed
the user stream, an order status it did not know (its error message) crashed a slot, an error
frame or a candle key crashed the WebSocket's receive loop. Hypothesis feeds every parser:

* arbitrary JSON values, and values nested up to 1,000 levels (arrays, objects, both);
* the recorded fixtures of ``tests/fixtures/hyperliquid`` (every ``/info`` answer, every
  WebSocket frame, order statuses), mutated: a field deleted, replaced by any JSON value, or by
  a deeply nested one, one to three times;
* frames as text, with the nested values spliced in (past what ``orjson.dumps`` will print).

Each parser either returns or raises its declared error (codec: ``CodecError``, and
``VenueRejected`` for whole-request refusals; numbers: ``TypeError``/``ValueError`` or None;
wire: ``ValueError``; the WebSocket manager: nothing, it counts the frame as malformed), and
an error's message stays short whatever the input. The examples are bounded so that the whole
file runs in a few seconds; the regressions of the issue are pinned as explicit examples.
"""

from __future__ import annotations

import contextlib
import copy
import json
import math
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, cast

import orjson
import pytest
import trio
import trio.testing
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from prometheus_client import CollectorRegistry

from mm.model import CancelOrder, ModifyOrder, PlaceOrder, Side, Tif
from mm.venues.base import OrderFateUnknown, VenueError
from mm.venues.hyperliquid import codec, numbers, wire
from mm.venues.hyperliquid.client import HyperliquidClient
from mm.venues.hyperliquid.metrics import AdapterMetrics
from mm.venues.hyperliquid.rate_limit import RateLimiter
from mm.venues.hyperliquid.rest import RestTransport
from mm.venues.hyperliquid.signing import L1Signer
from mm.venues.hyperliquid.ws import WsConnection, frame_key
from tests.fixture_paths import HYPERLIQUID as FIXTURES
from tests.ids import hl_oid

FUZZ = settings(
    max_examples=100,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
MAX_MESSAGE = 600  # an error's message never grows with its input
DEFAULT_RECURSION_LIMIT = 1000

INFO: dict[str, Any] = {
    kind: entry["response"]
    for kind, entry in json.loads((FIXTURES / "info_responses.json").read_text())["info"].items()
}
INFO["orderStatus"] = {"status": "order", "order": INFO["historicalOrders"][0]}
FRAMES: list[Any] = [
    orjson.loads(line)
    for line in (FIXTURES / "ws_frames.jsonl").read_text().splitlines()
    if line.strip()
]
# A fill as older recordings have it, without tid: its id is a surrogate made from its fields.
FILL_WITHOUT_TID = {k: v for k, v in INFO["userFills"][0].items() if k != "tid"}
FRAMES.append({"channel": "user", "data": {"fills": [FILL_WITHOUT_TID]}})
FRAMES.append({"channel": "candle", "data": {"s": "BTC", "i": "1m", "o": "1.0"}})


def ok(kind: str, statuses: list[Any]) -> dict[str, Any]:
    return {"status": "ok", "response": {"type": kind, "data": {"statuses": statuses}}}


ORDER_RESPONSES: list[Any] = [
    ok(
        "order",
        [
            {"resting": {"oid": 88383, "cloid": "0x" + "ab" * 16}},
            {"filled": {"totalSz": "0.02", "avgPx": "1891.4", "oid": 77738308}},
            {"error": "Price must be divisible by tick size. asset=13"},
        ],
    ),
    {"status": "err", "response": "Invalid nonce: duplicate nonce 1."},
]
CANCEL_RESPONSES: list[Any] = [
    ok("cancel", ["success", {"error": "Order was never placed, already canceled, or filled."}])
]
DEFAULT_RESPONSES: list[Any] = [{"status": "ok", "response": {"type": "default"}}]

INFO_PARSERS: dict[str, Callable[[Any], Any]] = {
    "meta": codec.parse_meta,
    "l2Book": codec.parse_l2_book,
    "allMids": codec.parse_all_mids,
    "openOrders": codec.parse_open_orders,
    "frontendOpenOrders": codec.parse_open_orders,
    "userFills": codec.parse_fills,
    "clearinghouseState": codec.parse_clearinghouse_state,
    "userRateLimit": codec.parse_user_rate_limit,
    "historicalOrders": codec.parse_historical_orders,
    "orderStatus": codec.parse_order_status,
}
EXCHANGE_PARSERS: list[tuple[Callable[[Any], Any], list[Any]]] = [
    (codec.parse_order_statuses, ORDER_RESPONSES),
    (codec.parse_cancel_statuses, CANCEL_RESPONSES),
    (codec.parse_default, DEFAULT_RESPONSES),
]

# --- strategies ----------------------------------------------------------------------------------

# Strings a parser may meet where it wants a number, a side, a status or a type.
WORDS = st.sampled_from(
    [
        "1_000", " 12 ", "\u0661\u0662", "\uff11\uff12", "1e5", "1E5", "+1", ".5", "5.", "-",
        "--1", "inf", "-inf",
        "nan", "Infinity", "12\n", "0x10", "1" * 400, "0." + "0" * 400 + "1", "", "-0", "0.0",
        "79146.0", "-3695042.8999999999", "B", "A", "Gtc", "USDC", "ok", "err", "order",
        "unknownOid", "success", "resting", "filled", "error", "info", "action", "post", "user",
        "userFills", "orderUpdates", "l2Book", "trades", "bbo", "allMids", "candle",
        "subscriptionResponse", "pong",
    ]
)  # fmt: skip
KEYS = st.sampled_from(
    sorted(
        {"coin", "px", "sz", "side", "time", "tid", "oid", "hash", "fee", "crossed", "dir",
         "closedPnl", "startPosition", "feeToken", "cloid", "status", "response", "data",
         "statuses", "type", "payload", "id", "channel", "levels", "n", "order", "limitPx",
         "origSz", "timestamp", "statusTimestamp", "universe", "name", "szDecimals",
         "maxLeverage", "mids", "fills", "user", "isSnapshot", "bbo", "liquidation",
         "nonUserCancel", "method", "subscription", "resting", "filled", "error", "totalSz",
         "avgPx", "s", "i", "marginSummary", "accountValue", "assetPositions", "position"}
    )
)  # fmt: skip
LEAVES = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**63), max_value=2**64 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=12)
    | WORDS
)
JSON = st.recursive(
    LEAVES,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(KEYS | st.text(max_size=6), inner, max_size=4)
    ),
    max_leaves=16,
)


def nested_text(depth: int, shape: str) -> str:
    """A JSON value nested ``depth`` levels: arrays, objects, or both in turn."""
    if shape == "arrays":
        return "[" * depth + "]" * depth
    if shape == "objects":
        return '{"a":' * depth + "1" + "}" * depth
    opening = "".join('{"hash":' if level % 2 else "[" for level in range(depth))
    closing = "".join("}" if level % 2 else "]" for level in reversed(range(depth)))
    return opening + "0" + closing


NESTED_TEXT = st.builds(
    nested_text,
    st.integers(min_value=1, max_value=1000) | st.just(1000),
    st.sampled_from(["arrays", "objects", "mixed"]),
)
# Where a nested value goes: MARK, a string that ``materialize`` replaces by a NESTED_TEXT. The
# values hypothesis draws, keeps and prints stay shallow (it cannot print a deep one).
MARK = "@@nested@@"
VALUES = st.just(MARK) | JSON


def paths(value: Any, at: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Every path to a value inside ``value`` (keys and indexes), the root excluded, down to
    12 levels (a nested value already put in is not walked through)."""
    if len(at) >= 12 or not isinstance(value, dict | list):
        return []
    found: list[tuple[Any, ...]] = []
    for key, item in value.items() if isinstance(value, dict) else enumerate(value):
        found.append((*at, key))
        found.extend(paths(item, (*at, key)))
    return found


@st.composite
def mutated(draw: st.DrawFn, documents: list[Any], replacements: st.SearchStrategy[Any]) -> Any:
    """A copy of one of ``documents`` with one to three fields deleted or replaced."""
    document = copy.deepcopy(draw(st.sampled_from(documents)))
    for _ in range(draw(st.integers(min_value=1, max_value=3))):
        where = paths(document)
        if not where:
            break
        *parent_path, key = draw(st.sampled_from(where))
        parent = document
        for step in parent_path:
            parent = parent[step]
        if isinstance(parent, dict) and draw(st.booleans()):
            del parent[key]
        else:
            parent[key] = draw(replacements)
    return document


def frame_text(frame: Any, nested: str) -> str:
    """A frame as text, every MARK string replaced by ``nested`` (JSON of any depth)."""
    return orjson.dumps(frame).decode().replace(orjson.dumps(MARK).decode(), nested)


def materialize(value: Any, nested: str) -> Any:
    """``value`` with every MARK replaced by the nested value (what orjson gives a parser)."""
    return orjson.loads(frame_text(value, nested))


@contextmanager
def service_recursion_limit() -> Iterator[None]:
    """Python's default recursion limit, the service's: hypothesis raises it while a test runs
    (by 2,000 frames), and a ``repr`` of 1,000 nested arrays then succeeds where it fails in mm."""
    raised = sys.getrecursionlimit()
    sys.setrecursionlimit(DEFAULT_RECURSION_LIMIT)
    try:
        yield
    finally:
        sys.setrecursionlimit(raised)


Errors = type[Exception] | tuple[type[Exception], ...]


def only(errors: Errors, parse: Callable[..., Any], *args: Any) -> Any:
    """Call a parser (under the service's recursion limit): it returns, or raises one of
    ``errors`` with a short message."""
    try:
        with service_recursion_limit():
            return parse(*args)
    except errors as error:
        message = str(error)
    assert len(message) <= MAX_MESSAGE, message[:200]
    return message


CODEC_ERRORS = (codec.CodecError,)
EXCHANGE_ERRORS = (codec.CodecError, codec.VenueRejected)

# The regressions, pinned: a 2 KB value of 1,000 nested arrays where a fill without
# tid has its hash, where an order status is, where a cancel status is.
ARRAYS_1000 = nested_text(1000, "arrays")
FILL_DEEP_HASH = [{**FILL_WITHOUT_TID, "hash": MARK}]
STATUS_DEEP = ok("order", [{"unknown": MARK}])
CANCEL_DEEP = ok("cancel", [MARK])
USER_FRAME_DEEP = frame_text({"channel": "user", "data": {"fills": FILL_DEEP_HASH}}, ARRAYS_1000)


# --- the codec -----------------------------------------------------------------------------------


def test_the_regressions_raise_codec_errors() -> None:
    """The frames of the issue: RecursionError escaped from each of these."""
    for parse, value in (
        (codec.parse_fills, FILL_DEEP_HASH),
        (codec.parse_order_statuses, STATUS_DEEP),
        (codec.parse_cancel_statuses, CANCEL_DEEP),
    ):
        with pytest.raises(codec.CodecError) as caught:
            parse(materialize(value, ARRAYS_1000))
        assert len(str(caught.value)) <= MAX_MESSAGE
    with pytest.raises(codec.CodecError, match="malformed user frame"):
        codec.decode_frame(USER_FRAME_DEEP)


@settings(FUZZ, max_examples=200)
@given(st.sampled_from(sorted(INFO_PARSERS)), st.data(), NESTED_TEXT)
def test_info_parsers_raise_only_codec_errors(kind: str, data: st.DataObject, nested: str) -> None:
    answer = data.draw(mutated([INFO[kind]], VALUES) | VALUES, label="answer")
    only(CODEC_ERRORS, INFO_PARSERS[kind], materialize(answer, nested))


@FUZZ
@given(mutated([INFO["userFills"], [FILL_WITHOUT_TID]], VALUES), NESTED_TEXT)
@example(FILL_DEEP_HASH, ARRAYS_1000)
def test_fills_without_tid_raise_only_codec_errors(fills: Any, nested: str) -> None:
    only(CODEC_ERRORS, codec.parse_fills, materialize(fills, nested))


@FUZZ
@given(st.sampled_from(EXCHANGE_PARSERS), st.data(), NESTED_TEXT)
@example((codec.parse_order_statuses, [STATUS_DEEP]), None, ARRAYS_1000)
@example((codec.parse_cancel_statuses, [CANCEL_DEEP]), None, ARRAYS_1000)
def test_exchange_parsers_raise_only_their_errors(
    parser: tuple[Callable[[Any], Any], list[Any]], data: st.DataObject | None, nested: str
) -> None:
    parse, responses = parser
    response = responses[0] if data is None else data.draw(mutated(responses, VALUES) | VALUES)
    only(EXCHANGE_ERRORS, parse, materialize(response, nested))


@FUZZ
@given(mutated(INFO["historicalOrders"][:3], VALUES) | VALUES, NESTED_TEXT)
def test_order_report_parser_raises_only_codec_errors(entry: Any, nested: str) -> None:
    only(CODEC_ERRORS, codec.parse_order_report, materialize(entry, nested))


@FUZZ
@given(mutated(FRAMES, VALUES) | VALUES, NESTED_TEXT)
def test_decode_message_raises_only_codec_errors(message: Any, nested: str) -> None:
    frame = only(CODEC_ERRORS, codec.decode_message, materialize(message, nested))
    if isinstance(frame, codec.PostReply):  # its payload goes to the parsers above
        only(EXCHANGE_ERRORS, codec.parse_order_statuses, frame.payload)
        only(EXCHANGE_ERRORS, codec.parse_cancel_statuses, frame.payload)


@FUZZ
@given(mutated(FRAMES, VALUES), NESTED_TEXT)
@example({"channel": "user", "data": {"fills": FILL_DEEP_HASH}}, ARRAYS_1000)
def test_decode_frame_raises_only_codec_errors_on_any_text(frame: Any, nested: str) -> None:
    text = frame_text(frame, nested)
    only(CODEC_ERRORS, codec.decode_frame, text)
    only(CODEC_ERRORS, codec.decode_frame, text.encode())


@FUZZ
@given(
    st.binary(max_size=64)
    | st.text(max_size=64)
    | NESTED_TEXT
    | NESTED_TEXT.map(lambda t: "[" + t + "]")
)
def test_parse_json_raises_only_codec_errors(body: str | bytes) -> None:  # fmt: skip
    only(CODEC_ERRORS, codec.parse_json, body)
    only(CODEC_ERRORS, codec.decode_frame, body)


# --- numbers and wire -----------------------------------------------------------------------------


@FUZZ
@given(VALUES | WORDS, NESTED_TEXT)
def test_parse_float_raises_only_type_and_value_errors(value: Any, nested: str) -> None:
    result = only((TypeError, ValueError), numbers.parse_float, materialize(value, nested))
    if isinstance(result, float):
        assert math.isfinite(result)


@FUZZ
@given(st.text(max_size=80) | WORDS, st.integers(min_value=0, max_value=8))
def test_decimal_parsers_never_raise_on_a_string(text: str, decimals: int) -> None:
    assert isinstance(numbers.px_ticks(text, decimals), int | None)
    assert isinstance(numbers.sz_lots(text, decimals), int | None)
    assert numbers.parse_decimal(text) is None or numbers.parse_decimal(text).is_finite()  # type: ignore[union-attr]
    only(ValueError, numbers.to_wire, text)
    only(ValueError, numbers.to_display, text)


FLOATS = st.floats() | st.sampled_from([1e300, 1e-300, 5e-324, 1.7976931348623157e308])


@FUZZ
@given(FLOATS, FLOATS, st.integers(min_value=-3, max_value=12), st.sampled_from(Side))
def test_wire_formatting_raises_only_value_errors(
    px: float, sz: float, sz_decimals: int, side: Side
) -> None:
    only(ValueError, wire.format_px, px, sz_decimals, side)
    only(ValueError, wire.format_sz, sz, sz_decimals)
    order = PlaceOrder("BTC", side, px, sz, Tif.GTC, wire.new_cloid())
    only(ValueError, wire.order_wire, order, 0, sz_decimals)


# --- the WebSocket manager -----------------------------------------------------------------------

# Frames the manager itself reads (routing keys, post ids, acknowledgements, error texts).
WS_FRAMES = [
    *FRAMES,
    {"channel": "error", "data": MARK},
    {"channel": "post", "data": {"id": 1, "response": {"type": "info", "payload": {}}}},
    {"channel": "subscriptionResponse", "data": {"method": "subscribe", "subscription": MARK}},
    {"channel": "candle", "data": {"s": "BTC", "i": MARK}},
    {"channel": "userFills", "data": {"user": MARK, "fills": []}},
    {"channel": "trades", "data": [{"coin": MARK}]},
]


@FUZZ
@given(mutated(WS_FRAMES, VALUES) | VALUES, NESTED_TEXT)
def test_frame_key_raises_only_its_declared_errors(frame: Any, nested: str) -> None:
    frame = materialize(frame, nested)
    if isinstance(frame, dict) and isinstance(frame.get("channel"), str):
        only((KeyError, TypeError, AttributeError), frame_key, frame)


async def test_no_frame_ends_the_receive_loop() -> None:
    """Every frame is handled or counted as malformed: nothing raises out of ``_handle``."""
    conn = WsConnection("ws://venue.test/ws")
    conn.listen()  # a tap sees every frame handled
    nested = nested_text(1000, "arrays")
    pinned = [
        frame_text(frame, nested) for frame in WS_FRAMES if MARK in orjson.dumps(frame).decode()
    ]
    for text in pinned:  # the error text and the candle key raised RecursionError
        with service_recursion_limit():
            conn._handle(text)
    assert conn.malformed_frames == 4  # all but the acknowledgement, which matches no request

    @FUZZ
    @given(mutated(WS_FRAMES, VALUES) | VALUES, NESTED_TEXT)
    def handle(frame: Any, nested: str) -> None:
        text = frame_text(frame, nested)
        with service_recursion_limit():
            conn._handle(text)
            conn._handle(text.encode())

    handle()
    assert conn.malformed_frames > len(pinned)


# --- the order client's answers ------------------------------------------------------------------
# A slot sends through HyperliquidClient and handles VenueError (OrderFateUnknown, VenueRejected,
# RateLimited); a query's caller handles VenueError and CodecError. An answer the client cannot
# read (str() of a nested error payload, a status it does not know) used to escape as
# RecursionError or CodecError and crash the slot.

POST_REPLIES = [frame["data"]["response"] for frame in FRAMES if frame["channel"] == "post"]
META = {"type": "info", "payload": {"type": "meta", "data": INFO["meta"]}}


class AnsweringSocket:
    """Stands in for the WsConnection: up, and answering every post with a given reply."""

    name = "fake"
    connected = True

    def __init__(self, reply: Any) -> None:
        self.reply = reply

    async def post(self, request: Any, timeout: float | None = None) -> Any:  # noqa: ASYNC109
        return META if request["payload"] == {"type": "meta"} else self.reply


async def client_on(reply: Any) -> HyperliquidClient:
    client = HyperliquidClient(
        rest=cast(RestTransport, object()),  # never reached: the socket answers
        ws=cast(WsConnection, AnsweringSocket(reply)),
        signer=L1Signer("0x" + "5a" * 32),
        account="0x" + "ab" * 20,
        mainnet=False,
        limiter=RateLimiter(),
        metrics=AdapterMetrics(CollectorRegistry()),
    )
    await client.metadata()
    return client


async def answer_each_request(reply: Any) -> None:
    """Every kind of request, answered with ``reply``: only the declared errors come out."""
    client = await client_on(reply)
    order = PlaceOrder("BTC", Side.BUY, 30000.0, 0.001, Tif.GTC, wire.new_cloid())
    with service_recursion_limit():
        for action in (
            lambda: client.place([order]),
            lambda: client.modify([ModifyOrder(order, oid=hl_oid(1))]),
            lambda: client.cancel([CancelOrder("BTC", oid=hl_oid(1))]),
            lambda: client.schedule_cancel(None),
        ):
            with contextlib.suppress(VenueError):
                await action()
        for query in (
            client.open_orders,
            client.account_state,
            lambda: client.order_status(oid=hl_oid(1)),
        ):
            with contextlib.suppress(VenueError, codec.CodecError):
                await query()


@pytest.mark.parametrize(
    "reply",
    [
        {"type": "error", "payload": MARK},
        {"type": "action", "payload": {"status": "err", "response": MARK}},
        {"type": "action", "payload": ok("order", [{"unknown": MARK}])},
        {"type": "action", "payload": ok("cancel", [MARK])},
        {"type": "info", "payload": MARK},
        {"type": "info", "payload": {"type": "frontendOpenOrders", "data": MARK}},
        MARK,
    ],
)
async def test_an_unreadable_answer_never_crashes_the_caller(
    reply: Any, autojump_clock: trio.testing.MockClock
) -> None:
    await answer_each_request(materialize(reply, ARRAYS_1000))


async def test_an_unreadable_answer_to_an_order_leaves_its_fate_unknown(
    autojump_clock: trio.testing.MockClock,
) -> None:
    client = await client_on({"type": "action", "payload": materialize(STATUS_DEEP, ARRAYS_1000)})
    order = PlaceOrder("BTC", Side.BUY, 30000.0, 0.001, Tif.GTC, wire.new_cloid())
    with service_recursion_limit(), pytest.raises(OrderFateUnknown) as caught:
        await client.place([order])
    assert caught.value.cloids == (order.cloid,)  # resolved with orderStatus, as a lost answer
    assert "unreadable answer" in caught.value.cause


@settings(FUZZ, max_examples=50)
@given(mutated(POST_REPLIES, VALUES) | VALUES, NESTED_TEXT)
def test_no_answer_makes_the_client_raise_an_undeclared_error(reply: Any, nested: str) -> None:
    # On virtual time: the client's rate limiter makes a long run of requests wait.
    clock = trio.testing.MockClock(autojump_threshold=0)
    trio.run(answer_each_request, materialize(reply, nested), clock=clock)
