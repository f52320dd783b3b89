"""The package's fused kernels, which its declarations name
(``kernel="torchlean.kernels.terms:mse"``).

Elementwise losses: a scalar term each (see :mod:`torchlean.kernels.kernel`), restating the
declaration's value and derivative terms in scalar form and in the spec's order of operations;
only log-cosh is rearranged (:func:`_log_cosh`). ``tests/test_kernels.py`` holds each to the
spec within the bounds of ``docs/performance.md``. Every element arrives as float64; selects,
not branches, keep the skeleton's loop vectorisable.

Cross-entropy on logits and cosine similarity keep their own kernels
(:mod:`torchlean.kernels.numba_kernels`, laid out by :mod:`torchlean.kernels.numpy_path`).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np

from torchlean.kernels.kernel import Special, elementwise

try:
    from torchlean.kernels import vmath
    from torchlean.kernels.scalar import clamp, log_clipped, sign
except ImportError:  # no numba: the terms never compile, and the torch ops below still serve
    pass

_OPS = "torchlean.kernels.torch_fused:"


@elementwise(torch=_OPS + "mse")
def mse(p: float, t: float, n: float) -> tuple[float, float]:
    d = p - t
    return d * d, d / (0.5 * n)  # 2 d / n in one rounding, without forming 2 d


@elementwise(torch=_OPS + "mae")
def mae(p: float, t: float, n: float) -> tuple[float, float]:
    d = p - t
    return abs(d), sign(d) / n


_TINY_DELTA = 2.0**-1000  # 1 / delta stays finite above; below, only d = 0 is inside


def _huber_single(p: float, t: float, n: float, delta: float) -> tuple[float, float]:
    # huber's results on float32 operands with the divisions by delta and n as products by
    # reciprocals formed once per call (fenced: fast-math would fold them back into divisions
    # per element); a float32 |d| < delta below 2**-1000 is 0, which any finite factor keeps
    d = p - t
    a = abs(d)
    inside = a < delta
    dl = max(delta, _TINY_DELTA)
    half_inv = vmath.fence(0.5 / dl)
    g_inside = vmath.fence(1.0 / (dl * n))
    inv_n = vmath.fence(1.0 / n)
    return ((d * d * half_inv if inside else a - delta / 2.0),
            (d * g_inside if inside else sign(d) * inv_n))


@elementwise(torch=_OPS + "huber", single=_huber_single)
def huber(p: float, t: float, n: float, delta: float) -> tuple[float, float]:
    # delta = 0 is the mae: nothing is inside, |d| - 0 is |d|
    d = p - t
    a = abs(d)
    inside = a < delta
    return ((d * d / (2.0 * delta) if inside else a - delta / 2.0),
            (d / delta / n if inside else sign(d) / n))


def _pseudo_huber_single(p: float, t: float, n: float, delta: float) -> tuple[float, float]:
    """pseudo_huber's results on float32 operands from one square root and two divisions.

    ``k = |d| / delta`` below ``|d| = delta``, ``delta / |d|`` from there on (the spec's
    ``m`` and ``q``, one of them per element), ``s = sqrt(1 + k**2)`` in ``[1, sqrt(2)]`` and
    ``r = 1 / (s (s + 1))``, which gives ``1 / s = (s + 1) r`` and ``1 / (s + 1) = s r``. The
    branch may differ from the spec's where ``|d| / delta`` rounds to 1; both forms are within a
    few float64 ulps there. Squares of float32 magnitudes stay far inside float64's range."""
    d = p - t
    ad = abs(d)
    small = ad < delta  # NaN: the second form, which keeps it
    k = (ad if small else delta) / (delta if small else ad)
    s = math.sqrt(1.0 + k * k)
    r = 1.0 / (s * (s + 1.0))
    inv_s = (s + 1.0) * r
    v = ad * (ad * (s * r)) if small else delta * (ad * s - delta)
    g = d * inv_s if small else sign(d) * delta * inv_s
    return v, g / n


@elementwise(heavy=True, torch=_OPS + "pseudo_huber", single=_pseudo_huber_single)
def pseudo_huber(p: float, t: float, n: float, delta: float) -> tuple[float, float]:
    # the declaration's forms: below |d| = delta through m = |d| / delta, above through
    # q = delta / |d| (NaN takes the second branch, which keeps it)
    d = p - t
    ad = abs(d)
    small = ad / delta < 1.0
    m = ad / delta if small else 1.0
    q = delta / (delta if small else ad)
    sm = math.sqrt(1.0 + m * m)
    sq = math.sqrt(1.0 + q * q)
    v = ad * (ad / (sm + 1.0)) if small else delta * (ad * sq - delta)
    g = d / sm if small else sign(d) * delta / sq
    return v, g / n


_TINY = 9.313225746154785e-10  # 2**-30: below, 1 - p is not exact in float64


def _cross_entropy_single(p: float, t: float, n: float, eps: float) -> tuple[float, float]:
    # cross_entropy's results on float32 operands (normal in float64) from one reduction and
    # one division: r = 1 / ((2 + f) p n) serves log's s = f / (2 + f) and -t / (p n)
    l_lo = vmath.log(eps)
    l_hi = vmath.log1p(-eps)
    e, f = vmath.log_split(p)
    d = 2.0 + f
    w = p * n
    r = 1.0 / (d * w)
    lq = vmath.log_from_split(e, f, w * r)
    q = 1.0 - p
    lq = l_lo if p < eps else (l_hi if q < eps else lq)
    gi = -t * (d * r) if (eps < p and eps < q) else 0.0
    v = -(t * lq)
    return (p if p != p else v), (gi if (p == p and t == t) else math.nan)


@elementwise(heavy=True, torch=_OPS + "cross_entropy", single=_cross_entropy_single,
             contract=True)
def cross_entropy(p: float, t: float, n: float, eps: float) -> tuple[float, float]:
    # derivative -t / p / n strictly inside (eps < p and eps < 1 - p), else 0; NaN in, NaN out
    hi = 1.0 - eps
    lq, _ = log_clipped(p, eps, hi)
    q = clamp(p, eps, hi)
    gi = -t / q / n if (eps < p and eps < 1.0 - p) else 0.0
    return -(t * lq), (gi if (p == p and t == t) else math.nan)


@elementwise(torch=_OPS + "hinge")
def hinge(p: float, t: float, n: float) -> tuple[float, float]:
    mg = 1.0 - t * p
    gi = -t / n if mg > 0.0 else 0.0
    return ((mg if (mg > 0.0 or mg != mg) else 0.0),
            (gi if (p == p and t == t) else math.nan))


def _poisson_scales(p: np.ndarray, t: np.ndarray,
                    params: Mapping[str, Any]) -> tuple[np.ndarray, float]:
    # exp(x) - t cancels: ulps of the larger term (3 of them: vmath's exp is within 2 ulps of
    # NumPy's, and the difference rounds once more; 2.07 measured at t = 0.059, x = 2.16)
    n = max(p.size, 1)
    e = np.exp(p)
    return (e + np.abs(t)) / n, float(np.mean(e + np.abs(t * p))) if p.size else 0.0


def _poisson_single(p: float, t: float, n: float) -> tuple[float, float]:
    # e**p - t from one unscaled split, accurate where it cancels, without the spec's second
    # form and with no division (vmath.exp_minus, for float32 operands)
    e, g = vmath.exp_minus(p, t)
    g = p if p != p else g
    return e - t * p, g * (1.0 / n)


@elementwise(heavy=True, torch=_OPS + "poisson", deriv_ulps=3, scales=_poisson_scales,
             single=_poisson_single, contract=True)
def poisson(p: float, t: float, n: float) -> tuple[float, float]:
    # the derivative as the spec forms it: expm1(x) - (t - 1) for 1/2 <= t <= 2
    e = vmath.exp(p)
    near_one = (2.0 * t >= 1.0) & (t <= 2.0)
    return e - t * p, ((vmath.expm1(p) - (t - 1.0)) if near_one else (e - t)) / n


_LN2 = 0.6931471805599453


def _log_cosh_single(p: float, t: float, n: float) -> tuple[float, float]:
    """``(log(cosh(d)), tanh(d) / n)`` from one range reduction, two divisions and one series.

    With ``a = |d|`` and ``e**-a = c (1 + q)`` (:func:`vmath.exp_split`): below ``a = ln 2``,
    ``w = expm1(-a) / (1 + e**-a) = -tanh(a / 2)`` (``c q + (c - 1)`` over ``c q + (c + 1)``),
    ``log(cosh(a)) = 2 atanh(w**2)`` and ``tanh(a) = -2 w / (1 + w**2)``; from ``ln 2`` on,
    with ``z = e**-2a``, ``log(cosh(a)) = a - ln 2 + 2 atanh(z / (2 + z))`` and
    ``tanh(a) = (1 - z) / (1 + z)``. Both atanh arguments stay below 1/9, where
    :func:`vmath.atanh2_short` is a degree-4 polynomial; nothing cancels, so each result is
    within 2**-47 of itself (:func:`vmath.exp_split_short`'s 13 ulps), far inside a float32
    ulp.
    """
    d = p - t
    a = abs(d)
    c, q = vmath.exp_split_short(-a)
    cq = c * q
    small = a < _LN2
    e = cq + c
    z = e * e
    num = (cq + (c - 1.0)) if small else z
    den = (cq + (c + 1.0)) if small else 2.0 + z
    w = num / den
    x = w * w if small else w
    lg = vmath.atanh2_short(x)
    val = lg if small else (a - _LN2) + lg
    # one division for both forms (0 - 2 w: tanh(+0) is +0)
    th = ((0.0 - (w + w)) if small else 1.0 - z) / (1.0 + (x if small else z))
    th = -th if d < 0.0 else th
    return (d, d) if d != d else (val, th * (1.0 / n))


@elementwise(heavy=True, torch=_OPS + "log_cosh", deriv_ulps=8, single=_log_cosh_single,
             contract=True)
def log_cosh(p: float, t: float, n: float) -> tuple[float, float]:
    """``(log(cosh(d)), tanh(d) / n)`` from ONE ``expm1`` and ONE ``log1p``.

    With ``a = |d|`` and ``v = expm1(-a)`` in ``(-1, 0]``:
    ``expm1(a) * -expm1(-a) = v**2 / (1 + v)`` and ``expm1(-2a) = v (2 + v)``, so
    the spec's two branches are
    ``log1p(v**2 / (2 (1 + v)))`` (``a < 1``) and ``a + log1p(v (2 + v) / 2)``; and
    ``tanh(a) = -u / (2 + u)`` with ``u = v (2 + v)``. No step cancels (``1 + v``, ``2 + v``,
    ``2 + u`` stay >= 0.36 where they divide), so each result is within a few float64 ulps of
    the spec's.
    """
    d = p - t
    a = abs(d)
    v = vmath.expm1(-a)
    u = v * (2.0 + v)
    small = a < 1.0
    lg = vmath.log1p(v * v / (2.0 * (1.0 + v)) if small else u / 2.0)
    val = lg if small else a + lg
    th = -u / (2.0 + u)
    th = -th if d < 0.0 else th
    return val, th / n


def _binary_cross_entropy_single(p: float, t: float, n: float,
                                 eps: float) -> tuple[float, float]:
    """binary_cross_entropy's results on float32 operands from two reductions and ONE division.

    ``1 - p`` is exact for ``p >= 2**-30`` (a float32 has 24 bits), so the spec's
    ``log1p(-(1 - p))`` is ``log(p)`` and its ``log1p(-p)`` is ``log(1 - p)``; below,
    ``log1p(-p) = -p - p**2/2`` to ``2**-60``. Strictly inside the clamp ``p`` and ``1 - p``
    are positive normal float64 numbers, and ``r = 1 / ((2 + f_p) (2 + f_1p) p (1 - p) n)``
    gives both logs' ``1 / (2 + f)`` and the derivative's ``1 / (p (1 - p) n)`` by
    multiplications, each within a few float64 ulps; a clamped ``p`` takes the spec's own
    constants and a zero derivative."""
    l_lo = vmath.log(eps)
    l_hi = vmath.log1p(-eps)
    q = 1.0 - p
    ea, fa = vmath.log_split(p)
    eb, fb = vmath.log_split(q)
    da = 2.0 + fa
    db = 2.0 + fb
    w = p * q * n
    dab = da * db
    r = 1.0 / (dab * w)
    lq = vmath.log_from_split(ea, fa, (db * w) * r)
    l1q = vmath.log_from_split(eb, fb, (da * w) * r)
    l1q = (-p - 0.5 * p * p) if p < _TINY else l1q
    low = p < eps
    high = q < eps
    lq = l_lo if low else (l_hi if high else lq)
    l1q = l_hi if low else (l_lo if high else l1q)
    gi = (p - t) * (dab * r) if (eps < p and eps < q) else 0.0
    v = -(t * lq + (1.0 - t) * l1q)
    return (p if p != p else v), (gi if (p == p and t == t) else math.nan)


@elementwise(heavy=True, torch=_OPS + "binary_cross_entropy",
             single=_binary_cross_entropy_single, contract=True)
def binary_cross_entropy(p: float, t: float, n: float, eps: float) -> tuple[float, float]:
    # derivative (p - t) / (p (1 - p)) / n strictly inside (as cross_entropy), else 0
    hi = 1.0 - eps
    lq, l1q = log_clipped(p, eps, hi)
    q = clamp(p, eps, hi)
    gi = (q - t) / (q * (1.0 - q)) / n if (eps < p and eps < 1.0 - p) else 0.0
    return -(t * lq + (1.0 - t) * l1q), (gi if (p == p and t == t) else math.nan)


def softmax_mass_scale(z: np.ndarray, t: np.ndarray) -> np.ndarray:
    """``softmax(z) * sum_last|t| + |t|``: the magnitude of the terms ``softmax * mass - t``
    subtracts, per element (float64, for the tests' bounds where it cancels)."""
    e = np.exp(z - z.max(axis=-1, keepdims=True))
    sm = e / e.sum(axis=-1, keepdims=True)
    return sm * np.abs(t).sum(axis=-1, keepdims=True) + np.abs(t)


def _logits_scales(z: np.ndarray, t: np.ndarray,
                   params: Mapping[str, Any]) -> tuple[np.ndarray | None, None]:
    # softmax * mass - t cancels: ulps of (softmax * sum|t| + |t|) / n
    if not (z.ndim and z.size):
        return None, None
    return softmax_mass_scale(z, t) / z.size, None


cross_entropy_logits = Special(
    numpy="torchlean.kernels.numpy_path:logits", heavy=True,
    torch=_OPS + "cross_entropy_logits", deriv_ulps=8, scales=_logits_scales)


def _cosine_scales(p: np.ndarray, t: np.ndarray,
                   params: Mapping[str, Any]) -> tuple[np.ndarray | None, float]:
    # the two terms of the derivative cancel, and the dot product's rounding scale is
    # sum |p t|, not |p . t|; the value is ulps of 1
    eps = params["epsilon"]
    pn, tn = np.linalg.norm(p), max(np.linalg.norm(t), eps)
    if not pn > eps:
        return None, 1.0
    a = float(np.sum(np.abs(p * t))) / pn**2
    return (a * np.abs(p) + np.abs(t)) / (pn * tn), 1.0


cosine_similarity = Special(
    numpy="torchlean.kernels.numpy_path:cosine", torch=_OPS + "cosine_similarity",
    deriv_ulps=8, scales=_cosine_scales)
