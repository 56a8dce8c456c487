"""A price-time-priority limit order book for one asset, on integer ticks and lots.

Pure and synchronous. Each side keeps a sorted list of its prices (a plain list kept sorted with
``bisect``: a side holds tens of prices, where an insert's memmove costs less than a balanced
container's bookkeeping) and a FIFO queue per price;
a taker walks the opposite side from the best price while its limit allows. Orders of the
taker's own user met on the way are removed (the venue's self-trade prevention expires the
resting order) and reported, never traded.

Books may share an ``OpenTally`` (the engine's books do; a book alone keeps none): what each
user has resting over them, kept in step by every book change, so that the engine's per-order
checks (the open-order limit, the margin orders hold, the reduce-only orders to recheck after a
fill) read a count and a sum instead of walking the user's orders and every book.
"""

from __future__ import annotations

from bisect import bisect_left, insort
from collections import deque
from collections.abc import Iterable, Iterator, Sequence

import attrs


@attrs.define(eq=False, slots=True)
class Order:
    """A resting (or incoming) limit order; ``sz`` is what remains."""

    oid: int
    user: str
    asset: int
    is_buy: bool
    px: int
    sz: int
    orig_sz: int
    timestamp: int
    tif: str = "Gtc"
    reduce_only: bool = False
    cloid: str | None = None


@attrs.frozen(slots=True)
class Match:
    """One execution against a resting order."""

    maker: Order
    px: int
    sz: int


class OpenTally:
    """Per user, what rests on the books that share this tally: how many orders, the ticks x
    lots of those that hold margin (all but reduce-only ones) per asset, and the reduce-only
    ones themselves, in the order they rested. Users in ``untallied`` (the synthetic market's,
    which trade without margin or limits) are left out. Written by the books only."""

    def __init__(self, untallied: frozenset[str] = frozenset()) -> None:
        self.untallied = untallied
        self.counts: dict[str, int] = {}
        self.margin: dict[str, dict[int, int]] = {}
        self.reduce_only: dict[str, dict[int, Order]] = {}

    def rested(self, order: Order) -> None:
        user = order.user
        self.counts[user] = self.counts.get(user, 0) + 1
        if order.reduce_only:
            mine = self.reduce_only.get(user)
            if mine is None:
                mine = self.reduce_only[user] = {}
            mine[order.oid] = order
            return
        by_asset = self.margin.get(user)
        if by_asset is None:
            by_asset = self.margin[user] = {}
        by_asset[order.asset] = by_asset.get(order.asset, 0) + order.px * order.sz

    def traded(self, order: Order, lots: int) -> None:
        """``lots`` of a resting ``order`` traded (its ``sz`` is already the less)."""
        if not order.reduce_only:
            self._less(order.user, order.asset, order.px * lots)

    def left(self, order: Order) -> None:
        """``order`` left the book with ``order.sz`` unfilled (0 when it filled)."""
        user = order.user
        count = self.counts[user] - 1
        if count:
            self.counts[user] = count
        else:
            del self.counts[user]
        if order.reduce_only:
            mine = self.reduce_only[user]
            del mine[order.oid]
            if not mine:
                del self.reduce_only[user]
        elif order.sz:
            self._less(user, order.asset, order.px * order.sz)

    def _less(self, user: str, asset: int, ticks_lots: int) -> None:
        by_asset = self.margin[user]
        left = by_asset[asset] - ticks_lots
        if left:
            by_asset[asset] = left
        else:  # every order of the user's here that holds margin is gone
            del by_asset[asset]
            if not by_asset:
                del self.margin[user]


class OrderBook:
    """The bids and asks of one asset."""

    def __init__(self, tally: OpenTally | None = None) -> None:
        """``tally``: the tally this book keeps in step with the orders resting on it."""
        self._queues: tuple[dict[int, deque[Order]], dict[int, deque[Order]]] = ({}, {})
        # Index 0: asks (ascending), 1: bids (ascending; the best bid is the last).
        self._prices: tuple[list[int], list[int]] = ([], [])
        self.orders: dict[int, Order] = {}
        # Resting orders by user, so that one user's orders are found without a scan.
        self._by_user: dict[str, dict[int, Order]] = {}
        self.tally = tally

    def best_bid(self) -> int | None:
        prices = self._prices[1]
        return prices[-1] if prices else None

    def best_ask(self) -> int | None:
        prices = self._prices[0]
        return prices[0] if prices else None

    def would_cross(self, is_buy: bool, px: int) -> bool:
        """Whether a limit order at ``px`` would trade on arrival."""
        if is_buy:
            ask = self.best_ask()
            return ask is not None and px >= ask
        bid = self.best_bid()
        return bid is not None and px <= bid

    def match(
        self, is_buy: bool, px: int, sz: int, user: str
    ) -> tuple[list[Match], list[Order], int]:
        """Trade up to ``sz`` at ``px`` or better: (matches, self-trade cancels, remaining)."""
        side = 0 if is_buy else 1  # the side that is hit
        prices = self._prices[side]
        queues = self._queues[side]
        tally = self.tally
        untallied = tally.untallied if tally is not None else frozenset()
        matches: list[Match] = []
        expired: list[Order] = []
        while sz > 0 and prices:
            level_px = prices[0] if is_buy else prices[-1]
            if (level_px > px) if is_buy else (level_px < px):
                break
            queue = queues[level_px]
            while sz > 0 and queue:
                maker = queue[0]
                if maker.user == user:
                    queue.popleft()
                    self._unindex(maker)
                    expired.append(maker)
                    continue
                traded = min(sz, maker.sz)
                maker.sz -= traded
                sz -= traded
                matches.append(Match(maker, level_px, traded))
                if tally is not None and maker.user not in untallied:
                    tally.traded(maker, traded)
                if maker.sz == 0:
                    queue.popleft()
                    self._unindex(maker)
            if not queue:
                del queues[level_px]
                if is_buy:
                    del prices[0]  # the best ask
                else:
                    prices.pop()  # the best bid
        return matches, expired, sz

    def insert(self, order: Order) -> None:
        """Rest an order at the back of its price's queue."""
        side = 1 if order.is_buy else 0
        queues = self._queues[side]
        queue = queues.get(order.px)
        if queue is None:
            queue = queues[order.px] = deque()
            insort(self._prices[side], order.px)
        queue.append(order)
        self.orders[order.oid] = order
        mine = self._by_user.get(order.user)
        if mine is None:
            mine = self._by_user[order.user] = {}
        mine[order.oid] = order
        tally = self.tally
        if tally is not None and order.user not in tally.untallied:
            tally.rested(order)

    def rest_passive(self, orders: Sequence[Order], start: int) -> int:
        """:meth:`insert` ``orders[start:]`` in turn while none would trade on arrival; the
        index of the first that would (``len(orders)`` when all rest). For a ladder of orders
        placed at once: one call instead of a crossing check and an insert each."""
        asks, bids = self._prices
        ask_queues, bid_queues = self._queues
        resting = self.orders
        by_user = self._by_user
        tally = self.tally
        untallied = tally.untallied if tally is not None else frozenset()
        for index in range(start, len(orders)):
            order = orders[index]
            px = order.px
            if order.is_buy:
                if asks and px >= asks[0]:
                    return index
                prices, queues = bids, bid_queues
            else:
                if bids and px <= bids[-1]:
                    return index
                prices, queues = asks, ask_queues
            queue = queues.get(px)
            if queue is None:
                queue = queues[px] = deque()
                insort(prices, px)
            queue.append(order)
            resting[order.oid] = order
            mine = by_user.get(order.user)
            if mine is None:
                mine = by_user[order.user] = {}
            mine[order.oid] = order
            if tally is not None and order.user not in untallied:
                tally.rested(order)
        return len(orders)

    def remove_many(self, user: str, oids: Iterable[int]) -> int:
        """:meth:`remove_order` each of ``oids`` that rests here and is ``user``'s (the others
        are skipped); how many were removed."""
        resting = self._by_user.get(user)
        if not resting:
            return 0
        # remove_order's steps, with the book's containers looked up once for the lot.
        orders, by_user, queues, prices = self.orders, self._by_user, self._queues, self._prices
        tally = self.tally
        if tally is not None and user in tally.untallied:
            tally = None
        removed = 0
        for oid in oids:
            order = resting.get(oid)
            if order is None:
                continue
            del orders[oid]
            del resting[oid]
            if tally is not None:
                tally.left(order)
            side = 1 if order.is_buy else 0
            px = order.px
            queue = queues[side][px]
            queue.remove(order)
            if not queue:
                del queues[side][px]
                side_prices = prices[side]
                del side_prices[bisect_left(side_prices, px)]
            removed += 1
            if not resting:
                del by_user[user]
                break
        return removed

    def remove(self, oid: int) -> Order | None:
        """Take a resting order off the book; None if it is not resting."""
        order = self.orders.get(oid)
        if order is None:
            return None
        self.remove_order(order)
        return order

    def remove_order(self, order: Order) -> None:
        """Take ``order``, which rests here, off the book."""
        self._unindex(order)
        side = 1 if order.is_buy else 0
        queue = self._queues[side][order.px]
        queue.remove(order)
        if not queue:
            del self._queues[side][order.px]
            prices = self._prices[side]
            del prices[bisect_left(prices, order.px)]

    def levels(self, is_buy: bool, depth: int) -> list[tuple[int, int, int]]:
        """Up to ``depth`` levels of one side, best first: (price, total size, order count)."""
        if depth <= 0:  # ``prices[-0:]`` would be every bid
            return []
        side = 1 if is_buy else 0
        prices = self._prices[side]
        chosen = reversed(prices[-depth:]) if is_buy else iter(prices[:depth])
        queues = self._queues[side]
        return [(px, sum(o.sz for o in queues[px]), len(queues[px])) for px in chosen]

    def iter_orders(self) -> Iterator[Order]:
        return iter(self.orders.values())

    def user_orders(self, user: str) -> Iterator[Order]:
        """One user's resting orders, in no particular order."""
        mine = self._by_user.get(user)
        return iter(mine.values()) if mine else iter(())

    def user_count(self, user: str) -> int:
        """How many orders ``user`` has resting here."""
        mine = self._by_user.get(user)
        return len(mine) if mine else 0

    def _unindex(self, order: Order) -> None:
        del self.orders[order.oid]
        mine = self._by_user[order.user]
        del mine[order.oid]
        if not mine:
            del self._by_user[order.user]
        tally = self.tally
        if tally is not None and order.user not in tally.untallied:
            tally.left(order)

    def level_size(self, is_buy: bool, px: int) -> int:
        queue = self._queues[1 if is_buy else 0].get(px)
        return sum(order.sz for order in queue) if queue else 0
