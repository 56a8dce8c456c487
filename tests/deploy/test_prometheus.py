"""A real Prometheus against a live mm: the rule files load and pass their unit tests, and every
panel query of every dashboard returns data: the market maker's dashboards from a market maker
trading on the embedded Hyperliquid face, the triangular arbitrage dashboard (a dashboard of
``STRATEGY_DASHBOARDS``) from the shipped config.triarb.toml on the embedded KuCoin face once it
has filled a triangle (on a KuCoin face whose triangles open often).

Debian's ``prometheus`` package (which brings ``promtool``) is installed when it is missing and
the suite runs as root with apt-get (as CI does); elsewhere these tests skip, saying why.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import socket
import subprocess
from pathlib import Path
from types import ModuleType
from typing import Any

import httpx
import pytest
import trio
import yaml

from mm.app import Service
from mm.config import load_config, resolve_secrets
from mm.venues.sim.kucoin.server import KucoinSimVenue
from mm.venues.sim.kucoin.triangle import TriangleConfig
from tests.conftest import eventually
from tests.e2e.fast import FAST
from tests.e2e.virtual import shipped_env

ROOT = Path(__file__).resolve().parents[2]
RULES = sorted((ROOT / "deploy" / "prometheus" / "rules").glob("*.yml"))
RULE_TESTS = sorted((ROOT / "deploy" / "prometheus" / "tests").glob("*.yml"))
GENERATOR = ROOT / "deploy" / "grafana" / "generate.py"
TRIARB_CONFIG = ROOT / "config.triarb.toml"
# Grafana's variables, as a dashboard would expand them over the last few minutes.
VARIABLES = {"$__rate_interval": "30s", "$__interval": "5s", "$__range": "5m", "$symbol": ".*"}


def install_prometheus() -> str | None:
    """Install Debian's prometheus package; None on success, else why it could not be."""
    if os.geteuid() != 0:
        return "not running as root"
    if shutil.which("apt-get") is None:
        return "apt-get is not available"
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    for command in (
        ["apt-get", "update", "-qq"],
        ["apt-get", "install", "-y", "-qq", "--no-install-recommends", "prometheus"],
    ):
        done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=600)
        if done.returncode != 0:
            return f"{' '.join(command)} failed: {done.stderr.strip()[-500:]}"
    return None


@pytest.fixture(scope="module")
def binaries() -> tuple[str, str]:
    found = shutil.which("prometheus"), shutil.which("promtool")
    if None in found:
        why = install_prometheus()
        found = shutil.which("prometheus"), shutil.which("promtool")
        if None in found:
            pytest.skip(f"prometheus is not installed and could not be installed: {why}")
    prometheus, promtool = found
    assert prometheus is not None
    assert promtool is not None
    return prometheus, promtool


def generator() -> ModuleType:
    spec = importlib.util.spec_from_file_location("mm_dashboards", GENERATOR)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_rule_files_load_and_pass_their_unit_tests(binaries: tuple[str, str]) -> None:
    _, promtool = binaries
    assert RULES, "no rule files in deploy/prometheus/rules"
    checked = subprocess.run(
        [promtool, "check", "rules", *map(str, RULES)], capture_output=True, text=True
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert RULE_TESTS, "no promtool unit tests in deploy/prometheus/tests"
    tested = subprocess.run(
        [promtool, "test", "rules", *map(str, RULE_TESTS)], capture_output=True, text=True
    )
    assert tested.returncode == 0, tested.stdout + tested.stderr


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def prometheus_config(target: str, path: Path) -> Path:
    rule_files = "\n".join(f'  - "{rule}"' for rule in RULES)
    path.write_text(
        "global:\n"
        "  scrape_interval: 1s\n"
        "  evaluation_interval: 1s\n"
        f"rule_files:\n{rule_files}\n"
        "scrape_configs:\n"
        "  - job_name: mm\n"
        "    static_configs:\n"
        f'      - targets: ["{target}"]\n'
    )
    return path


@pytest.fixture
def prometheus_dir(tmp_path: Path) -> Path:
    directory = tmp_path / "prometheus"
    directory.mkdir()
    return directory


async def query(client: httpx.AsyncClient, expr: str) -> list[Any]:
    reply = await client.get("/api/v1/query", params={"query": expr})
    body = reply.json()
    assert body["status"] == "success", f"{expr}: {body}"
    result: list[Any] = body["data"]["result"]
    return result


def expand(expr: str) -> str:
    for variable, value in VARIABLES.items():
        expr = expr.replace(variable, value)
    return expr


def panel_queries(strategy: str | None) -> list[tuple[str, str, str]]:
    """The panel queries of the dashboards of ``strategy`` (a ``strategy.kind``), or of the
    dashboards of no one strategy (None)."""
    module = generator()
    of: dict[str, str] = module.STRATEGY_DASHBOARDS
    listed: list[tuple[str, str, str]] = module.queries()
    found = [query for query in listed if of.get(query[0]) == strategy]
    assert found, f"no dashboard of {strategy or 'every strategy'}"
    return found


async def test_every_panel_query_returns_data_from_a_live_mm(
    binaries: tuple[str, str], write_config: Any, prometheus_dir: Path
) -> None:
    config = load_config(write_config(**FAST), {})
    await panels_have_data(
        binaries, Service(config, resolve_secrets(config, {})), prometheus_dir, None
    )


async def test_every_triarb_panel_query_returns_data_from_a_live_triarb_mm(
    binaries: tuple[str, str], tmp_path: Path, prometheus_dir: Path
) -> None:
    # The shipped config.triarb.toml, on a KuCoin face of its own. The embedded face's shocks
    # (40 bps, twice a minute) leave a triangle above min_profit_bps after three 0.1 % taker
    # fees and the spreads only now and then (none in 90 s of one run): this one shocks 60 bps
    # once a second, so that a triangle fills within seconds and every panel has its series.
    face = KucoinSimVenue(market=TriangleConfig(shocks_per_minute=60.0, shock_bps=60.0))
    async with trio.open_nursery() as nursery:
        url = await nursery.start(face.run)
        env = shipped_env(tmp_path / "run", {"venue.url": url})
        config = load_config(TRIARB_CONFIG, env)
        assert (config.strategy.kind, config.venue.url) == ("triarb", url)
        service = Service(config, resolve_secrets(config, env))
        await panels_have_data(binaries, service, prometheus_dir, "triarb")
        nursery.cancel_scope.cancel()


async def panels_have_data(
    binaries: tuple[str, str], service: Service, prometheus_dir: Path, strategy: str | None
) -> None:
    """Run ``service`` under a Prometheus scraping it; once it has traded and been scraped
    (``traded_and_scraped``), every query of ``strategy``'s dashboards returns data."""
    prometheus, _ = binaries
    queries = panel_queries(strategy)
    port = free_port()
    with trio.fail_after(150):
        async with trio.open_nursery() as nursery:
            await nursery.start(service.run)
            target = str(service.admin_url).removeprefix("http://")
            settings = prometheus_config(target, prometheus_dir / "prometheus.yml")
            command = [
                prometheus,
                f"--config.file={settings}",
                f"--storage.tsdb.path={prometheus_dir / 'data'}",
                f"--web.listen-address=127.0.0.1:{port}",
                "--log.level=warn",
            ]
            process = await trio.lowlevel.open_process(command)
            try:
                async with httpx.AsyncClient(
                    base_url=f"http://127.0.0.1:{port}", timeout=5.0
                ) as client:
                    await ready(client)
                    await traded_and_scraped(client, service, strategy)
                    await rules_healthy(client, recorded=strategy is None)
                    missing = []
                    for dashboard, panel, expr in queries:
                        if not await query(client, expand(expr)):
                            missing.append(f"{dashboard} / {panel}: {expr}")
                    assert not missing, "panel queries without data:\n" + "\n".join(missing)
            finally:
                process.terminate()
                with trio.move_on_after(10):
                    await process.wait()
                if process.returncode is None:
                    process.kill()
            service.request_stop("test finished")


async def ready(client: httpx.AsyncClient) -> None:
    with trio.fail_after(30):
        while True:
            try:
                if (await client.get("/-/ready")).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            await trio.sleep(0.2)


async def traded_and_scraped(
    client: httpx.AsyncClient, service: Service, strategy: str | None
) -> None:
    """The target is up, mm has traded (the market maker filled on both symbols; triangular
    arbitrage filled a triangle: its profit and leg latencies are series from then on), and
    rate windows hold enough samples."""
    get = service.registry.get_sample_value

    def filled() -> bool:
        if strategy == "triarb":
            return (get("mm_triarb_triangles_total", {"outcome": "FILLED"}) or 0) > 0
        return all(
            (get("mm_fills_total", {"symbol": s, "side": "buy"}) or 0)
            + (get("mm_fills_total", {"symbol": s, "side": "sell"}) or 0)
            > 0
            for s in ("BTC", "ETH")
        )

    await eventually(filled, within=90)
    with trio.fail_after(30):
        while not await query(client, 'up{job="mm"} == 1'):  # noqa: ASYNC110 (polling an API)
            await trio.sleep(0.5)
    await trio.sleep(8)  # several scrapes inside every 30 s rate window


async def rules_healthy(client: httpx.AsyncClient, *, recorded: bool) -> None:
    """Every rule group of every file is loaded and each rule evaluated without error; with
    ``recorded``, every recording rule has data (the rules record the market maker's series)."""
    names = {
        group["name"] for path in RULES for group in yaml.safe_load(path.read_text())["groups"]
    }
    with trio.fail_after(40):
        while True:
            groups = (await client.get("/api/v1/rules")).json()["data"]["groups"]
            rules = [rule for group in groups for rule in group["rules"]]
            loaded = {group["name"] for group in groups}
            if loaded == names and rules and all(r["health"] == "ok" for r in rules):
                break
            await trio.sleep(0.5)
    errors = [f"{r['name']}: {r.get('lastError')}" for r in rules if r.get("lastError")]
    assert not errors, errors
    if not recorded:
        return
    recordings = [r["name"] for r in rules if r["type"] == "recording"]
    with trio.fail_after(40):
        while True:
            empty = [name for name in recordings if not await query(client, name)]
            if not empty:
                break
            await trio.sleep(1)
