"""The simulator's KuCoin face (issue 17), built up from its pure core: so far the spot
accounts (``ledger``), the matching of every kind of spot order on them (``spot``), the REST
endpoints as a pure function of a request (``rest``), the sequenced level-2 data (``depth``)
and the synthetic three-symbol market with its liquidity (``triangle``); its server and
WebSocket come next. Like the Hyperliquid face, it is written from the venue's documents and
checks the adapter; of the adapter's package it imports only the published signature scheme.
"""
