"""Execution: order lifecycle, reconciliation, dispatch, the order router, slots, pre-trade
checks, the permission board, cancel-all and flatten.

Generic over venues: it imports the venue port (``mm.venues.base``), the model, book and clock,
never a venue package, and is independent of ``mm.feeds`` and ``mm.portfolio``.
"""
