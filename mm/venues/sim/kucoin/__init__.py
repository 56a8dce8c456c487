"""The simulator's KuCoin face (issue 17): the spot accounts and their balance changes
(``ledger``), the matching of every kind of spot order on them (``spot``), the REST endpoints
as a pure function of a request (``rest``), the sequenced level-2 data (``depth``), the
synthetic three-symbol market with its liquidity and outside takers (``triangle``), the venue's
rate-limit pools and weights (``quota``), the face's faults (``faults``), and the server that
serves them over HTTP and WebSocket with the token handshake, the rate limits and the faults
(``server``). Like the Hyperliquid face, it is written from the venue's documents and checks
the adapter; of the adapter's package it imports only the published signature scheme.
"""
