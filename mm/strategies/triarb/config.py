"""The ``[triarb]`` section: what triangular arbitrage is configured with. Pure.

``TriarbConfig`` is an attrs class of ``setting(default, check)`` fields like every other
section (``mm.settings.structure_section`` builds it from parsed TOML, strict on types and
unknown keys); each check names its key when it fails (``triarb.slots: must be >= 1, got 0``).
The defaults are safe to start from: paper mode, one primary (USDT), a 100-unit start volume,
books no older than 500 ms, two slots behind a one-signal queue, IOC legs with 10 bps of
slippage, stranded legs unwound.

``terms`` turns the section into the evaluation's ``Terms`` (``triangles.Terms``) with the
venue's fees and funds increments, which the configuration does not know.

Fails: ``ConfigError`` (through ``structure_section``) for a value its check refuses; ``terms``
raises what ``Terms`` raises (``ValueError`` for a fee rate outside [0, 1) or an increment not
positive).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from decimal import Decimal

import attrs

from mm.settings import Check, at_least, non_negative, one_of, positive, setting
from mm.strategies.triarb.limits import TriangleLimits
from mm.strategies.triarb.triangles import Terms

__all__ = ["LEG_ORDERS", "MAX_SIGNAL_QUEUE", "UNWIND_POLICIES", "TriarbConfig"]

# How a leg is sent: an IOC limit at the evaluated worst price plus the slippage, or a market
# order (the reference's option).
LEG_ORDERS = ("ioc", "market")
# What a slot does with a stranded leg (leg 2 or 3 failed): sell back to the primary, or hold
# it and report.
UNWIND_POLICIES = ("unwind", "hold")
# The signal queue is bounded: a signal is perishable, so a long queue only holds stale ones.
MAX_SIGNAL_QUEUE = 1024


def _finite(check: Check) -> Check:
    """``check`` on a finite number; infinities and NaN refused."""

    def finite(value: float) -> str | None:
        if not math.isfinite(value):
            return f"must be a finite number, got {value!r}"
        return check(value)

    return finite


def _primaries(value: tuple[str, ...]) -> str | None:
    if not value:
        return "must name at least one primary quote currency"
    blank = [currency for currency in value if not currency.strip()]
    if blank:
        return f"currencies must not be empty, got {blank}"
    repeated = sorted({currency for currency in value if value.count(currency) > 1})
    return f"each currency once, got {repeated} twice" if repeated else None


def _queue(value: int) -> str | None:
    if 0 <= value <= MAX_SIGNAL_QUEUE:
        return None
    return f"must be between 0 and {MAX_SIGNAL_QUEUE}, got {value}"


@attrs.frozen
class TriarbConfig:
    """The ``[triarb]`` section (see the module)."""

    # The primary quote currencies: every triangle starts and ends in one of them.
    primaries: tuple[str, ...] = setting(("USDT",), _primaries)
    # A triangle is signalled when its predicted profit reaches this (bps of the start volume,
    # after every leg's taker fee and the increments).
    min_profit_bps: float = setting(5.0, _finite(non_negative))
    # The volume a triangle starts with, in its primary (less when the books carry less).
    start_volume: float = setting(100.0, _finite(positive))
    # The oldest of a triangle's three books may be at most this old (ms, by the venue's time).
    max_book_age_ms: int = setting(500, at_least(1))
    # Executor slots: triangles in flight at once.
    slots: int = setting(2, at_least(1))
    # Signals waiting for a slot (0: a signal goes only to a slot already waiting); when the
    # queue is full a new signal is dropped and counted, the feed never waits.
    signal_queue: int = setting(1, _queue)
    # How long a slot waits for a leg's fills before the leg counts as failed (s).
    fill_timeout_s: float = setting(5.0, _finite(positive))
    # Take the balance the venue reports after a leg as the next leg's input (the reference's
    # balance override), instead of what the fills say.
    await_balance: bool = setting(False)
    # How a leg is sent: "ioc" (a limit at the evaluated worst price plus max_slippage_bps,
    # immediate-or-cancel) or "market".
    leg_order: str = setting("ioc", one_of(*LEG_ORDERS))
    # How far past the evaluated worst price an IOC leg may fill (bps).
    max_slippage_bps: float = setting(10.0, _finite(non_negative))
    # A stranded leg 2 or 3: "unwind" back to the primary, or "hold" it and report.
    unwind: str = setting("unwind", one_of(*UNWIND_POLICIES))
    # Paper mode: the venue's test-order endpoint, fills simulated from the books as evaluated.
    paper: bool = setting(True)
    # Isolation: may two triangles with the same primary be in flight at once (never two on
    # the same triangle or sharing a pair).
    share_primary: bool = setting(False)
    # Risk: the most of each currency held, the day's loss per primary, triangles a minute.
    limits: TriangleLimits = attrs.field(factory=TriangleLimits)

    @property
    def start_volume_decimal(self) -> Decimal:
        """The start volume as its shortest decimal form reads."""
        return Decimal(repr(self.start_volume))

    def terms(
        self,
        fees: Mapping[str, Decimal] | None = None,
        funds_increments: Mapping[str, Decimal] | None = None,
    ) -> Terms:
        """The evaluation's terms: this section's start volume and book age with the venue's
        taker ``fees`` and ``funds_increments`` per symbol."""
        return Terms(
            self.start_volume_decimal,
            self.max_book_age_ms,
            dict(fees or {}),
            dict(funds_increments or {}),
        )
