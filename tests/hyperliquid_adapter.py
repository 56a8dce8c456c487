"""The running service's adapter as the Hyperliquid one, for tests that look inside it.

The service sees its adapter through the port (mm.venues.base); a test that checks what
Hyperliquid's adapter does inside (its user stream, its sockets, its limiter) asks for it here.
"""

from __future__ import annotations

from mm.app import Service
from mm.venues.hyperliquid.adapter import HyperliquidAdapter


def hyperliquid(service: Service) -> HyperliquidAdapter:
    adapter = service.adapter
    assert isinstance(adapter, HyperliquidAdapter), type(adapter)
    return adapter
