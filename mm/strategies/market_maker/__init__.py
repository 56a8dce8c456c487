"""The market maker (``strategy.kind = "market_maker"``, its settings the ``[strategy]`` section):
GLFT quoting, ladder, spread chain, quote gate, quota tiers, accumulator, and ``strategy`` (the
MarketMaker behind the Strategy protocol, which the generic strategy task runs).

Like every strategy it imports execution, feeds, the portfolio, the venue port and the model,
never risk, ops or a venue package (prices round through the port's instruments).
"""
