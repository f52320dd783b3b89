"""Inputs for every registered loss that keep clear of its kinks and clamps.

Each case draws ``(predicted, target, params)`` from a seeded generator so that every element
lies at least a fixed gap (>= 0.05) away from the places where the loss is not differentiable:
``d = 0`` (mae), ``|d| = delta`` (huber), the clamp bounds (cross-entropy, BCE) and the margin
``t * x = 1`` (hinge). A central difference with a step of ~1e-6 therefore never straddles one.
"""

from __future__ import annotations

from typing import Any

import numpy as np

import torchlean


def _away_from_zero(rng: np.random.Generator, shape: tuple[int, ...], lo: float,
                    hi: float) -> np.ndarray:
    """Magnitudes in [lo, hi] with random signs."""
    return rng.choice([-1.0, 1.0], size=shape) * rng.uniform(lo, hi, size=shape)


def smooth_case(name: str, shape: tuple[int, ...] = (2, 3),
                seed: int = 0) -> tuple[np.ndarray, np.ndarray, dict[str, Any]]:
    """``(predicted, target, params)`` in float64 for the loss ``name``, away from its kinks."""
    rng = np.random.default_rng(seed)
    t = rng.normal(size=shape)
    params: dict[str, Any] = {}
    if name in ("mse", "log_cosh"):
        p = t + 2.0 * rng.normal(size=shape)
    elif name == "mae":
        p = t + _away_from_zero(rng, shape, 0.1, 2.0)
    elif name == "huber":
        # both regimes: |d| in [0.1, 0.9] (quadratic) or [1.1, 3] (linear) for delta = 1
        d = np.where(rng.random(shape) < 0.5, _away_from_zero(rng, shape, 0.1, 0.9),
                     _away_from_zero(rng, shape, 1.1, 3.0))
        p = t + d
        params = {"delta": 1.0}
    elif name in ("cross_entropy", "binary_cross_entropy"):
        p = rng.uniform(0.05, 0.95, size=shape)
        t = rng.uniform(0.0, 1.0, size=shape)
        params = {"epsilon": torchlean.LOSSES[name].params["epsilon"]}
    elif name == "cross_entropy_logits":
        p = 2.0 * rng.normal(size=shape)
        t = rng.uniform(0.0, 2.0, size=shape)  # deliberately not normalised
    elif name == "hinge":
        t = rng.choice([-1.0, 1.0], size=shape)
        # margins 1 - t*x in [-2, -0.1] or [0.1, 2]: never at the kink t*x = 1
        p = t * (1.0 - _away_from_zero(rng, shape, 0.1, 2.0))
    elif name == "poisson":
        p = rng.normal(size=shape)
        t = rng.integers(0, 5, size=shape).astype(np.float64)
    elif name == "cosine_similarity":
        p = rng.normal(size=shape)
        params = {"epsilon": torchlean.LOSSES[name].params["epsilon"]}
    else:  # pragma: no cover - a new registry row must get a case here
        raise KeyError(f"no smooth case for loss {name!r}")
    return p, t, params
