"""A book's lateness: its lag beyond the least lag seen, so that a frame held on its way is as
old as its stamp says, while the clocks' offset, whatever it is, cancels out and a drifting
clock is followed."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from mm.book import Book
from mm.model import Level
from mm.strategies.market_maker.engine import StrategyConfig, SymbolQuoter
from mm.strategies.market_maker.lateness import RELAX_MS_PER_S, Lateness
from tests.strategies.market_maker.test_engine import BTC


@given(offset_ms=st.floats(-60_000.0, 60_000.0), lag_ms=st.floats(0.0, 200.0))
def test_a_steady_lag_is_no_lateness_whatever_the_clocks_offset(
    offset_ms: float, lag_ms: float
) -> None:
    lateness = Lateness()
    for second in range(20):
        assert lateness.late_s(offset_ms + lag_ms, float(second)) == 0.0


def test_a_frame_held_on_its_way_is_late_by_what_it_waited() -> None:
    lateness = Lateness()
    for second in range(10):
        assert lateness.late_s(40.0, second * 0.25) == 0.0
    relaxed = 0.25 * RELAX_MS_PER_S / 1000  # (the least lag has risen since the last book)
    assert abs(lateness.late_s(2_240.0, 2.5) - (2.2 - relaxed)) < 1e-9
    assert lateness.late_s(None, 2.6) == 0.0  # (a book without its stamps: not judged)


def test_the_least_lag_follows_a_clock_that_drifts_away() -> None:
    lateness = Lateness()
    assert lateness.late_s(40.0, 0.0) == 0.0
    # The venue's clock steps 500 ms behind ours: books look late at first, and less and less
    # so as the least lag rises, until the new offset is the least again.
    step_s = 500.0 / RELAX_MS_PER_S
    assert abs(lateness.late_s(540.0, 1.0) - (0.5 - RELAX_MS_PER_S / 1000)) < 1e-9
    assert lateness.late_s(540.0, 1.0 + step_s) == 0.0


def _book(mid: float, stamp_ms: int, received_ms: int) -> Book:
    bids = tuple(Level(mid - 10 - i, 0.5) for i in range(3))
    asks = tuple(Level(mid + 10 + i, 0.5) for i in range(3))
    return Book("BTC", stamp_ms, bids, asks, received_ms)


def test_the_data_gate_counts_a_late_books_age_from_its_stamp() -> None:
    """Books arrive 30 ms after their stamp; then the venue's pushes stall, and a frame
    stamped just before the stall arrives 2.2 s late: it does not make the data fresh."""
    config = StrategyConfig()
    quoter = SymbolQuoter(BTC, config)
    wall_ms = 1_767_225_600_000  # our wall clock; ``now`` is the strategy's own (Trio) clock
    for tick in range(8):
        now = tick * 0.25
        quoter.on_book(_book(95_000.0, wall_ms + tick * 250, wall_ms + tick * 250 + 30), now)
        assert quoter.fresh(now)
    stamped = wall_ms + 2_000
    arrived = 2.0 + 2.2
    quoter.on_book(_book(95_000.0, stamped, stamped + 2_230), arrived)
    assert not quoter.fresh(arrived)  # its age is 2.2 s past the gate's 2 s
    assert quoter.fresh_until() < arrived
    # a book on time is fresh again
    quoter.on_book(_book(95_000.0, stamped + 2_300, stamped + 2_330), arrived + 0.1)
    assert quoter.fresh(arrived + 0.1)
