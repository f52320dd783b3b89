"""The NumPy fast path: float32/float64 arrays through the numba kernels.

Layouts: C-contiguous inputs are read in place, and so are two F-contiguous inputs (the
derivative is then allocated in F order, the order NumPy's own ufuncs would give it). Any other
layout is processed in blocks of at most ``BLOCK`` elements, each block copied to a contiguous
buffer, so no allocation of input size is made beyond the derivative that is returned.
Cross-entropy on logits needs whole rows of the last axis; it reads C-contiguous inputs in place
and copies other layouts block by block along the leading axes.

Every function here returns ``None`` when its inputs are not for it (another dtype, a shape
mismatch, a target outside the checked domain, a norm the unscaled sums cannot hold, ...); the
caller then runs the spec, which computes the result or raises the spec's error.
"""

from __future__ import annotations

import math
import sys
import threading
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np

__all__ = ["BLOCK", "POOL_MIN_BYTES", "SERIAL_BELOW", "SERIAL_BELOW_BYTES", "SERIAL_BELOW_HEAVY",
           "Plan", "cosine",
           "elementwise", "logits", "release_pool", "value_and_deriv"]

#: elements per block for layouts that are read through a contiguous copy
BLOCK = 1 << 16
#: below this many elements the single-threaded kernels run: waking the thread pool costs more
#: than the work, and on a busy machine a descheduled worker stalls a small call
SERIAL_BELOW = 1 << 17
#: the light elementwise kernels split by bytes read: two threads pay off from 256 KiB of
#: ``predicted`` (2**16 float32 or 2**15 float64 elements; measured 1.2-1.6x at 10**5)
SERIAL_BELOW_BYTES = 1 << 18
#: kernels whose elements cost several ns (``heavy``: transcendental functions) split earlier
SERIAL_BELOW_HEAVY = 1 << 14

#: derivatives at least this large are carved from a recycled per-thread buffer (see _alloc)
POOL_MIN_BYTES = 1 << 22

_F32 = np.dtype(np.float32)
_FLOATS = (_F32, np.dtype(np.float64))
_POOL = threading.local()


def _alloc(shape: tuple[int, ...], dtype: np.dtype, order: str) -> np.ndarray:
    """An uninitialised array for a derivative.

    A large fresh allocation is an ``mmap`` whose pages the kernel zeroes on first touch, which
    costs as much as the loss itself. So each thread keeps the buffer of its last large
    derivative and hands it out again once nothing else refers to it (the caller dropped every
    array and view of it): a returned derivative is never shared. The buffer stays allocated
    between calls; :func:`release_pool` frees it.
    """
    nbytes = math.prod(shape) * dtype.itemsize
    if nbytes < POOL_MIN_BYTES:
        return np.empty(shape, dtype=dtype, order=order)
    buf = getattr(_POOL, "buf", None)
    # references to a free buffer: the pool's, `buf` and getrefcount's argument
    if buf is None or sys.getrefcount(buf) > 3 or not nbytes <= buf.nbytes <= 2 * nbytes:
        buf = np.empty(nbytes, dtype=np.uint8)
        _POOL.buf = buf
    flat = buf[:nbytes].view(dtype)
    return flat.reshape(shape, order=order) if shape else flat.reshape(())


def release_pool() -> None:
    """Drop this thread's recycled derivative buffer."""
    _POOL.buf = None

Index = tuple[Any, ...]


def _blocks(shape: tuple[int, ...], limit: int, keep_last: bool) -> Iterator[Index]:
    """Index tuples (ints, then one slice) that cut a C-ordered ``shape`` into pieces of at most
    ``limit`` elements, in C order; each piece of a C-contiguous array is contiguous.
    ``keep_last`` never cuts the last axis (a piece may then exceed ``limit``)."""
    if len(shape) == 0 or (keep_last and len(shape) == 1):
        yield ()
        return
    inner = math.prod(shape[1:])
    if inner <= limit or (keep_last and len(shape) == 2):
        step = max(1, limit // max(inner, 1))
        for i in range(0, shape[0], step):
            yield (slice(i, min(i + step, shape[0])),)
        return
    for i in range(shape[0]):
        for rest in _blocks(shape[1:], limit, keep_last):
            yield (i, *rest)


def _layout(p: np.ndarray, t: np.ndarray) -> str | None:
    if p.flags.c_contiguous and t.flags.c_contiguous:
        return "C"
    if p.flags.f_contiguous and t.flags.f_contiguous:
        return "F"
    return None


def _flat(x: np.ndarray, order: str) -> np.ndarray:
    return x.reshape(-1, order=order)  # a view: x is contiguous in this order


def _elementwise(kernel: Callable[..., Any], p: np.ndarray, t: np.ndarray, n: float,
                 args: tuple[Any, ...]) -> tuple[Any, np.ndarray]:
    """Run an elementwise kernel over all of ``p``; return (kernel result(s) summed, derivative)."""
    order = _layout(p, t)
    if order is not None:
        g = _alloc(p.shape, p.dtype, order)
        return kernel(_flat(p, order), _flat(t, order), _flat(g, order), n, *args), g
    g = _alloc(p.shape, p.dtype, "C")
    total: Any = None
    for idx in _blocks(p.shape, BLOCK, keep_last=False):
        pb = np.ascontiguousarray(p[idx]).reshape(-1)
        tb = np.ascontiguousarray(t[idx]).reshape(-1)
        r = kernel(pb, tb, g[idx].reshape(-1), n, *args)
        total = r if total is None else _add(total, r)
        del pb, tb  # free this block's copies before the next are made
    return total, g


def _add(a: Any, b: Any) -> Any:
    if isinstance(a, tuple):
        return tuple(x + y for x, y in zip(a, b, strict=True))
    return a + b


def _finish(value: float, g: np.ndarray, dtype: np.dtype) -> tuple[Any, Any]:
    # The spec returns NumPy scalars for the value and for the derivative of a 0-d input.
    # A value beyond the range of a narrower dtype rounds to inf there, without a warning.
    with np.errstate(over="ignore"):
        v = dtype.type(value)
    return v, (g[()] if g.ndim == 0 else g)


def _numba(parallel: bool) -> Any:
    """The slice and whole losses' compiled kernels: the pool's or their twins."""
    kernels = _KERNELS or _load_kernels()
    return kernels.kernel_set(kernels._kernels(), parallel)


def elementwise(kern: Any, decl: Any, p: np.ndarray, t: np.ndarray, params: tuple[float, ...],
                check: bool, parallel: bool) -> tuple[float, np.ndarray] | None:
    """An elementwise declaration through the skeleton built from its term: the reduction's
    value and the derivative, or None when a target lies outside the checked domain."""
    from torchlean.kernels import kernel_set
    from torchlean.kernels.skeleton import build

    dom = decl.domain
    built = build(kern, len(params), dom.target_lo, dom.target_hi, p.dtype == _F32)
    n = float(max(p.size, 1)) if decl.reduction == "mean" else 1.0
    (s, bad), g = _elementwise(kernel_set(built, parallel), p, t, n, (check, params))
    if bad:
        return None  # the spec raises the DomainError with its message
    return s / n, g


def logits(z: np.ndarray, t: np.ndarray, params: tuple[float, ...], check: bool,
           parallel: bool) -> tuple[float, np.ndarray] | None:
    """Cross-entropy on logits: rows of the last axis through the row kernel."""
    if z.ndim == 0 or z.size == 0:
        return None  # the spec raises (0-d) or returns its empty-input result
    k = _numba(parallel)
    n = float(z.size)
    cols = z.shape[-1]
    narrow = z.dtype == np.float32
    g = _alloc(z.shape, z.dtype, "C")
    if z.flags.c_contiguous and t.flags.c_contiguous:
        total = k.cross_entropy_logits(z.reshape(-1, cols), t.reshape(-1, cols),
                                       g.reshape(-1, cols), n, narrow)
        return -total / n, g
    total = 0.0
    for idx in _blocks(z.shape, BLOCK, keep_last=True):
        zb = np.ascontiguousarray(z[idx]).reshape(-1, cols)
        tb = np.ascontiguousarray(t[idx]).reshape(-1, cols)
        total += k.cross_entropy_logits(zb, tb, g[idx].reshape(-1, cols), n, narrow)
        del zb, tb
    return -total / n, g


# Below this a float64 sum of squares may have lost its terms to underflow (and above it, an
# infinite sum may be an overflow): the spec's scaled norm is needed there.
_TINY_SQUARES = 2.0**-900


def cosine(p: np.ndarray, t: np.ndarray, params: tuple[float, ...], check: bool,
           parallel: bool) -> tuple[float, np.ndarray] | None:
    """Cosine similarity: the three sums, then the derivative (and ``|u - v|**2``)."""
    (epsilon,) = params
    k = _numba(parallel)
    order = _layout(p, t)
    if order is not None:
        pieces: list[Index] | None = None
        sums = k.cosine_sums(_flat(p, order), _flat(t, order))
    else:
        pieces = list(_blocks(p.shape, BLOCK, keep_last=False))
        acc = [0.0, 0.0, 0.0]
        for idx in pieces:
            s = k.cosine_sums(np.ascontiguousarray(p[idx]).reshape(-1),
                              np.ascontiguousarray(t[idx]).reshape(-1))
            acc = [a + b for a, b in zip(acc, s, strict=True)]
        sums = tuple(acc)
    pp, tt, dot = sums
    if p.dtype == np.float64 and not all(
            x == 0 or _TINY_SQUARES < x < math.inf for x in (pp, tt)):
        return None  # NaN, inf, overflow or underflow: the spec's scaled norm decides
    pn, tn = math.sqrt(pp), math.sqrt(tt)
    big_t = tn if (tn > epsilon or tn != tn) else epsilon
    big_p = pn if (pn > epsilon or pn != pn) else epsilon
    if epsilon < 2.0**-400:
        # Squares that underflow to 0 (pp or tt == 0 for a nonzero vector) may then hide a norm
        # above epsilon, and the clamped norms' product may underflow: the spec decides.
        return None
    value = 1.0 - dot / (big_p * big_t)
    g = _alloc(p.shape, p.dtype, order or "C")
    if math.isnan(pn) or math.isnan(tn) or math.isnan(dot):
        g.fill(math.nan)
        return value, g
    if epsilon < pn:
        a, c = dot / (pn * pn), pn * big_t
    else:
        a, c = 0.0, epsilon * big_t
    if pieces is None:
        w2 = k.cosine_deriv(_flat(p, order), _flat(t, order), _flat(g, order), a, c,
                            big_p, big_t)
    else:
        w2 = 0.0
        for idx in pieces:
            w2 += k.cosine_deriv(np.ascontiguousarray(p[idx]).reshape(-1),
                                 np.ascontiguousarray(t[idx]).reshape(-1), g[idx].reshape(-1),
                                 a, c, big_p, big_t)
    if epsilon < pn and epsilon < tn:
        # Unit vectors: the spec's |u - v|**2 / 2, free of the cancellation of 1 - u . v.
        value = w2 / 2
    return value, g


def value_and_deriv(decl: Any, kern: Any, p: np.ndarray, t: np.ndarray,
                    kwargs: dict[str, Any], parallel: bool | None = None
                    ) -> tuple[Any, Any] | None:
    """``(value, derivative)`` of the declaration ``decl`` through its kernel ``kern`` (see
    :mod:`torchlean.kernels.kernel`), or None. ``parallel``: the thread pool's kernels or their
    single-threaded twins (default: by size)."""
    if p.dtype not in _FLOATS or p.shape != t.shape:
        return None
    dtype = p.dtype
    if t.dtype != dtype:
        # Exact conversions only (bool, small ints, float32 -> float64): same numbers as the
        # spec's promotion; the rest goes through the spec.
        if t.dtype.kind not in "biuf" or not np.can_cast(t.dtype, dtype, "safe"):
            return None
        t = t.astype(dtype)
    params = tuple(decl.checked_params(kwargs).values())
    check = bool(kwargs.get("check_domain", True))
    if parallel is None:
        parallel = _parallel(kern, p)
    out = kern.run(decl, p, t, params, check, parallel)
    if out is None:
        return None
    return _finish(out[0], out[1], dtype)


def _parallel(kern: Any, p: np.ndarray) -> bool:
    """Whether ``p`` is large enough for the thread pool: heavy kernels by elements, an
    elementwise light one by bytes, the slice and whole ones' own passes by elements."""
    from torchlean.kernels.kernel import Elementwise

    if kern.heavy:
        return p.size >= SERIAL_BELOW_HEAVY
    if isinstance(kern, Elementwise):
        return p.nbytes >= SERIAL_BELOW_BYTES
    return p.size >= SERIAL_BELOW


#: a float32 value at least this large rounds to infinity (the midpoint of FLT_MAX and 2**128)
_F32_OVERFLOW = 3.4028235677973366e38


class Plan:
    """:func:`value_and_deriv` for one declaration and one set of keyword parameters, resolved
    and checked once (the kernel, its compiled loops, the validated parameters), so that a
    call on small arrays costs little more than the loop: ``plan(p, t)`` takes NumPy arrays of
    one float dtype, the same shape and C order, and returns ``(value, derivative)``, or None
    for anything else (another dtype or layout, no element, a target outside the checked
    domain, kernels switched off), which :func:`value_and_deriv` and the spec then handle."""

    __slots__ = ("check", "decl", "kern", "loops", "loops32", "mean", "params", "serial32",
                 "serial64", "special")

    def __init__(self, decl: Any, kern: Any, kwargs: dict[str, Any]) -> None:
        from torchlean.kernels.kernel import Elementwise
        from torchlean.kernels.skeleton import build

        self.decl, self.kern = decl, kern
        self.params = tuple(decl.checked_params(kwargs).values())
        self.check = bool(kwargs.get("check_domain", True))
        # the thread pool from this many elements, float32 and float64 (as _parallel)
        self.serial32, self.serial64 = (
            (SERIAL_BELOW_HEAVY,) * 2 if kern.heavy
            else (SERIAL_BELOW_BYTES // 4, SERIAL_BELOW_BYTES // 8)
            if isinstance(kern, Elementwise) else (SERIAL_BELOW,) * 2)
        self.mean = decl.reduction == "mean"
        self.loops = self.loops32 = self.special = None
        if not isinstance(kern, Elementwise):
            from torchlean.kernels.kernel import _load

            self.special = _load(kern.numpy)  # resolved once, not per call
        else:
            dom = decl.domain
            self.loops = build(kern, len(self.params), dom.target_lo, dom.target_hi)
            # float32 operands: the kernel's single term where it has one
            self.loops32 = build(kern, len(self.params), dom.target_lo, dom.target_hi, True)

    def __call__(self, p: np.ndarray, t: np.ndarray) -> tuple[Any, Any] | None:
        kernels = _KERNELS or _load_kernels()
        dtype = p.dtype
        if (not kernels.enabled() or not kernels._numba or dtype not in _FLOATS or t.dtype != dtype
                or p.shape != t.shape or p.size == 0 or p.ndim == 0
                or not (p.flags.c_contiguous and t.flags.c_contiguous)):
            return None
        parallel = p.size >= (self.serial32 if dtype == _F32 else self.serial64)
        if self.loops is None:
            out = self.special(p, t, self.params, self.check, parallel)
            if out is None:
                return None
            value, g = out
        else:
            g = _alloc(p.shape, dtype, "C")
            n = float(p.size) if self.mean else 1.0
            if p.ndim != 1:
                p, t, flat = p.reshape(-1), t.reshape(-1), g.reshape(-1)
            else:
                flat = g
            loops = self.loops32 if dtype == _F32 else self.loops
            s, bad = kernels.kernel_set(loops, parallel)(p, t, flat, n, self.check, self.params)
            if bad:
                return None
            value = s / n
        if dtype == np.float32 and abs(value) >= _F32_OVERFLOW:
            return np.float32(math.copysign(math.inf, value)), g  # as the spec: no warning
        return dtype.type(value), g


_KERNELS: Any = None


def _load_kernels() -> Any:
    """:mod:`torchlean.kernels`, imported once on a plan's first call (it imports this module)."""
    global _KERNELS
    import torchlean.kernels as kernels

    _KERNELS = kernels
    return kernels
