"""The simulator's Hyperliquid face: /info, /exchange and /ws in the venue's own wire format."""
