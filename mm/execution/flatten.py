"""The flattener: take positions to zero with marketable orders, inside a deadline.

``flatten_order`` (pure) prices the next order for one symbol: the side that reduces the
position, at the opposite best price pushed through by ``slippage_bps`` (so it is marketable),
for the whole position or as much of it as one order may carry (the pre-trade size and
notional limits), reduce-only and immediate-or-cancel, so nothing is left resting. The notional
limit is in USD and a price is in the instrument's quote: they are one unit here because the
flattener only ever flattens a venue's positions (``AccountState.positions``), which only a venue
of positions has, and a venue of positions prices them in the account's value currency (the
portfolio values a position's mark so, ``Portfolio.exposure_mark``; Hyperliquid's USDC, which
the service takes as USD). A spot account reports no positions (its holdings are balances): the
flattener sends nothing there, so no pair quoted in BTC reaches ``flatten_order``. A venue of
positions quoted in another currency would need the quote's USD value here, as the pre-trade
gate has it (``mm.strategies.runner.PretradeGate``).

``Flattener.flatten`` (shell) cancels the symbols' orders, then round by round reads the venue's
positions (the venue's word, not our own tally), sends one IOC per symbol still open (each a
one-leg group of the executor's multi-leg commands, mm.execution.legs, all in one request; the
round waits for their answers, then for their fills up to ``reprice_every_s``), and re-prices
from the latest book with more slippage each round, until every position is zero or
the deadline passes (``trio.move_on_at``). The caller escalates a missed deadline. While it
flattens a symbol it holds it in its slot of the permission board (no quoting there), and it
asks the board before each order: a halted board (HALT, the kill switch) sends nothing.
"""

from __future__ import annotations

import math
from collections.abc import Iterable

import attrs
import trio
from loguru import logger
from prometheus_client import CollectorRegistry, Counter, Histogram

from mm.execution.cancel_all import CancelAll, Purpose
from mm.execution.commands import GroupState, Leg, MultiLeg
from mm.execution.legs import LegExecutor
from mm.execution.permissions import Grant, Level, PermissionBoard, Slot
from mm.execution.pretrade import PretradeConfig
from mm.model import Instrument, PlaceOrder, Side
from mm.settings import non_negative, positive, setting
from mm.venues.base import VenueAdapter

BPS = 1e-4
HELD = Grant(Level.PULLED, "the flattener holds the symbol")


@attrs.frozen
class FlattenConfig:
    """The ``[flatten]`` section (the deadline is ``session.flatten_deadline_s``)."""

    # Slippage past the opposite best price on the first order, added per round, and its cap.
    slippage_bps: float = setting(10.0, non_negative)
    slippage_step_bps: float = setting(10.0, non_negative)
    max_slippage_bps: float = setting(100.0, non_negative)
    # Seconds between rounds: read positions, re-price, send.
    reprice_every_s: float = setting(0.5, positive)


@attrs.frozen
class FlattenOrder:
    side: Side
    px: float
    sz: float


def _any(order: PlaceOrder) -> str | None:
    """The flattener asked the board itself before building its orders."""
    return None


def flatten_order(
    position: float,
    best_bid: float | None,
    best_ask: float | None,
    instrument: Instrument,
    slippage_bps: float,
    limits: PretradeConfig,
) -> FlattenOrder | None:
    """The next order that reduces ``position`` (None: flat, or no price to hit), in whole
    lots of the instrument."""
    lot = float(instrument.size_increment)
    if abs(position) < lot / 2:
        return None
    if position > 0:
        if best_bid is None:
            return None
        side, px = Side.SELL, best_bid * (1 - slippage_bps * BPS)
    else:
        if best_ask is None:
            return None
        side, px = Side.BUY, best_ask * (1 + slippage_bps * BPS)
    most = min(abs(position), limits.max_order_notional_usd / px)  # px in USD: see the module
    lots = math.floor(most / lot + 1e-9)
    if lots <= 0:
        return None
    return FlattenOrder(side, px, instrument.lots_size(lots))


@attrs.frozen
class FlattenResult:
    done: bool
    remaining: dict[str, float]  # signed positions still open when it ended
    orders: int
    seconds: float


class Flattener:
    def __init__(
        self,
        config: FlattenConfig,
        adapter: VenueAdapter,
        limits: PretradeConfig,
        registry: CollectorRegistry,
        board: PermissionBoard,
        permission: Slot,
        cancel_all: CancelAll,
        *,
        legs: LegExecutor,
    ) -> None:
        self.config = config
        self.adapter = adapter
        self.legs = legs  # the executor's multi-leg commands: one one-leg group per symbol
        self.limits = limits
        self.board = board  # read before every order: HALT and the kill switch stop it
        self.permission = permission  # its slot: the symbols it holds are closed to quoting
        self.cancel_all = cancel_all
        self.active: set[str] = set()  # symbols being flattened: the strategy leaves them alone
        self.last: FlattenResult | None = None
        self._runs = Counter(
            "mm_flatten_runs", "Flatten runs by outcome.", ["outcome"], registry=registry
        )
        self._orders = Counter(
            "mm_flatten_orders", "Orders sent by the flattener.", ["symbol"], registry=registry
        )
        self._seconds = Histogram(
            "mm_flatten_seconds",
            "Time from the start of a flatten to its end.",
            buckets=(0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300),
            registry=registry,
        )

    async def flatten(self, coins: Iterable[str], deadline: float) -> FlattenResult:
        """Flatten ``coins`` before ``deadline`` (trio time); the positions left say how it went."""
        wanted = sorted(set(coins))
        started = trio.current_time()
        self.active.update(wanted)
        for coin in wanted:
            self.permission.set_symbol(coin, HELD)
        sent = 0
        remaining: dict[str, float] = dict.fromkeys(wanted, math.nan)  # unknown until read
        try:
            with trio.move_on_at(deadline):
                await self.cancel_all(Purpose.FLATTEN, coins=wanted)  # the IOCs go regardless
                attempt = 0
                while True:
                    round_started = trio.current_time()
                    try:
                        remaining = await self._open_positions(wanted)
                    except Exception as error:  # a failed read is retried next round
                        logger.warning("flatten: reading positions failed: {}", error)
                    else:
                        if not remaining:
                            break
                        groups = self._round(remaining, attempt)
                        sent += len(groups)  # sent, even if the deadline cuts the round short
                        await self._send(groups, attempt)
                        attempt += 1
                    await trio.sleep_until(round_started + self.config.reprice_every_s)
            if remaining:  # the venue's last word, even when the deadline cut a round short
                with trio.move_on_after(2.0, shield=True):
                    try:
                        remaining = await self._open_positions(wanted)
                    except Exception as error:
                        logger.warning("flatten: final position read failed: {}", error)
        finally:
            self.active.difference_update(wanted)
            for coin in wanted:
                self.permission.clear_symbol(coin)
        seconds = trio.current_time() - started
        result = FlattenResult(not remaining, remaining, sent, seconds)
        self.last = result
        self._runs.labels(outcome="done" if result.done else "deadline_missed").inc()
        self._seconds.observe(seconds)
        if result.done:
            logger.info("flattened {} in {:.2f}s with {} orders", wanted, seconds, sent)
        else:
            logger.critical("flatten missed its deadline: still open {}", remaining)
        return result

    async def _open_positions(self, coins: list[str]) -> dict[str, float]:
        client = self.adapter.client
        if client is None:
            return dict.fromkeys(coins, math.nan)  # unknown: not flat
        account = await client.account_state()
        open_positions = {}
        for position in account.positions:
            if position.coin in coins and position.szi:
                lot = float(client.instrument(position.coin).size_increment)
                if abs(position.szi) >= lot / 2:
                    open_positions[position.coin] = position.szi
        return open_positions

    def _round(self, positions: dict[str, float], attempt: int) -> list[MultiLeg]:
        """One IOC per symbol still open, each a one-leg group of the executor's."""
        client = self.adapter.client
        if client is None or not self.legs.ready():
            return []
        config = self.config
        slippage = min(
            config.slippage_bps + attempt * config.slippage_step_bps, config.max_slippage_bps
        )
        groups = []
        for coin, position in positions.items():
            book = self.adapter.bus.latest(coin)
            if book is None or math.isnan(position):
                continue
            instrument = client.instrument(coin)
            order = flatten_order(
                position, book.best_bid, book.best_ask, instrument, slippage, self.limits
            )
            if order is None:
                continue
            if not self.board.may_send(coin, order.side, position, reduce_only=True):
                continue  # HALT or the kill switch: nothing goes out
            leg = Leg(coin, order.side, order.sz, order.px, reduce_only=True)
            groups.append(MultiLeg(f"flatten-{coin}-{attempt}", (leg,)))
            self._orders.labels(symbol=coin).inc()
        return groups

    async def _send(self, groups: list[MultiLeg], attempt: int) -> None:
        """The round's groups in one request; the round ends when they ended (the answer, then
        the fills up to reprice_every_s; the next round re-reads the positions either way)."""
        if not groups:
            return
        ended = await self.legs.execute(
            *groups, allow=_any, leg_timeout_s=self.config.reprice_every_s
        )
        for group in ended:
            if group.state is GroupState.STOPPED:
                logger.info("flatten round {}: {}", attempt, group.reason)

    def status(self) -> dict[str, object]:
        last = self.last
        return {
            "active": sorted(self.active),
            "last": None if last is None else attrs.asdict(last),
        }
