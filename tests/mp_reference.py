"""A 50-digit mpmath oracle for every registered loss.

Each value is written straight from its textbook formula and evaluated with ``mp.dps = 50`` on
the exact binary values of the float64 inputs (no stabilising rewrites are needed at 50 digits).
Derivatives come from mpmath's own numerical differentiation of those values, so they share
nothing with the package's analytic derivative formulas. Clamp bounds are the real ``eps`` and
``1 - eps``, ``eps`` read as its decimal (``1e-6`` is 10**-6), as the float semantics has them.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import mpmath
import numpy as np
from mpmath import mp, mpf

DPS = 50


def mp_list(a: Any) -> list[mpf]:
    """The exact values of a float array (or number), flattened, as 50-digit numbers."""
    with mp.workdps(DPS):
        return [mpf(float(v)) for v in np.asarray(a, dtype=np.float64).ravel()]


def _clamp(q: mpf, eps: float) -> mpf:
    e = mpf(repr(eps))
    return min(max(q, e), 1 - e)


def _elementwise(name: str, x: mpf, y: mpf, params: dict[str, Any]) -> mpf:
    d = x - y
    if name == "mse":
        return d * d
    if name == "mae":
        return abs(d)
    if name == "huber":
        delta = mpf(params.get("delta", 1.0))
        if delta == 0:
            return abs(d)
        return d * d / (2 * delta) if abs(d) < delta else abs(d) - delta / 2
    if name == "cross_entropy":
        return -y * mpmath.log(_clamp(x, params.get("epsilon", 1e-6)))
    if name == "hinge":
        return max(mpf(0), 1 - y * x)
    if name == "poisson":
        return mpmath.exp(x) - y * x
    if name == "log_cosh":
        return mpmath.log(mpmath.cosh(d))
    if name == "binary_cross_entropy":
        q = _clamp(x, params.get("epsilon", 1e-6))
        return -(y * mpmath.log(q) + (1 - y) * mpmath.log(1 - q))
    raise KeyError(name)


def _value(name: str, p: list[mpf], t: list[mpf], shape: tuple[int, ...],
           params: dict[str, Any]) -> mpf:
    n = max(len(p), 1)
    if name == "cosine_similarity":
        eps = mpf(params.get("epsilon", 1e-6))
        pn = mpmath.sqrt(mpmath.fsum(x * x for x in p))
        tn = mpmath.sqrt(mpmath.fsum(y * y for y in t))
        dot = mpmath.fsum(x * y for x, y in zip(p, t, strict=True))
        return 1 - dot / (max(pn, eps) * max(tn, eps))
    if name == "cross_entropy_logits":
        k = shape[-1]
        total = mpf(0)
        for r in range(0, len(p), k):
            z, w = p[r:r + k], t[r:r + k]
            lse = mpmath.log(mpmath.fsum(mpmath.exp(v) for v in z))
            total -= mpmath.fsum(wi * (zi - lse) for zi, wi in zip(z, w, strict=True))
        return total / n
    return mpmath.fsum(_elementwise(name, x, y, params) for x, y in zip(p, t, strict=True)) / n


def value(name: str, predicted: Any, target: Any, **params: Any) -> mpf:
    """The loss ``name`` at float inputs, to 50 digits."""
    shape = np.shape(predicted)
    with mp.workdps(DPS):
        return _value(name, mp_list(predicted), mp_list(target), shape, params)


def deriv(name: str, predicted: Any, target: Any, **params: Any) -> list[mpf]:
    """d value / d predicted_i for every element (flattened), by mpmath's numerical
    differentiation of :func:`value` at 50 digits. Only valid away from kinks."""
    shape = np.shape(predicted)
    with mp.workdps(DPS):
        p, t = mp_list(predicted), mp_list(target)
        out = []
        for i in range(len(p)):
            def f(x: mpf, i: int = i) -> mpf:
                q = list(p)
                q[i] = x
                return _value(name, q, t, shape, params)
            out.append(mpmath.diff(f, p[i]))
        return out


def ulps(actual: Any, reference: mpf, dtype: Any = np.float64) -> float:
    """Distance of ``actual`` from ``reference`` in units of the last place of ``dtype`` at the
    reference (the spacing of the correctly rounded reference)."""
    with mp.workdps(DPS):
        ref = dtype(float(reference))
        spacing = mpf(float(np.spacing(np.abs(ref))))
        return float(abs(mpf(float(actual)) - reference) / spacing)


def mp_fn(f: Callable[..., mpf], *args: float) -> mpf:
    """Evaluate an mpmath expression at 50 digits."""
    with mp.workdps(DPS):
        return f(*(mpf(a) for a in args))
