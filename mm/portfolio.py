"""Position, balance, PnL and markout bookkeeping from our own fills.

Pure code: no I/O and no clock reads; every time is passed in as milliseconds since the epoch.

`Portfolio` is the service's portfolio, outside the strategy: the ``portfolio`` child feeds it
every fill from its own channel, it adopts the venue's positions at startup (and after a kill
switch's cancel), and the strategy, risk and ops only read it. It keeps the positions and PnL
(`PositionBook`) and the balance of every currency (`Balances`).

`Balances` moves each currency by the fills as a spot exchange moves it: a buy brings its size
of the instrument's base in and its notional of the quote out (a sell the other way), and the
fee leaves in its own currency (a rebate, negative, comes in). On a spot venue, seeded with the
venue's balances, these are the balances; on a perpetual venue the base figure is the position
and the quote figure the cash the trades moved (the PnL is the position book's).

`PositionBook` keeps, per symbol, the signed position, the average entry price, realized PnL by
the average-cost method (a reduce realizes ``(px - entry) * closed * sign(position)``; a flip
closes the whole position and opens the remainder at the fill price), fees paid (negative for
rebates), traded notional and fill counts by side. Applying the same fill twice (same
``(tid, oid)``) changes nothing.

`Markouts` measures how the mid moved after each fill: at each horizon (1 s, 5 s and 30 s by
default) the markout is ``side.sign * (mid - fill_px) / fill_px`` in basis points, positive when
the fill was good for us. A horizon is evaluated at the first mid seen at or after its due time.
Pending fills are capped; past the cap the oldest is dropped and counted.
"""

from __future__ import annotations

import collections
import heapq
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import attrs

from mm.model import AccountState, Fill, Instrument, OrderId, Side, TradeId

__all__ = ["Balances", "Markouts", "Portfolio", "PositionBook", "SymbolPosition"]

_BPS = 10_000.0


@attrs.define(slots=True)
class SymbolPosition:
    """Mutable running state for one symbol."""

    position: float = 0.0
    entry: float = 0.0  # average entry price of the open position; 0.0 when flat
    realized: float = 0.0
    fees: float = 0.0
    volume: float = 0.0  # traded notional, sum of px * sz
    fills_buy: int = 0
    fills_sell: int = 0

    def unrealized(self, mark: float) -> float:
        return (mark - self.entry) * self.position if self.position else 0.0


class PositionBook:
    """Per-symbol positions and PnL from fills, idempotent per ``(tid, oid)``.

    ``flat_eps`` snaps a position whose magnitude falls to or below it to exactly zero, so float
    residue from partial reduces does not leave a dust position with a stale entry price.
    ``max_keys`` bounds the set of remembered fill keys (oldest forgotten first).
    """

    def __init__(self, *, flat_eps: float = 1e-12, max_keys: int = 1_000_000) -> None:
        if flat_eps < 0:
            raise ValueError("flat_eps must be >= 0")
        if max_keys < 1:
            raise ValueError("max_keys must be >= 1")
        self._flat_eps = flat_eps
        self._max_keys = max_keys
        self._symbols: dict[str, SymbolPosition] = {}
        self._applied: dict[tuple[TradeId, OrderId], None] = {}  # insertion-ordered set
        self._as_of: dict[str, int] = {}  # per symbol: fills up to this time are in the seed
        self._forgot = False  # whether a fill key was forgotten (more than max_keys)

    # --- updates ------------------------------------------------------------------------------

    def seed(self, coin: str, position: float, entry: float, as_of_ms: int = 0) -> None:
        """Start from the venue's position at ``as_of_ms`` (at startup): fills up to that time
        are already in it and are not applied again."""
        st = self._symbols.setdefault(coin, SymbolPosition())
        st.position = position
        st.entry = entry if position else 0.0
        self._as_of[coin] = as_of_ms

    def apply(self, fill: Fill) -> bool:
        """Apply one fill; returns False (and changes nothing) if it was already applied."""
        key = (fill.tid, fill.oid)
        if key in self._applied:
            return False
        self._applied[key] = None
        if len(self._applied) > self._max_keys:
            del self._applied[next(iter(self._applied))]
            self._forgot = True

        if fill.time_ms <= self._as_of.get(fill.coin, -1):
            return False  # already part of the position the venue reported at startup
        st = self._symbols.setdefault(fill.coin, SymbolPosition())
        st.fees += fill.fee
        st.volume += abs(fill.px * fill.sz)
        if fill.side is Side.BUY:
            st.fills_buy += 1
        else:
            st.fills_sell += 1
        if fill.sz <= 0:
            return True

        delta = fill.side.sign * fill.sz
        pos = st.position
        if pos == 0 or (pos > 0) == (delta > 0):
            # open or increase: size-weighted average entry
            new_pos = pos + delta
            st.entry = (st.entry * abs(pos) + fill.px * fill.sz) / abs(new_pos)
            st.position = new_pos
        else:
            pos_sign = 1.0 if pos > 0 else -1.0
            closed = min(abs(pos), fill.sz)
            st.realized += (fill.px - st.entry) * closed * pos_sign
            remainder = fill.sz - closed
            if remainder > 0:
                # flip: the remainder opens a new position at the fill price
                st.position = fill.side.sign * remainder
                st.entry = fill.px
            else:
                st.position = pos + delta
        if abs(st.position) <= self._flat_eps:
            st.position = 0.0
            st.entry = 0.0
        return True

    def apply_all(self, fills: Iterable[Fill]) -> int:
        """Apply fills in order; returns how many were new."""
        return sum(1 for f in fills if self.apply(f))

    # --- queries ------------------------------------------------------------------------------

    def symbols(self) -> list[str]:
        return sorted(self._symbols)

    def get(self, coin: str) -> SymbolPosition:
        """A copy of the symbol's state (all zeros if never traded)."""
        st = self._symbols.get(coin)
        return attrs.evolve(st) if st is not None else SymbolPosition()

    def position(self, coin: str) -> float:
        st = self._symbols.get(coin)
        return st.position if st is not None else 0.0

    def entry(self, coin: str) -> float:
        st = self._symbols.get(coin)
        return st.entry if st is not None else 0.0

    def realized(self, coin: str) -> float:
        st = self._symbols.get(coin)
        return st.realized if st is not None else 0.0

    def fees(self, coin: str) -> float:
        st = self._symbols.get(coin)
        return st.fees if st is not None else 0.0

    def unrealized(self, coin: str, mark: float) -> float:
        st = self._symbols.get(coin)
        return st.unrealized(mark) if st is not None else 0.0

    @property
    def remembered(self) -> int:
        """Fill keys remembered to apply each fill once (at most ``max_keys``)."""
        return len(self._applied)

    def has_applied(self, tid: TradeId, oid: OrderId) -> bool:
        return (tid, oid) in self._applied

    def heard_trades(self) -> frozenset[TradeId] | None:
        """The trade ids of every fill this book was given (None once it has forgotten some:
        more than ``max_keys`` fills)."""
        if self._forgot:
            return None
        return frozenset(tid for tid, _ in self._applied)

    def snapshot(self, marks: Mapping[str, float]) -> dict[str, dict[str, Any]]:
        """Plain data per symbol. A symbol without a mark gets ``mark: None`` and 0 unrealized."""
        out: dict[str, dict[str, Any]] = {}
        for coin in sorted(self._symbols):
            st = self._symbols[coin]
            mark = marks.get(coin)
            unreal = st.unrealized(mark) if mark is not None else 0.0
            out[coin] = {
                "position": st.position,
                "entry": st.entry,
                "mark": mark,
                "realized": st.realized,
                "unrealized": unreal,
                "fees": st.fees,
                "volume": st.volume,
                "total": st.realized + unreal - st.fees,
                "fills_buy": st.fills_buy,
                "fills_sell": st.fills_sell,
            }
        return out


# --- markouts ----------------------------------------------------------------------------------


@attrs.define(slots=True)
class _Pending:
    coin: str
    sign: int
    px: float
    time_ms: int
    done: list[bool]
    tid: TradeId | None = None


@attrs.define(slots=True)
class _HorizonStats:
    count: int = 0
    total_bps: float = 0.0
    last: collections.deque[float] = attrs.field(factory=collections.deque)

    @property
    def mean_bps(self) -> float | None:
        return self.total_bps / self.count if self.count else None


MarkoutListener = Callable[[str, int, float, int, TradeId | None], None]
"""Hears each completed markout: (coin, horizon_ms, bps, the fill's time_ms, the fill's tid)."""


def _label(horizon_ms: int) -> str:
    return f"{horizon_ms // 1000}s" if horizon_ms % 1000 == 0 else f"{horizon_ms}ms"


class Markouts:
    """Fill markouts at fixed horizons, with per-symbol running averages.

    Record fills with `on_fill` (or `record`), feed mids with `on_mid`; ``listener`` hears
    each markout as it completes (the fills oldest first, each one's horizons in order). A mid
    looks only at the horizons due by then (a heap per symbol, by due time), not at every
    fill pending: the strategy task feeds a mid on every book. At most ``max_pending``
    fills wait for horizons; beyond that the oldest is dropped and counted in ``dropped``.
    The last ``last_n`` markouts per symbol and horizon are kept.
    """

    def __init__(
        self,
        horizons_ms: Iterable[int] = (1_000, 5_000, 30_000),
        *,
        max_pending: int = 10_000,
        last_n: int = 100,
        listener: MarkoutListener | None = None,
    ) -> None:
        hs = tuple(sorted(set(horizons_ms)))
        if not hs or hs[0] < 0:
            raise ValueError("horizons_ms must be non-empty and non-negative")
        if max_pending < 1:
            raise ValueError("max_pending must be >= 1")
        if last_n < 1:
            raise ValueError("last_n must be >= 1")
        self.horizons_ms: tuple[int, ...] = hs
        self._max_pending = max_pending
        self._last_n = last_n
        self._seq = 0
        self._pending: dict[int, _Pending] = {}  # insertion order = oldest first
        self._by_coin: dict[str, dict[int, _Pending]] = {}
        # Per coin, each pending fill's horizons as (due at, seq, horizon index), soonest
        # first: a mid looks at the ones due, not at every fill pending (a dropped fill's
        # entries are skipped when they come up).
        self._due: dict[str, list[tuple[int, int, int]]] = {}
        self._stats: dict[str, dict[int, _HorizonStats]] = {}
        self.dropped = 0
        self.recorded = 0
        self._listener = listener  # told of each markout as it completes

    @property
    def pending(self) -> int:
        return len(self._pending)

    def on_fill(self, fill: Fill) -> None:
        self.record(fill.coin, fill.side, fill.px, fill.time_ms, fill.tid)

    def record(
        self, coin: str, side: Side, px: float, time_ms: int, tid: TradeId | None = None
    ) -> None:
        if px <= 0:
            return
        seq = self._seq
        self._seq += 1
        p = _Pending(coin, side.sign, px, time_ms, [False] * len(self.horizons_ms), tid)
        self._pending[seq] = p
        self._by_coin.setdefault(coin, {})[seq] = p
        due = self._due.setdefault(coin, [])
        for i, h in enumerate(self.horizons_ms):
            heapq.heappush(due, (time_ms + h, seq, i))
        self.recorded += 1
        while len(self._pending) > self._max_pending:
            old_seq = next(iter(self._pending))
            old = self._pending.pop(old_seq)
            del self._by_coin[old.coin][old_seq]
            self.dropped += 1

    def on_mid(self, coin: str, mid: float, now_ms: int) -> int:
        """Evaluate every pending horizon of ``coin`` due at or before ``now_ms``.

        Returns the number of markouts produced.
        """
        due = self._due.get(coin)
        if not due or due[0][0] > now_ms:
            return 0
        pend = self._by_coin[coin]
        ready: list[tuple[int, int]] = []
        while due and due[0][0] <= now_ms:
            _, seq, i = heapq.heappop(due)
            if seq in pend:  # (else dropped: more than max_pending waited)
                ready.append((seq, i))
        ready.sort()  # the fills oldest first, each one's horizons in order
        produced = 0
        for seq, i in ready:
            p = pend[seq]
            h = self.horizons_ms[i]
            p.done[i] = True
            bps = p.sign * (mid - p.px) / p.px * _BPS
            self._add(coin, h, bps)
            if self._listener is not None:
                self._listener(coin, h, bps, p.time_ms, p.tid)
            produced += 1
            if all(p.done):
                del pend[seq]
                del self._pending[seq]
        return produced

    def _add(self, coin: str, horizon_ms: int, bps: float) -> None:
        per = self._stats.setdefault(coin, {})
        hs = per.get(horizon_ms)
        if hs is None:
            hs = per[horizon_ms] = _HorizonStats(last=collections.deque(maxlen=self._last_n))
        hs.count += 1
        hs.total_bps += bps
        hs.last.append(bps)

    def mean_bps(self, coin: str, horizon_ms: int) -> float | None:
        hs = self._stats.get(coin, {}).get(horizon_ms)
        return hs.mean_bps if hs is not None else None

    def count(self, coin: str, horizon_ms: int) -> int:
        hs = self._stats.get(coin, {}).get(horizon_ms)
        return hs.count if hs is not None else 0

    def summary(self) -> dict[str, Any]:
        """Plain data: counters plus, per symbol and horizon label, count, mean and last values."""
        symbols: dict[str, dict[str, dict[str, Any]]] = {}
        for coin in sorted(self._stats):
            per = self._stats[coin]
            symbols[coin] = {
                _label(h): {
                    "horizon_ms": h,
                    "count": per[h].count,
                    "mean_bps": per[h].mean_bps,
                    "last_bps": list(per[h].last),
                }
                for h in self.horizons_ms
                if h in per
            }
        return {
            "horizons_ms": list(self.horizons_ms),
            "recorded": self.recorded,
            "pending": len(self._pending),
            "dropped": self.dropped,
            "symbols": symbols,
        }


# --- balances and the portfolio ----------------------------------------------------------------


class Balances:
    """The balance of every currency, moved by each fill (see the module docstring)."""

    def __init__(self) -> None:
        self._amounts: dict[str, float] = {}
        self._seeded: dict[str, float] = {}  # as the venue's balances started them

    def seed(self, currency: str, amount: float) -> None:
        """Start the currency from the venue's balance."""
        self._amounts[currency] = amount
        self._seeded[currency] = amount

    @property
    def seeded(self) -> bool:
        """Whether the venue's balances started them (a spot account)."""
        return bool(self._seeded)

    def since_seeded(self, currency: str) -> float:
        """How much more of ``currency`` is held than the venue's balance it started from."""
        return self._amounts.get(currency, 0.0) - self._seeded.get(currency, 0.0)

    def apply(self, fill: Fill, instrument: Instrument) -> None:
        """One fill (once: the caller applies only fills new to the position book)."""
        signed = fill.side.sign * fill.sz
        self._move(instrument.base, signed)
        self._move(instrument.quote, -signed * fill.px)
        self._move(fill.fee_token, -fill.fee)

    def _move(self, currency: str, amount: float) -> None:
        self._amounts[currency] = self._amounts.get(currency, 0.0) + amount

    def get(self, currency: str) -> float:
        return self._amounts.get(currency, 0.0)

    def snapshot(self) -> dict[str, float]:
        return dict(sorted(self._amounts.items()))


# The currencies the service counts as a dollar: its limits in USD (``max_notional``,
# ``max_position_usd``, the loss limits) read an amount of one of these as that many dollars.
DOLLARS = frozenset({"USD", "USDC", "USDT"})


@attrs.frozen(slots=True)
class _CurrencyGraph:
    """The traded symbols as currencies: each base's (symbol, quote) pairs, every quote,
    whether every symbol's pair was read (``complete``), and the currency worth 1 (a dollar),
    when the pairs value every currency in one dollar currency: None while a pair is not read,
    or when they do not (``problem``)."""

    as_base: dict[str, tuple[tuple[str, str], ...]]
    quotes: frozenset[str]
    complete: bool
    value_unit: str | None

    @classmethod
    def of(cls, pairs: Mapping[str, tuple[str, str]], *, complete: bool) -> _CurrencyGraph:
        """The graph of ``pairs`` (symbol -> (base, quote))."""
        as_base: dict[str, list[tuple[str, str]]] = {}
        for symbol, (base, quote) in pairs.items():
            as_base.setdefault(base, []).append((symbol, quote))
        quotes = frozenset(quote for _, quote in pairs.values())
        only = quotes - as_base.keys()
        unit = next(iter(only)) if complete and len(only) == 1 else None
        return cls(
            {base: tuple(symbols) for base, symbols in as_base.items()},
            quotes,
            complete,
            unit if unit in DOLLARS else None,
        )

    def problem(self) -> str | None:
        """Why the pairs cannot be valued in dollars (see ``value_problem``), if complete."""
        if not self.complete or self.value_unit is not None or not self.quotes:
            return None
        only = sorted(self.quotes - self.as_base.keys())
        named = ", ".join(only)
        if not only:
            return (
                "every currency the pairs trade is a base of one of them: none is a dollar "
                f"to value the others in ({', '.join(sorted(DOLLARS))})"
            )
        if len(only) > 1:
            return (
                f"the pairs traded have {len(only)} currencies that are only ever a quote "
                f"({named}), so none is valued in another: trade pairs that join them"
            )
        return (
            f"the pairs traded value every currency in {named}, which is not a dollar "
            f"({', '.join(sorted(DOLLARS))}): trade a pair of {named} against one, so that "
            f"the limits in USD can be applied"
        )


def value_problem(pairs: Mapping[str, tuple[str, str]]) -> str | None:
    """Why the symbols ``pairs`` names (symbol -> (base, quote)) cannot be valued in dollars,
    if they cannot. The currencies that are only ever a quote are what every other is valued
    in, so there must be one and it must be a dollar (``DOLLARS``): with two (ETH-USDT and
    ETH-BTC without BTC-USDT) neither is known in the other; with BTC alone (ETH-BTC, SOL-BTC,
    SOL-ETH) no amount is known in dollars."""
    return _CurrencyGraph.of(pairs, complete=True).problem()


class Portfolio:
    """Positions, PnL and balances per currency, fed every fill, outside the strategy.

    ``apply`` takes each fill once (by ``(tid, oid)``; a fill already in the venue's adopted
    position is not applied again) and says whether it was new: only a new fill moves the
    balances and is for the strategy to hear. ``instrument`` names each symbol's base and quote;
    it fails (and so does ``apply``, after the position book took the fill) only for a symbol
    the venue does not list.
    """

    def __init__(
        self,
        symbols: Iterable[str],
        instrument: Callable[[str], Instrument],
        positions: PositionBook | None = None,
    ) -> None:
        self.symbols = tuple(symbols)
        self._instrument = instrument
        self.positions = positions if positions is not None else PositionBook()
        self.balances = Balances()
        self._pairs: dict[str, tuple[str, str]] = {}  # symbol -> (base, quote)
        self._currency_graph: _CurrencyGraph | None = None

    def apply(self, fill: Fill) -> bool:
        if not self.positions.apply(fill):
            return False
        self.balances.apply(fill, self._instrument(fill.coin))
        return True

    def adopt_venue_positions(self, account: AccountState) -> None:
        """Every traded symbol's position becomes the venue's (zero when the venue lists none:
        it omits flat ones); fills up to the account's time are part of it. A spot account's
        balances become the balances the fills then move."""
        for balance in account.balances:
            self.balances.seed(balance.currency, balance.total)
        venue = {position.coin: position for position in account.positions}
        for coin in self.symbols:
            position = venue.get(coin)
            size, entry = (position.szi, position.entry_px) if position else (0.0, 0.0)
            self.positions.seed(coin, size, entry, account.time_ms)

    def position(self, coin: str) -> float:
        return self.positions.position(coin)

    def exposure(self, coin: str) -> float:
        """What risk limits for ``coin``: its position on a venue of positions; on a spot
        account, how much more of its base is held than at start (a base bought through one
        pair and sold through another, as a triangle does, is no exposure, while each pair's
        own position would grow with every triangle)."""
        pair = self._pair(coin) if self.balances.seeded else None
        if pair is None:
            return self.positions.position(coin)
        return self.balances.since_seeded(pair[0])

    def exposure_mark(self, coin: str, marks: Mapping[str, float]) -> float | None:
        """The value, in the account's value currency, of one unit of ``coin``'s exposure: the
        coin's mark on a venue of positions (quoted in the value currency), its base's value on
        a spot account (``currency_mark``)."""
        pair = self._pair(coin) if self.balances.seeded else None
        if pair is None:
            return marks.get(coin)
        return self.currency_mark(pair[0], marks)

    def quote(self, coin: str) -> str | None:
        """``coin``'s quote currency (a price and a notional of it are in this); None while
        its instrument cannot be read."""
        pair = self._pair(coin)
        return None if pair is None else pair[1]

    def is_value_unit(self, currency: str) -> bool:
        """Whether ``currency`` is the value currency itself, 1 whatever the marks say: the one
        dollar currency that is only ever a quote of the symbols traded, every one's pair read
        (so it stays so)."""
        return currency == self._graph().value_unit

    def value_problem(self) -> str | None:
        """``value_problem`` of the symbols traded, their pairs as the instruments say; None
        too while a pair cannot be read (the venue client is down)."""
        return self._graph().problem()

    def quote_mark(self, coin: str, marks: Mapping[str, float]) -> float:
        """The value of one unit of ``coin``'s quote currency in the account's value currency:
        a position's PnL, counted in the quote, times this is in the value currency (1 unless
        the quote is itself traded, as BTC in ETH-BTC; 1 too while no mark says)."""
        pair = self._pair(coin)
        value = None if pair is None else self.currency_mark(pair[1], marks)
        return 1.0 if value is None else value

    def currency_mark(
        self, currency: str, marks: Mapping[str, float], _depth: int = 0
    ) -> float | None:
        """One unit of ``currency`` in the account's value currency, from the traded symbols'
        ``marks``: 1 for the value unit (``value_problem``: the one dollar currency that is only
        ever a quote: USDT; USDC on a perpetual venue), else the mark of a symbol with it as
        base times the value of that symbol's quote (ETH from ETH-USDT, or through ETH-BTC and
        BTC-USDT); None when no mark says, and for every currency while the symbols traded
        have no value unit (a pair not read yet, or ``value_problem``'s): never a guess."""
        graph = self._graph()
        as_base = graph.as_base.get(currency, ())
        if not as_base:
            return 1.0 if currency == graph.value_unit else None
        if _depth >= 2:
            return None
        for symbol, quote in as_base:
            mark = marks.get(symbol)
            if mark is None:
                continue
            value = self.currency_mark(quote, marks, _depth + 1)
            if value is not None:
                return mark * value
        return None

    def _graph(self) -> _CurrencyGraph:
        """The traded symbols by base currency, and the quotes: built once every symbol's pair
        is read (risk values exposures with it on every book), rebuilt while one is not."""
        graph = self._currency_graph
        if graph is None:
            pairs = {symbol: pair for symbol in self.symbols if (pair := self._pair(symbol))}
            graph = _CurrencyGraph.of(pairs, complete=len(pairs) == len(self.symbols))
            if graph.complete:
                self._currency_graph = graph
        return graph

    def _pair(self, coin: str) -> tuple[str, str] | None:
        """``coin``'s (base, quote), read once from its instrument; None while it cannot be
        read (the venue client is not up)."""
        pair = self._pairs.get(coin)
        if pair is None:
            try:
                instrument = self._instrument(coin)
            except Exception:  # the venue client is down, or the symbol not listed
                return None
            pair = self._pairs[coin] = (instrument.base, instrument.quote)
        return pair

    def currencies(self) -> set[str]:
        """The currencies the traded symbols move: each one's base and quote."""
        instruments = [self._instrument(symbol) for symbol in self.symbols]
        return {currency for i in instruments for currency in (i.base, i.quote)}

    def pnl(self, marks: Mapping[str, float]) -> dict[str, float]:
        """Realized, unrealized (at ``marks``; a symbol without one counts none), fees and their
        total, over every symbol."""
        totals = dict.fromkeys(("realized", "unrealized", "fees", "total"), 0.0)
        for figures in self.positions.snapshot(marks).values():
            for kind in totals:
                totals[kind] += figures[kind]
        return totals
