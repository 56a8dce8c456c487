"""The [triarb] section: documented defaults, strict structuring, checks that name the key."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mm.settings import ConfigError, structure_section
from mm.strategies.triarb.config import MAX_SIGNAL_QUEUE, TriarbConfig
from mm.strategies.triarb.triangles import Terms


def parse(data: dict[str, Any]) -> TriarbConfig:
    return structure_section(data, TriarbConfig, "triarb")


def test_an_empty_section_gives_the_documented_defaults() -> None:
    config = parse({})
    assert config == TriarbConfig()
    assert config.primaries == ("USDT",)
    assert config.min_profit_bps == 5.0
    assert config.start_volume == 100.0
    assert config.max_book_age_ms == 500
    assert (config.slots, config.signal_queue) == (2, 1)
    assert config.fill_timeout_s == 5.0
    assert config.await_balance is False
    assert (config.leg_order, config.max_slippage_bps) == ("ioc", 10.0)
    assert config.unwind == "unwind"
    assert config.paper is True  # nothing real is sent unless asked
    assert config.share_primary is False


def test_a_full_section_is_read_as_given() -> None:
    config = parse(
        {
            "primaries": ["USDT", "USDC", "BTC"],
            "min_profit_bps": 12.5,
            "start_volume": 64.53,
            "max_book_age_ms": 250,
            "slots": 4,
            "signal_queue": 0,
            "fill_timeout_s": 2,
            "await_balance": True,
            "leg_order": "market",
            "max_slippage_bps": 0,
            "unwind": "hold",
            "paper": False,
            "share_primary": True,
        }
    )
    assert config.primaries == ("USDT", "USDC", "BTC")
    assert config.start_volume_decimal == Decimal("64.53")  # the shortest form, not the binary
    assert config.fill_timeout_s == 2.0
    assert (config.leg_order, config.unwind, config.paper) == ("market", "hold", False)


@pytest.mark.parametrize(
    ("key", "value", "message"),
    [
        ("primaries", [], "triarb.primaries: must name at least one"),
        ("primaries", ["USDT", " "], "triarb.primaries: currencies must not be empty"),
        ("primaries", ["USDT", "BTC", "USDT"], "triarb.primaries: each currency once"),
        ("min_profit_bps", -1.0, "triarb.min_profit_bps: must be >= 0"),
        ("min_profit_bps", float("nan"), "triarb.min_profit_bps: must be a finite number"),
        ("start_volume", 0.0, "triarb.start_volume: must be > 0"),
        ("start_volume", float("inf"), "triarb.start_volume: must be a finite number"),
        ("max_book_age_ms", 0, "triarb.max_book_age_ms: must be >= 1"),
        ("slots", 0, "triarb.slots: must be >= 1"),
        ("signal_queue", -1, "triarb.signal_queue: must be between 0 and 1024"),
        ("signal_queue", MAX_SIGNAL_QUEUE + 1, "triarb.signal_queue: must be between 0 and 1024"),
        ("fill_timeout_s", 0.0, "triarb.fill_timeout_s: must be > 0"),
        ("leg_order", "fok", "triarb.leg_order: must be one of ioc, market"),
        ("max_slippage_bps", -0.5, "triarb.max_slippage_bps: must be >= 0"),
        ("unwind", "pray", "triarb.unwind: must be one of unwind, hold"),
        ("paper", "yes", "triarb.paper: expected true or false"),
        ("slots", 2.5, "triarb.slots: expected an integer"),
        ("max_book_age_ms", True, "triarb.max_book_age_ms: expected an integer"),
    ],
)
def test_a_bad_value_names_its_key(key: str, value: Any, message: str) -> None:
    with pytest.raises(ConfigError) as raised:
        parse({key: value})
    assert len(raised.value.errors) == 1
    assert raised.value.errors[0].startswith(message), raised.value.errors


def test_an_unknown_key_is_an_error() -> None:
    with pytest.raises(ConfigError, match=r"triarb\.slot: unknown key"):
        parse({"slot": 3})


def test_every_problem_is_reported_at_once() -> None:
    with pytest.raises(ConfigError) as raised:
        parse({"slots": 0, "unwind": "pray"})
    assert sorted(error.split(":")[0] for error in raised.value.errors) == [
        "triarb.slots",
        "triarb.unwind",
    ]


def test_the_terms_carry_the_section_and_the_venue_s_fees() -> None:
    config = parse({"start_volume": 64.53, "max_book_age_ms": 300})
    fees = {"FLUX-USDT": Decimal("0.001")}
    increments = {"FLUX-USDT": Decimal("0.0001")}
    assert config.terms(fees, increments) == Terms(Decimal("64.53"), 300, fees, increments)
    assert config.terms() == Terms(Decimal("64.53"), 300)
    with pytest.raises(ValueError, match="fee rate"):
        config.terms({"FLUX-USDT": Decimal(1)})


@given(st.floats(min_value=1e-8, max_value=1e9, allow_nan=False, allow_infinity=False))
def test_the_start_volume_reads_as_its_shortest_decimal_form(volume: float) -> None:
    config = parse({"start_volume": volume})
    assert config.start_volume_decimal == Decimal(repr(volume))
    assert float(config.start_volume_decimal) == volume
