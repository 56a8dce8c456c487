"""The strategy kinds ``strategy.kind`` may name (the registry builds one of each).

A leaf module, so that the ``[strategy]`` section's check can list them without importing the
strategies themselves (the registry imports every strategy package).
"""

KINDS = ("market_maker", "triarb")
