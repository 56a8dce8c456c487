"""Tests for mm.execution."""
