"""The venue's pre-validation of a batched action: the errors that refuse a batch as a whole.

Hyperliquid checks some things about a batch before it looks at its requests one by one (its
documentation, "Error responses": errors that are "a deterministic function of the payload
itself"), and answers such a refusal with ONE error status for the whole batch, whatever the
number of orders, modifies or cancels in it. The simulator refuses that way:

- a batch naming an asset the venue does not list (an index out of range, or a coin switched
  to invalid by the ``invalid_assets`` fault, as a client with stale metadata sends it);
- an order batch or a batchModify with any order that is not post-only (``Alo``) during the
  post-only period after a network upgrade (the ``post_only_period`` fault), in the venue's
  words "Only post-only orders allowed immediately after network upgrade".

Pure: the face passes what it knows (the number of listed assets, the ones made invalid, the
period) and answers the text, if any, as the batch's single status.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Sequence
from typing import Final

from mm.venues.sim.engine import OrderRequest

INVALID_ASSET: Final = "Invalid asset."
POST_ONLY_PERIOD: Final = "Only post-only orders allowed immediately after network upgrade"


def invalid_asset(assets: Iterable[int], listed: int, invalid: Collection[int]) -> str | None:
    """The error for a batch naming an asset outside ``range(listed)`` or in ``invalid``."""
    for asset in assets:
        if not 0 <= asset < listed or asset in invalid:
            return INVALID_ASSET
    return None


def order_batch(
    orders: Sequence[OrderRequest], listed: int, invalid: Collection[int], post_only: bool
) -> str | None:
    """The error refusing a batch of orders (or of modifies' new orders) as a whole, if any."""
    problem = invalid_asset((order.asset for order in orders), listed, invalid)
    if problem is None and post_only and any(order.tif != "Alo" for order in orders):
        problem = POST_ONLY_PERIOD
    return problem
