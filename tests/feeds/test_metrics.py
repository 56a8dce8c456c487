"""Feed metrics: names, units, bounded labels, and the one-hot connection state."""

from __future__ import annotations

from prometheus_client import CollectorRegistry

from mm.feeds.metrics import FEED_STATES, FeedMetrics


def test_metric_names_follow_the_conventions() -> None:
    registry = CollectorRegistry()
    FeedMetrics(registry)
    names = [metric.name for metric in registry.collect()]
    assert names
    for metric in registry.collect():
        assert metric.name.startswith("mm_")
        assert "_ms" not in metric.name
        assert metric.documentation
        if metric.type == "counter":
            assert not metric.name.endswith("_total")  # the client adds _total on exposition


def test_feed_state_is_one_hot() -> None:
    registry = CollectorRegistry()
    metrics = FeedMetrics(registry)
    metrics.set_feed_state("market", "stale")
    metrics.set_feed_state("market", "healthy")
    value = registry.get_sample_value
    assert value("mm_feed_state", {"feed": "market", "state": "healthy"}) == 1.0
    for state in FEED_STATES:
        if state != "healthy":
            assert value("mm_feed_state", {"feed": "market", "state": state}) == 0.0
