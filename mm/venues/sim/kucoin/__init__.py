"""The simulator's KuCoin face (issue 17), built up from its pure core: so far the spot
accounts (``ledger``) and the matching of every kind of spot order on them (``spot``); its
REST and WebSocket endpoints come next. Like the Hyperliquid face, it is written from the
venue's documents and checks the adapter; it never imports the adapter's codec, client or
streams.
"""
