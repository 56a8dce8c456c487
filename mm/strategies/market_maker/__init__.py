"""The market maker: GLFT quoting, ladder, spread chain, quote gate, quota tiers, accumulator,
and its runner (the strategy task and the executor slots it feeds).

Like every strategy it imports execution, feeds, the portfolio, the venue port and the model,
never risk, ops or a venue package (prices round through the port's instruments).
"""
