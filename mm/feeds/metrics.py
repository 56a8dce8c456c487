"""Metrics of the feeds: messages, malformed and dropped ones, connection states, reconnects,
book ages and data quality, for any venue.

Names follow Prometheus conventions (``mm_`` prefix, base units, ``_total`` counters, bounded
label sets: feeds, channels, symbols, states and kinds are small fixed sets). Registering twice
in one registry fails at once (prometheus_client's duplicate check): one ``FeedMetrics`` per
registry, handed to whatever feeds it.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge

FEED_STATES = ("connecting", "healthy", "stale", "reconnecting", "failed")


class FeedMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.messages = Counter(
            "mm_feed_messages",
            "WebSocket messages received, by feed and channel.",
            ["feed", "channel"],
            registry=registry,
        )
        self.malformed = Counter(
            "mm_feed_malformed_messages",
            "WebSocket messages that could not be parsed and were skipped.",
            ["feed"],
            registry=registry,
        )
        self.dropped = Counter(
            "mm_feed_dropped_messages",
            "Messages dropped because a consumer was not keeping up.",
            ["feed"],
            registry=registry,
        )
        self.feed_state = Gauge(
            "mm_feed_state",
            "1 for the feed's current connection state, 0 for the others.",
            ["feed", "state"],
            registry=registry,
        )
        self.reconnects = Counter(
            "mm_feed_reconnects", "Reconnections of a feed.", ["feed"], registry=registry
        )
        self.book_age = Gauge(
            "mm_book_age_seconds",
            "Age of the latest book of a symbol when it was published.",
            ["symbol"],
            registry=registry,
        )
        self.quality_errors = Counter(
            "mm_data_quality_errors",
            "Book updates flagged by the data-quality checks, by kind.",
            ["symbol", "kind"],
            registry=registry,
        )

    def set_feed_state(self, feed: str, state: str) -> None:
        for known in FEED_STATES:
            self.feed_state.labels(feed=feed, state=known).set(1.0 if known == state else 0.0)
