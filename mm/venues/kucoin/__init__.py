"""KuCoin spot behind the port (issue 17), built up module by module: so far its request
signing (``signing``) and its number rules (``numbers``), both pure.

It may import the port (``mm.venues.base``), the model, clock and connection machine, the
secrets and the process's services, never the feeds or execution that run it; only
``mm.venues.factory`` may import it (the import contracts in pyproject.toml say so).
"""
