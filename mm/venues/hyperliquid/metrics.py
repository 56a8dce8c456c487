"""Metrics of the venue adapter: feeds, data quality, orders, latency and API headroom.

Names follow Prometheus conventions (``mm_`` prefix, base units, ``_total`` counters, bounded
label sets: feeds, channels, symbols, kinds and reasons are small fixed sets). Latency
histograms start at tens of microseconds.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from mm.metrics import LATENCY_BUCKETS

FEED_STATES = ("connecting", "healthy", "stale", "reconnecting", "failed")


class AdapterMetrics:
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
        self.orders = Counter(
            "mm_orders",
            "Order requests by action (place, cancel, modify) and result.",
            ["action", "result"],
            registry=registry,
        )
        self.rejections = Counter(
            "mm_order_rejections",
            "Orders rejected by the venue, by reason.",
            ["reason"],
            registry=registry,
        )
        self.ack_latency = Histogram(
            "mm_order_ack_latency_seconds",
            "Time from sending an order request to the venue's answer.",
            ["transport"],
            buckets=LATENCY_BUCKETS,
            registry=registry,
        )
        self.ws_round_trip = Histogram(
            "mm_ws_round_trip_seconds",
            "WebSocket round trip (ping to pong, post to reply).",
            ["feed"],
            buckets=LATENCY_BUCKETS,
            registry=registry,
        )
        self.headroom = Gauge(
            "mm_api_headroom_ratio",
            "Remaining API budget from 0 (exhausted) to 1, by kind.",
            ["kind"],
            registry=registry,
        )

    def set_feed_state(self, feed: str, state: str) -> None:
        for known in FEED_STATES:
            self.feed_state.labels(feed=feed, state=known).set(1.0 if known == state else 0.0)


def rejection_reason(text: str) -> str:
    """A bounded label for a venue rejection text (the first words, without numbers)."""
    known = {
        "Price must be divisible": "tick",
        "Order must have minimum value": "min_notional",
        "Insufficient margin": "margin",
        "Reduce only order": "reduce_only",
        "Post only order would have immediately matched": "post_only_cross",
        "Order could not immediately match": "ioc_no_match",
        "Order was never placed, already canceled, or filled": "missing_order",
        "Too many cumulative requests": "address_rate_limit",
        "Cannot modify": "cannot_modify",
        "Invalid asset": "invalid_asset",
        "Only post-only orders allowed": "post_only_period",
        "Order has invalid size": "invalid_size",
        "Too many open orders": "open_order_limit",
    }
    for prefix, reason in known.items():
        if text.startswith(prefix):
            return reason
    return "other"
