"""KuCoin's user stream as the venue port's ``UserStream``: one account's events and reads.

``KucoinUserStream`` subscribes, on the private ``KucoinWs`` connection (which runs as its own
child, takes a new token and subscribes again after every reconnect, and marks each reconnect
with a ``Gap`` on every subscription), two topics, and hands each on as an ``EventStream`` of
the port's values, every message decoded once:

* ``/spotMarket/tradeOrdersV2``: each order change is an ``OrderReport`` (``orders``); a
  ``match`` is also a ``Fill``, charged the account's maker or taker rate of the symbol (as the
  match's ``feeType`` says, else its ``liquidity``: ``orders``) in its fee currency (``fee``:
  the client read them from ``/api/v1/trade-fees``; the venue's message carries no fee). The
  generic user feed deduplicates fills by trade id, so a fill met again in a resync
  (``/hf/fills``, with the venue's own fee) is not counted twice.
* ``/account/balance``: the trade account's balances (``balances.SpotBalances``), each push an
  ``AccountState`` with every currency's balance as now known. Pushes before the account was
  first read, and those of the account's other accounts (main, margin), are ``Foreign``.

The venue's messages carry no sequence the stream could check: losses show as the connection's
``Gap`` markers (a consumer fell behind, or the socket was lost) and in ``connected`` and
``reconnects``, which ``watching`` passes on; the generic feed resyncs on them.

The resync's reads go to the client (``AccountReads``: REST, signed and budgeted):
``recent_fills``, ``fills_since`` (one page, oldest first), ``open_orders`` and
``account_state``, which also resets the balances the pushes then update; the pushes' states
are valued as the client's (``account.account_state``: the value currency's balance).

How it fails: a message that does not parse is a ``Malformed`` marker; a read fails with the
client's ``VenueError`` (``RateLimited`` for a 429) or ``MalformedAnswer``.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import Any, Final, Protocol

from mm.model import AccountState, Fill, OpenOrder
from mm.venues.base import EventStream, Foreign, UserStreamItem
from mm.venues.kucoin import account, orders
from mm.venues.kucoin.balances import TOPIC as BALANCE_TOPIC
from mm.venues.kucoin.balances import SpotBalances, parse_balance_change
from mm.venues.kucoin.topics import ParsedTopic
from mm.venues.kucoin.ws import Frame, TopicSubscription

__all__ = ["ORDERS_TOPIC", "AccountReads", "KucoinUserStream", "PrivateConnection"]

ORDERS_TOPIC: Final = "/spotMarket/tradeOrdersV2"
DEFAULT_BUFFER: Final = 10_000


class PrivateConnection(Protocol):
    """The part of ``KucoinWs`` the user stream uses."""

    @property
    def reconnects(self) -> int: ...

    @property
    def connected(self) -> bool: ...

    def watching(self, on_change: Callable[[bool, str], None]) -> AbstractContextManager[None]: ...

    async def subscribe(self, topic: str, *, private: bool, buffer: int) -> TopicSubscription: ...

    async def unsubscribe(self, sub: TopicSubscription) -> None: ...


class AccountReads(Protocol):
    """The account's REST reads, and its fee rates, as ``KucoinClient`` offers them."""

    @property
    def fills_page(self) -> int: ...

    @property
    def symbols(self) -> tuple[str, ...]: ...

    @property
    def value_currency(self) -> str: ...

    async def recent_fills(self, symbol: str) -> list[Fill]: ...

    async def fills_since(self, time_ms: int) -> list[Fill]: ...

    async def open_orders(self) -> list[OpenOrder]: ...

    async def account_state(self) -> AccountState: ...

    def fee(self, symbol: str, *, taker: bool) -> tuple[float, str]:
        """The account's rate for the symbol's maker or taker fills, and the fee currency."""
        ...


class KucoinUserStream:
    """One account's order changes and balances, and its reads; see the module."""

    def __init__(self, account: str, connection: PrivateConnection, reads: AccountReads) -> None:
        self._account = account
        self._conn = connection
        self._reads = reads
        self._balances = SpotBalances()
        self._balances_read = False

    @property
    def account(self) -> str:
        return self._account

    @property
    def fills_page(self) -> int:
        return self._reads.fills_page

    @property
    def connected(self) -> bool:
        return self._conn.connected

    @property
    def reconnects(self) -> int:
        return self._conn.reconnects

    def watching(self, on_change: Callable[[bool, str], None]) -> AbstractContextManager[None]:
        return self._conn.watching(on_change)

    async def subscribe(
        self, *, buffer: int | None = None
    ) -> list[EventStream[UserStreamItem | Foreign]]:
        size = DEFAULT_BUFFER if buffer is None else buffer
        streams: list[EventStream[UserStreamItem | Foreign]] = []
        for topic, parse in ((ORDERS_TOPIC, self._order_change), (BALANCE_TOPIC, self._balance)):
            sub = await self._conn.subscribe(topic, private=True, buffer=size)
            streams.append(ParsedTopic(sub, parse))
        return streams

    async def unsubscribe(self, stream: EventStream[Any]) -> None:
        if not isinstance(stream, ParsedTopic):
            raise TypeError(f"not a stream of this venue: {stream!r}")
        await self._conn.unsubscribe(stream.subscription)

    # --- parsing (in the consumer's task) ---------------------------------------------------------

    def _order_change(self, frame: Frame) -> list[UserStreamItem | Foreign]:
        message = {"topic": frame.topic, "subject": frame.subject, "data": frame.data}
        change = orders.parse_order_change(message)
        report = orders.order_report(change)
        if change.type != "match":
            return [report]
        rate, currency = self._reads.fee(change.symbol, taker=change.taker_fee)
        return [report, orders.fill(change, rate, currency)]

    def _balance(self, frame: Frame) -> list[UserStreamItem | Foreign]:
        change = parse_balance_change(frame.data)
        if not change.of_trade_account:
            return [Foreign(f"a balance of the {change.event.split('.', 1)[0]} account")]
        applied = self._balances.apply(change)
        if not self._balances_read:
            return [Foreign("a balance pushed before the account was read")]
        if not applied:
            return [Foreign("a balance older than the one held")]
        return [self._state(change.time_ms)]

    def _state(self, time_ms: int) -> AccountState:
        return account.account_state(self._balances.balances(), self._reads.value_currency, time_ms)

    # --- reads ------------------------------------------------------------------------------------

    async def recent_fills(self) -> list[Fill]:
        """Each followed symbol's latest page of fills, oldest first."""
        pages = [await self._reads.recent_fills(symbol) for symbol in self._reads.symbols]
        return sorted((fill for page in pages for fill in page), key=lambda f: (f.time_ms, f.tid))

    async def fills_since(self, time_ms: int) -> list[Fill]:
        return await self._reads.fills_since(time_ms)

    async def open_orders(self) -> list[OpenOrder]:
        return await self._reads.open_orders()

    async def account_state(self) -> AccountState:
        state = await self._reads.account_state()
        self._balances.reset(state.balances, state.time_ms)
        self._balances_read = True
        return state
