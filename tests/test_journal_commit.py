"""Journal.record_committed: it returns only once the entry is in the database, so an
acknowledgement built on it (an answered kill) survives a crash right after."""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from pathlib import Path

import pytest
import trio
from prometheus_client import CollectorRegistry

import mm.journal
from mm.journal import DATABASE_NAME, Entry, Journal, JournalConfig, read_events


def make_journal(path: Path) -> Journal:
    return Journal(path, JournalConfig(queue_size=100, batch_max=10), CollectorRegistry())


async def test_returns_once_the_entry_is_in_the_database(tmp_path: Path) -> None:
    path = tmp_path / DATABASE_NAME
    journal = make_journal(path)
    async with trio.open_nursery() as nursery:
        await nursery.start(journal.run)
        await journal.record("before", n=1)
        with trio.fail_after(5):
            await journal.record_committed("killswitch", tripped=True)
        # Read by another connection at once, as a restarted process would.
        assert [e.kind for e in read_events(path)] == ["before", "killswitch"]
        nursery.cancel_scope.cancel()


async def test_waits_while_writes_fail_and_returns_when_they_succeed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Real time: the writer works in a thread, which a virtual clock would jump past.
    path = tmp_path / DATABASE_NAME
    real = mm.journal.write_batch
    failing = [True]

    def locked(connection: sqlite3.Connection, entries: Sequence[Entry]) -> None:
        if failing[0]:
            raise sqlite3.OperationalError("database is locked")
        real(connection, entries)

    monkeypatch.setattr(mm.journal, "write_batch", locked)
    journal = make_journal(path)
    committed_at: list[float] = []
    async with trio.open_nursery() as nursery:
        await nursery.start(journal.run)

        async def record() -> None:
            await journal.record_committed("killswitch", tripped=True)
            committed_at.append(trio.current_time())

        nursery.start_soon(record)
        await trio.sleep(0.8)  # a few failed attempts (backoff from 0.25 s)
        assert committed_at == []  # queued, not committed: no acknowledgement yet
        failing[0] = False
        unlocked_at = trio.current_time()
        with trio.fail_after(10):
            while not committed_at:  # noqa: ASYNC110 - the recorder's own return is the signal
                await trio.sleep(0.01)
        nursery.cancel_scope.cancel()
    assert committed_at[0] >= unlocked_at
    assert [e.kind for e in read_events(path)] == ["killswitch"]
