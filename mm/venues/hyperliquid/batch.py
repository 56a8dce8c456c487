"""The venue's statuses laid onto the requests of one batch (orders, cancels or modifies).

Hyperliquid answers a batched action with one status per request, in request order, except
when it refuses the batch before looking at its requests one by one (its pre-validation: an
invalid asset, a non-post-only order during the post-only period after a network upgrade, an
empty batch, ...). Then it answers ONE error status for the whole batch, and its documentation
asks clients to apply that error to every request of the batch. Any other count (one success
for several requests, two statuses for three) says nothing about which request it belongs to.

``per_request`` is that rule, pure: statuses for each request, or ``StatusCountMismatch``, which
the client turns into an unknown fate resolved order by order with ``orderStatus``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TypeVar

from mm.model import CancelResult, PlaceResult, Rejected

Status = TypeVar("Status", PlaceResult, CancelResult)


class StatusCountMismatch(ValueError):
    """The venue answered a number of statuses that maps onto no request of the batch."""

    def __init__(self, statuses: int, requests: int) -> None:
        super().__init__(f"the venue answered {statuses} status(es) for a batch of {requests}")
        self.statuses = statuses
        self.requests = requests


def per_request(statuses: Sequence[Status], requests: int) -> list[Status]:
    """One status for each of ``requests`` requests, in request order.

    As many statuses as requests: each its own. One error for a batch of several: the batch was
    refused as a whole, each request is refused with that error. Anything else raises
    :class:`StatusCountMismatch`.
    """
    if len(statuses) == requests:
        return list(statuses)
    if len(statuses) == 1 and requests > 1 and isinstance(statuses[0], Rejected):
        return [statuses[0]] * requests
    raise StatusCountMismatch(len(statuses), requests)
