"""The taker flow's imbalance over a sliding window: the quote gate's directional edge input.

``FlowImbalance.on_trade(trade, now)`` records a trade's notional, signed by its taker's side
(+ for a buying taker); ``imbalance(now)`` is the net over the total notional of the trades in
the last ``window_s`` seconds, in [-1, 1] (+1: only buyers took), or None when none traded.
Pure: times are passed in; a trade with a non-finite or non-positive price or size, or a time
going back, is ignored (never raises, never NaN).
"""

from __future__ import annotations

import math
from collections import deque

from mm.model import Side, Trade


class FlowImbalance:
    """Signed taker notional over the last ``window_s`` seconds (see the module)."""

    def __init__(self, window_s: float) -> None:
        self.window_s = window_s
        self._trades: deque[tuple[float, float, float]] = deque()  # (time, notional, signed)
        self._last = -math.inf
        # The last reading, kept until a trade comes or leaves the window (``_read`` False: none
        # kept): the quote asks once per book, and the window holds the same trades between.
        self._read = False
        self._reading: float | None = None

    def on_trade(self, trade: Trade, now: float) -> None:
        notional = trade.px * trade.sz
        if not (math.isfinite(notional) and notional > 0 and math.isfinite(now)):
            return
        if now < self._last:
            return
        self._last = now
        signed = notional if trade.side is Side.BUY else -notional
        self._trades.append((now, notional, signed))
        self._read = False
        self._expire(now)

    def _expire(self, now: float) -> None:
        while self._trades and now - self._trades[0][0] > self.window_s:
            self._trades.popleft()
            self._read = False

    def imbalance(self, now: float) -> float | None:
        """Summed afresh when the window changed (a trade came or left), else the last reading:
        no running sum to drift when notionals of very different sizes come and go."""
        if math.isfinite(now):
            self._expire(now)
        if self._read:
            return self._reading
        total = math.fsum(notional for _, notional, _ in self._trades)
        if total <= 0.0:
            reading = None
        else:
            net = math.fsum(signed for _, _, signed in self._trades)
            reading = max(-1.0, min(1.0, net / total))
        self._read, self._reading = True, reading
        return reading
