"""A short campaign (issue 19) in ``make test``: each shipped config on its simulated venue, on
virtual time, through ``mm.simulation.campaign.simulate`` (what ``mm simulate`` runs): 20
seeds of 10 simulated minutes of market making, 8 of triangles, with the faults, regime,
shock, kill, stop or crash each seed draws, and every run invariant that applies checked on
what the run left (``mm.simulation.invariants``).

* ``config.triarb.toml`` trading triangles on the KuCoin face: no fill lost or counted twice,
  balances equal to the venue's, every open order at the venue known, every triangle reported
  in one of its four outcomes, the venue's balances moved by what the reports say, nothing
  sent while the kill switch was tripped, no trip without a cause;
* ``config.toml`` making markets on the Hyperliquid simulator: the same for fills, positions,
  orders and the kill switch, no quote resting or filling on stale data, no trip without a
  cause.

And the same runs catch deliberately broken builds: a fill listener that drops every tenth
fill, a trading subtree that goes on after the kill switch trips, a data gate that lets a
stale book through, an order auditor that fails on a venue's answer, a drawdown measured
against the PnL's peak (the kill switch that tripped by itself), a restart that forgets the
journal's kill switch after a crash, quotes left resting (and filling) on a stale book, a
flattener that takes the account for flat, a position book that takes every fill for a buy, a
balance book that leaves out the fees, a slot that reports only the triangles that filled,
triangle reports whose fills leave out their fees.

The runs are in memory and seeded (``mm.simulation.memory_world``); here, in the test's own
Trio run, the scheduler is not seeded, so a run may interleave differently each time: each
test holds whatever the interleaving (``tests/simulation/test_replay.py`` checks replay)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import attrs
import orjson
import pytest
import trio

from mm.app import Service
from mm.execution.auditor import OrderAuditor
from mm.execution.flatten import Flattener
from mm.execution.permissions import Grant, Level
from mm.journal import DATABASE_NAME, read_events
from mm.model import Fill, Instrument, Side
from mm.ops import coordinator
from mm.ops.autonomy import Mode
from mm.portfolio import Balances, PositionBook
from mm.risk import controller
from mm.risk.state import RiskState
from mm.simulation.campaign import EPOCH_S, TRACE_NAME, draw, simulate
from mm.simulation.invariants import (
    BALANCES_AGREE,
    FILLS_ONCE,
    FLAT_AFTER_FLATTEN,
    NEVER_CRASHES,
    ORDERS_KNOWN,
    QUIET_AFTER_KILL,
    STALE_FILLS,
    STALE_PULLED,
    TRIANGLE_MOVES,
    TRIANGLES_END,
    TRIPS_HAVE_CAUSE,
)
from mm.strategies.market_maker import engine
from mm.strategies.triarb import reports
from mm.strategies.triarb.reports import Outcome as TriangleOutcome
from mm.strategies.triarb.reports import TriangleReport
from mm.strategies.triarb.slot import ExecutorSlot
from tests.e2e.virtual import SHIPPED_CONFIG, SHIPPED_TRIARB_CONFIG
from tests.simulation.broken import dropping_every

# The campaign: 20 seeds of 10 simulated minutes of market making (faults, a regime, a kill, a
# stop or a crash each as drawn), 8 seeds of triangles (each a shock that opens them).
CAMPAIGN_SEEDS = range(1, 21)
CAMPAIGN_S = 600.0
TRIARB_SEEDS = range(1, 9)
TRIARB_S = 20.0  # virtual seconds of trading: the shock's triangles come in the first few
SEEDS = (1, 2, 3, 4)
MM_S = 60.0  # a broken build's run: the market maker's fills come every few seconds


@pytest.mark.parametrize("seed", TRIARB_SEEDS)
async def test_a_seeded_run_of_triangles_keeps_every_invariant(
    seed: int, tmp_path: Path, autojump_clock: trio.abc.Clock
) -> None:
    run = draw("triarb", seed, TRIARB_S)
    outcome = await simulate(SHIPPED_TRIARB_CONFIG, run, tmp_path)
    assert outcome.triangles > 0, run  # (the invariants on no triangle would hold vacuously)
    assert outcome.violations == (), (run, [str(v) for v in outcome.violations])


@pytest.mark.parametrize("seed", CAMPAIGN_SEEDS)
async def test_a_seeded_run_of_market_making_keeps_every_invariant(
    seed: int, tmp_path: Path, autojump_clock: trio.abc.Clock
) -> None:
    run = draw("market_maker", seed, CAMPAIGN_S)
    outcome = await simulate(SHIPPED_CONFIG, run, tmp_path)
    assert outcome.fills > 0, run
    assert outcome.violations == (), (run, [str(v) for v in outcome.violations])


async def test_a_listener_that_drops_every_tenth_fill_is_caught(
    tmp_path: Path, autojump_clock: trio.abc.Clock, monkeypatch: pytest.MonkeyPatch
) -> None:
    dropping, lost = dropping_every(10)
    monkeypatch.setattr(Service, "_on_fill", dropping)
    outcome = await simulate(SHIPPED_CONFIG, draw("market_maker", SEEDS[0], MM_S), tmp_path)
    assert lost, "the run had fewer than ten fills"
    found = {v.invariant for v in outcome.violations}
    assert FILLS_ONCE in found, [str(v) for v in outcome.violations]


async def test_a_trading_subtree_that_ignores_the_kill_is_caught(
    tmp_path: Path, autojump_clock: trio.abc.Clock, monkeypatch: pytest.MonkeyPatch
) -> None:
    run = next(
        run
        for run in (draw("market_maker", seed, MM_S) for seed in range(1, 100))
        # (one deaf service, quoting both sides: no flatten's REDUCE_ONLY)
        if run.kill_after_s is not None and run.restart is None and run.flatten_after_s is None
    )
    trip = controller.KillSwitchController.trip

    async def deaf(self: controller.KillSwitchController, *args: Any, **kwargs: Any) -> Any:
        self._scope = None  # the trading subtree is not cancelled ...
        return await trip(self, *args, **kwargs)

    # ... nor the board closed: the strategy and its slots go on quoting.
    monkeypatch.setattr(controller, "TRIPPED", Grant(Level.OPEN, "deaf"))
    monkeypatch.setattr(controller.KillSwitchController, "trip", deaf)
    outcome = await simulate(SHIPPED_CONFIG, run, tmp_path)
    found = {v.invariant for v in outcome.violations}
    assert QUIET_AFTER_KILL in found, [str(v) for v in outcome.violations]


async def test_a_data_gate_that_lets_a_stale_book_through_is_caught(
    tmp_path: Path, autojump_clock: trio.abc.Clock, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The market data stalls; the gate (strategy.max_book_age_s, 2 s) is broken to look
    only for a mid: the quotes rest until the feed's own staleness flag (5 s) pulls them,
    past the pull limit the campaign samples at."""
    run = next(
        run
        for run in (draw("market_maker", seed, MM_S) for seed in range(1, 200))
        if run.stall_at_s is not None
        and run.stall_for_s > 8.0
        # (a lost cancel or reply, a 429 or a 500 lengthen the pull's allowance past the stall)
        and not any(
            run.faults[name]
            for name in ("lose_cancels", "ws_drop_post_replies", "http_429", "http_5xx")
        )
        and run.kill_after_s is None
        and run.restart is None  # (a service down pulls nothing: the samples skip it)
    )
    monkeypatch.setattr(engine.SymbolQuoter, "fresh", lambda self, now: self._mid() is not None)
    outcome = await simulate(SHIPPED_CONFIG, run, tmp_path)
    found = {v.invariant for v in outcome.violations}
    assert STALE_PULLED in found, (run, [str(v) for v in outcome.violations])


async def test_a_flattener_that_takes_the_account_for_flat_is_caught(
    tmp_path: Path, autojump_clock: trio.abc.Clock, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The operator's flatten, on a build whose flattener reads every position as zero: the
    market maker's inventory is held past the flatten's deadline (120 s)."""
    seconds = 300.0
    run = next(
        run
        for run in (draw("market_maker", seed, seconds) for seed in range(1, 200))
        if run.flatten_after_s is not None
        and run.flatten_after_s + 130.0 < seconds  # (its deadline within the run)
        and run.kill_after_s is None
        and run.restart is None
        and not run.faults["post_only_period"]
    )

    async def flat(self: Flattener, coins: list[str]) -> dict[str, float]:
        return {}

    monkeypatch.setattr(Flattener, "_open_positions", flat)
    outcome = await simulate(SHIPPED_CONFIG, run, tmp_path)
    found = {v.invariant for v in outcome.violations}
    assert FLAT_AFTER_FLATTEN in found, (run, [str(v) for v in outcome.violations])


async def test_a_stop_during_the_operators_flatten_and_the_restarted_service_finishes_it(
    tmp_path: Path, autojump_clock: trio.abc.Clock
) -> None:
    """Seed 110 (found by the campaign): ``mm flatten`` at 95 s, ``mm stop`` at 175 s before
    the account was flat, started again 22 s later in the journal's REDUCE_ONLY: the new
    service flattens again, and the account is flat by the deadline."""
    run = draw("market_maker", 110, CAMPAIGN_S)
    assert run.flatten_after_s is not None
    assert run.restart == "stop"
    assert run.flatten_after_s < run.restart_at_s < run.flatten_after_s + 120.0
    outcome = await simulate(SHIPPED_CONFIG, run, tmp_path)
    assert outcome.violations == (), [str(v) for v in outcome.violations]
    again = [
        event.data["why"]
        for event in read_events(tmp_path / DATABASE_NAME, "flatten_started")
        if "again" in event.data["why"]
    ]
    assert again == ["the operator's flatten, again after a restart"]


async def test_an_order_another_client_rests_on_the_account_is_canceled_in_time_or_caught(
    tmp_path: Path, autojump_clock: trio.abc.Clock, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Another client of the account rests an order on it 35 s in: the shipped order audit
    finds it and cancels it within its period and grace, and the run's watch finds nothing;
    an audit that leaves orphans alone is caught by the watch while the run goes on."""
    run = attrs.evolve(
        draw("market_maker", SEEDS[0], 120.0),
        kill_after_s=None,
        restart=None,
        flatten_after_s=None,
        stranger_at_s=35.0,
    )
    shipped = await simulate(SHIPPED_CONFIG, run, tmp_path / "shipped")
    assert shipped.violations == (), [str(v) for v in shipped.violations]

    async def leaving(self: OrderAuditor, *args: Any) -> str | None:
        return None

    monkeypatch.setattr(OrderAuditor, "_orphans", leaving)
    broken = await simulate(SHIPPED_CONFIG, run, tmp_path / "broken")
    watched = [
        v for v in broken.violations if v.invariant == ORDERS_KNOWN and v.detail.startswith("at ")
    ]
    assert watched, [str(v) for v in broken.violations]
    # the trace holds the service's state and the venue's orders at that moment
    moment = orjson.loads((tmp_path / "broken" / TRACE_NAME).read_bytes())["when_broken"]
    stranger = [o for o in moment[ORDERS_KNOWN]["venue_open_orders"] if o["cloid"] is None]
    assert len(stranger) == 1, moment[ORDERS_KNOWN]
    assert moment[ORDERS_KNOWN]["state"]["killswitch"]["tripped"] is False


async def test_a_halt_that_lets_orders_through_is_caught(
    tmp_path: Path, autojump_clock: trio.abc.Clock, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Seed 26: the operator's flatten meets the venue's post-only period, misses its
    deadline, and the mode goes to HALT: the shipped service sends nothing more; one whose
    HALT grants what NORMAL does goes on quoting (post-only quotes the venue takes)."""
    run = draw("market_maker", 26, CAMPAIGN_S)
    assert run.flatten_after_s is not None
    assert run.faults["post_only_period"]
    shipped = await simulate(SHIPPED_CONFIG, run, tmp_path / "shipped")
    assert shipped.violations == (), [str(v) for v in shipped.violations]
    halts = [
        event.data["transition"]["reason"]
        for event in read_events(tmp_path / "shipped" / DATABASE_NAME, "autonomy")
        if event.data["transition"]["mode"] == "halt"
    ]
    assert halts == ["flatten_deadline_missed"]
    monkeypatch.setitem(coordinator.MODE_GRANTS, Mode.HALT, coordinator.MODE_GRANTS[Mode.NORMAL])
    broken = await simulate(SHIPPED_CONFIG, run, tmp_path / "broken")
    found = {v.invariant for v in broken.violations}
    assert QUIET_AFTER_KILL in found, [str(v) for v in broken.violations]


async def test_an_auditor_that_fails_on_a_venues_answer_is_caught(
    tmp_path: Path, autojump_clock: trio.abc.Clock, monkeypatch: pytest.MonkeyPatch
) -> None:
    """As the order auditor did on a 429 of KuCoin's multi-symbol read (an ExceptionGroup it
    did not catch): its child crashes, the supervisor restarts it, the run goes on."""
    audit = OrderAuditor.audit_once
    failed = [False]

    async def failing(self: OrderAuditor, *args: Any, **kwargs: Any) -> Any:
        if not failed[0]:
            failed[0] = True
            raise ExceptionGroup("a read of every symbol", [RuntimeError("429")])
        return await audit(self, *args, **kwargs)

    monkeypatch.setattr(OrderAuditor, "audit_once", failing)
    outcome = await simulate(SHIPPED_CONFIG, draw("market_maker", SEEDS[0], MM_S), tmp_path)
    assert failed[0]
    found = {v.invariant for v in outcome.violations}
    assert NEVER_CRASHES in found, [str(v) for v in outcome.violations]


async def test_a_position_book_that_takes_every_fill_for_a_buy_is_caught(
    tmp_path: Path, autojump_clock: trio.abc.Clock, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A sign lost in the position book: every fill moves mm's position up. The fills are
    journaled and heard as they should be, so only the positions against the venue's show it."""
    apply = PositionBook.apply
    sells: list[Fill] = []

    def as_a_buy(self: PositionBook, fill: Fill) -> bool:
        if fill.side is Side.SELL:
            sells.append(fill)
        return apply(self, attrs.evolve(fill, side=Side.BUY))

    monkeypatch.setattr(PositionBook, "apply", as_a_buy)
    outcome = await simulate(SHIPPED_CONFIG, draw("market_maker", SEEDS[0], MM_S), tmp_path)
    assert sells, "the run sold nothing"
    found = {v.invariant for v in outcome.violations}
    assert BALANCES_AGREE in found, [str(v) for v in outcome.violations]


async def test_a_balance_book_that_leaves_out_the_fees_is_caught(
    tmp_path: Path, autojump_clock: trio.abc.Clock, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Triangles' balances moved by each fill's base and quote but not by its fee: mm's
    balances drift from the venue's by the fees, fill by fill."""

    def without_fee(self: Balances, fill: Fill, instrument: Instrument) -> None:
        signed = fill.side.sign * fill.sz
        self._move(instrument.base, signed)
        self._move(instrument.quote, -signed * fill.px)

    monkeypatch.setattr(Balances, "apply", without_fee)
    outcome = await simulate(SHIPPED_TRIARB_CONFIG, draw("triarb", SEEDS[0], TRIARB_S), tmp_path)
    assert outcome.triangles > 0
    found = {v.invariant for v in outcome.violations}
    assert BALANCES_AGREE in found, [str(v) for v in outcome.violations]


async def test_a_slot_that_reports_only_the_triangles_that_filled_is_caught(
    tmp_path: Path, autojump_clock: trio.abc.Clock, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A failure path that forgets its report: each triangle that did not fill ends with no
    row. Each run that had one to lose is caught, and the short campaign has some."""
    send = ExecutorSlot._send
    lost: list[str] = []  # the outcomes of the reports it dropped, over the campaign

    async def filled_only(self: ExecutorSlot, report: TriangleReport) -> None:
        if report.outcome is not TriangleOutcome.FILLED:
            lost.append(report.outcome.value)
            return
        await send(self, report)

    monkeypatch.setattr(ExecutorSlot, "_send", filled_only)
    caught, dropped = {}, {}
    for seed in SEEDS:
        before = len(lost)
        run = draw("triarb", seed, TRIARB_S)
        outcome = await simulate(SHIPPED_TRIARB_CONFIG, run, tmp_path / str(seed))
        caught[seed] = TRIANGLES_END in {v.invariant for v in outcome.violations}
        dropped[seed] = len(lost) > before
    assert lost, "no triangle of the campaign failed"
    assert caught == dropped, (caught, dropped, lost)


async def test_reports_whose_fills_leave_out_their_fees_are_caught(
    tmp_path: Path, autojump_clock: trio.abc.Clock, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The triangles' journal rows carry each fill without its fee: the venue's balances moved
    by more than the reports say. mm's own balances are right (its fills keep their fees)."""
    fill_row = reports._fill_row

    def without_fee(fill: Fill) -> dict[str, Any]:
        return {**fill_row(fill), "fee": 0.0}

    monkeypatch.setattr(reports, "_fill_row", without_fee)
    outcome = await simulate(SHIPPED_TRIARB_CONFIG, draw("triarb", SEEDS[0], TRIARB_S), tmp_path)
    assert outcome.triangles > 0
    found = {v.invariant for v in outcome.violations}
    assert TRIANGLE_MOVES in found, [str(v) for v in outcome.violations]
    assert BALANCES_AGREE not in found, [str(v) for v in outcome.violations]


async def test_a_drawdown_measured_against_the_pnl_peak_is_caught(
    tmp_path: Path, autojump_clock: trio.abc.Clock, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The defect that tripped the kill switch by itself a minute after every start: a
    drawdown as a fraction of the day's PnL peak (a $1 peak makes any dip a large fraction)
    escalates in a calm market, with nothing in the venue's data to explain it."""

    def of_the_peak(self: RiskState) -> float | None:
        peak = max(self.peak_pnl, self.daily_pnl)
        return self.drawdown_usd / peak if peak > 0 else None

    monkeypatch.setattr(RiskState, "drawdown", property(of_the_peak))
    calm = next(
        run
        for seed in range(1, 100)
        if (run := draw("market_maker", seed, MM_S)).regime == "calm" and run.kill_after_s is None
    )
    outcome = await simulate(SHIPPED_CONFIG, calm, tmp_path)
    found = {v.invariant for v in outcome.violations}
    assert TRIPS_HAVE_CAUSE in found, (calm, [str(v) for v in outcome.violations])


@pytest.mark.parametrize("forgets", [False, True], ids=["restored", "forgotten"])
async def test_a_kill_survives_a_crash_and_a_restart_that_forgets_it_is_caught(
    forgets: bool,
    tmp_path: Path,
    autojump_clock: trio.abc.Clock,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Killed at 10 s, the process dies at 20 s and is started again from its journal at 23 s:
    the kill switch comes back tripped (the journal's checkpoint) and nothing is sent. A
    service that does not restore it trades again, and the campaign sees it."""
    run = attrs.evolve(
        draw("market_maker", SEEDS[0], MM_S),
        kill_after_s=10.0,
        rearm_after_s=None,
        restart="crash",
        restart_at_s=20.0,
        down_s=3.0,
    )
    if forgets:
        monkeypatch.setattr(controller.KillSwitchController, "restore", lambda self, saved: None)
    outcome = await simulate(SHIPPED_CONFIG, run, tmp_path)
    found = {v.invariant for v in outcome.violations}
    assert (QUIET_AFTER_KILL in found) is forgets, [str(v) for v in outcome.violations]


async def test_quotes_that_fill_on_a_stale_book_in_a_cascade_are_caught(
    tmp_path: Path, autojump_clock: trio.abc.Clock, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The book feed stalls for 20 s and BTC falls 3 % in 3 s once the data has been stale past
    the pull limit (2 s) and a cancel's way to the venue: the shipped gate has pulled the quotes
    by then, and none fills on the stale book; the gate broken to look only for a mid leaves
    them resting, and the falling market fills them before the feed's own stale flag (5 s)
    pulls them.

    The move starts at 24 s, after the span the campaign checks has begun (the stall at 20 s
    plus the pull limit, the run's latency and a block's commit, and 1 s: under 24 s with no
    retried request drawn), so that the quotes left resting meet it inside that span. A move
    from the stall's start fills them in its first second, on data not yet stale past the
    limit, and the broken build was then caught only about one run in ten (CI, a52a3e8)."""
    found: dict[str, set[str]] = {}
    for build in ("shipped", "broken"):
        if build == "broken":
            monkeypatch.setattr(
                engine.SymbolQuoter, "fresh", lambda self, now: self._mid() is not None
            )
        for seed in (1, 5):
            drawn = draw("market_maker", seed, MM_S)
            run = attrs.evolve(
                drawn,
                # No retried request: one would push the checked span's start past the feed's
                # own stale flag (see ``campaign._stall``).
                faults={
                    **drawn.faults,
                    "http_429": 0.0,
                    "http_5xx": 0.0,
                    "ws_drop_post_replies": 0.0,
                    "lose_cancels": 0.0,
                },
                kill_after_s=None,
                restart=None,
                flatten_after_s=None,
                commit_delay_ms=None,
                stall_at_s=20.0,
                stall_for_s=20.0,
                regime="cascade",
                move={
                    "coin": "BTC",
                    "at_s": 24.0,
                    "move": -0.03,
                    "duration_s": 3.0,
                    "intensity": 8.0,
                    "one_sided": 0.5,
                    "thinning": 0.5,
                },
            )
            outcome = await simulate(SHIPPED_CONFIG, run, tmp_path / build / str(seed))
            found[f"{build} {seed}"] = {v.invariant for v in outcome.violations}
    assert found["shipped 1"] == found["shipped 5"] == set(), found
    assert STALE_FILLS in found["broken 1"] & found["broken 5"], found


async def test_a_long_kill_escalates_nothing_and_the_rearmed_strategy_reads_no_backlog(
    tmp_path: Path, autojump_clock: trio.abc.Clock
) -> None:
    """Campaign seed 2 (1 hour) found it: while the kill switch holds the trading subtree, the
    trades channel fills up with nobody meant to read it, and after about 20 minutes the
    queue-depth check escalated the mode to REDUCE_ONLY, with no cause in the venue's data;
    and a rearmed strategy would have read the backlog as trades happening now. Killed at 10 s
    and rearmed 25 minutes later: nothing escalates, and the strategy quotes again."""
    run = attrs.evolve(
        draw("market_maker", 2, 1_600.0),
        faults={},
        kill_after_s=10.0,
        rearm_after_s=1_500.0,
        stall_at_s=None,
        regime="calm",
        move=None,
        restart=None,
    )
    outcome = await simulate(SHIPPED_CONFIG, run, tmp_path)
    assert outcome.violations == (), [str(v) for v in outcome.violations]
    journal = tmp_path / DATABASE_NAME
    assert [event.data["transition"] for event in read_events(journal, "autonomy")] == []
    fills = [event.data for event in read_events(journal, "fill")]
    assert any(fill["time_ms"] > EPOCH_S * 1000 + 1_520_000 for fill in fills)  # (after rearm)
