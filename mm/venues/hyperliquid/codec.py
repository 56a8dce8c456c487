"""Hyperliquid responses and WebSocket frames parsed into :mod:`mm.model` values.

The venue's JSON is parsed once, here; nothing past the adapter sees it. Every parser takes
the already-decoded JSON (``orjson.loads``) of one ``/info`` answer, ``/exchange`` answer or
WebSocket frame, checks the fields it uses (presence and type) and ignores any other field, so
the venue can add fields without breaking us. Anything malformed (bad JSON, a missing field, a
value of the wrong type, a number that does not parse) raises :class:`CodecError`: the caller
counts the message and skips it. A well-formed refusal of a whole ``/exchange`` request
(``{"status": "err", "response": TEXT}``) raises :class:`VenueRejected` with the venue's text.

Decimal strings become floats, and only the venue's plain decimal strings do (``"-0.25"``,
``"79146.0"``; not ``"1_000"``, ``" 12 "``, ``"1e5"`` or other scripts' digits: see
:func:`mm.venues.hyperliquid.numbers.parse_float`); numbers the venue sends as JSON numbers
(ids, times, counts) must be integers. Parsing is on the hot path of market data, so it is
straight-line code with type checks, no validators and no logging.

No input, however shaped, makes a parser raise anything but its declared errors: an error
message describes a bad value by its type and a bounded excerpt, never by its ``repr`` (a value
nested a thousand deep would raise ``RecursionError`` there, and a wide one would make the
message as large as the frame), and nothing here recurses into a value.

Where the venue leaves out a field that a model value needs, the defaults are:

* ``openOrders`` has no ``origSz``, ``reduceOnly`` or ``tif``: ``orig_sz`` is the remaining
  size, ``reduce_only`` False and ``tif`` None (also None for trigger orders and for time in
  force values the model does not know, such as ``FrontendMarket``);
* older fills have no ``tid`` or ``feeToken``: ``tid`` is a stable surrogate derived from the
  fill's hash, oid, time, price, size and side (so dedup never merges two fills), and
  ``fee_token`` is ``"USDC"``;
* ``clearinghouseState`` carries ``time`` only in recent versions: the caller gives the time
  to use without it; a position without ``entryPx`` has entry price 0.0.
"""

from __future__ import annotations

import functools
import hashlib
import itertools
import operator
from collections.abc import Callable
from typing import Any, Final, Literal, ParamSpec, TypeVar

import attrs
import orjson

from mm.model import (
    AccountState,
    Bbo,
    BookSnapshot,
    CancelResult,
    Fill,
    Filled,
    Funding,
    Level,
    Liquidation,
    Mids,
    NonUserCancel,
    OpenOrder,
    OrderId,
    OrderReport,
    PlaceResult,
    Position,
    PriceLevel,
    RateLimitState,
    Rejected,
    Resting,
    Side,
    Tif,
    Trade,
)
from mm.venues.base import MalformedAnswer, VenueError
from mm.venues.hyperliquid import numbers
from mm.venues.hyperliquid.ids import order_id, trade_id
from mm.venues.hyperliquid.instruments import AssetMeta
from mm.venues.hyperliquid.status import order_status

__all__ = [
    "GREETING_TEXT",
    "BboFrame",
    "BookFrame",
    "CodecError",
    "ErrorFrame",
    "Frame",
    "Greeting",
    "MidsFrame",
    "OrderUpdatesFrame",
    "Pong",
    "PostReply",
    "SubscriptionAck",
    "TradesFrame",
    "UnknownFrame",
    "UserEventsFrame",
    "UserFillsFrame",
    "VenueRejected",
    "decode_frame",
    "decode_message",
    "describe",
    "parse_all_mids",
    "parse_cancel_statuses",
    "parse_clearinghouse_state",
    "parse_default",
    "parse_fills",
    "parse_historical_orders",
    "parse_info_payload",
    "parse_json",
    "parse_l2_book",
    "parse_meta",
    "parse_open_orders",
    "parse_order_report",
    "parse_order_status",
    "parse_order_statuses",
    "parse_user_rate_limit",
]

GREETING_TEXT: Final = "Websocket connection established."


class CodecError(MalformedAnswer):
    """A venue message without the expected shape: bad JSON, a missing or mistyped field."""


class VenueRejected(VenueError):
    """The venue refused a whole request: ``{"status": "err", "response": TEXT}``."""

    def __init__(self, text: str) -> None:
        super().__init__(text)
        self.text = text


# --- field helpers -------------------------------------------------------------------------------
# They raise TypeError / ValueError; the public parsers turn those (and KeyError, IndexError,
# AttributeError from indexing the wrong kind of value) into CodecError.

_SIDES: Final = {"B": Side.BUY, "A": Side.SELL}
_TIFS: Final = {"Gtc": Tif.GTC, "Ioc": Tif.IOC, "Alo": Tif.ALO}
# RecursionError too, as a last line: no parser recurses into a value or takes its repr, but a
# crash of the user stream or a slot must never be the price of a helper that one day does.
_MALFORMED: Final = (KeyError, IndexError, TypeError, ValueError, AttributeError, RecursionError)

_f: Final = numbers.parse_float
"""A decimal string of the venue as a finite float (TypeError, ValueError otherwise)."""


def _brief(value: Any) -> str:
    """A bounded, non-recursive description of a value for an error message."""
    if isinstance(value, str):
        return repr(value) if len(value) <= 40 else repr(value[:40]) + "..."
    if isinstance(value, bool | int | float) or value is None:
        return repr(value)[:40]
    if isinstance(value, dict):
        keys = [_brief(key) for key in itertools.islice(value, 5)]
        more = ", ..." if len(value) > 5 else ""
        return f"an object with keys [{', '.join(keys)}{more}]"
    return f"a value of type {type(value).__name__}"


def _opt_f(value: Any) -> float | None:
    return None if value is None else _f(value)


def _i(value: Any) -> int:
    if type(value) is not int:
        raise TypeError(f"expected an integer, got {type(value).__name__}")
    return value


def _s(value: Any) -> str:
    if type(value) is not str:
        raise TypeError(f"expected a string, got {type(value).__name__}")
    return value


def _opt_s(value: Any) -> str | None:
    if value is None or type(value) is str:
        return value
    raise TypeError(f"expected a string or null, got {type(value).__name__}")


def _b(value: Any) -> bool:
    if type(value) is not bool:
        raise TypeError(f"expected a boolean, got {type(value).__name__}")
    return value


def _list(value: Any) -> list[Any]:
    if type(value) is not list:
        raise TypeError(f"expected an array, got {type(value).__name__}")
    return value


def _dict(value: Any) -> dict[str, Any]:
    if type(value) is not dict:
        raise TypeError(f"expected an object, got {type(value).__name__}")
    return value


def _side(value: Any) -> Side:
    side = _SIDES.get(_s(value))
    if side is None:
        raise ValueError(f"unknown side {_brief(value)}")
    return side


def _tif(value: Any) -> Tif | None:
    return None if value is None else _TIFS.get(_s(value))


_P = ParamSpec("_P")
_R = TypeVar("_R")


def _parser(what: str) -> Callable[[Callable[_P, _R]], Callable[_P, _R]]:
    """Turn the errors of malformed input into :class:`CodecError` naming ``what``."""

    def wrap(function: Callable[_P, _R]) -> Callable[_P, _R]:
        @functools.wraps(function)
        def parse(*args: _P.args, **kwargs: _P.kwargs) -> _R:
            try:
                return function(*args, **kwargs)
            except CodecError:
                raise
            except _MALFORMED as exc:
                raise CodecError(f"malformed {what}: {type(exc).__name__}: {exc}") from exc

        return parse

    return wrap


def describe(value: Any) -> str:
    """A venue value as text for a message or a log line: a string is itself, anything else a
    bounded description (its type, an object's first keys), never its ``repr``."""
    return value if isinstance(value, str) else _brief(value)


def parse_json(body: str | bytes) -> Any:
    """Decode a JSON body; :class:`CodecError` when it is not JSON."""
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise CodecError(f"not JSON: {exc}") from exc


# --- shared shapes -------------------------------------------------------------------------------


def _levels(raw: Any, depth: int | None = None) -> tuple[PriceLevel, ...]:
    """A side's first ``depth`` levels (all of them when None) as ``(px, sz, n)`` tuples; the
    levels past ``depth`` are not read, so they are not checked either."""
    entries = _list(raw)
    if depth is not None and len(entries) > depth:
        entries = entries[:depth]
    parse = _f
    levels = []
    for entry in entries:
        n = entry["n"]
        if type(n) is not int:
            raise TypeError(f"expected an integer level count, got {type(n).__name__}")
        levels.append((parse(entry["px"]), parse(entry["sz"]), n))
    return tuple(levels)


_PX: Final = operator.itemgetter("px")
_SZ: Final = operator.itemgetter("sz")
_N: Final = operator.itemgetter("n")
_INF: Final = float("inf")
_loads: Final = orjson.loads


def _both_sides(
    levels: list[Any], depth: int | None
) -> tuple[tuple[PriceLevel, ...], tuple[PriceLevel, ...]] | None:
    """A book's two sides as ``_levels`` reads them, or None where it might not: the fast
    path of the feed (a book frame's levels are most of its work), in C where it can be.

    Every price and size of both sides (the first ``depth`` of each) is read by one
    ``orjson.loads`` of the texts joined as a JSON array, each text followed by ``e0``:
    ``"0.6"`` and ``"12"`` become ``[0.6e0,12e0]``, floats both (an exponent makes a JSON
    number a float, as ``float`` reads every text). When that array has one number per text
    and no text holds JSON whitespace, every text is exactly a JSON number without exponent
    or leading zero, a subset of the venue's grammar (``numbers.parse_float``), and its float
    is the one ``float`` gives (both round correctly; the property tests hold orjson to it):

    - the separators put 2 * count - 1 commas between the texts; an element that is not a
      number or a bool (a string, array, object or null, the only JSON values that could hold
      a comma or end the array early) makes ``sum`` raise, so when ``sum`` succeeds every
      comma is a separator and the count says no text held one;
    - each element is then one text followed by ``e0``, with no space around it (checked);
      a number with its own exponent, a point first or last, a sign ``+``, a leading zero
      (``"05"``), ``inf`` or ``nan`` is not JSON there, and orjson refuses an infinite value.

    Any doubt (a level that is not an object of strings, a count that is not an integer, a
    text out of that subset) answers None, for ``_levels`` to give the very answer or the very
    error it always did. (A subclass of str, which no JSON decoder gives, is read here as the
    text it is, as the memo of ``parse_float`` may read it.)

    Measured on bench_feed's frames (10 levels a side, thread CPU): 7.7-8.0 us a book against
    10.9 us for the ``float`` of every text with the joined texts checked byte by byte."""
    try:
        bids, asks = levels[0], levels[1]
        if type(bids) is not list or type(asks) is not list:
            return None
        if depth is not None:
            bids, asks = bids[:depth], asks[:depth]
        entries = bids + asks
        if not entries:
            return (), ()
        # (TypeError, KeyError: not an object with the field; TypeError: not a str)
        joined = "e0,".join([*map(_PX, entries), *map(_SZ, entries)])
        ns = [*map(_N, entries)]
        count = len(ns)
        values = _loads("[" + joined + "e0]")  # (orjson.JSONDecodeError, a ValueError)
        if (
            len(values) == 2 * count
            and " " not in joined
            and "\n" not in joined
            and "\r" not in joined
            and "\t" not in joined
            and -_INF < sum(values) < _INF  # (TypeError: not all numbers)
            and [*map(type, ns)] == [int] * count
        ):
            # The prices are ``values``' first ``count``: ``zip`` stops at the last count (so
            # no slice of them is made; and ``strict=True``, a keyword argument, would cost
            # ``zip`` a dict each call, a sixth of this line's time).
            both = tuple(zip(values, values[count:], ns))  # noqa: B905 -- see above
            split = len(bids)
            return both[:split], both[split:]
    except _MALFORMED:
        pass
    return None


def _book(data: Any, depth: int | None = None, received_ns: int = 0) -> BookSnapshot:
    # (``_list``, ``_s`` and ``_i`` in their order, written out: the feed parses every book)
    levels = data["levels"]
    if type(levels) is not list:
        raise TypeError(f"expected an array, got {type(levels).__name__}")
    coin = data["coin"]
    if type(coin) is not str:
        raise TypeError(f"expected a string, got {type(coin).__name__}")
    time_ms = data["time"]
    if type(time_ms) is not int:
        raise TypeError(f"expected an integer, got {type(time_ms).__name__}")
    sides = _both_sides(levels, depth)
    if sides is None:
        sides = _levels(levels[0], depth), _levels(levels[1], depth)
    return BookSnapshot(coin, time_ms, sides[0], sides[1], None, received_ns)  # (no seq)


def _level(entry: Any) -> Level | None:
    if entry is None:
        return None
    return Level(_f(entry["px"]), _f(entry["sz"]), _i(entry["n"]))


def _mids(data: Any) -> Mids:
    return Mids({_s(coin): _f(px) for coin, px in _dict(data).items()})


def _oid(value: Any) -> OrderId:
    """An order's ``oid`` as mm's qualified id."""
    return order_id(_i(value))


def _surrogate_tid(hash_: str, oid: int, time_ms: int, px: str, sz: str, side: str) -> int:
    """A stable id for a fill recorded without ``tid``: distinct fills never share one.

    Made from the fill's fields once they are checked (strings and integers, so the key is as
    it always was: ``str`` of each, joined by ``|``).
    """
    key = "|".join((hash_, str(oid), str(time_ms), px, sz, side))
    return int.from_bytes(hashlib.sha256(key.encode()).digest()[:7], "big")


def _fill(entry: Any) -> Fill:
    px, sz, side = _s(entry["px"]), _s(entry["sz"]), _s(entry["side"])
    time_ms, oid, hash_ = _i(entry["time"]), _i(entry["oid"]), _s(entry["hash"])
    tid = entry["tid"] if "tid" in entry else _surrogate_tid(hash_, oid, time_ms, px, sz, side)
    return Fill(
        coin=_s(entry["coin"]),
        side=_side(side),
        px=_f(px),
        sz=_f(sz),
        time_ms=time_ms,
        oid=order_id(oid),
        tid=trade_id(_i(tid)),
        cloid=_opt_s(entry.get("cloid")),
        fee=_f(entry["fee"]),
        fee_token=_s(entry.get("feeToken", "USDC")),
        crossed=_b(entry["crossed"]),
        start_position=_f(entry["startPosition"]),
        direction=_s(entry["dir"]),
        closed_pnl=_f(entry["closedPnl"]),
        hash=hash_,
    )


def _fills(raw: Any) -> list[Fill]:
    return [_fill(entry) for entry in _list(raw)]


def _report(entry: Any) -> OrderReport:
    """``{"order": {...}, "status": ..., "statusTimestamp": ...}`` (updates, status, history)."""
    order = entry["order"]
    word = _s(entry["status"])
    return OrderReport(
        coin=_s(order["coin"]),
        side=_side(order["side"]),
        px=_f(order["limitPx"]),
        sz=_f(order["sz"]),
        orig_sz=_f(order["origSz"]),
        oid=_oid(order["oid"]),
        cloid=_opt_s(order.get("cloid")),
        time_ms=_i(order["timestamp"]),
        status=order_status(word),
        status_time_ms=_i(entry["statusTimestamp"]),
        venue_status=word,
    )


def _trade(entry: Any) -> Trade:
    return Trade(
        coin=_s(entry["coin"]),
        side=_side(entry["side"]),
        px=_f(entry["px"]),
        sz=_f(entry["sz"]),
        time_ms=_i(entry["time"]),
        tid=trade_id(_i(entry["tid"])),
    )


# --- /info ---------------------------------------------------------------------------------------


@_parser("meta")
def parse_meta(data: Any) -> list[AssetMeta]:
    """``meta``: the perpetuals universe; an asset's index is its position in the list."""
    return [
        AssetMeta(
            index=index,
            coin=_s(asset["name"]),
            sz_decimals=_i(asset["szDecimals"]),
            max_leverage=_i(asset["maxLeverage"]),
        )
        for index, asset in enumerate(_list(data["universe"]))
    ]


def parse_l2_book(data: Any, depth: int | None = None, received_ns: int = 0) -> BookSnapshot:
    """``l2Book`` (the answer and the channel's data): best levels first on each side, the first
    ``depth`` of each (all when None; levels past it are neither read nor checked), stamped
    with ``received_ns`` (the frame's arrival, mm.clock.monotonic_ns)."""
    try:  # (as ``_parser("l2Book")`` does, written out: the feed parses every book frame)
        return _book(data, depth, received_ns)
    except _MALFORMED as exc:
        raise CodecError(f"malformed l2Book: {type(exc).__name__}: {exc}") from exc


@_parser("allMids")
def parse_all_mids(data: Any) -> Mids:
    """``allMids``: the answer is the coin-to-mid object itself."""
    return _mids(data)


def _open_order(entry: Any) -> OpenOrder:
    sz = _f(entry["sz"])
    orig_sz = entry.get("origSz")
    reduce_only = entry.get("reduceOnly", False)
    return OpenOrder(
        coin=_s(entry["coin"]),
        side=_side(entry["side"]),
        px=_f(entry["limitPx"]),
        sz=sz,
        orig_sz=sz if orig_sz is None else _f(orig_sz),
        oid=_oid(entry["oid"]),
        cloid=_opt_s(entry.get("cloid")),
        time_ms=_i(entry["timestamp"]),
        reduce_only=_b(reduce_only),
        tif=_tif(entry.get("tif")),
    )


@_parser("open orders")
def parse_open_orders(data: Any) -> list[OpenOrder]:
    """``openOrders`` or ``frontendOpenOrders``."""
    return [_open_order(entry) for entry in _list(data)]


@_parser("fills")
def parse_fills(data: Any) -> list[Fill]:
    """``userFills`` or ``userFillsByTime``."""
    return _fills(data)


def _position(entry: Any) -> Position:
    position = entry["position"]
    entry_px = _opt_f(position.get("entryPx"))
    return Position(
        coin=_s(position["coin"]),
        szi=_f(position["szi"]),
        entry_px=0.0 if entry_px is None else entry_px,
        unrealized_pnl=_f(position["unrealizedPnl"]),
        liquidation_px=_opt_f(position.get("liquidationPx")),
        margin_used=_f(position["marginUsed"]),
        leverage=_i(position["leverage"]["value"]),
    )


@_parser("clearinghouseState")
def parse_clearinghouse_state(data: Any, time_ms: int = 0) -> AccountState:
    """``clearinghouseState``; ``time_ms`` is used when the answer carries no ``time``."""
    summary = data["marginSummary"]
    time = data.get("time")
    return AccountState(
        time_ms=time_ms if time is None else _i(time),
        account_value=_f(summary["accountValue"]),
        margin_used=_f(summary["totalMarginUsed"]),
        withdrawable=_f(data["withdrawable"]),
        positions=tuple(_position(entry) for entry in _list(data["assetPositions"])),
    )


@_parser("order report")
def parse_order_report(entry: Any) -> OrderReport:
    """One ``{"order", "status", "statusTimestamp"}`` entry."""
    return _report(entry)


@_parser("info reply")
def parse_info_payload(payload: Any) -> Any:
    """The answer in a WebSocket post's info payload (``{"type": INFO_TYPE, "data": ANSWER}``),
    for the ``parse_*`` of its type."""
    return _dict(payload)["data"]


@_parser("orderStatus")
def parse_order_status(data: Any) -> OrderReport | None:
    """``orderStatus``: the order's report, or None when the venue does not know it."""
    status = _s(data["status"])
    if status == "unknownOid":
        return None
    if status != "order":
        raise ValueError(f"unknown orderStatus status {_brief(status)}")
    return _report(data["order"])


@_parser("historicalOrders")
def parse_historical_orders(data: Any) -> list[OrderReport]:
    """``historicalOrders``: newest first, as the venue lists them."""
    return [_report(entry) for entry in _list(data)]


@_parser("userRateLimit")
def parse_user_rate_limit(data: Any) -> RateLimitState:
    """``userRateLimit``: cumulative volume and the address's request budget."""
    return RateLimitState(
        cum_volume=_f(data["cumVlm"]),
        requests_used=_i(data["nRequestsUsed"]),
        requests_cap=_i(data["nRequestsCap"]),
    )


# --- /exchange -----------------------------------------------------------------------------------


def _ok_response(resp: Any) -> Any:
    status = _s(resp["status"])
    if status == "err":
        raise VenueRejected(_s(resp["response"]))
    if status != "ok":
        raise ValueError(f"unknown response status {_brief(status)}")
    return resp["response"]


def _place_status(status: Any) -> PlaceResult:
    if "resting" in _dict(status):
        resting = status["resting"]
        return Resting(oid=_oid(resting["oid"]), cloid=_opt_s(resting.get("cloid")))
    if "filled" in status:
        filled = status["filled"]
        return Filled(
            oid=_oid(filled["oid"]),
            cloid=_opt_s(filled.get("cloid")),
            total_sz=_f(filled["totalSz"]),
            avg_px=_f(filled["avgPx"]),
        )
    if "error" in status:
        return Rejected(_s(status["error"]))
    raise ValueError(f"unknown order status: {_brief(status)}")


@_parser("order statuses")
def parse_order_statuses(resp: Any) -> list[PlaceResult]:
    """The statuses of an ``order`` or ``batchModify`` action, in request order.

    Raises :class:`VenueRejected` when the venue refused the whole action.
    """
    statuses = _list(_ok_response(resp)["data"]["statuses"])
    return [_place_status(status) for status in statuses]


def _cancel_status(status: Any) -> CancelResult:
    if status == "success":
        return None
    error = _dict(status).get("error")
    if error is None:
        raise ValueError(f"unknown cancel status: {_brief(status)}")
    return Rejected(_s(error))


@_parser("cancel statuses")
def parse_cancel_statuses(resp: Any) -> list[CancelResult]:
    """The statuses of a ``cancel`` or ``cancelByCloid`` action: None when canceled.

    Raises :class:`VenueRejected` when the venue refused the whole action.
    """
    statuses = _list(_ok_response(resp)["data"]["statuses"])
    return [_cancel_status(status) for status in statuses]


@_parser("exchange response")
def parse_default(resp: Any) -> None:
    """An action answered without statuses (``modify``, ``scheduleCancel``, ``noop``, ...).

    Raises :class:`VenueRejected` when the venue refused it.
    """
    _ok_response(resp)


# --- WebSocket frames ----------------------------------------------------------------------------


@attrs.frozen(slots=True)
class Greeting:
    """The plain-text "Websocket connection established." sent on connect."""


@attrs.frozen(slots=True)
class Pong:
    """The answer to a ``{"method": "ping"}``."""


@attrs.frozen(slots=True)
class SubscriptionAck:
    method: str  # "subscribe" or "unsubscribe"
    subscription: dict[str, Any]


@attrs.frozen(slots=True)
class ErrorFrame:
    text: str


@attrs.frozen(slots=True)
class PostReply:
    """The answer to a ``post`` request, matched by ``id``.

    ``payload`` is, by ``kind``: ``"info"``: ``{"type": INFO_TYPE, "data": ANSWER}`` (the
    ``/info`` answer goes to the matching ``parse_*``); ``"action"``: the ``/exchange`` answer
    (for :func:`parse_order_statuses` and friends); ``"error"``: the venue's text.
    """

    id: int
    kind: Literal["info", "action", "error"]
    payload: Any


@attrs.frozen(slots=True)
class BookFrame:
    book: BookSnapshot


@attrs.frozen(slots=True)
class TradesFrame:
    trades: list[Trade]


@attrs.frozen(slots=True)
class MidsFrame:
    mids: Mids


@attrs.frozen(slots=True)
class BboFrame:
    bbo: Bbo


@attrs.frozen(slots=True)
class OrderUpdatesFrame:
    reports: list[OrderReport]


@attrs.frozen(slots=True)
class UserFillsFrame:
    user: str
    is_snapshot: bool
    fills: list[Fill]


@attrs.frozen(slots=True)
class UserEventsFrame:
    """A ``user`` (userEvents) frame: one kind of event per frame (fills, a funding payment, a
    liquidation or non-user cancels); the others are empty."""

    fills: list[Fill]
    liquidation: Liquidation | None
    non_user_cancels: list[NonUserCancel]
    funding: Funding | None = None


@attrs.frozen(slots=True)
class UnknownFrame:
    """A well-formed frame on a channel this codec does not parse."""

    channel: str


Frame = (
    Greeting
    | SubscriptionAck
    | ErrorFrame
    | Pong
    | PostReply
    | BookFrame
    | TradesFrame
    | MidsFrame
    | BboFrame
    | OrderUpdatesFrame
    | UserFillsFrame
    | UserEventsFrame
    | UnknownFrame
)

_GREETING: Final = Greeting()
_PONG: Final = Pong()
_GREETING_BYTES: Final = GREETING_TEXT.encode()
_POST_KINDS: Final[dict[str, Literal["info", "action", "error"]]] = {
    "info": "info",
    "action": "action",
    "error": "error",
}


def _post(data: Any) -> PostReply:
    response = data["response"]
    kind_text = _s(response["type"])
    kind = _POST_KINDS.get(kind_text)
    if kind is None:
        raise ValueError(f"unknown post response type {_brief(kind_text)}")
    return PostReply(_i(data["id"]), kind, response["payload"])


def _bbo(data: Any) -> BboFrame:
    bbo = _list(data["bbo"])
    return BboFrame(Bbo(_s(data["coin"]), _i(data["time"]), _level(bbo[0]), _level(bbo[1])))


def _user_fills(data: Any) -> UserFillsFrame:
    return UserFillsFrame(
        _s(data["user"]), _b(data.get("isSnapshot", False)), _fills(data["fills"])
    )


def _liquidation(data: Any) -> Liquidation:
    return Liquidation(
        lid=_i(data["lid"]),
        liquidator=_s(data["liquidator"]),
        liquidated_user=_s(data["liquidated_user"]),
        liquidated_ntl_pos=_f(data["liquidated_ntl_pos"]),
        liquidated_account_value=_f(data["liquidated_account_value"]),
    )


def _funding(data: Any) -> Funding:
    """``WsUserFunding``: ``{time, coin, usdc, szi, fundingRate}`` (decimal strings)."""
    return Funding(
        coin=_s(data["coin"]),
        usdc=_f(data["usdc"]),
        szi=_f(data["szi"]),
        funding_rate=_f(data["fundingRate"]),
        time_ms=_i(data["time"]),
    )


def _user_events(data: Any) -> UserEventsFrame:
    fills = data.get("fills")
    liquidation = data.get("liquidation")
    cancels = data.get("nonUserCancel")
    funding = data.get("funding")
    return UserEventsFrame(
        fills=[] if fills is None else _fills(fills),
        liquidation=None if liquidation is None else _liquidation(liquidation),
        non_user_cancels=[]
        if cancels is None
        else [NonUserCancel(_s(c["coin"]), _oid(c["oid"])) for c in _list(cancels)],
        funding=None if funding is None else _funding(funding),
    )


_CHANNELS: Final[dict[str, Callable[[Any], Frame]]] = {
    "l2Book": lambda data: BookFrame(_book(data)),
    "trades": lambda data: TradesFrame([_trade(entry) for entry in _list(data)]),
    "bbo": _bbo,
    "allMids": lambda data: MidsFrame(_mids(data["mids"])),
    "orderUpdates": lambda data: OrderUpdatesFrame([_report(entry) for entry in _list(data)]),
    "userFills": _user_fills,
    "user": _user_events,
    "post": _post,
    "subscriptionResponse": lambda data: SubscriptionAck(
        _s(data["method"]), _dict(data["subscription"])
    ),
    "error": lambda data: ErrorFrame(_s(data)),
    "pong": lambda data: _PONG,
}


def decode_frame(text: str | bytes) -> Frame:
    """One WebSocket text frame as a typed frame; :class:`CodecError` when malformed."""
    if text in (GREETING_TEXT, _GREETING_BYTES):
        return _GREETING
    try:
        message = orjson.loads(text)
    except orjson.JSONDecodeError as exc:
        raise CodecError(f"frame is not JSON: {exc}") from exc
    return decode_message(message)


def decode_message(message: Any) -> Frame:
    """An already-parsed WebSocket message as a typed frame; :class:`CodecError` if malformed."""
    if type(message) is not dict:
        raise CodecError(f"frame is not an object: {type(message).__name__}")
    channel = message.get("channel")
    if type(channel) is not str:
        raise CodecError("frame has no channel")
    handler = _CHANNELS.get(channel)
    if handler is None:
        return UnknownFrame(channel)
    try:
        return handler(message.get("data"))
    except _MALFORMED as exc:
        raise CodecError(f"malformed {channel} frame: {type(exc).__name__}: {exc}") from exc
