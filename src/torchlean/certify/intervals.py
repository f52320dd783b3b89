"""Check (c): interval enclosures contain the 50-digit values at sampled points.

For random boxes of several widths around points of every zone, and boxes centred on kinks
and clamp edges (so they straddle them), the value and derivative specs run over
:mod:`torchlean.contexts.interval` (arb balls) on the boxes; :func:`interval.bounds` gives
float64 bounds rounded outward. At sampled points of each box (its centre, and points drawn
uniformly inside) the same specs at 50 digits must lie within those bounds. This tests the
soundness promise of the interval semantics on these specs at the samples; it does not prove
it for every point.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np

from torchlean.certify.common import Loss, subject
from torchlean.certify.oracle import Oracle
from torchlean.certify.result import CheckResult, Collector, skipped

__all__ = ["WIDTHS", "check_intervals"]

#: box half-widths, relative to ``max(|centre|, 1e-6)`` (predicted) and ``|centre|`` (target)
WIDTHS = (1e-12, 1e-6, 1e-3, 0.1)


def check_intervals(loss: Loss, value_fn: Callable[..., Any] | None = None,
                    deriv_fn: Callable[..., Any] | None = None, *,
                    params: dict[str, Any] | None = None, points: int = 8,
                    seed: int = 0) -> CheckResult:
    """Check (c) for ``loss`` (a declaration or a registered name; or the pair ``value_fn``,
    ``deriv_fn``).

    ``points``: sampled points per box besides its centre; every zone and every kink of the
    plan gets one box of each width in :data:`WIDTHS`.
    """
    try:
        from torchlean.contexts import interval

        oracle = Oracle()
    except ImportError as exc:
        return skipped("intervals", f"needs python-flint and torchlean.contexts.interval ({exc})")
    s = subject(loss, value_fn, deriv_fn, params)
    rng = np.random.default_rng(seed)
    shape = s.plan.shapes[-1]
    centres = [(*z.sample(rng, shape, s.params), z.name) for z in s.plan.zones]
    with oracle.digits():
        kinks = s.plan.kinks(rng, shape, s.params, oracle)
    centres += [(_floats(k.predicted), _floats(k.target), k.label) for k in kinks]
    col = Collector()
    n_boxes = n_points = unbounded = 0
    widest = 0.0
    for p0, t0, label in centres:
        for w in WIDTHS:
            n_boxes += 1
            hw_p = w * np.maximum(np.abs(p0), 1e-6)
            p_lo, p_hi = p0 - hw_p, p0 + hw_p
            t_lo, t_hi = np.minimum(t0 * (1 - w), t0 * (1 + w)), np.maximum(t0 * (1 - w),
                                                                            t0 * (1 + w))
            pb, tb = interval.box(p_lo, p_hi), interval.box(t_lo, t_hi)
            v_lo, v_hi = interval.bounds(s.value(pb, tb, ctx=interval, **s.call_params))
            g_lo, g_hi = interval.bounds(s.deriv(pb, tb, ctx=interval, **s.call_params))
            g_lo, g_hi = np.asarray(g_lo), np.asarray(g_hi)
            if math.isnan(v_lo) or np.isnan(g_lo).any():
                unbounded += 1
            if math.isfinite(v_lo) and math.isfinite(v_hi):
                widest = max(widest, v_hi - v_lo)
            samples = [(p0, t0)] + [(rng.uniform(p_lo, p_hi).clip(p_lo, p_hi),
                                     rng.uniform(t_lo, t_hi).clip(t_lo, t_hi))
                                    for _ in range(points)]
            case = f"{label}, half-width {w:g}"
            for p, t in samples:
                n_points += 1
                v = oracle.value(s.value, p, t, s.call_params)
                g = oracle.deriv(s.deriv, p, t, s.call_params)
                if not _inside(v, v_lo, v_hi):
                    col.fail(f"value outside its enclosure: {case}", predicted=p.ravel().tolist(),
                             target=t.ravel().tolist(), exact=float(v), lo=v_lo, hi=v_hi,
                             difference=_outside(v, v_lo, v_hi))
                for idx in np.ndindex(*shape):
                    if not _inside(g[idx], g_lo[idx], g_hi[idx]):
                        col.fail(f"derivative {idx} outside its enclosure: {case}",
                                 predicted=p.ravel().tolist(), target=t.ravel().tolist(),
                                 exact=float(g[idx]), lo=float(g_lo[idx]), hi=float(g_hi[idx]),
                                 difference=_outside(g[idx], g_lo[idx], g_hi[idx]))
    summary = f"{n_points} pts, {n_boxes} boxes"
    if unbounded:
        summary += f", {unbounded} unbounded"
    return col.result("intervals", summary, {"points": n_points, "boxes": n_boxes,
                                             "widths": list(WIDTHS), "shape": list(shape),
                                             "unbounded_boxes": unbounded,
                                             "widest_value_enclosure": widest},
                      examined=n_points, unit="points")


def _floats(a: np.ndarray) -> np.ndarray:
    return np.vectorize(float, otypes=[np.float64])(a)


def _outside(exact: Any, lo: float, hi: float) -> float:
    """How far ``exact`` lies outside ``[lo, hi]`` (inf for NaN)."""
    x = float(exact)
    return max(lo - x, x - hi) if x == x else float("inf")


def _inside(exact: Any, lo: float, hi: float) -> bool:
    """``lo <= exact <= hi``; a NaN enclosure carries no information and contains all."""
    import mpmath

    if math.isnan(lo) or math.isnan(hi):
        return True
    if mpmath.isnan(exact):
        return False
    return bool(lo <= exact <= hi)
