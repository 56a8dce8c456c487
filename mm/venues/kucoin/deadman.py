"""KuCoin's dead-man's switch, the port's ``DeadMansSwitch``: the HF API's "disconnection
protect" (``POST /api/v1/hf/orders/dead-cancel-all``, read back with ``GET .../query``).

The venue cancels the account's orders ``timeout`` seconds after the last setting unless it is
set again (KuCoin's specification: ``timeout`` -1 unsets it, else 5 <= timeout <= 86400;
``symbols`` empty means every symbol, which is the port's "every order of the account"). The
keeper (``mm.execution.deadman``) arms it ``lead_s`` ahead and pushes it forward every
``refresh_s``: ``schedule_cancel(at_ms)`` turns the wall time ``at_ms`` into the seconds from
now, rounded up (the switch fires no earlier than asked), and a time less than 5 s ahead into
the venue's minimum of 5 s (later than asked by under 5 s: the venue allows no sooner).

``traded_volume``: KuCoin arms its switch for any account (no volume gate, so
``SwitchNeedsVolume`` is never raised) and reports no cumulative traded volume through its API;
it answers 0.0, which nothing acts on: the keeper asks it only after a volume refusal.

Fails: ``ValueError`` for a time more than a day ahead (the venue's bound); the transport's
errors (``KucoinError``, ``RateLimited``, ``RequestTimeout``...) as they come; an answer that
does not say when the switch fires is ``MalformedAnswer``.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any, Final

import attrs

from mm.venues.base import MalformedAnswer
from mm.venues.kucoin.rest import KucoinRestTransport

__all__ = [
    "DISARM",
    "MAX_TIMEOUT_S",
    "MIN_TIMEOUT_S",
    "DcpSetting",
    "KucoinDeadMansSwitch",
    "parse_armed",
    "parse_setting",
    "timeout_for",
]

PATH: Final = "/api/v1/hf/orders/dead-cancel-all"
QUERY_PATH: Final = "/api/v1/hf/orders/dead-cancel-all/query"
DISARM: Final = -1
MIN_TIMEOUT_S: Final = 5
MAX_TIMEOUT_S: Final = 86_400


def timeout_for(at_ms: int | None, now_ms: int) -> int:
    """The ``timeout`` that fires the switch at ``at_ms`` (None: disarm; see the module)."""
    if at_ms is None:
        return DISARM
    seconds = max(MIN_TIMEOUT_S, math.ceil((at_ms - now_ms) / 1000))
    if seconds > MAX_TIMEOUT_S:
        raise ValueError(f"the switch can be armed at most {MAX_TIMEOUT_S} s ahead, not {seconds}")
    return seconds


@attrs.frozen
class DcpSetting:
    """The switch as the venue has it: ``timeout`` seconds, the ``symbols`` it covers (empty:
    all), and when it fires (venue seconds)."""

    timeout: int
    symbols: tuple[str, ...]
    trigger_time_s: int


def parse_setting(data: Any) -> DcpSetting | None:
    """The ``data`` of the query (None, or an object without a timeout: not armed)."""
    if data is None or (type(data) is dict and data.get("timeout") in (None, DISARM)):
        return None
    try:
        timeout, trigger = data["timeout"], data["triggerTime"]
        if type(timeout) is not int or type(trigger) is not int:
            raise ValueError(f"timeout {timeout!r}, triggerTime {trigger!r}")
        symbols = data.get("symbols") or ""
        if type(symbols) is not str:
            raise ValueError(f"symbols: {symbols!r}")
        return DcpSetting(timeout, tuple(s for s in symbols.split(",") if s), trigger)
    except (KeyError, TypeError, ValueError) as error:
        raise MalformedAnswer(f"dead-cancel-all query: {type(error).__name__}: {error}") from None


def parse_armed(data: Any) -> int:
    """The ``data`` of a set's answer: when the switch fires (venue seconds)."""
    if type(data) is not dict or type(data.get("triggerTime")) is not int:
        raise MalformedAnswer(f"dead-cancel-all: no triggerTime in {data!r:.200}")
    trigger: int = data["triggerTime"]
    return trigger


class KucoinDeadMansSwitch:
    """The switch over the adapter's REST (see the module)."""

    def __init__(self, rest: KucoinRestTransport, now_ms: Callable[[], int]) -> None:
        self.rest = rest
        self.now_ms = now_ms

    async def schedule_cancel(self, at_ms: int | None) -> None:
        timeout = timeout_for(at_ms, self.now_ms())
        data = await self.rest.request("POST", PATH, body={"timeout": timeout})
        if timeout != DISARM:
            parse_armed(data)

    async def setting(self) -> DcpSetting | None:
        """The switch as the venue has it now (None: not armed)."""
        return parse_setting(await self.rest.request("GET", QUERY_PATH))

    async def traded_volume(self) -> float:
        return 0.0
