"""Faults the simulator can inject, seeded so that every run can be reproduced.

``FaultConfig`` is the ``[sim.faults]`` section and also the body of ``POST /sim/faults``
(a partial update at runtime). ``Faults`` holds the live settings and a random source of its
own, so switching faults on never changes the market's tape. The shell asks it, frame by frame
and request by request, what to do.
"""

from __future__ import annotations

import enum
import random
from collections.abc import Mapping
from typing import Any

import attrs

from mm.settings import ConfigError, non_negative, setting, structure_section
from mm.venues.hyperliquid.limits import is_cancel_action

DATA_CHANNELS = frozenset(
    {"l2Book", "trades", "allMids", "bbo", "orderUpdates", "userFills", "user"}
)


def _data_channels(value: tuple[str, ...]) -> str | None:
    unknown = sorted(set(value) - DATA_CHANNELS)
    return f"unknown channels {unknown}; known: {sorted(DATA_CHANNELS)}" if unknown else None


def _listed(value: tuple[str, ...]) -> str | None:
    from mm.venues.sim.universe import UNIVERSE

    unknown = sorted(set(value) - set(UNIVERSE))
    return f"unknown coins {unknown}; known: {', '.join(UNIVERSE)}" if unknown else None


HTTP_PATHS = frozenset({"/info", "/exchange"})


def _http_paths(value: tuple[str, ...]) -> str | None:
    unknown = sorted(set(value) - HTTP_PATHS)
    return f"unknown paths {unknown}; known: {sorted(HTTP_PATHS)}" if unknown else None


def probability(value: float) -> str | None:
    return None if 0 <= value <= 1 else f"must be between 0 and 1, got {value!r}"


@attrs.frozen
class FaultConfig:
    # Added delay (and uniform jitter on top) before each WebSocket data frame is sent, on the
    # channels listed (empty: every data channel).
    ws_latency_ms: float = setting(0.0, non_negative)
    ws_jitter_ms: float = setting(0.0, non_negative)
    ws_latency_channels: tuple[str, ...] = setting((), _data_channels)
    # Added delay (and jitter) before each HTTP request is answered.
    http_latency_ms: float = setting(0.0, non_negative)
    http_jitter_ms: float = setting(0.0, non_negative)
    # Per post reply: probability it is dropped (the request still acts: a lost ack).
    ws_drop_post_replies: float = setting(0.0, probability)
    # Per data frame: probability of dropping, duplicating, or holding it behind the next one.
    ws_drop: float = setting(0.0, probability)
    ws_duplicate: float = setting(0.0, probability)
    ws_reorder: float = setting(0.0, probability)
    # Close every WebSocket after this many data frames (0: never).
    ws_disconnect_after: int = setting(0, non_negative)
    # Drop connections at random, as the venue does without notice: after a random wait
    # (exponential with this mean, in seconds, from the seed), the next connection that sends
    # a message is closed right after the venue takes the message in: a post in it still acts,
    # its answer is lost. 0: never.
    ws_disconnect_mean_s: float = setting(0.0, non_negative)
    # Close every open WebSocket this many seconds after the venue starts (0: never); at
    # runtime, POST /sim/disconnect closes them at once.
    ws_disconnect_at_s: float = setting(0.0, non_negative)
    # Book feeds stall: l2Book, bbo and allMids pushes stop while connections stay open.
    stall_books: bool = setting(False)
    # Per l2Book frame: probability it shows a crossed book.
    crossed_book: float = setting(0.0, probability)
    # Per HTTP request: probability of an HTTP 429, or of an HTTP 500, on the paths listed
    # (/info, /exchange; empty: both) and, for /info, the request types listed (empty: all).
    http_429: float = setting(0.0, probability)
    http_5xx: float = setting(0.0, probability)
    http_paths: tuple[str, ...] = setting((), _http_paths)
    http_info_types: tuple[str, ...] = setting(())
    # Per cancel request (cancel, cancelByCloid; over either path): probability that the venue
    # loses it: it does not act, a WebSocket post gets no reply and REST answers HTTP 500.
    lose_cancels: float = setting(0.0, probability)
    # Orders from accounts that would take liquidity are canceled unfilled, as an IOC that
    # found nothing to match (resting orders still fill): flattening cannot make progress.
    refuse_fills: bool = setting(False)
    # The venue's post-only period after a network upgrade: a batch of orders (or modifies)
    # with any order that is not post-only (Alo) is refused as a whole, with one status.
    post_only_period: bool = setting(False)
    # Coins whose asset index the venue takes for an invalid asset, as a client with stale
    # metadata would send it: a batch of orders, modifies or cancels naming one is refused as
    # a whole, with one status (the venue's answer to an invalid asset, always on).
    invalid_assets: tuple[str, ...] = setting((), _listed)


class FrameFate(enum.Enum):
    SEND = "send"
    DROP = "drop"
    DUPLICATE = "duplicate"
    HOLD = "hold"  # send after the next frame


class HttpFate(enum.Enum):
    ANSWER = "answer"
    TOO_MANY = "too_many"
    SERVER_ERROR = "server_error"


class FaultUpdateError(ValueError):
    """A runtime update names an unknown fault or a bad value."""


class Faults:
    def __init__(self, config: FaultConfig, seed: int) -> None:
        self.config = config
        self.rng = random.Random(seed)
        # Random disconnects draw from their own source: their times depend on the seed alone,
        # not on how many frames went through the other faults.
        self._disconnects = random.Random(f"{seed}/disconnects")
        self._disconnect_at: float | None = None
        self.too_many = 0  # HTTP 429s answered by the fault

    def update(self, changes: Mapping[str, Any]) -> FaultConfig:
        """Apply a partial update (the body of ``POST /sim/faults``)."""
        merged = {**attrs.asdict(self.config), **changes}
        try:
            self.config = structure_section(merged, FaultConfig, "faults")
        except ConfigError as error:
            raise FaultUpdateError("; ".join(error.errors)) from None
        return self.config

    def ws_delay(self, channel: str = "") -> float:
        config = self.config
        if not config.ws_latency_ms and not config.ws_jitter_ms:
            return 0.0
        if config.ws_latency_channels and channel not in config.ws_latency_channels:
            return 0.0
        return (config.ws_latency_ms + self.rng.uniform(0, config.ws_jitter_ms)) / 1000

    def http_delay(self) -> float:
        config = self.config
        if not config.http_latency_ms and not config.http_jitter_ms:
            return 0.0
        return (config.http_latency_ms + self.rng.uniform(0, config.http_jitter_ms)) / 1000

    def frame_fate(self, channel: str) -> FrameFate:
        config = self.config
        if channel == "post":
            drop = config.ws_drop_post_replies
            return FrameFate.DROP if drop and self.rng.random() < drop else FrameFate.SEND
        if channel not in DATA_CHANNELS:
            return FrameFate.SEND
        if config.ws_drop and self.rng.random() < config.ws_drop:
            return FrameFate.DROP
        if config.ws_duplicate and self.rng.random() < config.ws_duplicate:
            return FrameFate.DUPLICATE
        if config.ws_reorder and self.rng.random() < config.ws_reorder:
            return FrameFate.HOLD
        return FrameFate.SEND

    def http_fate(self, path: str = "", info_type: object = None) -> HttpFate:
        """What to do with an HTTP request to ``path`` (an ``/info`` one of ``info_type``)."""
        config = self.config
        if config.http_paths and path not in config.http_paths:
            return HttpFate.ANSWER
        if config.http_info_types and path == "/info" and info_type not in config.http_info_types:
            return HttpFate.ANSWER
        if config.http_429 and self.rng.random() < config.http_429:
            self.too_many += 1
            return HttpFate.TOO_MANY
        if config.http_5xx and self.rng.random() < config.http_5xx:
            return HttpFate.SERVER_ERROR
        return HttpFate.ANSWER

    def lose_this_cancel(self, request: Any) -> bool:
        """Whether this ``/exchange`` body is a cancel the venue loses (``lose_cancels``)."""
        lose = self.config.lose_cancels
        if not lose or not isinstance(request, Mapping):
            return False
        action = request.get("action")
        if (
            not isinstance(action, Mapping)
            or not isinstance(action.get("type"), str)
            or not is_cancel_action(action)
        ):
            return False
        return self.rng.random() < lose

    def disconnect_now(self, now: float) -> bool:
        """Whether the connection that just sent a message is to be dropped (``now``: Trio
        time). The first message after the fault is switched on starts the wait; each drop
        starts the next one, so drops are at least one drawn wait apart."""
        mean = self.config.ws_disconnect_mean_s
        if not mean:
            self._disconnect_at = None
            return False
        if self._disconnect_at is None:
            self._disconnect_at = now + self._disconnects.expovariate(1 / mean)
            return False
        if now < self._disconnect_at:
            return False
        self._disconnect_at = now + self._disconnects.expovariate(1 / mean)
        return True

    def cross_this_book(self) -> bool:
        crossed = self.config.crossed_book
        return bool(crossed) and self.rng.random() < crossed
