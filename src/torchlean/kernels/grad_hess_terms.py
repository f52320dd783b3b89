"""The per-sample kernels of :func:`torchlean.grad_hess` that the package's declarations name
(``grad_hess_kernel="torchlean.kernels.grad_hess_terms:logistic"``).

Each elementwise term restates its declaration's derivative and second-derivative terms in
scalar form, in the spec's order of operations and with its evaluation forms (the seams where
a form changes sit at the same places); ``softmax`` is a row term. Every element arrives as
float64; selects, not branches, keep the loop vectorisable. ``tests/test_grad_hess_kernels.py``
holds each kernel to the declaration's terms within the bounds stated here (``grad_ulps``,
``hess_ulps``, relative to the ``scales`` where a result cancels) and in
``docs/performance.md``.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Mapping
from typing import Any

import numpy as np

from torchlean.kernels.grad_hess_kernel import PerRow, per_sample

with contextlib.suppress(ImportError):  # no numba: the terms never compile
    from torchlean.kernels import vmath
    from torchlean.kernels.scalar import logistic_from_exp


# ------------------------------------------------------------------------------------------
# Scales of the results that cancel (float64, for the tests' bounds)
# ------------------------------------------------------------------------------------------


def _difference_scale(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.abs(a) + np.abs(b)


def _poisson_scales(p: np.ndarray, t: np.ndarray,
                    params: Mapping[str, Any]) -> tuple[np.ndarray, None]:
    # exp(s) - y cancels: ulps of the larger term
    return _difference_scale(np.exp(p), t), None


def _gamma_scales(p: np.ndarray, t: np.ndarray,
                  params: Mapping[str, Any]) -> tuple[np.ndarray, None]:
    # 1 - y exp(-s) cancels
    return _difference_scale(1.0, t * np.exp(-p)), None


def _tweedie_scales(p: np.ndarray, t: np.ndarray,
                    params: Mapping[str, Any]) -> tuple[np.ndarray, np.ndarray]:
    rho = params["power"]
    a, b = t * np.exp((1 - rho) * p), np.exp((2 - rho) * p)
    return _difference_scale(a, b), _difference_scale((rho - 1) * a, (2 - rho) * b)


def _logistic_scales(p: np.ndarray, t: np.ndarray,
                     params: Mapping[str, Any]) -> tuple[np.ndarray, None]:
    # sigmoid(s) - y cancels for a fractional y
    return _difference_scale(1.0 / (1.0 + np.exp(-p)), t), None


def _focal_scales(p: np.ndarray, t: np.ndarray,
                  params: Mapping[str, Any]) -> tuple[None, np.ndarray]:
    # the Hessian's factor gamma L (gamma r - q) + q (2 gamma + 1) may cancel for gamma > 0:
    # ulps of the sum of its terms' magnitudes, times the factors outside
    g, a = params["gamma"], params["alpha"]
    m = (2 * t - 1) * p
    q = 1 / (1 + np.exp(m))
    r = 1 / (1 + np.exp(-m))
    lg = np.logaddexp(0.0, -m)
    at = a * t + (1 - a) * (1 - t)
    inner = np.abs(g * lg) * (g * r + q) + q * (2 * g + 1)
    return None, at * q**g * r * inner


def _softmax_scales(z: np.ndarray, t: np.ndarray,
                    params: Mapping[str, Any]) -> tuple[np.ndarray | None, None]:
    # softmax * mass - t cancels: ulps of softmax * mass + |t|
    if not (z.ndim and z.size):
        return None, None
    from torchlean.kernels.terms import softmax_mass_scale

    return softmax_mass_scale(z, t), None


# ------------------------------------------------------------------------------------------
# The terms
# ------------------------------------------------------------------------------------------


@per_sample()
def squared_error(p: float, t: float) -> tuple[float, float]:
    d = p - t
    return d, (d if d != d else 1.0)


def _logistic_single(s: float, y: float) -> tuple[float, float]:
    # logistic's forms on float32 operands, e**-|s| from the unscaled split (see
    # _poisson_log_single): 0 below exp's underflow, for a weight of infinity
    x = -abs(s)
    c, q = vmath.exp_split(x)
    e = c * q + c
    e = 0.0 if x < vmath.EXP_UNDERFLOW else e
    g, h = logistic_from_exp(s, y, e)
    return (s, s) if s != s else (g, h)


@per_sample(heavy=True, grad_ulps=3, hess_ulps=4, scales=_logistic_scales,
            single=_logistic_single)
def logistic(s: float, y: float) -> tuple[float, float]:
    return logistic_from_exp(s, y, vmath.exp(-abs(s)))


@per_sample()
def quantile(p: float, t: float, alpha: float) -> tuple[float, float]:
    r = t - p
    g = -alpha if r > 0.0 else ((1.0 - alpha) if r < 0.0 else 0.0)
    return (r if r != r else g), (r if r != r else 0.0)


def _poisson_log_single(s: float, y: float) -> tuple[float, float]:
    # e - y from one unscaled split, accurate where it cancels (y = 1 included) without
    # poisson_log's two forms (vmath.exp_minus, for float32 operands)
    e, g = vmath.exp_minus(s, y)
    h = y if y != y else e
    return (s, s) if s != s else (g, h)


@per_sample(heavy=True, grad_ulps=3, scales=_poisson_scales, single=_poisson_log_single)
def poisson_log(s: float, y: float) -> tuple[float, float]:
    # the seed poisson's forms: expm1(s) - (y - 1) for 1/2 <= y <= 2; exp and expm1 from one
    # range reduction
    e, em1 = vmath.exp_expm1(s)
    near_one = (2.0 * y >= 1.0) & (y <= 2.0)
    g = (em1 - (y - 1.0)) if near_one else (e - y)
    return g, (y if y != y else e)


@per_sample(heavy=True, grad_ulps=3, hess_ulps=3, scales=_gamma_scales)
def gamma_log(s: float, y: float) -> tuple[float, float]:
    # y exp(-s) is 0 at y = 0 however large exp(-s) (0 * inf would be NaN), NaN for a NaN s
    h = y * vmath.exp(-s)
    h = (s if s != s else 0.0) if y == 0.0 else h
    return 1.0 - h, h


@per_sample(heavy=True, grad_ulps=4, hess_ulps=4, scales=_tweedie_scales)
def tweedie_log(s: float, y: float, power: float) -> tuple[float, float]:
    a = power - 1.0
    b = 2.0 - power
    ye1 = y * vmath.exp(-(a * s))
    ye1 = (s if s != s else 0.0) if y == 0.0 else ye1  # as gamma_log's y exp(-s)
    e2 = vmath.exp(b * s)
    return e2 - ye1, a * ye1 + b * e2


@per_sample(heavy=True, grad_ulps=8, hess_ulps=8, scales=_focal_scales)
def binary_focal(s: float, y: float, gamma: float, alpha: float) -> tuple[float, float]:
    # the declaration's sigmoid parts at the label's margin m = (2y - 1) s, from
    # e = exp(-|m|) alone; q**gamma as exp(-gamma softplus(m))
    sg = 2.0 * y - 1.0
    m = sg * s
    e = vmath.exp(-abs(m))
    pos = m > 0.0
    big = 1.0 / (1.0 + e)
    small = e / (1.0 + e)
    r = big if pos else small  # sigmoid(m)
    q = small if pos else big  # sigmoid(-m)
    l1 = vmath.log1p(e)
    spm = max(m, 0.0) + l1  # softplus(m)
    spn = max(-m, 0.0) + l1  # softplus(-m), the cross-entropy
    at = alpha * y + (1.0 - alpha) * (1.0 - y)
    qg = vmath.exp(-gamma * spm)
    g = -(sg * (at * (qg * (gamma * (r * spn) + q))))
    inner = gamma * (spn * (gamma * r - q)) + q * (2.0 * gamma + 1.0)
    return g, sg * sg * (at * (qg * (r * inner)))


# the Hessian's 1 + m * m rounds once as a fused multiply-add (the spec rounds twice), and its
# cube triples that difference
@per_sample(heavy=True, grad_ulps=2, hess_ulps=8)
def pseudo_huber(p: float, t: float, delta: float) -> tuple[float, float]:
    # the seed's forms: below |d| = delta through m = |d| / delta, above through
    # q = delta / |d| (NaN takes the second branch, which keeps it)
    d = p - t
    ad = abs(d)
    small = ad / delta < 1.0
    m = ad / delta if small else 1.0
    q = delta / (delta if small else ad)
    sm = math.sqrt(1.0 + m * m)
    sq = math.sqrt(1.0 + q * q)
    sign = 1.0 if d > 0.0 else (-1.0 if d < 0.0 else d)
    g = d / sm if small else sign * delta / sq
    im = 1.0 / sm
    iq = q / sq
    return g, (im * im * im if small else iq * iq * iq)


def _softmax_rows(z, t, w, g, h):  # type: ignore[no-untyped-def]
    """A block of rows of ``softmax``: the seed's cross-entropy-on-logits forms (see
    :func:`torchlean.spec.layers.loss._cross_entropy_logits_deriv` and ``_softmax_parts``):
    shift by each row's maximum (0 where it is not finite), ``r = below + (rest - 1)`` summed
    as the spec's ``sum_exp_m1``, and where softmax > 1/2 the cancellation-free forms. The
    shifted scores of the whole block go through one flat loop of :func:`.vmath.exp`, which
    vectorises (a row of a few classes would not)."""
    rows, k = z.shape
    s = np.empty(rows * k)
    for r in range(rows):
        zr = z[r]
        mx = -math.inf
        nan = False
        for j in range(k):
            x = np.float64(zr[j])
            nan = nan or x != x
            mx = x if x > mx else mx
        if nan or not math.isfinite(mx):
            mx = 0.0
        for j in range(k):
            s[r * k + j] = np.float64(zr[j]) - mx
    e = np.empty(rows * k)
    for i in range(rows * k):
        e[i] = vmath.exp(s[i])
    for r in range(rows):
        tr, gr, hr = t[r], g[r], h[r]
        below = 0.0
        rest = 0.0
        mass = 0.0
        for j in range(k):
            ej = e[r * k + j]
            neg = s[r * k + j] < 0.0
            below += ej if neg else 0.0
            rest += 0.0 if neg else ej
            mass += np.float64(tr[j])
        rr = below + (rest - 1.0)
        den = 1.0 + rr
        wr = np.float64(w[r])
        for j in range(k):
            sm = e[r * k + j] / den
            y = np.float64(tr[j])
            if 2.0 * sm > 1.0:
                em = vmath.expm1(s[r * k + j])
                gj = mass * ((em - rr) / den) + (mass - y)
                hj = mass * (sm * ((rr - em) / den))
            else:
                gj = sm * mass - y
                hj = mass * (sm * (1.0 - sm))
            gr[j] = gj * wr
            hr[j] = hj * wr


softmax = PerRow(_softmax_rows, grad_ulps=8, hess_ulps=8, scales=_softmax_scales)
