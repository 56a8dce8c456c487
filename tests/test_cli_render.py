"""What the operator reads: the kill, rearm and status texts the CLI renders from admin answers."""

from __future__ import annotations

from typing import Any

from mm.cli import EXIT_FAILURE, EXIT_OK, render_kill, render_rearm, render_status

SINCE = 1_800_000_000.0
ZERO = {
    "zero": True,
    "canceled": 6,
    "remaining": [],
    "seconds_to_zero": 0.21,
    "attempts": 1,
    "reads": 3,
    "seconds": 0.5,
}
REFUSED_BACKSTOP = {
    "armed": False,
    "detail": "not armed: the venue refused or did not answer: "
    "VenueRejected: Too many scheduled cancel triggers today.",
    "at": None,
}


def kill_answer(**changes: Any) -> dict[str, Any]:
    answer = {
        "tripped": True,
        "already_tripped": False,
        "reason": "manual",
        "tripped_for": "manual",
        "since": SINCE,
        "journal_committed": True,
        "cancel_sent": True,
        "cancel_all": ZERO,
        "backstop": {"armed": True, "detail": "armed 6s ahead", "at": SINCE + 6},
        "positions": {"BTC": 0.0, "ETH": -0.05},
    }
    return answer | changes


def test_a_kill_says_committed_canceled_backstop_and_positions() -> None:
    text, code = render_kill(200, kill_answer())
    assert code == EXIT_OK
    assert "journal: checkpoint committed" in text
    assert (
        "venue: cancel sent; 6 orders canceled, none open after 0.210s (1 cancel request)" in text
    )
    assert "backstop: dead-man's switch armed 6s ahead" in text
    assert "positions (re-read from the venue): BTC 0, ETH -0.05" in text


def test_a_kill_not_confirmed_exits_1_and_says_what_is_missing() -> None:
    left = ZERO | {
        "zero": False,
        "remaining": [{"coin": "BTC", "oid": 7}],
        "seconds_to_zero": None,
        "seconds": 10.0,
    }
    text, code = render_kill(200, kill_answer(journal_committed=False, cancel_all=left))
    assert code == EXIT_FAILURE
    assert "journal: checkpoint NOT confirmed committed" in text
    assert "STILL OPEN after 10.0s: BTC 7" in text
    text, code = render_kill(200, kill_answer(backstop=REFUSED_BACKSTOP))
    assert code == EXIT_OK  # the cancel does not depend on the backstop
    assert "backstop: NONE (not armed" in text
    assert "Too many scheduled cancel triggers today." in text


def test_a_second_kill_says_since_when_and_for_what() -> None:
    answer = kill_answer(
        already_tripped=True, tripped_for="max_drawdown", cancel_all=None, backstop=None
    )
    text, code = render_kill(200, answer)
    assert code == EXIT_OK
    assert text.startswith("kill switch already tripped since ")
    assert "for max_drawdown; this request is journaled" in text


def test_a_refused_rearm_names_the_monitor_and_its_values() -> None:
    answer = {
        "who": "alice",
        "why": "looks fine",
        "was_tripped": True,
        "rearmed": False,
        "refused": True,
        "forced": False,
        "blockers": [
            {
                "monitor": "drawdown",
                "reason": "drawdown 3.10% > 2.00%",
                "values": {"drawdown": 0.031, "limit": 0.02},
            }
        ],
        "mode": "halt",
    }
    text, code = render_rearm(409, answer)
    assert code == EXIT_FAILURE
    assert "drawdown (drawdown 3.10% > 2.00%): drawdown=0.031, limit=0.02" in text
    assert "mode unchanged (HALT)" in text
    forced = answer | {"rearmed": True, "refused": False, "forced": True, "mode": "normal"}
    text, code = render_rearm(200, forced)
    assert code == EXIT_OK
    assert "kill switch rearmed by alice (FORCED over: drawdown" in text
    assert text.endswith("mode: NORMAL")


def test_status_shows_a_trip_without_backstop() -> None:
    status = {
        "version": "0",
        "service": "mm",
        "pid": 1,
        "state": "running",
        "admin_url": "http://127.0.0.1:9400",
        "uptime_seconds": 10.0,
        "config_hash": "x",
        "healthy": True,
        "problems": [],
        "tree": {"name": "mm", "state": "running", "children": []},
        "killswitch": {
            "tripped": True,
            "reason": "manual",
            "values": {"reason": "drill"},
            "since": SINCE,
            "trips": 1,
            "last_cancel": ZERO,
            "backstop": REFUSED_BACKSTOP,
        },
    }
    text = render_status(status)
    assert "kill switch: TRIPPED: manual" in text
    assert "trips 1" in text
    assert "venue: 6 orders canceled, none open after 0.210s" in text
    assert "backstop: NONE (not armed: the venue refused" in text


def test_a_kill_that_left_orders_says_it_keeps_canceling() -> None:
    left = ZERO | {"zero": False, "remaining": [{"coin": "BTC", "oid": 7}], "seconds": 10.0}
    unavailable = {
        "armed": False,
        "detail": "not armed: the dead-man's switch is unavailable: the venue arms it only for "
        "an account that has traded $1,000,000 (traded $251.03)",
        "at": None,
    }
    text, code = render_kill(
        200, kill_answer(cancel_all=left, backstop=unavailable, cancel_retrying=True)
    )
    assert code == EXIT_FAILURE  # not at zero yet: not confirmed
    assert "STILL OPEN after 10.0s: BTC 7" in text
    assert "still canceling: the cancel-all runs again until the venue shows none" in text
    assert "backstop: NONE (not armed: the dead-man's switch is unavailable" in text


def test_status_says_whether_the_dead_mans_switch_is_available() -> None:
    status: dict[str, Any] = {
        "version": "0",
        "service": "mm",
        "pid": 1,
        "state": "running",
        "admin_url": "http://127.0.0.1:9400",
        "uptime_seconds": 10.0,
        "config_hash": "x",
        "healthy": True,
        "problems": [],
        "tree": {"name": "mm", "state": "running", "children": []},
        "deadman": {
            "state": "unavailable",
            "available": False,
            "detail": "the venue arms it only for an account that has traded $1,000,000 "
            "(traded $251.03)",
        },
    }
    text = render_status(status)
    assert (
        "dead-man's switch: UNAVAILABLE: the venue arms it only for an account that has "
        "traded $1,000,000 (traded $251.03); the kill switch retries its cancel-all" in text
    )
    status["deadman"] = {"state": "armed", "available": True, "detail": "armed 30s ahead"}
    assert "dead-man's switch: armed (armed 30s ahead)" in render_status(status)
    status["killswitch"] = {
        "tripped": True,
        "reason": "manual",
        "since": SINCE,
        "trips": 1,
        "last_cancel": ZERO,
        "cancel_rounds": 3,
        "cancel_retrying": True,
    }
    text = render_status(status)
    assert (
        "venue: 6 orders canceled, none open after 0.210s (1 cancel request) (cancel-all 3)" in text
    )
    assert "still canceling: the cancel-all runs again until none is left" in text
