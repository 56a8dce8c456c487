"""Where the tests' recorded venue fixtures live: ``tests/fixtures``, inside the repository.

Every test, helper and benchmark that reads a fixture takes its directory from here, so a clone
alone has everything ``make test`` reads. ``tests/fixtures/README.md`` says where each file came
from.
"""

from __future__ import annotations

from pathlib import Path

FIXTURES = Path(__file__).resolve().parent / "fixtures"
HYPERLIQUID = FIXTURES / "hyperliquid"
KUCOIN = FIXTURES / "kucoin"
