"""Where the service's random draws come from: backoff jitter, client order ids, connection ids.

All of them are drawn from Python's global generator (``random``), which the interpreter seeds
from the operating system when it starts, so that one ``random.seed`` (``mm simulate`` gives
each run its seed) fixes every draw of a run. Nothing drawn here is a secret: ids only need to
be unique, and a 64-bit and wider draw from a generator seeded from the OS is.
"""

from __future__ import annotations

import random

__all__ = ["generator", "hex_id"]


def generator() -> random.Random:
    """A generator of its own (a component's jitter), seeded from the global one."""
    return random.Random(random.getrandbits(64))


def hex_id(bits: int) -> str:
    """``bits`` random bits as lowercase hex, ``bits // 4`` digits (a multiple of 4)."""
    return f"{random.getrandbits(bits):0{bits // 4}x}"
