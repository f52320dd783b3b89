"""The one elementwise loop skeleton, and :func:`build`, which compiles it around a term.

:func:`_elementwise` is written once: ``prange`` over blocks of ``CHUNK`` elements, inside a
block a unit-stride loop from index 0 that calls the term on each element (as float64), adds
its value terms and stores its derivative elements; the block sums are added pairwise; for a
loss whose declaration checks its target's domain the loop also counts targets outside
``[LO, HI]``. It reads ``TERM``, ``APPLY``, ``CHECKED``, ``LO`` and ``HI`` as globals, which
numba compiles as constants: :func:`build` compiles a copy of the skeleton's code whose globals
bind them for one term and one domain, so the term is inlined (numba's ``inline="always"``;
LLVM then vectorises the loop with it, which it does not for a term it is left to call) and
the count is compiled out of losses without a checked domain.

The float32 copies (``single``) add ``fastmath`` ``contract``: a multiply and an add may round
once as a fused multiply-add (the polynomials of :mod:`.vmath` run 1.15-1.45 times faster).
Each float64 intermediate is then as accurate or more, and a float32 result still rounds once
from it; a product of two float32 operands is exact in float64, so a sign decided on
``1 - t p`` is the spec's. The float64 copies keep the spec's roundings (there the fused
``1 - t p`` could decide a kink differently), unless the kernel declares ``contract``: its term
decides nothing on a rounded product (1.25-1.6 times faster on the transcendental terms).

Disk cache: each copy gets its own qualified name, which names its cache file and carries a
hash of the term's module source, of :mod:`.vmath`, :mod:`.scalar` and :mod:`.numba_kernels`
(the block sum) and of the domain, so an edited term never loads a stale kernel. The copies
hold no closure, so numba caches them like any module function (no "dynamic globals").
"""

from __future__ import annotations

import hashlib
import inspect
import marshal
import math
import threading
import types
from pathlib import Path
from typing import Any

import numpy as np
from numba import njit, prange

from torchlean.errors import ParameterError
from torchlean.kernels import numba_kernels, scalar, vmath
from torchlean.kernels.kernel import Elementwise
from torchlean.kernels.numba_kernels import CHUNK, JIT, pairwise

__all__ = ["MAX_PARAMS", "build"]

# Bound per compiled copy (see the module docstring); these values are never compiled.
TERM: Any = None
APPLY: Any = None
CHECKED = False
LO = -math.inf
HI = math.inf


# A call with *args cannot be inlined by numba, so the parameters travel as a tuple and one
# of these spreads them into the term's arguments.
def _apply0(p, t, n, prm):  # type: ignore[no-untyped-def]
    return TERM(p, t, n)


def _apply1(p, t, n, prm):  # type: ignore[no-untyped-def]
    return TERM(p, t, n, prm[0])


def _apply2(p, t, n, prm):  # type: ignore[no-untyped-def]
    return TERM(p, t, n, prm[0], prm[1])


def _apply3(p, t, n, prm):  # type: ignore[no-untyped-def]
    return TERM(p, t, n, prm[0], prm[1], prm[2])


def _apply4(p, t, n, prm):  # type: ignore[no-untyped-def]
    return TERM(p, t, n, prm[0], prm[1], prm[2], prm[3])


_APPLY = (_apply0, _apply1, _apply2, _apply3, _apply4)
#: the most parameters a term may take
MAX_PARAMS = len(_APPLY) - 1


def _elementwise(p, t, g, n, check, prm):  # type: ignore[no-untyped-def]
    """``(sum of value terms, targets outside [LO, HI])`` over contiguous 1-D ``p``, ``t``;
    stores the derivative elements in ``g`` (``check`` False, or no checked domain: 0)."""
    m = p.size
    nb = (m + CHUNK - 1) // CHUNK
    parts = np.zeros(nb)
    bads = np.zeros(nb if CHECKED else 1, dtype=np.int64)
    for b in prange(nb):
        k0 = b * CHUNK
        k1 = min(k0 + CHUNK, m)
        pc, tc, gc = p[k0:k1], t[k0:k1], g[k0:k1]
        s = 0.0
        nbad = 0
        for i in range(k1 - k0):
            x = np.float64(pc[i])
            y = np.float64(tc[i])
            v, gi = APPLY(x, y, n, prm)
            s += v
            gc[i] = gi
            if CHECKED:
                # two selects, not `or` (a branch that keeps the loop from vectorising);
                # NaN is not counted
                nbad += (1 if y < LO else 0) + (1 if y > HI else 0)
        parts[b] = s
        if CHECKED:
            bads[b] = nbad
    return pairwise(parts), (bads.sum() if (CHECKED and check) else 0)


_BUILT: dict[tuple[Any, ...], types.SimpleNamespace] = {}
_LOCK = threading.Lock()
_JIT_TERM = {"inline": "always", "error_model": "numpy"}


def build(kern: Elementwise, arity: int, lo: float | None = None,
          hi: float | None = None, single: bool = False) -> types.SimpleNamespace:
    """The skeleton compiled around ``kern.term`` (``kern.single`` when ``single`` and the
    kernel has one; taking ``arity`` parameters), counting targets outside ``[lo, hi]`` when
    either bound is given: ``PARALLEL`` (over numba's thread pool) and ``SERIAL`` (its
    single-threaded twin, the same bits), as :func:`torchlean.kernels.kernel_set` expects;
    ``single`` copies and those of a ``contract`` kernel contract multiply-adds (see the module
    docstring).
    Cached per term and domain; compiled lazily (first call per dtype)."""
    term = kern.single if single and kern.single is not None else kern.term
    key = (kern, term, arity, lo, hi, single)
    built = _BUILT.get(key)
    if built is not None:
        return built
    with _LOCK:
        built = _BUILT.get(key)
        if built is None:
            built = _BUILT[key] = _compile(term, arity, lo, hi, single or kern.contract)
    return built


def _compile(term: Any, arity: int, lo: float | None, hi: float | None,
             contract: bool = False) -> types.SimpleNamespace:
    _check_arity(term, arity)
    checked = lo is not None or hi is not None
    jitted = njit(**_JIT_TERM)(term)
    glb = dict(_elementwise.__globals__)
    apply = _copy(_APPLY[arity], glb, _APPLY[arity].__name__)
    glb.update(TERM=jitted, APPLY=njit(**_JIT_TERM)(apply), CHECKED=checked,
               LO=-math.inf if lo is None else float(lo),
               HI=math.inf if hi is None else float(hi))
    jit = {**JIT, "fastmath": JIT["fastmath"] | {"contract"}} if contract else JIT
    name = (f"elementwise_{getattr(term, '__name__', 'term')}{'_fma' if contract else ''}_"
            f"{_digest(term, arity, lo, hi)}")
    out = types.SimpleNamespace()
    out.PARALLEL = njit(**jit)(_copy(_elementwise, glb, name))
    out.SERIAL = njit(**{**jit, "parallel": False})(_copy(_elementwise, glb, name + "_serial"))
    return out


def _copy(fn: Any, glb: dict[str, Any], name: str) -> Any:
    out = types.FunctionType(fn.__code__, glb, name, fn.__defaults__, fn.__closure__)
    out.__qualname__ = name
    out.__doc__ = fn.__doc__
    return out


def _check_arity(term: Any, arity: int) -> None:
    check_term_arity(term, arity, ("p", "t", "n"), "elementwise kernel term", MAX_PARAMS)


def check_term_arity(term: Any, arity: int, leading: tuple[str, ...], what: str,
                     most: int) -> None:
    """``term`` takes the ``leading`` arguments and the loss's ``arity`` parameters, all
    positionally, and ``arity <= most``; else ParameterError naming ``what``."""
    if arity > most:
        raise ParameterError(
            f"a{'n' if what[0] in 'aeiou' else ''} {what} takes at most {most} parameters; the "
            f"loss has {arity}")
    try:
        sig = inspect.signature(term)
    except (TypeError, ValueError):
        return
    kinds = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
    if (len(sig.parameters) != len(leading) + arity
            or any(q.kind not in kinds for q in sig.parameters.values())):
        raise ParameterError(
            f"the {what} {getattr(term, '__name__', term)!r} must take ({', '.join(leading)}) "
            f"and the loss's {arity} parameter(s) positionally; got {sig}"
        )


def _digest(term: Any, arity: int, lo: float | None, hi: float | None) -> str:
    """A hash of everything the compiled copy depends on beyond this file."""
    return digest(term, (arity, lo, hi), (numba_kernels.__file__,))


def digest(term: Any, key: Any, files: tuple[str, ...] = ()) -> str:
    """A hash of what a compiled copy around ``term`` depends on beyond the skeleton's own
    file: ``key``, the term's module source (its code where there is no source), :mod:`.vmath`,
    :mod:`.scalar` and ``files``."""
    h = hashlib.sha256(repr((*tuple(key), term.__module__, term.__qualname__)).encode())
    for src in (inspect.getsourcefile(term), vmath.__file__, scalar.__file__, *files):
        try:
            h.update(Path(src).read_bytes() if src else b"")
        except OSError:
            src = None
        if not src:
            h.update(marshal.dumps(term.__code__))
    return h.hexdigest()[:12]
