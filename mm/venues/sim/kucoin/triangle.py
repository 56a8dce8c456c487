"""The KuCoin face's synthetic market: BTC-USDT, ETH-USDT and ETH-BTC whose cross rate drifts
apart from the direct one and snaps back, so that triangles appear, briefly. Pure given its
random source and the times it is stepped at.

Prices (``TriangleConfig``):

* BTC-USDT and ETH-USDT move as correlated diffusions (``volatility_bps`` per square root of a
  second each, correlation ``correlation``);
* ETH-BTC is ETH-USDT / BTC-USDT times ``exp(dislocation)``: the dislocation, in log terms, is
  an Ornstein-Uhlenbeck process pulled back to 0 with half-life ``half_life_s`` and noise
  ``dislocation_bps`` per square root of a second, plus shocks (Poisson, ``shocks_per_minute``,
  each ``shock_bps`` either way) that open a triangle which the pull then closes; ``shock``
  adds one of a given size now (the server's ``POST /sim/shock``: a test need not wait the
  minute or two a drawn shock takes to open a triangle past a strategy's minimum).

Liquidity (``quote``): a provider re-quotes each symbol around its mid on the exchange,
``levels`` a side from ``spread_bps / 2`` out, ``step_bps`` apart, ``level_usdt`` of notional
each, cancelling its previous quotes first; an order of another user that a new quote crosses
is traded, as on the venue. The provider is funded by the caller (``fund_provider``) with enough
of each currency to quote for as long as the simulation runs.

Outside takers (``take``): on each symbol, orders of the taker account (``TAKER``, funded like
the provider by ``fund_provider``) arrive as a Poisson process of ``takers_per_minute``, each a
buy or a sell with even odds, sent through the exchange as a client's would. Its notional, in
USDT (ETH-BTC's converted at the BTC-USDT mid), is log-normal around ``taker_median_usdt``
(``taker_size_sigma`` the standard deviation of its log) and kept within ``taker_min_usdt`` ..
``taker_max_usdt``. A share ``taker_market_share`` of them are market orders (a buy by funds, a
sell by size); the others are IOC limits whose price reaches past the best opposite price by an
exponential depth of mean ``taker_reach_bps``. They take whatever is best, the provider's quotes
or another account's orders; their trades are the venue's tape. The defaults make about one
taker order per symbol a second, of a thousand USDT (the median), of which about one in five
walks past the provider's first level: the tape has trades at several depths, as a market
maker's intensity estimate needs (all of them at the touch would fit no decay). And
``taker_max_usdt`` is half of one side of the provider's ladder (``levels`` x ``level_usdt``),
which is re-quoted every step, so the takers never empty a book. The takers draw from their own
random source (split from the market's at construction): the same seed gives the same prices
and the same tape, and turning the takers off does not change the prices.

Fails: ``ValueError`` for a config out of range (at build time, naming the key).
"""

from __future__ import annotations

import math
import random
from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal

import attrs

from mm.venues.sim.kucoin.spot import Placed, SpotExchange, SpotOrderRequest, SpotSymbol

__all__ = ["PROVIDER", "SYMBOLS", "TAKER", "TriangleConfig", "TriangleMarket"]

PROVIDER = "kucoin-sim-liquidity"
TAKER = "kucoin-sim-takers"
BPS = 1e-4

SYMBOLS = (
    SpotSymbol(
        "BTC-USDT",
        "BTC",
        "USDT",
        Decimal("0.1"),
        Decimal("0.00000001"),
        Decimal("0.000001"),
        Decimal("0.00001"),
        Decimal("0.1"),
        Decimal("0.1"),
    ),
    SpotSymbol(
        "ETH-USDT",
        "ETH",
        "USDT",
        Decimal("0.01"),
        Decimal("0.0000001"),
        Decimal("0.000001"),
        Decimal("0.0001"),
        Decimal("0.1"),
        Decimal("0.1"),
    ),
    SpotSymbol(
        "ETH-BTC",
        "ETH",
        "BTC",
        Decimal("0.00001"),
        Decimal("0.0000001"),
        Decimal("0.00000001"),
        Decimal("0.0001"),
        Decimal("0.00001"),
        Decimal("0.00001"),
    ),
)
"""The symbols, with increments and minimums of the venue's kind (as /api/v2/symbols lists
BTC-USDT in the recorded fixture)."""


def _positive(_: object, attribute: attrs.Attribute[float], value: float) -> None:
    if not value > 0:
        raise ValueError(f"{attribute.name}: must be positive, got {value}")


def _non_negative(_: object, attribute: attrs.Attribute[float], value: float) -> None:
    if not value >= 0:
        raise ValueError(f"{attribute.name}: must be at least 0, got {value}")


@attrs.frozen
class TriangleConfig:
    btc_usdt: float = attrs.field(default=60_000.0, validator=_positive)
    eth_usdt: float = attrs.field(default=3_000.0, validator=_positive)
    volatility_bps: float = attrs.field(default=2.0, validator=_non_negative)
    correlation: float = attrs.field(default=0.8)
    half_life_s: float = attrs.field(default=3.0, validator=_positive)
    dislocation_bps: float = attrs.field(default=1.0, validator=_non_negative)
    # Six shocks a minute of 50 bps: past three taker fees (30 bps) and three half-spreads, a
    # shock opens a triangle worth a few bps for about a second, four times a minute or so.
    shocks_per_minute: float = attrs.field(default=6.0, validator=_non_negative)
    shock_bps: float = attrs.field(default=50.0, validator=_non_negative)
    levels: int = attrs.field(default=5)
    spread_bps: float = attrs.field(default=4.0, validator=_positive)
    step_bps: float = attrs.field(default=2.0, validator=_positive)
    level_usdt: float = attrs.field(default=2_000.0, validator=_positive)
    takers_per_minute: float = attrs.field(default=60.0, validator=_non_negative)
    taker_median_usdt: float = attrs.field(default=1_000.0, validator=_positive)
    taker_size_sigma: float = attrs.field(default=1.0, validator=_non_negative)
    taker_min_usdt: float = attrs.field(default=10.0, validator=_positive)
    taker_max_usdt: float = attrs.field(default=5_000.0, validator=_positive)
    taker_market_share: float = attrs.field(default=0.5)
    taker_reach_bps: float = attrs.field(default=3.0, validator=_non_negative)

    @levels.validator
    def _levels(self, attribute: attrs.Attribute[int], value: int) -> None:
        if value < 1:
            raise ValueError(f"levels: must be at least 1, got {value}")

    @correlation.validator
    def _correlation(self, attribute: attrs.Attribute[float], value: float) -> None:
        if not -1.0 <= value <= 1.0:
            raise ValueError(f"correlation: must be within -1..1, got {value}")

    @taker_market_share.validator
    def _share(self, attribute: attrs.Attribute[float], value: float) -> None:
        if not 0.0 <= value <= 1.0:
            raise ValueError(f"taker_market_share: must be within 0..1, got {value}")

    def __attrs_post_init__(self) -> None:
        if self.taker_max_usdt < self.taker_min_usdt:
            raise ValueError(
                f"taker_max_usdt: must be at least taker_min_usdt ({self.taker_min_usdt}), "
                f"got {self.taker_max_usdt}"
            )


class TriangleMarket:
    """The three mids, their dislocation, the provider's quotes and the takers (see the
    module)."""

    def __init__(self, config: TriangleConfig, rng: random.Random) -> None:
        self.config = config
        self._rng = rng
        self._taker_rng = random.Random(rng.getrandbits(64))
        self.btc_usdt = config.btc_usdt
        self.eth_usdt = config.eth_usdt
        self.dislocation = 0.0  # log(ETH-BTC / (ETH-USDT / BTC-USDT))
        self.shocks = 0  # drawn by ``step``
        self.forced_shocks = 0  # asked for by ``shock``
        self._quotes: list[str] = []

    @property
    def eth_btc(self) -> float:
        return self.eth_usdt / self.btc_usdt * math.exp(self.dislocation)

    def mids(self) -> dict[str, float]:
        return {"BTC-USDT": self.btc_usdt, "ETH-USDT": self.eth_usdt, "ETH-BTC": self.eth_btc}

    def step(self, dt_s: float) -> None:
        """Move the mids and the dislocation by ``dt_s`` seconds."""
        if dt_s <= 0:
            return
        config, rng = self.config, self._rng
        scale = config.volatility_bps * BPS * math.sqrt(dt_s)
        first, second = rng.gauss(0.0, 1.0), rng.gauss(0.0, 1.0)
        rho = config.correlation
        self.btc_usdt *= math.exp(scale * first - scale * scale / 2)
        mixed = rho * first + math.sqrt(1 - rho * rho) * second
        self.eth_usdt *= math.exp(scale * mixed - scale * scale / 2)
        pull = math.exp(-math.log(2) / config.half_life_s * dt_s)
        noise = config.dislocation_bps * BPS * math.sqrt(dt_s) * rng.gauss(0.0, 1.0)
        self.dislocation = self.dislocation * pull + noise
        if rng.random() < 1 - math.exp(-config.shocks_per_minute / 60 * dt_s):
            self.dislocation += rng.choice((-1.0, 1.0)) * config.shock_bps * BPS
            self.shocks += 1

    def shock(self, bps: float) -> None:
        """A shock now, of ``bps`` (signed: positive makes ETH-BTC dearer than ETH-USDT /
        BTC-USDT), on top of the dislocation, which the pull then closes as a drawn one's.
        Draws nothing: the prices and the tape after it are the seed's."""
        if not math.isfinite(bps):
            raise ValueError(f"a shock is a finite number of bps, got {bps}")
        self.dislocation += bps * BPS
        self.forced_shocks += 1

    def fund_provider(self, exchange: SpotExchange, multiple: int = 1_000) -> None:
        """Fund the provider, and the takers alike, with ``multiple`` times one full ladder of
        every symbol, in each currency."""
        config = self.config
        ladder_usdt = Decimal(str(config.level_usdt * config.levels * 2 * multiple))
        ledger = exchange.ledger
        for account in (PROVIDER, TAKER):
            ledger.fund(account, "USDT", ladder_usdt)
            ledger.fund(account, "BTC", ladder_usdt / Decimal(str(self.btc_usdt)))
            ledger.fund(account, "ETH", ladder_usdt / Decimal(str(self.eth_usdt)))

    def quote(self, exchange: SpotExchange, now_ns: int) -> list[Placed]:
        """Cancel the provider's quotes and quote every symbol around its mid again; what each
        new order did (a quote may trade with an order it crosses)."""
        for oid in self._quotes:
            if oid in exchange.live:
                exchange.cancel(PROVIDER, oid, now_ns)
        self._quotes = []
        done: list[Placed] = []
        config = self.config
        usdt_per_unit = {"BTC-USDT": 1.0, "ETH-USDT": 1.0, "ETH-BTC": self.btc_usdt}
        for symbol, mid in self.mids().items():
            spec = exchange.symbols[symbol]
            notional = config.level_usdt / usdt_per_unit[symbol]  # in the symbol's quote
            for level in range(config.levels):
                offset = (config.spread_bps / 2 + level * config.step_bps) * BPS
                for side, price in (("buy", mid * (1 - offset)), ("sell", mid * (1 + offset))):
                    px = _on_grid(price, spec.price_increment, up=side == "sell")
                    size = _on_grid(notional / float(px), spec.base_increment, up=False)
                    request = SpotOrderRequest(
                        symbol, side, "limit", f"{px:f}", f"{size:f}", time_in_force="GTC"
                    )
                    result = exchange.place(PROVIDER, request, now_ns)
                    if isinstance(result, Placed):
                        done.append(result)
                        if result.oid in exchange.live:
                            self._quotes.append(result.oid)
        return done

    def take(self, exchange: SpotExchange, now_ns: int, dt_s: float) -> list[Placed]:
        """The takers that arrived over the last ``dt_s`` seconds, each symbol in turn: what
        each order did (a refused one, which a well-funded taker never meets, is skipped)."""
        done: list[Placed] = []
        if dt_s <= 0:
            return done
        config, rng = self.config, self._taker_rng
        for symbol in self.mids():
            for _ in range(_poisson(rng, config.takers_per_minute / 60 * dt_s)):
                request = self._taker_order(exchange, symbol)
                if request is None:
                    continue
                result = exchange.place(TAKER, request, now_ns)
                if isinstance(result, Placed):
                    done.append(result)
        return done

    def _taker_order(self, exchange: SpotExchange, symbol: str) -> SpotOrderRequest | None:
        """One taker's order on ``symbol`` (see the module); None when the side it would take
        is empty (it always draws the same numbers, so the tape does not depend on that)."""
        config, rng = self.config, self._taker_rng
        side = "buy" if rng.random() < 0.5 else "sell"
        usdt = config.taker_median_usdt * math.exp(config.taker_size_sigma * rng.gauss(0.0, 1.0))
        usdt = min(max(usdt, config.taker_min_usdt), config.taker_max_usdt)
        market = rng.random() < config.taker_market_share
        reach = rng.expovariate(1 / config.taker_reach_bps) if config.taker_reach_bps > 0 else 0.0
        spec = exchange.symbols[symbol]
        book = exchange.books[symbol]
        touch = book.best_ask() if side == "buy" else book.best_bid()
        if touch is None:
            return None
        notional = usdt / (self.btc_usdt if spec.quote == "BTC" else 1.0)  # in the quote
        if market and side == "buy":
            funds = _on_grid(notional, spec.quote_increment, up=False)
            return SpotOrderRequest(symbol, side, "market", funds=f"{funds:f}")
        if market:
            size = _on_grid(notional / float(spec.price(touch)), spec.base_increment, up=False)
            size = max(size, spec.base_min_size)
            return SpotOrderRequest(symbol, side, "market", size=f"{size:f}")
        best = float(spec.price(touch))
        limit = best * (1 + reach * BPS) if side == "buy" else best * (1 - reach * BPS)
        px = _on_grid(limit, spec.price_increment, up=side == "buy")
        size = max(
            _on_grid(notional / float(px), spec.base_increment, up=False), spec.base_min_size
        )
        return SpotOrderRequest(symbol, side, "limit", f"{px:f}", f"{size:f}", time_in_force="IOC")


def _poisson(rng: random.Random, mean: float) -> int:
    """A Poisson draw (Knuth's method; the means here are small)."""
    if mean <= 0:
        return 0
    limit = math.exp(-mean)
    count, product = 0, rng.random()
    while product > limit:
        count += 1
        product *= rng.random()
    return count


def _on_grid(value: float, increment: Decimal, *, up: bool) -> Decimal:
    units = (Decimal(repr(value)) / increment).to_integral_value(
        rounding=ROUND_CEILING if up else ROUND_FLOOR
    )
    return units * increment
