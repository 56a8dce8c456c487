"""Metrics of the venue adapter: orders, latency and API headroom (the feeds' own are
``mm.feeds.metrics``).

Names follow Prometheus conventions (``mm_`` prefix, base units, ``_total`` counters, bounded
label sets: feeds, channels, symbols, kinds and reasons are small fixed sets). Latency
histograms start at tens of microseconds.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from mm.metrics import LATENCY_BUCKETS


class AdapterMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
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
