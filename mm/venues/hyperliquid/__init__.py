"""Hyperliquid behind the port: codec and number rules, signing, WebSocket and REST
transports, market stream, client, limits and the rate limiter and address budget on them,
access, the adapter and the probe ``mm check`` asks.

It may import the port (``mm.venues.base``), the model, book and clock, and the process's
services; only ``mm.venues.factory`` imports it (the simulator reads its published rules).
"""
