"""The isolation rule: a slot claims a triangle only when no triangle in flight is the same,
shares a pair with it, or (unless shared primaries are configured) shares its primary."""

from __future__ import annotations

import itertools
from decimal import Decimal

import pytest
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule

from mm.model import Instrument, Side
from mm.strategies.triarb.claims import Claims, Conflict, Reason
from mm.strategies.triarb.legs import Leg, Triangle
from mm.strategies.triarb.triangles import discover


def buy(symbol: str) -> Leg:
    base, quote = symbol.split("-")
    return Leg(symbol, Side.BUY, quote, base)


def sell(symbol: str) -> Leg:
    base, quote = symbol.split("-")
    return Leg(symbol, Side.SELL, base, quote)


def refused(answer: object) -> Reason:
    """Why a claim was refused (it must have been)."""
    assert isinstance(answer, Conflict)
    return answer.reason


# USDT>BTC>ETH>USDT and the same cycle the other way round.
BTC_ETH = Triangle("USDT", (buy("BTC-USDT"), buy("ETH-BTC"), sell("ETH-USDT")))
ETH_BTC = Triangle("USDT", (buy("ETH-USDT"), sell("ETH-BTC"), sell("BTC-USDT")))
# Shares BTC-USDT with BTC_ETH, nothing else.
BTC_SOL = Triangle("USDT", (buy("BTC-USDT"), buy("SOL-BTC"), sell("SOL-USDT")))
# USDT-primary, pairs disjoint from BTC_ETH's.
XRP_ADA = Triangle("USDT", (buy("XRP-USDT"), buy("ADA-XRP"), sell("ADA-USDT")))
# USDC-primary, pairs disjoint from all the above.
USDC_LTC = Triangle("USDC", (buy("LTC-USDC"), buy("DOGE-LTC"), sell("DOGE-USDC")))
# BTC-primary, holding USDT on the way: its pairs are disjoint from XRP_ADA's.
BTC_USDT = Triangle("BTC", (buy("DOT-BTC"), sell("DOT-USDT"), buy("BTC-USDT")))


def test_the_hand_triangles_overlap_as_the_cases_say() -> None:
    assert set(BTC_ETH.symbols) == set(ETH_BTC.symbols)
    assert BTC_ETH != ETH_BTC
    assert set(BTC_ETH.symbols) & set(BTC_SOL.symbols) == {"BTC-USDT"}
    usdt = BTC_ETH.symbols + ETH_BTC.symbols + BTC_SOL.symbols + XRP_ADA.symbols
    assert set(USDC_LTC.symbols).isdisjoint(usdt)
    assert set(BTC_USDT.symbols).isdisjoint(XRP_ADA.symbols)
    assert "USDT" in BTC_USDT.currencies


def test_a_free_slot_claims_a_triangle_and_holds_it_until_released() -> None:
    claims = Claims(2)
    assert claims.busy() == {}
    assert claims.claim(1, BTC_ETH) is True
    assert claims.held(1) == BTC_ETH
    assert claims.held(0) is None
    assert claims.busy() == {1: BTC_ETH}
    assert claims.busy_count() == 1
    assert claims.release(1) == BTC_ETH
    assert claims.busy() == {}
    assert claims.busy_count() == 0
    assert claims.held(1) is None


def test_a_slot_holds_at_most_one_triangle() -> None:
    claims = Claims(2, share_primary=True)
    assert claims.claim(0, BTC_ETH) is True
    conflict = claims.claim(0, USDC_LTC)  # conflicts with nothing but the slot's own
    assert conflict == Conflict(Reason.SLOT_BUSY, 0, BTC_ETH, BTC_ETH.name)
    assert claims.busy() == {0: BTC_ETH}


def test_the_same_triangle_is_never_in_flight_twice() -> None:
    claims = Claims(3, share_primary=True)
    assert claims.claim(2, BTC_ETH) is True
    conflict = claims.claim(0, BTC_ETH)
    assert conflict == Conflict(Reason.SAME_TRIANGLE, 2, BTC_ETH, "USDT>BTC>ETH>USDT")
    assert not conflict
    assert str(conflict) == (
        "triangle already in flight: USDT>BTC>ETH>USDT (slot 2, USDT>BTC>ETH>USDT)"
    )


def test_triangles_sharing_a_pair_are_never_in_flight_together() -> None:
    claims = Claims(3, share_primary=True)
    assert claims.claim(0, BTC_ETH) is True
    # The same cycle the other way round is another triangle on the same pairs.
    assert claims.claim(1, ETH_BTC) == Conflict(Reason.SHARED_PAIR, 0, BTC_ETH, "ETH-USDT")
    # One pair in common is enough; the answer names the first shared in the claimed legs.
    assert claims.claim(1, BTC_SOL) == Conflict(Reason.SHARED_PAIR, 0, BTC_ETH, "BTC-USDT")
    assert claims.busy() == {0: BTC_ETH}


def test_triangles_on_one_primary_are_exclusive_unless_primaries_are_shared() -> None:
    exclusive = Claims(2)
    assert exclusive.claim(0, BTC_ETH) is True
    assert exclusive.claim(1, XRP_ADA) == Conflict(Reason.SHARED_PRIMARY, 0, BTC_ETH, "USDT")
    assert exclusive.claim(1, USDC_LTC) is True

    shared = Claims(2, share_primary=True)
    assert shared.claim(0, BTC_ETH) is True
    assert shared.claim(1, XRP_ADA) is True
    assert shared.busy() == {0: BTC_ETH, 1: XRP_ADA}


def test_the_primary_rule_compares_primaries_not_the_currencies_passed_through() -> None:
    claims = Claims(2)
    assert claims.claim(0, XRP_ADA) is True  # primary USDT
    assert claims.claim(1, BTC_USDT) is True  # primary BTC, holds USDT on the way


def test_the_rules_answer_in_order_and_name_the_lowest_conflicting_slot() -> None:
    claims = Claims(4)
    assert claims.claim(3, BTC_SOL) is True
    assert claims.claim(1, USDC_LTC) is True
    # BTC_ETH shares a pair with slot 3's and nothing with slot 1's.
    assert refused(claims.claim(1, BTC_ETH)) is Reason.SLOT_BUSY
    assert claims.claim(0, BTC_ETH) == Conflict(Reason.SHARED_PAIR, 3, BTC_SOL, "BTC-USDT")
    assert claims.claim(2, XRP_ADA) == Conflict(Reason.SHARED_PRIMARY, 3, BTC_SOL, "USDT")
    assert claims.release(3) == BTC_SOL
    assert claims.claim(2, XRP_ADA) is True
    assert claims.claim(0, BTC_ETH) == Conflict(Reason.SHARED_PRIMARY, 2, XRP_ADA, "USDT")


def test_conflict_is_the_claim_s_answer_without_changing_anything() -> None:
    claims = Claims(2)
    assert claims.conflict(0, BTC_ETH) is None
    assert claims.busy() == {}
    assert claims.claim(0, BTC_ETH) is True
    assert claims.conflict(1, ETH_BTC) == claims.claim(1, ETH_BTC)
    assert claims.busy() == {0: BTC_ETH}


def test_a_released_slot_claims_again_and_releasing_a_free_slot_is_harmless() -> None:
    claims = Claims(2)
    assert claims.release(0) is None
    assert claims.claim(0, BTC_ETH) is True
    assert refused(claims.claim(1, ETH_BTC)) is Reason.SHARED_PAIR
    assert claims.release(0) == BTC_ETH
    assert claims.release(0) is None
    assert claims.claim(1, ETH_BTC) is True
    assert refused(claims.claim(0, BTC_ETH)) is Reason.SHARED_PAIR
    assert claims.release(1) == ETH_BTC
    assert claims.claim(0, BTC_ETH) is True


def test_slots_are_numbered_from_zero_and_there_is_at_least_one() -> None:
    with pytest.raises(ValueError, match="at least one slot"):
        Claims(0)
    claims = Claims(2)
    for slot in (-1, 2):
        with pytest.raises(ValueError, match="no slot"):
            claims.claim(slot, BTC_ETH)
        with pytest.raises(ValueError, match="no slot"):
            claims.release(slot)
        with pytest.raises(ValueError, match="no slot"):
            claims.held(slot)
    assert repr(Claims(2)) == "Claims(slots=2, share_primary=False, {})"


# --- random claims and releases from several slots -----------------------------------------------


def _instrument(symbol: str) -> Instrument:
    base, quote = symbol.split("-")
    one = Decimal(1)
    return Instrument("kucoin", symbol, base, quote, one, one, one, 1.0)


# A small market where triangles overlap in every way: three primaries, pairs shared by many.
_SYMBOLS = [
    "BTC-USDT",
    "ETH-USDT",
    "SOL-USDT",
    "XRP-USDT",
    "ETH-BTC",
    "SOL-BTC",
    "XRP-BTC",
    "SOL-ETH",
    "BTC-USDC",
    "ETH-USDC",
    "SOL-USDC",
    "USDC-USDT",
    "XRP-ETH",
]
POOL = discover(map(_instrument, _SYMBOLS), ("USDT", "USDC", "BTC"))


def test_the_pool_holds_all_kinds_of_overlap() -> None:
    kinds = set()
    for one, other in itertools.combinations(POOL, 2):
        shared = len(set(one.symbols) & set(other.symbols))
        kinds.add((shared, one.primary == other.primary))
    # None, one or all three pairs in common (two shared pairs name all three currencies, so
    # the third pair too), each on one primary and on two.
    assert kinds == {(shared, same) for shared in (0, 1, 3) for same in (True, False)}


class ClaimsMachine(RuleBasedStateMachine):
    """Claims and releases from up to four slots, against a table kept beside it: a claim is
    granted exactly when the rule allows it, and what is in flight always obeys the rule."""

    share_primary = False

    def __init__(self) -> None:
        super().__init__()
        self.claims = Claims(1)
        self.model: dict[int, Triangle] = {}

    @initialize(slots=st.integers(2, 4))
    def start(self, slots: int) -> None:
        self.claims = Claims(slots, share_primary=self.share_primary)

    def _allowed(self, slot: int, triangle: Triangle) -> bool:
        if slot in self.model:
            return False
        return all(
            held != triangle
            and not set(held.symbols) & set(triangle.symbols)
            and (self.share_primary or held.primary != triangle.primary)
            for held in self.model.values()
        )

    @rule(slot=st.integers(0, 3), triangle=st.sampled_from(POOL))
    def claim(self, slot: int, triangle: Triangle) -> None:
        slot %= self.claims.slots
        allowed = self._allowed(slot, triangle)
        answer = self.claims.claim(slot, triangle)
        assert (answer is True) == allowed, (slot, triangle.name, answer)
        if allowed:
            self.model[slot] = triangle
        else:
            assert isinstance(answer, Conflict)
            assert answer.slot in self.model
            assert self.model[answer.slot] == answer.held

    @rule(slot=st.integers(0, 3))
    def release(self, slot: int) -> None:
        slot %= self.claims.slots
        assert self.claims.release(slot) == self.model.pop(slot, None)

    @rule(slot=st.integers(0, 3))
    def release_and_claim_again(self, slot: int) -> None:
        slot %= self.claims.slots
        held = self.model.get(slot)
        self.claims.release(slot)
        if held is not None:  # nothing in flight conflicts with what the slot just held
            assert self.claims.claim(slot, held) is True

    @invariant()
    def in_flight_is_the_table(self) -> None:
        assert self.claims.busy() == dict(sorted(self.model.items()))

    @invariant()
    def no_pair_no_triangle_no_primary_twice(self) -> None:
        held = list(self.claims.busy().values())
        symbols = [symbol for triangle in held for symbol in triangle.symbols]
        assert len(symbols) == len(set(symbols))
        assert len(held) == len(set(held))
        if not self.share_primary:
            primaries = [triangle.primary for triangle in held]
            assert len(primaries) == len(set(primaries))


class SharedPrimaryMachine(ClaimsMachine):
    """The same, with primaries shared: only the pairs and the triangles stay exclusive."""

    share_primary = True

    @invariant()
    def primaries_do_not_limit_slots(self) -> None:
        # With shared primaries, a slot is refused only for a pair (or its own triangle).
        for slot in range(self.claims.slots):
            if slot not in self.model:
                for triangle in POOL[:10]:
                    conflict = self.claims.conflict(slot, triangle)
                    assert conflict is None or conflict.reason is not Reason.SHARED_PRIMARY


_SETTINGS = settings(max_examples=100, stateful_step_count=40, deadline=None)
ClaimsMachine.TestCase.settings = _SETTINGS
SharedPrimaryMachine.TestCase.settings = _SETTINGS
test_claims_machine = ClaimsMachine.TestCase
test_shared_primary_machine = SharedPrimaryMachine.TestCase
