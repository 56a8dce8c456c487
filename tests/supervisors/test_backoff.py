"""Pure backoff and intensity logic: ceilings, jitter bounds, validation, the restart window."""

from __future__ import annotations

import math
import random
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from supervisors import Backoff, Intensity, RestartWindow
from tests.supervisors.helpers import MaxRng, MinRng

initials = st.floats(min_value=1e-3, max_value=1e3)
multipliers = st.floats(min_value=1.0, max_value=10.0)
caps = st.floats(min_value=1e-3, max_value=1e4)
attempts = st.integers(min_value=0, max_value=200)


@st.composite
def backoffs(draw: st.DrawFn) -> Backoff:
    return Backoff(initial=draw(initials), multiplier=draw(multipliers), cap=draw(caps))


def test_defaults() -> None:
    assert Backoff() == Backoff(initial=0.5, multiplier=2.0, cap=30.0)
    assert Intensity() == Intensity(max_restarts=5, period=60.0)


def test_ceiling_grows_geometrically_up_to_the_cap() -> None:
    backoff = Backoff(initial=0.5, multiplier=2.0, cap=30.0)
    assert [backoff.ceiling(n) for n in range(9)] == [0.5, 1, 2, 4, 8, 16, 30, 30, 30]


def test_ceiling_is_capped_even_for_the_first_attempt() -> None:
    assert Backoff(initial=5.0, cap=1.0).ceiling(0) == 1.0


def test_multiplier_one_keeps_a_constant_ceiling() -> None:
    backoff = Backoff(initial=0.25, multiplier=1.0, cap=10.0)
    assert {backoff.ceiling(n) for n in range(50)} == {0.25}


@given(backoff=backoffs(), attempt=attempts)
def test_ceiling_is_initial_times_multiplier_power_capped(backoff: Backoff, attempt: int) -> None:
    expected = min(backoff.cap, backoff.initial * backoff.multiplier**attempt)
    assert math.isclose(backoff.ceiling(attempt), expected, rel_tol=1e-9)


@given(backoff=backoffs(), attempt=attempts)
def test_ceiling_is_positive_capped_and_never_shrinks(backoff: Backoff, attempt: int) -> None:
    ceiling = backoff.ceiling(attempt)
    assert 0 < ceiling <= backoff.cap
    assert backoff.ceiling(attempt + 1) >= ceiling


@given(backoff=backoffs(), attempt=attempts, rng=st.randoms(use_true_random=False))
def test_delay_is_within_zero_and_the_ceiling(
    backoff: Backoff, attempt: int, rng: random.Random
) -> None:
    for _ in range(5):
        assert 0.0 <= backoff.delay(attempt, rng) <= backoff.ceiling(attempt)


@given(backoff=backoffs(), attempt=attempts)
def test_delay_spans_the_whole_jitter_range(backoff: Backoff, attempt: int) -> None:
    assert backoff.delay(attempt, MinRng()) == 0.0
    assert backoff.delay(attempt, MaxRng()) == backoff.ceiling(attempt)


def test_seeded_delays_are_jittered_and_reproducible() -> None:
    backoff = Backoff(initial=1.0, multiplier=1.0, cap=1.0)
    first = [backoff.delay(0, rng) for rng in [random.Random(7)] * 20]
    again = [backoff.delay(0, rng) for rng in [random.Random(7)] * 20]
    assert first == again
    assert len(set(first)) == 20  # full jitter: not a constant delay


@pytest.mark.parametrize(
    "kwargs",
    [
        {"initial": 0.0},
        {"initial": -1.0},
        {"initial": math.nan},
        {"cap": 0.0},
        {"cap": -0.5},
        {"cap": math.nan},
        {"multiplier": 0.99},
        {"multiplier": 0.0},
        {"multiplier": -2.0},
        {"multiplier": math.nan},
    ],
)
def test_backoff_rejects_bad_parameters(kwargs: dict[str, Any]) -> None:
    with pytest.raises(ValueError, match=next(iter(kwargs))):
        Backoff(**kwargs)


@given(value=st.floats(max_value=0.0))
def test_backoff_rejects_any_non_positive_initial_or_cap(value: float) -> None:
    with pytest.raises(ValueError, match="initial"):
        Backoff(initial=value)
    with pytest.raises(ValueError, match="cap"):
        Backoff(cap=value)


def test_ceiling_rejects_negative_attempts() -> None:
    with pytest.raises(ValueError, match="attempt"):
        Backoff().ceiling(-1)
    with pytest.raises(ValueError, match="attempt"):
        Backoff().delay(-1, random.Random(0))


@pytest.mark.parametrize(
    "kwargs",
    [
        {"max_restarts": -1},
        {"period": 0.0},
        {"period": -1.0},
        {"period": math.nan},
    ],
)
def test_intensity_rejects_bad_parameters(kwargs: dict[str, Any]) -> None:
    with pytest.raises(ValueError, match=next(iter(kwargs))):
        Intensity(**kwargs)


def test_window_admits_max_restarts_then_refuses() -> None:
    window = RestartWindow(Intensity(max_restarts=3, period=10.0))
    assert [window.admit(t) for t in (0.0, 1.0, 2.0, 3.0, 9.0)] == [True, True, True, False, False]
    assert len(window) == 3  # refusals are not recorded


def test_window_forgets_restarts_older_than_the_period() -> None:
    window = RestartWindow(Intensity(max_restarts=2, period=10.0))
    assert window.admit(0.0)
    assert window.admit(5.0)
    assert not window.admit(9.9)
    assert window.admit(10.0)  # the restart at 0.0 is now a full period old
    assert len(window) == 2
    assert not window.admit(14.0)
    assert window.admit(100.0)
    assert len(window) == 1


def test_window_with_zero_restarts_never_admits() -> None:
    window = RestartWindow(Intensity(max_restarts=0, period=1.0))
    assert not any(window.admit(float(t)) for t in range(0, 100, 7))


@given(
    max_restarts=st.integers(min_value=0, max_value=5),
    period=st.integers(min_value=1, max_value=20),
    gaps=st.lists(st.integers(min_value=0, max_value=10), max_size=60),
)
def test_window_matches_a_sliding_window_model(
    max_restarts: int, period: int, gaps: list[int]
) -> None:
    window = RestartWindow(Intensity(max_restarts=max_restarts, period=float(period)))
    admitted: list[float] = []
    now = 0.0
    for gap in gaps:
        now += gap
        recent = [t for t in admitted if t > now - period]
        expected = len(recent) < max_restarts
        assert window.admit(now) is expected
        if expected:
            admitted.append(now)
        # at most max_restarts admitted restarts in any period ending now
        assert len([t for t in admitted if t > now - period]) <= max_restarts
        assert len(window) <= max_restarts
