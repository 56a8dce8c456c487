"""The health snapshot: one immutable value of everything risk and autonomy judge the
platform's health on, and the reduction of the feeds' state changes into it.

A snapshot is taken at one instant (``at``, Trio time; ``wall``, the one clock's wall time)
and holds what the sources said then: each feed's connection state and how many times it has
started reconnecting (``FeedStatus``, reduced from the feeds' state changes by
``with_feed_state``), the market connection's state and attempts, when each symbol's last book
arrived, whether the user stream is in sync and fit to trade, the stale symbols, the journal's
lag, the fill of every queue (the fan-out backlogs among them) and the latest account reading.
Ages are derived from the snapshot's own instant, so two readers of one snapshot see the same
figures.

Pure: no I/O and no clock reads.
"""

from __future__ import annotations

from collections.abc import Mapping

import attrs

from mm.model import AccountState

RECONNECTING = "reconnecting"
TROUBLE = frozenset({RECONNECTING, "stale", "failed"})  # the states that are evidence of trouble


@attrs.frozen
class AccountReading:
    """One account state and the Trio time the request for it was sent."""

    account: AccountState
    requested_at: float


@attrs.frozen
class FeedStatus:
    """One feed's connection state, since when (Trio time), and how many times it has started
    reconnecting since the service started."""

    state: str
    since: float
    reconnects: int = 0


@attrs.frozen
class FeedChange:
    """A feed's state changed: the feed, its new state and when (Trio time)."""

    feed: str
    state: str
    at: float

    @property
    def trouble(self) -> bool:
        """Reconnecting, stale or failed: what risk lists among its recent errors and autonomy
        notes as evidence."""
        return self.state in TROUBLE


def with_feed_state(feeds: Mapping[str, FeedStatus], change: FeedChange) -> dict[str, FeedStatus]:
    """``feeds`` after ``change``: the feed's new state from the change's time, one reconnect
    more when it starts reconnecting; the other feeds as they were."""
    before = feeds.get(change.feed)
    reconnects = before.reconnects if before is not None else 0
    if change.state == RECONNECTING:
        reconnects += 1
    return {**feeds, change.feed: FeedStatus(change.state, change.at, reconnects)}


@attrs.frozen
class HealthSnapshot:
    """The platform's health at one instant (see the module docstring)."""

    at: float  # Trio time
    wall: float  # the one clock's wall time, epoch seconds
    feeds: Mapping[str, FeedStatus] = attrs.field(factory=dict)
    # The market feed's connection (state, reconnection attempts); None before it started.
    market: tuple[str, int] | None = None
    # When (wall ms) each followed symbol's last book arrived; None before the first.
    book_ms: Mapping[str, int | None] = attrs.field(factory=dict)
    in_sync: bool = False  # the user stream's gate is open
    healthy: bool = False  # fit to trade: in sync and every book fresh (the adapter's word)
    stale: frozenset[str] = frozenset()
    journal_lag_s: float = 0.0
    queue_fill: Mapping[str, float] = attrs.field(factory=dict)  # used / capacity per queue
    account: AccountReading | None = None

    def book_age_s(self, coin: str) -> float | None:
        """Seconds since the coin's last book arrived (None: none yet, or not followed)."""
        arrived = self.book_ms.get(coin)
        return None if arrived is None else (self.wall * 1000 - arrived) / 1000

    def oldest_book_age_s(self) -> float:
        """The oldest book's age across the followed symbols; 0 until every one has a book (a
        book that never came is the feed's connection state's to judge, not an age)."""
        arrivals = list(self.book_ms.values())
        known = [t for t in arrivals if t is not None]
        if not known or len(known) < len(arrivals):
            return 0.0
        return (self.wall_ms - min(known)) / 1000

    @property
    def wall_ms(self) -> int:
        return int(self.wall * 1000)

    @property
    def account_age_s(self) -> float | None:
        """Seconds since the account reading's request was sent (None: never read)."""
        return None if self.account is None else self.at - self.account.requested_at

    @property
    def account_value(self) -> float | None:
        """The venue's account value, or None while it is unknown (never read, or not funded
        yet: a new account on the simulator is funded by its first signed action)."""
        reading = self.account
        if reading is None or reading.account.account_value <= 0.0:
            return None
        return reading.account.account_value

    @property
    def margin_usage(self) -> float | None:
        """Margin used against the account value (None: the value is not known)."""
        value = self.account_value
        if value is None:
            return None
        assert self.account is not None
        return self.account.account.margin_used / value
