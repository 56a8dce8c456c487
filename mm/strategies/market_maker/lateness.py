"""How late a book arrived: its lag (our clock at arrival less the venue's stamp) beyond the
least lag seen lately, which stands for the two clocks' offset and the quickest way here.

A frame held back on its way (a reordered message, a stall's last frame, a slow link) arrives
with an old stamp. The data gate must count its age from that stamp, not from its arrival, or
a book seconds old reads as fresh for the whole pull limit and quotes go out on it. The clocks'
offset cancels out: only the lag above the least one is lateness. The least lag rises by
``RELAX_MS_PER_S`` a second while no quicker book comes, so that a clock that drifts or is
stepped is followed.

Pure: no I/O, no clock.
"""

from __future__ import annotations

from typing import Final

RELAX_MS_PER_S: Final = 10.0


class Lateness:
    """The least lag of one coin's books, and each book's lateness against it."""

    def __init__(self) -> None:
        self._least_ms: float | None = None
        self._at: float | None = None

    def late_s(self, lag_ms: float | None, now: float) -> float:
        """How late (seconds) a book whose lag is ``lag_ms`` (None: not known: not late)
        arriving at ``now`` (seconds, any clock that only moves forward) is."""
        if lag_ms is None:
            return 0.0
        least = self._least_ms
        if least is not None and self._at is not None:
            least += max(now - self._at, 0.0) * RELAX_MS_PER_S
        least = lag_ms if least is None else min(least, lag_ms)
        self._least_ms, self._at = least, now
        return max(lag_ms - least, 0.0) / 1000
