"""Tests for position/PnL bookkeeping and fill markouts."""

from __future__ import annotations

import itertools
from decimal import Decimal

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from mm.model import AccountState, Balance, Fill, Instrument, Side, TradeId
from mm.portfolio import Markouts, Portfolio, PositionBook
from tests.ids import hl_oid, hl_tid
from tests.strategies.triarb.spot import instrument

_tids = itertools.count(1)


def mkfill(
    side: Side,
    px: float,
    sz: float,
    *,
    coin: str = "BTC",
    fee: float = 0.0,
    tid: int | None = None,
    oid: int = 7,
    time_ms: int = 0,
) -> Fill:
    return Fill(
        coin=coin,
        side=side,
        px=px,
        sz=sz,
        time_ms=time_ms,
        oid=hl_oid(oid),
        tid=hl_tid(next(_tids) if tid is None else tid),
        cloid=None,
        fee=fee,
        fee_token="USDC",
        crossed=False,
        start_position=0.0,
        direction="",
        closed_pnl=0.0,
        hash="0x0",
    )


B, S = Side.BUY, Side.SELL


# --- PositionBook -------------------------------------------------------------------------------


def test_open_increase_reduce_close_long() -> None:
    book = PositionBook()
    book.apply(mkfill(B, 100.0, 2.0))
    assert book.position("BTC") == 2.0
    assert book.entry("BTC") == 100.0
    book.apply(mkfill(B, 110.0, 2.0))  # increase: entry (200 + 220) / 4 = 105
    assert book.position("BTC") == 4.0
    assert book.entry("BTC") == pytest.approx(105.0)
    assert book.realized("BTC") == 0.0
    book.apply(mkfill(S, 120.0, 1.0))  # reduce: (120 - 105) * 1 = 15
    assert book.position("BTC") == 3.0
    assert book.entry("BTC") == pytest.approx(105.0)
    assert book.realized("BTC") == pytest.approx(15.0)
    book.apply(mkfill(S, 100.0, 3.0))  # close: (100 - 105) * 3 = -15
    assert book.position("BTC") == 0.0
    assert book.entry("BTC") == 0.0
    assert book.realized("BTC") == pytest.approx(0.0)


def test_open_increase_reduce_close_short() -> None:
    book = PositionBook()
    book.apply(mkfill(S, 50.0, 1.0))
    book.apply(mkfill(S, 56.0, 2.0))  # entry (50 + 112) / 3 = 54
    assert book.position("BTC") == -3.0
    assert book.entry("BTC") == pytest.approx(54.0)
    book.apply(mkfill(B, 50.0, 2.0))  # reduce short: (50 - 54) * 2 * -1 = 8
    assert book.position("BTC") == -1.0
    assert book.realized("BTC") == pytest.approx(8.0)
    book.apply(mkfill(B, 60.0, 1.0))  # close: (60 - 54) * 1 * -1 = -6
    assert book.position("BTC") == 0.0
    assert book.realized("BTC") == pytest.approx(2.0)


def test_flip_long_to_short() -> None:
    book = PositionBook()
    book.apply(mkfill(B, 100.0, 1.0))
    book.apply(mkfill(S, 110.0, 3.0))  # close 1 at +10, open -2 @ 110
    assert book.position("BTC") == -2.0
    assert book.entry("BTC") == 110.0
    assert book.realized("BTC") == pytest.approx(10.0)
    assert book.unrealized("BTC", 105.0) == pytest.approx(10.0)  # (105 - 110) * -2


def test_flip_short_to_long() -> None:
    book = PositionBook()
    book.apply(mkfill(S, 100.0, 2.0))
    book.apply(mkfill(B, 90.0, 5.0))  # close 2: (90 - 100) * 2 * -1 = 20; open +3 @ 90
    assert book.position("BTC") == 3.0
    assert book.entry("BTC") == 90.0
    assert book.realized("BTC") == pytest.approx(20.0)
    assert book.unrealized("BTC", 80.0) == pytest.approx(-30.0)


def test_fees_rebates_volume_counters_and_snapshot() -> None:
    book = PositionBook()
    book.apply(mkfill(B, 100.0, 2.0, fee=0.5))
    book.apply(mkfill(S, 110.0, 1.0, fee=-0.1))  # maker rebate
    book.apply(mkfill(B, 10.0, 3.0, coin="ETH", fee=0.2))
    snap = book.snapshot({"BTC": 120.0})
    btc = snap["BTC"]
    assert btc["position"] == 1.0
    assert btc["entry"] == 100.0
    assert btc["realized"] == pytest.approx(10.0)
    assert btc["unrealized"] == pytest.approx(20.0)
    assert btc["fees"] == pytest.approx(0.4)
    assert btc["volume"] == pytest.approx(310.0)
    assert btc["total"] == pytest.approx(10.0 + 20.0 - 0.4)
    assert (btc["fills_buy"], btc["fills_sell"]) == (1, 1)
    eth = snap["ETH"]
    assert eth["mark"] is None
    assert eth["unrealized"] == 0.0
    assert eth["total"] == pytest.approx(-0.2)
    assert (eth["fills_buy"], eth["fills_sell"]) == (1, 0)
    assert book.symbols() == ["BTC", "ETH"]


def test_duplicate_fill_ignored() -> None:
    book = PositionBook()
    f = mkfill(B, 100.0, 1.0, fee=0.1, tid=42, oid=9)
    assert book.apply(f)
    before = book.snapshot({"BTC": 101.0})
    assert not book.apply(f)
    assert book.snapshot({"BTC": 101.0}) == before
    assert book.has_applied(hl_tid(42), hl_oid(9))
    # same tid with a different oid (the other side of a self-cross) is a distinct fill
    assert book.apply(mkfill(B, 100.0, 1.0, tid=42, oid=10))
    assert book.position("BTC") == 2.0


def test_fill_keys_remembered_are_bounded_and_a_recent_replay_is_refused() -> None:
    book = PositionBook(max_keys=50)
    fills = [mkfill(B, 100.0, 1.0, tid=tid) for tid in range(500)]
    assert all(book.apply(f) for f in fills)
    assert book.remembered == 50
    assert not book.apply(fills[-1])
    assert book.position("BTC") == 500.0
    assert not book.has_applied(hl_tid(0), hl_oid(7))  # the oldest, forgotten
    assert book.heard_trades() is None  # (it can no longer say which fills it heard)


def test_trades_heard_are_every_fill_given_a_repeat_and_one_from_before_startup_included() -> None:
    book = PositionBook()
    book.seed("BTC", 1.0, 100.0, as_of_ms=1_000)
    book.apply(
        mkfill(B, 100.0, 1.0, tid=1, time_ms=500)
    )  # (already in the seed: heard all the same)
    book.apply(mkfill(B, 100.0, 1.0, tid=2, time_ms=2_000))
    book.apply(mkfill(B, 100.0, 1.0, tid=2, time_ms=2_000))
    assert book.heard_trades() == frozenset({hl_tid(1), hl_tid(2)})


def test_unrealized_against_marks() -> None:
    book = PositionBook()
    assert book.unrealized("BTC", 100.0) == 0.0
    book.apply(mkfill(B, 100.0, 0.5))
    assert book.unrealized("BTC", 104.0) == pytest.approx(2.0)
    assert book.unrealized("BTC", 96.0) == pytest.approx(-2.0)


def test_dust_snaps_flat() -> None:
    book = PositionBook()
    book.apply(mkfill(B, 100.0, 0.3))
    book.apply(mkfill(S, 100.0, 0.1))
    book.apply(mkfill(S, 100.0, 0.2))
    assert book.position("BTC") == 0.0
    assert book.entry("BTC") == 0.0


_fill_st = st.tuples(
    st.sampled_from([B, S]),
    st.floats(min_value=1.0, max_value=1000.0),
    st.floats(min_value=0.001, max_value=10.0),
    st.integers(min_value=0, max_value=30),  # tid: small range so duplicates occur
)


@given(st.lists(_fill_st, max_size=40), st.floats(min_value=1.0, max_value=1000.0))
def test_property_position_and_cashflow_pnl(
    raw: list[tuple[Side, float, float, int]], mark: float
) -> None:
    book = PositionBook()
    seen: set[int] = set()
    pos = 0.0
    cash = 0.0
    gross = 0.0
    for side, px, sz, tid in raw:
        applied = book.apply(mkfill(side, px, sz, tid=tid, oid=1))
        assert applied == (tid not in seen)
        if applied:
            seen.add(tid)
            pos += side.sign * sz
            cash -= side.sign * px * sz
            gross += px * sz
    assert book.position("BTC") == pytest.approx(pos, abs=1e-9)
    pnl = book.realized("BTC") + book.unrealized("BTC", mark)
    expected = cash + pos * mark
    assert pnl == pytest.approx(expected, rel=1e-9, abs=1e-9 * (gross + abs(pos) * mark + 1.0))


# --- Markouts -----------------------------------------------------------------------------------


def test_markouts_buy_and_sell_at_each_horizon() -> None:
    m = Markouts()
    m.on_fill(mkfill(B, 100.0, 1.0, time_ms=1_000))
    m.record("BTC", S, 200.0, 1_000)
    assert m.on_mid("BTC", 150.0, 1_999) == 0  # nothing due yet
    # 1 s due at 2000: buy (101 - 100) / 100 = +100 bps; sell -(101 - 200) / 200 = +4950 bps
    assert m.on_mid("BTC", 101.0, 2_000) == 2
    assert m.mean_bps("BTC", 1_000) == pytest.approx((100.0 + 4950.0) / 2)
    assert m.count("BTC", 5_000) == 0
    # 5 s due at 6000; first mid at/after is at 6500: buy (99-100)/100 = -100, sell (200-99)/200
    assert m.on_mid("BTC", 99.0, 5_999) == 0
    assert m.on_mid("BTC", 99.0, 6_500) == 2
    s = m.summary()["symbols"]["BTC"]["5s"]
    assert s["count"] == 2
    assert s["last_bps"] == pytest.approx([-100.0, 5050.0])
    # 30 s due at 31000: buy (100.5-100)/100 = +50, sell -(100.5-200)/200 = +4975
    assert m.on_mid("BTC", 100.5, 31_000) == 2
    assert m.summary()["symbols"]["BTC"]["30s"]["last_bps"] == pytest.approx([50.0, 4975.0])
    assert m.pending == 0
    assert m.on_mid("BTC", 1.0, 99_000) == 0


def test_markouts_only_when_due_and_per_symbol() -> None:
    m = Markouts(horizons_ms=(1_000, 5_000))
    m.record("ETH", B, 10.0, 0)
    assert m.on_mid("BTC", 1.0, 10_000) == 0  # other symbol's mid ignored
    assert m.pending == 1
    # one late mid evaluates every horizon already due, using that mid
    assert m.on_mid("ETH", 10.1, 7_000) == 2
    assert m.mean_bps("ETH", 1_000) == pytest.approx(100.0)
    assert m.mean_bps("ETH", 5_000) == pytest.approx(100.0)
    assert m.mean_bps("BTC", 1_000) is None


def test_markouts_running_average_and_last_n() -> None:
    m = Markouts(horizons_ms=(1_000,), last_n=2)
    for i, mid in enumerate([101.0, 102.0, 103.0]):
        m.record("BTC", B, 100.0, i * 10_000)
        m.on_mid("BTC", mid, i * 10_000 + 1_000)
    s = m.summary()["symbols"]["BTC"]["1s"]
    assert s["count"] == 3
    assert s["mean_bps"] == pytest.approx(200.0)
    assert s["last_bps"] == pytest.approx([200.0, 300.0])


def test_markouts_bounded_pending() -> None:
    m = Markouts(horizons_ms=(1_000,), max_pending=3)
    for t in range(5):
        m.record("BTC", B, 100.0, t)
    assert m.pending == 3
    assert m.dropped == 2
    assert m.on_mid("BTC", 100.0, 10_000) == 3
    summ = m.summary()
    assert summ["dropped"] == 2
    assert summ["recorded"] == 5
    assert summ["pending"] == 0
    assert summ["horizons_ms"] == [1_000]


def test_markouts_rejects_bad_config() -> None:
    with pytest.raises(ValueError, match="horizons"):
        Markouts(horizons_ms=())
    with pytest.raises(ValueError, match="max_pending"):
        Markouts(max_pending=0)


def test_a_seeded_position_ignores_fills_it_already_contains() -> None:
    book = PositionBook()
    book.seed("BTC", 0.5, 100.0, as_of_ms=1_000)
    older = Fill(
        "BTC",
        Side.BUY,
        100.0,
        0.5,
        900,
        hl_oid(1),
        hl_tid(1),
        None,
        0.0,
        "USDC",
        True,
        0.0,
        "",
        0.0,
        "",
    )
    newer = Fill(
        "BTC",
        Side.BUY,
        110.0,
        0.5,
        1_100,
        hl_oid(2),
        hl_tid(2),
        None,
        0.0,
        "USDC",
        True,
        0.5,
        "",
        0.0,
        "",
    )
    assert book.apply(older) is False  # already in the venue's position
    assert book.position("BTC") == 0.5
    assert book.apply(newer) is True
    assert book.position("BTC") == 1.0
    assert book.entry("BTC") == 105.0


def test_the_listener_hears_each_markout_with_its_fill() -> None:
    """Each completed markout reaches the listener (the journal) with the fill's time and tid."""
    heard: list[tuple[str, int, float, int, TradeId | None]] = []
    m = Markouts((1_000, 5_000), listener=lambda *markout: heard.append(markout))
    m.on_fill(mkfill(Side.BUY, 100.0, 1.0, tid=42, time_ms=10_000))
    m.on_mid("BTC", 101.0, 10_999)
    assert heard == []
    m.on_mid("BTC", 101.0, 11_000)
    [(coin, horizon, bps, time_ms, tid)] = heard
    assert (coin, horizon, time_ms, tid) == ("BTC", 1_000, 10_000, hl_tid(42))
    assert bps == pytest.approx(100.0)
    m.on_mid("BTC", 99.0, 15_000)
    assert heard[1][:2] == ("BTC", 5_000)
    assert heard[1][2] == pytest.approx(-100.0)
    m.on_mid("BTC", 99.0, 20_000)
    assert len(heard) == 2  # each horizon once


# --- exposure and marks on a spot account ------------------------------------------------------


def _triangle_portfolio() -> Portfolio:
    """A spot account of BTC-USDT, ETH-USDT and ETH-BTC, started from the venue's balances."""
    pairs = {symbol: instrument(symbol) for symbol in ("BTC-USDT", "ETH-USDT", "ETH-BTC")}
    portfolio = Portfolio(pairs, pairs.__getitem__)
    portfolio.adopt_venue_positions(
        AccountState(
            0,
            100_000.0,
            0.0,
            100_000.0,
            (),
            (
                Balance("USDT", 100_000.0, 100_000.0, 0.0),
                Balance("BTC", 1.0, 1.0, 0.0),
                Balance("ETH", 10.0, 10.0, 0.0),
            ),
        )
    )
    return portfolio


MARKS = {"BTC-USDT": 60_000.0, "ETH-USDT": 3_000.0, "ETH-BTC": 0.05}


def test_a_triangle_leaves_no_exposure_though_each_pair_holds_a_position() -> None:
    portfolio = _triangle_portfolio()
    legs = (
        ("ETH-USDT", B, 3_000.0, 0.0333),  # USDT -> ETH
        ("ETH-BTC", S, 0.05, 0.0333),  # ETH -> BTC
        ("BTC-USDT", S, 60_000.0, 0.001665),  # BTC -> USDT
    )
    for n, (coin, side, px, sz) in enumerate(legs):
        assert portfolio.apply(mkfill(side, px, sz, coin=coin, tid=10_000 + n, time_ms=1))
    assert [portfolio.position(coin) for coin, *_ in legs] == [0.0333, -0.0333, -0.001665]
    assert portfolio.exposure("ETH-USDT") == pytest.approx(0.0)  # ETH in, then out
    assert portfolio.exposure("ETH-BTC") == pytest.approx(0.0)  # the same ETH
    assert portfolio.exposure("BTC-USDT") == pytest.approx(0.0)  # BTC in, then out


def test_a_half_done_triangle_is_exposed_in_what_it_holds() -> None:
    portfolio = _triangle_portfolio()
    assert portfolio.apply(mkfill(B, 3_000.0, 0.0333, coin="ETH-USDT", tid=20_000, time_ms=1))
    assert portfolio.exposure("ETH-USDT") == pytest.approx(0.0333)
    assert portfolio.exposure("ETH-BTC") == pytest.approx(0.0333)  # its base is ETH too
    assert portfolio.exposure("BTC-USDT") == pytest.approx(0.0)
    # ETH valued through ETH-USDT; through ETH-BTC and BTC-USDT when ETH-USDT has no mark.
    assert portfolio.exposure_mark("ETH-BTC", MARKS) == pytest.approx(3_000.0)
    no_eth_usdt = {"BTC-USDT": 60_000.0, "ETH-BTC": 0.05}
    assert portfolio.exposure_mark("ETH-USDT", no_eth_usdt) == pytest.approx(3_000.0)


def test_currencies_are_valued_in_the_account_currency() -> None:
    portfolio = _triangle_portfolio()
    assert portfolio.currency_mark("USDT", MARKS) == 1.0  # only ever a quote
    assert portfolio.currency_mark("BTC", MARKS) == 60_000.0
    assert portfolio.currency_mark("ETH", {"ETH-BTC": 0.05}) is None  # no BTC mark yet
    assert portfolio.currency_mark("SOL", MARKS) is None  # not traded
    assert portfolio.quote_mark("ETH-BTC", MARKS) == 60_000.0  # its PnL is in BTC
    assert portfolio.quote_mark("ETH-USDT", MARKS) == 1.0
    assert portfolio.quote_mark("ETH-BTC", {}) == 1.0  # no mark says: as it is
    assert [portfolio.quote(coin) for coin in ("ETH-BTC", "BTC-USDT")] == ["BTC", "USDT"]
    # USDT is 1 whatever the marks; BTC is valued from them; ETH is never a quote here.
    assert [portfolio.is_value_unit(c) for c in ("USDT", "BTC", "ETH")] == [True, False, False]


def test_a_value_unit_is_known_only_once_every_pair_is_read() -> None:
    pairs = {symbol: instrument(symbol) for symbol in ("ETH-BTC", "BTC-USDT")}
    listed: dict[str, Instrument] = {"ETH-BTC": pairs["ETH-BTC"]}  # BTC-USDT not read yet
    portfolio = Portfolio(pairs, listed.__getitem__)
    assert portfolio.is_value_unit("BTC") is False  # only a quote so far, but not known
    listed.update(pairs)
    assert portfolio.is_value_unit("BTC") is False
    assert portfolio.is_value_unit("USDT") is True


def test_a_venue_of_positions_is_exposed_in_its_positions() -> None:
    perp = Instrument(
        "hyperliquid", "BTC", "BTC", "USDC", Decimal("1"), Decimal("0.001"), Decimal(0), 10
    )
    portfolio = Portfolio(("BTC",), lambda _: perp)
    assert portfolio.apply(mkfill(B, 60_000.0, 0.5, tid=30_000))
    assert portfolio.exposure("BTC") == 0.5
    assert portfolio.exposure_mark("BTC", {"BTC": 60_000.0}) == 60_000.0
    assert portfolio.quote_mark("BTC", {"BTC": 60_000.0}) == 1.0


def test_exposure_falls_back_to_the_position_while_the_venue_is_down() -> None:
    def down(symbol: str) -> Instrument:
        raise RuntimeError("the venue client is not up")

    portfolio = Portfolio(("BTC-USDT",), down)
    portfolio.balances.seed("USDT", 1_000.0)
    assert portfolio.exposure("BTC-USDT") == 0.0
    assert portfolio.quote_mark("BTC-USDT", MARKS) == 1.0


class _ScanningMarkouts:
    """The markouts as they were computed before the due-time heap: every pending fill of the
    symbol looked at on each mid. The reference the heap must agree with, call for call."""

    def __init__(self, horizons_ms: tuple[int, ...], max_pending: int) -> None:
        self.horizons_ms = tuple(sorted(set(horizons_ms)))
        self.max_pending = max_pending
        self.pending: dict[int, tuple[str, int, float, int, list[bool]]] = {}
        self.seq = 0
        self.heard: list[tuple[str, int, float, int]] = []

    def record(self, coin: str, side: Side, px: float, time_ms: int) -> None:
        self.pending[self.seq] = (coin, side.sign, px, time_ms, [False] * len(self.horizons_ms))
        self.seq += 1
        while len(self.pending) > self.max_pending:
            del self.pending[next(iter(self.pending))]

    def on_mid(self, coin: str, mid: float, now_ms: int) -> int:
        produced = 0
        for seq, (of, sign, px, time_ms, done) in list(self.pending.items()):
            if of != coin:
                continue
            for i, h in enumerate(self.horizons_ms):
                if not done[i] and time_ms + h <= now_ms:
                    done[i] = True
                    self.heard.append((coin, h, sign * (mid - px) / px * 1e4, time_ms))
                    produced += 1
            if all(done):
                del self.pending[seq]
        return produced


# (a fill?, coin, side, its price or the mid, its time or the mid's): a fill or a mid.
Step = tuple[bool, str, Side, float, int]
_markout_steps = st.lists(
    st.tuples(
        st.booleans(),
        st.sampled_from(("BTC", "ETH")),
        st.sampled_from((B, S)),
        st.floats(1.0, 1_000.0),
        st.integers(0, 40_000),
    ),
    max_size=80,
)


@given(
    horizons=st.lists(st.integers(0, 10_000), min_size=1, max_size=4),
    max_pending=st.integers(1, 12),
    steps=_markout_steps,
)
@example(  # a later fill due first: still heard after the earlier one
    horizons=[1_000, 5_000],
    max_pending=5,
    steps=[
        (True, "BTC", B, 100.0, 5_000),
        (True, "BTC", S, 100.0, 0),
        (False, "BTC", B, 101.0, 6_000),
    ],
)
@example(  # a dropped fill's horizons come up and are skipped
    horizons=[1_000],
    max_pending=1,
    steps=[
        (True, "BTC", B, 100.0, 0),
        (True, "BTC", B, 100.0, 10),
        (False, "BTC", B, 101.0, 2_000),
    ],
)
def test_markouts_due_heap_agrees_with_scanning_every_fill(
    horizons: list[int], max_pending: int, steps: list[Step]
) -> None:
    """A mid completes exactly the horizons the old scan of every pending fill completed, in
    the same order (fills oldest first, horizons in order), fills out of time order and fills
    dropped past ``max_pending`` included: the heap only spares the look at the rest."""
    heard: list[tuple[str, int, float, int]] = []
    m = Markouts(
        horizons, max_pending=max_pending, listener=lambda c, h, b, t, _: heard.append((c, h, b, t))
    )
    reference = _ScanningMarkouts(tuple(horizons), max_pending)
    for fill, coin, side, price, time_ms in steps:
        if fill:
            m.record(coin, side, price, time_ms)
            reference.record(coin, side, price, time_ms)
        else:
            assert m.on_mid(coin, price, time_ms) == reference.on_mid(coin, price, time_ms)
        assert m.pending == len(reference.pending)
    assert heard == reference.heard
