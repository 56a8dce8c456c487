"""The spread chain's ``model_gating`` factor: widen while the model's estimators are unsure.

Role: turns the estimators' confidences (``VolatilityEstimator.confidence``,
``IntensityEstimator.confidence`` in ``estimators``, each in [0, 1]) into the factor
``>= 1`` the spread chain multiplies in. Pure: a function of its arguments.

Input: the confidences, by name (for status) or as plain numbers. Output: 1.0 when the least
confident estimator is at or above ``confident_at``; below it, rising linearly to
``max_factor`` at a confidence of 0. The least confident estimator decides: quotes are only as
good as their weakest input, and taking the minimum (not the product) keeps several middling
confidences from compounding.

This only widens; it never holds quoting (the quote gate's warm-up does that, from market data
and time), and the confidences grow with market data alone, so nothing here waits on our fills.

Failures: a non-finite confidence counts as 0 (a broken input widens); values outside [0, 1]
are clipped; no confidences at all give 1.0 (nothing to gate on). Never raises, never NaN.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping

import attrs

from mm.settings import at_least, setting

__all__ = ["ModelGatingConfig", "model_gating_factor"]


def _fraction_above_zero(value: float) -> str | None:
    return None if 0 < value <= 1 else f"must be > 0 and <= 1, got {value!r}"


@attrs.frozen
class ModelGatingConfig:
    """Confidence needed for no widening, and the factor at no confidence."""

    confident_at: float = setting(0.5, _fraction_above_zero)
    max_factor: float = setting(1.5, at_least(1.0))


def _clean(value: float) -> float:
    if not isinstance(value, (int, float)) or not math.isfinite(value):
        return 0.0
    return min(max(float(value), 0.0), 1.0)


def model_gating_factor(
    confidences: Mapping[str, float] | Iterable[float], config: ModelGatingConfig | None = None
) -> float:
    """The model-gating factor for these confidences (module docstring)."""
    config = config or ModelGatingConfig()
    values = confidences.values() if isinstance(confidences, Mapping) else confidences
    cleaned = [_clean(value) for value in values]
    if not cleaned:
        return 1.0
    weakest = min(cleaned)
    if weakest >= config.confident_at:
        return 1.0
    shortfall = (config.confident_at - weakest) / config.confident_at
    return 1.0 + (config.max_factor - 1.0) * shortfall
