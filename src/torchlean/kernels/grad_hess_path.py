"""The NumPy fast path of :func:`torchlean.grad_hess`: float32/float64 arrays through the loops
of :mod:`torchlean.kernels.grad_hess_skeleton`.

Layouts as in :mod:`torchlean.kernels.numpy_path`: C-contiguous inputs (or all F-contiguous,
for an elementwise loss) are read in place; any other layout in blocks of at most ``BLOCK``
samples copied to contiguous buffers. The results are fresh arrays of ``predicted``'s shape
and dtype, as the spec's.

:func:`grad_hess` returns ``None`` for anything it does not take (another dtype, a shape
mismatch, weights of the wrong shape, an empty input) and whenever the spec would raise (a
target outside the checked domain, a negative weight): the spec then runs and raises its own
error.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from torchlean.kernels.grad_hess_kernel import PerRow, PerSample
from torchlean.kernels.numpy_path import (
    BLOCK,
    SERIAL_BELOW,
    SERIAL_BELOW_HEAVY,
    _blocks,
    _flat,
)

__all__ = ["grad_hess"]

_FLOATS = (np.dtype(np.float32), np.dtype(np.float64))
_NO_WEIGHTS = np.zeros(0)


def _as_float(x: np.ndarray) -> np.ndarray | None:
    """``x`` as float32 or float64 (the kernels read either, each element as float64); other
    numbers converted to float64 as the spec converts them; None for anything else."""
    if x.dtype in _FLOATS:
        return x
    if x.dtype.kind not in "biuf":
        return None
    return x.astype(np.float64)


def grad_hess(kern: PerSample | PerRow, decl: Any, p: np.ndarray, t: np.ndarray,
              w: np.ndarray | None, params: dict[str, Any], check: bool,
              parallel: bool | None = None) -> tuple[np.ndarray, np.ndarray] | None:
    """``(grad, hess)`` of the declaration ``decl`` through its per-sample kernel, or None.
    ``parallel``: the thread pool's loops or their single-threaded twins (default: by size)."""
    # empty and 0-d inputs: the spec's results (their exact types) at no cost
    if p.dtype not in _FLOATS or p.shape != t.shape or p.size == 0 or p.ndim == 0:
        return None
    row = isinstance(kern, PerRow)
    want = p.shape[:-1] if row else p.shape
    if w is not None and w.shape != want:
        return None
    t = _as_float(t)
    if t is None:
        return None
    if w is not None:
        w = _as_float(w)
        if w is None:
            return None
    if parallel is None:
        parallel = p.size >= (SERIAL_BELOW_HEAVY if kern.heavy else SERIAL_BELOW)
    dom = decl.domain
    checked = check and dom.checked
    bounds = (dom.target_lo, dom.target_hi) if checked else (None, None)
    if row:
        return _rows(kern, p, t, w, bounds, parallel)
    return _elementwise(kern, p, t, w, tuple(params.values()), bounds, parallel)


def _elementwise(kern: PerSample, p: np.ndarray, t: np.ndarray, w: np.ndarray | None,
                 params: tuple[Any, ...], bounds: tuple[float | None, float | None],
                 parallel: bool) -> tuple[np.ndarray, np.ndarray] | None:
    from torchlean.kernels import kernel_set
    from torchlean.kernels.grad_hess_skeleton import build

    f32 = np.dtype(np.float32)
    single = p.dtype == t.dtype == f32 and (w is None or w.dtype == f32)
    loop = kernel_set(build(kern, len(params), w is not None, *bounds, single=single), parallel)
    prm = tuple(float(x) for x in params)
    arrays = (p, t) if w is None else (p, t, w)
    order = _order(arrays)
    if order is not None:
        g = np.empty(p.shape, dtype=p.dtype, order=order)
        h = np.empty(p.shape, dtype=p.dtype, order=order)
        wf = _NO_WEIGHTS if w is None else _flat(w, order)
        bad = loop(_flat(p, order), _flat(t, order), wf, _flat(g, order), _flat(h, order), prm)
        return None if bad else (g, h)
    g = np.empty(p.shape, dtype=p.dtype)
    h = np.empty(p.shape, dtype=p.dtype)
    for idx in _blocks(p.shape, BLOCK, keep_last=False):
        pb = np.ascontiguousarray(p[idx]).reshape(-1)
        tb = np.ascontiguousarray(t[idx]).reshape(-1)
        wb = _NO_WEIGHTS if w is None else np.ascontiguousarray(w[idx]).reshape(-1)
        gb, hb = g[idx].reshape(-1), h[idx].reshape(-1)  # views: g, h are C-contiguous
        if loop(pb, tb, wb, gb, hb, prm):
            return None
    return g, h


def _rows(kern: PerRow, z: np.ndarray, t: np.ndarray, w: np.ndarray | None,
          bounds: tuple[float | None, float | None],
          parallel: bool) -> tuple[np.ndarray, np.ndarray] | None:
    from torchlean.kernels import kernel_set
    from torchlean.kernels.grad_hess_skeleton import build_rows

    loop = kernel_set(build_rows(kern, w is not None, *bounds), parallel)
    cols = z.shape[-1]
    g = np.empty(z.shape, dtype=z.dtype)
    h = np.empty(z.shape, dtype=z.dtype)
    if z.flags.c_contiguous and t.flags.c_contiguous and (w is None or w.flags.c_contiguous):
        wf = _NO_WEIGHTS if w is None else w.reshape(-1)
        bad = loop(z.reshape(-1, cols), t.reshape(-1, cols), wf, g.reshape(-1, cols),
                   h.reshape(-1, cols))
        return None if bad else (g, h)
    for idx in _blocks(z.shape, BLOCK, keep_last=True):
        zb = np.ascontiguousarray(z[idx]).reshape(-1, cols)
        tb = np.ascontiguousarray(t[idx]).reshape(-1, cols)
        wb = _NO_WEIGHTS if w is None else np.ascontiguousarray(w[idx]).reshape(-1)
        if loop(zb, tb, wb, g[idx].reshape(-1, cols), h[idx].reshape(-1, cols)):
            return None
    return g, h


def _order(arrays: tuple[np.ndarray, ...]) -> str | None:
    if all(a.flags.c_contiguous for a in arrays):
        return "C"
    if all(a.flags.f_contiguous for a in arrays):
        return "F"
    return None
