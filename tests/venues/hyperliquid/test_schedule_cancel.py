"""The venue's dead-man's switch volume gate in its own words: the refusal the simulator writes
and the adapter reads, its figures printed as the venue prints an f64."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mm.venues.hyperliquid.schedule_cancel import (
    REQUIRED_VOLUME_USD,
    VOLUME_REFUSAL_PREFIX,
    VolumeRefusal,
    format_usd,
    parse_volume_refusal,
    volume_refusal,
)

VOLUMES = st.floats(min_value=0.0, max_value=1e15, allow_nan=False, allow_infinity=False)


@pytest.mark.parametrize(
    ("traded", "text"),
    [  # as the venue printed them (a CCXT recording, other clients' tests, traders' logs)
        (0.0, "0"),
        (167.22, "167.22"),
        (373.47205, "373.47205"),
        (40988.83, "40988.83"),
        (129582.4, "129582.4"),
        (1_000_000.0, "1000000"),
        (251.93285000000003, "251.93285000000003"),  # a sum of fills, every digit it takes
    ],
)
def test_figures_are_printed_as_the_venue_prints_them(traded: float, text: str) -> None:
    assert format_usd(traded) == text


def test_the_recorded_refusal_is_recognised() -> None:
    recorded = (
        "Cannot set scheduled cancel time until enough volume traded. "
        "Required: $1000000. Traded: $373.47205."
    )
    assert volume_refusal(REQUIRED_VOLUME_USD, 373.47205) == recorded
    assert parse_volume_refusal(recorded) == VolumeRefusal(1_000_000.0, 373.47205)


@given(required=VOLUMES, traded=VOLUMES)
def test_a_refusal_reads_back_as_its_figures(required: float, traded: float) -> None:
    assert parse_volume_refusal(volume_refusal(required, traded)) == VolumeRefusal(required, traded)


@given(st.text())
def test_any_other_text_is_not_a_refusal(text: str) -> None:
    refusal = parse_volume_refusal(text)
    assert (refusal is not None) == (VOLUME_REFUSAL_PREFIX in text)


def test_a_refusal_worded_otherwise_is_still_one_with_the_volume_unknown() -> None:
    text = VOLUME_REFUSAL_PREFIX + " Required: 1M USDC."
    assert parse_volume_refusal(text) == VolumeRefusal(REQUIRED_VOLUME_USD, None)
    assert parse_volume_refusal("Too many scheduled cancel triggers today.") is None
