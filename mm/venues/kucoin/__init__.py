"""KuCoin spot behind the port (issue 17), built up module by module: so far its signed and
budgeted REST transport (``rest``, tested against the simulator's KuCoin face) and, pure, its
request signing (``signing``), number rules (``numbers``), the level-2 book's sync procedure
(``level2``), the parsing of the book messages (``codec``), the rate limits (``limits``)
with the budget kept against them (``rate_budget``), its ids (``ids``) and the order channel's
changes as the port's reports and fills (``orders``), the symbols and fee rates
(``instruments``), the REST answers' envelope (``answers``) and the WebSocket protocol's
messages (``ws_protocol``); the port's request side, ``client`` (orders, reads, fees, the
streams' REST) with its pure reads (``account``, ``order_answers``), the dead-man's switch
(``deadman``), the port's view of the budget (``budget``) and ``mm check``'s ``probe``. The
WebSocket connection, streams and connector come next.

It may import the port (``mm.venues.base``), the model, clock and connection machine, the
secrets and the process's services, never the feeds or execution that run it; only
``mm.venues.factory`` may import it (the import contracts in pyproject.toml say so).
"""
