"""What ``make run`` prints says what is happening to a person (issue 12, item 5).

The shipped config.toml on virtual time, its console captured: one line when each symbol starts
quoting, one for the first fill, a one-line summary every minute at INFO, no line per HTTP
request, and every line names the supervised child it came from (``mm`` for the service).
"""

from __future__ import annotations

import io
import re
from pathlib import Path

import trio

from mm.logs import configure
from mm.secrets import Redactor
from tests.e2e.virtual import shipped_service

LINE = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{3} (\w+) +(\S+) (.*)$")


async def test_the_console_tells_a_person_what_happens(
    tmp_path: Path, autojump_clock: trio.abc.Clock
) -> None:
    console = io.StringIO()
    with configure(level="INFO", redact=Redactor(), log_dir=None, console=console):
        async with shipped_service(tmp_path / "run"):
            await trio.sleep(150.0)
    lines = console.getvalue().splitlines()
    records = [record for record in map(LINE.match, lines) if record is not None]
    messages = [record.group(3) for record in records]
    for coin in ("BTC", "ETH"):
        assert sum(m.startswith(f"{coin}: quoting both sides (") for m in messages) == 1, coin
    assert sum(m.startswith("first fill: ") for m in messages) == 1
    summaries = [m for m in messages if m.startswith("summary: ")]
    assert len(summaries) == 2  # at 60 s and 120 s
    assert re.search(r"BTC \d+ orders, \d+ fills, position [-+]?[\d.e-]+, PnL", summaries[0])
    assert not any("HTTP Request" in line for line in lines)
    children = {record.group(2) for record in records}
    assert all(child == "mm" or child.startswith("mm/") for child in children), children
