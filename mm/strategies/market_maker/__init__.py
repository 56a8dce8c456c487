"""Pure market-making strategy modules: ladder, spread, quote gate, quota tiers, accumulator."""
