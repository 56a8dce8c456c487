"""The embedded venue simulator: matching engine, synthetic market, faults and protocol faces."""
