"""The per-sample loops of :func:`torchlean.grad_hess`, each written once and compiled around a
term: :func:`build` for an elementwise term, :func:`build_rows` for a row term.

:func:`_per_sample` runs ``prange`` over blocks of ``CHUNK`` samples; inside a block a
unit-stride loop from index 0 calls the term on each sample (as float64), multiplies gradient
and Hessian by the weight (when ``WEIGHTED``) and stores both, rounded once to the output dtype.
It counts what the spec would refuse: targets outside ``[LO, HI]`` (when ``CHECKED``) and
negative weights; NaN is not counted, as the spec's range check lets it through.
:func:`_per_row` does the same over blocks of rows of a 2-D array, one weight per row (the
row term takes a block, so its exponentials run as one vectorisable loop over the block).

As in :mod:`torchlean.kernels.skeleton` the globals ``TERM``, ``APPLY``, ``CHECKED``,
``WEIGHTED``, ``LO`` and ``HI`` are bound per compiled copy (numba compiles them as constants,
so the term is inlined and the loop vectorised), each copy under its own qualified name with a
hash of what it depends on, so numba's disk cache never loads a stale one. No value is summed;
the only ``fastmath`` flag is ``contract``, which lets a multiply and an add round once as a
fused multiply-add (the polynomials of :mod:`.vmath` run about 1.5 times faster; each result
is as accurate or more, and the tests' bounds against the spec allow for it).
"""

from __future__ import annotations

import math
import threading
import types
from typing import Any

import numpy as np
from numba import njit, prange

from torchlean.kernels.grad_hess_kernel import PerRow, PerSample
from torchlean.kernels.numba_kernels import CHUNK
from torchlean.kernels.skeleton import _copy, check_term_arity, digest

__all__ = ["MAX_PARAMS", "build", "build_rows"]

TERM: Any = None
APPLY: Any = None
CHECKED = False
WEIGHTED = False
LO = -math.inf
HI = math.inf

#: only ``contract`` (fused multiply-adds); nothing is reordered or assumed finite
JIT = {"parallel": True, "cache": True, "nogil": True, "error_model": "numpy",
       "fastmath": {"contract"}}
_JIT_TERM = {"inline": "always", "error_model": "numpy"}


def _apply0(p, t, prm):  # type: ignore[no-untyped-def]
    return TERM(p, t)


def _apply1(p, t, prm):  # type: ignore[no-untyped-def]
    return TERM(p, t, prm[0])


def _apply2(p, t, prm):  # type: ignore[no-untyped-def]
    return TERM(p, t, prm[0], prm[1])


def _apply3(p, t, prm):  # type: ignore[no-untyped-def]
    return TERM(p, t, prm[0], prm[1], prm[2])


_APPLY = (_apply0, _apply1, _apply2, _apply3)
#: the most parameters a per-sample term may take
MAX_PARAMS = len(_APPLY) - 1


def _per_sample(p, t, w, g, h, prm):  # type: ignore[no-untyped-def]
    """Targets outside ``[LO, HI]`` plus negative weights, over contiguous 1-D ``p``, ``t``
    (``w`` too when ``WEIGHTED``); stores gradient and Hessian in ``g`` and ``h``."""
    m = p.size
    nb = (m + CHUNK - 1) // CHUNK
    bads = np.zeros(nb, dtype=np.int64)
    for b in prange(nb):
        k0 = b * CHUNK
        k1 = min(k0 + CHUNK, m)
        pc, tc, gc, hc = p[k0:k1], t[k0:k1], g[k0:k1], h[k0:k1]
        wc = w[k0:k1] if WEIGHTED else w[0:0]
        nbad = 0
        for i in range(k1 - k0):
            x = np.float64(pc[i])
            y = np.float64(tc[i])
            gi, hi = APPLY(x, y, prm)
            if WEIGHTED:
                wi = np.float64(wc[i])
                gi = gi * wi
                hi = hi * wi
                nbad += 1 if wi < 0.0 else 0
            gc[i] = gi
            hc[i] = hi
            if CHECKED:
                # selects, not `or` (a branch keeps the loop from vectorising)
                nbad += (1 if y < LO else 0) + (1 if y > HI else 0)
        bads[b] = nbad
    return bads.sum()


def _per_row(z, t, w, g, h):  # type: ignore[no-untyped-def]
    """The row term over blocks of rows of C-contiguous 2-D ``z``, ``t`` (one weight per row
    when ``WEIGHTED``, else 1, which multiplies exactly); returns the number of targets
    outside ``[LO, HI]`` and negative weights."""
    rows, cols = z.shape
    per = max(1, CHUNK // max(cols, 1))
    nb = (rows + per - 1) // per
    bads = np.zeros(nb, dtype=np.int64)
    for b in prange(nb):
        r0 = b * per
        r1 = min(r0 + per, rows)
        wb = w[r0:r1] if WEIGHTED else np.ones(r1 - r0)
        TERM(z[r0:r1], t[r0:r1], wb, g[r0:r1], h[r0:r1])
        nbad = 0
        for r in range(r1 - r0):
            nbad += 1 if np.float64(wb[r]) < 0.0 else 0
        if CHECKED:
            tb = t[r0:r1]
            for r in range(r1 - r0):
                for j in range(cols):
                    y = np.float64(tb[r, j])
                    nbad += (1 if y < LO else 0) + (1 if y > HI else 0)
        bads[b] = nbad
    return bads.sum()


_BUILT: dict[tuple[Any, ...], types.SimpleNamespace] = {}
_LOCK = threading.Lock()


def build(kern: PerSample, arity: int, weighted: bool, lo: float | None = None,
          hi: float | None = None, single: bool = False) -> types.SimpleNamespace:
    """:func:`_per_sample` compiled around ``kern.term`` (``kern.single`` when ``single``; taking
    ``arity`` parameters), with weights or without, counting targets outside ``[lo, hi]`` when
    either bound is given: ``PARALLEL`` and ``SERIAL`` twins for
    :func:`torchlean.kernels.kernel_set`. Cached; compiled lazily (first call per dtype)."""
    term = kern.single if single and kern.single is not None else kern.term
    key = (kern, term, arity, weighted, lo, hi)
    built = _BUILT.get(key)
    if built is None:
        with _LOCK:
            built = _BUILT.get(key)
            if built is None:
                built = _BUILT[key] = _compile(term, _per_sample, arity, weighted, lo, hi)
    return built


def build_rows(kern: PerRow, weighted: bool, lo: float | None = None,
               hi: float | None = None) -> types.SimpleNamespace:
    """:func:`_per_row` compiled around ``kern.row``, as :func:`build`."""
    key = (kern, weighted, lo, hi)
    built = _BUILT.get(key)
    if built is None:
        with _LOCK:
            built = _BUILT.get(key)
            if built is None:
                built = _BUILT[key] = _compile(kern.row, _per_row, None, weighted, lo, hi)
    return built


def _compile(term: Any, loop: Any, arity: int | None, weighted: bool, lo: float | None,
             hi: float | None) -> types.SimpleNamespace:
    glb = dict(loop.__globals__)
    jitted = njit(**_JIT_TERM)(term)
    glb.update(TERM=jitted, CHECKED=lo is not None or hi is not None, WEIGHTED=weighted,
               LO=-math.inf if lo is None else float(lo),
               HI=math.inf if hi is None else float(hi))
    if arity is not None:
        _check_arity(term, arity)
        apply = _copy(_APPLY[arity], glb, _APPLY[arity].__name__)
        glb["APPLY"] = njit(**_JIT_TERM)(apply)
    name = (f"{loop.__name__.lstrip('_')}_{getattr(term, '__name__', 'term')}_"
            f"{_digest(term, arity, weighted, lo, hi)}")
    out = types.SimpleNamespace()
    out.PARALLEL = njit(**JIT)(_copy(loop, glb, name))
    out.SERIAL = njit(**{**JIT, "parallel": False})(_copy(loop, glb, name + "_serial"))
    return out


def _check_arity(term: Any, arity: int) -> None:
    check_term_arity(term, arity, ("p", "t"), "per-sample kernel term", MAX_PARAMS)


def _digest(term: Any, *key: Any) -> str:
    """A hash of everything a compiled copy depends on beyond this file."""
    return digest(term, key)
