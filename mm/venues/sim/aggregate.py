"""L2 levels aggregated as the venue's ``l2Book`` ``nSigFigs`` and ``mantissa`` ask.

Pure, on integer ticks. The venue's docs (info endpoint, "L2 book snapshot"; the same fields on
the ``l2Book`` subscription): ``nSigFigs`` aggregates levels to that many significant figures,
valid values 2, 3, 4, 5 and null (full precision); ``mantissa`` is allowed only with
``nSigFigs`` 5 and takes 1, 2 or 5. A level's price goes to its bucket, a multiple of
``mantissa x 10**(e - nSigFigs + 1)`` where ``e`` is the price's decimal exponent (BTC at 67,012
with nSigFigs 3 is in buckets of 100; with nSigFigs 5 and mantissa 5, of 5): bids round down and
asks round up, so an aggregated book never crosses, and the levels that share a bucket add
their sizes and order counts. A bucket finer than the coin's tick is the tick (no aggregation).
At most ``depth`` levels per side, best first, as the full-precision book.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, Final

N_SIG_FIGS: Final = frozenset({2, 3, 4, 5})
MANTISSAS: Final = frozenset({1, 2, 5})

Level = tuple[int, int, int]  # (price ticks, size lots, order count)


def check(n_sig_figs: Any, mantissa: Any) -> str | None:
    """Why these fields are not what the venue accepts, or None when they are."""
    if n_sig_figs is not None and (type(n_sig_figs) is not int or n_sig_figs not in N_SIG_FIGS):
        return "nSigFigs: expected 2, 3, 4, 5 or null"
    if mantissa is not None:
        if type(mantissa) is not int or mantissa not in MANTISSAS:
            return "mantissa: expected 1, 2, 5 or null"
        if n_sig_figs != 5:
            return "mantissa: only allowed when nSigFigs is 5"
    return None


def bucket_ticks(ticks: int, n_sig_figs: int, mantissa: int | None = None) -> int:
    """The bucket size, in ticks, of a price of ``ticks``: a price with ``digits`` digits (in
    ticks) keeps its first ``n_sig_figs`` of them, in steps of ``mantissa`` in the last."""
    shift = len(str(ticks)) - n_sig_figs
    if shift < 0:
        return 1
    return int(10**shift) * (mantissa or 1)


def aggregate(
    levels: Iterable[Level],
    *,
    is_buy: bool,
    n_sig_figs: int | None,
    mantissa: int | None = None,
    depth: int,
) -> list[Level]:
    """``levels`` (one side, best first) in the buckets of ``n_sig_figs``/``mantissa``, at most
    ``depth`` of them, best first. With ``n_sig_figs`` None they are the first ``depth``."""
    if n_sig_figs is None:
        return list(levels)[:depth]
    merged: dict[int, list[int]] = {}
    order: list[int] = []
    for ticks, size, count in levels:
        step = bucket_ticks(ticks, n_sig_figs, mantissa)
        bucket = (ticks // step) * step if is_buy else -(-ticks // step) * step
        entry = merged.get(bucket)
        if entry is None:
            if len(order) == depth:
                break  # the levels come best first: every later one is in a worse bucket
            merged[bucket] = [size, count]
            order.append(bucket)
        else:
            entry[0] += size
            entry[1] += count
    return [(bucket, merged[bucket][0], merged[bucket][1]) for bucket in order]


def key(coin: str, n_sig_figs: int | None, mantissa: int | None) -> str:
    """The hub key's value for an l2Book subscription: the coin, with its aggregation if any."""
    if n_sig_figs is None:
        return coin
    return f"{coin}:{n_sig_figs}:{mantissa or ''}"


def key_parts(value: str) -> tuple[str, int | None, int | None]:
    """``key`` read back: (coin, nSigFigs, mantissa)."""
    coin, _, rest = value.partition(":")
    if not rest:
        return coin, None, None
    n_sig_figs, _, mantissa = rest.partition(":")
    return coin, int(n_sig_figs), int(mantissa) if mantissa else None
