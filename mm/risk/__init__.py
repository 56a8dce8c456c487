"""Risk: a state snapshot, pure monitors, the aggregate decision, the kill switch and its shell.

It may import execution, feeds, the portfolio, the health snapshot, the venue port, the model and
the process's services, and ops; never a strategy or a venue package: it publishes state the
strategies read.
"""
