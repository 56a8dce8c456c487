"""The simulator's KuCoin face (issue 17): the spot accounts (``ledger``), the matching of every
kind of spot order on them (``spot``), the REST endpoints as a pure function of a request
(``rest``), the sequenced level-2 data (``depth``), the synthetic three-symbol market with its
liquidity (``triangle``), and the server that serves them over HTTP and WebSocket with the
token handshake (``server``). Not yet: ``mm sim --venue kucoin``, the faces' faults and rate
limits, and the balance channel. Like the Hyperliquid face, it is written from the venue's
documents and checks the adapter; of the adapter's package it imports only the published
signature scheme.
"""
