"""What a triangle is: three legs, each a trade on one pair that turns one currency into
another, from a primary quote currency back to it. Pure values.

A leg on pair ``BASE-QUOTE`` (an ``Instrument``: ``base`` and ``quote``) either buys (spends
``quote``, receives ``base``) or sells (spends ``base``, receives ``quote``); ``source`` is the
currency it spends and ``target`` the one it receives. A triangle's legs chain: each leg's
``target`` is the next one's ``source``, the first leg's ``source`` and the last one's
``target`` are the ``primary``.

Fails: ``ValueError`` for legs that do not chain, or a triangle that does not start and end in
its primary, or that trades a pair twice.
"""

from __future__ import annotations

import attrs

from mm.model import Side

__all__ = ["Leg", "Triangle"]


@attrs.frozen(slots=True)
class Leg:
    """One trade of a triangle: on ``symbol``, ``side``, spending ``source`` for ``target``."""

    symbol: str
    side: Side
    source: str
    target: str

    def __attrs_post_init__(self) -> None:
        if self.source == self.target:
            raise ValueError(f"{self.symbol}: a leg turns one currency into another")

    def __str__(self) -> str:
        return f"{self.side.name.lower()} {self.symbol} {self.source}->{self.target}"


@attrs.frozen(slots=True)
class Triangle:
    """Three legs from ``primary`` back to it (see the module)."""

    primary: str
    legs: tuple[Leg, Leg, Leg]
    # Derived once: the claims and the slots read a triangle's symbols at every signal.
    _symbols: tuple[str, str, str] = attrs.field(
        init=False, default=("", "", ""), eq=False, repr=False
    )

    def __attrs_post_init__(self) -> None:
        first, second, third = self.legs
        object.__setattr__(self, "_symbols", (first.symbol, second.symbol, third.symbol))
        if first.source != self.primary or third.target != self.primary:
            raise ValueError(f"a triangle starts and ends in its primary {self.primary}")
        if first.target != second.source or second.target != third.source:
            raise ValueError(f"legs that do not chain: {', '.join(map(str, self.legs))}")
        if len(set(self.symbols)) != 3:
            raise ValueError(f"a triangle trades three pairs: {self.symbols}")

    @property
    def symbols(self) -> tuple[str, str, str]:
        return self._symbols

    @property
    def currencies(self) -> tuple[str, str, str]:
        """The currencies in the order held: the primary, then the first and second legs'."""
        first, second, _ = self.legs
        return self.primary, first.target, second.target

    @property
    def name(self) -> str:
        """``USDT>BTC>ETH>USDT``: the currencies in the order held."""
        return ">".join((*self.currencies, self.primary))
