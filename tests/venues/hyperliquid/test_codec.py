"""Tests of mm.venues.hyperliquid.codec against real venue recordings and the simulator.

Every ``/info`` recording and every recorded WebSocket frame parses into the right typed value
(with exact field values checked), every documented error text comes back as a Rejected order
status, unknown fields are ignored, and malformed input (bad JSON, a non-object, a missing key,
a value of the wrong type) raises CodecError. The simulator's own shapes parse as well, so the
adapter reads the sim and the real venue with one codec.
"""

from __future__ import annotations

import copy
import json
import math
import struct
from collections.abc import Callable
from decimal import Decimal
from typing import Any, cast

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from mm.model import (
    AccountState,
    Bbo,
    BookSnapshot,
    Fill,
    Filled,
    Funding,
    Level,
    Liquidation,
    Mids,
    NonUserCancel,
    OpenOrder,
    OrderReport,
    OrderStatus,
    Position,
    RateLimitState,
    Rejected,
    Resting,
    Side,
    Tif,
    Trade,
)
from mm.venues.base import VenueError
from mm.venues.hyperliquid import codec
from mm.venues.hyperliquid.codec import (
    BboFrame,
    BookFrame,
    CodecError,
    ErrorFrame,
    Frame,
    Greeting,
    MidsFrame,
    OrderUpdatesFrame,
    Pong,
    PostReply,
    SubscriptionAck,
    TradesFrame,
    UnknownFrame,
    UserEventsFrame,
    UserFillsFrame,
    VenueRejected,
    decode_frame,
    parse_all_mids,
    parse_cancel_statuses,
    parse_clearinghouse_state,
    parse_default,
    parse_fills,
    parse_historical_orders,
    parse_json,
    parse_l2_book,
    parse_meta,
    parse_open_orders,
    parse_order_report,
    parse_order_status,
    parse_order_statuses,
    parse_user_rate_limit,
)
from mm.venues.hyperliquid.instruments import AssetMeta
from mm.venues.sim.config import MarketConfig, SimConfig
from mm.venues.sim.engine import OrderRequest
from mm.venues.sim.hub import Hub
from mm.venues.sim.hyperliquid import info as sim_info
from mm.venues.sim.hyperliquid import wire as sim_wire
from mm.venues.sim.venue import SimVenue
from tests.fixture_paths import HYPERLIQUID as FIXTURES
from tests.ids import hl_oid, hl_tid

INFO: dict[str, dict[str, Any]] = json.loads((FIXTURES / "info_responses.json").read_text())["info"]
WS_LINES: list[str] = [
    line for line in (FIXTURES / "ws_frames.jsonl").read_text().splitlines() if line.strip()
]
ERRORS: list[dict[str, str]] = json.loads((FIXTURES / "error_messages.json").read_text())["errors"]

PARSERS: dict[str, Callable[[Any], Any]] = {
    "meta": parse_meta,
    "l2Book": parse_l2_book,
    "allMids": parse_all_mids,
    "openOrders": parse_open_orders,
    "frontendOpenOrders": parse_open_orders,
    "userFills": parse_fills,
    "userFillsByTime": parse_fills,
    "clearinghouseState": parse_clearinghouse_state,
    "orderStatus": parse_order_status,
    "historicalOrders": parse_historical_orders,
    "userRateLimit": parse_user_rate_limit,
}
# Maps keyed by coin (or the subscription echoed back) are data, not records: no extras there.
MAP_KEYS = frozenset({"mids", "subscription", "payload"})
EXTRA = {"zzUnknownField": {"nested": [1, "two", None]}, "anotherNewField": 3.5}


def response(kind: str) -> Any:
    return copy.deepcopy(INFO[kind]["response"])


def with_extras(value: Any, *, skip: bool = False) -> Any:
    """A copy of ``value`` with unknown fields added to every record (object) in it."""
    if isinstance(value, list):
        return [with_extras(item) for item in value]
    if isinstance(value, dict):
        out = {key: item if key in MAP_KEYS else with_extras(item) for key, item in value.items()}
        if not skip:
            out.update(copy.deepcopy(EXTRA))
        return out
    return value


def ok_statuses(kind: str, statuses: list[Any]) -> dict[str, Any]:
    return {"status": "ok", "response": {"type": kind, "data": {"statuses": statuses}}}


# --- every /info recording ---------------------------------------------------------------------


def test_every_recording_has_a_parser() -> None:
    assert set(INFO) <= set(PARSERS)
    for kind, recording in INFO.items():
        assert recording["request"]["type"] == kind


@pytest.mark.parametrize("kind", sorted(INFO))
def test_every_recording_parses_and_tolerates_unknown_fields(kind: str) -> None:
    parser = PARSERS[kind]
    parsed = parser(response(kind))
    assert parsed
    if kind == "allMids":  # a coin-to-mid map has no records: new coins are just more data
        extended = response(kind) | {"@999": "1.5", "NEW/USDC": "0.01"}
        assert parser(extended) == Mids(parsed.mids | {"@999": 1.5, "NEW/USDC": 0.01})
        return
    extended = with_extras(response(kind))
    assert extended != response(kind)
    assert parser(extended) == parsed


def test_meta() -> None:
    assets = parse_meta(response("meta"))
    assert len(assets) == len(INFO["meta"]["response"]["universe"]) == 28
    assert assets[0] == AssetMeta(index=0, coin="BTC", sz_decimals=5, max_leverage=50)
    assert assets[12] == AssetMeta(index=12, coin="DOGE", sz_decimals=0, max_leverage=50)
    assert assets[15].coin == "kPEPE"
    assert [a.index for a in assets] == list(range(28))


def test_l2_book() -> None:
    book = parse_l2_book(response("l2Book"))
    assert isinstance(book, BookSnapshot)
    assert (book.coin, book.time_ms) == ("DYDX", 1689630203930)
    assert len(book.bids) == len(book.asks) == 20
    assert book.bids[0] == Level(2.111, 134.4, 1)
    assert book.bids[1] == Level(2.1105, 141.1, 1)
    assert book.asks[0] == Level(2.1124, 352.3, 2)
    assert all(a[0] > b[0] for a, b in zip(book.bids, book.bids[1:], strict=False))
    assert all(a[0] < b[0] for a, b in zip(book.asks, book.asks[1:], strict=False))


@pytest.mark.parametrize("depth", [1, 5, 19, 20, 21])
def test_l2_book_parses_the_first_depth_levels_of_each_side(depth: int) -> None:
    """A depth cuts each side to its best levels, the same values as the whole book's, as plain
    ``(px, sz, n)`` tuples (no class per level)."""
    whole = parse_l2_book(response("l2Book"))
    book = parse_l2_book(response("l2Book"), depth)
    assert (book.coin, book.time_ms) == (whole.coin, whole.time_ms)
    assert book.bids == whole.bids[:depth]
    assert book.asks == whole.asks[:depth]
    assert len(book.bids) == min(depth, 20)
    assert all(type(level) is tuple for level in (*book.bids, *book.asks))
    assert book.bids[0] == (2.111, 134.4, 1)
    assert book.received_ns == 0
    assert parse_l2_book(response("l2Book"), depth, 42).received_ns == 42


def test_l2_book_levels_past_the_depth_are_not_read() -> None:
    """A malformed level past the depth is not looked at; one within it still fails."""
    data = response("l2Book")
    data["levels"][0][5] = {"px": "not a number", "sz": "1", "n": 1}
    assert len(parse_l2_book(data, 5).bids) == 5
    with pytest.raises(CodecError, match="l2Book"):
        parse_l2_book(data, 6)


def _sides_one_by_one(data: Any, depth: int | None) -> Any:
    """What the level-by-level parse makes of a book's levels: both sides, or the error."""
    try:
        levels = data["levels"]
        return codec._levels(levels[0], depth), codec._levels(levels[1], depth)
    except codec._MALFORMED as exc:
        return type(exc)


@pytest.mark.parametrize("depth", [None, 1, 5, 19, 20, 21])
def test_l2_book_both_sides_at_once_are_the_levels_one_by_one(depth: int | None) -> None:
    """The recorded book takes the fast path (both sides at once), to the same levels."""
    data = response("l2Book")
    sides = codec._both_sides(data["levels"], depth)
    assert sides is not None
    assert sides == _sides_one_by_one(data, depth)
    assert all(type(level) is tuple for side in sides for level in side)


# Texts near the venue's grammar: its numbers, and what float() takes beyond it.
_NEAR_DECIMALS = st.one_of(
    st.from_regex(r"-?[0-9]{1,8}(\.[0-9]{1,8})?", fullmatch=True),
    st.text(alphabet="0123456789.-,+eE_ \n\u0661infa", max_size=10),
    st.sampled_from(["1" * 400, "9" * 310 + ".5", "-" + "9" * 309, ".5", "5.", "-.5", "1,2"]),
)
_LEVEL_VALUES = st.one_of(
    _NEAR_DECIMALS, st.integers(), st.floats(), st.none(), st.booleans(), st.lists(st.none())
)
_LEVEL = st.one_of(
    st.fixed_dictionaries(
        {"px": _NEAR_DECIMALS, "sz": _NEAR_DECIMALS, "n": st.integers(min_value=0, max_value=99)}
    ),
    st.fixed_dictionaries({"px": _LEVEL_VALUES, "sz": _LEVEL_VALUES, "n": _LEVEL_VALUES}),
    st.dictionaries(st.sampled_from(["px", "sz", "n"]), _LEVEL_VALUES),
    _LEVEL_VALUES,
)
_SIDE = st.lists(_LEVEL, max_size=6)


@given(
    levels=st.one_of(st.tuples(_SIDE, _SIDE).map(list), st.lists(_SIDE, max_size=3)),
    depth=st.one_of(st.none(), st.integers(min_value=0, max_value=7)),
)
def test_l2_book_both_sides_at_once_read_as_the_levels_one_by_one(
    levels: list[Any], depth: int | None
) -> None:
    """Whatever the levels hold, the fast path either gives up (None) or answers exactly what
    the level-by-level parse does, which never refuses a book the fast path takes; the parser
    as a whole answers as the level-by-level parse, error for error."""
    data = {"coin": "BTC", "time": 1, "levels": levels}
    expected = _sides_one_by_one(data, depth)
    sides = codec._both_sides(levels, depth)
    if sides is not None:
        assert sides == expected
        assert [list(map(type, level)) for side in sides for level in side] == [
            [float, float, int] for side in sides for _ in side
        ]
    if isinstance(expected, tuple):
        book = parse_l2_book(data, depth)
        assert (book.bids, book.asks) == expected
    else:
        with pytest.raises(CodecError) as raised:
            parse_l2_book(data, depth)
        assert type(raised.value.__cause__) is expected


@given(
    st.lists(
        st.tuples(
            st.decimals(min_value=0, max_value=10**7, places=6, allow_nan=False),
            st.decimals(min_value=0, max_value=10**7, places=4, allow_nan=False),
        ),
        min_size=1,
        max_size=25,
    )
)
def test_l2_book_of_venue_numbers_takes_the_fast_path(levels: list[tuple[Any, Any]]) -> None:
    """Every book of the venue's plain decimals is read at once, to the floats ``float``
    reads (exact: the same conversion as the level-by-level parse)."""
    side = [{"px": str(px), "sz": str(sz), "n": 1} for px, sz in levels]
    sides = codec._both_sides([side, side[::-1]], None)
    assert sides is not None
    assert sides[0] == tuple((float(str(px)), float(str(sz)), 1) for px, sz in levels)
    assert sides == (codec._levels(side), codec._levels(side[::-1]))


# Decimals near the largest float: finite ones (1e308, 1.77e308) whose sum overflows, and ones
# that are too large for a float themselves (1.88e308, 2e308).
_HUGE = (
    "9" * 308, "-" + "9" * 308, "1" + "7" * 308, "-1" + "7" * 308,
    "1" + "8" * 308, "2" + "0" * 308, "-2" + "0" * 308, "1", "-0.5", "0",
)  # fmt: skip


@given(
    texts=st.lists(st.sampled_from(_HUGE), min_size=2, max_size=12),
    split=st.integers(min_value=0, max_value=6),
)
def test_l2_book_of_huge_numbers_reads_as_the_levels_one_by_one(
    texts: list[str], split: int
) -> None:
    """The fast path knows its floats finite by their sum: a sum that overflows (finite values,
    or an infinite one) makes it give up, never answer otherwise; values whose magnitudes sum
    to a finite float (so their sum in any order is finite) take it, to the level-by-level
    parse's answer."""
    half = len(texts) // 2
    entries: list[dict[str, Any]] = [
        {"px": px, "sz": sz, "n": 1}
        for px, sz in zip(texts[:half], texts[half : 2 * half], strict=True)
    ]
    levels = [entries[:split], entries[split:]]
    expected = _sides_one_by_one({"levels": levels}, None)
    sides = codec._both_sides(levels, None)
    values = [float(text) for entry in entries for text in (entry["px"], entry["sz"])]
    if math.isfinite(sum(map(abs, values))):
        assert sides is not None
    if sides is not None:
        assert sides == expected


# What float() takes (or nearly) that the venue's grammar refuses, and counts not integers.
_OFF_GRAMMAR = (
    ".5", "5.", "-.5", "-5.", "1,2", "1.2,", ",1", "+1", "1e5", "1E5", "1_0", " 1", "1 ",
    "1\n", "inf", "-inf", "nan", "\u0661", "1\u0662", "--1", "1-", "", ".", "-",
    "9" * 400, "-" + "9" * 400, "9" * 309 + ".5",
    # JSON that the fast path's one array would read (it joins the texts, each with "e0").
    "1e0,2", "1,2e0", "1e0", "1.5e0", "1e", "1e0]", "[1", "1]", "]", "[", '"', '1,"a"', "null",
    "true", "1,true", "{}", "1\r", "\t1", "1,,2", "1e0,", "NaN", "Infinity", "-Infinity",
)  # fmt: skip
_OFF_COUNTS = (True, False, 1.0, "1", None, [1])


@given(
    levels=st.lists(
        st.tuples(
            st.from_regex(r"(0|[1-9][0-9]{0,6})(\.[0-9]{1,6})?", fullmatch=True),
            st.from_regex(r"-?(0|[1-9][0-9]{0,6})(\.[0-9]{1,4})?", fullmatch=True),
            st.integers(min_value=0, max_value=10**6),
        ),
        min_size=2,
        max_size=12,
    ),
    split=st.integers(min_value=0, max_value=12),
    where=st.integers(min_value=0),
    field=st.sampled_from(["px", "sz", "n"]),
    text=st.sampled_from(_OFF_GRAMMAR),
    count=st.sampled_from(_OFF_COUNTS),
)
def test_l2_book_one_value_off_the_grammar_leaves_the_fast_path(
    levels: list[tuple[str, str, int]], split: int, where: int, field: str, text: str, count: Any
) -> None:
    """A book of the venue's numbers, with one price, size or count made something the venue
    never sends: the level-by-level parse refuses it, and the fast path gives up (it never
    answers for it), so the error is the level-by-level parse's."""
    entries: list[Any] = [{"px": px, "sz": sz, "n": n} for px, sz, n in levels]
    assert codec._both_sides([entries[:split], entries[split:]], None) is not None
    entries[where % len(entries)][field] = count if field == "n" else text
    sides = [entries[:split], entries[split:]]
    assert isinstance(_sides_one_by_one({"levels": sides}, None), type)
    assert codec._both_sides(sides, None) is None


@pytest.mark.parametrize("where", [(0, 0, "px"), (0, 1, "sz"), (1, 1, "px"), (1, 1, "sz")])
@pytest.mark.parametrize(
    "value", [("text", text) for text in _OFF_GRAMMAR] + [("n", n) for n in _OFF_COUNTS]
)
def test_l2_book_a_value_off_the_grammar_anywhere_leaves_the_fast_path(
    where: tuple[int, int, str], value: tuple[str, Any]
) -> None:
    """Each of those texts as the first or last price or size of a side, each count as the
    count of that level."""
    side, index, field = where
    kind, value = value
    levels = [
        [{"px": "2.5", "sz": "10", "n": 1}, {"px": "2.4", "sz": "0.5", "n": 3}],
        [{"px": "2.6", "sz": "7.25", "n": 2}, {"px": "2.7", "sz": "1", "n": 1}],
    ]
    assert codec._both_sides(levels, None) is not None
    levels[side][index][field if kind == "text" else "n"] = value
    assert isinstance(_sides_one_by_one({"levels": levels}, None), type)
    assert codec._both_sides(levels, None) is None


# Texts of the venue's grammar that are not JSON numbers (a leading zero): read level by level.
_LEADING_ZEROS = ("00", "05", "007.5", "-01", "-00.25", "0001")


@pytest.mark.parametrize("text", _LEADING_ZEROS)
@pytest.mark.parametrize("field", ["px", "sz"])
def test_l2_book_leading_zeros_are_read_level_by_level(text: str, field: str) -> None:
    """The fast path reads JSON's numbers only; the venue's others (never sent, but in its
    grammar) make it give up, and the book is the level-by-level parse's."""
    levels = [[{"px": "2.5", "sz": "10", "n": 1}], [{"px": "2.6", "sz": "7.25", "n": 2}]]
    levels[1][0][field] = text
    assert codec._both_sides(levels, None) is None
    book = parse_l2_book({"coin": "BTC", "time": 1, "levels": levels})
    assert (book.bids, book.asks) == _sides_one_by_one({"levels": levels}, None)
    assert book.asks[0][("px", "sz").index(field)] == float(text)


def _between(low: float, high: float, nudge: int) -> str:
    """A decimal text exactly halfway between two adjacent floats, or just off it (``nudge``
    units of the 40th significant digit): where a conversion that rounds wrongly shows."""
    half = (Decimal(low) + Decimal(high)) / 2
    return format(half + nudge * Decimal(10) ** (half.adjusted() - 40), "f")


_FLOAT_TEXTS = st.one_of(
    st.from_regex(r"-?(0|[1-9][0-9]{0,24})(\.[0-9]{1,25})?", fullmatch=True),
    st.builds(
        lambda value, nudge: _between(value, math.nextafter(value, math.inf), nudge),
        st.floats(min_value=1e-30, max_value=1e30),
        st.sampled_from([-1, 0, 1]),
    ),
    st.floats(min_value=-1e30, max_value=1e30).map(repr).filter(lambda text: "e" not in text),
)


@given(texts=st.lists(_FLOAT_TEXTS, min_size=2, max_size=40), split=st.integers(0, 20))
def test_l2_book_fast_path_floats_are_floats_own(texts: list[str], split: int) -> None:
    """Every JSON number without exponent takes the fast path, to exactly the float that
    ``float`` reads, bit for bit: many digits, and decimals halfway between two adjacent
    floats or a hair off it (orjson's conversion held to Python's, both correctly rounded)."""
    half = len(texts) // 2
    entries: list[dict[str, Any]] = [
        {"px": px, "sz": sz, "n": 1}
        for px, sz in zip(texts[:half], texts[half : 2 * half], strict=True)
    ]
    levels = [entries[:split], entries[split:]]
    sides = codec._both_sides(levels, None)
    assert sides is not None
    read = [value for side in sides for level in side for value in level[:2]]
    want = [float(entry[field]) for entry in entries for field in ("px", "sz")]
    assert [struct.pack("<d", value) for value in read] == [
        struct.pack("<d", value) for value in want
    ]


def test_all_mids() -> None:
    mids = parse_all_mids(response("allMids"))
    assert isinstance(mids, Mids)
    assert len(mids.mids) == 28
    assert mids.mids["BTC"] == 30135.0
    assert mids.mids["kPEPE"] == 0.001565
    assert mids.mids["DYDX"] == 2.11305


def test_open_orders() -> None:
    orders = parse_open_orders(response("openOrders"))
    assert len(orders) == 25
    assert orders[0] == OpenOrder(
        coin="MATIC",
        side=Side.BUY,
        px=1.0357,
        sz=208.7,
        orig_sz=208.7,  # openOrders has no origSz: the remaining size stands in
        oid=hl_oid(62269971),
        cloid=None,
        time_ms=1679940217356,
        reduce_only=False,
        tif=None,
    )
    assert orders[1].side is Side.SELL
    assert orders[1].coin == "ARB"


def test_frontend_open_orders() -> None:
    orders = parse_open_orders(response("frontendOpenOrders"))
    assert len(orders) == 3
    first = orders[0]
    assert (first.coin, first.side, first.px, first.sz, first.orig_sz) == (
        "INJ",
        Side.SELL,
        9.2037,
        12.5,
        12.5,
    )
    assert (first.oid, first.time_ms, first.reduce_only, first.tif) == (
        hl_oid(3184595907),
        1700126022555,
        True,
        None,  # a trigger order: tif null
    )
    limits = [o for o in orders if o.tif is not None]
    assert [o.tif for o in limits] == [Tif.GTC]


def test_user_fills() -> None:
    fills = parse_fills(response("userFills"))
    assert len(fills) == 25
    # This 2023 recording predates tid: each fill gets a stable surrogate, never shared.
    assert len({(fill.oid, fill.tid) for fill in fills}) == 25
    assert parse_fills(response("userFills"))[0].tid == fills[0].tid
    assert fills[0] == Fill(
        coin="SUI",
        side=Side.SELL,
        px=1.3189,
        sz=142.7,
        time_ms=1683245884863,
        oid=hl_oid(189324432),
        tid=fills[0].tid,
        cloid=None,
        fee=0.0,
        fee_token="USDC",
        crossed=True,
        start_position=4623.5,
        direction="Close Long",
        closed_pnl=-0.25686,
        hash="0x3d4770d0527317ef77c404017559cb0103000b34010cc95e97b437cbc3b6087a",
    )
    assert fills[1].closed_pnl == -14.771454


def test_clearinghouse_state() -> None:
    state = parse_clearinghouse_state(response("clearinghouseState"), 1_700_000_000_000)
    assert isinstance(state, AccountState)
    assert state.time_ms == 1_700_000_000_000  # the recording carries no time
    assert state.account_value == 1182.312496
    assert state.margin_used == 171.740766
    assert state.withdrawable == 1010.57173
    assert len(state.positions) == 12
    assert state.positions[0] == Position(
        coin="BTC",
        szi=-0.00785,
        entry_px=26951.0,
        unrealized_pnl=-0.08007,
        liquidation_px=173198.69592357,
        margin_used=10.582271,
        leverage=20,
    )
    assert state.positions[1].liquidation_px is None
    assert state.positions[1].szi == 0.1334
    with_time = response("clearinghouseState") | {"time": 1_800_000_000_000}
    assert parse_clearinghouse_state(with_time, 5).time_ms == 1_800_000_000_000


def test_user_rate_limit() -> None:
    assert parse_user_rate_limit(response("userRateLimit")) == RateLimitState(
        cum_volume=170043721737.450012207,
        requests_used=36589831368,
        requests_cap=170043731737,
    )


def test_historical_orders() -> None:
    reports = parse_historical_orders(response("historicalOrders"))
    assert len(reports) == 5
    assert reports[0] == OrderReport(
        coin="TON",
        side=Side.BUY,
        px=3.2502,
        sz=81.7,
        orig_sz=81.7,
        oid=hl_oid(141682155424),
        cloid=None,
        time_ms=1755863118217,
        status=OrderStatus.REJECTED,
        status_time_ms=1755863118217,
        venue_status="iocCancelRejected",
    )
    assert {r.venue_status for r in reports} == {"canceled", "iocCancelRejected"}
    assert {r.status for r in reports} == {OrderStatus.CANCELED, OrderStatus.REJECTED}


def test_order_status() -> None:
    assert parse_order_status({"status": "unknownOid"}) is None
    entry = response("historicalOrders")[1]
    report = parse_order_status({"status": "order", "order": entry})
    assert report == parse_order_report(entry)
    assert report is not None
    assert report.oid == hl_oid(141682155423)
    assert parse_order_status(with_extras({"status": "order", "order": entry})) == report


# --- malformed /info answers -------------------------------------------------------------------


def mutate(value: Any, path: tuple[Any, ...], new: Any = ..., *, delete: bool = False) -> Any:
    """A copy of ``value`` with the item at ``path`` replaced by ``new`` or deleted."""
    out = copy.deepcopy(value)
    target = out
    for step in path[:-1]:
        target = target[step]
    if delete:
        del target[path[-1]]
    else:
        target[path[-1]] = new
    return out


DELETE = object()
INFO_MALFORMED: list[tuple[str, tuple[Any, ...], Any]] = [
    ("meta", ("universe", 0, "szDecimals"), DELETE),
    ("meta", ("universe", 0, "szDecimals"), "5"),
    ("meta", ("universe", 1, "name"), None),
    ("meta", ("universe",), {"BTC": 1}),
    ("l2Book", ("levels", 0, 0, "px"), DELETE),
    ("l2Book", ("levels", 0, 0, "px"), 2.111),
    ("l2Book", ("levels", 1, 3, "sz"), "abc"),
    ("l2Book", ("levels", 1, 3, "sz"), "nan"),
    ("l2Book", ("levels", 0, 0, "n"), "1"),
    ("l2Book", ("levels",), [[]]),
    ("l2Book", ("time",), "1689630203930"),
    ("allMids", ("BTC",), 30135.0),
    ("allMids", ("BTC",), "thirty"),
    ("allMids", ("BTC",), "inf"),
    ("openOrders", (0, "oid"), "62269971"),
    ("openOrders", (0, "side"), DELETE),
    ("openOrders", (0, "side"), "S"),
    ("openOrders", (2, "timestamp"), 1.5),
    ("frontendOpenOrders", (0, "reduceOnly"), "true"),
    ("frontendOpenOrders", (0, "tif"), 5),
    ("frontendOpenOrders", (0, "origSz"), []),
    ("userFills", (0, "hash"), DELETE),
    ("userFills", (0, "crossed"), "true"),
    ("userFills", (0, "time"), None),
    ("userFills", (4, "tid"), "12"),
    ("userFills", (4, "cloid"), 7),
    ("clearinghouseState", ("marginSummary",), DELETE),
    ("clearinghouseState", ("assetPositions", 0, "position", "leverage"), 20),
    ("clearinghouseState", ("assetPositions", 0, "position", "szi"), None),
    ("clearinghouseState", ("withdrawable",), 1010.57),
    ("clearinghouseState", ("time",), "now"),
    ("userRateLimit", ("nRequestsUsed",), "36589831368"),
    ("userRateLimit", ("cumVlm",), DELETE),
    ("historicalOrders", (0, "order", "origSz"), DELETE),
    ("historicalOrders", (0, "statusTimestamp"), None),
    ("historicalOrders", (0, "order"), []),
    ("historicalOrders", (0, "status"), 1),
]


@pytest.mark.parametrize(
    ("kind", "path", "new"),
    INFO_MALFORMED,
    ids=[f"{k}-{'.'.join(map(str, p))}" for k, p, _ in INFO_MALFORMED],
)
def test_malformed_recordings_raise_codec_error(kind: str, path: tuple[Any, ...], new: Any) -> None:
    if new is DELETE:
        bad = mutate(response(kind), path, delete=True)
    else:
        bad = mutate(response(kind), path, new)
    with pytest.raises(CodecError, match="malformed"):
        PARSERS[kind](bad)


@pytest.mark.parametrize("kind", sorted(PARSERS))
@pytest.mark.parametrize("bad", [None, 5, "text", True, [[1]], {"x": [1]}], ids=repr)
def test_wrong_root_types_raise_codec_error(kind: str, bad: Any) -> None:
    with pytest.raises(CodecError):
        PARSERS[kind](bad)


def test_order_status_unknown_status() -> None:
    with pytest.raises(CodecError, match="unknown orderStatus"):
        parse_order_status({"status": "maybe"})


def test_unknown_tif_is_none() -> None:
    entry = response("frontendOpenOrders")[2] | {"tif": "FrontendMarket"}
    assert parse_open_orders([entry])[0].tif is None
    assert parse_open_orders([entry | {"tif": "Alo"}])[0].tif is Tif.ALO


def test_codec_error_is_a_value_error_and_venue_rejected_a_venue_error() -> None:
    assert issubclass(CodecError, ValueError)
    assert issubclass(VenueRejected, VenueError)
    assert VenueRejected("text").text == "text"


def test_parse_json() -> None:
    assert parse_json(b'{"a": [1]}') == {"a": [1]}
    assert parse_json('"x"') == "x"
    for bad in ("", "{", "nope", b"\xff"):
        with pytest.raises(CodecError, match="not JSON"):
            parse_json(bad)


# --- /exchange answers -------------------------------------------------------------------------


def test_order_statuses() -> None:
    resp = ok_statuses(
        "order",
        [
            {"resting": {"oid": 88383}},
            {"resting": {"oid": 88384, "cloid": "0x" + "ab" * 16}},
            {"filled": {"totalSz": "0.02", "avgPx": "1891.4", "oid": 77738308}},
            {"filled": {"totalSz": "1.0", "avgPx": "30135.0", "oid": 5, "cloid": "0x" + "1" * 32}},
            {"error": "Order must have minimum value of $10. asset=0"},
        ],
    )
    assert parse_order_statuses(resp) == [
        Resting(hl_oid(88383), None),
        Resting(hl_oid(88384), "0x" + "ab" * 16),
        Filled(hl_oid(77738308), None, 0.02, 1891.4),
        Filled(hl_oid(5), "0x" + "1" * 32, 1.0, 30135.0),
        Rejected("Order must have minimum value of $10. asset=0"),
    ]
    assert parse_order_statuses(with_extras(resp)) == parse_order_statuses(resp)


@pytest.mark.parametrize("error", ERRORS, ids=lambda e: e["type"])
def test_every_venue_error_text_is_a_rejection(error: dict[str, str]) -> None:
    text = error["message"]
    assert parse_order_statuses(ok_statuses("order", [{"error": text}])) == [Rejected(text)]
    assert parse_cancel_statuses(ok_statuses("cancel", [{"error": text}])) == [Rejected(text)]
    suffixed = f"{text} asset=13"
    assert parse_order_statuses(ok_statuses("order", [{"error": suffixed}])) == [Rejected(suffixed)]


@pytest.mark.parametrize("error", ERRORS, ids=lambda e: e["type"])
def test_whole_request_refusals_raise_venue_rejected(error: dict[str, str]) -> None:
    refusal = {"status": "err", "response": error["message"]}
    for parser in (parse_order_statuses, parse_cancel_statuses, parse_default):
        with pytest.raises(VenueRejected) as caught:
            parser(refusal)
        assert caught.value.text == error["message"]
        assert str(caught.value) == error["message"]


def test_cancel_statuses() -> None:
    text = "Order was never placed, already canceled, or filled. asset=1"
    resp = ok_statuses("cancel", ["success", {"error": text}, "success"])
    assert parse_cancel_statuses(resp) == [None, Rejected(text), None]


def test_default() -> None:
    parse_default({"status": "ok", "response": {"type": "default"}})
    parse_default(with_extras({"status": "ok", "response": {"type": "default"}}))


@pytest.mark.parametrize(
    "resp",
    [
        {"status": "maybe", "response": "x"},
        {"response": {"type": "default"}},
        {"status": "err", "response": {"text": "not a string"}},
        ok_statuses("order", [{"waiting": {}}]),
        ok_statuses("order", ["waitingForFill"]),
        ok_statuses("order", [{"resting": {"oid": "1"}}]),
        ok_statuses("order", [{"filled": {"oid": 1, "totalSz": 1.0, "avgPx": "1"}}]),
        ok_statuses("order", [{"error": None}]),
        {"status": "ok", "response": {"type": "order"}},
        {"status": "ok", "response": {"type": "order", "data": {"statuses": {}}}},
        [],
        "ok",
    ],
    ids=repr,
)
def test_malformed_order_statuses(resp: Any) -> None:
    with pytest.raises(CodecError):
        parse_order_statuses(resp)


@pytest.mark.parametrize("statuses", [["canceled"], [{"error": 5}], [{}], [None]], ids=repr)
def test_malformed_cancel_statuses(statuses: list[Any]) -> None:
    with pytest.raises(CodecError):
        parse_cancel_statuses(ok_statuses("cancel", statuses))


def test_malformed_default() -> None:
    for bad in ({"status": 1}, {}, None, {"status": "odd"}):
        with pytest.raises(CodecError):
            parse_default(bad)


# --- WebSocket frames: every recorded line -----------------------------------------------------


def frames() -> list[Frame]:
    return [decode_frame(line) for line in WS_LINES]


def test_every_recorded_frame_decodes_to_its_type() -> None:
    assert [type(frame) for frame in frames()] == [
        SubscriptionAck,
        SubscriptionAck,
        SubscriptionAck,
        ErrorFrame,
        UserEventsFrame,
        UserEventsFrame,
        MidsFrame,
        UserFillsFrame,
        OrderUpdatesFrame,
        TradesFrame,
        BboFrame,
        PostReply,
        PostReply,
        PostReply,
        PostReply,
    ]


def test_recorded_frame_values() -> None:
    (trades_ack, book_ack, fills_ack, error, user1, user2, mids, user_fills, updates, trades,
     bbo, post_info, post_resting, post_error, post_429) = frames()  # fmt: skip
    assert trades_ack == SubscriptionAck("subscribe", {"type": "trades", "coin": "SOL"})
    assert book_ack == SubscriptionAck(
        "subscribe", {"type": "l2Book", "coin": "BTC", "nSigFigs": None, "mantissa": None}
    )
    assert isinstance(fills_ack, SubscriptionAck)
    assert fills_ack.subscription["aggregateByTime"] is False
    assert error == ErrorFrame('Already unsubscribed: {"type":"trades","coin":"ETH"}')

    assert user1 == UserEventsFrame(
        fills=[
            Fill(
                coin="BTC",
                side=Side.SELL,
                px=79146.0,
                sz=0.001,
                time_ms=1769940855551,
                oid=hl_oid(308254271324),
                tid=hl_tid(404237815023429),
                cloid="0x50663504b0f4fedea00080176229d94f",
                fee=0.019785,
                fee_token="USDC",
                crossed=False,
                start_position=0.00093,
                direction="Long > Short",
                closed_pnl=0.046128,
                hash="0x5f8b9c337a197c4061050434769793020e020019151c9b1203544786391d562b",
            )
        ],
        liquidation=None,
        non_user_cancels=[],
    )
    assert isinstance(user2, UserEventsFrame)
    # The fill's own "liquidation" detail (a liquidation fill) is not the liquidation event.
    assert user2.liquidation is None
    assert [(f.px, f.direction, f.tid) for f in user2.fills] == [
        (66653.0, "Open Short", hl_tid(745210434703679))
    ]

    assert mids == MidsFrame(
        Mids(
            {
                "@142": 80907.5,
                "BTC": 80868.5,
                "ETH": 2296.45,
                "SOL": 94.8775,
                "PURR/USDC": 0.067131,
            }
        )
    )
    assert isinstance(user_fills, UserFillsFrame)
    assert user_fills.user == "0x31ca8395cf837de08b24da3f660e77761dfb974b"
    assert user_fills.is_snapshot is True
    assert len(user_fills.fills) == 1
    fill = user_fills.fills[0]
    assert (fill.coin, fill.px, fill.sz, fill.start_position, fill.crossed, fill.cloid) == (
        "USUAL",
        0.01152,
        1052.9,
        -3695042.9,
        True,
        None,
    )
    assert updates == OrderUpdatesFrame(
        [
            OrderReport(
                coin="BTC",
                side=Side.BUY,
                px=64020.0,
                sz=1.17163,
                orig_sz=1.17163,
                oid=hl_oid(502464968365),
                cloid="0xffabb2d185b75ea5ca0a5cd346b21507",
                time_ms=1784976929583,
                status=OrderStatus.REJECTED,
                status_time_ms=1784976929583,
                venue_status="badAloPxRejected",
            )
        ]
    )
    assert trades == TradesFrame(
        [Trade("BTC", Side.SELL, 80639.0, 0.00022, 1788490042052, hl_tid(1095884267920331))]
    )
    assert bbo == BboFrame(
        Bbo("BTC", 1788490065008, Level(80639.0, 0.00186, 2), Level(80640.0, 13.74589, 46))
    )

    assert post_info == PostReply(
        7, "info", {"type": "orderStatus", "data": {"status": "unknownOid"}}
    )
    assert isinstance(post_info, PostReply)
    assert parse_order_status(post_info.payload["data"]) is None
    assert isinstance(post_resting, PostReply)
    assert (post_resting.id, post_resting.kind) == (256, "action")
    assert parse_order_statuses(post_resting.payload) == [Resting(hl_oid(88383), None)]
    assert isinstance(post_error, PostReply)
    assert post_error.id == 9785759392619777167  # a u64 id beyond the i64 range
    assert parse_order_statuses(post_error.payload) == [
        Rejected("Price must be divisible by tick size. asset=13")
    ]
    assert post_429 == PostReply(8, "error", "429 Too Many Requests")


@pytest.mark.parametrize("line", WS_LINES)
def test_recorded_frames_tolerate_unknown_fields(line: str) -> None:
    extended = orjson.dumps(with_extras(orjson.loads(line))).decode()
    assert extended != line
    assert decode_frame(extended) == decode_frame(line)
    assert decode_frame(line.encode()) == decode_frame(line)


def test_greeting_pong_and_unknown_channels() -> None:
    assert decode_frame("Websocket connection established.") == Greeting()
    assert decode_frame(b"Websocket connection established.") == Greeting()
    assert decode_frame('{"channel":"pong"}') == Pong()
    assert decode_frame('{"channel": "candle", "data": {"t": 1}}') == UnknownFrame("candle")
    assert decode_frame('{"channel": "notification", "data": "x"}') == UnknownFrame("notification")


def test_user_events_liquidation_and_non_user_cancels() -> None:
    liquidation = {
        "lid": 12,
        "liquidator": "0x" + "1" * 40,
        "liquidated_user": "0x" + "2" * 40,
        "liquidated_ntl_pos": "1234.5",
        "liquidated_account_value": "-3.25",
    }
    assert decode_frame(
        orjson.dumps({"channel": "user", "data": {"liquidation": liquidation}})
    ) == UserEventsFrame(
        fills=[],
        liquidation=Liquidation(12, "0x" + "1" * 40, "0x" + "2" * 40, 1234.5, -3.25),
        non_user_cancels=[],
    )
    cancels = {"nonUserCancel": [{"coin": "AVAX", "oid": 90542681}, {"coin": "BTC", "oid": 1}]}
    assert decode_frame(orjson.dumps({"channel": "user", "data": cancels})) == UserEventsFrame(
        fills=[],
        liquidation=None,
        non_user_cancels=[NonUserCancel("AVAX", hl_oid(90542681)), NonUserCancel("BTC", hl_oid(1))],
    )
    funding = {
        "funding": {"time": 1, "coin": "BTC", "usdc": "-0.5", "szi": "1", "fundingRate": "0"}
    }
    assert decode_frame(orjson.dumps({"channel": "user", "data": funding})) == UserEventsFrame(
        [], None, [], Funding("BTC", -0.5, 1.0, 0.0, 1)
    )


def test_user_events_funding_as_documented_with_a_recorded_payment() -> None:
    """The ``user`` channel's funding event (the docs' ``WsUserFunding``), filled with a real
    recorded payment: a short BTC position received 5.950454 USDC at a positive rate."""
    recorded = json.loads((FIXTURES / "user_funding.json").read_text())
    frame = decode_frame(orjson.dumps(recorded["ws_user_frame"]))
    assert frame == UserEventsFrame(
        fills=[],
        liquidation=None,
        non_user_cancels=[],
        funding=Funding("BTC", 5.950454, -0.68582, 0.00010081, 1681948800000),
    )
    # The same payment as the info endpoint recorded it.
    (entry,) = [
        e for e in recorded["info"]["userFunding"]["response"] if e["delta"]["coin"] == "BTC"
    ]
    assert frame.funding is not None
    assert frame.funding.time_ms == entry["time"]
    assert frame.funding.usdc == float(entry["delta"]["usdc"])
    # Every field is required and typed as the venue sends it.
    data = recorded["ws_user_frame"]["data"]["funding"]
    for key in data:
        broken = {**data}
        del broken[key]
        with pytest.raises(CodecError, match="malformed user frame"):
            decode_frame(orjson.dumps({"channel": "user", "data": {"funding": broken}}))
    with pytest.raises(CodecError):
        decode_frame(orjson.dumps({"channel": "user", "data": {"funding": {**data, "usdc": 1}}}))


def test_user_fills_update_without_is_snapshot() -> None:
    frame = decode_frame(
        orjson.dumps({"channel": "userFills", "data": {"user": "0xab", "fills": []}})
    )
    assert frame == UserFillsFrame("0xab", False, [])


def test_bbo_with_an_empty_side() -> None:
    data = {"coin": "ETH", "time": 5, "bbo": [None, {"px": "2000.5", "sz": "1.0", "n": 1}]}
    assert decode_frame(orjson.dumps({"channel": "bbo", "data": data})) == BboFrame(
        Bbo("ETH", 5, None, Level(2000.5, 1.0, 1))
    )


def test_book_frame() -> None:
    frame = decode_frame(orjson.dumps({"channel": "l2Book", "data": response("l2Book")}))
    assert frame == BookFrame(parse_l2_book(response("l2Book")))


# --- malformed frames --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        "",
        "{",
        "not json",
        "Websocket connection established",  # not quite the greeting
        '{"channel": "trades", "data": [}',
        b"\xff\xfe",
    ],
    ids=repr,
)
def test_bad_json_frames(text: str | bytes) -> None:
    with pytest.raises(CodecError, match="not JSON"):
        decode_frame(text)


@pytest.mark.parametrize("text", ["[]", "1", '"pong"', "null", "true", "[{}]"])
def test_non_object_frames(text: str) -> None:
    with pytest.raises(CodecError, match="not an object"):
        decode_frame(text)


@pytest.mark.parametrize("text", ["{}", '{"data": {}}', '{"channel": 5}', '{"channel": null}'])
def test_frames_without_a_channel(text: str) -> None:
    with pytest.raises(CodecError, match="no channel"):
        decode_frame(text)


@pytest.mark.parametrize("line", WS_LINES)
@pytest.mark.parametrize("data", [DELETE, 42, None, [], "text", {}])
def test_recorded_frames_with_bad_data(line: str, data: Any) -> None:
    message = orjson.loads(line)
    if data is DELETE:
        del message["data"]
    else:
        if message["channel"] == "error" and data == "text":
            return  # an error frame's data is text
        if message["channel"] in ("trades", "orderUpdates") and data == []:
            return  # an empty batch is well formed
        if message["channel"] == "user" and data == {}:
            return  # a user event of a kind not parsed here (funding, ...): an empty frame
        message["data"] = data
    with pytest.raises(CodecError, match="malformed"):
        decode_frame(orjson.dumps(message))


FRAME_MALFORMED: list[tuple[int, tuple[Any, ...], Any]] = [
    (0, ("data", "subscription"), "trades"),
    (0, ("data", "method"), DELETE),
    (4, ("data", "fills", 0, "side"), "S"),
    (4, ("data", "fills", 0, "tid"), "404237815023429"),
    (4, ("data", "fills", 0, "px"), DELETE),
    (4, ("data", "fills"), {"0": {}}),
    (6, ("data", "mids", "BTC"), 80868.5),
    (6, ("data", "mids"), ["BTC"]),
    (7, ("data", "isSnapshot"), "yes"),
    (7, ("data", "user"), DELETE),
    (8, ("data", 0, "order", "oid"), "502464968365"),
    (8, ("data", 0, "status"), DELETE),
    (9, ("data", 0, "tid"), DELETE),
    (9, ("data", 0, "time"), "1788490042052"),
    (10, ("data", "bbo"), [None]),
    (10, ("data", "bbo", 0, "n"), 2.0),
    (11, ("data", "id"), "7"),
    (11, ("data", "response", "type"), "weird"),
    (11, ("data", "response", "payload"), DELETE),
    (12, ("data", "response"), DELETE),
]


@pytest.mark.parametrize(
    ("index", "path", "new"),
    FRAME_MALFORMED,
    ids=[f"{i}-{'.'.join(map(str, p))}" for i, p, _ in FRAME_MALFORMED],
)
def test_malformed_frames(index: int, path: tuple[Any, ...], new: Any) -> None:
    message = orjson.loads(WS_LINES[index])
    bad = mutate(message, path, delete=True) if new is DELETE else mutate(message, path, new)
    with pytest.raises(CodecError, match="malformed"):
        decode_frame(orjson.dumps(bad))


def test_malformed_user_events() -> None:
    data: dict[str, Any]
    for data in (
        {"liquidation": {"lid": "1"}},
        {"liquidation": []},
        {"nonUserCancel": [{"coin": "BTC", "oid": "1"}]},
        {"nonUserCancel": {"coin": "BTC"}},
    ):
        with pytest.raises(CodecError, match="malformed user frame"):
            decode_frame(orjson.dumps({"channel": "user", "data": data}))


# --- the simulator's shapes --------------------------------------------------------------------

USER = "0x" + "ab" * 20
EPOCH_MS = 1_800_000_000_000


class RecordingHub:
    """Stands in for the simulator's hub: keeps every frame the venue publishes."""

    def __init__(self) -> None:
        self.frames: list[bytes] = []

    def publish(self, key: Any, channel: str, data: object) -> int:
        self.frames.append(orjson.dumps({"channel": channel, "data": data}))
        return 1

    def publish_lazy(self, key: Any, channel: str, data: Callable[[], object]) -> int:
        return self.publish(key, channel, data())

    def has(self, key: Any) -> bool:
        return True  # every key is listened to

    def keys(self) -> list[tuple[str, str]]:
        """Every key is listened to; one aggregated book (nSigFigs 3) among them."""
        return [("l2Book", "BTC:3:")]


async def test_simulator_shapes_parse() -> None:
    venue = SimVenue(SimConfig(market=MarketConfig(taker_a=0.0)), epoch_ms=EPOCH_MS)
    hub = RecordingHub()
    venue.hub = cast(Hub, hub)
    now = venue.now_ms()
    venue.market.seed_liquidity(now)
    venue.engine.fund(USER, 100_000.0)
    btc = venue.engine.by_name["BTC"]
    mark = venue.engine.mark(btc.index)
    assert mark is not None
    cloid = "0x" + "cd" * 16
    resting_px = btc.px_str(btc.round_px(mark * 0.9, up=False))
    results = [
        venue.engine.place(
            USER, OrderRequest(btc.index, True, resting_px, "0.01", cloid=cloid), now
        ),
        venue.engine.place(
            USER,
            OrderRequest(
                btc.index, True, btc.px_str(btc.round_px(mark * 1.05, up=True)), "0.001", tif="Ioc"
            ),
            now,
        ),
        venue.engine.place(USER, OrderRequest(btc.index, True, "1.23456", "1"), now),
    ]
    statuses = [sim_wire.place_status(result, venue.specs) for result in results]
    placed = parse_order_statuses(ok_statuses("order", statuses))
    assert isinstance(placed[0], Resting)
    assert placed[0].cloid == cloid
    assert isinstance(placed[1], Filled)
    assert placed[1].total_sz == 0.001
    assert isinstance(placed[2], Rejected)
    assert placed[2].reason.endswith("asset=0")
    venue.engine.pay_funding(0.0000125, now - now % 3_600_000 + 3_600_000)  # on the long
    venue.publish_events()
    venue.publish_books()

    def ask(request: dict[str, Any]) -> Any:
        return orjson.loads(orjson.dumps(sim_info.handle_info(venue, request)))

    meta = parse_meta(ask({"type": "meta"}))
    assert [a.coin for a in meta] == ["BTC", "ETH"]
    book = parse_l2_book(ask({"type": "l2Book", "coin": "BTC"}))
    assert book.bids
    assert book.asks
    assert book.bids[0][0] < book.asks[0][0]
    assert set(parse_all_mids(ask({"type": "allMids"})).mids) == {"BTC", "ETH"}
    for kind in ("openOrders", "frontendOpenOrders"):
        (order,) = parse_open_orders(ask({"type": kind, "user": USER}))
        assert (order.oid, order.cloid, order.px) == (placed[0].oid, cloid, float(resting_px))
    (fill,) = parse_fills(ask({"type": "userFills", "user": USER}))
    assert (fill.side, fill.sz, fill.crossed) == (Side.BUY, 0.001, True)
    assert parse_fills(ask({"type": "userFillsByTime", "user": USER, "startTime": 0})) == [fill]
    state = parse_clearinghouse_state(ask({"type": "clearinghouseState", "user": USER}))
    assert state.time_ms >= now
    assert [(p.coin, p.szi) for p in state.positions] == [("BTC", 0.001)]
    report = parse_order_status(ask({"type": "orderStatus", "user": USER, "oid": cloid}))
    assert report is not None
    assert (report.status, report.venue_status, report.oid) == (
        OrderStatus.OPEN,
        "open",
        placed[0].oid,
    )
    assert parse_order_status(ask({"type": "orderStatus", "user": USER, "oid": 1})) is None
    history = parse_historical_orders(ask({"type": "historicalOrders", "user": USER}))
    assert {r.venue_status for r in history} >= {"filled"}
    limits = parse_user_rate_limit(ask({"type": "userRateLimit", "user": USER}))
    assert limits.requests_cap > 0

    decoded = [decode_frame(frame) for frame in hub.frames]
    kinds = {type(frame) for frame in decoded}
    assert {TradesFrame, UserFillsFrame, UserEventsFrame, OrderUpdatesFrame} <= kinds
    assert {BookFrame, BboFrame, MidsFrame} <= kinds
    assert not any(isinstance(frame, UnknownFrame) for frame in decoded)
    reports = [r for f in decoded if isinstance(f, OrderUpdatesFrame) for r in f.reports]
    assert placed[0].oid in {r.oid for r in reports}
    user_fills = [f for f in decoded if isinstance(f, UserFillsFrame)]
    assert user_fills[0].fills == [fill]
    (funding,) = [f.funding for f in decoded if isinstance(f, UserEventsFrame) and f.funding]
    assert (funding.coin, funding.szi, funding.funding_rate) == ("BTC", 0.001, 0.0000125)
    assert funding.usdc < 0  # a long pays at a positive rate
    books = [f.book for f in decoded if isinstance(f, BookFrame)]
    assert len(books) == 3  # ETH, BTC, and BTC to 3 significant figures
    coarse = parse_l2_book(ask({"type": "l2Book", "coin": "BTC", "nSigFigs": 3}))
    assert coarse.bids[0][0] % 100 == 0  # a 5-figure BTC price to 3 figures: steps of 100


# --- the venue's numbers only (issue 13, item 14) -------------------------------------------------


@pytest.mark.parametrize(
    "number",
    [
        "1_000",
        " 12 ",
        "12\n",
        "\u0661\u0662",
        "\uff11\uff12",
        "1e5",
        "+1",
        ".5",
        "5.",
        "inf",
        "nan",
    ],
)
def test_numbers_the_venue_never_sends_are_malformed(number: str) -> None:
    """float() takes all of these; a venue number is a plain decimal string only."""
    with pytest.raises(CodecError, match="not a plain decimal string"):
        parse_all_mids({"BTC": number})
    fill = {**response("userFills")[0], "px": number}
    with pytest.raises(CodecError, match="malformed fills"):
        parse_fills([fill])
    trades = orjson.loads(WS_LINES[9])
    assert trades["channel"] == "trades"
    trades["data"][0]["sz"] = number
    with pytest.raises(CodecError, match="malformed trades frame"):
        decode_frame(orjson.dumps(trades))


def test_signed_plain_numbers_parse() -> None:
    mids = parse_all_mids({"BTC": "80868.5", "X": "-0.25", "Y": "0", "Z": "007.50"})
    assert mids.mids == {"BTC": 80868.5, "X": -0.25, "Y": 0.0, "Z": 7.5}
