"""``SymbolQuoter.quote`` before the lean pass (issue 16), verbatim but for names and for reading
the quoter's state from outside: the reference that ``test_engine.py`` holds the quote to (the
gate on a ``GateInputs``, the quota tier and the GLFT coefficients worked out at every quote,
the spread chain as a mapping, the ladder as ``reference_build_ladder`` lays it)."""

from __future__ import annotations

from mm.model import Side
from mm.strategies.market_maker import gate, quota
from mm.strategies.market_maker.engine import BPS, GlftValues, QuotePlan, SymbolQuoter
from mm.strategies.market_maker.gate import GateInputs
from mm.strategies.market_maker.glft import glft_quotes
from mm.strategies.market_maker.model_gating import model_gating_factor
from mm.strategies.market_maker.spread import SpreadFactor, compose
from mm.strategies.market_maker.toxicity import toxicity_spread_factor
from tests.strategies.market_maker.ladder_reference import reference_build_ladder


def reference_quote(quoter: SymbolQuoter, now: float) -> QuotePlan:
    """The orders wanted at ``now``, as the quote worked them out before the lean pass. Reads
    what the quote reads and changes what it changes (the intensity's recalibration, the
    accumulator's quote mark, the cascade's remembered peak), each the same at the same
    ``now``: call it before ``quoter.quote(now)`` to compare the two."""
    config = quoter.config
    quoter.intensity.maybe_recalibrate(now)
    mid = quoter._mid()
    inventory = quoter.inventory
    sigma = quoter.volatility.estimate()
    fit = quoter.intensity.estimate()
    toxicity = quoter.toxicity.score(now)
    decision = gate.decide(
        GateInputs(
            estimators_warm=sigma is not None and fit is not None,
            data_fresh=quoter.fresh(now),
            inventory=inventory,
            quota_headroom=quoter.headroom,
            cascade_severity=quoter.cascade.severity(now),
            toxicity=toxicity,
            edge_bps=quoter._edge(now, sigma),
        ),
        config.gate,
    )
    tier = quota.decide(quoter.headroom, inventory, config.quota)
    quoter.accumulator.quoted(mid, now)
    if not decision.quotes or mid is None or sigma is None or fit is None or tier.veto:
        return QuotePlan(quoter.coin, now, mid, inventory, [], decision, tier, False, ())
    book = quoter.book
    assert book is not None
    scale = mid / BPS
    order_size = config.order_size_usd / mid
    max_q = config.max_position_usd / config.order_size_usd
    q = inventory / order_size
    a, k_bp = fit
    best_bid, best_ask = book.best_bid, book.best_ask
    raw = glft_quotes(
        BPS,
        None if best_bid is None else best_bid / scale,
        None if best_ask is None else best_ask / scale,
        sigma / scale,
        a,
        k_bp,
        q,
        quoter._glft_params,
    )
    glft = GlftValues(
        mid=mid,
        sigma=sigma,
        a=a,
        k=k_bp / scale,
        k_per_bp=k_bp,
        q=q,
        half_spread=raw.half_spread * scale,
        skew=raw.skew * scale,
        reservation=raw.reservation * scale,
        bid=None if raw.bid is None else raw.bid * scale,
        ask=None if raw.ask is None else raw.ask * scale,
        half_spread_bps=raw.half_spread,
    )
    spread = compose(
        raw.half_spread,
        {
            SpreadFactor.TOXICITY: toxicity_spread_factor(
                toxicity, config.toxicity.widen_from, config.toxicity.max_factor
            ),
            SpreadFactor.DEFENSIVE: quoter.defensive.value(now),
            SpreadFactor.STALENESS: quoter.staleness.factor(now),
            SpreadFactor.MODEL_GATING: model_gating_factor(
                (quoter.volatility.confidence(now), quoter.intensity.confidence(now)),
                config.model_gating,
            ),
            SpreadFactor.QUOTA: tier.spread_multiplier,
            SpreadFactor.RISK: quoter.risk_factor,
        },
        {"quota_shadow": tier.shadow_spread_bps},
        config.spread,
    )
    extra = max(spread.half_spread_bps - raw.half_spread, 0.0) * scale
    bid = None if glft.bid is None else glft.bid - extra
    ask = None if glft.ask is None else glft.ask + extra
    sides = [side for side in (Side.BUY, Side.SELL) if decision.allows(side)]
    if tier.side is not None:
        sides = [side for side in sides if side is tier.side]
    reduce_only = abs(q) >= max_q
    if reduce_only:
        keep = gate.reducing_side(inventory)
        sides = [side for side in sides if side is keep]
    orders = reference_build_ladder(
        bid,
        ask,
        quoter.instrument,
        config.ladder,
        levels=min(tier.levels, config.ladder.levels),
        sides=sides,
        market_bid=best_bid,
        market_ask=best_ask,
        base_size=order_size,
    )
    return QuotePlan(
        quoter.coin,
        now,
        mid,
        inventory,
        orders,
        decision,
        tier,
        reduce_only,
        tuple(sides),
        glft=glft,
        spread=spread,
        bid=bid,
        ask=ask,
    )
