"""Running ``mm sim`` as a subprocess, and small tools for synchronous tests against it.

``run_sim`` starts ``python -m mm sim --port 0`` with a config of its own (and ``--fund`` for
each address it names), waits (bounded) for the URL it announces on stdout, and stops it with
SIGTERM, then SIGKILL. Nobody has an account on it until funded: ``fund`` asks its faucet
(``POST /sim/fund``). ``Inbox`` collects what the SDK's WebSocket callbacks receive (on the
SDK's thread) and lets a test wait for a message; ``RawSocket`` does the same on a plain
websocket-client connection. Prices: the
synthetic market moves, so orders meant to rest are priced far from the mid, and orders meant
to fill cross it deeply.
"""

from __future__ import annotations

import contextlib
import json
import os
import queue
import re
import secrets
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import httpx
import pytest
import websocket
from hyperliquid.utils.types import Cloid

START_TIMEOUT = 20.0
STOP_TIMEOUT = 5.0
WAIT_TIMEOUT = 5.0
ANNOUNCEMENT = re.compile(
    r"mm sim: Hyperliquid-compatible venue at (http://\S+) \(WebSocket (ws://\S+)\)"
)
COINS = ("BTC", "ETH", "SOL")
SZ_DECIMALS = {"BTC": 5, "ETH": 4, "SOL": 2}
ASSET = {coin: index for index, coin in enumerate(COINS)}
FAUCET_USDC = 100_000.0
GTC: dict[str, Any] = {"limit": {"tif": "Gtc"}}
IOC: dict[str, Any] = {"limit": {"tif": "Ioc"}}
ALO: dict[str, Any] = {"limit": {"tif": "Alo"}}

# rate_limits off: the whole suite comes from one IP, and every SDK Info or Exchange
# construction alone weighs 40 (spotMeta + meta) of the 1200 a minute; the limits have their
# own tests. Books are published every 100 ms so WebSocket waits stay short. Actions still
# commit a block later, answered after their effect, but a short one (50-100 ms rather than
# the venue's 200-500): these tests are about the wire, on the real clock, one action after
# another; the commit delay's own tests (tests/venues/sim/test_commits.py) use the shipped one.
SIM_CONFIG = """\
[service]
log_level = "WARNING"

[sim]
coins = ["BTC", "ETH", "SOL"]
faucet_usdc = {faucet}
book_interval_ms = 100
rate_limits = false
commit_delay_min_ms = 50.0
commit_delay_max_ms = 100.0
"""


@dataclass(frozen=True)
class Sim:
    """A running ``mm sim``: its HTTP base URL and WebSocket URL."""

    url: str
    ws_url: str
    process: subprocess.Popen[str]


def _read_lines(stream: IO[str], lines: queue.Queue[str | None]) -> None:
    for line in stream:
        lines.put(line)
    lines.put(None)


def _clean_env() -> dict[str, str]:
    return {key: value for key, value in os.environ.items() if not key.startswith("MM_")}


@contextlib.contextmanager
def run_sim(
    directory: Path, *, seed: int, faucet_usdc: float = FAUCET_USDC, funded: tuple[str, ...] = ()
) -> Iterator[Sim]:
    """Start ``mm sim`` with a config in ``directory``; yield it once it listens; stop it."""
    config = directory / "sim.toml"
    config.write_text(SIM_CONFIG.format(faucet=faucet_usdc))
    stderr_path = directory / "sim.stderr"
    command = [sys.executable, "-m", "mm", "sim", "--port", "0", "--seed", str(seed)]
    for address in funded:
        command += ["--fund", address]
    with stderr_path.open("w") as stderr:
        process = subprocess.Popen(
            [*command, "-c", str(config)],
            stdout=subprocess.PIPE,
            stderr=stderr,
            text=True,
            env=_clean_env(),
            cwd=directory,
        )
    try:
        assert process.stdout is not None
        lines: queue.Queue[str | None] = queue.Queue()
        threading.Thread(target=_read_lines, args=(process.stdout, lines), daemon=True).start()
        deadline = time.monotonic() + START_TIMEOUT
        match = None
        while match is None:
            try:
                line = lines.get(timeout=max(deadline - time.monotonic(), 0.01))
            except queue.Empty:
                line = None
            if line is None:
                stop(process)
                raise RuntimeError(
                    f"mm sim did not announce its URL within {START_TIMEOUT} s "
                    f"(exit status {process.poll()}):\n{stderr_path.read_text()[-4000:]}"
                )
            match = ANNOUNCEMENT.search(line)
        yield Sim(url=match.group(1), ws_url=match.group(2), process=process)
    finally:
        stop(process)


def fund(sim: Sim, address: str, usdc: float | None = FAUCET_USDC) -> Any:
    """Credit ``address`` on the simulator's faucet; its answer (``user``, ``accountValue``)."""
    body: dict[str, Any] = {"user": address}
    if usdc is not None:
        body["usdc"] = usdc
    response = httpx.post(f"{sim.url}/sim/fund", json=body, timeout=5.0)
    assert response.status_code == 200, response.text
    return response.json()


def stop(process: subprocess.Popen[str]) -> None:
    """SIGTERM, then SIGKILL if the process has not exited in time."""
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(STOP_TIMEOUT)


def wait_for(
    condition: Callable[[], bool], what: str, timeout: float = WAIT_TIMEOUT, every: float = 0.02
) -> None:
    """Poll ``condition`` until it holds; fail naming ``what`` after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout} s waiting for {what}")
        time.sleep(every)


def now_ms() -> int:
    return int(time.time() * 1000)


def new_cloid() -> Cloid:
    """A random client order id."""
    return Cloid("0x" + secrets.token_hex(16))


# --- prices ------------------------------------------------------------------------------------


def valid_px(price: float, coin: str) -> float:
    """``price`` as the venue accepts it: 5 significant figures, ``6 - szDecimals`` decimals."""
    return round(float(f"{price:.5g}"), 6 - SZ_DECIMALS[coin])


def mid(info: Any, coin: str) -> float:
    return float(info.all_mids()[coin])


def far_bid(info: Any, coin: str, depth: float = 0.2) -> float:
    """A buy price ``depth`` below the mid: rests, and nothing reaches it."""
    return valid_px(mid(info, coin) * (1 - depth), coin)


def far_ask(info: Any, coin: str, depth: float = 0.2) -> float:
    """A sell price ``depth`` above the mid."""
    return valid_px(mid(info, coin) * (1 + depth), coin)


def through_px(info: Any, coin: str, is_buy: bool, depth: float = 0.05) -> float:
    """A price that crosses the whole visible book: buys above, sells below the mid."""
    return valid_px(mid(info, coin) * (1 + depth if is_buy else 1 - depth), coin)


# --- responses ---------------------------------------------------------------------------------


def statuses(response: Any, kind: str = "order") -> list[Any]:
    """The statuses of an ok ``order``/``cancel`` response, checking the envelope exactly."""
    assert response["status"] == "ok", response
    assert set(response) == {"status", "response"}, response
    assert set(response["response"]) == {"type", "data"}, response
    assert response["response"]["type"] == kind, response
    assert set(response["response"]["data"]) == {"statuses"}, response
    found = response["response"]["data"]["statuses"]
    assert isinstance(found, list)
    return found


def resting_oid(response: Any) -> int:
    """The oid of a single order that rests."""
    (status,) = statuses(response)
    assert set(status) == {"resting"}, status
    oid = status["resting"]["oid"]
    assert type(oid) is int
    return oid


def filled(response: Any) -> dict[str, Any]:
    """The ``filled`` status of a single order that filled."""
    (status,) = statuses(response)
    assert set(status) == {"filled"}, status
    result: dict[str, Any] = status["filled"]
    return result


def order_error(response: Any) -> str:
    """The error text of a single order rejected by the venue."""
    (status,) = statuses(response)
    assert set(status) == {"error"}, status
    text = status["error"]
    assert isinstance(text, str)
    return text


DEFAULT_OK = {"status": "ok", "response": {"type": "default"}}


def fills_of(fills: list[Any], oid: int) -> list[Any]:
    """The fills of one order: an order that crosses may fill against several levels."""
    found = [fill for fill in fills if fill["oid"] == oid]
    assert found, f"no fill of order {oid} in {fills}"
    return found


def filled_size(fills: list[Any]) -> float:
    return sum(float(fill["sz"]) for fill in fills)


def average_px(fills: list[Any]) -> float:
    """The size-weighted average price of ``fills`` (the ``avgPx`` of their order)."""
    return sum(float(fill["px"]) * float(fill["sz"]) for fill in fills) / filled_size(fills)


# --- WebSocket ---------------------------------------------------------------------------------


class Inbox:
    """Messages an SDK subscription callback received, for a test to wait on."""

    def __init__(self) -> None:
        self.messages: list[Any] = []
        self._changed = threading.Condition()

    def __call__(self, message: Any) -> None:
        with self._changed:
            self.messages.append(message)
            self._changed.notify_all()

    def wait(
        self, predicate: Callable[[Any], bool], what: str, timeout: float = WAIT_TIMEOUT
    ) -> Any:
        """The first message (received so far or soon) that satisfies ``predicate``."""
        deadline = time.monotonic() + timeout
        seen = 0
        with self._changed:
            while True:
                for message in self.messages[seen:]:
                    if predicate(message):
                        return message
                seen = len(self.messages)
                left = deadline - time.monotonic()
                if left <= 0:
                    pytest.fail(
                        f"timed out after {timeout} s waiting for {what}; "
                        f"got {json.dumps(self.messages)[-2000:]}"
                    )
                self._changed.wait(left)

    def first(self, what: str, timeout: float = WAIT_TIMEOUT) -> Any:
        return self.wait(lambda _: True, what, timeout)


class RawSocket:
    """A plain websocket-client connection to the simulator's ``/ws``."""

    def __init__(self, ws_url: str) -> None:
        self.connection = websocket.create_connection(ws_url, timeout=WAIT_TIMEOUT)
        self.skipped: list[str] = []

    def send(self, message: Any) -> None:
        self.connection.send(json.dumps(message))

    def recv_text(self) -> str:
        frame = self.connection.recv()
        assert isinstance(frame, str), f"not a text frame: {frame!r}"
        return frame

    def recv_until(
        self, predicate: Callable[[Any], bool], what: str, timeout: float = WAIT_TIMEOUT
    ) -> Any:
        """The next JSON frame satisfying ``predicate``; others (market data) are skipped."""
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                pytest.fail(f"timed out waiting for {what}; skipped {self.skipped[-20:]}")
            self.connection.settimeout(left)
            try:
                text = self.recv_text()
            except websocket.WebSocketTimeoutException:
                continue
            frame = json.loads(text)
            if predicate(frame):
                return frame
            self.skipped.append(text)

    def close(self) -> None:
        self.connection.close()


def on_channel(channel: str) -> Callable[[Any], bool]:
    return lambda frame: isinstance(frame, dict) and frame.get("channel") == channel
