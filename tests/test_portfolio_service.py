"""The service's portfolio: fed every fill, it keeps positions, PnL and the balance of every
currency (the fee in its own), takes each fill once, and adopts the venue's positions."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mm.model import AccountState, Balance, Fill, Instrument, Position, Side
from mm.portfolio import Portfolio
from tests.ids import hl_oid, hl_tid

INSTRUMENTS = {
    "BTC": Instrument("sim", "BTC", "BTC", "USDC", Decimal(1), Decimal("0.001"), Decimal(0), 0.0),
    "HYPE/USDC": Instrument(
        "sim", "HYPE/USDC", "HYPE", "USDC", Decimal("0.001"), Decimal("0.01"), Decimal(0), 0.0
    ),
}


def fill(
    side: Side,
    px: float,
    sz: float,
    tid: int,
    *,
    coin: str = "BTC",
    fee: float = 0.0,
    fee_token: str = "USDC",
    time_ms: int = 2_000,
) -> Fill:
    return Fill(
        coin,
        side,
        px,
        sz,
        time_ms,
        hl_oid(1),
        hl_tid(tid),
        None,
        fee,
        fee_token,
        False,
        0.0,
        "",
        0.0,
        "0x0",
    )


def portfolio() -> Portfolio:
    return Portfolio(("BTC", "HYPE/USDC"), INSTRUMENTS.__getitem__)


fills = st.lists(
    st.tuples(
        st.sampled_from([Side.BUY, Side.SELL]),
        st.floats(min_value=1.0, max_value=1000.0),
        st.floats(min_value=0.001, max_value=10.0),
        st.integers(min_value=0, max_value=30),  # small: duplicates occur
        st.floats(min_value=-0.5, max_value=2.0),  # the fee (negative: a rebate)
    ),
    max_size=40,
)


@given(fills, st.floats(min_value=1.0, max_value=1000.0))
def test_balances_and_the_position_book_tell_one_story(
    raw: list[tuple[Side, float, float, int, float]], mark: float
) -> None:
    """Starting flat with fees in the quote: the base balance is the position, and the quote
    balance plus the base at the mark is the PnL net of fees (realized + unrealized - fees),
    two bookkeepings of the same fills; a duplicate moves neither."""
    book = portfolio()
    seen: set[int] = set()
    gross = 0.0
    for side, px, sz, tid, fee in raw:
        assert book.apply(fill(side, px, sz, tid, fee=fee)) == (tid not in seen)
        seen.add(tid)
        gross += px * sz + abs(fee)
    base, quote = book.balances.get("BTC"), book.balances.get("USDC")
    assert base == pytest.approx(book.position("BTC"), abs=1e-9)
    pnl = book.pnl({"BTC": mark})
    assert pnl["total"] == pytest.approx(pnl["realized"] + pnl["unrealized"] - pnl["fees"])
    assert quote + base * mark == pytest.approx(
        pnl["total"], rel=1e-9, abs=1e-9 * (gross + abs(base) * mark + 1.0)
    )


def test_a_spot_fill_moves_base_quote_and_the_fee_in_its_own_currency() -> None:
    book = portfolio()
    book.balances.seed("USDC", 1_000.0)
    assert book.apply(fill(Side.BUY, 20.0, 10.0, 1, coin="HYPE/USDC", fee=0.01, fee_token="HYPE"))
    assert book.balances.snapshot() == {"HYPE": pytest.approx(9.99), "USDC": 800.0}
    assert book.apply(fill(Side.SELL, 21.0, 5.0, 2, coin="HYPE/USDC", fee=0.021))
    assert book.balances.snapshot() == {
        "HYPE": pytest.approx(4.99),
        "USDC": pytest.approx(904.979),
    }
    assert not book.apply(fill(Side.SELL, 21.0, 5.0, 2, coin="HYPE/USDC", fee=0.021))
    assert book.balances.get("USDC") == pytest.approx(904.979)  # once only
    assert book.balances.get("ETH") == 0.0


def test_adopting_the_venues_positions_zeroes_the_flat_ones_and_skips_fills_in_them() -> None:
    book = portfolio()
    book.apply(fill(Side.BUY, 100.0, 1.0, 1, coin="HYPE/USDC", time_ms=500))
    venue = AccountState(
        1_000, 10_000.0, 0.0, 10_000.0, (Position("BTC", -0.5, 100.0, 0.0, None, 0.0, 1),)
    )
    book.adopt_venue_positions(venue)
    assert book.position("BTC") == -0.5
    assert book.positions.entry("BTC") == 100.0
    assert book.position("HYPE/USDC") == 0.0  # the venue lists none: flat
    assert not book.apply(fill(Side.SELL, 100.0, 0.5, 2, time_ms=900))  # in the venue's already
    assert book.position("BTC") == -0.5
    assert book.apply(fill(Side.BUY, 90.0, 0.5, 3, time_ms=1_100))
    assert book.position("BTC") == 0.0
    assert book.pnl({})["realized"] == pytest.approx(5.0)


def test_adopting_a_spot_account_seeds_the_balances_the_fills_then_move() -> None:
    book = portfolio()
    spot = AccountState(
        1_000,
        2_000.0,
        0.0,
        2_000.0,
        (),
        (Balance("USDC", 2_000.0, 1_900.0, 100.0), Balance("HYPE", 3.0, 3.0, 0.0)),
    )
    assert spot.of_balances
    assert not AccountState(1_000, 0.0, 0.0, 0.0, ()).of_balances  # a venue of positions
    book.adopt_venue_positions(spot)
    assert book.balances.snapshot() == {"HYPE": 3.0, "USDC": 2_000.0}  # totals, holds included
    assert book.apply(fill(Side.BUY, 20.0, 1.0, 1, coin="HYPE/USDC", fee=0.02, time_ms=1_100))
    assert book.balances.get("HYPE") == 4.0
    assert book.balances.get("USDC") == pytest.approx(2_000.0 - 20.0 - 0.02)
    assert book.currencies() == {"BTC", "USDC", "HYPE"}
