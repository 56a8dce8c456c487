"""The platform's health as one value that risk and autonomy both read.

``snapshot`` is the pure part: ``HealthSnapshot`` (feed states and their reconnects, the
market connection, book arrivals, sync with the venue, stale symbols, journal lag, queue
fills, the venue's account reading and its age) and the reduction of feed-state changes.
``board`` is the shell that produces it from its sources (``HealthBoard``), and ``account``
the one poller of the venue's account (``AccountWatch``). Imports only the venue port, the
model and the fan-out; risk and ops (above) read it, nothing here knows them.
"""
