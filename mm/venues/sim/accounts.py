"""Perpetual accounts in USDC with cross margin: balances, signed positions, PnL and fees.

Pure. A fill is applied with ``Account.apply_fill``, which returns what the venue reports with
it (start position, direction, closed PnL, fee). Positions keep their entry notional so the
entry price is exact for increases and unchanged by reductions; a flip opens at the fill price.
"""

from __future__ import annotations

import attrs

from mm.venues.sim.assets import AssetSpec

DEFAULT_LEVERAGE = 20


@attrs.define
class Position:
    szi: int = 0  # signed lots
    entry_ntl: float = 0.0  # |szi| x entry price, USDC

    def entry_px(self, spec: AssetSpec) -> float:
        size = abs(spec.sz_float(self.szi))
        return self.entry_ntl / size if size else 0.0

    def unrealized(self, spec: AssetSpec, mark: float) -> float:
        size = spec.sz_float(self.szi)
        return size * mark - (self.entry_ntl if self.szi > 0 else -self.entry_ntl)


@attrs.frozen
class FillOutcome:
    start_position: int
    direction: str
    closed_pnl: float
    fee: float


def _direction(start: int, end: int, is_buy: bool) -> str:
    if start > 0 and end < 0:
        return "Long > Short"
    if start < 0 and end > 0:
        return "Short > Long"
    if is_buy:
        return "Close Short" if start < 0 else "Open Long"
    return "Close Long" if start > 0 else "Open Short"


@attrs.define
class Account:
    address: str
    usdc: float = 0.0
    positions: dict[int, Position] = attrs.field(factory=dict)
    leverage: dict[int, int] = attrs.field(factory=dict)
    cum_volume: float = 0.0

    def position(self, asset: int) -> Position:
        position = self.positions.get(asset)
        if position is None:
            position = self.positions[asset] = Position()
        return position

    def leverage_for(self, asset: int) -> int:
        return self.leverage.get(asset, DEFAULT_LEVERAGE)

    def apply_fill(
        self, spec: AssetSpec, is_buy: bool, px: int, lots: int, fee_rate: float
    ) -> FillOutcome:
        position = self.position(spec.index)
        start = position.szi
        signed = lots if is_buy else -lots
        price = spec.px_float(px)
        closed_pnl = 0.0
        if start != 0 and (start > 0) != is_buy:
            closing = min(abs(start), lots)
            entry = position.entry_px(spec)
            direction = 1.0 if start > 0 else -1.0
            closed_pnl = (price - entry) * spec.sz_float(closing) * direction
            position.entry_ntl -= entry * spec.sz_float(closing)
            opening = lots - closing
            position.szi = start + signed
            if opening:
                position.entry_ntl = price * spec.sz_float(opening)
            elif position.szi == 0:
                position.entry_ntl = 0.0
        else:
            position.szi = start + signed
            position.entry_ntl += price * spec.sz_float(lots)
        notional = spec.notional(px, lots)
        fee = notional * fee_rate
        self.usdc += closed_pnl - fee
        self.cum_volume += notional
        return FillOutcome(start, _direction(start, position.szi, is_buy), closed_pnl, fee)

    def account_value(self, specs: list[AssetSpec], marks: dict[int, float]) -> float:
        value = self.usdc
        for asset, position in self.positions.items():
            if position.szi and asset in marks:
                value += position.unrealized(specs[asset], marks[asset])
        return value

    def margin_used(self, specs: list[AssetSpec], marks: dict[int, float]) -> float:
        used = 0.0
        for asset, position in self.positions.items():
            if position.szi and asset in marks:
                value = abs(specs[asset].sz_float(position.szi)) * marks[asset]
                used += value / self.leverage_for(asset)
        return used
