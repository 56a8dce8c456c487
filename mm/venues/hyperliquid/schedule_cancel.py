"""The venue's dead-man's switch (``scheduleCancel``): its volume gate, in the venue's words.

Besides its documented rules (a time at least 5 s ahead, 10 triggers a day), the venue refuses
to set a scheduled cancel until the account has traded $1,000,000 in all:

    Cannot set scheduled cancel time until enough volume traded. Required: $1000000. Traded: $X.

(a venue response recorded in CCXT's Hyperliquid exchange reads ``Traded: $373.47205.``;
other clients' tests and traders' logs show ``$0.``, ``$167.22.``, ``$129582.4.`` and
``$40988.83.``). The figures are the venue's f64 printed as Rust prints one:
the shortest decimal that reads back as the same number, no exponent, no ``.0`` on a whole
number (``format_usd``). The traded figure is the account's cumulative volume, the
``cumVlm`` that ``userRateLimit`` reports.

Shared by the simulator (which refuses with this text) and the adapter (which recognises it,
``parse_volume_refusal``), so the two cannot drift apart. Pure: no I/O.
"""

from __future__ import annotations

import re
from decimal import Decimal
from typing import Final

import attrs

REQUIRED_VOLUME_USD: Final = 1_000_000.0
"""What an account must have traded (USD) before the venue sets its dead-man's switch."""

VOLUME_REFUSAL_PREFIX: Final = "Cannot set scheduled cancel time until enough volume traded."

_FIGURE = r"[0-9]+(?:\.[0-9]+)?"
_REFUSAL = re.compile(
    re.escape(VOLUME_REFUSAL_PREFIX)
    + rf" Required: \$(?P<required>{_FIGURE})\. Traded: \$(?P<traded>{_FIGURE})\."
)


def format_usd(value: float) -> str:
    """A USD figure as the venue prints it in this text (Rust's ``Display`` of an f64):
    ``1000000``, ``129582.4``, ``373.47205``, ``0``."""
    text = format(Decimal(repr(float(value))), "f")
    return text.rstrip("0").rstrip(".") if "." in text else text


def volume_refusal(required: float, traded: float) -> str:
    """The venue's refusal of a ``scheduleCancel`` for an account that has traded too little."""
    return (
        f"{VOLUME_REFUSAL_PREFIX} Required: ${format_usd(required)}. Traded: ${format_usd(traded)}."
    )


@attrs.frozen
class VolumeRefusal:
    """The venue refused the switch for volume: ``required`` (USD) and what it counts as
    ``traded`` so far (None when its text did not say, in a form this module knows)."""

    required: float
    traded: float | None


def parse_volume_refusal(text: str) -> VolumeRefusal | None:
    """The figures of the venue's volume refusal, or None when ``text`` is another error. A
    text that starts as the refusal but words its figures otherwise is still the refusal: the
    documented $1,000,000, traded unknown."""
    match = _REFUSAL.search(text)
    if match is not None:
        return VolumeRefusal(float(match.group("required")), float(match.group("traded")))
    if VOLUME_REFUSAL_PREFIX in text:
        return VolumeRefusal(REQUIRED_VOLUME_USD, None)
    return None
