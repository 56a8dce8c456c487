"""The fill history: a fill is history iff the journal holds it (or it is older than anything the
journal holds), and each fill is claimed for forwarding once."""

from __future__ import annotations

from pathlib import Path

import attrs
from hypothesis import given
from hypothesis import strategies as st

from mm.feeds.history import (
    FillHistory,
    FillKey,
    HistoryStart,
    JournaledFills,
    fill_key,
    missed_fills,
)
from mm.journal import Entry, journaled_fills, open_database, write_batch
from mm.model import Fill, OrderId, Side, TradeId
from tests.ids import hl_oid, hl_tid


def fill(tid: int, time_ms: int, oid: int = 7) -> Fill:
    return Fill(
        coin="BTC",
        side=Side.BUY,
        px=95_000.0,
        sz=0.001,
        time_ms=time_ms,
        oid=hl_oid(oid),
        tid=hl_tid(tid),
        cloid=None,
        fee=0.01,
        fee_token="USDC",
        crossed=False,
        start_position=0.0,
        direction="Open Long",
        closed_pnl=0.0,
        hash="0x0",
    )


def row(tid: int, oid: int, time_ms: int) -> tuple[TradeId, OrderId, int]:
    """A journaled fill as ``journaled_fills`` reads it."""
    return (hl_tid(tid), hl_oid(oid), time_ms)


def key(tid: int, oid: int) -> FillKey:
    return (hl_tid(tid), hl_oid(oid))


def journal_with(path: Path, fills: list[Fill]) -> Path:
    database = path / "mm.sqlite3"
    conn = open_database(database)
    try:
        entries = [Entry(1.0, "fill", attrs.asdict(f, value_serializer=_plain)) for f in fills]
        write_batch(conn, [Entry(0.5, "service_started", {}), *entries])
    finally:
        conn.close()
    return database


def _plain(_instance: object, _field: object, value: object) -> object:
    return value.value if isinstance(value, Side) else value


def test_the_journal_restores_the_history_by_trade_id(tmp_path: Path) -> None:
    journaled = [fill(1, 1_000), fill(3, 3_000), fill(3, 3_000, oid=8), fill(5, 2_500)]
    database = journal_with(tmp_path, journaled)
    rows = journaled_fills(database, limit=100)
    newest_first = [row(5, 7, 2_500), row(3, 8, 3_000), row(3, 7, 3_000), row(1, 7, 1_000)]
    assert rows == newest_first
    restored = JournaledFills.from_rows(rows)
    assert restored.keys == (key(1, 7), key(5, 7), key(3, 8), key(3, 7))  # oldest first
    assert (restored.oldest_ms, restored.newest_ms) == (1_000, 3_000)

    history = FillHistory(100)
    history.restore(restored)
    assert history.baselined
    assert (history.floor_ms, history.mark_ms) == (1_000, 3_000)
    # The newest journaled fill is history (the time floor let it through on every start) ...
    assert history.known(fill(3, 3_000))
    assert not history.claim(fill(3, 3_000))
    # ... and a fill the journal lacks is not, older than the newest journaled one as it is
    # (missed by an earlier run) or made at the same millisecond.
    assert not history.known(fill(2, 2_000))
    assert not history.known(fill(4, 3_000))
    assert not history.before_floor(fill(2, 2_000))
    assert history.before_floor(fill(0, 999))  # older than anything journaled
    # Only the newest ``limit`` are read: the floor follows them.
    assert journaled_fills(database, limit=2) == [row(5, 7, 2_500), row(3, 8, 3_000)]
    assert journaled_fills(tmp_path / "none.sqlite3", limit=2) == []


def test_a_journal_written_before_ids_were_qualified_restores_the_same_history(
    tmp_path: Path,
) -> None:
    """Fills journaled by an mm that knew only Hyperliquid hold its bare integer ids: they are
    read as Hyperliquid's qualified ids, so after the upgrade the venue's listing of the same
    fills is history, never forwarded (and journaled) a second time."""
    database = journal_with(tmp_path, [fill(5, 5_000)])
    old = {**attrs.asdict(fill(3, 3_000), value_serializer=_plain), "tid": 3, "oid": 7}
    conn = open_database(database)
    try:
        write_batch(conn, [Entry(0.9, "fill", old)])
    finally:
        conn.close()
    rows = journaled_fills(database, limit=100)
    assert rows == [row(3, 7, 3_000), row(5, 7, 5_000)]  # newest written first
    history = FillHistory(100)
    history.restore(JournaledFills.from_rows(rows))
    assert history.known(fill(3, 3_000))
    assert not history.claim(fill(3, 3_000))


def test_an_empty_journal_settles_nothing_and_the_baseline_does() -> None:
    history = FillHistory(10)
    history.restore(JournaledFills.from_rows([]))
    assert (history.baselined, history.floor_ms) == (False, None)
    assert history.baseline([fill(1, 1_000), fill(2, 2_000)]) == HistoryStart(2_000)
    assert history.baselined
    assert (history.floor_ms, history.mark_ms) == (2_000, 2_000)
    assert history.known(fill(2, 2_000))
    assert history.before_floor(fill(9, 1_999))
    assert not history.before_floor(fill(9, 2_000))
    empty = FillHistory(10)
    assert empty.baseline([]) == HistoryStart(None)
    assert empty.baselined
    assert empty.floor_ms is None


def test_the_journaled_history_start_outlives_a_run_that_journaled_no_fill() -> None:
    """A first run killed before it journaled a fill: at the restart the fills made since its
    start are not history (they were taken for history, and lost, when the restart took a
    baseline of its own)."""
    history = FillHistory(10)
    history.restore(JournaledFills.from_rows([], start=HistoryStart(2_000)))
    assert history.baselined  # no baseline of its own
    assert history.before_floor(fill(2, 2_000))  # the first run's history
    assert not history.before_floor(fill(3, 2_001))  # made since: forwarded
    assert history.mark_ms == 2_000
    nothing_then = FillHistory(10)
    nothing_then.restore(JournaledFills.from_rows([], start=HistoryStart(None)))
    assert nothing_then.baselined
    assert not nothing_then.before_floor(fill(1, 1))  # the account had no fill then
    # With fills journaled too, the start still says where the history ends: a fill missed
    # before the first one journaled is not history.
    both = FillHistory(10)
    both.restore(JournaledFills.from_rows([row(5, 7, 5_000)], start=HistoryStart(2_000)))
    assert not both.before_floor(fill(4, 3_000))
    assert both.known(fill(5, 5_000))
    assert both.mark_ms == 5_000


def test_a_truncated_journal_is_history_below_what_was_loaded() -> None:
    rows = [row(9, 7, 9_000), row(8, 7, 8_000)]  # the newest 2 of more
    truncated = JournaledFills.from_rows(rows, limit=2, start=HistoryStart(1_000))
    assert not truncated.complete
    history = FillHistory(10)
    history.restore(truncated)
    assert history.before_floor(fill(7, 7_999))  # journaled, but not loaded
    assert not history.before_floor(fill(10, 8_500))
    assert JournaledFills.from_rows(rows, limit=3).complete


def test_claims_release_and_capacity() -> None:
    history = FillHistory(3)
    assert history.claim(fill(1, 1))
    assert not history.claim(fill(1, 1))
    history.release(fill(1, 1))  # a cancelled hand-off: it may be forwarded again
    assert history.claim(fill(1, 1))
    for tid in (2, 3, 4):
        history.claim(fill(tid, tid))
    assert len(history) == 3
    assert not history.known(fill(1, 1))  # the oldest by venue time is forgotten first
    assert history.known(fill(4, 4))
    # A fill recovered late is old: it goes before the newer ones claimed before it.
    history.claim(fill(0, 3_000))
    history.claim(fill(9, 2))  # older than every fill known: forgotten at once
    assert not history.known(fill(9, 2))
    assert {f.tid for f in (fill(3, 3), fill(4, 4), fill(0, 3_000)) if history.known(f)} == {
        hl_tid(3),
        hl_tid(4),
        hl_tid(0),
    }
    history.advance_mark(10)
    history.advance_mark(5)
    assert history.mark_ms == 10


def test_released_claims_do_not_pile_up() -> None:
    history = FillHistory(2)
    for tid in range(100):
        history.claim(fill(tid, tid))
        history.release(fill(tid, tid))
    assert len(history) == 0
    assert len(history._by_time) <= 2 * history.capacity + 1


_TRADE = st.tuples(st.just("trade"), st.integers(1, 30), st.booleans())
_LIST = st.tuples(st.just("list"), st.integers(0, 200), st.booleans())


@given(
    retained=st.integers(1, 40),
    steps=st.lists(st.one_of(_TRADE, _LIST), min_size=1, max_size=12),
)
def test_the_venues_listings_forward_each_fill_once(
    retained: int, steps: list[tuple[str, int, bool]]
) -> None:
    """The account trades (each fill coming live, or lost with the socket) and the venue lists
    its fills from some time on, reaching back only to its ``retained`` newest (a catch-up's
    resync, the snapshot of a resubscribe, audits), with a history that remembers as many:
    every fill is forwarded once and none is left out, however the listings overlap (with
    fewer remembered than a 10,000-fill catch-up, the snapshot after it forwarded it again)."""
    history = FillHistory(retained)
    account: list[Fill] = []
    forwarded: list[Fill] = []
    for kind, count, flag in steps:
        if kind == "trade":
            for _ in range(count):
                new = fill(len(account), 1_000 + len(account))
                account.append(new)
                if flag and history.claim(new):  # it came live
                    forwarded.append(new)
        else:
            start = count if flag else 0  # from a time, or all the venue keeps
            listing = account[max(start, len(account) - retained) :]
            for missed in missed_fills(history, listing, settled_ms=10**9):
                assert history.claim(missed)
                forwarded.append(missed)
    keys = [fill_key(f) for f in forwarded]
    assert len(keys) == len(set(keys))
    if steps[-1][0] == "list" and not steps[-1][2]:
        # A full listing last: every fill the venue still keeps has been forwarded.
        assert {fill_key(f) for f in account[-retained:]} <= set(keys)
    history.advance_mark(10)
    history.advance_mark(5)
    assert history.mark_ms == 10


def test_missed_fills_are_the_unknown_settled_ones_oldest_first() -> None:
    history = FillHistory(100)
    history.restore(JournaledFills.from_rows([row(2, 7, 2_000), row(1, 7, 1_000)]))
    listing = [fill(5, 5_000), fill(3, 1_500), fill(2, 2_000), fill(0, 900), fill(3, 1_500)]
    listing.append(fill(6, 6_001))
    missed = missed_fills(history, listing, settled_ms=6_000)
    assert [f.tid for f in missed] == [
        hl_tid(3),
        hl_tid(5),
    ]  # not 2 (journaled), 0 (history), 6 (too young)
    assert [f.tid for f in missed_fills(history, listing, settled_ms=7_000)] == [
        hl_tid(3),
        hl_tid(5),
        hl_tid(6),
    ]


@given(
    st.lists(st.tuples(st.integers(0, 30), st.integers(0, 2)), max_size=80),
    st.sets(st.integers(0, 30), max_size=10),
)
def test_each_fill_is_claimed_once_whoever_sees_it(
    sightings: list[tuple[int, int]], journaled: set[int]
) -> None:
    """The live stream, resyncs and audits see fills in any order, any number of times: each
    fill the journal lacks is claimed exactly once, and no journaled one ever is."""
    history = FillHistory(1_000)
    history.restore(JournaledFills.from_rows([row(tid, 7, 1_000 + tid) for tid in journaled]))
    claimed: list[FillKey] = []
    for tid, _source in sightings:
        seen = fill(tid, 1_000 + tid)
        if history.before_floor(seen):
            continue
        if history.claim(seen):
            claimed.append(fill_key(seen))
    assert len(claimed) == len(set(claimed))
    floor = min((1_000 + tid for tid in journaled), default=None)
    expected = {
        key(tid, 7)
        for tid, _ in sightings
        if tid not in journaled and (floor is None or 1_000 + tid >= floor)
    }
    assert set(claimed) == expected
