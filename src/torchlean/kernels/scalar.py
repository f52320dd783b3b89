"""Scalar helpers the kernels' terms call (numba, inlined): the spec's ``sign``, its
NaN-propagating clamp and its clipped logarithms (for float32 operands too), and the logistic
objective's gradient and Hessian from one exponential, in float64."""

from __future__ import annotations

from numba import njit

from torchlean.kernels import vmath

__all__ = ["clamp", "log_clipped", "log_clipped_single", "logistic_from_exp", "sign"]


@njit(inline="always")
def sign(d: float) -> float:
    # sign(0) = 0 and sign(nan) = nan, as the spec's ``sign``.
    return 1.0 if d > 0.0 else (-1.0 if d < 0.0 else d)


@njit(inline="always")
def clamp(p: float, lo: float, hi: float) -> float:
    # NaN-propagating clamp, as ``minimum(maximum(p, lo), hi)`` of the spec.
    if p != p:
        return p
    return min(max(p, lo), hi)


@njit(inline="always")
def log_clipped(x: float, eps: float, hi: float) -> tuple[float, float]:
    """The spec's ``(log(q), log(1 - q))``, ``q = clamp(x, eps, hi)``: below 1/2 through ``q``,
    from 1/2 on through ``r = clamp(1 - x, eps, hi)`` (``1 - x`` is exact there)."""
    q = clamp(x, eps, hi)
    r = clamp(1.0 - x, eps, hi)
    low = 2.0 * x < 1.0
    la = vmath.log(q if low else r)
    lb = vmath.log1p(-q if low else -r)
    return (la if low else lb), (lb if low else la)


@njit(inline="always")
def log_clipped_single(p: float, eps: float) -> tuple[float, float]:
    """The spec's ``(log(q), log(1 - q))``, ``q = clamp(p, eps, 1 - eps)``, for a float32
    ``p``, from ``log(p)`` and ``log(1 - p)`` and no ``log1p``: ``1 - p`` is exact for
    ``p >= 2**-30`` (a float32 has 24 bits), so the spec's ``log1p(-(1 - p))`` is ``log(p)`` to
    the bit and its ``log1p(-p)`` is ``log(1 - p)``; below, ``log1p(-p) = -p - p**2/2`` to
    ``2**-60``; a clamped ``p`` takes the spec's own constants."""
    l_lo = vmath.log(eps)
    l_hi = vmath.log1p(-eps)
    lq = vmath.log(p)
    l1q = vmath.log(1.0 - p)
    l1q = (-p - 0.5 * p * p) if p < 9.313225746154785e-10 else l1q  # 2**-30
    low = p < eps
    high = 1.0 - p < eps
    lq = l_lo if low else (l_hi if high else lq)
    l1q = l_hi if low else (l_lo if high else l1q)
    return lq, l1q


@njit(inline="always")
def logistic_from_exp(s: float, y: float, e: float) -> tuple[float, float]:
    """The logistic objective's ``(sigmoid(s) - y, sigmoid(s) sigmoid(-s))`` from
    ``e = exp(-|s|)``; the gradient as ``(1 - y) - sigmoid(-s)`` from ``y = 1/2`` on, where
    ``1 - y`` is exact."""
    pos = s > 0.0
    # one division: e / (1 + e) as e * (1 / (1 + e)), within the stated bound of the spec's
    big = 1.0 / (1.0 + e)
    small = e * big
    sig = big if pos else small
    sig_neg = small if pos else big
    g = sig - y if 2.0 * y < 1.0 else (1.0 - y) - sig_neg
    h = small * big
    return g, (y if y != y else h)
