"""``mm sim --venue kucoin``: the KuCoin face on its own, as a trader starts it for the SDK."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import httpx

from mm.venues.kucoin.answers import unwrap
from mm.venues.kucoin.instruments import parse_symbols
from tests.e2e.mmproc import MM, mm_env

SHIPPED_CONFIG = Path(__file__).resolve().parents[4] / "config.toml"
ANNOUNCED = re.compile(r"mm sim: KuCoin-compatible venue at (http://\S+) ")
START_WITHIN_S = 60  # the interpreter's start on a loaded machine (a hang guard)


def test_mm_sim_serves_the_kucoin_face_until_stopped() -> None:
    command = [*MM, "sim", "--venue", "kucoin", "-c", str(SHIPPED_CONFIG), "--port", "0"]
    process = subprocess.Popen(
        command, env=mm_env(), stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True
    )
    try:
        assert process.stdout is not None
        line = process.stdout.readline()
        match = ANNOUNCED.match(line)
        assert match is not None, line
        url = match.group(1)
        with httpx.Client(base_url=url, timeout=START_WITHIN_S) as client:
            answer = client.get("/api/v2/symbols")
            specs = parse_symbols(unwrap(answer.status_code, answer.content))
        assert {spec.instrument.symbol for spec in specs} == {"BTC-USDT", "ETH-USDT", "ETH-BTC"}
    finally:
        process.terminate()
        assert process.wait(timeout=START_WITHIN_S) == 0  # SIGTERM: a clean stop


def test_the_hyperliquid_faucet_is_refused_for_the_kucoin_face() -> None:
    address = "0x" + "ab" * 20
    done = subprocess.run(
        [*MM, "sim", "--venue", "kucoin", "-c", str(SHIPPED_CONFIG), "--fund", address],
        env=mm_env(),
        capture_output=True,
        text=True,
        timeout=START_WITHIN_S,
    )
    assert done.returncode == 2
    assert "--fund is the Hyperliquid face's faucet" in done.stderr
