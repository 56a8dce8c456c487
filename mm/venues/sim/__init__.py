"""The embedded venue simulator: matching engine, synthetic market, faults and protocol faces.

A venue in miniature, written from the venues' documents: it imports the clock, settings and
the ASGI helper, and of a venue package only its published rules (Hyperliquid's numbers, limits,
signing and dead-man's volume rule), never an adapter's codec, client or feeds, which it checks.
"""
