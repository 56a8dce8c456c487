"""The health snapshot's pure parts: the feeds' state changes reduced into each feed's state
and reconnect count, and the figures a snapshot derives from its own instant."""

from __future__ import annotations

import pytest
import trio
from hypothesis import given
from hypothesis import strategies as st

from mm.health.board import FeedStates
from mm.health.snapshot import (
    AccountReading,
    FeedChange,
    FeedStatus,
    HealthSnapshot,
    with_feed_state,
)
from mm.model import AccountState

FEEDS = ("market", "user", "fills")
STATES = ("connecting", "healthy", "stale", "reconnecting", "failed")

changes = st.lists(
    st.tuples(st.sampled_from(FEEDS), st.sampled_from(STATES), st.floats(0, 1e6)), max_size=60
)


@given(changes)
def test_each_feed_ends_in_its_last_state_with_every_reconnect_counted(
    events: list[tuple[str, str, float]],
) -> None:
    feeds: dict[str, FeedStatus] = {}
    for feed, state, at in events:
        feeds = with_feed_state(feeds, FeedChange(feed, state, at))
    assert set(feeds) == {feed for feed, _, _ in events}  # a feed never heard of is absent
    for name, status in feeds.items():
        mine = [(state, at) for feed, state, at in events if feed == name]
        assert (status.state, status.since) == mine[-1]
        assert status.reconnects == sum(1 for state, _ in mine if state == "reconnecting")


@given(changes, changes)
def test_a_change_leaves_the_other_feeds_as_they_were(
    before: list[tuple[str, str, float]], after: list[tuple[str, str, float]]
) -> None:
    feeds: dict[str, FeedStatus] = {}
    for feed, state, at in before:
        feeds = with_feed_state(feeds, FeedChange(feed, state, at))
    for feed, state, at in after:
        kept = dict(feeds)
        changed = with_feed_state(feeds, FeedChange(feed, state, at))
        assert feeds == kept  # the mapping it was given is never changed
        assert {k: v for k, v in changed.items() if k != feed} == {
            k: v for k, v in feeds.items() if k != feed
        }
        feeds = changed


def test_trouble_is_reconnecting_stale_or_failed() -> None:
    assert [s for s in STATES if FeedChange("market", s, 0.0).trouble] == [
        "stale",
        "reconnecting",
        "failed",
    ]


def account(value: float, margin: float) -> AccountState:
    return AccountState(1, value, margin, value, ())


def test_ages_and_the_account_come_from_the_snapshots_own_instant() -> None:
    snapshot = HealthSnapshot(
        at=100.0,
        wall=1_000.5,
        book_ms={"BTC": 999_000, "ETH": 1_000_000},
        account=AccountReading(account(2_000.0, 500.0), requested_at=97.5),
    )
    assert snapshot.book_age_s("BTC") == pytest.approx(1.5)
    assert snapshot.book_age_s("ETH") == pytest.approx(0.5)
    assert snapshot.book_age_s("SOL") is None  # not followed
    assert snapshot.oldest_book_age_s() == pytest.approx(1.5)
    assert snapshot.account_age_s == pytest.approx(2.5)
    assert snapshot.account_value == 2_000.0
    assert snapshot.margin_usage == pytest.approx(0.25)


def test_nothing_is_invented_while_a_source_has_nothing() -> None:
    waiting = HealthSnapshot(at=5.0, wall=10.0, book_ms={"BTC": 9_000, "ETH": None})
    assert waiting.oldest_book_age_s() == 0.0  # not every book yet: the connection judges
    assert waiting.account_age_s is None
    assert waiting.account_value is None
    assert waiting.margin_usage is None
    unfunded = HealthSnapshot(at=5.0, wall=10.0, account=AccountReading(account(0.0, 0.0), 4.0))
    assert unfunded.account_value is None
    assert unfunded.margin_usage is None


async def test_every_reader_hears_every_change_in_order_when_its_task_runs(
    autojump_clock: trio.abc.Clock,
) -> None:
    """Risk's channel and autonomy's each carry every change, stamped when it happened, even
    those before the reader's task started; the states reflect them at once."""
    states = FeedStates()
    risk, autonomy = states.changes("risk"), states.changes("autonomy")
    states.on_feed_state("market", "healthy")
    await trio.sleep(1.0)
    states.on_feed_state("market", "reconnecting")
    states.on_feed_state("user", "reconnecting")
    assert {f: (s.state, s.reconnects) for f, s in states.statuses().items()} == {
        "market": ("reconnecting", 1),
        "user": ("reconnecting", 1),
    }
    now = trio.current_time()
    expected = [
        FeedChange("market", "healthy", now - 1.0),
        FeedChange("market", "reconnecting", now),
        FeedChange("user", "reconnecting", now),
    ]
    assert [risk.receive_nowait() for _ in expected] == expected
    assert [autonomy.receive_nowait() for _ in expected] == expected
    with pytest.raises(KeyError):
        states.changes("risk")  # one reader per channel
