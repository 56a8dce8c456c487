"""Pre-flight and post-flight checks: the gates ``mm check`` runs before and after a session.

Pre-flight (before trading, with or without a running mm): the config is valid; the journal
can take its write lock; the disk has room; the kill switch is armed and the autonomy mode is
not HALT; the venue answers; the venue lets the signing key trade for the configured account
(an API wallet of its master, a sub-account or vault it leads, a signature for the venue's
network), in the venue's words; market data arrives; mm's positions agree with the venue's; the
address has API headroom; the venue's dead-man's switch is available (a WARN when it is not:
the venue refuses it to an account that has not traded enough). Post-flight (after trading):
no order is left working at the venue; the journal is flushed (the WAL folded into the
database once mm stopped); the journal's fills and PnL agree with the venue's.

Where the state comes from depends on whether an mm is running:

- running: its ``/status`` document (kill switch, mode, sync, positions, journal health) and its
  venue (``status["venue_url"]``, which is the embedded simulator's loopback URL when it has one);
- not running: the journal in ``run_dir``, and ``venue.url``. With ``venue.url = "embedded"``
  pre-flight starts ``venue.kind``'s simulator in-process for the length of the checks (the
  Hyperliquid simulator, or KuCoin's face, as a running mm starts it), proving the venue, its
  protocol faces and the feeds work; such a fresh venue has no history, so the position check
  is skipped, and post-flight's venue checks are skipped (that venue lived only inside mm).

The venue is asked through the port (``mm.venues.factory.open_probe``), with the key or the API
credentials ``venue.kind`` takes and the symbols the service follows (``feeds.coins``). What a
venue lacks is said, never passed silently: a spot venue (an account of balances, no positions)
skips positions_match saying why; a venue with no dead-man's switch is a WARN; one that arms it
for any account (volume 0) passes saying so.

A check is PASS, WARN, FAIL or SKIP (a warning or a skip says why and is not a failure).
Every venue and network call is bounded by a deadline, and any error becomes a FAIL with its
text: the checks never crash. Details never carry a secret: every one passes through the
secrets' redactor.

The first part of the module is pure (``positions_match``, ``reconcile_fills``,
``render``, ``exit_code``); the I/O follows.
"""

from __future__ import annotations

import math
import shutil
import sqlite3
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Mapping, Sequence
from contextlib import AsyncExitStack, asynccontextmanager
from functools import partial
from pathlib import Path
from typing import Any, Protocol, TypeVar

import attrs
import httpx
import trio

from mm import clock
from mm.execution.deadman import DeadmanConfig
from mm.journal import (
    DATABASE_NAME,
    Entry,
    checkpoint_wal,
    fills_between,
    latest_event,
    take_write_lock,
)
from mm.model import Fill, OrderId, TradeId, journaled_order_id, journaled_trade_id
from mm.ops.coordinator import JOURNAL_KIND as AUTONOMY_KIND
from mm.risk.killswitch import KillSwitch
from mm.secrets import Redactor, Secret
from mm.venues.base import VenueProbe
from mm.venues.config import EMBEDDED, ApiCredentials, VenueConfig
from mm.venues.factory import RateLimitConfig, account_of, open_probe
from mm.venues.sim.config import SimConfig
from mm.venues.sim.kucoin.server import KucoinSimVenue
from mm.venues.sim.venue import SimVenue

STATUS_TIMEOUT_S = 5.0  # GET /status
REQUEST_TIMEOUT_S = 5.0  # one venue request
CHECK_TIMEOUT_S = 15.0  # one check, all of its requests and retries together
FEED_TIMEOUT_S = 10.0  # a book per symbol must arrive within this
SIM_START_TIMEOUT_S = 10.0
MIN_HEADROOM = 0.2
PNL_TOLERANCE = 1e-6
MAX_FILL_PAGES = 50
RETRIES = 3  # a running mm's state moves: a mismatch is read again before it fails
RETRY_DELAY_S = 0.5
SHOWN = 5  # mismatches, orders, fills named in a detail

T = TypeVar("T")


# --- what the checks read of the configuration -------------------------------------------------


class _Strategy(Protocol):
    @property
    def symbols(self) -> Sequence[str]: ...


class _Feeds(Protocol):
    @property
    def coins(self) -> Sequence[str]: ...

    @property
    def deadman(self) -> DeadmanConfig: ...


class CheckedConfig(Protocol):
    """The configuration as the checks read it (``mm.config.Config`` is one): the venue, the
    symbols traded, where the journal is, the simulator an embedded venue plays."""

    @property
    def venue(self) -> VenueConfig: ...

    @property
    def rate_limit(self) -> RateLimitConfig: ...

    @property
    def strategy(self) -> _Strategy: ...

    @property
    def feeds(self) -> _Feeds: ...

    @property
    def sim(self) -> SimConfig: ...

    @property
    def run_dir(self) -> Path: ...

    @property
    def hash(self) -> str: ...


class CheckedSecrets(Protocol):
    """The secrets as the checks use them (``mm.config.Secrets`` is one): the venue's signing
    key or API credentials (whichever ``venue.kind`` takes), and every secret, which no detail
    may show."""

    @property
    def venue_key(self) -> Secret | None: ...

    @property
    def venue_api(self) -> ApiCredentials | None: ...

    def all(self) -> list[Secret]: ...


# --- results and pure helpers ------------------------------------------------------------------


@attrs.frozen
class CheckResult:
    """One check's outcome: ``ok`` True (PASS, or WARN with ``warning``), False (FAIL) or None
    (SKIP, the reason in ``detail``); a skip or a warning is not a failure."""

    name: str
    ok: bool | None
    detail: str
    warning: bool = False  # a pass that needs the operator's attention (WARN): not a failure

    @property
    def label(self) -> str:
        if self.ok is None:
            return "SKIP"
        if not self.ok:
            return "FAIL"
        return "WARN" if self.warning else "PASS"


def positions_match(
    local: Mapping[str, float], venue: Mapping[str, float], tolerance: float = 1e-9
) -> list[str]:
    """Coins whose signed sizes differ by more than ``tolerance`` (a coin missing on one side
    counts as flat there), described; empty when every position agrees."""
    mismatches = []
    for coin in sorted(set(local) | set(venue)):
        mine, theirs = float(local.get(coin, 0.0)), float(venue.get(coin, 0.0))
        if abs(mine - theirs) > tolerance:
            mismatches.append(f"{coin}: mm {mine:.10g}, venue {theirs:.10g}")
    return mismatches


FillKey = tuple[TradeId, OrderId]  # (tid, oid)


@attrs.frozen
class FillReconciliation:
    """The journal's fills against the venue's over the same period, keyed by (tid, oid)."""

    matched: int
    missing_in_journal: list[FillKey]  # at the venue, not journaled
    missing_at_venue: list[FillKey]  # journaled, unknown to the venue
    journal_net_pnl: float  # sum of closed_pnl - fee
    venue_net_pnl: float

    @property
    def ok(self) -> bool:
        return (
            not self.missing_in_journal
            and not self.missing_at_venue
            and abs(self.journal_net_pnl - self.venue_net_pnl) < PNL_TOLERANCE
        )


def reconcile_fills(
    journal_fills: Sequence[Mapping[str, Any]], venue_fills: Sequence[Fill]
) -> FillReconciliation:
    """Match journal fills (plain data, as journaled) with the venue's by (tid, oid); a fill
    seen twice on one side counts once."""
    journal: dict[FillKey, float] = {}
    for data in journal_fills:
        key = (journaled_trade_id(data["tid"]), journaled_order_id(data["oid"]))
        journal.setdefault(key, float(data["closed_pnl"]) - float(data["fee"]))
    venue: dict[FillKey, float] = {}
    for fill in venue_fills:
        venue.setdefault((fill.tid, fill.oid), fill.closed_pnl - fill.fee)
    return FillReconciliation(
        matched=len(journal.keys() & venue.keys()),
        missing_in_journal=sorted(venue.keys() - journal.keys()),
        missing_at_venue=sorted(journal.keys() - venue.keys()),
        journal_net_pnl=math.fsum(journal.values()),
        venue_net_pnl=math.fsum(venue.values()),
    )


def render(results: Sequence[CheckResult]) -> str:
    """One line per check (``PASS  name  detail``), then a summary line (warnings counted
    apart from the passes when there are any)."""
    width = max((len(result.name) for result in results), default=0)
    lines = [
        f"{result.label}  {result.name.ljust(width)}  {result.detail}".rstrip()
        for result in results
    ]
    passed = sum(result.ok is True and not result.warning for result in results)
    warned = sum(result.ok is True and result.warning for result in results)
    failed = sum(result.ok is False for result in results)
    skipped = sum(result.ok is None for result in results)
    verdict = "FAILED" if failed else "OK"
    warnings = f"{warned} warning{'s' if warned != 1 else ''}, " if warned else ""
    lines.append(
        f"{verdict}: {len(results)} checks, {passed} passed, {warnings}{failed} failed, "
        f"{skipped} skipped"
    )
    return "\n".join(lines)


def exit_code(results: Iterable[CheckResult]) -> int:
    """0 when no check failed (skips are not failures), else 1."""
    return 1 if any(result.ok is False for result in results) else 0


def _shown(items: Sequence[object]) -> str:
    text = ", ".join(str(item) for item in items[:SHOWN])
    return text + (f" (+{len(items) - SHOWN} more)" if len(items) > SHOWN else "")


def _describe(error: BaseException) -> str:
    """An error as text; a group as its leaves."""
    if isinstance(error, BaseExceptionGroup):
        return "; ".join(_describe(inner) for inner in error.exceptions)
    text = str(error)
    return f"{type(error).__name__}: {text}" if text else type(error).__name__


def _when(ts: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(ts))


# --- the journal (blocking: called through trio.to_thread) -------------------------------------


def _row(entry: Entry) -> int:
    """An entry's place in the journal's write order (entries read back always have one)."""
    assert entry.id is not None
    return entry.id


def _existing(path: Path) -> Path:
    """``path`` or its nearest existing ancestor (run_dir may not exist before a first run)."""
    while not path.exists() and path.parent != path:
        path = path.parent
    return path


async def _thread(function: Callable[..., T], *args: Any) -> T:
    return await trio.to_thread.run_sync(function, *args, abandon_on_cancel=True)


# --- the venue ---------------------------------------------------------------------------------


@attrs.define
class _Venue:
    """The venue the checks talk to: a probe of it, or why there is none."""

    url: str | None = None
    probe: VenueProbe | None = None
    fresh: bool = False  # an embedded simulator started for these checks: no history
    unavailable: str | None = None  # a FAIL: the venue should be there and is not
    skipped: str | None = None  # a SKIP: there is no venue to check


@asynccontextmanager
async def _client(
    config: CheckedConfig, secrets: CheckedSecrets, url: str
) -> AsyncIterator[_Venue]:
    """A probe of the venue at ``url``, with the key or credentials ``venue.kind`` takes and
    the symbols the service follows (unavailable when the venue's secrets were not resolved)."""
    async with AsyncExitStack() as stack:
        try:
            probe = await stack.enter_async_context(
                open_probe(
                    config.venue,
                    url,
                    signing_key=secrets.venue_key,
                    rate_limit=config.rate_limit,
                    request_timeout_s=REQUEST_TIMEOUT_S,
                    symbols=tuple(config.feeds.coins),
                    api_credentials=secrets.venue_api,
                )
            )
        except ValueError as error:  # the factory: no key or credentials for venue.kind
            yield _Venue(url, unavailable=f"the venue's secrets were not resolved: {error}")
            return
        yield _Venue(url, probe)


@asynccontextmanager
async def _open_venue(
    config: CheckedConfig,
    secrets: CheckedSecrets,
    status: Mapping[str, Any] | None,
    *,
    start_embedded: bool,
) -> AsyncIterator[_Venue]:
    """The running mm's venue, the configured one, or (``start_embedded``) a fresh simulator."""
    if status is not None:
        url = status.get("venue_url")
        if not url:
            yield _Venue(unavailable="the running mm does not know its venue's URL yet")
            return
        async with _client(config, secrets, str(url)) as venue:
            yield venue
        return
    if config.venue.url != EMBEDDED:
        async with _client(config, secrets, config.venue.url) as venue:
            yield venue
        return
    if not start_embedded:
        yield _Venue(skipped="the embedded venue lives only inside a running mm")
        return
    sim = _embedded_simulator(config, secrets)
    async with trio.open_nursery() as nursery:
        try:
            with trio.fail_after(SIM_START_TIMEOUT_S):
                await nursery.start(sim.run)
        except Exception as error:
            failure: str | None = f"the embedded venue did not start: {_describe(error)}"
        else:
            failure = None
        try:
            if failure is not None or not sim.url:
                yield _Venue(unavailable=failure or "the embedded venue has no URL")
            else:
                async with _client(config, secrets, sim.url) as venue:
                    venue.fresh = True
                    yield venue
        finally:
            nursery.cancel_scope.cancel()


def _embedded_simulator(
    config: CheckedConfig, secrets: CheckedSecrets
) -> SimVenue | KucoinSimVenue:
    """The simulator ``venue.kind``'s embedded venue is, as a running mm starts it (mm.app), so
    the checks see the same venue: KuCoin's face funds the development credentials' account
    (the only key it knows); the Hyperliquid simulator funds the account mm trades for."""
    sim = config.sim
    if config.venue.kind == "kucoin":
        return KucoinSimVenue(host=sim.host, port=sim.port, seed=sim.seed)
    key = secrets.venue_key
    return SimVenue(sim, fund_at_start=(account_of(config.venue, key),) if key is not None else ())


# --- running the checks ------------------------------------------------------------------------

Check = Callable[[], Awaitable[CheckResult]]


async def _guarded(name: str, check: Check, deadline_s: float = CHECK_TIMEOUT_S) -> CheckResult:
    """Run one check under a deadline; an error is a FAIL with its text."""
    try:
        with trio.fail_after(deadline_s):
            return await check()
    except trio.TooSlowError:
        return CheckResult(name, False, f"no answer within {deadline_s:g}s")
    except Exception as error:
        return CheckResult(name, False, _describe(error))


async def _fetch_status(admin_url: str) -> dict[str, Any]:
    async with httpx.AsyncClient(timeout=STATUS_TIMEOUT_S) as client:
        with trio.fail_after(STATUS_TIMEOUT_S):
            reply = await client.get(f"{admin_url.rstrip('/')}/status")
        reply.raise_for_status()
        status: dict[str, Any] = reply.json()
    return status


async def _refreshed(status: Mapping[str, Any]) -> Mapping[str, Any]:
    """The running mm's /status read again (the same document when it cannot be)."""
    admin_url = status.get("admin_url")
    if not admin_url:
        return status
    try:
        return await _fetch_status(str(admin_url))
    except (httpx.HTTPError, ValueError, trio.TooSlowError):
        return status


def _redacted(results: list[CheckResult], secrets: CheckedSecrets) -> list[CheckResult]:
    redact = Redactor(secrets.all())
    return [attrs.evolve(result, detail=redact(result.detail)) for result in results]


def _database(config: CheckedConfig) -> Path:
    return config.run_dir / DATABASE_NAME


def _check_config(config: CheckedConfig) -> CheckResult:
    venue = config.venue
    # venue.network names Hyperliquid's chain; KuCoin has one API, its URL.
    network = f" ({venue.network})" if venue.kind == "hyperliquid" else ""
    return CheckResult(
        "config",
        True,
        f"valid (hash {config.hash}); venue {venue.kind} {venue.url}{network}, "
        f"symbols {', '.join(config.strategy.symbols)}, run_dir {config.run_dir}",
    )


async def _journal_writable(config: CheckedConfig, busy_timeout_s: float) -> CheckResult:
    path = _database(config)
    try:
        await _thread(take_write_lock, path, busy_timeout_s)
    except sqlite3.Error as error:
        return CheckResult(
            "journal_writable",
            False,
            f"{path}: cannot take the write lock within {busy_timeout_s:g}s: {error}",
        )
    return CheckResult("journal_writable", True, f"{path}: write lock taken and released")


async def _disk_space(config: CheckedConfig, min_free_mib: float) -> CheckResult:
    where = _existing(config.run_dir)
    usage = await _thread(shutil.disk_usage, where)
    free_mib = usage.free / 2**20
    return CheckResult(
        "disk_space",
        free_mib >= min_free_mib,
        f"{free_mib:,.0f} MiB free at {where} (minimum {min_free_mib:,.0f} MiB)",
    )


def _halted(mode: Mapping[str, Any] | None) -> str | None:
    """Why the autonomy mode is HALT (None when it is not)."""
    if not mode or str(mode.get("mode", "")).lower() != "halt":
        return None
    return str(mode.get("reason") or "no reason given")


REARM_HINT = "`mm rearm --reason ...` is needed"


async def _kill_switch(config: CheckedConfig, status: Mapping[str, Any] | None) -> CheckResult:
    problems: list[str] = []
    if status is not None:
        killswitch = status.get("killswitch") or {}
        if killswitch.get("tripped"):
            values = killswitch.get("values") or {}
            problems.append(f"kill switch tripped: {killswitch.get('reason')} {values}".rstrip())
        mode = status.get("mode") or {}
        source = "the running mm"
    else:
        path = _database(config)
        checkpoint = await _thread(latest_event, path, "killswitch")
        switch = KillSwitch.restore(checkpoint.data if checkpoint else None, clock.wall())
        if switch.tripped and switch.original is not None:
            trip = switch.original
            problems.append(
                f"kill switch tripped at {_when(trip.at)}: {trip.reason.value} "
                f"{dict(trip.values)} (restored tripped when mm starts)"
            )
        autonomy = await _thread(latest_event, path, AUTONOMY_KIND)
        mode = (autonomy.data.get("checkpoint") if autonomy else None) or {}
        source = "the journal"
    halt = _halted(mode)
    if halt is not None:
        problems.append(f"autonomy mode HALT ({halt})")
    if problems:
        return CheckResult("kill_switch", False, f"{'; '.join(problems)}: {REARM_HINT}")
    mode_name = str(mode.get("mode") or "normal")
    return CheckResult("kill_switch", True, f"armed; autonomy mode {mode_name} (from {source})")


async def _venue_reachable(config: CheckedConfig, venue: _Venue) -> CheckResult:
    if venue.probe is None:
        return CheckResult("venue_reachable", False, venue.unavailable or "no venue")
    instruments = await venue.probe.client.instruments()
    listed = {instrument.symbol for instrument in instruments}
    missing = [coin for coin in config.strategy.symbols if coin not in listed]
    where = "embedded venue started for the checks at " if venue.fresh else ""
    if not instruments:
        return CheckResult("venue_reachable", False, f"{where}{venue.url}: an empty universe")
    if missing:
        return CheckResult(
            "venue_reachable", False, f"{where}{venue.url}: {_shown(missing)} not listed"
        )
    return CheckResult(
        "venue_reachable", True, f"{where}{venue.url}: {len(instruments)} assets listed"
    )


async def _venue_access(probe: VenueProbe, status: Mapping[str, Any] | None) -> CheckResult:
    """May the key trade for the account? The running mm's answer from the venue (asking
    again would spend a nonce beside its own), else the venue asked now."""
    running = (status or {}).get("venue_access")
    if isinstance(running, Mapping) and running.get("checked"):
        allowed = bool(running.get("allowed"))
        detail = str(running.get("summary") if allowed else running.get("problem"))
        return CheckResult("venue_access", allowed, f"{detail} (the running mm's check)")
    access = await probe.access()
    return CheckResult("venue_access", access.allowed, access.detail)


def _status_problems(status: Mapping[str, Any]) -> list[str]:
    problems = [str(problem) for problem in status.get("problems") or []]
    trading = status.get("trading") or {}
    if not trading.get("in_sync"):
        problems.insert(0, "trading is not in sync with the venue")
    return problems


async def _feeds_from_status(status: Mapping[str, Any]) -> CheckResult:
    problems = _status_problems(status)
    if problems:
        return CheckResult("feeds_receiving", False, "; ".join(problems))
    return CheckResult("feeds_receiving", True, "the running mm is in sync and healthy")


async def _feeds_from_venue(config: CheckedConfig, venue: _Venue) -> CheckResult:
    assert venue.probe is not None
    symbols = list(config.strategy.symbols)
    seen, errors = await venue.probe.books(symbols, FEED_TIMEOUT_S)
    missing = [coin for coin in symbols if coin not in seen]
    if missing:
        detail = f"no book within {FEED_TIMEOUT_S:g}s for {_shown(missing)}"
        if errors:
            detail += f"; venue errors: {_shown(errors)}"
        return CheckResult("feeds_receiving", False, detail)
    return CheckResult("feeds_receiving", True, f"books received for {', '.join(symbols)}")


async def _venue_positions(probe: VenueProbe) -> dict[str, float] | CheckResult:
    """The venue's signed position per symbol; on a spot venue, whose account holds balances
    and no positions (``AccountState``), the SKIP saying so: mm's position of a symbol is what
    its own fills bought and sold, which no venue figure states."""
    state = await probe.client.account_state()
    if state.balances and not state.positions:
        held = ", ".join(sorted(b.currency for b in state.balances if b.total > 0)) or "nothing"
        detail = (
            f"a spot account has balances ({held}), not positions: mm's positions are its "
            "fills' net, which the venue does not report"
        )
        return CheckResult("positions_match", None, detail)
    return {position.coin: position.szi for position in state.positions if position.szi}


def _status_positions(status: Mapping[str, Any]) -> dict[str, float]:
    symbols = (status.get("trading") or {}).get("symbols") or {}
    positions: dict[str, float] = {}
    for coin, symbol in symbols.items():
        position = (symbol or {}).get("position") or {}
        positions[coin] = float(position.get("position") or 0.0)
    return positions


def _describe_positions(positions: Mapping[str, float]) -> str:
    held = {coin: size for coin, size in positions.items() if size}
    if not held:
        return "flat"
    return ", ".join(f"{coin} {size:.10g}" for coin, size in sorted(held.items()))


async def _positions_running(probe: VenueProbe, status: Mapping[str, Any]) -> CheckResult:
    # Fills move both sides while mm runs (the venue first): read again before failing.
    mismatches: list[str] = []
    for attempt in range(RETRIES):
        if attempt:
            await trio.sleep(RETRY_DELAY_S)
            status = await _refreshed(status)
        venue = await _venue_positions(probe)
        if isinstance(venue, CheckResult):
            return venue
        local = _status_positions(status)
        mismatches = positions_match(local, venue)
        if not mismatches:
            return CheckResult(
                "positions_match", True, f"mm and venue: {_describe_positions(venue)}"
            )
    return CheckResult("positions_match", False, f"mm and venue differ: {_shown(mismatches)}")


async def _positions_fresh(probe: VenueProbe) -> CheckResult:
    """A venue started for the checks: it has no history to compare mm's with."""
    venue = await _venue_positions(probe)
    if isinstance(venue, CheckResult):
        return venue
    detail = "the embedded venue starts flat with the service; compared at startup"
    return CheckResult("positions_match", None, detail)


async def _positions_journaled(config: CheckedConfig, probe: VenueProbe) -> CheckResult:
    path = _database(config)
    journaled = await _thread(latest_event, path, "positions")
    started = await _thread(latest_event, path, "service_started")
    if started is not None and (journaled is None or _row(journaled) < _row(started)):
        return CheckResult(
            "positions_match",
            None,
            f"the last run (started {_when(started.ts)}) journaled no positions at its stop: "
            "it did not stop cleanly; mm compares with the venue at startup",
        )
    venue = await _venue_positions(probe)
    if isinstance(venue, CheckResult):
        return venue
    if journaled is None:
        local: dict[str, float] = {}
        source = "no positions journaled (flat)"
    else:
        local = {str(c): float(s) for c, s in (journaled.data.get("positions") or {}).items()}
        source = f"journaled at {_when(journaled.ts)}"
    mismatches = positions_match(local, venue)
    if mismatches:
        return CheckResult(
            "positions_match", False, f"{source} vs venue differ: {_shown(mismatches)}"
        )
    return CheckResult("positions_match", True, f"{source} and venue: {_describe_positions(venue)}")


async def _api_headroom(probe: VenueProbe, status: Mapping[str, Any] | None) -> CheckResult:
    """The API headroom as mm's rate limiter reckons it, the figure of ``mm_api_headroom_ratio``:
    the running mm's own (its IP weight spent included), else a limiter fresh from the venue's
    own figures for the account; the tightest budget counts."""
    state = await probe.client.rate_limit()
    running = (status or {}).get("api_headroom")
    if isinstance(running, Mapping) and running:
        by_kind = {str(kind): float(value) for kind, value in running.items()}
        source = "the running mm's limiter"
    else:
        by_kind = probe.headroom_by_kind(state)
        source = "the venue's figures for the account"
    left = min(by_kind.values())
    kinds = ", ".join(f"{kind} {value:.0%}" for kind, value in sorted(by_kind.items()))
    return CheckResult(
        "api_headroom",
        left > MIN_HEADROOM,
        f"headroom {left:.0%} (minimum {MIN_HEADROOM:.0%}; {kinds}, from {source}); "
        f"{state.requests_used:,} of {state.requests_cap:,} of the account's requests used",
    )


async def _dead_mans_switch(
    config: CheckedConfig, probe: VenueProbe | None, status: Mapping[str, Any] | None
) -> CheckResult:
    """The venue's dead-man's switch: unavailable as the running mm's keeper knows it (refused
    by the venue, the day's triggers used, disabled), or because the account has traded less
    than the venue requires before it arms one (read from the venue, so an mm that has not
    asked yet is told too). Unavailable is a WARN, not a failure: mm trades without it, and its
    kill switch then retries the cancel-all until the venue shows no order."""
    name = "dead_mans_switch"
    instead = "the kill switch's cancel-all, retried until no order is left, is the only backstop"
    running = (status or {}).get("deadman")
    source = " (the running mm)" if isinstance(running, Mapping) else ""
    if isinstance(running, Mapping) and not running.get("available"):
        detail = f"UNAVAILABLE: {running.get('detail', '')}; {instead}{source}"
        return CheckResult(name, True, detail, warning=True)
    if not config.feeds.deadman.enabled:
        detail = f"UNAVAILABLE: disabled (feeds.deadman.enabled = false); {instead}"
        return CheckResult(name, True, detail, warning=True)
    if probe is None:
        return CheckResult(name, None, "not checked: no venue")
    required = probe.dead_mans_switch_volume
    if required is None:
        detail = f"UNAVAILABLE: the venue has no dead-man's switch; {instead}"
        return CheckResult(name, True, detail, warning=True)
    if required <= 0:
        state = f"{running.get('state')}; " if isinstance(running, Mapping) else ""
        detail = f"available: {state}the venue arms it for any account{source}"
        return CheckResult(name, True, detail)
    traded = (await probe.client.rate_limit()).cum_volume
    if traded < required:
        detail = (
            f"UNAVAILABLE: the venue arms it only for an account that has traded "
            f"${required:,.0f}; this one has traded ${traded:,.2f}; {instead}"
        )
        return CheckResult(name, True, detail, warning=True)
    state = f"{running.get('state')}; " if isinstance(running, Mapping) else ""
    detail = (
        f"available: {state}the account has traded ${traded:,.2f} "
        f"(the venue requires ${required:,.0f}){source}"
    )
    return CheckResult(name, True, detail)


def _unchecked(name: str, venue: _Venue, reachable: CheckResult) -> CheckResult | None:
    """The result for a venue check that cannot run (None when it can)."""
    if venue.skipped is not None:
        return CheckResult(name, None, venue.skipped)
    if venue.probe is None or reachable.ok is not True:
        return CheckResult(name, None, "not checked: the venue is not reachable")
    return None


async def _venue_preflight(
    config: CheckedConfig, status: Mapping[str, Any] | None, venue: _Venue
) -> list[CheckResult]:
    """venue_reachable, venue_access, feeds_receiving, positions_match, api_headroom,
    dead_mans_switch."""
    reachable = await _guarded("venue_reachable", partial(_venue_reachable, config, venue))
    results = [reachable]
    unchecked_access = _unchecked("venue_access", venue, reachable)
    if unchecked_access is not None or venue.probe is None:
        results.append(unchecked_access or CheckResult("venue_access", None, "no venue"))
    else:
        access = partial(_venue_access, venue.probe, status)
        results.append(await _guarded("venue_access", access))
    if status is not None:
        results.append(await _guarded("feeds_receiving", partial(_feeds_from_status, status)))
    else:
        results.append(
            _unchecked("feeds_receiving", venue, reachable)
            or await _guarded(
                "feeds_receiving",
                partial(_feeds_from_venue, config, venue),
                FEED_TIMEOUT_S + CHECK_TIMEOUT_S,
            )
        )
    if venue.fresh:
        unchecked = _unchecked("positions_match", venue, reachable)
        if unchecked is not None or venue.probe is None:
            detail = "the embedded venue starts flat with the service; compared at startup"
            results.append(CheckResult("positions_match", None, detail))
        else:
            check = partial(_positions_fresh, venue.probe)
            results.append(await _guarded("positions_match", check))
    else:
        unchecked = _unchecked("positions_match", venue, reachable)
        if unchecked is not None or venue.probe is None:
            results.append(unchecked or CheckResult("positions_match", None, "no venue"))
        elif status is not None:
            check = partial(_positions_running, venue.probe, status)
            results.append(await _guarded("positions_match", check))
        else:
            check = partial(_positions_journaled, config, venue.probe)
            results.append(await _guarded("positions_match", check))
    unchecked = _unchecked("api_headroom", venue, reachable)
    if unchecked is not None or venue.probe is None:
        results.append(unchecked or CheckResult("api_headroom", None, "no venue"))
    else:
        check = partial(_api_headroom, venue.probe, status)
        results.append(await _guarded("api_headroom", check))
    unchecked = _unchecked("dead_mans_switch", venue, reachable)
    if unchecked is not None and (status is None or "deadman" not in status):
        results.append(unchecked)
    else:
        check = partial(_dead_mans_switch, config, venue.probe, status)
        results.append(await _guarded("dead_mans_switch", check))
    return results


async def preflight(
    config: CheckedConfig,
    secrets: CheckedSecrets,
    *,
    status: dict[str, Any] | None,
    min_free_mib: float = 512.0,
    journal_busy_timeout_s: float = 2.0,
) -> list[CheckResult]:
    """The pre-flight checks; ``status`` is the running mm's /status (None: not running).

    ``journal_busy_timeout_s`` bounds the wait for the journal's write lock."""
    results = [
        _check_config(config),
        await _guarded(
            "journal_writable", partial(_journal_writable, config, journal_busy_timeout_s)
        ),
        await _guarded("disk_space", partial(_disk_space, config, min_free_mib)),
        await _guarded("kill_switch", partial(_kill_switch, config, status)),
    ]
    try:
        async with _open_venue(config, secrets, status, start_embedded=True) as venue:
            results += await _venue_preflight(config, status, venue)
    except Exception as error:  # the embedded venue failed while the checks ran
        results.append(CheckResult("venue", False, _describe(error)))
    return _redacted(results, secrets)


# --- post-flight -------------------------------------------------------------------------------


async def _no_open_orders(probe: VenueProbe) -> CheckResult:
    orders = await probe.client.open_orders()
    if orders:
        named = [f"{o.coin} {o.side.name.lower()} {o.sz:g}@{o.px:g} oid {o.oid}" for o in orders]
        return CheckResult(
            "no_open_orders", False, f"{len(orders)} open at the venue: {_shown(named)}"
        )
    return CheckResult("no_open_orders", True, f"none open for {probe.account}")


async def _journal_flushed(config: CheckedConfig, status: Mapping[str, Any] | None) -> CheckResult:
    if status is not None:
        detail = ""
        for attempt in range(RETRIES):
            if attempt:
                await trio.sleep(RETRY_DELAY_S)
                status = await _refreshed(status)
            health = (status.get("mode") or {}).get("health") or {}
            lag = float(health.get("journal_lag_s") or 0.0)
            fill = float((health.get("queue_fill") or {}).get("journal") or 0.0)
            detail = f"journal lag {lag:g}s, queue {fill:.1%} full"
            if lag == 0 and fill == 0:
                return CheckResult("journal_flushed", True, f"{detail} (the running mm)")
        return CheckResult("journal_flushed", False, f"{detail}: entries wait to be written")
    path = _database(config)
    if not path.exists():
        return CheckResult("journal_flushed", None, f"no journal at {path}")
    started = await _thread(latest_event, path, "service_started")
    if started is None:
        return CheckResult("journal_flushed", None, f"no run journaled in {path}")
    stopping = await _thread(latest_event, path, "service_stopping")
    busy, frames, _ = await _thread(checkpoint_wal, path)
    problems = []
    if stopping is None or _row(stopping) < _row(started):
        problems.append(
            f"the last run (started {_when(started.ts)}) journaled no stop: "
            "it crashed or was killed, and entries may be lost"
        )
    if busy:
        problems.append("the WAL could not be checkpointed: another connection holds it")
    if problems:
        return CheckResult("journal_flushed", False, "; ".join(problems))
    assert stopping is not None
    return CheckResult(
        "journal_flushed",
        True,
        f"the last run stopped cleanly at {_when(stopping.ts)}; WAL folded into the database "
        f"({max(frames, 0)} frames)",
    )


async def _venue_fills(probe: VenueProbe, start_ms: int, end_ms: int | None) -> list[Fill]:
    """The account's fills from ``start_ms`` (to ``end_ms``), page by page."""
    fills: dict[FillKey, Fill] = {}
    since = start_ms
    for _ in range(MAX_FILL_PAGES):
        page = await probe.client.fills_since(since)
        for fill in page:
            fills.setdefault((fill.tid, fill.oid), fill)
        if len(page) < probe.fills_page:
            break
        latest = max(fill.time_ms for fill in page)
        since = latest if latest > since else since + 1
    return [f for f in fills.values() if end_ms is None or f.time_ms <= end_ms]


def _reconciliation_detail(result: FillReconciliation) -> str:
    parts = [
        f"{result.matched} fills matched; net PnL journal {result.journal_net_pnl:.6f}, "
        f"venue {result.venue_net_pnl:.6f}"
    ]
    if result.missing_in_journal:
        keys = [f"tid {tid}/oid {oid}" for tid, oid in result.missing_in_journal]
        parts.append(f"not journaled: {_shown(keys)}")
    if result.missing_at_venue:
        keys = [f"tid {tid}/oid {oid}" for tid, oid in result.missing_at_venue]
        parts.append(f"unknown to the venue: {_shown(keys)}")
    return "; ".join(parts)


async def _pnl_reconciled(config: CheckedConfig, probe: VenueProbe, running: bool) -> CheckResult:
    path = _database(config)
    started = await _thread(latest_event, path, "service_started")
    if started is None:
        return CheckResult("pnl_reconciled", None, f"no run journaled in {path}")
    start_ms = int(started.ts * 1000)
    end_ms: int | None = None
    if not running:
        stopping = await _thread(latest_event, path, "service_stopping")
        if stopping is not None and _row(stopping) > _row(started):
            end_ms = int(stopping.ts * 1000)
    result = None
    for attempt in range(RETRIES if running else 1):
        if attempt:
            await trio.sleep(RETRY_DELAY_S)  # a fill may be on its way to the journal
        journaled = await _thread(fills_between, path, start_ms, end_ms)
        result = reconcile_fills(journaled, await _venue_fills(probe, start_ms, end_ms))
        if result.ok:
            break
    assert result is not None
    since = f"since {_when(started.ts)}: "
    return CheckResult("pnl_reconciled", result.ok, since + _reconciliation_detail(result))


async def postflight(
    config: CheckedConfig, secrets: CheckedSecrets, *, status: dict[str, Any] | None
) -> list[CheckResult]:
    """The post-flight checks; ``status`` is the running mm's /status (None: not running)."""
    results: list[CheckResult] = []
    try:
        async with _open_venue(config, secrets, status, start_embedded=False) as venue:
            if venue.skipped is not None:
                results.append(CheckResult("no_open_orders", None, venue.skipped))
            elif venue.probe is None:
                results.append(CheckResult("no_open_orders", False, venue.unavailable or ""))
            else:
                results.append(
                    await _guarded("no_open_orders", partial(_no_open_orders, venue.probe))
                )
            results.append(
                await _guarded("journal_flushed", partial(_journal_flushed, config, status))
            )
            if venue.skipped is not None:
                results.append(CheckResult("pnl_reconciled", None, venue.skipped))
            elif venue.probe is None:
                results.append(CheckResult("pnl_reconciled", False, venue.unavailable or ""))
            else:
                check = partial(_pnl_reconciled, config, venue.probe, status is not None)
                results.append(await _guarded("pnl_reconciled", check))
    except Exception as error:
        results.append(CheckResult("venue", False, _describe(error)))
    return _redacted(results, secrets)


async def run_checks(
    config: CheckedConfig, secrets: CheckedSecrets, *, post: bool, admin_url: str | None
) -> list[CheckResult]:
    """Pre-flight (or, ``post``, post-flight) checks; ``admin_url`` names a running mm."""
    status: dict[str, Any] | None = None
    if admin_url is not None:
        try:
            status = await _fetch_status(admin_url)
        except (httpx.HTTPError, ValueError, trio.TooSlowError) as error:
            failed = CheckResult(
                "service_status",
                False,
                f"mm is running (admin {admin_url}) but /status did not answer: {_describe(error)}",
            )
            results = [failed] if post else [_check_config(config), failed]
            return _redacted(results, secrets)
    try:
        if post:
            return await postflight(config, secrets, status=status)
        return await preflight(config, secrets, status=status)
    except Exception as error:  # the checks catch their own errors: this is the last resort
        return _redacted([CheckResult("checks", False, _describe(error))], secrets)
