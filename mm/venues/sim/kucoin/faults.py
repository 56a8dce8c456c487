"""Faults the KuCoin face can inject, seeded so that every run can be reproduced.

``KucoinFaultConfig`` is the face's fault settings and also the body of ``POST /sim/faults``
(a partial update at runtime, as on the Hyperliquid face, whose ``FrameFate``/``HttpFate`` it
answers with). ``KucoinFaults`` holds the live settings and a random source of its own (the
market's tape does not depend on them); the server asks it, frame by frame and request by
request, what to do.

Beside the faults both faces share (latency, dropped and duplicated data frames, disconnects,
stalled market data, HTTP latency and 429s), the venue's own: **dropped level-2 increments**,
a probability per ``/market/level2`` message and session: the message is not sent to that
session, whose client then sees a gap in the sequence (which still advances).

What the faults did is counted per channel (``dropped``, ``duplicated``: the frames the server
was told to drop or send twice) and per request (``too_many``), so that a test can tell a fault
that acted from one that never fired.

Fails: ``FaultUpdateError`` for an update naming an unknown fault or a value out of range.
"""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Mapping
from typing import Any

import attrs

from mm.settings import ConfigError, non_negative, setting, structure_section
from mm.venues.sim.faults import FaultUpdateError, FrameFate, HttpFate, probability

__all__ = ["DATA_CHANNELS", "MARKET_CHANNELS", "KucoinFaultConfig", "KucoinFaults"]

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


class KucoinFaults:
    """The live fault settings and their random source (see the module)."""

    def __init__(self, config: KucoinFaultConfig, seed: int) -> None:
        self.config = config
        self.rng = random.Random(f"{seed}/kucoin-faults")
        self.too_many = 0  # HTTP 429s answered by the fault
        # Data messages by channel that the fates said to drop, or to send twice.
        self.dropped: Counter[str] = Counter()
        self.duplicated: Counter[str] = Counter()

    def update(self, changes: Mapping[str, Any]) -> KucoinFaultConfig:
        """Apply a partial update (the body of ``POST /sim/faults``)."""
        merged = {**attrs.asdict(self.config), **changes}
        try:
            self.config = structure_section(merged, KucoinFaultConfig, "faults")
        except ConfigError as error:
            raise FaultUpdateError("; ".join(error.errors)) from None
        return self.config

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
