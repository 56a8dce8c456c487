"""KuCoin's level-2 messages parsed against the recorded fixtures, and refused when malformed."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mm.venues.kucoin import numbers
from mm.venues.kucoin.codec import (
    CodecError,
    parse_depth5,
    parse_level2_increment,
    parse_level2_snapshot,
)
from mm.venues.kucoin.codec import _change as codec_change
from mm.venues.kucoin.codec import _changes as codec_changes
from mm.venues.kucoin.codec import _price as codec_price
from mm.venues.kucoin.level2 import Change
from tests.fixture_paths import KUCOIN

MESSAGES: dict[str, Any] = json.loads((KUCOIN / "messages.json").read_text(encoding="utf-8"))
REST: dict[str, Any] = json.loads((KUCOIN / "rest_level2.json").read_text(encoding="utf-8"))


def test_the_current_specs_increment() -> None:
    increment = parse_level2_increment(MESSAGES["new_spec_level2_increment"]["data"])
    assert increment.symbol == "BTC-USDT"
    assert (increment.sequence_start, increment.sequence_end) == (14701689783, 14701689783)
    assert increment.time_ms == 1729816425625
    assert increment.bids == ()
    assert increment.asks == (Change(67993.3, 1.21427407, 14701689783),)


def test_a_legacy_increment_with_several_changes() -> None:
    increment = parse_level2_increment(MESSAGES["legacy_level2_increment"]["data"])
    assert (increment.sequence_start, increment.sequence_end) == (14103844, 14103847)
    assert increment.asks == (
        Change(18906.0, 0.00331, 14103845),
        Change(18907.3, 0.58751503, 14103844),
    )
    assert increment.bids == (Change(18891.9, 0.15688, 14103847),)


def test_the_rest_full_book() -> None:
    snapshot = parse_level2_snapshot(REST["full_orderbook_response"]["data"], "BTC-USDT")
    assert snapshot.sequence == 14610502970
    assert snapshot.time_ms == 1729176273859
    assert snapshot.bids == ((66976.4, 0.69109872), (66976.3, 0.14377))
    assert snapshot.asks == ((66976.5, 0.05408199), (66976.8, 0.0005))


def test_the_depth5_snapshot() -> None:
    book = parse_depth5(MESSAGES["new_spec_level2Depth5"], received_ns=7)
    assert book.coin == "BTC-USDT"
    assert book.time_ms == 1729822226746
    assert book.bids[0] == (67996.6, 0.37969491, 0)
    assert book.asks[0] == (67996.7, 1.14213262, 0)
    assert len(book.bids) == len(book.asks) == 5
    assert book.received_ns == 7
    assert book.bids[0][0] < book.asks[0][0]


def test_a_price_of_zero_is_a_change_of_the_sequence_alone() -> None:
    data = copy.deepcopy(MESSAGES["new_spec_level2_increment"]["data"])
    data["changes"]["bids"] = [["0", "0", "14701689783"]]
    assert parse_level2_increment(data).bids == (Change(None, 0.0, 14701689783),)


def mutated(path: tuple[str, ...], value: Any) -> dict[str, Any]:
    data: dict[str, Any] = copy.deepcopy(MESSAGES["new_spec_level2_increment"]["data"])
    target: Any = data
    for key in path[:-1]:
        target = target[key]
    if value is KeyError:
        del target[path[-1]]
    else:
        target[path[-1]] = value
    return data


@pytest.mark.parametrize(
    ("path", "value"),
    [
        (("sequenceStart",), KeyError),
        (("sequenceStart",), -1),
        (("sequenceStart",), "1e3"),
        (("sequenceEnd",), 1),  # before its start
        (("time",), "1729816425625"),
        (("symbol",), 5),
        (("changes", "asks"), [["67993.3", "1.2"]]),
        (("changes", "asks"), [["67993.3", "1e-3", "1"]]),
        (("changes", "asks"), [["NaN", "1", "1"]]),
        (("changes", "asks"), [["-1", "1", "1"]]),
        (("changes", "asks"), {"67993.3": "1"}),
        (("changes", "bids"), KeyError),
    ],
)
def test_a_malformed_increment_is_refused_naming_why(path: tuple[str, ...], value: Any) -> None:
    with pytest.raises(CodecError, match="malformed level2 increment"):
        parse_level2_increment(mutated(path, value))


def test_malformed_books_are_refused() -> None:
    data = copy.deepcopy(REST["full_orderbook_response"]["data"])
    data["sequence"] = "14610502970.5"
    with pytest.raises(CodecError, match="malformed level2 snapshot"):
        parse_level2_snapshot(data, "BTC-USDT")
    with pytest.raises(CodecError, match="malformed level2 snapshot"):
        parse_level2_snapshot(None, "BTC-USDT")
    message = copy.deepcopy(MESSAGES["new_spec_level2Depth5"])
    message["topic"] = "/market/level2:BTC-USDT"
    with pytest.raises(CodecError, match="not a level2Depth5 topic"):
        parse_depth5(message)
    message = copy.deepcopy(MESSAGES["new_spec_level2Depth5"])
    message["data"]["bids"][0] = ["67996.6"]
    with pytest.raises(CodecError, match="a level is"):
        parse_depth5(message)


@given(
    st.one_of(
        st.from_regex(r"-?[0-9]{1,30}(\.[0-9]{1,30})?", fullmatch=True),
        st.text(alphabet="0123456789.-+eE_ nN\u0663", max_size=12),
        st.decimals(allow_nan=True, allow_infinity=True).map(str),
    )
)
def test_a_price_reads_as_the_venue_numbers_grammar_says(text: str) -> None:
    """The codec's fast read of a number (``float(text)`` after the grammar's check) is the
    float of ``numbers.parse``, and refuses exactly what it refuses, with its error."""
    try:
        expected: float | str = float(numbers.parse(text))
    except ValueError as error:
        expected = str(error)
    try:
        found: float | str = codec_price(text)
    except ValueError as error:
        found = str(error)
    assert found == expected


def read_one_by_one(raw: Any) -> tuple[Change, ...] | str:
    """The changes as the codec read them before its inline read of the usual change: each by
    ``_change`` (the full read); the error's words when one is refused."""
    try:
        if type(raw) is not list:
            raise ValueError(f"expected a list of changes, got {type(raw).__name__}")
        return tuple(codec_change(entry) for entry in raw)
    except (TypeError, ValueError) as error:  # (what parse_level2_increment turns into its error)
        return f"{type(error).__name__}: {error}"


NUMBER_TEXTS = st.one_of(
    st.from_regex(r"[0-9]{1,20}(\.[0-9]{1,20})?", fullmatch=True),
    st.sampled_from(["0", "0.0", "1e-3", "-1", "NaN", "inf", " 1", "1_0", "\u0663", "", "1." * 40]),
    st.text(alphabet="0123456789.-+eE_ nN\u0663", max_size=8),
)
SEQUENCES = st.one_of(
    st.integers(0, 10**12).map(str),
    st.integers(-5, 10**12),
    st.sampled_from(["", "1.5", "-1", "\u0663", "12a", " 7"]),
)
ENTRIES = st.one_of(
    st.lists(st.one_of(NUMBER_TEXTS, SEQUENCES), min_size=3, max_size=3),  # any field anywhere
    st.tuples(NUMBER_TEXTS, NUMBER_TEXTS, SEQUENCES).map(list),  # the usual shape
    st.lists(NUMBER_TEXTS, max_size=4),
    st.sampled_from([None, "abc", ("1", "1", "1"), {"1": "1"}, 5]),
)


@given(st.one_of(st.lists(ENTRIES, max_size=6), st.sampled_from([None, "x", {}, ()])))
def test_the_inline_read_of_changes_is_the_full_read(raw: Any) -> None:
    """``_changes`` reads the usual change inline: the same changes (values and types) as the
    full read of each, and the same error for what it refuses."""
    try:
        found: tuple[Change, ...] | str = codec_changes(raw)
    except (TypeError, ValueError) as error:
        found = f"{type(error).__name__}: {error}"
    expected = read_one_by_one(raw)
    assert found == expected
    if not isinstance(found, str):
        assert [type(change) for change in found] == [Change] * len(found)
        assert [tuple(map(type, c)) for c in found] == [tuple(map(type, c)) for c in expected]
