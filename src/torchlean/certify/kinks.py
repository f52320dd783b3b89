"""Check (b): at every kink the chosen derivative lies between the one-sided derivatives.

The points come from the declaration's seams (:meth:`~torchlean.certify.plans.Plan.kinks`): on
each seam, built at 50 digits with the oracle's own constants, plus ordinary points of the
zones. For each coordinate ``i`` the one-sided difference quotients of the VALUE at 50 digits,

    D+ = (f(x + h e_i) - f(x)) / h,    D- = (f(x) - f(x - h e_i)) / h,

with ``h = 1e-25 * max(|x_i|, 1e-6)``, are compared with the derivative's element ``g_i``, to
``tol = 1e-12 * max(|D-|, |D+|, |g_i|)``:

- on a seam declared ``kink=True`` they must bracket it:
  ``min(D-, D+) - tol <= g_i <= max(D-, D+) + tol`` (the declared choice of subgradient);
- on a seam declared ``kink=False`` (a C1 seam, a change of evaluation form) and at ordinary
  points both must equal it: ``|D+ - g_i| <= tol`` and ``|D- - g_i| <= tol``.

The quotients are within ``h * |f''|`` of the one-sided derivatives (plus ``1e-50 |f| / h`` of
rounding), far inside ``tol`` for any loss whose second derivative is not astronomically large.

With ``beside=True`` (the second-order rows, whose "value" is a derivative that may JUMP at a
seam: ``sign(d)`` at ``d = 0``) the quotients stay off the point itself,

    D+ = (f(x + h e_i) - f(x + h/2 e_i)) / (h/2),  D- = (f(x - h/2 e_i) - f(x - h e_i)) / (h/2),

so they approach the one-sided LIMITS of the derivative of ``f`` (equal to its one-sided
derivatives wherever ``f`` is continuous), and the same rules apply to them.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from torchlean.certify.common import Loss, subject
from torchlean.certify.oracle import Oracle
from torchlean.certify.result import CheckResult, Collector, skipped

__all__ = ["check_kinks"]

REL_TOL = 1e-12


def check_kinks(loss: Loss, value_fn: Callable[..., Any] | None = None,
                deriv_fn: Callable[..., Any] | None = None, *,
                params: dict[str, Any] | None = None, points: int = 3,
                seed: int = 0, beside: bool = False) -> CheckResult:
    """Check (b) for ``loss`` (a declaration or a registered name; or the pair ``value_fn``,
    ``deriv_fn``).

    On each of the plan's shapes: the seam points, and ``points`` ordinary points for a loss
    without seams (one otherwise). ``beside``: one-sided quotients that stay off the point
    (see the module docstring).
    """
    try:
        oracle = Oracle()
    except ImportError as exc:
        return skipped("kinks", f"needs mpmath and torchlean.contexts.precise ({exc})")
    s = subject(loss, value_fn, deriv_fn, params)
    rng = np.random.default_rng(seed)
    col = Collector()
    n_points = n_coords = 0
    worst = 0.0
    kinds: set[str] = set()
    ordinary = 1 if s.decl.seams else points
    for shape in s.plan.shapes:
        with oracle.digits():  # seam coordinates such as 1 - eps must be exact
            kink_points = s.plan.kinks(rng, shape, s.params, oracle, ordinary=ordinary)
        for k in kink_points:
            n_points += 1
            kinds.add(k.label.split(" (")[0].split(",")[0])
            g = oracle.deriv(s.deriv, k.predicted, k.target, s.call_params)
            f0 = None if beside else oracle.value(s.value, k.predicted, k.target,
                                                  s.call_params)
            for idx in np.ndindex(*shape):
                n_coords += 1
                xi = k.predicted[idx]
                with oracle.digits():
                    h = oracle.mpf("1e-25") * max(abs(xi), oracle.mpf("1e-6"))
                    # beside the point: from x +- h/2 to x +- h; else from x to x +- h
                    steps = [xi + h, xi - h] + ([xi + h / 2, xi - h / 2] if beside else [])
                f_up, f_down, *near = (_moved(oracle, s, k, idx, x) for x in steps)
                f_up0, f_down0 = near if beside else (f0, f0)
                if beside:
                    h = h / 2
                with oracle.digits():
                    d_plus, d_minus = (f_up - f_up0) / h, (f_down0 - f_down) / h
                    lo, hi, gi = min(d_minus, d_plus), max(d_minus, d_plus), g[idx]
                    scale = max(abs(d_minus), abs(d_plus), abs(gi), oracle.mpf("1e-300"))
                    if k.kink:  # between the one-sided derivatives
                        off = max(lo - gi, gi - hi, 0)
                    else:  # equal to both
                        off = max(abs(d_minus - gi), abs(d_plus - gi))
                    gap = off / scale
                    worst = max(worst, float(gap))
                if not gap <= REL_TOL:
                    rule = "between" if k.kink else "equal to"
                    col.fail(f"{shape} {k.label}: element {idx}, derivative not {rule} the "
                             f"one-sided derivatives",
                             predicted=[float(v) for v in k.predicted.flat],
                             target=[float(v) for v in k.target.flat],
                             derivative=float(gi), left=float(d_minus), right=float(d_plus),
                             difference=float(off), relative_error=float(gap))
    summary = f"{n_points} pts, {n_coords} coords"
    if beside:
        summary += ", limits"
    return col.result("kinks", summary, {"points": n_points, "coordinates": n_coords,
                                         "kinds": sorted(kinds), "where": s.plan.kink_text,
                                         "max_relative_gap": worst, "oracle": oracle.source,
                                         "quotients": "beside the point" if beside
                                         else "through the point"},
                      examined=n_coords, unit="kink coordinates")


def _moved(oracle: Oracle, s: Any, k: Any, idx: tuple[int, ...], x: Any) -> Any:
    """The value with element ``idx`` of the kink point's prediction set to ``x``."""
    moved = k.predicted.copy()
    moved[idx] = x
    return oracle.value(s.value, moved, k.target, s.call_params)
