"""Market-data and user-stream feeds: book quality, the sync gate,
deduplication and the feed tasks, reading the venue port's typed events.

Generic over venues: it imports the venue port (``mm.venues.base``), the model, book and clock,
never a venue package, and is independent of ``mm.execution`` and ``mm.portfolio``.
"""
