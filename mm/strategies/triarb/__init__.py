"""Triangular arbitrage (issue 18): three legs through three pairs, from a primary quote
currency back to it, found on the books and executed from real fills.

So far its pure core: ``legs`` (what a triangle and its legs are), ``triangles`` (finding them
among a venue's instruments, and evaluating them on the books) and ``cascade`` (each leg's
amounts from the previous leg's actual output, on the venue's increments and minimums).
"""
