"""Execution: order lifecycle, reconciliation, dispatch, rate limits, slots, cascade, flatten."""
