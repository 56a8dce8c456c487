"""``mm status`` of triangular arbitrage end to end: the shipped ``config.triarb.toml`` on the
embedded KuCoin face (``tests.e2e.test_triarb``'s running service), a shock of the cross rate,
triangles filled live; then the status's balances are the face's own, currency by currency,
the rendered report shows them with each pair's book and fills and no per-pair position, and
no secret of the account is in either.
"""

from __future__ import annotations

import math
import re
from decimal import Decimal
from pathlib import Path
from typing import Any

import orjson
import trio

from mm.cli import render_status
from mm.strategies.triarb.reports import Outcome
from mm.venues.sim.kucoin.server import DEV_KEY
from tests.e2e.test_triarb import (
    TRIANGLES_WITHIN,
    TRIARB_SYMBOLS,
    balances,
    desk,
    face,
    outcomes,
    shock,
    triarb_service,
)
from tests.e2e.virtual import wait_for


def agree(shown: dict[str, Any], at_venue: dict[str, Decimal]) -> bool:
    """The status shows every currency the face holds, at the face's balance (mm's figures are
    floats moved fill by fill: equal to their precision), and no other."""
    held = {currency: amount for currency, amount in at_venue.items() if amount}
    return set(shown) == set(held) and all(
        math.isclose(shown[currency]["balance"], float(amount), rel_tol=1e-12)
        for currency, amount in held.items()
    )


async def test_status_balances_are_the_venues_after_triangles_fill(
    tmp_path: Path, autojump_clock: trio.abc.Clock
) -> None:
    async with triarb_service(tmp_path) as service:
        venue = face(service)
        before = balances(venue)
        start = service.status()["trading"]["balances"]
        await shock(service)
        await wait_for(lambda: outcomes(service, Outcome.FILLED) >= 2, within=TRIANGLES_WITHIN)

        def settled() -> bool:  # no triangle in flight, and mm has heard every fill
            shown = service.status()["trading"]["balances"]["currencies"]
            return desk(service).claims.busy_count() == 0 and agree(shown, balances(venue))

        await wait_for(settled, within=TRIANGLES_WITHIN)
        status = service.status()
        marks = service.trading.marks()  # as the status valued them (no await between)
        after = balances(venue)

    # At start, the face's balances, nothing changed.
    assert {c: h["balance"] for c, h in start["currencies"].items()} == {
        c: float(a) for c, a in before.items() if a
    }
    assert all(h["change"] == 0 for h in start["currencies"].values())
    # After the triangles, the face's, and each change what the face's balance moved by.
    found = status["trading"]["balances"]
    assert found["in"] == "USDT"
    assert found["unvalued"] == []
    held = found["currencies"]
    assert agree(held, after)
    for currency, amount in after.items():
        if not amount:
            continue
        assert held[currency]["start"] == float(before[currency])
        moved = float(amount - before[currency])
        assert math.isclose(held[currency]["change"], moved, rel_tol=1e-9, abs_tol=1e-12)
    assert any(held[c]["change"] for c in held)  # the triangles moved the account
    assert held["USDT"]["value"] == held["USDT"]["balance"]  # the primary is worth itself
    assert math.isclose(held["BTC"]["value"], held["BTC"]["balance"] * marks["BTC-USDT"])
    assert math.isclose(found["value"], sum(h["value"] for h in held.values()))

    text = render_status(status)
    lines = text.splitlines()
    table_at = next(n for n, line in enumerate(lines) if line.startswith("CURRENCY "))
    for currency in held:
        row = next(line for line in lines[table_at:] if line.startswith(f"{currency} "))
        balance = re.split(r" +", row)[1].replace(",", "")
        assert math.isclose(float(balance), float(after[currency]), abs_tol=1e-8), row
    header = next(line for line in lines if line.startswith("SYMBOL"))
    assert re.split(r"  +", header) == [
        "SYMBOL",
        "ALLOWED",
        "GATE",
        "BEST BID",
        "BEST ASK",
        "BOOK AGE",
        "ORDERS",
        "FILLS B/S",
    ]
    for symbol in TRIARB_SYMBOLS:
        cells = re.split(r"  +", next(line for line in lines if line.startswith(f"{symbol} ")))
        fills = status["trading"]["symbols"][symbol]["fills"]
        assert cells[-1] == f"{fills['buy']}/{fills['sell']}"
        assert sum(fills.values()) >= 2  # every pair is a leg of each triangle
    assert "triangles (live): 0 of 2 slots busy" in text
    assert "FILLED USDT > " in text  # the recent triangles, in brief

    # The account's secret and passphrase appear nowhere.
    document = orjson.dumps(status).decode()
    for secret in (DEV_KEY.secret, DEV_KEY.passphrase):
        assert secret.reveal() not in document
        assert secret.reveal() not in text
