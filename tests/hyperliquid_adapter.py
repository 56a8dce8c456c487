"""The running service's venue connector as the Hyperliquid one, for tests that look inside it.

The service runs the generic venue service (mm.venues.service) on the connector venue.kind
names, and sees both through the port; a test that checks what Hyperliquid's part does inside
(its sockets, its client, its limiter, its signer) asks for it here.
"""

from __future__ import annotations

from mm.app import Service
from mm.venues.hyperliquid.connector import HyperliquidConnector


def hyperliquid(service: Service) -> HyperliquidConnector:
    connector = service.adapter.connector
    assert isinstance(connector, HyperliquidConnector), type(connector)
    return connector
