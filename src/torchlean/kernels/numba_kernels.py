"""Numba-compiled kernels of the slice and whole losses (cross-entropy on logits, cosine
similarity), and what every kernel shares: the block size, the compile options and the pairwise
sum. Elementwise losses have no kernel here: theirs is the one skeleton of
:mod:`torchlean.kernels.skeleton` compiled around each declared term.

Each kernel takes contiguous arrays ``p``, ``t``, ``g`` of one dtype (float32 or float64);
every element is computed in float64 and rounded once when stored, as the arrays context of the
spec does. The formulas restate those of :mod:`torchlean.spec.layers.loss` in scalar form;
``tests/test_kernels.py`` holds each kernel equal to the spec within the bounds stated in
``docs/performance.md``. Transcendental functions come from :mod:`.vmath` (vectorisable, about
1 ulp).

Loops run over blocks of ``CHUNK`` elements under ``prange``. Inside a block the loop is over a
slice from index 0, so LLVM sees unit-stride, non-negative indexing and vectorises it; bodies
use selects rather than branches, and ``error_model="numpy"`` gives IEEE division without
zero checks. ``fastmath={"reassoc"}`` lets LLVM reorder the block's value sum; it allows
reassociating every other float operation of a kernel too (``2 * (d / n)`` may become
``(2 * d) / n``), so bodies (and terms) are written in forms reassociation cannot spoil
(``d / (0.5 * n)``) and the tests hold every kernel to the spec. No NaN/inf assumptions, no
reciprocal division. Block sums are added pairwise.

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
from torchlean.kernels.vmath import _bits, _float  # the IEEE bit casts

CHUNK = 1024
JIT = {"parallel": True, "fastmath": {"reassoc"}, "cache": True, "nogil": True,
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
    setattr(SERIAL, fn.__name__, njit(**{**JIT, "parallel": False})(twin))
    parallel = njit(**JIT)(fn)
    setattr(PARALLEL, fn.__name__, parallel)
    return parallel


@njit(cache=True)
def pairwise(x):  # type: ignore[no-untyped-def]
    """Sum of ``x`` by pairwise halving, in place (error grows with log2 of the length)."""
    m = x.size
    while m > 1:
        h = m // 2
        for i in range(h):
            x[i] += x[m - 1 - i]
        m -= h
    return x[0] if x.size else 0.0


# ------------------------------------------------------------------------------------------
# Cross-entropy on logits: rows of a C-contiguous 2-D array, softmax over each row
# ------------------------------------------------------------------------------------------


#: rows of at most this many classes go through :func:`_short_rows`
SHORT = 16
_BLOCK = {k: v for k, v in JIT.items() if k != "parallel"}
# The exponential alone lets LLVM fuse a multiply and an add into one FMA (``contract``): its
# polynomial at half the instructions, one rounding where there were two. The rest keeps the
# spec's roundings: a fused value sum would differ from the spec's where it cancels.
_EXP_JIT = {**_BLOCK, "fastmath": {"reassoc", "contract"}}


@njit(**_EXP_JIT)
def _exp_sums(zc, tc, mx, out):  # type: ignore[no-untyped-def]
    """``out = exp(zc - mx)``; returns the sums of those with a negative shift, of the others,
    and of ``tc`` (additions only: ``contract`` has nothing to fuse there)."""
    below = 0.0
    rest = 0.0
    mass = 0.0
    for j in range(zc.size):
        s = np.float64(zc[j]) - mx
        e = vmath.exp(s)
        out[j] = e
        neg = s < 0.0
        below += e if neg else 0.0
        rest += 0.0 if neg else e
        mass += np.float64(tc[j])
    return below, rest, mass


@njit(**_EXP_JIT)
def _exp_into(x, out):  # type: ignore[no-untyped-def]
    """``out = exp(x)`` elementwise (:func:`vmath.exp`; ``x`` and ``out`` do not overlap)."""
    for k in range(x.size):
        out[k] = vmath.exp(x[k])


@njit(**_BLOCK)
def _short_rows(z, t, g, r0, r1, n, narrow):  # type: ignore[no-untyped-def]
    """Rows ``r0:r1`` of at most :data:`SHORT` classes, transposed into float64 buffers
    (``buf[j * nr + i]`` is class ``j`` of row ``i``) so that every step runs across rows, in
    vector lanes: no loop is as short as a row and no row sum is a chain of dependent adds.
    Returns the block's value sum. The same forms as :func:`cross_entropy_logits`."""
    cols = z.shape[1]
    nr = r1 - r0
    m = nr * cols
    # two allocations per block: the element buffers and the per-row ones
    work = np.empty((3, m))
    sb, yb, eb = work[0], work[1], work[2]
    per_row = np.empty((8, nr))
    mx, nan, below, rest = per_row[0], per_row[1], per_row[2], per_row[3]
    mass, near, fix, v = per_row[4], per_row[5], per_row[6], per_row[7]
    for i in range(nr):
        zr, tr = z[r0 + i], t[r0 + i]
        for j in range(cols):
            sb[j * nr + i] = np.float64(zr[j])
            yb[j * nr + i] = np.float64(tr[j])
    mx[:] = -math.inf
    nan[:] = 0.0
    for j in range(cols):
        sj = sb[j * nr:(j + 1) * nr]
        for i in range(nr):
            x = sj[i]
            nan[i] += 0.0 if x == x else 1.0
            mx[i] = x if x > mx[i] else mx[i]
    for i in range(nr):
        ok = nan[i] == 0.0 and abs(mx[i]) < math.inf
        mx[i] = mx[i] if ok else 0.0
    for j in range(cols):
        sj = sb[j * nr:(j + 1) * nr]
        for i in range(nr):
            sj[i] = sj[i] - mx[i]
    _exp_into(sb, eb)
    below[:] = 0.0
    rest[:] = 0.0
    mass[:] = 0.0
    for j in range(cols):
        sj, ej, yj = sb[j * nr:(j + 1) * nr], eb[j * nr:(j + 1) * nr], yb[j * nr:(j + 1) * nr]
        for i in range(nr):
            e = ej[i]
            neg = sj[i] < 0.0
            below[i] += e if neg else 0.0
            rest[i] += 0.0 if neg else e
            mass[i] += yj[i]
    # per row: r, log1p(r) (into `below`), 1 + r (into `rest`), and the spec's form where
    # softmax > 1/2: only a finite row's unique maximum can be, where s = 0, exp(s) = 1 and
    # expm1(s) = 0, so its softmax is 1 / (1 + r) and the form mass (0 - r) / (1 + r) (`near`)
    for i in range(nr):
        r = below[i] + (rest[i] - 1.0)
        den = 1.0 + r
        below[i] = vmath.log1p(r)
        rest[i] = den
        near[i] = mass[i] * ((0.0 - r) / den)
        fix[i] = 1.0 if 2.0 * (1.0 / den) > 1.0 else 0.0
    v[:] = 0.0
    inv_n = 1.0 / n
    for j in range(cols):
        sj, ej, yj = sb[j * nr:(j + 1) * nr], eb[j * nr:(j + 1) * nr], yb[j * nr:(j + 1) * nr]
        for i in range(nr):
            y = yj[i]
            s = sj[i]
            v[i] += y * (s - below[i])
            d = ej[i] * (mass[i] / rest[i]) - y
            d = near[i] + (mass[i] - y) if (s == 0.0 and fix[i] != 0.0) else d
            ej[i] = d * inv_n
    for i in range(nr):
        gr = g[r0 + i]
        for j in range(cols):
            gr[j] = eb[j * nr + i]
    return pairwise(v)


#: rows of more than :data:`SHORT` classes go in blocks of about this many elements
LONG_BLOCK = 4 * CHUNK
#: rows of at most this many classes (and more than :data:`SHORT`) go through :func:`_mid_rows`:
#: below, a row's scalar loop ends cost more than that kernel's extra passes over its buffers
MID = 160
_SIGN_OFF = 0x7FFFFFFFFFFFFFFF




@njit(inline="always", error_model="numpy")
def _order(b):  # type: ignore[no-untyped-def]
    """Float64 bits mapped to an int64 ordered as the floats (an involution): negative floats'
    magnitude bits flipped. NaN lands beyond the infinities."""
    return b ^ ((b >> 63) & _SIGN_OFF)


@njit(**_BLOCK)
def _row_max(zr):  # type: ignore[no-untyped-def]
    """The row's maximum, 0 where it is not finite (an infinity, or a NaN in the row: then the
    whole row is NaN whatever the shift). An integer max over the ordered bits: LLVM vectorises
    an integer max reduction, not a float compare-and-select one (NaN)."""
    k = -_SIGN_OFF - 1
    nan = 0
    for j in range(zr.size):
        x = np.float64(zr[j])
        k = max(k, _order(_bits(x)))
        nan += 0 if x == x else 1
    m = _float(_order(k))
    return m if (nan == 0 and abs(m) < math.inf) else 0.0


@njit(**_BLOCK)
def _long_rows(z, t, g, r0, r1, n):  # type: ignore[no-untyped-def]
    """Rows ``r0:r1``: the forms of :func:`cross_entropy_logits`, three passes per row (the
    maximum; ``exp`` into a float64 buffer and the sums; value and derivative), each a loop
    LLVM vectorises. Returns the block's value sum."""
    cols = z.shape[1]
    # A row is summed in chunks of CHUNK, the chunk sums pairwise: a long row's sums (10**6
    # classes) then stay as accurate as NumPy's pairwise ones, not a sequential sum's.
    nc = (cols + CHUNK - 1) // CHUNK
    buf = np.empty(cols)
    sums = np.empty((4, nc))  # per chunk: below, rest, mass, value
    inv_n = 1.0 / n
    acc = 0.0
    for i in range(r0, r1):
        zr, tr, gr = z[i], t[i], g[i]
        mx = _row_max(zr)
        for c in range(nc):
            j0 = c * CHUNK
            j1 = min(j0 + CHUNK, cols)
            below, rest, mass = _exp_sums(zr[j0:j1], tr[j0:j1], mx, buf[j0:j1])
            sums[0, c] = below
            sums[1, c] = rest
            sums[2, c] = mass
        r = pairwise(sums[0]) + (pairwise(sums[1]) - 1.0)
        mass = pairwise(sums[2])
        lse = vmath.log1p(r)
        den = 1.0 + r
        q = mass / den
        # softmax > 1/2 only at a finite row's unique maximum (s = 0): the spec's form there
        fix = 2.0 * (1.0 / den) > 1.0
        near = mass * ((0.0 - r) / den)
        for c in range(nc):
            j0 = c * CHUNK
            j1 = min(j0 + CHUNK, cols)
            zc, tc, gc, bc = zr[j0:j1], tr[j0:j1], gr[j0:j1], buf[j0:j1]
            v = 0.0
            for j in range(j1 - j0):
                y = np.float64(tc[j])
                s = np.float64(zc[j]) - mx
                v += y * (s - lse)
                d = bc[j] * q - y
                d = near + (mass - y) if (s == 0.0 and fix) else d
                gc[j] = d * inv_n
            sums[3, c] = v
        acc += pairwise(sums[3])
    return acc


@njit(**_BLOCK)
def _mid_rows(z, t, g, r0, r1, n):  # type: ignore[no-untyped-def]
    """Rows ``r0:r1`` of at most :data:`MID` classes: the forms of :func:`_long_rows`, with the
    shifted logits of all the block's rows in one float64 buffer so that ``exp`` runs as one
    long vectorised loop (a loop per row would end each row in scalar iterations), and the
    per-row scalars (``log1p`` among them) computed across rows. Returns the block's value
    sum."""
    cols = z.shape[1]
    nr = r1 - r0
    m = nr * cols
    sb = np.empty(m)
    eb = np.empty(m)
    per_row = np.empty((8, nr))
    mass, below, rest, lse = per_row[0], per_row[1], per_row[2], per_row[3]
    q, near, fix, mxs = per_row[4], per_row[5], per_row[6], per_row[7]
    for i in range(nr):
        zr, tr = z[r0 + i], t[r0 + i]
        mx = _row_max(zr)
        mxs[i] = mx
        si = sb[i * cols:(i + 1) * cols]
        for j in range(cols):
            si[j] = np.float64(zr[j]) - mx
        w = 0.0
        for j in range(cols):
            w += np.float64(tr[j])
        mass[i] = w
    _exp_into(sb, eb)
    for i in range(nr):
        si, ei = sb[i * cols:(i + 1) * cols], eb[i * cols:(i + 1) * cols]
        lo = 0.0
        hi = 0.0
        for j in range(cols):
            e = ei[j]
            neg = si[j] < 0.0
            lo += e if neg else 0.0
            hi += 0.0 if neg else e
        below[i] = lo
        rest[i] = hi
    for i in range(nr):
        r = below[i] + (rest[i] - 1.0)
        den = 1.0 + r
        lse[i] = vmath.log1p(r)
        q[i] = mass[i] / den
        # softmax > 1/2 only at a finite row's unique maximum (s = 0): the spec's form there
        fix[i] = 1.0 if 2.0 * (1.0 / den) > 1.0 else 0.0
        near[i] = mass[i] * ((0.0 - r) / den) + mass[i]
    inv_n = 1.0 / n
    acc = 0.0
    for i in range(nr):
        tr, gr = t[r0 + i], g[r0 + i]
        si, ei = sb[i * cols:(i + 1) * cols], eb[i * cols:(i + 1) * cols]
        li, qi, ni, fi = lse[i], q[i], near[i], fix[i] != 0.0
        v = 0.0
        for j in range(cols):
            y = np.float64(tr[j])
            s = si[j]
            v += y * (s - li)
            d = ei[j] * qi - y
            d = ni - y if (s == 0.0 and fi) else d
            gr[j] = d * inv_n
        acc += v
    return acc


@_kernel
def cross_entropy_logits(z, t, g, n, narrow):  # type: ignore[no-untyped-def]
    """Per row: shift ``s = z - m`` (``m`` the row max, 0 where that is not finite), ``e = exp(s)``,
    ``r = sum(e) - 1`` formed as the spec's ``sum_exp_m1`` (the terms with ``s < 0`` summed apart
    from the rest, then ``below + (rest - 1)``); value term ``t (s - log1p(r))`` (the caller
    negates the sum); derivative ``(sm * mass - t) / n`` with ``sm = e / (1 + r)``,
    ``mass = sum(t)``, or where ``sm > 1/2`` the spec's ``mass (expm1(s) - r) / (1 + r) +
    (mass - t)``, over ``n``. ``exp`` runs once per
    element: ``e`` waits in a float64 row buffer between the two passes over the row.

    ``exp`` is :func:`vmath.exp` (vectorised, about 1 ulp) for both dtypes: the float64
    derivative is held to ulps of ``(softmax sum|t| + |t|) / n``, the terms it subtracts, which
    an ulp of ``exp`` stays well within. The derivative multiplies by ``mass / (1 + r)`` and
    ``1 / n`` (one rounding each) where the spec divides.

    Rows of at most :data:`SHORT` classes go through :func:`_short_rows`, which works across
    rows: per-row loops that short cost more than the row's arithmetic; rows of at most
    :data:`MID` through :func:`_mid_rows` (one ``exp`` loop per block of rows), longer ones
    through :func:`_long_rows` (one per row)."""
    rows, cols = z.shape
    if cols <= SHORT:
        per = max(8, CHUNK // cols)
        nb = (rows + per - 1) // per
        parts = np.zeros(nb)
        for b in prange(nb):
            parts[b] = _short_rows(z, t, g, b * per, min(b * per + per, rows), n, narrow)
        return pairwise(parts)
    if cols <= MID:
        # blocks of about 2 CHUNK elements: the two float64 buffers of a block stay in the L1
        # cache
        per = max(1, 2 * CHUNK // cols)
        nb = (rows + per - 1) // per
        parts = np.zeros(nb)
        for b in prange(nb):
            parts[b] = _mid_rows(z, t, g, b * per, min(b * per + per, rows), n)
        return pairwise(parts)
    # blocks of about LONG_BLOCK elements: a block allocates its buffers once
    per = max(1, LONG_BLOCK // cols)
    nb = (rows + per - 1) // per
    parts = np.zeros(nb)
    for b in prange(nb):
        parts[b] = _long_rows(z, t, g, b * per, min(b * per + per, rows), n)
    return pairwise(parts)


# ------------------------------------------------------------------------------------------
# Cosine similarity: two passes (the norms are of the whole tensor)
# ------------------------------------------------------------------------------------------


@_kernel
def cosine_sums(p, t):  # type: ignore[no-untyped-def]
    """``(sum p**2, sum t**2, sum p t)`` in float64."""
    m = p.size
    nb = (m + CHUNK - 1) // CHUNK
    pp = np.zeros(nb)
    tt = np.zeros(nb)
    pt = np.zeros(nb)
    for b in prange(nb):
        k0 = b * CHUNK
        k1 = min(k0 + CHUNK, m)
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
    return pairwise(pp), pairwise(tt), pairwise(pt)


@_kernel
def cosine_deriv(p, t, g, a, c, bp, bt):  # type: ignore[no-untyped-def]
    """``g = (a p - t) / c`` elementwise (the caller picks ``a`` and ``c`` for its branch);
    returns ``sum((p / bp - t / bt)**2)``, the spec's ``|u - v|**2`` for the clamped norms."""
    m = p.size
    nb = (m + CHUNK - 1) // CHUNK
    parts = np.zeros(nb)
    for b in prange(nb):
        k0 = b * CHUNK
        k1 = min(k0 + CHUNK, m)
        pc, tc, gc = p[k0:k1], t[k0:k1], g[k0:k1]
        s = 0.0
        for i in range(k1 - k0):
            x = np.float64(pc[i])
            y = np.float64(tc[i])
            gc[i] = (a * x - y) / c
            w = x / bp - y / bt
            s += w * w
        parts[b] = s
    return pairwise(parts)
