"""The liquidation detector with the venue's times: a fill counts for the snapshots it falls
between, whenever it arrives (issue 13, item 2: fills the audit recovers arrive late).

A fill whose frame the venue dropped reaches mm seconds later, from the fill audit. Counted by
its arrival, it explained the next position change instead of the one that held it: the next
snapshot then looked like a forced liquidation of the opposite sign, and the kill switch
tripped (``liquidation_detected``) with no liquidation on the venue.
"""

from __future__ import annotations

from mm.risk.aggregate import LiquidationDetector

MAX_POSITION = 10.0  # threshold: 20% = 2 contracts


def detector() -> LiquidationDetector:
    found = LiquidationDetector(MAX_POSITION)
    found.on_position(0.0, 0.0, at_ms=0)
    return found


def test_a_late_fill_explains_its_own_snapshot_and_not_the_next() -> None:
    d = detector()
    d.on_fill(-1.0, 1.0, at_ms=1_000)  # a live sell
    d.on_position(-4.0, 2.0, at_ms=2_000)  # and three lost sells of 1 (made at 1.5 s)
    assert d.poll(2.0) == []
    # The audit brings the lost sells 2 s later: they explain the jump the 2 s snapshot showed.
    for _ in range(3):
        d.on_fill(-1.0, 4.0, at_ms=1_500)
    d.on_position(-4.0, 4.0, at_ms=4_000)  # nothing changed since
    assert d.poll(20.0) == []


def test_late_fills_below_the_threshold_are_not_counted_again() -> None:
    d = detector()
    # Three lost sells, one between each pair of snapshots: each change alone is below the
    # threshold, so none is a pending jump.
    d.on_position(-1.0, 2.0, at_ms=2_000)
    d.on_position(-2.0, 4.0, at_ms=4_000)
    d.on_position(-3.0, 6.0, at_ms=6_000)
    # The audit brings all three after the snapshots that hold them: no later change is theirs.
    for made_ms in (1_500, 3_500, 5_500):
        d.on_fill(-1.0, 6.5, at_ms=made_ms)
    d.on_position(-3.0, 8.0, at_ms=8_000)  # no change: counted by arrival, a jump of +3
    assert d.poll(20.0) == []


def test_a_fill_made_after_a_snapshot_waits_for_the_next() -> None:
    d = detector()
    d.on_fill(3.0, 1.0, at_ms=2_500)  # arrived before the snapshot was read, made after it
    d.on_position(0.0, 2.0, at_ms=2_000)
    d.on_position(3.0, 4.0, at_ms=4_000)
    assert d.poll(20.0) == []


def test_a_real_liquidation_is_not_explained_by_a_later_fill() -> None:
    d = detector()
    d.on_position(-5.0, 2.0, at_ms=2_000)  # 5 contracts gone with no fill: a liquidation
    d.on_fill(-5.0, 3.0, at_ms=2_500)  # a sell made after that snapshot explains none of it
    d.on_position(-10.0, 4.0, at_ms=4_000)
    events = d.poll(20.0)
    assert [event.delta for event in events] == [-5.0]


def test_without_venue_times_a_fill_counts_for_the_next_snapshot() -> None:
    d = LiquidationDetector(MAX_POSITION)
    d.on_position(0.0, 0.0)
    d.on_fill(3.0, 1.0)
    d.on_position(3.0, 2.0)
    assert d.poll(20.0) == []
