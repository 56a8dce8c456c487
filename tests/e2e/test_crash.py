"""The crash drill: mm killed with SIGKILL in the middle of trading, ten times, and started again.

Against ``mm sim`` run as its own process (the venue outlives mm, as a real venue does): mm
quotes, is killed with SIGKILL (no cleanup at all: its orders stay resting), the venue's flow
fills them while it is down, and mm starts again on the same run directory. After every
restart, within 5 s of the service answering again (its admin API up), the journal holds
exactly the fills the venue reports for the account, by trade id (nothing lost, nothing
doubled, the fills made while down included), and every coin's position mm reports equals
the venue's (issue 13, "Done when"). The restarts used
to show a phantom position (a journaled fill applied again on top of the venue's position)
and, with frames dropped, fills that never reached the journal.

Each cycle is kept short: the strategy warms up fast (``WARM_UP``: estimator sampling only,
no threshold), the venue's takers come often (``taker_a``), and a cycle ends as soon as a fill
lands while mm is down.
"""

from __future__ import annotations

import queue
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from functools import partial
from pathlib import Path
from typing import IO, Any

import pytest

from mm.journal import DATABASE_NAME, read_events
from mm.model import OrderId, TradeId, journaled_order_id, journaled_trade_id
from mm.venues.config import DEV_PRIVATE_KEY
from mm.venues.hyperliquid.signing import address_from_private_key
from tests.conftest import ConfigWriter
from tests.e2e.mmproc import LOCAL, MMProcess, mm_env
from tests.ids import hl_oid, hl_tid
from tests.venues.sim.sdk.helpers import ANNOUNCEMENT, Sim, stop

pytestmark = pytest.mark.slow

ACCOUNT = address_from_private_key(DEV_PRIVATE_KEY).lower()
CYCLES = 10
AGREE_WITHIN_S = 5.0  # after each restart: the journal and the positions equal the venue's

# The venue: takers often enough that resting quotes fill within a second or two; rate limits
# off, as every process of the suite shares one IP.
VENUE_CONFIG = """\
[service]
log_level = "WARNING"

[sim]
coins = ["BTC", "ETH"]
faucet_usdc = 100000.0
book_interval_ms = 100
rate_limits = false

[sim.market]
taker_a = 6.0
"""

# The strategy's estimators sample fast, so that each restart quotes within a couple of seconds.
WARM_UP: dict[str, dict[str, Any]] = {
    "strategy.volatility": {"sample_interval_s": 0.2, "min_samples": 5},
    "strategy.intensity": {"min_trades": 10, "recalibrate_s": 1.0},
}


@pytest.fixture
def sim(tmp_path: Path) -> Iterator[Sim]:
    """``mm sim`` as its own process; stopped (SIGTERM, then SIGKILL) at the end."""
    directory = tmp_path / "venue"
    directory.mkdir()
    config = directory / "sim.toml"
    config.write_text(VENUE_CONFIG)
    command = [sys.executable, "-m", "mm", "sim", "-c", str(config), "--port", "0"]
    command += ["--fund", ACCOUNT]  # the faucet funds the account mm trades for
    with (directory / "sim.stderr").open("w") as stderr:
        process = subprocess.Popen(
            [*command, "--seed", "11"],
            stdout=subprocess.PIPE,
            stderr=stderr,
            text=True,
            env=mm_env(),
            cwd=directory,
        )
    try:
        assert process.stdout is not None
        lines: queue.Queue[str] = queue.Queue()
        threading.Thread(target=_read_lines, args=(process.stdout, lines), daemon=True).start()
        match = None
        deadline = time.monotonic() + 20
        while match is None and time.monotonic() < deadline:
            try:
                match = ANNOUNCEMENT.search(lines.get(timeout=0.5))
            except queue.Empty:
                assert process.poll() is None, (directory / "sim.stderr").read_text()
        assert match is not None, "mm sim did not announce its URL"
        yield Sim(url=match.group(1), ws_url=match.group(2), process=process)
    finally:
        stop(process)


def _read_lines(stream: IO[str], lines: queue.Queue[str]) -> None:
    for line in stream:
        lines.put(line)


def venue_info(sim: Sim, request: dict[str, Any]) -> Any:
    return LOCAL.post(f"{sim.url}/info", json=request, timeout=5.0).json()


def venue_fills(sim: Sim) -> set[tuple[TradeId, OrderId]]:
    fills = venue_info(sim, {"type": "userFills", "user": ACCOUNT})
    return {(hl_tid(fill["tid"]), hl_oid(fill["oid"])) for fill in fills}


def venue_positions(sim: Sim) -> dict[str, float]:
    state = venue_info(sim, {"type": "clearinghouseState", "user": ACCOUNT})
    return {p["position"]["coin"]: float(p["position"]["szi"]) for p in state["assetPositions"]}


def resting_orders(sim: Sim) -> int:
    return len(venue_info(sim, {"type": "openOrders", "user": ACCOUNT}))


def journaled(run_dir: Path) -> list[tuple[TradeId, OrderId]]:
    entries = read_events(run_dir / DATABASE_NAME, "fill")
    return [
        (journaled_trade_id(entry.data["tid"]), journaled_order_id(entry.data["oid"]))
        for entry in entries
    ]


def status(admin_url: str) -> dict[str, Any]:
    result: dict[str, Any] = LOCAL.get(f"{admin_url}/status", timeout=5.0).json()
    return result


def reported_positions(admin_url: str) -> dict[str, float]:
    symbols = status(admin_url)["trading"]["symbols"]
    return {coin: symbol["position"].get("position", 0.0) for coin, symbol in symbols.items()}


def wait(
    condition: Callable[[], bool],
    until: float,
    what: str,
    why: Callable[[], str] | None = None,
) -> float:
    """Poll ``condition`` until it holds; return when the read that found it holding began.
    On a timeout the failure says what ``why`` reads (mm's own account of itself).

    A read can take seconds on a loaded machine (``settled`` reads again while fills land), so
    the time a check returns is the observer's, not mm's: the state it found held by then.
    """
    while True:
        began = time.monotonic()
        if condition():
            return began
        if time.monotonic() > until:
            raise AssertionError(f"timed out waiting for {what}" + (f": {why()}" if why else ""))
        time.sleep(0.05)


def why_not_quoting(admin_url: str) -> str:
    """Why mm says it is not trading, and each symbol's gate (a tripped kill switch, say)."""
    document = status(admin_url)
    gates = {coin: entry.get("gate") for coin, entry in document["trading"]["symbols"].items()}
    return f"not trading {document['not_trading']}, gates {gates}"


def settled(read: Callable[[], Any], sim: Sim) -> Any:
    """``read()`` taken while the venue's fills stood still (none landed during the read)."""
    while True:
        before = venue_fills(sim)
        value = read()
        if venue_fills(sim) == before:
            return before, value


def fills_beyond(sim: Sim, known: set[tuple[TradeId, OrderId]]) -> bool:
    return venue_fills(sim) > known


def journal_agrees(sim: Sim, run_dir: Path) -> bool:
    """The journal holds each of the venue's fills once, and nothing else."""
    fills, keys = settled(lambda: journaled(run_dir), sim)
    return bool(len(keys) == len(set(keys)) and set(keys) == fills)


def positions_agree(sim: Sim, admin_url: str) -> bool:
    """Every coin's position mm reports is the venue's (zero where it lists none)."""
    _, (venue, reported) = settled(
        lambda: (venue_positions(sim), reported_positions(admin_url)), sim
    )
    return all(abs(size - venue.get(coin, 0.0)) <= 1e-9 for coin, size in reported.items())


def test_ten_sigkills_mid_trading_lose_and_double_nothing(
    sim: Sim, write_config: ConfigWriter
) -> None:
    config = write_config(venue={"url": sim.url}, **WARM_UP)
    run_dir = config.parent / "run"
    mm = MMProcess(config)
    info = mm.wait_ready()
    disagreements: list[str] = []
    try:
        for cycle in range(1, CYCLES + 1):
            # Trading: quotes rest at the venue. Then SIGKILL: no cleanup at all.
            until = time.monotonic() + 20
            why = partial(why_not_quoting, info.admin_url)
            wait(lambda: resting_orders(sim) > 0, until, f"quotes ({cycle})", why)
            assert not status(info.admin_url)["killswitch"]["tripped"], cycle
            mm.proc.kill()
            mm.proc.wait(timeout=10)
            # The venue fills the resting quotes while mm is down.
            wait(partial(fills_beyond, sim, venue_fills(sim)), time.monotonic() + 20, "a fill")

            mm = MMProcess(config)
            info = mm.wait_ready()
            # From the moment the restarted service answers: the interpreter's own start (its
            # imports take seconds on a loaded machine) is not the recovery being judged.
            restarted = time.monotonic()
            until = restarted + AGREE_WITHIN_S
            admin = info.admin_url

            journal_at = wait(partial(journal_agrees, sim, run_dir), until, f"journal ({cycle})")
            positions_at = wait(partial(positions_agree, sim, admin), until, f"positions ({cycle})")
            agreed_after = max(journal_at, positions_at) - restarted
            if agreed_after > AGREE_WITHIN_S:
                disagreements.append(f"cycle {cycle}: {agreed_after:.1f}s")
        assert disagreements == []
        assert not status(info.admin_url)["killswitch"]["tripped"]
    finally:
        mm.proc.terminate()
        mm.wait(timeout=15)
    keys = journaled(run_dir)
    assert len(keys) == len(set(keys))
    assert set(keys) <= venue_fills(sim)
