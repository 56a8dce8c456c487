"""KuCoin's messages into typed values, pure: the level-2 book's (the ``/market/level2``
increments, the REST full book, the ``/spotMarket/level2Depth5`` snapshots), the tickers of
``/market/ticker`` (best bid and ask, for mids) and the public trades of ``/market/match``.

Numbers come as the venue's decimal strings and are read strictly (``numbers.parse``'s grammar:
no exponent, sign, space or NaN) into floats; sequences as integers or strings of digits (the
current spec sends a change's sequence as a string and ``sequenceStart``/``sequenceEnd`` as
integers; older recordings, strings throughout). Fails: ``CodecError`` naming what is wrong, for
any message that is not what the venue documents; nothing is half-parsed.
"""

from __future__ import annotations

import re
from typing import Any, Final

import attrs

from mm.model import BookSnapshot, Side, Trade, TradeId
from mm.venues.kucoin import numbers
from mm.venues.kucoin.ids import trade_id
from mm.venues.kucoin.level2 import Change, Increment, Snapshot

__all__ = [
    "CodecError",
    "Ticker",
    "parse_depth5",
    "parse_level2_increment",
    "parse_level2_snapshot",
    "parse_match",
    "parse_ticker",
]

TICKER_PREFIX = "/market/ticker"
_SIDES = {"buy": Side.BUY, "sell": Side.SELL}


class CodecError(ValueError):
    """A message that is not what the venue documents."""


# ``numbers.parse``'s grammar, unsigned: a text it matches reads as ``float(text)``, the same
# float as ``float(numbers.parse(text))`` (both are the correctly rounded value of the decimal),
# without the ``Decimal`` between; any other text goes to ``numbers.parse`` for its error.
_UNSIGNED: Final = re.compile(r"[0-9]+(?:\.[0-9]+)?", re.ASCII)
_fullmatch: Final = _UNSIGNED.fullmatch


def _price(text: Any) -> float:
    if type(text) is str and len(text) <= numbers.MAX_TEXT and _fullmatch(text) is not None:
        return float(text)
    return float(numbers.parse(text))  # raises, as the grammar says


def _sequence(value: Any) -> int:
    if type(value) is int and value >= 0:
        return value
    if type(value) is str and value.isascii() and value.isdigit():
        return int(value)
    raise ValueError(f"not a sequence number: {value!r}")


def _millis(value: Any) -> int:
    if type(value) is not int or value < 0:
        raise ValueError(f"not a time in milliseconds: {value!r}")
    return value


def _change(entry: Any) -> Change:
    """One change, read field by field: its value, or the error that names what is wrong."""
    if type(entry) is not list or len(entry) != 3:
        raise ValueError(f"a change is [price, size, sequence], got {entry!r}")
    price, size, sequence = entry
    px = _price(price)
    return Change(None if px == 0 else px, _price(size), _sequence(sequence))


_MAX_TEXT: Final = numbers.MAX_TEXT
_new_change: Final = tuple.__new__  # ``Change(...)`` without its Python-level ``__new__``


def _changes(raw: Any) -> tuple[Change, ...]:
    """The changes of one side. The usual change (three strings: two numbers in the grammar
    and a sequence of ASCII digits) is read inline, with the very checks ``_change`` makes of
    it and to the same value; any other goes to ``_change``, for its value or its error."""
    if type(raw) is not list:
        raise ValueError(f"expected a list of changes, got {type(raw).__name__}")
    changes: list[Change] = []
    append, fullmatch = changes.append, _fullmatch
    for entry in raw:
        if type(entry) is list and len(entry) == 3:
            price, size, sequence = entry
            if (
                type(price) is str
                and type(size) is str
                and type(sequence) is str
                and len(price) <= _MAX_TEXT
                and len(size) <= _MAX_TEXT
                and fullmatch(price) is not None
                and fullmatch(size) is not None
                and sequence.isascii()
                and sequence.isdigit()
            ):
                px = float(price)
                append(_new_change(Change, (None if px == 0 else px, float(size), int(sequence))))
                continue
        append(_change(entry))
    return tuple(changes)


def _levels(raw: Any) -> tuple[tuple[float, float], ...]:
    if type(raw) is not list:
        raise ValueError(f"expected a list of levels, got {type(raw).__name__}")
    levels = []
    for entry in raw:
        if type(entry) is not list or len(entry) != 2:
            raise ValueError(f"a level is [price, size], got {entry!r}")
        levels.append((_price(entry[0]), _price(entry[1])))
    return tuple(levels)


def parse_level2_increment(data: Any) -> Increment:
    """A ``trade.l2update`` message's ``data``."""
    try:
        changes = data["changes"]
        start, end = _sequence(data["sequenceStart"]), _sequence(data["sequenceEnd"])
        if end < start:
            raise ValueError(f"sequenceEnd {end} before sequenceStart {start}")
        symbol = data["symbol"]
        if type(symbol) is not str:
            raise ValueError(f"symbol: expected a string, got {symbol!r}")
        return Increment(
            symbol,
            start,
            end,
            _millis(data["time"]),
            _changes(changes["bids"]),
            _changes(changes["asks"]),
        )
    except (KeyError, TypeError, ValueError) as error:
        raise CodecError(f"malformed level2 increment: {type(error).__name__}: {error}") from None


def parse_level2_snapshot(data: Any, symbol: str) -> Snapshot:
    """The REST full book's ``data`` (``/api/v3/market/orderbook/level2``; the partial books'
    ``level2_20``/``level2_100`` have the same shape) for ``symbol``, which it does not name."""
    try:
        return Snapshot(
            symbol,
            _sequence(data["sequence"]),
            _millis(data["time"]),
            _levels(data["bids"]),
            _levels(data["asks"]),
        )
    except (KeyError, TypeError, ValueError) as error:
        raise CodecError(f"malformed level2 snapshot: {type(error).__name__}: {error}") from None


def parse_depth5(message: Any, received_ns: int = 0) -> BookSnapshot:
    """A ``/spotMarket/level2Depth5:SYMBOL`` message (the best five levels a side, every 100 ms):
    a whole book, unsequenced; the symbol is the topic's."""
    try:
        topic = message["topic"]
        prefix, _, symbol = topic.partition(":")
        if prefix != "/spotMarket/level2Depth5" or not symbol:
            raise ValueError(f"not a level2Depth5 topic: {topic!r}")
        data = message["data"]
        bids, asks = _levels(data["bids"]), _levels(data["asks"])
        return BookSnapshot(
            symbol,
            _millis(data["timestamp"]),
            tuple((price, size, 0) for price, size in bids),
            tuple((price, size, 0) for price, size in asks),
            received_ns=received_ns,
        )
    except (KeyError, TypeError, ValueError, AttributeError) as error:
        raise CodecError(f"malformed level2Depth5: {type(error).__name__}: {error}") from None


@attrs.frozen(slots=True)
class Ticker:
    """A ``trade.ticker`` message: the symbol's best bid and ask (None: that side is empty,
    the venue's ``"0"``) with their sizes, and the last trade's price and size."""

    symbol: str
    sequence: int
    time_ms: int
    best_bid: float | None
    best_bid_size: float
    best_ask: float | None
    best_ask_size: float
    price: float
    size: float

    @property
    def mid(self) -> float | None:
        """The mid of the best bid and ask; None while a side is empty."""
        if self.best_bid is None or self.best_ask is None:
            return None
        return (self.best_bid + self.best_ask) / 2


def parse_ticker(topic: Any, subject: Any, data: Any) -> Ticker:
    """A ``/market/ticker:SYMBOL`` message (the topic names the symbol) or a
    ``/market/ticker:all`` one (the subject does), by its parts. The spec lists the time as
    ``time``; its example of the per-symbol topic spells it ``Time``: either is read."""
    try:
        if type(topic) is not str:
            raise ValueError(f"topic: expected a string, got {topic!r:.80}")
        prefix, _, named = topic.partition(":")
        if prefix != TICKER_PREFIX or not named:
            raise ValueError(f"not a ticker topic: {topic!r:.80}")
        symbol = subject if named == "all" else named
        if type(symbol) is not str or not symbol:
            raise ValueError(f"no symbol in topic {topic!r:.80}, subject {subject!r:.80}")
        time = data["time"] if "time" in data else data["Time"]
        bid, ask = _price(data["bestBid"]), _price(data["bestAsk"])
        return Ticker(
            symbol,
            _sequence(data["sequence"]),
            _millis(time),
            bid or None,
            _price(data["bestBidSize"]),
            ask or None,
            _price(data["bestAskSize"]),
            _price(data["price"]),
            _price(data["size"]),
        )
    except (KeyError, TypeError, ValueError) as error:
        raise CodecError(f"malformed ticker: {type(error).__name__}: {error}") from None


def parse_match(data: Any) -> Trade:
    """A ``/market/match:SYMBOL`` message's ``data`` (``trade.l3match``): a public trade.
    ``side`` is the taker's (the spec's trade history: "The trade side indicates the taker order
    side"); ``time`` is in nanoseconds, as a string of digits."""
    try:
        if data["type"] != "match":
            raise ValueError(f"type: expected 'match', got {data['type']!r:.40}")
        symbol = data["symbol"]
        if type(symbol) is not str or not symbol:
            raise ValueError(f"symbol: expected a string, got {symbol!r:.80}")
        side = _SIDES.get(data["side"]) if type(data["side"]) is str else None
        if side is None:
            raise ValueError(f"unknown side {data['side']!r:.40}")
        price, size = _price(data["price"]), _price(data["size"])
        if price <= 0 or size <= 0:
            raise ValueError(f"a trade of {size} at {price}")
        return Trade(
            symbol, side, price, size, _sequence(data["time"]) // 1_000_000, _tid(data["tradeId"])
        )
    except (KeyError, TypeError, ValueError) as error:
        raise CodecError(f"malformed match: {type(error).__name__}: {error}") from None


def _tid(value: Any) -> TradeId:
    if type(value) is not str:
        raise ValueError(f"tradeId: expected a string, got {value!r:.40}")
    return trade_id(value)
