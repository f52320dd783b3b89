"""Scalar helpers the kernels' terms call (numba, inlined): the spec's ``sign``, its
NaN-propagating clamp and its clipped logarithms, in float64."""

from __future__ import annotations

from numba import njit

from torchlean.kernels import vmath

__all__ = ["clamp", "log_clipped", "sign"]


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
