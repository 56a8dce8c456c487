"""Market-data feeds: connection health, data quality and the feed tasks."""
