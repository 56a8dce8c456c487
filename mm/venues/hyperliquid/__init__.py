"""Hyperliquid: codec, signing, WebSocket and REST transports, client."""
