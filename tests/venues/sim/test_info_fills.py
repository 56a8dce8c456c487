"""``userFills`` and ``userFillsByTime`` answer as they did before they were made cheaper.

The reference functions are the handlers as they were: every fill of the user put in the wire's
shape, newest first, then filtered by time and cut to a page. The handlers now shape only the
fills they answer with; on any history (times in any order, repeated, beyond a page) and any
window, both must give the same answer, entry for entry.
"""

from __future__ import annotations

from collections import deque
from typing import Any

import attrs
from hypothesis import given, settings
from hypothesis import strategies as st

from mm.venues.sim.assets import AssetSpec
from mm.venues.sim.events import UserFill
from mm.venues.sim.hyperliquid import info, wire

USER = "0x" + "ab" * 20
SPECS = (AssetSpec(0, "BTC", 5), AssetSpec(1, "ETH", 4))


@attrs.define
class _Engine:
    fills: dict[str, deque[UserFill]]


@attrs.define
class _Venue:
    """What the two handlers read of a venue: its engine's fills and the asset specs."""

    engine: _Engine
    specs: tuple[AssetSpec, ...] = SPECS


def _reference_fills(venue: Any, user: str) -> list[dict[str, Any]]:
    fills = venue.engine.fills.get(user, ())
    return [wire.user_fill(f, venue.specs[f.asset]) for f in reversed(fills)]


def reference_user_fills(venue: Any, user: str) -> list[dict[str, Any]]:
    return _reference_fills(venue, user)[:2000]


def reference_user_fills_by_time(
    venue: Any, user: str, start: int, end: int | None
) -> list[dict[str, Any]]:
    fills = [
        fill
        for fill in _reference_fills(venue, user)
        if fill["time"] >= start and (end is None or fill["time"] <= end)
    ]
    return list(reversed(fills))[:2000]


def _fill(tid: int, time: int, asset: int, cloid: bool) -> UserFill:
    return UserFill(
        user=USER,
        asset=asset,
        is_buy=tid % 2 == 0,
        px=1_000 + tid,
        sz=1 + tid % 7,
        time=time,
        start_position=tid % 5 - 2,
        direction="Open Long",
        closed_pnl=tid / 3,
        fee=tid / 7,
        oid=10_000 + tid,
        tid=tid,
        crossed=tid % 3 == 0,
        cloid=f"0x{tid:032x}" if cloid else None,
    )


def _history(rows: list[tuple[int, int, bool]]) -> list[UserFill]:
    return [_fill(tid, time, asset, cloid) for tid, (time, asset, cloid) in enumerate(rows)]


histories = st.lists(
    st.tuples(st.integers(0, 50), st.integers(0, 1), st.booleans()), max_size=60
).map(_history)


@settings(max_examples=300, deadline=None)
@given(
    histories,
    st.integers(-5, 55),
    st.one_of(st.none(), st.integers(-5, 55)),
    st.booleans(),
)
def test_the_answers_are_the_reference_answers(
    history: list[UserFill], start: int, end: int | None, other_user: bool
) -> None:
    venue = _Venue(_Engine({USER: deque(history)}))
    asked = "0x" + "cd" * 20 if other_user else USER
    request: dict[str, Any] = {"user": asked, "startTime": start}
    if end is not None:
        request["endTime"] = end
    assert info.user_fills_by_time(venue, request) == reference_user_fills_by_time(  # type: ignore[arg-type]
        venue, asked, start, end
    )
    assert info.user_fills(venue, {"user": asked}) == reference_user_fills(venue, asked)  # type: ignore[arg-type]


def test_a_history_longer_than_a_page_is_answered_as_before() -> None:
    # (a page is 2000 fills: the newest of them for userFills, the oldest in the window for
    # userFillsByTime)
    history = [_fill(tid, tid // 3, tid % 2, tid % 4 == 0) for tid in range(4_500)]
    venue = _Venue(_Engine({USER: deque(history)}))
    for start, end in ((0, None), (100, None), (100, 1_200), (1_499, 1_499), (2_000, None)):
        request: dict[str, Any] = {"user": USER, "startTime": start}
        if end is not None:
            request["endTime"] = end
        answer = info.user_fills_by_time(venue, request)  # type: ignore[arg-type]
        assert answer == reference_user_fills_by_time(venue, USER, start, end)
    newest = info.user_fills(venue, {"user": USER})  # type: ignore[arg-type]
    assert newest == reference_user_fills(venue, USER)
    assert len(newest) == info.FILLS_PAGE
    assert newest[0]["tid"] == 4_499
