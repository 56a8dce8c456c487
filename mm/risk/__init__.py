"""Risk: a state snapshot, eight pure monitors and the aggregate decision the strategy reads."""
