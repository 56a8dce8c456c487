"""Faults the KuCoin face can inject, seeded so that every run can be reproduced.

``KucoinFaultConfig`` is the face's fault settings and also the body of ``POST /sim/faults``
(a partial update at runtime, as on the Hyperliquid face, whose ``FrameFate``/``HttpFate`` it
answers with). ``KucoinFaults`` holds the live settings and a random source of its own (the
market's tape does not depend on them); the server asks it, frame by frame and request by
request, what to do.

Beside the faults both faces share (latency, dropped and duplicated data frames, disconnects,
stalled market data, HTTP latency and 429s), the venue's own: **dropped level-2 increments**,
a probability per ``/market/level2`` message and session: the message is not sent to that
session, whose client then sees a gap in the sequence (which still advances); and **refused
orders**: the next ``refuse_orders`` orders a client places on ``refuse_symbol`` (any symbol
when empty), through any placing endpoint (one, sync, a batch's entry; not a test order,
which places nothing), are refused with the venue's own answer for ``refuse_code``: ``200004``
"Balance insufficient!" (KuCoin's "System error codes": "Balance insufficient"; the face's
refusal of an order the balance cannot cover) or ``400100`` "Order size increment invalid."
(the face's refusal of a size off ``baseIncrement``), nothing held or matched. It draws
nothing at random: it refuses exactly the next N, and ``refuse_orders`` counts down as it
does (``GET /sim/faults`` shows how many are left).

What the faults did is counted per channel (``dropped``, ``duplicated``: the frames the server
was told to drop or send twice), per request (``too_many``) and per symbol (``refused``: the
orders refused by the fault), so that a test can tell a fault
that acted from one that never fired.

Fails: ``FaultUpdateError`` for an update naming an unknown fault or a value out of range.
"""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Mapping
from typing import Any

import attrs

from mm.settings import ConfigError, non_negative, one_of, setting, structure_section
from mm.venues.sim.faults import FaultUpdateError, FrameFate, HttpFate, probability

__all__ = [
    "DATA_CHANNELS",
    "MARKET_CHANNELS",
    "REFUSALS",
    "KucoinFaultConfig",
    "KucoinFaults",
]

# The venue's code and message for each refusal the fault can answer (as the face's matching
# answers them for real: spot.py).
REFUSALS = {
    "200004": "Balance insufficient!",
    "400100": "Order size increment invalid.",
}
MARKET_CHANNELS = frozenset({"level2", "depth5", "ticker", "match"})
DATA_CHANNELS = MARKET_CHANNELS | {"orders", "balance"}


@attrs.frozen
class KucoinFaultConfig:
    # Added delay (and uniform jitter on top) before each WebSocket data message is sent.
    ws_latency_ms: float = setting(0.0, non_negative)
    ws_jitter_ms: float = setting(0.0, non_negative)
    # Per data message (any topic): probability it is dropped, or sent twice.
    ws_drop: float = setting(0.0, probability)
    ws_duplicate: float = setting(0.0, probability)
    # Per /market/level2 message and session: probability it is not sent (a sequence gap).
    drop_level2: float = setting(0.0, probability)
    # Close every WebSocket after this many data messages (0: never); at runtime, POST
    # /sim/disconnect closes them all at once.
    ws_disconnect_after: int = setting(0, non_negative)
    # Market data stalls: level2, depth5, ticker and match pushes stop while connections stay
    # open (private channels go on); the level-2 sequence still advances.
    stall_market: bool = setting(False)
    # Added delay (and jitter) before each HTTP request is answered.
    http_latency_ms: float = setting(0.0, non_negative)
    http_jitter_ms: float = setting(0.0, non_negative)
    # Per REST request: probability it is answered HTTP 429 (429000) and does not act.
    http_429: float = setting(0.0, probability)
    # Refuse the next this many orders placed on refuse_symbol ("": any symbol) with the
    # venue's answer for refuse_code (200004: "Balance insufficient!", 400100: "Order size
    # increment invalid."); counts down as it refuses.
    refuse_orders: int = setting(0, non_negative)
    refuse_symbol: str = setting("")
    refuse_code: str = setting("200004", one_of(*REFUSALS))


class KucoinFaults:
    """The live fault settings and their random source (see the module)."""

    def __init__(self, config: KucoinFaultConfig, seed: int) -> None:
        self.config = config
        self.rng = random.Random(f"{seed}/kucoin-faults")
        self.too_many = 0  # HTTP 429s answered by the fault
        # Data messages by channel that the fates said to drop, or to send twice.
        self.dropped: Counter[str] = Counter()
        self.duplicated: Counter[str] = Counter()
        self.refused: Counter[str] = Counter()  # orders refused by the fault, by symbol

    def update(self, changes: Mapping[str, Any]) -> KucoinFaultConfig:
        """Apply a partial update (the body of ``POST /sim/faults``)."""
        merged = {**attrs.asdict(self.config), **changes}
        try:
            self.config = structure_section(merged, KucoinFaultConfig, "faults")
        except ConfigError as error:
            raise FaultUpdateError("; ".join(error.errors)) from None
        return self.config

    def refusal(self, symbol: str) -> tuple[str, str] | None:
        """The code and message to refuse an order placed on ``symbol`` with, or None to let
        it through; a refusal is counted and spends one of ``refuse_orders``."""
        config = self.config
        if not config.refuse_orders or config.refuse_symbol not in ("", symbol):
            return None
        self.config = attrs.evolve(config, refuse_orders=config.refuse_orders - 1)
        self.refused[symbol] += 1
        return config.refuse_code, REFUSALS[config.refuse_code]

    def ws_delay(self) -> float:
        config = self.config
        if not config.ws_latency_ms and not config.ws_jitter_ms:
            return 0.0
        return (config.ws_latency_ms + self.rng.uniform(0, config.ws_jitter_ms)) / 1000

    def http_delay(self) -> float:
        config = self.config
        if not config.http_latency_ms and not config.http_jitter_ms:
            return 0.0
        return (config.http_latency_ms + self.rng.uniform(0, config.http_jitter_ms)) / 1000

    def frame_fate(self, channel: str) -> FrameFate:
        """What to do with a message of ``channel`` (``""``: an answer, always sent); a drop or
        a duplicate is counted on its channel."""
        fate = self._fate(channel)
        if fate is FrameFate.DROP:
            self.dropped[channel] += 1
        elif fate is FrameFate.DUPLICATE:
            self.duplicated[channel] += 1
        return fate

    def _fate(self, channel: str) -> FrameFate:
        config = self.config
        if channel not in DATA_CHANNELS:
            return FrameFate.SEND
        if config.stall_market and channel in MARKET_CHANNELS:
            return FrameFate.DROP
        if channel == "level2" and config.drop_level2 and self.rng.random() < config.drop_level2:
            return FrameFate.DROP
        if config.ws_drop and self.rng.random() < config.ws_drop:
            return FrameFate.DROP
        if config.ws_duplicate and self.rng.random() < config.ws_duplicate:
            return FrameFate.DUPLICATE
        return FrameFate.SEND

    def http_fate(self) -> HttpFate:
        http_429 = self.config.http_429
        if http_429 and self.rng.random() < http_429:
            self.too_many += 1
            return HttpFate.TOO_MANY
        return HttpFate.ANSWER
