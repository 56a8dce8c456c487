"""Deliberately broken builds for the campaign tests: each must be caught by an invariant.

A broken build loses what it loses for good. A fill listener that dropped "every tenth call"
would be healed by the service whenever the dropped call was one a drift audit repeats, so
whether the campaign saw the loss depended on the interleaving; these drop by trade, every
time the trade comes back.
"""

from __future__ import annotations

from collections.abc import Callable

from mm.app import Service
from mm.model import Fill


def dropping_every(nth: int) -> tuple[Callable[[Service, Fill], None], set[object]]:
    """A `Service._on_fill` that loses every nth distinct trade (and each repeat of it), and the
    set of trades it lost."""
    heard: list[object] = []
    lost: set[object] = set()
    on_fill = Service._on_fill

    def dropping(self: Service, fill: Fill) -> None:
        if fill.tid not in heard:
            heard.append(fill.tid)
            if len(heard) % nth == 0:
                lost.add(fill.tid)
        if fill.tid not in lost:
            on_fill(self, fill)

    return dropping, lost
