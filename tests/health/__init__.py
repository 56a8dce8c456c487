"""Tests of mm.health: the health snapshot, its board and the account poller."""
