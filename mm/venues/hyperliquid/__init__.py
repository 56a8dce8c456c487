"""Hyperliquid behind the port: codec and number rules, signing, WebSocket and REST
transports, market and user streams, client, limits and the rate limiter and address budget on
them, access, the connector the generic venue service runs on (``connector``) and the probe
``mm check`` asks.

It may import the port (``mm.venues.base``), the model, book, clock and connection machine, and
the process's services, never the feeds or execution that run it; only ``mm.venues.factory``
imports it (the simulator reads its published rules).
"""
