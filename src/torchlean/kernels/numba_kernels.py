"""Numba-compiled fused kernels: one pass reads ``p`` and ``t`` once, writes the derivative once
and accumulates the value.

Each elementwise kernel takes contiguous 1-D arrays ``p``, ``t``, ``g`` of one dtype (float32 or
float64) and the mean denominator ``n`` (a float, because a kernel may see one block of a larger
tensor), and returns the float64 SUM of the per-element value terms; the caller divides by ``n``
and rounds once. Every element is computed in float64 and rounded once when stored, as the
arrays context of the spec does.

The per-element formulas restate those of :mod:`torchlean.spec.layers.loss` in scalar form;
``tests/test_kernels.py`` holds each kernel equal to the spec within the bounds stated in
``docs/performance.md``. Only ``log_cosh`` is rearranged (one ``expm1`` and one ``log1p``
instead of up to four transcendental calls, see :func:`_log_cosh_term`); the others follow the
spec's order of operations. Transcendental functions come from :mod:`.vmath` (vectorisable,
about 1 ulp), except libm's ``exp`` for float64 cross-entropy on logits.

Loops run over blocks of ``_CHUNK`` elements under ``prange``. Inside a block the loop is over a
slice from index 0, so LLVM sees unit-stride, non-negative indexing and vectorises it; bodies
use selects rather than branches, and ``error_model="numpy"`` gives IEEE division without
zero checks. ``fastmath={"reassoc"}`` lets LLVM reorder the block's value sum; it allows
reassociating every other float operation of a kernel too (``2 * (d / n)`` may become
``(2 * d) / n``), so bodies are written in forms reassociation cannot spoil (``d / (0.5 * n)``)
and the tests hold every kernel to the spec. No NaN/inf assumptions, no reciprocal division.
Block sums are added pairwise.

Every kernel exists twice, in :data:`PARALLEL` (blocks spread over numba's thread pool) and in
:data:`SERIAL` (the same function compiled without the pool, for small inputs and for forked
children, see :mod:`torchlean.kernels`). Blocks and their pairwise sum do not depend on which
thread runs a block, so both give the same bits whatever the thread count.

Compilation is lazy (first call per dtype) and cached on disk (``cache=True``).
"""

from __future__ import annotations

import math
import types
from collections.abc import Callable
from typing import Any

import numpy as np
from numba import njit, prange

from torchlean.kernels import vmath

_CHUNK = 1024
_NAN = math.nan
_JIT = {"parallel": True, "fastmath": {"reassoc"}, "cache": True, "nogil": True,
        "error_model": "numpy"}

#: the kernels over numba's thread pool, and their single-threaded twins, by function name
PARALLEL = types.SimpleNamespace()
SERIAL = types.SimpleNamespace()


def _kernel(fn: Callable[..., Any]) -> Any:
    """Compile ``fn`` twice: into :data:`PARALLEL` and, as a twin under its own qualified name
    (so numba's disk cache keeps the two apart), into :data:`SERIAL`."""
    twin = types.FunctionType(fn.__code__, fn.__globals__, fn.__name__, fn.__defaults__,
                              fn.__closure__)
    twin.__qualname__ = fn.__qualname__ + "_serial"
    twin.__doc__ = fn.__doc__
    setattr(SERIAL, fn.__name__, njit(**{**_JIT, "parallel": False})(twin))
    parallel = njit(**_JIT)(fn)
    setattr(PARALLEL, fn.__name__, parallel)
    return parallel


@njit(cache=True)
def _pairwise(x):  # type: ignore[no-untyped-def]
    """Sum of ``x`` by pairwise halving, in place (error grows with log2 of the length)."""
    m = x.size
    while m > 1:
        h = m // 2
        for i in range(h):
            x[i] += x[m - 1 - i]
        m -= h
    return x[0] if x.size else 0.0


@njit(inline="always")
def _log_clipped(x: float, eps: float, hi: float) -> tuple[float, float]:
    """The spec's ``(log(q), log(1 - q))``, ``q = clamp(x, eps, hi)``: below 1/2 through ``q``,
    from 1/2 on through ``r = clamp(1 - x, eps, hi)`` (``1 - x`` is exact there)."""
    q = _clamp(x, eps, hi)
    r = _clamp(1.0 - x, eps, hi)
    low = 2.0 * x < 1.0
    la = vmath.log(q if low else r)
    lb = vmath.log1p(-q if low else -r)
    return (la if low else lb), (lb if low else la)


@njit(inline="always")
def _sign(d: float) -> float:
    # sign(0) = 0 and sign(nan) = nan, as the spec's ``sign``.
    return 1.0 if d > 0.0 else (-1.0 if d < 0.0 else d)


@njit(inline="always")
def _clamp(p: float, lo: float, hi: float) -> float:
    # NaN-propagating clamp, as ``minimum(maximum(p, lo), hi)`` of the spec.
    if p != p:
        return p
    return min(max(p, lo), hi)


# ------------------------------------------------------------------------------------------
# Per-element terms: (value term, derivative term before the division by n)
# ------------------------------------------------------------------------------------------


@njit(inline="always")
def _log_cosh_term(d: float) -> tuple[float, float]:
    """``(log(cosh(d)), tanh(d))`` from ONE ``expm1`` and ONE ``log1p``.

    With ``a = |d|`` and ``v = expm1(-a)`` in ``(-1, 0]``:
    ``expm1(a) * -expm1(-a) = v**2 / (1 + v)`` and ``expm1(-2a) = v (2 + v)``, so
    the spec's two branches are
    ``log1p(v**2 / (2 (1 + v)))`` (``a < 1``) and ``a + log1p(v (2 + v) / 2)``; and
    ``tanh(a) = -u / (2 + u)`` with ``u = v (2 + v)``. No step cancels (``1 + v``, ``2 + v``,
    ``2 + u`` stay >= 0.36 where they divide), so each result is within a few float64 ulps of
    the spec's.
    """
    a = abs(d)
    v = vmath.expm1(-a)
    u = v * (2.0 + v)
    small = a < 1.0
    lg = vmath.log1p(v * v / (2.0 * (1.0 + v)) if small else u / 2.0)
    val = lg if small else a + lg
    th = -u / (2.0 + u)
    th = -th if d < 0.0 else th
    return val, th


# ------------------------------------------------------------------------------------------
# Elementwise kernels
# ------------------------------------------------------------------------------------------


@_kernel
def mse(p, t, g, n):  # type: ignore[no-untyped-def]
    """value term ``d**2``; derivative ``2 (d / n)`` (``2 d`` alone may overflow)."""
    m = p.size
    nb = (m + _CHUNK - 1) // _CHUNK
    parts = np.zeros(nb)
    for b in prange(nb):
        k0 = b * _CHUNK
        k1 = min(k0 + _CHUNK, m)
        pc, tc, gc = p[k0:k1], t[k0:k1], g[k0:k1]
        s = 0.0
        for i in range(k1 - k0):
            d = np.float64(pc[i]) - np.float64(tc[i])
            s += d * d
            gc[i] = d / (0.5 * n)  # 2 d / n in one rounding, without forming 2 d
        parts[b] = s
    return _pairwise(parts)


@_kernel
def mae(p, t, g, n):  # type: ignore[no-untyped-def]
    """value term ``|d|``; derivative ``sign(d) / n``."""
    m = p.size
    nb = (m + _CHUNK - 1) // _CHUNK
    parts = np.zeros(nb)
    for b in prange(nb):
        k0 = b * _CHUNK
        k1 = min(k0 + _CHUNK, m)
        pc, tc, gc = p[k0:k1], t[k0:k1], g[k0:k1]
        s = 0.0
        for i in range(k1 - k0):
            d = np.float64(pc[i]) - np.float64(tc[i])
            s += abs(d)
            gc[i] = _sign(d) / n
        parts[b] = s
    return _pairwise(parts)


@_kernel
def huber(p, t, g, n, delta):  # type: ignore[no-untyped-def]
    """value term ``d**2 / (2 delta)`` if ``|d| < delta`` else ``|d| - delta / 2``;
    derivative ``(d / delta`` or ``sign(d)) / n``. ``delta > 0`` (0 goes to :func:`mae`)."""
    m = p.size
    nb = (m + _CHUNK - 1) // _CHUNK
    parts = np.zeros(nb)
    for b in prange(nb):
        k0 = b * _CHUNK
        k1 = min(k0 + _CHUNK, m)
        pc, tc, gc = p[k0:k1], t[k0:k1], g[k0:k1]
        s = 0.0
        for i in range(k1 - k0):
            d = np.float64(pc[i]) - np.float64(tc[i])
            a = abs(d)
            inside = a < delta
            # selects, not branches, so the loop vectorises
            s += d * d / (2.0 * delta) if inside else a - delta / 2.0
            gc[i] = d / delta / n if inside else _sign(d) / n
        parts[b] = s
    return _pairwise(parts)


@_kernel
def cross_entropy(p, t, g, n, eps, hi):  # type: ignore[no-untyped-def]
    """value term ``t log(clamp(p, eps, hi))`` (the caller negates the sum); derivative
    ``-t / p / n`` strictly inside (``eps < p`` and ``eps < 1 - p``), else 0; NaN where ``p`` or
    ``t`` is NaN."""
    m = p.size
    nb = (m + _CHUNK - 1) // _CHUNK
    parts = np.zeros(nb)
    for b in prange(nb):
        k0 = b * _CHUNK
        k1 = min(k0 + _CHUNK, m)
        pc, tc, gc = p[k0:k1], t[k0:k1], g[k0:k1]
        s = 0.0
        for i in range(k1 - k0):
            x = np.float64(pc[i])
            y = np.float64(tc[i])
            lq, _ = _log_clipped(x, eps, hi)
            s += y * lq
            q = _clamp(x, eps, hi)
            gi = -y / q / n if (eps < x and eps < 1.0 - x) else 0.0
            gc[i] = gi if (x == x and y == y) else _NAN
        parts[b] = s
    return _pairwise(parts)


@_kernel
def hinge(p, t, g, n):  # type: ignore[no-untyped-def]
    """value term ``max(0, 1 - t x)`` (NaN-propagating); derivative ``-t / n`` where
    ``1 - t x > 0``, else 0; NaN where ``x`` or ``t`` is NaN."""
    m = p.size
    nb = (m + _CHUNK - 1) // _CHUNK
    parts = np.zeros(nb)
    for b in prange(nb):
        k0 = b * _CHUNK
        k1 = min(k0 + _CHUNK, m)
        pc, tc, gc = p[k0:k1], t[k0:k1], g[k0:k1]
        s = 0.0
        for i in range(k1 - k0):
            x = np.float64(pc[i])
            y = np.float64(tc[i])
            mg = 1.0 - y * x
            # selects, not branches, so the loop vectorises
            s += mg if (mg > 0.0 or mg != mg) else 0.0
            gi = -y / n if mg > 0.0 else 0.0
            gc[i] = gi if (x == x and y == y) else _NAN
        parts[b] = s
    return _pairwise(parts)


@_kernel
def poisson(p, t, g, n, check):  # type: ignore[no-untyped-def]
    """value term ``exp(x) - t x``; derivative ``(exp(x) - t) / n``, as the spec forms it:
    ``expm1(x) - (t - 1)`` for ``1/2 <= t <= 2``. Returns ``(sum, bad)``, ``bad`` the number of
    targets < 0 when ``check`` (NaN is not counted)."""
    m = p.size
    nb = (m + _CHUNK - 1) // _CHUNK
    parts = np.zeros(nb)
    bads = np.zeros(nb, dtype=np.int64)
    for b in prange(nb):
        k0 = b * _CHUNK
        k1 = min(k0 + _CHUNK, m)
        pc, tc, gc = p[k0:k1], t[k0:k1], g[k0:k1]
        s = 0.0
        nbad = 0
        for i in range(k1 - k0):
            x = np.float64(pc[i])
            y = np.float64(tc[i])
            e = vmath.exp(x)
            s += e - y * x
            near_one = 2.0 * y >= 1.0 and y <= 2.0
            gc[i] = ((vmath.expm1(x) - (y - 1.0)) if near_one else (e - y)) / n
            nbad += 1 if y < 0.0 else 0
        parts[b] = s
        bads[b] = nbad
    return _pairwise(parts), (bads.sum() if check else 0)


@_kernel
def log_cosh(p, t, g, n):  # type: ignore[no-untyped-def]
    """value term ``log(cosh(d))``; derivative ``tanh(d) / n`` (see :func:`_log_cosh_term`)."""
    m = p.size
    nb = (m + _CHUNK - 1) // _CHUNK
    parts = np.zeros(nb)
    for b in prange(nb):
        k0 = b * _CHUNK
        k1 = min(k0 + _CHUNK, m)
        pc, tc, gc = p[k0:k1], t[k0:k1], g[k0:k1]
        s = 0.0
        for i in range(k1 - k0):
            v, th = _log_cosh_term(np.float64(pc[i]) - np.float64(tc[i]))
            s += v
            gc[i] = th / n
        parts[b] = s
    return _pairwise(parts)


@_kernel
def binary_cross_entropy(p, t, g, n, eps, hi, check):  # type: ignore[no-untyped-def]
    """value term ``-(t log q + (1 - t) log(1 - q))``, ``q = clamp(p, eps, hi)``; derivative
    ``(p - t) / (p (1 - p)) / n`` strictly inside (as cross_entropy), else 0; NaN where ``p`` or
    ``t`` is NaN. Returns ``(sum, bad)``, ``bad`` the number of targets outside [0, 1] when
    ``check``."""
    m = p.size
    nb = (m + _CHUNK - 1) // _CHUNK
    parts = np.zeros(nb)
    bads = np.zeros(nb, dtype=np.int64)
    for b in prange(nb):
        k0 = b * _CHUNK
        k1 = min(k0 + _CHUNK, m)
        pc, tc, gc = p[k0:k1], t[k0:k1], g[k0:k1]
        s = 0.0
        nbad = 0
        for i in range(k1 - k0):
            x = np.float64(pc[i])
            y = np.float64(tc[i])
            lq, l1q = _log_clipped(x, eps, hi)
            s += -(y * lq + (1.0 - y) * l1q)
            q = _clamp(x, eps, hi)
            gi = (q - y) / (q * (1.0 - q)) / n if (eps < x and eps < 1.0 - x) else 0.0
            gc[i] = gi if (x == x and y == y) else _NAN
            nbad += 1 if (y < 0.0 or y > 1.0) else 0
        parts[b] = s
        bads[b] = nbad
    return _pairwise(parts), (bads.sum() if check else 0)


# ------------------------------------------------------------------------------------------
# Cross-entropy on logits: rows of a C-contiguous 2-D array, softmax over each row
# ------------------------------------------------------------------------------------------


@_kernel
def cross_entropy_logits(z, t, g, n, narrow):  # type: ignore[no-untyped-def]
    """Per row: shift ``s = z - m`` (``m`` the row max, 0 where that is not finite), ``e = exp(s)``,
    ``r = sum(e) - 1`` formed as the spec's ``sum_exp_m1`` (the terms with ``s < 0`` summed apart
    from the rest, then ``below + (rest - 1)``); value term ``t (s - log1p(r))`` (the caller
    negates the sum); derivative ``(sm * mass - t) / n`` with ``sm = e / (1 + r)``,
    ``mass = sum(t)``, or where ``sm > 1/2`` the spec's ``mass (expm1(s) - r) / (1 + r) +
    (mass - t)``, over ``n``. ``exp`` runs once per
    element: ``e`` waits in a float64 row buffer between the two passes over the row.

    ``narrow`` (float32 output) takes :func:`vmath.exp`, which vectorises; float64 output keeps
    libm's ``exp``: the derivative cancels (``softmax * mass - t``) and libm's ``exp`` agrees
    with NumPy's (the spec's) to the last bit far more often, which keeps the cancelled result
    within a few ulps of the spec's. In float32 the difference rounds away."""
    rows, cols = z.shape
    per = max(1, _CHUNK // cols)
    nb = (rows + per - 1) // per
    # A row is summed in chunks of _CHUNK, the chunk sums pairwise: a long row's sums (10**6
    # classes) then stay as accurate as NumPy's pairwise ones, not a sequential sum's.
    nc = (cols + _CHUNK - 1) // _CHUNK
    parts = np.zeros(nb)
    for b in prange(nb):
        r0 = b * per
        r1 = min(r0 + per, rows)
        buf = np.empty(cols)
        sums = np.empty((4, nc))  # per chunk: below, rest, mass, value
        acc = 0.0
        for r in range(r0, r1):
            zr, tr, gr = z[r], t[r], g[r]
            mx = -math.inf
            jm = 0
            nan = False
            for j in range(cols):
                x = np.float64(zr[j])
                nan = nan or x != x
                jm = j if x > mx else jm
                mx = x if x > mx else mx
            if nan or not math.isfinite(mx):
                mx = 0.0
            for c in range(nc):
                j0 = c * _CHUNK
                j1 = min(j0 + _CHUNK, cols)
                zc, tc, bc = zr[j0:j1], tr[j0:j1], buf[j0:j1]
                below = 0.0
                rest = 0.0
                mass = 0.0
                if narrow:
                    for j in range(j1 - j0):
                        sj = np.float64(zc[j]) - mx
                        e = vmath.exp(sj)
                        bc[j] = e
                        neg = sj < 0.0
                        below += e if neg else 0.0
                        rest += 0.0 if neg else e
                        mass += np.float64(tc[j])
                else:
                    for j in range(j1 - j0):
                        sj = np.float64(zc[j]) - mx
                        e = math.exp(sj)
                        bc[j] = e
                        neg = sj < 0.0
                        below += e if neg else 0.0
                        rest += 0.0 if neg else e
                        mass += np.float64(tc[j])
                sums[0, c] = below
                sums[1, c] = rest
                sums[2, c] = mass
            r = _pairwise(sums[0]) + (_pairwise(sums[1]) - 1.0)
            mass = _pairwise(sums[2])
            lse = vmath.log1p(r)
            den = 1.0 + r
            for c in range(nc):
                j0 = c * _CHUNK
                j1 = min(j0 + _CHUNK, cols)
                zc, tc, gc, bc = zr[j0:j1], tr[j0:j1], gr[j0:j1], buf[j0:j1]
                v = 0.0
                for j in range(j1 - j0):
                    y = np.float64(tc[j])
                    v += y * ((np.float64(zc[j]) - mx) - lse)
                    gc[j] = (bc[j] / den * mass - y) / n
                sums[3, c] = v
            acc += _pairwise(sums[3])
            # Where softmax > 1/2 (only a row's unique maximum can be) the spec uses the
            # cancellation-free form mass (expm1(s) - r) / (1 + r) + (mass - t).
            if 2.0 * (buf[jm] / den) > 1.0:
                sj = np.float64(zr[jm]) - mx
                y = np.float64(tr[jm])
                gr[jm] = (mass * ((vmath.expm1(sj) - r) / den) + (mass - y)) / n
        parts[b] = acc
    return _pairwise(parts)


# ------------------------------------------------------------------------------------------
# Cosine similarity: two passes (the norms are of the whole tensor)
# ------------------------------------------------------------------------------------------


@_kernel
def cosine_sums(p, t):  # type: ignore[no-untyped-def]
    """``(sum p**2, sum t**2, sum p t)`` in float64."""
    m = p.size
    nb = (m + _CHUNK - 1) // _CHUNK
    pp = np.zeros(nb)
    tt = np.zeros(nb)
    pt = np.zeros(nb)
    for b in prange(nb):
        k0 = b * _CHUNK
        k1 = min(k0 + _CHUNK, m)
        pc, tc = p[k0:k1], t[k0:k1]
        s1 = 0.0
        s2 = 0.0
        s3 = 0.0
        for i in range(k1 - k0):
            x = np.float64(pc[i])
            y = np.float64(tc[i])
            s1 += x * x
            s2 += y * y
            s3 += x * y
        pp[b] = s1
        tt[b] = s2
        pt[b] = s3
    return _pairwise(pp), _pairwise(tt), _pairwise(pt)


@_kernel
def cosine_deriv(p, t, g, a, c, bp, bt):  # type: ignore[no-untyped-def]
    """``g = (a p - t) / c`` elementwise (the caller picks ``a`` and ``c`` for its branch);
    returns ``sum((p / bp - t / bt)**2)``, the spec's ``|u - v|**2`` for the clamped norms."""
    m = p.size
    nb = (m + _CHUNK - 1) // _CHUNK
    parts = np.zeros(nb)
    for b in prange(nb):
        k0 = b * _CHUNK
        k1 = min(k0 + _CHUNK, m)
        pc, tc, gc = p[k0:k1], t[k0:k1], g[k0:k1]
        s = 0.0
        for i in range(k1 - k0):
            x = np.float64(pc[i])
            y = np.float64(tc[i])
            gc[i] = (a * x - y) / c
            w = x / bp - y / bt
            s += w * w
        parts[b] = s
    return _pairwise(parts)
