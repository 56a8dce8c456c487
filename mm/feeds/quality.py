"""Data-quality checks on every book update (pure).

Per symbol: a timestamp older than the freshness limit is flagged STALE; a crossed book is
rejected and a locked one flagged; time going backwards is rejected; a mid that jumps by more
than the threshold from the last accepted one is held back until the next update confirms it
(near the new level, or further on in the same direction, as in a cascade) or refutes it
(back near the old level). The verdict says
whether to publish the update and which issues were seen.
"""

from __future__ import annotations

import enum

import attrs

from mm.book import Book
from mm.settings import positive, setting


class Issue(enum.Enum):
    STALE = "stale"
    CROSSED = "crossed"
    LOCKED = "locked"
    TIME_BACKWARDS = "time_backwards"
    JUMP_UNCONFIRMED = "jump_unconfirmed"
    JUMP_REFUTED = "jump_refuted"
    ONE_SIDED = "one_sided"


@attrs.frozen
class QualityConfig:
    max_age_ms: int = setting(5_000, positive)
    jump_threshold: float = setting(0.10, positive)


@attrs.frozen
class Verdict:
    accept: bool
    issues: tuple[Issue, ...] = ()
    book: Book | None = None  # what to publish (a held jump is published once confirmed)


class BookQuality:
    """The checks for one symbol; owns the last accepted book and any held jump."""

    def __init__(self, config: QualityConfig) -> None:
        self.config = config
        self.last: Book | None = None
        self.held: Book | None = None

    def check(self, book: Book, now_ms: int) -> Verdict:
        """The verdict on ``book``, the next update of the symbol (see the module)."""
        if self.accept_usual(book, now_ms):
            return Verdict(True, (), book)
        return self.check_unusual(book, now_ms)

    def accept_usual(self, book: Book, now_ms: int) -> bool:
        """Whether ``book`` is the usual update, accepted as it is with no issue (as ``check``
        would: it is then the last accepted book); False, with nothing changed, for any other,
        which ``check_unusual`` judges. For a feed that checks every book: no verdict made."""
        # The usual update in a few comparisons: fresh, in time, two-sided and neither crossed
        # nor locked, nothing held, no jump. Anything else (or a NaN anywhere, which fails
        # every comparison) takes the full checks.
        bids, asks, last = book.bids, book.asks, self.last
        if bids and asks and self.held is None:
            bid, ask, config = bids[0][0], asks[0][0], self.config
            if (
                bid < ask
                and now_ms - book.time_ms <= config.max_age_ms
                and (last is None or book.time_ms >= last.time_ms)
            ):
                last_mid = last.mid if last is not None else None
                if (
                    last_mid is None
                    or last_mid <= 0
                    or abs((bid + ask) / 2 / last_mid - 1) <= config.jump_threshold
                ):
                    self.last = book
                    return True
        return False

    def check_unusual(self, book: Book, now_ms: int) -> Verdict:
        """The verdict on ``book`` by the full checks (after ``accept_usual`` did not accept
        it; on the usual update they give the verdict ``accept_usual`` stands for)."""
        issues: list[Issue] = []
        if book.age_ms(now_ms) > self.config.max_age_ms:
            issues.append(Issue.STALE)
        if self.last is not None and book.time_ms < self.last.time_ms:
            return Verdict(False, (*issues, Issue.TIME_BACKWARDS))
        if book.is_crossed:
            return Verdict(False, (*issues, Issue.CROSSED))
        if book.is_locked:
            issues.append(Issue.LOCKED)
        mid = book.mid
        if mid is None:
            issues.append(Issue.ONE_SIDED)
            self.last = book
            return Verdict(True, tuple(issues), book)
        if self.held is not None:
            held_mid = self.held.mid
            self.held = None
            if held_mid is not None and (
                self._near(mid, held_mid) or self._persists(mid, held_mid)
            ):
                self.last = book  # the jump is confirmed: this update is near it, or further on
                return Verdict(True, tuple(issues), book)
            if not self._jumped(mid):
                self.last = book  # back near the old level: the held update was an outlier
                return Verdict(True, (*issues, Issue.JUMP_REFUTED), book)
        if self._jumped(mid):
            self.held = book
            return Verdict(False, (*issues, Issue.JUMP_UNCONFIRMED))
        self.last = book
        return Verdict(True, tuple(issues), book)

    def _jumped(self, mid: float) -> bool:
        last_mid = self.last.mid if self.last is not None else None
        if last_mid is None or last_mid <= 0:
            return False
        return abs(mid / last_mid - 1) > self.config.jump_threshold

    def _persists(self, mid: float, held_mid: float) -> bool:
        """The move continues: still beyond the threshold from the last accepted mid, on the
        same side as the held jump (a cascade, where every update jumps again)."""
        last_mid = self.last.mid if self.last is not None else None
        if last_mid is None or not self._jumped(mid):
            return False
        return (mid > last_mid) == (held_mid > last_mid)

    def _near(self, mid: float, other: float) -> bool:
        return other > 0 and abs(mid / other - 1) <= self.config.jump_threshold
