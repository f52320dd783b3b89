"""Check (b): at every kink the chosen derivative lies between the one-sided derivatives.

The points come from the declaration's seams (:meth:`~torchlean.certify.plans.Plan.kinks`): on
each seam, built at 50 digits with the oracle's own constants, plus ordinary points of the
zones. For each coordinate ``i`` the one-sided difference quotients of the VALUE at 50 digits,

    D+ = (-3 f(x) + 4 f(x + h e_i) - f(x + 2h e_i)) / (2h)    (D-: the same with -h),

with ``h = 1e-25 * max(|x_i|, 1e-6)``, the derivative at ``x`` of the quadratic through those
values (one-sided, exact up to ``h**2 |f'''|``: a derivative of 0 at a smooth seam meets
quotients of about ``1e-50``, not ``h |f''|``), are compared with the derivative's element
``g_i``, to ``tol = 1e-12 * max(|D-|, |D+|, |g_i|)``:

- on a seam declared ``kink=True`` they must bracket it:
  ``min(D-, D+) - tol <= g_i <= max(D-, D+) + tol`` (the declared choice of subgradient);
- on a seam declared ``kink=False`` (a C1 seam, a change of evaluation form) and at ordinary
  points both must equal it: ``|D+ - g_i| <= tol`` and ``|D- - g_i| <= tol``.

Rounding adds ``1e-50 |f| / h`` at most, far inside ``tol`` for any loss whose derivatives are
not astronomically large; that rounding, ``1e-46 max|f| / h``, is taken off the difference
before it is compared, and the scale is at least ``1e-35`` (where the derivative vanishes, the
rounding of the inputs, about ``1e-50 |x| |f''|``, is all that is left).

With ``beside=True`` (the second-order rows, whose "value" is a derivative that may JUMP at a
seam: ``sign(d)`` at ``d = 0``) the quadratic goes through ``x + h, x + 2h, x + 3h`` instead,
off the point itself,

    D+ = (-5 f(x + h e_i) + 8 f(x + 2h e_i) - 3 f(x + 3h e_i)) / (2h),

so the quotients approach the one-sided LIMITS of the derivative of ``f`` (its one-sided
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
#: the rounding of the 50-digit values, relative: a quotient is uncertain by about
#: ``ROUNDING * max|f| / h`` (where the derivative and both quotients vanish, a smooth seam at a
#: minimum, that is all that is left and must not count as a relative error of 1)
ROUNDING = "1e-46"
#: the smallest scale of the comparison: a difference below ``1e-12 * SMALLEST`` is what the
#: rounding of the inputs themselves leaves where everything vanishes (at 50 digits, about
#: ``1e-50 |x| |f''|``), never a wrong derivative
SMALLEST = "1e-35"


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
                    nodes = (1, 2, 3) if beside else (1, 2)
                    steps = [xi + side * j * h for side in (1, -1) for j in nodes]
                f = [_moved(oracle, s, k, idx, x) for x in steps]
                up, down = f[:len(nodes)], f[len(nodes):]
                with oracle.digits():
                    d_plus, d_minus = _one_sided(up, f0, h), _one_sided(down, f0, -h)
                    lo, hi, gi = min(d_minus, d_plus), max(d_minus, d_plus), g[idx]
                    scale = max(abs(d_minus), abs(d_plus), abs(gi), oracle.mpf(SMALLEST))
                    if k.kink:  # between the one-sided derivatives
                        off = max(lo - gi, gi - hi, 0)
                    else:  # equal to both
                        off = max(abs(d_minus - gi), abs(d_plus - gi))
                    noise = oracle.mpf(ROUNDING) * max(abs(v) for v in (*f, f0 or 0)) / abs(h)
                    gap = max(off - noise, 0) / scale
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


def _one_sided(f: list[Any], f0: Any, h: Any) -> Any:
    """The derivative at ``x`` of the quadratic through the values at ``x + h, x + 2h`` and
    ``x`` (``f0``), or, with ``f0`` None, at ``x + h, x + 2h, x + 3h`` (beside the point):
    one-sided, with an error of order ``h**2``."""
    if f0 is None:
        return (-5 * f[0] + 8 * f[1] - 3 * f[2]) / (2 * h)
    return (-3 * f0 + 4 * f[0] - f[1]) / (2 * h)
