"""Seeded runs of the whole service against its embedded venue on virtual time, each checked
against the run invariants, and a campaign of many (``mm simulate``).

A run is the service exactly as ``mm start -c CONFIG`` builds it (the feeds, the strategy and
its slots, risk, autonomy, the session, the journal), with only the run directory, the admin
port (0: any), the log format and the simulator's seed overridden, on Trio's ``MockClock`` with
autojump: a simulated minute takes a few seconds. Its venue is the simulator the config embeds,
run beside the service rather than inside it (as ``mm sim`` and ``mm start`` with the
simulator's URL), so that it outlives a restart of the service. What happens to it is drawn
from its seed (``draw``): the simulator's faults (latency and jitter on requests and messages,
dropped, duplicated and reordered messages, lost cancels, refused orders, 429s, level-2 gaps,
crossed books, disconnects, stalled books), the market's regime (calm, a trend, a liquidation
cascade) or a shock of the cross rate (triangular arbitrage: one opens triangles), whether and
when an operator kills it (and rearms it), and whether it is stopped (``mm stop``) or its
process killed, then started again from its run directory (``mm.simulation.process``), whether
an operator flattens it (and rearms it once flat), whether another client of the account rests
an order on it, and the venue's commit delay. Every ``WATCH_EVERY_S`` of the run, the
invariants that hold at every moment are checked too (``_watch``: open orders known, positions
equal once every fill is heard). After ``seconds`` the faults are lifted, what is on its way
lands, and the invariants that apply are checked (``mm.simulation.invariants``): no fill lost
or counted twice, positions or balances equal to the venue's, every open order at the venue
known to mm, nothing sent while the kill switch was tripped, no quote resting on stale data
past the pull limit, no position held after a flatten's deadline until a rearm, no child of the
service crashed, no trip or escalation without a cause the run put into the venue's data, and
for triangular arbitrage every triangle reported in one of its four outcomes and the venue's
balances moved by what the reports say.

A run is a function of (code, config, seed): the service's world is in memory
(``mm.simulation.memory_world``: no socket, no thread), its wall time starts at ``EPOCH_S``,
every random draw of the process (the service's, and Trio's scheduler's) is seeded from the
run's seed, and ``mm simulate`` fixes how strings hash. The same seed writes the same journal,
byte for byte, in the same run directory; a violation found is reported with the command that
runs its seed again, and it fails again the same way.

``campaign`` runs seeds in parallel processes (``jobs``), each forked for its run alone, each
in a run directory of its own, kept (with a WARNING-level log) for a run that violated an
invariant or failed: its journal, ``simulate.log`` (the service's log at WARNING and above),
and ``trace.json`` (the schedule the seed drew, the invariants broken, the service's state as
the run ended).

Fails: ``simulate`` raises what the service raised (a crash of the service is a failed run,
reported as such by ``campaign``); ``ConfigError`` for a config that does not load.
"""

from __future__ import annotations

import multiprocessing
import os
import random
import shutil
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from decimal import Decimal
from pathlib import Path
from typing import Any, Final

import attrs
import orjson
import trio
import trio.testing
from loguru import logger
from trio._core import _run as trio_run

from mm import clock, world
from mm.config import Config, load_config, resolve_secrets
from mm.journal import DATABASE_NAME, read_events
from mm.ops.autonomy import Mode
from mm.ops.coordinator import JOURNAL_KIND as AUTONOMY_KIND
from mm.simulation.invariants import (
    Cause,
    Violation,
    balances_agree,
    fills_once,
    flat_after_flatten,
    never_crashed,
    orders_known,
    pulled_when_stale,
    quiet_after_kill,
    reported_moves,
    stale_fills,
    triangle_moves,
    triangles_end,
    trips_have_cause,
)
from mm.simulation.ledger import Ledger, Recorded
from mm.simulation.memory_world import MemoryWorld
from mm.simulation.process import ServiceProcess
from mm.venues.config import EMBEDDED
from mm.venues.sim.config import CascadeConfig
from mm.venues.sim.engine import OrderRequest, Resting
from mm.venues.sim.kucoin.server import DEV_USER, KucoinSimVenue
from mm.venues.sim.venue import SimVenue

__all__ = [
    "Outcome",
    "Run",
    "campaign",
    "draw",
    "parse_seeds",
    "render",
    "run_one",
    "simulate",
    "summary",
]

EPOCH_S: Final = 1_767_225_600.0  # 2026-01-01 00:00 UTC: where every run's wall time starts
TRACE_NAME: Final = "trace.json"  # in a run's directory: its schedule, violations, end state
SETTLE_S: Final = 2.0  # after the faults are lifted: what is on its way lands
QUIET_WITHIN_S: Final = 30.0  # for the triangles in flight to end, the user stream to sync
POLL_S: Final = 0.1


@attrs.frozen
class Run:
    """What one seed's run meets: the simulator's faults (a partial fault config of its
    venue), a shock of the cross rate (bps, signed; None: none), a kill after
    ``kill_after_s`` (None: none) and an operator's rearm ``rearm_after_s`` after it (None:
    it stays tripped), for ``seconds`` of simulated trading."""

    seed: int
    kind: str  # the strategy: "market_maker" or "triarb"
    seconds: float
    faults: Mapping[str, Any]
    shock_bps: float | None
    kill_after_s: float | None
    rearm_after_s: float | None = None
    # The market data stalls (the venue's book pushes stop, connections stay open) at this
    # second of the run, for ``stall_for_s`` (None: it never stalls).
    stall_at_s: float | None = None
    stall_for_s: float = 0.0
    # The market's regime: "calm", "trending" (a slow informed move) or "cascade" (a fast
    # one-sided move), and the move (the simulator's cascade settings, ``at_s`` into the run).
    regime: str = "calm"
    move: Mapping[str, Any] | None = None
    # The operator stops the service ("stop") or the process dies ("crash") at this second
    # (None: neither), and it is started again ``down_s`` later, from its journal.
    restart: str | None = None
    restart_at_s: float = 0.0
    down_s: float = 0.0
    # The venue's commit delay, (least, most) ms (None: the config's), an operator's flatten
    # after ``flatten_after_s`` (None: none) and the operator's rearm ``flat_for_s`` after its
    # deadline (None: the service stays in REDUCE_ONLY).
    commit_delay_ms: tuple[float, float] | None = None
    flatten_after_s: float | None = None
    flat_for_s: float | None = None
    # When another client of the account rests an order on it, far from the market (None:
    # never): mm's order audit must find it and cancel it (venue.cancel_foreign_orders).
    stranger_at_s: float | None = None


@attrs.frozen
class Outcome:
    """A run's end: the invariants it broke (none: it passed), the fills and triangles it
    made, the wall time it took, and the error that ended it early (a crash), if any."""

    run: Run
    violations: tuple[Violation, ...]
    fills: int
    triangles: int
    wall_s: float
    error: str | None = None

    @property
    def passed(self) -> bool:
        return not self.violations and self.error is None


def draw(kind: str, seed: int, seconds: float) -> Run:
    """The run of ``seed``: its faults, shock and kill, drawn from the seed alone."""
    rng = random.Random(f"{kind}/{seed}")
    kill_after = rng.uniform(0.1, 0.7) * seconds if rng.random() < 0.5 else None
    rearm_after = None
    if kill_after is not None and rng.random() < 0.5:
        rearm_after = rng.uniform(0.05, 0.2) * seconds
    if kind == "triarb":
        faults: dict[str, Any] = {
            "http_latency_ms": rng.uniform(0.0, 60.0),
            "http_jitter_ms": rng.uniform(0.0, 20.0),
            "ws_latency_ms": rng.uniform(0.0, 150.0),
            "ws_jitter_ms": rng.uniform(0.0, 30.0),
            "ws_duplicate": rng.choice((0.0, 0.05)),
            "refuse_orders": rng.choice((0, 1, 3)),
            "refuse_code": rng.choice(("200004", "400100")),
            "drop_level2": rng.choice((0.0, 0.0, 0.01)),
            "http_429": rng.choice((0.0, 0.0, 0.02)),
        }
        shock = rng.uniform(55.0, 90.0) * rng.choice((1, -1))
        # (no crash: a triangle in flight when the process dies has nobody left to report it)
        restart, at, down = _restart(rng, seconds, (None, None, "stop"))
        return Run(
            seed,
            kind,
            seconds,
            faults,
            shock,
            kill_after,
            rearm_after,
            restart=restart,
            restart_at_s=at,
            down_s=down,
        )
    faults = {
        "http_latency_ms": rng.uniform(0.0, 80.0),
        "http_jitter_ms": rng.uniform(0.0, 30.0),
        "ws_latency_ms": rng.uniform(0.0, 100.0),
        "ws_jitter_ms": rng.uniform(0.0, 30.0),
        "ws_drop": rng.choice((0.0, 0.01)),
        "ws_duplicate": rng.choice((0.0, 0.02)),
        "ws_reorder": rng.choice((0.0, 0.02)),
        "lose_cancels": rng.choice((0.0, 0.05)),
        "crossed_book": rng.choice((0.0, 0.0, 0.01)),
        "ws_disconnect_mean_s": rng.choice((0.0, 0.0, seconds / 3)),
    }
    stall_at = rng.uniform(0.2, 0.6) * seconds if rng.random() < 0.5 else None
    stall_for = rng.uniform(5.0, 20.0)
    regime = rng.choice(("calm", "calm", "trending", "cascade"))
    move: dict[str, Any] | None = None
    if regime == "trending":  # (the simulator's informed trend: one-sided takers, no thinning)
        move = {
            "coin": rng.choice(("BTC", "ETH")),
            "at_s": rng.uniform(0.0, 0.3) * seconds,
            "move": rng.uniform(0.005, 0.02) * rng.choice((1, -1)),
            "duration_s": rng.uniform(0.3, 0.7) * seconds,
            "intensity": 2.0,
            "one_sided": 1.0,
            "thinning": 0.0,
        }
    elif regime == "cascade":  # (a liquidation cascade: a fast move, takers piling in)
        move = {
            "coin": rng.choice(("BTC", "ETH")),
            "at_s": rng.uniform(0.1, 0.6) * seconds,
            "move": rng.uniform(0.02, 0.08) * rng.choice((1, -1)),
            "duration_s": rng.uniform(15.0, 90.0),
            "intensity": rng.uniform(4.0, 10.0),
            "one_sided": rng.uniform(0.3, 0.8),
            "thinning": rng.uniform(0.3, 0.7),
        }
    restart, at, down = _restart(rng, seconds, (None, None, "stop", "crash"))
    faults = {
        **faults,
        "ws_drop_post_replies": rng.choice((0.0, 0.0, 0.02)),  # lost acks (the post acts)
        "http_429": rng.choice((0.0, 0.0, 0.01)),
        "http_5xx": rng.choice((0.0, 0.0, 0.01)),
        "post_only_period": rng.random() < 0.1,  # batches with a taker order refused whole
    }
    # (drawn after the rest, so that each seed's other draws stay what they were)
    commit_delay_ms = None
    if rng.random() < 0.5:
        least = rng.uniform(50.0, 600.0)
        commit_delay_ms = (least, least + rng.uniform(0.0, 1_500.0))
    flatten_after = rng.uniform(0.1, 0.7) * seconds if rng.random() < 0.3 else None
    flat_for = rng.uniform(0.02, 0.1) * seconds if rng.random() < 0.5 else None
    stranger_at = rng.uniform(0.1, 0.9) * seconds if rng.random() < 0.2 else None
    return Run(
        seed,
        kind,
        seconds,
        faults,
        None,
        kill_after,
        rearm_after,
        stall_at,
        stall_for,
        regime,
        move,
        restart,
        at,
        down,
        commit_delay_ms,
        flatten_after,
        flat_for,
        stranger_at,
    )


def _lifted(value: Any) -> Any:
    """A fault's setting that does nothing (a refusal's code stays: it refuses nothing without
    a count)."""
    if isinstance(value, str):
        return value
    return False if isinstance(value, bool) else 0


def _restart(
    rng: random.Random, seconds: float, kinds: tuple[str | None, ...]
) -> tuple[str | None, float, float]:
    """Whether and how the service goes down, when, and for how long: back up well before the
    run's end."""
    kind = rng.choice(kinds)
    return kind, rng.uniform(0.2, 0.6) * seconds, rng.uniform(1.0, max(1.0, 0.1 * seconds))


def environment(run_dir: Path, seed: int, run: Run | None = None) -> dict[str, str]:
    """The overrides of a simulated run (the service's own environment variables): with
    ``run``, the venue's settings it drew (its commit delay)."""
    overrides = {
        "MM_SERVICE__RUN_DIR": str(run_dir),
        "MM_ADMIN__PORT": "0",
        "MM_SERVICE__JSON_LOGS": "false",
        "MM_SIM__SEED": str(seed),
    }
    if run is not None and run.commit_delay_ms is not None:
        least, most = run.commit_delay_ms
        overrides["MM_SIM__COMMIT_DELAY_MIN_MS"] = repr(least)
        overrides["MM_SIM__COMMIT_DELAY_MAX_MS"] = repr(most)
    return overrides


def strategy_kind(config_path: Path) -> str:
    """The strategy a config runs (a run's faults are the ones its venue knows). Raises
    ``ValueError`` for a config whose venue is not the embedded simulator (a campaign runs
    the service against the simulator its config embeds, nothing else)."""
    config = load_config(config_path, environment(Path(tempfile.gettempdir()), 0))
    if config.venue.url != EMBEDDED:
        raise ValueError(
            f"{config_path}: venue.url is {config.venue.url!r}; a simulated run needs the "
            f"embedded venue (venue.url = {EMBEDDED!r})"
        )
    return config.strategy.kind


async def _until(condition: Callable[[], bool], within: float) -> None:
    with trio.fail_after(within):
        while not condition():  # noqa: ASYNC110 - the state is other tasks'
            await trio.sleep(POLL_S)


async def simulate(config_path: Path, run: Run, run_dir: Path) -> Outcome:
    """One run (see the module), in the caller's Trio run: its clock should be a
    ``MockClock`` with autojump, or the run takes its simulated time for real."""
    started = time.perf_counter()
    memory = MemoryWorld()
    world.install(memory)
    clock.pin(EPOCH_S)
    env = environment(run_dir, run.seed, run)
    embedded = load_config(config_path, env)
    if embedded.venue.url != EMBEDDED:
        raise ValueError("a simulated run needs the embedded venue (venue.url = embedded)")
    tripped: list[tuple[int, int | None]] = []
    moments: dict[str, Any] = {}  # the service's state when the watch found an invariant broken
    async with trio.open_nursery() as outside:
        face, venue, url = await _start_venue(outside, embedded)
        env = {**env, "MM_VENUE__URL": url}
        config = load_config(config_path, env)
        process = ServiceProcess(config, resolve_secrets(config, env), memory)
        if venue is not None:  # (the faucet, as the embedded venue funds mm's account)
            venue.fund(process.service.adapter.account)
        async with trio.open_nursery() as services:
            await process.start(services)
            try:
                check = await _trade(process, services, face, venue, run, tripped, moments)
            except BaseException:
                process.service.request_stop("the simulated run failed")
                raise
            state = process.service.status()  # (the service's, as the run ended: mm status)
            await process.end()
        outside.cancel_scope.cancel()
    violations = check()
    _write_trace(run_dir / TRACE_NAME, run, violations, state, moments)
    fills = sum(1 for _ in read_events(run_dir / DATABASE_NAME, "fill"))
    triangles = sum(1 for _ in read_events(run_dir / DATABASE_NAME, "triangle"))
    return Outcome(run, tuple(violations), fills, triangles, time.perf_counter() - started)


def _write_trace(
    path: Path,
    run: Run,
    violations: Iterable[Violation],
    state: Mapping[str, Any],
    moments: Mapping[str, Any],
) -> None:
    """What a person reads of a run beside its journal and log: the schedule it drew (its
    faults, regime, kill, stall, restart), the invariants it broke, the service's state
    (``mm status``) as the run ended, and, for each invariant the run's watch found broken,
    the service's state at that moment."""
    trace = {
        "run": attrs.asdict(run),
        "violations": [{"invariant": v.invariant, "detail": v.detail} for v in violations],
        "state": state,
        "when_broken": moments,
    }
    path.write_bytes(orjson.dumps(trace, option=orjson.OPT_INDENT_2, default=str))


async def _start_venue(
    nursery: trio.Nursery, config: Config
) -> tuple[KucoinSimVenue | None, SimVenue | None, str]:
    """The venue config.venue.kind names, as the service would embed it (``config.sim``), run
    in ``nursery``, so that it outlives a restart of the service: (its KuCoin face or its
    Hyperliquid simulator, its URL)."""
    sim = config.sim
    if config.venue.kind == "kucoin":
        face = KucoinSimVenue(host=sim.host, port=sim.port, seed=sim.seed, first_id=clock.wall_ms())
        url: str = await nursery.start(face.run)
        return face, None, url
    venue = SimVenue(sim, first_id=clock.wall_ms())
    await nursery.start(venue.run)
    assert venue.url is not None  # (set once it serves)
    return None, venue, venue.url


async def _trade(
    process: ServiceProcess,
    services: trio.Nursery,
    face: KucoinSimVenue | None,
    venue: SimVenue | None,
    run: Run,
    tripped: list[tuple[int, int | None]],
    moments: dict[str, Any],
) -> Callable[[], list[Violation]]:
    """Run ``run`` on the service: what checks it once the service has stopped (``moments``:
    the service's state when the run's watch found an invariant broken)."""
    config = process.config
    faults = face.faults if face is not None else venue.faults if venue is not None else None
    assert faults is not None
    before = _balances(face) if face is not None else {}
    causes = _causes(run, clock.wall())
    faults.update(run.faults)
    if run.shock_bps is not None and face is not None:
        face.market.shock(run.shock_bps)
    stale: list[tuple[int, list[str]]] = []  # the venue's open orders while data is stale
    stale_spans: list[tuple[int, int]] = []  # when the data was stale past the pull limit
    flats: list[tuple[int, int, dict[str, float]]] = []  # positions after a flatten
    watched: dict[str, Violation] = {}  # the first each invariant the run's watch found broken
    strangers: set[int] = set()  # the oids of orders another client of the account placed
    account = process.service.adapter.account
    async with trio.open_nursery() as nursery:
        if run.kill_after_s is not None:
            nursery.start_soon(_kill, process, run, tripped, causes)
        if run.stall_at_s is not None and venue is not None:
            nursery.start_soon(_stall, process, run, venue, stale, stale_spans)
        if run.move is not None and venue is not None:
            nursery.start_soon(_move, run.move, venue)
        if run.restart is not None:
            nursery.start_soon(_restart_service, process, services, run)
        if run.flatten_after_s is not None and venue is not None:
            nursery.start_soon(_flatten, process, run, venue, flats, causes)
        if venue is not None:
            nursery.start_soon(_watch, process, venue, watched, moments)
        if run.stranger_at_s is not None and venue is not None:
            nursery.start_soon(_stranger, run.stranger_at_s, venue, account, strangers)
        await trio.sleep(run.seconds)
        nursery.cancel_scope.cancel()
    service = process.service
    # The faults lifted.
    faults.update({key: _lifted(value) for key, value in run.faults.items()})
    desk = service.trading.triangles
    if desk is not None:
        await _until(lambda: not desk.claims.busy(), QUIET_WITHIN_S)
    await _until(service.adapter.in_sync, QUIET_WITHIN_S)
    await trio.sleep(SETTLE_S)
    registry = service.adapter.dispatcher.registry
    run_dir = config.run_dir
    grace_ms = _grace_ms(config, run.faults)
    # Each incarnation's tree, the trade ids their portfolios heard and the triangles their
    # desks took: read once the last has stopped, as the journal and the venue's fills are (a
    # fill of the orders its stop cancels may land meanwhile).

    def crashes() -> list[Violation]:
        return [
            violation
            for incarnation in process.incarnations
            if incarnation.tree is not None
            for violation in never_crashed(incarnation.tree)
        ]

    def known(cloid: str) -> bool:
        return registry.get(cloid) is not None

    if face is not None:
        assert desk is not None  # config.triarb.toml runs the desk on the face
        local_balances = service.portfolio.balances.snapshot()
        held = _balances(face)
        unknown = orders_known(
            (o.request.client_oid for o in face.exchange.live.values() if o.user == DEV_USER),
            known,
        )

        def check_triangles() -> list[Violation]:
            rows = [event.data for event in read_events(run_dir / DATABASE_NAME, "triangle")]
            symbols = {name: (s.base, s.quote) for name, s in face.exchange.symbols.items()}
            at_venue = (f"kucoin:{fill.trade_id}" for fill in face.exchange.fills.get(DEV_USER, ()))
            orders = [(o.oid, o.created_ns // 1_000_000) for o in _dev_orders(face)]
            return [
                *fills_once(_journaled_tids(run_dir), at_venue, process.heard()),
                *balances_agree(local_balances, held),
                *triangles_end(rows, sum(i.taken for i in process.incarnations)),
                *triangle_moves(reported_moves(rows, symbols), before, _balances(face)),
                *quiet_after_kill(orders, [*tripped, *_halted(run_dir, grace_ms)]),
                *unknown,
                *crashes(),
                *trips_have_cause(_trips(run_dir), causes),
            ]

        return check_triangles
    assert venue is not None
    account = service.adapter.account
    positions = service.trading.positions
    local_positions = {coin: positions.position(coin) for coin in config.strategy.symbols}
    held_positions = _positions(venue, account)
    unknown = orders_known((o.cloid for o in venue.engine.open_orders(account)), known)

    def check_market_making() -> list[Violation]:
        at_venue = (f"hyperliquid:{fill.tid}" for fill in venue.engine.fills.get(account, ()))
        orders = [
            (str(record.order.oid), record.order.timestamp)
            for record in venue.engine.records.values()
            if record.order.user == account and record.order.oid not in strangers
        ]
        return [
            *fills_once(_journaled_tids(run_dir), at_venue, process.heard()),
            *balances_agree(local_positions, held_positions),
            *quiet_after_kill(orders, [*tripped, *_halted(run_dir, grace_ms)]),
            *unknown,
            *watched.values(),
            *pulled_when_stale(stale),
            *stale_fills(
                (
                    (fill.time, f"hyperliquid:{fill.tid}", fill.crossed)
                    for fill in venue.engine.fills.get(account, ())
                ),
                stale_spans,
            ),
            *flat_after_flatten(flats, _flatten_stops(run_dir)),
            *crashes(),
            *trips_have_cause(_trips(run_dir), causes),
        ]

    return check_market_making


FEED_REASONS: Final = frozenset({"stale_data", "feed_gap_majority", "feed_reconnect_flapping"})
MARKET_REASONS: Final = frozenset(
    {
        "cascade",
        "price_velocity",
        "max_loss",
        "max_drawdown",
        "max_position",
        "position_runaway",
        "liquidation_detected",
        "pnl_peak_drawdown",
        "margin_warning",
        "margin_usage",
    }
)
MODE_RANK: Final = {mode.label: mode.value for mode in Mode}
KILL_WITHIN_S: Final = 5.0  # from the operator's kill to the switch's trip (its risk loop)
AFTERMATH_S: Final = 120.0  # how long after a market move or a stall its trips may come
STRANGER_USD: Final = 50.0  # the size of the order another client of the account rests
WATCH_EVERY_S: Final = 10.0  # how often the invariants of every moment are checked
WATCH_AFTER_START_S: Final = 30.0  # ... once the service has been up this long


def _causes(run: Run, start: float) -> list[Cause]:
    """What ``run`` does to the venue (it starts at wall time ``start``), as the causes of the
    trips and escalations it may explain (``trips_have_cause``)."""
    end = start + run.seconds + QUIET_WITHIN_S + SETTLE_S
    faults = run.faults
    causes = []
    if run.stall_at_s is not None:
        at = start + run.stall_at_s
        stalled = at + run.stall_for_s + AFTERMATH_S
        causes.append(Cause(at, stalled, FEED_REASONS, "the book feed stalled"))
    if faults.get("ws_disconnect_mean_s"):
        causes.append(Cause(start, end, FEED_REASONS, "the venue closed connections"))
    if any(faults.get(name) for name in ("ws_drop", "drop_level2")):
        # (a book that lost a message is read again whole; 429s can hold that read back)
        causes.append(Cause(start, end, FEED_REASONS, "book messages lost"))
    if run.move is not None:
        at = start + run.move["at_s"]
        moved = at + run.move["duration_s"] + AFTERMATH_S
        causes.append(Cause(at, moved, MARKET_REASONS, f"a {run.regime} move"))
    if run.shock_bps is not None:  # (a triangle's legs after the cross rate's shock)
        causes.append(Cause(start, end, MARKET_REASONS, "a shock of the cross rate"))
    lost = ("ws_drop", "lose_cancels", "ws_disconnect_mean_s", "drop_level2")
    if run.stall_at_s is not None or any(faults.get(name) for name in lost):
        reasons = frozenset({"reconciliation_drift"})
        causes.append(Cause(start, end, reasons, "messages lost"))
    if faults.get("http_429"):
        causes.append(Cause(start, end, frozenset({"rate_limit"}), "the venue's 429s"))
    if faults.get("post_only_period"):  # (a flatten's taker orders refused, every one)
        reasons = frozenset({"flatten_deadline_missed"})
        causes.append(Cause(start, end, reasons, "the venue's post-only period"))
    return causes


def _halted(run_dir: Path, grace_ms: float) -> list[tuple[int, int | None]]:
    """The spans (ms) the journal says the mode was HALT, from its move there (and an order
    already on its way: ``grace_ms``) until it left HALT (None: it still is), across
    restarts (the journal's mode is restored as it was)."""
    spans: list[tuple[int, int | None]] = []
    since: int | None = None
    for event in read_events(run_dir / DATABASE_NAME, AUTONOMY_KIND):
        transition = event.data["transition"]
        at = int(transition["at"] * 1000)
        if transition["mode"] == Mode.HALT.label and since is None:
            since = int(at + grace_ms)
        elif transition["previous"] == Mode.HALT.label and since is not None:
            spans.append((since, at))
            since = None
    if since is not None:
        spans.append((since, None))
    return spans


def _flatten_stops(run_dir: Path) -> list[int]:
    """When (ms) the journal says a flatten under way was stopped, or its REDUCE_ONLY lifted,
    as it may be: the kill switch's trips, the mode's moves to HALT, the operator's rearms."""
    database = run_dir / DATABASE_NAME
    stops = [
        int(trip["at"] * 1000)
        for event in read_events(database, "killswitch")
        for trip in event.data.get("trips", ())
    ]
    for event in read_events(database, AUTONOMY_KIND):
        transition = event.data["transition"]
        mode = transition["mode"]
        if mode == Mode.HALT.label or (mode == Mode.NORMAL.label and not transition["automatic"]):
            stops.append(int(transition["at"] * 1000))
    return stops


def _trips(run_dir: Path) -> list[tuple[float, str]]:
    """The kill switch's trips and the automatic escalations of the autonomy mode the journal
    holds: (wall time, reason) each, once."""
    trips: dict[tuple[float, str], None] = {}
    database = run_dir / DATABASE_NAME
    for event in read_events(database, "killswitch"):
        for trip in event.data.get("trips", ()):
            trips[(trip["at"], trip["reason"])] = None
    for event in read_events(database, AUTONOMY_KIND):
        transition = event.data["transition"]
        if (
            transition["automatic"]
            and MODE_RANK[transition["mode"]] > MODE_RANK[transition["previous"]]
        ):
            trips[(transition["at"], transition["reason"])] = None
    return list(trips)


async def _move(move: Mapping[str, Any], venue: SimVenue) -> None:
    """The regime's move, started ``at_s`` into the run (the simulator's cascade)."""
    settings = dict(move)
    await trio.sleep(settings.pop("at_s"))
    venue.start_cascade(CascadeConfig(start_s=0.0, **settings))


async def _kill(
    process: ServiceProcess,
    run: Run,
    tripped: list[tuple[int, int | None]],
    causes: list[Cause],
) -> None:
    """The operator's kill at ``kill_after_s`` (and rearm after ``rearm_after_s``): the span
    the switch was tripped, less the grace of an order already on its way, into ``tripped``,
    and the kill into ``causes``. (While the service is down the operator waits for it:
    ``mm kill`` needs it up.)"""
    assert run.kill_after_s is not None
    await trio.sleep(run.kill_after_s)
    await process.up.wait()
    at = clock.wall()
    causes.append(Cause(at, at + KILL_WITHIN_S, frozenset({"manual"}), "the operator's kill"))
    service = process.service
    if await service.killswitch.kill(f"simulated run, seed {run.seed}") is None:
        raise RuntimeError("the kill switch did not answer")
    since = service.killswitch.status()["since"]
    start = int(since * 1000 + _grace_ms(process.config, run.faults))
    if run.rearm_after_s is None:
        tripped.append((start, None))
        return
    await trio.sleep(run.rearm_after_s)
    await process.up.wait()
    end = clock.wall_ms()  # (an order after this may go: the operator rearmed)
    rearmed = await process.service.rearm("simulate", f"seed {run.seed}", False)
    tripped.append((start, end if rearmed.body["rearmed"] else None))


async def _flatten(
    process: ServiceProcess,
    run: Run,
    venue: SimVenue,
    samples: list[tuple[int, int, dict[str, float]]],
    causes: list[Cause],
) -> None:
    """The operator's flatten at ``flatten_after_s`` (``mm flatten``; while the service is
    down the operator waits for it): the account's positions at the venue sampled into
    ``samples`` at the flatten's deadline (a service restarted meanwhile flattens again, under
    a deadline from its start) and, when the operator rearms ``flat_for_s`` later, just before
    the rearm, unless it restarted in between."""
    assert run.flatten_after_s is not None
    await trio.sleep(run.flatten_after_s)
    await process.up.wait()
    asked = clock.wall_ms()
    reasons = frozenset({"operator_flatten"})
    causes.append(
        Cause(asked / 1000, asked / 1000 + KILL_WITHIN_S, reasons, "the operator's flatten")
    )
    service = process.service
    answer = await service.flatten("simulate", f"seed {run.seed}")
    if answer.status != 202:
        return  # refused: the kill switch or HALT forbids orders, and nothing changes
    account = service.adapter.account
    config = process.config
    within = config.session.flatten_deadline_s + _grace_ms(config, run.faults) / 1000 + 1.0
    since = process.up_since
    while True:
        assert since is not None
        await trio.sleep(max(asked / 1000, since) + within - clock.wall())
        if process.up_since == since:
            break
        await process.up.wait()
        since = process.up_since
    samples.append((asked, clock.wall_ms(), _positions(venue, account)))
    if run.flat_for_s is None:
        return
    await trio.sleep(run.flat_for_s)
    if process.up_since != since:
        return
    samples.append((asked, clock.wall_ms(), _positions(venue, account)))
    service = process.service
    if not service.killswitch.switch.tripped:  # (a kill the operator leaves as it is)
        await service.rearm("simulate", f"seed {run.seed}: flat", False)


async def _restart_service(process: ServiceProcess, services: trio.Nursery, run: Run) -> None:
    """The service stopped (``mm stop``) or its process killed at ``restart_at_s``, and started
    again ``down_s`` later, from its run directory. Shielded: the run's end waits for it to
    be back up (it is drawn to be well before the end)."""
    await trio.sleep(run.restart_at_s)
    with trio.CancelScope(shield=True):
        if run.restart == "crash":
            await process.crash()
        else:
            await process.stop("the operator's stop (simulated)")
        await trio.sleep(run.down_s)
        await process.start(services)


async def _stranger(at_s: float, venue: SimVenue, account: str, oids: set[int]) -> None:
    """Another client of the account (its owner, by hand) rests a small buy of BTC 20 % under
    the market at ``at_s``: its oid into ``oids``."""
    await trio.sleep(at_s)
    spec = venue.engine.by_name["BTC"]
    mark = venue.engine.mark(spec.index)
    assert mark is not None
    size = f"{STRANGER_USD / mark:.{spec.sz_decimals}f}"
    request = OrderRequest(spec.index, True, f"{int(mark * 0.8)}", size, tif="Gtc")
    placed = venue.engine.place(account, request, venue.now_ms())
    venue.publish_events()
    if isinstance(placed, Resting):
        oids.add(placed.oid)


async def _watch(
    process: ServiceProcess,
    venue: SimVenue,
    watched: dict[str, Violation],
    moments: dict[str, Any],
) -> None:
    """The invariants that hold at every moment, checked every ``WATCH_EVERY_S`` while the
    service has been up for ``WATCH_AFTER_START_S`` (its start cancels what an earlier
    process left open): every open order of the account at the venue known to mm within the
    order audit's period and grace (an orphan's time to be found and canceled), and, when the
    service is in sync with the venue and its portfolio has heard every fill the venue made,
    its positions equal the venue's. The first violation of each into ``watched``, with the
    service's state then (``mm status``) and the venue's open orders into ``moments``."""
    audit = process.config.executor.audit
    within_ms = (audit.every_s + audit.grace_s + WATCH_EVERY_S) * 1000
    unknown_since: dict[int, int] = {}  # venue oid: when the watch first found it unknown
    heard_before: frozenset[str] = frozenset()
    counted = 0
    while True:
        await trio.sleep(WATCH_EVERY_S)
        since = process.up_since
        if since is None or clock.wall() - since < WATCH_AFTER_START_S:
            unknown_since.clear()
            continue
        if len(process.incarnations) != counted:  # (what the stopped ones heard)
            counted = len(process.incarnations)
            heard_before = frozenset().union(*(i.heard or () for i in process.incarnations))
        now = clock.wall_ms()
        service = process.service
        account = service.adapter.account
        registry = service.adapter.dispatcher.registry
        unknown = {
            order.oid: order.cloid
            for order in venue.engine.open_orders(account)
            if order.cloid is None or registry.get(order.cloid) is None
        }
        unknown_since = {oid: unknown_since.get(oid, now) for oid in unknown}
        late = (unknown[oid] for oid, at in unknown_since.items() if now - at > within_ms)
        found = orders_known(late, lambda cloid: False)
        positions = service.portfolio.positions
        heard = positions.heard_trades()
        at_venue = {f"hyperliquid:{fill.tid}" for fill in venue.engine.fills.get(account, ())}
        if service.adapter.in_sync() and heard is not None and at_venue <= heard | heard_before:
            symbols = process.config.strategy.symbols
            local = {coin: positions.position(coin) for coin in symbols}
            found += balances_agree(local, _positions(venue, account))
        for violation in found:
            if violation.invariant not in watched:
                detail = f"at {now}: {violation.detail}"
                watched[violation.invariant] = Violation(violation.invariant, detail)
                moments[violation.invariant] = {
                    "at": now,
                    "state": service.status(),
                    "venue_open_orders": [
                        {"oid": o.oid, "cloid": o.cloid, "px": o.px, "sz": o.sz}
                        for o in venue.engine.open_orders(account)
                    ],
                    "venue_positions": _positions(venue, account),
                }


async def _stall(
    process: ServiceProcess,
    run: Run,
    venue: SimVenue,
    samples: list[tuple[int, list[str]]],
    spans: list[tuple[int, int]],
) -> None:
    """The venue's book pushes stop at ``stall_at_s`` for ``stall_for_s``: once the pull
    limit (``strategy.max_book_age_s``) and a cancel's way to the venue have passed (with
    lost cancels, the post timeout that finds one lost and the cancel sent again too), and at
    the stall's end, the account's open orders at the venue are sampled into ``samples``, and
    the span between (ms) goes into ``spans``: no quote of mm's may fill in it."""
    assert run.stall_at_s is not None
    await trio.sleep(run.stall_at_s)
    config = process.config
    account = process.service.adapter.account
    venue.faults.update({"stall_books": True})
    try:
        past = config.strategy.max_book_age_s + _grace_ms(config, run.faults) / 1000 + 1.0
        # A request in flight when the data went stale, whose reply the venue lost or which
        # it answered with a 429 or a 500, is settled only at its post timeout (or sent again
        # after its backoff), and the pull cancels its orders only then (the symbol's other
        # orders go at once: ``ExecutorSlot._pull_at_once``); a cancel the venue lost is
        # known lost at its own post timeout, then sent again. The two can come one after
        # the other.
        timeout = config.feeds.connection.post_timeout_s + 1.0
        faults = run.faults
        if any(faults.get(name) for name in ("ws_drop_post_replies", "http_429", "http_5xx")):
            past += timeout
        if faults.get("lose_cancels"):
            past += timeout
        if run.stall_for_s <= past:
            await trio.sleep(run.stall_for_s)
            return
        await trio.sleep(past)
        since = process.up_since
        _sample(process, venue, account, past, samples)
        start = clock.wall_ms()
        await trio.sleep(run.stall_for_s - past)
        _sample(process, venue, account, past, samples)
        if since is not None and since == process.up_since and start - since * 1000 >= past * 1000:
            spans.append((start, clock.wall_ms()))  # (one service, up all along)
    finally:
        venue.faults.update({"stall_books": False})


def _sample(
    process: ServiceProcess,
    venue: SimVenue,
    account: str,
    past: float,
    samples: list[tuple[int, list[str]]],
) -> None:
    """The account's open orders at the venue now, into ``samples``: not while the service is
    down, nor before it has been up for ``past`` (a dead process pulls nothing; a new one
    cancels what it finds open as it starts)."""
    since = process.up_since
    if since is None or clock.wall() - since < past:
        return
    samples.append((clock.wall_ms(), [str(o.oid) for o in venue.engine.open_orders(account)]))


def _grace_ms(config: Config, faults: Mapping[str, Any]) -> float:
    """How long after the switch tripped an order sent before it may still be stamped by the
    venue: its latency and jitter, and (Hyperliquid's) a block or two to commit it."""
    latency = max(faults.get("http_latency_ms", 0.0), faults.get("ws_latency_ms", 0.0))
    jitter = max(faults.get("http_jitter_ms", 0.0), faults.get("ws_jitter_ms", 0.0))
    commit = config.sim.commit_delay_max_ms if config.venue.kind == "hyperliquid" else 0.0
    return float(latency + jitter + commit + 5.0)


def _journaled_tids(run_dir: Path) -> list[str]:
    return [event.data["tid"] for event in read_events(run_dir / DATABASE_NAME, "fill")]


def _balances(face: KucoinSimVenue) -> dict[str, Decimal]:
    ledger = face.exchange.ledger
    return {c: ledger.balance(DEV_USER, c).balance for c in ledger.currencies(DEV_USER)}


def _dev_orders(face: KucoinSimVenue) -> list[Any]:
    return [order for order in face.exchange.orders.values() if order.user == DEV_USER]


def _positions(venue: SimVenue, user: str) -> dict[str, float]:
    account = venue.engine.account(user)
    if account is None:
        return {}
    return {
        spec.name: account.position(spec.index).szi / 10**spec.sz_decimals for spec in venue.specs
    }


def run_one(config_path: Path, run: Run, run_dir: Path) -> Outcome:
    """``simulate`` in a Trio run of its own on a ``MockClock`` (autojump): the service's log
    at WARNING and above in ``run_dir/simulate.log``; a crash of the service is the outcome's
    ``error``."""
    logger.remove()
    run_dir.mkdir(parents=True, exist_ok=True)
    logger.add(run_dir / "simulate.log", level="WARNING")
    started = time.perf_counter()
    _seed_everything(f"{run.kind}/{run.seed}")
    try:
        return trio.run(
            simulate,
            config_path,
            run,
            run_dir,
            clock=trio.testing.MockClock(autojump_threshold=0),
        )
    except Exception as error:  # the service's crash: a failed run, not the campaign's
        return Outcome(
            run, (), 0, 0, time.perf_counter() - started, f"{type(error).__name__}: {error}"
        )


def _seed_everything(seed: str) -> None:
    """Every draw of the process from ``seed``: the service's (``mm.randomness``: Python's
    global generator) and Trio's scheduler's, which orders the tasks made runnable together by
    when each was created, then shuffles them with its generator (what Trio does under
    Hypothesis; its switches are private)."""
    random.seed(f"{seed}/service")
    trio_run._ALLOW_DETERMINISTIC_SCHEDULING = True  # type: ignore[misc]
    trio_run._r.seed(f"{seed}/scheduler")


def _one(args: tuple[Path, Run, Path, bool]) -> Outcome:
    config_path, run, run_dir, keep = args
    # A directory left by a run cut off part way (a campaign stopped, then resumed) would be
    # its journal to restart from: each run starts from none.
    shutil.rmtree(run_dir, ignore_errors=True)
    outcome = run_one(config_path, run, run_dir)
    if outcome.passed and not keep:
        shutil.rmtree(run_dir, ignore_errors=True)
    return outcome


def campaign(
    config_path: Path,
    seeds: Iterable[int],
    seconds: float,
    *,
    jobs: int = os.cpu_count() or 1,
    work_dir: Path,
    keep: bool = False,
    on_outcome: Callable[[Outcome], None] = lambda outcome: None,
    ledger: Ledger | None = None,
) -> list[Outcome]:
    """Each seed's run (``run_one``) in ``jobs`` processes, in ``work_dir/seed-N`` (removed
    when the run passed, unless ``keep``); ``on_outcome`` hears each as it ends. A seed
    ``ledger`` holds (an earlier invocation's, on the same code and config) is not run again:
    its recorded outcome stands; each run that ends is recorded in it. The outcomes in seed
    order."""
    kind = strategy_kind(config_path)
    runs = [draw(kind, seed, seconds) for seed in seeds]
    recorded = ledger.recorded if ledger is not None else {}
    outcomes = [_recorded(run, recorded[run.seed]) for run in runs if run.seed in recorded]
    work = [
        (config_path, run, work_dir / f"seed-{run.seed}", keep)
        for run in runs
        if run.seed not in recorded
    ]
    started = time.perf_counter()
    # Each run in a process forked for it alone: it starts from the campaign's own state, never
    # from what an earlier run left in a worker.
    with multiprocessing.get_context("fork").Pool(max(1, jobs), maxtasksperchild=1) as pool:
        for outcome in pool.imap_unordered(_one, work):
            if ledger is not None:
                ledger.record(_record(outcome, ledger.invocation, time.perf_counter() - started))
            outcomes.append(outcome)
            on_outcome(outcome)
    return sorted(outcomes, key=lambda outcome: outcome.run.seed)


def _record(outcome: Outcome, invocation: int, campaign_wall_s: float) -> Recorded:
    return Recorded(
        seed=outcome.run.seed,
        violations=tuple((v.invariant, v.detail) for v in outcome.violations),
        fills=outcome.fills,
        triangles=outcome.triangles,
        wall_s=outcome.wall_s,
        error=outcome.error,
        invocation=invocation,
        campaign_wall_s=campaign_wall_s,
    )


def _recorded(run: Run, record: Recorded) -> Outcome:
    """The outcome ``record`` holds of ``run`` (a seed's run is drawn from the seed alone)."""
    violations = tuple(Violation(name, detail) for name, detail in record.violations)
    return Outcome(run, violations, record.fills, record.triangles, record.wall_s, record.error)


# --- the campaign's table -------------------------------------------------------------------


def parse_seeds(text: str) -> list[int]:
    """``"1-1000"``, ``"7"`` or ``"1,3,10-12"``: the seeds, in order, each once. Raises
    ``ValueError`` naming what does not read."""
    seeds: dict[int, None] = {}
    for part in text.split(","):
        first, dash, last = part.strip().partition("-")
        try:
            low = int(first)
            high = int(last) if dash else low
        except ValueError:
            raise ValueError(f"--seeds: {part.strip()!r} is not N or N-M") from None
        if low < 0 or high < low:
            raise ValueError(f"--seeds: {part.strip()!r} is not a range of seeds >= 0")
        seeds.update(dict.fromkeys(range(low, high + 1)))
    return list(seeds)


def summary(outcomes: Iterable[Outcome], wall_s: float) -> dict[str, Any]:
    """The campaign's figures: seeds run, simulated seconds, the faults drawn (seeds that had
    each: kills and shocks among them), violations by invariant, the runs that failed (with
    the command that runs each again), the slowest run, the wall time and the simulated time
    per second of it."""
    ran = list(outcomes)
    faults: Counter[str] = Counter()
    violations: Counter[str] = Counter()
    for outcome in ran:
        run = outcome.run
        faults.update(
            name for name, value in run.faults.items() if value and not isinstance(value, str)
        )
        drawn = {
            "kill": run.kill_after_s,
            "shock": run.shock_bps,
            "rearm": run.rearm_after_s,
            "stall": run.stall_at_s,
            "commit_delay": run.commit_delay_ms,
            "flatten": run.flatten_after_s,
            "stranger_order": run.stranger_at_s,
        }
        faults.update(name for name, value in drawn.items() if value is not None)
        if run.move is not None:
            faults[run.regime] += 1
        if run.restart is not None:
            faults[run.restart] += 1
        violations.update(violation.invariant for violation in outcome.violations)
    simulated = sum(outcome.run.seconds for outcome in ran)
    slowest = max(ran, key=lambda outcome: outcome.wall_s, default=None)
    return {
        "seeds": len(ran),
        "passed": sum(outcome.passed for outcome in ran),
        "simulated_s": simulated,
        "wall_s": wall_s,
        "simulated_per_wall_s": simulated / wall_s if wall_s > 0 else None,
        "faults": dict(sorted(faults.items())),
        "violations": dict(sorted(violations.items())),
        "failed": [
            {
                "seed": outcome.run.seed,
                "error": outcome.error,
                "violations": [str(violation) for violation in outcome.violations],
            }
            for outcome in ran
            if not outcome.passed
        ],
        "slowest": None
        if slowest is None
        else {"seed": slowest.run.seed, "wall_s": slowest.wall_s},
        "fills": sum(outcome.fills for outcome in ran),
        "triangles": sum(outcome.triangles for outcome in ran),
    }


def render(figures: Mapping[str, Any], replay: Callable[[int], str]) -> str:
    """The summary as text: ``replay(seed)`` is the command that runs a failed seed again."""
    lines = [
        f"seeds run: {figures['seeds']}, passed: {figures['passed']}",
        f"simulated: {figures['simulated_s'] / 3600:.3f} h in {figures['wall_s']:.1f} s of wall"
        + (
            f" ({figures['simulated_per_wall_s']:.1f} simulated s a second)"
            if figures["simulated_per_wall_s"]
            else ""
        ),
        f"fills: {figures['fills']}, triangles: {figures['triangles']}",
        "faults drawn (seeds): "
        + (", ".join(f"{name} {n}" for name, n in figures["faults"].items()) or "none"),
        "violations: "
        + (", ".join(f"{name}: {n}" for name, n in figures["violations"].items()) or "none"),
    ]
    slowest = figures["slowest"]
    if slowest is not None:
        lines.append(f"slowest run: seed {slowest['seed']}, {slowest['wall_s']:.1f} s")
    for failed in figures["failed"]:
        why = failed["error"] or "; ".join(failed["violations"])
        lines.append(f"FAILED seed {failed['seed']}: {why}")
        lines.append(f"  run it again: {replay(failed['seed'])}")
    return "\n".join(lines) + "\n"
