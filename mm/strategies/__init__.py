"""Trading strategies, one package each: ``market_maker`` (GLFT quoting on perpetuals).

``base`` is the Strategy protocol, ``registry`` maps ``strategy.kind`` to a strategy, and
``runner`` is the generic strategy task that feeds one and hands its commands to the executor.

A strategy turns market data, fills and the permissions it reads into commands for the executor;
it imports from execution, feeds, the portfolio, the venue port and the model, never from a
venue package, risk or ops.
"""
